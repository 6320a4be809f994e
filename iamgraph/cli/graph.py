"""CLI: the access graph's questions (who-can, what-can, path, privesc, blast-radius, exposure, sensitive, sod)
and ``graph export``. Every command reads ``--snapshot`` and prints a Rich table, or JSON with ``--json``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from iamgraph.cli.app import app, console, handle_errors
from iamgraph.cli.inputs import (
    load_snapshot,
    require_action,
    require_resource,
    resolve_principal,
    write_output,
)
from iamgraph.cli.known_context import apply_known
from iamgraph.cli.lists import ALL, LIMIT, bound, headline, more, none_found, plural, table
from iamgraph.cli.progress import phase
from iamgraph.cli.simulate import parse_context, with_region
from iamgraph.errors import InputError, NotFoundError
from iamgraph.graph import AccessGraph, build_graph
from iamgraph.graph.export import ExportFormat, export
from iamgraph.graph.types import Conditions
from iamgraph.query import blast_radius, exposure, load_rules, privesc, sensitive, sod, what_can, who_can
from iamgraph.query import serialize as ser
from iamgraph.query.incomplete import Incomplete, all_unknown, moves_incomplete
from iamgraph.query.paths import Path as GraphPath
from iamgraph.query.paths import simple_paths
from iamgraph.query.sensitive import sensitive_incomplete
from iamgraph.query.sod import sod_incomplete
from iamgraph.query.what_can import Permission, what_can_incomplete
from iamgraph.query.who_can import WhoCanResult
from iamgraph.report.conditions import conditions_text
from iamgraph.report.names import identity_center_names, resource_text
from iamgraph.snapshot import SnapshotIndex
from iamgraph.snapshot.model import Snapshot

graph_app = typer.Typer(help="Export the access graph.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")

SNAPSHOT = typer.Option(..., "--snapshot", "-s", help="Snapshot file to build the access graph from.")
JSON_OUT = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _graph(snapshot: Path) -> AccessGraph:
    snap, _ = _load(snapshot)
    return _load_and_build(snap)


def _load(snapshot: Path) -> tuple[Snapshot, SnapshotIndex]:
    """The snapshot and its index, to check the arguments before the (slower) graph build."""
    with phase("reading the snapshot"):
        snap = load_snapshot(snapshot)
        use_names_of(snap)
        return snap, SnapshotIndex(snap)


def use_names_of(snap: Snapshot) -> None:
    """Show the snapshot's Identity Center users and groups by name in what follows."""
    _NAMES.clear()
    _NAMES.update(identity_center_names(snap))


def _emit(data: Any) -> None:
    console.print_json(json.dumps(data), highlight=False)


def _conds(conds: Conditions, assumptions: tuple[str, ...] = ()) -> str:
    return conditions_text(conds, assumptions)


def _load_and_build(snap: Snapshot) -> AccessGraph:
    with phase("building the access graph"):
        return build_graph(snap)


_NAMES: dict[str, str] = {}
"""Display names of the loaded snapshot's Identity Center users and groups (set by ``_load``)."""


def _short(node: str) -> str:
    named = _NAMES.get(node)
    if named is not None:
        return named
    return resource_text(node) if node.startswith("arn:") else node


