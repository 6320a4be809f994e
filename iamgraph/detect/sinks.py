"""Where alerts go. A sink delivers one alert or raises ``SinkError``; the spool retries later.

Delivery is at-least-once: an alert leaves the spool only when its receiver confirmed it. A webhook whose answer
does not come in time may still have taken the alert, so it is sent again (same id) rather than lost; receivers
drop repeats by the alert id (``X-Iamgraph-Alert-Id`` and ``Idempotency-Key`` headers, the ``id`` field or
"Alert id" fact of every format).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from iamgraph.detect.config import SinkConfig, SinkKind, SyslogProtocol, WebhookFormat
from iamgraph.detect.payloads import (
    asff_finding,
    octet_counted,
    slack_payload,
    syslog_message,
    teams_adaptive_card,
    teams_message_card,
)
from iamgraph.detect.types import Alert
from iamgraph.errors import IamGraphError
from iamgraph.snapshot.io import atomic_write_bytes


class SinkError(IamGraphError):
    """A delivery that failed; the alert stays spooled."""


class UndeliverableAlert(SinkError):
    """This sink, as configured, can never deliver this alert (others can): it is set aside, not retried."""


class Unconfirmed(SinkError):
    """The alert was sent but no answer came in time: the receiver may have it. It stays pending (sent again
    later with the same id)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    """A confirmed delivery."""

    unanswered_attempts: int = 0
    """Earlier attempts of this delivery that got no answer in time: the receiver may hold that many repeats."""


class Sink(Protocol):
    name: str
    config: SinkConfig

    def send(self, alert: Alert) -> Sent | None:
        """Deliver, or raise: ``UndeliverableAlert`` (never, as configured), ``SinkError`` (try again later)."""
        ...

    def close(self) -> None: ...


def alert_line(alert: Alert) -> str:
    return json.dumps(alert.to_json(), sort_keys=True, separators=(",", ":"))


class StdoutSink:
    """JSON lines through the writer the CLI gives (nothing prints outside the CLI)."""

    def __init__(self, config: SinkConfig, write: Callable[[str], None]) -> None:
        self.name = config.name
        self.config = config
        self._write = write

    def send(self, alert: Alert) -> None:
        self._write(alert_line(alert))
        return None

    def close(self) -> None:
        pass


class WebhookSink:
    """POST to a Slack or Teams webhook; retries connection errors, 429 and 5xx with exponential back-off."""

    def __init__(self, config: SinkConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        assert config.url is not None
        self.name = config.name
        self.config = config
        self._sleep = sleep
        self._client = httpx.Client(timeout=config.timeout_seconds, trust_env=False)

    def payload(self, alert: Alert) -> dict[str, object]:
        fmt = self.config.format
        if fmt is WebhookFormat.TEAMS:
            return teams_message_card(alert)
        if fmt is WebhookFormat.TEAMS_ADAPTIVE:
            return teams_adaptive_card(alert)
        return slack_payload(alert)

    def send(self, alert: Alert) -> Sent:
        url = self.config.url
        assert url is not None
        body = json.dumps(self.payload(alert)).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Iamgraph-Alert-Id": alert.id,
            # The same key on every attempt of the same alert, in the header the IETF httpapi draft names
            # (draft-ietf-httpapi-idempotency-key-header), for receivers that deduplicate generically.
            "Idempotency-Key": alert.id,
        }
        delay = self.config.backoff_seconds
        timeout = self.config.timeout_seconds
        unanswered = 0
        last = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                self._sleep(delay)
                delay *= 2
            try:
                resp = self._client.post(url, content=body, headers=headers, timeout=timeout)
            except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError) as exc:
                # Sent (or partly sent) and no answer: the receiver may have taken it. Ask again with the same
                # id, waiting longer each time (up to 8 times the configured timeout) so a receiver that is
                # merely slower than the timeout ends up confirming instead of collecting repeats.
                unanswered += 1
                last = f"no answer in {timeout:g} s ({type(exc).__name__})"
                timeout = min(timeout * 2, self.config.timeout_seconds * 8)
                continue
            except httpx.HTTPError as exc:  # not sent: refused connection, name or connect timeout
                last = f"{type(exc).__name__}: {exc}"
                continue
            status = resp.status_code
            if 200 <= status < 300:
                return Sent(unanswered_attempts=unanswered)
            last = f"HTTP {status}{_said(resp)}"
            if status in _TRANSIENT or status >= 500:
                # Slack answers 429 with Retry-After: https://api.slack.com/apis/rate-limits
                retry_after = resp.headers.get("Retry-After", "")
                if status == 429 and retry_after.isdigit():
                    delay = max(delay, float(retry_after))
                continue
            # Any other answer (a 4xx, or a redirect, which is not followed) is the receiver's final word on
            # this alert: sending it again would be refused again and hold back every alert after it.
            raise UndeliverableAlert(f"sink {self.name}: {url}: refused ({last})")
        if unanswered:
            raise Unconfirmed(
                f"sink {self.name}: {url}: {unanswered} attempt(s) got no answer in time (last: {last}); the "
                "receiver may have the alert: it will be sent again with the same id"
            )
        raise SinkError(f"sink {self.name}: {url}: delivery failed ({last})")

    def close(self) -> None:
        self._client.close()


