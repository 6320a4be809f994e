"""CLI: ``iamgraph detect`` (deviation alerts from CloudTrail against per-principal baselines)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from iamgraph.cli.app import app, console, err_console, handle_errors
from iamgraph.cli.inputs import alias
from iamgraph.cli.lists import ALL, LIMIT, bound, headline, more, none_found, plural, table
from iamgraph.detect.config import DetectConfig, SinkConfig, SinkKind, load_detect_config
from iamgraph.detect.run import Follower, RunReport, Window, parse_since, parse_time_arg, run_once
from iamgraph.detect.sinks import Sink, StdoutSink, make_sink
from iamgraph.errors import InputError
from iamgraph.report.names import resource_text

EXIT_UNDELIVERED = 3


def _write_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def make_sinks(config: DetectConfig, names: list[str], write: Any = _write_line) -> list[Sink]:
    """The sinks ``--sink`` names (default: the config's, else stdout); stdout ones hand their lines to ``write``."""
    by_name = {s.name: s for s in config.sinks}
    chosen: list[SinkConfig] = []
    if not names:
        chosen = list(config.sinks) or [SinkConfig(name="stdout", kind=SinkKind.STDOUT)]
    for n in names:
        if n == "all":
            chosen.extend(s for s in config.sinks if s not in chosen)
        elif n in by_name:
            chosen.append(by_name[n])
        elif n == "stdout":
            chosen.append(SinkConfig(name="stdout", kind=SinkKind.STDOUT))
        else:
            known = ", ".join(["stdout", "all", *by_name]) or "stdout"
            raise InputError(f"no sink named {n!r} (known: {known})", location="--sink")
    return [make_sink(c, write=write) for c in chosen]


def _alert_table(lines: list[str], limit: int, show_all: bool, known: int = 0) -> None:
    """The stdout sink's alerts as a table (with --json they are JSON lines, one per alert, as they come).
    ``known``: alerts of this window the spool says were delivered by an earlier run (printed only once)."""
    order = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL")
    alerts = sorted((json.loads(x) for x in lines), key=lambda a: (
        order.index(a["severity"]) if a["severity"] in order else len(order), a.get("time") or ""))
    if not alerts:
        if known:
            # "none found" would hide real alerts: they were found, and printed by an earlier run.
            none_found(f"no new alert: {plural(known, 'alert')} of this window already printed by an earlier run "
                       "(the spool remembers delivered alerts; another --spool-dir starts afresh)")
        else:
            none_found("none found: no call outside the baselines")
        return
    headline(f"{plural(len(alerts), 'alert')} ("
             + ", ".join(f"{n} {s}" for s, n in sorted(Counter(a["severity"] for a in alerts).items())) + ")")
    shown, hidden = bound(alerts, limit, show_all)
    t = table("severity", "rule", "principal", "action", "region", "time")
    for a in shown:
        t.add_row(a["severity"], a["rule"], resource_text(a["principal"] or ""), a.get("action") or "",
                  a.get("region") or "", a.get("time") or "")
    console.print(t)
    more(hidden, "alerts")
    lines.clear()


def _summary(rep: RunReport) -> dict[str, Any]:
    r = rep.result
    return {
        "window": {
            "baseline_start": rep.window.baseline_start.isoformat(),
            "start": rep.window.start.isoformat(),
            "end": rep.window.end.isoformat(),
        },
        "files_read": rep.files_read,
        "baseline_events": rep.baseline_events,
        "baseline_store_rows": rep.baseline_store_rows,
        "window_events": r.events,
        "alerts": len(r.alerts),
        "by_severity": {
            s: sum(1 for a in r.alerts if a.severity.value == s)
            for s in sorted({a.severity.value for a in r.alerts})
        },
        "principals_without_baseline": r.no_baseline,
        "principals_with_unknown_regions": sorted(r.unknown_regions),
        "bad_files": [dataclasses.asdict(b) for b in rep.bad_files],
        "unattributed_records": rep.unattributed,
        "deliveries": [dataclasses.asdict(d) for d in rep.deliveries],
    }


def _report(rep: RunReport, as_json: bool) -> None:
    # Alerts go to the sinks (stdout ones print JSON lines on stdout); this summary goes to stderr so stdout
    # stays a clean stream of alerts.
    s = _summary(rep)
    if as_json:
        err_console.print_json(json.dumps(s))
        return
    err_console.print(
        f"detect: {s['window_events']} calls in {s['window']['start']} .. {s['window']['end']} against "
        f"{s['baseline_events']} baseline calls ({s['files_read']} files): {s['alerts']} alert(s)",
        highlight=False,
        soft_wrap=True,
    )
    if rep.result.no_baseline:
        err_console.print(
            f"  {len(rep.result.no_baseline)} principal(s) had no baseline: only sensitive-action and "
            "access-denied-burst rules applied to them",
            highlight=False,
        )
    if rep.result.unknown_regions:
        err_console.print(
            f"  {len(rep.result.unknown_regions)} principal(s) known only from the usage store: "
            "regions unknown, "
            "new-region not checked",
            highlight=False,
        )
    for b in rep.bad_files:
        err_console.print(f"  unreadable file: {b.path}: {b.reason}", highlight=False, soft_wrap=True)
    for d in rep.deliveries:
        line = (
            f"  sink {d.sink}: {d.queued} new, {d.duplicates} already known, {d.delivered} delivered, "
            f"{d.pending} pending, {len(d.undeliverable)} undeliverable"
            + (f", {d.unconfirmed} sent without an answer (will be sent again)" if d.unconfirmed else "")
            + (f", {d.repeated} delivered after unanswered attempts (may repeat)" if d.repeated else "")
            + (f"; {d.dead_letters} in the dead letters" if d.dead_letters else "")
        )
        err_console.print(line, highlight=False)
        for e in d.errors:
            err_console.print(f"    {e}", highlight=False, soft_wrap=True)
        for u in d.undeliverable:
            err_console.print(f"    undeliverable, moved to the dead letters: {u}", highlight=False, soft_wrap=True)
        for c in d.corrupt:
            err_console.print(f"    unreadable spool file moved aside: {c}", highlight=False, soft_wrap=True)


@app.command("detect")
@handle_errors
def detect(
    db: str | None = typer.Option(
        None, "--db", help="Usage store (DuckDB) to take baselines from (actions and accounts; no regions)."
    ),
    cloudtrail: str | None = typer.Option(
        None, "--cloudtrail", help="CloudTrail log directory: baseline and detection-window events."
    ),
    since: str = typer.Option(
        "24h",
        "--since",
        help="Detection window start: a duration before --as-of (24h, 90m, 7d) or an ISO time.",
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Detection window end (ISO time, UTC unless an offset is given). Default: now."
    ),
    until: str | None = typer.Option(None, "--until", hidden=True, help="Old spelling of --as-of."),
    baseline_days: int | None = typer.Option(
        None,
        "--baseline-days",
        min=1,
        help="Baseline window length in days, ending at the window start "
        "(default: detect.baseline_days from the config, else 90).",
    ),
    follow: str | None = typer.Option(
        None, "--follow", help="After the first run, poll this log directory for new files and check them."
    ),
    interval: float = typer.Option(60.0, "--interval", min=0.0, help="Seconds between polls with --follow."),
    max_polls: int | None = typer.Option(
        None,
        "--max-polls",
        min=1,
        help="Stop --follow after this many polls (default: run until interrupted).",
    ),
    config: str | None = typer.Option(
        None,
        "--config",
        help="Project config file (iamgraph.yaml); its detect: section sets rules and sinks.",
    ),
    sink: list[str] = typer.Option(
        [],
        "--sink",
        help="Deliver to this sink: stdout, a sink name from the config, or all (repeatable). "
        "Default: the config's sinks, else stdout.",
    ),
    spool_dir: str | None = typer.Option(
        None, "--spool-dir", help="Spool directory (default: detect.spool_dir, else .iamgraph/spool)."
    ),
    limit: int = LIMIT,
    show_all: bool = ALL,
    as_json: bool = typer.Option(False, "--json", help="Alerts of the stdout sink as JSON lines (one per alert) "
                                 "instead of a table, and the run summary as JSON (on stderr)."),
) -> None:
    """Alert on calls outside each principal's baseline: new mutating actions, new regions or accounts,
    calls that weaken logging or key protection, and bursts of AccessDenied.

    Alerts are spooled per sink before delivery; undelivered ones are retried on the next run, alerts a
    receiver refuses for good go to the sink's dead letters. Exit code 3 when some alert is still pending
    or was refused in this run.
    """
    cfg = (
        load_detect_config(config)
        if config
        else (load_detect_config("iamgraph.yaml") if Path("iamgraph.yaml").is_file() else DetectConfig())
    )
    if baseline_days is not None:
        cfg = dataclasses.replace(cfg, baseline_days=baseline_days)
    if spool_dir is not None:
        cfg = dataclasses.replace(cfg, spool_dir=spool_dir)
    if cloudtrail is None and follow is None:
        # The usage store keeps aggregates (no event ids, IPs or readOnly): it can only be the baseline.
        raise InputError(
            "give --cloudtrail DIR and/or --follow DIR (the calls to check); --db adds a baseline"
        )
    until = alias(as_of, until, "--as-of", "--until")
    end = parse_time_arg(until, "--as-of") if until else datetime.now(UTC)
    window = Window.of(parse_since(since, end), end, cfg.baseline_days)
    collected: list[str] = []
    sinks = make_sinks(cfg, sink, _write_line if as_json else collected.append)
    undelivered = 0
    try:
        source = cloudtrail if cloudtrail is not None else follow
        rep, baselines = detect_once(window=window, config=cfg, sinks=sinks, collected=collected, cloudtrail=source,
                                     db=db, limit=limit, show_all=show_all, as_json=as_json)
        undelivered = rep.undelivered
        if follow is not None:
            follower = Follower(
                follow, config=cfg, sinks=sinks, baselines=baselines, open_denied=rep.open_denied
            )

            def on_report(r: RunReport) -> None:
                nonlocal undelivered
                undelivered = r.undelivered
                _report(r, as_json)
                if collected:
                    _alert_table(collected, limit, show_all)

            follower.loop(interval=interval, max_polls=max_polls, on_report=on_report)
    finally:
        for s in sinks:
            s.close()
    if undelivered:
        raise typer.Exit(EXIT_UNDELIVERED)


def detect_once(*, window: Window, config: DetectConfig, sinks: list[Sink], collected: list[str],
                cloudtrail: str | None, db: str | None, limit: int, show_all: bool, as_json: bool) -> tuple[RunReport, Any]:
    """One run of ``detect`` over ``window`` and what it prints: the run summary (stderr), then the alerts the
    stdout sinks collected in ``collected`` as a table. ``iamgraph demo`` shows its detect step with it."""
    rep, baselines = run_once(window=window, config=config, sinks=sinks, cloudtrail=cloudtrail, db=db)
    _report(rep, as_json)
    stdout = {s.name for s in sinks if isinstance(s, StdoutSink)}
    if not as_json and stdout:
        known = sum(d.duplicates for d in rep.deliveries if d.sink in stdout)
        _alert_table(collected, limit, show_all, known)
    return rep, baselines
