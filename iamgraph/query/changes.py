"""What a permission-changing edge does, as engine inputs for a what-if evaluation.

``GrantPermissions`` through Put*/Attach*/CreatePolicyVersion lets the caller write any policy, so
the target is evaluated with an allow-all identity policy added; SetDefaultPolicyVersion only
brings back an existing version (in place of the current default), so each older version is tried
instead. ``RemoveDenyPolicy`` takes one policy holding a Deny away (overwriting it, for Put*Policy
and CreatePolicyVersion). ``options`` combines the changes one controller set could make to one
target: the queries ask the engine about each option, never about each edge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from iamgraph.eval import named_policy
from iamgraph.eval.types import NamedPolicy, PolicyType
from iamgraph.graph import AccessGraph, Edge, EdgeKind
from iamgraph.graph.rules.iam import inline_id

Option = tuple[list[list[Edge]], dict[str, Any]]
"""Groups of interchangeable edges (one edge of each group is needed) and the what-if arguments."""

MAX_SINGLE_REMOVALS = 8
"""Beyond this many removable Deny policies on one target, only 'remove all of them' is tried."""

_OVERWRITE = frozenset({"iam:PutUserPolicy", "iam:PutRolePolicy", "iam:PutGroupPolicy"})


def variants(graph: AccessGraph, edge: Edge) -> list[dict[str, Any]]:
    """Keyword arguments for ``BuildContext.what_if`` describing the state after ``edge``."""
    if edge.kind is EdgeKind.REMOVE_BOUNDARY:
        return [{"drop_boundary": True}]
    if edge.kind is EdgeKind.JOIN_GROUP:
        return [{"add_identity": graph.ctx.group_policies(edge.target)}]
    if edge.kind is EdgeKind.REMOVE_DENY:
        return [removal(graph, edge)]
    if edge.kind is EdgeKind.GRANT_PERMISSIONS:
        if edge.reason.via and edge.reason.via[0] == "iam:SetDefaultPolicyVersion" and edge.reason.target:
            return [{"add_identity": (v,), "replace_policies": (edge.reason.target,)}
                    for v in older_versions(graph, edge.reason.target)]
        return [{"allow_all": True}]
    return []


def removal(graph: AccessGraph, edge: Edge) -> dict[str, Any]:
    """What-if arguments for a ``RemoveDenyPolicy`` edge."""
    action = edge.reason.via[0] if edge.reason.via else ""
    target = edge.reason.target or ""
    if action == "iam:RemoveUserFromGroup":
        group = graph.index.groups.get(target)
        if group is None:
            return {}
        ids = [inline_id(group.arn, p.name) for p in group.inline_policies]
        return {"drop_policies": (*ids, *group.attached_managed_policies)}
    if action == "iam:CreatePolicyVersion":
        return {"replace_policies": (target,), "allow_all": True}
    if action in _OVERWRITE:
        return {"drop_policies": (target,), "allow_all": True}
    return {"drop_policies": (target,)}


def removal_key(edge: Edge) -> tuple[str, str, str]:
    """Edges with the same key take away the same policy occurrence the same way (any one will do)."""
    return (edge.reason.via[0] if edge.reason.via else "", edge.reason.target or "", edge.reason.note or "")


def merge(*kwargs: dict[str, Any]) -> dict[str, Any]:
    """One what-if made of several changes."""
    out: dict[str, Any] = {}
    for kw in kwargs:
        for k, v in kw.items():
            if isinstance(v, bool):
                out[k] = out.get(k, False) or v
            else:
                out[k] = (*out.get(k, ()), *v)
    return out


def options(graph: AccessGraph, by_kind: dict[EdgeKind, list[Edge]],
            keep: Callable[[Edge], bool] = lambda e: True) -> list[Option]:
    """Every change worth asking the engine about for one target, from the edges ``keep`` admits.

    Arbitrary grants are interchangeable, as are boundary removals; each restored version, group
    joined and Deny policy removed is its own change. Removals are tried alone, with an arbitrary
    grant and/or a boundary removal, and all together.
    """
    grants = [e for e in by_kind.get(EdgeKind.GRANT_PERMISSIONS, []) if keep(e)]
    drops = [e for e in by_kind.get(EdgeKind.REMOVE_BOUNDARY, []) if keep(e)]
    free = [e for e in grants if arbitrary(e)]
    lifts: list[Option] = [([], {})]
    if free:
        lifts.append(([free], {"allow_all": True}))
    if drops:
        lifts.append(([drops], {"drop_boundary": True}))
    if free and drops:
        lifts.append(([free, drops], {"allow_all": True, "drop_boundary": True}))
    out: list[Option] = lifts[1:]
    for e in [*(g for g in grants if not arbitrary(g)), *(j for j in by_kind.get(EdgeKind.JOIN_GROUP, []) if keep(j))]:
        out.extend(([[e]], kw) for kw in variants(graph, e))
    effects: dict[tuple[str, str, str], tuple[dict[str, Any], list[Edge]]] = {}
    for e in by_kind.get(EdgeKind.REMOVE_DENY, []):
        if not keep(e):
            continue
        kw = removal(graph, e)
        if kw:
            effects.setdefault(removal_key(e), (kw, []))[1].append(e)
    singles = list(effects.values()) if len(effects) <= MAX_SINGLE_REMOVALS else []
    combos: list[tuple[dict[str, Any], list[list[Edge]]]] = [(kw, [edges]) for kw, edges in singles]
    if len(effects) > 1:
        combos.append((merge(*(kw for kw, _ in effects.values())), [edges for _, edges in effects.values()]))
    for kw, groups in combos:
        for lift_groups, lift_kw in lifts:
            out.append(([*groups, *lift_groups], merge(kw, lift_kw)))
    return out


def older_versions(graph: AccessGraph, policy_arn: str) -> list[NamedPolicy]:
    managed = graph.index.policies.get(policy_arn)
    if managed is None:
        return []
    return [
        named_policy(v.document, f"{policy_arn}@{v.version_id}", PolicyType.IDENTITY)
        for v in managed.versions
        if v.version_id != managed.default_version_id
    ]


def arbitrary(edge: Edge) -> bool:
    """Whether the edge lets the caller write any policy (not just restore an old version)."""
    return edge.kind is EdgeKind.GRANT_PERMISSIONS and not (
        edge.reason.via and edge.reason.via[0] == "iam:SetDefaultPolicyVersion"
    )


def modifiers(graph: AccessGraph) -> dict[str, dict[EdgeKind, list[Edge]]]:
    """Principal whose permissions change -> kind -> edges.

    JOIN_GROUP edges are keyed by their source when it is a user outside the group (it adds
    itself); ``join_users`` gives the other users a join edge can add.
    """
    hit = graph.cache.get("modifiers")
    if hit is None:
        hit = {}
        for e in graph.edges((EdgeKind.GRANT_PERMISSIONS, EdgeKind.REMOVE_BOUNDARY, EdgeKind.REMOVE_DENY,
                              EdgeKind.JOIN_GROUP)):
            if e.kind is EdgeKind.JOIN_GROUP:
                if not can_join(graph, e.source, e.target):
                    continue
                key = e.source
            else:
                key = e.target
            hit.setdefault(key, {}).setdefault(e.kind, []).append(e)
        graph.cache["modifiers"] = hit
    return hit


def join_edges(graph: AccessGraph) -> list[Edge]:
    """Every ``AddUserToGroup`` edge (source: who can add a user; target: the group)."""
    hit = graph.cache.get("join_edges")
    if hit is None:
        hit = graph.cache["join_edges"] = list(graph.edges((EdgeKind.JOIN_GROUP,)))
    return hit


def can_join(graph: AccessGraph, user: str, group: str) -> bool:
    """Whether adding ``user`` to ``group`` changes anything: a user of the group's account, not yet in it."""
    u = graph.index.users.get(user)
    g = graph.index.groups.get(group)
    if u is None or g is None or graph.ctx.account(user) != graph.ctx.account(group):
        return False
    return all(m.arn != group for m in graph.index.groups_of(u))


def join_users(graph: AccessGraph, edge: Edge, candidates: Iterable[str]) -> list[str]:
    """Of ``candidates``, the users the join edge's source could add to its group (for a change)."""
    return [c for c in candidates if can_join(graph, c, edge.target)]
