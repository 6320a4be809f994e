"""Sensitive data: who can read, write or decrypt resources carrying a classification tag.

Each resource type is asked about a representative action per kind of access (``ACCESS_ACTIONS``);
the answer comes from who-can, so paths and permission changes count.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from iamgraph.errors import InputError
from iamgraph.graph import AccessGraph
from iamgraph.query.who_can import Access, who_can_one

DEFAULT_TAG_KEYS = ("DataClassification", "data-classification", "Classification", "Sensitivity", "Confidentiality")


class AccessKind(StrEnum):
    READ = "read"
    WRITE = "write"
    DECRYPT = "decrypt"


ACCESS_ACTIONS: dict[str, dict[AccessKind, tuple[str, str]]] = {
    # type -> kind -> (action, resource suffix appended to the resource ARN)
    "s3:bucket": {AccessKind.READ: ("s3:GetObject", "/*"), AccessKind.WRITE: ("s3:PutObject", "/*")},
    "kms:key": {AccessKind.DECRYPT: ("kms:Decrypt", ""), AccessKind.WRITE: ("kms:Encrypt", "")},
    "secretsmanager:secret": {AccessKind.READ: ("secretsmanager:GetSecretValue", ""),
                              AccessKind.WRITE: ("secretsmanager:PutSecretValue", "")},
    "sqs:queue": {AccessKind.READ: ("sqs:ReceiveMessage", ""), AccessKind.WRITE: ("sqs:SendMessage", "")},
    "sns:topic": {AccessKind.READ: ("sns:Subscribe", ""), AccessKind.WRITE: ("sns:Publish", "")},
    "lambda:function": {AccessKind.READ: ("lambda:GetFunction", ""),
                        AccessKind.WRITE: ("lambda:UpdateFunctionCode", "")},
    "ecr:repository": {AccessKind.READ: ("ecr:BatchGetImage", ""), AccessKind.WRITE: ("ecr:PutImage", "")},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SensitiveAccess:
    resource: str
    resource_type: str
    tags: dict[str, str]
    kind: AccessKind
    access: Access


def parse_tag(text: str) -> tuple[str, str | None]:
    key, sep, value = text.partition("=")
    if not key:
        raise InputError(f"{text!r} is not a tag filter (Key=Value or Key)", location="--tag")
    return key, (value if sep else None)


def sensitive_resources(graph: AccessGraph, tag: str | None = None) -> list[str]:
    """Resources carrying the tag (``Key=Value`` or ``Key``), or any default classification key."""
    filters = [parse_tag(tag)] if tag else [(k, None) for k in DEFAULT_TAG_KEYS]
    out = []
    for res in graph.index.resources.values():
        for key, value in filters:
            if key in res.tags and (value is None or res.tags[key] == value):
                out.append(res.arn)
                break
    return sorted(out)


def sensitive(graph: AccessGraph, tag: str | None = None, *, principals: set[str] | None = None) -> list[SensitiveAccess]:
    out: list[SensitiveAccess] = []
    for arn in sensitive_resources(graph, tag):
        res = graph.index.resources[arn]
        for kind, (action, suffix) in ACCESS_ACTIONS.get(res.type, {}).items():
            for acc in who_can_one(graph, arn + suffix, action):
                if principals is not None and acc.principal not in principals:
                    continue
                out.append(SensitiveAccess(resource=arn, resource_type=res.type, tags=dict(res.tags), kind=kind,
                                           access=acc))
    out.sort(key=lambda s: (s.resource, s.kind.value, s.access.rank(), s.access.principal))
    return out


def unsupported_types(graph: AccessGraph, tag: str | None = None) -> list[str]:
    """Tagged resources whose type has no representative actions (reported, not dropped)."""
    return [a for a in sensitive_resources(graph, tag) if graph.index.resources[a].type not in ACCESS_ACTIONS]
