"""CLI: ``iamgraph simulate`` — one request against a snapshot, or a JSON-lines batch of explicit policies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import typer

from iamgraph.cli.app import app, console, err_console, handle_errors
from iamgraph.cli.inputs import (
    load_snapshot,
    require_action,
    require_resource,
    resolve_principal,
    write_output,
)
from iamgraph.errors import InputError
from iamgraph.eval import Decision, Mode, OrgLevelRef, SnapshotEvaluator
from iamgraph.eval.batch import decision_to_json, error_to_text, evaluate_lines
from iamgraph.eval.types import DecisionKind
from iamgraph.eval.unsupplied import how_to_supply, unsupplied_keys
from iamgraph.report.conditions import condition_text
from iamgraph.snapshot import SnapshotIndex


@app.command("simulate")
@handle_errors
def simulate(
    snapshot: Path | None = typer.Option(
        None, "--snapshot", "-s", help="Snapshot file whose principal, policies and organization to use."
    ),
    principal: str | None = typer.Option(
        None, "--principal", "-p", help="Caller: user, role or assumed-role session ARN, account root ARN, "
        "'anonymous' or a service principal."
    ),
    action: str | None = typer.Option(None, "--action", "-a", help="The action, e.g. s3:GetObject."),
    resource: str | None = typer.Option(None, "--resource", "-r", help="The resource ARN (or '*')."),
    resource_account: str | None = typer.Option(
        None, "--resource-account", help="Owner account of the resource when its ARN has none (S3)."
    ),
    context: list[str] = typer.Option(
        [], "--context", "-c", help="Request context as key=value; repeat a key (or give a JSON list) for a "
        "multi-valued key; key=null says the key is known to be absent."
    ),
    region: str | None = typer.Option(
        None, "--region", help="The region the request is sent to: sets aws:RequestedRegion (a --context value for "
        "it wins)."),
    batch: Path | None = typer.Option(
        None, "--batch", help="JSON-lines file of requests with explicit policies ('-' for stdin); writes one "
        "JSON line per input, in order; exit 1 when any line has an error. Format: docs/engine.md."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="With --batch: write the results to this file "
                                    "(atomically) instead of stdout."),
    mode: Mode = typer.Option(Mode.STRICT, "--mode", help="strict: the context given is the whole context; "
                              "discovery: conditions on keys nobody supplied become residual conditions."),
    explain: bool = typer.Option(False, "--explain", help="Show the deciding statements, blocking guardrails, "
                                 "residual conditions and evaluation errors."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON (the batch output format)."),
) -> None:
    """Decide whether a principal may perform an action on a resource, as AWS would."""
    if batch is not None:
        if any(v is not None for v in (snapshot, principal, action, resource)):
            raise InputError("--batch takes its requests and policies from the file; drop --snapshot, "
                             "--principal, --action and --resource")
        if region is not None:
            raise InputError("--batch takes each request's context from the file; drop --region")
        _run_batch(batch, out, mode)
        return
    missing = [n for n, v in (("--snapshot", snapshot), ("--principal", principal), ("--action", action),
                              ("--resource", resource)) if v is None]
    if missing:
        raise InputError(f"missing {', '.join(missing)} (or use --batch FILE.jsonl)")
    assert snapshot is not None and principal is not None and action is not None and resource is not None
    index = SnapshotIndex(load_snapshot(snapshot))
    principal = resolve_principal(index, principal, allow_external=True)
    action = require_action(action)
    resource = require_resource(index, resource, resource_account=resource_account, action=action)
    ctx = with_region(parse_context(context), region)
    ev = SnapshotEvaluator(index)
    decision = ev.ask(principal, action, resource, context=ctx, mode=mode, resource_account=resource_account)
    keys = (unsupplied_keys(ev, principal, action, resource, decision, context=ctx,
                            resource_account=resource_account) if mode is Mode.STRICT else ())
    if as_json:
        shown = decision_to_json(None, decision) | {"id": None, "unsuppliedKeys": list(keys)}
        if keys:
            shown["note"] = how_to_supply(keys)
        console.print_json(json.dumps(shown))
        return
    _print_decision(decision, explain)
    if keys:
        console.print(f"note: {how_to_supply(keys)}", style="yellow", highlight=False, markup=False, soft_wrap=True)


def with_region(ctx: dict[str, Any], region: str | None) -> dict[str, Any]:
    """``--region`` as aws:RequestedRegion, unless --context already gives that key."""
    if region is not None and not any(k.lower() == "aws:requestedregion" for k in ctx):
        ctx["aws:RequestedRegion"] = region
    return ctx


def parse_context(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a repeated key or a JSON list value makes a multi-valued key."""
    ctx: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--context {item!r}: expected key=value")
        value: Any = raw
        if raw.startswith("["):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(f"--context {key}: invalid JSON list ({exc.msg})") from None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(f"--context {key}: a JSON list value must hold strings")
        elif raw == "null":
            value = None
        if key in ctx and value is not None:
            prev = ctx[key]
            ctx[key] = [*(prev if isinstance(prev, list) else [prev]), *(value if isinstance(value, list) else [value])]
        else:
            ctx[key] = value
    return ctx


