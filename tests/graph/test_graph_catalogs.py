"""Every path of two public privilege-escalation catalogs, checked against ``privesc``.

The catalogs are data (``privesc_catalogs.json``): BishopFox iam-vulnerable's 31 paths and the
AWS paths of DataDog's pathfinding.cloud, each with the actions it needs and how the graph covers
it (edge kind, rule, technique) or why it does not (a gap). For each technique a small snapshot
gives one low-privileged principal ``attacker`` exactly those actions, next to an administrator
target (a user, role, group or compute running with an administrator role); ``privesc`` must then
report an escalation for ``attacker`` through the expected edge kind. Gaps are strict xfails: when
the graph learns a technique, the test fails until the catalog file says so.

Where a catalog grants an action on ``*`` and that would let the principal escalate in some other,
simpler way than the technique (``iam:AttachUserPolicy`` on ``*`` also reaches the attacker's own
user), the snapshot scopes the action to the technique's target, so the test shows the technique
itself is found. Removing any required action (other than those marked ``optional``) must remove
the escalation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from graphsnap import A, B, SnapBuilder, allow, deny, service_trust, trust

from iamgraph.graph import EdgeKind, build_graph
from iamgraph.graph.rules import RULES
from iamgraph.graph.rules.compute_takeover import TAKEOVERS
from iamgraph.graph.rules.passrole import PASS_ROLE_TECHNIQUES
from iamgraph.query.privesc import Escalation, privesc

DATA = json.loads((Path(__file__).parent / "privesc_catalogs.json").read_text())
TECHNIQUES: list[dict[str, Any]] = DATA["techniques"]
REGION = "us-east-1"
USER = f"arn:aws:iam::{A}:user/attacker"
ROLE = f"arn:aws:iam::{A}:role/attacker"
ADMIN = allow("*")
WEAK = allow("s3:ListAllMyBuckets")
ROOT_TRUST = trust({"AWS": f"arn:aws:iam::{A}:root"})

Scope = dict[str, str]
"""action -> the resource the attacker's policy names for it (``*`` when absent)."""


def _attacker(b: SnapBuilder, perms: list[str], scope: Scope, *, role: bool = False, groups: list[str] | None = None,
              older: list[dict[str, Any]] | None = None, boundary: str | None = None,
              extra_managed: list[str] | None = None, extra_inline: list[dict[str, Any]] | None = None) -> str:
    """The principal under test, its actions in a customer managed policy (as iam-vulnerable attaches them)."""
    by_resource: dict[str, list[str]] = {}
    for p in perms:
        by_resource.setdefault(scope.get(p, "*"), []).append(p)
    statements = [{"Effect": "Allow", "Action": acts, "Resource": res} for res, acts in by_resource.items()]
    doc = {"Version": "2012-10-17", "Statement": statements or [{"Effect": "Allow", "Action": "sts:GetCallerIdentity",
                                                                 "Resource": "*"}]}
    pol = b.managed("attacker-perms", doc, older=older)
    managed = [pol, *(extra_managed or [])]
    if role:
        return b.role("attacker", *(extra_inline or []), trust_doc=service_trust("ec2.amazonaws.com"),
                      managed=managed, boundary=boundary)
    return b.user("attacker", *(extra_inline or []), managed=managed, groups=groups, boundary=boundary)


# ---------------------------------------------------------------- scenarios


def _creds(kind: str) -> Callable[[SnapBuilder, list[str]], str]:
    def setup(b: SnapBuilder, perms: list[str]) -> str:
        password = {"login-create": False, "login-update": True}.get(kind)
        victim = b.user("victim", ADMIN, password=password, keys=2 if kind == "access-key-two-keys" else 0)
        return _attacker(b, perms, {p: victim for p in perms})
    return setup


def _self_user(b: SnapBuilder, perms: list[str]) -> str:
    return _attacker(b, perms, {})


def _self_user_old_version(b: SnapBuilder, perms: list[str]) -> str:
    # The attacker's own policy has an older, administrator version that SetDefaultPolicyVersion restores.
    return _attacker(b, perms, {}, older=[ADMIN])


