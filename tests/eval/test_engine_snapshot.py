"""SnapshotEvaluator and the ``iamgraph simulate`` command over a small two-account organization."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.errors import NotFoundError
from iamgraph.eval import DecisionKind, Mode, Overrides, PolicyType, SnapshotEvaluator, named_policy
from iamgraph.snapshot import SnapshotIndex, write_snapshot
from iamgraph.snapshot.model import (
    Account,
    Group,
    InlinePolicy,
    ManagedPolicy,
    OrgAccount,
    Organization,
    OrgPolicy,
    OrgUnit,
    PolicyVersion,
    Resource,
    Role,
    Snapshot,
    User,
)

A, C, M = "111122223333", "444455556666", "999999999999"
ORG, ROOT, OU = "o-exampleorg", "r-ab12", "ou-ab12-11111111"
ALICE = f"arn:aws:iam::{A}:user/alice"
BOB = f"arn:aws:iam::{A}:user/bob"
APP = f"arn:aws:iam::{A}:role/svc/app"
ADMIN = f"arn:aws:iam::{M}:user/admin"
PARTNER = f"arn:aws:iam::{C}:role/partner"
BUCKET = "arn:aws:s3:::data-a"
PUBLIC = "arn:aws:s3:::www-a"
KEY = f"arn:aws:kms:us-east-1:{A}:key/1111aaaa-22bb-33cc-44dd-555555eeeeee"
AWS_KEY = f"arn:aws:kms:us-east-1:{A}:key/9999aaaa-22bb-33cc-44dd-555555eeeeee"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


FULL = _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})


def _managed(arn: str, document: dict[str, Any]) -> ManagedPolicy:
    return ManagedPolicy(arn=arn, name=arn.rsplit("/", 1)[-1], default_version_id="v2",
                         versions=[PolicyVersion(version_id="v1", is_default=False, document=_doc(
                             {"Effect": "Deny", "Action": "*", "Resource": "*"})),
                                   PolicyVersion(version_id="v2", is_default=True, document=document)])


def build_snapshot() -> Snapshot:
    read_s3 = _managed(f"arn:aws:iam::{A}:policy/ReadData", _doc(
        {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": [BUCKET, f"{BUCKET}/*"]}))
    boundary = _managed(f"arn:aws:iam::{A}:policy/AppBoundary", _doc(
        {"Effect": "Allow", "Action": ["s3:*", "sqs:*", "kms:*"], "Resource": "*"}))
    sqs_full = _managed("arn:aws:iam::aws:policy/AmazonSQSFullAccess", _doc(
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}))
    alice = User(
        arn=ALICE, name="alice", user_id="AIDAALICE", groups=["devs"],
        attached_managed_policies=[read_s3.arn],
        inline_policies=[InlinePolicy(name="admin-ish", document=_doc(
            {"Effect": "Allow", "Action": ["iam:CreateUser", "kms:Decrypt", "sts:AssumeRole"], "Resource": "*"}))],
        tags={"team": "blue"},
    )
    bob = User(arn=BOB, name="bob", user_id="AIDABOB", inline_policies=[InlinePolicy(name="all", document=FULL)],
               permissions_boundary=f"arn:aws:iam::{A}:policy/Missing")
    devs = Group(arn=f"arn:aws:iam::{A}:group/devs", name="devs", group_id="AGPADEVS",
                 attached_managed_policies=[sqs_full.arn])
    app_role = Role(
        arn=APP, name="app", role_id="AROAAPP", path="/svc/",
        trust_policy=_doc({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"}),
        inline_policies=[InlinePolicy(name="all", document=FULL)],
        permissions_boundary=boundary.arn, tags={"team": "green"},
    )
    bucket = Resource(
        arn=BUCKET, type="s3:bucket", name="data-a", tags={"classification": "internal"},
        policy=_doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{C}:root"},
                     "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"}),
    )
    www = Resource(
        arn=PUBLIC, type="s3:bucket", name="www-a",
        policy=_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{PUBLIC}/*"}),
        attributes={"public_access_block": {"RestrictPublicBuckets": False}},
    )
    key = Resource(arn=KEY, type="kms:key", policy=_doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}),
        attributes={"key_manager": "CUSTOMER"})
    aws_key = Resource(arn=AWS_KEY, type="kms:key", policy=_doc(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:CallerAccount": A}}}), attributes={"key_manager": "AWS"})
    partner = Role(arn=PARTNER, name="partner", role_id="AROAPARTNER",
                   trust_policy=_doc({"Effect": "Allow", "Principal": {"AWS": C}, "Action": "sts:AssumeRole"}),
                   inline_policies=[InlinePolicy(name="all", document=FULL)])
    admin = User(arn=ADMIN, name="admin", user_id="AIDAADMIN", inline_policies=[InlinePolicy(name="all", document=FULL)])
    scp_full = OrgPolicy(id="p-FullAWSAccess", name="FullAWSAccess", type="SERVICE_CONTROL_POLICY",
                         document=FULL, targets=[ROOT, OU, A, M])
    scp_no_users = OrgPolicy(id="p-nousers", name="NoIamUsers", type="SERVICE_CONTROL_POLICY",
                             document=_doc({"Effect": "Deny", "Action": "iam:CreateUser", "Resource": "*"}),
                             targets=[ROOT])
    rcp_full = OrgPolicy(id="p-RCPFullAWSAccess", name="RCPFullAWSAccess", type="RESOURCE_CONTROL_POLICY",
                         document=_doc({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}),
                         targets=[ROOT, OU, A, M])
    rcp_perimeter = OrgPolicy(
        id="p-perimeter", name="Perimeter", type="RESOURCE_CONTROL_POLICY", targets=[OU],
        document=_doc({"Effect": "Deny", "Principal": "*", "Action": ["s3:*", "kms:*"], "Resource": "*",
                       "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG},
                                     "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}),
    )
    org = Organization(
        id=ORG, management_account_id=M, root_id=ROOT,
        enabled_policy_types=["SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"],
        organizational_units=[OrgUnit(id=OU, name="Workloads", parent_id=ROOT)],
        accounts=[OrgAccount(id=A, name="prod", parent_id=OU), OrgAccount(id=M, name="mgmt", parent_id=ROOT)],
        policies=[scp_full, scp_no_users, rcp_full, rcp_perimeter],
    )
    return Snapshot(
        collected_at="2026-11-30T00:00:00Z",
        organization=org,
        accounts=[
            Account(account_id=A, users=[alice, bob], groups=[devs], roles=[app_role],
                    policies=[read_s3, boundary], resources=[bucket, www, key, aws_key],
                    public_access_block={"RestrictPublicBuckets": True}),
            Account(account_id=C, roles=[partner]),
            Account(account_id=M, users=[admin]),
        ],
        aws_managed_policies=[sqs_full],
    )


@pytest.fixture(scope="module")
def ev() -> SnapshotEvaluator:
    return SnapshotEvaluator(SnapshotIndex(build_snapshot()))


def test_user_managed_policy_default_version(ev: SnapshotEvaluator) -> None:
    d = ev.ask(ALICE, "s3:GetObject", f"{BUCKET}/report.csv")
    assert d.allowed
    assert any(r.policy_id == f"arn:aws:iam::{A}:policy/ReadData" and r.sid == "Read" for r in d.reasons)


def test_group_policies_apply_to_members(ev: SnapshotEvaluator) -> None:
    d = ev.ask(ALICE, "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{A}:q")
    assert d.allowed and d.reasons[0].policy_id == "arn:aws:iam::aws:policy/AmazonSQSFullAccess"


def test_scp_chain_denies_member_account(ev: SnapshotEvaluator) -> None:
    d = ev.ask(ALICE, "iam:CreateUser", f"arn:aws:iam::{A}:user/new")
    assert d.decision is DecisionKind.EXPLICITLY_DENIED and d.blocked_by == (PolicyType.SCP,)
    assert d.reasons[0].policy_id == "p-nousers"


def test_management_account_is_exempt_from_scps(ev: SnapshotEvaluator) -> None:
    assert ev.ask(ADMIN, "iam:CreateUser", f"arn:aws:iam::{M}:user/new").allowed


def test_role_session_resolves_to_role_with_boundary(ev: SnapshotEvaluator) -> None:
    session = f"arn:aws:sts::{A}:assumed-role/app/job-1"
    assert ev.ask(session, "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{A}:q").allowed
    d = ev.ask(session, "dynamodb:GetItem", f"arn:aws:dynamodb:us-east-1:{A}:table/t")
    assert d.decision is DecisionKind.IMPLICITLY_DENIED and PolicyType.PERMISSION_BOUNDARY in d.blocked_by
    ctx = ev.principal_context(session)
    assert ctx["aws:principalarn"] == APP and ctx["aws:userid"] == "AROAAPP:job-1"
    assert ctx["aws:principaltag/team"] == "green"


def test_trust_policy_is_the_resource_policy_for_assume_role(ev: SnapshotEvaluator) -> None:
    assert ev.ask(ALICE, "sts:AssumeRole", APP).allowed
    d = ev.ask(BOB, "sts:AssumeRole", APP)
    assert not d.possible


def test_cross_account_outside_org_hits_rcp(ev: SnapshotEvaluator) -> None:
    d = ev.ask(PARTNER, "s3:GetObject", f"{BUCKET}/report.csv")
    assert d.decision is DecisionKind.EXPLICITLY_DENIED and d.blocked_by == (PolicyType.RCP,)
    assert d.reasons[0].policy_id == "p-perimeter"


def test_principal_context_org_and_tags(ev: SnapshotEvaluator) -> None:
    ctx = ev.principal_context(ALICE)
    assert ctx["aws:principalorgid"] == ORG
    assert ctx["aws:principalorgpaths"] == [f"{ORG}/{ROOT}/{OU}/"]
    assert ctx["aws:principaltag/team"] == "blue"
    assert ctx["aws:username"] == "alice" and ctx["aws:userid"] == "AIDAALICE"
    assert "aws:principalorgid" not in ev.principal_context(PARTNER)


def test_resource_tags_feed_conditions(ev: SnapshotEvaluator) -> None:
    ctx = ev.resource_context(BUCKET)
    assert ctx["aws:resourcetag/classification"] == "internal" and ctx["aws:resourceaccount"] == A
    # An object does not carry its bucket's tags.
    obj = ev.resource_context(f"{BUCKET}/x")
    assert "aws:resourcetag/classification" not in obj and obj["aws:resourceaccount"] == A
    role = ev.resource_context(APP)
    assert role["aws:resourcetag/team"] == role["iam:resourcetag/team"] == "green"


def test_missing_boundary_is_reported_and_limits(ev: SnapshotEvaluator) -> None:
    d = ev.ask(BOB, "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{A}:q")
    assert not d.possible
    assert any("Missing" in e.policy_id for e in d.errors)


def test_kms_key_policy_and_aws_managed_key_rcp_exemption(ev: SnapshotEvaluator) -> None:
    assert ev.ask(ALICE, "kms:Decrypt", KEY).allowed
    # The perimeter RCP would deny an outsider, but RCPs do not apply to AWS managed keys.
    d = ev.ask(PARTNER, "kms:Decrypt", AWS_KEY, context={"kms:CallerAccount": A})
    assert d.allowed


def test_account_level_restrict_public_buckets(ev: SnapshotEvaluator) -> None:
    d = ev.ask("anonymous", "s3:GetObject", f"{PUBLIC}/index.html")
    assert not d.possible


def test_unknown_principal(ev: SnapshotEvaluator) -> None:
    with pytest.raises(NotFoundError):
        ev.ask(f"arn:aws:iam::{A}:user/ghost", "s3:GetObject", BUCKET)


def test_discovery_mode_through_snapshot(ev: SnapshotEvaluator) -> None:
    d = ev.ask(PARTNER, "s3:GetObject", f"{BUCKET}/r", mode=Mode.DISCOVERY,
                     context={"aws:PrincipalOrgID": ORG})
    assert d.allowed


# ----------------------------------------------------------------------------- CLI

runner = CliRunner()


@pytest.fixture(scope="module")
def snap_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snap") / "snap.json.gz"
    write_snapshot(build_snapshot(), path)
    return path


def test_cli_simulate_json(snap_file: Path) -> None:
    res = runner.invoke(app, ["simulate", "--snapshot", str(snap_file), "--principal", ALICE, "--action",
                              "iam:CreateUser", "--resource", f"arn:aws:iam::{A}:user/x", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["decision"] == "ExplicitlyDenied" and out["blockedBy"] == ["scp"]


def test_cli_simulate_explain_with_context(snap_file: Path) -> None:
    res = runner.invoke(app, ["simulate", "-s", str(snap_file), "-p", PARTNER, "-a", "s3:GetObject",
                              "-r", f"{BUCKET}/r", "--mode", "discovery", "--explain"])
    assert res.exit_code == 0, res.output
    assert "Allowed, conditionally" in res.output and "aws:PrincipalOrgID" in res.output
    res = runner.invoke(app, ["simulate", "-s", str(snap_file), "-p", PARTNER, "-a", "s3:GetObject",
                              "-r", f"{BUCKET}/r", "-c", f"aws:PrincipalOrgID={ORG}", "--explain"])
    assert res.exit_code == 0 and res.output.startswith("Allowed"), res.output


def test_cli_simulate_usage_errors(snap_file: Path) -> None:
    res = runner.invoke(app, ["simulate", "--principal", ALICE])
    assert res.exit_code == 2 and "missing --snapshot" in res.output
    res = runner.invoke(app, ["simulate", "-s", str(snap_file), "-p", ALICE, "-a", "s3:GetObject", "-r", BUCKET,
                              "-c", "novalue"])
    assert res.exit_code == 2 and "key=value" in res.output


def test_cli_batch(tmp_path: Path) -> None:
    good = {"id": "a", "request": {"principal": ALICE, "action": "s3:GetObject", "resource": f"{BUCKET}/k"},
            "policies": {"identity": [_doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})]}}
    bad_policy = {"id": "b", "request": good["request"], "policies": {"identity": [_doc(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, {"Effect": "Allow", "Action": "s3", "Resource": "*"})]}}
    conditional = {"id": "c", "request": good["request"], "policies": {"identity": [_doc(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})]}}
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        "\n".join([json.dumps(good), "not json", json.dumps(bad_policy), "", json.dumps(conditional)]).encode()
        + b'\n{"id": "\xff"}\n' + json.dumps(good).encode() + b"\n"
    )
    out_file = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["simulate", "--batch", str(src), "--mode", "discovery", "--out", str(out_file)])
    # Exit 1: some lines carry an error; every line is still answered and the file is written.
    assert res.exit_code == 1, res.output
    assert "3 of 6 batch line(s) have an error (the first: line 2)" in res.output and "Traceback" not in res.output
    lines = [json.loads(x) for x in out_file.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", None, "b", "c", None, "a"]
    assert lines[0]["decision"] == "Allowed" and lines[0]["error"] is None
    assert "line 2" in lines[1]["error"] and lines[1]["decision"] == "ImplicitlyDenied"
    assert "policies.identity[0]" in lines[2]["error"] and "Statement[1].Action[0]" in lines[2]["error"]
    assert lines[3]["conditions"][0][0]["key"] == "aws:SourceIp"
    assert lines[4]["error"].startswith(f"{src}: line 6: not UTF-8") and lines[4]["decision"] == "ImplicitlyDenied"
    assert lines[5]["decision"] == "Allowed" and lines[5]["error"] is None
    res = runner.invoke(app, ["simulate", "--batch", str(src)])
    assert res.exit_code == 1 and len(res.stdout.strip().splitlines()) == 6
    res = runner.invoke(app, ["simulate", "--batch", "-"], input=src.read_bytes())
    assert res.exit_code == 1 and len(res.stdout.strip().splitlines()) == 6
    assert json.loads(res.stdout.splitlines()[4])["error"].startswith("<stdin>: line 6: not UTF-8")
    src.write_text(json.dumps(good) + "\n")
    res = runner.invoke(app, ["simulate", "--batch", str(src), "--out", str(out_file)])
    assert res.exit_code == 0 and json.loads(out_file.read_text())["error"] is None
    res = runner.invoke(app, ["simulate", "--batch", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "cannot read" in res.output


def test_tags_the_snapshot_lacks_are_known_absent_in_discovery(ev: SnapshotEvaluator) -> None:
    # alice has only team=blue: a condition on her "cost" tag is decided (absent), not residual.
    session = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*",
         "Condition": {"StringEqualsIfExists": {"aws:PrincipalTag/cost": "42"}}}]}
    d = ev.ask(ALICE, "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{A}:q", mode=Mode.DISCOVERY,
                     overrides=Overrides(session_policy=named_policy(session, "session", PolicyType.SESSION)))
    assert d.allowed and not d.conditions
    strict = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/cost": "42"}}}]}
    d = ev.ask(ALICE, "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{A}:q", mode=Mode.DISCOVERY,
                     overrides=Overrides(session_policy=named_policy(strict, "session", PolicyType.SESSION)))
    assert not d.possible


def test_tags_known_absent_are_kept_per_principal_resource_and_policy_set(ev: SnapshotEvaluator) -> None:
    """``decide`` keeps the tag keys it found absent per principal, resource and policy set (callers ask many actions
    under one set). One set asked about an untagged and then a tagged resource, and two sets asked about one
    resource, each answer as a fresh evaluator's, the second time too."""
    on_tag = named_policy(_doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                                "Condition": {"StringEquals": {"aws:ResourceTag/classification": "internal"}}}),
                          "on-tag", PolicyType.IDENTITY)
    on_cost = named_policy(_doc({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*",
                                 "Condition": {"StringEquals": {"aws:PrincipalTag/cost": "42"}}}),
                           "on-cost", PolicyType.IDENTITY)
    queue = f"arn:aws:sqs:us-east-1:{A}:q"
    tagged = ev.policy_set(ALICE, "*", overrides=Overrides(add_identity=(on_tag,)))
    plain = ev.policy_set(ALICE, queue)
    costly = ev.policy_set(ALICE, queue, overrides=Overrides(session_policy=on_cost))
    questions = [("s3:GetObject", PUBLIC, tagged), ("s3:GetObject", BUCKET, tagged),
                 ("sqs:SendMessage", queue, plain), ("sqs:SendMessage", queue, costly)]
    for _ in range(2):
        got = [ev.decide(ALICE, a, r, ps, mode=Mode.DISCOVERY) for a, r, ps in questions]
        fresh = [SnapshotEvaluator(ev.index).decide(ALICE, a, r, ps, mode=Mode.DISCOVERY) for a, r, ps in questions]
        assert got == fresh
        # The untagged bucket lacks the tag (decided, not residual); the tagged one has it.
        assert not got[0].possible and got[1].allowed and not got[1].conditions
        # alice has no "cost" tag: the session policy's condition is decided false, not left residual.
        assert got[2].allowed and not got[3].possible
