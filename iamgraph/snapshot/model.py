"""The snapshot: raw facts about an AWS estate, as collected. The on-disk contract (docs/snapshot-format.md).

Rules that hold it together:
- raw facts only: policy documents verbatim (as parsed JSON objects), nothing derived;
- ARNs are the keys that tie things together (a role's attached policies are ARNs, a compute
  item names its role ARN);
- no secrets: no access key secrets, no passwords, no SAML metadata documents;
- everything that could not be read is a ``CollectionError``, never a silent gap.

Field names are snake_case; timestamps are ISO 8601 strings as AWS returned them (UTC).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.1"
"""``MAJOR.MINOR``. A reader refuses a snapshot of a newer major version; minor additions are optional fields."""

PolicyDocument = dict[str, Any]
"""A policy document as JSON (decoded from IAM's URL-encoded form), kept verbatim."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ---------------------------------------------------------------- IAM


class PolicyVersion(_Model):
    version_id: str
    is_default: bool
    document: PolicyDocument
    create_date: str | None = None


class ManagedPolicy(_Model):
    """A customer managed policy (ARN in the account) or an AWS managed one (``arn:aws:iam::aws:policy/...``)."""

    arn: str
    name: str
    policy_id: str | None = None
    path: str = "/"
    default_version_id: str
    versions: list[PolicyVersion]
    attachment_count: int | None = None
    permissions_boundary_usage_count: int | None = None
    is_attachable: bool = True
    description: str | None = None
    create_date: str | None = None
    update_date: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    def default_document(self) -> PolicyDocument | None:
        for v in self.versions:
            if v.version_id == self.default_version_id:
                return v.document
        for v in self.versions:
            if v.is_default:
                return v.document
        return None


class InlinePolicy(_Model):
    name: str
    document: PolicyDocument


class AccessKey(_Model):
    """Access key metadata (never the secret)."""

    access_key_id: str
    status: Literal["Active", "Inactive"]
    create_date: str | None = None
    last_used_date: str | None = None
    last_used_service: str | None = None
    last_used_region: str | None = None


class User(_Model):
    arn: str
    name: str
    user_id: str
    path: str = "/"
    create_date: str | None = None
    password_last_used: str | None = None
    has_console_password: bool | None = None
    """None when unknown (the authorization details do not say; the credential report does)."""
    mfa_devices: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    """Group names, as GetAccountAuthorizationDetails lists them."""
    attached_managed_policies: list[str] = Field(default_factory=list)
    inline_policies: list[InlinePolicy] = Field(default_factory=list)
    permissions_boundary: str | None = None
    access_keys: list[AccessKey] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)


class Group(_Model):
    arn: str
    name: str
    group_id: str
    path: str = "/"
    create_date: str | None = None
    attached_managed_policies: list[str] = Field(default_factory=list)
    inline_policies: list[InlinePolicy] = Field(default_factory=list)


class RoleLastUsed(_Model):
    last_used_date: str | None = None
    region: str | None = None


class Role(_Model):
    arn: str
    name: str
    role_id: str
    path: str = "/"
    create_date: str | None = None
    description: str | None = None
    max_session_duration: int | None = None
    trust_policy: PolicyDocument
    attached_managed_policies: list[str] = Field(default_factory=list)
    inline_policies: list[InlinePolicy] = Field(default_factory=list)
    permissions_boundary: str | None = None
    instance_profiles: list[str] = Field(default_factory=list)
    """Instance profile ARNs that contain this role."""
    tags: dict[str, str] = Field(default_factory=dict)
    last_used: RoleLastUsed | None = None


class InstanceProfile(_Model):
    arn: str
    name: str
    instance_profile_id: str | None = None
    path: str = "/"
    roles: list[str] = Field(default_factory=list)
    """Role ARNs."""
    create_date: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class SamlProvider(_Model):
    arn: str
    valid_until: str | None = None
    create_date: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class OidcProvider(_Model):
    arn: str
    url: str
    client_ids: list[str] = Field(default_factory=list)
    thumbprints: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------- resources and compute

ResourceType = Literal[
    "s3:bucket",
    "kms:key",
    "sqs:queue",
    "sns:topic",
    "lambda:function",
    "secretsmanager:secret",
    "ecr:repository",
    "other",
]


