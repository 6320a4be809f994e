"""A fault proxy on 127.0.0.1: forwards every request to the moto server, except those a rule answers itself.

Faults are made at the HTTP layer, outside the process's botocore, so the collector meets them exactly as it
would meet a broken emulator, a proxy or an AWS outage: whatever botocore raises for that answer is what the
collector has to handle.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        """The request's query-protocol parameters (IAM, STS: ``Action=...&UserName=...``)."""
        text = self.body.decode("utf-8", "replace")
        return {k: v[0] for k, v in urllib.parse.parse_qs(text).items()}


Answer = tuple[int, dict[str, str], bytes]
Rule = Callable[[Seen], Answer | None]

# What a Werkzeug/Flask server (moto's own) answers for an unhandled error: HTML that does not start with
# "<html>", so botocore neither parses it as the protocol's XML nor takes it for a generic gateway error page.
WERKZEUG_500 = (
    b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    b"<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable to complete "
    b"your request.</p>\n"
)


def html_500(_: Seen) -> Answer:
    return 500, {"Content-Type": "text/html; charset=utf-8"}, WERKZEUG_500


def query_error(code: str, status: int, message: str = "injected") -> Answer:
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>fault-proxy</RequestId></ErrorResponse>"
    ).encode()
    return status, {"Content-Type": "text/xml"}, body


class FaultProxy:
    """``rules`` are asked in order for every request; the first answer wins, else moto answers."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.rules: list[Rule] = []
        self.answered: list[Seen] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                answer = proxy.answer(seen)
                if answer is None:
                    answer = proxy.forward(seen)
                status, headers, body = answer
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    def answer(self, seen: Seen) -> Answer | None:
        for rule in list(self.rules):
            got = rule(seen)
            if got is not None:
                with self._lock:
                    self.answered.append(seen)
                return got
        return None

    def forward(self, seen: Seen) -> Answer:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        try:
            headers = {k: v for k, v in seen.headers.items() if k.lower() not in ("connection",)}
            conn.request(seen.method, seen.path, body=seen.body or None, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
