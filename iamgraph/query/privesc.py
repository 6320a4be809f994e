"""Privilege escalation: every way a principal becomes admin-equivalent, ranked.

A principal is admin-equivalent in an account when it can act as one that is allowed ``*`` on
``*`` there (the admin probe set, docs/graph.md), or when it controls both the source of a
permission-changing edge and its target and the target, changed, passes the same probe.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from iamgraph.errors import NotFoundError
from iamgraph.graph import AccessGraph, Edge, EdgeKind, NodeKind
from iamgraph.graph.build import PRINCIPAL_KINDS
from iamgraph.graph.rules.admin import ADMIN_PROBES, admin_node
from iamgraph.graph.types import Conditions, and_conditions
from iamgraph.query.changes import join_edges, join_users, modifiers
from iamgraph.query.changes import options as change_options
from iamgraph.query.paths import (
    Path,
    definite_acts,
    make_path,
    path_of,
    reach,
    reverse_reach,
    single,
    walk_back,
    walk_forward,
)


class EscalationKind(StrEnum):
    ADMIN = "already-admin"
    """The principal itself passes the admin probe."""
    PATH = "path-to-admin"
    """It can act as an admin-equivalent principal."""
    CHANGE = "change-permissions"
    """It can change the permissions of a principal it controls (maybe itself) to admin."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalation:
    principal: str
    kind: EscalationKind
    account: str
    """The account in which it becomes admin-equivalent."""
    admin: str
    """The admin-equivalent principal it ends as."""
    path: Path
    """To ``admin`` (for CHANGE: to the changed principal), ending with the admin edge when direct."""
    changes: tuple[Edge, ...] = ()
    """The permission-changing edges used (a grant, a boundary removal, a group join)."""
    change_paths: tuple[Path, ...] = ()
    """From ``principal`` to the source of each change edge."""
    conditions: Conditions = ()
    assumptions: tuple[str, ...] = ()
    definite_path: Path | None = None
    """When this escalation needs conditions: the shortest path to an admin of the same account that
    needs none (longer, or it would be ``path``), ending with the admin edge; None if there is none."""

    @property
    def definite(self) -> bool:
        return not self.conditions and not self.assumptions

    @property
    def length(self) -> int:
        return self.path.length + len(self.changes) + sum(p.length for p in self.change_paths)

    def rank(self) -> tuple[int, int, int, str]:
        return (self.length, 0 if self.definite else 1, sum(len(c) for c in self.conditions), self.admin)


def change_key(kwargs: dict[str, Any]) -> str:
    """The text ``admin_after_change`` keeps a change's answers under (the change's what-if arguments, written out:
    a group's policies in full). Made once per change by a caller that asks about many targets."""
    return repr(sorted((k, repr(v)) for k, v in kwargs.items()))


def admin_after_change(graph: AccessGraph, target: str, kwargs: dict[str, Any], *,
                       key_text: str | None = None) -> tuple[bool, Conditions]:
    """Whether ``target`` passes the admin probe after a change (cached per target and change); ``key_text``:
    ``change_key(kwargs)``, when the caller has it."""
    cache: dict[tuple[str, str], tuple[bool, Conditions]] = graph.cache.setdefault("admin_after", {})
    key = (target, key_text if key_text is not None else change_key(kwargs))
    hit = cache.get(key)
    if hit is not None:
        return hit
    conds: Conditions = ()
    ok = True
    for action in ADMIN_PROBES:
        d = graph.ctx.what_if(target, action, "*", **kwargs)
        if d is None or not d.possible:
            ok = False
            break
        conds = and_conditions(conds, d.conditions)
    out = (ok, conds if ok else ())
    cache[key] = out
    return out


def privesc(graph: AccessGraph, principal: str | None = None, *, per_principal: int = 3) -> list[Escalation]:
    """Escalations of one principal, or of every user, role and Identity Center principal, ranked."""
    if principal is not None:
        if principal not in graph.g:
            raise NotFoundError(f"the snapshot has no principal {principal}")
        starts = [principal]
    else:
        return _privesc_all(graph, per_principal)
    out: list[Escalation] = []
    for p in starts:
        found = escalations_of(graph, p)
        found.sort(key=lambda e: e.rank())
        out.extend(found[:per_principal])
    out.sort(key=lambda e: (e.rank(), e.principal))
    return out


