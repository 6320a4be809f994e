"""The scoreboard of ``iamgraph demo``: the manifest reads back into the planted items, and a check fails
when its analysis answered nothing (so the demo and the graph tests cannot pass on an empty answer)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from iamgraph.demo import DemoConfig, DemoResult, build_demo_snapshot
from iamgraph.demo.org import build_world
from iamgraph.demo.planted import PlantedItem, PlantedKind
from iamgraph.demo.score import (
    EXPOSURE_NEAR_MISSES,
    PRIVESC_NEAR_MISSES,
    SOD_RULES,
    Analyses,
    CheckKind,
    recommend_principals,
    score,
    unused_principals,
)
from iamgraph.snapshot.model import Snapshot

CONFIG = DemoConfig(with_activity=False)


@pytest.fixture(scope="module")
def planted() -> list[PlantedItem]:
    return list(build_world(CONFIG).planted)


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return build_demo_snapshot(CONFIG)


def test_the_manifest_reads_back_into_the_planted_items(demo_default: DemoResult) -> None:
    manifest: dict[str, Any] = orjson.loads(demo_default.planted.read_bytes())
    items = [PlantedItem.from_json(i) for i in manifest["items"]]
    assert [i.to_json() for i in items] == manifest["items"]
    world = build_world(DemoConfig())
    # The manifest adds the deviations' time windows, nothing else.
    assert [i.id for i in items] == [i.id for i in world.planted]
    assert all(i.window for i in items if i.kind is PlantedKind.DEVIATION)
    unused = next(i for i in items if i.id == "unused.services-and-actions")
    assert unused.detail("unused_actions") == ["s3:DeleteObject"]
    assert unused.detail("no-such-detail", ()) == ()


def test_every_near_miss_and_sod_rule_the_scoreboard_names_is_planted(planted: list[PlantedItem]) -> None:
    near_misses = {i.id for i in planted if i.kind is PlantedKind.NEAR_MISS}
    assert near_misses == PRIVESC_NEAR_MISSES | EXPOSURE_NEAR_MISSES
    sod_items = {i.id for i in planted if i.kind is PlantedKind.SEPARATION_OF_DUTIES}
    assert sod_items == set(SOD_RULES)


def test_an_empty_answer_misses_every_finding_and_reports_no_near_miss(
    planted: list[PlantedItem], snap: Snapshot
) -> None:
    empty = Analyses(escalations=(), exposures=(), conflicts=(), pii_access=(), unused=(), recommendations=(),
                     alerts=(), credentials=())
    checks = score(planted, snap, empty)
    assert {c.kind for c in checks} == set(CheckKind)
    for check in checks:
        assert check.ok is check.kind.near_miss, check
    # One check per planted item of the kinds each analysis looks for (unused permissions are asked of both
    # the unused report and the recommender), plus the detect near miss on ordinary calls.
    counted = {
        CheckKind.PRIVESC: _n(planted, PlantedKind.PRIVILEGE_ESCALATION),
        CheckKind.SOD: _n(planted, PlantedKind.SEPARATION_OF_DUTIES),
        CheckKind.UNUSED: _n(planted, PlantedKind.UNUSED_PERMISSIONS, PlantedKind.UNUSED_ROLE,
                             PlantedKind.UNUSED_CREDENTIALS),
        CheckKind.RECOMMEND: _n(planted, PlantedKind.UNUSED_PERMISSIONS, PlantedKind.OVER_BROAD),
        CheckKind.CREDENTIALS: _n(planted, PlantedKind.CREDENTIAL_HYGIENE),
        CheckKind.DEVIATION: _n(planted, PlantedKind.DEVIATION),
        CheckKind.DETECT_NEAR_MISS: 1,
    }
    for kind, n in counted.items():
        assert sum(1 for c in checks if c.kind is kind) == n, kind


def test_an_analysis_that_was_not_run_is_left_out(planted: list[PlantedItem], snap: Snapshot) -> None:
    assert score(planted, snap, Analyses()) == ()
    assert {c.kind for c in score(planted, snap, Analyses(credentials=()))} == {CheckKind.CREDENTIALS}


def test_the_principals_to_ask_about_are_the_planted_ones(planted: list[PlantedItem]) -> None:
    by_id = {i.id: i for i in planted}
    assert by_id["unused.role"].principals[0] in unused_principals(planted)
    assert by_id["overbroad.s3-star"].principals[0] in recommend_principals(planted)
    assert by_id["overbroad.s3-star"].principals[0] not in unused_principals(planted)


def _n(planted: list[PlantedItem], *kinds: PlantedKind) -> int:
    return sum(1 for i in planted if i.kind in kinds)