def _hops(p: GraphPath) -> str:
    if not p.hops:
        return "(itself)"
    out = [_short(p.nodes[0])]
    for e in p.hops:
        out.append(f"-[{e.kind.value}]-> {_short(e.target)}")
    # One hop a line: in a table cell a path of ARNs folds where the hops are, not in mid-ARN.
    return "\n".join(out)


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
    limit: int = LIMIT,
    show_all: bool = ALL,
    region: str | None = typer.Option(None, "--region", help="The region the request goes to "
                                      "(aws:RequestedRegion): conditions on it are decided, accesses impossible "
                                      "there are dropped."),
    context: list[str] = typer.Option(
        [], "--context", "-c", help="Known request context as key=value (as simulate takes it): conditions on "
        "these keys are decided, accesses impossible with them are dropped."),
    as_json: bool = JSON_OUT,
) -> None:
    """Every principal that can perform the action on the resource, directly or through a path."""
    if action is not None:
        action = require_action(action, allow_patterns=True)
    snap, idx = _load(snapshot)
    resource = require_resource(idx, resource)
    g = _load_and_build(snap)
    result = who_can(g, resource, action=action, access_level=access_level, any_action=any_action, paths=paths)
    known = with_region(parse_context(context), region)
    if known:
        result = _with_known(result, known)
    if as_json:
        _emit({"resources": list(result.resources), "actions": list(result.actions),
               "accesses": [ser.access(a) for a in result.accesses], "notes": list(result.notes),
               "incomplete": [ser.incomplete(x) for x in result.incomplete]})
        return
    show_who_can(result, action or access_level or "any action", resource, limit, show_all)


def show_who_can(result: WhoCanResult, what: str, resource: str, limit: int, show_all: bool) -> None:
    """Per principal: its best access (definite first, then fewest hops), how many actions and resources."""
    by_principal: dict[str, list[Any]] = {}
    for a in sorted(result.accesses, key=lambda a: a.rank()):
        by_principal.setdefault(a.principal, []).append(a)
    definite = sum(1 for accs in by_principal.values() if any(a.definite for a in accs))
    gaps = (f"; incomplete: {plural(len(result.incomplete), 'resource')} with an unknown policy"
            if result.incomplete else "")
    if not by_principal:
        none_found(f"none found: no principal can {what} on {resource}{gaps}")
    else:
        headline(f"{plural(len(by_principal), 'principal')} can {what} on {resource}: {definite} definitely, "
                 f"{len(by_principal) - definite} only under conditions ({plural(len(result.accesses), 'access', 'accesses')})"
                 f"{gaps}")
        rows, hidden = bound(list(by_principal.items()), limit, show_all)
        t = table("principal", "how", "path", "actions", "conditions", "statements")
        for principal, accs in rows:
            best = accs[0]
            acts = sorted({a.action for a in accs})
            t.add_row(_short(principal), best.how.value, _hops(best.path),
                      acts[0] if len(acts) == 1 else f"{len(acts)} ({', '.join(acts[:2])}, ...)",
                      _conds(best.conditions, best.assumptions),
                      ", ".join(f"{_short(r.policy_id)}#{r.statement_index}" for r in best.statements[:2]))
        console.print(t)
        more(hidden, "principals")
    for note in result.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    _say_incomplete(result.incomplete)


def _with_known(result: WhoCanResult, known: dict[str, Any]) -> WhoCanResult:
    kept = []
    for a in result.accesses:
        conds = apply_known(a.conditions, known)
        if conds is not None:
            kept.append(replace(a, conditions=conds))
    given = ", ".join(f"{k} = {v}" for k, v in known.items())
    return replace(result, accesses=tuple(kept), notes=(*result.notes, f"{given}: conditions on it decided"))


@app.command("what-can")
@handle_errors
def what_can_cmd(
    snapshot: Path = SNAPSHOT,
    principal: str = typer.Option(..., "--principal", "-p", help="Principal: ARN, role/name, user/name or a "
                                  "unique name."),
    limit: int = LIMIT,
    show_all: bool = ALL,
    region: str | None = typer.Option(None, "--region", help="The region the request goes to "
                                      "(aws:RequestedRegion): conditions on it are decided, permissions impossible "
                                      "there are dropped."),
    as_json: bool = JSON_OUT,
) -> None:
    """Effective permissions of a principal by service and access level, directly and through paths: its
    identity policies, and resource-based policies (bucket, queue, key policies, KMS grants, trust policies)
    that grant it access."""
    snap, idx = _load(snapshot)
    principal = resolve_principal(idx, principal)
    g = _load_and_build(snap)
    with phase(f"what {_short(principal)} can do"):
        perms = what_can(g, principal)
    gaps = what_can_incomplete(g)
    notes: list[str] = []
    known = with_region({}, region)
    if known:
        perms = _perms_with_known(perms, known)
        notes.append(", ".join(f"{k} = {v}" for k, v in known.items()) + ": conditions on it decided")
    if as_json:
        _emit({"permissions": [ser.permission(p) for p in perms], "notes": notes,
               "incomplete": [ser.incomplete(x) for x in gaps]})
        return
    show_what_can(principal, perms, limit, show_all, gaps)
    for note in notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)


