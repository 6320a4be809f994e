"""CLI: ``iamgraph request evaluate`` (an access request judged like the API does) and ``iamgraph diff`` (what
changed between two snapshots). Both are faces of ``iamgraph.change``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from iamgraph.change import (
    Evaluation,
    ExistingPrincipal,
    GroupGrant,
    IdentityCenterPrincipal,
    InlinePolicyGrant,
    ManagedPolicyGrant,
    Need,
    PermissionSetGrant,
    PolicyRemoval,
    SnapshotBase,
    TrustPolicyEdit,
    Verdict,
    What,
    Who,
    evaluate_grant,
)
from iamgraph.change.drift import Delta, Drift, drift
from iamgraph.change.grant import check_document
from iamgraph.cli.app import app, console, handle_errors
from iamgraph.cli.inputs import load_snapshot, resolve_principal
from iamgraph.cli.progress import phase
from iamgraph.errors import InputError
from iamgraph.query import serialize as ser

request_app = typer.Typer(help="Access requests: judge a grant before anyone makes it.", no_args_is_help=True)
app.add_typer(request_app, name="request")

EXIT_REVIEW = 1
EXIT_DENY = 3


def _load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {what} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: {what} must be a JSON object")
    return data


def _change(principal: str | None, ic_user: str | None, ic_group: str | None, policy: Path | None,
            policy_name: str | None, managed_policy: str | None, group: str | None, permission_set: str | None,
            account: str | None, trust_policy: Path | None = None, remove_policy: str | None = None
            ) -> tuple[Who, What]:
    whos = [x for x in (principal, ic_user, ic_group) if x]
    if len(whos) != 1:
        raise InputError("name exactly one of --principal, --ic-user, --ic-group")
    whats = [x for x in (policy, managed_policy, group, permission_set, trust_policy, remove_policy) if x]
    if len(whats) != 1:
        raise InputError("name exactly one of --policy FILE, --managed-policy ARN, --group ARN, --permission-set ARN, "
                         "--trust-policy FILE, --remove-policy NAME|ARN")
    who: Who
    if principal:
        who = ExistingPrincipal(principal_arn=principal)
    else:
        who = IdentityCenterPrincipal(id=ic_user or ic_group or "", type="USER" if ic_user else "GROUP")
    what: What
    if trust_policy is not None:
        doc = _load_json(trust_policy, "the trust policy")
        check_document(doc, str(trust_policy), trust=True)  # the file names the mistake, not the request's field
        what = TrustPolicyEdit(trust_policy=doc)
    elif remove_policy:
        what = PolicyRemoval(policy=remove_policy)
    elif policy is not None:
        doc = _load_json(policy, "the policy")
        check_document(doc, str(policy))
        what = InlinePolicyGrant(policy_document=doc, policy_name=policy_name)
    elif managed_policy:
        what = ManagedPolicyGrant(managed_policy_arn=managed_policy)
    elif group:
        what = GroupGrant(group_arn=group)
    else:
        if not account:
            raise InputError("--permission-set needs --account (the account it is assigned in)")
        what = PermissionSetGrant(permission_set_arn=permission_set or "", account_id=account)
    return who, what


@request_app.command("evaluate")
@handle_errors
def request_evaluate(
    snapshot: Path = typer.Option(..., "--snapshot", "-s", help="Snapshot to judge the request against."),
    principal: str | None = typer.Option(None, "--principal", "-p", help="The IAM user or role to get it (ARN, "
                                         "role/NAME, user/NAME or a unique name)."),
    ic_user: str | None = typer.Option(None, "--ic-user", help="An Identity Center user id (with --permission-set)."),
    ic_group: str | None = typer.Option(None, "--ic-group", help="An Identity Center group id (with --permission-set)."),
    policy: Path | None = typer.Option(None, "--policy", help="A policy document (JSON file) to put inline."),
    policy_name: str | None = typer.Option(None, "--policy-name", help="Its inline policy name."),
    managed_policy: str | None = typer.Option(None, "--managed-policy", help="A managed policy ARN to attach."),
    group: str | None = typer.Option(None, "--group", help="A group ARN for the user to join."),
    permission_set: str | None = typer.Option(None, "--permission-set", help="A permission set ARN to assign."),
    account: str | None = typer.Option(None, "--account", help="The account a permission set is assigned in."),
    trust_policy: Path | None = typer.Option(None, "--trust-policy", help="A new trust policy (JSON file) for the "
                                             "role: judged by who could then use it."),
    remove_policy: str | None = typer.Option(None, "--remove-policy", help="Detach this managed policy ARN or "
                                             "delete this inline policy name."),
    need: list[str] = typer.Option([], "--need", help="An action the requester needs (repeatable); with it a "
                                   "least-privilege alternative is proposed and verified."),
    need_resource: list[str] = typer.Option([], "--need-resource", help="A resource the need is on (repeatable; "
                                            "default *)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Judge an access request (or a trust edit, or a removal): new access, escalation paths, SoD, exposure,
    lint, and a verdict.

    The same judgement as the API's POST /v1/access-requests/evaluate. Exit 0 approve, 1 review, 3 deny,
    2 for bad input.
    """
    who, what = _change(principal, ic_user, ic_group, policy, policy_name, managed_policy, group, permission_set,
                        account, trust_policy, remove_policy)
    if need_resource and not need:
        raise InputError("--need-resource needs --need")
    stated = Need(actions=tuple(need), resources=tuple(need_resource or ["*"])) if need else None
    with phase("reading the snapshot"):
        base = SnapshotBase(load_snapshot(snapshot))
    if isinstance(who, ExistingPrincipal):
        who = ExistingPrincipal(principal_arn=resolve_principal(base.index, who.principal_arn))
    with phase("judging the request (new access, escalation, exposure, SoD)"):
        result = evaluate_grant(base, who, what, need=stated)
    if as_json:
        console.print_json(json.dumps(evaluation_json(result)), highlight=False)
    else:
        _print_evaluation(result)
    if result.verdict is Verdict.DENY:
        raise typer.Exit(EXIT_DENY)
    if result.verdict is Verdict.REVIEW:
        raise typer.Exit(EXIT_REVIEW)


