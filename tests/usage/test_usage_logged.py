"""What was logged, judged per account, trail and region, and shared by ``recommend`` and ``unused``.

The records are written from the CloudTrail record contents page
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html): an S3
``GetObject`` data event carries ``eventCategory: Data``, ``managementEvent: false`` and the object and bucket in
``resources`` (https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-understanding-s3-entries.html);
an EC2 ``DescribeInstances`` is a read-only management event. Files sit where a trail delivers them
(``<location>/AWSLogs/[o-id/]<account>/CloudTrail/<region>/YYYY/MM/DD/``), so two locations are two trails.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from logged_scenario import ACCT, POLICY, ROLE, identity
from typer.testing import CliRunner

from iamgraph.cli.app import app
from iamgraph.collect.files import load_paths
from iamgraph.recommend import ProposalStatus, parse_config, recommend_principal
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.io import write_snapshot
from iamgraph.snapshot.model import Snapshot
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.judgement import EvidenceJudgement, Removal
from iamgraph.usage.logged import LoggedConfigError, LoggedOverride, parse_logged_config, trail_of
from iamgraph.usage.store import UsageStore
from iamgraph.usage.types import ObservabilityKind
from iamgraph.usage.unused import FindingKind, UnusedAnalyzer

NOW = datetime(2024, 3, 31, tzinfo=UTC)


def _get_object(region: str, n: int) -> dict[str, Any]:
    return {"eventVersion": "1.09", "userIdentity": identity(), "eventTime": "2024-03-05T10:00:00Z",
            "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": region,
            "sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2",
            "requestParameters": {"bucketName": "data", "key": "in/k", "Host": "data.s3.amazonaws.com"},
            "responseElements": None, "eventID": f"get-{region}-{n}", "readOnly": True,
            "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::data/in/k"},
                          {"accountId": ACCT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::data"}],
            "eventType": "AwsApiCall", "managementEvent": False, "recipientAccountId": ACCT,
            "eventCategory": "Data"}


def _describe(region: str, n: int) -> dict[str, Any]:
    return {"eventVersion": "1.09", "userIdentity": identity(), "eventTime": "2024-03-06T10:00:00Z",
            "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "awsRegion": region,
            "sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2",
            "requestParameters": {"instancesSet": {}, "filterSet": {}}, "responseElements": None,
            "eventID": f"describe-{region}-{n}", "readOnly": True, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": ACCT, "eventCategory": "Management"}


def _file(location: Path, region: str, day: str, n: int, records: Sequence[dict[str, Any]],
          org: str | None = None) -> None:
    y, m, d = day.split("-")
    base = location / "AWSLogs" / (org or "") / ACCT / "CloudTrail" / region / y / m / d
    base.mkdir(parents=True, exist_ok=True)
    name = f"{ACCT}_CloudTrail_{region}_{y}{m}{d}T0000Z_{location.name}{n}.json.gz"
    # The padding makes each file's bytes unique (identical bytes under two names are one re-delivered file).
    body = json.dumps({"Records": list(records)}) + " " * (n + 7 * len(location.name) + len(region))
    (base / name).write_bytes(gzip.compress(body.encode()))


def _covered(location: Path, region: str) -> None:
    """Files on the window's first and last days: the trail was on throughout."""
    _file(location, region, "2024-01-01", 90, [_describe(region, 90)])
    _file(location, region, "2024-03-31", 91, [_describe(region, 91)])


def _snapshot(root: Path) -> Snapshot:
    root.mkdir(parents=True, exist_ok=True)
    gaad = {"UserDetailList": [], "GroupDetailList": [], "Policies": [], "RoleDetailList": [{
        "Path": "/", "RoleName": "etl", "RoleId": "AROAEXAMPLEETL", "Arn": ROLE, "CreateDate": "2023-01-01T00:00:00Z",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "InstanceProfileList": [], "RolePolicyList": [{"PolicyName": "etl", "PolicyDocument": POLICY}],
        "AttachedManagedPolicies": [], "Tags": []}]}
    (root / "gaad.json").write_text(json.dumps(gaad))
    return load_paths([root / "gaad.json"], collected_at="2024-03-31T00:00:00Z")


