"""Permission changes that take a Deny away, and the compute kinds added in snapshot 1.1.

Expectations follow AWS's evaluation logic (an explicit Deny in any applicable policy wins, so
removing the policy that holds it lets the other Allows apply; a managed policy attached both to a
user and to one of its groups still applies after it is detached from the user):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
Put*Policy "adds or updates" an inline policy, so writing one under an existing name replaces it:
https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPolicy.html
SetDefaultPolicyVersion makes an older version the one in effect (the current one stops applying):
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_managed-versioning.html
"""

from __future__ import annotations

from typing import Any

from graphsnap import A, B, SnapBuilder, allow, deny, service_trust, trust

from iamgraph.graph import EdgeKind, build_graph
from iamgraph.query.privesc import EscalationKind, privesc
from iamgraph.query.who_can import who_can

U = f"arn:aws:iam::{A}:user/"
R = f"arn:aws:iam::{A}:role/"
BUCKET = "arn:aws:s3:::data"
OBJ = BUCKET + "/report.csv"
REGION = "us-east-1"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _except(*actions: str) -> dict[str, Any]:
    """Allow everything but ``actions`` (so those come only from the policy under test)."""
    return _doc({"Effect": "Allow", "NotAction": list(actions), "Resource": "*"})


def _deny_except(*actions: str) -> dict[str, Any]:
    return _doc({"Effect": "Deny", "NotAction": list(actions), "Resource": "*"})


def _privesc(b: SnapBuilder, me: str) -> list[Any]:
    """privesc for one principal, checked against the all-principals walk (a different algorithm)."""
    graph = build_graph(b.build())
    one = privesc(graph, me)
    everyone = [e for e in privesc(graph) if e.principal == me]
    assert bool(one) == bool(everyone), (one, everyone)
    if one:
        assert {e.account for e in one} == {e.account for e in everyone}
    return one


def _kinds(escalations: list[Any]) -> set[EdgeKind]:
    return {c.kind for e in escalations for c in e.changes}


# ---------------------------------------------------------------- removing a Deny


def test_detaching_a_deny_also_attached_through_a_group_does_not_escalate() -> None:
    b = SnapBuilder()
    guard = b.managed("guardrail", _deny_except("iam:DetachUserPolicy"))
    b.group("restricted", managed=[guard])
    me = b.user("attacker", _except("iam:DetachUserPolicy"), allow("iam:DetachUserPolicy", U + "attacker"),
                managed=[guard], groups=["restricted"])
    assert _privesc(b, me) == []


def test_detaching_from_user_and_leaving_the_group_together_escalates() -> None:
    b = SnapBuilder()
    guard = b.managed("guardrail", _deny_except("iam:DetachUserPolicy", "iam:RemoveUserFromGroup"))
    g = b.group("restricted", managed=[guard])
    me = b.user("attacker", _except("iam:DetachUserPolicy", "iam:RemoveUserFromGroup"),
                _doc({"Effect": "Allow", "Action": "iam:DetachUserPolicy", "Resource": U + "attacker"},
                     {"Effect": "Allow", "Action": "iam:RemoveUserFromGroup", "Resource": g}),
                managed=[guard], groups=["restricted"])
    found = _privesc(b, me)
    assert found and found[0].kind is EscalationKind.CHANGE
    vias = {c.reason.via[0] for c in found[0].changes}
    assert vias == {"iam:DetachUserPolicy", "iam:RemoveUserFromGroup"}


def test_leaving_a_group_loses_its_allows_too() -> None:
    # The group gives both the admin Allow and a Deny: leaving it takes both away.
    b = SnapBuilder()
    g = b.group("ops", _doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}), deny("s3:*"))
    me = b.user("attacker", allow("iam:RemoveUserFromGroup", g), groups=["ops"])
    graph = build_graph(b.build())
    assert any(e.kind is EdgeKind.REMOVE_DENY for e in graph.edges())
    assert privesc(graph, me) == []


def test_overwriting_an_inline_deny_with_put_user_policy() -> None:
    b = SnapBuilder()
    me = b.user("attacker", _except("iam:PutUserPolicy"), _deny_except("iam:PutUserPolicy"),
                allow("iam:PutUserPolicy", U + "attacker"))
    found = _privesc(b, me)
    assert found and EdgeKind.REMOVE_DENY in _kinds(found)


