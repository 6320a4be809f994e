"""Explanations name the organization level (root, OU, account) of the SCP or RCP that decided.

"Every level ... must explicitly allow" a request for SCPs and RCPs alike, so a level without an
Allow denies it implicitly, and a Deny at any level denies it explicitly
(https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_inheritance_auth.html).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.eval import DecisionKind, OrgLevelRef, PolicyType, SnapshotEvaluator
from iamgraph.eval.batch import decision_to_json
from iamgraph.snapshot import SnapshotIndex, write_snapshot
from iamgraph.snapshot.model import (
    Account,
    InlinePolicy,
    OrgAccount,
    Organization,
    OrgPolicy,
    OrgUnit,
    Resource,
    Role,
    Snapshot,
    User,
)

A, C, M = "111122223333", "444455556666", "999999999999"
ORG, ROOT, OU = "o-exampleorg", "r-ab12", "ou-ab12-11111111"
ALICE = f"arn:aws:iam::{A}:user/alice"
PARTNER = f"arn:aws:iam::{C}:role/partner"
QUEUE = f"arn:aws:sqs:us-east-1:{A}:orders"
ROOT_LEVEL = OrgLevelRef(kind="root", target_id=ROOT, name="Root")
OU_LEVEL = OrgLevelRef(kind="ou", target_id=OU, name="Workloads")


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


FULL = _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})


def build_snapshot() -> Snapshot:
    alice = User(arn=ALICE, name="alice", user_id="AIDAALICE", inline_policies=[InlinePolicy(name="all", document=FULL)])
    partner = Role(arn=PARTNER, name="partner", role_id="AROAPARTNER",
                   trust_policy=_doc({"Effect": "Allow", "Principal": {"AWS": C}, "Action": "sts:AssumeRole"}),
                   inline_policies=[InlinePolicy(name="all", document=FULL)])
    queue = Resource(arn=QUEUE, type="sqs:queue", policy=_doc(
        {"Effect": "Allow", "Principal": {"AWS": PARTNER}, "Action": "sqs:SendMessage", "Resource": QUEUE}))
    policies = [
        # The OU replaced FullAWSAccess by an allow-list: only S3 passes it.
        OrgPolicy(id="p-FullAWSAccess", name="FullAWSAccess", type="SERVICE_CONTROL_POLICY", document=FULL,
                  targets=[ROOT, A, M]),
        OrgPolicy(id="p-onlydata", name="OnlyData", type="SERVICE_CONTROL_POLICY", targets=[OU],
                  document=_doc({"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"})),
        OrgPolicy(id="p-nousers", name="NoIamUsers", type="SERVICE_CONTROL_POLICY", targets=[ROOT],
                  document=_doc({"Effect": "Deny", "Action": "iam:CreateUser", "Resource": "*"})),
        OrgPolicy(id="p-RCPFullAWSAccess", name="RCPFullAWSAccess", type="RESOURCE_CONTROL_POLICY",
                  targets=[ROOT, A, M],
                  document=_doc({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})),
        OrgPolicy(id="p-rcp-s3", name="RcpOnlyS3", type="RESOURCE_CONTROL_POLICY", targets=[OU],
                  document=_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"})),
    ]
    org = Organization(
        id=ORG, management_account_id=M, root_id=ROOT,
        enabled_policy_types=["SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"],
        organizational_units=[OrgUnit(id=OU, name="Workloads", parent_id=ROOT)],
        accounts=[OrgAccount(id=A, name="prod", parent_id=OU), OrgAccount(id=M, name="mgmt", parent_id=ROOT)],
        policies=policies,
    )
    return Snapshot(collected_at="2026-11-30T00:00:00Z", organization=org,
                    accounts=[Account(account_id=A, users=[alice], resources=[queue]),
                              Account(account_id=C, roles=[partner]), Account(account_id=M)])


@pytest.fixture(scope="module")
def ev() -> SnapshotEvaluator:
    return SnapshotEvaluator(SnapshotIndex(build_snapshot()))


def test_an_ou_without_an_allow_is_named_with_its_policies(ev: SnapshotEvaluator) -> None:
    d = ev.ask(ALICE, "sqs:SendMessage", QUEUE)
    assert d.decision is DecisionKind.IMPLICITLY_DENIED and PolicyType.SCP in d.blocked_by
    scp_gaps = [g for g in d.org_gaps if g.policy_type is PolicyType.SCP]
    assert [(g.index, g.level, g.policy_ids) for g in scp_gaps] == [(1, OU_LEVEL, ("p-onlydata",))]


def test_an_rcp_level_without_an_allow_is_named(ev: SnapshotEvaluator) -> None:
    # The partner is outside the organization, so no SCP of ours applies to it; the queue's account
    # chain has an OU whose RCPs allow only S3.
    d = ev.ask(PARTNER, "sqs:SendMessage", QUEUE)
    assert d.decision is DecisionKind.IMPLICITLY_DENIED and d.blocked_by == (PolicyType.RCP,)
    assert [(g.policy_type, g.level, g.policy_ids) for g in d.org_gaps] == [(PolicyType.RCP, OU_LEVEL, ("p-rcp-s3",))]


def test_a_deny_names_the_level_its_policy_is_attached_to(ev: SnapshotEvaluator) -> None:
    d = ev.ask(ALICE, "iam:CreateUser", f"arn:aws:iam::{A}:user/new")
    assert d.decision is DecisionKind.EXPLICITLY_DENIED
    assert [(r.policy_id, r.level) for r in d.reasons] == [("p-nousers", ROOT_LEVEL)]
    assert d.org_gaps == ()


def test_allowed_requests_carry_no_gap(ev: SnapshotEvaluator) -> None:
    d = ev.ask(ALICE, "s3:GetObject", "arn:aws:s3:::any/key")
    assert d.allowed and d.org_gaps == ()


def test_batch_json_carries_levels(ev: SnapshotEvaluator) -> None:
    out = decision_to_json(1, ev.ask(ALICE, "sqs:SendMessage", QUEUE))
    assert {"policyType": "scp", "index": 1, "level": {"kind": "ou", "id": OU, "name": "Workloads"},
            "policyIds": ["p-onlydata"]} in out["orgGaps"]
    out = decision_to_json(2, ev.ask(ALICE, "iam:CreateUser", f"arn:aws:iam::{A}:user/new"))
    assert out["reasons"][0]["level"] == {"kind": "root", "id": ROOT, "name": "Root"}


def test_levels_are_positions_when_the_caller_does_not_name_them() -> None:
    from iamgraph.eval.batch import evaluate_line

    line = {"id": 1, "request": {"principal": ALICE, "action": "sqs:SendMessage", "resource": QUEUE},
            "policies": {"identity": [FULL], "scps": [[FULL], [_doc({"Effect": "Allow", "Action": "s3:*",
                                                                      "Resource": "*"})], [FULL]]}}
    out = evaluate_line(line)
    assert out["decision"] == "ImplicitlyDenied"
    assert out["orgGaps"] == [{"policyType": "scp", "index": 1, "level": None, "policyIds": ["policies.scps[1][0]"]}]


runner = CliRunner()


@pytest.fixture(scope="module")
def snap_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snap") / "snap.json.gz"
    write_snapshot(build_snapshot(), path)
    return path


def test_explain_prints_the_ou_and_its_policy(snap_file: Path) -> None:
    res = runner.invoke(app, ["simulate", "-s", str(snap_file), "-p", ALICE, "-a", "sqs:SendMessage",
                              "-r", QUEUE, "--explain"])
    assert res.exit_code == 0, res.output
    assert f"no SCP allows it at OU Workloads ({OU}): p-onlydata" in res.output
    res = runner.invoke(app, ["simulate", "-s", str(snap_file), "-p", ALICE, "-a", "iam:CreateUser",
                              "-r", f"arn:aws:iam::{A}:user/new", "--explain"])
    assert res.exit_code == 0, res.output
    assert f"p-nousers Statement[0] attached to the root {ROOT}" in res.output
    res = runner.invoke(app, ["simulate", "-s", str(snap_file), "-p", ALICE, "-a", "iam:CreateUser",
                              "-r", f"arn:aws:iam::{A}:user/new", "--json"])
    assert json.loads(res.output)["reasons"][0]["level"]["kind"] == "root"


def test_simulate_warns_about_a_key_the_action_does_not_support(snap_file: Path) -> None:
    res = runner.invoke(app, ["simulate", "-s", str(snap_file), "-p", ALICE, "-a", "s3:GetObject",
                              "-r", "arn:aws:s3:::any/key", "--context", "s3:prefix=a/"])
    assert res.exit_code == 0, res.output
    assert "warning: context key s3:prefix is not supported by this action" in res.output