def _perms_with_known(perms: list[Permission], known: dict[str, Any]) -> list[Permission]:
    """Conditions on the known keys decided (as who-can's ``_with_known``): impossible permissions dropped."""
    kept = []
    for p in perms:
        conds = apply_known(p.conditions, known)
        if conds is not None:
            kept.append(replace(p, conditions=conds, conditional=bool(conds) or bool(p.assumptions)))
    return kept


_LEVEL_ORDER = ("Permissions management", "Write", "Tagging", "Read", "List")


def show_what_can(principal: str, perms: list[Any], limit: int, show_all: bool,
                  gaps: tuple[Incomplete, ...] = ()) -> None:
    """Per service and access level: distinct actions, on how many resource patterns, through whom."""
    missing = _unknown_note(gaps)
    if not perms:
        none_found(f"none found: {principal} can do nothing the snapshot shows{missing}")
        _say_incomplete(gaps)
        return
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for p in perms:
        gr = groups.setdefault((p.service, p.access_level), {"actions": set(), "resources": set(), "via": set(),
                                                             "conditional": True})
        gr["actions"].update(p.actions)
        gr["resources"].add(p.resource)
        gr["via"].add(p.via)
        gr["conditional"] = gr["conditional"] and p.conditional
    actions = {a for p in perms for a in p.actions}
    own = {a for p in perms if p.via == principal for a in p.actions}
    via = {p.via for p in perms} - {principal}
    headline(f"{_short(principal)} can perform {plural(len(actions), 'action')} of "
             f"{plural(len({s for s, _ in groups}), 'service')}"
             + (f", {len(actions - own)} of them only through the {plural(len(via), 'other principal')} it can "
                f"act as" if via else "")
             + f" ({plural(len(perms), 'grant')}){missing}")
    order = sorted(groups.items(), key=lambda kv: (
        _LEVEL_ORDER.index(kv[0][1]) if kv[0][1] in _LEVEL_ORDER else len(_LEVEL_ORDER), -len(kv[1]["actions"]),
        kv[0][0]))
    rows, hidden = bound(order, limit, show_all)
    t = table("service", "access level", "actions", "resources", "via", "conditional")
    for (service, level), gr in rows:
        acts = sorted(gr["actions"])
        t.add_row(service, level, f"{len(acts)}: {', '.join(a.split(':', 1)[1] for a in acts[:4])}"
                  + (", ..." if len(acts) > 4 else ""),
                  next(iter(gr["resources"])) if len(gr["resources"]) == 1 else f"{len(gr['resources'])} patterns",
                  ", ".join(sorted(_short(v) for v in gr["via"])[:2]) + (", ..." if len(gr["via"]) > 2 else ""),
                  "yes" if gr["conditional"] else "no")
    console.print(t)
    more(hidden, "service/access-level groups")
    assumed: dict[str, int] = {}
    for p in perms:
        for a in p.assumptions:
            assumed[a] = assumed.get(a, 0) + 1
    for text, n in sorted(assumed.items(), key=lambda kv: -kv[1]):
        console.print(f"note: {plural(n, 'grant')} conditional on an assumption: {text}", highlight=False,
                      markup=False, soft_wrap=True)
    _say_incomplete(gaps)


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
    g = _load_and_build(snap)
    for node in (source, target):
        if node not in g.g:
            raise NotFoundError(f"the snapshot has no principal {node}")
    found = list(simple_paths(g, source, [target], paths))
    gaps = moves_incomplete(g)
    if as_json:
        _emit({"paths": [ser.path(p) for p in found], "incomplete": [ser.incomplete(x) for x in gaps]})
        return
    missing = _unknown_note(gaps)
    if not found:
        none_found(f"none found: no path from {source} to {target}{missing}")
        _say_incomplete(gaps)
        return
    definite = sum(1 for p in found if p.definite)
    headline(f"{plural(len(found), 'path')} from {_short(source)} to {_short(target)} (shortest first, at most "
             f"--paths {paths}); {definite} definite{missing}")
    t = table("#", "path", "definite", "conditions")
    for i, p in enumerate(found, 1):
        t.add_row(str(i), _hops(p), "yes" if p.definite else "no", _conds(p.conditions, p.assumptions))
    console.print(t)
    _say_incomplete(gaps)


