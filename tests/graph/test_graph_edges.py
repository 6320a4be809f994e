"""Every capability-edge class: found when it exists (also when hidden), absent when a guardrail stops it.

Each case gives an attacker (user ``attacker`` in account A) exactly the calls a technique needs,
then varies how the permission is written or blocked. Expectations follow AWS's documented
evaluation logic (explicit Deny wins; SCPs and permission boundaries cap identity policies;
NotAction allows everything except what it lists; Resource limits the ARNs):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from graphsnap import A, B, SnapBuilder, allow, deny, not_action, service_trust, trust
from hypothesis import given
from hypothesis import strategies as st

from iamgraph.graph import EdgeKind, build_graph
from iamgraph.graph.rules.compute_takeover import TAKEOVERS
from iamgraph.graph.rules.passrole import PASS_ROLE_TECHNIQUES
from iamgraph.graph.rules.resources import _account_ids_in

ATTACKER = f"arn:aws:iam::{A}:user/attacker"
REGION = "us-east-1"


@dataclass
class Case:
    """``setup`` adds the target and returns (edge target, [(action, resource) the attacker needs])."""

    name: str
    kind: EdgeKind
    setup: Callable[[SnapBuilder], tuple[str, list[tuple[str, str]]]]
    pass_to: str | None = None
    """For pass-role cases: the service the role is passed to (iam:PassedToService)."""
    source: str = ATTACKER
    extra: dict[str, Any] = field(default_factory=dict)


def _victim_user(password: bool | None = None, keys: int = 0) -> Callable[[SnapBuilder], tuple[str, list]]:
    def setup(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
        v = b.user("victim", allow("s3:*"), password=password, keys=keys)
        action = {None: "iam:CreateAccessKey", False: "iam:CreateLoginProfile", True: "iam:UpdateLoginProfile"}
        return v, [(action[password], v)]
    return setup


def _role_target(action: str) -> Callable[[SnapBuilder], tuple[str, list]]:
    def setup(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
        r = b.role("target", allow("s3:*"), trust_doc=service_trust("ec2.amazonaws.com"))
        return r, [(action, r)]
    return setup


def _assume(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
    # The trust policy names the account, so the caller's identity policy must allow sts:AssumeRole.
    r = b.role("target", allow("s3:*"), trust_doc=trust({"AWS": f"arn:aws:iam::{A}:root"}))
    return r, [("sts:AssumeRole", r)]


def _self_grant(action: str) -> Callable[[SnapBuilder], tuple[str, list]]:
    def setup(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
        return ATTACKER, [(action, ATTACKER)]
    return setup


def _policy_version(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
    pol = b.managed("shared", allow("s3:ListAllMyBuckets"))
    r = b.role("holder", trust_doc=service_trust("ec2.amazonaws.com"), managed=[pol])
    return r, [("iam:CreatePolicyVersion", pol)]


def _group_policy(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
    g = b.group("devs")
    m = b.user("member", groups=["devs"])
    return m, [("iam:PutGroupPolicy", g)]


def _boundary(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
    bpol = b.managed("limit", allow("s3:GetObject"))
    v = b.user("bounded", allow("*"), boundary=bpol)
    return v, [("iam:DeleteUserPermissionsBoundary", v)]


def _join(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
    g = b.group("admins", allow("*"))
    return g, [("iam:AddUserToGroup", g)]


def _ssm(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
    prof = f"arn:aws:iam::{A}:instance-profile/web"
    r = b.role("web", allow("s3:*"), trust_doc=service_trust("ec2.amazonaws.com"), profiles=[prof])
    inst = b.compute(f"arn:aws:ec2:{REGION}:{A}:instance/i-0123456789abcdef0", "ec2_instance", profile=prof)
    return r, [("ssm:SendCommand", inst)]


def _instance_connect(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
    prof = f"arn:aws:iam::{A}:instance-profile/web"
    r = b.role("web", allow("s3:*"), trust_doc=service_trust("ec2.amazonaws.com"), profiles=[prof])
    inst = b.compute(f"arn:aws:ec2:{REGION}:{A}:instance/i-0123456789abcdef0", "ec2_instance", profile=prof)
    return r, [("ec2-instance-connect:SendSSHPublicKey", inst)]


def _takeover(tech_index: int) -> Callable[[SnapBuilder], tuple[str, list]]:
    tech = TAKEOVERS[tech_index]
    arns = {
        "lambda_function": f"arn:aws:lambda:{REGION}:{A}:function:fn",
        "glue_dev_endpoint": f"arn:aws:glue:{REGION}:{A}:devEndpoint/dev",
        "glue_job": f"arn:aws:glue:{REGION}:{A}:job/etl",
        "cloudformation_stack": f"arn:aws:cloudformation:{REGION}:{A}:stack/st/0f0f0f0f",
        "codebuild_project": f"arn:aws:codebuild:{REGION}:{A}:project/build",
        "sagemaker_notebook": f"arn:aws:sagemaker:{REGION}:{A}:notebook-instance/nb",
        "ec2_instance": f"arn:aws:ec2:{REGION}:{A}:instance/i-0123456789abcdef0",
        "ecs_task_definition": f"arn:aws:ecs:{REGION}:{A}:task-definition/app:3",
        "ecs_service": f"arn:aws:ecs:{REGION}:{A}:service/cluster/app",
        "ssm_managed_instance": f"arn:aws:ssm:{REGION}:{A}:managed-instance/mi-0123456789abcdef0",
        "apprunner_service": f"arn:aws:apprunner:{REGION}:{A}:service/web/0123456789abcdef0123456789abcdef",
        "bedrock_agentcore_code_interpreter": f"arn:aws:bedrock-agentcore:{REGION}:{A}:code-interpreter-custom/ci-1",
        "bedrock_agentcore_runtime": f"arn:aws:bedrock-agentcore:{REGION}:{A}:runtime/rt-1",
        "bedrock_agentcore_browser": f"arn:aws:bedrock-agentcore:{REGION}:{A}:browser-custom/br-1",
    }

    def setup(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
        r = b.role("runner", allow("s3:*"), trust_doc=service_trust("lambda.amazonaws.com"))
        arn = b.compute(arns[tech.kind], tech.kind, role=r)
        needs = [(a, arn) for a in tech.steps]
        if tech.pass_to:
            needs.append(("iam:PassRole", r))
        return r, needs
    return setup


LT = f"arn:aws:ec2:{REGION}:{A}:launch-template/lt-0123456789abcdef0"
ASG = f"arn:aws:autoscaling:{REGION}:{A}:autoScalingGroup:11111111-2222-3333-4444-555555555555:autoScalingGroupName/web"


def _launch_template(version: str) -> Callable[[SnapBuilder], tuple[str, list]]:
    # An Auto Scaling group launches from the template: a new version with the caller's user data
    # runs as the template's instance-profile role.
    def setup(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
        prof = f"arn:aws:iam::{A}:instance-profile/web"
        r = b.role("web", allow("s3:*"), trust_doc=service_trust("ec2.amazonaws.com"), profiles=[prof])
        b.compute(LT, "ec2_launch_template", profile=prof, default_version=1, latest_version=1,
                  version_profiles={"1": prof}, autoscaling_groups=[{"name": "web", "arn": ASG, "version": version}])
        needs = [("ec2:CreateLaunchTemplateVersion", LT)]
        if version == "$Default":
            needs.append(("ec2:ModifyLaunchTemplate", LT))
        elif version != "$Latest":
            needs += [("autoscaling:UpdateAutoScalingGroup", ASG), ("ec2:RunInstances", "*"), ("iam:PassRole", r)]
        return r, needs
    return setup


STACKSET = f"arn:aws:cloudformation:{REGION}:{A}:stackset/ops:01234567-89ab-cdef-0123-456789abcdef"


def _stackset(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
    # Self-managed: the administration role (trusting CloudFormation) assumes the execution role in
    # the target account, which runs the template.
    admin = b.role("AWSCloudFormationStackSetAdministrationRole",
                   allow("sts:AssumeRole", "arn:aws:iam::*:role/AWSCloudFormationStackSetExecutionRole"),
                   trust_doc=service_trust("cloudformation.amazonaws.com"))
    ex = b.role("AWSCloudFormationStackSetExecutionRole", allow("s3:*"), acct=B,
                trust_doc=trust({"AWS": f"arn:aws:iam::{A}:root"}))
    b.compute(STACKSET, "cloudformation_stackset", role=admin, permission_model="SELF_MANAGED",
              execution_role_name="AWSCloudFormationStackSetExecutionRole", instance_accounts=[B])
    return ex, [("cloudformation:UpdateStackSet", STACKSET), ("iam:PassRole", admin)]


def _deny_target(where: str, action: str) -> Callable[[SnapBuilder], tuple[str, list]]:
    # The victim's Allow would let it read S3 but a policy with a Deny stops it; the caller removes that policy.
    def setup(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
        guard = deny("s3:*")
        if where == "user-inline":
            v = b.user("victim", allow("s3:*"), guard)
            return v, [(action, v)]
        if where == "user-managed":
            v = b.user("victim", allow("s3:*"), managed=[b.managed("guardrail", guard)])
            return v, [(action, v)]
        if where == "role-managed":
            r = b.role("victim", allow("s3:*"), trust_doc=service_trust("ec2.amazonaws.com"),
                       managed=[b.managed("guardrail", guard)])
            return r, [(action, r)]
        if where == "policy-version":
            pol = b.managed("guardrail", guard)
            r = b.role("victim", allow("s3:*"), trust_doc=service_trust("ec2.amazonaws.com"), managed=[pol])
            return r, [(action, pol)]
        g = b.group("restricted", guard)
        m = b.user("victim", allow("s3:*"), groups=["restricted"])
        return m, [(action, g)]
    return setup


def _passrole(tech_index: int) -> Callable[[SnapBuilder], tuple[str, list]]:
    tech = PASS_ROLE_TECHNIQUES[tech_index]

    def setup(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
        prof = [f"arn:aws:iam::{A}:instance-profile/passed"] if tech.instance_profile else []
        r = b.role("passed", allow("s3:*"), trust_doc=service_trust(tech.service), profiles=prof)
        needs = [("iam:PassRole", r)]
        for action, template in tech.steps:
            needs.append((action, template.format(region=REGION, account=A)))
        return r, needs
    return setup


def _resource_policy(type_: str, arn: str, action: str) -> Callable[[SnapBuilder], tuple[str, list]]:
    def setup(b: SnapBuilder) -> tuple[str, list[tuple[str, str]]]:
        b.resource(arn, type_, None)
        return arn, [(action, arn)]
    return setup


CASES: list[Case] = [
    Case(name="assume-role", kind=EdgeKind.ASSUME_ROLE, setup=_assume),
    Case(name="create-access-key", kind=EdgeKind.CREATE_ACCESS_KEY, setup=_victim_user()),
    Case(name="create-login-profile", kind=EdgeKind.LOGIN_PROFILE, setup=_victim_user(password=False)),
    Case(name="update-login-profile", kind=EdgeKind.LOGIN_PROFILE, setup=_victim_user(password=True)),
    Case(name="update-assume-role-policy", kind=EdgeKind.UPDATE_TRUST_THEN_ASSUME,
         setup=_role_target("iam:UpdateAssumeRolePolicy")),
    Case(name="put-user-policy-self", kind=EdgeKind.GRANT_PERMISSIONS, setup=_self_grant("iam:PutUserPolicy")),
    Case(name="attach-user-policy-self", kind=EdgeKind.GRANT_PERMISSIONS,
         setup=_self_grant("iam:AttachUserPolicy")),
    Case(name="put-role-policy", kind=EdgeKind.GRANT_PERMISSIONS, setup=_role_target("iam:PutRolePolicy")),
    Case(name="attach-role-policy", kind=EdgeKind.GRANT_PERMISSIONS, setup=_role_target("iam:AttachRolePolicy")),
    Case(name="create-policy-version", kind=EdgeKind.GRANT_PERMISSIONS, setup=_policy_version),
    Case(name="put-group-policy", kind=EdgeKind.GRANT_PERMISSIONS, setup=_group_policy),
    Case(name="delete-boundary", kind=EdgeKind.REMOVE_BOUNDARY, setup=_boundary),
    Case(name="add-user-to-group", kind=EdgeKind.JOIN_GROUP, setup=_join),
    Case(name="delete-user-policy", kind=EdgeKind.REMOVE_DENY, setup=_deny_target("user-inline", "iam:DeleteUserPolicy")),
    Case(name="put-user-policy-overwrite", kind=EdgeKind.REMOVE_DENY,
         setup=_deny_target("user-inline", "iam:PutUserPolicy")),
    Case(name="detach-user-policy", kind=EdgeKind.REMOVE_DENY, setup=_deny_target("user-managed", "iam:DetachUserPolicy")),
    Case(name="detach-role-policy", kind=EdgeKind.REMOVE_DENY, setup=_deny_target("role-managed", "iam:DetachRolePolicy")),
    Case(name="rewrite-deny-policy", kind=EdgeKind.REMOVE_DENY,
         setup=_deny_target("policy-version", "iam:CreatePolicyVersion")),
    Case(name="delete-group-policy", kind=EdgeKind.REMOVE_DENY, setup=_deny_target("group", "iam:DeleteGroupPolicy")),
    Case(name="remove-user-from-group", kind=EdgeKind.REMOVE_DENY,
         setup=_deny_target("group", "iam:RemoveUserFromGroup")),
    *[Case(name=f"launch-template-{v}", kind=EdgeKind.TAKEOVER_COMPUTE, setup=_launch_template(v))
      for v in ("$Latest", "$Default", "3")],
    Case(name="stackset-update", kind=EdgeKind.TAKEOVER_COMPUTE, setup=_stackset),
    Case(name="ssm-send-command", kind=EdgeKind.SSM_COMMAND, setup=_ssm),
    Case(name="ec2-instance-connect", kind=EdgeKind.EC2_INSTANCE_CONNECT, setup=_instance_connect),
    *[Case(name=f"takeover-{t.name}-{t.kind}", kind=t.edge, setup=_takeover(i)) for i, t in enumerate(TAKEOVERS)],
    *[Case(name=f"passrole-{t.name}", kind=EdgeKind.PASS_ROLE_TO_COMPUTE, setup=_passrole(i), pass_to=t.service)
      for i, t in enumerate(PASS_ROLE_TECHNIQUES)],
    Case(name="s3-put-bucket-policy", kind=EdgeKind.RESOURCE_POLICY_TAKEOVER,
         setup=_resource_policy("s3:bucket", "arn:aws:s3:::victim-bucket", "s3:PutBucketPolicy")),
    Case(name="kms-put-key-policy", kind=EdgeKind.RESOURCE_POLICY_TAKEOVER,
         setup=_resource_policy("kms:key", f"arn:aws:kms:{REGION}:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                                "kms:PutKeyPolicy")),
    Case(name="sqs-set-attributes", kind=EdgeKind.RESOURCE_POLICY_TAKEOVER,
         setup=_resource_policy("sqs:queue", f"arn:aws:sqs:{REGION}:{A}:q", "sqs:SetQueueAttributes")),
    Case(name="sns-add-permission", kind=EdgeKind.RESOURCE_POLICY_TAKEOVER,
         setup=_resource_policy("sns:topic", f"arn:aws:sns:{REGION}:{A}:t", "sns:AddPermission")),
    Case(name="secrets-put-resource-policy", kind=EdgeKind.RESOURCE_POLICY_TAKEOVER,
         setup=_resource_policy("secretsmanager:secret", f"arn:aws:secretsmanager:{REGION}:{A}:secret:s-AbCdEf",
                                "secretsmanager:PutResourcePolicy")),
    Case(name="lambda-add-permission", kind=EdgeKind.RESOURCE_POLICY_TAKEOVER,
         setup=_resource_policy("lambda:function", f"arn:aws:lambda:{REGION}:{A}:function:fn", "lambda:AddPermission")),
    Case(name="ecr-set-repository-policy", kind=EdgeKind.RESOURCE_POLICY_TAKEOVER,
         setup=_resource_policy("ecr:repository", f"arn:aws:ecr:{REGION}:{A}:repository/r", "ecr:SetRepositoryPolicy")),
]

def _key_policy_fix(b: SnapBuilder, case: Case) -> None:
    """A KMS key without a key policy allows nobody; give it AWS's default (delegate to the account)."""
    for res in b.accounts[A].resources:
        if res.type == "kms:key":
            res.policy = {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*",
                 "Resource": "*"}]}


