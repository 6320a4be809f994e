"""CLI commands: ``iamgraph collect`` (live collection through boto3, one account or a whole organization)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from iamgraph.cli.app import app, console, err_console, handle_errors
from iamgraph.collect.aws import (
    DEFAULT_CONCURRENCY,
    DEFAULT_ROLE,
    CollectOptions,
    CollectorError,
    EventKind,
    ProgressEvent,
    collect,
    remove_work_dir,
)
from iamgraph.collect.aws_api import DEFAULT_RATE, DEFAULT_RATES
from iamgraph.snapshot import write_snapshot


def _split(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return tuple(out)


def _rates(values: list[str] | None) -> dict[str, float]:
    rates = dict(DEFAULT_RATES)
    for v in values or []:
        service, sep, number = v.partition("=")
        try:
            if not sep:
                raise ValueError
            rates[service.strip()] = float(number)
        except ValueError:
            raise CollectorError(f"--rate {v!r}: expected SERVICE=REQUESTS_PER_SECOND, e.g. iam=5") from None
    return rates


class _Display:
    """Rich progress: one line per account with its step, API calls and errors."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}
        self.lock = threading.Lock()

    def __call__(self, ev: ProgressEvent) -> None:
        with self.lock:
            label = f"{ev.account_id}" + (f" {ev.name}" if ev.name else "")
            if ev.kind is EventKind.PLANNED:
                self.tasks[ev.account_id] = self.progress.add_task(
                    label, total=1, status="waiting", visible=False
                )
                return
            task = self.tasks.get(ev.account_id)
            if task is None:
                return
            if ev.kind is EventKind.RESUMED:
                self.progress.update(task, completed=1, status="[cyan]from work dir", visible=True)
            elif ev.kind is EventKind.STARTED:
                self.progress.update(task, status="starting", visible=True)
            elif ev.kind is EventKind.STEP:
                self.progress.update(task, status=f"{ev.step} · {ev.calls} calls · {ev.errors} errors")
            elif ev.kind is EventKind.DONE:
                self.progress.update(
                    task,
                    completed=1,
                    status=f"[green]done[/] · {ev.principals} principals · {ev.resources} resources · "
                    f"{ev.calls} calls · {ev.errors} errors",
                )
            elif ev.kind is EventKind.FAILED:
                self.progress.update(task, completed=1, status="[red]cannot be assumed[/]")


@app.command("collect")
@handle_errors
def collect_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="Snapshot file to write (.json.gz or .json)."),
    organization: bool = typer.Option(
        False,
        "--organization",
        help="Collect every account of the AWS Organization (run from the management or a delegated-admin account).",
    ),
    role_name: str = typer.Option(
        DEFAULT_ROLE, "--role-name", help="Role assumed in each member account (organization mode)."
    ),
    external_id: str | None = typer.Option(
        None, "--external-id", help="External ID passed to sts:AssumeRole."
    ),
    session_name: str = typer.Option(
        "iamgraph-collector",
        "--session-name",
        help="Role session name (shows in the member accounts' CloudTrail).",
    ),
    profile: str | None = typer.Option(
        None,
        "--profile",
        help="AWS profile (including SSO profiles); default: the standard boto3 credential chain.",
    ),
    regions: list[str] | None = typer.Option(
        None,
        "--regions",
        help="Regions to read (repeat or comma-separate); default: every region enabled in each account.",
    ),
    accounts: list[str] | None = typer.Option(
        None, "--accounts", help="Only these account IDs (repeat or comma-separate; organization mode)."
    ),
    exclude_accounts: list[str] | None = typer.Option(
        None, "--exclude-accounts", help="Leave out these account IDs (repeat or comma-separate)."
    ),
    concurrency: int = typer.Option(
        DEFAULT_CONCURRENCY, "--concurrency", min=1, help="Accounts (and regions) read in parallel."
    ),
    max_attempts: int = typer.Option(
        10,
        "--max-attempts",
        min=1,
        help="botocore adaptive-retry attempts per call before the error is recorded.",
    ),
    rate: list[str] | None = typer.Option(
        None,
        "--rate",
        help=f"Requests per second for one service, e.g. iam=5 (repeatable; 0 = unlimited). Defaults: "
        f"{', '.join(f'{k}={v:g}' for k, v in DEFAULT_RATES.items())}, others {DEFAULT_RATE:g}.",
    ),
    access_advisor: bool = typer.Option(
        True,
        "--access-advisor/--no-access-advisor",
        help="Read Access Advisor (action-level last access) for every user and role.",
    ),
    identity_center: bool = typer.Option(
        True,
        "--identity-center/--no-identity-center",
        help="Read IAM Identity Center (permission sets, assignments).",
    ),
    identity_center_region: str | None = typer.Option(
        None,
        "--identity-center-region",
        help="Identity Center home region (default: look in each collected region).",
    ),
    work_dir: Path | None = typer.Option(
        None,
        "--work-dir",
        help="Where finished accounts are kept until the snapshot is written (default: OUTPUT.work).",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted collection from its work directory (same options)."
    ),
    keep_work_dir: bool = typer.Option(
        False, "--keep-work-dir", help="Keep the work directory after the snapshot is written."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
) -> None:
    """Collect IAM, resource policies, compute and Identity Center from AWS into a snapshot file."""
    wd = work_dir or output.with_name(output.name + ".work")
    options = CollectOptions(
        work_dir=wd,
        organization=organization,
        role_name=role_name,
        external_id=external_id,
        session_name=session_name,
        profile=profile,
        regions=_split(regions),
        accounts=_split(accounts),
        exclude_accounts=_split(exclude_accounts) or (),
        concurrency=concurrency,
        max_attempts=max_attempts,
        rates=_rates(rate),
        access_advisor=access_advisor,
        identity_center=identity_center,
        identity_center_region=identity_center_region,
        resume=resume,
    )
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=10),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=err_console, disable=as_json, transient=False) as progress:
            result = collect(options, progress=_Display(progress))
    except KeyboardInterrupt:
        err_console.print(
            f"interrupted: finished accounts are kept in {wd}; continue with the same command and --resume"
        )
        raise
    written = write_snapshot(result.snapshot, output)
    if not keep_work_dir:
        remove_work_dir(wd)
    snap = written
    summary = {
        "output": str(output),
        "content_hash": snap.content_hash,
        "accounts": len(snap.accounts),
        "accounts_collected": list(result.accounts_collected),
        "accounts_resumed": list(result.accounts_resumed),
        "accounts_failed": list(result.accounts_failed),
        "api_calls": result.calls,
        "errors": [e.model_dump(mode="json", exclude_none=True) for e in snap.errors],
    }
    if as_json:
        console.print_json(json.dumps(summary))
        return
    console.print(
        f"wrote {output}: {len(snap.accounts)} account(s) "
        f"({len(result.accounts_resumed)} from the work directory), {result.calls} API calls"
    )
    if snap.errors:
        table = Table(title=f"{len(snap.errors)} collection error(s)")
        for col in ("account", "region", "service", "call", "error", "resource"):
            table.add_column(col)
        for e in snap.errors[:200]:
            table.add_row(
                e.account_id or "", e.region or "", e.service, e.call, e.error_code, e.resource or ""
            )
        console.print(table)
        if len(snap.errors) > 200:
            console.print(f"... and {len(snap.errors) - 200} more (see the snapshot's errors)")