def test_a_deny_the_caller_cannot_remove_still_blocks() -> None:
    # Detach is allowed only for another policy ARN (iam:PolicyARN condition): the guardrail stays.
    b = SnapBuilder()
    guard = b.managed("guardrail", _deny_except("iam:DetachUserPolicy"))
    me = b.user("attacker", _except("iam:DetachUserPolicy"),
                allow("iam:DetachUserPolicy", U + "attacker",
                      Condition={"ArnEquals": {"iam:PolicyARN": f"arn:aws:iam::{A}:policy/other"}}),
                managed=[guard])
    assert _privesc(b, me) == []


def test_rewriting_a_deny_policy_that_another_role_holds() -> None:
    b = SnapBuilder()
    guard = b.managed("guardrail", deny("*"))
    victim = b.role("ops", allow("*"), trust_doc=trust({"AWS": U + "attacker"}), managed=[guard])
    me = b.user("attacker", allow("iam:CreatePolicyVersion", guard), allow("sts:AssumeRole", victim))
    found = _privesc(b, me)
    assert found and found[0].admin == victim
    assert found[0].changes[0].reason.via == ("iam:CreatePolicyVersion",)


def test_set_default_version_replaces_the_current_one() -> None:
    # The current version denies S3 (and creating principals, another way out); the older one does
    # not. Restoring it lifts the Deny.
    b = SnapBuilder()
    pol = b.managed("mine", _doc({"Effect": "Allow", "Action": "*", "Resource": "*"},
                                 {"Effect": "Deny", "Action": ["s3:*", "iam:CreateRole", "iam:CreateUser"],
                                  "Resource": "*"}),
                    older=[allow("*")])
    me = b.user("attacker", allow("iam:SetDefaultPolicyVersion", pol), managed=[pol])
    found = _privesc(b, me)
    assert found and found[0].changes[0].reason.via == ("iam:SetDefaultPolicyVersion",)


def test_who_can_reports_a_principal_that_removes_its_own_deny() -> None:
    b = SnapBuilder()
    guard = b.managed("no-s3", deny("s3:*"))
    b.user("reader", allow("s3:GetObject"), allow("iam:DetachUserPolicy", U + "reader"), managed=[guard])
    b.user("stuck", allow("s3:GetObject"), managed=[guard])
    res = who_can(build_graph(b.build()), OBJ, action="s3:GetObject")
    by = {a.principal: a for a in res.accesses}
    assert U + "stuck" not in by
    assert by[U + "reader"].how.value == "escalation"
    assert by[U + "reader"].holder.changes[0].kind is EdgeKind.REMOVE_DENY


# ---------------------------------------------------------------- new compute kinds

LT = f"arn:aws:ec2:{REGION}:{A}:launch-template/lt-0123456789abcdef0"
ASG = f"arn:aws:autoscaling:{REGION}:{A}:autoScalingGroup:1:autoScalingGroupName/web"


def _template(b: SnapBuilder, version: str) -> str:
    prof = f"arn:aws:iam::{A}:instance-profile/web"
    r = b.role("web", allow("*"), trust_doc=service_trust("ec2.amazonaws.com"), profiles=[prof])
    b.compute(LT, "ec2_launch_template", profile=prof, default_version=2, latest_version=2,
              version_profiles={"2": prof}, autoscaling_groups=[{"name": "web", "arn": ASG, "version": version}])
    return r


def test_launch_template_waits_for_the_group_unless_the_caller_can_scale_it() -> None:
    b = SnapBuilder()
    _template(b, "$Latest")
    me = b.user("attacker", allow("ec2:CreateLaunchTemplateVersion", LT))
    found = _privesc(b, me)
    assert found and not found[0].definite
    assert any("next launches" in a for a in found[0].assumptions)
    b2 = SnapBuilder()
    _template(b2, "$Latest")
    me2 = b2.user("attacker", allow(["ec2:CreateLaunchTemplateVersion"], LT),
                  allow("autoscaling:StartInstanceRefresh", ASG))
    found2 = _privesc(b2, me2)
    assert found2 and found2[0].definite


def test_launch_template_default_version_needs_modify() -> None:
    b = SnapBuilder()
    _template(b, "$Default")
    me = b.user("attacker", allow("ec2:CreateLaunchTemplateVersion", LT))
    assert _privesc(b, me) == []


def test_launch_template_without_a_group_is_not_an_edge() -> None:
    b = SnapBuilder()
    prof = f"arn:aws:iam::{A}:instance-profile/web"
    b.role("web", allow("*"), trust_doc=service_trust("ec2.amazonaws.com"), profiles=[prof])
    b.compute(LT, "ec2_launch_template", profile=prof, default_version=1, latest_version=1, autoscaling_groups=[])
    me = b.user("attacker", allow(["ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate"], LT))
    assert _privesc(b, me) == []


STACKSET = f"arn:aws:cloudformation:{REGION}:{A}:stackset/ops:0123"


