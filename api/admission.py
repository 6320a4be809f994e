"""Admission control for graph-bound work: a bounded thread pool, a bounded queue, a bound per token.

Graph-bound work (who-can, a principal's access and paths, exposure, SoD, simulate, usage questions and
access-request evaluation) runs in ``WorkPool``'s own threads, never on the event loop and never in the
thread pool FastAPI uses for small synchronous dependencies, so a burst of expensive requests cannot delay
health checks, authentication or refusals.

A request is admitted when a worker is free or the queue has room, and its token holds fewer than
``per_token`` places (running plus queued); otherwise it is refused at once with 429 and ``Retry-After``
(RFC 9110 §10.2.3, RFC 6585 §4). When a worker frees up, the next request is taken round-robin over the
tokens that have requests waiting, so one token's backlog cannot starve another token's single request.

The per-request time limit starts when a worker starts the work (``Deadline`` is created in the worker),
never while the request waits in the queue. A worker slot is released when its thread actually finishes,
also after the caller got its 503 for an overrun: the work stops at its next ``Deadline.check()``, and
until then the slot counts as busy, so overruns cannot pile up threads behind the pool's back.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request

from api.auth import Caller
from api.errors import ApiError, TimeLimitExceeded
from api.limits import Deadline

T = TypeVar("T")

GRACE_SECONDS = 0.25
"""Slack after the limit before the caller is answered 503, so the cooperative check normally fires first
(it also stops the work)."""


class Overloaded(ApiError):
    """429: no room for this request now; ``Retry-After`` says when to try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(429, "too_many_requests", message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


@dataclass(slots=True, eq=False)
class _Waiter:
    token: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False
    """Set under the pool's lock when a slot is handed to this waiter (it then owns the slot)."""


@dataclass(slots=True)
class PoolStats:
    workers: int
    running: int
    queued: int
    per_token: dict[str, int] = field(default_factory=dict)


class WorkPool:
    """The bounded pool. Thread-safe: slots are released from worker threads, handed to waiters on their loop."""

    def __init__(self, *, workers: int, max_queued: int, per_token: int) -> None:
        if workers < 1 or max_queued < 0 or per_token < 1:
            raise ValueError("workers and per_token must be at least 1, max_queued at least 0")
        self.workers = workers
        self.max_queued = max_queued
        self.per_token = per_token
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="iamgraph-work")
        self._lock = threading.Lock()
        self._running = 0
        self._held: dict[str, int] = {}
        """Per token: requests running plus waiting."""
        self._queues: OrderedDict[str, deque[_Waiter]] = OrderedDict()
        """Waiting requests per token; the first key is served next (round-robin: a served token moves last)."""
        self._queued = 0
        self._deadlines: set[Deadline] = set()
        self._mean_seconds = 1.0
        """Exponential moving average of work durations, for ``Retry-After``."""
        self.started = 0
        """Jobs handed to a work thread so far (answers kept by api.answers never come here)."""

    # ------------------------------------------------------------------------------------------ admission

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(workers=self.workers, running=self._running, queued=self._queued,
                             per_token=dict(self._held))

    def _retry_after(self) -> int:
        # Roughly when the queue ahead will have drained; at least 1 s, at most a minute.
        ahead = (self._queued + 1) / self.workers
        return max(1, min(60, math.ceil(ahead * self._mean_seconds)))

    def _admit(self, token: str) -> _Waiter | None:
        """Take a slot (None) or a place in the queue (a waiter), or raise Overloaded."""
        with self._lock:
            held = self._held.get(token, 0)
            if held >= self.per_token:
                raise Overloaded(
                    f"this token already has {held} requests running or waiting, its limit; retry when one "
                    "has been answered", self._retry_after())
            if self._running < self.workers and self._queued == 0:
                self._running += 1
                self._held[token] = held + 1
                return None
            if self._queued >= self.max_queued:
                raise Overloaded(
                    f"the server is busy ({self._running} requests running, {self._queued} waiting, the "
                    "most it queues); retry later", self._retry_after())
            loop = asyncio.get_running_loop()
            waiter = _Waiter(token=token, loop=loop, future=loop.create_future())
            self._queues.setdefault(token, deque()).append(waiter)
            self._queued += 1
            self._held[token] = held + 1
            return waiter

    def _release(self, token: str) -> None:
        """A slot of ``token`` is free: hand it to the next waiter (round-robin over tokens) or return it."""
        while True:
            with self._lock:
                self._held[token] -= 1
                if not self._held[token]:
                    del self._held[token]
                nxt: _Waiter | None = None
                if self._queues:
                    first, queue = next(iter(self._queues.items()))
                    nxt = queue.popleft()
                    self._queued -= 1
                    if queue:
                        self._queues.move_to_end(first)
                    else:
                        del self._queues[first]
                    nxt.granted = True
                    # The slot passes on: running stays the same.
                else:
                    self._running -= 1
            if nxt is None:
                return
            try:
                nxt.loop.call_soon_threadsafe(_grant, nxt.future)
                return
            except RuntimeError:
                # Its event loop is gone (the request's loop closed): nobody will use the slot; pass it on.
                token = nxt.token

    def _abandon(self, waiter: _Waiter) -> None:
        """The waiting request was cancelled: leave the queue, or give back the slot it was just handed."""
        with self._lock:
            if not waiter.granted:
                queue = self._queues.get(waiter.token)
                if queue is not None and waiter in queue:
                    queue.remove(waiter)
                    self._queued -= 1
                    if not queue:
                        del self._queues[waiter.token]
                self._held[waiter.token] -= 1
                if not self._held[waiter.token]:
                    del self._held[waiter.token]
                return
        self._release(waiter.token)

    # ------------------------------------------------------------------------------------------------ run

    async def run(self, token: str, seconds: float, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(deadline, *args)`` in a worker once admitted; 429 when not admitted, 503 past the limit."""
        waiter = self._admit(token)
        if waiter is not None:
            try:
                await waiter.future
            except BaseException:
                self._abandon(waiter)
                raise
        loop = asyncio.get_running_loop()
        started = asyncio.Event()
        box: list[Deadline] = []

        def job() -> T:
            deadline = Deadline(seconds)  # the limit starts now, when the work starts
            box.append(deadline)
            with self._lock:
                self._deadlines.add(deadline)
            try:
                loop.call_soon_threadsafe(started.set)
            except RuntimeError:  # the caller's loop is gone; finish quietly
                deadline.cancel()
            began = time.monotonic()
            try:
                return fn(deadline, *args)
            finally:
                with self._lock:
                    self._deadlines.discard(deadline)
                    self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * (time.monotonic() - began)

        try:
            cfut: Future[T] = self._executor.submit(job)
            self.started += 1
        except RuntimeError:  # shut down
            self._release(token)
            raise ApiError(503, "shutting_down", "the server is shutting down; retry") from None
        cfut.add_done_callback(lambda f: self._finished(token, f))
        afut = asyncio.wrap_future(cfut, loop=loop)
        afut.add_done_callback(lambda _: started.set())  # a job cancelled by shutdown never starts
        await started.wait()
        try:
            return await asyncio.wait_for(asyncio.shield(afut), seconds + GRACE_SECONDS)
        except TimeoutError:
            if box:
                box[0].cancel()  # stop the worker at its next check; its slot is freed when it returns
            raise TimeLimitExceeded(seconds) from None
        except asyncio.CancelledError:
            if afut.cancelled() and cfut.cancelled():  # the pool shut down before the job started
                raise ApiError(503, "shutting_down", "the server is shutting down; retry") from None
            raise

    def _finished(self, token: str, f: Future[Any]) -> None:
        if not f.cancelled():
            f.exception()  # retrieved here, so an abandoned overrun's error is not reported as never retrieved
        self._release(token)

    def shutdown(self) -> None:
        """Stop taking work; ask running work to stop at its next check."""
        with self._lock:
            for d in self._deadlines:
                d.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _grant(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
    # A cancelled future: ``run`` sees the cancellation and ``_abandon`` gives the slot back.


async def run_admitted(request: Request, caller: Caller, fn: Callable[..., T], *args: Any) -> T:
    """Run graph-bound ``fn(deadline, *args)`` for ``caller`` in the app's work pool, under its time limit."""
    pool: WorkPool = request.app.state.pool
    seconds: float = request.app.state.settings.limits.time_limit_seconds
    return await pool.run(caller.name, seconds, fn, *args)
