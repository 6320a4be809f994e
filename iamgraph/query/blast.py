"""Blast radius of a compromised principal or access key, and the few edges that contain it.

The minimal cut is a minimum s-t edge cut (max-flow) from the principal to a sink joined to every
*critical* node it reaches: admin-equivalent principals and holders of sensitive access. Removing
those capability edges (deleting a trust statement, a PassRole grant...) cuts all of them off.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from iamgraph.errors import NotFoundError
from iamgraph.graph import AccessGraph, Edge, EdgeKind
from iamgraph.graph.build import PRINCIPAL_KINDS
from iamgraph.query.incomplete import Incomplete, all_unknown
from iamgraph.query.paths import Path, path_of, reach, walk_back
from iamgraph.query.privesc import Escalation, admin_accounts
from iamgraph.query.sensitive import SensitiveAccess, sensitive, sensitive_incomplete


@dataclass(frozen=True, slots=True, kw_only=True)
class BlastRadius:
    principal: str
    access_key_id: str | None
    reachable: tuple[tuple[str, Path], ...]
    """Every principal it can act as, with the shortest path."""
    admin: tuple[Escalation, ...]
    """Accounts in which it is admin-equivalent, and how."""
    sensitive: tuple[SensitiveAccess, ...]
    resource_takeovers: tuple[Edge, ...]
    """Resource policies it (or what it reaches) can rewrite."""
    cut: tuple[Edge, ...]
    """A minimum set of capability edges whose removal cuts off every critical node reached."""
    cut_note: str | None = None
    incomplete: tuple[Incomplete, ...] = ()
    """Resources whose policy is unknown (any may be reached or rewritten) and tagged resources of types
    ``sensitive`` does not analyse (``query.incomplete``)."""


def resolve_principal(graph: AccessGraph, principal: str | None, access_key_id: str | None) -> str:
    if access_key_id:
        user = graph.index.access_keys.get(access_key_id)
        if user is None:
            raise NotFoundError(f"no user in the snapshot holds access key {access_key_id}")
        return user
    if not principal:
        raise NotFoundError("give --principal or --access-key-id")
    if principal not in graph.g:
        raise NotFoundError(f"the snapshot has no principal {principal}")
    return principal


def blast_radius(
    graph: AccessGraph, principal: str | None = None, *, access_key_id: str | None = None, tag: str | None = None
) -> BlastRadius:
    start = resolve_principal(graph, principal, access_key_id)
    parent = reach(graph, start)
    reachable = tuple(
        (n, path_of(graph, walk_back(parent, n))) for n in parent
        if n != start and graph.node_kind(n) in PRINCIPAL_KINDS
    )
    admin = tuple(admin_accounts(graph, start).values())
    controlled = set(parent)
    sens = tuple(sensitive(graph, tag, principals=controlled))
    takeovers = tuple(
        e for e in graph.edges((EdgeKind.RESOURCE_POLICY_TAKEOVER,)) if e.source in controlled
    )
    critical = {e.admin for e in admin} | {s.access.holder.principal for s in sens}
    critical |= {e.source for e in takeovers}
    cut, note = minimal_cut(graph, start, critical & controlled)
    gaps = {x.resource: x for x in (*sensitive_incomplete(graph, tag), *all_unknown(graph))}
    return BlastRadius(principal=start, access_key_id=access_key_id, reachable=reachable, admin=admin,
                       sensitive=sens, resource_takeovers=takeovers, cut=cut, cut_note=note,
                       incomplete=tuple(gaps[a] for a in sorted(gaps)))


def minimal_cut(graph: AccessGraph, source: str, critical: set[str]) -> tuple[tuple[Edge, ...], str | None]:
    if not critical:
        return (), "nothing critical is reached"
    if source in critical:
        return (), "the principal itself holds critical access: disable it (or its keys) rather than edges"
    nodes = set(reach(graph, source))
    h = nx.DiGraph()
    for u, v in graph.acts.subgraph(nodes).edges():
        h.add_edge(u, v, capacity=1)
    sink = "\0critical"
    for c in critical:
        h.add_edge(c, sink)  # no capacity attribute: infinite, so only capability edges are cut
    _, (side, _) = nx.minimum_cut(h, source, sink)
    cut = []
    for u in side:
        for v in h.successors(u):
            if v not in side and v != sink:
                # Every way of making this hop has to go for the hop to be cut.
                cut.extend(graph.acts.edges[u, v]["ways"])
    return tuple(cut), None


__all__ = ["BlastRadius", "blast_radius", "minimal_cut", "resolve_principal"]
