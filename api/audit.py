"""The audit log: one JSON line per API call, answered or refused, written before the answer is sent.

``AuditMiddleware`` is the outermost layer of the app, so it sees every response: 2xx answers, refusals by the
other middlewares (400 header or JSON shape, 413 body size), by authentication (401, 403), by validation
(422), by admission control (429), and failures (5xx). Request bodies are recorded as their SHA-256 and size,
never as content; a route adds what it knows (an access request's principal, verdict and reasons, the grant's
documents again only as SHA-256 and size) through ``audit_details``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.guards import redact_tokens

log = logging.getLogger("iamgraph.api")

AUDIT_KEY = "iamgraph.audit"
"""The ASGI scope key of the current call's audit details (a dict the routes add to)."""
_MAX_ERROR_BODY = 65_536
_TOKEN_ID = re.compile(rb"^\s*bearer\s+igt_([0-9a-f]{12})_", re.IGNORECASE)
EVENTS = {"/v1/access-requests/evaluate": "access_request.evaluate", "/v1/snapshots/reload": "snapshot.reload"}
"""Routes whose calls carry their own event name; every other call is ``api.call``."""
WRITER_IDLE_SECONDS = 5.0
"""How long the audit writer thread waits for another line before it ends (a new one starts on demand)."""


class AuditLog:
    """Appends whole lines with a single ``write`` on an ``O_APPEND`` descriptor: the kernel places each write
    at the end of the file, so concurrent writers (threads or processes) never interleave inside a line.

    ``record`` writes and fsyncs one line now. ``record_async`` (what the middleware uses) commits in groups:
    lines that arrive while a write is in progress are written together by one writer thread with one
    ``write`` and one ``fsync``, and each caller resumes only once its own line is on disk, so the promise
    "written before the answer is sent" holds while the cost of an fsync is shared by every call waiting for
    it. Nothing is dropped: the queue holds at most one line per call in flight (each caller waits for its
    line), and a failed write fails every call of its group (each is then answered 503, as before).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        """Serialises writes to the file (``record`` and the group writer)."""
        self._queue_ready = threading.Condition()
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writing = False
        """A writer thread is running; it takes every queued line before it stops."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.close(fd)

    @staticmethod
    def _line(event: str, caller: str | None, fields: dict[str, Any]) -> bytes:
        entry = {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "event": event, "token": caller, **fields}
        try:
            return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS) + b"\n"
        except TypeError:  # an integer beyond 64 bits in a policy: the standard library can write it
            return json.dumps(entry, sort_keys=True, default=str, ensure_ascii=False).encode() + b"\n"

    def _write(self, data: bytes) -> None:
        assert self.path is not None
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = os.write(fd, data)
                while written < len(data):  # a short write on a regular file is rare; finish the rest
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            finally:
                os.close(fd)

    def record(self, event: str, caller: str | None, **fields: Any) -> None:
        if self.path is None:
            return
        self._write(self._line(event, caller, fields))

    async def record_async(self, event: str, caller: str | None, **fields: Any) -> None:
        """``record`` for a coroutine: returns once the line is written and synced, raises if it was not."""
        if self.path is None:
            return
        line = self._line(event, caller, fields)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Retrieve a failure nobody awaits any more (the caller was cancelled), so asyncio does not log it.
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        with self._queue_ready:
            self._queue.append((line, done))
            start = not self._writing
            self._writing = True
            self._queue_ready.notify()
        if start:  # rare: the writer stays a while after its queue empties (starting a thread blocks the loop)
            threading.Thread(target=self._drain, name="iamgraph-audit", daemon=True).start()
        # Shielded: a caller cancelled while waiting does not take its line out of the group; it is written.
        await asyncio.shield(done)

    def _drain(self) -> None:
        """The writer thread: write every queued line in groups; stop after ``WRITER_IDLE_SECONDS`` without one."""
        while True:
            with self._queue_ready:
                if not self._queue:
                    self._queue_ready.wait(WRITER_IDLE_SECONDS)
                if not self._queue:
                    self._writing = False
                    return
                group, self._queue = self._queue, []
            error: BaseException | None = None
            try:
                self._write(b"".join(line for line, _ in group))
            except BaseException as exc:  # the disk is full, the file was made read-only, ...
                error = exc
            for _, done in group:
                with contextlib.suppress(RuntimeError):  # the caller's loop is gone; nobody to tell
                    done.get_loop().call_soon_threadsafe(_settle, done, error)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def audit_details(request: Request) -> dict[str, Any]:
    """The current call's audit details; what a route puts here goes into the call's audit line."""
    details = request.scope.get(AUDIT_KEY)
    if details is None:  # the app runs without AuditMiddleware (never in create_app): a throwaway dict
        details = request.scope[AUDIT_KEY] = {}
    assert isinstance(details, dict)
    return details


