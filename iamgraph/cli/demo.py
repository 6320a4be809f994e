"""``iamgraph demo``: the main job on the built-in demo organization (no AWS account needed).

It runs what a security engineer runs on a real estate, in order, and checks the answers against what the
generator planted (``planted.json``), so a regression in any layer shows up as a miss here:

1. generate the demo organization (snapshot, CloudTrail logs, Access Advisor data);
2. read the snapshot back and print its inventory;
3. build the access graph and ask: privilege escalation, exposure, separation of duties, sensitive data;
4. ingest the CloudTrail logs into the usage store and report unused permissions;
5. propose verified trimmed policies for the planted over-privileged principals;
6. check the last day of activity for calls outside the baselines;
7. write the HTML report.

Each step echoes the stand-alone command that does the same, then prints exactly what that command prints:
the step calls the command's own functions (``show_*``, ``run_ingest``, ``detect_once``, ``write_report``)
with the values of the echoed options, so retyping a command gives the same text
(tests/cli/test_cli_demo_echo.py runs every echoed command and compares). The usage store and the detect
spool remember what they have done; the demo starts both afresh in ``--out``, as a first run of the
commands would.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from iamgraph.cli.app import app, console, handle_errors
from iamgraph.cli.lists import DEFAULT_LIMIT
from iamgraph.cli.progress import phase

if TYPE_CHECKING:
    # The analyses load on first use, not whenever the CLI starts.
    from iamgraph.demo import DemoResult
    from iamgraph.demo.planted import PlantedItem
    from iamgraph.demo.score import Analyses
    from iamgraph.snapshot import Snapshot


def _step(title: str, *argv: str | Path) -> None:
    """The step's title and the command it runs, quoted so that it can be pasted into a shell."""
    console.rule(f"[bold]{title}")
    command = shlex.join(["iamgraph", *(str(a) for a in argv)])
    console.print(f"[dim]$ {escape(command)}[/]", highlight=False, soft_wrap=True)


@app.command()
@handle_errors
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Working directory for the demo's files (its "
                             "snapshot, cloudtrail/, usage.duckdb, spool/ and report.html are replaced)."),
    accounts: int = typer.Option(6, "--accounts", help="Accounts in the demo organization."),
    roles_per_account: int = typer.Option(15, "--roles-per-account", help="Roles per member account."),
    days: int = typer.Option(90, "--days", help="Days of CloudTrail activity to generate."),
    seed: int = typer.Option(7, "--seed", help="Seed of the generator (same seed, same organization)."),
    as_json: bool = typer.Option(False, "--json", help="Print the scoreboard as JSON at the end."),
) -> None:
    """Generate the demo organization and run every analysis on it, checking the planted findings."""
    from iamgraph.cli.demo_org import show_generated
    from iamgraph.cli.snapshot import show_info
    from iamgraph.demo import DemoConfig, PlantedItem, generate_demo
    from iamgraph.demo.score import Analyses, score
    from iamgraph.snapshot import read_snapshot_checked

    t0 = time.perf_counter()
    cfg = DemoConfig(accounts=accounts, roles_per_account=roles_per_account, days=days, seed=seed)
    # The options that differ from demo-org generate's defaults (the same as DemoConfig's) are echoed.
    base = DemoConfig()
    sizes = [(flag, value) for flag, value, default in (
        ("--accounts", accounts, base.accounts), ("--roles-per-account", roles_per_account, base.roles_per_account),
        ("--days", days, base.days), ("--seed", seed, base.seed)) if value != default]
    _step("1. Demo organization", "demo-org", "generate", "--out", out, *(str(x) for s in sizes for x in s))
    with phase("generating the demo organization"):
        result = generate_demo(out, cfg)
    show_generated(result)
    planted: dict[str, Any] = json.loads(result.planted.read_text())
    items = tuple(PlantedItem.from_json(i) for i in planted["items"])

    _step("2. Snapshot", "snapshot", "info", result.snapshot)
    snap, verified = read_snapshot_checked(result.snapshot)
    show_info(snap, verified)

    analyses = _graph_steps(result.snapshot, snap)
    as_of = str(planted["window"]["end"])[:10]  # the last day of activity ends at midnight UTC (docs/demo-org.md)
    window_days = int(planted["window"]["days"])
    unused = _usage_steps(out, result, snap, window_days, as_of, items)
    recommendations = _recommend_step(out, result, snap, window_days, as_of, items)
    alerts = _detect_step(out, result, as_of)
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
    console.print(f"[bold]HTML report:[/] {escape(str(report_path))}", highlight=False, soft_wrap=True)
    _next_steps(result.snapshot, items)
    if as_json:
        console.print_json(
            json.dumps([{"kind": k.kind.value, "id": k.item_id, "ok": k.ok, "note": k.note} for k in checks]),
            highlight=False,
        )
    if not all(k.ok for k in checks):
        raise typer.Exit(1)


