"""Evidence: every authorization one logged call implies, from a table of rules kept as data.

A CloudTrail event names an API call; AWS authorized one or more (action, resource) pairs to let it through. The
mapper (:mod:`iamgraph.usage.mapping`) gives the actions; this module gives, per action, the resources it was
authorized on:

- every ``resources[]`` entry whose ARN fits one of the action's resource types (batch and transaction calls name one
  entry per table);
- a rule of ``RULES`` where a request parameter names a further resource (the S3 copy source, a DynamoDB index) or
  where the entries take different actions (KMS ReEncrypt: source key, then destination key);
- a name turned into the ARN AWS authorizes against: the service's ARN format (CloudWatch Logs), or a pattern the
  snapshot resolves later (a Secrets Manager secret named without its six-character suffix, see
  :func:`resolve_pattern`).

Where the exact ARN cannot be known the resource is ``None``: the recommender then keeps the original ``Resource``
entries for that action, never a guessed ARN. An event whose shape a rule does not expect (a ReEncrypt with one key)
is counted as ``unknown_shape`` with what was missing; its actions still count as used, on unknown resources.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

import orjson

from iamgraph.usage.attribution import ResourceResolver
from iamgraph.usage.sql import EVIDENCE_PARAMETERS, OUTPUT_COLUMNS


class From(StrEnum):
    """Where a rule takes the resource of the action it derives."""

    EVENT = "event"
    """The default: the event's resources[] entries that fit the action, else its request parameters."""
    FIRST_RESOURCE = "resources[0]"
    SECOND_RESOURCE = "resources[1]"
    COPY_SOURCE = "copy-source"
    """The S3 object named by the x-amz-copy-source header."""
    COPY_SOURCE_VERSION = "copy-source-version"
    """The same object, only when the header names a version (``?versionId=``)."""
    INDEX_OR_TABLE = "index-or-table"
    """The DynamoDB index named by ``indexName`` (the index ARN), else the table."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Derivation:
    action: str
    source: From
    expect: int = 0
    """resources[] entries the rule needs (fewer is an unknown shape)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    derivations: tuple[Derivation, ...]
    doc: str
    """The AWS page the rule follows."""


_S3 = "s3.amazonaws.com"
_KMS = "kms.amazonaws.com"
_DDB = "dynamodb.amazonaws.com"

_COPY = Rule(
    derivations=(
        Derivation(action="s3:PutObject", source=From.EVENT),
        Derivation(action="s3:GetObject", source=From.COPY_SOURCE),
        Derivation(action="s3:GetObjectVersion", source=From.COPY_SOURCE_VERSION),
    ),
    doc="https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html (Permissions: s3:GetObject on the "
        "source, s3:GetObjectVersion when a version is copied, s3:PutObject on the destination)",
)

# (eventSource, eventName) → the authorizations the call implies, where the default (every action of the mapping on
# the event's own resources) is not all of it.
RULES: dict[tuple[str, str], Rule] = {
    (_S3, "CopyObject"): _COPY,
    (_S3, "UploadPartCopy"): Rule(
        derivations=_COPY.derivations,
        doc="https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPartCopy.html (same permissions as CopyObject)",
    ),
    (_KMS, "ReEncrypt"): Rule(
        derivations=(
            Derivation(action="kms:ReEncryptFrom", source=From.FIRST_RESOURCE, expect=2),
            Derivation(action="kms:ReEncryptTo", source=From.SECOND_RESOURCE, expect=2),
        ),
        doc="https://docs.aws.amazon.com/kms/latest/developerguide/ct-reencrypt.html (resources[]: the source key, "
            "then the destination key) and https://docs.aws.amazon.com/kms/latest/APIReference/API_ReEncrypt.html",
    ),
    (_DDB, "Query"): Rule(
        derivations=(Derivation(action="dynamodb:Query", source=From.INDEX_OR_TABLE),),
        doc="https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/iam-policy-specific-table-indexes.html "
            "(a query on an index is authorized on the index ARN)",
    ),
    (_DDB, "Scan"): Rule(
        derivations=(Derivation(action="dynamodb:Scan", source=From.INDEX_OR_TABLE),),
        doc="https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/iam-policy-specific-table-indexes.html",
    ),
}

