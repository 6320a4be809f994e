"""The collector's contact with AWS: the list of calls it may make, clients, rate limits and error capture.

Every AWS operation the collector calls is listed in ``API_CALLS`` with the IAM action that authorizes
it. A botocore ``before-call`` hook on every client refuses any operation that is not listed, so the
shipped least-privilege policy (docs/collector-policy.json, checked against this list by a test) and
the code cannot drift apart.
"""

from __future__ import annotations

import json
import threading
import time
import types
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    NoAuthTokenError,
    NoCredentialsError,
    PartialCredentialsError,
    SSOError,
    TokenRetrievalError,
)

from iamgraph.errors import IamGraphError
from iamgraph.snapshot.model import CollectionError


class CollectorError(IamGraphError):
    """The collection as a whole cannot go on (no credentials, organization unreadable, bad work directory)."""


class UnlistedCallError(CollectorError):
    """The collector tried an AWS operation missing from ``API_CALLS``: a bug, caught before the call is sent."""


class CredentialsError(CollectorError):
    """The caller's credentials stopped working part-way (expired session, SSO login over): nothing more can be read.

    The collection stops; the accounts already written stay in the work directory for ``--resume``.
    """


class Cancelled(Exception):
    """Another account's failure or an interrupt stopped the run; this account is left for --resume."""


# The credentials themselves failing, as opposed to one call being refused. ExpiredToken (query APIs) and
# ExpiredTokenException (JSON APIs) are AWS's common error for an expired security token:
# https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html
# InvalidClientTokenId / UnrecognizedClientException are not listed: an opt-in region that is not enabled
# answers every call with them, and that is one region's failure, recorded like any other.
CREDENTIAL_ERROR_CODES = frozenset({"ExpiredToken", "ExpiredTokenException"})
_CREDENTIAL_EXCEPTIONS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    NoAuthTokenError,
    TokenRetrievalError,
    SSOError,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiCall:
    service: str
    """The boto3 client name (``sso-admin``, ``s3control``)."""
    operation: str
    """The API operation name as botocore models it (``GetAccountAuthorizationDetails``)."""
    action: str | None
    """The IAM action that authorizes it; None when AWS requires no permission (sts:GetCallerIdentity)."""


def _calls(service: str, prefix: str, *ops: str | tuple[str, str]) -> tuple[ApiCall, ...]:
    out = []
    for op in ops:
        name, action = (op, f"{prefix}:{op}") if isinstance(op, str) else (op[0], f"{prefix}:{op[1]}")
        out.append(ApiCall(service=service, operation=name, action=action))
    return tuple(out)


