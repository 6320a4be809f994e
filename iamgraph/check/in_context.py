"""Judging changes in context: apply them to a snapshot and compare the access graphs before and after
(the comparison is ``iamgraph.change.drift``'s, the one ``iamgraph diff`` makes).

With ``--snapshot``, a change that names a principal the snapshot holds (a role's trust policy, an
inline policy or attachment of a role, user or group) is applied to a copy of the snapshot; the
escalations (``iamgraph.query.privesc``) and SoD conflicts (``iamgraph.query.sod``) of the changed
graph that the current graph does not have are findings. That catches what the policy alone cannot
show: a grant that becomes an escalation only through another principal it can act as.

An updated inline policy or attachment is *added* next to what the snapshot holds (the old version
is not located and removed), so the after graph can hold slightly more than the real result; a
finding then still names a real capability of the new policy, combined with the principal's others.
"""

from __future__ import annotations

from typing import Any

from iamgraph.check.types import Finding, Location, PolicyChange, PolicyKind, Rule, Severity
from iamgraph.snapshot.model import (
    Account,
    Group,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    Role,
    Snapshot,
    User,
)


def _principal(
    snap: Snapshot, ref: str, accounts: frozenset[str]
) -> tuple[Account, Role | User | Group] | None:
    """``role/name`` (or user/, group/) in exactly one account (our accounts first)."""
    kind, _, name = ref.partition("/")
    hits: list[tuple[Account, Role | User | Group]] = []
    for acct in snap.accounts:
        if accounts and acct.account_id not in accounts:
            continue
        pools: dict[str, list[Any]] = {
            "role": list(acct.roles),
            "user": list(acct.users),
            "group": list(acct.groups),
        }
        pool = pools.get(kind, [])
        hits.extend((acct, p) for p in pool if p.name == name)
    return hits[0] if len(hits) == 1 else None


def _add_new_roles(snap: Snapshot, changes: list[PolicyChange], accounts: frozenset[str]) -> None:
    """Roles the change creates (a trust policy of a role the snapshot lacks), in our one account."""
    import hashlib

    ours = [a for a in snap.accounts if a.account_id in accounts] if accounts else list(snap.accounts)
    if len(ours) != 1:
        return  # which account would hold it is not known
    acct = ours[0]
    for ch in changes:
        if ch.kind is not PolicyKind.TRUST or ch.before is not None or ch.after is None:
            continue
        if ch.after.document is None or not ch.attached_to or not ch.attached_to[0].startswith("role/"):
            continue
        name = ch.attached_to[0].split("/", 1)[1]
        if "{{unresolved" in name or any(r.name == name for r in acct.roles):
            continue
        digest = hashlib.sha256(f"{acct.account_id}/{name}".encode()).hexdigest()[:17].upper()
        acct.roles.append(
            Role(
                arn=f"arn:aws:iam::{acct.account_id}:role/{name}",
                name=name,
                role_id=f"AROA{digest}",
                trust_policy=ch.after.document,
            )
        )