def _self_role(b: SnapBuilder, perms: list[str]) -> str:
    return _attacker(b, perms, {}, role=True)


def _self_group(b: SnapBuilder, perms: list[str]) -> str:
    b.group("devs")
    return _attacker(b, perms, {}, groups=["devs"])


def _join_admin_group(b: SnapBuilder, perms: list[str]) -> str:
    b.group("admins", ADMIN)
    return _attacker(b, perms, {})


def _assume_admin_role(b: SnapBuilder, perms: list[str]) -> str:
    r = b.role("admin", ADMIN, trust_doc=ROOT_TRUST)
    return _attacker(b, perms, {p: r for p in perms})


def _assume_role_chain(b: SnapBuilder, perms: list[str]) -> str:
    # iam-vulnerable's STS-AssumeRole: start -> intermediate -> ending role with "*" on "*".
    mid = b.role("intermediate", allow("sts:AssumeRole"), trust_doc=trust({"AWS": USER}))
    b.role("ending", ADMIN, trust_doc=trust({"AWS": mid}))
    return _attacker(b, perms, {})


def _trust_rewrite_admin_role(b: SnapBuilder, perms: list[str]) -> str:
    r = b.role("admin", ADMIN, trust_doc=service_trust("ec2.amazonaws.com"))
    return _attacker(b, perms, {p: r for p in perms})


def _modify_role(trust_doc: dict[str, Any]) -> Callable[[SnapBuilder, list[str]], str]:
    def setup(b: SnapBuilder, perms: list[str]) -> str:
        shared = b.managed("shared", WEAK)
        r = b.role("target", trust_doc=trust_doc, managed=[shared])
        return _attacker(b, perms, {p: shared if p == "iam:CreatePolicyVersion" else r for p in perms})
    return setup


def _modify_user(b: SnapBuilder, perms: list[str]) -> str:
    v = b.user("victim", WEAK)
    return _attacker(b, perms, {p: v for p in perms})


def _boundary_self_user(b: SnapBuilder, perms: list[str]) -> str:
    # Identity allows everything; the boundary allows only the technique's own calls.
    bound = b.managed("limit", allow(perms or ["s3:GetObject"]))
    return _attacker(b, perms, {}, boundary=bound, extra_inline=[ADMIN])


def _boundary_assumable_role(b: SnapBuilder, perms: list[str]) -> str:
    bound = b.managed("limit", allow("s3:GetObject"))
    r = b.role("bounded", ADMIN, trust_doc=ROOT_TRUST, boundary=bound)
    return _attacker(b, perms, {p: r for p in perms})


def _deny_self_user(inline: bool) -> Callable[[SnapBuilder, list[str]], str]:
    # pathfinding.cloud iam-025/026: the user's Allows would make it admin, but a guardrail policy
    # denies everything except the one call that removes the guardrail. That call comes only from
    # the attacker's policy (the broad Allow leaves it out), so without it nothing escalates.
    remover = "iam:DeleteUserPolicy" if inline else "iam:DetachUserPolicy"
    broad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": [remover], "Resource": "*"}]}
    guard = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "NotAction": [remover], "Resource": "*"}]}

    def setup(b: SnapBuilder, perms: list[str]) -> str:
        if inline:
            return _attacker(b, perms, {}, extra_inline=[broad, guard])
        return _attacker(b, perms, {}, extra_managed=[b.managed("guardrail", guard)], extra_inline=[broad])
    return setup


def _passrole(name: str) -> Callable[[SnapBuilder, list[str]], str]:
    tech = {t.name: t for t in PASS_ROLE_TECHNIQUES}[name]

    def setup(b: SnapBuilder, perms: list[str]) -> str:
        prof = [f"arn:aws:iam::{A}:instance-profile/admin"] if tech.instance_profile else []
        r = b.role("admin", ADMIN, trust_doc=service_trust(tech.service), profiles=prof)
        return _attacker(b, perms, {"iam:PassRole": r})
    return setup


