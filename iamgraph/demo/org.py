"""The demo organization: accounts, OUs, SCPs/RCP, Identity Center, the log archive and the audit roles; then the
workloads (iamgraph/demo/workloads.py) and the planted findings (iamgraph/demo/findings.py) on top.

Layout (index: name, OU): 0 management (root), 1 audit and 2 log-archive (Security), then prod-NN,
dev-NN, sandbox-NN in turn. prod-01 carries most planted findings, dev-01 the exposures, sandbox-01 the
SCP near miss; docs/demo-org.md lists them all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from iamgraph.demo.config import DemoConfig
from iamgraph.demo.context import (
    ALLOWED_REGIONS,
    HOME,
    SLUG,
    VENDOR_ACCOUNT,
    Ctx,
    Planned,
    key_policy,
    role_actor,
    tagged,
)
from iamgraph.demo.findings import plant_findings
from iamgraph.demo.ids import Ids
from iamgraph.demo.planted import PlantedItem
from iamgraph.demo.workloads import top_up, workloads
from iamgraph.demo.world import (
    AcctBuilder,
    Actor,
    Call,
    Doc,
    allow,
    call,
    deny,
    doc,
    trust_aws,
    trust_saml,
)
from iamgraph.snapshot.model import (
    AccountAssignment,
    CustomerManagedPolicyReference,
    DelegatedAdministrator,
    GroupMembership,
    IdentityCenter,
    IdentityStoreGroup,
    IdentityStoreUser,
    ManagedPolicy,
    OrgAccount,
    Organization,
    OrgPolicy,
    OrgUnit,
    PermissionsBoundaryRef,
    PermissionSet,
    SamlProvider,
)


@dataclass(slots=True)
class World:
    cfg: DemoConfig
    ids: Ids
    org: Organization
    identity_center: IdentityCenter
    accounts: list[AcctBuilder]
    aws_managed: dict[str, ManagedPolicy]
    actors: list[Actor] = field(default_factory=list)
    planted: list[PlantedItem] = field(default_factory=list)
    deviations: list[Planned] = field(default_factory=list)
    stale_credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    """User ARN -> credential-report facts from before the window (password/key last used)."""
    never_used: set[str] = field(default_factory=set)
    org_trail_arn: str = ""
    log_bucket: str = ""


# ---------------------------------------------------------------------------------------------- the build


def build_world(cfg: DemoConfig) -> World:
    ctx = Ctx(cfg)
    accounts = _accounts(ctx)
    mgmt, audit, logs = accounts[0], accounts[1], accounts[2]
    prod1 = next(a for a in accounts if a.ou == "Prod")
    dev1 = next(a for a in accounts if a.ou == "Dev")

    org = _organization(ctx, accounts)
    trail_arn, log_bucket = _log_archive(ctx, logs, mgmt)
    for acct in accounts:
        if acct.ou in ("Prod", "Dev", "Sandbox"):
            workloads(ctx, acct, full=acct in (prod1, dev1))
    # Identity Center sessions pick their targets among what the workloads created.
    ic = _identity_center(ctx, accounts, mgmt)
    _audit(ctx, audit, accounts)
    for acct in accounts[1:]:
        _member_baseline(ctx, acct, mgmt, audit)
    plant_findings(ctx, accounts)
    for acct in accounts[1:]:
        top_up(ctx, acct)
    return World(
        cfg=cfg,
        ids=ctx.ids,
        org=org,
        identity_center=ic,
        accounts=accounts,
        aws_managed=ctx.aws_managed,
        actors=ctx.actors,
        planted=ctx.planted,
        deviations=ctx.deviations,
        stale_credentials=ctx.stale,
        never_used=ctx.never_used,
        org_trail_arn=trail_arn,
        log_bucket=log_bucket,
    )


def _accounts(ctx: Ctx) -> list[AcctBuilder]:
    fixed = [("management", "Root"), ("audit", "Security"), ("log-archive", "Security")]
    counters = {"Prod": 0, "Dev": 0, "Sandbox": 0}
    names: list[tuple[str, str]] = list(fixed)
    cycle = ("Prod", "Dev", "Sandbox")
    for i in range(ctx.cfg.accounts - len(fixed)):
        ou = cycle[i % 3]
        counters[ou] += 1
        names.append((f"{ou.lower()}-{counters[ou]:02d}", ou))
    seen: set[str] = set()
    out = []
    for i, (name, ou) in enumerate(names):
        salt = 0
        aid = ctx.ids.account_id(i)
        while aid in seen or aid == VENDOR_ACCOUNT:
            salt += 1
            aid = ctx.ids.account_id(i * 10_000 + salt)
        seen.add(aid)
        out.append(
            AcctBuilder(
                account_id=aid,
                name=name,
                ou=ou,
                ids=ctx.ids,
                rng=random.Random(f"{ctx.cfg.seed}-{name}"),
                window_start=ctx.start,
                end=ctx.end,
            )
        )
    return out


def _organization(ctx: Ctx, accounts: list[AcctBuilder]) -> Organization:
    mgmt = accounts[0]
    org_arn_base = f"arn:aws:organizations::{mgmt.account_id}"
    ous: dict[str, OrgUnit] = {}
    for name in ("Security", "Prod", "Dev", "Sandbox"):
        ou_id = f"ou-{ctx.root_id[2:]}-{ctx.ids.alnum(8, 'ou', name)}"
        ous[name] = OrgUnit(
            id=ou_id, arn=f"{org_arn_base}:ou/{ctx.org_id}/{ou_id}", name=name, parent_id=ctx.root_id
        )
    org_accounts = []
    for acct in accounts:
        parent = ctx.root_id if acct.ou == "Root" else ous[acct.ou].id
        org_accounts.append(
            OrgAccount(
                id=acct.account_id,
                arn=f"{org_arn_base}:account/{ctx.org_id}/{acct.account_id}",
                name=acct.name,
                email=f"aws+{acct.name}@example.com",
                status="ACTIVE",
                parent_id=parent,
                joined_method="INVITED" if acct is mgmt else "CREATED",
                joined_timestamp=mgmt.created(900, 1500),
            )
        )

    all_targets = [ctx.root_id] + [ou.id for ou in ous.values()] + [a.account_id for a in accounts]
    policies = [
        *_aws_managed_org_policies(all_targets),
        *_guardrail_scps(ctx, mgmt, ous),
        *_data_perimeter_rcps(ctx, ous),
    ]
    for p in policies:
        if p.arn is None:
            kind = (
                "service_control_policy" if p.type == "SERVICE_CONTROL_POLICY" else "resource_control_policy"
            )
            p.arn = f"{org_arn_base}:policy/{ctx.org_id}/{kind}/{p.id}"
    return Organization(
        id=ctx.org_id,
        arn=f"{org_arn_base}:organization/{ctx.org_id}",
        management_account_id=mgmt.account_id,
        root_id=ctx.root_id,
        root_arn=f"{org_arn_base}:root/{ctx.org_id}/{ctx.root_id}",
        feature_set="ALL",
        enabled_policy_types=["SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"],
        organizational_units=list(ous.values()),
        accounts=org_accounts,
        policies=policies,
        delegated_administrators=[
            DelegatedAdministrator(account_id=accounts[1].account_id, service_principal=s)
            for s in ("guardduty.amazonaws.com", "securityhub.amazonaws.com", "access-analyzer.amazonaws.com")
        ],
    )


def _org_policy_id(ctx: Ctx, name: str) -> str:
    return "p-" + ctx.ids.alnum(8, "policy", name)


def _aws_managed_org_policies(all_targets: list[str]) -> list[OrgPolicy]:
    return [
        # AWS attaches FullAWSAccess everywhere by default; an SCP level without an Allow denies everything.
        # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_evaluation.html
        OrgPolicy(
            id="p-FullAWSAccess",
            arn="arn:aws:organizations::aws:policy/service_control_policy/p-FullAWSAccess",
            name="FullAWSAccess",
            type="SERVICE_CONTROL_POLICY",
            aws_managed=True,
            description="Allows access to every operation",
            document=doc(allow("*")),
            targets=list(all_targets),
        ),
        OrgPolicy(
            id="p-RCPFullAWSAccess",
            arn="arn:aws:organizations::aws:policy/resource_control_policy/p-RCPFullAWSAccess",
            name="RCPFullAWSAccess",
            type="RESOURCE_CONTROL_POLICY",
            aws_managed=True,
            description="Allows access to every operation",
            document=doc({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}),
            targets=list(all_targets),
        ),
    ]


# The services RegionRestriction exempts: global services, whose calls AWS serves from one region whatever
# region the caller works in.
_GLOBAL_SERVICES = (
    "iam:*",
    "organizations:*",
    "sts:*",
    "support:*",
    "cloudfront:*",
    "route53:*",
    "health:*",
    "ce:*",
    "budgets:*",
    "waf:*",
    "globalaccelerator:*",
    "sso:*",
    "account:*",
    "trustedadvisor:*",
    "signin:*",
    "s3:ListAllMyBuckets",
    "s3:GetAccountPublicAccessBlock",
)


def _guardrail_scps(ctx: Ctx, mgmt: AcctBuilder, ous: dict[str, OrgUnit]) -> list[OrgPolicy]:
    return [
        OrgPolicy(
            id=_org_policy_id(ctx, "DenyLeaveOrganization"),
            name="DenyLeaveOrganization",
            type="SERVICE_CONTROL_POLICY",
            description="Member accounts cannot leave the organization",
            document=doc(deny("organizations:LeaveOrganization", Sid="DenyLeaveOrganization")),
            targets=[ctx.root_id],
        ),
        OrgPolicy(
            id=_org_policy_id(ctx, "ProtectOrgTrail"),
            name="ProtectOrgTrail",
            type="SERVICE_CONTROL_POLICY",
            description="Nobody in a member account can stop, delete or change the organization trail",
            document=doc(
                deny(
                    [
                        "cloudtrail:StopLogging",
                        "cloudtrail:DeleteTrail",
                        "cloudtrail:UpdateTrail",
                        "cloudtrail:PutEventSelectors",
                    ],
                    f"arn:aws:cloudtrail:*:{mgmt.account_id}:trail/org-trail",
                    Sid="ProtectOrganizationTrail",
                )
            ),
            targets=[ctx.root_id],
        ),
        OrgPolicy(
            id=_org_policy_id(ctx, "RegionRestriction"),
            name="RegionRestriction",
            type="SERVICE_CONTROL_POLICY",
            description="Only the approved regions, except global services, the org access role and the "
            "security baseline's StackSet execution role",
            # The baseline StackSet puts detective controls in every region, the closed ones too (as AWS
            # Control Tower's region deny exempts its own deployment roles).
            document=doc(
                {
                    "Sid": "DenyOutsideApprovedRegions",
                    "Effect": "Deny",
                    "NotAction": list(_GLOBAL_SERVICES),
                    "Resource": "*",
                    "Condition": {
                        "StringNotEquals": {"aws:RequestedRegion": list(ALLOWED_REGIONS)},
                        "ArnNotLike": {
                            "aws:PrincipalARN": [
                                "arn:aws:iam::*:role/OrganizationAccountAccessRole",
                                "arn:aws:iam::*:role/AWSCloudFormationStackSetExecutionRole",
                            ]
                        },
                    },
                }
            ),
            targets=[ous["Prod"].id, ous["Dev"].id],
        ),
        OrgPolicy(
            id=_org_policy_id(ctx, "DenyIamUserCredentials"),
            name="DenyIamUserCredentials",
            type="SERVICE_CONTROL_POLICY",
            description="Sandbox accounts use Identity Center only: no long-lived IAM user credentials",
            document=doc(
                deny(
                    ["iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile"],
                    Sid="NoIamUserCredentials",
                )
            ),
            targets=[ous["Sandbox"].id],
        ),
    ]


def _data_perimeter_rcps(ctx: Ctx, ous: dict[str, OrgUnit]) -> list[OrgPolicy]:
    return [
        # The data-perimeter RCP: S3 in Prod and Security answers only to the organization's identities
        # and AWS services. https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html
        OrgPolicy(
            id=_org_policy_id(ctx, "EnforceOrgIdentitiesS3"),
            name="EnforceOrgIdentitiesS3",
            type="RESOURCE_CONTROL_POLICY",
            description="S3 in Prod and Security is reachable only by principals of this organization",
            document=doc(
                {
                    "Sid": "EnforceOrgIdentities",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": "*",
                    "Condition": {
                        "StringNotEqualsIfExists": {
                            "aws:PrincipalOrgID": ctx.org_id,
                            "aws:ResourceTag/dp:exclude:identity": "true",
                        },
                        "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                    },
                }
            ),
            targets=[ous["Prod"].id, ous["Security"].id],
        ),
    ]


# ---------------------------------------------------------------------------------------------- accounts


def _log_archive(ctx: Ctx, logs: AcctBuilder, mgmt: AcctBuilder) -> tuple[str, str]:
    """The organization trail (management account) and its bucket and key (log-archive account)."""
    trail_arn = mgmt.arn("cloudtrail", "trail/org-trail", HOME)
    bucket = f"{SLUG}-org-cloudtrail-{logs.account_id}"
    key_arn = logs.arn("kms", f"key/{ctx.ids.uuid('key', logs.account_id, 'cloudtrail')}", HOME)
    logs.resource(
        key_arn,
        "kms:key",
        target="key",
        name="cloudtrail-logs",
        tags=tagged("Internal"),
        policy=key_policy(
            logs,
            extra=[
                {
                    "Sid": "AllowCloudTrailToEncrypt",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"],
                    "Resource": "*",
                    "Condition": {
                        "StringLike": {
                            "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{mgmt.account_id}:trail/*"
                        }
                    },
                }
            ],
        ),
        attributes={"key_manager": "CUSTOMER", "grants": []},
    )
    # Bucket policy shape from https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html
    logs.bucket(
        bucket,
        kms_key=key_arn,
        tags=tagged("Internal"),
        policy=doc(
            {
                "Sid": "AWSCloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
            },
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": [
                    f"arn:aws:s3:::{bucket}/AWSLogs/{ctx.org_id}/*",
                    f"arn:aws:s3:::{bucket}/AWSLogs/{mgmt.account_id}/*",
                ],
                "Condition": {
                    "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}
                },
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ),
    )
    mgmt.resource(
        trail_arn,
        "other",
        target="trail",
        name="org-trail",
        attributes={
            "resource_type": "AWS::CloudTrail::Trail",
            "IsOrganizationTrail": True,
            "IsMultiRegionTrail": True,
            "S3BucketName": bucket,
            "KmsKeyId": key_arn,
            "LogFileValidationEnabled": True,
            "EventSelectors": [
                {
                    "ReadWriteType": "All",
                    "IncludeManagementEvents": True,
                    "DataResources": [
                        {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]},
                        {"Type": "AWS::Lambda::Function", "Values": ["arn:aws:lambda"]},
                        {"Type": "AWS::DynamoDB::Table", "Values": ["arn:aws:dynamodb"]},
                    ],
                }
            ],
        },
    )
    reader = logs.role(
        "LogArchiveReader",
        trust_aws(logs.root_arn),
        inline={
            "read-logs": doc(
                allow(
                    ["s3:GetObject", "s3:ListBucket"], [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
                ),
                allow("kms:Decrypt", key_arn),
            )
        },
        description="Investigators read the organization trail",
    )
    role_actor(
        ctx,
        logs,
        reader.name,
        "investigator",
        [
            call("s3.ListObjects", f"arn:aws:s3:::{bucket}"),
            call("s3.GetObject", f"arn:aws:s3:::{bucket}/"),
            call("kms.Decrypt", key_arn),
        ],
        weight=0.3,
    )
    return trail_arn, bucket


_IC_USERS = {
    "Admins": ["maria.garcia", "wei.chen"],
    "SecurityTeam": ["sam.okafor", "lena.fischer"],
    "Developers": ["alex.kim", "priya.patel", "jonas.berg", "fatima.zahra", "tom.nguyen"],
    "DataEngineers": ["ana.souza", "raj.mehta"],
}


def _admin_session(pick: Callable[[str], str | None]) -> list[Call]:
    return [
        call("iam.ListRoles"),
        call("iam.GetRole", pick("role")),
        call("iam.ListUsers"),
        call("organizations.DescribeOrganization"),
        call("cloudtrail.DescribeTrails"),
        call("ec2.DescribeInstances"),
        call("s3.ListBuckets"),
        call("health.DescribeEvents"),
        call("access-analyzer.ListAnalyzers"),
        call("iam.ListPolicies"),
    ]


def _read_only_session(pick: Callable[[str], str | None]) -> list[Call]:
    out = [
        call(k)
        for k in (
            "ec2.DescribeInstances",
            "ec2.DescribeSecurityGroups",
            "ec2.DescribeVpcs",
            "ec2.DescribeSubnets",
            "s3.ListBuckets",
            "monitoring.GetMetricData",
            "monitoring.DescribeAlarms",
            "logs.DescribeLogGroups",
            "rds.DescribeDBInstances",
            "elasticloadbalancing.DescribeLoadBalancers",
            "elasticloadbalancing.DescribeTargetHealth",
            "autoscaling.DescribeAutoScalingGroups",
            "route53.ListHostedZones",
            "cloudfront.ListDistributions",
            "lambda.ListFunctions20150331",
            "ecs.ListClusters",
            "dynamodb.ListTables",
            "sqs.ListQueues",
            "sns.ListTopics",
            "elasticache.DescribeCacheClusters",
            "es.ListDomainNames",
            "redshift.DescribeClusters",
            "acm.ListCertificates",
            "wafv2.ListWebACLs",
            "elasticfilesystem.DescribeFileSystems",
            "states.ListStateMachines",
            "events.ListRules",
            "kinesis.ListStreams",
            "codepipeline.ListPipelines",
            "apigateway.GetRestApis",
        )
    ]
    out.append(call("logs.FilterLogEvents", pick("loggroup")))
    out.append(call("cloudformation.DescribeStacks", pick("stack")))
    # A reader who tries to change code is refused: ReadOnlyAccess grants no lambda:Update*.
    out.append(
        call(
            "lambda.UpdateFunctionCode20150331v2",
            pick("function"),
            error="AccessDeniedException",
            weight=0.2,
        )
    )
    return out


def _power_user_session(pick: Callable[[str], str | None]) -> list[Call]:
    return [
        call("lambda.CreateFunction20150331", pick("function")),
        call("lambda.UpdateFunctionCode20150331v2", pick("function")),
        call("lambda.GetFunction20150331v2", pick("function")),
        call("lambda.Invoke", pick("function")),
        call("ecs.UpdateService", pick("cluster")),
        call("ecs.DescribeServices", pick("cluster")),
        call("ecs.RegisterTaskDefinition"),
        call("ecr.DescribeRepositories"),
        call("ecr.DescribeImages", pick("repository")),
        call("cloudformation.UpdateStack", pick("stack")),
        call("cloudformation.DescribeStackEvents", pick("stack")),
        call("cloudformation.GetTemplate", pick("stack")),
        call("apigateway.GetStages"),
        call("apigateway.CreateDeployment"),
        call("states.StartExecution"),
        call("states.DescribeExecution"),
        call("events.PutRule"),
        call("events.DescribeRule"),
        call("events.PutEvents"),
        call("kinesis.PutRecord", pick("stream")),
        call("kinesis.DescribeStream", pick("stream")),
        call("sqs.SendMessage", pick("queue")),
        call("sns.Publish", pick("topic")),
        call("dynamodb.Scan", pick("table")),
        call("codepipeline.StartPipelineExecution"),
        call("codepipeline.GetPipelineState"),
        call("codecommit.GetRepository"),
        call("codecommit.GitPull"),
        call("logs.GetLogEvents", pick("loggroup")),
        call("ssm.GetParameter", pick("param")),
        call("ssm.StartSession", pick("instance")),
        call("s3.GetObject", pick("object")),
        call("s3.PutObject", pick("object")),
        call("ec2.RunInstances"),
        call("ec2.StopInstances", pick("instance")),
        call("monitoring.PutMetricAlarm"),
        call("iam.ListRoles"),
        call("iam.AttachRolePolicy", pick("role"), error="AccessDenied", weight=0.1),
    ]


def _sandbox_developer_session(pick: Callable[[str], str | None]) -> list[Call]:
    return [
        call("lambda.CreateFunction20150331", pick("function")),
        call("lambda.Invoke", pick("function")),
        call("ec2.RunInstances"),
        call("ec2.DescribeInstances"),
        call("s3.PutObject", pick("object")),
        call("dynamodb.PutItem", pick("table")),
        call("cloudformation.CreateStack", pick("stack")),
        call("logs.GetLogEvents", pick("loggroup")),
        call("sqs.SendMessage", pick("queue")),
        call("iam.ListRoles"),
    ]


def _data_engineer_session(pick: Callable[[str], str | None]) -> list[Call]:
    return [
        call("athena.StartQueryExecution"),
        call("athena.GetQueryExecution"),
        call("athena.GetQueryResults"),
        call("athena.ListWorkGroups"),
        call("glue.GetTables"),
        call("glue.GetDatabase"),
        call("glue.GetPartitions"),
        call("s3.GetObject", pick("object")),
        call("s3.ListObjects", pick("bucket")),
        call("kinesis.GetRecords", pick("stream")),
        call("firehose.DescribeDeliveryStream"),
        call("redshift.DescribeClusters"),
        call("es.DescribeDomain"),
        call("states.ListStateMachines"),
    ]


def _security_auditor_session(pick: Callable[[str], str | None]) -> list[Call]:
    return [
        call(k)
        for k in (
            "guardduty.ListDetectors",
            "guardduty.ListFindings",
            "guardduty.GetFindings",
            "securityhub.GetFindings",
            "securityhub.DescribeHub",
            "config.DescribeConfigRules",
            "config.DescribeComplianceByConfigRule",
            "access-analyzer.ListFindings",
            "inspector2.ListFindings",
            "iam.GetAccountAuthorizationDetails",
            "iam.GetAccountSummary",
            "cloudtrail.DescribeTrails",
            "cloudtrail.LookupEvents",
            "kms.ListKeys",
            "kms.ListAliases",
            "tagging.GetResources",
        )
    ] + [
        call("s3.GetBucketPolicy", pick("bucket")),
        call("s3.GetBucketAcl", pick("bucket")),
        call("s3.GetBucketPublicAccessBlock", pick("bucket")),
        call("kms.GetKeyPolicy", pick("key")),
    ]


# What an Identity Center session of each permission set does in an account (within what the set allows);
# the targets are picked among the account's resources.
_SESSION_CALLS: dict[str, Callable[[Callable[[str], str | None]], list[Call]]] = {
    "AdministratorAccess": _admin_session,
    "ReadOnly": _read_only_session,
    "PowerUser": _power_user_session,
    "SandboxDeveloper": _sandbox_developer_session,
    "DataEngineer": _data_engineer_session,
    "SecurityAuditor": _security_auditor_session,
}


def _identity_center(ctx: Ctx, accounts: list[AcctBuilder], mgmt: AcctBuilder) -> IdentityCenter:
    inst_id = "ssoins-" + ctx.ids.hex(16, "sso-instance")
    instance_arn = f"arn:aws:sso:::instance/{inst_id}"
    store = "d-" + ctx.ids.hex(10, "identity-store")
    sets = _permission_sets(ctx, inst_id)
    users, groups, memberships = _ic_directory(ctx)
    gid_of = {g.display_name: g.group_id for g in groups}
    assignments: list[AccountAssignment] = []
    for acct in accounts:
        assignments += _assign_account(ctx, acct, _ic_pairs(acct), sets, gid_of)
    return IdentityCenter(
        instance_arn=instance_arn,
        identity_store_id=store,
        home_region=HOME,
        permission_sets=list(sets.values()),
        assignments=assignments,
        users=users,
        groups=groups,
        memberships=memberships,
    )


def _permission_sets(ctx: Ctx, inst_id: str) -> dict[str, PermissionSet]:
    def ps_arn(name: str) -> str:
        return f"arn:aws:sso:::permissionSet/{inst_id}/ps-{ctx.ids.hex(16, 'ps', name)}"

    return {
        "AdministratorAccess": PermissionSet(
            arn=ps_arn("AdministratorAccess"),
            name="AdministratorAccess",
            session_duration="PT4H",
            aws_managed_policies=[ctx.aws("AdministratorAccess")],
            description="Full administrator",
        ),
        "ReadOnly": PermissionSet(
            arn=ps_arn("ReadOnly"),
            name="ReadOnly",
            session_duration="PT8H",
            aws_managed_policies=[ctx.aws("ReadOnlyAccess")],
            description="Read-only",
        ),
        "PowerUser": PermissionSet(
            arn=ps_arn("PowerUser"),
            name="PowerUser",
            session_duration="PT8H",
            aws_managed_policies=[ctx.aws("PowerUserAccess")],
            inline_policy=doc(deny(["organizations:*", "account:*"], Sid="NoOrgChanges")),
            description="Developers: everything but IAM and Organizations",
        ),
        "DataEngineer": PermissionSet(
            arn=ps_arn("DataEngineer"),
            name="DataEngineer",
            session_duration="PT8H",
            customer_managed_policies=[CustomerManagedPolicyReference(name="DataEngineerAccess", path="/")],
            inline_policy=doc(allow(["redshift:Describe*", "es:Describe*", "es:List*", "states:List*"])),
            description="Analytics: Athena, Glue, data lake read",
        ),
        "SecurityAuditor": PermissionSet(
            arn=ps_arn("SecurityAuditor"),
            name="SecurityAuditor",
            session_duration="PT8H",
            aws_managed_policies=[ctx.aws("SecurityAudit"), ctx.aws("ViewOnlyAccess")],
            description="Security team: read configuration everywhere",
        ),
        "SandboxDeveloper": PermissionSet(
            arn=ps_arn("SandboxDeveloper"),
            name="SandboxDeveloper",
            session_duration="PT12H",
            aws_managed_policies=[ctx.aws("PowerUserAccess")],
            permissions_boundary=PermissionsBoundaryRef(
                customer_managed_policy=CustomerManagedPolicyReference(name="SandboxBoundary", path="/")
            ),
            description="Sandbox: PowerUser inside the SandboxBoundary",
        ),
    }


def _data_engineer_doc() -> Doc:
    """The customer managed policy the DataEngineer permission set references by name in each account."""
    return doc(
        allow(["athena:*"]),
        allow(["glue:Get*", "glue:BatchGet*"]),
        allow(["kinesis:Get*", "kinesis:Describe*", "kinesis:List*", "firehose:Describe*"]),
        allow(
            ["s3:GetObject", "s3:ListBucket"],
            [f"arn:aws:s3:::{SLUG}-*-data-*", f"arn:aws:s3:::{SLUG}-*-data-*/*"],
        ),
    )


def _sandbox_boundary_doc() -> Doc:
    """The permissions boundary of the SandboxDeveloper permission set, by name in each account."""
    return doc(
        allow(
            [
                "ec2:*",
                "s3:*",
                "lambda:*",
                "dynamodb:*",
                "logs:*",
                "cloudwatch:*",
                "sqs:*",
                "sns:*",
                "cloudformation:*",
                "iam:Get*",
                "iam:List*",
                "sts:*",
            ]
        )
    )


def _ic_directory(ctx: Ctx) -> tuple[list[IdentityStoreUser], list[IdentityStoreGroup], list[GroupMembership]]:
    users: list[IdentityStoreUser] = []
    groups: list[IdentityStoreGroup] = []
    memberships: list[GroupMembership] = []
    for gname, members in _IC_USERS.items():
        gid = ctx.ids.uuid("ic-group", gname)
        groups.append(
            IdentityStoreGroup(group_id=gid, display_name=gname, description=f"{gname} (Identity Center)")
        )
        for m in members:
            uid = ctx.ids.uuid("ic-user", m)
            first, last = m.split(".")
            users.append(
                IdentityStoreUser(
                    user_id=uid, user_name=f"{m}@example.com", display_name=f"{first.title()} {last.title()}"
                )
            )
            memberships.append(GroupMembership(group_id=gid, user_id=uid))
    return users, groups, memberships


def _ic_pairs(acct: AcctBuilder) -> list[tuple[str, str]]:
    """The (group, permission set) pairs assigned to ``acct``."""
    pairs = [("Admins", "AdministratorAccess"), ("SecurityTeam", "SecurityAuditor")]
    if acct.ou == "Prod":
        pairs += [("Developers", "ReadOnly"), ("DataEngineers", "DataEngineer")]
    elif acct.ou == "Dev":
        pairs += [("Developers", "PowerUser"), ("DataEngineers", "DataEngineer")]
    elif acct.ou == "Sandbox":
        pairs += [("Developers", "SandboxDeveloper")]
    return pairs


def _assign_account(
    ctx: Ctx,
    acct: AcctBuilder,
    pairs: list[tuple[str, str]],
    sets: dict[str, PermissionSet],
    gid_of: dict[str, str],
) -> list[AccountAssignment]:
    """The account's assignments, with the AWSReservedSSO_* roles Identity Center creates and their sessions."""
    assignments: list[AccountAssignment] = []
    ps_names = [ps for _, ps in pairs]
    if "DataEngineer" in ps_names:
        acct.policy(
            "DataEngineerAccess",
            [_data_engineer_doc()],
            description="Referenced by the DataEngineer permission set",
        )
    if "SandboxDeveloper" in ps_names:
        acct.policy(
            "SandboxBoundary",
            [_sandbox_boundary_doc()],
            description="Permissions boundary of the SandboxDeveloper permission set",
        )
    provider = f"arn:aws:iam::{acct.account_id}:saml-provider/AWSSSO_{ctx.ids.hex(16, 'ssoprov', acct.account_id)}_DO_NOT_DELETE"
    acct_saml = SamlProvider(
        arn=provider, valid_until="2126-01-01T00:00:00Z", create_date=acct.created(400, 900)
    )
    acct.saml_providers.append(acct_saml)
    for gname, ps_name in pairs:
        ps = sets[ps_name]
        assignments.append(
            AccountAssignment(
                account_id=acct.account_id,
                permission_set_arn=ps.arn,
                principal_type="GROUP",
                principal_id=gid_of[gname],
            )
        )
        role_name = f"AWSReservedSSO_{ps_name}_{ctx.ids.hex(16, 'ssorole', acct.account_id, ps_name)}"
        managed = list(ps.aws_managed_policies)
        managed += [acct.iam_arn("policy", ref.name, ref.path) for ref in ps.customer_managed_policies]
        boundary = None
        if ps.permissions_boundary and ps.permissions_boundary.customer_managed_policy:
            ref = ps.permissions_boundary.customer_managed_policy
            boundary = acct.iam_arn("policy", ref.name, ref.path)
        # Identity Center creates these roles under /aws-reserved/sso.amazonaws.com/, trusting the
        # account's AWSSSO SAML provider. https://docs.aws.amazon.com/singlesignon/latest/userguide/referencingpermissionsets.html
        acct.role(
            role_name,
            trust_saml(provider),
            managed=managed,
            inline={"AwsSSOInlinePolicy": ps.inline_policy} if ps.inline_policy else None,
            path="/aws-reserved/sso.amazonaws.com/",
            boundary=boundary,
            max_session=43200,
            description=f"Identity Center permission set {ps_name}",
        )
        members = _IC_USERS[gname]
        who = members[int(ctx.ids.digest("ic-pick", acct.account_id, ps_name)[0]) % len(members)]
        weight = {"AdministratorAccess": 0.3, "SecurityAuditor": 0.5}.get(ps_name, 1.0)
        _sso_actors(
            ctx,
            acct,
            role_name,
            f"{who}@example.com",
            _SESSION_CALLS[ps_name](acct.pick),
            weight=weight,
            provider=provider,
        )
    return assignments


