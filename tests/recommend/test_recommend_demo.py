"""End to end on the demo organization: every emitted recommendation passes verification, checked again here
call by call with the engine; the planted unused permissions are trimmed; the CLI renders every format."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.demo import generate_demo
from iamgraph.demo.config import DemoConfig
from iamgraph.eval import Mode, SnapshotEvaluator, named_policy
from iamgraph.eval.engine import authorize
from iamgraph.eval.types import PolicyType, Request
from iamgraph.recommend import ProposalStatus, Recommendation, Recommender, parse_config, verify_proposal
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.io import read_snapshot
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore

pytestmark = pytest.mark.slow


@dataclass
class Demo:
    root: Path
    index: SnapshotIndex
    store: UsageStore
    planted: dict[str, Any]
    end: datetime
    recs: list[Recommendation]


def _sample(index: SnapshotIndex, planted: dict[str, Any]) -> list[str]:
    named = {p for i in planted["items"] for p in i.get("principals", []) if p in index.roles or p in index.users}
    plain = sorted(a for a in index.roles if "AWSReserved" not in a and "OrganizationAccountAccess" not in a)
    return sorted(named | set(plain[:12]) | set(sorted(index.users)[:4]))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    out = tmp_path_factory.mktemp("recdemo")
    result = generate_demo(out, DemoConfig())
    index = SnapshotIndex(read_snapshot(result.snapshot))
    store = UsageStore(out / "usage.duckdb")
    assert result.cloudtrail_root is not None
    ingest_location(store, str(result.cloudtrail_root))
    planted = json.loads(result.planted.read_text())
    end = datetime.fromisoformat(planted["window"]["end"].replace("Z", "+00:00"))
    rec = Recommender(index, store, days=planted["window"]["days"], now=end)
    recs = [rec.recommend(p) for p in _sample(index, planted)]
    yield Demo(root=out, index=index, store=store, planted=planted, end=end, recs=recs)
    store.close()


def test_every_emitted_proposal_passed_verification_and_failures_are_not_emitted(demo: Demo) -> None:
    emitted = [p for r in demo.recs for p in r.proposals if p.status is ProposalStatus.EMITTED]
    assert emitted, "nothing was emitted on the demo organization"
    for p in emitted:
        assert p.verification is not None and p.verification.passed, p.policy_id
    for p in (p for r in demo.recs for p in r.proposals if p.status is ProposalStatus.FAILED):
        assert not p.proposed and p.reason


def test_emitted_proposals_replay_every_observed_call(demo: Demo) -> None:
    """Independent of the recommender's own check: each observed allowed call of each principal, with its
    known resource, is asked of the engine with the proposal in place of the policy."""
    ev = SnapshotEvaluator(demo.index)
    rec = Recommender(demo.index, demo.store, days=demo.planted["window"]["days"], now=demo.end)
    checked = 0
    for r in demo.recs:
        for p in r.proposals:
            if p.status is not ProposalStatus.EMITTED:
                continue
            nps = tuple(named_policy(d, f"t{i}", PolicyType.IDENTITY) for i, d in enumerate(p.proposed))
            for who in p.principals:
                for c in rec.calls(who):
                    if c.resource is None:
                        continue
                    ps = ev.policy_set(who, c.resource, action=c.action)
                    ctx = {**ev.principal_context(who), **ev.resource_context(c.resource)}
                    req = Request(principal=who, action=c.action, resource=c.resource, context=ctx)
                    before = authorize(req, ps, mode=Mode.DISCOVERY)
                    swapped = dataclasses.replace(
                        ps, identity=tuple(x for x in ps.identity if x.policy_id != p.policy_id) + nps)
                    after = authorize(req, swapped, mode=Mode.DISCOVERY)
                    if before.possible:
                        checked += 1
                        assert after.possible, (p.policy_id, who, c)
    assert checked > 20


def test_planted_unused_permissions_are_trimmed(demo: Demo) -> None:
    (item,) = [i for i in demo.planted["items"] if i["kind"] == "unused_permissions"]
    (who,) = item["principals"]
    (r,) = [r for r in demo.recs if r.principal_arn == who]
    (p,) = [p for p in r.proposals if p.policy_id in item["resources"]]
    assert p.status is ProposalStatus.EMITTED
    for action in item["unused_actions"]:
        assert action in p.removed_actions
    assert any(a.startswith("dynamodb:") for a in p.removed_actions)
    for action in item["used_actions"]:
        assert action not in p.removed_actions, action
    assert set(item["used_actions"]) <= set(r.used_actions)


def test_exclusions_leave_policies_alone(demo: Demo) -> None:
    (item,) = [i for i in demo.planted["items"] if i["kind"] == "unused_permissions"]
    (who,) = item["principals"]
    cfg = parse_config({"recommend": {"exclude": {"principals": [who]}}})
    r = Recommender(demo.index, demo.store, days=90, now=demo.end, config=cfg).recommend(who)
    assert r.proposals and all(p.status is ProposalStatus.LEFT_ALONE for p in r.proposals)


@pytest.mark.parametrize("fmt,needle", [("json", '"Statement"'), ("diff", "+++ proposed/"),
                                        ("terraform", 'data "aws_iam_policy_document"'),
                                        ("cloudformation", "AWS::IAM::ManagedPolicy")])
def test_cli_formats(demo: Demo, fmt: str, needle: str, tmp_path: Path) -> None:
    (item,) = [i for i in demo.planted["items"] if i["kind"] == "unused_permissions"]
    args = ["recommend", "--snapshot", str(demo.root / "snapshot.json.gz"), "--db", str(demo.root / "usage.duckdb"),
            "--principal", item["principals"][0], "--now", demo.planted["window"]["end"], "--format", fmt,
            "-o", str(tmp_path)]
    demo.store.close()
    try:
        res = CliRunner().invoke(app, args)
    finally:
        demo.store = UsageStore(demo.root / "usage.duckdb")
    assert res.exit_code == 0, res.output
    files = list(tmp_path.iterdir())
    assert files and needle in files[0].read_text()


def test_cli_needs_a_principal(demo: Demo) -> None:
    res = CliRunner().invoke(app, ["recommend", "--snapshot", "x", "--db", "y"])
    assert res.exit_code == 2 and "--principal" in res.output


def test_verification_rejects_a_wider_or_a_too_narrow_proposal(demo: Demo) -> None:
    (item,) = [i for i in demo.planted["items"] if i["kind"] == "unused_permissions"]
    (who,) = item["principals"]
    rec = Recommender(demo.index, demo.store, days=90, now=demo.end)
    (r,) = [r for r in demo.recs if r.principal_arn == who]
    (p,) = [p for p in r.proposals if p.policy_id in item["resources"]]
    calls = {w: rec.calls(w) for w in p.principals}
    res = rec._service_resources()
    wider = [{**p.proposed[0], "Statement": [*p.proposed[0]["Statement"],
                                             {"Effect": "Allow", "Action": "s3:PutBucketPolicy", "Resource": "*"}]}]
    v = verify_proposal(rec.ev, demo.index, p.policy_id, p.original, wider, p.principals, calls, res,
                        enumerate_new_access=True)
    assert not v.passed and any("s3:PutBucketPolicy" in m for m in v.new_access)
    narrower = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                                                         "Resource": "*"}]}]
    v2 = verify_proposal(rec.ev, demo.index, p.policy_id, p.original, narrower, p.principals, calls, res)
    assert not v2.passed and any("athena:StartQueryExecution" in m for m in v2.replay_failures)


def test_narrowing_a_star_grant_is_not_a_new_resource_star_finding() -> None:
    from iamgraph.model import parse_policy
    from iamgraph.recommend.recommender import _narrowed_star

    admin = parse_policy({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    power = parse_policy({"Statement": [{"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}]})
    scoped = parse_policy({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]})
    assert _narrowed_star("RESOURCE_STAR", ["s3:GetObject", "ec2:RunInstances"], admin)
    assert _narrowed_star("RESOURCE_STAR", ["s3:GetObject"], power)
    assert not _narrowed_star("RESOURCE_STAR", ["iam:CreateUser"], power)
    assert not _narrowed_star("RESOURCE_STAR", ["s3:GetObject"], scoped)
    assert not _narrowed_star("PRIVILEGE_ESCALATION", ["s3:GetObject"], admin)


def test_cli_json(demo: Demo) -> None:
    (item,) = [i for i in demo.planted["items"] if i["kind"] == "unused_permissions"]
    args = ["recommend", "--snapshot", str(demo.root / "snapshot.json.gz"), "--db", str(demo.root / "usage.duckdb"),
            "--principal", item["principals"][0], "--now", demo.planted["window"]["end"], "--json"]
    demo.store.close()
    try:
        res = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    finally:
        demo.store = UsageStore(demo.root / "usage.duckdb")
    assert res.exit_code == 0, res.output
    (rec,) = json.loads(res.output)
    assert rec["principal_arn"] == item["principals"][0]
    statuses = {p["policy_id"]: p["status"] for p in rec["proposals"]}
    assert statuses[item["resources"][0]] == "emitted"
    (p,) = [p for p in rec["proposals"] if p["policy_id"] == item["resources"][0]]
    assert p["verification"]["passed"] is True and "s3:DeleteObject" in p["removed_actions"]


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def test_administrator_access_becomes_at_most_three_policies_with_every_flagged_action_listed(demo: Demo) -> None:
    """Access Advisor lists every service a principal's policies allow, "not accessed" ones without a date
    (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetServiceLastAccessedDetails.html): those services go
    whole, and what is kept of the used ones folds into patterns, high-risk actions listed by name."""
    from iamgraph.recommend.risk import flag_actions
    from iamgraph.recommend.split import MANAGED_LIMIT, policy_size

    admins = sorted(a for a, r in {**demo.index.roles, **demo.index.users}.items()
                    if ADMIN in r.attached_managed_policies and "AWSReservedSSO" not in a)
    rec = Recommender(demo.index, demo.store, days=demo.planted["window"]["days"], now=demo.end)
    checked = 0
    for who in admins:
        r = rec.recommend(who)
        (p,) = [p for p in r.proposals if p.policy_id == ADMIN]
        if p.status is not ProposalStatus.EMITTED:
            assert p.status is ProposalStatus.INCOMPLETE_EVIDENCE, (who, p.status, p.reason)
            continue
        checked += 1
        assert 1 <= len(p.proposed) <= 3, (who, len(p.proposed))
        assert all(policy_size(d) <= MANAGED_LIMIT for d in p.proposed)
        assert p.flagged == flag_actions(p.proposed)
        listed = {a for d in p.proposed for st in d["Statement"] for a in st["Action"]}
        for f in p.flagged:
            assert f.action in listed, (who, f.action)  # by name, not hidden in a pattern
        assert not any("quota" in n for n in r.notes), r.notes
    assert checked >= 3


def test_a_never_used_service_is_dropped_entirely(demo: Demo) -> None:
    (item,) = [i for i in demo.planted["items"] if i["kind"] == "unused_permissions"]
    (who,) = item["principals"]
    (r,) = [r for r in demo.recs if r.principal_arn == who]
    (p,) = [p for p in r.proposals if p.policy_id in item["resources"]]
    for service in item["unused_services"]:
        assert not any(str(a).startswith(f"{service}:") for d in p.proposed for st in d["Statement"]
                       for a in st["Action"]), service


def test_a_principals_proposals_verified_with_shared_current_decisions_are_verified_alike(demo: Demo) -> None:
    """The replay keeps a principal's decisions under its current policies across its proposals (``current``):
    each proposal's verification is the one it gets alone."""
    rec = Recommender(demo.index, demo.store, days=90, now=demo.end)
    res = rec._service_resources()
    checked = 0
    for r in demo.recs:
        proposals = [p for p in r.proposals if p.proposed]
        if len(proposals) < 2:
            continue
        current: dict[Any, Any] = {}
        for p in proposals:
            calls = {w: rec.calls(w) for w in p.principals}
            shared = verify_proposal(rec.ev, demo.index, p.policy_id, p.original, p.proposed, p.principals, calls,
                                     res, current=current)
            alone = verify_proposal(rec.ev, demo.index, p.policy_id, p.original, p.proposed, p.principals, calls,
                                    res)
            assert shared == alone
            checked += 1
        assert current  # the decisions were kept (and the later proposals asked them again)
        # Each kept decision is the engine's answer to the question it is kept under.
        for (who, action, resource), d in current.items():
            ps = rec.ev.policy_set(who, resource, action=action)
            assert rec.ev.decide(who, action, resource, ps, mode=Mode.DISCOVERY) == d, (who, action, resource)
    assert checked >= 2


