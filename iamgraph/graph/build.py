"""Build the access graph from a snapshot: nodes from raw facts, capability edges from the rules.

Nothing derived is stored in the snapshot; the graph is rebuilt from it (so an engine fix applies
to old snapshots).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import networkx as nx

from iamgraph.eval import SnapshotEvaluator
from iamgraph.gcpause import without_cyclic_gc
from iamgraph.graph.candidates import CandidateIndex
from iamgraph.graph.context import BuildContext, Skipped
from iamgraph.graph.rules import RULES
from iamgraph.graph.rules.admin import admin_node
from iamgraph.graph.rules.assume import PUBLIC
from iamgraph.graph.rules.identity_center import materialise, sso_group_node, sso_user_node
from iamgraph.graph.types import ACTS_AS, Edge, EdgeKind, NodeKind, Reason
from iamgraph.model.arn import account_of
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Snapshot

PRINCIPAL_KINDS = frozenset(
    {
        NodeKind.USER,
        NodeKind.ROLE,
        NodeKind.SSO_USER,
        NodeKind.SSO_GROUP,
        NodeKind.EXTERNAL_ACCOUNT,
        NodeKind.PUBLIC,
        NodeKind.SERVICE,
        NodeKind.SAML_PROVIDER,
        NodeKind.OIDC_PROVIDER,
        NodeKind.FEDERATED,
    }
)
"""Nodes a who-can answer can name (groups are not principals: their members are)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildReport:
    nodes: int
    edges: int
    capability_edges: int
    engine_calls: int
    per_rule: dict[str, int]
    skipped: tuple[Skipped, ...]
    notes: tuple[str, ...]


class AccessGraph:
    """The graph plus the context it was built with (the query layer evaluates through the same engine).

    ``g``: every node and edge (a ``MultiDiGraph``; edge data ``edge`` holds the ``Edge``).
    ``acts``: principal-to-principal ``ACTS_AS`` edges only, one ``DiGraph`` edge per pair holding
    the list of ways (``ways``), for fast path searches.
    """

    def __init__(self, ctx: BuildContext) -> None:
        self.ctx = ctx
        self.g: nx.MultiDiGraph = nx.MultiDiGraph()
        self.acts: nx.DiGraph = nx.DiGraph()
        self.edges_by_kind: dict[EdgeKind, list[Edge]] = {}
        self.notes: list[str] = []
        self.cache: dict[str, Any] = {}
        """Derived lookups the query layer computes once per graph."""
        self.structural: set[str] = set()
        """Nodes the snapshot's records make (accounts, principals, groups, resources, policies, providers,
        Identity Center); the others exist because an edge names them (``iamgraph.graph.incremental``)."""
        self.base: AccessGraph | None = None
        """For a graph built over a base graph (``iamgraph.graph.incremental``): that graph."""
        self.unchanged: Callable[[str, Iterable[str]], bool] = lambda principal, resources: False
        """With ``base``: whether a principal's policies and these resources' facts are the base's (the change
        touched none of them), so an answer about them computed over ``base`` holds here too."""
        self.derive: Callable[[str, Callable[[list[Edge]], bool]], nx.DiGraph | None] | None = None
        """For a graph built over a base graph (``iamgraph.graph.incremental``): ``acts_subgraph`` derived from the
        base graph's, when it has one, by the capability pairs the change altered."""

    @property
    def index(self) -> SnapshotIndex:
        return self.ctx.index

    def node_kind(self, node: str) -> NodeKind:
        return NodeKind(self.g.nodes[node]["kind"]) if node in self.g else _guess_kind(node)

    def add_node(self, node: str, kind: NodeKind, **attrs: Any) -> None:
        if node not in self.g:
            self.g.add_node(node, kind=kind.value, account=attrs.pop("account", None) or account_of(node) or "",
                            **attrs)

    def add_edge(self, edge: Edge) -> None:
        for node in (edge.source, edge.target):
            if node not in self.g:
                self.add_node(node, _guess_kind(node))
        self.g.add_edge(edge.source, edge.target, key=None, edge=edge, kind=edge.kind.value)
        self.edges_by_kind.setdefault(edge.kind, []).append(edge)
        if edge.kind in ACTS_AS:
            if self.acts.has_edge(edge.source, edge.target):
                self.acts.edges[edge.source, edge.target]["ways"].append(edge)
            else:
                self.acts.add_edge(edge.source, edge.target, ways=[edge])

    def acts_subgraph(self, name: str, keep: Callable[[list[Edge]], bool]) -> nx.DiGraph:
        """The capability pairs whose ways ``keep`` accepts, as a ``DiGraph`` in ``acts``' order (kept in ``cache``
        under ``name``; the same ``keep`` for the same name). A graph built over a base graph derives it from the
        base's: only the pairs the change altered are read again."""
        hit: nx.DiGraph | None = self.cache.get(name)
        if hit is None:
            hit = self.derive(name, keep) if self.derive is not None else None
            if hit is None:
                hit = nx.DiGraph()
                hit.add_edges_from((a, b) for a, b, ways in self.acts.edges(data="ways") if keep(ways))
            self.cache[name] = hit
        return hit

    def edges(self, kinds: Iterable[EdgeKind] | None = None) -> Iterator[Edge]:
        for kind, edges in self.edges_by_kind.items():
            if kinds is None or kind in kinds:
                yield from edges

    def principals(self) -> list[str]:
        return [n for n, data in self.g.nodes(data=True) if data["kind"] in PRINCIPAL_KINDS]

    def admins(self) -> dict[str, Edge]:
        """Principal -> the edge saying it is directly admin-equivalent."""
        return {e.source: e for e in self.edges_by_kind.get(EdgeKind.ADMIN, [])}