def _graph_steps(snapshot_path: Path, snap: Snapshot) -> Analyses:
    """Privilege escalation, exposure, separation of duties and PII access on the access graph, each shown
    exactly as the command it echoes prints it (with that command's defaults: admins counted, not listed)."""
    from iamgraph.cli.graph import show_exposure, show_privesc, show_sensitive, show_sod, use_names_of
    from iamgraph.demo.score import Analyses
    from iamgraph.graph import build_graph
    from iamgraph.query import exposure, load_rules, privesc, sensitive, sod
    from iamgraph.query.incomplete import unknown_policies
    from iamgraph.query.sensitive import sensitive_incomplete
    from iamgraph.query.sod import sod_incomplete

    use_names_of(snap)
    _step("3. Access graph", "privesc", "--snapshot", snapshot_path)
    with phase("building the access graph"):
        graph = build_graph(snap)
    escalations = privesc(graph)
    not_admin = [e for e in escalations if e.kind.value != "already-admin"]
    show_privesc(not_admin, len(escalations) - len(not_admin), DEFAULT_LIMIT, False)

    _step("4. Exposure", "exposure", "--snapshot", snapshot_path)
    exposures = exposure(graph)
    show_exposure(exposures, DEFAULT_LIMIT, False, tuple(unknown_policies(graph).values()))

    _step("5. Separation of duties", "sod", "--snapshot", snapshot_path)
    conflicts = sod(graph)
    not_admin_conflicts = [c for c in conflicts if not c.admin]
    show_sod(not_admin_conflicts, len(conflicts) - len(not_admin_conflicts), DEFAULT_LIMIT, False,
             sod_incomplete(graph, load_rules()))

    tag = "DataClassification=PII"
    _step("6. Sensitive data", "sensitive", "--snapshot", snapshot_path, "--tag", tag)
    pii = sensitive(graph, tag)
    show_sensitive(pii, tag, DEFAULT_LIMIT, False, sensitive_incomplete(graph, tag))
    return Analyses(escalations=tuple(escalations), exposures=tuple(exposures), conflicts=tuple(conflicts),
                    pii_access=tuple(pii))


def _fresh(*paths: Path) -> None:
    """Remove what an earlier demo run left in ``--out`` (a usage store, a spool), so each run starts afresh."""
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def _usage_steps(
    out: Path, result: DemoResult, snap: Snapshot, days: int, as_of: str, items: tuple[PlantedItem, ...]
) -> tuple[Any, ...]:
    """Ingest the CloudTrail logs and Access Advisor data; the unused findings of the planted principals."""
    from iamgraph.cli.usage import run_ingest, show_ingest, show_unused, window_end
    from iamgraph.demo.score import unused_principals
    from iamgraph.usage.store import UsageStore
    from iamgraph.usage.unused import Severity, sort_findings, unused_report

    db = out / "usage.duckdb"
    _fresh(db, Path(f"{db}.wal"))
    assert result.cloudtrail_root is not None  # the demo always generates activity
    _step("7. Usage evidence", "usage", "ingest", "--db", db, "--cloudtrail", result.cloudtrail_root,
          "--snapshot", result.snapshot)
    with phase("ingesting usage evidence"):
        ingested = run_ingest(str(db), str(result.cloudtrail_root), snap)
    show_ingest(ingested, False)

    wanted = unused_principals(items)
    _step("8. Unused permissions", "unused", "--snapshot", result.snapshot, "--db", db, "--days", str(days),
          "--as-of", as_of, *(x for p in wanted for x in ("--principal", p)))
    with UsageStore(db, read_only=True) as store, phase("judging usage against grants"):
        # unused's defaults: low severity and up, admin grants summarised, data events detected, by severity.
        report = unused_report(snap, store, days=days, now=window_end(as_of), principals=wanted,
                               min_severity=Severity.LOW, summarize_admins=True)
    show_unused(report, sort_findings(report.findings, "severity"), DEFAULT_LIMIT, False)
    return tuple(report.findings)