_TRANSIENT = frozenset({408, 425, 429})
"""Answers worth another try (RFC 9110 §15.5.9 Request Timeout, RFC 8470 Too Early, RFC 6585 Too Many Requests);
5xx too. Every other 3xx/4xx is final for this alert."""


def _said(resp: httpx.Response) -> str:
    """The first line of the receiver's answer (Slack says why: ``invalid_payload``, ``no_text``, ...)."""
    text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else ""
    return f": {text}" if text else ""


class SyslogSink:
    """RFC 5424 over UDP (a datagram each) or TCP (RFC 6587 octet counting, one connection per run)."""

    def __init__(self, config: SinkConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        assert config.host is not None
        self.name = config.name
        self.config = config
        self._sleep = sleep
        self._tcp: socket.socket | None = None

    def _message(self, alert: Alert) -> bytes:
        return syslog_message(alert, facility=self.config.facility, app_name=self.config.app_name)

    def send(self, alert: Alert) -> None:
        msg = self._message(alert)
        cfg = self.config
        delay = cfg.backoff_seconds
        last = ""
        for attempt in range(cfg.retries + 1):
            if attempt:
                self._sleep(delay)
                delay *= 2
            try:
                if cfg.protocol is SyslogProtocol.UDP:
                    self._send_udp(msg)
                else:
                    self._send_tcp(octet_counted(msg))
                return
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
                self._drop_tcp()
        raise SinkError(
            f"sink {self.name}: {cfg.protocol.value}://{cfg.host}:{cfg.port}: delivery failed ({last})"
        )

    def _send_udp(self, msg: bytes) -> None:
        # A UDP send succeeds whether or not anyone listens; on loopback a closed port shows up as
        # ECONNREFUSED on a connected socket, which is the best a datagram sink can know.
        assert self.config.host is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(self.config.timeout_seconds)
            s.connect((self.config.host, self.config.port))
            s.send(msg)

    def _send_tcp(self, framed: bytes) -> None:
        assert self.config.host is not None
        if self._tcp is None:
            self._tcp = socket.create_connection(
                (self.config.host, self.config.port), timeout=self.config.timeout_seconds
            )
        self._tcp.sendall(framed)

    def _drop_tcp(self) -> None:
        if self._tcp is not None:
            try:
                self._tcp.close()
            finally:
                self._tcp = None

    def close(self) -> None:
        self._drop_tcp()


class AsffFileSink:
    """Findings in BatchImportFindings' shape (``{"Findings": [...]}``) in one file, rewritten atomically.

    A finding with the same ``Id`` replaces the earlier one, as Security Hub itself does on import.
    """

    def __init__(self, config: SinkConfig) -> None:
        assert config.path is not None
        self.name = config.name
        self.config = config
        self.path = Path(config.path)

    def send(self, alert: Alert) -> None:
        if not (alert.account_id and alert.account_id.isdigit()) and not self.config.product_account:
            # AwsAccountId is required in ASFF; inventing one would be a false fact.
            raise UndeliverableAlert(
                f"sink {self.name}: alert {alert.id} names no AWS account; set product_account for those"
            )
        try:
            findings = self._read()
            new = asff_finding(alert, product_account=self.config.product_account, region=self.config.region)
            findings = [f for f in findings if f.get("Id") != new["Id"]] + [new]
            atomic_write_bytes(self.path, json.dumps({"Findings": findings}, indent=1).encode())
        except OSError as exc:
            raise SinkError(f"sink {self.name}: {self.path}: cannot write: {exc.strerror or exc}") from None

    def _read(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        try:
            doc = json.loads(self.path.read_bytes())
        except ValueError as exc:
            # Never overwrite a file we cannot read: the findings in it would be lost.
            raise SinkError(
                f"sink {self.name}: {self.path}: not a findings file ({exc}); not overwritten"
            ) from None
        items = doc.get("Findings") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise SinkError(f"sink {self.name}: {self.path}: no Findings list; not overwritten")
        return [f for f in items if isinstance(f, dict)]

    def close(self) -> None:
        pass


def make_sink(
    config: SinkConfig,
    *,
    write: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Sink:
    if config.kind is SinkKind.STDOUT:
        if write is None:
            raise SinkError(f"sink {config.name}: stdout needs a writer")
        return StdoutSink(config, write)
    if config.kind is SinkKind.WEBHOOK:
        return WebhookSink(config, sleep=sleep)
    if config.kind is SinkKind.SYSLOG:
        return SyslogSink(config, sleep=sleep)
    return AsffFileSink(config)
