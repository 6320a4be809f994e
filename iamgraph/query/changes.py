"""What a permission-changing edge does, as engine inputs for a what-if evaluation.

``GrantPermissions`` through Put*/Attach*/CreatePolicyVersion lets the caller write any policy, so
the target is evaluated with an allow-all identity policy added; SetDefaultPolicyVersion only
brings back an existing version, so each older version is tried instead.
"""

from __future__ import annotations

from typing import Any

from iamgraph.eval import named_policy
from iamgraph.eval.types import NamedPolicy, PolicyType
from iamgraph.graph import AccessGraph, Edge, EdgeKind


def variants(graph: AccessGraph, edge: Edge) -> list[dict[str, Any]]:
    """Keyword arguments for ``BuildContext.what_if`` describing the state after ``edge``."""
    if edge.kind is EdgeKind.REMOVE_BOUNDARY:
        return [{"drop_boundary": True}]
    if edge.kind is EdgeKind.JOIN_GROUP:
        return [{"add_identity": graph.ctx.group_policies(edge.target)}]
    if edge.kind is EdgeKind.GRANT_PERMISSIONS:
        if edge.reason.via and edge.reason.via[0] == "iam:SetDefaultPolicyVersion" and edge.reason.target:
            return [{"add_identity": (v,)} for v in older_versions(graph, edge.reason.target)]
        return [{"allow_all": True}]
    return []


def older_versions(graph: AccessGraph, policy_arn: str) -> list[NamedPolicy]:
    managed = graph.index.policies.get(policy_arn)
    if managed is None:
        return []
    return [
        named_policy(v.document, f"{policy_arn}@{v.version_id}", PolicyType.IDENTITY)
        for v in managed.versions
        if v.version_id != managed.default_version_id
    ]


def arbitrary(edge: Edge) -> bool:
    """Whether the edge lets the caller write any policy (not just restore an old version)."""
    return edge.kind is EdgeKind.GRANT_PERMISSIONS and not (
        edge.reason.via and edge.reason.via[0] == "iam:SetDefaultPolicyVersion"
    )


def modifiers(graph: AccessGraph) -> dict[str, dict[EdgeKind, list[Edge]]]:
    """Principal whose permissions change -> kind -> edges (JOIN_GROUP is keyed by the joining user)."""
    hit = graph.cache.get("modifiers")
    if hit is None:
        hit = {}
        for e in graph.edges((EdgeKind.GRANT_PERMISSIONS, EdgeKind.REMOVE_BOUNDARY, EdgeKind.JOIN_GROUP)):
            key = e.source if e.kind is EdgeKind.JOIN_GROUP else e.target
            hit.setdefault(key, {}).setdefault(e.kind, []).append(e)
        graph.cache["modifiers"] = hit
    return hit  # type: ignore[no-any-return]
