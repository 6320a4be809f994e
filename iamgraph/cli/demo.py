"""``iamgraph demo``: the main job on the built-in demo organization (no AWS account needed).

It runs what a security engineer runs on a real estate, in order, and checks the answers against what the
generator planted (``planted.json``), so a regression in any layer shows up as a miss here:

1. generate the demo organization (snapshot, CloudTrail logs, Access Advisor data);
2. read the snapshot back and print its inventory;
3. build the access graph and ask: privilege escalation, exposure, separation of duties, sensitive data;
4. ingest the CloudTrail logs into the usage store and report unused permissions;
5. propose a verified trimmed policy for a planted over-privileged principal;
6. write the HTML report.

Each step prints the stand-alone command that does the same, so the demo doubles as a tutorial.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from iamgraph.cli.app import app, console, handle_errors

if TYPE_CHECKING:
    # The analyses load on first use, not whenever the CLI starts.
    from iamgraph.demo.planted import PlantedItem
    from iamgraph.demo.score import Analyses


def _step(title: str, command: str) -> None:
    console.rule(f"[bold]{title}")
    console.print(f"[dim]$ {command}[/]", highlight=False, soft_wrap=True)


def _short(arn: str) -> str:
    return arn.split(":", 5)[-1] if arn.startswith("arn:") else arn


def _timed(label: str, started: float) -> None:
    console.print(f"[dim]{label}: {time.perf_counter() - started:.1f} s[/]")


@app.command()
@handle_errors
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Working directory for the demo's files."),
    accounts: int = typer.Option(6, "--accounts", help="Accounts in the demo organization."),
    roles_per_account: int = typer.Option(15, "--roles-per-account", help="Roles per member account."),
    days: int = typer.Option(90, "--days", help="Days of CloudTrail activity to generate."),
    seed: int = typer.Option(7, "--seed", help="Seed of the generator (same seed, same organization)."),
    as_json: bool = typer.Option(False, "--json", help="Print the scoreboard as JSON at the end."),
) -> None:
    """Generate the demo organization and run every analysis on it, checking the planted findings."""
    from iamgraph.demo import DemoConfig, PlantedItem, generate_demo
    from iamgraph.demo.score import Analyses, score
    from iamgraph.snapshot import read_snapshot

    console.width = max(console.width, 120)
    t0 = time.perf_counter()

    _step("1. Demo organization", f"iamgraph demo-org generate --out {out} --accounts {accounts} --seed {seed}")
    result = generate_demo(
        out, DemoConfig(accounts=accounts, roles_per_account=roles_per_account, days=days, seed=seed)
    )
    c = result.counts
    console.print(
        f"{c.accounts} accounts, {c.users} users, {c.roles} roles, {c.groups} groups, "
        f"{c.customer_policies} customer + {c.aws_managed_policies} AWS managed policies, {c.resources} resources, "
        f"{c.compute} compute, {c.permission_sets} permission sets; {c.cloudtrail_events} CloudTrail events in "
        f"{c.cloudtrail_files} files; {c.planted} planted findings ({result.planted})"
    )
    planted: dict[str, Any] = json.loads(result.planted.read_text())
    items = tuple(PlantedItem.from_json(i) for i in planted["items"])

    _step("2. Snapshot", f"iamgraph snapshot info {result.snapshot}")
    snap = read_snapshot(result.snapshot)
    inv = Table("account", "name", "users", "groups", "roles", "policies", "resources", "compute", box=None)
    for acct in snap.accounts:
        inv.add_row(
            acct.account_id, acct.name or "", str(len(acct.users)), str(len(acct.groups)), str(len(acct.roles)),
            str(len(acct.policies)), str(len(acct.resources)), str(len(acct.compute)),
        )
    console.print(inv)
    console.print(f"schema {snap.schema_version}, collected_at {snap.collected_at}, {snap.content_hash}")

    analyses = _graph_steps(result.snapshot, snap)
    unused = _usage_steps(out, result, snap, planted["window"], items)
    recommendations = _recommend_step(out, result, snap, planted["window"], items)
    alerts = _detect_step(out, result, planted["window"])
    report_path, credentials = _report_step(out, result.snapshot, snap, items)
    checks = score(items, snap, Analyses(
        escalations=analyses.escalations, exposures=analyses.exposures, conflicts=analyses.conflicts,
        pii_access=analyses.pii_access, unused=unused, recommendations=recommendations, alerts=alerts,
        credentials=credentials,
    ))

    console.rule("[bold]Planted findings")
    table = Table("kind", "planted item", "result", "note", box=None)
    for check in sorted(checks, key=lambda k: (k.kind.value, k.item_id, k.ok, k.note)):
        if check.kind.near_miss:
            verdict = "[green]not reported[/]" if check.ok else "[red]FALSE POSITIVE[/]"
        else:
            verdict = "[green]found[/]" if check.ok else "[red]MISSED[/]"
        table.add_row(check.kind.value, check.item_id, verdict, check.note)
    console.print(table)
    found = sum(1 for k in checks if k.ok)
    console.print(f"[bold]{found}/{len(checks)}[/] planted checks passed in {time.perf_counter() - t0:.0f} s")
    console.print(f"[bold]HTML report:[/] {report_path}", highlight=False, soft_wrap=True)
    _next_steps(result.snapshot, items)
    if as_json:
        console.print_json(
            json.dumps([{"kind": k.kind.value, "id": k.item_id, "ok": k.ok, "note": k.note} for k in checks]),
            highlight=False,
        )
    if not all(k.ok for k in checks):
        raise typer.Exit(1)


def _graph_steps(snapshot_path: Path, snap: Any) -> Analyses:
    """Privilege escalation, exposure, separation of duties and PII access on the access graph, each shown
    exactly as the command it echoes prints it."""
    from iamgraph.cli.graph import show_exposure, show_privesc, show_sensitive, show_sod, use_names_of
    from iamgraph.cli.lists import DEFAULT_LIMIT
    from iamgraph.demo.score import Analyses
    from iamgraph.graph import build_graph
    from iamgraph.query import exposure, load_rules, privesc, sensitive, sod
    from iamgraph.query.incomplete import unknown_policies
    from iamgraph.query.sensitive import sensitive_incomplete
    from iamgraph.query.sod import sod_incomplete

    use_names_of(snap)

    started = time.perf_counter()
    graph = build_graph(snap)
    _timed("access graph built", started)  # before the step: what follows an echoed command is its output
    _step("3. Access graph", f"iamgraph privesc --snapshot {snapshot_path}")

    escalations = privesc(graph)
    # Shown exactly as the echoed command prints it (already-admin principals counted, not listed).
    not_admin = [e for e in escalations if e.kind.value != "already-admin"]
    show_privesc(not_admin, len(escalations) - len(not_admin), DEFAULT_LIMIT, False)

    _step("4. Exposure", f"iamgraph exposure --snapshot {snapshot_path}")
    exposures = exposure(graph)
    show_exposure(exposures, DEFAULT_LIMIT, False, tuple(unknown_policies(graph).values()))

    _step("5. Separation of duties", f"iamgraph sod --snapshot {snapshot_path}")
    conflicts = sod(graph)
    not_admin_conflicts = [c for c in conflicts if not c.admin]
    show_sod(not_admin_conflicts, len(conflicts) - len(not_admin_conflicts), DEFAULT_LIMIT, False,
             sod_incomplete(graph, load_rules()))

    _step("6. Sensitive data", f"iamgraph sensitive --snapshot {snapshot_path} --tag DataClassification=PII")
    pii = sensitive(graph, "DataClassification=PII")
    show_sensitive(pii, "DataClassification=PII", DEFAULT_LIMIT, False,
                   sensitive_incomplete(graph, "DataClassification=PII"))
    return Analyses(escalations=tuple(escalations), exposures=tuple(exposures), conflicts=tuple(conflicts),
                    pii_access=tuple(pii))


def _usage_steps(
    out: Path, result: Any, snap: Any, window: dict[str, Any], items: tuple[PlantedItem, ...]
) -> tuple[Any, ...]:
    """Ingest the CloudTrail logs and Access Advisor data; the unused findings of the planted principals."""
    from iamgraph.demo.score import unused_principals
    from iamgraph.usage.access_advisor import ingest_access_advisor
    from iamgraph.usage.ingest import ingest_location
    from iamgraph.usage.store import UsageStore
    from iamgraph.usage.unused import unused_report

    db = out / "usage.duckdb"
    _step("7. Usage evidence", f"iamgraph usage ingest --db {db} --cloudtrail {result.cloudtrail_root} "
          f"--snapshot {result.snapshot}")
    started = time.perf_counter()
    with UsageStore(db) as store:
        stats = ingest_location(store, str(result.cloudtrail_root))
        aa = ingest_access_advisor(store, snap)
    _timed(f"{stats.events} events ingested ({stats.files_ingested} new files, {stats.events_unmapped} unmapped), "
           f"{aa} Access Advisor records", started)

    end = datetime.fromisoformat(window["end"].replace("Z", "+00:00"))
    wanted = unused_principals(items)
    _step("8. Unused permissions", f"iamgraph unused --snapshot {result.snapshot} --db {db} --days {window['days']}")
    started = time.perf_counter()
    with UsageStore(db, read_only=True) as store:
        report = unused_report(snap, store, days=int(window["days"]), now=end, principals=wanted)
    table = Table("principal", "kind", "subject", "severity", "last seen", box=None)
    for f in report.findings[:20]:
        table.add_row(_short(f.principal_arn), f.kind.value, f.subject, f.severity.value,
                      f.last_seen.date().isoformat() if f.last_seen else "never")
    console.print(table)
    _timed(f"{len(report.findings)} findings for the {len(wanted)} principals planted with unused access", started)
    return tuple(report.findings)


def _recommend_step(
    out: Path, result: Any, snap: Any, window: dict[str, Any], items: tuple[PlantedItem, ...]
) -> tuple[Any, ...]:
    """Verified trimmed policies for the principals planted with unused or over-broad grants."""
    from iamgraph.demo.score import recommend_principals
    from iamgraph.recommend.recommender import ProposalStatus, recommend_all
    from iamgraph.recommend.render import unified_diff
    from iamgraph.snapshot import SnapshotIndex
    from iamgraph.usage.store import UsageStore

    end = datetime.fromisoformat(window["end"].replace("Z", "+00:00"))
    arns = recommend_principals(items)
    db = out / "usage.duckdb"
    _step("9. Trimmed policies", f"iamgraph recommend --snapshot {result.snapshot} --db {db} "
          f"--as-of {end.date().isoformat()} --principal {arns[0] if arns else 'ARN'} --format diff")
    started = time.perf_counter()
    with UsageStore(db, read_only=True) as store:
        recs = recommend_all(SnapshotIndex(snap), store, days=int(window["days"]), now=end, principals=arns)
    shown = False
    for rec in recs:
        for prop in rec.proposals:
            v = prop.verification
            verdict = "verified" if v is not None and v.passed else prop.status.value
            console.print(
                f"{_short(rec.principal_arn)}: {prop.name} -> {prop.status.value} ({verdict}; "
                f"{len(prop.removed_actions)} actions removed"
                + (f", {v.replayed_calls} observed calls replayed, {v.requests_checked_for_new_access} "
                   "requests checked for new access" if v is not None else "") + ")",
                highlight=False,
            )
            if not shown and prop.status is ProposalStatus.EMITTED:
                console.print(unified_diff(prop), markup=False, highlight=False)
                shown = True
    _timed(f"{sum(len(r.proposals) for r in recs)} proposals for {len(recs)} principals", started)
    return tuple(recs)


def _detect_step(out: Path, result: Any, window: dict[str, Any]) -> tuple[Any, ...]:
    """Deviation alerts on the last day of activity against the baseline of the days before it."""
    from datetime import timedelta

    from iamgraph.detect.config import DetectConfig, SinkConfig, SinkKind
    from iamgraph.detect.run import Window, run_once
    from iamgraph.detect.sinks import AsffFileSink

    end = datetime.fromisoformat(window["end"].replace("Z", "+00:00"))
    asff = out / "alerts.asff.json"
    _step("10. Deviation alerts", f"iamgraph detect --cloudtrail {result.cloudtrail_root} --since 24h "
          f"--as-of {end.isoformat()}")
    sink = AsffFileSink(SinkConfig(name="asff", kind=SinkKind.ASFF, path=str(asff)))
    report, _ = run_once(
        window=Window.of(end - timedelta(days=1), end, int(window["days"]) - 1),
        config=DetectConfig(spool_dir=str(out / "spool")),
        sinks=[sink],
        cloudtrail=str(result.cloudtrail_root),
    )
    alerts = report.result.alerts
    table = Table("severity", "rule", "principal", "action", "region", box=None)
    for a in alerts:
        table.add_row(str(a.severity), str(a.rule), _short(a.principal), a.action or "", a.region or "")
    console.print(table)
    console.print(f"{len(alerts)} alerts from {report.result.events} calls on the last day "
                  f"(baseline: {report.baseline_events} calls); ASFF findings in {asff}")
    return tuple(alerts)


def _report_step(
    out: Path, snapshot: Path, snap: Any, items: tuple[PlantedItem, ...]
) -> tuple[Path, tuple[tuple[str, ...], ...]]:
    """The self-contained HTML review, with credential hygiene from the credential report."""
    from iamgraph.demo.score import recommend_principals
    from iamgraph.report.html import render_html
    from iamgraph.report.review import build_review
    from iamgraph.snapshot import atomic_write_bytes

    html_out = out / "report.html"
    db = out / "usage.duckdb"
    wanted = recommend_principals(items)
    _step("11. HTML report", f"iamgraph report --snapshot {snapshot} --db {db} --html {html_out} "
          + " ".join(f"--principal {p}" for p in wanted))
    started = time.perf_counter()
    review = build_review(snap, source=str(snapshot), usage_db=db, usage_principals=tuple(wanted),
                          max_recommendations=len(wanted))
    atomic_write_bytes(html_out, render_html(review).encode("utf-8"))
    _timed("report written", started)
    return html_out.resolve(), tuple(review.credentials.rows)


def _next_steps(snapshot: Path, items: tuple[PlantedItem, ...]) -> None:
    """Three commands to try next on the demo's own files, about planted findings, so each has an answer."""
    chain = next((i for i in items if i.id == "privesc.assume-role-chain"), None)
    pii = next((i for i in items if i.kind == "sensitive_data_access"), None)
    console.rule("[bold]Next, try")
    console.print("(the iamgraph command is .venv/bin/iamgraph, or run `source .venv/bin/activate` first)",
                  highlight=False, markup=False)
    if chain is not None:
        console.print(f"iamgraph path --snapshot {snapshot} --from {chain.principals[0]} "
                      f"--to {chain.resources[0]}", highlight=False, markup=False, soft_wrap=True)
        console.print(f"iamgraph blast-radius --snapshot {snapshot} --principal {chain.principals[0]}",
                      highlight=False, markup=False, soft_wrap=True)
    if pii is not None:
        console.print(f"iamgraph who-can --snapshot {snapshot} --resource {pii.resources[0]} "
                      "--action s3:GetObject", highlight=False, markup=False, soft_wrap=True)