COMPUTE_ARNS = {
    "lambda_function": f"arn:aws:lambda:{REGION}:{A}:function:fn",
    "glue_dev_endpoint": f"arn:aws:glue:{REGION}:{A}:devEndpoint/dev",
    "glue_job": f"arn:aws:glue:{REGION}:{A}:job/etl",
    "cloudformation_stack": f"arn:aws:cloudformation:{REGION}:{A}:stack/st/0f0f0f0f",
    "codebuild_project": f"arn:aws:codebuild:{REGION}:{A}:project/build",
    "sagemaker_notebook": f"arn:aws:sagemaker:{REGION}:{A}:notebook-instance/nb",
    "ec2_instance": f"arn:aws:ec2:{REGION}:{A}:instance/i-0123456789abcdef0",
    "ecs_task_definition": f"arn:aws:ecs:{REGION}:{A}:task-definition/app:3",
    "ecs_service": f"arn:aws:ecs:{REGION}:{A}:service/cluster/app",
    "apprunner_service": f"arn:aws:apprunner:{REGION}:{A}:service/web/0123456789abcdef0123456789abcdef",
    "bedrock_agentcore_code_interpreter": f"arn:aws:bedrock-agentcore:{REGION}:{A}:code-interpreter-custom/ci-1",
    "bedrock_agentcore_runtime": f"arn:aws:bedrock-agentcore:{REGION}:{A}:runtime/rt-1",
    "bedrock_agentcore_browser": f"arn:aws:bedrock-agentcore:{REGION}:{A}:browser-custom/br-1",
}
SERVICE_OF = {"lambda_function": "lambda.amazonaws.com", "glue_dev_endpoint": "glue.amazonaws.com",
              "glue_job": "glue.amazonaws.com", "cloudformation_stack": "cloudformation.amazonaws.com",
              "codebuild_project": "codebuild.amazonaws.com", "sagemaker_notebook": "sagemaker.amazonaws.com",
              "ec2_instance": "ec2.amazonaws.com", "ecs_task_definition": "ecs-tasks.amazonaws.com",
              "ecs_service": "ecs-tasks.amazonaws.com", "apprunner_service": "tasks.apprunner.amazonaws.com",
              "bedrock_agentcore_code_interpreter": "bedrock-agentcore.amazonaws.com",
              "bedrock_agentcore_runtime": "bedrock-agentcore.amazonaws.com",
              "bedrock_agentcore_browser": "bedrock-agentcore.amazonaws.com"}


def _takeover(name: str) -> Callable[[SnapBuilder, list[str]], str]:
    # The catalogs' takeovers of EC2 instances mean instances; the technique name picks the kind.
    kinds = [t.kind for t in TAKEOVERS if t.name == name]
    kind = "ec2_instance" if "ec2_instance" in kinds else kinds[0]

    def setup(b: SnapBuilder, perms: list[str]) -> str:
        if kind == "ec2_instance":
            prof = f"arn:aws:iam::{A}:instance-profile/admin"
            b.role("admin", ADMIN, trust_doc=service_trust("ec2.amazonaws.com"), profiles=[prof])
            b.compute(COMPUTE_ARNS[kind], kind, profile=prof)
        else:
            r = b.role("admin", ADMIN, trust_doc=service_trust(SERVICE_OF[kind]))
            b.compute(COMPUTE_ARNS[kind], kind, role=r, enable_execute_command=True)
        return _attacker(b, perms, {})
    return setup


def _launch_template(b: SnapBuilder, perms: list[str]) -> str:
    # pathfinding.cloud ec2-005: an Auto Scaling group launches the template's default version,
    # whose instance profile holds an administrator role.
    prof = f"arn:aws:iam::{A}:instance-profile/admin"
    b.role("admin", ADMIN, trust_doc=service_trust("ec2.amazonaws.com"), profiles=[prof])
    lt = f"arn:aws:ec2:{REGION}:{A}:launch-template/lt-0123456789abcdef0"
    asg = f"arn:aws:autoscaling:{REGION}:{A}:autoScalingGroup:1:autoScalingGroupName/web"
    b.compute(lt, "ec2_launch_template", profile=prof, default_version=1, latest_version=1,
              version_profiles={"1": prof}, autoscaling_groups=[{"name": "web", "arn": asg, "version": "$Default"}])
    return _attacker(b, perms, {p: lt for p in perms})


