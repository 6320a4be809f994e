"""While a review is built, Python's cyclic garbage collector runs less often and never walks what survived a
collection again (frozen), and its thresholds and frozen objects are what they were afterwards (on success and on
failure): a review changes no process-wide setting it leaves behind, and the cycles it left are still collected."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from iamgraph.demo import DemoConfig, build_demo_snapshot
from iamgraph.report.review import GC_ALLOCATIONS, _freeze_survivors, build_review, fewer_collections


@pytest.fixture()
def default_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*before)


def test_the_youngest_generation_waits_for_more_allocations_inside_and_not_after(
    default_thresholds: tuple[int, int, int],
) -> None:
    with fewer_collections():
        inside = gc.get_threshold()
    assert inside == (GC_ALLOCATIONS, 10, 10)
    assert gc.get_threshold() == default_thresholds
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a review that fails")
    assert gc.get_threshold() == default_thresholds


def test_a_higher_threshold_set_by_the_caller_is_kept(default_thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(50_000, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_threshold() == (50_000, 10, 10)


def test_a_review_runs_with_fewer_collections_and_restores_the_thresholds(
    default_thresholds: tuple[int, int, int],
) -> None:
    seen: list[tuple[int, int, int]] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(gc.get_threshold())

    gc.callbacks.append(record)
    try:
        review = build_review(build_demo_snapshot(DemoConfig()))
    finally:
        gc.callbacks.remove(record)
    assert review.admins.rows
    # Collections happened while the review was built (the demo organization allocates millions of objects), each
    # at the raised threshold; those after it (none here) would be at the default.
    during = [t for t in seen if t[0] == GC_ALLOCATIONS]
    assert during, seen[:5]
    assert gc.get_threshold() == default_thresholds


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_survivors_are_frozen_inside_and_given_back_after(default_thresholds: tuple[int, int, int]) -> None:
    assert gc.get_freeze_count() == 0
    with fewer_collections():
        assert gc.get_freeze_count() > 0  # what was alive at the start
        kept = [_Cycle() for _ in range(3 * GC_ALLOCATIONS)]  # enough allocations for collections to run
        collected = gc.get_freeze_count()
        assert collected > 3 * GC_ALLOCATIONS - GC_ALLOCATIONS  # the survivors of those collections
        gc.collect()  # a full collection inside walks none of them
        del kept
    assert gc.get_freeze_count() == 0
    gc.collect()  # the cycles that died while frozen are collected once given back
    assert not any(type(o) is _Cycle for o in gc.get_objects())
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a review that fails")
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == default_thresholds
    assert _freeze_survivors not in gc.callbacks


def test_a_caller_that_froze_objects_keeps_them_frozen(default_thresholds: tuple[int, int, int]) -> None:
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        with fewer_collections():
            [_Cycle() for _ in range(2 * GC_ALLOCATIONS)]
            assert gc.get_freeze_count() == mine
        assert gc.get_freeze_count() == mine and gc.get_threshold() == default_thresholds
    finally:
        gc.unfreeze()
