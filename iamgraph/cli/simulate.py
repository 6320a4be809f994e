"""CLI: ``iamgraph simulate`` — one request against a snapshot, or a JSON-lines batch of explicit policies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import orjson
import typer

from iamgraph.cli.app import app, console, handle_errors
from iamgraph.errors import InputError
from iamgraph.eval import Decision, Mode, OrgLevelRef, SnapshotEvaluator
from iamgraph.eval.batch import decision_to_json, error_to_text, evaluate_line
from iamgraph.snapshot import SnapshotIndex, atomic_write_bytes, read_snapshot


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
    batch: Path | None = typer.Option(
        None, "--batch", help="JSON-lines file of requests with explicit policies ('-' for stdin); writes one "
        "JSON line per input, in order. Format: docs/engine.md."
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
        _run_batch(batch, out, mode)
        return
    missing = [n for n, v in (("--snapshot", snapshot), ("--principal", principal), ("--action", action),
                              ("--resource", resource)) if v is None]
    if missing:
        raise InputError(f"missing {', '.join(missing)} (or use --batch FILE.jsonl)")
    assert snapshot is not None and principal is not None and action is not None and resource is not None
    ev = SnapshotEvaluator(SnapshotIndex(read_snapshot(snapshot)))
    decision = ev.authorize(
        principal, action, resource, context=parse_context(context), mode=mode, resource_account=resource_account
    )
    if as_json:
        console.print_json(json.dumps(decision_to_json(None, decision) | {"id": None}))
        return
    _print_decision(decision, explain)


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
                          highlight=False, markup=False)
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
        for i, term in enumerate(d.conditions):
            lead = "  if " if i == 0 else "  or if "
            parts = [
                ("not " if c.negated else "") + f"{c.key} {c.operator} {list(c.values)}" for c in term
            ]
            console.print(lead + " and ".join(parts), highlight=False, markup=False)
    for e in d.errors:
        console.print(f"  error: {error_to_text(e)}", style="red", highlight=False, markup=False)


def _level_text(level: OrgLevelRef) -> str:
    if level.kind == "root":
        return f"the root {level.target_id}"
    if level.kind == "ou":
        return f"OU {level.name} ({level.target_id})"
    return f"account {level.target_id}" + (f" ({level.name})" if level.name and level.name != level.target_id else "")


def _run_batch(path: Path, out: Path | None, mode: Mode) -> None:
    if str(path) == "-":
        results = _batch_lines(sys.stdin, "<stdin>", mode)
    else:
        try:
            fh = path.open("r", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        with fh:
            if out is not None:
                data = b"".join(r + b"\n" for r in _batch_lines(fh, str(path), mode))
                atomic_write_bytes(out, data)
                return
            results = _batch_lines(fh, str(path), mode)
            _write(results, sys.stdout)
            return
    if out is not None:
        atomic_write_bytes(out, b"".join(r + b"\n" for r in results))
    else:
        _write(results, sys.stdout)


def _write(results: Any, stream: TextIO) -> None:
    for r in results:
        stream.write(r.decode("utf-8") + "\n")
    stream.flush()


def _batch_lines(fh: TextIO, source: str, mode: Mode) -> Any:
    for n, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            res: dict[str, Any] = {
                "id": None, "decision": "ImplicitlyDenied", "conditions": [], "reasons": [], "blockedBy": [],
                "error": f"{source}: line {n}: invalid JSON ({exc})",
            }
        else:
            res = evaluate_line(obj, mode)
            if res["error"] is not None and not isinstance(obj, dict):
                res["error"] = f"{source}: line {n}: {res['error']}"
            elif res["error"] is not None:
                res["error"] = f"line {n}: {res['error']}"
        yield orjson.dumps(res)