def _stackset(b: SnapBuilder, perms: list[str]) -> str:
    # pathfinding.cloud cloudformation-004: a self-managed StackSet with an instance in the
    # attacker's account; its execution role there is an administrator.
    admin = b.role("AWSCloudFormationStackSetAdministrationRole",
                   allow("sts:AssumeRole", "arn:aws:iam::*:role/AWSCloudFormationStackSetExecutionRole"),
                   trust_doc=service_trust("cloudformation.amazonaws.com"))
    b.role("AWSCloudFormationStackSetExecutionRole", ADMIN, trust_doc=ROOT_TRUST)
    ss = f"arn:aws:cloudformation:{REGION}:{A}:stackset/ops:0123"
    b.compute(ss, "cloudformation_stackset", role=admin, permission_model="SELF_MANAGED", instance_accounts=[A])
    return _attacker(b, perms, {"iam:PassRole": admin, "cloudformation:UpdateStackSet": ss})


def _ecs_override(b: SnapBuilder, perms: list[str]) -> str:
    # An existing task definition whose own role is weak; the override passes the admin role instead.
    weak = b.role("app", WEAK, trust_doc=service_trust("ecs-tasks.amazonaws.com"))
    b.compute(COMPUTE_ARNS["ecs_task_definition"], "ecs_task_definition", role=weak)
    r = b.role("admin", ADMIN, trust_doc=service_trust("ecs-tasks.amazonaws.com"))
    return _attacker(b, perms, {"iam:PassRole": r})


def _glue_job_passrole(b: SnapBuilder, perms: list[str]) -> str:
    weak = b.role("etl", WEAK, trust_doc=service_trust("glue.amazonaws.com"))
    b.compute(COMPUTE_ARNS["glue_job"], "glue_job", role=weak)
    r = b.role("admin", ADMIN, trust_doc=service_trust("glue.amazonaws.com"))
    return _attacker(b, perms, {"iam:PassRole": r})


def _service_role(service: str) -> Callable[[SnapBuilder, list[str]], str]:
    # For gaps about resources the snapshot cannot hold: only an admin role the service may assume.
    def setup(b: SnapBuilder, perms: list[str]) -> str:
        b.role("admin", ADMIN, trust_doc=service_trust(service))
        return _attacker(b, perms, {})
    return setup


def scenario(key: str) -> Callable[[SnapBuilder, list[str]], str]:
    head, _, arg = key.partition(":")
    fixed: dict[str, Callable[[SnapBuilder, list[str]], str]] = {
        "self-user": _self_user, "self-user-old-version": _self_user_old_version, "self-role": _self_role,
        "self-group": _self_group, "join-admin-group": _join_admin_group, "assume-admin-role": _assume_admin_role,
        "assume-role-chain": _assume_role_chain, "trust-rewrite-admin-role": _trust_rewrite_admin_role,
        "modify-assumable-role": _modify_role(ROOT_TRUST),
        "modify-service-role": _modify_role(service_trust("ec2.amazonaws.com")),
        "modify-user": _modify_user, "boundary-self-user": _boundary_self_user,
        "boundary-assumable-role": _boundary_assumable_role, "deny-managed-self-user": _deny_self_user(False),
        "deny-inline-self-user": _deny_self_user(True), "glue-job-passrole": _glue_job_passrole,
        "launch-template-asg": _launch_template, "stackset-self-managed": _stackset,
    }
    if key in fixed:
        return fixed[key]
    factories: dict[str, Callable[[str], Callable[[SnapBuilder, list[str]], str]]] = {
        "creds": _creds, "passrole": _passrole, "takeover": _takeover, "service-role": _service_role,
        "ecs-override": lambda _arg: _ecs_override,
    }
    return factories[head](arg)


# ---------------------------------------------------------------- helpers


def escalations(t: dict[str, Any], perms: list[str]) -> tuple[str, list[Escalation]]:
    b = SnapBuilder()
    who = scenario(t["scenario"])(b, perms)
    return who, privesc(build_graph(b.build()), who)