# CloudWatch Logs authorizes log-group actions on the group's ARN with a stream part (AccessDenied messages name
# ``log-group:NAME:log-stream:``), which is why policies must use ``log-group:NAME:*``; only the tagging actions use
# the bare ARN, and they take a resourceArn, not a logGroupName.
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html
_LOGS_BARE_ARN = frozenset({"logs:TagResource", "logs:UntagResource", "logs:ListTagsForResource"})

# A secret's ARN ends in a hyphen and six characters Secrets Manager adds; a secretId given by name never has them.
# https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html#iam-resources
SECRET_SUFFIX = "-??????"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFacts:
    """What the rules read of one (aggregated) event."""

    event_source: str
    event_name: str
    region: str | None
    account_id: str | None
    resources: tuple[str, ...] = ()
    """``resources[].ARN``, in CloudTrail's order."""
    resource: str | None = None
    """The aggregate's resource column: for S3 the bucket (and key) the request names, else resources[0]."""
    hint_key: str | None = None
    """The ARN-format placeholder a name parameter fills (``sql.RESOURCE_HINTS``), with its value."""
    hint_value: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    """The evidence parameters (``sql.EVIDENCE_PARAMETERS`` columns) the event carries."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorization:
    action: str
    resource: str | None
    """The ARN AWS authorized the action on; a pattern with ``?`` for a secret named without its suffix
    (:func:`resolve_pattern`); None when it cannot be known."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Derived:
    authorizations: tuple[Authorization, ...]
    unknown_shape: str | None = None
    """What a rule expected and the event lacked, for the problem count."""


class EvidenceDeriver:
    """``derive(facts, actions)``: the authorizations behind one event, by ``RULES`` or the default."""

    def __init__(self, resolver: ResourceResolver) -> None:
        self._resolver = resolver
        self._partition = resolver.partition

    def derive(self, facts: EventFacts, actions: Iterable[str]) -> Derived:
        rule = RULES.get((facts.event_source, facts.event_name))
        if rule is None:
            return Derived(authorizations=tuple(
                Authorization(action=a, resource=r) for a in actions for r in self._event_resources(a, facts)))
        out: list[Authorization] = []
        missing: list[str] = []
        for d in rule.derivations:
            if d.expect and len(facts.resources) < d.expect:
                missing.append(f"{d.action} needs resources[] of {d.expect}, the event has {len(facts.resources)}")
                out.append(Authorization(action=d.action, resource=None))
                continue
            if d.source is From.EVENT:
                out.extend(Authorization(action=d.action, resource=r) for r in self._event_resources(d.action, facts))
            elif d.source is From.FIRST_RESOURCE:
                out.append(Authorization(action=d.action, resource=self._fit(d.action, facts.resources[0])))
            elif d.source is From.SECOND_RESOURCE:
                out.append(Authorization(action=d.action, resource=self._fit(d.action, facts.resources[1])))
            elif d.source in (From.COPY_SOURCE, From.COPY_SOURCE_VERSION):
                raw = facts.params.get("copy_source")
                if raw is None:
                    missing.append(f"{d.action}: no x-amz-copy-source")
                    if d.source is From.COPY_SOURCE:
                        out.append(Authorization(action=d.action, resource=None))
                    continue
                arn, version = self._copy_source(raw)
                if d.source is From.COPY_SOURCE or version:
                    out.append(Authorization(action=d.action, resource=arn))
            elif d.source is From.INDEX_OR_TABLE:
                out.extend(Authorization(action=d.action, resource=r) for r in self._index_or_table(d.action, facts))
        return Derived(authorizations=tuple(out), unknown_shape="; ".join(missing) or None)

    # -- sources

    def _fit(self, action: str, arn: str | None) -> str | None:
        if not arn or not arn.startswith("arn:"):
            return None
        return arn if self._resolver.fits(action, arn) else None

    def _event_resources(self, action: str, facts: EventFacts) -> list[str | None]:
        if facts.event_source == _S3 and facts.resource:
            # S3 names the bucket and key in the request; resources[] lists the bucket and the object (and, for a
            # copy, maybe the source), so the request decides which object this action was on.
            return [self._fit(action, facts.resource)]
        fitting = [a for a in facts.resources if self._fit(action, a)]
        if fitting:
            return list(dict.fromkeys(fitting))
        return [self._by_name(action, facts)]

    def _by_name(self, action: str, facts: EventFacts) -> str | None:
        key, value = facts.hint_key, facts.hint_value
        if not key or not value:
            return None
        if key == "LogGroupName":
            return self._log_group(action, value, facts)
        if key == "SecretId":
            return self._secret(action, value, facts)
        return self._resolver.resolve(action, None, key, value, facts.region, facts.account_id)

    def _log_group(self, action: str, name: str, facts: EventFacts) -> str | None:
        if name.startswith("arn:") or not facts.region or not facts.account_id or action in _LOGS_BARE_ARN:
            return None
        base = f"arn:{self._partition}:logs:{facts.region}:{facts.account_id}:log-group:{name}:log-stream:"
        stream = facts.params.get("log_stream_name")
        types = self._resolver.resource_types(action)
        if stream and "log-stream" in types:
            return base + stream
        if "log-group" in types:
            return base
        return None

    def _secret(self, action: str, secret_id: str, facts: EventFacts) -> str | None:
        if secret_id.startswith("arn:"):
            # AWS reads an ARN whose name ends in -XXXXXX as complete; anything else matches by prefix, which
            # this tool cannot repeat without the account's secrets.
            return self._fit(action, secret_id) if re.search(r"-[A-Za-z0-9]{6}$", secret_id) else None
        if not facts.region or not facts.account_id or "secret" not in self._resolver.resource_types(action):
            return None
        return f"arn:{self._partition}:secretsmanager:{facts.region}:{facts.account_id}:secret:{secret_id}{SECRET_SUFFIX}"

    def _copy_source(self, raw: str) -> tuple[str | None, bool]:
        """``[/]bucket/key[?versionId=...]``, URL-encoded (CopyObject's x-amz-copy-source), or an access point ARN
        form that this tool does not resolve (None)."""
        text, _, query = raw.partition("?")
        text = unquote(text).lstrip("/")
        version = "versionId=" in query
        if text.startswith("arn:") or "/" not in text:
            return None, version
        bucket, key = text.split("/", 1)
        if not bucket or not key:
            return None, version
        return f"arn:{self._partition}:s3:::{bucket}/{key}", version

    def _index_or_table(self, action: str, facts: EventFacts) -> list[str | None]:
        tables = self._event_resources(action, facts)
        index = facts.params.get("index_name")
        if not index:
            return tables
        # The index ARN: the table ARN + /index/<name>
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html#amazondynamodb-resources-for-iam-policies).
        return [f"{t}/index/{index}" if t is not None and "/index/" not in t else None for t in tables]


