"""The planted findings of the demo organization: one function per finding, named for its id, in one tuple.

Each function builds what its finding needs (principals, policies, resources, the activity that makes it
look lived-in) and records it with ``ctx.plant``: ``privesc_create_policy_version`` plants
``privesc.create-policy-version``. The few ``scenery_*`` steps build things that are not findings but have
their place in the order. The order of ``PLANTINGS`` is part of the output: ids are pure functions of names,
but creation dates and picked targets come from each account's seeded random source, and the activity is
drawn over the actors in the order they were added. Reordering (or adding) steps changes the generated
files, never the findings. docs/demo-org.md lists them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from iamgraph.demo.context import (
    GITHUB_OIDC,
    GITHUB_REPO,
    HOME,
    SLUG,
    VENDOR_ACCOUNT,
    Ctx,
    Planned,
    key_policy,
    role_actor,
    saml_role_actor,
    service_role_actor,
    tagged,
    user_actor,
)
from iamgraph.demo.planted import Expect, PlantedKind
from iamgraph.demo.world import (
    AcctBuilder,
    Actor,
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
from iamgraph.snapshot.model import OidcProvider, Role, SamlProvider, User

K = PlantedKind


@dataclass(frozen=True, slots=True, kw_only=True)
class ProdAdmins:
    """The admin principals of prod-01 that the escalations lead to, and what runs as them."""

    admin_policy: str
    """AdministratorAccess, the managed policy every admin here holds."""
    provider: str
    """prod-01's corporate SAML provider (CorpIdP), trusted by the SAML-* roles."""
    prod_admin: Role
    ops_admin: Role
    bastion: Role
    breakglass: User
    ops_fn: str
    """The Lambda function that runs as ops-automation-admin."""
    bastion_inst: str
    """The EC2 instance whose profile holds bastion-admin."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    """Where the findings go: prod-01 carries most, dev-01 the exposures, sandbox-01 the SCP near miss."""

    accounts: tuple[AcctBuilder, ...]
    mgmt: AcctBuilder
    audit: AcctBuilder
    prod: AcctBuilder
    dev: AcctBuilder
    sandbox: AcctBuilder
    workloads: tuple[AcctBuilder, ...]
    """Every Prod, Dev and Sandbox account, where the security baseline StackSet deploys."""
    admins: ProdAdmins


def plant_findings(ctx: Ctx, accounts: list[AcctBuilder]) -> None:
    """Build prod-01's admin principals, then every step of ``PLANTINGS`` in order."""
    prod = next(a for a in accounts if a.ou == "Prod")
    site = Site(
        accounts=tuple(accounts),
        mgmt=accounts[0],
        audit=accounts[1],
        prod=prod,
        dev=next(a for a in accounts if a.ou == "Dev"),
        sandbox=next(a for a in accounts if a.ou == "Sandbox"),
        workloads=tuple(a for a in accounts if a.ou in ("Prod", "Dev", "Sandbox")),
        admins=_prod_admins(ctx, prod),
    )
    for step in PLANTINGS:
        step(ctx, site)


def _prod_admins(ctx: Ctx, p: AcctBuilder) -> ProdAdmins:
    aid = p.account_id
    admin = [ctx.aws("AdministratorAccess")]
    provider = p.iam_arn("saml-provider", "CorpIdP")
    p.saml_providers.append(SamlProvider(arn=provider, valid_until="2027-06-30T00:00:00Z", create_date=p.created(300)))
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
    service_role_actor(ctx, p, "ops-automation-admin", "lambda.amazonaws.com",
                       [call("ec2.CreateSnapshot"), call("ec2.DescribeVolumes"), call("rds.CreateDBSnapshot"),
                        call("backup.StartBackupJob"), call("backup.ListBackupJobs")], weight=0.5)
    service_role_actor(ctx, p, "bastion-admin", "ec2.amazonaws.com",
                       [call("ssm.UpdateInstanceInformation"), call("ec2.DescribeInstances")], weight=0.5)
    user_actor(ctx, p, "break-glass-admin", [call("signin.ConsoleLogin"), call("iam.GetAccountSummary")],
               weight=0.01, console=True)
    return ProdAdmins(admin_policy=admin[0], provider=provider, prod_admin=prod_admin, ops_admin=ops_admin,
                      bastion=bastion, breakglass=breakglass, ops_fn=ops_fn, bastion_inst=bastion_inst)


# The prod-01 names that one finding builds and a later one acts on (pure functions of the account).


def _prod_audit_trail(p: AcctBuilder) -> str:
    return p.arn("cloudtrail", "trail/prod-audit-trail", HOME)


def _pii_key(ctx: Ctx, p: AcctBuilder) -> str:
    return p.arn("kms", f"key/{ctx.ids.uuid('key', p.account_id, 'pii')}", HOME)


def _pii_bucket_name(p: AcctBuilder) -> str:
    return f"{SLUG}-customer-pii-{p.account_id}"


def privesc_create_policy_version(ctx: Ctx, site: Site) -> None:
    """A user can write a new version of the policy attached to itself."""
    p = site.prod
    bot_arn = p.iam_arn("policy", "deploy-bot-policy")
    deploy_calls = [call("ecr.GetAuthorizationToken"), call("ecr.PutImage", p.targets["repository"][0]),
                    call("ecs.UpdateService", p.targets["cluster"][0]), call("ecs.DescribeServices", p.targets["cluster"][0]),
                    call("cloudformation.DescribeStacks", p.targets["stack"][0])]
    base = policy_for_calls(deploy_calls)
    v3 = policy_for_calls(deploy_calls, [allow(["iam:CreatePolicyVersion", "iam:GetPolicy", "iam:GetPolicyVersion"],
                                               bot_arn, Sid="SelfServicePolicyUpdates")])
    p.policy("deploy-bot-policy", [base, policy_for_calls(deploy_calls[:3]), v3], description="CI deploy user")
    p.user("deploy-bot", managed=[bot_arn], keys=1, key_age_days=120)
    user_actor(ctx, p, "deploy-bot", deploy_calls, weight=2.0, planted=True)
    ctx.plant("privesc.create-policy-version", K.PRIVILEGE_ESCALATION, "iam:CreatePolicyVersion on own policy", p,
              principals=[p.iam_arn("user", "deploy-bot")], resources=[bot_arn, "arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:CreatePolicyVersion"],
              why="deploy-bot may write a new default version of deploy-bot-policy, which is attached to itself, "
                  "so it can grant itself anything")