def test_service_managed_stackset_reaches_the_exec_role_in_each_target_account() -> None:
    b = SnapBuilder()
    b.role("stacksets-exec-0123456789abcdef", allow("*"), acct=B,
           trust_doc=trust({"AWS": f"arn:aws:iam::{A}:root"}))
    b.compute(STACKSET, "cloudformation_stackset", permission_model="SERVICE_MANAGED", instance_accounts=[B])
    me = b.user("attacker", allow("cloudformation:UpdateStackSet", STACKSET))
    found = _privesc(b, me)
    assert found and found[0].account == B
    assert found[0].path.hops[0].reason.via == ("cloudformation:UpdateStackSet",)  # no role passed


def test_self_managed_stackset_needs_the_admin_role_to_reach_the_execution_role() -> None:
    def build(exec_trusts: str) -> list[Any]:
        b = SnapBuilder()
        admin = b.role("AWSCloudFormationStackSetAdministrationRole", allow("sts:AssumeRole"),
                       trust_doc=service_trust("cloudformation.amazonaws.com"))
        b.role("AWSCloudFormationStackSetExecutionRole", allow("*"), acct=B, trust_doc=trust({"AWS": exec_trusts}))
        b.compute(STACKSET, "cloudformation_stackset", role=admin, permission_model="SELF_MANAGED",
                  instance_accounts=[B])
        me = b.user("attacker", allow("cloudformation:UpdateStackSet", STACKSET),
                    allow("iam:PassRole", admin, Condition={"StringEquals": {
                        "iam:PassedToService": "cloudformation.amazonaws.com"}}))
        return _privesc(b, me)
    assert build(f"arn:aws:iam::{A}:root")
    assert build("arn:aws:iam::999999999999:root") == []  # the execution role does not trust the admin account


def test_sagemaker_notebook_without_presigned_url_assumes_console_access() -> None:
    def build(*extra: dict[str, Any]) -> list[Any]:
        b = SnapBuilder()
        r = b.role("nb", allow("*"), trust_doc=service_trust("sagemaker.amazonaws.com"))
        me = b.user("attacker", allow("sagemaker:CreateNotebookInstance"), allow("iam:PassRole", r), *extra)
        return _privesc(b, me)
    plain = build()
    assert plain and not plain[0].definite and any("console" in a for a in plain[0].assumptions)
    with_url = build(allow("sagemaker:CreatePresignedNotebookInstanceUrl"))
    assert with_url and with_url[0].definite
    with_lifecycle = build(allow("sagemaker:CreateNotebookInstanceLifecycleConfig"))
    assert with_lifecycle and with_lifecycle[0].definite
    assert "sagemaker:CreateNotebookInstanceLifecycleConfig" in with_lifecycle[0].path.hops[0].reason.via


# ---------------------------------------------------------------- ECS services


def _ecs(passed_to: str) -> tuple[SnapBuilder, str, str]:
    b = SnapBuilder()
    task = b.role("orders-task", allow("*"), trust_doc=service_trust("ecs-tasks.amazonaws.com"))
    lb = b.role("ecs-lb", allow("elasticloadbalancing:Describe*"), trust_doc=service_trust("ecs.amazonaws.com"))
    td = b.compute(f"arn:aws:ecs:{REGION}:{A}:task-definition/orders:7", "ecs_task_definition", role=task)
    svc = b.compute(f"arn:aws:ecs:{REGION}:{A}:service/prod/orders", "ecs_service", role=lb, task_definition=td)
    me = b.user("attacker", allow(["ecs:UpdateService"], svc), allow("ecs:RegisterTaskDefinition"),
                allow("iam:PassRole", task, Condition={"StringEquals": {"iam:PassedToService": passed_to}}))
    return b, me, task


def test_ecs_update_service_runs_as_the_task_definition_role() -> None:
    # A service's roleArn is its load balancer role; its tasks run as the task definition's task role:
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
    b, me, task = _ecs("ecs-tasks.amazonaws.com")
    graph = build_graph(b.build())
    hops = [e for e in graph.edges() if e.kind is EdgeKind.TAKEOVER_COMPUTE and e.source == me]
    assert {e.target for e in hops} == {task}
    assert hops[0].reason.via == ("ecs:UpdateService", "ecs:RegisterTaskDefinition", "iam:PassRole")
    assert _privesc(b, me)


def test_ecs_update_service_needs_pass_role_to_ecs_tasks() -> None:
    b, me, _task = _ecs("lambda.amazonaws.com")
    assert _privesc(b, me) == []


