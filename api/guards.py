"""Where a credential must not travel: refusals before authentication, and the access log without query strings.

RFC 6750 §3.1: a request that is malformed, or that uses more than one method to send the token, is answered
``invalid_request`` (400). A repeated ``Authorization`` header is ambiguous (which one counts depends on who
reads it: a proxy may check one and the app the other), so it is refused rather than resolved.
A token in the URL (``?access_token=``, RFC 6750 §2.3) is refused too: §5.3 advises against it because URLs
end up in logs and browser history. https://www.rfc-editor.org/rfc/rfc6750
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import reply_error

_INVALID_REQUEST = ((b"www-authenticate", b'Bearer error="invalid_request"'),)
_TOKEN = re.compile(r"igt_([0-9a-f]{12})_[A-Za-z0-9_-]+")
"""A token's shape (iamgraph.cli.serve_tokens): ``igt_<public id>_<secret>``."""
_TOKEN_BYTES = re.compile(rb"igt_[0-9a-f]{12}_[A-Za-z0-9_-]")


def redact_tokens(text: str) -> str:
    """``text`` with the secret of anything shaped like a token replaced (the public id is kept)."""
    return _TOKEN.sub(r"igt_\1_[redacted]", text)


class RequestGuard:
    """ASGI middleware: 400 for a repeated ``Authorization`` header or a token in the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _problem(scope)
            if problem is not None:
                await _drain(receive)
                await reply_error(send, 400, "invalid_request", problem[0], location=problem[1],
                                  headers=_INVALID_REQUEST)
                return
        await self.app(scope, receive, send)


def _problem(scope: Scope) -> tuple[str, str] | None:
    count = sum(1 for name, _ in scope.get("headers", ()) if name == b"authorization")
    if count > 1:
        return (f"{count} Authorization headers; send exactly one (Authorization: Bearer <token>)",
                "header.authorization")
    query = scope.get("query_string", b"")
    names = {k for k, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)} if query else set()
    if "access_token" in names or _TOKEN_BYTES.search(unquote_to_bytes(query)):
        return ("a token in the URL is not accepted (URLs are logged); send it in the Authorization header",
                "query.access_token" if "access_token" in names else "query")
    return None


async def _drain(receive: Receive) -> None:
    """Read the request body to its end, so the connection can serve the client's next request (keep-alive)."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class RedactQueryStrings(logging.Filter):
    """Drops the query string from uvicorn's access-log lines (``"%s - "%s %s HTTP/%s" %d"``: the third
    argument is the path with its query), so a credential sent there, by mistake or by a probe, is not
    written to the server's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = redact_tokens(args[2].split("?", 1)[0]) + ("?[query redacted]" if "?" in args[2] else "")
            record.args = (*args[:2], path, *args[3:])
        return True


def redact_access_log() -> None:
    """Install ``RedactQueryStrings`` on uvicorn's access logger (once per process; uvicorn has configured its
    logging before it calls the app factory, so the filter stays)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
        logger.addFilter(RedactQueryStrings())
