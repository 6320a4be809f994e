"""Incomplete answers said out loud: resources whose policy is unknown, and types a question does not analyse.

An unread policy is not an absent one: a KMS key whose key policy the collector was denied looks,
to the engine, like a key nobody may use, and a bucket whose policy was denied looks private. The
snapshot keeps such a resource with ``policy_unknown`` (or, in snapshots written before that
marker, a collection error on the call that reads the policy names it); every answer that touches
it carries a note naming it. This module is the one place that decides which resources that is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from iamgraph.graph import AccessGraph
from iamgraph.snapshot.model import RESOURCE_POLICY_CALLS, Resource

POLICY_CALLS = RESOURCE_POLICY_CALLS


@dataclass(frozen=True, slots=True, kw_only=True)
class Incomplete:
    """One reason an answer may be missing accesses."""

    resource: str
    reason: str

    def text(self) -> str:
        return f"incomplete: {self.resource}: {self.reason}"


def unknown_policies(graph: AccessGraph) -> dict[str, Incomplete]:
    """Resources of the snapshot whose resource-based policy is unknown (cached on the graph)."""
    hit = graph.cache.get("unknown_policies")
    if hit is not None:
        return dict(hit)
    idx = graph.index
    by_name: dict[str, Resource] = {}
    for res in idx.resources.values():
        by_name[res.arn] = res
        url = res.attributes.get("queue_url")
        if isinstance(url, str):
            by_name[url] = res  # SQS calls are recorded under the queue URL
    out: dict[str, Incomplete] = {}
    for res in idx.resources.values():
        if res.policy_unknown:
            out[res.arn] = Incomplete(resource=res.arn, reason="its policy could not be read (unknown, not absent)")
    for err in idx.snapshot.errors:
        hit = by_name.get(err.resource or "")
        if hit is None or hit.arn in out or hit.policy is not None:
            continue
        if POLICY_CALLS.get(hit.type) == err.call:
            out[hit.arn] = Incomplete(resource=hit.arn, reason=f"its policy could not be read ({err.service} "
                                                               f"{err.call}: {err.error_code}; unknown, not absent)")
    graph.cache["unknown_policies"] = out
    return dict(out)


MOVE_TYPES: frozenset[str] = frozenset({"lambda:function"})
"""Resource types whose resource-based policy an edge between principals reads: a function's policy can allow
another principal ``lambda:UpdateFunctionCode`` or ``lambda:InvokeFunction`` (the compute takeovers of
``graph/rules``), so with it unknown a path through the function's role may be missing."""


def all_unknown(graph: AccessGraph) -> tuple[Incomplete, ...]:
    """Every resource whose policy is unknown, by ARN: for answers any resource policy could change (what a
    principal can do, everything it reaches), since such a policy may name any principal or account."""
    unknown = unknown_policies(graph)
    return tuple(unknown[a] for a in sorted(unknown))


def moves_incomplete(graph: AccessGraph) -> tuple[Incomplete, ...]:
    """The notes of an answer about moves between principals (path, privesc): resources of ``MOVE_TYPES``
    whose policy is unknown, by ARN."""
    return tuple(x for x in all_unknown(graph)
                 if (res := graph.index.resources.get(x.resource)) is not None and res.type in MOVE_TYPES)


def incomplete_for(graph: AccessGraph, resources: Iterable[str]) -> tuple[Incomplete, ...]:
    """The notes for an answer about ``resources`` (an S3 object counts as its bucket)."""
    unknown = unknown_policies(graph)
    out: list[Incomplete] = []
    for arn in resources:
        note = unknown.get(policy_holder_arn(arn))
        if note is not None and note not in out:
            out.append(note)
    return tuple(out)


def policy_holder_arn(resource: str) -> str:
    """The ARN whose policy governs ``resource``: the bucket for an S3 object."""
    if resource.startswith("arn:aws:s3:::") and "/" in resource:
        return resource.split("/", 1)[0]
    return resource


def unanalysed(resource: str, resource_type: str, question: str) -> Incomplete:
    return Incomplete(resource=resource, reason=f"{question} does not analyse {resource_type} resources")


__all__ = ["MOVE_TYPES", "POLICY_CALLS", "Incomplete", "all_unknown", "incomplete_for", "moves_incomplete",
           "policy_holder_arn", "unanalysed", "unknown_policies"]