def _statement(action: str, resource: str, case: Case, *, wildcard: bool = False) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": "*" if wildcard else resource}
    if action == "iam:PassRole" and case.pass_to:
        st["Condition"] = {"StringEquals": {"iam:PassedToService": case.pass_to}}
    return st


def _docs(case: Case, needs: list[tuple[str, str]], variant: str) -> list[dict[str, Any]]:
    """The attacker's identity policies for a variant."""
    def doc(sts: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": sts}

    key_action, key_resource = needs[0]
    if variant in ("base", "deny-separate", "scp-deny", "boundary-blocks"):
        return [doc([_statement(a, r, case) for a, r in needs])]
    if variant == "split":
        return [doc([_statement(a, r, case)]) for a, r in needs]
    if variant == "wildcard-resource":
        return [doc([_statement(a, r, case, wildcard=True) for a, r in needs])]
    if variant == "notaction-includes":
        return [not_action("cloudhsm:*")]
    if variant == "notaction-excludes":
        return [not_action(key_action)]
    if variant == "resource-excludes":
        other = key_resource.rsplit("/", 1)[0] + "/someone-else" if "/" in key_resource else key_resource + "-else"
        return [doc([_statement(key_action, other, case), *(_statement(a, r, case) for a, r in needs[1:])])]
    if variant == "passed-to-other-service":
        sts = [_statement(a, r, case) for a, r in needs]
        sts[0]["Condition"] = {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"
                                                if case.pass_to != "glue.amazonaws.com" else "ec2.amazonaws.com"}}
        return [doc(sts)]
    raise AssertionError(variant)


