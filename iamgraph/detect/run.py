"""One detection run (``--since``) and the follow loop (``--follow``): read, compare, spool, deliver."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iamgraph.detect.baseline import Baselines
from iamgraph.detect.config import DetectConfig
from iamgraph.detect.events import BadFile, EventReader, files_between
from iamgraph.detect.rules import DetectionResult, Detector
from iamgraph.detect.sinks import Sink
from iamgraph.detect.spool import DeliveryReport, spool_and_deliver
from iamgraph.detect.types import CallEvent
from iamgraph.errors import InputError
from iamgraph.usage.ingest import LogFile, local_files
from iamgraph.usage.store import UsageStore

_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, until: datetime) -> datetime:
    """``24h``/``90m``/``7d`` before ``until``, or an ISO 8601 date or date-time (UTC when no offset)."""
    m = _DURATION.match(value.strip())
    if m:
        n = int(m["n"])
        if n <= 0:
            raise InputError("the duration must be positive", location="--since")
        return until - timedelta(**{_UNITS[m["unit"]]: n})
    return parse_time_arg(value, "--since")


def parse_time_arg(value: str, flag: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{value!r} is neither a duration (24h, 90m, 7d) nor an ISO 8601 time", location=flag
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    baseline_start: datetime
    start: datetime
    """Detection window start; the baseline window ends here."""
    end: datetime

    @staticmethod
    def of(since: datetime, until: datetime, baseline_days: int) -> Window:
        if since >= until:
            raise InputError(
                f"the detection window is empty ({since.isoformat()} is not before {until.isoformat()})",
                location="--since",
            )
        return Window(baseline_start=since - timedelta(days=baseline_days), start=since, end=until)


@dataclass(slots=True)
class RunReport:
    window: Window
    result: DetectionResult
    deliveries: list[DeliveryReport] = field(default_factory=list)
    baseline_events: int = 0
    baseline_store_rows: int = 0
    files_read: int = 0
    bad_files: list[BadFile] = field(default_factory=list)
    unattributed: int = 0
    open_denied: list[CallEvent] = field(default_factory=list)
    """Refusals at the end of the window that a later batch could extend into a burst (for ``Follower``)."""

    @property
    def undelivered(self) -> int:
        """Alerts still pending after this run plus those it moved to the dead letters (refused for good)."""
        return sum(d.pending + len(d.undeliverable) for d in self.deliveries)


def _split(events: Iterable[CallEvent], w: Window) -> tuple[list[CallEvent], list[CallEvent]]:
    base, window = [], []
    for e in events:
        if w.baseline_start <= e.time < w.start:
            base.append(e)
        elif w.start <= e.time <= w.end:
            window.append(e)
    return base, window


def run_once(
    *,
    window: Window,
    config: DetectConfig,
    sinks: list[Sink],
    cloudtrail: str | None = None,
    db: str | None = None,
    reader: EventReader | None = None,
    baselines: Baselines | None = None,
) -> tuple[RunReport, Baselines]:
    """Baseline from ``cloudtrail`` files and/or the usage store, detection over ``cloudtrail`` files' window.

    Returns the baselines with the window's events folded in, so a follow loop goes on from there.
    """
    if cloudtrail is None and db is None:
        raise InputError("give --cloudtrail DIR (events) and/or --db FILE (baseline)")
    reader = reader or EventReader()
    base = baselines or Baselines()
    window_events: list[CallEvent] = []
    files_read = 0
    if cloudtrail is not None:
        files = files_between(cloudtrail, window.baseline_start, window.end)
        files_read = len(files)
        b_events, window_events = _split(reader.read_files(files), window)
        base.add_events(b_events)
        baseline_events = len(b_events)
    else:
        baseline_events = 0
    store_rows = 0
    if db is not None:
        if not Path(db).exists():
            raise InputError("no such usage store", source=db)
        with UsageStore(db, read_only=True) as store:
            store_rows = base.add_store(store, window.baseline_start, window.start)
    detector = Detector(config)
    result = detector.detect(window_events, base)
    report = RunReport(
        window=window,
        result=result,
        baseline_events=baseline_events,
        baseline_store_rows=store_rows,
        files_read=files_read,
        bad_files=list(reader.bad_files),
        unattributed=reader.unattributed,
        open_denied=detector.open_bursts(window_events),
    )
    report.deliveries = spool_and_deliver(config.spool_dir, sinks, result.alerts)
    base.add_events(window_events)
    return report, base


@dataclass(slots=True)
class FollowState:
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    """path → (size, mtime_ns) of files already processed."""


class Follower:
    """Polls a log directory for new CloudTrail files and checks their events against the baselines.

    Files present when following starts are treated as already seen (the one-shot run covers them).
    A file that cannot be read yet (still being written) is retried on the next poll.
    """

    def __init__(
        self,
        directory: str,
        *,
        config: DetectConfig,
        sinks: list[Sink],
        baselines: Baselines,
        reader: EventReader | None = None,
        skip_existing: bool = True,
        open_denied: Iterable[CallEvent] = (),
    ) -> None:
        if not Path(directory).is_dir():
            raise InputError("no such directory", source=directory, location="--follow")
        self.directory = directory
        self.config = config
        self.sinks = sinks
        self.baselines = baselines
        self.reader = reader or EventReader()
        self.detector = Detector(config)
        self.state = FollowState()
        self.open_denied = list(open_denied)
        if skip_existing:
            for f in local_files(directory):
                self.state.seen[f.path] = self._sig(f)

    @staticmethod
    def _sig(f: LogFile) -> tuple[int, int]:
        p = f.local or f.path
        return (f.size, os.stat(p).st_mtime_ns)

    def new_files(self) -> list[LogFile]:
        return [f for f in local_files(self.directory) if self.state.seen.get(f.path) != self._sig(f)]

    def poll(self) -> RunReport | None:
        """Process new files once; None when there was nothing new (pending alerts are still retried)."""
        files = self.new_files()
        events: list[CallEvent] = []
        bad: list[BadFile] = []
        for f in files:
            before = len(self.reader.bad_files)
            got = list(self.reader.read_files([f]))
            if len(self.reader.bad_files) > before:
                bad.extend(self.reader.bad_files[before:])
                continue  # not marked seen: retried next poll
            self.state.seen[f.path] = self._sig(f)
            events.extend(got)
        now = datetime.now(UTC)
        if events:
            start = min(e.time for e in events)
            end = max(e.time for e in events)
        else:
            start = end = now
        window = Window(
            baseline_start=start - timedelta(days=self.config.baseline_days), start=start, end=end
        )
        result = self.detector.detect(events, self.baselines, earlier_denied=self.open_denied)
        self.open_denied = self.detector.open_bursts([*self.open_denied, *events])
        report = RunReport(
            window=window,
            result=result,
            files_read=len(files) - len(bad),
            bad_files=bad,
            open_denied=self.open_denied,
        )
        report.deliveries = spool_and_deliver(self.config.spool_dir, self.sinks, result.alerts)
        self.baselines.add_events(events)
        busy = any(d.delivered or d.pending or d.undeliverable for d in report.deliveries)
        return report if files or busy else None

    def loop(
        self,
        *,
        interval: float,
        max_polls: int | None = None,
        on_report: Callable[[RunReport], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """Poll every ``interval`` seconds, ``max_polls`` times (forever when None); returns the polls."""
        n = 0
        while max_polls is None or n < max_polls:
            if n:
                sleep(interval)
            rep = self.poll()
            n += 1
            if rep is not None and on_report is not None:
                on_report(rep)
        return n