def _privesc_all(graph: AccessGraph, per_principal: int) -> list[Escalation]:
    """Every principal at once, walking backwards from what makes one admin (no per-principal walk).

    1. From the directly admin-equivalent principals of each account, one reverse walk labels every
       principal with its nearest admin there (``already-admin`` or ``path-to-admin``).
    2. For each permission-changing edge whose changed target passes the admin probe, the principals
       that control both its source and its target (two reverse walks) escalate by that change.
       Changes made by an account's admin node are skipped: whoever controls that node is already
       admin there (step 1).
    Per principal: the best escalation per account and kind, the ``per_principal`` best kept.
    """
    admins = graph.admins()
    found: dict[str, dict[tuple[str, str], Escalation]] = {}

    def offer(e: Escalation) -> None:
        slot = found.setdefault(e.principal, {})
        key = (e.account, e.kind.value)
        if key not in slot or e.rank() < slot[key].rank():
            slot[key] = e

    def wanted(node: str) -> bool:
        kind = graph.node_kind(node)
        return kind in PRINCIPAL_KINDS and kind is not NodeKind.SERVICE

    by_account: dict[str, list[str]] = {}
    for a in admins:
        by_account.setdefault(graph.ctx.account(a), []).append(a)
    sure = definite_acts(graph)
    for acct, account_admins in sorted(by_account.items()):
        # One backward walk per account: every principal's nearest admin of that account; and one
        # over the edges that need no condition, from the admins that need none.
        nxt = reverse_reach(graph, account_admins)
        dnxt = reverse_reach(graph, [a for a in account_admins if _sure(admins[a])], over=sure)
        for node in nxt:
            if not wanted(node):
                continue
            nodes = walk_forward(nxt, node)
            edge = admins[nodes[-1]]
            base = _path(graph, nodes)
            full = make_path((*base.nodes, edge.target), (*base.hops, edge))
            alt = _definite_path(graph, dnxt, node, admins)
            if alt is not None and alt.length <= full.length:
                full, alt = alt, None
            offer(Escalation(
                principal=node, kind=EscalationKind.ADMIN if len(full.nodes) == 2 else EscalationKind.PATH,
                account=acct, admin=full.nodes[-2], path=full,
                conditions=full.conditions, assumptions=full.assumptions,
                definite_path=alt if not full.definite else None,
            ))
    cache: dict[frozenset[str], dict[str, str | None]] = {}

    def back(sources: frozenset[str]) -> dict[str, str | None]:
        hit = cache.get(sources)
        if hit is None:
            # Sorted: a frozenset iterates in hash order, which differs per process and would pick a different
            # path among equally short ones each run.
            hit = cache[sources] = reverse_reach(graph, sorted(sources))
        return hit

    for target, by_kind in modifiers(graph).items():
        options = change_options(graph, by_kind, lambda e: not e.source.startswith("admin:"))
        acct = graph.ctx.account(target)
        for groups, kwargs in options:
            to_target = back(frozenset((target,)))
            walks = [back(frozenset(e.source for e in grp)) for grp in groups]
            # Who would gain: controllers of the target and of every change, not already admin there
            # (itself, or by a path without conditions). Only then is the engine asked.
            gainers = [n for n in to_target if wanted(n) and all(n in w for w in walks)
                       and not any(e.account == acct and (e.kind is EscalationKind.ADMIN or
                                                          (e.kind is EscalationKind.PATH and e.definite))
                                   for e in found.get(n, {}).values())]
            if not gainers:
                continue
            ok, conds = admin_after_change(graph, target, kwargs)
            if not ok:
                continue
            for node in gainers:
                base = _path(graph, walk_forward(to_target, node))
                cnodes = [walk_forward(w, node) for w in walks]
                cpaths = tuple(_path(graph, n) for n in cnodes)
                changes = tuple(next(e for e in grp if e.source == n[-1]) for grp, n in zip(groups, cnodes, strict=True))
                total = and_conditions(base.conditions, conds)
                assumptions = list(base.assumptions)
                for c, cp in zip(changes, cpaths, strict=True):
                    total = and_conditions(total, and_conditions(cp.conditions, c.conditions))
                    assumptions.extend(a for a in (*cp.assumptions, *c.assumptions) if a not in assumptions)
                offer(Escalation(
                    principal=node, kind=EscalationKind.CHANGE, account=acct, admin=target, path=base,
                    changes=changes, change_paths=cpaths, conditions=total, assumptions=tuple(assumptions),
                ))
    # AddUserToGroup on behalf of another user: whoever controls the edge's source and some user
    # of the account adds that user to the group (the modifiers loop above covered users adding
    # themselves).
    forward: dict[str, dict[str, str | None]] = {}
    for e in join_edges(graph):
        if e.source.startswith("admin:"):
            continue
        acct = graph.ctx.account(e.target)
        kwargs = {"add_identity": graph.ctx.group_policies(e.target)}
        key_text = change_key(kwargs)  # the same change for every user added: written out once
        to_source = back(frozenset((e.source,)))
        for node in to_source:
            if not wanted(node) or any(x.account == acct and (x.kind is EscalationKind.ADMIN or (
                    x.kind is EscalationKind.PATH and x.definite)) for x in found.get(node, {}).values()):
                continue
            ahead = forward.get(node)
            if ahead is None:
                ahead = forward[node] = reach(graph, node)
            for user in join_users(graph, e, (n for n in ahead if n != e.source and n in graph.index.users)):
                ok, conds = admin_after_change(graph, user, kwargs, key_text=key_text)
                if not ok:
                    continue
                base = _path(graph, walk_back(ahead, user))
                cpath = _path(graph, walk_forward(to_source, node))
                total = and_conditions(and_conditions(base.conditions, conds),
                                       and_conditions(cpath.conditions, e.conditions))
                assumptions = list(base.assumptions)
                assumptions.extend(a for a in (*cpath.assumptions, *e.assumptions) if a not in assumptions)
                offer(Escalation(
                    principal=node, kind=EscalationKind.CHANGE, account=acct, admin=user, path=base,
                    changes=(e,), change_paths=(cpath,), conditions=total, assumptions=tuple(assumptions),
                ))
    out: list[Escalation] = []
    for slot in found.values():
        direct = {e.account for e in slot.values() if e.kind is EscalationKind.ADMIN}
        kept = sorted((e for e in slot.values() if e.kind is EscalationKind.ADMIN or e.account not in direct),
                      key=lambda e: e.rank())
        out.extend(kept[:per_principal])
    out.sort(key=lambda e: (e.rank(), e.principal))
    return out