def test_keep_actions_of_a_statement_are_keep_action_of_each(demo: Demo) -> None:
    """The trimmer asks which of a statement's unused actions stay all at once (``keep_actions``: the judgement's
    verdicts as sets per principal and service, the grouping by service kept per set); each answer is
    ``keep_action``'s for that action, for one principal and for a policy shared by two, including actions outside
    the catalog's list of a service and actions the configuration excludes."""
    from iamgraph.catalog import get_catalog

    everything = get_catalog().all_actions() | {"s3:NoSuchActionYet", "nosuchservice:Get"}
    rec = Recommender(demo.index, demo.store, days=demo.planted["window"]["days"], now=demo.end,
                      config=parse_config({"recommend": {"exclude": {"actions": ["kms:Decrypt", "sqs:Send*"]}}}))
    whos = [r.principal_arn for r in demo.recs]
    checked = 0
    for principals in ([whos[0]], [whos[1]], whos[:2], [whos[-1]]):
        # Twice: the second answer comes from the kept grouping and verdicts.
        for _ in range(2):
            got = rec.keep_actions(everything, principals)
            want = {a for a in everything if rec.keep_action(a, principals)}
            assert got == want, (principals, sorted(got ^ want)[:10])
        # A part of a set, after the whole set's grouping was kept.
        part = frozenset(a for a in everything if a.startswith(("s3:", "kms:", "sts:")))
        assert rec.keep_actions(part, principals) == {a for a in part if rec.keep_action(a, principals)}
        assert want and everything - want
        checked += 1
    assert checked == 4