def _unknown_note(gaps: tuple[Incomplete, ...]) -> str:
    return f"; incomplete: {plural(len(gaps), 'resource')} with an unknown policy" if gaps else ""


@app.command("privesc")
@handle_errors
def privesc_cmd(
    snapshot: Path = SNAPSHOT,
    principal: str | None = typer.Option(None, "--principal", "-p", help="Only this principal (default: all)."),
    include_admins: bool = typer.Option(False, "--include-admins", help="Also list principals already admin."),
    limit: int = LIMIT,
    show_all: bool = ALL,
    as_json: bool = JSON_OUT,
) -> None:
    """Escalation paths to admin-equivalent principals, ranked by length and conditions."""
    snap, idx = _load(snapshot)
    if principal is not None:
        principal = resolve_principal(idx, principal)
    g = _load_and_build(snap)
    found = privesc(g, principal)
    admins = sum(1 for e in found if e.kind.value == "already-admin")
    if not include_admins:
        found = [e for e in found if e.kind.value != "already-admin"]
    gaps = moves_incomplete(g)
    if as_json:
        _emit({"escalations": [ser.escalation(e) for e in found], "incomplete": [ser.incomplete(x) for x in gaps]})
        return
    show_privesc(found, 0 if include_admins else admins, limit, show_all, gaps)


def show_privesc(found: list[Any], hidden_admins: int, limit: int, show_all: bool,
                 gaps: tuple[Incomplete, ...] = ()) -> None:
    """Per principal: its best escalation (definite first, then shortest), and how many others it has."""
    by_principal: dict[str, list[Any]] = {}
    for e in sorted(found, key=lambda e: e.rank()):
        by_principal.setdefault(e.principal, []).append(e)
    admins_note = (f"; {plural(hidden_admins, 'admin-equivalent principal')} not listed (--include-admins)"
                   if hidden_admins else "") + _unknown_note(gaps)
    if not found:
        none_found(f"none found: no escalation path to admin{admins_note}")
        _say_incomplete(gaps)
        return
    definite = sum(1 for es in by_principal.values() if any(e.definite for e in es))
    headline(f"{plural(len(found), 'escalation path')} from {plural(len(by_principal), 'principal')} "
             f"({definite} definite){admins_note}")
    rows, hidden = bound(list(by_principal.items()), limit, show_all)
    t = table("principal", "account", "kind", "path", "changes", "definite", "conditions", "paths")
    for principal, es in rows:
        e = es[0]
        changes = "; ".join(
            f"{c.kind.value} via {' + '.join(c.reason.via)}"
            + (f" on {_short(c.reason.target)}" if c.reason.target else "")
            for c in e.changes
        )
        path = _hops(e.path)
        if not e.definite and e.definite_path is not None:
            path += f"\n\ndefinite in {e.definite_path.length} hops:\n{_hops(e.definite_path)}"
        t.add_row(_short(principal), e.account, e.kind.value, path, changes or "-",
                  "yes" if e.definite else "no",
                  _conds(e.conditions, e.assumptions), str(len(es)))
    console.print(t)
    more(hidden, "principals")
    _say_incomplete(gaps)