def _build(case: Case, variant: str) -> tuple[bool, set[tuple[str, str, str]]]:
    b = SnapBuilder()
    target, needs = case.setup(b)
    _key_policy_fix(b, case)
    docs = _docs(case, needs, variant)
    key_action = needs[0][0]
    boundary = None
    if variant == "deny-separate":
        docs.append(deny(key_action))
    if variant == "scp-deny":
        b.scp(deny(key_action), A)
    if variant == "boundary-blocks":
        boundary = b.managed("attacker-boundary", allow("cloudhsm:DescribeClusters"))
    b.user("attacker", *docs, boundary=boundary)
    # Each technique's own rule is under test, so admins keep their per-target edges here
    # (test_admin_shortcut_keeps_reach covers the shortcut).
    g = build_graph(b.build(), admin_shortcut=False)
    edges = {(e.kind.value, e.source, e.target, e.reason.via) for e in g.edges()}
    # Several techniques can make the same hop (kms:PutKeyPolicy or kms:CreateGrant); the case is
    # about the one whose key action it grants. Pass-role keeps the best technique per role.
    hit = any(k == case.kind.value and s_ == case.source and t == target and (case.pass_to or key_action in via)
              for k, s_, t, via in edges)
    return hit, {(k, s_, t) for k, s_, t, _ in edges}


