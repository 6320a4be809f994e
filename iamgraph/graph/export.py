"""Export the graph as GraphML, JSON (node-link) or Graphviz DOT. Files are written atomically."""

from __future__ import annotations

import io
import json
from enum import StrEnum
from typing import Any

import networkx as nx

from iamgraph.graph.build import AccessGraph
from iamgraph.graph.types import Edge


class ExportFormat(StrEnum):
    GRAPHML = "graphml"
    JSON = "json"
    DOT = "dot"


def edge_data(edge: Edge) -> dict[str, Any]:
    return {
        "kind": edge.kind.value,
        "via": list(edge.reason.via),
        "target_resource": edge.reason.target,
        "service": edge.reason.service,
        "note": edge.reason.note,
        "statements": [
            {"policy_type": s.policy_type.value, "policy_id": s.policy_id, "statement_index": s.statement_index,
             "sid": s.sid, "effect": s.effect}
            for s in edge.statements
        ],
        "conditions": [
            [{"operator": c.operator, "key": c.key, "values": [str(v) for v in c.values], "negated": c.negated}
             for c in conj]
            for conj in edge.conditions
        ],
        "assumptions": list(edge.assumptions),
    }


def _flat(graph: AccessGraph) -> nx.MultiDiGraph:
    """A copy whose attributes are plain strings (GraphML and DOT hold no nested values)."""
    out = nx.MultiDiGraph()
    for n, data in graph.g.nodes(data=True):
        out.add_node(n, **{k: str(v) for k, v in data.items() if v is not None})
    for u, v, data in graph.g.edges(data=True):
        d = edge_data(data["edge"])
        out.add_edge(u, v, kind=d["kind"], via=" ".join(d["via"]), detail=json.dumps(d, sort_keys=True))
    return out


def export(graph: AccessGraph, fmt: ExportFormat) -> bytes:
    if fmt is ExportFormat.JSON:
        doc = {
            "nodes": [{"id": n, **{k: v for k, v in data.items() if v is not None}}
                      for n, data in graph.g.nodes(data=True)],
            "edges": [{"source": u, "target": v, **edge_data(data["edge"])}
                      for u, v, data in graph.g.edges(data=True)],
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode()
    flat = _flat(graph)
    if fmt is ExportFormat.GRAPHML:
        buf = io.BytesIO()
        nx.write_graphml(flat, buf)
        return buf.getvalue()
    return _dot(flat).encode()


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot(g: nx.MultiDiGraph) -> str:
    lines = ["digraph iamgraph {", "  rankdir=LR;"]
    for n, data in g.nodes(data=True):
        label = data.get("name") or n
        lines.append(f"  {_q(n)} [label={_q(str(label))}, kind={_q(data.get('kind', ''))}];")
    for u, v, data in g.edges(data=True):
        lines.append(f"  {_q(u)} -> {_q(v)} [label={_q(data['kind'])}, via={_q(data['via'])}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