def _guess_kind(node: str) -> NodeKind:
    if node == PUBLIC:
        return NodeKind.PUBLIC
    if node.startswith("admin:"):
        return NodeKind.ACCOUNT
    if node.startswith("new-principal:"):
        return NodeKind.NEW_PRINCIPAL
    if node.startswith("identitycenter:"):
        return NodeKind.SSO_USER if ":user/" in node else NodeKind.SSO_GROUP
    if node.endswith(":root"):
        return NodeKind.EXTERNAL_ACCOUNT
    if ":saml-provider/" in node:
        return NodeKind.SAML_PROVIDER
    if ":oidc-provider/" in node:
        return NodeKind.OIDC_PROVIDER
    if node.endswith(".amazonaws.com") or node.endswith(".amazonaws.com.cn"):
        return NodeKind.SERVICE
    if not node.startswith("arn:"):
        return NodeKind.FEDERATED
    if ":role/" in node:
        return NodeKind.ROLE
    if ":user/" in node:
        return NodeKind.USER
    if ":group/" in node:
        return NodeKind.GROUP
    if ":policy/" in node:
        return NodeKind.POLICY
    return NodeKind.RESOURCE


def build_graph(
    snapshot: Snapshot,
    *,
    evaluator_factory: Any = None,
    rules: Iterable[str] | None = None,
    admin_shortcut: bool = True,
    memoise: bool = True,
    prepare: Callable[[BuildContext], None] | None = None,
    candidates: Callable[[SnapshotIndex], CandidateIndex] | None = None,
) -> AccessGraph:
    """Build the access graph. ``rules`` limits the edge rules run (by name; all by default).

    ``admin_shortcut``: a definite admin's per-target edges in its account are replaced by the
    account admin node's ``AdminControl`` edges (same reach, far fewer engine calls). Tests of
    individual techniques turn it off.

    ``memoise``: share one engine decision among requests whose engine inputs are provably
    identical (same policy set, action, resource and every context value a policy reads; see
    ``BuildContext.check``). Off gives the same edges, with one engine call per request.

    ``prepare``: called with the build context before any rule runs (``iamgraph.graph.incremental``
    seeds it with the decisions of a build before a change). ``candidates``: makes the candidate index
    (the same module seeds it with the parsed policies of that build).
    """
    with without_cyclic_gc():
        return _build(snapshot, evaluator_factory, rules, admin_shortcut, memoise, prepare, candidates)