FOUND = ("base", "split", "wildcard-resource", "notaction-includes")
NOT_FOUND = ("deny-separate", "scp-deny", "boundary-blocks", "notaction-excludes", "resource-excludes")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("variant", FOUND)
def test_edge_found(case: Case, variant: str) -> None:
    if variant == "split" and len(case.setup(SnapBuilder())[1]) == 1:
        pytest.skip("single-action technique: nothing to split")
    ok, edges = _build(case, variant)
    assert ok, f"{case.kind} edge missing; have {sorted(edges)}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("variant", NOT_FOUND)
def test_edge_not_found(case: Case, variant: str) -> None:
    if variant == "resource-excludes" and case.setup(SnapBuilder())[1][0][1] == "*":
        pytest.skip("the key action has no resource to constrain")
    ok, _edges = _build(case, variant)
    assert not ok, f"{case.kind} edge reported although {variant} stops it"


@pytest.mark.parametrize("case", [c for c in CASES if c.pass_to], ids=lambda c: c.name)
def test_passrole_to_another_service_is_not_an_edge(case: Case) -> None:
    ok, _ = _build(case, "passed-to-other-service")
    assert not ok


def test_passrole_needs_role_trusting_the_service() -> None:
    """A role whose trust policy does not let Lambda assume it cannot run a Lambda function."""
    b = SnapBuilder()
    r = b.role("passed", allow("s3:*"), trust_doc=service_trust("ec2.amazonaws.com"))
    b.user("attacker", allow(["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"]))
    g = build_graph(b.build())
    kinds = {e.reason.service for e in g.edges((EdgeKind.PASS_ROLE_TO_COMPUTE,)) if e.target == r}
    assert "lambda.amazonaws.com" not in kinds
    # ...but EC2 needs an instance profile, which the attacker cannot create: no edge at all.
    assert not kinds


