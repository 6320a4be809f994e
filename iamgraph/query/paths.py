"""Paths over the capability edges: shortest, alternatives, and the conditions a path needs.

A path holds only when every hop does, so its conditions are the conjunction of its edges'.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import networkx as nx

from iamgraph.graph import AccessGraph, Edge
from iamgraph.graph.types import Conditions, and_conditions


@dataclass(frozen=True, slots=True, kw_only=True)
class Path:
    """A chain of hops from ``nodes[0]`` to ``nodes[-1]``; ``hops[i]`` links ``nodes[i]`` to ``nodes[i+1]``."""

    nodes: tuple[str, ...]
    hops: tuple[Edge, ...]
    conditions: Conditions = ()
    assumptions: tuple[str, ...] = ()

    @property
    def length(self) -> int:
        return len(self.hops)

    @property
    def definite(self) -> bool:
        return not self.conditions and not self.assumptions

    def rank(self) -> tuple[int, int, int]:
        """Shorter first, then fewer alternative condition sets, then fewer assumptions."""
        return (self.length, sum(len(c) for c in self.conditions), len(self.assumptions))


def best_way(ways: Iterable[Edge]) -> Edge:
    return min(ways, key=lambda e: (len(e.assumptions), len(e.conditions), sum(map(len, e.conditions))))


def path_of(graph: AccessGraph, nodes: Iterable[str]) -> Path:
    seq = tuple(nodes)
    hops = tuple(best_way(graph.acts.edges[a, b]["ways"]) for a, b in itertools.pairwise(seq))
    return make_path(seq, hops)


def make_path(nodes: tuple[str, ...], hops: tuple[Edge, ...]) -> Path:
    conds: Conditions = ()
    assumptions: list[str] = []
    for e in hops:
        conds = and_conditions(conds, e.conditions)
        assumptions.extend(a for a in e.assumptions if a not in assumptions)
    return Path(nodes=nodes, hops=hops, conditions=conds, assumptions=tuple(assumptions))


def join(first: Path, second: Path) -> Path:
    """``first`` then ``second`` (which starts where ``first`` ends)."""
    return make_path(first.nodes + second.nodes[1:], first.hops + second.hops)


def extend(path: Path, edge: Edge) -> Path:
    return make_path((*path.nodes, edge.target), (*path.hops, edge))


def single(node: str) -> Path:
    return Path(nodes=(node,), hops=())


def definite_acts(graph: AccessGraph) -> nx.DiGraph:
    """The capability edges that need no condition and no assumption (one way between the pair is enough)."""
    return graph.acts_subgraph("definite_acts", _definite)


def _definite(ways: list[Edge]) -> bool:
    return any(not w.conditions and not w.assumptions for w in ways)


def reach(graph: AccessGraph, source: str, *, over: nx.DiGraph | None = None) -> dict[str, str | None]:
    """Every node ``source`` can act as (BFS over capability edges, or over ``over``): node -> predecessor."""
    acts = graph.acts if over is None else over
    parent: dict[str, str | None] = {source: None}
    if source not in acts:
        return parent
    queue = deque([source])
    succ = acts.succ
    while queue:
        n = queue.popleft()
        for m in succ[n]:
            if m not in parent:
                parent[m] = n
                queue.append(m)
    return parent


def reverse_reach(graph: AccessGraph, targets: Iterable[str], *,
                  over: nx.DiGraph | None = None) -> dict[str, str | None]:
    """Every node that can act as one of ``targets``: node -> next node toward the nearest target."""
    nxt: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for t in targets:
        if t not in nxt:
            nxt[t] = None
            queue.append(t)
    pred = (graph.acts if over is None else over).pred
    while queue:
        n = queue.popleft()
        if n not in pred:
            continue
        for m in pred[n]:
            if m not in nxt:
                nxt[m] = n
                queue.append(m)
    return nxt


def routes(graph: AccessGraph, targets: dict[str, bool]) -> dict[str, tuple[str, ...]]:
    """For every node that can act as one of ``targets`` (target -> whether its own access needs no
    condition): the nodes from it to a target. A route over unconditional edges to an unconditional
    target wins over a shorter conditional one, so a verdict never depends on which path is shortest.
    The one place who-can and SoD choose a principal's route."""
    nxt = reverse_reach(graph, targets)
    out = {n: walk_forward(nxt, n) for n in nxt}
    dnxt = reverse_reach(graph, [t for t, sure in targets.items() if sure], over=definite_acts(graph))
    out.update((n, walk_forward(dnxt, n)) for n in dnxt)
    return out


def walk_back(parent: dict[str, str | None], node: str) -> tuple[str, ...]:
    out = [node]
    while (p := parent.get(out[-1])) is not None:
        out.append(p)
    return tuple(reversed(out))


def walk_forward(nxt: dict[str, str | None], node: str) -> tuple[str, ...]:
    out = [node]
    while (n := nxt.get(out[-1])) is not None:
        out.append(n)
    return tuple(out)


def simple_paths(graph: AccessGraph, source: str, targets: Iterable[str], k: int) -> Iterator[Path]:
    """Up to ``k`` loop-free paths from ``source`` to any of ``targets``, shortest first."""
    if k <= 0 or source not in graph.acts:
        return
    goals = [t for t in targets if t in graph.acts]
    if not goals:
        return
    # Only nodes on some source->goal path matter; copying that slice keeps alternatives cheap.
    between = set(reach(graph, source)) & set(reverse_reach(graph, goals))
    if source not in between:
        return
    sink = "\0sink"
    view = nx.DiGraph(graph.acts.subgraph(between))
    for t in goals:
        if t in between:
            view.add_edge(t, sink)
    target = sink
    try:
        for nodes in itertools.islice(nx.shortest_simple_paths(view, source, target), k):
            seq = tuple(n for n in nodes if n != sink)
            yield path_of(graph, seq)
    except nx.NetworkXNoPath:
        return
