"""Request body size and per-request time limits.

The body limit is enforced while the body streams in (a lying or missing Content-Length cannot get past
it). The time limit is cooperative inside the work (``Deadline.check`` in every long loop) and enforced
outside it too: the response is sent when the limit passes even if the worker thread has not noticed yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import orjson
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ErrorBody, ErrorDetail, TimeLimitExceeded

T = TypeVar("T")


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def check(self) -> None:
        if self.expired():
            raise TimeLimitExceeded(self.seconds)


async def run_limited(seconds: float, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(deadline, *args)`` in a worker thread; raise TimeLimitExceeded once ``seconds`` pass."""
    deadline = Deadline(seconds)
    try:
        # A little slack so the cooperative check normally fires first (it stops the work, too).
        with anyio.fail_after(seconds + 0.25):
            return await anyio.to_thread.run_sync(lambda: fn(deadline, *args), abandon_on_cancel=True)
    except TimeoutError:
        deadline.at = 0.0  # tell the abandoned worker to stop at its next check
        raise TimeLimitExceeded(seconds) from None


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
                    await self._reply(send, 400, "bad_request", "Content-Length is not a number")
                    return
                if declared > self.max_bytes:
                    await self._reply(send, 413, "body_too_large", self._message())
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
                await self._reply(send, 413, "body_too_large", self._message())

    def _message(self) -> str:
        return f"request body over the limit of {self.max_bytes} bytes"

    @staticmethod
    async def _reply(send: Send, status: int, code: str, message: str) -> None:
        body = orjson.dumps(ErrorBody(error=ErrorDetail(code=code, message=message)).model_dump())
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
