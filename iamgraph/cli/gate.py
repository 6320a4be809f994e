"""CLI commands of the policy gate and the HTML report: ``check`` and ``report`` (``detect`` is cli/detect.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from iamgraph.cli.app import app, console, err_console, handle_errors
from iamgraph.cli.inputs import (
    alias,
    load_snapshot,
    open_store,
    require_output_file,
    resolve_principal,
    write_output,
)
from iamgraph.cli.progress import phase
from iamgraph.errors import InputError

if TYPE_CHECKING:
    from iamgraph.report.review import Review

EXIT_FINDINGS = 1


@app.command("check")
@handle_errors
def check(
    before: Path | None = typer.Option(None, "--before", help="The current policy document (JSON)."),
    after: Path | None = typer.Option(None, "--after", help="The proposed policy document (JSON)."),
    terraform_plan: Path | None = typer.Option(
        None, "--terraform-plan", help="A Terraform plan as JSON (`terraform show -json PLANFILE`)."
    ),
    cloudformation: Path | None = typer.Option(
        None, "--cloudformation", help="A CloudFormation template (JSON or YAML); every policy in it is new."
    ),
    kind: str = typer.Option(
        "identity",
        "--kind",
        help="With --before/--after: identity, resource or trust (what the documents are).",
    ),
    resource_arn: str | None = typer.Option(
        None,
        "--resource-arn",
        help="With --kind resource/trust: the ARN of the resource the policy protects.",
    ),
    snapshot: Path | None = typer.Option(
        None, "--snapshot", "-s", help="Snapshot giving context: own accounts, managed policy documents."
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="Output: text, json or sarif."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the output to this file."),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Project config (default ./iamgraph.yaml if present): thresholds, suppressions.",
    ),
    config_c: Path | None = typer.Option(None, "-c", hidden=True, help="Old spelling of --config."),
    fail_on: str | None = typer.Option(
        None, "--fail-on", help="Exit 1 on findings at or above this severity (overrides the config)."
    ),
) -> None:
    """Judge policy changes for CI: exit 0 clean, 1 findings at/above the threshold, 2 usage or input error."""
    from dataclasses import replace

    from iamgraph import __version__
    from iamgraph.check.config import load_config
    from iamgraph.check.gate import cloudformation_changes, pair_change, run_check, terraform_changes
    from iamgraph.check.output import to_json, to_text
    from iamgraph.check.sarif import to_sarif
    from iamgraph.check.types import PolicyKind, Severity
    from iamgraph.snapshot import read_snapshot

    modes = [after is not None, terraform_plan is not None, cloudformation is not None]
    if sum(modes) != 1:
        raise InputError(
            "give exactly one input: --after (with optional --before), --terraform-plan or --cloudformation"
        )
    if before is not None and after is None:
        raise InputError("--before needs --after")
    config = alias(config, config_c, "--config", "-c")
    if as_json:
        if fmt not in ("text", "json"):
            raise InputError(f"--json and --format {fmt} contradict each other")
        fmt = "json"
    if fmt not in ("text", "json", "sarif"):
        raise InputError(f"--format must be text, json or sarif, not {fmt!r}")
    try:
        pkind = PolicyKind(kind)
    except ValueError:
        raise InputError(f"--kind must be identity, resource or trust, not {kind!r}") from None
    if config is None and Path("iamgraph.yaml").is_file():
        config = Path("iamgraph.yaml")  # the project's config, as the other commands find it
    cfg = load_config(config)
    if fail_on is not None:
        try:
            cfg = replace(cfg, check=replace(cfg.check, fail_on=Severity.parse(fail_on)))
        except ValueError as exc:
            raise InputError(str(exc), source="--fail-on") from None
    snap = read_snapshot(snapshot) if snapshot is not None else None
    assumptions: tuple[str, ...] = ()
    if after is not None:
        owner = resource_arn.split(":")[4] if resource_arn and resource_arn.count(":") >= 5 else None
        changes = [
            pair_change(before, after, kind=pkind, resource_arn=resource_arn, owner_account=owner or None)
        ]
        inputs = tuple(str(p) for p in (before, after) if p is not None)
    elif terraform_plan is not None:
        changes = terraform_changes(terraform_plan)
        inputs = (str(terraform_plan),)
    else:
        assert cloudformation is not None
        changes, assumptions = cloudformation_changes(cloudformation, cfg)
        inputs = (str(cloudformation),)
    _require_valid_documents(changes)
    result = run_check(changes, inputs=inputs, config=cfg, snapshot=snap, assumptions=assumptions)
    if fmt == "text":
        text = to_text(result)
    elif fmt == "json":
        text = json.dumps(to_json(result), indent=2)
    else:
        text = json.dumps(to_sarif(result, tool_version=__version__, base=Path.cwd()), indent=2)
    if output is not None:
        write_output(output, (text + "\n").encode(), "--output")
        err_console.print(f"wrote {output}")
        if fmt != "text":
            console.print(to_text(result), markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    if result.failing:
        raise typer.Exit(EXIT_FINDINGS)


def _require_valid_documents(changes: list[Any]) -> None:
    """A policy document that IAM would refuse (``"Effect": "Alow"``, ``"Actions"``) is an input error, exit 2:
    judged as "not evaluated" it would let the gate pass a change AWS rejects or, worse, a typo that hides
    what the author meant. Parsed with the same function the checks use."""
    from iamgraph.check.types import PolicyKind
    from iamgraph.errors import PolicyParseError
    from iamgraph.eval import PolicyType, named_policy

    for change in changes:
        if change.kind is PolicyKind.ATTACHMENT:
            continue
        ptype = PolicyType.IDENTITY if change.kind is PolicyKind.IDENTITY else PolicyType.RESOURCE
        for side in (change.before, change.after):
            if side is None or side.document is None:
                continue
            try:
                named_policy(side.document, change.subject, ptype)
            except PolicyParseError as exc:
                where = side.location.file + (f":{side.location.line}" if side.location.line else "")
                raise InputError(exc.message, source=where, location=exc.location) from None


@app.command("report")
@handle_errors
def report(
    html_out: Path = typer.Option(..., "--html", help="Write the self-contained HTML report to this file."),
    snapshot: Path = typer.Option(..., "--snapshot", "-s", help="Snapshot file to review."),
    usage: Path | None = typer.Option(
        None, "--db", help="Usage store (DuckDB, from `iamgraph usage ingest`) for unused permissions."
    ),
    usage_old: Path | None = typer.Option(None, "--usage", hidden=True, help="Old spelling of --db."),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Project config (iamgraph.yaml): sensitive_tags for the sensitive-data section; with --db, its "
        "recommend and evidence.logged sections for the unused and recommendation sections.",
    ),
    config_c: Path | None = typer.Option(None, "-c", hidden=True, help="Old spelling of --config."),
    sensitive_tag: list[str] = typer.Option(
        [], "--sensitive-tag", help="Tag KEY or KEY=VALUE marking sensitive resources (repeatable)."
    ),
    principal: list[str] = typer.Option(
        [], "--principal", "-p", help="With --db: only these principals in the unused section (repeatable)."
    ),
    max_recommendations: int = typer.Option(
        10,
        "--max-recommendations",
        min=0,
        help="With --db: recommend trimmed policies for this many principals.",
    ),
    baseline: Path | None = typer.Option(
        None, "--baseline", help="An earlier snapshot: add a section of what changed since it (as `iamgraph diff`)."
    ),
) -> None:
    """Write a one-file HTML security review: admins, escalation paths, exposure, SoD, unused, credentials
    (and, with --baseline, what changed since an earlier snapshot)."""
    from iamgraph.check.config import load_config
    from iamgraph.cli.graph import require_tag
    from iamgraph.report.review import build_review, fewer_collections
    from iamgraph.snapshot import SnapshotIndex

    require_output_file(html_out, "--html")
    usage = alias(usage, usage_old, "--db", "--usage")
    config = alias(config, config_c, "--config", "-c")
    cfg = load_config(config)
    for t in sensitive_tag:
        require_tag(t, "--sensitive-tag")
    tags = tuple(sensitive_tag) or cfg.sensitive_tags or ("DataClassification",)
    # The snapshot read joins the review's arrangement of the garbage collector: its objects live as long.
    with fewer_collections():
        snap = load_snapshot(snapshot)
        recommend_config = None
        if usage is not None:
            open_store(usage, "--db").close()  # a missing file or a snapshot given as the store: say so now
            index = SnapshotIndex(snap)
            principal = [resolve_principal(index, p) for p in principal]
            if config is not None:
                from iamgraph.recommend import load_config as load_recommend_config

                recommend_config = load_recommend_config(config)
        with phase("building the review"):
            review = build_review(
                snap,
                source=str(snapshot),
                usage_db=usage,
                sensitive_tags=tags,
                usage_principals=tuple(principal),
                max_recommendations=max_recommendations,
                recommend_config=recommend_config,
                baseline=load_snapshot(baseline, "--baseline") if baseline is not None else None,
                baseline_source=str(baseline),
            )
    write_report(html_out, review)


def write_report(html_out: Path, review: Review) -> None:
    """Write the review as one HTML file and say where (``iamgraph demo`` ends its report step with it)."""
    from iamgraph.report.html import render_html

    write_output(html_out, render_html(review).encode("utf-8"), "--html")
    console.print(f"wrote {html_out.resolve()}", markup=False, highlight=False, soft_wrap=True)