def evaluation_json(ev: Evaluation) -> dict[str, Any]:
    alt = ev.alternative
    return {
        "subject": ev.subject,
        "verdict": ev.verdict.value,
        "reasons": [{"code": r.code, "effect": r.effect.value, "message": r.message, "data": r.data}
                    for r in ev.reasons],
        "new_access": {
            "total": len(ev.new_access), "truncated": ev.new_access_truncated, "checked_pairs": ev.checked_pairs,
            "actions_considered": ev.actions_considered,
            "entries": [{"action": e.action, "resource": e.resource, "access_level": e.access_level,
                         "before": e.before, "definite": e.definite, "conditions": ser.conditions(e.conditions),
                         "sensitive": e.sensitive} for e in ev.new_access],
        },
        "privilege_escalation": [ser.escalation(e) for e in ev.escalations],
        "admin_after": ev.admin_after,
        "sod_conflicts": [ser.conflict(c) for c in ev.sod_conflicts],
        "lint": [{"issue": f.issue, "title": f.title, "severity": f.severity, "location": f.location,
                  "detail": f.detail, "policy": f.policy} for f in ev.lint],
        "coverage": {"pairs": ev.pairs_after, "already_granted": ev.already_granted},
        "alternative": None if alt is None else {
            "policy": alt.policy, "verified": alt.verified, "covers_need": list(alt.covers_need),
            "not_covered": list(alt.not_covered), "already_granted": list(alt.already_granted),
            "removed_from_grant_actions": alt.removed_from_grant_actions},
        "notes": list(ev.notes),
    }


def _print_evaluation(ev: Evaluation, limit: int = 15) -> None:
    colour = {Verdict.APPROVE: "green", Verdict.REVIEW: "yellow", Verdict.DENY: "red"}[ev.verdict]
    definite = sum(1 for e in ev.new_access if e.definite)
    console.print(f"[bold {colour}]{ev.verdict.value.upper()}[/] {ev.subject}: {len(ev.new_access)} new "
                  f"action/resource pair(s) ({definite} definite), {len(ev.escalations)} new escalation path(s), "
                  f"{len(ev.sod_conflicts)} new SoD conflict(s)", highlight=False, soft_wrap=True)
    for r in ev.reasons:
        console.print(f"  {r.effect.value:<7} {r.code}: {r.message}", highlight=False, markup=False, soft_wrap=True)
    if ev.new_access:
        table = Table(title=f"new access (first {min(limit, len(ev.new_access))} of {len(ev.new_access)}; "
                      "--json for all)")
        for col in ("action", "resource", "level", "before", "definite", "sensitive"):
            table.add_column(col, overflow="fold")
        for e in ev.new_access[:limit]:
            table.add_row(e.action, e.resource, e.access_level or "-", e.before, "yes" if e.definite else "no",
                          e.sensitive or "-")
        console.print(table)
    if ev.alternative is not None:
        alt = ev.alternative
        console.print(f"least-privilege alternative ({'verified' if alt.verified else 'NOT verified'} by the "
                      "engine):", highlight=False)
        console.print_json(json.dumps(alt.policy), highlight=False)
    for n in ev.notes:
        console.print(f"note: {n}", highlight=False, markup=False)


