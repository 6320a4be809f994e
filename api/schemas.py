"""Wire schemas (pydantic): what goes over HTTP. Separate from the internal frozen dataclasses on purpose, so
an internal refactor never silently changes the API. Field names are camelCase where they repeat the engine's
batch format (docs/engine.md), snake_case elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from iamgraph.eval import Mode

JsonObject = dict[str, Any]
PolicyDoc = Annotated[JsonObject, Field(description="An IAM policy document as JSON")]


class _In(BaseModel):
    # strict: 0 is not false and "5" is not 5 — what the OpenAPI document says is what is accepted.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# ------------------------------------------------------------------------------------------- simulate

ContextValue = str | bool | int | float | list[str] | None


class SimRequest(_In):
    principal: str = Field(min_length=1, max_length=2048)
    action: str = Field(min_length=1, max_length=256)
    resource: str = Field(min_length=1, max_length=2048)
    resourceAccount: str | None = Field(default=None, pattern=r"^\d{12}$")
    context: dict[str, ContextValue] = Field(default_factory=dict)


class SimPolicies(_In):
    """Explicit policies (the engine's batch format). Without ``policies`` the loaded snapshot supplies them."""

    identity: list[PolicyDoc | str] = Field(default_factory=list)
    resource: PolicyDoc | str | None = None
    permissionBoundary: PolicyDoc | str | None = None
    session: PolicyDoc | str | None = None
    scps: list[list[PolicyDoc | str]] = Field(default_factory=list)
    rcps: list[list[PolicyDoc | str]] = Field(default_factory=list)
    restrictPublicBuckets: bool = False


class SimLine(_In):
    id: str | int | None = None
    request: SimRequest
    policies: SimPolicies | None = None


class SimulateBody(_In):
    """One request (``request``, optional ``policies``) or a batch (``batch``: lines of the engine's format)."""

    mode: Annotated[Mode, Field(strict=False)] = Mode.STRICT
    """strict | discovery (an enum: checked from its JSON string)"""
    explain: bool = True
    request: SimRequest | None = None
    policies: SimPolicies | None = None
    batch: list[SimLine] | None = Field(default=None, min_length=1)


class ResidualOut(_Out):
    operator: str
    key: str
    values: list[Any]
    negated: bool


class StatementRefOut(_Out):
    policyType: str
    policyId: str
    statementIndex: int
    sid: str | None = None
    effect: str


class SimResult(_Out):
    id: str | int | None = None
    decision: Literal["Allowed", "ExplicitlyDenied", "ImplicitlyDenied"]
    conditional: bool
    conditions: list[list[ResidualOut]]
    reasons: list[StatementRefOut]
    blockedBy: list[str]
    error: str | None = None
    unsuppliedKeys: list[str] = []
    """Strict mode: condition keys the answer turned on that the request did not supply (iamgraph.eval.unsupplied)."""
    note: str | None = None
    """Strict mode, with unsuppliedKeys: how to supply them."""


class SimulateResponse(_Out):
    mode: Mode
    snapshot_hash: str
    """The snapshot the snapshot-based lines were decided on (a reload never changes it mid-request)."""
    source: Literal["snapshot", "explicit", "mixed"]
    results: list[SimResult]


# ------------------------------------------------------------------------------------------- paging


class Page(_Out):
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


# ------------------------------------------------------------------------------------------- graph


class HopOut(_Out):
    kind: str
    source: str
    target: str
    via: list[str]
    target_resource: str | None = None
    service: str | None = None
    note: str | None = None
    statements: list[StatementRefOut]
    conditions: list[list[ResidualOut]]
    assumptions: list[str]


class PathOut(_Out):
    nodes: list[str]
    hops: list[HopOut]
    definite: bool
    conditions: list[list[ResidualOut]]
    assumptions: list[str]


class WhoCanEntry(_Out):
    principal: str
    kind: str
    action: str
    resource: str
    how: str
    """direct | path | resource-policy-takeover | escalation"""
    holder: str
    """The principal that makes the final request (the principal itself when ``how`` is direct)."""
    definite: bool
    conditions: list[list[ResidualOut]]
    assumptions: list[str]
    statements: list[StatementRefOut]
    path: PathOut
    changes: list[HopOut]
    alternatives: list[PathOut]


class WhoCanResponse(_Out):
    resources: list[str]
    actions: list[str]
    page: Page
    accesses: list[WhoCanEntry]
    notes: list[str] = Field(default_factory=list)


class AccessEntry(_Out):
    service: str
    access_level: str
    actions: list[str]
    resource: str
    """The resource pattern as the granting statement writes it (the engine confirmed each action on it)."""
    via: str
    """The principal whose policies grant it: the queried principal or one it can act as."""
    path: PathOut
    conditional: bool


class AccessResponse(_Out):
    principal: str
    page: Page
    access: list[AccessEntry]
    notes: list[str] = Field(default_factory=list)


class EscalationOut(_Out):
    principal: str
    kind: str
    """already-admin | path-to-admin | change-permissions"""
    account: str
    admin: str
    path: PathOut
    changes: list[HopOut]
    change_paths: list[PathOut]
    definite: bool
    conditions: list[list[ResidualOut]]
    assumptions: list[str]
    definite_path: PathOut | None = None
    """When this escalation needs conditions: a longer path to an admin of the account that needs none."""


class PathsResponse(_Out):
    principal: str
    admin: bool
    """The principal is admin-equivalent itself."""
    page: Page
    escalations: list[EscalationOut]
    blast_radius: list[str]
    """Every principal it can act as, directly or through a path (itself excluded)."""
    notes: list[str] = Field(default_factory=list)
    """``incomplete: <resource>: <reason>`` for each resource the answer could not account for."""


class ExposureEntry(_Out):
    resource: str
    resource_type: str
    principal: str
    scope: str
    """public | outside-organization | federated"""
    actions: list[str]
    definite: bool
    conditions: list[list[ResidualOut]]
    statements: list[StatementRefOut]
    path: PathOut | None = None


class ExposureResponse(_Out):
    page: Page
    exposures: list[ExposureEntry]
    notes: list[str] = Field(default_factory=list)
    """``incomplete: <resource>: <reason>`` for each resource the answer could not account for."""


class SodEvidence(_Out):
    capability: str
    action: str
    resource: str
    holder: str
    path: PathOut
    statements: list[StatementRefOut]
    conditions: list[list[ResidualOut]]


class SodConflictOut(_Out):
    rule: str
    title: str
    severity: str
    principal: str
    resource: str | None = None
    definite: bool
    evidence: list[SodEvidence]


class SodResponse(_Out):
    page: Page
    conflicts: list[SodConflictOut]
    notes: list[str] = Field(default_factory=list)
    """``incomplete: <resource>: <reason>`` for each resource the answer could not account for."""


# ------------------------------------------------------------------------------------------- usage


class UnusedFindingOut(_Out):
    kind: str
    """unused-service | unused-action | unobservable-action | never-used-role | unused-password | ..."""
    severity: str
    confidence: str
    account_id: str | None = None
    subject: str
    """The action, service prefix, policy ARN, access key id or ``password``."""
    reason: str
    last_seen: str | None = None
    count: int
    source: str | None = None


class UnusedResponse(_Out):
    principal: str
    window_start: str
    window_end: str
    page: Page
    findings: list[UnusedFindingOut]
    notes: list[str] = Field(default_factory=list)


class RecommendationResponse(_Out):
    principal: str
    recommendation: JsonObject
    """The recommender's proposal as JSON (policies, verification results), docs/recommend.md."""


# ------------------------------------------------------------------------------------------- access requests


class NewRole(_In):
    account_id: str = Field(pattern=r"^\d{12}$")
    name: str = Field(pattern=r"^[\w+=,.@-]{1,64}$")
    path: str = Field(default="/", pattern=r"^/([\x21-\x7e]*/)?$", max_length=512)
    trust_policy: PolicyDoc
    permissions_boundary: str | None = Field(default=None, max_length=2048)


class IdentityCenterPrincipal(_In):
    type: Literal["USER", "GROUP"]
    id: str = Field(min_length=1, max_length=128)


class PrincipalWho(_In):
    principal_arn: str = Field(min_length=1, max_length=2048)
    """An existing IAM user or role."""


class NewRoleWho(_In):
    new_role: NewRole


class IdentityCenterWho(_In):
    identity_center: IdentityCenterPrincipal


def _one_key(keys: tuple[str, ...]) -> Callable[[Any], str | None]:
    """A discriminator: the one key of ``keys`` the object has (None, so an error naming them, otherwise)."""

    def pick(value: Any) -> str | None:
        if isinstance(value, BaseModel):
            value = value.model_dump(exclude_none=True)
        if not isinstance(value, dict):
            return None
        present = [k for k in keys if k in value]
        return present[0] if len(present) == 1 else None

    return pick


_WHO = ("principal_arn", "new_role", "identity_center")
Who = Annotated[
    Annotated[PrincipalWho, Tag("principal_arn")] | Annotated[NewRoleWho, Tag("new_role")]
    | Annotated[IdentityCenterWho, Tag("identity_center")],
    Discriminator(_one_key(_WHO), custom_error_type="exactly_one",
                  custom_error_message="give exactly one of principal_arn, new_role, identity_center"),
]
"""Exactly one of: an existing IAM principal, a new role with its trust policy, an Identity Center user/group."""


class PolicyGrant(_In):
    policy_document: PolicyDoc
    """A policy to put inline on the principal."""
    policy_name: str | None = Field(default=None, pattern=r"^[\w+=,.@-]{1,128}$")


class ManagedPolicyGrant(_In):
    managed_policy_arn: str = Field(min_length=1, max_length=2048)


class GroupGrant(_In):
    group_arn: str = Field(min_length=1, max_length=2048)


class PermissionSetGrant(_In):
    permission_set_arn: str = Field(min_length=1, max_length=2048)
    account_id: str = Field(pattern=r"^\d{12}$")
    """The account the permission set is assigned in."""


_WHAT = ("policy_document", "managed_policy_arn", "group_arn", "permission_set_arn")
What = Annotated[
    Annotated[PolicyGrant, Tag("policy_document")] | Annotated[ManagedPolicyGrant, Tag("managed_policy_arn")]
    | Annotated[GroupGrant, Tag("group_arn")] | Annotated[PermissionSetGrant, Tag("permission_set_arn")],
    Discriminator(_one_key(_WHAT), custom_error_type="exactly_one",
                  custom_error_message="give exactly one of policy_document, managed_policy_arn, group_arn, "
                  "permission_set_arn"),
]
"""Exactly one grant."""


class StatedNeed(_In):
    actions: list[str] = Field(min_length=1, max_length=200)
    resources: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=200)


