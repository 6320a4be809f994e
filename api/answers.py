"""Finished answers, kept per snapshot state as the JSON bytes sent, and answered again on the event loop.

A read whose answer is already known (the same query on the same snapshot) is a dict lookup. Sending it
through the work pool would cost two thread hops, each waiting for the GIL behind whatever graph work the
pool's threads are doing, and building and serialising the response models again would allocate thousands
of short-lived objects per call (which also made the cyclic garbage collector walk the whole graph more
often). Under 64 concurrent clients those costs were the tail (docs/benchmarks.md, HTTP API). So: the first
call computes and renders in a work thread (``run_admitted``: admission control, time limit), later calls
with the same key get the same bytes on the loop. Authentication, scope checks and the audit line stay on
every call: they run before and around the route.

A GET answered this way is also remembered by its exact path and query string. ``ServeKept``, the innermost
middleware, answers a repeated GET from those bytes before routing: FastAPI's routing, dependency resolution
and query validation were about half of the server's CPU on a cached read (docs/benchmarks.md, HTTP API), and
for the same path and query string on the same snapshot they can only come to the same answer. It still
authenticates the caller and checks the route's scope (with the same ``api.auth`` code as the route's
dependency) and gives the audit line the caller and the route; anything else (no kept answer, no valid token,
a missing scope) goes the normal way, so every refusal is made, worded and audited in one place.

The answers belong to a ``State`` (``state.cache``), so a snapshot reload starts afresh; the store is an LRU
bounded in entries and in bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from api.admission import run_admitted
from api.audit import AUDIT_KEY
from api.auth import Authenticator, Caller, bearer_token
from api.errors import ApiError
from api.holder import SnapshotHolder, State
from api.limits import Deadline
from iamgraph.serving.tokens import Scope

if TYPE_CHECKING:
    from api.deps import Call

MAX_ANSWERS = 512
MAX_BYTES = 64 * 1024 * 1024
"""Bytes of rendered answers kept per snapshot state; the least recently used go first."""
MAX_ONE = 8 * 1024 * 1024
"""An answer larger than this is sent but not kept (it would push out many small ones)."""

MAX_REMEMBERED = 4096
"""(path, query string) -> answer key entries kept per snapshot state for ``ServeKept``."""

_KEY = "answers"
_RAW_KEY = "answers-by-request"
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Remembered:
    key: Hashable
    """The route's answer key (``peek``)."""
    scope: Scope
    """The scope the route requires."""
    route: Any
    """The route that answered (the audit line names its path template)."""


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


async def answered(request: Request, call: Call, key: Hashable, compute: Callable[[Deadline], BaseModel]
                   ) -> Answer:
    """The answer for ``key``: kept from an earlier call (on the loop), or computed and rendered in the work
    pool under the request's time limit, then kept. A computation that fails is not kept. A GET is remembered
    by its path and query string for ``ServeKept``."""
    state = call.state
    found = peek(state, key)
    if found is None:

        def work(deadline: Deadline) -> Answer:
            return render(compute(deadline))

        found = await run_admitted(request, call.caller, work)
        keep(state, key, found)
    if request.method == "GET":
        _remember(state, _request_key(request.scope), _Remembered(key=key, scope=call.scope,
                                                                   route=request.scope.get("route")))
    return found


def _request_key(scope: AsgiScope) -> tuple[str, str, bytes]:
    # What routing and query validation read: the path (root path included) and the raw query string.
    return (scope.get("root_path", ""), scope["path"], scope.get("query_string", b""))


def _remember(state: State, request_key: tuple[str, str, bytes], entry: _Remembered) -> None:
    with _lock:
        raw = state.cache.get(_RAW_KEY)
        if raw is None:
            raw = state.cache[_RAW_KEY] = OrderedDict()
        raw[request_key] = entry
        raw.move_to_end(request_key)
        while len(raw) > MAX_REMEMBERED:
            raw.popitem(last=False)


def _remembered(state: State, request_key: tuple[str, str, bytes]) -> _Remembered | None:
    with _lock:
        raw = state.cache.get(_RAW_KEY)
        return None if raw is None else raw.get(request_key)


class ServeKept:
    """ASGI middleware (the innermost): a GET whose path and query string were answered on the current snapshot is
    answered again from the kept bytes, once its caller is authenticated and holds the route's scope."""

    def __init__(self, app: ASGIApp, *, holder: SnapshotHolder, authenticator: Authenticator) -> None:
        self.app = app
        self.holder = holder
        self.authenticator = authenticator

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            state = self.holder.current  # taken once, as the routes' dependency does
            entry = _remembered(state, _request_key(scope))
            answer = peek(state, entry.key) if entry is not None else None
            if entry is not None and answer is not None:
                caller = self._caller(scope)
                if caller is not None and entry.scope in caller.scopes:
                    scope["route"] = entry.route
                    details = scope.get(AUDIT_KEY)
                    if isinstance(details, dict):
                        details["token"] = caller.name
                    await respond(answer)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _caller(self, scope: AsgiScope) -> Caller | None:
        """The authenticated caller, or None: the route's dependency then refuses the call (401) and words it."""
        authorization = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"authorization"),
                             None)
        client = scope.get("client")
        try:
            return self.authenticator.authenticate(client[0] if client else "", bearer_token(authorization))
        except ApiError:
            return None