class Case:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.snapshot = _snapshot(tmp / "in")
        self.store = UsageStore(tmp / "u.duckdb")

    def ingest(self, *locations: Path) -> None:
        for loc in locations:
            ingest_location(self.store, str(loc))

    def judgement(self, logged: LoggedOverride | None = None) -> EvidenceJudgement:
        return EvidenceJudgement(self.store, (), window_start=datetime(2024, 1, 1), window_end=datetime(2024, 3, 31),
                                 logged=logged)

    def removal(self, action: str, logged: LoggedOverride | None = None) -> Removal:
        j = self.judgement(logged)
        return j.removal(ROLE, action, accounts=j.accounts_of(ROLE, ACCT), cloudtrail_services={"s3", "ec2"})

    def recommended_removals(self, config: dict[str, Any] | None = None) -> tuple[str, ...]:
        rec = recommend_principal(SnapshotIndex(self.snapshot), self.store, ROLE, days=90, now=NOW,
                                  config=parse_config(config or {}))
        (p,) = rec.proposals
        assert p.status is ProposalStatus.EMITTED, (p.status, p.reason)
        return p.removed_actions

    def unused_actions(self, logged: LoggedOverride | None = None) -> set[str]:
        report = UnusedAnalyzer(self.snapshot, self.store, days=90, now=NOW, logged=logged).run(principals=[ROLE])
        return {a for f in report.findings if f.principal_arn == ROLE and f.kind in
                (FindingKind.UNUSED_ACTION, FindingKind.UNUSED_SERVICE)
                for a in ((f.subject,) if f.kind is FindingKind.UNUSED_ACTION else f.actions)}


@pytest.fixture
def case(tmp_path: Path) -> Iterator[Case]:
    c = Case(tmp_path)
    yield c
    c.store.close()


def test_a_region_delivered_by_a_trail_without_data_events_keeps_the_data_event_actions(case: Case) -> None:
    """Trail one (multi-region, S3 data events) delivers us-east-1; trail two, another location, delivers eu-west-1
    with management events only. The role reads objects in us-east-1 and describes instances in eu-west-1: its
    unused s3:PutObject may have been called in eu-west-1, where nothing would show it."""
    one, two = case.tmp / "trail-one", case.tmp / "trail-two"
    _covered(one, "us-east-1")
    _file(one, "us-east-1", "2024-03-05", 1, [_get_object("us-east-1", 1)])
    _file(two, "eu-west-1", "2024-03-06", 1, [_describe("eu-west-1", 1)])
    case.ingest(one, two)
    assert case.removal("s3:PutObject") is Removal.KEEP_UNOBSERVABLE
    assert case.judgement().observability("s3:PutObject", {ACCT}).kind is ObservabilityKind.DATA_EVENT
    assert case.removal("sqs:ListQueues") is Removal.UNOBSERVED  # management events are logged in both regions
    # recommend and unused agree: PutObject stays, ListQueues goes.
    removed = case.recommended_removals()
    assert "s3:PutObject" not in removed and "sqs:ListQueues" in removed
    unused = case.unused_actions()
    assert "s3:PutObject" not in unused and "sqs:ListQueues" in unused
    # What was logged, per account and region, with the trail that delivered it.
    places = {(p.region): p for p in case.judgement().where_logged()}
    assert places["us-east-1"].data_events == ("s3",) and places["us-east-1"].data_resource_types == (
        "AWS::S3::Object",)
    assert places["us-east-1"].trails == (f"{one}/AWSLogs/",)
    assert places["eu-west-1"].data_events == () and places["eu-west-1"].management_events
    assert places["eu-west-1"].trails == (f"{two}/AWSLogs/",) and places["eu-west-1"].from_trail == ()