class AccessRequestBody(_In):
    who: Who
    what: What
    justification: str | None = Field(default=None, max_length=4000)
    duration_hours: int | None = Field(default=None, ge=1, le=8760)
    need: StatedNeed | None = None


class Verdict(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    DENY = "deny"


class ReasonOut(_Out):
    code: str
    """Stable: grants_admin, opens_privilege_escalation, exposes_outside_org, grant_reaches_outsiders,
    creates_sod_conflict, lint_findings, new_sensitive_access, broader_than_need, need_not_covered,
    incomplete_analysis, new_conditional_access, no_new_access (docs/api.md)."""
    effect: Verdict
    """What this reason alone asks for."""
    message: str
    data: JsonObject = Field(default_factory=dict)


class NewAccessEntry(_Out):
    action: str
    resource: str
    access_level: str | None = None
    before: Literal["denied", "conditional"]
    definite: bool
    conditions: list[list[ResidualOut]]
    sensitive: str | None = None
    """The resource's DataClassification tag, when it has one."""


class NewAccessOut(_Out):
    total: int
    returned: int
    truncated: bool
    checked_pairs: int
    actions_considered: int
    entries: list[NewAccessEntry]


class CoverageOut(_Out):
    pairs: int
    already_granted: int
    ratio: float | None = None


class LintFindingOut(_Out):
    issue: str
    title: str
    severity: str
    location: str
    detail: str
    policy: str


class AlternativeOut(_Out):
    policy: JsonObject
    verified: bool
    """The engine allows every stated (action, resource) with the alternative in place of the grant."""
    covers_need: list[str]
    not_covered: list[str]
    """Stated needs the requested grant does not cover either (the alternative still names them)."""
    already_granted: list[str]
    removed_from_grant_actions: int
    """Actions the requested grant allows that the alternative does not."""


class GraphCostOut(_Out):
    base_build_seconds: float | None = None
    after_build_seconds: float


class AccessRequestResponse(_Out):
    request_id: str
    """sha256 of the canonical request and the snapshot hash: the same request on the same snapshot, the same id."""
    snapshot_hash: str
    subject: str
    """The principal whose access changes (a new role's ARN, the role a permission set becomes...)."""
    verdict: Verdict
    reasons: list[ReasonOut]
    new_access: NewAccessOut
    privilege_escalation: list[PathOut]
    admin_after: bool
    sod_conflicts: list[SodConflictOut]
    lint: list[LintFindingOut]
    coverage: CoverageOut
    alternative: AlternativeOut | None = None
    justification: str | None = None
    duration_hours: int | None = None
    graph_cost: GraphCostOut | None = None
    notes: list[str] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------- admin


class HealthResponse(_Out):
    status: Literal["ok"]
    snapshot_loaded: bool
    graph_ready: bool
    usage_loaded: bool


class VersionResponse(_Out):
    iamgraph: str
    api: Literal["v1"]
    snapshot_hash: str
    collected_at: str
    schema_version: str
    source: str
    loaded_at: str
    generation: int
    catalog: str | None = None


class ReloadResponse(_Out):
    previous_hash: str
    snapshot_hash: str
    collected_at: str
    generation: int
    changed: bool