def privesc_passrole_lambda(ctx: Ctx, site: Site) -> None:
    """PassRole an admin role to a new Lambda function and invoke it."""
    p = site.prod
    ops_admin = site.admins.ops_admin
    ops_fn = site.admins.ops_fn
    deployer_calls = [call("lambda.GetFunction20150331v2", ops_fn), call("lambda.ListFunctions20150331")]
    p.role("lambda-deployer", trust_service("codebuild.amazonaws.com"), inline={"release": doc(
        allow("iam:PassRole", ops_admin.arn, Sid="PassAutomationRole"),
        allow(["lambda:CreateFunction", "lambda:InvokeFunction", "lambda:GetFunction", "lambda:ListFunctions"]),
    )})
    p.compute("codebuild_project", p.arn("codebuild", "project/lambda-release", HOME), "lambda-release",
              role_arn=p.role_by_name["lambda-deployer"].arn, target="project")
    service_role_actor(ctx, p, "lambda-deployer", "codebuild.amazonaws.com", deployer_calls, weight=0.5, planted=True)
    ctx.plant("privesc.passrole-lambda", K.PRIVILEGE_ESCALATION, "iam:PassRole + lambda:CreateFunction + lambda:InvokeFunction",
              p, principals=[p.role_by_name["lambda-deployer"].arn], resources=[ops_admin.arn],
              actions=["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"],
              why="lambda-deployer can create a function that runs as ops-automation-admin (AdministratorAccess, "
                  "trusts lambda.amazonaws.com) and invoke it")


def privesc_attach_user_policy(ctx: Ctx, site: Site) -> None:
    """A user may attach any managed policy to itself."""
    p = site.prod
    intern = p.iam_arn("user", "intern-ops")
    p.group("ops-oncall", managed=[ctx.aws("ViewOnlyAccess")])
    p.user("intern-ops", groups=["ops-oncall"], password=True, mfa=True,
           inline={"self-service": doc(allow(["iam:AttachUserPolicy", "iam:ListAttachedUserPolicies"], intern))})
    user_actor(ctx, p, "intern-ops", [call("signin.ConsoleLogin"), call("ec2.DescribeInstances"),
                                      call("monitoring.ListMetrics"), call("s3.ListBuckets")],
               console=True, planted=True)
    ctx.plant("privesc.attach-user-policy", K.PRIVILEGE_ESCALATION, "iam:AttachUserPolicy on self", p,
              principals=[intern], resources=["arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:AttachUserPolicy"], why="intern-ops can attach AdministratorAccess to itself")


def privesc_create_access_key(ctx: Ctx, site: Site) -> None:
    """Create an access key for the admin user."""
    p = site.prod
    breakglass = site.admins.breakglass
    p.user("support-eng", groups=["ops-oncall"], password=True, mfa=True, inline={"helpdesk": doc(
        allow(["iam:CreateAccessKey", "iam:ListAccessKeys", "iam:GetUser"], p.iam_arn("user", "*")))})
    user_actor(ctx, p, "support-eng", [call("signin.ConsoleLogin"), call("iam.ListAccessKeys", p.iam_arn("user", "deploy-bot")),
                                       call("iam.GetUser", p.iam_arn("user", "intern-ops"))], console=True, planted=True)
    ctx.plant("privesc.create-access-key", K.PRIVILEGE_ESCALATION, "iam:CreateAccessKey on an admin user", p,
              principals=[p.iam_arn("user", "support-eng")], resources=[breakglass.arn],
              actions=["iam:CreateAccessKey"],
              why="support-eng may create access keys for every user, including break-glass-admin (AdministratorAccess)")


def privesc_update_assume_role_policy(ctx: Ctx, site: Site) -> None:
    """Rewrite the trust policy of the admin role."""
    p = site.prod
    prod_admin = site.admins.prod_admin
    helper = p.role("iam-helper", trust_service("lambda.amazonaws.com"), inline={"housekeeping": doc(
        allow(["iam:UpdateAssumeRolePolicy", "iam:GetRole"], prod_admin.arn), allow("iam:ListRoles"))})
    p.compute("lambda_function", p.arn("lambda", "function:iam-housekeeping", HOME), "iam-housekeeping",
              role_arn=helper.arn, target="function", attributes={"runtime": "python3.12"})
    service_role_actor(ctx, p, "iam-helper", "lambda.amazonaws.com", [call("iam.ListRoles"), call("iam.GetRole", prod_admin.arn)],
                       weight=0.3, planted=True)
    ctx.plant("privesc.update-assume-role-policy", K.PRIVILEGE_ESCALATION, "iam:UpdateAssumeRolePolicy on an admin role",
              p, principals=[helper.arn], resources=[prod_admin.arn], actions=["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"],
              why="iam-helper can make prod-admin trust itself, then assume it")


def privesc_update_function_code(ctx: Ctx, site: Site) -> None:
    """Update the code of a function that runs as admin (the SAML federated developer role)."""
    p = site.prod
    provider = site.admins.provider
    ops_admin = site.admins.ops_admin
    ops_fn = site.admins.ops_fn
    p.role("SAML-AppDeveloper", trust_saml(provider), inline={"functions": doc(
        allow(["lambda:UpdateFunctionCode", "lambda:GetFunction"], p.arn("lambda", "function:ops-*", HOME)),
        allow("lambda:ListFunctions"))})
    saml_role_actor(ctx, p, "SAML-AppDeveloper", "jonas.berg@example.com",
                    [call("lambda.ListFunctions20150331"), call("lambda.GetFunction20150331v2", ops_fn)], provider,
                    planted=True)
    ctx.plant("privesc.update-function-code", K.PRIVILEGE_ESCALATION, "lambda:UpdateFunctionCode on an admin function", p,
              principals=[p.role_by_name["SAML-AppDeveloper"].arn], resources=[ops_fn, ops_admin.arn],
              actions=["lambda:UpdateFunctionCode"],
              why="SAML-AppDeveloper can replace the code of ops-automation, which runs as ops-automation-admin")


def privesc_ssm_send_command(ctx: Ctx, site: Site) -> None:
    """ssm:SendCommand to an instance whose profile holds an admin role."""
    p = site.prod
    provider = site.admins.provider
    bastion = site.admins.bastion
    bastion_inst = site.admins.bastion_inst
    p.role("SAML-Operator", trust_saml(provider), inline={"operate": doc(
        allow("ssm:SendCommand", [p.arn("ec2", "instance/*", HOME), f"arn:aws:ssm:{HOME}::document/AWS-RunShellScript"]),
        allow(["ssm:ListCommandInvocations", "ssm:DescribeInstanceInformation", "ec2:DescribeInstances"]))})
    saml_role_actor(ctx, p, "SAML-Operator", "tom.nguyen@example.com",
                    [call("ssm.DescribeInstanceInformation"), call("ssm.ListCommandInvocations"), call("ec2.DescribeInstances")],
                    provider, planted=True)
    ctx.plant("privesc.ssm-send-command", K.PRIVILEGE_ESCALATION, "ssm:SendCommand on an instance with an admin profile",
              p, principals=[p.role_by_name["SAML-Operator"].arn], resources=[bastion_inst, bastion.arn],
              actions=["ssm:SendCommand"],
              why="SAML-Operator can run shell commands on the bastion, whose instance profile holds bastion-admin")


