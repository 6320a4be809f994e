"""The demo organization: accounts, OUs, SCPs/RCP, Identity Center, IAM, resources, compute, planted findings.

Layout (index: name, OU): 0 management (root), 1 audit and 2 log-archive (Security), then prod-NN,
dev-NN, sandbox-NN in turn. prod-01 carries most planted findings, dev-01 the exposures, sandbox-01 the
SCP near miss; docs/demo-org.md lists them all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from iamgraph.demo import managed as aws
from iamgraph.demo.config import DemoConfig
from iamgraph.demo.ids import Ids
from iamgraph.demo.planted import Expect, PlantedItem, PlantedKind
from iamgraph.demo.world import (
    AcctBuilder,
    Actor,
    Call,
    Doc,
    allow,
    call,
    deny,
    doc,
    iso,
    policy_for_calls,
    trust_aws,
    trust_saml,
    trust_service,
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
    OidcProvider,
    OrgAccount,
    Organization,
    OrgPolicy,
    OrgUnit,
    PermissionsBoundaryRef,
    PermissionSet,
    SamlProvider,
)

HOME = "us-east-1"
ALLOWED_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
SLUG = "examplecorp"
GITHUB_OIDC = "token.actions.githubusercontent.com"
GITHUB_REPO = "example-corp/payments-service"
# An account outside the organization: a monitoring vendor that assumes a role with an ExternalId.
VENDOR_ACCOUNT = "210987654321"


@dataclass(slots=True)
class Planned:
    """Records emitted only on the last day of the window (the planted deviations)."""

    item_id: str
    actor: Actor
    call: Call
    count: int
    minute: int
    """Minutes after the start of the last day."""
    spread_seconds: int = 60
    region: str | None = None


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


# ---------------------------------------------------------------------------------------------- helpers


class _Ctx:
    def __init__(self, cfg: DemoConfig) -> None:
        self.cfg = cfg
        self.ids = Ids(cfg.seed)
        self.rng = random.Random(f"iamgraph-demo-{cfg.seed}")
        self.end = cfg.end_date
        self.start = cfg.end_date - timedelta(days=cfg.days)
        self.org_id = "o-" + self.ids.alnum(10, "org")
        self.root_id = "r-" + self.ids.alnum(4, "root")
        self.aws_managed: dict[str, ManagedPolicy] = {}
        self.actors: list[Actor] = []
        self.planted: list[PlantedItem] = []
        self.deviations: list[Planned] = []
        self.stale: dict[str, dict[str, str]] = {}
        self.never_used: set[str] = set()

    def aws(self, name: str) -> str:
        if name not in self.aws_managed:
            self.aws_managed[name] = aws.aws_managed_policy(name)
        return self.aws_managed[name].arn

    def actor(self, actor: Actor) -> Actor:
        self.actors.append(actor)
        return actor

    def ip(self, *parts: str) -> str:
        d = self.ids.digest("ip", *parts)
        # Documentation ranges (RFC 5737): realistic-looking, never anyone's real address.
        net = ("192.0.2", "198.51.100", "203.0.113")[d[0] % 3]
        return f"{net}.{1 + d[1] % 254}"

    def plant(
        self,
        item_id: str,
        kind: PlantedKind,
        technique: str,
        account: AcctBuilder,
        *,
        principals: list[str],
        resources: list[str],
        actions: list[str],
        why: str,
        expect: Expect = Expect.FINDING,
        **kw: object,
    ) -> None:
        self.planted.append(
            PlantedItem(
                id=item_id,
                kind=kind,
                technique=technique,
                expect=expect,
                account_id=account.account_id,
                principals=tuple(principals),
                resources=tuple(resources),
                actions=tuple(actions),
                why=why,
                **kw,  # type: ignore[arg-type]
            )
        )


def _role_actor(
    ctx: _Ctx,
    acct: AcctBuilder,
    role_name: str,
    session: str,
    calls: list[Call],
    *,
    weight: float = 1.0,
    planted: bool = False,
    regions: tuple[str, ...] = (HOME,),
    kind: str = "AssumedRole",
    user_agent: str | None = None,
    extra: dict[str, str] | None = None,
) -> Actor:
    role = acct.role_by_name[role_name]
    a = Actor(
        key=f"{acct.account_id}:{role_name}:{session}",
        kind=kind,
        account_id=acct.account_id,
        principal_arn=role.arn,
        name=role.name,
        unique_id=role.role_id,
        session=session,
        access_key=None,
        regions=regions,
        ip=ctx.ip(acct.account_id, role_name, session),
        calls=calls,
        weight=weight,
        planted=planted,
        extra=extra or {},
    )
    if user_agent:
        a.user_agent = user_agent
    return ctx.actor(a)


def _service_role_actor(
    ctx: _Ctx,
    acct: AcctBuilder,
    role_name: str,
    service: str,
    calls: list[Call],
    *,
    weight: float = 1.0,
    planted: bool = False,
) -> Actor:
    """A role assumed by an AWS service: the service's AssumeRole (type AWSService) plus the session's calls."""
    role = acct.role_by_name[role_name]
    session = {"lambda.amazonaws.com": role_name, "ec2.amazonaws.com": "i-" + ctx.ids.hex(17, role.arn)}.get(
        service, f"{service.split('.')[0]}-{ctx.ids.hex(8, role.arn)}"
    )
    ctx.actor(
        Actor(
            key=f"svc:{acct.account_id}:{role_name}",
            kind="AWSService",
            account_id=acct.account_id,
            principal_arn=None,
            name=service,
            unique_id=service,
            regions=(HOME,),
            ip=service,
            user_agent=service,
            calls=[call("sts.AssumeRole", role.arn)],
            weight=weight * 0.2,
            planted=planted,
        )
    )
    return _role_actor(
        ctx,
        acct,
        role_name,
        session,
        calls,
        weight=weight,
        planted=planted,
        user_agent=f"aws-sdk-go-v2/1.30.3 os/linux exec-env/{service.split('.')[0]}",
    )


def _user_actor(
    ctx: _Ctx,
    acct: AcctBuilder,
    user_name: str,
    calls: list[Call],
    *,
    weight: float = 1.0,
    planted: bool = False,
    console: bool = False,
    regions: tuple[str, ...] = (HOME,),
) -> Actor:
    user = acct.user_by_name[user_name]
    key = user.access_keys[0].access_key_id if user.access_keys else None
    if console:
        key = ctx.ids.access_key_id(user.arn, "console", temporary=True)
    a = Actor(
        key=f"{acct.account_id}:user/{user_name}",
        kind="IAMUser",
        account_id=acct.account_id,
        principal_arn=user.arn,
        name=user.name,
        unique_id=user.user_id,
        access_key=key,
        regions=regions,
        ip=ctx.ip(acct.account_id, user_name),
        calls=calls,
        weight=weight,
        planted=planted,
    )
    if console:
        a.user_agent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
        a.extra["console"] = "true"
    return ctx.actor(a)


def _tagged(classification: str, **more: str) -> dict[str, str]:
    return {"DataClassification": classification, **more}


# ---------------------------------------------------------------------------------------------- the build


def build_world(cfg: DemoConfig) -> World:
    ctx = _Ctx(cfg)
    accounts = _accounts(ctx)
    mgmt, audit, logs = accounts[0], accounts[1], accounts[2]
    prod1 = next(a for a in accounts if a.ou == "Prod")
    dev1 = next(a for a in accounts if a.ou == "Dev")
    sandbox1 = next(a for a in accounts if a.ou == "Sandbox")

    org = _organization(ctx, accounts)
    trail_arn, log_bucket = _log_archive(ctx, logs, mgmt)
    for acct in accounts:
        if acct.ou in ("Prod", "Dev", "Sandbox"):
            _workloads(ctx, acct, full=acct in (prod1, dev1))
    # Identity Center sessions pick their targets among what the workloads created.
    ic = _identity_center(ctx, accounts, mgmt)
    _audit(ctx, audit, accounts)
    for acct in accounts[1:]:
        _member_baseline(ctx, acct, mgmt, audit)
    _plant_prod(ctx, prod1, dev1, audit)
    _plant_dev(ctx, dev1, prod1)
    _plant_sandbox(ctx, sandbox1)
    _plant_stackset(ctx, mgmt, [a for a in accounts if a.ou in ("Prod", "Dev", "Sandbox")], prod1)
    _credential_hygiene(ctx, accounts, sandbox1)
    for acct in accounts[1:]:
        _top_up(ctx, acct)
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


def _accounts(ctx: _Ctx) -> list[AcctBuilder]:
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


def _organization(ctx: _Ctx, accounts: list[AcctBuilder]) -> Organization:
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

    def pid(name: str) -> str:
        return "p-" + ctx.ids.alnum(8, "policy", name)

    all_targets = [ctx.root_id] + [ou.id for ou in ous.values()] + [a.account_id for a in accounts]
    global_services = [
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
    ]
    policies = [
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
        OrgPolicy(
            id=pid("DenyLeaveOrganization"),
            name="DenyLeaveOrganization",
            type="SERVICE_CONTROL_POLICY",
            description="Member accounts cannot leave the organization",
            document=doc(deny("organizations:LeaveOrganization", Sid="DenyLeaveOrganization")),
            targets=[ctx.root_id],
        ),
        OrgPolicy(
            id=pid("ProtectOrgTrail"),
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
            id=pid("RegionRestriction"),
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
                    "NotAction": global_services,
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
            id=pid("DenyIamUserCredentials"),
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
        # The data-perimeter RCP: S3 in Prod and Security answers only to the organization's identities
        # and AWS services. https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html
        OrgPolicy(
            id=pid("EnforceOrgIdentitiesS3"),
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


# ---------------------------------------------------------------------------------------------- accounts


def _log_archive(ctx: _Ctx, logs: AcctBuilder, mgmt: AcctBuilder) -> tuple[str, str]:
    """The organization trail (management account) and its bucket and key (log-archive account)."""
    trail_arn = mgmt.arn("cloudtrail", "trail/org-trail", HOME)
    bucket = f"{SLUG}-org-cloudtrail-{logs.account_id}"
    key_arn = logs.arn("kms", f"key/{ctx.ids.uuid('key', logs.account_id, 'cloudtrail')}", HOME)
    logs.resource(
        key_arn,
        "kms:key",
        target="key",
        name="cloudtrail-logs",
        tags=_tagged("Internal"),
        policy=_key_policy(
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
        tags=_tagged("Internal"),
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
    _role_actor(
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


def _key_policy(acct: AcctBuilder, *, extra: list[Doc] | None = None) -> Doc:
    # The default key policy: the account root statement lets IAM policies grant use of the key.
    # https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
    return doc(
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": acct.root_arn},
            "Action": "kms:*",
            "Resource": "*",
        },
        *(extra or []),
    )


_IC_USERS = {
    "Admins": ["maria.garcia", "wei.chen"],
    "SecurityTeam": ["sam.okafor", "lena.fischer"],
    "Developers": ["alex.kim", "priya.patel", "jonas.berg", "fatima.zahra", "tom.nguyen"],
    "DataEngineers": ["ana.souza", "raj.mehta"],
}


def _ps_calls(ps: str, acct: AcctBuilder) -> list[Call]:
    """What an Identity Center session of permission set ``ps`` does in ``acct`` (within what ``ps`` allows)."""
    pick = acct.pick
    if ps == "AdministratorAccess":
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
    if ps == "ReadOnly":
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
    if ps == "PowerUser":
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
    if ps == "SandboxDeveloper":
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
    if ps == "DataEngineer":
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
    if ps == "SecurityAuditor":
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
    raise AssertionError(ps)


def _identity_center(ctx: _Ctx, accounts: list[AcctBuilder], mgmt: AcctBuilder) -> IdentityCenter:
    inst_id = "ssoins-" + ctx.ids.hex(16, "sso-instance")
    instance_arn = f"arn:aws:sso:::instance/{inst_id}"
    store = "d-" + ctx.ids.hex(10, "identity-store")

    def ps_arn(name: str) -> str:
        return f"arn:aws:sso:::permissionSet/{inst_id}/ps-{ctx.ids.hex(16, 'ps', name)}"

    data_engineer_doc = doc(
        allow(["athena:*"]),
        allow(["glue:Get*", "glue:BatchGet*"]),
        allow(["kinesis:Get*", "kinesis:Describe*", "kinesis:List*", "firehose:Describe*"]),
        allow(
            ["s3:GetObject", "s3:ListBucket"],
            [f"arn:aws:s3:::{SLUG}-*-data-*", f"arn:aws:s3:::{SLUG}-*-data-*/*"],
        ),
    )
    sandbox_boundary_doc = doc(
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
    sets = {
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
    gid_of = {g.display_name: g.group_id for g in groups}

    plan: dict[str, list[tuple[str, str]]] = {}  # account -> [(group, permission set)]
    for acct in accounts:
        pairs = [("Admins", "AdministratorAccess"), ("SecurityTeam", "SecurityAuditor")]
        if acct.ou == "Prod":
            pairs += [("Developers", "ReadOnly"), ("DataEngineers", "DataEngineer")]
        elif acct.ou == "Dev":
            pairs += [("Developers", "PowerUser"), ("DataEngineers", "DataEngineer")]
        elif acct.ou == "Sandbox":
            pairs += [("Developers", "SandboxDeveloper")]
        plan[acct.account_id] = pairs

    assignments: list[AccountAssignment] = []
    for acct in accounts:
        pairs = plan[acct.account_id]
        ps_names = [ps for _, ps in pairs]
        if "DataEngineer" in ps_names:
            acct.policy(
                "DataEngineerAccess",
                [data_engineer_doc],
                description="Referenced by the DataEngineer permission set",
            )
        if "SandboxDeveloper" in ps_names:
            acct.policy(
                "SandboxBoundary",
                [sandbox_boundary_doc],
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
                _ps_calls(ps_name, acct),
                weight=weight,
                provider=provider,
            )
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


def _sso_actors(
    ctx: _Ctx,
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
    a = _role_actor(
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


def _saml_role_actor(
    ctx: _Ctx,
    acct: AcctBuilder,
    role_name: str,
    session: str,
    calls: list[Call],
    provider: str,
    *,
    weight: float = 1.0,
    planted: bool = False,
) -> Actor:
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
            ip=ctx.ip("corp", session),
            calls=[call("sts.AssumeRoleWithSAML", role.arn)],
            weight=weight * 0.2,
            planted=planted,
            extra={"provider": provider},
        )
    )
    return _role_actor(ctx, acct, role_name, session, calls, weight=weight, planted=planted)


def _audit(ctx: _Ctx, audit: AcctBuilder, accounts: list[AcctBuilder]) -> None:
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
    _role_actor(ctx, audit, hub.name, "sam.okafor@example.com", hub_calls, weight=0.6)


def _member_baseline(ctx: _Ctx, acct: AcctBuilder, mgmt: AcctBuilder, audit: AcctBuilder) -> None:
    # Organizations creates this role in accounts it creates, trusting the management account.
    # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_access.html
    acct.role(
        "OrganizationAccountAccessRole", trust_aws(mgmt.root_arn), managed=[ctx.aws("AdministratorAccess")]
    )
    _role_actor(
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
        _role_actor(ctx, acct, "SecurityAudit", "security-audit-scan", audit_calls, weight=0.4)


def _workloads(ctx: _Ctx, acct: AcctBuilder, *, full: bool) -> None:
    """Resources, service roles and compute of a workload account (Prod, Dev, Sandbox)."""
    aid, name = acct.account_id, acct.name
    sensitive = "PII" if acct.ou == "Prod" else "Internal"
    key = acct.arn("kms", f"key/{ctx.ids.uuid('key', aid, 'app')}", HOME)
    acct.resource(
        key,
        "kms:key",
        target="key",
        name="app-key",
        policy=_key_policy(acct),
        tags=_tagged(sensitive),
        attributes={"key_manager": "CUSTOMER", "grants": []},
    )
    data = acct.bucket(f"{SLUG}-{name}-data-{aid}", tags=_tagged(sensitive), kms_key=key)
    artifacts = acct.bucket(f"{SLUG}-{name}-artifacts-{aid}", tags=_tagged("Internal"))
    secret = acct.arn("secretsmanager", f"secret:{name}/orders/db-{ctx.ids.alnum(6, 'secret', aid)}", HOME)
    acct.resource(
        secret,
        "secretsmanager:secret",
        target="secret",
        name=f"{name}/orders/db",
        tags=_tagged("PCI" if acct.ou == "Prod" else "Internal"),
        attributes={"kms_key_id": key},
        # Only the orders API reads it, and nobody from outside the account (identity policies still apply).
        policy=doc({"Sid": "OrdersApiRead", "Effect": "Allow",
                    "Principal": {"AWS": acct.iam_arn("role", "orders-api-task")},
                    "Action": "secretsmanager:GetSecretValue", "Resource": "*"}),
    )
    topic = acct.arn("sns", "orders-events", HOME)
    queue = acct.arn("sqs", "orders-queue", HOME)
    acct.resource(
        topic,
        "sns:topic",
        target="topic",
        name="orders-events",
        tags=_tagged("Internal"),
        policy=doc(
            {
                "Sid": "OwnerPublish",
                "Effect": "Allow",
                "Principal": {"AWS": acct.root_arn},
                "Action": ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes"],
                "Resource": topic,
            }
        ),
    )
    acct.resource(
        queue,
        "sqs:queue",
        target="queue",
        name="orders-queue",
        tags=_tagged("Internal"),
        policy=doc(
            {
                "Sid": "FromOrdersTopic",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
            }
        ),
        attributes={"url": f"https://sqs.{HOME}.amazonaws.com/{aid}/orders-queue"},
    )
    table = acct.arn("dynamodb", "table/orders", HOME)
    acct.resource(
        table,
        "other",
        target="table",
        name="orders",
        tags=_tagged(sensitive),
        attributes={"resource_type": "AWS::DynamoDB::Table", "sse_kms_key": key},
    )
    repo = acct.arn("ecr", "repository/orders-api", HOME)
    acct.resource(
        repo,
        "ecr:repository",
        target="repository",
        name="orders-api",
        tags=_tagged("Internal"),
        policy=doc(
            {
                "Sid": "OrgPull",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ctx.org_id}},
            }
        ),
    )
    loggroup = acct.arn("logs", "log-group:/aws/lambda/orders-worker", HOME)
    acct.targets["loggroup"].append(loggroup)
    acct.targets["param"].append(acct.arn("ssm", "parameter/orders/config", HOME))
    acct.targets["stream"].append(acct.arn("kinesis", "stream/orders-stream", HOME))
    cluster = acct.arn("ecs", "cluster/orders", HOME)
    acct.targets["cluster"].append(cluster)
    obj = f"{data}/"

    # ECS: the task role does the work, the execution role pulls the image and ships logs.
    task_calls = [
        call("dynamodb.GetItem", table),
        call("dynamodb.PutItem", table),
        call("dynamodb.Query", table),
        call("sqs.SendMessage", queue),
        call("kms.Decrypt", key),
        call("secretsmanager.GetSecretValue", secret),
        call("ec2.DescribeInstances"),
    ]
    acct.role(
        "orders-api-task",
        trust_service("ecs-tasks.amazonaws.com"),
        inline={"orders-api": policy_for_calls(task_calls)},
        description="ECS task role of orders-api",
    )
    acct.role(
        "ecsTaskExecutionRole",
        trust_service("ecs-tasks.amazonaws.com"),
        managed=[ctx.aws("AmazonECSTaskExecutionRolePolicy")],
    )
    task_role = acct.role_by_name["orders-api-task"].arn
    taskdef = acct.compute(
        "ecs_task_definition",
        acct.arn("ecs", "task-definition/orders-api:12", HOME),
        "orders-api:12",
        role_arn=task_role,
        attributes={"execution_role_arn": acct.role_by_name["ecsTaskExecutionRole"].arn},
    )
    acct.compute(
        "ecs_service",
        acct.arn("ecs", "service/orders/orders-api", HOME),
        "orders-api",
        role_arn=task_role,
        attributes={"cluster": cluster, "task_definition": taskdef, "launch_type": "FARGATE"},
    )
    _service_role_actor(ctx, acct, "orders-api-task", "ecs-tasks.amazonaws.com", task_calls, weight=3.0)
    _service_role_actor(
        ctx,
        acct,
        "ecsTaskExecutionRole",
        "ecs-tasks.amazonaws.com",
        [
            call("ecr.GetAuthorizationToken"),
            call("ecr.BatchGetImage", repo),
            call("ecr.GetDownloadUrlForLayer", repo),
            call("logs.CreateLogStream", loggroup),
        ],
        weight=1.0,
    )
    # Lambda worker.
    worker_calls = [
        call("sqs.ReceiveMessage", queue),
        call("sqs.DeleteMessage", queue),
        call("dynamodb.UpdateItem", table),
        call("sns.Publish", topic),
        call("logs.CreateLogStream", loggroup),
    ]
    worker = acct.role(
        "orders-worker-lambda",
        trust_service("lambda.amazonaws.com"),
        managed=[ctx.aws("AWSLambdaBasicExecutionRole")],
        inline={"orders-worker": policy_for_calls(worker_calls[:4])},
    )
    fn = acct.compute(
        "lambda_function",
        acct.arn("lambda", "function:orders-worker", HOME),
        "orders-worker",
        role_arn=worker.arn,
        target="function",
        attributes={"runtime": "python3.12"},
    )
    acct.resource(
        fn,
        "lambda:function",
        target="function",
        name="orders-worker",
        policy=doc(
            {
                "Sid": "sqs-trigger",
                "Effect": "Allow",
                "Principal": {"Service": "sqs.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": fn,
                "Condition": {"ArnLike": {"AWS:SourceArn": queue}},
            }
        ),
    )
    acct.targets["function"].pop()  # listed once
    _service_role_actor(ctx, acct, "orders-worker-lambda", "lambda.amazonaws.com", worker_calls, weight=2.0)
    # EC2 web tier with an instance profile, managed by SSM.
    web_calls = [
        call("ssm.UpdateInstanceInformation"),
        call("s3.GetObject", f"{artifacts}/"),
        call("ssm.GetParameter", acct.targets["param"][0]),
    ]
    web = acct.role(
        "web-ec2",
        trust_service("ec2.amazonaws.com"),
        managed=[ctx.aws("AmazonSSMManagedInstanceCore")],
        inline={"web": policy_for_calls(web_calls[1:])},
        profile=True,
    )
    inst = acct.arn("ec2", f"instance/i-{ctx.ids.hex(17, 'web', aid)}", HOME)
    acct.compute(
        "ec2_instance",
        inst,
        "web-1",
        role_arn=web.arn,
        profile_arn=web.instance_profiles[0],
        target="instance",
        attributes={"state": "running", "instance_type": "t3.medium"},
    )
    acct.compute(
        "ssm_managed_instance",
        acct.arn("ssm", f"managed-instance/{inst.rsplit('/', 1)[1]}", HOME),
        "web-1",
        role_arn=web.arn,
        profile_arn=web.instance_profiles[0],
        attributes={"instance_id": inst.rsplit("/", 1)[1], "ping_status": "Online"},
    )
    _service_role_actor(ctx, acct, "web-ec2", "ec2.amazonaws.com", web_calls, weight=1.5)
    if not full:
        return
    # CloudFormation with a service role, CodeBuild, Glue, SageMaker.
    cfn_calls = [
        call("ec2.DescribeSecurityGroups"),
        call("ec2.AuthorizeSecurityGroupIngress"),
        call("logs.CreateLogGroup", loggroup),
        call("logs.PutRetentionPolicy", loggroup),
    ]
    cfn = acct.role(
        "cfn-deploy",
        trust_service("cloudformation.amazonaws.com"),
        inline={"cfn-deploy": policy_for_calls(cfn_calls)},
    )
    acct.compute(
        "cloudformation_stack",
        acct.arn("cloudformation", f"stack/orders-platform/{ctx.ids.uuid('stack', aid)}", HOME),
        "orders-platform",
        role_arn=cfn.arn,
        target="stack",
        attributes={"status": "UPDATE_COMPLETE"},
    )
    _service_role_actor(ctx, acct, "cfn-deploy", "cloudformation.amazonaws.com", cfn_calls, weight=0.3)
    cb_calls = [
        call("ecr.GetAuthorizationToken"),
        call("ecr.PutImage", repo),
        call("s3.PutObject", f"{artifacts}/"),
        call("logs.CreateLogStream", loggroup),
        call("codecommit.GitPull"),
        call("ssm.GetParameters", acct.targets["param"][0]),
    ]
    cb = acct.role(
        "codebuild-orders",
        trust_service("codebuild.amazonaws.com"),
        inline={"codebuild": policy_for_calls(cb_calls)},
    )
    acct.compute(
        "codebuild_project",
        acct.arn("codebuild", "project/orders-api-build", HOME),
        "orders-api-build",
        role_arn=cb.arn,
        target="project",
    )
    _service_role_actor(ctx, acct, "codebuild-orders", "codebuild.amazonaws.com", cb_calls, weight=0.8)
    glue_calls = [
        call("glue.GetTable"),
        call("glue.GetPartitions"),
        call("glue.BatchCreatePartition"),
        call("s3.GetObject", obj),
        call("s3.PutObject", obj),
        call("kms.Decrypt", key),
    ]
    glue = acct.role(
        "glue-etl",
        trust_service("glue.amazonaws.com"),
        managed=[ctx.aws("AWSGlueServiceRole")],
        inline={"data-lake": policy_for_calls(glue_calls[3:])},
    )
    acct.compute(
        "glue_job", acct.arn("glue", "job/orders-etl", HOME), "orders-etl", role_arn=glue.arn, target="job"
    )
    _service_role_actor(ctx, acct, "glue-etl", "glue.amazonaws.com", glue_calls, weight=0.8)
    sm_calls = [
        call("sagemaker.CreateTrainingJob"),
        call("sagemaker.DescribeTrainingJob"),
        call("s3.GetObject", obj),
        call("ecr.BatchGetImage", repo),
        call("kms.Decrypt", key),
    ]
    sm = acct.role(
        "sagemaker-exec",
        trust_service("sagemaker.amazonaws.com"),
        managed=[ctx.aws("AmazonSageMakerFullAccess")],
        inline={"data": policy_for_calls([sm_calls[2], sm_calls[4]])},
    )
    acct.compute(
        "sagemaker_notebook",
        acct.arn("sagemaker", "notebook-instance/ml-notebook", HOME),
        "ml-notebook",
        role_arn=sm.arn,
        target="notebook",
        attributes={"direct_internet_access": "Disabled"},
    )
    _service_role_actor(ctx, acct, "sagemaker-exec", "sagemaker.amazonaws.com", sm_calls, weight=0.5)


_WORDS = (
    "billing",
    "catalog",
    "checkout",
    "inventory",
    "search",
    "shipping",
    "profile",
    "reviews",
    "pricing",
    "notify",
    "reports",
    "ledger",
    "fraud",
    "loyalty",
    "media",
    "auth",
    "gateway",
    "export",
    "audit",
    "quotes",
)


def _top_up(ctx: _Ctx, acct: AcctBuilder) -> None:
    """Generic workload roles (Lambda functions) until the account holds ``roles_per_account`` roles."""
    if acct.ou not in ("Prod", "Dev", "Sandbox"):
        return
    table, queue = acct.targets["table"][0], acct.targets["queue"][0]
    obj, key = acct.targets["object"][0], acct.targets["key"][0]
    n = 0
    while len(acct.roles) < ctx.cfg.roles_per_account:
        n += 1
        word = _WORDS[(n - 1) % len(_WORDS)]
        name = f"app-{word}-{n:04d}"
        variant = n % 4
        calls = [
            call("logs.CreateLogStream", acct.targets["loggroup"][0]),
            [
                call("dynamodb.Query", table),
                call("sqs.SendMessage", queue),
                call("s3.GetObject", obj),
                call("kms.Decrypt", key),
            ][variant],
            [
                call("dynamodb.GetItem", table),
                call("sqs.ReceiveMessage", queue),
                call("s3.PutObject", obj),
                call("secretsmanager.GetSecretValue", acct.targets["secret"][0]),
            ][variant],
        ]
        policy = policy_for_calls(calls)
        if n % 2:
            role = acct.role(
                name,
                trust_service("lambda.amazonaws.com"),
                inline={f"{name}-access": policy},
                tags={"team": word, "app": name},
            )
        else:
            parn = acct.policy(f"{name}-access", [policy], description=f"Access for {name}")
            role = acct.role(
                name, trust_service("lambda.amazonaws.com"), managed=[parn], tags={"team": word, "app": name}
            )
        fn = acct.arn("lambda", f"function:{word}-{n:04d}", HOME)
        acct.compute(
            "lambda_function",
            fn,
            f"{word}-{n:04d}",
            role_arn=role.arn,
            target="function",
            attributes={"runtime": "python3.12"},
        )
        _service_role_actor(ctx, acct, name, "lambda.amazonaws.com", calls, weight=0.3)


# ---------------------------------------------------------------------------------------------- planted


def _plant_prod(ctx: _Ctx, p: AcctBuilder, d: AcctBuilder, audit: AcctBuilder) -> None:
    K = PlantedKind
    aid = p.account_id
    admin = [ctx.aws("AdministratorAccess")]
    provider = p.iam_arn("saml-provider", "CorpIdP")
    p.saml_providers.append(SamlProvider(arn=provider, valid_until="2027-06-30T00:00:00Z", create_date=p.created(300)))
    key = p.targets["key"][0]
    data_bucket = p.targets["bucket"][0]
    loggroup = p.targets["loggroup"][0]

    # ---- admin targets
    jump_arn = p.iam_arn("role", "jump-role")
    prod_admin = p.role("prod-admin", trust_aws(jump_arn), managed=admin, description="Production administrators")
    ops_admin = p.role("ops-automation-admin", trust_service("lambda.amazonaws.com"), managed=admin)
    bastion = p.role("bastion-admin", trust_service("ec2.amazonaws.com"), managed=admin, profile=True)
    breakglass = p.user("break-glass-admin", managed=admin, password=True, mfa=True)
    ops_fn = p.compute("lambda_function", p.arn("lambda", "function:ops-automation", HOME), "ops-automation",
                       role_arn=ops_admin.arn, target="function", attributes={"runtime": "python3.12"})
    bastion_id = "i-" + ctx.ids.hex(17, "bastion", aid)
    bastion_inst = p.arn("ec2", f"instance/{bastion_id}", HOME)
    p.compute("ec2_instance", bastion_inst, "bastion", role_arn=bastion.arn, profile_arn=bastion.instance_profiles[0],
              target="instance", attributes={"state": "running", "instance_type": "t3.small"})
    p.compute("ssm_managed_instance", p.arn("ssm", f"managed-instance/{bastion_id}", HOME), "bastion",
              role_arn=bastion.arn, profile_arn=bastion.instance_profiles[0],
              attributes={"instance_id": bastion_id, "ping_status": "Online"})
    _service_role_actor(ctx, p, "ops-automation-admin", "lambda.amazonaws.com",
                        [call("ec2.CreateSnapshot"), call("ec2.DescribeVolumes"), call("rds.CreateDBSnapshot"),
                         call("backup.StartBackupJob"), call("backup.ListBackupJobs")], weight=0.5)
    _service_role_actor(ctx, p, "bastion-admin", "ec2.amazonaws.com",
                        [call("ssm.UpdateInstanceInformation"), call("ec2.DescribeInstances")], weight=0.5)
    _user_actor(ctx, p, "break-glass-admin", [call("signin.ConsoleLogin"), call("iam.GetAccountSummary")],
                weight=0.01, console=True)

    # ---- PE-01: a user can write a new version of the policy attached to itself
    bot_arn = p.iam_arn("policy", "deploy-bot-policy")
    deploy_calls = [call("ecr.GetAuthorizationToken"), call("ecr.PutImage", p.targets["repository"][0]),
                    call("ecs.UpdateService", p.targets["cluster"][0]), call("ecs.DescribeServices", p.targets["cluster"][0]),
                    call("cloudformation.DescribeStacks", p.targets["stack"][0])]
    base = policy_for_calls(deploy_calls)
    v3 = policy_for_calls(deploy_calls, [allow(["iam:CreatePolicyVersion", "iam:GetPolicy", "iam:GetPolicyVersion"],
                                               bot_arn, Sid="SelfServicePolicyUpdates")])
    p.policy("deploy-bot-policy", [base, policy_for_calls(deploy_calls[:3]), v3], description="CI deploy user")
    p.user("deploy-bot", managed=[bot_arn], keys=1, key_age_days=120)
    _user_actor(ctx, p, "deploy-bot", deploy_calls, weight=2.0, planted=True)
    ctx.plant("privesc.create-policy-version", K.PRIVILEGE_ESCALATION, "iam:CreatePolicyVersion on own policy", p,
              principals=[p.iam_arn("user", "deploy-bot")], resources=[bot_arn, "arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:CreatePolicyVersion"],
              why="deploy-bot may write a new default version of deploy-bot-policy, which is attached to itself, "
                  "so it can grant itself anything")

    # ---- PE-02: PassRole an admin role to a new Lambda function and invoke it
    deployer_calls = [call("lambda.GetFunction20150331v2", ops_fn), call("lambda.ListFunctions20150331")]
    p.role("lambda-deployer", trust_service("codebuild.amazonaws.com"), inline={"release": doc(
        allow("iam:PassRole", ops_admin.arn, Sid="PassAutomationRole"),
        allow(["lambda:CreateFunction", "lambda:InvokeFunction", "lambda:GetFunction", "lambda:ListFunctions"]),
    )})
    p.compute("codebuild_project", p.arn("codebuild", "project/lambda-release", HOME), "lambda-release",
              role_arn=p.role_by_name["lambda-deployer"].arn, target="project")
    _service_role_actor(ctx, p, "lambda-deployer", "codebuild.amazonaws.com", deployer_calls, weight=0.5, planted=True)
    ctx.plant("privesc.passrole-lambda", K.PRIVILEGE_ESCALATION, "iam:PassRole + lambda:CreateFunction + lambda:InvokeFunction",
              p, principals=[p.role_by_name["lambda-deployer"].arn], resources=[ops_admin.arn],
              actions=["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"],
              why="lambda-deployer can create a function that runs as ops-automation-admin (AdministratorAccess, "
                  "trusts lambda.amazonaws.com) and invoke it")

    # ---- PE-03: a user may attach any managed policy to itself
    intern = p.iam_arn("user", "intern-ops")
    p.group("ops-oncall", managed=[ctx.aws("ViewOnlyAccess")])
    p.user("intern-ops", groups=["ops-oncall"], password=True, mfa=True,
           inline={"self-service": doc(allow(["iam:AttachUserPolicy", "iam:ListAttachedUserPolicies"], intern))})
    _user_actor(ctx, p, "intern-ops", [call("signin.ConsoleLogin"), call("ec2.DescribeInstances"),
                                       call("monitoring.ListMetrics"), call("s3.ListBuckets")],
                console=True, planted=True)
    ctx.plant("privesc.attach-user-policy", K.PRIVILEGE_ESCALATION, "iam:AttachUserPolicy on self", p,
              principals=[intern], resources=["arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:AttachUserPolicy"], why="intern-ops can attach AdministratorAccess to itself")

    # ---- PE-04: create an access key for the admin user
    p.user("support-eng", groups=["ops-oncall"], password=True, mfa=True, inline={"helpdesk": doc(
        allow(["iam:CreateAccessKey", "iam:ListAccessKeys", "iam:GetUser"], p.iam_arn("user", "*")))})
    _user_actor(ctx, p, "support-eng", [call("signin.ConsoleLogin"), call("iam.ListAccessKeys", p.iam_arn("user", "deploy-bot")),
                                        call("iam.GetUser", p.iam_arn("user", "intern-ops"))], console=True, planted=True)
    ctx.plant("privesc.create-access-key", K.PRIVILEGE_ESCALATION, "iam:CreateAccessKey on an admin user", p,
              principals=[p.iam_arn("user", "support-eng")], resources=[breakglass.arn],
              actions=["iam:CreateAccessKey"],
              why="support-eng may create access keys for every user, including break-glass-admin (AdministratorAccess)")

    # ---- PE-05: rewrite the trust policy of the admin role
    helper = p.role("iam-helper", trust_service("lambda.amazonaws.com"), inline={"housekeeping": doc(
        allow(["iam:UpdateAssumeRolePolicy", "iam:GetRole"], prod_admin.arn), allow("iam:ListRoles"))})
    p.compute("lambda_function", p.arn("lambda", "function:iam-housekeeping", HOME), "iam-housekeeping",
              role_arn=helper.arn, target="function", attributes={"runtime": "python3.12"})
    _service_role_actor(ctx, p, "iam-helper", "lambda.amazonaws.com", [call("iam.ListRoles"), call("iam.GetRole", prod_admin.arn)],
                        weight=0.3, planted=True)
    ctx.plant("privesc.update-assume-role-policy", K.PRIVILEGE_ESCALATION, "iam:UpdateAssumeRolePolicy on an admin role",
              p, principals=[helper.arn], resources=[prod_admin.arn], actions=["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"],
              why="iam-helper can make prod-admin trust itself, then assume it")

    # ---- PE-06: update the code of a function that runs as admin (also the SAML federated developer role)
    p.role("SAML-AppDeveloper", trust_saml(provider), inline={"functions": doc(
        allow(["lambda:UpdateFunctionCode", "lambda:GetFunction"], p.arn("lambda", "function:ops-*", HOME)),
        allow("lambda:ListFunctions"))})
    _saml_role_actor(ctx, p, "SAML-AppDeveloper", "jonas.berg@example.com",
                     [call("lambda.ListFunctions20150331"), call("lambda.GetFunction20150331v2", ops_fn)], provider,
                     planted=True)
    ctx.plant("privesc.update-function-code", K.PRIVILEGE_ESCALATION, "lambda:UpdateFunctionCode on an admin function", p,
              principals=[p.role_by_name["SAML-AppDeveloper"].arn], resources=[ops_fn, ops_admin.arn],
              actions=["lambda:UpdateFunctionCode"],
              why="SAML-AppDeveloper can replace the code of ops-automation, which runs as ops-automation-admin")

    # ---- PE-07: ssm:SendCommand to an instance whose profile holds an admin role
    p.role("SAML-Operator", trust_saml(provider), inline={"operate": doc(
        allow("ssm:SendCommand", [p.arn("ec2", "instance/*", HOME), f"arn:aws:ssm:{HOME}::document/AWS-RunShellScript"]),
        allow(["ssm:ListCommandInvocations", "ssm:DescribeInstanceInformation", "ec2:DescribeInstances"]))})
    _saml_role_actor(ctx, p, "SAML-Operator", "tom.nguyen@example.com",
                     [call("ssm.DescribeInstanceInformation"), call("ssm.ListCommandInvocations"), call("ec2.DescribeInstances")],
                     provider, planted=True)
    ctx.plant("privesc.ssm-send-command", K.PRIVILEGE_ESCALATION, "ssm:SendCommand on an instance with an admin profile",
              p, principals=[p.role_by_name["SAML-Operator"].arn], resources=[bastion_inst, bastion.arn],
              actions=["ssm:SendCommand"],
              why="SAML-Operator can run shell commands on the bastion, whose instance profile holds bastion-admin")

    # ---- PE-08: two-hop assume-role chain
    jane = p.user("contractor-jane", keys=1, inline={"jump": doc(allow("sts:AssumeRole", jump_arn))})
    p.role("jump-role", trust_aws(jane.arn), inline={"to-admin": doc(allow("sts:AssumeRole", prod_admin.arn))})
    _user_actor(ctx, p, "contractor-jane", [call("sts.AssumeRole", jump_arn)], weight=0.3, planted=True)
    _role_actor(ctx, p, "jump-role", "jane", [call("sts.AssumeRole", prod_admin.arn)], weight=0.3, planted=True)
    _role_actor(ctx, p, "prod-admin", "jane", [call("ec2.DescribeInstances"), call("iam.ListRoles"),
                                               call("rds.DescribeDBClusters")], weight=0.3)
    ctx.plant("privesc.assume-role-chain", K.PRIVILEGE_ESCALATION, "two-hop sts:AssumeRole chain to admin", p,
              principals=[jane.arn], resources=[prod_admin.arn], actions=["sts:AssumeRole"],
              path=(jane.arn, p.role_by_name["jump-role"].arn, prod_admin.arn),
              why="contractor-jane assumes jump-role, which may assume prod-admin (AdministratorAccess)")

    # ---- PE-09: a new default version of a launch template an Auto Scaling group launches from
    # The group asks for $Default, so a new version made the default (ec2:ModifyLaunchTemplate) is what
    # its next instance boots, with the new version's user data and the template's instance profile; no
    # iam:PassRole is checked because nobody calls RunInstances or UpdateAutoScalingGroup with the profile.
    # https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-api-permissions.html
    # https://docs.aws.amazon.com/autoscaling/ec2/userguide/launch-template-support.html
    fleet = p.role("reconcile-fleet", trust_service("ec2.amazonaws.com"), managed=admin, profile=True,
                   description="Instance role of the nightly reconciliation workers")
    fleet_profile = fleet.instance_profiles[0]
    lt_id = "lt-0" + ctx.ids.hex(16, "launch-template", aid, "reconcile-workers")
    lt_arn = p.arn("ec2", f"launch-template/{lt_id}", HOME)
    asg_name = "reconcile-workers"
    asg_arn = (f"arn:aws:autoscaling:{HOME}:{aid}:autoScalingGroup:{ctx.ids.uuid('asg', aid, asg_name)}:"
               f"autoScalingGroupName/{asg_name}")
    # Versions as the collector reads them: $Default (3) and $Latest (4, a test version never made the default).
    p.compute("ec2_launch_template", lt_arn, "reconcile-workers", profile_arn=fleet_profile, attributes={
        "default_version": 3, "latest_version": 4, "version_profiles": {"3": fleet_profile, "4": fleet_profile},
        "autoscaling_groups": [{"name": asg_name, "arn": asg_arn, "version": "$Default"}]})
    worker_id = "i-" + ctx.ids.hex(17, "reconcile-worker", aid)
    p.compute("ec2_instance", p.arn("ec2", f"instance/{worker_id}", HOME), "reconcile-worker", role_arn=fleet.arn,
              profile_arn=fleet_profile, attributes={"state": "running", "instance_type": "c6i.large"},
              tags={"aws:autoscaling:groupName": asg_name, "aws:ec2launchtemplate:id": lt_id})
    _service_role_actor(ctx, p, "reconcile-fleet", "ec2.amazonaws.com",
                        [call("dynamodb.Query", p.targets["table"][0]), call("s3.GetObject", f"{data_bucket}/"),
                         call("kms.Decrypt", key)], weight=0.4)
    p.role("SAML-ReleaseEngineer", trust_saml(provider), inline={"releases": doc(
        allow(["ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate"], lt_arn, Sid="ReconcileWorkerReleases"),
        allow("autoscaling:StartInstanceRefresh", asg_arn, Sid="RollOutRelease"),
        allow(["ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
               "autoscaling:DescribeAutoScalingGroups"]))})
    release = p.role_by_name["SAML-ReleaseEngineer"]
    _saml_role_actor(ctx, p, "SAML-ReleaseEngineer", "priya.raman@example.com",
                     [call("ec2.DescribeLaunchTemplates"), call("ec2.DescribeLaunchTemplateVersions"),
                      call("autoscaling.DescribeAutoScalingGroups")], provider, weight=0.5, planted=True)
    ctx.plant("privesc.launch-template-version", K.PRIVILEGE_ESCALATION,
              "new default launch template version for an Auto Scaling group", p,
              principals=[release.arn], resources=[lt_arn, fleet.arn],
              actions=["ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate", "autoscaling:StartInstanceRefresh"],
              why="SAML-ReleaseEngineer can write a new version of launch template reconcile-workers with its own user "
                  "data and make it the default; Auto Scaling group reconcile-workers launches $Default, so the next "
                  "instance (an instance refresh starts one now) runs it as reconcile-fleet (AdministratorAccess)")

    # ---- PE-10: a user frozen by a Deny guardrail that it may detach from itself
    # Only the guardrail stands between cutover-admin and AdministratorAccess, and detaching a managed
    # policy is the one call it leaves allowed. An explicit Deny wins over any Allow while it is attached:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
    cutover = p.iam_arn("user", "cutover-admin")
    freeze = p.policy("cutover-freeze", [doc(
        {"Sid": "FrozenAfterCutover", "Effect": "Deny",
         "NotAction": ["iam:DetachUserPolicy", "iam:ListAttachedUserPolicies", "iam:GetUser"], "Resource": "*"},
        {"Sid": "OwnUserOnly", "Effect": "Deny",
         "Action": ["iam:DetachUserPolicy", "iam:ListAttachedUserPolicies", "iam:GetUser"], "NotResource": cutover})],
        description="Freezes cutover-admin after the data-center cutover; it may still clean up its own policies")
    p.user("cutover-admin", managed=[*admin, freeze], password=True, mfa=True)
    _user_actor(ctx, p, "cutover-admin", [call("signin.ConsoleLogin"), call("iam.GetUser", cutover),
                                          call("iam.ListAttachedUserPolicies", cutover)],
                console=True, weight=0.1, planted=True)
    ctx.plant("privesc.detach-deny-guardrail", K.PRIVILEGE_ESCALATION, "iam:DetachUserPolicy of its own Deny guardrail", p,
              principals=[cutover], resources=[freeze, "arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:DetachUserPolicy"],
              why="cutover-admin holds AdministratorAccess, cut back to nothing by the Deny in cutover-freeze; the "
                  "guardrail leaves it iam:DetachUserPolicy on itself, so it can detach cutover-freeze and be admin")

    # ---- SoD 1 (and an escalation): IAMFullAccess creates users and attaches admin policies
    p.role("SAML-IdentityAdmin", trust_saml(provider), managed=[ctx.aws("IAMFullAccess")])
    idadmin = p.role_by_name["SAML-IdentityAdmin"]
    ida = _saml_role_actor(ctx, p, "SAML-IdentityAdmin", "wei.chen@example.com",
                           [call("iam.ListUsers"), call("iam.GetUser", p.iam_arn("user", "deploy-bot")), call("iam.ListRoles"),
                            call("iam.ListPolicies")], provider, planted=True)
    ctx.plant("sod.create-user-and-attach-admin", K.SEPARATION_OF_DUTIES, "create IAM users + attach admin policies", p,
              principals=[idadmin.arn], resources=["arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:CreateUser", "iam:AttachUserPolicy"], also=("privesc.iam-full-access", "deviation.new-iam-actions"),
              why="one role can both create IAM users and attach AdministratorAccess to them")
    ctx.plant("privesc.iam-full-access", K.PRIVILEGE_ESCALATION, "iam:AttachRolePolicy on itself (IAMFullAccess)", p,
              principals=[idadmin.arn], resources=["arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:AttachRolePolicy"], also=("sod.create-user-and-attach-admin",),
              why="IAMFullAccess lets SAML-IdentityAdmin attach AdministratorAccess to itself")

    # ---- SoD 2: manage CloudTrail and delete its logs
    trail = p.arn("cloudtrail", "trail/prod-audit-trail", HOME)
    trail_bucket = p.bucket(f"{SLUG}-prod-audit-trail-{aid}", tags=_tagged("Internal"), policy=doc(
        {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{SLUG}-prod-audit-trail-{aid}",
         "Condition": {"StringEquals": {"aws:SourceArn": trail}}},
        {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{SLUG}-prod-audit-trail-{aid}/AWSLogs/{aid}/*",
         "Condition": {"StringEquals": {"aws:SourceArn": trail, "s3:x-amz-acl": "bucket-owner-full-control"}}}))
    p.resource(trail, "other", target="trail", name="prod-audit-trail", attributes={
        "resource_type": "AWS::CloudTrail::Trail", "IsOrganizationTrail": False, "IsMultiRegionTrail": True,
        "S3BucketName": trail_bucket.split(":::")[1]})
    p.role("SAML-TrailAdmin", trust_saml(provider), inline={"trail-admin": doc(
        allow(["cloudtrail:StopLogging", "cloudtrail:StartLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail",
               "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"], trail),
        allow("cloudtrail:DescribeTrails"),
        allow(["s3:DeleteObject", "s3:ListBucket", "s3:GetObject"], [trail_bucket, f"{trail_bucket}/*"]))})
    trail_admin = p.role_by_name["SAML-TrailAdmin"]
    tra = _saml_role_actor(ctx, p, "SAML-TrailAdmin", "lena.fischer@example.com",
                           [call("cloudtrail.DescribeTrails"), call("cloudtrail.GetTrailStatus", trail),
                            call("cloudtrail.GetEventSelectors", trail), call("s3.ListObjects", trail_bucket)],
                           provider, weight=0.5, planted=True)
    ctx.plant("sod.cloudtrail-and-log-deletion", K.SEPARATION_OF_DUTIES, "manage CloudTrail + delete its S3 logs", p,
              principals=[trail_admin.arn], resources=[trail, trail_bucket],
              actions=["cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "s3:DeleteObject"],
              also=("deviation.stop-logging",),
              why="SAML-TrailAdmin can stop prod-audit-trail and delete the log files it already wrote")

    # ---- SoD 3: administer a KMS key and decrypt with it; the PII key
    pii_key = p.arn("kms", f"key/{ctx.ids.uuid('key', aid, 'pii')}", HOME)
    custodian_arn = p.iam_arn("role", "key-custodian")
    analytics_arn = p.iam_arn("role", "analytics-etl")
    p.resource(pii_key, "kms:key", target="key", name="pii-data-key", tags=_tagged("PII"),
               policy=_key_policy(p, extra=[{"Sid": "AnalyticsDecrypt", "Effect": "Allow",
                                             "Principal": {"AWS": analytics_arn}, "Action": "kms:Decrypt",
                                             "Resource": "*"}]),
               attributes={"key_manager": "CUSTOMER", "grants": [{
                   "KeyId": pii_key, "GrantId": ctx.ids.hex(64, "grant", pii_key), "Name": "orders-api-decrypt",
                   "GranteePrincipal": p.role_by_name["orders-api-task"].arn, "IssuingAccount": p.root_arn,
                   "Operations": ["Decrypt", "GenerateDataKey"], "CreationDate": p.created(10, 60)}]})
    p.role("key-custodian", trust_aws(f"arn:aws:iam::{audit.account_id}:role/SecurityAuditHub"), inline={"custody": doc(
        allow(["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:CreateGrant", "kms:DescribeKey",
               "kms:GetKeyPolicy", "kms:Decrypt"], pii_key))})
    hub = next(a for a in ctx.actors if a.principal_arn == f"arn:aws:iam::{audit.account_id}:role/SecurityAuditHub")
    hub.calls.append(call("sts.AssumeRole", custodian_arn, recipient=aid))
    _role_actor(ctx, p, "key-custodian", "sam.okafor", [call("kms.DescribeKey", pii_key), call("kms.GetKeyPolicy", pii_key)],
                weight=0.2, planted=True)
    ctx.plant("sod.kms-admin-and-decrypt", K.SEPARATION_OF_DUTIES, "administer a KMS key + decrypt with it", p,
              principals=[custodian_arn], resources=[pii_key],
              actions=["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:Decrypt"],
              why="key-custodian can change the PII key's policy or delete it, and can also decrypt PII with it")

    # ---- over-broad: s3:* on *
    dp_calls = [call("s3.GetObject", f"{data_bucket}/"), call("s3.PutObject", f"{data_bucket}/"),
                call("s3.ListObjects", data_bucket), call("kms.Decrypt", key), call("kms.GenerateDataKey", key)]
    p.role("data-pipeline", trust_service("glue.amazonaws.com"), inline={
        "s3-everything": doc(allow("s3:*", "*", Sid="AllS3")), "kms": doc(allow(["kms:Decrypt", "kms:GenerateDataKey"], key))})
    p.compute("glue_job", p.arn("glue", "job/nightly-pipeline", HOME), "nightly-pipeline",
              role_arn=p.role_by_name["data-pipeline"].arn, target="job")
    _service_role_actor(ctx, p, "data-pipeline", "glue.amazonaws.com", dp_calls, weight=1.0, planted=True)
    ctx.plant("overbroad.s3-star", K.OVER_BROAD, "s3:* on *", p, principals=[p.role_by_name["data-pipeline"].arn],
              resources=["*"], actions=["s3:*"],
              why="data-pipeline uses GetObject/PutObject/ListBucket on one bucket but holds every S3 action on every bucket")

    # ---- unused permissions: granted services/actions never used
    an_calls = [call("athena.StartQueryExecution"), call("athena.GetQueryExecution"), call("athena.GetQueryResults"),
                call("glue.GetTable"), call("glue.GetTables"), call("glue.GetPartitions"),
                call("s3.GetObject", f"{data_bucket}/"), call("s3.ListObjects", data_bucket), call("kms.Decrypt", pii_key)]
    an_doc = doc(allow(["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"]),
                 allow(["glue:GetTable", "glue:GetTables", "glue:GetPartitions"]),
                 allow(["s3:GetObject", "s3:ListBucket", "s3:DeleteObject"], [data_bucket, f"{data_bucket}/*"]),
                 allow("dynamodb:*", p.arn("dynamodb", "table/*", HOME), Sid="LegacyTableAccess"))
    an_v1 = doc(an_doc["Statement"][0], an_doc["Statement"][1],
                allow(["s3:GetObject", "s3:ListBucket"], [data_bucket, f"{data_bucket}/*"]))
    # v2 (default) added delete and the legacy table access that nothing uses.
    an_policy = p.policy("analytics-etl-access", [an_v1, an_doc])
    p.resource(p.arn("dynamodb", "table/patients", HOME), "other", target="table", name="patients",
               tags=_tagged("PHI"), attributes={"resource_type": "AWS::DynamoDB::Table", "sse_kms_key": pii_key})
    p.role("analytics-etl", trust_service("ecs-tasks.amazonaws.com"), managed=[an_policy])
    p.compute("ecs_service", p.arn("ecs", "service/analytics/analytics-etl", HOME), "analytics-etl",
              role_arn=analytics_arn, attributes={"cluster": p.arn("ecs", "cluster/analytics", HOME), "launch_type": "FARGATE"})
    _service_role_actor(ctx, p, "analytics-etl", "ecs-tasks.amazonaws.com", an_calls, weight=1.0, planted=True)
    ctx.plant("unused.services-and-actions", K.UNUSED_PERMISSIONS, "granted services/actions never used", p,
              principals=[analytics_arn], resources=[an_policy], actions=["dynamodb:*", "s3:DeleteObject"],
              details=(("unused_services", ["dynamodb"]), ("unused_actions", ["s3:DeleteObject"]),
                       ("used_actions", sorted({c.template.action for c in an_calls if c.template.action}))),
              why="analytics-etl never calls DynamoDB nor deletes objects in the window, though its policy allows both")

    # ---- unused role
    p.role("legacy-reporting", trust_service("lambda.amazonaws.com"), managed=[ctx.aws("ReadOnlyAccess")],
           description="Reporting job retired in 2025")
    ctx.never_used.add(p.role_by_name["legacy-reporting"].arn)
    ctx.plant("unused.role", K.UNUSED_ROLE, "role never used", p, principals=[p.role_by_name["legacy-reporting"].arn],
              resources=[], actions=[], why="no call by legacy-reporting in the whole window; RoleLastUsed is empty")

    # ---- unused credentials: an unused console password and an unused access key
    fc = p.user("former-contractor", groups=["all-engineers"], password=True, keys=1, key_age_days=400)
    ctx.never_used.add(fc.arn)
    ctx.stale[fc.arn] = {"password_last_used": iso(ctx.end - timedelta(days=200)),
                         "access_key_1_last_used_date": iso(ctx.end - timedelta(days=180)),
                         "access_key_1_last_used_region": HOME, "access_key_1_last_used_service": "s3"}
    ctx.plant("unused.credentials", K.UNUSED_CREDENTIALS, "console password and access key unused for 180+ days", p,
              principals=[fc.arn], resources=[fc.access_keys[0].access_key_id], actions=[],
              why="former-contractor last signed in 200 days and last used its active key 180 days before the end")

    # ---- PII readable by a broad group
    pii_bucket = p.bucket(f"{SLUG}-customer-pii-{aid}", tags=_tagged("PII", owner="payments"))
    p.group("all-engineers", managed=[ctx.aws("AmazonS3ReadOnlyAccess")])
    for name in ("alice", "bob", "carol"):
        p.user(name, groups=["all-engineers"], password=True, mfa=True)
        _user_actor(ctx, p, name, [call("signin.ConsoleLogin"), call("s3.ListBuckets"),
                                   call("s3.GetObject", f"{data_bucket}/")], console=True, weight=0.5)
    ctx.plant("sensitive.pii-readable-by-broad-group", K.SENSITIVE_DATA_ACCESS, "PII bucket readable by a broad group", p,
              principals=[p.group_by_name["all-engineers"].arn], resources=[pii_bucket], actions=["s3:GetObject"],
              why="every member of all-engineers can read the PII bucket through AmazonS3ReadOnlyAccess "
                  "(SSE-S3, so no key policy stands in the way)")

    # ---- the RCP near miss: a bucket policy open to everyone, cut back by the organization's RCP
    drop = f"{SLUG}-partner-drop-{aid}"
    p.bucket(drop, public_block=False, tags=_tagged("Internal"), policy=doc(
        {"Sid": "PartnersRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{drop}/*"}))
    ctx.plant("nearmiss.public-bucket-under-rcp", K.NEAR_MISS, "public bucket policy", p,
              principals=["*"], resources=[f"arn:aws:s3:::{drop}"], actions=["s3:GetObject"], expect=Expect.NO_FINDING,
              blocked_by="RCP EnforceOrgIdentitiesS3 (Prod OU) denies principals outside the organization",
              why="the bucket policy says Principal *, but the RCP on the Prod OU denies every non-org principal")

    # ---- near misses for escalation
    at_arn = p.iam_arn("policy", "auditor-temp-policy")
    p.policy("auditor-temp-policy", [doc(allow(["iam:CreatePolicyVersion", "iam:GetPolicyVersion"], at_arn),
                                         allow(["iam:Get*", "iam:List*"]))])
    p.user("auditor-temp", managed=[at_arn], password=True, mfa=True, inline={"no-policy-edits": doc(
        deny(["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"], "*", Sid="NoPolicyEdits"))})
    _user_actor(ctx, p, "auditor-temp", [call("signin.ConsoleLogin"), call("iam.ListPolicies"),
                                         call("iam.GetPolicyVersion", at_arn)], console=True, weight=0.2)
    ctx.plant("nearmiss.deny", K.NEAR_MISS, "iam:CreatePolicyVersion on own policy", p,
              principals=[p.iam_arn("user", "auditor-temp")], resources=[at_arn], actions=["iam:CreatePolicyVersion"],
              expect=Expect.NO_FINDING, blocked_by="explicit Deny in the user's inline policy no-policy-edits",
              why="the same grant as deploy-bot, but an explicit Deny on iam:CreatePolicyVersion wins")
    boundary = p.policy("builder-boundary", [doc(allow(["s3:*", "logs:*", "ecr:*", "codebuild:*"]))],
                        description="Permissions boundary for build roles")
    p.role("sandboxed-builder", trust_service("codebuild.amazonaws.com"), boundary=boundary, inline={"build": doc(
        allow(["iam:AttachRolePolicy", "iam:PutRolePolicy"], "*"),
        allow(["logs:CreateLogStream", "s3:PutObject", "ecr:GetAuthorizationToken"]))})
    p.compute("codebuild_project", p.arn("codebuild", "project/sandboxed-build", HOME), "sandboxed-build",
              role_arn=p.role_by_name["sandboxed-builder"].arn, target="project")
    _service_role_actor(ctx, p, "sandboxed-builder", "codebuild.amazonaws.com",
                        [call("logs.CreateLogStream", loggroup), call("ecr.GetAuthorizationToken")], weight=0.3)
    ctx.plant("nearmiss.boundary", K.NEAR_MISS, "iam:AttachRolePolicy on itself", p,
              principals=[p.role_by_name["sandboxed-builder"].arn], resources=["arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:AttachRolePolicy", "iam:PutRolePolicy"], expect=Expect.NO_FINDING,
              blocked_by="permissions boundary builder-boundary allows no iam action",
              why="the identity policy allows attaching any policy to any role, but the boundary caps it at s3/logs/ecr/codebuild")
    p.role("ec2-launcher", trust_service("codepipeline.amazonaws.com"), inline={"launch": doc(
        allow("iam:PassRole", ops_admin.arn, Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
        allow(["lambda:CreateFunction", "lambda:InvokeFunction", "ec2:DescribeInstances"]))})
    _service_role_actor(ctx, p, "ec2-launcher", "codepipeline.amazonaws.com", [call("ec2.DescribeInstances")], weight=0.2)
    ctx.plant("nearmiss.passed-to-service", K.NEAR_MISS, "iam:PassRole + lambda:CreateFunction + lambda:InvokeFunction", p,
              principals=[p.role_by_name["ec2-launcher"].arn], resources=[ops_admin.arn],
              actions=["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"], expect=Expect.NO_FINDING,
              blocked_by="iam:PassedToService condition allows passing only to ec2.amazonaws.com",
              why="the PassRole grant on ops-automation-admin only holds when passed to EC2, and that role trusts Lambda only")
    p.role("lambda-deployer-scoped", trust_service("codebuild.amazonaws.com"), inline={"release": doc(
        allow("iam:PassRole", p.iam_arn("role", "app-*")),
        allow(["lambda:CreateFunction", "lambda:InvokeFunction", "lambda:ListFunctions"]))})
    _service_role_actor(ctx, p, "lambda-deployer-scoped", "codebuild.amazonaws.com", [call("lambda.ListFunctions20150331")],
                        weight=0.2)
    ctx.plant("nearmiss.resource-constraint", K.NEAR_MISS, "iam:PassRole + lambda:CreateFunction + lambda:InvokeFunction", p,
              principals=[p.role_by_name["lambda-deployer-scoped"].arn], resources=[ops_admin.arn, prod_admin.arn],
              actions=["iam:PassRole"], expect=Expect.NO_FINDING,
              blocked_by="PassRole is limited to role/app-*, none of which is an admin role",
              why="same shape as lambda-deployer, but no admin role matches the PassRole resource")
    # Same shape as cutover-admin, but the guardrail lets it detach only the drill tooling policy (Allows only,
    # so detaching it widens nothing). iam:PolicyARN is the policy a Detach*Policy request names:
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html
    drill = p.iam_arn("user", "dr-drill-admin")
    tooling = p.policy("dr-drill-tooling", [doc(allow(["backup:StartRestoreJob", "backup:ListBackupJobs",
                                                       "rds:DescribeDBClusters"]))],
                       description="Tools for the disaster-recovery drill")
    drill_freeze = p.policy("dr-drill-freeze", [doc(
        {"Sid": "FrozenBetweenDrills", "Effect": "Deny",
         "NotAction": ["iam:DetachUserPolicy", "iam:ListAttachedUserPolicies", "iam:GetUser"], "Resource": "*"},
        {"Sid": "OwnUserOnly", "Effect": "Deny",
         "Action": ["iam:DetachUserPolicy", "iam:ListAttachedUserPolicies", "iam:GetUser"], "NotResource": drill},
        {"Sid": "DetachOnlyTheDrillTooling", "Effect": "Deny", "Action": "iam:DetachUserPolicy", "Resource": "*",
         "Condition": {"ArnNotEquals": {"iam:PolicyARN": tooling}}})],
        description="Freezes dr-drill-admin between drills; it may only detach the drill tooling when a drill ends")
    p.user("dr-drill-admin", managed=[*admin, drill_freeze, tooling], password=True, mfa=True)
    _user_actor(ctx, p, "dr-drill-admin", [call("signin.ConsoleLogin"), call("iam.GetUser", drill),
                                           call("iam.ListAttachedUserPolicies", drill)], console=True, weight=0.1)
    ctx.plant("nearmiss.detach-other-policy", K.NEAR_MISS, "iam:DetachUserPolicy of its own Deny guardrail", p,
              principals=[drill], resources=[drill_freeze, tooling], actions=["iam:DetachUserPolicy"],
              expect=Expect.NO_FINDING,
              blocked_by="the guardrail denies iam:DetachUserPolicy unless iam:PolicyARN is dr-drill-tooling",
              why="same as cutover-admin, but the only policy dr-drill-admin may detach is dr-drill-tooling, which "
                  "holds no Deny; the guardrail dr-drill-freeze stays attached")

    # ---- external access with ExternalId (a vendor outside the organization)
    vendor = p.role("ThirdPartyMonitoring", trust_aws(f"arn:aws:iam::{VENDOR_ACCOUNT}:root",
                                                       condition={"StringEquals": {"sts:ExternalId": "ext-" + ctx.ids.hex(12, "extid")}}),
                    managed=[ctx.aws("ViewOnlyAccess")], description="Monitoring vendor")
    ctx.actor(Actor(key=f"acct:{VENDOR_ACCOUNT}:{aid}", kind="AWSAccount", account_id=VENDOR_ACCOUNT, principal_arn=None,
                    name=VENDOR_ACCOUNT, unique_id=ctx.ids.unique_id("AIDA", "vendor"), regions=(HOME,),
                    ip=ctx.ip("vendor"), calls=[call("sts.AssumeRole", vendor.arn, recipient=aid)], weight=0.3))
    _role_actor(ctx, p, "ThirdPartyMonitoring", "vendor-poller", [call("monitoring.ListMetrics"),
                                                                  call("monitoring.GetMetricStatistics"),
                                                                  call("ec2.DescribeInstances")], weight=0.8)
    ctx.plant("external.vendor-role-with-external-id", K.EXTERNAL_ACCESS, "role trusted by an account outside the org", p,
              principals=[f"arn:aws:iam::{VENDOR_ACCOUNT}:root"], resources=[vendor.arn], actions=["sts:AssumeRole"],
              why=f"account {VENDOR_ACCOUNT} is not in the organization; sts:ExternalId narrows but does not remove it")

    # ---- cross-account bucket inside the organization (not a finding; listed for who-can tests)
    shared = f"{SLUG}-shared-reports-{aid}"
    p.bucket(shared, tags=_tagged("Internal"), policy=doc(
        {"Sid": "DevAccountRead", "Effect": "Allow", "Principal": {"AWS": d.root_arn},
         "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [f"arn:aws:s3:::{shared}", f"arn:aws:s3:::{shared}/*"]}))

    # ---- the deviations of the last day
    # The snapshot is taken at the end of the window, so it already shows what these calls changed.
    last_day = ctx.end - timedelta(days=1)
    svc = p.user("svc-backup")
    svc.create_date = iso(last_day + timedelta(minutes=13 * 60 + 2))
    web = p.role_by_name["web-ec2"]
    ec2_ro = ctx.aws("AmazonEC2ReadOnlyAccess")
    web.attached_managed_policies.append(ec2_ro)
    ctx.deviations.append(Planned("deviation.new-iam-actions", ida, call("iam.CreateUser", svc.arn), 1, 13 * 60 + 2))
    ctx.deviations.append(Planned("deviation.new-iam-actions", ida,
                                  call("iam.AttachRolePolicy", web.arn, params={"policyArn": ec2_ro}), 1, 13 * 60 + 4))
    ctx.plant("deviation.new-iam-actions", K.DEVIATION, "first-ever iam:CreateUser and iam:AttachRolePolicy", p,
              principals=[idadmin.arn], resources=[svc.arn, web.arn, ec2_ro],
              actions=["iam:CreateUser", "iam:AttachRolePolicy"], also=("sod.create-user-and-attach-admin",),
              why="SAML-IdentityAdmin only listed and read IAM for the whole window, then created user svc-backup "
                  "and attached AmazonEC2ReadOnlyAccess to web-ec2")
    orders = p.role_by_name["orders-api-task"]
    orders_actor = next(a for a in ctx.actors if a.principal_arn == orders.arn)
    orders_actor.planted = True
    ctx.deviations.append(Planned("deviation.new-region", orders_actor, call("ec2.DescribeInstances"), 3, 2 * 60 + 17,
                                  region="eu-west-1"))
    ctx.plant("deviation.new-region", K.DEVIATION, "call from a region never used before", p, principals=[orders.arn],
              resources=[], actions=["ec2:DescribeInstances"], details=(("region", "eu-west-1"),),
              why="orders-api-task only ever called us-east-1, then described instances in eu-west-1")
    ctx.deviations.append(Planned("deviation.stop-logging", tra, call("cloudtrail.StopLogging", trail), 1, 22 * 60 + 41))
    ctx.plant("deviation.stop-logging", K.DEVIATION, "cloudtrail:StopLogging", p, principals=[trail_admin.arn],
              resources=[trail], actions=["cloudtrail:StopLogging"], also=("sod.cloudtrail-and-log-deletion",),
              why="the prod-audit-trail was stopped on the last day")
    jane_actor = next(a for a in ctx.actors if a.principal_arn == jane.arn)
    secret = p.targets["secret"][0]
    for i, (c, n) in enumerate(((call("secretsmanager.GetSecretValue", secret, error="AccessDeniedException"), 20),
                                (call("s3.GetObject", f"{pii_bucket}/", error="AccessDenied"), 15),
                                (call("s3.ListBuckets", error="AccessDenied"), 5))):
        ctx.deviations.append(Planned("deviation.access-denied-burst", jane_actor, c, n, 9 * 60 + 30 + i, spread_seconds=240))
    ctx.plant("deviation.access-denied-burst", K.DEVIATION, "burst of AccessDenied", p, principals=[jane.arn],
              resources=[secret, pii_bucket], actions=["secretsmanager:GetSecretValue", "s3:GetObject", "s3:ListAllMyBuckets"],
              details=(("count", 40),), also=("privesc.assume-role-chain",),
              why="contractor-jane's key made 40 refused calls in under ten minutes")


def _plant_dev(ctx: _Ctx, d: AcctBuilder, p: AcctBuilder) -> None:
    K = PlantedKind
    aid = d.account_id
    d.public_access_block = {k: False for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                                "RestrictPublicBuckets")}
    pub = f"{SLUG}-public-assets-{aid}"
    d.bucket(pub, public_block=False, is_public=True, tags=_tagged("Public"), policy=doc(
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{pub}/*"}))
    ctx.actor(Actor(key=f"anon:{aid}", kind="AWSAccount", account_id="anonymous", principal_arn=None, name="ANONYMOUS_PRINCIPAL",
                    unique_id="anonymous", regions=(HOME,), ip=ctx.ip("anon"), user_agent="curl/8.5.0",
                    calls=[call("s3.GetObject", f"arn:aws:s3:::{pub}/", recipient=aid)], weight=0.5,
                    extra={"anonymous": "true"}))
    ctx.plant("exposure.public-bucket", K.EXTERNAL_EXPOSURE, "bucket policy Principal * s3:GetObject", d,
              principals=["*"], resources=[f"arn:aws:s3:::{pub}"], actions=["s3:GetObject"],
              why="anyone on the internet can read the objects; Block Public Access is off for the bucket and account")
    shared_obj = d.targets["object"][0]
    d.role("partner-integration", trust_aws("*"), inline={"partner": doc(
        allow(["s3:GetObject"], shared_obj + "*"), allow("sqs:SendMessage", d.targets["queue"][0]))})
    _role_actor(ctx, d, "partner-integration", "partner-sync", [call("sqs.SendMessage", d.targets["queue"][0])], weight=0.3)
    ctx.plant("exposure.role-any-account", K.EXTERNAL_EXPOSURE, 'trust policy Principal {"AWS": "*"} without conditions',
              d, principals=["*"], resources=[d.role_by_name["partner-integration"].arn], actions=["sts:AssumeRole"],
              why="any AWS principal in any account can assume partner-integration")
    oidc = d.iam_arn("oidc-provider", GITHUB_OIDC)
    d.oidc_providers.append(OidcProvider(arn=oidc, url=f"https://{GITHUB_OIDC}", client_ids=["sts.amazonaws.com"],
                                         thumbprints=["6938fd4d98bab03faadb97b34396831e3780aea1"]))
    # GitHub's OIDC tokens carry aud=sts.amazonaws.com for every repository; only `sub` names the repository.
    # https://docs.github.com/en/actions/deployment/security-hardening-your-deployments/configuring-openid-connect-in-amazon-web-services
    aud = {f"{GITHUB_OIDC}:aud": "sts.amazonaws.com"}
    sub = f"repo:{GITHUB_REPO}:ref:refs/heads/main"
    gh_calls = [call("ecr.GetAuthorizationToken"), call("ecr.PutImage", d.targets["repository"][0]),
                call("ecs.UpdateService", d.targets["cluster"][0])]
    d.role("github-actions-deploy", doc({"Effect": "Allow", "Principal": {"Federated": oidc},
                                         "Action": "sts:AssumeRoleWithWebIdentity",
                                         "Condition": {"StringEquals": {**aud, f"{GITHUB_OIDC}:sub": sub}}}),
           inline={"deploy": policy_for_calls(gh_calls)})
    d.role("github-actions-legacy", doc({"Effect": "Allow", "Principal": {"Federated": oidc},
                                         "Action": "sts:AssumeRoleWithWebIdentity",
                                         "Condition": {"StringEquals": aud}}),
           inline={"deploy": policy_for_calls(gh_calls[:2])})
    for role_name, calls in (("github-actions-deploy", gh_calls), ("github-actions-legacy", gh_calls[:2])):
        role = d.role_by_name[role_name]
        ctx.actor(Actor(key=f"web:{role.arn}", kind="WebIdentityUser", account_id=aid, principal_arn=None, name=sub,
                        unique_id=f"{oidc}:sts.amazonaws.com:{sub}", session="GitHubActions", regions=(HOME,),
                        ip=ctx.ip("github", role_name), calls=[call("sts.AssumeRoleWithWebIdentity", role.arn)],
                        weight=0.3, extra={"provider": oidc}))
        _role_actor(ctx, d, role_name, "GitHubActions", calls, weight=0.8, kind="AssumedRole",
                    user_agent="aws-sdk-js/3.600.0 GitHubActions", extra={"web_identity": oidc})
    ctx.plant("exposure.github-oidc-without-sub", K.EXTERNAL_EXPOSURE, "GitHub OIDC trust without a sub condition", d,
              principals=[oidc], resources=[d.role_by_name["github-actions-legacy"].arn],
              actions=["sts:AssumeRoleWithWebIdentity"],
              why="only aud is checked, and every GitHub repository's token has aud sts.amazonaws.com")
    ctx.plant("nearmiss.github-oidc-with-sub", K.NEAR_MISS, "GitHub OIDC trust", d, principals=[oidc],
              resources=[d.role_by_name["github-actions-deploy"].arn], actions=["sts:AssumeRoleWithWebIdentity"],
              expect=Expect.NO_FINDING, blocked_by=f"sub condition pins repository {GITHUB_REPO} main branch",
              why="the same trust with a sub condition: only one repository and branch can assume it")

    # ---- a SAML federated role and a federated user (GetFederationToken) in dev
    provider = d.iam_arn("saml-provider", "CorpIdP")
    d.saml_providers.append(SamlProvider(arn=provider, valid_until="2027-06-30T00:00:00Z", create_date=d.created(300)))
    d.role("SAML-ReadOnly", trust_saml(provider), managed=[ctx.aws("ReadOnlyAccess")])
    _saml_role_actor(ctx, d, "SAML-ReadOnly", "priya.patel@example.com",
                     [call("ec2.DescribeInstances"), call("s3.ListBuckets"), call("cloudfront.ListDistributions")], provider,
                     weight=0.5)
    dash_calls = [call("ec2.DescribeInstances"), call("monitoring.GetMetricData"), call("s3.ListBuckets")]
    broker = d.user("federation-broker", keys=1, inline={"broker": policy_for_calls(
        dash_calls, [allow("sts:GetFederationToken", d.arn("sts", "federated-user/*"))])})
    b_actor = _user_actor(ctx, d, "federation-broker", [call("sts.GetFederationToken")], weight=0.3)
    fed = Actor(key=f"fed:{aid}:ops-dashboard", kind="FederatedUser", account_id=aid, principal_arn=broker.arn,
                name="ops-dashboard", unique_id=broker.user_id, session="ops-dashboard",
                access_key=ctx.ids.access_key_id(broker.arn, "fed", temporary=True), regions=(HOME,),
                ip=ctx.ip("dash"), calls=dash_calls, weight=0.8, issuer=b_actor)
    ctx.actor(fed)
    # ---- an old, still active access key used every day
    d.group("ci-users", inline={"list-builds": doc(allow(["codebuild:ListProjects", "codebuild:BatchGetProjects"]))})
    ci = d.user("ci-legacy", groups=["ci-users"], keys=1, key_age_days=1100, inline={"ci": policy_for_calls(
        [call("s3.PutObject", d.targets["object"][0]), call("codebuild.StartBuild", d.targets["project"][0]),
         call("codebuild.BatchGetBuilds", d.targets["project"][0])])})
    _user_actor(ctx, d, "ci-legacy", [call("s3.PutObject", d.targets["object"][0]),
                                      call("codebuild.StartBuild", d.targets["project"][0]),
                                      call("codebuild.BatchGetBuilds", d.targets["project"][0])], weight=1.0, planted=True)
    ctx.plant("credentials.old-active-key", K.CREDENTIAL_HYGIENE, "active access key older than 90 days", d,
              principals=[ci.arn], resources=[ci.access_keys[0].access_key_id], actions=[],
              why="ci-legacy's key is about three years old and still in daily use (never rotated)")


def _plant_sandbox(ctx: _Ctx, s: AcctBuilder) -> None:
    s.user("sandbox-admin", managed=[ctx.aws("AdministratorAccess")], password=True, mfa=True)
    _user_actor(ctx, s, "sandbox-admin", [call("signin.ConsoleLogin"), call("ec2.DescribeInstances"),
                                          call("iam.ListUsers")], console=True, weight=0.3)
    helpdesk = s.role("sandbox-helpdesk", trust_service("lambda.amazonaws.com"), inline={"helpdesk": doc(
        allow(["iam:CreateAccessKey", "iam:ListAccessKeys"], s.iam_arn("user", "*")))})
    s.compute("lambda_function", s.arn("lambda", "function:helpdesk-automation", HOME), "helpdesk-automation",
              role_arn=helpdesk.arn, target="function", attributes={"runtime": "python3.12"})
    _service_role_actor(ctx, s, "sandbox-helpdesk", "lambda.amazonaws.com",
                        [call("iam.ListAccessKeys", s.iam_arn("user", "sandbox-admin"))], weight=0.2)
    ctx.plant("nearmiss.scp", PlantedKind.NEAR_MISS, "iam:CreateAccessKey on an admin user", s,
              principals=[helpdesk.arn], resources=[s.iam_arn("user", "sandbox-admin")], actions=["iam:CreateAccessKey"],
              expect=Expect.NO_FINDING, blocked_by="SCP DenyIamUserCredentials on the Sandbox OU",
              why="the same grant as support-eng in prod-01, but the Sandbox OU's SCP denies iam:CreateAccessKey")


def _plant_stackset(ctx: _Ctx, mgmt: AcctBuilder, workloads: list[AcctBuilder], prod: AcctBuilder) -> None:
    """The organization's security baseline, a self-managed StackSet in the management account.

    Self-managed permissions as AWS's prerequisite templates set them up: the administration role in the
    management account trusts CloudFormation and may assume AWSCloudFormationStackSetExecutionRole in any
    account; that role, in each target account, trusts the administration role and holds
    AdministratorAccess. UpdateStackSet deploys the caller's template to every stack instance, where it runs
    as the execution role; the caller passes the administration role to CloudFormation.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-prereqs-self-managed.html
    """
    name = "org-security-baseline"
    stackset = mgmt.arn("cloudformation", f"stackset/{name}:{ctx.ids.uuid('stackset', mgmt.account_id, name)}", HOME)
    admin_role = mgmt.role("AWSCloudFormationStackSetAdministrationRole", trust_service("cloudformation.amazonaws.com"),
                           inline={"AssumeRole-AWSCloudFormationStackSetExecutionRole": doc(
                               allow("sts:AssumeRole", "arn:aws:iam::*:role/AWSCloudFormationStackSetExecutionRole"))})
    for acct in workloads:
        acct.role("AWSCloudFormationStackSetExecutionRole", trust_aws(admin_role.arn), managed=[ctx.aws("AdministratorAccess")],
                  description="StackSet execution role for the organization's security baseline")
        _role_actor(ctx, acct, "AWSCloudFormationStackSetExecutionRole", "stackset-baseline",
                    [call("cloudformation.ListStacks"), call("config.DescribeConfigRules")], weight=0.1)
    mgmt.compute("cloudformation_stackset", stackset, name, role_arn=admin_role.arn, attributes={
        "permission_model": "SELF_MANAGED", "execution_role_name": "AWSCloudFormationStackSetExecutionRole",
        "status": "ACTIVE", "instance_accounts": sorted(a.account_id for a in workloads), "instance_regions": [HOME],
        "administration_role_arn": admin_role.arn})
    _service_role_actor(ctx, mgmt, admin_role.name, "cloudformation.amazonaws.com",
                        [call("sts.AssumeRole", f"arn:aws:iam::{a.account_id}:role/AWSCloudFormationStackSetExecutionRole",
                              recipient=a.account_id) for a in workloads], weight=0.2)
    # The pipeline that rolls out new baseline versions (a CodeBuild project in the management account).
    stackset_pattern = mgmt.arn("cloudformation", f"stackset/{name}:*", HOME)
    deployer = mgmt.role("org-baseline-deployer", trust_service("codebuild.amazonaws.com"), inline={"baseline": doc(
        allow(["cloudformation:UpdateStackSet", "cloudformation:DescribeStackSet", "cloudformation:ListStackInstances"],
              stackset_pattern, Sid="BaselineStackSet"),
        allow("iam:PassRole", admin_role.arn, Sid="PassStackSetAdministrationRole",
              Condition={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}))},
        description="CodeBuild role of the org-security-baseline pipeline")
    mgmt.compute("codebuild_project", mgmt.arn("codebuild", "project/org-security-baseline", HOME), "org-security-baseline",
                 role_arn=deployer.arn, target="project")
    _service_role_actor(ctx, mgmt, deployer.name, "codebuild.amazonaws.com",
                        [call("cloudformation.DescribeStackSet"), call("cloudformation.ListStackInstances")],
                        weight=0.3, planted=True)
    exec_prod = prod.role_by_name["AWSCloudFormationStackSetExecutionRole"]
    ctx.plant("privesc.stackset-update", PlantedKind.PRIVILEGE_ESCALATION,
              "cloudformation:UpdateStackSet + iam:PassRole of the administration role", mgmt,
              principals=[deployer.arn], resources=[stackset, admin_role.arn, exec_prod.arn],
              actions=["iam:PassRole", "cloudformation:UpdateStackSet"],
              why="org-baseline-deployer can update StackSet org-security-baseline, passing the administration role; "
                  "the new template runs as AWSCloudFormationStackSetExecutionRole (AdministratorAccess) in every "
                  "workload account, prod-01 among them")


def _credential_hygiene(ctx: _Ctx, accounts: list[AcctBuilder], sandbox: AcctBuilder) -> None:
    sandbox.mfa_root = False
    ctx.plant("credentials.root-without-mfa", PlantedKind.CREDENTIAL_HYGIENE, "root user without MFA", sandbox,
              principals=[sandbox.root_arn], resources=[], actions=[],
              why="the credential report shows mfa_active=false for the sandbox-01 root user")
    mgmt = accounts[0]
    ctx.actor(Actor(key=f"root:{mgmt.account_id}", kind="Root", account_id=mgmt.account_id, principal_arn=None,
                    name="root", unique_id=mgmt.account_id, regions=(HOME,), ip=ctx.ip("root"),
                    user_agent="Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
                    calls=[call("signin.ConsoleLogin"), call("iam.GetAccountSummary"), call("ce.GetCostAndUsage")],
                    weight=0.02, extra={"console": "true"}))
    for acct in accounts:
        if acct.ou not in ("Prod", "Dev", "Sandbox") or acct.public_access_block is not None:
            if acct.public_access_block is None:
                acct.public_access_block = {k: True for k in ("BlockPublicAcls", "IgnorePublicAcls",
                                                              "BlockPublicPolicy", "RestrictPublicBuckets")}
            continue
        # prod-01 keeps its account-level switch off: the RCP, not BPA, is what stops its public-policy bucket.
        flag = acct is not accounts[3] if len(accounts) > 3 else True
        acct.public_access_block = {k: flag for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                                      "RestrictPublicBuckets")}