def escalations_of(graph: AccessGraph, principal: str) -> list[Escalation]:
    admins = graph.admins()
    mods = modifiers(graph)
    parent = reach(graph, principal)
    best: dict[tuple[str, str], Escalation] = {}

    def offer(e: Escalation) -> None:
        key = (e.account, e.kind.value)
        cur = best.get(key)
        if cur is None or e.rank() < cur.rank():
            best[key] = e

    done: set[str] = set()
    for node in parent:  # BFS order: nearer admins first
        edge = admins.get(node)
        if edge is None:
            continue
        acct = graph.ctx.account(node)
        base = _path(graph, walk_back(parent, node))
        full = make_path((*base.nodes, edge.target), (*base.hops, edge))
        offer(Escalation(
            principal=principal, kind=EscalationKind.ADMIN if node == principal else EscalationKind.PATH,
            account=acct, admin=node, path=full, conditions=full.conditions, assumptions=full.assumptions,
        ))
        if full.definite:
            done.add(acct)
    # The shortest path needing no condition, per account (BFS over unconditional edges).
    sure_parent = reach(graph, principal, over=definite_acts(graph))
    sure: dict[str, Path] = {}
    for node in sure_parent:
        edge = admins.get(node)
        if edge is None or not _sure(edge) or graph.ctx.account(node) in sure:
            continue
        base = _path(graph, walk_back(sure_parent, node))
        sure[graph.ctx.account(node)] = make_path((*base.nodes, edge.target), (*base.hops, edge))
    for key, e in list(best.items()):
        alt = sure.get(e.account)
        if e.definite or alt is None:
            continue
        if alt.length <= e.path.length:
            best[key] = replace(e, path=alt, admin=alt.nodes[-2], conditions=(), assumptions=())
        else:
            best[key] = replace(e, definite_path=alt)
    done.update(sure)
    # Join edges whose source the principal controls can add any user it controls to their group.
    joins = [e for e in join_edges(graph) if e.source in parent]
    for node in parent:
        by_kind = mods.get(node)
        if node in graph.index.users:
            extra = [e for e in joins if e.source != node and join_users(graph, e, (node,))]
            if extra:
                by_kind = {**(by_kind or {})}
                by_kind[EdgeKind.JOIN_GROUP] = [*by_kind.get(EdgeKind.JOIN_GROUP, []), *extra]
        if not by_kind or graph.ctx.account(node) in done:
            continue
        options = _change_options(graph, by_kind, parent)
        if not options:
            continue
        base = _path(graph, walk_back(parent, node))
        for changes, kwargs in options:
            ok, conds = admin_after_change(graph, node, kwargs)
            if not ok:
                continue
            cpaths = tuple(_path(graph, walk_back(parent, c.source)) for c in changes)
            total = and_conditions(base.conditions, conds)
            assumptions = list(base.assumptions)
            for c, cp in zip(changes, cpaths, strict=True):
                total = and_conditions(total, and_conditions(cp.conditions, c.conditions))
                assumptions.extend(a for a in (*cp.assumptions, *c.assumptions) if a not in assumptions)
            offer(Escalation(
                principal=principal, kind=EscalationKind.CHANGE, account=graph.ctx.account(node), admin=node,
                path=base, changes=changes, change_paths=cpaths, conditions=total,
                assumptions=tuple(assumptions),
            ))
    # Already admin in an account: other ways to become admin there are not escalations.
    direct = {e.account for e in best.values() if e.kind is EscalationKind.ADMIN}
    return [e for e in best.values() if e.kind is EscalationKind.ADMIN or e.account not in direct]


