"""CLI: the access graph's questions (who-can, what-can, path, privesc, blast-radius, exposure, sensitive, sod)
and ``graph export``. Every command reads ``--snapshot`` and prints a Rich table, or JSON with ``--json``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from iamgraph.cli.app import app, console, handle_errors
from iamgraph.cli.inputs import (
    load_snapshot,
    require_action,
    require_resource,
    resolve_principal,
    write_output,
)
from iamgraph.cli.known_context import REGION_KEY, apply_known
from iamgraph.errors import InputError, NotFoundError
from iamgraph.graph import AccessGraph, build_graph
from iamgraph.graph.export import ExportFormat, export
from iamgraph.graph.types import Conditions
from iamgraph.query import blast_radius, exposure, load_rules, privesc, sensitive, sod, what_can, who_can
from iamgraph.query import serialize as ser
from iamgraph.query.paths import Path as GraphPath
from iamgraph.query.paths import simple_paths
from iamgraph.query.who_can import WhoCanResult
from iamgraph.snapshot import SnapshotIndex
from iamgraph.snapshot.model import Snapshot

graph_app = typer.Typer(help="Export the access graph.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")

SNAPSHOT = typer.Option(..., "--snapshot", "-s", help="Snapshot file to build the access graph from.")
JSON_OUT = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _graph(snapshot: Path) -> AccessGraph:
    return build_graph(load_snapshot(snapshot))


def _load(snapshot: Path) -> tuple[Snapshot, SnapshotIndex]:
    """The snapshot and its index, to check the arguments before the (slower) graph build."""
    snap = load_snapshot(snapshot)
    return snap, SnapshotIndex(snap)


def _emit(data: Any) -> None:
    console.print_json(json.dumps(data), highlight=False)


def _conds(conds: Conditions, assumptions: tuple[str, ...] = ()) -> str:
    parts = [" and ".join(("not " if c.negated else "") + f"{c.key} {c.operator} {list(c.values)}" for c in conj)
             for conj in conds]
    text = " or ".join(f"({p})" if len(conds) > 1 else p for p in parts)
    if assumptions:
        text = "; ".join(filter(None, [text, *assumptions]))
    return text or "-"


def _short(node: str) -> str:
    return node.split(":", 5)[-1] if node.startswith("arn:") else node


def _hops(p: GraphPath) -> str:
    if not p.hops:
        return "(itself)"
    out = [_short(p.nodes[0])]
    for e in p.hops:
        out.append(f"-[{e.kind.value}]-> {_short(e.target)}")
    return " ".join(out)


@app.command("who-can")
@handle_errors
def who_can_cmd(
    snapshot: Path = SNAPSHOT,
    resource: str = typer.Option(..., "--resource", "-r", help="Resource ARN, or a pattern with * and ?."),
    action: str | None = typer.Option(None, "--action", "-a", help="Action (service:Name); * and ? allowed."),
    access_level: str | None = typer.Option(
        None, "--access-level", help="All actions of this access level (List, Read, Write, ...)."),
    any_action: bool = typer.Option(False, "--any", help="Every action that applies to the resource."),
    paths: int = typer.Option(1, "--paths", "-k", min=1, max=20, help="Paths per principal (shortest + K-1)."),
    region: str | None = typer.Option(None, "--region", help="The region the request goes to "
                                      "(aws:RequestedRegion): conditions on it are decided, accesses impossible "
                                      "there are dropped."),
    as_json: bool = JSON_OUT,
) -> None:
    """Every principal that can perform the action on the resource, directly or through a path."""
    if action is not None:
        action = require_action(action, allow_patterns=True)
    snap, idx = _load(snapshot)
    resource = require_resource(idx, resource)
    g = build_graph(snap)
    result = who_can(g, resource, action=action, access_level=access_level, any_action=any_action, paths=paths)
    if region is not None:
        result = _in_region(result, region)
    if as_json:
        _emit({"resources": list(result.resources), "actions": list(result.actions),
               "accesses": [ser.access(a) for a in result.accesses], "notes": list(result.notes)})
        return
    table = Table(title=f"who can {action or access_level or 'any action'} on {resource}")
    for col in ("principal", "action", "how", "path", "definite", "conditions", "statements"):
        table.add_column(col, overflow="fold")
    for a in result.accesses:
        alts = "".join(f"\nalt: {_hops(p)}" for p in a.alternatives)
        table.add_row(a.principal, a.action, a.how.value, _hops(a.path) + alts, "yes" if a.definite else "no",
                      _conds(a.conditions, a.assumptions),
                      ", ".join(f"{r.policy_id}#{r.statement_index}" for r in a.statements))
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", markup=False)


def _in_region(result: WhoCanResult, region: str) -> WhoCanResult:
    known = {REGION_KEY: region}
    kept = []
    for a in result.accesses:
        conds = apply_known(a.conditions, known)
        if conds is not None:
            kept.append(replace(a, conditions=conds))
    return replace(result, accesses=tuple(kept),
                   notes=(*result.notes, f"{REGION_KEY} = {region}: conditions on it decided"))


@app.command("what-can")
@handle_errors
def what_can_cmd(
    snapshot: Path = SNAPSHOT,
    principal: str = typer.Option(..., "--principal", "-p", help="Principal ARN."),
    as_json: bool = JSON_OUT,
) -> None:
    """Effective permissions of a principal by service and access level, directly and through paths."""
    snap, idx = _load(snapshot)
    principal = resolve_principal(idx, principal)
    g = build_graph(snap)
    perms = what_can(g, principal)
    if as_json:
        _emit([ser.permission(p) for p in perms])
        return
    table = Table(title=f"what {principal} can do")
    for col in ("via", "service", "access level", "actions", "resource", "conditional"):
        table.add_column(col, overflow="fold")
    for p in perms:
        acts = ", ".join(p.actions[:6]) + (f" (+{len(p.actions) - 6})" if len(p.actions) > 6 else "")
        table.add_row(_hops(p.path), p.service, p.access_level, acts, p.resource, "yes" if p.conditional else "no")
    console.print(table)


@app.command("path")
@handle_errors
def path_cmd(
    snapshot: Path = SNAPSHOT,
    source: str = typer.Option(..., "--from", help="Starting principal ARN."),
    target: str = typer.Option(..., "--to", help="Target principal ARN (or admin:<account>)."),
    paths: int = typer.Option(3, "--paths", "-k", min=1, max=50, help="How many paths, shortest first."),
    as_json: bool = JSON_OUT,
) -> None:
    """Paths by which one principal can act as another."""
    snap, idx = _load(snapshot)
    source = resolve_principal(idx, source, "--from")
    if not target.startswith("admin:"):
        target = resolve_principal(idx, target, "--to")
    g = build_graph(snap)
    for node in (source, target):
        if node not in g.g:
            raise NotFoundError(f"the snapshot has no principal {node}")
    found = list(simple_paths(g, source, [target], paths))
    if as_json:
        _emit([ser.path(p) for p in found])
        return
    if not found:
        console.print(f"no path from {source} to {target}")
        return
    table = Table(title=f"paths from {source} to {target}")
    for col in ("#", "path", "definite", "conditions"):
        table.add_column(col, overflow="fold")
    for i, p in enumerate(found, 1):
        table.add_row(str(i), _hops(p), "yes" if p.definite else "no", _conds(p.conditions, p.assumptions))
    console.print(table)


@app.command("privesc")
@handle_errors
def privesc_cmd(
    snapshot: Path = SNAPSHOT,
    principal: str | None = typer.Option(None, "--principal", "-p", help="Only this principal (default: all)."),
    include_admins: bool = typer.Option(False, "--include-admins", help="Also list principals already admin."),
    as_json: bool = JSON_OUT,
) -> None:
    """Escalation paths to admin-equivalent principals, ranked by length and conditions."""
    snap, idx = _load(snapshot)
    if principal is not None:
        principal = resolve_principal(idx, principal)
    g = build_graph(snap)
    found = privesc(g, principal)
    if not include_admins:
        found = [e for e in found if e.kind.value != "already-admin"]
    if as_json:
        _emit([ser.escalation(e) for e in found])
        return
    table = Table(title="privilege escalation")
    for col in ("principal", "account", "kind", "admin as", "path", "changes", "definite", "conditions"):
        table.add_column(col, overflow="fold")
    for e in found:
        changes = "; ".join(
            f"{c.kind.value} via {' + '.join(c.reason.via)}"
            + (f" on {_short(c.reason.target)}" if c.reason.target else "")
            + f" by {_short(c.source)}"
            for c in e.changes
        )
        table.add_row(e.principal, e.account, e.kind.value, _short(e.admin), _hops(e.path), changes or "-",
                      "yes" if e.definite else (
                          f"no; definite in {e.definite_path.length} hops: {_hops(e.definite_path)}"
                          if e.definite_path is not None else "no"),
                      _conds(e.conditions, e.assumptions))
    console.print(table)


@app.command("blast-radius")
@handle_errors
def blast_cmd(
    snapshot: Path = SNAPSHOT,
    principal: str | None = typer.Option(None, "--principal", "-p", help="Compromised principal ARN."),
    access_key_id: str | None = typer.Option(None, "--access-key-id", help="Compromised access key id (AKIA...)."),
    tag: str | None = typer.Option(None, "--tag", help="Classification tag (Key=Value) marking sensitive resources."),
    as_json: bool = JSON_OUT,
) -> None:
    """Everything an attacker holding the principal or key reaches, and a minimal edge cut to contain it."""
    if (principal is None) == (access_key_id is None):
        raise InputError("give exactly one of --principal or --access-key-id")
    snap, idx = _load(snapshot)
    if principal is not None:
        principal = resolve_principal(idx, principal)
    g = build_graph(snap)
    b = blast_radius(g, principal, access_key_id=access_key_id, tag=tag)
    if as_json:
        _emit(ser.blast(b))
        return
    table = Table(title=f"blast radius of {b.principal}")
    for col in ("what", "detail", "how"):
        table.add_column(col, overflow="fold")
    for node, p in b.reachable:
        table.add_row("acts as", node, _hops(p))
    for esc in b.admin:
        table.add_row("admin-equivalent", esc.account, f"{esc.kind.value}: {_hops(esc.path)}")
    for s in b.sensitive:
        table.add_row(f"sensitive {s.kind.value}", s.resource, f"{s.access.how.value}: {_hops(s.access.path)}")
    for e in b.resource_takeovers:
        table.add_row("can rewrite policy", e.target, f"{_short(e.source)} via {' '.join(e.reason.via)}")
    for e in b.cut:
        table.add_row("cut this edge", f"{e.source} -> {e.target}", f"{e.kind.value} ({' + '.join(e.reason.via)})")
    if b.cut_note:
        table.add_row("cut", b.cut_note, "")
    console.print(table)


@app.command("exposure")
@handle_errors
def exposure_cmd(snapshot: Path = SNAPSHOT, as_json: bool = JSON_OUT) -> None:
    """Resources and roles reachable from outside the organization or publicly."""
    found = exposure(_graph(snapshot))
    if as_json:
        _emit([ser.exposure(x) for x in found])
        return
    table = Table(title="exposure")
    for col in ("scope", "principal", "resource", "actions", "conditions", "statements"):
        table.add_column(col, overflow="fold")
    for x in found:
        acts = ", ".join(x.actions[:5]) + (f" (+{len(x.actions) - 5})" if len(x.actions) > 5 else "")
        table.add_row(x.scope.value, x.principal, x.resource, acts, _conds(x.conditions),
                      ", ".join(f"{r.policy_id}#{r.statement_index}" for r in x.statements))
    console.print(table)


@app.command("sensitive")
@handle_errors
def sensitive_cmd(
    snapshot: Path = SNAPSHOT,
    tag: str | None = typer.Option(None, "--tag", help="Key=Value or Key (default: common classification keys)."),
    as_json: bool = JSON_OUT,
) -> None:
    """Who can read, write or decrypt resources carrying a classification tag."""
    found = sensitive(_graph(snapshot), tag)
    if as_json:
        _emit([ser.sensitive_access(s) for s in found])
        return
    table = Table(title=f"access to resources tagged {tag or 'with a classification'}")
    for col in ("resource", "access", "principal", "how", "path", "definite", "conditions"):
        table.add_column(col, overflow="fold")
    for s in found:
        a = s.access
        table.add_row(s.resource, s.kind.value, a.principal, a.how.value, _hops(a.path),
                      "yes" if a.definite else "no", _conds(a.conditions, a.assumptions))
    console.print(table)


@app.command("sod")
@handle_errors
def sod_cmd(
    snapshot: Path = SNAPSHOT,
    rules: Path | None = typer.Option(None, "--rules", help="YAML rules file (default: the shipped rules)."),
    principal: str | None = typer.Option(None, "--principal", "-p", help="Only this principal."),
    include_admins: bool = typer.Option(
        False, "--include-admins", help="Also list admin-equivalent principals (they conflict with every rule)."),
    as_json: bool = JSON_OUT,
) -> None:
    """Separation-of-duties conflicts: principals that hold capabilities a rule keeps apart."""
    snap, idx = _load(snapshot)
    if principal is not None:
        principal = resolve_principal(idx, principal)
    g = build_graph(snap)
    found = sod(g, load_rules(rules), principal=principal)
    hidden = 0 if include_admins or principal else sum(1 for c in found if c.admin)
    if hidden:
        found = [c for c in found if not c.admin]
    if as_json:
        _emit([ser.conflict(c) for c in found])
        return
    table = Table(title="separation-of-duties conflicts")
    for col in ("rule", "severity", "principal", "evidence", "definite"):
        table.add_column(col, overflow="fold")
    for c in found:
        ev = "\n".join(f"{e.capability}: {e.action} on {e.resource} ({_hops(e.path)})" for e in c.evidence)
        table.add_row(c.rule.id, c.rule.severity, c.principal + (f"\non {c.resource}" if c.resource else ""), ev,
                      "yes" if c.definite else "no")
    console.print(table)
    if hidden:
        console.print(f"{hidden} more conflicts of admin-equivalent principals (--include-admins lists them)")


@graph_app.command("export")
@handle_errors
def export_cmd(
    snapshot: Path = SNAPSHOT,
    fmt: ExportFormat = typer.Option(ExportFormat.JSON, "--format", "-f", help="graphml, json or dot."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (default: standard output)."),
) -> None:
    """Write the access graph (nodes, edges with kind, reason, statements and conditions)."""
    data = export(_graph(snapshot), fmt)
    if out is None:
        typer.echo(data.decode())
    else:
        write_output(out, data, "--out")
        console.print(f"wrote {out} ({len(data)} bytes)")