_AT = {c: i for i, c in enumerate(OUTPUT_COLUMNS)}


def facts_of(row: Sequence[Any]) -> EventFacts:
    """The facts of one aggregate row (``sql.OUTPUT_COLUMNS``)."""
    arns = row[_AT["resource_arns"]]
    resources: tuple[str, ...] = ()
    if arns:
        parsed = orjson.loads(arns) if isinstance(arns, str) else arns
        resources = tuple(a for a in parsed if isinstance(a, str)) if isinstance(parsed, list) else ()
    params = {c: str(row[_AT[c]]) for _, c in EVIDENCE_PARAMETERS if row[_AT[c]] is not None}
    return EventFacts(
        event_source=row[_AT["event_source"]], event_name=row[_AT["event_name"]], region=row[_AT["region"]],
        account_id=row[_AT["account_id"]], resources=resources, resource=row[_AT["resource"]],
        hint_key=row[_AT["hint_key"]], hint_value=row[_AT["hint_value"]], params=params,
    )


def resolve_pattern(resource: str | None, known: Iterable[str]) -> str | None:
    """A derived resource as the snapshot knows it: a pattern (a secret named without its suffix) becomes the one
    ARN of ``known`` it matches; no match or several → None (the exact ARN cannot be known)."""
    if resource is None or "?" not in resource:
        return resource
    rx = re.compile(re.escape(resource).replace(r"\?", "[A-Za-z0-9]"))
    hits = [k for k in known if rx.fullmatch(k)]
    return hits[0] if len(hits) == 1 else None


def is_pattern(resource: str | None) -> bool:
    return resource is not None and "?" in resource