def test_cross_account_assume_role_needs_both_sides() -> None:
    b = SnapBuilder()
    r = b.role("shared", allow("s3:*"), acct=B, trust_doc=trust({"AWS": f"arn:aws:iam::{A}:root"}))
    b.user("attacker", allow("sts:AssumeRole", r))
    b.user("nopolicy")
    g = build_graph(b.build())
    sources = {e.source for e in g.edges((EdgeKind.ASSUME_ROLE,)) if e.target == r}
    assert ATTACKER in sources
    assert f"arn:aws:iam::{A}:user/nopolicy" not in sources  # cross-account: identity Allow required


def test_trust_naming_user_needs_no_identity_policy_same_account() -> None:
    b = SnapBuilder()
    u = b.user("named")
    r = b.role("target", trust_doc=trust({"AWS": u}))
    g = build_graph(b.build())
    assert any(e.source == u and e.target == r for e in g.edges((EdgeKind.ASSUME_ROLE,)))


def test_external_and_public_trust() -> None:
    b = SnapBuilder()
    ext = b.role("vendor", trust_doc=trust({"AWS": "arn:aws:iam::444455556666:root"},
                                           Condition={"StringEquals": {"sts:ExternalId": "x1"}}))
    pub = b.role("open", trust_doc=trust({"AWS": "*"}))
    g = build_graph(b.build())
    edges = {(e.source, e.target): e for e in g.edges((EdgeKind.ASSUME_ROLE,))}
    vendor = edges[("arn:aws:iam::444455556666:root", ext)]
    assert vendor.conditional and vendor.conditions[0][0].key == "sts:ExternalId"
    assert ("*", pub) in edges


