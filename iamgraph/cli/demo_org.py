"""``iamgraph demo-org generate``: write the seeded demo organization (snapshot, CloudTrail files, planted.json)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from iamgraph.cli.app import app, console, handle_errors
from iamgraph.demo import DemoConfig, DemoResult, generate_demo
from iamgraph.demo.config import DEFAULT_END_DATE

demo_org_app = typer.Typer(
    help="The built-in demo organization: a realistic multi-account estate with planted findings.",
    no_args_is_help=True,
)
app.add_typer(demo_org_app, name="demo-org")


@demo_org_app.command("generate")
@handle_errors
def generate(
    out: Path = typer.Option(..., "--out", help="Directory to write snapshot.json.gz, cloudtrail/ and planted.json into."),
    accounts: int = typer.Option(6, "--accounts", help="Number of accounts (at least 6: management, audit, "
                                 "log-archive, prod, dev, sandbox)."),
    roles_per_account: int = typer.Option(15, "--roles-per-account",
                                          help="Workload accounts are topped up with generic roles to this many."),
    days: int = typer.Option(90, "--days", help="Length of the CloudTrail activity window, ending 2026-11-15."),
    seed: int = typer.Option(7, "--seed", help="Seed: the same seed and sizes give byte-identical files."),
    events_per_day: int = typer.Option(40, "--events-per-day",
                                       help="CloudTrail records drawn per day across the organization."),
    no_activity: bool = typer.Option(False, "--no-activity",
                                     help="Skip CloudTrail and access advisor (faster, for large sizes)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Generate the demo organization into --out."""
    cfg = DemoConfig(accounts=accounts, roles_per_account=roles_per_account, days=days, seed=seed,
                     events_per_day=events_per_day, end_date=DEFAULT_END_DATE, with_activity=not no_activity)
    result = generate_demo(out, cfg)
    if as_json:
        payload = {
            "out_dir": str(result.out_dir), "snapshot": str(result.snapshot),
            "cloudtrail_root": str(result.cloudtrail_root) if result.cloudtrail_root else None,
            "planted": str(result.planted), "organization_id": result.organization_id,
            "counts": asdict(result.counts),
        }
        console.print_json(json.dumps(payload))
        return
    show_generated(result)


def show_generated(result: DemoResult) -> None:
    """What ``demo-org generate`` prints (``iamgraph demo`` shows its first step with it)."""
    table = Table(title=f"demo organization {result.organization_id}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in asdict(result.counts).items():
        table.add_row(name.replace("_", " "), str(value))
    console.print(table)
    console.print(f"snapshot: {result.snapshot}")
    if result.cloudtrail_root:
        console.print(f"cloudtrail: {result.cloudtrail_root}")
    console.print(f"planted findings: {result.planted}")