def test_one_trail_logs_alike_in_every_region_it_delivers(case: Case) -> None:
    """The same two regions delivered by one trail: its S3 data events in us-east-1 say it logs them in eu-west-1,
    so the unused PutObject goes (in recommend and unused alike), and the summary says what was inferred."""
    one = case.tmp / "trail-one"
    _covered(one, "us-east-1")
    _file(one, "us-east-1", "2024-03-05", 1, [_get_object("us-east-1", 1)])
    _file(one, "eu-west-1", "2024-03-06", 1, [_describe("eu-west-1", 1)])
    case.ingest(one)
    assert case.removal("s3:PutObject") is Removal.UNOBSERVED
    assert "s3:PutObject" in case.recommended_removals()
    assert "s3:PutObject" in case.unused_actions()
    (eu,) = [p for p in case.judgement().where_logged() if p.region == "eu-west-1"]
    assert eu.data_events == ("s3",) and eu.from_trail == ("s3",)


def test_an_organization_trail_and_an_account_trail_in_one_bucket_are_two_trails(case: Case) -> None:
    """``AWSLogs/o-id/<account>/`` (the organization trail) and ``AWSLogs/<account>/`` (the account's own) under one
    location: the account trail's S3 data events say nothing of the organization trail's eu-west-1."""
    loc = case.tmp / "bucket"
    _covered(loc, "us-east-1")
    _file(loc, "us-east-1", "2024-03-05", 1, [_get_object("us-east-1", 1)])
    _file(loc, "eu-west-1", "2024-03-06", 1, [_describe("eu-west-1", 1)], org="o-exampleorgid")
    case.ingest(loc)
    assert case.removal("s3:PutObject") is Removal.KEEP_UNOBSERVABLE
    assert trail_of(f"{loc}/AWSLogs/o-exampleorgid/{ACCT}/CloudTrail/eu-west-1/2024/03/06/x.json.gz") == (
        f"{loc}/AWSLogs/o-exampleorgid/", ACCT, "eu-west-1")


def test_a_region_whose_trail_logs_no_management_events_keeps_management_actions(case: Case) -> None:
    """A second trail delivers eu-west-1 with S3 data events only (event selectors without management events):
    a management action the role may have called there would not show, so the unused sqs:ListQueues stays."""
    one, two = case.tmp / "trail-one", case.tmp / "trail-two"
    _covered(one, "us-east-1")
    _file(one, "us-east-1", "2024-03-05", 1, [_get_object("us-east-1", 1), _describe("us-east-1", 1)])
    _file(two, "eu-west-1", "2024-03-05", 1, [_get_object("eu-west-1", 2)])
    case.ingest(one, two)
    obs = case.judgement().observability("sqs:ListQueues", {ACCT})
    assert obs.kind is ObservabilityKind.MANAGEMENT_EVENT and "management" in obs.reason
    assert case.removal("sqs:ListQueues") is Removal.KEEP_UNOBSERVABLE
    assert "sqs:ListQueues" not in case.recommended_removals()
    assert "sqs:ListQueues" not in case.unused_actions()
    assert case.removal("s3:PutObject") is Removal.UNOBSERVED  # S3 data events are logged in both regions