API_CALLS: tuple[ApiCall, ...] = (
    # GetCallerIdentity needs no permission and cannot be denied:
    # https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    ApiCall(service="sts", operation="GetCallerIdentity", action=None),
    *_calls("sts", "sts", "AssumeRole"),
    *_calls(
        "organizations",
        "organizations",
        "DescribeOrganization",
        "ListRoots",
        "ListOrganizationalUnitsForParent",
        "ListAccountsForParent",
        "ListPolicies",
        "DescribePolicy",
        "ListTargetsForPolicy",
        "ListDelegatedAdministrators",
        "ListDelegatedServicesForAccount",
    ),
    *_calls(
        "iam",
        "iam",
        "GetAccountAuthorizationDetails",
        "GenerateCredentialReport",
        "GetCredentialReport",
        "ListSAMLProviders",
        "GetSAMLProvider",
        "ListOpenIDConnectProviders",
        "GetOpenIDConnectProvider",
        "ListRoles",
        "ListInstanceProfiles",
        "ListAccountAliases",
        "ListAccessKeys",
        "GetAccessKeyLastUsed",
        "ListMFADevices",
        "GenerateServiceLastAccessedDetails",
        "GetServiceLastAccessedDetails",
    ),
    *_calls(
        "ec2",
        "ec2",
        "DescribeRegions",
        "DescribeInstances",
        "DescribeLaunchTemplates",
        "DescribeLaunchTemplateVersions",
    ),
    *_calls("autoscaling", "autoscaling", "DescribeAutoScalingGroups"),
    # S3 operation names differ from their IAM actions:
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html
    *_calls(
        "s3",
        "s3",
        ("ListBuckets", "ListAllMyBuckets"),
        "GetBucketLocation",
        "GetBucketPolicy",
        "GetBucketPolicyStatus",
        ("GetPublicAccessBlock", "GetBucketPublicAccessBlock"),
        "GetBucketTagging",
    ),
    *_calls("s3control", "s3", ("GetPublicAccessBlock", "GetAccountPublicAccessBlock")),
    *_calls("kms", "kms", "ListKeys", "DescribeKey", "GetKeyPolicy", "ListGrants", "ListResourceTags"),
    *_calls("sqs", "sqs", "ListQueues", "GetQueueAttributes", "ListQueueTags"),
    *_calls("sns", "sns", "ListTopics", "GetTopicAttributes", "ListTagsForResource"),
    *_calls("lambda", "lambda", "ListFunctions", "GetPolicy", "ListFunctionUrlConfigs", "ListTags"),
    *_calls("secretsmanager", "secretsmanager", "ListSecrets", "GetResourcePolicy"),
    *_calls("ecr", "ecr", "DescribeRepositories", "GetRepositoryPolicy", "ListTagsForResource"),
    *_calls(
        "cloudformation",
        "cloudformation",
        "DescribeStacks",
        "ListStackSets",
        "DescribeStackSet",
        "ListStackInstances",
    ),
    *_calls("apprunner", "apprunner", "ListServices", "DescribeService"),
    # The AgentCore control plane's client is "bedrock-agentcore-control"; its IAM prefix is "bedrock-agentcore":
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonbedrockagentcore.html
    *_calls(
        "bedrock-agentcore-control",
        "bedrock-agentcore",
        "ListCodeInterpreters",
        "GetCodeInterpreter",
        "ListAgentRuntimes",
        "GetAgentRuntime",
        "ListBrowsers",
        "GetBrowser",
    ),
    *_calls("codebuild", "codebuild", "ListProjects", "BatchGetProjects"),
    *_calls("glue", "glue", "GetJobs", "GetDevEndpoints"),
    *_calls("sagemaker", "sagemaker", "ListNotebookInstances", "DescribeNotebookInstance"),
    *_calls(
        "ecs",
        "ecs",
        "ListClusters",
        "ListServices",
        "DescribeServices",
        "ListTaskDefinitions",
        "DescribeTaskDefinition",
    ),
    *_calls("ssm", "ssm", "DescribeInstanceInformation"),
    # IAM Identity Center's admin API authorizes with the "sso" prefix:
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiamidentitycenter.html
    *_calls(
        "sso-admin",
        "sso",
        "ListInstances",
        "ListPermissionSets",
        "DescribePermissionSet",
        "GetInlinePolicyForPermissionSet",
        "ListManagedPoliciesInPermissionSet",
        "ListCustomerManagedPolicyReferencesInPermissionSet",
        "GetPermissionsBoundaryForPermissionSet",
        "ListTagsForResource",
        "ListAccountsForProvisionedPermissionSet",
        "ListAccountAssignments",
    ),
    *_calls("identitystore", "identitystore", "ListUsers", "ListGroups", "ListGroupMemberships"),
)

_ALLOWED_OPS: frozenset[tuple[str, str]] = frozenset((c.service, c.operation) for c in API_CALLS)

GLOBAL_REGION = "us-east-1"
"""Where the global services (IAM, Organizations, S3 listing, STS) are called in the aws partition."""

DEFAULT_RATES: Mapping[str, float] = {
    # Requests per second per service, shared by every thread. IAM and Organizations have low
    # account-wide quotas that AWS does not publish as numbers; stay well under what the CLI tools use.
    "iam": 8.0,
    "organizations": 4.0,
    "sso-admin": 8.0,
    "identitystore": 8.0,
    "sts": 10.0,
}
DEFAULT_RATE = 20.0


