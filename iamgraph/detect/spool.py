"""The spool: every alert is on disk, per sink, before any delivery is tried, and leaves only once delivered.

Layout under the spool directory::

    <sink>/pending/<alert id>.json   waiting (written atomically)
    <sink>/sent/<alert id>           delivered (an empty marker, so a re-run never delivers the same id twice)
    <sink>/failed/<alert id>.json    alerts this sink can never take as configured (kept for a person to see)
    <sink>/corrupt/                  pending files that could not be read (kept)

Delivery order: send, write the ``sent`` marker, remove the pending file. A crash between the send and the
marker can deliver that one alert again on the next run (at-least-once); receivers can drop repeats by id.
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

from iamgraph.detect.sinks import Sink, SinkError, UndeliverableAlert
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
    """Alerts this sink can never take as configured; moved to ``<sink>/failed/`` (kept, never deleted)."""


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
            or (self.root / "failed" / f"{alert.id}.json").exists()
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

    def _quarantine(self, path: Path, folder: str = "corrupt") -> None:
        bad = self.root / folder
        bad.mkdir(exist_ok=True)
        os.replace(path, bad / path.name)

    def deliver(self, sink: Sink, report: DeliveryReport | None = None) -> DeliveryReport:
        """Try every pending alert, oldest first; stop at the first failure (the sink is likely down)."""
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
                sink.send(alert)
            except UndeliverableAlert as exc:
                rep.undeliverable.append(str(exc))
                self._quarantine(path, "failed")
                continue
            except SinkError as exc:
                rep.errors.append(str(exc))
                break
            self.mark_sent(alert.id)
            rep.delivered += 1
        rep.pending = len(self.pending())
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
