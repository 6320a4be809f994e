"""The access graph of a changed snapshot, reusing the base graph's engine decisions the change cannot touch.

A change (a grant, a removal, a trust edit: ``iamgraph.change``) alters a few entities of a snapshot. The
engine's answer to (principal, action, resource, context) reads only:

* the principal's policy set: its inline and attached policies, its groups' policies, its boundary (the
  principal's own record, its groups' records, the managed policies they name) and its account's SCPs;
* the principal's context: its tags, account and the organization;
* the resource's side: its resource-based policy (a role's trust policy for ``sts:`` calls), its tags,
  whether the snapshot holds it at all, and its account's RCPs.

So a decision is the same after the change when its principal's records and its resource's records are
unchanged and the organization (SCPs, RCPs, OU tree) is unchanged. ``rebuild`` runs every edge rule
again over the changed snapshot -- so the rules' own state (definite admins and the admin shortcut,
protected targets, creatable admins, candidate indexes, group members and policy holders) is computed
afresh and every cascade of the change is followed exactly as a full build follows it -- but answers
each engine question the base build already asked from the base build's cache, unless the question's
principal or resource is among those the change touches (``Touched``). Questions the base build never
asked, questions about touched principals or resources, and the rules' what-if questions (new
principals, policies added or removed along a path) go to the engine.

What the change touches is read from the two snapshots themselves (``touched``), not from the kind of
change, so a new kind of change cannot be missed: every user, role, group, managed policy and resource
whose record differs, appears or disappears is compared, and a difference anywhere else (accounts, the
organization, AWS managed policies, collection errors, account settings such as S3 Block Public Access)
makes ``touched`` answer None: the caller builds the graph in full. Identity Center data and activity are
not compared: no engine question reads them (a permission set reaches the engine as the role it becomes,
which the comparison sees), and the rule that reads Identity Center runs again like every rule.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx

from iamgraph.eval import SnapshotEvaluator
from iamgraph.gcpause import without_cyclic_gc
from iamgraph.graph.build import (
    AccessGraph,
    _guess_kind,
    build_graph,
    run_rules,
    structure,
)
from iamgraph.graph.candidates import CandidateIndex
from iamgraph.graph.context import BuildContext, Skipped
from iamgraph.graph.rules.identity_center import materialise
from iamgraph.graph.types import ACTS_AS, Edge, EdgeKind
from iamgraph.model.arn import account_of
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Account, Snapshot

_PER_ARN = ("users", "groups", "roles", "policies", "resources", "compute")
"""Account collections compared entity by entity (each entity has an ``arn``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Touched:
    """What a change alters, as far as the engine can tell."""

    principals: frozenset[str]
    """Users and roles whose policy set or context may differ (their own record, a group they are or were
    in, a managed policy they hold or held through either)."""
    resources: frozenset[str]
    """ARNs whose resource-side facts may differ: every user, role, group, managed policy, resource and
    compute item whose record changed, appeared or disappeared."""


def touched(before: Snapshot, after: Snapshot) -> Touched | None:
    """What differs between two snapshots (both materialised), or None when it is more than entities.

    None means a difference the decisions of every principal may read (the organization and its SCPs or
    RCPs, an account added or removed or its settings, AWS managed policies, the partition); the graph
    must then be built in full.
    """
    if (before.partition != after.partition or before.organization != after.organization
            or before.aws_managed_policies != after.aws_managed_policies or before.errors != after.errors):
        return None
    old_accounts = {a.account_id: a for a in before.accounts}
    new_accounts = {a.account_id: a for a in after.accounts}
    if old_accounts.keys() != new_accounts.keys():
        return None
    resources: set[str] = set()
    changed_groups: set[str] = set()
    changed_policies: set[str] = set()
    changed_principals: set[str] = set()
    for aid, old in old_accounts.items():
        new = new_accounts[aid]
        if old is new:
            continue
        if _settings(old) != _settings(new):
            return None
        for name in _PER_ARN:
            old_items: list[Any] = getattr(old, name)
            new_items: list[Any] = getattr(new, name)
            if old_items == new_items:
                continue
            old_by = {e.arn: e for e in old_items}
            new_by = {e.arn: e for e in new_items}
            for arn in old_by.keys() | new_by.keys():
                if old_by.get(arn) != new_by.get(arn):
                    resources.add(arn)
                    if name in ("users", "roles"):
                        changed_principals.add(arn)
                    elif name == "groups":
                        changed_groups.add(arn)
                    elif name == "policies":
                        changed_policies.add(arn)
    principals = set(changed_principals)
    if changed_groups or changed_policies:
        # Who is or was in a changed group, or holds or held a changed managed policy (directly or
        # through a group): their policy sets may differ. Both sides are read, so a member who left
        # counts too.
        for snap in (before, after):
            principals.update(_holders(snap, changed_groups, changed_policies))
    return Touched(principals=frozenset(principals), resources=frozenset(resources))


def _settings(account: Account) -> dict[str, Any]:
    """Everything of an account but the per-entity collections."""
    return {k: v for k, v in account.__dict__.items() if k not in _PER_ARN}


def _holders(snap: Snapshot, groups: set[str], policies: set[str]) -> Iterable[str]:
    for acct in snap.accounts:
        group_arns = {g.name: g.arn for g in acct.groups}
        group_policies = {g.arn: set(g.attached_managed_policies) for g in acct.groups}
        for u in acct.users:
            mine = {group_arns[n] for n in u.groups if n in group_arns}
            held = set(u.attached_managed_policies).union(*(group_policies[g] for g in mine))
            if mine & groups or held & policies:
                yield u.arn
        for r in acct.roles:
            if policies.intersection(r.attached_managed_policies) or (r.permissions_boundary in policies):
                yield r.arn
        for u in acct.users:
            if u.permissions_boundary in policies:
                yield u.arn


def _stale(key: tuple[object, ...], touched_: Touched) -> bool:
    """Whether a cached decision of the base build may differ after the change."""
    if key and key[0] == "outsider":
        resource = key[3]
    elif key and key[0] == "what-if":
        if key[1] in touched_.principals:
            return True
        resource = key[3]
    else:
        if key[0] in touched_.principals:
            return True
        resource = key[2]
    if not isinstance(resource, str):
        return True
    if resource in touched_.resources:
        return True
    # An S3 object is decided with its bucket's policy and the bucket's tags' absence.
    return resource.startswith("arn:") and ":s3:::" in resource and resource.split("/", 1)[0] in touched_.resources


def _unchanged(change: Touched, principal: str, resources: Iterable[str]) -> bool:
    """Whether the change touched neither the principal (its records, groups, managed policies) nor any of the
    resources (an S3 object by its bucket), so what the engine answers about them is the base's."""
    if principal in change.principals or principal in change.resources:
        return False
    touched_ = change.resources
    for r in resources:
        if r in touched_ or (r.startswith("arn:") and ":s3:::" in r and r.split("/", 1)[0] in touched_):
            return False
    return True


_ALWAYS = frozenset({EdgeKind.SSO_MEMBER_OF, EdgeKind.SSO_SIGN_IN})
"""Edge kinds recomputed whole on every change: the Identity Center rule reads memberships and assignments, which
``touched`` does not compare (no engine question reads them), and it is cheap."""


def rebuild(base: AccessGraph, snapshot: Snapshot, *, change: Touched | None = None) -> tuple[AccessGraph, bool]:
    """The access graph of ``snapshot`` (the base graph's snapshot with a change applied), and whether the
    base graph was reused (False: built in full, because the change reaches beyond entities).

    Only the edges that touch an account the change touches are computed again (``scope``): an edge is a
    function of the facts of its source's, its target's and its item's accounts and of the organization, so
    every other edge of the base graph is the changed snapshot's too. Those are taken over, and the result
    shares the base graph's untouched adjacency (copy-on-write: only the nodes whose edges change get their
    own adjacency dicts). It has exactly the nodes and edges ``build_graph(snapshot)`` gives, the order of
    edges within a kind aside (tests/change/test_incremental.py compares them). ``base`` is read, never
    changed.
    """
    ctx = base.ctx
    if not ctx.admin_shortcut or not ctx.memoise:
        return build_graph(snapshot, admin_shortcut=ctx.admin_shortcut, memoise=ctx.memoise), False
    after, notes = materialise(snapshot)
    if change is None:
        change = touched(ctx.index.snapshot, after)
    if change is None:
        return build_graph(snapshot), False
    index = SnapshotIndex(after)
    accounts = scope_of(change, ctx.index, index)
    if accounts is None:
        return build_graph(snapshot), False
    found = change
    new = BuildContext(index, SnapshotEvaluator(index), scope=accounts,
                       # Every policy document whose record the change did not alter is taken parsed from the
                       # base build, with what the base build found about the actions it covers.
                       candidates=CandidateIndex(index, seed=ctx.candidates, stale=found.resources))
    new.seed_lazily(ctx, lambda key: not _stale(key, found), lambda arn: arn not in found.resources)
    # What the base build found per account, for the accounts outside the scope (the rules read it there too:
    # a caller in the scope may reach a target outside it).
    new.definite_admins = {p: a for p, a in ctx.definite_admins.items() if a not in accounts}
    new.creatable_admin = {a for a in ctx.creatable_admin if a not in accounts}
    for name in ("protected", "admin_policies"):
        table = ctx.cache.get(name)
        if table is not None:
            new.cache[name] = {a: v for a, v in table.items() if a not in accounts}
    names = ctx.cache.get("new_principal_names")
    if names is not None:
        # The stand-in names boundaries in the order a build meets them: keep the base build's names.
        new.cache["new_principal_names"] = dict(names)
    with without_cyclic_gc():
        return _Overlay(base, new, accounts, found).graph(notes), True


def scope_of(change: Touched, before: SnapshotIndex, after: SnapshotIndex) -> frozenset[str] | None:
    """The accounts of everything a change touches (None when one has no known account: build in full)."""
    out: set[str] = set()
    for arn in change.principals | change.resources:
        acct = after.account_of.get(arn) or before.account_of.get(arn) or account_of(arn)
        if not acct:
            return None
        out.add(acct)
    return frozenset(out)


class _Overlay:
    """The changed graph: the base graph's edges outside the scope, and the scope's edges computed again."""

    def __init__(self, base: AccessGraph, ctx: BuildContext, scope: frozenset[str], change: Touched) -> None:
        self.base = base
        self.ctx = ctx
        self.scope = scope
        self.change = change
        self._accounts: dict[str, str] = {}

    def account(self, node: str) -> str:
        hit = self._accounts.get(node)
        if hit is None:
            if node.startswith("admin:"):
                hit = node.split(":", 2)[1]
            else:
                hit = self.ctx.account(node) or self.base.ctx.account(node)
            self._accounts[node] = hit
        return hit

    def touches(self, edge: Edge) -> bool:
        """Whether an edge's source, target or item is of an account in the scope (or of a kind always redone)."""
        scope, known = self.scope, self._accounts
        for node in (edge.source, edge.target, edge.reason.target):
            if node is None:
                continue
            acct = known.get(node)
            if acct is None:
                acct = self.account(node)
            if acct in scope:
                return True
        return edge.kind in _ALWAYS

    def graph(self, notes: list[str]) -> AccessGraph:
        base, ctx, scope = self.base, self.ctx, self.scope
        old_ic = base.index.snapshot.identity_center
        new_ic = ctx.index.snapshot.identity_center
        ic_changed = old_ic is not new_ic and old_ic != new_ic
        old_nodes, _ = structure(base.index, scope, identity_center=False)
        new_nodes, members = structure(ctx.index, scope, identity_center=False)
        if ic_changed:
            old_nodes += structure(base.index, frozenset(), identity_center=True)[0]
            new_nodes += structure(ctx.index, frozenset(), identity_center=True)[0]
        added = [*members, *(e for e in run_rules(ctx) if self.touches(e))]
        removed: list[Edge] = []
        graph = AccessGraph(ctx)
        # The base's edges that touch the scope, from its index by account (no scan of every edge).
        by_account = edges_by_account(base)
        gone = {id(e) for acct in scope for e in by_account.get(acct, ())}
        gone.update(id(e) for kind in _ALWAYS for e in base.edges_by_kind.get(kind, ()))
        for kind, edges in base.edges_by_kind.items():
            kept: list[Edge] = []
            for e in edges:
                (removed if id(e) in gone else kept).append(e)
            graph.edges_by_kind[kind] = kept
        for e in added:
            graph.edges_by_kind.setdefault(e.kind, []).append(e)
        graph.edges_by_kind = {k: v for k, v in graph.edges_by_kind.items() if v}

        g = graph.g
        g.graph.update(base.g.graph)
        gt = _Cow(g, base.g, lambda n: {"kind": _guess_kind(n).value, "account": account_of(n) or ""})
        at = _Cow(graph.acts, base.acts, lambda n: {})

        # Structural nodes of the scope: those that went, and those that came or changed (first one wins, as
        # add_node does).
        structural = set(base.structural)
        structural.difference_update(n for n, _, _ in old_nodes)
        new_ids: set[str] = set()
        for node, nkind, attrs in new_nodes:
            if node in new_ids:
                continue
            new_ids.add(node)
            data = {"kind": nkind.value, "account": attrs.get("account") or account_of(node) or "",
                    **{k: v for k, v in attrs.items() if k != "account"}}
            if g._node.get(node) != data:
                g._node[node] = data
            gt.succ(node)
            gt.pred(node)
        structural |= new_ids
        graph.structural = structural

        pairs: dict[tuple[str, str], list[Edge]] = {}
        for e in removed:
            pairs.setdefault((e.source, e.target), [])
        for e in added:
            pairs.setdefault((e.source, e.target), []).append(e)
        ends: set[str] = set()
        for (u, v), new_edges in pairs.items():
            ends.update((u, v))
            old = base.g._succ.get(u, {}).get(v, {})
            datas = [d for d in old.values() if id(d["edge"]) not in gone]
            datas += [{"edge": e, "kind": e.kind.value} for e in new_edges]
            su, pv = gt.succ(u), gt.pred(v)
            if datas:
                keyed = dict(enumerate(datas))
                su[v] = keyed
                pv[u] = keyed
            else:
                su.pop(v, None)
                pv.pop(u, None)
            old_ways = base.acts._succ.get(u, {}).get(v)
            ways = [w for w in old_ways["ways"] if id(w) not in gone] if old_ways is not None else []
            ways += [e for e in new_edges if e.kind in ACTS_AS]
            if ways:
                at.succ(u)[v] = at.pred(v)[u] = {"ways": ways}
            elif old_ways is not None:
                at.succ(u).pop(v, None)
                at.pred(v).pop(u, None)
        # Every edge at a node of the scope was computed again, in the order a full build adds them, so its
        # neighbours are put in that order (path searches visit neighbours in it).
        outs: dict[str, dict[str, None]] = {}
        ins: dict[str, dict[str, None]] = {}
        for e in added:
            outs.setdefault(e.source, {})[e.target] = None
            ins.setdefault(e.target, {})[e.source] = None
        for node in ends:
            if self.account(node) in scope:
                gt.order(node, outs.get(node, {}), ins.get(node, {}))
                at.order(node, outs.get(node, {}), ins.get(node, {}))
        # A node exists because a record makes it or an edge names it: drop those nothing names any more.
        for node in ends | {n for n, _, _ in old_nodes}:
            gt.drop_if_bare(node, keep=node in structural)
            at.drop_if_bare(node, keep=False)
        g.__networkx_cache__.clear()
        graph.acts.__networkx_cache__.clear()
        self._notes(graph, notes)
        changed_pairs = list(pairs)
        # Through a weak reference: a closure over the graph held by the graph would be a reference cycle, and the
        # changed graph (tens of thousands of objects) would wait for the cyclic collector instead of being freed
        # when the judgement drops it.
        own = weakref.ref(graph)

        def derive(name: str, keep: Callable[[list[Edge]], bool]) -> nx.DiGraph | None:
            me = own()
            return _derived_subgraph(base, me, changed_pairs, name, keep) if me is not None else None

        graph.derive = derive
        graph.base = base
        graph.unchanged = lambda principal, resources: _unchanged(self.change, principal, resources)
        return graph

    def _notes(self, graph: AccessGraph, notes: list[str]) -> None:
        base, ctx = self.base, self.ctx
        graph.notes.extend(notes)
        graph.notes.extend(ctx.candidates.errors[: ctx.candidates.init_errors])
        # Trust and resource policies the rules parsed: the base build's for records the change did not alter
        # (a build over the scope alone does not read them all), and this build's.
        lazy = {k: m for k, m in base.ctx.candidates.failed.items()
                if k not in ctx.candidates.init_keys and not ctx.candidates.owner_stale(k)}
        lazy.update((k, m) for k, m in ctx.candidates.failed.items() if k not in ctx.candidates.init_keys)
        graph.notes.extend(lazy.values())
        ctx.skipped[:] = [*(s for s in base.ctx.skipped if not self._skip_touches(s)),
                          *(s for s in ctx.skipped if self._skip_touches(s))]

    def _skip_touches(self, skipped: Skipped) -> bool:
        parts = skipped.subject.split(" ")
        return self.account(parts[0]) in self.scope or self.account(parts[-1]) in self.scope


def edges_by_account(graph: AccessGraph) -> dict[str, list[Edge]]:
    """Account -> the graph's edges whose source, target or item (``reason.target``) is of it (an ``admin:`` node is
    of its account); computed once per graph and kept in its cache, so each change's overlay finds the edges it
    recomputes without reading every edge (``rebuild``)."""
    hit: dict[str, list[Edge]] | None = graph.cache.get("edges_by_account")
    if hit is not None:
        return hit
    out: dict[str, list[Edge]] = {}
    known: dict[str, str] = {}
    ctx = graph.ctx
    for edges in graph.edges_by_kind.values():
        for e in edges:
            seen: set[str] = set()
            for node in (e.source, e.target, e.reason.target):
                if node is None:
                    continue
                acct = known.get(node)
                if acct is None:
                    acct = known[node] = node.split(":", 2)[1] if node.startswith("admin:") else ctx.account(node)
                if acct not in seen:
                    seen.add(acct)
                    out.setdefault(acct, []).append(e)
    graph.cache["edges_by_account"] = out
    return out


def _derived_subgraph(base: AccessGraph, graph: AccessGraph, pairs: list[tuple[str, str]], name: str,
                      keep: Callable[[list[Edge]], bool]) -> nx.DiGraph | None:
    """``graph.acts_subgraph(name, keep)`` from the base graph's (None when the base has not computed it): the base's
    pairs, with those the change altered read again from ``graph.acts``, in the order a build of it from
    ``graph.acts`` gives (successors in ``acts``' order, predecessors in the order of ``acts``' nodes). The base's
    is shared copy-on-write, never changed."""
    shared: nx.DiGraph | None = base.cache.get(name)
    if shared is None:
        return None
    out = nx.DiGraph()
    cow = _Cow(out, shared, lambda n: {})
    acts = graph.acts._succ
    ends: set[str] = set()
    for u, v in pairs:
        ends.update((u, v))
        data = acts.get(u, {}).get(v)
        now = data is not None and keep(data["ways"])
        had = v in shared._succ.get(u, {})
        if now and not had:
            cow.succ(u)[v] = cow.pred(v)[u] = {}
        elif had and not now:
            cow.succ(u).pop(v, None)
            cow.pred(v).pop(u, None)
    if ends:
        # The overlay put the neighbours of these nodes in a new order (and may have moved their pairs): theirs here
        # follow it.
        position = {n: i for i, n in enumerate(acts)}
        for n in ends:
            if n not in out._node:
                continue
            mine = cow.succ(n)
            out._succ[n] = {m: mine[m] for m in acts.get(n, {}) if m in mine}
            out._pred[n] = dict(sorted(cow.pred(n).items(), key=lambda kv: position[kv[0]]))
        for n in ends:
            cow.drop_if_bare(n, keep=False)
    return out


class _Cow:
    """A networkx graph's node and adjacency tables, shared with another graph's and copied per node on first write
    (the other graph is never changed)."""

    def __init__(self, graph: nx.DiGraph, shared: nx.DiGraph, new_node: Callable[[str], dict[str, Any]]) -> None:
        graph._node = dict(shared._node)
        graph._succ = dict(shared._succ)
        graph._pred = dict(shared._pred)
        self.g = graph
        self.new_node = new_node
        self.own_succ: set[str] = set()
        self.own_pred: set[str] = set()

    def succ(self, u: str) -> dict[str, Any]:
        g = self.g
        if u not in self.own_succ:
            self.own_succ.add(u)
            g._succ[u] = dict(g._succ.get(u, {}))
            if u not in g._node:
                g._node[u] = self.new_node(u)
                g._pred[u] = {}  # a node new to the graph needs both tables
        out: dict[str, Any] = g._succ[u]
        return out

    def pred(self, v: str) -> dict[str, Any]:
        g = self.g
        if v not in self.own_pred:
            self.own_pred.add(v)
            g._pred[v] = dict(g._pred.get(v, {}))
            if v not in g._node:
                g._node[v] = self.new_node(v)
                g._succ[v] = {}
        out: dict[str, Any] = g._pred[v]
        return out

    def order(self, node: str, outs: dict[str, None], ins: dict[str, None]) -> None:
        """Put ``node``'s neighbours in the given orders (those it owns; others are the shared graph's, unchanged)."""
        if node in self.own_succ:
            self.g._succ[node] = _ordered(self.g._succ[node], outs)
        if node in self.own_pred:
            self.g._pred[node] = _ordered(self.g._pred[node], ins)

    def drop_if_bare(self, node: str, *, keep: bool) -> None:
        g = self.g
        if not keep and node in g._node and not g._succ.get(node) and not g._pred.get(node):
            del g._node[node]
            g._succ.pop(node, None)
            g._pred.pop(node, None)


def _ordered(neighbours: dict[str, Any], order: dict[str, None]) -> dict[str, Any]:
    """``neighbours`` with the keys of ``order`` first, in that order (any others after, as they were)."""
    out = {n: neighbours[n] for n in order if n in neighbours}
    out.update((n, v) for n, v in neighbours.items() if n not in out)
    return out