# ------------------------------------------------------------------------------------------- diff


@app.command("diff")
@handle_errors
def diff_cmd(
    old: Path = typer.Argument(..., help="The earlier snapshot."),
    new: Path = typer.Argument(..., help="The later snapshot."),
    tag: str | None = typer.Option(None, "--tag", help="Sensitive data: resources with this tag (Key or Key=Value) "
                                   "instead of the default classification keys."),
    limit: int = typer.Option(10, "--limit", help="Rows shown per section (--json is complete)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """What changed between two snapshots: admins, escalation paths, exposure, SoD, sensitive data access.

    Exit 0 when nothing changed, 1 when something did (for a weekly drift job), 2 for bad input.
    """
    from iamgraph.graph import build_graph
    from iamgraph.graph.incremental import rebuild

    with phase("reading the snapshots"):
        before, after = load_snapshot(old, "OLD"), load_snapshot(new, "NEW")
    with phase("building both access graphs"):
        # The later graph recomputes only the edges of the accounts whose entities differ; a difference reaching
        # every decision (organization, SCPs, AWS managed policies, accounts added) builds it in full.
        old_graph = build_graph(before)
        new_graph, _ = rebuild(old_graph, after)
    with phase("comparing admins, escalations, exposure, SoD and sensitive access"):
        d = drift(old_graph, new_graph, sensitive_tag=tag)
    if as_json:
        console.print_json(json.dumps(drift_json(d)), highlight=False)
    else:
        _print_drift(d, limit)
    if d.changed:
        raise typer.Exit(1)


def _delta_json(d: Delta[Any], one: Any) -> dict[str, Any]:
    return {"added": [one(x) for x in d.added], "removed": [one(x) for x in d.removed],
            "now_definite": [one(x) for x in d.now_definite], "now_conditional": [one(x) for x in d.now_conditional]}


def drift_json(d: Drift) -> dict[str, Any]:
    return {
        "changed": d.changed,
        "admins": _delta_json(d.admins, ser.escalation),
        "escalations": _delta_json(d.escalations, ser.escalation),
        "exposure": _delta_json(d.exposure, ser.exposure),
        "sod": _delta_json(d.sod, ser.conflict),
        "sensitive": _delta_json(d.sensitive, ser.sensitive_access),
        "skipped": {"old": d.skipped_old, "new": d.skipped_new},
    }


_SECTIONS: tuple[tuple[str, str, Any], ...] = (
    ("admins", "admin-equivalent principals", lambda e: f"{e.principal} in {e.account}"),
    ("escalations", "escalation paths to admin", lambda e: f"{e.principal} -> {e.admin} ({e.kind.value}, "
     f"{e.length} step(s))"),
    ("exposure", "exposure outside the organization", lambda x: f"{x.principal} ({x.scope.value}) -> {x.resource}"),
    ("sod", "separation-of-duties conflicts", lambda c: f"{c.rule.id} {c.principal}"
     + (f" on {c.resource}" if c.resource else "")),
    ("sensitive", "access to sensitive data", lambda s: f"{s.access.principal} {s.kind.value} {s.resource}"),
)


def _print_drift(d: Drift, limit: int) -> None:
    counts = {name: getattr(d, name) for name, _, _ in _SECTIONS}
    summary = ", ".join(f"{name} +{len(x.added)}/-{len(x.removed)}" for name, x in counts.items())
    console.print(("[bold yellow]CHANGED[/] " if d.changed else "[bold green]NO CHANGE[/] ") + summary,
                  highlight=False, soft_wrap=True)
    for name, title, line in _SECTIONS:
        delta: Delta[Any] = counts[name]
        for label, items in (("gained", delta.added), ("lost", delta.removed),
                             ("now definite", delta.now_definite), ("now conditional", delta.now_conditional)):
            if not items:
                continue
            console.print(f"{title}, {label} ({len(items)}):", highlight=False, markup=False)
            for x in items[:limit]:
                console.print(f"  {line(x)}", highlight=False, markup=False, soft_wrap=True)
            if len(items) > limit:
                console.print(f"  ... {len(items) - limit} more (--limit N, or --json for all)", highlight=False)
    if d.skipped_old or d.skipped_new:
        console.print(f"incomplete: the graph build could not answer {d.skipped_old} question(s) on the old "
                      f"snapshot and {d.skipped_new} on the new one; findings that rest on them may be missing",
                      highlight=False)