def edges_used(e: Escalation) -> list[Any]:
    out = list(e.path.hops) + list(e.changes)
    for p in e.change_paths:
        out.extend(p.hops)
    return out


def _param(t: dict[str, Any]) -> Any:
    marks = []
    if t["coverage"]["status"] == "gap":
        marks.append(pytest.mark.xfail(strict=True, reason=t["coverage"]["reason"]))
    return pytest.param(t, id=f"{t['catalog']}:{t['id']}", marks=marks)


# ---------------------------------------------------------------- tests


def test_catalog_file_is_complete_and_consistent() -> None:
    iv = [t for t in TECHNIQUES if t["catalog"] == "iam-vulnerable"]
    pf = [t for t in TECHNIQUES if t["catalog"] == "pathfinding.cloud"]
    assert len(iv) == 31  # the README's list
    assert len(pf) >= 65  # the catalog's count when its README was written; it has grown since
    assert len({(t["catalog"], t["id"]) for t in TECHNIQUES}) == len(TECHNIQUES)
    rule_names = {r.name for r in RULES}
    kinds = {k.value for k in EdgeKind}
    for t in TECHNIQUES:
        assert t["permissions"], t["id"]
        assert set(t["optional"]) <= set(t["permissions"]), t["id"]
        scenario(t["scenario"])  # every scenario key resolves
        c = t["coverage"]
        if c["status"] == "covered":
            assert c["edge"] in kinds, t["id"]
            assert c["rule"] in rule_names, (t["id"], c["rule"])
        else:
            assert c["status"] == "gap" and c["reason"], t["id"]


@pytest.mark.parametrize("t", [_param(t) for t in TECHNIQUES])
def test_technique_is_reported(t: dict[str, Any]) -> None:
    who, found = escalations(t, t["permissions"])
    assert found, f"{t['id']}: no escalation for {who} with {t['permissions']}"
    kind = EdgeKind(t["coverage"]["edge"])
    used = [e for esc in found for e in edges_used(esc)]
    assert any(e.kind is kind for e in used), (t["id"], [e.kind for e in used])
    technique = t["coverage"].get("technique")
    if technique:
        assert any(e.kind is kind and e.reason.note == technique for e in used), (t["id"], technique)


def _removals() -> list[Any]:
    out = []
    for t in TECHNIQUES:
        if t["coverage"]["status"] != "covered":
            continue
        for p in t["permissions"]:
            if p not in t["optional"]:
                out.append(pytest.param(t, p, id=f"{t['catalog']}:{t['id']}-without-{p}"))
    return out


@pytest.mark.parametrize(("t", "missing"), _removals())
def test_removing_a_required_action_removes_the_escalation(t: dict[str, Any], missing: str) -> None:
    _who, found = escalations(t, [p for p in t["permissions"] if p != missing])
    assert not found, (t["id"], missing, [(e.kind, e.admin) for e in found])


def test_coverage_numbers_match_the_docs() -> None:
    """docs/graph.md states the per-catalog counts; they must follow the data."""
    doc = (Path(__file__).parents[2] / "docs" / "graph.md").read_text()
    for cat in ("iam-vulnerable", "pathfinding.cloud"):
        ts = [t for t in TECHNIQUES if t["catalog"] == cat]
        covered = sum(t["coverage"]["status"] == "covered" for t in ts)
        assert f"| {cat} | {len(ts)} | {covered} | {len(ts) - covered} |" in doc, cat


# ---------------------------------------------------------------- guardrails on the pass-role rules for existing compute


def _td(b: SnapBuilder, acct: str = A) -> None:
    weak = b.role("app", WEAK, trust_doc=service_trust("ecs-tasks.amazonaws.com"), acct=acct)
    b.compute(f"arn:aws:ecs:{REGION}:{acct}:task-definition/app:3", "ecs_task_definition", role=weak, acct=acct)


def _no_trust(b: SnapBuilder) -> str:
    """The admin role trusts Lambda, not ECS tasks: ECS cannot give its credentials to the task."""
    _td(b)
    r = b.role("admin", ADMIN, trust_doc=service_trust("lambda.amazonaws.com"))
    return _attacker(b, ["iam:PassRole", "ecs:RunTask"], {"iam:PassRole": r})