def test_saml_and_oidc_federation() -> None:
    b = SnapBuilder()
    saml = f"arn:aws:iam::{A}:saml-provider/Corp"
    oidc = f"arn:aws:iam::{A}:oidc-provider/token.actions.githubusercontent.com"
    r1 = b.role("sso", trust_doc=trust({"Federated": saml}, action="sts:AssumeRoleWithSAML",
                                       Condition={"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}))
    r2 = b.role("gha", trust_doc=trust({"Federated": oidc}, action="sts:AssumeRoleWithWebIdentity"))
    r3 = b.role("other", trust_doc=trust({"Federated": saml}, action="sts:AssumeRoleWithWebIdentity"))
    g = build_graph(b.build())
    pairs = {(e.source, e.target) for e in g.edges((EdgeKind.FEDERATION,))}
    assert (saml, r1) in pairs and (oidc, r2) in pairs
    assert (saml, r3) not in pairs  # the trust allows web identity only, a SAML provider cannot use it


def test_create_access_key_on_user_with_two_keys_needs_delete() -> None:
    b = SnapBuilder()
    v = b.user("victim", keys=2)
    b.user("attacker", allow("iam:CreateAccessKey", v))
    b.user("cleaner", allow(["iam:CreateAccessKey", "iam:DeleteAccessKey"], v))
    g = build_graph(b.build())
    sources = {e.source for e in g.edges((EdgeKind.CREATE_ACCESS_KEY,)) if e.target == v}
    assert sources == {f"arn:aws:iam::{A}:user/cleaner"}


def test_attach_policy_condition_on_policy_arn_is_decided() -> None:
    """iam:PolicyARN is supplied as AdministratorAccess: a condition allowing only ReadOnlyAccess fails."""
    b = SnapBuilder()
    cond = {"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/ReadOnlyAccess"}}
    b.user("attacker", allow("iam:AttachUserPolicy", ATTACKER, Condition=cond))
    g = build_graph(b.build())
    assert not list(g.edges((EdgeKind.GRANT_PERMISSIONS,)))


def test_mfa_condition_makes_edge_conditional() -> None:
    b = SnapBuilder()
    r = b.role("target", trust_doc=trust({"AWS": f"arn:aws:iam::{A}:root"}))
    b.user("attacker", allow("sts:AssumeRole", r, Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    g = build_graph(b.build())
    (edge,) = [e for e in g.edges((EdgeKind.ASSUME_ROLE,)) if e.target == r]
    assert edge.conditional
    assert {c.key.lower() for conj in edge.conditions for c in conj} == {"aws:multifactorauthpresent"}


def test_admin_edge_and_its_guardrails() -> None:
    b = SnapBuilder()
    b.user("root-like", allow("*"))
    b.user("iam-only", allow("iam:*"))
    b.user("denied", allow("*"), deny("kms:Decrypt"))
    b.user("s3-scoped", allow("*", "arn:aws:s3:::*"))
    g = build_graph(b.build())
    admins = {e.source for e in g.edges((EdgeKind.ADMIN,))}
    # iam-only and denied can create a new principal and make it admin: that node is admin too.
    assert admins == {f"arn:aws:iam::{A}:user/root-like", f"new-principal:{A}"}
    creators = {e.source for e in g.edges((EdgeKind.CREATE_PRINCIPAL,))}
    assert creators == {f"arn:aws:iam::{A}:user/iam-only", f"arn:aws:iam::{A}:user/denied"}


def test_identity_center_permission_set_materialises_as_role() -> None:
    from iamgraph.snapshot.model import (
        AccountAssignment,
        GroupMembership,
        IdentityCenter,
        IdentityStoreGroup,
        IdentityStoreUser,
        PermissionSet,
    )

    b = SnapBuilder()
    b.managed("AdministratorAccess", allow("*"), acct=None)
    snap = b.build()
    ps_admin = PermissionSet(arn="arn:aws:sso:::permissionSet/ssoins-1/ps-admin", name="Admin",
                             aws_managed_policies=["arn:aws:iam::aws:policy/AdministratorAccess"])
    ps_missing = PermissionSet(arn="arn:aws:sso:::permissionSet/ssoins-1/ps-cm", name="Custom",
                               customer_managed_policies=[{"name": "not-there"}])  # type: ignore[list-item]
    snap.identity_center = IdentityCenter(
        instance_arn="arn:aws:sso:::instance/ssoins-1", identity_store_id="d-1",
        permission_sets=[ps_admin, ps_missing],
        users=[IdentityStoreUser(user_id="u1", user_name="ann")],
        groups=[IdentityStoreGroup(group_id="g1", display_name="ops")],
        memberships=[GroupMembership(group_id="g1", user_id="u1")],
        assignments=[
            AccountAssignment(account_id=B, permission_set_arn=ps_admin.arn, principal_type="GROUP", principal_id="g1"),
            AccountAssignment(account_id=B, permission_set_arn=ps_missing.arn, principal_type="USER", principal_id="u1"),
        ],
    )
    g = build_graph(snap)
    sign_ins = [e for e in g.edges((EdgeKind.SSO_SIGN_IN,))]
    assert len(sign_ins) == 1 and "AWSReservedSSO_Admin_" in sign_ins[0].target
    assert sign_ins[0].source == "identitycenter:d-1:group/g1"
    admins = {e.source for e in g.edges((EdgeKind.ADMIN,))}
    assert sign_ins[0].target in admins  # the permission set's AWS managed policy is evaluated
    assert any("not-there" in n for n in g.notes)
    from iamgraph.query.privesc import privesc

    found = privesc(g, "identitycenter:d-1:user/u1")
    assert found and found[0].admin == sign_ins[0].target and found[0].account == B


def test_admin_shortcut_keeps_reach() -> None:
    """With the shortcut, a definite admin reaches every principal of its account through the admin node."""
    b = SnapBuilder()
    b.user("boss", allow("*"))
    b.user("victim")
    r = b.role("target", allow("s3:*"), trust_doc=service_trust("ec2.amazonaws.com"))
    slr = b.role("aws-service-role/x.amazonaws.com/AWSServiceRoleForX",
                 trust_doc=service_trust("x.amazonaws.com"))
    full = build_graph(b.build(), admin_shortcut=False)
    short = build_graph(b.build())
    boss = f"arn:aws:iam::{A}:user/boss"
    import networkx as nx

    for target in (f"arn:aws:iam::{A}:user/victim", r):
        assert nx.has_path(full.acts, boss, target) and nx.has_path(short.acts, boss, target)
    assert not short.acts.has_edge(f"admin:{A}", slr)
    assert short.ctx.stats.engine_calls < full.ctx.stats.engine_calls


def _all_subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_all_subclasses(sub)}
    return out


def test_registry_lists_every_rule_once_in_dependency_order() -> None:
    """AdminRule fills ``definite_admins`` before any rule asks ``admin_of``; CreatePrincipalRule fills
    ``creatable_admin`` before AdminControlRule reads it (iamgraph/graph/rules/__init__.py)."""
    from iamgraph.graph.rules import RULES, EdgeRule
    from iamgraph.graph.rules.admin import AdminControlRule, AdminRule, CreatePrincipalRule

    assert len(RULES) == len(set(RULES)) == len({r.name for r in RULES})
    assert set(RULES) == {c for c in _all_subclasses(EdgeRule) if not getattr(c, "__abstractmethods__", None)}
    assert RULES[0] is AdminRule
    assert RULES.index(CreatePrincipalRule) < RULES.index(AdminControlRule)


def test_one_pass_role_edge_per_role_whichever_table_row_reaches_it() -> None:
    """Two techniques reach the same role (Lambda and a Glue job started by a trigger): one edge, the one
    with fewer conditions (the Glue one here, since the Lambda step carries an MFA condition)."""
    b = SnapBuilder()
    glue = "glue.amazonaws.com"
    trust_both = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                  "Principal": {"Service": ["lambda.amazonaws.com", glue]}}]}
    r = b.role("target", allow("s3:*"), trust_doc=trust_both)
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    b.user("attacker", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": r},
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*",
         "Condition": mfa},
        {"Effect": "Allow", "Action": ["glue:CreateJob", "glue:CreateTrigger"], "Resource": "*"},
    ]})
    g = build_graph(b.build())
    edges = [e for e in g.edges([EdgeKind.PASS_ROLE_TO_COMPUTE]) if e.source == ATTACKER and e.target == r]
    assert len(edges) == 1
    assert edges[0].reason.note == "glue-job-trigger" and not edges[0].conditional