# ---------------------------------------------------------------- the admin shortcut and targeted Denies


def _guarded(tag_scp: bool) -> tuple[SnapBuilder, dict[str, str]]:
    """Two admins; an SCP keeps everyone but ``security`` away from the break-glass role (and from
    ``security`` itself), a bucket policy keeps everyone but ``security`` from rewriting it, and
    optionally a tag-keyed SCP guards ``tagged``."""
    b = SnapBuilder()
    sec = R + "security"
    glass = R + "break-glass"
    b.scp(_doc({"Effect": "Deny", "Action": ["iam:*", "sts:AssumeRole"], "Resource": [glass, sec],
                "Condition": {"ArnNotLike": {"aws:PrincipalArn": sec}}}), A)
    if tag_scp:
        b.scp(_doc({"Effect": "Deny", "Action": "iam:*", "Resource": "*",
                    "Condition": {"StringEquals": {"aws:ResourceTag/tier": "protected"}}}), A)
    ops = b.user("ops-admin", allow("*"))
    b.role("security", allow("*"), trust_doc=trust({"AWS": f"arn:aws:iam::{A}:root"}))
    b.role("break-glass", allow("*"), trust_doc=trust({"AWS": f"arn:aws:iam::{A}:root"}))
    tagged = b.role("tagged", allow("s3:*"), trust_doc=service_trust("ec2.amazonaws.com"), tags={"tier": "protected"})
    plain = b.role("plain", allow("s3:*"), trust_doc=service_trust("ec2.amazonaws.com"))
    bucket = b.resource(BUCKET, "s3:bucket", _doc(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutBucketPolicy", "Resource": BUCKET,
         "Condition": {"ArnNotEquals": {"aws:PrincipalArn": sec}}}))
    return b, {"ops": ops, "sec": sec, "glass": glass, "tagged": tagged, "plain": plain, "bucket": bucket}


def test_admin_shortcut_respects_denies_that_name_a_target() -> None:
    # An SCP Deny on one role's ARN, a tag condition and a bucket policy Deny all apply to some
    # targets only; an admin passing the probe on "*" must not be drawn to them.
    import networkx as nx

    for tag_scp in (False, True):
        b, n = _guarded(tag_scp)
        for shortcut in (True, False):
            g = build_graph(b.build(), admin_shortcut=shortcut)
            why = (tag_scp, shortcut)
            assert not nx.has_path(g.acts, n["ops"], n["glass"]), why
            assert nx.has_path(g.acts, n["ops"], n["tagged"]) is not tag_scp, why
            assert nx.has_path(g.acts, n["ops"], n["plain"]), why
            assert nx.has_path(g.acts, n["sec"], n["glass"]), why
            takers = {e.source for e in g.edges((EdgeKind.RESOURCE_POLICY_TAKEOVER,)) if e.target == n["bucket"]}
            assert n["ops"] not in takers and f"admin:{A}" not in takers, why
            assert n["sec"] in takers, why
        short = build_graph(b.build())
        if not tag_scp:
            # Without the tag condition both admins are definite: the shortcut is in use, and the
            # Denied targets are left out of it.
            assert {n["ops"], n["sec"]} <= set(short.ctx.definite_admins)
            assert {n["glass"], n["sec"], n["bucket"]} <= short.ctx.protected(A)
            assert n["plain"] not in short.ctx.protected(A)
            assert short.acts.has_edge(f"admin:{A}", n["plain"]) and not short.acts.has_edge(f"admin:{A}", n["glass"])
        else:
            # A Deny that depends on the tags of an unnamed resource leaves the probe on "*" conditional.
            assert not short.ctx.definite_admins


# ---------------------------------------------------------------- adding another user to a group
# iam:AddUserToGroup has only the group as its resource: the caller may add any user of the account
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html).


def _joiner(with_key: bool) -> tuple[SnapBuilder, str, str]:
    b = SnapBuilder()
    g = b.group("admins", allow("*"))
    svc = b.user("svc-report", allow("s3:ListAllMyBuckets"))
    bot_docs = [allow("iam:AddUserToGroup", g)]
    if with_key:
        bot_docs.append(allow("iam:CreateAccessKey", svc))
    # A role (not a user: a user controlling the bot could add itself) that can act as the bot.
    bot = b.role("ops-bot", *bot_docs, trust_doc=trust({"AWS": R + "intern"}))
    b.role("intern", allow("sts:AssumeRole", bot), trust_doc=service_trust("ec2.amazonaws.com"))
    return b, bot, svc