def _build(snapshot: Snapshot, evaluator_factory: Any, rules: Iterable[str] | None, admin_shortcut: bool,
           memoise: bool, prepare: Callable[[BuildContext], None] | None,
           candidates: Callable[[SnapshotIndex], CandidateIndex] | None) -> AccessGraph:
    snapshot, notes = materialise(snapshot)
    index = SnapshotIndex(snapshot)
    ev = evaluator_factory(index) if evaluator_factory is not None else SnapshotEvaluator(index)
    ctx = BuildContext(index, ev, admin_shortcut=admin_shortcut, memoise=memoise,
                       candidates=candidates(index) if candidates is not None else None)
    if prepare is not None:
        prepare(ctx)
    graph = AccessGraph(ctx)
    graph.notes.extend(notes)
    nodes, edges = structure(index)
    for node, kind, attrs in nodes:
        graph.add_node(node, kind, **attrs)
        graph.structural.add(node)
    for edge in edges:
        graph.add_edge(edge)
    for edge in run_rules(ctx, rules):
        graph.add_edge(edge)
    graph.notes.extend(ctx.candidates.errors)
    return graph


def run_rules(ctx: BuildContext, rules: Iterable[str] | None = None) -> Iterator[Edge]:
    """Every edge of the registry's rules (those named in ``rules``; all by default), in registry order."""
    wanted = set(rules) if rules is not None else None
    for rule_cls in RULES:
        if wanted is not None and rule_cls.name not in wanted:
            continue
        yield from rule_cls().edges(ctx)


StructureNode = tuple[str, NodeKind, dict[str, Any]]


def structure(index: SnapshotIndex, accounts: frozenset[str] | None = None,
              identity_center: bool = True) -> tuple[list[StructureNode], list[Edge]]:
    """The nodes the snapshot's records make, with their attributes, and the group memberships: of every account
    (``accounts`` None) or of those accounts only (their customer managed policies included); AWS managed
    policies when ``accounts`` is None, Identity Center's when ``identity_center``."""
    snap = index.snapshot
    nodes: list[StructureNode] = []
    edges: list[Edge] = []
    for acct in snap.accounts:
        aid = acct.account_id
        if accounts is not None and aid not in accounts:
            continue
        nodes.append((f"account:{aid}", NodeKind.ACCOUNT, {"account": aid, "name": acct.name or acct.alias or aid}))
        nodes.append((admin_node(aid), NodeKind.ACCOUNT, {"account": aid, "name": f"full access in {aid}"}))
        nodes.extend((u.arn, NodeKind.USER, {"account": aid, "name": u.name}) for u in acct.users)
        nodes.extend((gr.arn, NodeKind.GROUP, {"account": aid, "name": gr.name}) for gr in acct.groups)
        nodes.extend((r.arn, NodeKind.ROLE, {"account": aid, "name": r.name}) for r in acct.roles)
        nodes.extend((res.arn, NodeKind.RESOURCE, {"account": aid, "name": res.name or res.arn,
                                                   "resource_type": res.type}) for res in acct.resources)
        nodes.extend((p.arn, NodeKind.SAML_PROVIDER, {"account": aid}) for p in acct.saml_providers)
        nodes.extend((o.arn, NodeKind.OIDC_PROVIDER, {"account": aid}) for o in acct.oidc_providers)
        for u in acct.users:
            for gr in index.groups_of(u):
                edges.append(Edge(kind=EdgeKind.MEMBER_OF, source=u.arn, target=gr.arn, reason=Reason(via=())))
    for arn, pol in index.policies.items():
        if accounts is None or account_of(arn) in accounts:
            nodes.append((arn, NodeKind.POLICY, {"name": pol.name}))
    ic = snap.identity_center
    if ic is not None and identity_center:
        store = ic.identity_store_id
        nodes.extend((sso_user_node(store, su.user_id), NodeKind.SSO_USER, {"name": su.user_name}) for su in ic.users)
        nodes.extend((sso_group_node(store, sg.group_id), NodeKind.SSO_GROUP, {"name": sg.display_name})
                     for sg in ic.groups)
        nodes.extend((ps.arn, NodeKind.PERMISSION_SET, {"name": ps.name}) for ps in ic.permission_sets)
    return nodes, edges


def build_report(graph: AccessGraph) -> BuildReport:
    return BuildReport(
        nodes=graph.g.number_of_nodes(),
        edges=graph.g.number_of_edges(),
        capability_edges=graph.acts.number_of_edges(),
        engine_calls=graph.ctx.stats.engine_calls,
        per_rule=dict(graph.ctx.stats.per_rule),
        skipped=tuple(graph.ctx.skipped),
        notes=tuple(graph.notes),
    )