class Resource(_Model):
    """A resource that has a resource-based policy or tags iamgraph cares about.

    ``policy`` is the resource-based policy verbatim (None when the resource has none).
    ``attributes`` holds raw per-type facts, e.g. for S3 ``public_access_block`` (the four flags),
    ``policy_status``; for Lambda ``function_url_auth_type``; for KMS ``key_manager``
    (AWS|CUSTOMER) and ``grants`` (list of grant objects as returned by ListGrants).
    """

    arn: str
    type: ResourceType
    region: str | None = None
    name: str | None = None
    policy: PolicyDocument | None = None
    policy_unknown: bool = False
    """The policy could not be read (a collection error says why): ``policy`` None then means unknown,
    not absent, and every answer about the resource says it is incomplete. Older snapshots lack it;
    the graph also recognises an unread policy from ``Snapshot.errors``."""
    tags: dict[str, str] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(default_factory=dict)



RESOURCE_POLICY_CALLS: dict[str, str] = {
    # Resource type -> the call that reads its resource-based policy. The live collector and the offline import
    # record a failed read under this name (``CollectionError.call``), and the queries find an unread policy by
    # it, so the three must use one table.
    "s3:bucket": "GetBucketPolicy",
    "kms:key": "GetKeyPolicy",
    "sqs:queue": "GetQueueAttributes",
    "sns:topic": "GetTopicAttributes",
    "lambda:function": "GetPolicy",
    "secretsmanager:secret": "GetResourcePolicy",
    "ecr:repository": "GetRepositoryPolicy",
}

ComputeKind = Literal[
    "lambda_function",
    "ec2_instance",
    "cloudformation_stack",
    "codebuild_project",
    "glue_job",
    "glue_dev_endpoint",
    "sagemaker_notebook",
    "ecs_task_definition",
    "ecs_service",
    "ssm_managed_instance",
    "ec2_launch_template",
    "cloudformation_stackset",
    "apprunner_service",
    "bedrock_agentcore_code_interpreter",
    "bedrock_agentcore_runtime",
    "bedrock_agentcore_browser",
]


class Compute(_Model):
    """Something that runs with a role: the graph needs it for paths that take over existing compute."""

    arn: str
    kind: ComputeKind
    region: str
    name: str | None = None
    role_arn: str | None = None
    instance_profile_arn: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------- accounts and organization


class Account(_Model):
    """One AWS account's IAM and resource facts. AWS managed policies live in ``Snapshot.aws_managed_policies``."""

    account_id: str
    name: str | None = None
    alias: str | None = None
    collected_at: str | None = None
    users: list[User] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    roles: list[Role] = Field(default_factory=list)
    policies: list[ManagedPolicy] = Field(default_factory=list)
    """Customer managed policies of this account."""
    instance_profiles: list[InstanceProfile] = Field(default_factory=list)
    saml_providers: list[SamlProvider] = Field(default_factory=list)
    oidc_providers: list[OidcProvider] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)
    compute: list[Compute] = Field(default_factory=list)
    credential_report: list[dict[str, str]] = Field(default_factory=list)
    """Rows of the IAM credential report CSV, columns as AWS names them (no secrets in it)."""
    public_access_block: dict[str, bool] | None = None
    """Account-level S3 Block Public Access (BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets)."""
    regions: list[str] = Field(default_factory=list)
    """Regions the collector read (enabled regions)."""


class OrgUnit(_Model):
    id: str
    arn: str | None = None
    name: str
    parent_id: str
    """The root id (``r-...``) or the parent OU id."""


class OrgAccount(_Model):
    id: str
    arn: str | None = None
    name: str | None = None
    email: str | None = None
    status: str | None = None
    parent_id: str
    joined_method: str | None = None
    joined_timestamp: str | None = None


class OrgPolicy(_Model):
    id: str
    arn: str | None = None
    name: str
    type: Literal["SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"]
    aws_managed: bool = False
    description: str | None = None
    document: PolicyDocument
    targets: list[str] = Field(default_factory=list)
    """Ids of the root, OUs and accounts the policy is attached to."""


class DelegatedAdministrator(_Model):
    account_id: str
    service_principal: str


