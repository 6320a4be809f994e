"""Test helpers for iamgraph.detect: CloudTrail records written as the S3 layout, and local receivers."""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"


def role_record(
    role: str,
    event_source: str,
    event_name: str,
    when: str,
    *,
    region: str = "us-east-1",
    read_only: bool | None = False,
    error_code: str | None = None,
    ip: str = "192.0.2.10",
    account: str = ACCOUNT,
    recipient: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE:{role}-session",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{role}-session",
            "accountId": account,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLE",
                    "arn": f"arn:aws:iam::{account}:role/{role}",
                    "accountId": account,
                    "userName": role,
                }
            },
        },
        "eventTime": when,
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "eventID": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{role}{event_name}{when}{region}{ip}")),
        "recipientAccountId": recipient or account,
        "eventType": "AwsApiCall",
    }
    if read_only is not None:
        rec["readOnly"] = read_only
    if error_code:
        rec["errorCode"] = error_code
    return rec


def write_log(root: Path, records: list[dict[str, Any]], *, name: str = "a", account: str = ACCOUNT) -> Path:
    """One .json.gz file in CloudTrail's S3 layout, dated by its first record."""
    t = datetime.fromisoformat(records[0]["eventTime"].replace("Z", "+00:00"))
    d = root / "AWSLogs" / account / "CloudTrail" / "us-east-1" / f"{t:%Y}" / f"{t:%m}" / f"{t:%d}"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{account}_CloudTrail_us-east-1_{t:%Y%m%dT%H%MZ}_{name}.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: Any = self.server
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        server.calls += 1
        if server.fail_first > 0:
            server.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        server.received.append((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def http_receiver(port: int = 0, fail_first: int = 0) -> Iterator[Any]:
    server: Any = HTTPServer(("127.0.0.1", port), _Recorder)
    server.received = []
    server.calls = 0
    server.fail_first = fail_first
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)


class _TcpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        buf = b""
        while True:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            buf += chunk
            # RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG, repeated.
            while b" " in buf:
                head, rest = buf.split(b" ", 1)
                n = int(head)
                if len(rest) < n:
                    break
                server.received.append(rest[:n])
                buf = rest[n:]


class _ThreadingTcp(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@contextmanager
def tcp_syslog_receiver(port: int = 0) -> Iterator[Any]:
    server: Any = _ThreadingTcp(("127.0.0.1", port), _TcpHandler)
    server.received = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)


class _Webhook(BaseHTTPRequestHandler):
    """A webhook that refuses some alerts for good, and/or answers each alert's first attempt only after that
    alert's next attempt has arrived (so the sender has timed out on it: a receiver slower than the timeout,
    without any timing in the test)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        server: Any = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        alert_id = self.headers.get("X-Iamgraph-Alert-Id", "")
        with server.lock:
            server.attempts.append((dict(self.headers), json.loads(body)))
            n = server.seen.get(alert_id, 0) + 1
            server.seen[alert_id] = n
            retried = server.retried.setdefault(alert_id, threading.Event())
            if n > 1:
                retried.set()
        if alert_id in server.refuse:
            self._answer(400, b"invalid_payload")
            return
        if server.slow == "always" or (server.slow == "first" and n == 1):
            # Hold the answer until this alert is sent again (or the receiver closes): the sender gave up on it.
            (retried if server.slow == "first" else server.closing).wait(60)
        self._answer(200, b"ok")

    def _answer(self, status: int, text: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
        except OSError:  # the sender is gone (it timed out): nothing to tell it
            pass

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def webhook_receiver(*, refuse: set[str] | None = None, slow: str | None = None) -> Iterator[Any]:
    """``slow``: ``"first"`` (each alert's first attempt answered only after its retry arrived) or ``"always"``
    (no answer until the receiver closes). ``attempts``: every request; ``seen``: attempts per alert id."""
    from http.server import ThreadingHTTPServer

    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.attempts = []
    server.seen = {}
    server.retried = {}
    server.closing = threading.Event()
    server.refuse = refuse if refuse is not None else set()
    server.slow = slow
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.closing.set()
        for e in list(server.retried.values()):
            e.set()
        server.shutdown()
        server.server_close()
        t.join(5)
