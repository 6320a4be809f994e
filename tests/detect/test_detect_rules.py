"""Rules on small hand-written CloudTrail logs: each rule's trigger, its boundary, and what must not alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from detect_helpers import ACCOUNT, role_record, write_log
from typer.testing import CliRunner

from iamgraph.cli.app import app
from iamgraph.detect.config import DetectConfig, SinkConfig, SinkKind
from iamgraph.detect.events import EventReader, principal_of
from iamgraph.detect.run import Follower, Window, parse_since, run_once
from iamgraph.detect.sinks import StdoutSink
from iamgraph.detect.types import Alert, RuleId, Severity
from iamgraph.errors import InputError

END = datetime(2026, 3, 10, tzinfo=UTC)
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"


def baseline_records() -> list[dict[str, object]]:
    """30 days of an app role: reads and PutObject in us-east-1, from one account."""
    out = []
    for day in range(1, 31):
        when = (END - timedelta(days=day)).replace(hour=10).isoformat().replace("+00:00", "Z")
        out.append(role_record("app", "s3.amazonaws.com", "PutObject", when, read_only=False))
        out.append(role_record("app", "s3.amazonaws.com", "GetObject", when, read_only=True))
        out.append(role_record("app", "iam.amazonaws.com", "GetRole", when, read_only=True))
    return out


def at(hour: int, minute: int = 0, second: int = 0) -> str:
    return (
        (END - timedelta(hours=24 - hour, minutes=-minute, seconds=-second))
        .isoformat()
        .replace("+00:00", "Z")
    )


def detect(tmp_path: Path, window_records: list[dict[str, object]], **cfg: object) -> list[Alert]:
    root = tmp_path / "logs"
    write_log(root, baseline_records(), name="base")
    if window_records:
        write_log(root, window_records, name="window")
    config = DetectConfig(spool_dir=str(tmp_path / "spool"), **cfg)  # type: ignore[arg-type]
    rep, _ = run_once(
        window=Window.of(END - timedelta(hours=24), END, 90), config=config, sinks=[], cloudtrail=str(root)
    )
    return rep.result.alerts


def test_routine_calls_do_not_alert(tmp_path: Path) -> None:
    alerts = detect(
        tmp_path,
        [
            role_record("app", "s3.amazonaws.com", "PutObject", at(9), read_only=False),
            role_record("app", "s3.amazonaws.com", "GetObject", at(9, 5), read_only=True),
            role_record("app", "iam.amazonaws.com", "GetRole", at(9, 6), read_only=True, ip="198.51.100.7"),
        ],
    )
    assert alerts == []


def test_new_mutating_action_alerts_but_a_new_read_does_not(tmp_path: Path) -> None:
    alerts = detect(
        tmp_path,
        [
            role_record("app", "s3.amazonaws.com", "DeleteObject", at(9), read_only=False),
            role_record("app", "s3.amazonaws.com", "DeleteObject", at(9, 1), read_only=False),
            role_record("app", "s3.amazonaws.com", "ListBucket", at(9, 2), read_only=True),
            role_record("app", "iam.amazonaws.com", "CreateAccessKey", at(11), read_only=False),
        ],
    )
    by_action = {a.action: a for a in alerts}
    assert set(by_action) == {"s3:DeleteObject", "iam:CreateAccessKey"}
    assert all(a.rule is RuleId.NEW_ACTION for a in alerts)
    assert len(by_action["s3:DeleteObject"].event_ids) == 2
    assert by_action["s3:DeleteObject"].severity is Severity.MEDIUM
    # IAM is a sensitive service (and CreateAccessKey is Write in the catalog): high.
    assert by_action["iam:CreateAccessKey"].severity is Severity.HIGH


def test_read_only_absent_falls_back_on_access_level(tmp_path: Path) -> None:
    """No ``readOnly``: Write/Permissions management/Tagging actions count as mutating, Read does not."""
    alerts = detect(
        tmp_path,
        [
            role_record("app", "s3.amazonaws.com", "DeleteBucket", at(9), read_only=None),
            role_record("app", "s3.amazonaws.com", "GetBucketLocation", at(9, 1), read_only=None),
            role_record("app", "s3.amazonaws.com", "PutBucketTagging", at(9, 2), read_only=None),
        ],
    )
    assert {a.action for a in alerts} == {"s3:DeleteBucket", "s3:PutBucketTagging"}


def test_refused_new_action_is_low(tmp_path: Path) -> None:
    (alert,) = detect(
        tmp_path,
        [
            role_record(
                "app", "iam.amazonaws.com", "CreateUser", at(9), read_only=False, error_code="AccessDenied"
            ),
        ],
    )
    assert alert.rule is RuleId.NEW_ACTION and alert.severity is Severity.LOW
    assert alert.evidence["denied"] == 1


def test_sensitive_action_alerts_even_when_routine(tmp_path: Path) -> None:
    """PutBucketPolicy is in the baseline here, and still alerts: it is on the sensitive list."""
    root_records = [role_record("app", "s3.amazonaws.com", "PutBucketPolicy", at(9), read_only=False)]
    base_extra = role_record(
        "app",
        "s3.amazonaws.com",
        "PutBucketPolicy",
        (END - timedelta(days=3)).isoformat().replace("+00:00", "Z"),
        read_only=False,
    )
    write_log(tmp_path / "logs", [base_extra], name="extra")
    alerts = detect(tmp_path, root_records)
    (alert,) = alerts
    assert alert.rule is RuleId.SENSITIVE_ACTION and alert.action == "s3:PutBucketPolicy"
    assert alert.severity is Severity.HIGH
    assert (
        isinstance(alert.evidence["baseline_action"], dict)
        and alert.evidence["baseline_action"]["count"] == 1
    )


def test_new_region_and_new_account(tmp_path: Path) -> None:
    alerts = detect(
        tmp_path,
        [
            role_record(
                "app", "s3.amazonaws.com", "GetObject", at(3), read_only=True, region="ap-southeast-2"
            ),
            role_record(
                "app", "s3.amazonaws.com", "PutObject", at(4), read_only=False, recipient="999988887777"
            ),
        ],
    )
    by_rule = {a.rule: a for a in alerts}
    assert set(by_rule) == {RuleId.NEW_REGION, RuleId.NEW_ACCOUNT}
    assert by_rule[RuleId.NEW_REGION].severity is Severity.MEDIUM  # read-only in the new region
    assert by_rule[RuleId.NEW_REGION].evidence["new_region"] == "ap-southeast-2"
    assert by_rule[RuleId.NEW_ACCOUNT].severity is Severity.HIGH  # a write into a new account
    assert by_rule[RuleId.NEW_ACCOUNT].evidence["new_recipient_account"] == "999988887777"


def test_burst_boundary(tmp_path: Path) -> None:
    def refusals(n: int, spacing: int) -> list[dict[str, object]]:
        return [
            role_record(
                "app",
                "secretsmanager.amazonaws.com",
                "GetSecretValue",
                at(9, 0, i * spacing),
                read_only=True,
                error_code="AccessDeniedException",
                event_id=f"d{n}-{spacing}-{i}",
            )
            for i in range(n)
        ]

    assert detect(tmp_path / "a", refusals(9, 10)) == []
    (burst,) = detect(tmp_path / "b", refusals(10, 10))
    assert burst.rule is RuleId.ACCESS_DENIED_BURST and len(burst.event_ids) == 10
    # Ten refusals spread over more than ten minutes are not a burst.
    assert detect(tmp_path / "c", refusals(10, 70)) == []


def test_ignored_principals_and_min_severity(tmp_path: Path) -> None:
    recs = [role_record("app", "iam.amazonaws.com", "CreateUser", at(9), read_only=False)]
    assert detect(tmp_path / "a", recs, ignore_principals=("arn:aws:iam::*:role/app",)) == []
    assert detect(tmp_path / "b", recs, min_severity=Severity.CRITICAL) == []
    assert len(detect(tmp_path / "c", recs, min_severity=Severity.HIGH)) == 1


def test_principal_without_baseline_is_reported_not_alerted(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    write_log(root, baseline_records(), name="base")
    write_log(
        root, [role_record("newcomer", "s3.amazonaws.com", "PutObject", at(9), read_only=False)], name="w"
    )
    rep, _ = run_once(
        window=Window.of(END - timedelta(hours=24), END, 90),
        config=DetectConfig(spool_dir=str(tmp_path / "s")),
        sinks=[],
        cloudtrail=str(root),
    )
    assert rep.result.alerts == []
    assert rep.result.no_baseline == {f"arn:aws:iam::{ACCOUNT}:role/newcomer": 1}


def test_events_outside_both_windows_are_ignored(tmp_path: Path) -> None:
    """A call after --until is not in the detection window (and not part of the baseline either)."""
    later = (END + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    assert (
        detect(tmp_path, [role_record("app", "iam.amazonaws.com", "CreateUser", later, read_only=False)])
        == []
    )


def test_attribution_matches_the_usage_store() -> None:
    role = role_record("r", "s3.amazonaws.com", "GetObject", at(1))["userIdentity"]
    assert principal_of(role) == f"arn:aws:iam::{ACCOUNT}:role/r"  # type: ignore[arg-type]
    assert (
        principal_of({"type": "AWSService", "invokedBy": "lambda.amazonaws.com"})
        == "service:lambda.amazonaws.com"
    )
    assert principal_of({"type": "AWSAccount", "accountId": "123456789012"}) == "account:123456789012"
    assert principal_of({"type": "SAMLUser", "principalId": "x:y"}) == "samluser:x:y"
    assert principal_of({"type": "IAMUser", "arn": "arn:aws:iam::1:user/u"}) == "arn:aws:iam::1:user/u"
    assert principal_of({}) is None


def test_bad_files_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    good = write_log(root, baseline_records(), name="base")
    bad = good.with_name(good.name.replace("base", "broken"))
    bad.write_bytes(b"\x1f\x8b not really gzip")
    reader = EventReader()
    rep, _ = run_once(
        window=Window.of(END - timedelta(hours=24), END, 90),
        config=DetectConfig(spool_dir=str(tmp_path / "s")),
        sinks=[],
        cloudtrail=str(root),
        reader=reader,
    )
    assert [b.path for b in rep.bad_files] == [str(bad.resolve())]
    assert "cannot read" in rep.bad_files[0].reason


def test_parse_since() -> None:
    assert parse_since("24h", END) == END - timedelta(hours=24)
    assert parse_since("7d", END) == END - timedelta(days=7)
    assert parse_since("2026-03-09", END) == datetime(2026, 3, 9, tzinfo=UTC)
    with pytest.raises(InputError, match="--since"):
        parse_since("yesterday", END)
    with pytest.raises(InputError, match="empty"):
        Window.of(END, END, 90)


def test_follow_picks_up_new_files_once(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    write_log(root, baseline_records(), name="base")
    cfg = DetectConfig(spool_dir=str(tmp_path / "spool"))
    lines: list[str] = []
    sink = StdoutSink(SinkConfig(name="out", kind=SinkKind.STDOUT), lines.append)
    _, baselines = run_once(
        window=Window.of(END - timedelta(hours=24), END, 90), config=cfg, sinks=[sink], cloudtrail=str(root)
    )
    follower = Follower(str(root), config=cfg, sinks=[sink], baselines=baselines)
    step = {"n": 0}

    def sleep(_: float) -> None:
        # Between polls a new file lands: first a new action, then the same action again (no new alert).
        step["n"] += 1
        recs = [
            role_record(
                "app",
                "sqs.amazonaws.com",
                "DeleteQueue",
                at(12, step["n"]),
                read_only=False,
                event_id=f"follow-{step['n']}",
            )
        ]
        write_log(root, recs, name=f"follow{step['n']}")

    polls = follower.loop(interval=5, max_polls=3, sleep=sleep)
    assert polls == 3
    alerts = [json.loads(x) for x in lines]
    assert [a["action"] for a in alerts] == ["sqs:DeleteQueue"]
    assert alerts[0]["event_ids"] == ["follow-1"]


def test_cli_detect_json_lines(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    write_log(root, baseline_records(), name="base")
    write_log(
        root,
        [role_record("app", "cloudtrail.amazonaws.com", "StopLogging", at(9), read_only=False)],
        name="w",
    )
    args = [
        "detect",
        "--cloudtrail",
        str(root),
        "--since",
        "24h",
        "--until",
        END.isoformat(),
        "--spool-dir",
        str(tmp_path / "spool"),
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"account_id"')]
    assert [(a["rule"], a["action"], a["severity"]) for a in alerts] == [
        ("sensitive-action", "cloudtrail:StopLogging", "CRITICAL")
    ]
    # A second run delivers nothing new.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and '"rule"' not in again.stdout


def test_cli_errors_name_the_input(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["detect", "--cloudtrail", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such directory" in r.output
    r = CliRunner().invoke(app, ["detect"])
    assert r.exit_code == 2 and "--cloudtrail" in r.output
    r = CliRunner().invoke(app, ["detect", "--db", str(tmp_path / "u.duckdb")])
    assert r.exit_code == 2 and "--db adds a baseline" in r.output
    cfg = tmp_path / "iamgraph.yaml"
    cfg.write_text("detect:\n  sinks:\n    - type: webhook\n      url: ftp://x\n")
    r = CliRunner().invoke(app, ["detect", "--cloudtrail", str(tmp_path), "--config", str(cfg)])
    assert r.exit_code == 2 and "detect.sinks[0].url" in r.output
    r = CliRunner().invoke(app, ["detect", "--cloudtrail", str(tmp_path), "--sink", "pager"])
    assert r.exit_code == 2 and "no sink named 'pager'" in r.output


def test_usage_store_as_baseline(tmp_path: Path) -> None:
    """--db: the baseline comes from the usage store's aggregate; regions are unknown there, so new-region is
    reported as not checked rather than alerting on every call."""
    from iamgraph.usage.ingest import ingest_location
    from iamgraph.usage.store import UsageStore

    base_dir, window_dir = tmp_path / "base", tmp_path / "window"
    write_log(base_dir, baseline_records(), name="base")
    db = tmp_path / "usage.duckdb"
    with UsageStore(db) as store:
        stats = ingest_location(store, str(base_dir))
    assert stats.files_ingested == 1
    write_log(
        window_dir,
        [
            role_record("app", "s3.amazonaws.com", "PutObject", at(9), read_only=False),
            role_record("app", "s3.amazonaws.com", "DeleteObject", at(10), read_only=False),
            role_record("app", "s3.amazonaws.com", "GetObject", at(11), read_only=True, region="eu-north-1"),
        ],
        name="w",
    )
    rep, _ = run_once(
        window=Window.of(END - timedelta(hours=24), END, 90),
        config=DetectConfig(spool_dir=str(tmp_path / "s")),
        sinks=[],
        cloudtrail=str(window_dir),
        db=str(db),
    )
    assert rep.baseline_store_rows >= 3 and rep.baseline_events == 0
    assert [(a.rule, a.action) for a in rep.result.alerts] == [(RuleId.NEW_ACTION, "s3:DeleteObject")]
    assert rep.result.unknown_regions == {ROLE}
    fact = rep.result.alerts[0].evidence["baseline"]
    assert isinstance(fact, dict) and fact["regions"] is None and fact["events"] == 90


def test_follow_burst_across_polls_alerts_once(tmp_path: Path) -> None:
    """Six refusals in one file, six more in the next poll's file: one burst of twelve; three more extend
    the same burst (same first event, same id), so nothing new is delivered."""
    root = tmp_path / "logs"
    write_log(root, baseline_records(), name="base")
    cfg = DetectConfig(spool_dir=str(tmp_path / "spool"))
    lines: list[str] = []
    sink = StdoutSink(SinkConfig(name="out", kind=SinkKind.STDOUT), lines.append)
    rep, baselines = run_once(
        window=Window.of(END - timedelta(hours=24), END, 90), config=cfg, sinks=[sink], cloudtrail=str(root)
    )
    follower = Follower(str(root), config=cfg, sinks=[sink], baselines=baselines, open_denied=rep.open_denied)
    batches = iter([(0, 6), (6, 6), (12, 3)])

    def sleep(_: float) -> None:
        start, n = next(batches)
        recs = [
            role_record(
                "app",
                "kms.amazonaws.com",
                "Decrypt",
                at(12, 0, 20 * (start + i)),
                read_only=True,
                error_code="AccessDeniedException",
                event_id=f"deny-{start + i}",
            )
            for i in range(n)
        ]
        write_log(root, recs, name=f"deny{start}")

    follower.loop(interval=1, max_polls=4, sleep=sleep)
    alerts = [json.loads(x) for x in lines]
    assert [(a["rule"], len(a["event_ids"]), a["event_ids"][0]) for a in alerts] == [
        ("access-denied-burst", 12, "deny-0")
    ]


def test_a_record_delivered_twice_is_one_call(tmp_path: Path) -> None:
    """An organization trail and an account trail can both deliver a record: same eventID, one call."""
    rec = role_record("app", "s3.amazonaws.com", "DeleteObject", at(9), read_only=False, event_id="dup-1")
    root = tmp_path / "logs"
    write_log(root / "org", [rec], name="org")
    (alert,) = detect(tmp_path, [rec])
    assert alert.event_ids == ("dup-1",) and alert.evidence["calls"] == 1
