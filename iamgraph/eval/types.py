"""The engine's public value types: what a request is, what a decision says.

This module is the contract between the engine and its callers (graph, query, recommend, API).
Extend it with new optional fields; do not change the meaning of existing ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from iamgraph.model.policy import Policy

ContextValue = str | bool | int | float | Sequence[str]


class DecisionKind(StrEnum):
    """AWS's words for the three outcomes."""

    ALLOWED = "Allowed"
    EXPLICITLY_DENIED = "ExplicitlyDenied"
    IMPLICITLY_DENIED = "ImplicitlyDenied"


class PolicyType(StrEnum):
    IDENTITY = "identity"
    RESOURCE = "resource"
    SCP = "scp"
    RCP = "rcp"
    PERMISSION_BOUNDARY = "permissionBoundary"
    SESSION = "session"
    VPC_ENDPOINT = "vpcEndpoint"
    """The policy of the VPC endpoint the request goes through."""


class Mode(StrEnum):
    STRICT = "strict"
    """The given context is the whole context; absent keys behave as AWS documents."""
    DISCOVERY = "discovery"
    """A condition on a key nobody supplied is not guessed: the answer becomes conditional."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One authorization question.

    ``principal``: an ARN (user, role, assumed-role session, federated user, account root),
    ``"anonymous"``, or a service principal (``lambda.amazonaws.com``).
    ``resource_account``: needed when the resource ARN has no account (S3); else derived.
    ``context``: condition keys as AWS names them (case-insensitive); values are strings, booleans,
    numbers or lists of strings for multi-valued keys.
    """

    principal: str
    action: str
    resource: str
    resource_account: str | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedPolicy:
    """A parsed policy with the identity callers use to refer to it (an ARN, ``role/x:inline-name``...)."""

    policy_id: str
    policy: Policy


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgLevelRef:
    """One level of an organization chain: the root, an OU, or the account (the places SCPs and RCPs
    are attached; https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_inheritance_auth.html)."""

    kind: str
    """``root``, ``ou`` or ``account``."""
    target_id: str
    """``r-...``, ``ou-...`` or the account id."""
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySet:
    """Every policy that applies to one request.

    ``scps``/``rcps``: one tuple of policies per level, root first, then each OU, then the account.
    An empty outer tuple means "no organization policies apply" (not "deny").
    """

    identity: tuple[NamedPolicy, ...] = ()
    resource: NamedPolicy | None = None
    permission_boundary: NamedPolicy | None = None
    session: NamedPolicy | None = None
    scps: tuple[tuple[NamedPolicy, ...], ...] = ()
    rcps: tuple[tuple[NamedPolicy, ...], ...] = ()
    scp_levels: tuple[OrgLevelRef, ...] = ()
    """What each entry of ``scps`` is (same order); empty when not known (the batch format), and then
    explanations name levels by position only."""
    rcp_levels: tuple[OrgLevelRef, ...] = ()
    """What each entry of ``rcps`` is (same order), as ``scp_levels``."""
    kms_grants: tuple[NamedPolicy, ...] = ()
    """The KMS key's grants, each as the Allow statement(s) it amounts to (``kms_grants.grant_policy``);
    evaluated with the key policy."""
    aws_managed_resource: bool = False
    """The resource is managed by AWS (an AWS managed KMS key): service rules that only such resources
    obey apply (``service_rules.py``)."""
    vpc_endpoint_policy: NamedPolicy | None = None
    """The policy of the VPC endpoint the request goes through (None: not through an endpoint, or
    unknown): it must allow the request too, and its Deny denies it."""
    restrict_public_buckets: bool = False
    """S3 Block Public Access ``RestrictPublicBuckets`` is on for the bucket (bucket or account level):
    a public bucket policy then grants nothing to anonymous or other-account callers."""
    unresolved: tuple[EvaluationError, ...] = ()
    """Policies that apply but could not be loaded (e.g. a managed policy missing from the snapshot);
    ``authorize`` copies them into ``Decision.errors``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementRef:
    """Which statement contributed to a decision."""

    policy_type: PolicyType
    policy_id: str
    statement_index: int
    sid: str | None = None
    effect: str = "Allow"
    level: OrgLevelRef | None = None
    """For an SCP or RCP statement: the root, OU or account where its policy is attached."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResidualCondition:
    """A condition the engine could not decide because its key was not supplied (discovery mode).

    ``negated`` is True when the clause comes from a Deny: access needs the clause to be false.
    """

    operator: str
    key: str
    values: tuple[Any, ...]
    negated: bool = False
    source: StatementRef | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationError:
    """A policy that could not be evaluated (e.g. an unknown condition operator)."""

    policy_type: PolicyType
    policy_id: str
    statement_index: int | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgLevelGap:
    """A level of the SCP or RCP chain where no policy allowed the request: every level, root to
    account, must allow it, so this level alone denies it implicitly."""

    policy_type: PolicyType
    index: int
    """Position in the chain, 0 = root."""
    level: OrgLevelRef | None
    """What the level is, when the caller said (``PolicySet.scp_levels``/``rcp_levels``)."""
    policy_ids: tuple[str, ...]
    """The policies attached there, none of which allowed it (empty: nothing attached)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRuleRef:
    """A rule of an AWS service that refuses a request whatever the policies say
    (``iamgraph.eval.service_rules``): its id, why, and the AWS page stating it."""

    rule_id: str
    reason: str
    doc: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The answer.

    ``decision`` is the strict outcome when ``conditions`` is empty. In discovery mode, when the
    answer depends on unsupplied keys, ``decision`` is ``Allowed`` and ``conditions`` holds the
    alternatives under which it is allowed: a disjunction (outer tuple) of conjunctions (inner tuple).
    ``reasons``: the statements that decided it (the Deny that denied, or the Allows that allowed).
    ``blocked_by``: policy types that blocked an otherwise-allowed request (SCP, RCP, boundary, ...).
    ``errors``: policies that could not be evaluated; never silently dropped.
    ``org_gaps``: for an implicit deny, the SCP/RCP levels (root, OU, account) where no policy allowed
    the request, with the policies attached there.
    ``unsupported_keys``: context keys the caller supplied that the action does not support (Service
    Authorization Reference); the engine treated them as absent.
    ``refused_by``: the AWS service rule that refuses the request whatever the policies say (the
    decision is then never ``Allowed``).
    """

    decision: DecisionKind
    reasons: tuple[StatementRef, ...] = ()
    blocked_by: tuple[PolicyType, ...] = ()
    conditions: tuple[tuple[ResidualCondition, ...], ...] = ()
    errors: tuple[EvaluationError, ...] = ()
    org_gaps: tuple[OrgLevelGap, ...] = ()
    refused_by: ServiceRuleRef | None = None
    unsupported_keys: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """Allowed without any residual condition."""
        return self.decision is DecisionKind.ALLOWED and not self.conditions

    @property
    def possible(self) -> bool:
        """Allowed outright or under some conditions (discovery mode)."""
        return self.decision is DecisionKind.ALLOWED

    @property
    def conditional(self) -> bool:
        return self.decision is DecisionKind.ALLOWED and bool(self.conditions)
