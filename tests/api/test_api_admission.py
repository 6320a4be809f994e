"""The work pool behind every graph-bound endpoint (api.admission), driven directly with real threads.

Each piece of work holds its worker until the test releases it (a threading.Event), so the order of events is
forced, not timed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from api.admission import Overloaded, WorkPool
from api.errors import TimeLimitExceeded
from api.limits import Deadline


async def _until(pred: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + 60
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _held(release: threading.Event, log: list[str], name: str) -> Callable[[Deadline], str]:
    def work(deadline: Deadline) -> str:
        log.append(f"start {name}")
        assert release.wait(60)
        log.append(f"end {name}")
        return name

    return work


def test_the_time_limit_starts_when_the_work_starts() -> None:
    """A request that waits in the queue longer than its own time limit is still answered: the limit counts
    from when a worker starts it (the defect: 199 of 200 queued evaluations got 503)."""
    pool = WorkPool(workers=1, max_queued=4, per_token=4)
    release = threading.Event()
    log: list[str] = []
    ended: list[float] = []

    def first(deadline: Deadline) -> None:
        _held(release, log, "first")(deadline)
        ended.append(time.monotonic())

    def second(deadline: Deadline) -> float:
        deadline.check()
        return deadline.at - deadline.seconds  # when its limit started

    async def scenario() -> float:
        t1 = asyncio.create_task(pool.run("a", 60, first))
        await _until(lambda: pool.stats().running == 1, "the first to run")
        t2 = asyncio.create_task(pool.run("b", 0.2, second))
        await _until(lambda: pool.stats().queued == 1, "the second to queue")
        queued_at = time.monotonic()
        # Keep it waiting longer than its 0.2 s limit before any worker is free.
        await _until(lambda: time.monotonic() > queued_at + 0.6, "the wait to exceed the second's limit")
        release.set()
        await t1
        return await t2

    try:
        started = asyncio.run(scenario())
    finally:
        pool.shutdown()
    assert started >= ended[0]


def test_work_over_its_limit_is_503_and_holds_its_worker_until_it_stops() -> None:
    pool = WorkPool(workers=1, max_queued=0, per_token=4)
    stopped = threading.Event()

    def runaway(deadline: Deadline) -> None:
        while True:  # cooperative: stops at the check after the limit
            try:
                deadline.check()
            except TimeLimitExceeded:
                stopped.set()
                raise
            time.sleep(0.01)

    async def scenario() -> None:
        with pytest.raises(TimeLimitExceeded):
            await pool.run("a", 0.1, runaway)
        await _until(stopped.is_set, "the runaway to stop")
        await _until(lambda: pool.stats().running == 0, "the worker to be free")
        assert await pool.run("a", 5, lambda d: "next") == "next"

    try:
        asyncio.run(scenario())
    finally:
        pool.shutdown()


def test_a_full_queue_and_a_full_token_are_429_with_retry_after() -> None:
    pool = WorkPool(workers=1, max_queued=2, per_token=2)
    release = threading.Event()
    log: list[str] = []

    async def scenario() -> dict[str, Any]:
        a1 = asyncio.create_task(pool.run("a", 60, _held(release, log, "a1")))
        await _until(lambda: pool.stats().running == 1, "a1 to run")
        a2 = asyncio.create_task(pool.run("a", 60, _held(release, log, "a2")))
        await _until(lambda: pool.stats().queued == 1, "a2 to queue")
        with pytest.raises(Overloaded) as token_full:
            await pool.run("a", 60, _held(release, log, "a3"))
        b1 = asyncio.create_task(pool.run("b", 60, _held(release, log, "b1")))
        await _until(lambda: pool.stats().queued == 2, "b1 to queue")
        with pytest.raises(Overloaded) as queue_full:
            await pool.run("c", 60, _held(release, log, "c1"))
        # A waiting request that goes away gives its place back.
        b1.cancel()
        await _until(lambda: pool.stats().queued == 1, "b1 to leave the queue")
        c1 = asyncio.create_task(pool.run("c", 60, _held(release, log, "c1")))
        await _until(lambda: pool.stats().queued == 2, "c1 to queue")
        release.set()
        results = await asyncio.gather(a1, a2, c1)
        return {"token": token_full.value, "queue": queue_full.value, "results": results}

    try:
        out = asyncio.run(scenario())
    finally:
        pool.shutdown()
    for key in ("token", "queue"):
        err = out[key]
        assert err.status == 429 and err.headers is not None and int(err.headers["Retry-After"]) >= 1
    assert "this token" in out["token"].message and "busy" in out["queue"].message
    assert out["results"] == ["a1", "a2", "c1"] and "start b1" not in log
    assert pool.stats().per_token == {} and pool.stats().running == 0


def test_waiting_requests_are_served_round_robin_over_tokens() -> None:
    """One token's backlog does not starve another's request: it runs after at most one more of the first's."""
    pool = WorkPool(workers=1, max_queued=10, per_token=10)
    release = {n: threading.Event() for n in ("a1", "a2", "a3", "a4", "b1")}
    log: list[str] = []

    async def scenario() -> None:
        tasks = [asyncio.create_task(pool.run("a", 60, _held(release["a1"], log, "a1")))]
        await _until(lambda: pool.stats().running == 1, "a1 to run")
        for n in ("a2", "a3", "a4"):
            tasks.append(asyncio.create_task(pool.run("a", 60, _held(release[n], log, n))))
        await _until(lambda: pool.stats().queued == 3, "a's backlog")
        tasks.append(asyncio.create_task(pool.run("b", 60, _held(release["b1"], log, "b1"))))
        await _until(lambda: pool.stats().queued == 4, "b1 to queue")
        for e in release.values():
            e.set()
        await asyncio.gather(*tasks)

    try:
        asyncio.run(scenario())
    finally:
        pool.shutdown()
    starts = [x.split()[1] for x in log if x.startswith("start")]
    assert starts == ["a1", "a2", "b1", "a3", "a4"]