def _sso_actors(
    ctx: Ctx,
    acct: AcctBuilder,
    role_name: str,
    session: str,
    calls: list[Call],
    *,
    weight: float,
    provider: str,
) -> None:
    role = acct.role_by_name[role_name]
    ctx.actor(
        Actor(
            key=f"saml:{acct.account_id}:{role_name}:{session}",
            kind="SAMLUser",
            account_id=acct.account_id,
            principal_arn=None,
            name=session,
            unique_id=ctx.ids.hex(28, "samlsub", session),
            session=session,
            regions=(HOME,),
            ip=ctx.ip("sso", session),
            calls=[call("sts.AssumeRoleWithSAML", role.arn)],
            weight=weight * 0.1,
            extra={"provider": provider},
        )
    )
    a = role_actor(
        ctx,
        acct,
        role_name,
        session,
        calls,
        weight=weight,
        kind="SSO",
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    )
    a.extra["sso"] = "true"


def _audit(ctx: Ctx, audit: AcctBuilder, accounts: list[AcctBuilder]) -> None:
    sso_pattern = (
        f"arn:aws:iam::{audit.account_id}:role/aws-reserved/sso.amazonaws.com/"
        "AWSReservedSSO_SecurityAuditor_*"
    )
    hub = audit.role(
        "SecurityAuditHub",
        trust_aws(audit.root_arn, condition={"ArnLike": {"aws:PrincipalArn": sso_pattern}}),
        inline={
            "assume-audit-roles": doc(
                allow(
                    "sts:AssumeRole",
                    ["arn:aws:iam::*:role/SecurityAudit", "arn:aws:iam::*:role/key-custodian"],
                )
            )
        },
        description="Security team hub: assumes SecurityAudit in every account",
    )
    hub_calls = [
        call("sts.AssumeRole", f"arn:aws:iam::{a.account_id}:role/SecurityAudit", recipient=a.account_id)
        for a in accounts[1:]
        if a is not audit
    ]
    role_actor(ctx, audit, hub.name, "sam.okafor@example.com", hub_calls, weight=0.6)