@app.command("blast-radius")
@handle_errors
def blast_cmd(
    snapshot: Path = SNAPSHOT,
    principal: str | None = typer.Option(None, "--principal", "-p", help="Compromised principal ARN."),
    access_key_id: str | None = typer.Option(None, "--access-key-id", help="Compromised access key id (AKIA...)."),
    tag: str | None = typer.Option(None, "--tag", help="Classification tag (Key=Value) marking sensitive resources."),
    limit: int = LIMIT,
    show_all: bool = ALL,
    as_json: bool = JSON_OUT,
) -> None:
    """Everything an attacker holding the principal or key reaches, and a minimal edge cut to contain it."""
    if (principal is None) == (access_key_id is None):
        raise InputError("give exactly one of --principal or --access-key-id")
    snap, idx = _load(snapshot)
    if principal is not None:
        principal = resolve_principal(idx, principal)
    g = _load_and_build(snap)
    with phase("following everything it reaches"):
        b = blast_radius(g, principal, access_key_id=access_key_id, tag=tag)
    if as_json:
        _emit(ser.blast(b))
        return
    show_blast(b, limit, show_all)


def show_blast(b: Any, limit: int, show_all: bool) -> None:
    """Containment advice first (what to cut or disable), then the count line, then the reach, bounded."""
    who = _short(b.principal) + (f" (access key {b.access_key_id})" if b.access_key_id else "")
    if b.cut:
        these = "this edge" if len(b.cut) == 1 else f"these {len(b.cut)} edges"
        headline(f"contain {who}: remove {these} (a minimal cut of everything critical it reaches):")
        for e in b.cut:
            console.print(f"  {_short(e.source)} -[{e.kind.value}]-> {_short(e.target)}  "
                          f"({' + '.join(e.reason.via)})", highlight=False, markup=False, soft_wrap=True)
    elif b.cut_note:
        headline(f"contain {who}: {b.cut_note}")
    sens = {s.resource for s in b.sensitive}
    headline(f"{who} reaches {plural(len(b.reachable), 'other principal')}, admin in "
             f"{plural(len(b.admin), 'account')}, {plural(len(sens), 'sensitive resource')}, and can rewrite "
             f"{plural(len(b.resource_takeovers), 'resource policy', 'resource policies')}"
             + (f"; incomplete: {plural(len(b.incomplete), 'resource')} not accounted for" if b.incomplete else ""))
    rows: list[tuple[str, str, str]] = []
    rows += [("admin-equivalent", esc.account, f"{esc.kind.value}: {_hops(esc.path)}") for esc in b.admin]
    rows += [(f"sensitive {s.kind.value}", _short(s.resource), f"{s.access.how.value}: {_hops(s.access.path)}")
             for s in b.sensitive]
    rows += [("can rewrite policy", _short(e.target), f"{_short(e.source)} via {' '.join(e.reason.via)}")
             for e in b.resource_takeovers]
    rows += [("acts as", _short(node), _hops(p)) for node, p in b.reachable]
    if not rows:
        none_found("none found: it reaches nothing beyond itself")
        _say_incomplete(b.incomplete)
        return
    shown, hidden = bound(rows, limit, show_all)
    t = table("what", "detail", "how")
    for row in shown:
        t.add_row(*row)
    console.print(t)
    more(hidden, "rows")
    _say_incomplete(b.incomplete)


@app.command("exposure")
@handle_errors
def exposure_cmd(snapshot: Path = SNAPSHOT, limit: int = LIMIT, show_all: bool = ALL,
                 as_json: bool = JSON_OUT) -> None:
    """Resources and roles reachable from outside the organization or publicly."""
    g = _graph(snapshot)
    found = exposure(g)
    gaps = all_unknown(g)
    if as_json:
        _emit({"exposures": [ser.exposure(x) for x in found], "incomplete": [ser.incomplete(x) for x in gaps]})
        return
    show_exposure(found, limit, show_all, gaps)


