"""Request body limits (size, JSON nesting and size) and the per-request time limit.

The size limit is enforced while the body streams in (a lying or missing Content-Length cannot get past
it). The JSON shape limit is checked on the raw bytes before anything parses, hashes or validates the body.
The time limit is cooperative inside the work (``Deadline.check`` in every long loop) and enforced outside
it too (api.admission): the response is sent when the limit passes even if the worker has not noticed yet.
"""

from __future__ import annotations

import re
import time

import orjson
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ErrorBody, ErrorDetail, TimeLimitExceeded


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def check(self) -> None:
        if self.expired():
            raise TimeLimitExceeded(self.seconds)

    def cancel(self) -> None:
        """Make the next ``check`` stop the work (its caller has been answered already)."""
        self.at = 0.0


class _TooLarge(HTTPException):
    """An HTTPException so that FastAPI's body reader passes it on instead of calling it a parse error."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over the limit of {max_bytes} bytes")


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await reply_error(send, 400, "bad_request", "Content-Length is not a number")
                    return
                if declared > self.max_bytes:
                    await reply_error(send, 413, "body_too_large", self._message())
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await reply_error(send, 413, "body_too_large", self._message())

    def _message(self) -> str:
        return f"request body over the limit of {self.max_bytes} bytes"


async def reply_error(send: Send, status: int, code: str, message: str, *, location: str | None = None,
                      headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """Send the one error body (api.errors.ErrorBody) from an ASGI middleware, outside FastAPI's handlers."""
    body = orjson.dumps(ErrorBody(error=ErrorDetail(code=code, message=message, location=location)).model_dump())
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


# A JSON string, escapes included; an unterminated one runs to the end (the parser will refuse that body).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_shape_problem(body: bytes, *, max_depth: int, max_nodes: int) -> str | None:
    """Why ``body`` is too deeply nested or has too many values to be parsed, or None.

    Works on the bytes with C-speed scans (no recursion, no parse): string contents are blanked so brackets
    and commas inside strings do not count, then containers and commas give an upper bound on the number of
    values (1 + commas + containers), and the brackets alone give the nesting depth.
    """
    skeleton = _STRING.sub(b'""', body)
    containers = skeleton.count(b"[") + skeleton.count(b"{")
    if 1 + skeleton.count(b",") + containers > max_nodes:
        return f"the JSON body has more than {max_nodes} values (arrays, objects, strings, numbers); send less"
    depth = 0
    for c in skeleton.translate(None, _NOT_BRACKETS):
        if c == 0x5B or c == 0x7B:  # [ {
            depth += 1
            if depth > max_depth:
                return (f"the JSON body is nested more than {max_depth} arrays/objects deep; no policy or request "
                        "needs that")
        else:
            depth -= 1
    return None


class JsonShapeLimit:
    """ASGI middleware: 400 for a JSON body nested deeper than ``max_depth`` or with more than ``max_nodes``
    values, decided on the raw bytes before anything parses, hashes or validates it. Sits inside
    ``BodySizeLimit``, so the body it reads whole is already bounded in size. The whole body is read before
    answering, so the connection stays usable for the client's next request (keep-alive)."""

    def __init__(self, app: ASGIApp, *, max_depth: int, max_nodes: int) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_nodes = max_nodes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Every body, whatever its Content-Type: FastAPI parses some as JSON without one, and a body this
        # server does not parse costs nothing to refuse.
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it as usual
                await self.app(scope, replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = json_shape_problem(body, max_depth=self.max_depth, max_nodes=self.max_nodes) if body else None
        if problem is not None:
            await reply_error(send, 400, "invalid_input", problem, location="body")
            return
        await self.app(scope, replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then whatever ``receive`` gives (a body read ahead, replayed)."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