def _change_options(
    graph: AccessGraph, by_kind: dict[EdgeKind, list[Edge]], controlled: dict[str, str | None]
) -> list[tuple[tuple[Edge, ...], dict[str, Any]]]:
    """Ways the principal can change this target, using only edges whose source it controls."""
    out: list[tuple[tuple[Edge, ...], dict[str, Any]]] = []
    for groups, kwargs in change_options(graph, by_kind, lambda e: e.source in controlled):
        # Any edge of a group will do: the one with fewest conditions stands for it.
        out.append((tuple(min(g, key=lambda e: (len(e.conditions), len(e.assumptions))) for g in groups), kwargs))
    return out


def _sure(edge: Edge) -> bool:
    return not edge.conditions and not edge.assumptions


def _definite_path(graph: AccessGraph, dnxt: dict[str, str | None], node: str,
                   admins: dict[str, Edge]) -> Path | None:
    """The path of a walk over unconditional edges from ``node`` to its admin, with the admin edge."""
    if node not in dnxt:
        return None
    nodes = walk_forward(dnxt, node)
    base = _path(graph, nodes)
    edge = admins[nodes[-1]]
    return make_path((*base.nodes, edge.target), (*base.hops, edge))


def _path(graph: AccessGraph, nodes: tuple[str, ...]) -> Path:
    # Paths through an account's admin node stop being interesting there: the admin is the finding.
    return path_of(graph, nodes) if len(nodes) > 1 else single(nodes[0])


def admin_accounts(graph: AccessGraph, principal: str) -> dict[str, Escalation]:
    """Account -> the best escalation to admin there."""
    out: dict[str, Escalation] = {}
    for e in sorted(escalations_of(graph, principal), key=lambda e: e.rank()):
        out.setdefault(e.account, e)
    return out


__all__ = ["Escalation", "EscalationKind", "admin_accounts", "admin_node", "escalations_of", "privesc"]
