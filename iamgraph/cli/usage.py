"""CLI: ``iamgraph usage ingest`` (CloudTrail, Athena, LookupEvents, Access Advisor) and ``iamgraph unused``."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from iamgraph.cli.app import app, console, err_console, handle_errors, print_json
from iamgraph.cli.inputs import load_snapshot, open_store, resolve_principal
from iamgraph.cli.lists import ALL, LIMIT, bound, headline, more, none_found, plural, table
from iamgraph.cli.progress import phase
from iamgraph.errors import InputError

usage_app = typer.Typer(help="Usage evidence: ingest CloudTrail and Access Advisor into a DuckDB file.", no_args_is_help=True)
app.add_typer(usage_app, name="usage")


class Engine(StrEnum):
    LOCAL = "local"
    ATHENA = "athena"
    LOOKUP = "lookup"


def _day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{value!r} is not a date (YYYY-MM-DD)", source=flag) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@usage_app.command("ingest")
@handle_errors
def ingest(
    db: str = typer.Option(..., "--db", help="The DuckDB usage file (created when missing)."),
    cloudtrail: str | None = typer.Option(
        None, "--cloudtrail", help="A directory of CloudTrail .json.gz files (S3 layout), or s3://bucket/prefix."
    ),
    snapshot: str | None = typer.Option(
        None, "--snapshot", "-s", help="Also load the snapshot's Access Advisor data (replaces the earlier load)."
    ),
    since: str | None = typer.Option(None, "--since", help="First day (YYYY-MM-DD, inclusive) by log path date."),
    until: str | None = typer.Option(None, "--until", help="Last day (YYYY-MM-DD, inclusive) by log path date."),
    engine: Engine = typer.Option(
        Engine.LOCAL, "--engine", help="local: read files; athena: run the aggregation on Athena; lookup: LookupEvents."
    ),
    database: str | None = typer.Option(None, "--database", help="Athena database holding the CloudTrail table."),
    table: str | None = typer.Option(None, "--table", help="Athena CloudTrail table."),
    workgroup: str | None = typer.Option(None, "--workgroup", help="Athena workgroup."),
    output: str | None = typer.Option(None, "--output", help="Athena query result location (s3://...)."),
    partition_style: str = typer.Option(
        "projection", "--partition-style", help="Athena table partitions: projection (timestamp) or ymd."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=0, max=64, help="Processes decoding CloudTrail files (--engine local): 0 or 1 reads "
        "them all in this process; default: one per CPU this process may use, at most 8. The pool starts past the "
        "first 16 MB; the store is the same either way."),
    as_json: bool = typer.Option(False, "--json", help="Print the ingest statistics as JSON."),
) -> None:
    """Ingest usage evidence; files already ingested are skipped, so re-running never double-counts."""
    d_since, d_until = _day(since, "--since"), _day(until, "--until")
    if cloudtrail is None and snapshot is None and engine is Engine.LOCAL:
        raise InputError("give --cloudtrail DIR|s3://..., --snapshot, or --engine athena|lookup")
    # Every input is checked before the store is opened, so a mistake never leaves a new, empty store behind.
    snap = load_snapshot(snapshot) if snapshot is not None else None
    if cloudtrail is not None and engine is Engine.LOCAL:
        _check_cloudtrail(cloudtrail)
    if engine is Engine.ATHENA:
        from iamgraph.usage.athena import PartitionStyle

        if not database or not table:
            raise InputError("--engine athena needs --database and --table")
        if partition_style not in {s.value for s in PartitionStyle}:
            raise InputError("must be projection or ymd", source="--partition-style")
    if engine is not Engine.LOCAL or (cloudtrail or "").startswith("s3://"):
        _check_aws_credentials(f"--engine {engine.value}" if engine is not Engine.LOCAL else f"--cloudtrail {cloudtrail}")
    existed = Path(db).exists()
    try:
        with phase("ingesting usage evidence"):
            result = run_ingest(db, cloudtrail, snap, engine=engine, since=d_since, until=d_until, database=database,
                                table=table, workgroup=workgroup, output=output, partition_style=partition_style,
                                workers=workers)
        ct = result.get("cloudtrail")
        if engine is Engine.LOCAL and ct and ct["files_seen"] and ct["files_bad"] == ct["files_seen"]:
            # Nothing was evidence: say so as an error (a new store is removed) rather than report a quiet window.
            first = ": ".join(ct["bad_files"][0]) if ct["bad_files"] else "unreadable"
            raise InputError(f"none of its {plural(ct['files_seen'], '.json.gz file')} is a readable CloudTrail log "
                             f"file ({first})", source=f"--cloudtrail {cloudtrail}")
    except BaseException:
        if not existed:
            for leftover in (Path(db), Path(f"{db}.wal")):
                leftover.unlink(missing_ok=True)
        raise
    show_ingest(result, as_json)


def _check_cloudtrail(location: str) -> None:
    if location.startswith("s3://"):
        if not location[5:].split("/", 1)[0]:
            raise InputError(f"{location!r} names no bucket (s3://bucket/prefix)", source="--cloudtrail")
        return
    from iamgraph.usage.ingest import local_files

    p = Path(location)
    if not p.exists():
        raise InputError("no such directory", source=f"--cloudtrail {location}")
    if not local_files(location):
        raise InputError("holds no CloudTrail log files (*.json.gz, as CloudTrail writes them to S3)",
                         source=f"--cloudtrail {location}")


def _check_aws_credentials(what: str) -> None:
    import boto3

    if boto3.session.Session().get_credentials() is None:
        raise InputError("no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                         "AWS_SECRET_ACCESS_KEY, or run where an instance role applies)", source=what)


def run_ingest(db: str, cloudtrail: str | None, snap: Any, *, engine: Engine = Engine.LOCAL, since: date | None = None,
               until: date | None = None, database: str | None = None, table: str | None = None,
               workgroup: str | None = None, output: str | None = None,
               partition_style: str = "projection", workers: int | None = None) -> dict[str, Any]:
    """What ``usage ingest`` does once its inputs are checked (``iamgraph demo`` runs its usage step with it)."""
    d_since, d_until = since, until
    result: dict[str, Any] = {}
    with open_store(db, read_only=False) as store:
        if engine is Engine.ATHENA:
            import boto3

            from iamgraph.usage.athena import AthenaRunner, PartitionStyle, athena_sql
            from iamgraph.usage.ingest import Ingestor

            if not database or not table:
                raise InputError("--engine athena needs --database and --table")
            try:
                style = PartitionStyle(partition_style)
            except ValueError:
                raise InputError("must be projection or ymd", source="--partition-style") from None
            sql = athena_sql(database=database, table=table, since=d_since, until=d_until, style=style)
            rows = AthenaRunner(boto3.client("athena"), workgroup=workgroup, output=output).run(sql, database=database)
            result["cloudtrail"] = asdict(Ingestor(store).ingest_aggregate(rows))
        elif engine is Engine.LOOKUP:
            import boto3

            from iamgraph.usage.lookup import ingest_lookup_events

            end = datetime.combine(d_until, datetime.max.time(), UTC) if d_until else datetime.now(UTC)
            start = datetime.combine(d_since, datetime.min.time(), UTC) if d_since else end - timedelta(days=90)
            result["cloudtrail"] = asdict(ingest_lookup_events(store, boto3.client("cloudtrail"), start=start, end=end))
        elif cloudtrail is not None:
            from iamgraph.usage.ingest import ingest_location

            result["cloudtrail"] = asdict(ingest_location(store, cloudtrail, since=d_since, until=d_until,
                                                          workers=workers))
        if snap is not None:
            from iamgraph.usage.access_advisor import ingest_access_advisor

            result["access_advisor_records"] = ingest_access_advisor(store, snap)
        result["problems"] = [asdict(p) for p in store.problems()]
    return result


def show_ingest(result: dict[str, Any], as_json: bool) -> None:
    """What ``usage ingest`` prints (``iamgraph demo`` shows its usage step with it)."""
    if as_json:
        console.print_json(json.dumps(_jsonable(result)))
        return
    ct = result.get("cloudtrail")
    if ct:
        console.print(
            f"files: {ct['files_seen']} seen, {ct['files_ingested']} ingested, {ct['files_skipped_done']} already done, "
            f"{ct['files_outside_window']} outside the window, {ct['files_bad']} bad", highlight=False, soft_wrap=True
        )
        console.print(
            f"events: {ct['events']} read, {ct['events_unmapped']} unmapped, {ct['events_unattributed']} unattributed, "
            f"{ct['events_duplicate']} already counted (same eventID); {ct['records_written']} usage records written",
            highlight=False, soft_wrap=True,
        )
        for path, reason in ct["bad_files"]:
            err_console.print(f"bad file: {path}: {reason}", markup=False, highlight=False, soft_wrap=True)
        for reason, n in ct["bad_records"]:
            err_console.print(f"bad records skipped: {n} ({reason})", markup=False, highlight=False, soft_wrap=True)
    if "access_advisor_records" in result:
        console.print(f"access advisor: {result['access_advisor_records']} records")
    unmapped = [p for p in result["problems"] if p["kind"] == "unmapped"]
    if unmapped:
        console.print(f"unmapped event kinds (all ingests): {len(unmapped)}; most frequent:")
        for p in unmapped[:10]:
            console.print(f"  {p['detail']}: {p['count']}", markup=False, highlight=False)


def window_end(as_of: str | None) -> datetime | None:
    """``unused --as-of YYYY-MM-DD``: the end of the window, UTC midnight of that day (None: now)."""
    end = _day(as_of, "--as-of")
    return datetime.combine(end, datetime.min.time(), UTC) if end else None


@app.command("unused")
@handle_errors
def unused(
    snapshot: str = typer.Option(..., "--snapshot", "-s", help="The snapshot file."),
    db: str = typer.Option(..., "--db", help="The DuckDB usage file."),
    days: int = typer.Option(90, "--days", min=1, help="The window: the last N days."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="End of the window (YYYY-MM-DD, UTC midnight); default: now."
    ),
    account: list[str] = typer.Option([], "--account", help="Only these accounts (repeatable)."),
    principal: list[str] = typer.Option([], "--principal", "-p", help="Only these principals: ARN, role/name, "
                                        "user/name or a unique name (repeatable)."),
    min_severity: str = typer.Option("low", "--min-severity", help="high, medium, low or info (unobservable)."),
    sort: str = typer.Option("severity", "--sort", help="severity, account, principal, last-seen or kind."),
    data_events: str | None = typer.Option(
        None, "--data-events", help="Services whose data events the trail logs (s3,lambda,...); default: detected."
    ),
    config: str | None = typer.Option(
        None, "--config", help="Project config file whose evidence.logged section says what each account and "
        "region's trails log; default: ./iamgraph.yaml when present."
    ),
    detail: bool = typer.Option(
        False, "--detail", help="List every unused service and action of admin-equivalent (* on *) principals "
        "instead of one admin-grant summary each."
    ),
    limit: int = LIMIT,
    show_all: bool = ALL,
    as_json: bool = typer.Option(False, "--json", help="JSON output (every finding)."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV output (every finding)."),
) -> None:
    """Unused services, actions, roles, credentials and policies, with evidence and confidence."""
    from iamgraph.snapshot.index import SnapshotIndex
    from iamgraph.usage.unused import SORT_KEYS, Severity, sort_findings, unused_report

    if sort not in SORT_KEYS:
        raise InputError(f"--sort must be one of {', '.join(SORT_KEYS)}", source="--sort")
    try:
        sev = Severity(min_severity)
    except ValueError:
        raise InputError("--min-severity must be high, medium, low or info", source="--min-severity") from None
    now = window_end(as_of)
    snap = load_snapshot(snapshot)
    if principal:
        index = SnapshotIndex(snap)
        principal = [resolve_principal(index, p) for p in principal]
    de = None if data_events is None else [s.strip() for s in data_events.split(",") if s.strip()]
    cfg_path = config if config is not None else ("iamgraph.yaml" if Path("iamgraph.yaml").is_file() else None)
    logged = None
    if cfg_path is not None:
        from iamgraph.config import read_config
        from iamgraph.usage.logged import LoggedConfigError, parse_logged_config

        logged = parse_logged_config(read_config(cfg_path, error=LoggedConfigError).data, source=cfg_path)
    with open_store(db) as store, phase("judging usage against grants"):
        report = unused_report(
            snap, store, days=days, now=now, accounts=account or None, principals=principal or None, min_severity=sev,
            data_events=de, summarize_admins=not detail, logged=logged,
        )
    findings = sort_findings(report.findings, sort)
    # Only the JSON and CSV outputs print every field of every finding; the table needs none of this.
    rows = [_jsonable(asdict(f)) for f in findings] if as_json or as_csv else []
    if as_json:
        out = _jsonable(
            {
                "window_start": report.window_start,
                "window_end": report.window_end,
                "principals_checked": report.principals_checked,
                "notes": list(report.notes),
                "data_event_services": list(report.data_event_services),
                "logged": [asdict(p) for p in report.logged],
                "findings": rows,
            }
        )
        print_json(out)
        return
    if as_csv:
        buf = io.StringIO()
        fields = ["kind", "severity", "confidence", "account_id", "principal_arn", "subject", "last_seen", "count",
                  "source", "reason", "actions", "services"]
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: " ".join(r[k]) if k in ("actions", "services") else r[k] for k in fields})
        typer.echo(buf.getvalue(), nl=False)
        return
    show_unused(report, findings, limit, show_all)


def show_unused(report: Any, findings: list[Any], limit: int, show_all: bool) -> None:
    """What ``unused`` prints: the count line by severity, the first ``limit`` findings, the notes
    (``iamgraph demo`` shows its unused step with it)."""
    window = f"{report.window_start:%Y-%m-%d} to {report.window_end:%Y-%m-%d}"
    if not findings:
        none_found(f"Unused permissions, {window}: none found over "
                   f"{plural(report.principals_checked, 'principal')} checked")
    else:
        by_sev: dict[str, int] = {}
        for f in findings:
            by_sev[f.severity.value] = by_sev.get(f.severity.value, 0) + 1
        headline(f"Unused permissions, {window}: {plural(len(findings), 'finding')} over "
                 f"{plural(report.principals_checked, 'principal')} checked ("
                 + ", ".join(f"{n} {s}" for s, n in by_sev.items()) + ")")
    shown, hidden = bound(findings, limit, show_all)
    t = table("severity", "kind", "account", "principal", "subject", "last seen", "confidence", "source", "why")
    for f in shown:
        parts = f.principal_arn.split(":", 5)
        who = parts[5] if len(parts) == 6 else f.principal_arn
        t.add_row(
            f.severity.value, f.kind.value, f.account_id or "", who,
            f.subject + (f" ({len(f.services)} services)" if f.services else "")
            + (f" ({len(f.actions)} actions)" if f.actions else ""),
            f"{f.last_seen:%Y-%m-%d}" if f.last_seen else "never", f.confidence.value, f.source or "-", f.reason,
        )
    if shown:
        console.print(t)
        more(hidden, "findings")
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