class RateLimiter:
    """A token bucket per service, shared by every thread and every account of one collection.

    One bucket per service name for the whole run keeps the total polite whatever the number of
    accounts. It is conservative (calls through a member account's role mostly count against that
    account's limits); ``--rate`` raises it, and adaptive retry handles the throttling that remains.
    """

    def __init__(
        self,
        rates: Mapping[str, float] | None = None,
        *,
        default: float = DEFAULT_RATE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rates = dict(DEFAULT_RATES if rates is None else rates)
        self._default = default
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._stamp: dict[str, float] = {}

    def rate(self, service: str) -> float:
        return self._rates.get(service, self._default)

    def acquire(self, service: str) -> None:
        rate = self.rate(service)
        if rate <= 0:  # 0 or less: unlimited
            return
        burst = max(1.0, rate)
        while True:
            with self._lock:
                now = self._clock()
                tokens = self._tokens.get(service, burst)
                last = self._stamp.get(service, now)
                tokens = min(burst, tokens + (now - last) * rate)
                self._stamp[service] = now
                if tokens >= 1.0:
                    self._tokens[service] = tokens - 1.0
                    return
                self._tokens[service] = tokens
                wait = (1.0 - tokens) / rate
            self._sleep(wait)


class CallStats:
    """Counts of API calls made, by (service, operation) and by account; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_operation: Counter[tuple[str, str]] = Counter()
        self.by_account: Counter[str] = Counter()

    def add(self, account_id: str, service: str, operation: str) -> None:
        with self._lock:
            self.by_operation[(service, operation)] += 1
            self.by_account[account_id] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_operation.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSpec:
    """What a client is for: handed to ``client_hook`` so tests can attach stubs or fault injectors."""

    account_id: str
    service: str
    region: str
    purpose: str = "default"
    """``"access-advisor"`` for the IAM client that runs Access Advisor jobs, else ``"default"``."""


ClientHook = Callable[[ClientSpec, BaseClient], None]


PARTIAL_REGION_SERVICES = frozenset({"apprunner", "bedrock-agentcore-control"})
"""Services offered in some regions only. Where a region has no endpoint the call fails to connect;
retrying that ten times with back-off costs about a minute per call, so these clients try at most
``PARTIAL_REGION_ATTEMPTS`` times (throttling is still retried, just less)."""
PARTIAL_REGION_ATTEMPTS = 3
UNREACHABLE_CODES = frozenset({"EndpointConnectionError", "ConnectTimeoutError", "UnknownEndpointError"})


@dataclass(slots=True, kw_only=True)
class Clients:
    """boto3 clients for one account (one session), created once per (service, region, purpose)."""

    account_id: str
    session: boto3.Session
    config: Config
    limiter: RateLimiter
    stats: CallStats
    hook: ClientHook | None = None
    partition: str = "aws"
    """For the ARNs the collector has to build itself (S3 buckets, EC2 instances, Glue jobs)."""
    _cache: dict[tuple[str, str, str], BaseClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, service: str, region: str = GLOBAL_REGION, *, purpose: str = "default") -> BaseClient:
        key = (service, region, purpose)
        with self._lock:  # a boto3 Session is not thread-safe; clients made from it are
            client = self._cache.get(key)
            if client is None:
                config = self.config
                if service in PARTIAL_REGION_SERVICES:
                    config = config.merge(Config(retries={"mode": "adaptive",
                                                          "total_max_attempts": PARTIAL_REGION_ATTEMPTS}))
                client = self.session.client(service, region_name=region, config=config)
                self._instrument(client)
                if service == "s3control":
                    _no_account_host_with_endpoint_url(client)
                if self.hook is not None:
                    self.hook(
                        ClientSpec(
                            account_id=self.account_id, service=service, region=region, purpose=purpose
                        ),
                        client,
                    )
                self._cache[key] = client
            return client

    def _instrument(self, client: BaseClient) -> None:
        service = client.meta.service_model.service_name
        account_id = self.account_id

        def before_call(model: Any, **_: Any) -> None:
            if (service, model.name) not in _ALLOWED_OPS:
                raise UnlistedCallError(
                    f"internal error: the collector called {service}:{model.name}, which is not in API_CALLS "
                    "(and so not in the shipped collector policy)"
                )
            self.limiter.acquire(service)
            self.stats.add(account_id, service, model.name)

        client.meta.events.register("before-call.*.*", before_call)


def _no_account_host_with_endpoint_url(client: BaseClient) -> None:
    """With an endpoint URL configured (an emulator, a proxy), S3 Control is called at that URL's own host.

    S3 Control's account-level operations are addressed at ``<account-id>.s3-control.<region>.amazonaws.com``:
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_GetPublicAccessBlock.html
    botocore's endpoint rules put the account ID in front of a configured endpoint's host too
    (``<account-id>.127.0.0.1``), which sends a DNS query for a name no resolver can answer, off the machine.
    ``Config(inject_host_prefix=False)`` does not prevent it (the prefix comes from the endpoint rule set, not the
    operation's hostPrefix), so the host is put back before the request is signed. Without an endpoint URL
    nothing changes: AWS's own host names carry the account ID as AWS documents.
    """
    configured: dict[str, str] = {}

    def remember(builtins: dict[str, Any], **_: Any) -> None:
        # SDK::Endpoint is the configured endpoint URL (endpoint_url, AWS_ENDPOINT_URL[_S3_CONTROL], config file).
        endpoint = builtins.get("SDK::Endpoint")
        if isinstance(endpoint, str) and endpoint:
            configured["host"] = urllib.parse.urlsplit(endpoint).netloc

    def own_host(request: Any, **_: Any) -> None:
        host = configured.get("host")
        if not host:
            return
        parts = urllib.parse.urlsplit(request.url)
        if parts.netloc != host and parts.netloc.endswith("." + host):
            request.url = urllib.parse.urlunsplit(parts._replace(netloc=host))

    client.meta.events.register("before-endpoint-resolution.s3-control", remember)
    client.meta.events.register("before-sign.s3-control", own_host)


def make_config(*, max_attempts: int, max_pool: int) -> Config:
    # Adaptive mode adds client-side rate limiting on top of standard retries when AWS throttles:
    # https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
    # botocore's "max_attempts" key counts retries only; "total_max_attempts" counts the first try too:
    # https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
    return Config(
        retries={"mode": "adaptive", "total_max_attempts": max_attempts},
        max_pool_connections=max(10, max_pool),
        connect_timeout=10,
        read_timeout=60,
    )


# ---------------------------------------------------------------- error capture


class ErrorLog:
    """Collection errors of one account, appended from several threads."""

    def __init__(self, account_id: str | None) -> None:
        self.account_id = account_id
        self._lock = threading.Lock()
        self.errors: list[CollectionError] = []

    def add(
        self,
        *,
        service: str,
        call: str,
        error_code: str,
        message: str = "",
        region: str | None = None,
        resource: str | None = None,
    ) -> None:
        err = CollectionError(
            account_id=self.account_id,
            region=region,
            service=service,
            call=call,
            error_code=error_code,
            message=message[:500],
            resource=resource,
        )
        with self._lock:
            self.errors.append(err)

    def unreachable(self, service: str, region: str) -> bool:
        """Whether a call to ``service`` in ``region`` already failed to reach an endpoint."""
        with self._lock:
            return any(e.service == service and e.region == region and e.error_code in UNREACHABLE_CODES
                       for e in self.errors)

    def add_exception(
        self, exc: BaseException, *, service: str, call: str, region: str | None, resource: str | None = None
    ) -> None:
        """Record a failure, or raise ``CredentialsError`` when it is the credentials that failed."""
        stop_on_credentials(exc, service=service, call=call)
        code, message = error_code_of(exc)
        self.add(
            service=service, call=call, error_code=code, message=message, region=region, resource=resource
        )

    def guard(
        self, *, service: str, call: str, region: str | None, resource: str | None = None
    ) -> _Guard:
        """``with log.guard(...):`` records any exception of the block as this call's failure and goes on.

        For the work done on one item of an answer (one principal, one bucket): whatever goes wrong there
        (a malformed answer, an unexpected exception type) costs that item, recorded, and nothing else.
        The run's own stops (credentials, cancellation, a refused unlisted call) pass through.
        """
        return _Guard(self, service=service, call=call, region=region, resource=resource)


class _Guard:
    def __init__(
        self, log: ErrorLog, *, service: str, call: str, region: str | None, resource: str | None
    ) -> None:
        self.log, self.service, self.call, self.region, self.resource = log, service, call, region, resource

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None
    ) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, (CollectorError, Cancelled)):
            return False
        self.log.add_exception(exc, service=self.service, call=self.call, region=self.region,
                               resource=self.resource)
        return True


def stop_on_credentials(exc: BaseException, *, service: str, call: str) -> None:
    """Raise ``CredentialsError`` when ``exc`` says the credentials no longer work (every later call would fail)."""
    code, message = error_code_of(exc)
    if isinstance(exc, _CREDENTIAL_EXCEPTIONS) or code in CREDENTIAL_ERROR_CODES:
        raise CredentialsError(
            f"the AWS credentials stopped working ({service}:{call}: {code}: {message}); renew them and run the "
            "same command with --resume: the accounts already collected are kept in the work directory"
        ) from None


def error_code_of(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(
            err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "Unknown")
        )
        return code, str(err.get("Message") or exc)
    return type(exc).__name__, str(exc)


class _Missing:
    """A "not found" answer that is a fact (no bucket policy), not a failure."""


MISSING = _Missing()


def call(
    client: BaseClient,
    operation: str,
    log: ErrorLog,
    *,
    region: str | None,
    resource: str | None = None,
    missing: tuple[str, ...] = (),
    **params: Any,
) -> dict[str, Any] | _Missing | None:
    """Call ``operation``; on failure record a CollectionError and return None.

    Error codes in ``missing`` mean "there is none" (NoSuchBucketPolicy) and return ``MISSING``.
    """
    service = client.meta.service_model.service_name
    method = getattr(client, _snake(client, operation))
    try:
        result: dict[str, Any] = method(**params)
        return result
    except (CollectorError, Cancelled):
        raise
    except ClientError as exc:
        code, _ = error_code_of(exc)
        if code in missing:
            return MISSING
        log.add_exception(exc, service=service, call=operation, region=region, resource=resource)
        return None
    except Exception as exc:
        # Whatever the type: botocore raises ResponseParserError (not a BotoCoreError) for an HTTP 500 whose
        # body is not the protocol's XML or JSON, and an emulator or a proxy can answer anything.
        log.add_exception(exc, service=service, call=operation, region=region, resource=resource)
        return None


def pages(
    client: BaseClient,
    operation: str,
    log: ErrorLog,
    *,
    region: str | None,
    resource: str | None = None,
    **params: Any,
) -> Iterator[dict[str, Any]]:
    """Every page of a paginated call; a failure part-way is recorded and ends the iteration."""
    service = client.meta.service_model.service_name
    name = _snake(client, operation)
    try:
        if client.can_paginate(name):
            yield from client.get_paginator(name).paginate(**params)
        else:
            yield getattr(client, name)(**params)
    except (CollectorError, Cancelled):
        raise
    except Exception as exc:  # any type, as in ``call``
        log.add_exception(exc, service=service, call=operation, region=region, resource=resource)


def token_pages(
    client: BaseClient,
    operation: str,
    log: ErrorLog,
    *,
    region: str | None,
    resource: str | None = None,
    token: str = "NextToken",
    **params: Any,
) -> Iterator[dict[str, Any]]:
    """Every page of a call that takes a next-page token but has no botocore paginator (App Runner's List*).

    A failure part-way is recorded and ends the iteration, as in ``pages``.
    """
    next_token: str | None = None
    while True:
        extra: dict[str, Any] = {token: next_token} if next_token else {}
        got = call(client, operation, log, region=region, resource=resource, **params, **extra)
        if not isinstance(got, dict):
            return
        yield got
        next_token = got.get(token) or None
        if next_token is None:
            return


def _snake(client: BaseClient, operation: str) -> str:
    names: dict[str, str] = client.meta.method_to_api_mapping
    for py_name, api_name in names.items():
        if api_name == operation:
            return py_name
    raise UnlistedCallError(
        f"internal error: {operation} is not an operation of {client.meta.service_model.service_name}"
    )


# ---------------------------------------------------------------- value helpers


def iso(value: Any) -> str | None:
    """AWS timestamps as ISO 8601 in UTC (boto3 parses them into aware datetimes)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return str(value.astimezone(UTC).isoformat())
    return str(value)


def document(value: Any) -> dict[str, Any] | None:
    """A policy document as a dict.

    boto3 already URL-decodes and parses IAM's documents (GetAccountAuthorizationDetails,
    GetRole...); other services return the JSON as a string. IAM's raw API form is URL-encoded JSON
    (https://docs.aws.amazon.com/IAM/latest/APIReference/API_PolicyVersion.html), handled too.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return value
    text = str(value)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = json.loads(urllib.parse.unquote(text))
    if not isinstance(parsed, dict):
        raise ValueError("a policy document is a JSON object")
    return parsed


def tags_of(items: Any, key: str = "Key", value: str = "Value") -> dict[str, str]:
    if not items:
        return {}
    if isinstance(items, dict):
        return {str(k): str(v) for k, v in items.items()}
    return {str(t[key]): str(t.get(value, "")) for t in items}