def show_exposure(found: list[Any], limit: int, show_all: bool, gaps: tuple[Incomplete, ...] = ()) -> None:
    """Most open first (public, then federated, then outside the organization), one row per grant."""
    missing = f"; incomplete: {plural(len(gaps), 'resource')} with an unknown policy" if gaps else ""
    if not found:
        none_found(f"none found: nothing is reachable from outside the organization{missing}")
        _say_incomplete(gaps)
        return
    scopes: dict[str, int] = {}
    for x in found:
        scopes[x.scope.value] = scopes.get(x.scope.value, 0) + 1
    headline(f"{plural(len({x.resource for x in found}), 'resource')} reachable from outside the organization "
             f"({', '.join(f'{n} {s}' for s, n in scopes.items())}){missing}")
    order = ("public", "federated", "outside-organization")
    rows, hidden = bound(sorted(found, key=lambda x: (order.index(x.scope.value) if x.scope.value in order
                                                      else len(order), x.resource)), limit, show_all)
    t = table("resource", "reachable by", "scope", "actions", "conditions", "statements")
    for x in rows:
        acts = ", ".join(x.actions[:3]) + (f" (+{len(x.actions) - 3})" if len(x.actions) > 3 else "")
        t.add_row(_short(x.resource), x.principal, x.scope.value, acts, _conds(x.conditions),
                  ", ".join(f"{_short(r.policy_id)}#{r.statement_index}" for r in x.statements[:2]))
    console.print(t)
    more(hidden, "grants")
    _say_incomplete(gaps)


@app.command("sensitive")
@handle_errors
def sensitive_cmd(
    snapshot: Path = SNAPSHOT,
    tag: str | None = typer.Option(None, "--tag", help="Key=Value or Key (default: common classification keys)."),
    limit: int = LIMIT,
    show_all: bool = ALL,
    as_json: bool = JSON_OUT,
) -> None:
    """Who can read, write or decrypt resources carrying a classification tag."""
    require_tag(tag, "--tag")
    g = _graph(snapshot)
    found = sensitive(g, tag)
    gaps = sensitive_incomplete(g, tag)
    if as_json:
        _emit({"accesses": [ser.sensitive_access(s) for s in found], "incomplete": [ser.incomplete(x) for x in gaps]})
        return
    show_sensitive(found, tag, limit, show_all, gaps)


def require_tag(tag: str | None, flag: str) -> None:
    """KEY or KEY=VALUE with a key: "=" or "=PII" would otherwise answer "none found" about no tag at all."""
    if tag is not None and not tag.split("=", 1)[0].strip():
        raise InputError(f"{tag!r} names no tag key (give KEY or KEY=VALUE, e.g. DataClassification=PII)",
                         source=flag)


def show_sensitive(found: list[Any], tag: str | None, limit: int, show_all: bool,
                   gaps: tuple[Incomplete, ...] = ()) -> None:
    """Per resource and kind of access: how many principals, definitely or under conditions, and who."""
    what = f"tagged {tag}" if tag else "with a classification tag"
    missing = f"; incomplete: {plural(len(gaps), 'resource')} not answered for" if gaps else ""
    if not found:
        none_found(f"none found: nobody can read, write or decrypt resources {what}{missing}")
        _say_incomplete(gaps)
        return
    principals = {s.access.principal for s in found}
    groups: dict[tuple[str, str], list[Any]] = {}
    for s in found:
        groups.setdefault((s.resource, s.kind.value), []).append(s.access)
    headline(f"{plural(len(principals), 'principal')} can read, write or decrypt "
             f"{plural(len({s.resource for s in found}), 'resource')} {what} ({plural(len(found), 'grant')}){missing}")
    order = sorted(groups.items(), key=lambda kv: (-len({a.principal for a in kv[1]}), kv[0]))
    rows, hidden = bound(order, limit, show_all)
    t = table("resource", "access", "principals", "definite", "for example")
    for (resource, kind), accs in rows:
        who = sorted({a.principal for a in accs})
        t.add_row(_short(resource), kind, str(len(who)), str(len({a.principal for a in accs if a.definite})),
                  ", ".join(_short(w) for w in who[:3]) + (", ..." if len(who) > 3 else ""))
    console.print(t)
    more(hidden, "resource/access groups")
    _say_incomplete(gaps)


