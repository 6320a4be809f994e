"""CLI: ``iamgraph recommend`` — verified trimmed policies (dry run: prints or writes files, never calls AWS)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from iamgraph.cli.app import app, handle_errors, print_json
from iamgraph.cli.inputs import (
    alias,
    load_snapshot,
    open_store,
    require_output_dir,
    resolve_principal,
    write_output,
)
from iamgraph.cli.progress import phase
from iamgraph.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from iamgraph.recommend.recommender import PolicyProposal, Recommendation


class Format(StrEnum):
    JSON = "json"
    DIFF = "diff"
    TERRAFORM = "terraform"
    CLOUDFORMATION = "cloudformation"


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def parse_as_of(value: str) -> datetime:
    """``--as-of``: an ISO date or date/time (UTC when it has no offset, as the recommender reads it)."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{value!r} is not an ISO date/time", source="--as-of") from None


@app.command("recommend")
@handle_errors
def recommend(
    snapshot: str = typer.Option(..., "--snapshot", "-s", help="The snapshot file (iamgraph collect / import)."),
    db: str = typer.Option(..., "--db", help="The DuckDB usage file (iamgraph usage ingest)."),
    principal: list[str] = typer.Option([], "--principal", "-p", help="An IAM user or role: ARN, role/name, "
                                        "user/name or a unique name (repeatable)."),
    all_principals: bool = typer.Option(False, "--all", help="Every IAM user and role of the snapshot."),
    days: int = typer.Option(90, "--days", min=1, help="The usage window: the last N days."),
    as_of: str | None = typer.Option(None, "--as-of", help="End of the window (ISO date/time; default: now)."),
    now: str | None = typer.Option(None, "--now", hidden=True, help="Old spelling of --as-of."),
    config: str | None = typer.Option(None, "--config", help="Project config file (iamgraph.yaml) with a "
                                      "'recommend' section; ./iamgraph.yaml is used when present."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole recommendation (with verification) as JSON."),
    fmt: Format = typer.Option(Format.JSON, "--format", help="Form of each proposed policy: json, diff, "
                               "terraform or cloudformation."),
    out: str | None = typer.Option(None, "-o", "--output", help="Write one file per proposed policy into this "
                                   "directory instead of printing them (for a policy proposed for deletion: a "
                                   "CloudFormation template or Terraform comments saying what to remove)."),
    exact_keys: bool = typer.Option(False, "--exact-keys", help="Keep S3 object keys exact (default: several keys "
                                    "used under one prefix are granted as prefix/*; recommend.s3_prefix_threshold)."),
    accept_incomplete: bool = typer.Option(False, "--accept-incomplete-evidence", help="Propose removals even where "
                                           "the evidence does not cover the window (the gaps are still reported)."),
) -> None:
    """Propose trimmed policies from observed use, each verified by the engine (dry run: nothing is applied)."""
    from iamgraph.recommend import RecommendConfig, load_config, recommend_all
    from iamgraph.snapshot.index import SnapshotIndex

    if bool(principal) == all_principals:
        raise InputError("give --principal ARN (one or more) or --all")
    if out is not None:
        require_output_dir(out, "-o")
    now = alias(as_of, now, "--as-of", "--now")
    end = None if now is None else parse_as_of(now)
    cfg = RecommendConfig()
    if config is not None:
        cfg = load_config(config)
    elif Path("iamgraph.yaml").is_file():
        cfg = load_config("iamgraph.yaml")
    if accept_incomplete:
        cfg = dataclasses.replace(cfg, accept_incomplete_evidence=True)
    if exact_keys:
        cfg = dataclasses.replace(cfg, exact_keys=True)
    index = SnapshotIndex(load_snapshot(snapshot))
    principal = [resolve_principal(index, p) for p in principal]
    with open_store(db) as store, phase("proposing and verifying trimmed policies"):
        recs = recommend_all(index, store, days=days, config=cfg, now=end,
                             principals=None if all_principals else principal)
    if as_json:
        print_json(_jsonable(recs))
        return
    show_recommendations(recs, fmt, out)


def show_recommendations(recs: Sequence[Recommendation], fmt: Format, out: str | None = None) -> None:
    """What ``recommend`` prints: the count line, then per principal its proposals and each emitted policy in
    ``fmt`` (or the files written into ``out``). ``iamgraph demo`` shows its recommend step with it."""
    from iamgraph.recommend import render
    from iamgraph.recommend.recommender import ProposalStatus

    renderers = {Format.JSON: None, Format.DIFF: render.unified_diff, Format.TERRAFORM: render.terraform,
                 Format.CLOUDFORMATION: render.cloudformation}
    suffix = {Format.JSON: ".json", Format.DIFF: ".diff", Format.TERRAFORM: ".tf",
              Format.CLOUDFORMATION: ".cfn.json"}[fmt]
    statuses: dict[str, int] = {}
    for rec in recs:
        for prop in rec.proposals:
            statuses[prop.status.value] = statuses.get(prop.status.value, 0) + 1
    total = sum(statuses.values())
    if not total:
        typer.echo(f"none found: no policy to trim for {len(recs)} principal(s) (nothing unused in the window)")
    else:
        typer.echo(f"{total} proposal(s) for {len(recs)} principal(s): "
                   + ", ".join(f"{n} {st}" for st, n in sorted(statuses.items()))
                   + " (a proposal is emitted only when the engine verified it)")
    seen: set[str] = set()
    for rec in recs:
        typer.echo(f"# {rec.principal_arn}")
        for note in rec.notes:
            typer.echo(f"  note: {note}")
        if rec.unobservable_actions:
            typer.echo(f"  kept, use cannot be observed: {len(rec.unobservable_actions)} actions")
        for p in rec.proposals:
            _print_proposal(p)
            if p.status is not ProposalStatus.EMITTED or p.policy_id in seen:
                continue
            seen.add(p.policy_id)
            if not p.proposed:
                typer.echo(f"      to remove: {render.removal(p)}")
            fn = renderers[fmt]
            if fn is None and not p.proposed:
                continue  # no policy document to write: the line above says what to remove
            texts = ([render.policy_json(d) for d in p.proposed] if fn is None else [fn(p)])
            names = list(p.proposed_names) if fn is None else [p.proposed_names[0] if p.proposed_names else p.name]
            for name, text in zip(names, texts, strict=True):
                if out is not None:
                    target = Path(out) / (name.replace("/", "_") + suffix)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_output(target, text.encode(), "-o")
                    typer.echo(f"      wrote {target}")
                else:
                    typer.echo(text, nl=False)


def _print_proposal(p: PolicyProposal) -> None:
    """Every note and warning the JSON form carries for one proposal, one line each (nothing left to --json)."""
    from iamgraph.recommend import render

    line = f"  {p.status.value:10} {p.kind.value:16} {p.policy_id}"
    if p.removed_actions:
        line += f"  (-{len(p.removed_actions)} actions)"
    if p.reason:
        line += f"  {p.reason}"
    typer.echo(line)
    where = render.placement(p)
    if where is not None:
        typer.echo(f"      {where}")
    for gap in p.coverage_gaps:
        typer.echo(f"      {gap.kind.value}: {gap.detail}")
    for note in p.notes:
        typer.echo(f"      note: {note}")
    for why in p.left_alone:
        typer.echo(f"      left alone: {why}")
    v = p.verification
    if v is not None:
        if v.not_explained:
            typer.echo(f"      {v.not_explained} observed call(s) the original does not allow either (other policies "
                       "or context): not counted against the proposal")
        for msg in (*v.replay_failures, *v.new_access, *v.new_lint_findings):
            typer.echo(f"      {msg}")
    if p.flagged:
        typer.echo(f"      high-risk actions kept: {len(p.flagged)}")
        for f in p.flagged:
            typer.echo(f"      ! {f.action}: {f.reason}")