def test_a_role_adds_a_user_it_controls_to_the_admin_group() -> None:
    b, bot, svc = _joiner(True)
    found = _privesc(b, bot)
    assert found and found[0].kind is EscalationKind.CHANGE and found[0].admin == svc
    assert found[0].changes[0].kind is EdgeKind.JOIN_GROUP and found[0].changes[0].source == bot
    assert found[0].path.nodes == (bot, svc)  # CreateAccessKey, then the key acts as the new member
    assert _privesc(b, R + "intern")  # whoever can act as the role too


def test_adding_to_a_group_needs_a_user_to_add() -> None:
    b, bot, _svc = _joiner(False)
    assert _privesc(b, bot) == []
    assert _privesc(b, R + "intern") == []


def test_who_can_counts_users_a_controller_can_add_to_a_group() -> None:
    b = SnapBuilder()
    g = b.group("readers", allow("s3:GetObject", BUCKET + "/*"))
    svc = b.user("svc-report")
    bot = b.role("ops-bot", allow("iam:AddUserToGroup", g), allow("iam:CreateAccessKey", svc),
                 trust_doc=service_trust("lambda.amazonaws.com"))
    other = b.role("ops-other", allow("iam:AddUserToGroup", g), trust_doc=service_trust("lambda.amazonaws.com"))
    res = who_can(build_graph(b.build()), OBJ, action="s3:GetObject")
    by = {a.principal: a for a in res.accesses}
    assert by[bot].how.value == "escalation" and by[bot].holder.principal == svc
    assert other not in by  # it can add a user to the group, but controls none
    assert svc not in by  # the user cannot add itself


def test_a_user_acting_as_the_role_has_the_role_add_it() -> None:
    b = SnapBuilder()
    g = b.group("admins", allow("*"))
    bot = b.role("ops-bot", allow("iam:AddUserToGroup", g), trust_doc=trust({"AWS": U + "intern"}))
    me = b.user("intern", allow("sts:AssumeRole", bot))
    found = _privesc(b, me)
    assert found and found[0].admin == me and found[0].changes[0].source == bot
    assert found[0].change_paths[0].nodes == (me, bot)


# ---------------------------------------------------------------- creating a principal
# A new role or user has no permissions boundary unless its creator sets one
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html); a policy that
# requires iam:PermissionsBoundary on CreateRole/CreateUser stops the creator from leaving it off.

NEW = f"new-principal:{A}"


def _creator(*docs: dict[str, Any]) -> tuple[SnapBuilder, str]:
    b = SnapBuilder()
    b.user("bystander", allow("s3:ListAllMyBuckets"))
    return b, b.user("attacker", *docs)


def test_create_role_attach_admin_and_assume_it() -> None:
    b, me = _creator(allow(["iam:CreateRole", "iam:AttachRolePolicy"], R + "app-*"))
    found = _privesc(b, me)
    assert found and found[0].admin == NEW and found[0].definite
    hop = found[0].path.hops[0]
    assert hop.kind is EdgeKind.CREATE_PRINCIPAL
    assert hop.reason.via == ("iam:CreateRole", "iam:AttachRolePolicy", "sts:AssumeRole")
    assert hop.reason.target is not None and hop.reason.target.startswith(R + "app-")


def test_create_user_put_policy_and_create_key() -> None:
    b, me = _creator(allow(["iam:CreateUser", "iam:PutUserPolicy", "iam:CreateAccessKey"], U + "svc-*"))
    found = _privesc(b, me)
    assert found and found[0].path.hops[0].reason.via == ("iam:CreateUser", "iam:PutUserPolicy",
                                                          "iam:CreateAccessKey")


def test_creating_needs_every_step() -> None:
    for docs in (
        [allow("iam:CreateRole")],  # no way to give it a policy
        [allow(["iam:CreateUser", "iam:AttachUserPolicy"], U + "svc-*")],  # no way to use it
        [allow(["iam:CreateRole", "iam:AttachRolePolicy"], R + "app-*"),
         deny("sts:AssumeRole")],  # cannot assume it
        [allow("iam:CreateRole", R + "app-*"), allow("iam:AttachRolePolicy", R + "other-*")],  # not the same role
    ):
        b, me = _creator(*docs)
        assert _privesc(b, me) == [], docs


def test_a_required_boundary_stops_it() -> None:
    must = {"StringEquals": {"iam:PermissionsBoundary": f"arn:aws:iam::{A}:policy/dev-boundary"}}
    b, me = _creator(allow("iam:CreateRole", R + "*", Condition=must), allow("iam:AttachRolePolicy", R + "*"))
    assert _privesc(b, me) == []