def _member_baseline(ctx: Ctx, acct: AcctBuilder, mgmt: AcctBuilder, audit: AcctBuilder) -> None:
    # Organizations creates this role in accounts it creates, trusting the management account.
    # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_access.html
    acct.role(
        "OrganizationAccountAccessRole", trust_aws(mgmt.root_arn), managed=[ctx.aws("AdministratorAccess")]
    )
    role_actor(
        ctx,
        acct,
        "OrganizationAccountAccessRole",
        "maria.garcia",
        [call("iam.ListRoles"), call("iam.GetAccountSummary")],
        weight=0.05,
    )
    audit_calls = [
        call(k)
        for k in (
            "iam.GetAccountAuthorizationDetails",
            "iam.GenerateCredentialReport",
            "iam.GetCredentialReport",
            "ec2.DescribeSecurityGroups",
            "ec2.DescribeRegions",
            "cloudtrail.DescribeTrails",
            "config.DescribeConfigRules",
            "guardduty.ListDetectors",
            "kms.ListKeys",
            "s3.ListBuckets",
        )
    ]
    if acct is not audit:
        acct.role(
            "SecurityAudit",
            trust_aws(f"arn:aws:iam::{audit.account_id}:role/SecurityAuditHub"),
            managed=[ctx.aws("SecurityAudit")],
            description="Assumed by the audit account's SecurityAuditHub",
        )
        role_actor(ctx, acct, "SecurityAudit", "security-audit-scan", audit_calls, weight=0.4)
