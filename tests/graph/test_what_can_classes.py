"""``what_can`` asks the engine once per class of actions the engine cannot tell apart
(``iamgraph.eval.compiled.action_classes``); its answers must equal asking for every action
(``exhaustive=True``), compared as the set of (service, access level, action, resource, via, conditional).

The snapshots are generated (seeded) from pools chosen so that each thing the engine reads of an action can
split a service: statements matching part of a service (``s3:Get*``, ``iam:?etRole``), a Deny, a boundary and
an SCP with NotAction, an RCP (RCPs govern some services and not others, and not ``kms:RetireGrant``:
https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html), a condition on
``iam:ResourceTag/*`` (a key only some IAM actions carry), service rules (AWS refuses changes to service-linked
roles and to ``alias/aws/`` aliases whatever the policies say), a KMS key with a grant, and ``sts:`` actions (a
role's trust policy applies). https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from graphsnap import A, SnapBuilder, allow

from iamgraph.graph import build_graph
from iamgraph.query.what_can import Permission, what_can
from iamgraph.snapshot.model import OrgPolicy, Snapshot

KEY = f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BUCKET = "arn:aws:s3:::team-data"
SLR = f"arn:aws:iam::{A}:role/aws-service-role/*"
ALIASES = f"arn:aws:kms:us-east-1:{A}:alias/aws/*"
QUEUE = f"arn:aws:sqs:us-east-1:{A}:jobs"

ACTIONS = ["iam:*", "iam:?etRole", "iam:Create*", "kms:*", "kms:Create*", "s3:Get*", "s3:*Object*", "sts:*",
           "sqs:*", "sqs:Send*", "dynamodb:Get*", "secretsmanager:*"]
TARGET = f"arn:aws:iam::{A}:role/target"
RESOURCES = ["*", f"{BUCKET}/*", BUCKET, SLR, ALIASES, KEY, QUEUE, f"arn:aws:iam::{A}:role/*",
             f"arn:aws:iam::{A}:user/*", TARGET, TARGET]
CONDITIONS: list[dict[str, Any] | None] = [
    None, None,
    {"StringEquals": {"iam:ResourceTag/team": "blue"}},
    {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
    {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
]


def _statement(rng: random.Random, effect: str = "Allow") -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": effect, "Action": rng.sample(ACTIONS, rng.randint(1, 2)),
                          "Resource": rng.sample(RESOURCES, rng.randint(1, 2))}
    cond = rng.choice(CONDITIONS)
    if cond is not None:
        st["Condition"] = cond
    return st


def _snapshot(seed: int) -> Snapshot:
    rng = random.Random(seed)
    b = SnapBuilder()
    doc = {"Version": "2012-10-17", "Statement": [_statement(rng) for _ in range(3)]}
    doc["Statement"].append(_statement(rng, "Deny"))
    boundary = b.managed("edge", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "NotAction": ["secretsmanager:*", "sqs:Delete*"], "Resource": "*"}]})
    b.role("worker", doc, allow(["sts:AssumeRole", "sts:TagSession"], f"arn:aws:iam::{A}:role/target"),
           tags={"team": "blue"})
    b.role("target", {"Version": "2012-10-17", "Statement": [_statement(rng), _statement(rng)]}, boundary=boundary,
           tags={"team": "blue"},
           trust_doc={"Version": "2012-10-17", "Statement": [
               {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:role/worker"}, "Action": "sts:AssumeRole"}]})
    b.user("dev", {"Version": "2012-10-17", "Statement": [_statement(rng), _statement(rng)]}, tags={"team": "red"})
    b.resource(BUCKET, "s3:bucket", allow("s3:GetObject", f"{BUCKET}/*", Principal={"AWS": f"arn:aws:iam::{A}:root"}))
    b.resource(KEY, "kms:key", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}]},
        grants=[{"GrantId": "g1", "GranteePrincipal": f"arn:aws:iam::{A}:user/dev",
                 "Operations": ["Decrypt", "RetireGrant"]}])
    b.resource(QUEUE, "sqs:queue")
    b.scp({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "NotAction": ["iam:*", "s3:*", "kms:*", "sts:*", "sqs:*"], "Resource": "*"}]}, A)
    b.org_policies.append(OrgPolicy(
        id="p-rcp1", name="rcp1", type="RESOURCE_CONTROL_POLICY", targets=[A], document={
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
                 "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalTag/team": "blue"}}}]}))
    return b.build()


def _answer(perms: list[Permission]) -> set[tuple[str, str, str, str, str, bool]]:
    return {(p.service, p.access_level, a, p.resource, p.via, p.conditional) for p in perms for a in p.actions}


@pytest.mark.parametrize("seed", range(6))
def test_classes_give_the_answers_of_asking_every_action(seed: int) -> None:
    snap = _snapshot(seed)
    by_class, every = build_graph(snap), build_graph(snap)
    for principal in ("worker", "target", "dev"):
        arn = next(p.arn for a in snap.accounts for p in (*a.users, *a.roles) if p.name == principal)
        assert _answer(what_can(by_class, arn)) == _answer(what_can(every, arn, exhaustive=True)), principal
    # The classes saved questions (else this compares the method with itself).
    assert by_class.ctx.stats.engine_calls < every.ctx.stats.engine_calls


def test_a_service_rule_splits_a_service() -> None:
    """AWS refuses iam:AttachRolePolicy on a service-linked role whatever the policies say
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html); reading it stays possible."""
    b = SnapBuilder()
    arn = b.user("ops", allow("iam:*", SLR))
    perms = _answer(what_can(build_graph(b.build()), arn))
    actions = {a for _, _, a, res, _, _ in perms if res == SLR}
    assert "iam:GetRole" in actions
    assert "iam:AttachRolePolicy" not in actions and "iam:DeleteRole" not in actions


def test_rcp_splits_services_it_governs_from_those_it_does_not() -> None:
    """An RCP denying everything binds s3 (which RCPs govern) and not iam (which they do not)."""
    b = SnapBuilder()
    arn = b.user("ops", allow(["iam:GetRole", "s3:GetObject"]))
    b.org_policies.append(OrgPolicy(id="p-rcpdeny", name="rcpdeny", type="RESOURCE_CONTROL_POLICY", targets=[A],
                                    document={"Version": "2012-10-17", "Statement": [
                                        {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]}))
    actions = {a for _, _, a, _, _, _ in _answer(what_can(build_graph(b.build()), arn))}
    assert actions == {"iam:GetRole"}


def test_a_key_only_some_actions_carry_splits_a_service() -> None:
    """The snapshot supplies the role's tag as iam:ResourceTag/team; actions whose reference entry does not list
    that key never carry it (the engine takes it as absent), so the condition holds only for those that do
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html)."""
    b = SnapBuilder()
    arn = b.user("ops", allow("iam:*", TARGET, Condition={"StringEquals": {"iam:ResourceTag/team": "blue"}}))
    b.role("target", tags={"team": "blue"})
    g = build_graph(b.build())
    actions = {a for _, _, a, _, _, c in _answer(what_can(g, arn)) if not c}
    assert "iam:GetRole" in actions  # the role resource type lists iam:ResourceTag/${TagKey}
    assert "iam:CreateAccountAlias" not in actions  # no resource type, no such key
    assert _answer(what_can(g, arn)) == _answer(what_can(build_graph(b.build()), arn, exhaustive=True))