def test_attach_limited_to_one_policy_is_not_admin() -> None:
    only = {"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/ReadOnlyAccess"}}
    b, me = _creator(allow("iam:CreateRole"), allow("iam:AttachRolePolicy", "*", Condition=only))
    assert _privesc(b, me) == []


def test_scp_denying_admin_probe_makes_the_new_principal_not_admin() -> None:
    b, me = _creator(allow(["iam:CreateRole", "iam:AttachRolePolicy"], R + "*"))
    b.scp(deny("organizations:*"), A)
    graph = build_graph(b.build())
    assert any(e.kind is EdgeKind.CREATE_PRINCIPAL for e in graph.edges())
    assert _privesc(b, me) == []


def test_who_can_lists_whoever_can_create_a_principal_that_reads_it() -> None:
    b, me = _creator(allow(["iam:CreateRole", "iam:PutRolePolicy"], R + "etl-*"))
    b.resource(BUCKET, "s3:bucket", None)  # account A's bucket, no bucket policy
    other = b.user("creator-in-b", allow(["iam:CreateRole", "iam:PutRolePolicy"], f"arn:aws:iam::{B}:role/*"),
                   acct=B)
    res = who_can(build_graph(b.build()), OBJ, action="s3:GetObject")
    by = {a.principal: a for a in res.accesses}
    assert by[me].path.nodes == (me, NEW) and by[me].definite
    assert other not in by  # account B: no bucket policy lets B's principals in
    assert any(e.source == other for e in build_graph(b.build()).edges((EdgeKind.CREATE_PRINCIPAL,)))
    assert U + "bystander" not in by