@app.command("sod")
@handle_errors
def sod_cmd(
    snapshot: Path = SNAPSHOT,
    rules: Path | None = typer.Option(None, "--rules", help="YAML rules file (default: the shipped rules)."),
    principal: str | None = typer.Option(None, "--principal", "-p", help="Only this principal."),
    include_admins: bool = typer.Option(
        False, "--include-admins", help="Also list admin-equivalent principals (they conflict with every rule)."),
    limit: int = LIMIT,
    show_all: bool = ALL,
    as_json: bool = JSON_OUT,
) -> None:
    """Separation-of-duties conflicts: principals that hold capabilities a rule keeps apart."""
    snap, idx = _load(snapshot)
    if principal is not None:
        principal = resolve_principal(idx, principal)
    g = _load_and_build(snap)
    loaded = load_rules(rules)
    found = sod(g, loaded, principal=principal)
    gaps = sod_incomplete(g, loaded)
    hidden = 0 if include_admins or principal else sum(1 for c in found if c.admin)
    if hidden:
        found = [c for c in found if not c.admin]
    if as_json:
        _emit({"conflicts": [ser.conflict(c) for c in found], "incomplete": [ser.incomplete(x) for x in gaps]})
        return
    show_sod(found, hidden, limit, show_all, gaps)


_SEVERITY = ("critical", "high", "medium", "low", "info")


def show_sod(found: list[Any], hidden_admins: int, limit: int, show_all: bool,
             gaps: tuple[Incomplete, ...] = ()) -> None:
    """Per rule (most severe first): how many principals, then the conflicts with their evidence, bounded."""
    admins_note = (f"; {plural(hidden_admins, 'conflict')} of admin-equivalent principals not listed "
                   "(--include-admins)" if hidden_admins else "")
    admins_note += f"; incomplete: {plural(len(gaps), 'resource')} with an unknown policy" if gaps else ""
    if not found:
        none_found(f"none found: no separation-of-duties conflict{admins_note}")
        _say_incomplete(gaps)
        return
    per_rule: dict[str, list[Any]] = {}
    for c in found:
        per_rule.setdefault(c.rule.id, []).append(c)
    headline(f"{plural(len(found), 'conflict')} of {plural(len(per_rule), 'rule')} held by "
             f"{plural(len({c.principal for c in found}), 'principal')}{admins_note}")
    def sev(c: Any) -> int:
        return _SEVERITY.index(c.rule.severity) if c.rule.severity in _SEVERITY else len(_SEVERITY)
    rules = sorted(per_rule.items(), key=lambda kv: (sev(kv[1][0]), -len(kv[1]), kv[0]))
    t = table("rule", "severity", "principals", "definite")
    for rule_id, cs in rules:
        t.add_row(rule_id, cs[0].rule.severity, str(len(cs)), str(sum(1 for c in cs if c.definite)))
    console.print(t)
    ordered = sorted(found, key=lambda c: (sev(c), 0 if c.definite else 1, c.rule.id, c.principal))
    rows, hidden = bound(ordered, limit, show_all)
    t = table("rule", "principal", "evidence", "definite")
    for c in rows:
        ev = "\n".join(f"{e.capability}: {e.action} on {_short(e.resource)}"
                       + (f" via {_hops(e.path)}" if e.path.hops else "") for e in c.evidence)
        t.add_row(c.rule.id, _short(c.principal) + (f"\non {_short(c.resource)}" if c.resource else ""), ev,
                  "yes" if c.definite else "no")
    console.print(t)
    more(hidden, "conflicts")
    _say_incomplete(gaps)


def _say_incomplete(gaps: tuple[Incomplete, ...]) -> None:
    """One note per resource an answer could not account for (never bounded: each may hide access)."""
    for gap in gaps:
        console.print(f"note: {gap.text()}", markup=False, highlight=False, soft_wrap=True)


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
