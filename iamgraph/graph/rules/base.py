"""The edge-rule interface and the helpers rules share. A rule reads the snapshot and the engine, never AWS.

The registry (which rules run, in which order) is ``RULES`` in ``iamgraph/graph/rules/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

from iamgraph.eval.types import Decision, StatementRef
from iamgraph.graph.context import BuildContext
from iamgraph.graph.types import Conditions, Edge, EdgeKind, Reason, and_conditions
from iamgraph.snapshot.model import Compute


class EdgeRule(ABC):
    """One family of capability edges. ``edges`` must ask the engine only about indexed candidates."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[EdgeKind, ...]]

    @abstractmethod
    def edges(self, ctx: BuildContext) -> Iterator[Edge]:
        """Every edge of this family in the snapshot."""


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


def compute_roles(ctx: BuildContext, item: Compute) -> list[str]:
    """The roles existing compute runs as (the pass-role rules skip them, the takeover rules end at them)."""
    if item.kind == "ecs_service":
        # The service's tasks run as their task definition's role (a service's own roleArn is the
        # load balancer's role); the item's role_arn is used when the task definition is not held.
        taskdef = ctx.index.compute.get(str(item.attributes.get("task_definition") or ""))
        if taskdef is not None and taskdef.role_arn:
            node = ctx.resolve_principal(taskdef.role_arn)
            return [node] if node else []
    if item.role_arn:
        node = ctx.resolve_principal(item.role_arn)
        return [node] if node else []
    if item.instance_profile_arn:
        by_profile: dict[str, list[str]] | None = ctx.cache.get("profile_roles")
        if by_profile is None:
            # Roles by instance profile, in the index's order (as a scan of every role would list them).
            by_profile = {}
            for r in ctx.index.roles.values():
                for profile in dict.fromkeys(r.instance_profiles):
                    by_profile.setdefault(profile, []).append(r.arn)
            ctx.cache["profile_roles"] = by_profile
        return list(by_profile.get(item.instance_profile_arn, ()))
    return []
