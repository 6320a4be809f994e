"""Finished answers, kept per snapshot state as the JSON bytes sent, and answered again on the event loop.

A read whose answer is already known (the same query on the same snapshot) is a dict lookup. Sending it
through the work pool would cost two thread hops, each waiting for the GIL behind whatever graph work the
pool's threads are doing, and building and serialising the response models again would allocate thousands
of short-lived objects per call (which also made the cyclic garbage collector walk the whole graph more
often). Under 64 concurrent clients those costs were the tail (docs/benchmarks.md, HTTP API). So: the first
call computes and renders in a work thread (``run_admitted``: admission control, time limit), later calls
with the same key get the same bytes on the loop. Authentication, scope checks and the audit line stay on
every call: they run before and around the route.

The answers belong to a ``State`` (``state.cache``), so a snapshot reload starts afresh; the store is an LRU
bounded in entries and in bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.admission import run_admitted
from api.auth import Caller
from api.holder import State
from api.limits import Deadline

MAX_ANSWERS = 512
MAX_BYTES = 64 * 1024 * 1024
"""Bytes of rendered answers kept per snapshot state; the least recently used go first."""
MAX_ONE = 8 * 1024 * 1024
"""An answer larger than this is sent but not kept (it would push out many small ones)."""

_KEY = "answers"
_lock = threading.Lock()


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    body: bytes
    """The JSON sent."""
    model: BaseModel
    """The response it was rendered from (a route may read fields of it for the audit line)."""


class _Store:
    def __init__(self) -> None:
        self.items: OrderedDict[Hashable, Answer] = OrderedDict()
        self.bytes = 0


def _store(state: State) -> _Store:
    store = state.cache.get(_KEY)
    if store is None:
        store = state.cache[_KEY] = _Store()
    assert isinstance(store, _Store)
    return store


def peek(state: State, key: Hashable) -> Answer | None:
    """The kept answer for ``key``, or None. Cheap enough for the event loop."""
    with _lock:
        store = _store(state)
        found = store.items.get(key)
        if found is not None:
            store.items.move_to_end(key)
        return found


def keep(state: State, key: Hashable, answer: Answer) -> None:
    if len(answer.body) > MAX_ONE:
        return
    with _lock:
        store = _store(state)
        old = store.items.pop(key, None)
        if old is not None:
            store.bytes -= len(old.body)
        store.items[key] = answer
        store.bytes += len(answer.body)
        while store.items and (len(store.items) > MAX_ANSWERS or store.bytes > MAX_BYTES):
            _, dropped = store.items.popitem(last=False)
            store.bytes -= len(dropped.body)


def render(model: BaseModel) -> Answer:
    """The JSON FastAPI would send for ``model`` as the route's response model (field names by alias)."""
    return Answer(body=model.model_dump_json(by_alias=True).encode(), model=model)


def respond(answer: Answer) -> Response:
    return Response(content=answer.body, media_type="application/json")


async def answered(request: Request, caller: Caller, state: State, key: Hashable,
                   compute: Callable[[Deadline], BaseModel]) -> Answer:
    """The answer for ``key``: kept from an earlier call (on the loop), or computed and rendered in the work
    pool under the request's time limit, then kept. A computation that fails is not kept."""
    found = peek(state, key)
    if found is not None:
        return found

    def work(deadline: Deadline) -> Answer:
        return render(compute(deadline))

    answer = await run_admitted(request, caller, work)
    keep(state, key, answer)
    return answer

