"""Finished answers, kept per snapshot state as the JSON bytes sent, and answered again on the event loop.

A read whose answer is already known (the same query on the same snapshot) is a dict lookup. Sending it
through the work pool would cost two thread hops, each waiting for the GIL behind whatever graph work the
pool's threads are doing, and building and serialising the response models again would allocate thousands
of short-lived objects per call (which also made the cyclic garbage collector walk the whole graph more
often). Under 64 concurrent clients those costs were the tail (docs/benchmarks.md, HTTP API). So: the first
call computes and renders in a work thread (``run_admitted``: admission control, time limit), later calls
with the same key get the same bytes on the loop. Authentication, scope checks and the audit line stay on
every call: they run before and around the route.

A request answered this way is also remembered by everything routing and the route read of it: the path and
raw query string (a GET), the first Content-Type and the body's SHA-256 (an access request's POST). ``ServeKept``,
the innermost middleware, answers a repeat from those bytes before routing: FastAPI's routing, dependency
resolution and validation were about half of the server's CPU on a cached read (docs/benchmarks.md, HTTP API),
and the same request on the same snapshot can only come to the same answer. It still
authenticates the caller and checks the route's scope (with the same ``api.auth`` code as the route's
dependency) and gives the audit line the caller, the route and what the route added to it the first time (an
access request's principal, grant, verdict, ``cached: true``); anything else (no kept answer, no valid token,
a missing scope) goes the normal way, so every refusal is made, worded and audited in one place.

The answers belong to a ``State`` (``state.cache``), so a snapshot reload starts afresh; the store is an LRU
bounded in entries and in bytes.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from api.admission import run_admitted
from api.audit import AUDIT_KEY
from api.auth import Authenticator, Caller, bearer_token
from api.errors import ApiError
from api.holder import SnapshotHolder, State
from api.limits import Deadline, replay
from iamgraph.serving.tokens import Scope

if TYPE_CHECKING:
    from api.deps import Call

MAX_ANSWERS = 512
MAX_BYTES = 64 * 1024 * 1024
"""Bytes of rendered answers kept per snapshot state; the least recently used go first."""
MAX_ONE = 8 * 1024 * 1024
"""An answer larger than this is sent but not kept (it would push out many small ones)."""

MAX_REQUEST_KEY = 8192
"""Characters of path, query string and Content-Type beyond which a request is not remembered (the kept answer
is still used by the route), so the remembered requests stay small whatever a client sends."""
MAX_REMEMBERED = 4096
"""Requests remembered per snapshot state for ``ServeKept`` (each names a kept answer; the answers are bounded
above)."""

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
    audit: Mapping[str, Any]
    """What the route adds to the audit line of a call answered from the kept bytes (never changed)."""


RequestKey = tuple[str, str, str, bytes, str | None, bytes | None]
"""What routing, validation and the route read of a request: method, root path, path, raw query string, the
first Content-Type (FastAPI's choice of body parser) and the body's SHA-256 (None for a GET)."""


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
    pool under the request's time limit, then kept. A computation that fails is not kept. The request is
    remembered for ``ServeKept``."""
    state = call.state
    found = peek(state, key)
    if found is None:

        def work(deadline: Deadline) -> Answer:
            return render(compute(deadline))

        found = await run_admitted(request, call.caller, work)
        keep(state, key, found)
    await remember(request, call, key)
    return found


async def remember(request: Request, call: Call, key: Hashable, audit: Mapping[str, Any] | None = None) -> None:
    """Let ``ServeKept`` answer this exact request again from the answer kept under ``key``, adding ``audit`` to its
    audit line (what the route adds for a repeated call). Only GET and POST; a POST by its body's SHA-256."""
    method = request.scope["method"]
    if method not in ("GET", "POST"):
        return
    body = await request.body() if method == "POST" else None
    request_key = _request_key(request.scope, body)
    if sum(len(part) for part in request_key[1:5] if part is not None) > MAX_REQUEST_KEY:
        return  # e.g. a query string with a parameter repeated many times: answered, not remembered
    entry = _Remembered(key=key, scope=call.scope, route=request.scope.get("route"), audit=dict(audit or {}))
    with _lock:
        raw = call.state.cache.get(_RAW_KEY)
        if raw is None:
            raw = call.state.cache[_RAW_KEY] = _Requests()
        raw.add(request_key, entry)


class _Requests:
    def __init__(self) -> None:
        self.items: OrderedDict[RequestKey, _Remembered] = OrderedDict()
        self.post_paths: set[tuple[str, str]] = set()
        """(root path, path) of every POST remembered: only those have their body read ahead of routing."""

    def add(self, request_key: RequestKey, entry: _Remembered) -> None:
        self.items[request_key] = entry
        self.items.move_to_end(request_key)
        if request_key[0] == "POST":
            self.post_paths.add(request_key[1:3])
        while len(self.items) > MAX_REMEMBERED:
            self.items.popitem(last=False)


def _requests(state: State) -> _Requests | None:
    raw = state.cache.get(_RAW_KEY)
    assert raw is None or isinstance(raw, _Requests)
    return raw


def _request_key(scope: AsgiScope, body: bytes | None) -> RequestKey:
    content_type = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"content-type"), None)
    return (scope["method"], scope.get("root_path", ""), scope["path"], scope.get("query_string", b""),
            content_type, hashlib.sha256(body).digest() if body is not None else None)


class ServeKept:
    """ASGI middleware (the innermost): a GET, or a POST of a remembered endpoint, whose every part routing and the
    route read was answered on the current snapshot is answered again from the kept bytes, once its caller is
    authenticated and holds the route's scope. Anything else goes on to the routes unchanged (a POST's body
    replayed)."""

    def __init__(self, app: ASGIApp, *, holder: SnapshotHolder, authenticator: Authenticator) -> None:
        self.app = app
        self.holder = holder
        self.authenticator = authenticator

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        state = self.holder.current  # taken once, as the routes' dependency does
        raw = _requests(state)
        if raw is None:
            await self.app(scope, receive, send)
            return
        body: bytes | None = None
        if scope["method"] == "POST":
            if (scope.get("root_path", ""), scope["path"]) not in raw.post_paths:
                await self.app(scope, receive, send)
                return
            body, receive = await _read_body(receive)
            if body is None:  # the client went away mid-body: let the routes see it as usual
                await self.app(scope, receive, send)
                return
        with _lock:
            entry = raw.items.get(_request_key(scope, body))
        answer = peek(state, entry.key) if entry is not None else None
        if entry is not None and answer is not None:
            caller = self._caller(scope)
            if caller is not None and entry.scope in caller.scopes:
                scope["route"] = entry.route
                details = scope.get(AUDIT_KEY)
                if isinstance(details, dict):
                    details["token"] = caller.name
                    details.update(entry.audit)
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


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (None if the client disconnected first) and a ``receive`` that gives it again."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, replay(messages, receive)
        if not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages)
    return body, replay([{"type": "http.request", "body": body, "more_body": False}], receive)
