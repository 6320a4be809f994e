"""CloudTrail ``eventSource``/``eventName`` → IAM actions.

Built from three things, in this order of authority:

1. a small table of known exceptions (below), each with the AWS page that documents it;
2. botocore's service models (in the installed botocore data): ``endpointPrefix`` and ``signingName``
   tie an ``eventSource`` host to a service, and its operation names are the API calls CloudTrail logs;
3. the action catalog: an operation maps to the action of the same name under the service's IAM prefix
   only when the catalog knows that action.

An event nothing maps is *unmapped*: counted and reported by the store, never dropped silently.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import botocore  # its __init__ only: the version (botocore.session, 0.2 s, only when the index is rebuilt)
import orjson

from iamgraph.snapshot.io import atomic_write_bytes


class CatalogLike(Protocol):
    """The part of ``iamgraph.catalog.Catalog`` the mapper needs."""

    def services(self) -> tuple[str, ...]: ...

    def canonical(self, action: str) -> str | None: ...

    def actions_of(self, service: str) -> tuple[str, ...]: ...


class MappingStatus(StrEnum):
    MAPPED = "mapped"
    AMBIGUOUS = "ambiguous"
    """The API needs one of several actions depending on the request (e.g. DynamoDB TransactWriteItems)."""
    NO_ACTION = "no_action"
    """A known event that is not an authorized API call (``ConsoleLogin``): nothing to map, by design."""
    UNKNOWN_SOURCE = "unknown_source"
    UNKNOWN_EVENT = "unknown_event"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mapping:
    event_source: str
    event_name: str
    actions: tuple[str, ...]
    status: MappingStatus
    reason: str = ""

    @property
    def mapped(self) -> bool:
        return self.status in (MappingStatus.MAPPED, MappingStatus.AMBIGUOUS)


# Event names that carry the API version: Lambda (``ListFunctions20150331``, ``GetFunction20150331v2``)
# and CloudFront (``UpdateDistribution2017_03_25``).
# https://docs.aws.amazon.com/lambda/latest/dg/logging-using-cloudtrail.html
_DATE_SUFFIX = re.compile(r"(?:20\d{6}(?:v\d+)?|20\d{2}_\d{2}_\d{2})$")


def strip_version_suffix(event_name: str) -> str:
    return _DATE_SUFFIX.sub("", event_name)


# eventSource host → IAM prefix, where neither botocore's endpointPrefix nor its signingName is the prefix.
# https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
SOURCE_PREFIX: dict[str, str] = {
    "monitoring.amazonaws.com": "cloudwatch",
    "email.amazonaws.com": "ses",
    "sso.amazonaws.com": "sso",
    "identitystore.amazonaws.com": "identitystore",
    "tagging.amazonaws.com": "tag",
    "sagemaker.amazonaws.com": "sagemaker",
    "states.amazonaws.com": "states",
    "es.amazonaws.com": "es",
    "elasticmapreduce.amazonaws.com": "elasticmapreduce",
    "elasticloadbalancing.amazonaws.com": "elasticloadbalancing",
    "application-autoscaling.amazonaws.com": "application-autoscaling",
    "s3.amazonaws.com": "s3",
    "lambda.amazonaws.com": "lambda",
    "apigateway.amazonaws.com": "apigateway",
}

_S3 = "s3.amazonaws.com"
_LAMBDA = "lambda.amazonaws.com"
_DDB = "dynamodb.amazonaws.com"

# (eventSource, eventName without version suffix) → actions. Each group names its AWS source.
EXCEPTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # S3 operations whose IAM action has another name.
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html (Permissions
    # section of each operation) and https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html
    (_S3, "ListBuckets"): ("s3:ListAllMyBuckets",),
    (_S3, "HeadObject"): ("s3:GetObject",),
    (_S3, "HeadBucket"): ("s3:ListBucket",),
    (_S3, "ListObjects"): ("s3:ListBucket",),
    (_S3, "ListObjectsV2"): ("s3:ListBucket",),
    (_S3, "ListObjectVersions"): ("s3:ListBucketVersions",),
    (_S3, "ListMultipartUploads"): ("s3:ListBucketMultipartUploads",),
    (_S3, "ListParts"): ("s3:ListMultipartUploadParts",),
    (_S3, "CreateMultipartUpload"): ("s3:PutObject",),
    (_S3, "UploadPart"): ("s3:PutObject",),
    (_S3, "CompleteMultipartUpload"): ("s3:PutObject",),
    (_S3, "CopyObject"): ("s3:GetObject", "s3:PutObject"),
    (_S3, "UploadPartCopy"): ("s3:GetObject", "s3:PutObject"),
    (_S3, "DeleteObjects"): ("s3:DeleteObject",),
    (_S3, "SelectObjectContent"): ("s3:GetObject",),
    (_S3, "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
    (_S3, "PutBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    (_S3, "DeleteBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    (_S3, "GetBucketLifecycle"): ("s3:GetLifecycleConfiguration",),
    (_S3, "GetBucketLifecycleConfiguration"): ("s3:GetLifecycleConfiguration",),
    (_S3, "PutBucketLifecycle"): ("s3:PutLifecycleConfiguration",),
    (_S3, "PutBucketLifecycleConfiguration"): ("s3:PutLifecycleConfiguration",),
    (_S3, "DeleteBucketLifecycle"): ("s3:PutLifecycleConfiguration",),
    (_S3, "GetBucketCors"): ("s3:GetBucketCORS",),
    (_S3, "PutBucketCors"): ("s3:PutBucketCORS",),
    (_S3, "DeleteBucketCors"): ("s3:PutBucketCORS",),
    (_S3, "GetBucketReplication"): ("s3:GetReplicationConfiguration",),
    (_S3, "PutBucketReplication"): ("s3:PutReplicationConfiguration",),
    (_S3, "DeleteBucketReplication"): ("s3:PutReplicationConfiguration",),
    (_S3, "GetBucketNotificationConfiguration"): ("s3:GetBucketNotification",),
    (_S3, "PutBucketNotificationConfiguration"): ("s3:PutBucketNotification",),
    (_S3, "DeleteBucketTagging"): ("s3:PutBucketTagging",),
    (_S3, "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
    (_S3, "PutPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    (_S3, "DeletePublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    (_S3, "DeleteBucketOwnershipControls"): ("s3:PutBucketOwnershipControls",),
    (_S3, "GetObjectLockConfiguration"): ("s3:GetBucketObjectLockConfiguration",),
    (_S3, "PutObjectLockConfiguration"): ("s3:PutBucketObjectLockConfiguration",),
    (_S3, "GetBucketAccelerateConfiguration"): ("s3:GetAccelerateConfiguration",),
    (_S3, "PutBucketAccelerateConfiguration"): ("s3:PutAccelerateConfiguration",),
    (_S3, "GetBucketAnalyticsConfiguration"): ("s3:GetAnalyticsConfiguration",),
    (_S3, "PutBucketAnalyticsConfiguration"): ("s3:PutAnalyticsConfiguration",),
    (_S3, "GetBucketInventoryConfiguration"): ("s3:GetInventoryConfiguration",),
    (_S3, "PutBucketInventoryConfiguration"): ("s3:PutInventoryConfiguration",),
    (_S3, "GetBucketMetricsConfiguration"): ("s3:GetMetricsConfiguration",),
    (_S3, "PutBucketMetricsConfiguration"): ("s3:PutMetricsConfiguration",),
    (_S3, "GetBucketIntelligentTieringConfiguration"): ("s3:GetIntelligentTieringConfiguration",),
    (_S3, "PutBucketIntelligentTieringConfiguration"): ("s3:PutIntelligentTieringConfiguration",),
    (_S3, "DeleteBucketWebsite"): ("s3:DeleteBucketWebsite",),
    # Lambda's data-plane API names differ from the action.
    # https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
    (_LAMBDA, "Invoke"): ("lambda:InvokeFunction",),
    (_LAMBDA, "InvokeWithResponseStream"): ("lambda:InvokeFunction",),
    # SQS/SNS batch APIs are authorized as their single-message action.
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html
    ("sqs.amazonaws.com", "SendMessageBatch"): ("sqs:SendMessage",),
    ("sqs.amazonaws.com", "DeleteMessageBatch"): ("sqs:DeleteMessage",),
    ("sqs.amazonaws.com", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility",),
    # https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html
    ("sns.amazonaws.com", "PublishBatch"): ("sns:Publish",),
    # KMS ReEncrypt needs ReEncryptFrom on the source key and ReEncryptTo on the destination key.
    # https://docs.aws.amazon.com/kms/latest/APIReference/API_ReEncrypt.html
    ("kms.amazonaws.com", "ReEncrypt"): ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
    # DynamoDB transactions are authorized per item action.
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
    (_DDB, "TransactGetItems"): ("dynamodb:GetItem",),
}

# Events that are real API calls but need one of several actions, depending on the request body.
AMBIGUOUS: dict[tuple[str, str], tuple[str, ...]] = {
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
    (_DDB, "TransactWriteItems"): (
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ),
    (_DDB, "ExecuteTransaction"): (
        "dynamodb:PartiQLDelete",
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLSelect",
        "dynamodb:PartiQLUpdate",
    ),
}

# Events that are not authorized API calls: sign-in and console events.
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-aws-console-sign-in-events.html
NO_ACTION: dict[tuple[str, str], str] = {
    ("signin.amazonaws.com", "ConsoleLogin"): "console sign-in event",
    ("signin.amazonaws.com", "CheckMfa"): "console sign-in event",
    ("signin.amazonaws.com", "SwitchRole"): "console role switch",
    ("signin.amazonaws.com", "ExitRole"): "console role switch",
    ("signin.amazonaws.com", "RenewRole"): "console role switch",
    ("signin.amazonaws.com", "UserAuthentication"): "console sign-in event",
    ("signin.amazonaws.com", "CredentialChallenge"): "console sign-in event",
    ("signin.amazonaws.com", "CredentialVerification"): "console sign-in event",
    ("signin.amazonaws.com", "PasswordUpdated"): "console sign-in event",
}

# API Gateway's IAM actions are HTTP verbs (apigateway:GET ...), taken from the operation's method.
# https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-control-access-using-iam-policies-to-create-and-delete-api.html
_VERB_ACTION_SERVICES = frozenset({"apigateway"})


@dataclass(frozen=True, slots=True)
class _BotoService:
    name: str
    endpoint_prefix: str
    signing_name: str | None
    operations: dict[str, str]
    """operation name → HTTP method"""


def _index_cache() -> Path:
    """Where the eventSource index of the installed botocore is kept between runs (one file per botocore version)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "iamgraph" / f"botocore-event-index-{botocore.__version__}.json"


