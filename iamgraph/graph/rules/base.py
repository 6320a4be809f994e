"""The edge-rule interface and registry. A rule reads the snapshot and the engine, never AWS."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

from iamgraph.eval.types import Decision, StatementRef
from iamgraph.graph.context import BuildContext
from iamgraph.graph.types import Conditions, Edge, EdgeKind, Reason, and_conditions

RULES: list[type[EdgeRule]] = []


class EdgeRule(ABC):
    """One family of capability edges. ``edges`` must ask the engine only about indexed candidates."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[EdgeKind, ...]]

    @abstractmethod
    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        """Every edge of this family in the snapshot."""


def register(cls: type[EdgeRule]) -> type[EdgeRule]:
    RULES.append(cls)
    return cls


def combine(*decisions: Decision) -> tuple[tuple[StatementRef, ...], Conditions]:
    """The statements behind several decisions, and the conjunction of their conditions."""
    refs: list[StatementRef] = []
    conds: Conditions = ()
    for d in decisions:
        for r in d.reasons:
            if r not in refs:
                refs.append(r)
        conds = and_conditions(conds, d.conditions)
    return tuple(refs), conds


def make_edge(
    kind: EdgeKind,
    source: str,
    target: str,
    reason: Reason,
    *decisions: Decision,
    assumptions: tuple[str, ...] = (),
) -> Edge:
    refs, conds = combine(*decisions)
    return Edge(
        kind=kind,
        source=source,
        target=target,
        reason=reason,
        statements=refs,
        conditions=conds,
        assumptions=assumptions,
    )


def fewest_conditions(edges: list[Edge]) -> Edge | None:
    """Of several ways to make the same hop, the one that needs least (definite beats conditional)."""
    if not edges:
        return None
    return min(edges, key=lambda e: (len(e.assumptions), len(e.conditions), sum(map(len, e.conditions))))
