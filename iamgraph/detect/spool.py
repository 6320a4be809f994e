"""The spool: every alert is on disk, per sink, before any delivery is tried, and leaves only once delivered.

Layout under the spool directory::

    <sink>/pending/<alert id>.json   waiting (written atomically)
    <sink>/sent/<alert id>           delivered (an empty marker, so a re-run never delivers the same id twice)
    <sink>/failed/<alert id>.json    the dead letters: alerts this sink refused for good (a webhook's 4xx) or
                                     can never take as configured, each with the reason and time (kept for a
                                     person; move one back to pending/ to try it again)
    <sink>/corrupt/                  pending files that could not be read (kept)

Delivery order: send, write the ``sent`` marker, remove the pending file. Delivery is at-least-once: a crash
between the send and the marker, or a receiver that took the alert but answered too late, gets that alert
again on a later attempt; receivers drop repeats by the alert id. A refused alert never holds back the ones
after it: it goes to the dead letters and delivery goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iamgraph.detect.sinks import Sink, SinkError, Unconfirmed, UndeliverableAlert
from iamgraph.detect.types import Alert
from iamgraph.errors import IamGraphError
from iamgraph.snapshot.io import atomic_write_bytes

_ID = re.compile(r"^[0-9a-f]{8,64}$")


class SpoolError(IamGraphError):
    """The spool directory cannot be used."""


@dataclass(slots=True)
class DeliveryReport:
    sink: str
    queued: int = 0
    """Alerts newly spooled for this sink in this call."""
    duplicates: int = 0
    """Alerts already pending or already delivered (by id): not spooled again."""
    delivered: int = 0
    pending: int = 0
    """Still waiting after this attempt."""
    errors: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    """Pending files that could not be read; moved aside to ``<sink>/corrupt/`` (kept, never deleted)."""
    undeliverable: list[str] = field(default_factory=list)
    """Alerts refused for good in this call (a webhook's 4xx, with the receiver's reason) or that this sink can
    never take as configured; moved to the dead letters, ``<sink>/failed/`` (kept, never deleted)."""
    unconfirmed: int = 0
    """Alerts sent in this call without an answer in time: the receiver may have them; still pending."""
    repeated: int = 0
    """Alerts delivered in this call after attempts that got no answer: the receiver may hold repeats (same id)."""
    dead_letters: int = 0
    """Alerts in ``<sink>/failed/`` after this call, from this run and earlier ones."""


class Spool:
    def __init__(self, root: str | os.PathLike[str], sink: str) -> None:
        self.root = Path(root) / sink
        self.pending_dir = self.root / "pending"
        self.sent_dir = self.root / "sent"
        try:
            self.pending_dir.mkdir(parents=True, exist_ok=True)
            self.sent_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(
                f"{self.root}: cannot create the spool directory: {exc.strerror or exc}"
            ) from None

    def _check(self, alert_id: str) -> None:
        if not _ID.match(alert_id):
            raise SpoolError(f"alert id {alert_id!r} is not a hex id; refusing to use it as a file name")

    def is_sent(self, alert_id: str) -> bool:
        return (self.sent_dir / alert_id).exists()

    def is_pending(self, alert_id: str) -> bool:
        return (self.pending_dir / f"{alert_id}.json").exists()

    def enqueue(self, alert: Alert) -> bool:
        """Spool ``alert`` unless it is pending or delivered already; True when it was added."""
        self._check(alert.id)
        if (
            self.is_sent(alert.id)
            or self.is_pending(alert.id)
            or (self.failed_dir / f"{alert.id}.json").exists()
        ):
            return False
        data = json.dumps({"spooled_at": _now(), "alert": alert.to_json()}, sort_keys=True).encode()
        try:
            atomic_write_bytes(self.pending_dir / f"{alert.id}.json", data)
        except OSError as exc:
            raise SpoolError(
                f"{self.pending_dir}: cannot spool alert {alert.id}: {exc.strerror or exc}"
            ) from None
        return True

    def pending(self) -> list[Path]:
        files = [p for p in self.pending_dir.glob("*.json") if not p.name.startswith(".")]
        # Oldest first (spool time, then name), so a backlog drains in the order alerts happened.
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def mark_sent(self, alert_id: str) -> None:
        self._check(alert_id)
        atomic_write_bytes(self.sent_dir / alert_id, b"")
        with contextlib.suppress(FileNotFoundError):
            (self.pending_dir / f"{alert_id}.json").unlink()

    def prune_sent(self, older_than: timedelta, now: datetime | None = None) -> int:
        """Forget delivery markers older than ``older_than`` (they only guard against re-delivery)."""
        limit = ((now or datetime.now(UTC)) - older_than).timestamp()
        n = 0
        for p in self.sent_dir.iterdir():
            if p.stat().st_mtime < limit:
                p.unlink()
                n += 1
        return n

    @property
    def failed_dir(self) -> Path:
        return self.root / "failed"

    def dead_letters(self) -> list[Path]:
        if not self.failed_dir.is_dir():
            return []
        return sorted(p for p in self.failed_dir.glob("*.json") if not p.name.startswith("."))

    def _quarantine(self, path: Path, folder: str = "corrupt") -> None:
        bad = self.root / folder
        bad.mkdir(exist_ok=True)
        os.replace(path, bad / path.name)

    def _dead_letter(self, path: Path, doc: dict[str, object], reason: str) -> None:
        """Move a pending alert to the dead letters with why and when; the pending shape is kept (``alert`` and
        ``spooled_at``), so moving the file back to ``pending/`` retries it."""
        self.failed_dir.mkdir(exist_ok=True)
        letter = {**doc, "failed_at": _now(), "reason": reason}
        atomic_write_bytes(self.failed_dir / path.name, json.dumps(letter, sort_keys=True).encode())
        path.unlink(missing_ok=True)

    def deliver(self, sink: Sink, report: DeliveryReport | None = None) -> DeliveryReport:
        """Try every pending alert, oldest first. A refused alert goes to the dead letters and the next is
        tried; any other failure stops this sink's delivery for this call (it is likely down or slow)."""
        rep = report or DeliveryReport(sink=sink.name)
        for path in self.pending():
            try:
                doc = json.loads(path.read_bytes())
                alert = Alert.from_json(doc["alert"])
            except FileNotFoundError:
                continue
            except (ValueError, KeyError, TypeError) as exc:
                rep.corrupt.append(f"{path}: {exc}")
                self._quarantine(path)
                continue
            if self.is_sent(alert.id):
                # Delivered earlier but the pending file outlived the crash that followed: drop it.
                path.unlink(missing_ok=True)
                continue
            try:
                sent = sink.send(alert)
            except UndeliverableAlert as exc:
                rep.undeliverable.append(f"{alert.id}: {exc}")
                self._dead_letter(path, doc, str(exc))
                continue
            except Unconfirmed as exc:
                rep.unconfirmed += 1
                rep.errors.append(str(exc))
                break
            except SinkError as exc:
                rep.errors.append(str(exc))
                break
            self.mark_sent(alert.id)
            rep.delivered += 1
            if sent is not None and sent.unanswered_attempts:
                rep.repeated += 1
        rep.pending = len(self.pending())
        rep.dead_letters = len(self.dead_letters())
        return rep


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def spool_and_deliver(
    root: str | os.PathLike[str], sinks: Iterable[Sink], alerts: Iterable[Alert]
) -> list[DeliveryReport]:
    """Spool each alert for each sink whose ``min_severity`` it reaches, then deliver everything pending."""
    alerts = list(alerts)
    out = []
    for sink in sinks:
        spool = Spool(root, sink.name)
        rep = DeliveryReport(sink=sink.name)
        floor = sink.config.min_severity.rank
        for a in alerts:
            if a.severity.rank < floor:
                continue
            if spool.enqueue(a):
                rep.queued += 1
            else:
                rep.duplicates += 1
        out.append(spool.deliver(sink, rep))
    return out
