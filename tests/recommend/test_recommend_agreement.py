"""``recommend`` and ``unused`` share one evidence judgement and agree on every principal of the demo organization:
nothing recommend counts as used is reported unused; nothing unused cannot judge (unobservable) is removed; and what
recommend removes from a principal's own policies, unused reports as unused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from iamgraph.demo import generate_demo
from iamgraph.demo.config import DemoConfig
from iamgraph.recommend import ProposalStatus, Recommender
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.io import read_snapshot
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore
from iamgraph.usage.unused import FindingKind, UnusedAnalyzer

pytestmark = pytest.mark.slow


@dataclass
class Org:
    index: SnapshotIndex
    store: UsageStore
    rec: Recommender
    unused: UnusedAnalyzer


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    out = tmp_path_factory.mktemp("agree")
    result = generate_demo(out, DemoConfig())
    snapshot = read_snapshot(result.snapshot)
    index = SnapshotIndex(snapshot)
    store = UsageStore(out / "usage.duckdb")
    assert result.cloudtrail_root is not None
    ingest_location(store, str(result.cloudtrail_root))
    planted = json.loads(result.planted.read_text())
    end = datetime.fromisoformat(planted["window"]["end"].replace("Z", "+00:00"))
    days = planted["window"]["days"]
    yield Org(index=index, store=store, rec=Recommender(index, store, days=days, now=end),
              unused=UnusedAnalyzer(snapshot, store, days=days, now=end))
    store.close()


def test_recommend_and_unused_agree_on_every_principal(org: Org) -> None:
    principals = sorted([*org.index.users, *org.index.roles])
    report = org.unused.run(principals=principals, summarize_admins=False)
    findings: dict[str, list[Any]] = {}
    for f in report.findings:
        findings.setdefault(f.principal_arn, []).append(f)
    compared = 0
    for p in principals:
        rec = org.rec.recommend(p)
        mine = findings.get(p, [])
        never = any(f.kind is FindingKind.NEVER_USED_ROLE for f in mine)
        unused = {f.subject for f in mine if f.kind is FindingKind.UNUSED_ACTION}
        unused |= {a for f in mine if f.kind is FindingKind.UNUSED_SERVICE for a in f.actions}
        quiet = {a for f in mine if f.kind is FindingKind.UNOBSERVABLE_ACTION for a in f.actions}
        used = set(rec.used_actions)
        assert not used & unused, (p, sorted(used & unused)[:5])
        if never:
            assert not used, p
            continue
        granted = org.unused.granted(p)
        for prop in rec.proposals:
            if prop.status is not ProposalStatus.EMITTED or prop.principals != (p,):
                continue
            removed = set(prop.removed_actions) - used
            assert not removed & quiet, (p, prop.policy_id, sorted(removed & quiet)[:5])
            assert removed & granted <= unused, (p, prop.policy_id, sorted((removed & granted) - unused)[:5])
            compared += 1
    assert compared >= 5  # the comparison ran on real proposals