def digest(raw: bytes) -> dict[str, Any]:
    """How the audit log records a document or body: its SHA-256 and size, never its content."""
    return {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}


def _outcome(status: int) -> str:
    return "ok" if status < 400 else "refused" if status < 500 else "failed"


class AuditMiddleware:
    """Writes one audit line per HTTP call, before the response leaves (for an error, once its small body is
    known, so the line carries the error code and message). When a successful answer cannot be audited (the
    log cannot be written), the caller gets 503 instead of the answer: nothing is answered unaudited."""

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.audit.path is None:
            await self.app(scope, receive, send)
            return
        details: dict[str, Any] = {}
        scope[AUDIT_KEY] = details
        began = time.monotonic()
        body_hash = hashlib.sha256()
        received = 0
        complete = False

        async def hashing_receive() -> Message:
            nonlocal received, complete
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                body_hash.update(chunk)
                received += len(chunk)
                if not message.get("more_body", False):
                    complete = True
            return message

        held: Message | None = None
        held_bodies: list[Message] = []
        error_body = bytearray()
        status: int | None = None
        replaced = False

        def body_fields() -> dict[str, Any]:
            if complete:
                return {"sha256": body_hash.hexdigest(), "bytes": received} if received else {"bytes": 0}
            declared = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"content-length"), None)
            return {"bytes_received": received, "complete": False, "declared_bytes": declared}

        async def write(status: int, error: dict[str, Any] | None) -> bool:
            entry = self._entry(scope, details, status, error, body_fields(), time.monotonic() - began)
            try:
                await self.audit.record_async(**entry)
            except Exception as exc:  # the disk is full, the file was made read-only, ...
                log.error("audit log not written (%s %s -> %s): %s", scope.get("method"), scope.get("path"),
                          status, exc)
                return False
            return True

        async def auditing_send(message: Message) -> None:
            nonlocal held, status, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status < 400:
                    if not await write(status, None):
                        replaced = True
                        await _reply_unaudited(send)
                        return
                    await send(message)
                    return
                held = message  # wait for the error body: the audit line names the error
                return
            if held is not None and message["type"] == "http.response.body":
                if len(error_body) < _MAX_ERROR_BODY:
                    error_body.extend(message.get("body", b"")[: _MAX_ERROR_BODY - len(error_body)])
                if message.get("more_body", False):
                    held_bodies.append(message)
                    return
                assert status is not None
                await write(status, _error_of(bytes(error_body)))
                start, held = held, None
                for m in (start, *held_bodies, message):
                    await send(m)
                held_bodies.clear()
                return
            await send(message)

        try:
            await self.app(scope, hashing_receive, auditing_send)
        except BaseException as exc:
            if status is None or held is not None:
                if isinstance(exc, Exception):
                    # Unhandled: Starlette's outer error middleware answers 500 after this.
                    await write(500, {"code": "internal_error", "message": "unhandled error (server log)"})
                else:
                    # Cancelled (server shutting down): record it if the cancellation lets us; re-raise anyway.
                    with contextlib.suppress(BaseException):
                        await write(499, {"code": "cancelled", "message": "the call was cancelled unanswered"})
            raise
        if status is None:
            await write(499, {"code": "no_response", "message": "no response was sent (the client went away?)"})

    @staticmethod
    def _entry(scope: Scope, details: dict[str, Any], status: int, error: dict[str, Any] | None,
               body: dict[str, Any], seconds: float) -> dict[str, Any]:
        route = scope.get("route")
        template = getattr(route, "path", None)
        token_id = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and (m := _TOKEN_ID.match(value)):
                token_id = m.group(1).decode()  # the public part of the token only, never the secret
        fields: dict[str, Any] = {
            # Before routing (a refusal by a middleware) the path names the endpoint.
            "event": details.pop("event", None) or EVENTS.get(template or scope.get("path", ""), "api.call"),
            "caller": details.pop("token", None),
            "method": scope.get("method"),
            # Never the query string, and no token secret pasted into the path: neither belongs in a log.
            "path": redact_tokens(str(scope.get("path", ""))),
            "route": template,
            "status": status,
            "outcome": _outcome(status),
            "client": (scope.get("client") or (None,))[0],
            "token_id": token_id,
            "body": body,
            "duration_ms": round(seconds * 1000, 1),
        }
        if error is not None:
            fields["error_code"] = error.get("code")
            message = error.get("message")
            fields["error"] = redact_tokens(message) if isinstance(message, str) else message
        fields.update(details)
        return fields


def _error_of(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"code": None, "message": None}
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict):
        return {"code": None, "message": None}
    return {"code": err.get("code"), "message": err.get("message")}


async def _reply_unaudited(send: Send) -> None:
    from api.limits import reply_error

    await reply_error(send, 503, "audit_unavailable",
                      "the answer could not be written to the audit log, so it is not given; the server log "
                      "has the details")