def _passed_to_other_service(b: SnapBuilder) -> str:
    """iam:PassedToService limits the pass to Lambda; ECS asks with ecs-tasks.amazonaws.com."""
    _td(b)
    r = b.role("admin", ADMIN, trust_doc=service_trust("ecs-tasks.amazonaws.com"))
    st = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": r,
          "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}}
    return b.user("attacker", {"Version": "2012-10-17", "Statement": [st]}, allow("ecs:RunTask"))


def _no_task_definition(b: SnapBuilder) -> str:
    """Without an existing task definition, RunTask alone has nothing to run (RegisterTaskDefinition is absent)."""
    r = b.role("admin", ADMIN, trust_doc=service_trust("ecs-tasks.amazonaws.com"))
    return _attacker(b, ["iam:PassRole", "ecs:RunTask"], {"iam:PassRole": r})


def _scp_denies_passrole(b: SnapBuilder) -> str:
    """An SCP Deny on iam:PassRole wins over the identity Allow."""
    b.scp(deny("iam:PassRole"), A)
    _td(b)
    r = b.role("admin", ADMIN, trust_doc=service_trust("ecs-tasks.amazonaws.com"))
    return _attacker(b, ["iam:PassRole", "ecs:RunTask"], {"iam:PassRole": r})


def _task_definition_elsewhere(b: SnapBuilder) -> str:
    """ECS and iam:PassRole are not cross-account: a task definition in B does not help A's caller."""
    _td(b, acct=B)
    b.role("admin", ADMIN, trust_doc=service_trust("ecs-tasks.amazonaws.com"), acct=B)
    return _attacker(b, ["iam:PassRole", "ecs:RunTask"], {})


def _glue_pass_other_role(b: SnapBuilder) -> str:
    """PassRole names only the job's current (weak) role, so UpdateJob cannot swap in the admin role."""
    weak = b.role("etl", WEAK, trust_doc=service_trust("glue.amazonaws.com"))
    b.compute(COMPUTE_ARNS["glue_job"], "glue_job", role=weak)
    b.role("admin", ADMIN, trust_doc=service_trust("glue.amazonaws.com"))
    return _attacker(b, ["iam:PassRole", "glue:UpdateJob", "glue:StartJobRun"], {"iam:PassRole": weak})


def _browser_wrong_trust(b: SnapBuilder) -> str:
    """The admin role trusts the Bedrock (agents) service, not bedrock-agentcore."""
    r = b.role("admin", ADMIN, trust_doc=service_trust("bedrock.amazonaws.com"))
    return _attacker(b, ["iam:PassRole", "bedrock-agentcore:CreateBrowser", "bedrock-agentcore:StartBrowserSession",
                         "bedrock-agentcore:ConnectBrowserAutomationStream"], {"iam:PassRole": r})


@pytest.mark.parametrize("setup", [_no_trust, _passed_to_other_service, _no_task_definition, _scp_denies_passrole,
                                   _task_definition_elsewhere, _glue_pass_other_role, _browser_wrong_trust],
                         ids=lambda f: f.__name__.strip("_"))
def test_extra_rules_respect_guardrails(setup: Callable[[SnapBuilder], str]) -> None:
    b = SnapBuilder()
    who = setup(b)
    assert privesc(build_graph(b.build()), who) == []


def test_start_task_override_records_its_assumption() -> None:
    """StartTask needs a container instance in the cluster; the snapshot cannot say there is one."""
    b = SnapBuilder()
    who = _ecs_override(b, ["iam:PassRole", "ecs:StartTask"])
    found = privesc(build_graph(b.build()), who)
    edges = [e for esc in found for e in edges_used(esc) if e.reason.note == "ecs-start-task-override"]
    assert edges and all(any("container instance" in a for a in e.assumptions) for e in edges)
    assert not any(esc.definite for esc in found)


# ---------------------------------------------------------------- AWS service rules (iamgraph.eval.service_rules)

SSO_PATH = "aws-reserved/sso.amazonaws.com/"
SLR_PATH = "aws-service-role/elasticbeanstalk.amazonaws.com/"