class Organization(_Model):
    id: str
    arn: str | None = None
    management_account_id: str
    root_id: str
    root_arn: str | None = None
    feature_set: str | None = None
    enabled_policy_types: list[str] = Field(default_factory=list)
    """Policy types enabled on the root (SERVICE_CONTROL_POLICY, RESOURCE_CONTROL_POLICY)."""
    organizational_units: list[OrgUnit] = Field(default_factory=list)
    accounts: list[OrgAccount] = Field(default_factory=list)
    policies: list[OrgPolicy] = Field(default_factory=list)
    delegated_administrators: list[DelegatedAdministrator] = Field(default_factory=list)


# ---------------------------------------------------------------- Identity Center


class CustomerManagedPolicyReference(_Model):
    name: str
    path: str = "/"


class PermissionsBoundaryRef(_Model):
    managed_policy_arn: str | None = None
    customer_managed_policy: CustomerManagedPolicyReference | None = None


class PermissionSet(_Model):
    arn: str
    name: str
    description: str | None = None
    session_duration: str | None = None
    inline_policy: PolicyDocument | None = None
    aws_managed_policies: list[str] = Field(default_factory=list)
    customer_managed_policies: list[CustomerManagedPolicyReference] = Field(default_factory=list)
    permissions_boundary: PermissionsBoundaryRef | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class AccountAssignment(_Model):
    account_id: str
    permission_set_arn: str
    principal_type: Literal["USER", "GROUP"]
    principal_id: str


class IdentityStoreUser(_Model):
    user_id: str
    user_name: str
    display_name: str | None = None


class IdentityStoreGroup(_Model):
    group_id: str
    display_name: str
    description: str | None = None


class GroupMembership(_Model):
    group_id: str
    user_id: str


class IdentityCenter(_Model):
    instance_arn: str
    identity_store_id: str
    home_region: str | None = None
    permission_sets: list[PermissionSet] = Field(default_factory=list)
    assignments: list[AccountAssignment] = Field(default_factory=list)
    users: list[IdentityStoreUser] = Field(default_factory=list)
    groups: list[IdentityStoreGroup] = Field(default_factory=list)
    memberships: list[GroupMembership] = Field(default_factory=list)


# ---------------------------------------------------------------- activity and errors


class TrackedAction(_Model):
    action_name: str
    last_accessed_time: str | None = None
    last_accessed_region: str | None = None
    last_accessed_entity: str | None = None


class ServiceLastAccessed(_Model):
    """One entry of GetServiceLastAccessedDetails (ACTION_LEVEL granularity where available)."""

    principal_arn: str
    service_namespace: str
    service_name: str | None = None
    last_authenticated: str | None = None
    last_authenticated_entity: str | None = None
    last_authenticated_region: str | None = None
    total_authenticated_entities: int | None = None
    tracked_actions: list[TrackedAction] = Field(default_factory=list)
    job_completion_date: str | None = None


class Activity(_Model):
    access_advisor: list[ServiceLastAccessed] = Field(default_factory=list)
    tracking_period_days: int | None = None


class CollectionError(_Model):
    """Something that could not be read, and why. Recorded instead of dropped."""

    account_id: str | None = None
    region: str | None = None
    service: str
    call: str
    error_code: str
    message: str = ""
    resource: str | None = None


# ---------------------------------------------------------------- the snapshot


class Snapshot(_Model):
    schema_version: str = SCHEMA_VERSION
    collected_at: str
    source: Literal["collector", "import", "demo"] = "import"
    tool_version: str | None = None
    partition: str = "aws"
    content_hash: str | None = None
    """sha256 of the canonical JSON of everything else; set when written."""
    organization: Organization | None = None
    accounts: list[Account] = Field(default_factory=list)
    aws_managed_policies: list[ManagedPolicy] = Field(default_factory=list)
    """AWS managed policies referenced by any account (identical across accounts, so stored once)."""
    identity_center: IdentityCenter | None = None
    activity: Activity = Field(default_factory=Activity)
    errors: list[CollectionError] = Field(default_factory=list)

    def account(self, account_id: str) -> Account | None:
        for acct in self.accounts:
            if acct.account_id == account_id:
                return acct
        return None