@functools.cache
def _botocore_index() -> dict[str, tuple[_BotoService, ...]]:
    """eventSource host → the botocore services that answer on it (read once per process).

    Reading every service model takes seconds (over 400 models), more than the rest of a one-principal
    ``recommend``; what is read from them is small and depends only on the botocore version, so it is kept in the
    user's cache directory, written atomically and owner-only. A cache that cannot be read or written is rebuilt
    or skipped: it only saves time."""
    cache = _index_cache()
    try:
        raw = orjson.loads(cache.read_bytes())
        return {host: tuple(_BotoService(str(n), str(e), s if isinstance(s, str) else None,
                                         {str(k): str(v) for k, v in ops.items()}) for n, e, s, ops in svcs)
                for host, svcs in raw.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    import botocore.session

    session = botocore.session.get_session()
    loader = session.get_component("data_loader")
    index: dict[str, list[_BotoService]] = {}
    for name in session.get_available_services():
        model = loader.load_service_model(name, "service-2")
        meta = model.get("metadata", {})
        endpoint = str(meta.get("endpointPrefix") or name)
        signing = meta.get("signingName")
        ops = {op: str(spec.get("http", {}).get("method", "")) for op, spec in model.get("operations", {}).items()}
        svc = _BotoService(name, endpoint, signing, ops)
        hosts = {endpoint, endpoint.removeprefix("api."), name}
        if signing:
            hosts.add(signing)
        for host in hosts:
            index.setdefault(f"{host}.amazonaws.com", []).append(svc)
    with contextlib.suppress(OSError):
        atomic_write_bytes(cache, orjson.dumps(
            {host: [[v.name, v.endpoint_prefix, v.signing_name, v.operations] for v in svcs]
             for host, svcs in index.items()}))
    return {k: tuple(v) for k, v in index.items()}


class EventMapper:
    """Maps CloudTrail events to IAM actions; results are cached per (eventSource, eventName)."""

    def __init__(self, catalog: CatalogLike | None = None) -> None:
        if catalog is None:
            from iamgraph.catalog import get_catalog

            catalog = get_catalog()
        self._cat = catalog
        self._services = frozenset(catalog.services())
        self._cache: dict[tuple[str, str], Mapping] = {}
        self._reverse: dict[str, frozenset[str]] = {}
        self._by_service: tuple[dict[str, tuple[str, ...]], tuple[str, ...]] | None = None

    @property
    def catalog(self) -> CatalogLike:
        return self._cat

    def _prefixes(self, event_source: str) -> list[str]:
        out: list[str] = []
        if event_source in SOURCE_PREFIX:
            out.append(SOURCE_PREFIX[event_source])
        for svc in _botocore_index().get(event_source, ()):
            for cand in (svc.signing_name, svc.endpoint_prefix, svc.endpoint_prefix.removeprefix("api."), svc.name):
                if cand and cand in self._services and cand not in out:
                    out.append(cand)
        host = event_source.removesuffix(".amazonaws.com")
        if host in self._services and host not in out:
            out.append(host)
        return out

    def map(self, event_source: str, event_name: str) -> Mapping:
        key = (event_source, event_name)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._map(event_source, event_name)
            self._cache[key] = hit
        return hit

    def _map(self, event_source: str, event_name: str) -> Mapping:
        name = strip_version_suffix(event_name)
        key = (event_source, name)
        if key in NO_ACTION:
            return Mapping(
                event_source=event_source, event_name=event_name, actions=(), status=MappingStatus.NO_ACTION,
                reason=NO_ACTION[key],
            )
        if key in EXCEPTIONS:
            return Mapping(
                event_source=event_source, event_name=event_name, actions=EXCEPTIONS[key],
                status=MappingStatus.MAPPED, reason="known exception",
            )
        if key in AMBIGUOUS:
            return Mapping(
                event_source=event_source, event_name=event_name, actions=AMBIGUOUS[key],
                status=MappingStatus.AMBIGUOUS, reason="the action depends on the request",
            )
        prefixes = self._prefixes(event_source)
        if not prefixes:
            return Mapping(
                event_source=event_source, event_name=event_name, actions=(),
                status=MappingStatus.UNKNOWN_SOURCE, reason="no service with this eventSource",
            )
        for svc in _botocore_index().get(event_source, ()):
            method = svc.operations.get(name)
            if method and (svc.signing_name or svc.endpoint_prefix) in _VERB_ACTION_SERVICES:
                action = self._cat.canonical(f"apigateway:{method}")
                if action:
                    return Mapping(
                        event_source=event_source, event_name=event_name, actions=(action,),
                        status=MappingStatus.MAPPED, reason="HTTP verb action",
                    )
        for prefix in prefixes:
            action = self._cat.canonical(f"{prefix}:{name}")
            if action:
                return Mapping(
                    event_source=event_source, event_name=event_name, actions=(action,),
                    status=MappingStatus.MAPPED, reason="same name",
                )
        return Mapping(
            event_source=event_source, event_name=event_name, actions=(), status=MappingStatus.UNKNOWN_EVENT,
            reason=f"no action named {name!r} under {', '.join(prefixes)}",
        )

    def actions_with_events(self, service: str) -> frozenset[str]:
        """Every action of ``service`` that some API operation (some CloudTrail event) maps to.

        Computed per service when first asked: only the event sources whose candidate prefixes name the service
        (or whose operations map to HTTP-verb actions) can map to it, besides the tables of exceptions. Mapping
        every operation of every service takes seconds, and one principal's policies name a few services."""
        hit = self._reverse.get(service)
        if hit is None:
            found: set[str] = set()
            index = _botocore_index()
            for source in self._sources_of(service):
                for svc in index[source]:
                    for op in svc.operations:
                        found.update(a for a in self.map(source, op).actions if a.split(":", 1)[0] == service)
            for actions in (*EXCEPTIONS.values(), *AMBIGUOUS.values()):
                found.update(a for a in actions if a.split(":", 1)[0] == service)
            hit = self._reverse[service] = frozenset(found)
        return hit

    def _sources_of(self, service: str) -> tuple[str, ...]:
        """The event sources whose events can map to actions of ``service``: those whose candidate prefixes name it,
        and those whose operations map to HTTP-verb actions. Found for every service in one pass over the sources
        (asked source by source for each service, it cost a second for an admin's ~450 services)."""
        if self._by_service is None:
            by_service: dict[str, list[str]] = {}
            verbs: list[str] = []
            for source, svcs in _botocore_index().items():
                for prefix in self._prefixes(source):
                    by_service.setdefault(prefix, []).append(source)
                if any((svc.signing_name or svc.endpoint_prefix) in _VERB_ACTION_SERVICES for svc in svcs):
                    verbs.append(source)
            self._by_service = ({k: tuple(v) for k, v in by_service.items()}, tuple(verbs))
        named, verb_sources = self._by_service
        return tuple(dict.fromkeys((*named.get(service, ()), *verb_sources)))

    def map_many(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Mapping]:
        return {p: self.map(*p) for p in pairs}