def apply_changes(
    snap: Snapshot, changes: list[PolicyChange], managed: dict[str, dict[str, Any]], accounts: frozenset[str]
) -> tuple[Snapshot, list[tuple[PolicyChange, str]]]:
    """A copy of ``snap`` with the changes applied, and (change, principal ARN) for each one applied."""
    out = snap.model_copy(deep=True)
    applied: list[tuple[PolicyChange, str]] = []
    _add_new_roles(out, changes, accounts)
    for i, ch in enumerate(changes):
        after = ch.after
        if after is None:
            continue
        if ch.kind is PolicyKind.TRUST:
            refs = list(ch.attached_to)
            if ch.resource_arn and ":role/" in ch.resource_arn:
                refs.append(f"role/{ch.resource_arn.rsplit('/', 1)[-1]}")
            for ref in refs[:1]:
                hit = _principal(out, ref, accounts)
                if hit is not None and isinstance(hit[1], Role) and after.document is not None:
                    hit[1].trust_policy = after.document
                    applied.append((ch, hit[1].arn))
            continue
        for ref in ch.attached_to:
            hit = _principal(out, ref, accounts)
            if hit is None:
                continue
            acct, p = hit
            if ch.kind is PolicyKind.IDENTITY and after.document is not None:
                p.inline_policies.append(InlinePolicy(name=f"iamgraph-check-{i}", document=after.document))
                applied.append((ch, p.arn))
            elif ch.kind is PolicyKind.ATTACHMENT and ch.resource_arn in managed:
                arn = ch.resource_arn
                assert arn is not None
                known = {m.arn for m in out.aws_managed_policies} | {m.arn for m in acct.policies}
                if arn not in known:
                    entry = ManagedPolicy(
                        arn=arn,
                        name=arn.rsplit("/", 1)[-1],
                        default_version_id="v1",
                        versions=[PolicyVersion(version_id="v1", is_default=True, document=managed[arn])],
                    )
                    if ":aws:policy/" in arn:
                        out.aws_managed_policies.append(entry)
                    else:
                        acct.policies.append(entry)
                p.attached_managed_policies.append(arn)
                applied.append((ch, p.arn))
    return out, applied


def graph_findings(
    snap: Snapshot,
    changes: list[PolicyChange],
    managed: dict[str, dict[str, Any]],
    accounts: frozenset[str],
) -> list[Finding]:
    """Escalations and SoD conflicts the changed snapshot has and the current one does not, compared by
    ``iamgraph.change.drift`` (the comparison ``iamgraph diff`` makes), each attributed to a change."""
    from iamgraph.change.drift import drift
    from iamgraph.graph import build_graph
    from iamgraph.graph.incremental import rebuild

    changed, applied = apply_changes(snap, changes, managed, accounts)
    if not applied:
        return []
    loc_of = {arn: ch for ch, arn in applied}
    base = build_graph(snap)
    # The changed graph recomputes only the edges of the accounts the changes touch (docs/change.md); a change
    # reaching further (an SCP, the organization) is built in full by ``rebuild`` itself.
    after, _ = rebuild(base, changed)
    d = drift(base, after)
    out: list[Finding] = []
    for e in sorted((*d.admins.added, *d.escalations.added), key=lambda e: (e.principal, e.account, e.rank())):
        # Attribute the finding to the change that touched a principal on the path (else the first).
        route: list[str] = []
        for n in [*(n for p in e.change_paths for n in p.nodes), *e.path.nodes]:
            if n not in route:
                route.append(n)
        on_path = [n for n in route if n in loc_of] or [next(iter(loc_of))]
        ch = loc_of[on_path[0]]
        loc = ch.after.location if ch.after is not None else Location(file="?")
        out.append(
            Finding(
                rule=Rule.PRIVESC,
                severity=Severity.CRITICAL if e.definite else Severity.HIGH,
                subject=ch.subject,
                message=(
                    f"in the snapshot, {e.principal} becomes admin-equivalent in {e.account} "
                    f"({e.kind.value}, {e.length} step(s) via {', '.join(route)})"
                ),
                location=loc,
                details={
                    "principal": e.principal,
                    "account": e.account,
                    "kind": e.kind.value,
                    "path": list(e.path.nodes),
                    "route": route,
                    "definite": e.definite,
                    "graph": True,
                },
            )
        )
    for c in d.sod.added:
        ch = loc_of.get(c.principal) or next(iter(loc_of.values()))
        out.append(
            Finding(
                rule=Rule.SOD,
                severity=Severity.parse(c.rule.severity),
                subject=ch.subject,
                message=f"in the snapshot, {c.principal} now holds SoD conflict {c.rule.id}: {c.rule.title}",
                location=ch.after.location if ch.after is not None else Location(file="?"),
                details={"principal": c.principal, "sod_rule": c.rule.id, "graph": True},
            )
        )
    return out
