"""Deviation alerts on the demo organization: every planted deviation alerts, normal activity does not."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from iamgraph.demo import DemoConfig, generate_demo
from iamgraph.detect.baseline import Baselines
from iamgraph.detect.config import DetectConfig, SinkConfig, SinkKind
from iamgraph.detect.events import EventReader
from iamgraph.detect.rules import Detector
from iamgraph.detect.run import Window, run_once
from iamgraph.detect.sinks import AsffFileSink
from iamgraph.detect.types import Alert, CallEvent, RuleId
from iamgraph.usage.ingest import local_files

# One demo organization per run: keep the module on one xdist worker (the Makefile runs --dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("detect-demo")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("detect-demo")
    generate_demo(out, DemoConfig())
    planted = json.loads((out / "planted.json").read_text())
    end = datetime.fromisoformat(planted["window"]["end"].replace("Z", "+00:00"))
    # Detection = the last day (where the planted deviations are); baseline = every day before it.
    window = Window.of(end - timedelta(days=1), end, planted["window"]["days"] - 1)
    spool = out / "spool"
    asff = out / "findings.json"
    sink = AsffFileSink(SinkConfig(name="asff", kind=SinkKind.ASFF, path=str(asff)))
    report, _ = run_once(
        window=window,
        config=DetectConfig(spool_dir=str(spool)),
        sinks=[sink],
        cloudtrail=str(out / "cloudtrail"),
    )
    return {
        "out": out,
        "planted": planted,
        "report": report,
        "window": window,
        "asff": asff,
        "sink": sink,
        "spool": spool,
    }


def _deviations(planted: dict[str, Any]) -> list[dict[str, Any]]:
    items = [i for i in planted["items"] if i["kind"] == "deviation"]
    assert len(items) >= 4, "the demo plants four deviations"
    return items


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _in_window(alert: Alert, item: dict[str, Any]) -> bool:
    lo, hi = (_t(x) for x in item["window"])
    return lo <= alert.time <= hi and lo <= alert.last_time <= hi


def _explains(item: dict[str, Any], alert: Alert) -> bool:
    """The alert is the one this planted deviation should raise (rule, principal, subject, time)."""
    if alert.principal not in item["principals"] or not _in_window(alert, item):
        return False
    pid = item["id"]
    if pid == "deviation.new-iam-actions":
        return alert.rule is RuleId.NEW_ACTION and alert.action in item["actions"]
    if pid == "deviation.new-region":
        return alert.rule is RuleId.NEW_REGION and alert.region == item["region"]
    if pid == "deviation.stop-logging":
        return alert.rule is RuleId.SENSITIVE_ACTION and alert.action == "cloudtrail:StopLogging"
    if pid == "deviation.access-denied-burst":
        return alert.rule is RuleId.ACCESS_DENIED_BURST and len(alert.event_ids) == item["count"]
    return False


def test_every_planted_deviation_alerts(demo: dict[str, Any]) -> None:
    alerts = demo["report"].result.alerts
    for item in _deviations(demo["planted"]):
        hits = [a for a in alerts if _explains(item, a)]
        if item["id"] == "deviation.new-iam-actions":
            # One alert per new action.
            assert {a.action for a in hits} == set(item["actions"]), item["id"]
        else:
            assert hits, f"{item['id']} did not alert; alerts: {[a.title for a in alerts]}"


def test_normal_activity_does_not_alert(demo: dict[str, Any]) -> None:
    report = demo["report"]
    planted = _deviations(demo["planted"])
    # The last day also carries ordinary calls: they must be there (else this test proves nothing) ...
    planted_principals = {p for i in planted for p in i["principals"]}
    assert report.result.events > 60
    assert report.baseline_events > 3000
    # ... and every alert must be explained by a planted deviation.
    unexplained = [a.title for a in report.result.alerts if not any(_explains(i, a) for i in planted)]
    assert unexplained == []
    assert {a.principal for a in report.result.alerts} <= planted_principals
    assert report.result.no_baseline == {}
    assert report.bad_files == []


def test_alert_evidence(demo: dict[str, Any]) -> None:
    alerts = demo["report"].result.alerts
    stop = next(a for a in alerts if a.rule is RuleId.SENSITIVE_ACTION)
    assert stop.severity.value == "CRITICAL"
    assert (
        stop.account_id
        == next(i for i in demo["planted"]["items"] if i["id"] == "deviation.stop-logging")["account_id"]
    )
    assert stop.evidence["baseline_action"] is None  # never called StopLogging before
    base = stop.evidence["baseline"]
    assert isinstance(base, dict) and base["events"] > 0 and base["regions"] == ["us-east-1"]
    region = next(a for a in alerts if a.rule is RuleId.NEW_REGION)
    assert region.evidence["new_region"] == "eu-west-1" and len(region.event_ids) == 3
    assert region.source_ip
    new = [a for a in alerts if a.rule is RuleId.NEW_ACTION]
    for a in new:
        svc = a.evidence["baseline_service"]
        # SAML-IdentityAdmin read IAM during the baseline: the service was known, the action was not.
        assert isinstance(svc, dict) and svc["count"] > 0 and svc["first_seen"] < svc["last_seen"]


def test_ids_are_stable_and_delivery_is_not_repeated(demo: dict[str, Any]) -> None:
    first = demo["report"]
    # The same detection again (same window, same baselines built anew): the same ids.
    again, _ = run_once(
        window=demo["window"],
        config=DetectConfig(spool_dir=str(demo["spool"])),
        sinks=[demo["sink"]],
        cloudtrail=str(demo["out"] / "cloudtrail"),
    )
    assert [a.id for a in again.result.alerts] == [a.id for a in first.result.alerts]
    (d1,), (d2,) = first.deliveries, again.deliveries
    assert d1.queued == d1.delivered == len(first.result.alerts) and d1.pending == 0
    assert d2.queued == 0 and d2.duplicates == len(first.result.alerts) and d2.delivered == 0
    findings = json.loads(demo["asff"].read_text())["Findings"]
    assert len(findings) == len(first.result.alerts)


@pytest.fixture(scope="module")
def all_events(demo: dict[str, Any]) -> list[CallEvent]:
    reader = EventReader()
    return list(reader.read_files(local_files(str(demo["out"] / "cloudtrail"))))


def _between(events: list[CallEvent], lo: datetime, hi: datetime) -> list[CallEvent]:
    return [e for e in events if lo <= e.time < hi]


def test_burst_threshold_is_what_decides(demo: dict[str, Any], all_events: list[CallEvent]) -> None:
    """The planted burst is 40 refusals in ~5 minutes: a threshold of 41 must not alert on it, 40 must."""
    window: Window = demo["window"]
    events = _between(all_events, window.start, window.end)
    assert sum(e.denied for e in events) >= 40
    cfg = DetectConfig(burst_threshold=41, burst_window=timedelta(minutes=10))
    assert not [
        a for a in Detector(cfg).detect(events, Baselines()).alerts if a.rule is RuleId.ACCESS_DENIED_BURST
    ]
    cfg = DetectConfig(burst_threshold=40, burst_window=timedelta(minutes=10))
    bursts = [
        a for a in Detector(cfg).detect(events, Baselines()).alerts if a.rule is RuleId.ACCESS_DENIED_BURST
    ]
    assert len(bursts) == 1 and len(bursts[0].event_ids) == 40


def test_earlier_days_raise_no_sensitive_or_burst_alerts(
    demo: dict[str, Any], all_events: list[CallEvent]
) -> None:
    """Before the last day nobody stops a trail or hammers AccessDenied: those rules stay quiet there.

    (New-action alerts can legitimately appear on earlier days: the generator places each baseline
    call's first
    occurrence on some day of the window.)
    """
    end = demo["window"].start
    start = end - timedelta(days=30)
    base = Baselines()
    base.add_events(_between(all_events, start - timedelta(days=59), start))
    events = _between(all_events, start, end)
    assert len(events) > 500
    result = Detector().detect(events, base)
    assert not [a for a in result.alerts if a.rule in (RuleId.SENSITIVE_ACTION, RuleId.ACCESS_DENIED_BURST)]
