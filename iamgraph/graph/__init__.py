"""The access graph: principals, resources and the capability edges between them (networkx)."""

from __future__ import annotations

from iamgraph.graph.build import AccessGraph, BuildReport, build_graph, build_report
from iamgraph.graph.types import ACTS_AS, MODIFIES, Edge, EdgeKind, NodeKind, Reason

__all__ = [
    "ACTS_AS",
    "MODIFIES",
    "AccessGraph",
    "BuildReport",
    "Edge",
    "EdgeKind",
    "NodeKind",
    "Reason",
    "build_graph",
    "build_report",
]