def _recommend_step(
    out: Path, result: DemoResult, snap: Snapshot, days: int, as_of: str, items: tuple[PlantedItem, ...]
) -> tuple[Any, ...]:
    """Verified trimmed policies for the principals planted with unused or over-broad grants."""
    from iamgraph.cli.recommend import Format, parse_as_of, show_recommendations
    from iamgraph.demo.score import recommend_principals
    from iamgraph.recommend import RecommendConfig
    from iamgraph.recommend.recommender import recommend_all
    from iamgraph.snapshot import SnapshotIndex
    from iamgraph.usage.store import UsageStore

    arns = recommend_principals(items)
    db = out / "usage.duckdb"
    _step("9. Trimmed policies", "recommend", "--snapshot", result.snapshot, "--db", db, "--as-of", as_of,
          *(x for p in arns for x in ("--principal", p)), "--format", "diff")
    with UsageStore(db, read_only=True) as store, phase("proposing and verifying trimmed policies"):
        recs = recommend_all(SnapshotIndex(snap), store, days=days, config=RecommendConfig(),
                             now=parse_as_of(as_of), principals=arns)
    show_recommendations(recs, Format.DIFF)
    return tuple(recs)


def _detect_step(out: Path, result: DemoResult, as_of: str) -> tuple[Any, ...]:
    """Deviation alerts on the last day of activity against the baseline of the days before it."""
    from iamgraph.cli.detect import detect_once, make_sinks
    from iamgraph.detect.config import DetectConfig
    from iamgraph.detect.run import Window, parse_since, parse_time_arg

    spool = out / "spool"
    _fresh(spool)
    _step("10. Deviation alerts", "detect", "--cloudtrail", result.cloudtrail_root or "", "--since", "24h",
          "--as-of", as_of, "--spool-dir", spool)
    cfg = DetectConfig(spool_dir=str(spool))
    end = parse_time_arg(as_of, "--as-of")
    collected: list[str] = []
    sinks = make_sinks(cfg, [], collected.append)
    try:
        report, _ = detect_once(window=Window.of(parse_since("24h", end), end, cfg.baseline_days), config=cfg,
                                sinks=sinks, collected=collected, cloudtrail=str(result.cloudtrail_root), db=None,
                                limit=DEFAULT_LIMIT, show_all=False, as_json=False)
    finally:
        for s in sinks:
            s.close()
    return tuple(report.result.alerts)


def _report_step(
    out: Path, snapshot: Path, snap: Snapshot, items: tuple[PlantedItem, ...]
) -> tuple[Path, tuple[tuple[str, ...], ...]]:
    """The self-contained HTML review, with credential hygiene from the credential report."""
    from iamgraph.cli.gate import write_report
    from iamgraph.demo.score import recommend_principals
    from iamgraph.report.review import build_review

    html_out = out / "report.html"
    db = out / "usage.duckdb"
    wanted = recommend_principals(items)
    _step("11. HTML report", "report", "--snapshot", snapshot, "--db", db, "--html", html_out,
          *(x for p in wanted for x in ("--principal", p)))
    with phase("building the review"):
        # report's defaults: the DataClassification tag, at most 10 principals with recommendations.
        review = build_review(snap, source=str(snapshot), usage_db=db, sensitive_tags=("DataClassification",),
                              usage_principals=tuple(wanted), max_recommendations=10)
    write_report(html_out, review)
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