def test_bucket_policy_writable_from_another_account_named_by_the_policy() -> None:
    """A bucket policy that lets account B rewrite it (``arn:aws:iam::B:root``) makes B's principals whose own
    policies allow ``s3:PutBucketPolicy`` takers of the bucket; a bucket whose policy names another account
    instead does not: cross-account access needs both sides
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html)."""
    b = SnapBuilder()

    def bucket(name: str, account: str) -> str:
        arn = f"arn:aws:s3:::{name}"
        return b.resource(arn, "s3:bucket", {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                           "Action": "s3:PutBucketPolicy", "Resource": arn}],
        })

    shared = bucket("shared-config", B)
    elsewhere = bucket("vendor-drop", "444455556666")
    writer = b.role("writer", allow("s3:PutBucketPolicy"), acct=B)
    g = build_graph(b.build())
    takers = {(e.source, e.target) for e in g.edges((EdgeKind.RESOURCE_POLICY_TAKEOVER,))}
    assert (writer, shared) in takers
    assert (writer, elsewhere) not in takers


@given(text=st.text(alphabet="0123456789:/ab\"", max_size=60),
       account=st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_account_ids_in_a_policy_text_are_its_substrings(text: str, account: str) -> None:
    """The takeover rule's short list of accounts a resource policy names is exactly the 12-digit ids that occur
    in its text, as the scan over every caller checked them (``account in text``)."""
    for t in (text, text + account, account[:5] + text + account[5:], "9" + account + "9" + text):
        assert (account in _account_ids_in(t)) == (account in t)