def test_new_principals_of_two_accounts_are_told_apart_when_a_policy_reads_the_account() -> None:
    # Same OU and SCPs, but the bucket policy lets only account B's principals in.
    from graphsnap import MGMT

    from iamgraph.snapshot.model import Account

    b = SnapBuilder()
    b.accounts[MGMT] = Account(account_id=MGMT, regions=["us-east-1"])
    bucket = "arn:aws:s3:::mgmt-reports"
    b.resource(bucket, "s3:bucket", _doc({
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": bucket + "/*",
        "Condition": {"StringEquals": {"aws:PrincipalAccount": B}}}), acct=MGMT)
    in_a = b.user("creator-a", allow(["iam:CreateRole", "iam:PutRolePolicy"], f"arn:aws:iam::{A}:role/x-*"))
    in_b = b.user("creator-b", allow(["iam:CreateRole", "iam:PutRolePolicy"], f"arn:aws:iam::{B}:role/x-*"),
                  acct=B)
    res = who_can(build_graph(b.build()), bucket + "/q3.csv", action="s3:GetObject")
    assert in_b in res.principals() and in_a not in res.principals()


# ---------------------------------------------------------------- who-can on a bucket with an object action


def test_object_action_on_a_bucket_arn_is_asked_about_its_objects() -> None:
    # s3:GetObject's resource type is the object (Service Authorization Reference, Amazon S3), so a
    # statement naming bucket/* never matches the bucket's own ARN.
    b = SnapBuilder()
    b.resource(BUCKET, "s3:bucket", None)
    reader = b.user("reader", allow("s3:GetObject", BUCKET + "/*"))
    lister = b.user("lister", allow("s3:ListBucket", BUCKET))
    narrow = b.user("narrow", allow("s3:GetObject", BUCKET + "/reports/*"))
    g = build_graph(b.build())
    res = who_can(g, BUCKET, action="s3:GetObject")
    by = {a.principal: a for a in res.accesses}
    assert set(by) == {reader, narrow}
    assert by[reader].resource == BUCKET + "/*"
    assert by[narrow].resource == BUCKET + "/reports/x"  # one key under the narrower pattern it may read
    assert any("acts on objects" in n for n in res.notes)
    listing = who_can(g, BUCKET, action="s3:ListBucket")
    assert listing.principals() == {lister} and not any("acts on objects" in n for n in listing.notes)


def test_a_required_boundary_caps_the_new_principal() -> None:
    # Creating is allowed only with a named boundary; the new role is admin only if that boundary allows it all.
    for boundary_doc, admin in ((allow("s3:*"), False), (allow("*"), True)):
        b, me = _creator()
        bnd = b.managed("dev-boundary", boundary_doc)
        must = {"StringEquals": {"iam:PermissionsBoundary": bnd}}
        b.accounts[A].users[-1].inline_policies = b._inline(
            [allow("iam:CreateRole", R + "*", Condition=must), allow("iam:AttachRolePolicy", R + "*")])
        graph = build_graph(b.build())
        created = [e for e in graph.edges((EdgeKind.CREATE_PRINCIPAL,)) if e.source == me]
        assert [e.target for e in created] == [f"{NEW}:{bnd}"]
        assert bool(_privesc(b, me)) is admin, boundary_doc


def test_a_required_boundary_the_creator_can_delete_does_not_cap() -> None:
    b, me = _creator()
    bnd = b.managed("dev-boundary", allow("s3:*"))
    must = {"StringEquals": {"iam:PermissionsBoundary": bnd}}
    b.accounts[A].users[-1].inline_policies = b._inline(
        [allow("iam:CreateRole", R + "*", Condition=must),
         allow(["iam:AttachRolePolicy", "iam:DeleteRolePermissionsBoundary"], R + "*")])
    found = _privesc(b, me)
    assert found and found[0].admin == NEW
    assert found[0].path.hops[0].reason.via[:2] == ("iam:CreateRole", "iam:DeleteRolePermissionsBoundary")


def test_a_new_template_version_may_name_any_role_ec2_can_assume() -> None:
    # EC2 cannot restrict what a launch template version names, and the Auto Scaling service-linked
    # role may pass any role to EC2 (AutoScalingServiceRolePolicy: iam:PassRole, ec2.amazonaws.com*).
    def build(version: str, *extra: dict[str, Any]) -> tuple[SnapBuilder, str, str]:
        b = SnapBuilder()
        weak = f"arn:aws:iam::{A}:instance-profile/web"
        b.role("web", allow("s3:ListAllMyBuckets"), trust_doc=service_trust("ec2.amazonaws.com"), profiles=[weak])
        other = b.role("ops-admin", allow("*"), trust_doc=service_trust("ec2.amazonaws.com"),
                       profiles=[f"arn:aws:iam::{A}:instance-profile/ops"])
        b.role("lambda-admin", allow("*"), trust_doc=service_trust("lambda.amazonaws.com"),
               profiles=[f"arn:aws:iam::{A}:instance-profile/odd"])
        b.compute(LT, "ec2_launch_template", profile=weak, default_version=1, latest_version=1,
                  version_profiles={"1": weak}, autoscaling_groups=[{"name": "web", "arn": ASG, "version": version}])
        me = b.user("attacker", allow("ec2:CreateLaunchTemplateVersion", LT), *extra)
        return b, me, other

    b, me, other = build("$Latest")
    found = _privesc(b, me)
    assert found and found[0].admin == other
    assert found[0].path.hops[0].reason.note == "launch-template-other-profile"
    graph = build_graph(b.build())
    targets = {e.target for e in graph.edges((EdgeKind.TAKEOVER_COMPUTE,)) if e.source == me}
    assert targets == {R + "web", other}  # not the role EC2 may not assume
    # Pinned to a version number: the caller points the group at it, and its own PassRole is checked.
    pinned = [allow(["autoscaling:UpdateAutoScalingGroup", "ec2:RunInstances"])]
    b2, me2, _ = build("1", *pinned)
    assert _privesc(b2, me2) == []
    b3, me3, other3 = build("1", *pinned, allow("iam:PassRole", R + "ops-admin"))
    found3 = _privesc(b3, me3)
    assert found3 and found3[0].admin == other3


# ---------------------------------------------------------------- a conditional path and a longer definite one


def test_privesc_reports_a_longer_definite_path_beside_a_shorter_conditional_one() -> None:
    b = SnapBuilder()
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    # Trusting the account (not naming the user): the caller's identity policy decides, with its condition.
    root = trust({"AWS": f"arn:aws:iam::{A}:root"})
    admin = b.role("admin", allow("*"), trust_doc=root)
    hop = b.role("hop", allow("sts:AssumeRole", admin), trust_doc=root)
    me = b.user("dev", allow("sts:AssumeRole", admin, Condition=mfa), allow("sts:AssumeRole", hop))
    found = _privesc(b, me)
    assert found and found[0].path.nodes[:2] == (me, admin) and not found[0].definite
    alt = found[0].definite_path
    assert alt is not None and alt.definite and alt.nodes[:3] == (me, hop, admin)
    everyone = [e for e in privesc(build_graph(b.build())) if e.principal == me]
    assert everyone[0].definite_path is not None and everyone[0].definite_path.nodes[:3] == (me, hop, admin)


def test_privesc_prefers_a_definite_path_of_the_same_length() -> None:
    b = SnapBuilder()
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    root = trust({"AWS": f"arn:aws:iam::{A}:root"})
    a1 = b.role("admin-mfa", allow("*"), trust_doc=root)
    a2 = b.role("admin-plain", allow("*"), trust_doc=root)
    me = b.user("dev", allow("sts:AssumeRole", a1, Condition=mfa), allow("sts:AssumeRole", a2))
    for e in (_privesc(b, me)[0], next(x for x in privesc(build_graph(b.build())) if x.principal == me)):
        assert e.definite and e.admin == a2 and e.definite_path is None


def test_who_can_prefers_a_longer_path_that_needs_no_condition() -> None:
    b = SnapBuilder()
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    root = trust({"AWS": f"arn:aws:iam::{A}:root"})
    reader = b.role("reader", allow("s3:GetObject", BUCKET + "/*"), trust_doc=root)
    hop = b.role("hop", allow("sts:AssumeRole", reader), trust_doc=root)
    me = b.user("dev", allow("sts:AssumeRole", reader, Condition=mfa), allow("sts:AssumeRole", hop))
    res = who_can(build_graph(b.build()), OBJ, action="s3:GetObject")
    mine = next(a for a in res.accesses if a.principal == me)
    assert mine.definite and mine.path.nodes == (me, hop, reader)


def test_object_keys_named_only_by_the_bucket_policy_are_asked_too() -> None:
    b = SnapBuilder()
    partner = b.role("partner", allow("s3:GetObject", "*"), acct=B, trust_doc=service_trust("ec2.amazonaws.com"))
    b.resource(BUCKET, "s3:bucket", _doc({"Effect": "Allow", "Principal": {"AWS": partner},
                                          "Action": "s3:GetObject", "Resource": BUCKET + "/shared/*"}))
    res = who_can(build_graph(b.build()), BUCKET, action="s3:GetObject")
    by = {a.principal: a for a in res.accesses}
    assert by[partner].resource == BUCKET + "/shared/x"


def test_a_stacksets_delegated_administrator_updates_the_management_accounts_stacksets() -> None:
    # Service-managed StackSets live in the management account; a delegated administrator manages
    # them with CallAs=DELEGATED_ADMIN (CloudFormation API reference, UpdateStackSet).
    from graphsnap import MGMT

    from iamgraph.snapshot.model import Account, DelegatedAdministrator

    b = SnapBuilder()
    b.accounts[MGMT] = Account(account_id=MGMT, regions=["us-east-1"])
    exec_role = b.role("stacksets-exec-0123456789abcdef", allow("*"), trust_doc=trust({"AWS": f"arn:aws:iam::{MGMT}:root"}))
    ss = f"arn:aws:cloudformation:{REGION}:{MGMT}:stackset/org-baseline:0123"
    b.compute(ss, "cloudformation_stackset", acct=MGMT, permission_model="SERVICE_MANAGED", instance_accounts=[A])
    ops = b.user("stackset-operator", allow("cloudformation:UpdateStackSet", "arn:aws:cloudformation:*:*:stackset/*"),
                 acct=B)
    snap = b.build()
    assert snap.organization is not None
    plain = [e for e in build_graph(snap).edges((EdgeKind.TAKEOVER_COMPUTE,)) if e.source == ops]
    assert plain == []  # not a delegated administrator: its account cannot call as one
    snap.organization.delegated_administrators.append(
        DelegatedAdministrator(account_id=B, service_principal="member.org.stacksets.cloudformation.amazonaws.com"))
    hops = [e for e in build_graph(snap).edges((EdgeKind.TAKEOVER_COMPUTE,)) if e.source == ops]
    assert [(e.target, e.reason.target) for e in hops] == [(exec_role, ss)]
    assert hops[0].assumptions and "DELEGATED_ADMIN" in hops[0].assumptions[0]


def test_creating_a_group_with_any_policy_and_joining_it() -> None:
    b, me = _creator(allow(["iam:CreateGroup", "iam:PutGroupPolicy", "iam:AddUserToGroup"], f"arn:aws:iam::{A}:group/ops-*"))
    found = _privesc(b, me)
    assert found and found[0].kind is EscalationKind.CHANGE
    assert found[0].changes[0].reason.via == ("iam:CreateGroup", "iam:PutGroupPolicy", "iam:AddUserToGroup")
    for docs in ([allow(["iam:CreateGroup", "iam:PutGroupPolicy"], "*")],  # cannot add anyone
                 [allow(["iam:CreateGroup", "iam:AddUserToGroup"], "*")],  # cannot give it a policy
                 [allow("iam:CreateGroup", f"arn:aws:iam::{A}:group/a-*"),
                  allow(["iam:PutGroupPolicy", "iam:AddUserToGroup"], f"arn:aws:iam::{A}:group/b-*")]):  # not one group
        b2, me2 = _creator(*docs)
        assert _privesc(b2, me2) == [], docs