def _rewrite_managed_policy(aws_owned: bool) -> Callable[[SnapBuilder], str]:
    """CreatePolicyVersion + SetDefaultPolicyVersion on a policy attached to the attacker itself."""
    def setup(b: SnapBuilder) -> str:
        pol = b.managed("ReadOnlyish", WEAK, acct=None if aws_owned else A)
        perms = ["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"]
        return _attacker(b, perms, {p: pol for p in perms}, extra_managed=[pol])
    return setup


def _modify_then_assume(path: str) -> Callable[[SnapBuilder], str]:
    """A weak role the attacker may assume and may give a policy (PutRolePolicy / AttachRolePolicy)."""
    def setup(b: SnapBuilder) -> str:
        r = b.role(f"{path}Target", WEAK, trust_doc=ROOT_TRUST)
        perms = ["iam:PutRolePolicy", "iam:AttachRolePolicy", "sts:AssumeRole"]
        return _attacker(b, perms, {p: r for p in perms})
    return setup


def _rewrite_trust(path: str) -> Callable[[SnapBuilder], str]:
    """An administrator role trusting a service; the attacker may rewrite its trust and assume it."""
    def setup(b: SnapBuilder) -> str:
        r = b.role(f"{path}Admin", ADMIN, trust_doc=service_trust("ec2.amazonaws.com"))
        perms = ["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"]
        return _attacker(b, perms, {p: r for p in perms})
    return setup


SERVICE_RULE_PROBES = {
    # rule id -> (the probe AWS refuses, the same probe on a customer-owned target, which escalates)
    "aws-managed-policy-immutable": (_rewrite_managed_policy(True), _rewrite_managed_policy(False)),
    "identity-center-reserved-role/modify": (_modify_then_assume(SSO_PATH), _modify_then_assume("team/")),
    "identity-center-reserved-role/trust": (_rewrite_trust(SSO_PATH), _rewrite_trust("team/")),
    "service-linked-role-protected/modify": (_modify_then_assume(SLR_PATH), _modify_then_assume("team/")),
    "service-linked-role-protected/trust": (_rewrite_trust(SLR_PATH), _rewrite_trust("team/")),
}


@pytest.mark.parametrize("rule", sorted(SERVICE_RULE_PROBES))
def test_moves_aws_refuses_are_not_escalations(rule: str) -> None:
    refused, allowed = SERVICE_RULE_PROBES[rule]
    b = SnapBuilder()
    who = refused(b)
    assert privesc(build_graph(b.build()), who) == [], rule
    # The same move on a target the customer owns escalates, so the probe can fail.
    b = SnapBuilder()
    who = allowed(b)
    assert privesc(build_graph(b.build()), who), rule


# ---------------------------------------------------------------- attach limited by iam:PolicyARN


def _attach_named(kind: str, named_doc: dict[str, Any]) -> Callable[[SnapBuilder], str]:
    """Attach*Policy allowed only with ``iam:PolicyARN`` = one customer managed policy, attached nowhere."""
    action = {"user": "iam:AttachUserPolicy", "group": "iam:AttachGroupPolicy", "role": "iam:AttachRolePolicy"}[kind]

    def setup(b: SnapBuilder) -> str:
        named = b.managed("break-glass", named_doc)
        stmts: list[dict[str, Any]] = []
        groups = None
        if kind == "group":
            target = b.group("devs")
            groups = ["devs"]
        elif kind == "role":
            target = b.role("worker", WEAK, trust_doc=ROOT_TRUST)
            stmts.append({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target})
        else:
            target = USER
        stmts.append({"Effect": "Allow", "Action": action, "Resource": target,
                      "Condition": {"ArnEquals": {"iam:PolicyARN": named}}})
        return b.user("attacker", {"Version": "2012-10-17", "Statement": stmts}, groups=groups)
    return setup


