"""What who-can works out about a graph whatever the resource asked about, kept once per graph.

``who_can_one`` asks, for every resource and action, who controls each principal whose permissions someone can
change (the capability edges walked backwards), the escalation options for that principal, the policies of each
group a user can be added to and whether they could allow the action, and the paths it draws. None of these
reads the resource: they are facts of the graph. ``iamgraph report``'s sensitive-data section asks 58 questions
of one graph, the API asks many of its long-lived base graph, so they are worked out once and shared by every
question asked of the same graph (the who-can command, the API, the report, ``sensitive``, ``diff``).

Kept in ``graph.cache`` (a graph is never changed once built: a change is a new graph over it, with its own
cache). Each table is bounded, so a long-lived graph asked about many subjects does not grow without end; the
oldest entries go first. A value is made outside the lock: two threads asking at once may both make it (the same
value), one keeps it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

from iamgraph.eval.types import NamedPolicy
from iamgraph.graph import AccessGraph, Edge, EdgeKind
from iamgraph.graph.candidates import action_matches
from iamgraph.query.changes import modifiers
from iamgraph.query.changes import options as change_options
from iamgraph.query.paths import Path, best_way, make_path, reverse_reach

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_KEY = "who_can_kept"

MAX_REACH_NODES = 2_000_000
"""Nodes held by all kept reverse walks together (an admin's walk on a large organization holds thousands)."""
MAX_PATHS = 100_000
MAX_SMALL = 200_000
"""Entries of the small tables (options per principal, a group's policies, may-allow per group and action)."""


class _Table(Generic[K, V]):
    """A bounded table: ``get(key, make)`` gives the kept value or keeps ``make()``'s. ``weight`` says how much
    of the bound a value takes (1 unless given)."""

    __slots__ = ("_data", "_lock", "_max", "_total", "_weight")

    def __init__(self, max_weight: int, weight: Callable[[V], int] | None = None) -> None:
        self._data: dict[K, tuple[V, int]] = {}
        self._lock = threading.Lock()
        self._max = max_weight
        self._total = 0
        self._weight = weight

    def get(self, key: K, make: Callable[[], V]) -> V:
        hit = self._data.get(key)
        if hit is not None:
            return hit[0]
        value = make()
        w = self._weight(value) if self._weight is not None else 1
        with self._lock:
            if key in self._data:
                return self._data[key][0]
            while self._data and self._total + w > self._max:
                # Oldest first (a dict keeps insertion order).
                self._total -= self._data.pop(next(iter(self._data)))[1]
            self._data[key] = (value, w)
            self._total += w
        return value


class Kept:
    """The tables of one graph."""

    __slots__ = ("group_policies", "may_allow", "options", "paths", "reach")

    def __init__(self) -> None:
        self.reach: _Table[frozenset[str], dict[str, str | None]] = _Table(MAX_REACH_NODES, len)
        self.paths: _Table[tuple[str, ...], Path] = _Table(MAX_PATHS)
        self.options: _Table[str, list[tuple[tuple[Edge, ...], dict[str, Any]]]] = _Table(MAX_SMALL)
        self.group_policies: _Table[str, tuple[NamedPolicy, ...]] = _Table(MAX_SMALL)
        self.may_allow: _Table[tuple[str, str], bool] = _Table(MAX_SMALL)


def kept(graph: AccessGraph) -> Kept:
    """This graph's tables (made on first use; ``dict.setdefault`` keeps one when two threads race)."""
    hit = graph.cache.get(_KEY)
    if hit is None:
        hit = graph.cache.setdefault(_KEY, Kept())
    return hit  # type: ignore[no-any-return]


def controllers(graph: AccessGraph, sources: frozenset[str]) -> dict[str, str | None]:
    """``reverse_reach`` over the capability edges: every node that can act as one of ``sources`` -> the next node
    toward the nearest. Shared: read it, never change it."""
    return kept(graph).reach.get(sources, lambda: reverse_reach(graph, sources))


def path(graph: AccessGraph, nodes: Iterable[str]) -> Path:
    """``paths.path_of`` (the best way of each hop), kept per node sequence."""
    seq = tuple(nodes)

    def make() -> Path:
        hops = tuple(best_way(graph.acts.edges[a, b]["ways"]) for a, b in itertools.pairwise(seq))
        return make_path(seq, hops)

    return kept(graph).paths.get(seq, make)


def escalation_options(graph: AccessGraph, target: str) -> list[tuple[tuple[Edge, ...], dict[str, Any]]]:
    """The changes worth asking the engine about for ``target`` (``changes.options`` over every edge that changes
    its permissions), each as (one edge of each group, the what-if arguments). Shared: never change them."""

    def make() -> list[tuple[tuple[Edge, ...], dict[str, Any]]]:
        by_kind: dict[EdgeKind, list[Edge]] = modifiers(graph).get(target, {})
        return [(tuple(g[0] for g in groups), kwargs) for groups, kwargs in change_options(graph, by_kind)]

    return kept(graph).options.get(target, make)


def group_policies(graph: AccessGraph, group: str) -> tuple[NamedPolicy, ...]:
    """``BuildContext.group_policies``, kept per group."""
    return kept(graph).group_policies.get(group, lambda: graph.ctx.group_policies(group))


def may_allow(graph: AccessGraph, group: str, action: str) -> bool:
    """Whether an Allow statement of the group's policies could cover the action (before resources and
    conditions): only then can adding a user to the group give it the action."""
    return kept(graph).may_allow.get((group, action), lambda: _may_allow(group_policies(graph, group), action))


def _may_allow(policies: tuple[NamedPolicy, ...], action: str) -> bool:
    for np in policies:
        for st in np.policy.statements:
            if not st.is_allow:
                continue
            if st.action is not None and any(action_matches(p, action) for p in st.action):
                return True
            if st.not_action is not None and not any(action_matches(p, action) for p in st.not_action):
                return True
    return False