def privesc_assume_role_chain(ctx: Ctx, site: Site) -> None:
    """Two-hop assume-role chain."""
    p = site.prod
    prod_admin = site.admins.prod_admin
    jump_arn = p.iam_arn("role", "jump-role")
    jane = p.user("contractor-jane", keys=1, inline={"jump": doc(allow("sts:AssumeRole", jump_arn))})
    p.role("jump-role", trust_aws(jane.arn), inline={"to-admin": doc(allow("sts:AssumeRole", prod_admin.arn))})
    user_actor(ctx, p, "contractor-jane", [call("sts.AssumeRole", jump_arn)], weight=0.3, planted=True)
    role_actor(ctx, p, "jump-role", "jane", [call("sts.AssumeRole", prod_admin.arn)], weight=0.3, planted=True)
    role_actor(ctx, p, "prod-admin", "jane", [call("ec2.DescribeInstances"), call("iam.ListRoles"),
                                              call("rds.DescribeDBClusters")], weight=0.3)
    ctx.plant("privesc.assume-role-chain", K.PRIVILEGE_ESCALATION, "two-hop sts:AssumeRole chain to admin", p,
              principals=[jane.arn], resources=[prod_admin.arn], actions=["sts:AssumeRole"],
              path=(jane.arn, p.role_by_name["jump-role"].arn, prod_admin.arn),
              why="contractor-jane assumes jump-role, which may assume prod-admin (AdministratorAccess)")


def privesc_launch_template_version(ctx: Ctx, site: Site) -> None:
    """A new default version of a launch template an Auto Scaling group launches from."""
    p, aid = site.prod, site.prod.account_id
    admin = [site.admins.admin_policy]
    provider = site.admins.provider
    key, data_bucket = p.targets["key"][0], p.targets["bucket"][0]
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
    service_role_actor(ctx, p, "reconcile-fleet", "ec2.amazonaws.com",
                       [call("dynamodb.Query", p.targets["table"][0]), call("s3.GetObject", f"{data_bucket}/"),
                        call("kms.Decrypt", key)], weight=0.4)
    p.role("SAML-ReleaseEngineer", trust_saml(provider), inline={"releases": doc(
        allow(["ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate"], lt_arn, Sid="ReconcileWorkerReleases"),
        allow("autoscaling:StartInstanceRefresh", asg_arn, Sid="RollOutRelease"),
        allow(["ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
               "autoscaling:DescribeAutoScalingGroups"]))})
    release = p.role_by_name["SAML-ReleaseEngineer"]
    saml_role_actor(ctx, p, "SAML-ReleaseEngineer", "priya.raman@example.com",
                    [call("ec2.DescribeLaunchTemplates"), call("ec2.DescribeLaunchTemplateVersions"),
                     call("autoscaling.DescribeAutoScalingGroups")], provider, weight=0.5, planted=True)
    ctx.plant("privesc.launch-template-version", K.PRIVILEGE_ESCALATION,
              "new default launch template version for an Auto Scaling group", p,
              principals=[release.arn], resources=[lt_arn, fleet.arn],
              actions=["ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate", "autoscaling:StartInstanceRefresh"],
              why="SAML-ReleaseEngineer can write a new version of launch template reconcile-workers with its own user "
                  "data and make it the default; Auto Scaling group reconcile-workers launches $Default, so the next "
                  "instance (an instance refresh starts one now) runs it as reconcile-fleet (AdministratorAccess)")


def privesc_detach_deny_guardrail(ctx: Ctx, site: Site) -> None:
    """A user frozen by a Deny guardrail that it may detach from itself."""
    p = site.prod
    admin = [site.admins.admin_policy]
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
    user_actor(ctx, p, "cutover-admin", [call("signin.ConsoleLogin"), call("iam.GetUser", cutover),
                                         call("iam.ListAttachedUserPolicies", cutover)],
               console=True, weight=0.1, planted=True)
    ctx.plant("privesc.detach-deny-guardrail", K.PRIVILEGE_ESCALATION, "iam:DetachUserPolicy of its own Deny guardrail", p,
              principals=[cutover], resources=[freeze, "arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:DetachUserPolicy"],
              why="cutover-admin holds AdministratorAccess, cut back to nothing by the Deny in cutover-freeze; the "
                  "guardrail leaves it iam:DetachUserPolicy on itself, so it can detach cutover-freeze and be admin")


def sod_create_user_and_attach_admin(ctx: Ctx, site: Site) -> None:
    """IAMFullAccess creates users and attaches admin policies (the role also escalates:
    ``privesc_iam_full_access``)."""
    p = site.prod
    provider = site.admins.provider
    p.role("SAML-IdentityAdmin", trust_saml(provider), managed=[ctx.aws("IAMFullAccess")])
    idadmin = p.role_by_name["SAML-IdentityAdmin"]
    saml_role_actor(ctx, p, "SAML-IdentityAdmin", "wei.chen@example.com",
                    [call("iam.ListUsers"), call("iam.GetUser", p.iam_arn("user", "deploy-bot")), call("iam.ListRoles"),
                     call("iam.ListPolicies")], provider, planted=True)
    ctx.plant("sod.create-user-and-attach-admin", K.SEPARATION_OF_DUTIES, "create IAM users + attach admin policies", p,
              principals=[idadmin.arn], resources=["arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:CreateUser", "iam:AttachUserPolicy"], also=("privesc.iam-full-access", "deviation.new-iam-actions"),
              why="one role can both create IAM users and attach AdministratorAccess to them")


def privesc_iam_full_access(ctx: Ctx, site: Site) -> None:
    """IAMFullAccess attaches AdministratorAccess to itself; the role is built by
    ``sod_create_user_and_attach_admin``."""
    p = site.prod
    idadmin = p.role_by_name["SAML-IdentityAdmin"]
    ctx.plant("privesc.iam-full-access", K.PRIVILEGE_ESCALATION, "iam:AttachRolePolicy on itself (IAMFullAccess)", p,
              principals=[idadmin.arn], resources=["arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:AttachRolePolicy"], also=("sod.create-user-and-attach-admin",),
              why="IAMFullAccess lets SAML-IdentityAdmin attach AdministratorAccess to itself")