@pytest.mark.parametrize("kind", ["user", "group", "role"])
def test_attach_limited_to_an_unattached_admin_policy_is_an_escalation(kind: str) -> None:
    b = SnapBuilder()
    who = _attach_named(kind, ADMIN)(b)
    found = privesc(build_graph(b.build()), who)
    assert found, kind
    used = [e for esc in found for e in edges_used(esc)]
    assert any(e.kind is EdgeKind.GRANT_PERMISSIONS and e.reason.note
               and f"arn:aws:iam::{A}:policy/break-glass" in e.reason.note for e in used), used
    # The same permission naming a weak policy gives nothing.
    b = SnapBuilder()
    who = _attach_named(kind, WEAK)(b)
    assert privesc(build_graph(b.build()), who) == [], kind


# ---------------------------------------------------- new group / new principal limited by iam:PolicyARN

_CREATE_AND_ATTACH = {
    # what the attacker creates -> (create, attach, use) actions, each on "*"
    "group": ("iam:CreateGroup", "iam:AttachGroupPolicy", "iam:AddUserToGroup"),
    "role": ("iam:CreateRole", "iam:AttachRolePolicy", None),
    "user": ("iam:CreateUser", "iam:AttachUserPolicy", "iam:CreateAccessKey"),
}


def _create_and_attach_named(kind: str, named_doc: dict[str, Any]) -> tuple[SnapBuilder, str]:
    """Create a group, role or user and attach to it only the customer managed policy ``break-glass``
    (``iam:PolicyARN``), attached nowhere; for a group, add oneself to it; for a user, make it an access key.
    A role trusts whom its creator writes into the trust policy (here the creator)."""
    b = SnapBuilder()
    named = b.managed("break-glass", named_doc)
    create, attach, use = _CREATE_AND_ATTACH[kind]
    stmts: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": create, "Resource": "*"},
        {"Effect": "Allow", "Action": attach, "Resource": "*", "Condition": {"ArnEquals": {"iam:PolicyARN": named}}},
    ]
    if use is not None:
        stmts.append({"Effect": "Allow", "Action": use, "Resource": "*"})
    who = b.user("attacker", {"Version": "2012-10-17", "Statement": stmts})
    return b, who


@pytest.mark.parametrize("kind", ["group", "role", "user"])
def test_create_then_attach_an_unattached_admin_policy_is_an_escalation(kind: str) -> None:
    """NewGroupRule and CreatePrincipalRule try the account's admin-equivalent customer managed policies as
    ``iam:PolicyARN`` when AdministratorAccess is not allowed, as the attach rules do
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_policyarn)."""
    b, who = _create_and_attach_named(kind, ADMIN)
    found = privesc(build_graph(b.build()), who)
    assert found, kind
    used = [e for esc in found for e in edges_used(esc)]
    wanted = EdgeKind.GRANT_PERMISSIONS if kind == "group" else EdgeKind.CREATE_PRINCIPAL
    assert any(e.kind is wanted and e.reason.note and f"attaches arn:aws:iam::{A}:policy/break-glass" in e.reason.note
               for e in used), used


@pytest.mark.parametrize("kind", ["group", "role", "user"])
def test_create_then_attach_a_weak_named_policy_is_no_escalation(kind: str) -> None:
    b, who = _create_and_attach_named(kind, WEAK)
    assert privesc(build_graph(b.build()), who) == [], kind


@pytest.mark.parametrize("kind", ["group", "role", "user"])
def test_create_then_attach_an_admin_policy_of_another_account_is_no_escalation(kind: str) -> None:
    """``iam:PolicyARN`` naming an admin-equivalent policy of another account: "customer managed policies are
    standalone policies that you manage in your own AWS account. You can then attach the policies to identities
    (users, groups, and roles) in your AWS account"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_create.html), so nothing is gained."""
    b = SnapBuilder()
    other = b.managed("break-glass", ADMIN, acct=B)
    create, attach, use = _CREATE_AND_ATTACH[kind]
    stmts: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": create, "Resource": "*"},
        {"Effect": "Allow", "Action": attach, "Resource": "*", "Condition": {"ArnEquals": {"iam:PolicyARN": other}}},
    ]
    if use is not None:
        stmts.append({"Effect": "Allow", "Action": use, "Resource": "*"})
    who = b.user("attacker", {"Version": "2012-10-17", "Statement": stmts})
    assert privesc(build_graph(b.build()), who) == [], kind