def _print_decision(d: Decision, explain: bool) -> None:
    word = d.decision.value
    if d.conditional:
        word = "Allowed, conditionally"
    style = "green" if d.allowed else "yellow" if d.conditional else "red"
    console.print(f"[bold {style}]{word}[/]", highlight=False)
    for key in d.unsupported_keys:
        console.print(f"  warning: context key {key} is not supported by this action (Service Authorization "
                      "Reference); treated as absent", style="yellow", highlight=False, markup=False)
    if not explain and not d.errors:
        return
    if explain:
        for r in d.reasons:
            sid = f" ({r.sid})" if r.sid else ""
            at = f" attached to {_level_text(r.level)}" if r.level is not None else ""
            console.print(f"  {r.effect} by {r.policy_type.value} {r.policy_id} Statement[{r.statement_index}]{sid}{at}",
                          highlight=False, markup=False, soft_wrap=True)
        if d.blocked_by:
            console.print("  blocked by: " + ", ".join(t.value for t in d.blocked_by), highlight=False)
        for g in d.org_gaps:
            where = _level_text(g.level) if g.level is not None else f"level {g.index} of the chain (0 = root)"
            held = ", ".join(g.policy_ids) if g.policy_ids else "no policy attached"
            console.print(f"  no {g.policy_type.value.upper()} allows it at {where}: {held}", highlight=False,
                          markup=False)
        if d.refused_by is not None:
            console.print(f"  refused by AWS: {d.refused_by.reason} ({d.refused_by.rule_id}; {d.refused_by.doc})",
                          highlight=False, markup=False)
        if (d.decision is DecisionKind.IMPLICITLY_DENIED and not d.reasons and not d.blocked_by and not d.org_gaps
                and d.refused_by is None):
            # Nothing to cite is the explanation: no Allow matched, so the default deny stands.
            # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policies_evaluation.html
            console.print("  no Allow statement of the principal's identity policies or the resource's policy matches "
                          "this action, resource and context: the default (implicit) deny", highlight=False,
                          markup=False, soft_wrap=True)
        for i, term in enumerate(d.conditions):
            lead = "  if " if i == 0 else "  or if "
            console.print(lead + " and ".join(condition_text(c) for c in term), highlight=False, markup=False)
    for e in d.errors:
        console.print(f"  error: {error_to_text(e)}", style="red", highlight=False, markup=False)


def _level_text(level: OrgLevelRef) -> str:
    if level.kind == "root":
        return f"the root {level.target_id}"
    if level.kind == "ou":
        return f"OU {level.name} ({level.target_id})"
    return f"account {level.target_id}" + (f" ({level.name})" if level.name and level.name != level.target_id else "")


def _run_batch(path: Path, out: Path | None, mode: Mode) -> None:
    """Exit 0 when every line was answered without an error, 1 when at least one line carries an ``error``
    (every other line is still answered, in order, and ``--out`` is still written); 2 when the file cannot be read."""
    if str(path) == "-":
        failed, total, first = _batch(sys.stdin.buffer, "<stdin>", mode, out)
    else:
        try:
            fh = path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        with fh:
            failed, total, first = _batch(fh, str(path), mode, out)
    if failed:
        err_console.print(
            f"{failed} of {total} batch line(s) have an error (the first: line {first}); see their \"error\"",
            highlight=False, markup=False,
        )
        raise typer.Exit(1)


def _batch(fh: BinaryIO, source: str, mode: Mode, out: Path | None) -> tuple[int, int, int | None]:
    """Answer every line; return (lines with an error, lines answered, number of the first line with an error)."""
    failed = total = 0
    first: int | None = None
    chunks: list[bytes] = []
    for n, res in evaluate_lines(fh, source, mode):
        total += 1
        if res["error"] is not None:
            failed += 1
            first = first or n
        line = orjson.dumps(res, option=orjson.OPT_APPEND_NEWLINE)  # no second copy of each line to add it
        if out is not None:
            chunks.append(line)
        else:
            sys.stdout.write(line.decode("utf-8"))
    if out is not None:
        write_output(out, b"".join(chunks), "--out")
    else:
        sys.stdout.flush()
    return failed, total, first