def sod_cloudtrail_and_log_deletion(ctx: Ctx, site: Site) -> None:
    """Manage CloudTrail and delete its logs."""
    p, aid = site.prod, site.prod.account_id
    provider = site.admins.provider
    trail = _prod_audit_trail(p)
    trail_bucket = p.bucket(f"{SLUG}-prod-audit-trail-{aid}", tags=tagged("Internal"), policy=doc(
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
    saml_role_actor(ctx, p, "SAML-TrailAdmin", "lena.fischer@example.com",
                    [call("cloudtrail.DescribeTrails"), call("cloudtrail.GetTrailStatus", trail),
                     call("cloudtrail.GetEventSelectors", trail), call("s3.ListObjects", trail_bucket)],
                    provider, weight=0.5, planted=True)
    ctx.plant("sod.cloudtrail-and-log-deletion", K.SEPARATION_OF_DUTIES, "manage CloudTrail + delete its S3 logs", p,
              principals=[trail_admin.arn], resources=[trail, trail_bucket],
              actions=["cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "s3:DeleteObject"],
              also=("deviation.stop-logging",),
              why="SAML-TrailAdmin can stop prod-audit-trail and delete the log files it already wrote")


def sod_kms_admin_and_decrypt(ctx: Ctx, site: Site) -> None:
    """Administer a KMS key and decrypt with it; the PII key."""
    p, aid = site.prod, site.prod.account_id
    audit = site.audit
    pii_key = _pii_key(ctx, p)
    custodian_arn = p.iam_arn("role", "key-custodian")
    analytics_arn = p.iam_arn("role", "analytics-etl")
    p.resource(pii_key, "kms:key", target="key", name="pii-data-key", tags=tagged("PII"),
               policy=key_policy(p, extra=[{"Sid": "AnalyticsDecrypt", "Effect": "Allow",
                                             "Principal": {"AWS": analytics_arn}, "Action": "kms:Decrypt",
                                             "Resource": "*"}]),
               attributes={"key_manager": "CUSTOMER", "grants": [{
                   "KeyId": pii_key, "GrantId": ctx.ids.hex(64, "grant", pii_key), "Name": "orders-api-decrypt",
                   "GranteePrincipal": p.role_by_name["orders-api-task"].arn, "IssuingAccount": p.root_arn,
                   "Operations": ["Decrypt", "GenerateDataKey"], "CreationDate": p.created(10, 60)}]})
    p.role("key-custodian", trust_aws(f"arn:aws:iam::{audit.account_id}:role/SecurityAuditHub"), inline={"custody": doc(
        allow(["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:CreateGrant", "kms:DescribeKey",
               "kms:GetKeyPolicy", "kms:Decrypt"], pii_key))})
    hub = ctx.actor_of(f"arn:aws:iam::{audit.account_id}:role/SecurityAuditHub")
    hub.calls.append(call("sts.AssumeRole", custodian_arn, recipient=aid))
    role_actor(ctx, p, "key-custodian", "sam.okafor", [call("kms.DescribeKey", pii_key), call("kms.GetKeyPolicy", pii_key)],
               weight=0.2, planted=True)
    ctx.plant("sod.kms-admin-and-decrypt", K.SEPARATION_OF_DUTIES, "administer a KMS key + decrypt with it", p,
              principals=[custodian_arn], resources=[pii_key],
              actions=["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:Decrypt"],
              why="key-custodian can change the PII key's policy or delete it, and can also decrypt PII with it")


def overbroad_s3_star(ctx: Ctx, site: Site) -> None:
    """s3:* on *."""
    p = site.prod
    key, data_bucket = p.targets["key"][0], p.targets["bucket"][0]
    dp_calls = [call("s3.GetObject", f"{data_bucket}/"), call("s3.PutObject", f"{data_bucket}/"),
                call("s3.ListObjects", data_bucket), call("kms.Decrypt", key), call("kms.GenerateDataKey", key)]
    p.role("data-pipeline", trust_service("glue.amazonaws.com"), inline={
        "s3-everything": doc(allow("s3:*", "*", Sid="AllS3")), "kms": doc(allow(["kms:Decrypt", "kms:GenerateDataKey"], key))})
    p.compute("glue_job", p.arn("glue", "job/nightly-pipeline", HOME), "nightly-pipeline",
              role_arn=p.role_by_name["data-pipeline"].arn, target="job")
    service_role_actor(ctx, p, "data-pipeline", "glue.amazonaws.com", dp_calls, weight=1.0, planted=True)
    ctx.plant("overbroad.s3-star", K.OVER_BROAD, "s3:* on *", p, principals=[p.role_by_name["data-pipeline"].arn],
              resources=["*"], actions=["s3:*"],
              why="data-pipeline uses GetObject/PutObject/ListBucket on one bucket but holds every S3 action on every bucket")


def unused_services_and_actions(ctx: Ctx, site: Site) -> None:
    """Granted services and actions never used."""
    p = site.prod
    data_bucket, pii_key = p.targets["bucket"][0], _pii_key(ctx, p)
    analytics_arn = p.iam_arn("role", "analytics-etl")
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
               tags=tagged("PHI"), attributes={"resource_type": "AWS::DynamoDB::Table", "sse_kms_key": pii_key})
    p.role("analytics-etl", trust_service("ecs-tasks.amazonaws.com"), managed=[an_policy])
    p.compute("ecs_service", p.arn("ecs", "service/analytics/analytics-etl", HOME), "analytics-etl",
              role_arn=analytics_arn, attributes={"cluster": p.arn("ecs", "cluster/analytics", HOME), "launch_type": "FARGATE"})
    service_role_actor(ctx, p, "analytics-etl", "ecs-tasks.amazonaws.com", an_calls, weight=1.0, planted=True)
    ctx.plant("unused.services-and-actions", K.UNUSED_PERMISSIONS, "granted services/actions never used", p,
              principals=[analytics_arn], resources=[an_policy], actions=["dynamodb:*", "s3:DeleteObject"],
              details=(("unused_services", ["dynamodb"]), ("unused_actions", ["s3:DeleteObject"]),
                       ("used_actions", sorted({c.template.action for c in an_calls if c.template.action}))),
              why="analytics-etl never calls DynamoDB nor deletes objects in the window, though its policy allows both")


def unused_role(ctx: Ctx, site: Site) -> None:
    """A role never used."""
    p = site.prod
    p.role("legacy-reporting", trust_service("lambda.amazonaws.com"), managed=[ctx.aws("ReadOnlyAccess")],
           description="Reporting job retired in 2025")
    ctx.never_used.add(p.role_by_name["legacy-reporting"].arn)
    ctx.plant("unused.role", K.UNUSED_ROLE, "role never used", p, principals=[p.role_by_name["legacy-reporting"].arn],
              resources=[], actions=[], why="no call by legacy-reporting in the whole window; RoleLastUsed is empty")


def unused_credentials(ctx: Ctx, site: Site) -> None:
    """An unused console password and an unused access key."""
    p = site.prod
    fc = p.user("former-contractor", groups=["all-engineers"], password=True, keys=1, key_age_days=400)
    ctx.never_used.add(fc.arn)
    ctx.stale[fc.arn] = {"password_last_used": iso(ctx.end - timedelta(days=200)),
                         "access_key_1_last_used_date": iso(ctx.end - timedelta(days=180)),
                         "access_key_1_last_used_region": HOME, "access_key_1_last_used_service": "s3"}
    ctx.plant("unused.credentials", K.UNUSED_CREDENTIALS, "console password and access key unused for 180+ days", p,
              principals=[fc.arn], resources=[fc.access_keys[0].access_key_id], actions=[],
              why="former-contractor last signed in 200 days and last used its active key 180 days before the end")


def sensitive_pii_readable_by_broad_group(ctx: Ctx, site: Site) -> None:
    """PII readable by a broad group."""
    p = site.prod
    data_bucket = p.targets["bucket"][0]
    pii_bucket = p.bucket(_pii_bucket_name(p), tags=tagged("PII", owner="payments"))
    p.group("all-engineers", managed=[ctx.aws("AmazonS3ReadOnlyAccess")])
    for name in ("alice", "bob", "carol"):
        p.user(name, groups=["all-engineers"], password=True, mfa=True)
        user_actor(ctx, p, name, [call("signin.ConsoleLogin"), call("s3.ListBuckets"),
                                  call("s3.GetObject", f"{data_bucket}/")], console=True, weight=0.5)
    ctx.plant("sensitive.pii-readable-by-broad-group", K.SENSITIVE_DATA_ACCESS, "PII bucket readable by a broad group", p,
              principals=[p.group_by_name["all-engineers"].arn], resources=[pii_bucket], actions=["s3:GetObject"],
              why="every member of all-engineers can read the PII bucket through AmazonS3ReadOnlyAccess "
                  "(SSE-S3, so no key policy stands in the way)")


def nearmiss_public_bucket_under_rcp(ctx: Ctx, site: Site) -> None:
    """A bucket policy open to everyone, cut back by the organization's RCP."""
    p, aid = site.prod, site.prod.account_id
    drop = f"{SLUG}-partner-drop-{aid}"
    p.bucket(drop, public_block=False, tags=tagged("Internal"), policy=doc(
        {"Sid": "PartnersRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{drop}/*"}))
    ctx.plant("nearmiss.public-bucket-under-rcp", K.NEAR_MISS, "public bucket policy", p,
              principals=["*"], resources=[f"arn:aws:s3:::{drop}"], actions=["s3:GetObject"], expect=Expect.NO_FINDING,
              blocked_by="RCP EnforceOrgIdentitiesS3 (Prod OU) denies principals outside the organization",
              why="the bucket policy says Principal *, but the RCP on the Prod OU denies every non-org principal")


def nearmiss_deny(ctx: Ctx, site: Site) -> None:
    """deploy-bot's grant, stopped by an explicit Deny."""
    p = site.prod
    at_arn = p.iam_arn("policy", "auditor-temp-policy")
    p.policy("auditor-temp-policy", [doc(allow(["iam:CreatePolicyVersion", "iam:GetPolicyVersion"], at_arn),
                                         allow(["iam:Get*", "iam:List*"]))])
    p.user("auditor-temp", managed=[at_arn], password=True, mfa=True, inline={"no-policy-edits": doc(
        deny(["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"], "*", Sid="NoPolicyEdits"))})
    user_actor(ctx, p, "auditor-temp", [call("signin.ConsoleLogin"), call("iam.ListPolicies"),
                                        call("iam.GetPolicyVersion", at_arn)], console=True, weight=0.2)
    ctx.plant("nearmiss.deny", K.NEAR_MISS, "iam:CreatePolicyVersion on own policy", p,
              principals=[p.iam_arn("user", "auditor-temp")], resources=[at_arn], actions=["iam:CreatePolicyVersion"],
              expect=Expect.NO_FINDING, blocked_by="explicit Deny in the user's inline policy no-policy-edits",
              why="the same grant as deploy-bot, but an explicit Deny on iam:CreatePolicyVersion wins")


def nearmiss_boundary(ctx: Ctx, site: Site) -> None:
    """Attach any policy to itself, capped by a permissions boundary."""
    p = site.prod
    loggroup = p.targets["loggroup"][0]
    boundary = p.policy("builder-boundary", [doc(allow(["s3:*", "logs:*", "ecr:*", "codebuild:*"]))],
                        description="Permissions boundary for build roles")
    p.role("sandboxed-builder", trust_service("codebuild.amazonaws.com"), boundary=boundary, inline={"build": doc(
        allow(["iam:AttachRolePolicy", "iam:PutRolePolicy"], "*"),
        allow(["logs:CreateLogStream", "s3:PutObject", "ecr:GetAuthorizationToken"]))})
    p.compute("codebuild_project", p.arn("codebuild", "project/sandboxed-build", HOME), "sandboxed-build",
              role_arn=p.role_by_name["sandboxed-builder"].arn, target="project")
    service_role_actor(ctx, p, "sandboxed-builder", "codebuild.amazonaws.com",
                       [call("logs.CreateLogStream", loggroup), call("ecr.GetAuthorizationToken")], weight=0.3)
    ctx.plant("nearmiss.boundary", K.NEAR_MISS, "iam:AttachRolePolicy on itself", p,
              principals=[p.role_by_name["sandboxed-builder"].arn], resources=["arn:aws:iam::aws:policy/AdministratorAccess"],
              actions=["iam:AttachRolePolicy", "iam:PutRolePolicy"], expect=Expect.NO_FINDING,
              blocked_by="permissions boundary builder-boundary allows no iam action",
              why="the identity policy allows attaching any policy to any role, but the boundary caps it at s3/logs/ecr/codebuild")


def nearmiss_passed_to_service(ctx: Ctx, site: Site) -> None:
    """lambda-deployer's PassRole, allowed only when passed to EC2."""
    p = site.prod
    ops_admin = site.admins.ops_admin
    p.role("ec2-launcher", trust_service("codepipeline.amazonaws.com"), inline={"launch": doc(
        allow("iam:PassRole", ops_admin.arn, Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
        allow(["lambda:CreateFunction", "lambda:InvokeFunction", "ec2:DescribeInstances"]))})
    service_role_actor(ctx, p, "ec2-launcher", "codepipeline.amazonaws.com", [call("ec2.DescribeInstances")], weight=0.2)
    ctx.plant("nearmiss.passed-to-service", K.NEAR_MISS, "iam:PassRole + lambda:CreateFunction + lambda:InvokeFunction", p,
              principals=[p.role_by_name["ec2-launcher"].arn], resources=[ops_admin.arn],
              actions=["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"], expect=Expect.NO_FINDING,
              blocked_by="iam:PassedToService condition allows passing only to ec2.amazonaws.com",
              why="the PassRole grant on ops-automation-admin only holds when passed to EC2, and that role trusts Lambda only")


def nearmiss_resource_constraint(ctx: Ctx, site: Site) -> None:
    """lambda-deployer's shape, with PassRole limited to roles no admin matches."""
    p = site.prod
    ops_admin = site.admins.ops_admin
    prod_admin = site.admins.prod_admin
    p.role("lambda-deployer-scoped", trust_service("codebuild.amazonaws.com"), inline={"release": doc(
        allow("iam:PassRole", p.iam_arn("role", "app-*")),
        allow(["lambda:CreateFunction", "lambda:InvokeFunction", "lambda:ListFunctions"]))})
    service_role_actor(ctx, p, "lambda-deployer-scoped", "codebuild.amazonaws.com", [call("lambda.ListFunctions20150331")],
                       weight=0.2)
    ctx.plant("nearmiss.resource-constraint", K.NEAR_MISS, "iam:PassRole + lambda:CreateFunction + lambda:InvokeFunction", p,
              principals=[p.role_by_name["lambda-deployer-scoped"].arn], resources=[ops_admin.arn, prod_admin.arn],
              actions=["iam:PassRole"], expect=Expect.NO_FINDING,
              blocked_by="PassRole is limited to role/app-*, none of which is an admin role",
              why="same shape as lambda-deployer, but no admin role matches the PassRole resource")


def nearmiss_detach_other_policy(ctx: Ctx, site: Site) -> None:
    """cutover-admin's shape, but the guardrail can only detach a policy that holds no Deny."""
    p = site.prod
    admin = [site.admins.admin_policy]
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
    user_actor(ctx, p, "dr-drill-admin", [call("signin.ConsoleLogin"), call("iam.GetUser", drill),
                                          call("iam.ListAttachedUserPolicies", drill)], console=True, weight=0.1)
    ctx.plant("nearmiss.detach-other-policy", K.NEAR_MISS, "iam:DetachUserPolicy of its own Deny guardrail", p,
              principals=[drill], resources=[drill_freeze, tooling], actions=["iam:DetachUserPolicy"],
              expect=Expect.NO_FINDING,
              blocked_by="the guardrail denies iam:DetachUserPolicy unless iam:PolicyARN is dr-drill-tooling",
              why="same as cutover-admin, but the only policy dr-drill-admin may detach is dr-drill-tooling, which "
                  "holds no Deny; the guardrail dr-drill-freeze stays attached")


def external_vendor_role_with_external_id(ctx: Ctx, site: Site) -> None:
    """A vendor outside the organization assumes a role with an ExternalId."""
    p, aid = site.prod, site.prod.account_id
    vendor = p.role("ThirdPartyMonitoring", trust_aws(f"arn:aws:iam::{VENDOR_ACCOUNT}:root",
                                                       condition={"StringEquals": {"sts:ExternalId": "ext-" + ctx.ids.hex(12, "extid")}}),
                    managed=[ctx.aws("ViewOnlyAccess")], description="Monitoring vendor")
    ctx.actor(Actor(key=f"acct:{VENDOR_ACCOUNT}:{aid}", kind="AWSAccount", account_id=VENDOR_ACCOUNT, principal_arn=None,
                    name=VENDOR_ACCOUNT, unique_id=ctx.ids.unique_id("AIDA", "vendor"), regions=(HOME,),
                    ip=ctx.ip("vendor"), calls=[call("sts.AssumeRole", vendor.arn, recipient=aid)], weight=0.3))
    role_actor(ctx, p, "ThirdPartyMonitoring", "vendor-poller", [call("monitoring.ListMetrics"),
                                                                 call("monitoring.GetMetricStatistics"),
                                                                 call("ec2.DescribeInstances")], weight=0.8)
    ctx.plant("external.vendor-role-with-external-id", K.EXTERNAL_ACCESS, "role trusted by an account outside the org", p,
              principals=[f"arn:aws:iam::{VENDOR_ACCOUNT}:root"], resources=[vendor.arn], actions=["sts:AssumeRole"],
              why=f"account {VENDOR_ACCOUNT} is not in the organization; sts:ExternalId narrows but does not remove it")


def scenery_shared_reports_bucket(ctx: Ctx, site: Site) -> None:
    """Not a finding: a cross-account bucket inside the organization (for who-can tests)."""
    p, aid = site.prod, site.prod.account_id
    d = site.dev
    shared = f"{SLUG}-shared-reports-{aid}"
    p.bucket(shared, tags=tagged("Internal"), policy=doc(
        {"Sid": "DevAccountRead", "Effect": "Allow", "Principal": {"AWS": d.root_arn},
         "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [f"arn:aws:s3:::{shared}", f"arn:aws:s3:::{shared}/*"]}))


def deviation_new_iam_actions(ctx: Ctx, site: Site) -> None:
    """First-ever iam:CreateUser and iam:AttachRolePolicy by SAML-IdentityAdmin on the last day."""
    p = site.prod
    idadmin = p.role_by_name["SAML-IdentityAdmin"]
    ida = ctx.actor_of(idadmin.arn)
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


def deviation_new_region(ctx: Ctx, site: Site) -> None:
    """A call from a region never used before."""
    p = site.prod
    orders = p.role_by_name["orders-api-task"]
    orders_actor = ctx.actor_of(orders.arn)
    orders_actor.planted = True
    ctx.deviations.append(Planned("deviation.new-region", orders_actor, call("ec2.DescribeInstances"), 3, 2 * 60 + 17,
                                  region="eu-west-1"))
    ctx.plant("deviation.new-region", K.DEVIATION, "call from a region never used before", p, principals=[orders.arn],
              resources=[], actions=["ec2:DescribeInstances"], details=(("region", "eu-west-1"),),
              why="orders-api-task only ever called us-east-1, then described instances in eu-west-1")


def deviation_stop_logging(ctx: Ctx, site: Site) -> None:
    """cloudtrail:StopLogging on the last day."""
    p = site.prod
    trail_admin = p.role_by_name["SAML-TrailAdmin"]
    tra = ctx.actor_of(trail_admin.arn)
    trail = _prod_audit_trail(p)
    ctx.deviations.append(Planned("deviation.stop-logging", tra, call("cloudtrail.StopLogging", trail), 1, 22 * 60 + 41))
    ctx.plant("deviation.stop-logging", K.DEVIATION, "cloudtrail:StopLogging", p, principals=[trail_admin.arn],
              resources=[trail], actions=["cloudtrail:StopLogging"], also=("sod.cloudtrail-and-log-deletion",),
              why="the prod-audit-trail was stopped on the last day")


def deviation_access_denied_burst(ctx: Ctx, site: Site) -> None:
    """A burst of AccessDenied from contractor-jane's key."""
    p = site.prod
    jane = p.user_by_name["contractor-jane"]
    pii_bucket = f"arn:aws:s3:::{_pii_bucket_name(p)}"
    jane_actor = ctx.actor_of(jane.arn)
    secret = p.targets["secret"][0]
    for i, (c, n) in enumerate(((call("secretsmanager.GetSecretValue", secret, error="AccessDeniedException"), 20),
                                (call("s3.GetObject", f"{pii_bucket}/", error="AccessDenied"), 15),
                                (call("s3.ListBuckets", error="AccessDenied"), 5))):
        ctx.deviations.append(Planned("deviation.access-denied-burst", jane_actor, c, n, 9 * 60 + 30 + i, spread_seconds=240))
    ctx.plant("deviation.access-denied-burst", K.DEVIATION, "burst of AccessDenied", p, principals=[jane.arn],
              resources=[secret, pii_bucket], actions=["secretsmanager:GetSecretValue", "s3:GetObject", "s3:ListAllMyBuckets"],
              details=(("count", 40),), also=("privesc.assume-role-chain",),
              why="contractor-jane's key made 40 refused calls in under ten minutes")


def exposure_public_bucket(ctx: Ctx, site: Site) -> None:
    """A public bucket, with Block Public Access off for the bucket and the account."""
    d, aid = site.dev, site.dev.account_id
    d.public_access_block = {k: False for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                                "RestrictPublicBuckets")}
    pub = f"{SLUG}-public-assets-{aid}"
    d.bucket(pub, public_block=False, is_public=True, tags=tagged("Public"), policy=doc(
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{pub}/*"}))
    ctx.actor(Actor(key=f"anon:{aid}", kind="AWSAccount", account_id="anonymous", principal_arn=None, name="ANONYMOUS_PRINCIPAL",
                    unique_id="anonymous", regions=(HOME,), ip=ctx.ip("anon"), user_agent="curl/8.5.0",
                    calls=[call("s3.GetObject", f"arn:aws:s3:::{pub}/", recipient=aid)], weight=0.5,
                    extra={"anonymous": "true"}))
    ctx.plant("exposure.public-bucket", K.EXTERNAL_EXPOSURE, "bucket policy Principal * s3:GetObject", d,
              principals=["*"], resources=[f"arn:aws:s3:::{pub}"], actions=["s3:GetObject"],
              why="anyone on the internet can read the objects; Block Public Access is off for the bucket and account")


def exposure_role_any_account(ctx: Ctx, site: Site) -> None:
    """A role any AWS account can assume."""
    d = site.dev
    shared_obj = d.targets["object"][0]
    d.role("partner-integration", trust_aws("*"), inline={"partner": doc(
        allow(["s3:GetObject"], shared_obj + "*"), allow("sqs:SendMessage", d.targets["queue"][0]))})
    role_actor(ctx, d, "partner-integration", "partner-sync", [call("sqs.SendMessage", d.targets["queue"][0])], weight=0.3)
    ctx.plant("exposure.role-any-account", K.EXTERNAL_EXPOSURE, 'trust policy Principal {"AWS": "*"} without conditions',
              d, principals=["*"], resources=[d.role_by_name["partner-integration"].arn], actions=["sts:AssumeRole"],
              why="any AWS principal in any account can assume partner-integration")


def exposure_github_oidc_without_sub(ctx: Ctx, site: Site) -> None:
    """GitHub OIDC trust without a sub condition. Its near-miss twin, the same trust with a sub condition
    (``nearmiss_github_oidc_with_sub``), is built here too, since both roles come before their sessions."""
    d, aid = site.dev, site.dev.account_id
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
        role_actor(ctx, d, role_name, "GitHubActions", calls, weight=0.8, kind="AssumedRole",
                   user_agent="aws-sdk-js/3.600.0 GitHubActions", extra={"web_identity": oidc})
    ctx.plant("exposure.github-oidc-without-sub", K.EXTERNAL_EXPOSURE, "GitHub OIDC trust without a sub condition", d,
              principals=[oidc], resources=[d.role_by_name["github-actions-legacy"].arn],
              actions=["sts:AssumeRoleWithWebIdentity"],
              why="only aud is checked, and every GitHub repository's token has aud sts.amazonaws.com")


def nearmiss_github_oidc_with_sub(ctx: Ctx, site: Site) -> None:
    """GitHub OIDC trust pinned to one repository and branch: github-actions-deploy, built beside its twin by
    ``exposure_github_oidc_without_sub``."""
    d = site.dev
    oidc = d.iam_arn("oidc-provider", GITHUB_OIDC)
    ctx.plant("nearmiss.github-oidc-with-sub", K.NEAR_MISS, "GitHub OIDC trust", d, principals=[oidc],
              resources=[d.role_by_name["github-actions-deploy"].arn], actions=["sts:AssumeRoleWithWebIdentity"],
              expect=Expect.NO_FINDING, blocked_by=f"sub condition pins repository {GITHUB_REPO} main branch",
              why="the same trust with a sub condition: only one repository and branch can assume it")


def scenery_dev_federation(ctx: Ctx, site: Site) -> None:
    """Not a finding: a SAML federated role and a federated user (GetFederationToken) in dev-01."""
    d, aid = site.dev, site.dev.account_id
    provider = d.iam_arn("saml-provider", "CorpIdP")
    d.saml_providers.append(SamlProvider(arn=provider, valid_until="2027-06-30T00:00:00Z", create_date=d.created(300)))
    d.role("SAML-ReadOnly", trust_saml(provider), managed=[ctx.aws("ReadOnlyAccess")])
    saml_role_actor(ctx, d, "SAML-ReadOnly", "priya.patel@example.com",
                    [call("ec2.DescribeInstances"), call("s3.ListBuckets"), call("cloudfront.ListDistributions")], provider,
                    weight=0.5)
    dash_calls = [call("ec2.DescribeInstances"), call("monitoring.GetMetricData"), call("s3.ListBuckets")]
    broker = d.user("federation-broker", keys=1, inline={"broker": policy_for_calls(
        dash_calls, [allow("sts:GetFederationToken", d.arn("sts", "federated-user/*"))])})
    b_actor = user_actor(ctx, d, "federation-broker", [call("sts.GetFederationToken")], weight=0.3)
    fed = Actor(key=f"fed:{aid}:ops-dashboard", kind="FederatedUser", account_id=aid, principal_arn=broker.arn,
                name="ops-dashboard", unique_id=broker.user_id, session="ops-dashboard",
                access_key=ctx.ids.access_key_id(broker.arn, "fed", temporary=True), regions=(HOME,),
                ip=ctx.ip("dash"), calls=dash_calls, weight=0.8, issuer=b_actor)
    ctx.actor(fed)


def credentials_old_active_key(ctx: Ctx, site: Site) -> None:
    """An old, still active access key used every day."""
    d = site.dev
    d.group("ci-users", inline={"list-builds": doc(allow(["codebuild:ListProjects", "codebuild:BatchGetProjects"]))})
    ci = d.user("ci-legacy", groups=["ci-users"], keys=1, key_age_days=1100, inline={"ci": policy_for_calls(
        [call("s3.PutObject", d.targets["object"][0]), call("codebuild.StartBuild", d.targets["project"][0]),
         call("codebuild.BatchGetBuilds", d.targets["project"][0])])})
    user_actor(ctx, d, "ci-legacy", [call("s3.PutObject", d.targets["object"][0]),
                                     call("codebuild.StartBuild", d.targets["project"][0]),
                                     call("codebuild.BatchGetBuilds", d.targets["project"][0])], weight=1.0, planted=True)
    ctx.plant("credentials.old-active-key", K.CREDENTIAL_HYGIENE, "active access key older than 90 days", d,
              principals=[ci.arn], resources=[ci.access_keys[0].access_key_id], actions=[],
              why="ci-legacy's key is about three years old and still in daily use (never rotated)")


def nearmiss_scp(ctx: Ctx, site: Site) -> None:
    """support-eng's grant on the sandbox admin, denied by the Sandbox OU's SCP."""
    s = site.sandbox
    s.user("sandbox-admin", managed=[ctx.aws("AdministratorAccess")], password=True, mfa=True)
    user_actor(ctx, s, "sandbox-admin", [call("signin.ConsoleLogin"), call("ec2.DescribeInstances"),
                                         call("iam.ListUsers")], console=True, weight=0.3)
    helpdesk = s.role("sandbox-helpdesk", trust_service("lambda.amazonaws.com"), inline={"helpdesk": doc(
        allow(["iam:CreateAccessKey", "iam:ListAccessKeys"], s.iam_arn("user", "*")))})
    s.compute("lambda_function", s.arn("lambda", "function:helpdesk-automation", HOME), "helpdesk-automation",
              role_arn=helpdesk.arn, target="function", attributes={"runtime": "python3.12"})
    service_role_actor(ctx, s, "sandbox-helpdesk", "lambda.amazonaws.com",
                       [call("iam.ListAccessKeys", s.iam_arn("user", "sandbox-admin"))], weight=0.2)
    ctx.plant("nearmiss.scp", PlantedKind.NEAR_MISS, "iam:CreateAccessKey on an admin user", s,
              principals=[helpdesk.arn], resources=[s.iam_arn("user", "sandbox-admin")], actions=["iam:CreateAccessKey"],
              expect=Expect.NO_FINDING, blocked_by="SCP DenyIamUserCredentials on the Sandbox OU",
              why="the same grant as support-eng in prod-01, but the Sandbox OU's SCP denies iam:CreateAccessKey")


def privesc_stackset_update(ctx: Ctx, site: Site) -> None:
    """UpdateStackSet on the organization's security baseline, a self-managed StackSet in the management
    account.

    Self-managed permissions as AWS's prerequisite templates set them up: the administration role in the
    management account trusts CloudFormation and may assume AWSCloudFormationStackSetExecutionRole in any
    account; that role, in each target account, trusts the administration role and holds
    AdministratorAccess. UpdateStackSet deploys the caller's template to every stack instance, where it runs
    as the execution role; the caller passes the administration role to CloudFormation.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-prereqs-self-managed.html
    """
    mgmt, workloads, prod = site.mgmt, site.workloads, site.prod
    name = "org-security-baseline"
    stackset = mgmt.arn("cloudformation", f"stackset/{name}:{ctx.ids.uuid('stackset', mgmt.account_id, name)}", HOME)
    admin_role = mgmt.role("AWSCloudFormationStackSetAdministrationRole", trust_service("cloudformation.amazonaws.com"),
                           inline={"AssumeRole-AWSCloudFormationStackSetExecutionRole": doc(
                               allow("sts:AssumeRole", "arn:aws:iam::*:role/AWSCloudFormationStackSetExecutionRole"))})
    for acct in workloads:
        acct.role("AWSCloudFormationStackSetExecutionRole", trust_aws(admin_role.arn), managed=[ctx.aws("AdministratorAccess")],
                  description="StackSet execution role for the organization's security baseline")
        role_actor(ctx, acct, "AWSCloudFormationStackSetExecutionRole", "stackset-baseline",
                   [call("cloudformation.ListStacks"), call("config.DescribeConfigRules")], weight=0.1)
    mgmt.compute("cloudformation_stackset", stackset, name, role_arn=admin_role.arn, attributes={
        "permission_model": "SELF_MANAGED", "execution_role_name": "AWSCloudFormationStackSetExecutionRole",
        "status": "ACTIVE", "instance_accounts": sorted(a.account_id for a in workloads), "instance_regions": [HOME],
        "administration_role_arn": admin_role.arn})
    service_role_actor(ctx, mgmt, admin_role.name, "cloudformation.amazonaws.com",
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
    service_role_actor(ctx, mgmt, deployer.name, "codebuild.amazonaws.com",
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


def credentials_root_without_mfa(ctx: Ctx, site: Site) -> None:
    """The sandbox-01 root user has no MFA."""
    sandbox = site.sandbox
    sandbox.mfa_root = False
    ctx.plant("credentials.root-without-mfa", PlantedKind.CREDENTIAL_HYGIENE, "root user without MFA", sandbox,
              principals=[sandbox.root_arn], resources=[], actions=[],
              why="the credential report shows mfa_active=false for the sandbox-01 root user")


def scenery_management_root_sign_in(ctx: Ctx, site: Site) -> None:
    """Not a finding: the management account's root user signs in (and reads the bill)."""
    mgmt = site.mgmt
    ctx.actor(Actor(key=f"root:{mgmt.account_id}", kind="Root", account_id=mgmt.account_id, principal_arn=None,
                    name="root", unique_id=mgmt.account_id, regions=(HOME,), ip=ctx.ip("root"),
                    user_agent="Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
                    calls=[call("signin.ConsoleLogin"), call("iam.GetAccountSummary"), call("ce.GetCostAndUsage")],
                    weight=0.02, extra={"console": "true"}))


def scenery_public_access_blocks(ctx: Ctx, site: Site) -> None:
    """Not a finding: account-level S3 Block Public Access of the accounts not set above."""
    accounts = site.accounts
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


# In this order, because the order is part of the output (see the module docstring) and because some steps use
# what an earlier one built:
# - privesc_attach_user_policy creates group ops-oncall, which support-eng (privesc_create_access_key) joins;
# - privesc_iam_full_access is about the role sod_create_user_and_attach_admin builds;
# - unused_services_and_actions decrypts with the PII key of sod_kms_admin_and_decrypt;
# - the deviations act as SAML-IdentityAdmin, SAML-TrailAdmin, orders-api-task and contractor-jane, and read the
#   PII bucket of sensitive_pii_readable_by_broad_group;
# - nearmiss_github_oidc_with_sub names the role exposure_github_oidc_without_sub builds;
# - scenery_public_access_blocks sets Block Public Access where exposure_public_bucket left it unset.
PLANTINGS: tuple[Callable[[Ctx, Site], None], ...] = (
    privesc_create_policy_version,
    privesc_passrole_lambda,
    privesc_attach_user_policy,
    privesc_create_access_key,
    privesc_update_assume_role_policy,
    privesc_update_function_code,
    privesc_ssm_send_command,
    privesc_assume_role_chain,
    privesc_launch_template_version,
    privesc_detach_deny_guardrail,
    sod_create_user_and_attach_admin,
    privesc_iam_full_access,
    sod_cloudtrail_and_log_deletion,
    sod_kms_admin_and_decrypt,
    overbroad_s3_star,
    unused_services_and_actions,
    unused_role,
    unused_credentials,
    sensitive_pii_readable_by_broad_group,
    nearmiss_public_bucket_under_rcp,
    nearmiss_deny,
    nearmiss_boundary,
    nearmiss_passed_to_service,
    nearmiss_resource_constraint,
    nearmiss_detach_other_policy,
    external_vendor_role_with_external_id,
    scenery_shared_reports_bucket,
    deviation_new_iam_actions,
    deviation_new_region,
    deviation_stop_logging,
    deviation_access_denied_burst,
    exposure_public_bucket,
    exposure_role_any_account,
    exposure_github_oidc_without_sub,
    nearmiss_github_oidc_with_sub,
    scenery_dev_federation,
    credentials_old_active_key,
    nearmiss_scp,
    privesc_stackset_update,
    credentials_root_without_mfa,
    scenery_management_root_sign_in,
    scenery_public_access_blocks,
)
