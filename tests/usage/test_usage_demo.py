"""End to end on the demo organization: every unused permission the demo plants is reported, and nothing the
demo's CloudTrail shows in use is reported unused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from iamgraph.demo import generate_demo
from iamgraph.demo.config import DemoConfig
from iamgraph.snapshot.io import read_snapshot
from iamgraph.snapshot.model import Snapshot
from iamgraph.usage.access_advisor import ingest_access_advisor
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore
from iamgraph.usage.types import Outcome
from iamgraph.usage.unused import FindingKind, UnusedAnalyzer, UnusedReport, unused_report

pytestmark = pytest.mark.slow


@dataclass
class Demo:
    snapshot: Snapshot
    store: UsageStore
    planted: dict[str, Any]
    end: datetime


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    out = tmp_path_factory.mktemp("demo")
    result = generate_demo(out, DemoConfig())
    snap = read_snapshot(result.snapshot)
    store = UsageStore(out / "usage.duckdb")
    assert result.cloudtrail_root is not None
    stats = ingest_location(store, str(result.cloudtrail_root))
    assert stats.files_bad == 0 and stats.events == result.counts.cloudtrail_events
    ingest_access_advisor(store, snap)
    planted = json.loads(result.planted.read_text())
    end = datetime.fromisoformat(planted["window"]["end"].replace("Z", "+00:00"))
    yield Demo(snapshot=snap, store=store, planted=planted, end=end)
    store.close()


def _items(demo: Demo, kind: str) -> list[dict[str, Any]]:
    return [i for i in demo.planted["items"] if i["kind"] == kind and i["expect"] == "finding"]


def _report(demo: Demo, principals: list[str]) -> UnusedReport:
    return unused_report(demo.snapshot, demo.store, days=demo.planted["window"]["days"], now=demo.end,
                         principals=principals)


def test_demo_end_to_end(demo: Demo) -> None:
    """One test, so that parallel workers build the demo once (module fixtures are per worker)."""
    unmapped = [p for p in demo.store.problems() if p.kind == "unmapped"]
    assert unmapped == []
    _planted_unused_permissions_are_reported(demo)
    _nothing_used_is_reported_unused(demo)
    _admin_summaries_count_what_the_detail_lists(demo)


def _planted_unused_permissions_are_reported(demo: Demo) -> None:
    items = _items(demo, "unused_permissions") + _items(demo, "unused_role") + _items(demo, "unused_credentials")
    assert items, "the demo plants no unused permissions"
    principals = sorted({p for i in items for p in i["principals"]})
    report = _report(demo, principals)
    found = {(f.kind, f.principal_arn, f.subject) for f in report.findings}
    for item in _items(demo, "unused_permissions"):
        (who,) = item["principals"]
        for service in item.get("unused_services", []):
            assert (FindingKind.UNUSED_SERVICE, who, service) in found, (item["id"], service)
        for action in item.get("unused_actions", []):
            assert (FindingKind.UNUSED_ACTION, who, action) in found, (item["id"], action)
    for item in _items(demo, "unused_role"):
        (who,) = item["principals"]
        assert (FindingKind.NEVER_USED_ROLE, who, who.rsplit("/", 1)[-1]) in found, item["id"]
    for item in _items(demo, "unused_credentials"):
        (who,) = item["principals"]
        kinds = {k for k, p, _ in found if p == who}
        assert {FindingKind.UNUSED_PASSWORD, FindingKind.UNUSED_ACCESS_KEY} <= kinds, item["id"]


def _nothing_used_is_reported_unused(demo: Demo) -> None:
    """Over every principal of the demo: nothing with an allowed call in the window is reported unused."""
    start = demo.end.replace(tzinfo=None) - timedelta(days=demo.planted["window"]["days"])
    used: dict[str, set[str]] = {}
    for rec in demo.store.records(since=start):
        if rec.outcome is Outcome.ALLOWED and rec.principal_arn.startswith("arn:aws:iam::"):
            used.setdefault(rec.principal_arn, set()).add(rec.action)
    everyone = {p.arn for a in demo.snapshot.accounts for p in (*a.roles, *a.users)}
    assert len(used.keys() & everyone) >= 20
    report = unused_report(demo.snapshot, demo.store, days=demo.planted["window"]["days"], now=demo.end)
    assert report.principals_checked == len(everyone)
    checked = 0
    for f in report.findings:
        acts = used.get(f.principal_arn, set())
        if f.kind is FindingKind.UNUSED_ACTION:
            assert f.subject not in acts, f
        elif f.kind is FindingKind.UNUSED_SERVICE:
            assert not any(a.split(":", 1)[0] == f.subject for a in acts), f
            assert not set(f.actions) & acts, f
        elif f.kind is FindingKind.NEVER_USED_ROLE:
            assert not acts, f
        elif f.kind is FindingKind.ADMIN_GRANT:
            assert not set(f.actions) & acts, f
            assert not {a.split(":", 1)[0] for a in acts} & set(f.services), f
        else:
            continue
        checked += 1
    assert checked > 100
    for item in _items(demo, "unused_permissions"):
        (who,) = item["principals"]
        reported = {f.subject for f in report.findings if f.principal_arn == who and f.kind is FindingKind.UNUSED_ACTION}
        assert not reported & set(item.get("used_actions", [])), item["id"]
    _grants_match_asking_for_every_action(demo)


def _grants_match_asking_for_every_action(demo: Demo) -> None:
    """``granted`` asks the engine once per class of actions it cannot tell apart; asking for every action must
    give the same set. Checked on the principals with the smallest grants (each action costs an engine call)."""
    from iamgraph.eval import Mode, Request
    from iamgraph.eval.engine import authorize

    analyzer = UnusedAnalyzer(demo.snapshot, demo.store, days=demo.planted["window"]["days"], now=demo.end)
    cat, ev = analyzer.cat, analyzer.ev
    sizes = []
    for _, _, arn in analyzer.principals(None, None):
        sizes.append((len(analyzer.granted(arn)), arn))
    picked = [arn for n, arn in sorted(sizes) if n > 0][:6]
    assert len(picked) == 6
    for arn in picked:
        every: set[str] = set()
        for named in ev.policy_set(arn, "*").identity:
            for st in named.policy.statements:
                if not st.is_allow:
                    continue
                actions = cat.expand_many(st.action) if st.action is not None else cat.expand_not(st.not_action or ())
                for action in sorted(actions - every):
                    for res in st.resource or ("*",):
                        pset = ev.policy_set(arn, res, action=action if action.startswith("sts:") else None)
                        ctx = ev.principal_context(arn)
                        ctx.update(ev.resource_context(res))
                        req = Request(principal=arn, action=action, resource=res,
                                      resource_account=ctx.get("aws:resourceaccount"), context=ctx)
                        if authorize(req, pset, mode=Mode.DISCOVERY).possible:
                            every.add(action)
                            break
        assert analyzer.granted(arn) == every, arn


def _admin_summaries_count_what_the_detail_lists(demo: Demo) -> None:
    """An admin's one ``admin-grant`` finding names the unused services and actions the detailed findings list, and
    counts the unobservable ones; every other finding is the same either way (the summary is counted without making
    the detailed findings)."""
    analyzer = UnusedAnalyzer(demo.snapshot, demo.store, days=demo.planted["window"]["days"], now=demo.end)
    summary = analyzer.run(summarize_admins=True).findings
    detail = analyzer.run(summarize_admins=False).findings
    admins = {f.principal_arn for f in summary if f.kind is FindingKind.ADMIN_GRANT}
    assert len(admins) >= 5
    assert [f for f in summary if f.principal_arn not in admins] == [f for f in detail if f.principal_arn not in admins]
    seen = [0, 0, 0]
    for f in summary:
        if f.principal_arn not in admins:
            continue
        assert f.kind is FindingKind.ADMIN_GRANT
        mine = [d for d in detail if d.principal_arn == f.principal_arn]
        services = sorted(d.subject for d in mine if d.kind is FindingKind.UNUSED_SERVICE)
        actions = tuple(d.subject for d in mine if d.kind is FindingKind.UNUSED_ACTION)
        quiet = sum(len(d.actions) for d in mine if d.kind is FindingKind.UNOBSERVABLE_ACTION)
        assert f.services == tuple(services) and f.actions == actions, f.principal_arn
        assert f"{len(services)} granted service(s) unused, {len(actions)} unused action(s) in the used services, " \
            f"{quiet} granted action(s) unobservable" in f.reason, f.reason
        seen = [seen[0] + bool(services), seen[1] + bool(actions), seen[2] + bool(quiet)]
    assert min(seen) >= 1, seen  # the comparison covers unused services, unused actions and unobservable ones
