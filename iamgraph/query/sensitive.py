"""Sensitive data: who can read, write or decrypt resources carrying a classification tag.

Each resource type is asked about a representative action per kind of access (``ACCESS_ACTIONS``);
the answer comes from who-can, so paths and permission changes count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from iamgraph.errors import InputError
from iamgraph.graph import AccessGraph
from iamgraph.query.incomplete import Incomplete, incomplete_for, unanalysed
from iamgraph.query.who_can import Access, who_can_one

DEFAULT_TAG_KEYS = ("DataClassification", "data-classification", "Classification", "Sensitivity", "Confidentiality")
NOT_SENSITIVE = frozenset({"public", "internal", "none", "unclassified", "non-sensitive", "nonsensitive"})
"""Classification values that mark data as not sensitive (compared case-insensitively)."""


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


def classification(tags: Mapping[str, str], tag: str | None = None) -> str | None:
    """What makes a resource with these tags sensitive (the tag's value), or None: the one definition that
    ``sensitive``, access requests, ``diff`` and the report share.

    With ``tag`` (``Key=Value`` or ``Key``), that tag decides. Otherwise any of ``DEFAULT_TAG_KEYS`` (keys
    compared case-insensitively) with a value other than one of ``NOT_SENSITIVE``.
    """
    if tag:
        key, value = parse_tag(tag)
        have = tags.get(key)
        return have if have is not None and (value is None or have == value) else None
    keys = {k.lower() for k in DEFAULT_TAG_KEYS}
    for k, v in sorted(tags.items()):
        if k.lower() in keys and v.strip().lower() not in NOT_SENSITIVE:
            return v
    return None


def sensitive_resources(graph: AccessGraph, tag: str | None = None) -> list[str]:
    """Resources ``classification`` calls sensitive."""
    return sorted(res.arn for res in graph.index.resources.values() if classification(res.tags, tag) is not None)


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


def sensitive_incomplete(graph: AccessGraph, tag: str | None = None) -> tuple[Incomplete, ...]:
    """What ``sensitive`` could not answer for: tagged resources of a type it does not analyse, and tagged
    resources whose policy is unknown (their holders may be missing)."""
    found = sensitive_resources(graph, tag)
    out = [unanalysed(a, graph.index.resources[a].type if graph.index.resources[a].type != "other"
                      else _service_type(a), "sensitive")
           for a in found if graph.index.resources[a].type not in ACCESS_ACTIONS]
    out.extend(incomplete_for(graph, (a for a in found if graph.index.resources[a].type in ACCESS_ACTIONS)))
    return tuple(out)


def _service_type(arn: str) -> str:
    """``dynamodb:table`` for an ARN the snapshot types as ``other``."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return "other"
    kind = parts[5].split("/", 1)[0].split(":", 1)[0]
    return f"{parts[2]}:{kind}" if kind else parts[2]