def test_the_configuration_says_what_a_region_logs(case: Case) -> None:
    one, two = case.tmp / "trail-one", case.tmp / "trail-two"
    _covered(one, "us-east-1")
    _file(one, "us-east-1", "2024-03-05", 1, [_get_object("us-east-1", 1)])
    _file(two, "eu-west-1", "2024-03-06", 1, [_describe("eu-west-1", 1)])
    case.ingest(one, two)
    config = {"evidence": {"logged": {f"{ACCT}/eu-west-1": {"data_events": ["s3"]}}}}
    logged = parse_logged_config(config)
    assert case.removal("s3:PutObject", logged) is Removal.UNOBSERVED
    assert "s3:PutObject" in case.recommended_removals(config)
    assert "s3:PutObject" in case.unused_actions(logged)
    # The most specific key wins, field by field: "*" says no management events, the account says S3 data events.
    narrow = parse_logged_config({"evidence": {"logged": {"*": {"management_events": False, "data_events": []},
                                                          ACCT: {"data_events": ["s3"]}}}})
    assert narrow.lookup(ACCT, "eu-west-1") == (False, frozenset({"s3"}))
    assert narrow.lookup("444455556666", "us-east-1") == (False, frozenset())
    assert case.removal("s3:PutObject", narrow) is Removal.UNOBSERVED
    assert case.removal("sqs:ListQueues", narrow) is Removal.KEEP_UNOBSERVABLE
    # The older recommend.data_events form still works, under evidence.logged.
    older = {"recommend": {"data_events": {ACCT: ["s3"]}}}
    assert "s3:PutObject" in case.recommended_removals(older)


@pytest.mark.parametrize(("section", "where"), [
    ({"logged": {"12345": {"data_events": ["s3"]}}}, "evidence.logged.12345"),
    ({"logged": {ACCT: {"data_events": ["nosuch"]}}}, f"evidence.logged.{ACCT}.data_events"),
    ({"logged": {ACCT: {"management_events": "yes"}}}, f"evidence.logged.{ACCT}.management_events"),
    ({"logged": {ACCT: {"data": ["s3"]}}}, f"evidence.logged.{ACCT}"),
    ({"other": 1}, "evidence"),
    ([1], "evidence"),
])
def test_a_malformed_evidence_section_is_named(section: Any, where: str) -> None:
    with pytest.raises(LoggedConfigError) as exc:
        parse_logged_config({"evidence": section}, source="cfg.yaml")
    assert exc.value.location == where


def test_an_older_store_without_regions_is_judged_per_account(case: Case) -> None:
    """A store filled before the ``logged`` table existed: its evidence is judged per account, as before."""
    one = case.tmp / "trail-one"
    _covered(one, "us-east-1")
    _file(one, "us-east-1", "2024-03-05", 1, [_get_object("us-east-1", 1)])
    _file(one, "eu-west-1", "2024-03-06", 1, [_describe("eu-west-1", 1)])
    case.ingest(one)
    case.store.con.execute("DROP TABLE logged")
    assert {r[1] for r in case.store.logged_rows()} == {""}
    assert case.removal("s3:PutObject") is Removal.UNOBSERVED
    assert case.removal("sqs:ListQueues") is Removal.UNOBSERVED


def test_unused_reads_the_evidence_section_of_the_config_file(case: Case, tmp_path: Path) -> None:
    one, two = case.tmp / "trail-one", case.tmp / "trail-two"
    _covered(one, "us-east-1")
    _file(one, "us-east-1", "2024-03-05", 1, [_get_object("us-east-1", 1)])
    _file(two, "eu-west-1", "2024-03-06", 1, [_describe("eu-west-1", 1)])
    case.ingest(one, two)
    case.store.close()
    snap = tmp_path / "snap.json"
    write_snapshot(case.snapshot, snap)
    cfg = tmp_path / "iamgraph.yaml"
    args = ["unused", "-s", str(snap), "--db", str(tmp_path / "u.duckdb"), "--as-of", "2024-03-31",
            "--json", "--config", str(cfg)]

    def actions(config: str) -> set[str]:
        cfg.write_text(config)
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert {p["region"] for p in out["logged"]} == {"us-east-1", "eu-west-1"}
        return {a for f in out["findings"] if f["kind"] in ("unused-action", "unused-service")
                for a in ([f["subject"]] if f["kind"] == "unused-action" else f["actions"])}

    assert "s3:PutObject" not in actions("{}\n")
    assert "s3:PutObject" in actions(f'evidence:\n  logged:\n    "{ACCT}/eu-west-1": {{data_events: [s3]}}\n')
    cfg.write_text('evidence:\n  logged:\n    "eu-west-1": {data_events: [s3]}\n')
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "evidence.logged.eu-west-1" in bad.output
