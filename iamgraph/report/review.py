"""The security-review data behind ``iamgraph report``: plain rows and path graphs, no markup.

The HTML renderer (``iamgraph.report.html``) draws what this module gathers; other renderers can
reuse it. Dates are judged against the snapshot's collection time, never the wall clock, so a
report of an old snapshot says what was true then.
"""

from __future__ import annotations

import difflib
import functools
import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from iamgraph.eval.types import StatementRef
from iamgraph.graph import AccessGraph, Edge, build_graph
from iamgraph.query import Conflict, exposure, load_rules, privesc, sensitive, sod
from iamgraph.query.paths import Path as GraphPathResult
from iamgraph.query.privesc import Escalation, EscalationKind
from iamgraph.report.names import (
    identity_center_names,
    is_stand_in,
    policy_names,
    resource_text,
    statement_text,
)
from iamgraph.snapshot.model import Snapshot

if TYPE_CHECKING:
    from iamgraph.recommend import RecommendConfig

P = ParamSpec("P")
R = TypeVar("R")

# Credential report thresholds. AWS's CIS Foundations controls: IAM.3 keys rotated within 90 days,
# IAM.8/IAM.22 credentials unused for 45-90 days removed.
# https://docs.aws.amazon.com/securityhub/latest/userguide/iam-controls.html
KEY_MAX_AGE_DAYS = 90
UNUSED_DAYS = 90


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphNode:
    id: str
    label: str
    kind: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphEdge:
    source: str
    target: str
    label: str
    change: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PathGraph:
    title: str
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    definite: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    id: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Diff:
    title: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Review:
    title: str
    generated_from: str
    collected_at: str
    summary: tuple[tuple[str, str], ...]
    admins: Table
    paths: tuple[PathGraph, ...]
    privesc: Table
    exposure: Table
    sensitive: Table
    sod: Table
    unused: Table
    recommendations: tuple[Diff, ...]
    credentials: Table
    notes: tuple[str, ...] = field(default_factory=tuple)
    drift: Table | None = None
    """With a baseline snapshot: what changed since it (``iamgraph diff``'s comparison)."""


_NAMES: dict[str, str] = {}
"""Identity Center users and groups of the snapshot under review, by name (set by ``build_review``)."""
_POLICIES: dict[str, str] = {}
"""SCPs and RCPs of the snapshot under review, by name (set by ``build_review``)."""


def short(arn: str) -> str:
    """A readable name for a graph node (``role/app`` in account ``1234``)."""
    if arn in _NAMES:
        return _NAMES[arn]
    if is_stand_in(arn):
        return resource_text(arn)
    if arn.startswith("arn:"):
        parts = arn.split(":", 5)
        if len(parts) == 6:
            res = parts[5]
            name = res.rsplit("/", 1)[-1] if res.count("/") > 1 else res
            return f"{name} ({parts[4]})" if parts[4] else name
    return arn


def _statements(refs: tuple[StatementRef, ...]) -> str:
    """The statements that decided one step, one per line (Allow statements that grant it, Deny statements whose
    conditions it must meet); never re-evaluated here: they are what the engine answered with."""
    return "\n".join(statement_text(r, _POLICIES) for r in refs) or "-"


def _hop_lines(hops: tuple[Edge, ...], prefix: str = "") -> list[str]:
    lines: list[str] = []
    for e in hops:
        lines.append(f"{prefix}{e.kind.value} {short(e.source)} → {short(e.target)}"
                     + (f" via {' + '.join(e.reason.via)}" if e.reason.via else "")
                     + (f" on {short(e.reason.target)}" if e.reason.target else ""))
        lines.extend(f"{prefix}  {statement_text(r, _POLICIES)}" for r in e.statements)
    return lines


def _escalation_statements(esc: Escalation) -> str:
    """Every step of an escalation with the statements that allow it: the path's hops, the paths to the
    principals that make the changes, and the changes themselves."""
    lines = _hop_lines(esc.path.hops)
    for p in esc.change_paths:
        lines += _hop_lines(p.hops)
    lines += _hop_lines(esc.changes)
    return "\n".join(lines) or "-"


def _path_statements(path: GraphPathResult, final: tuple[StatementRef, ...]) -> str:
    """How a principal reaches an access: its hops' statements, then the statements of the access itself."""
    lines = _hop_lines(path.hops)
    lines += [statement_text(r, _POLICIES) for r in final]
    return "\n".join(lines) or "-"


def _sod_evidence(c: Conflict) -> str:
    """Each side of a conflict: the capability, the action and resource that show it, the path to the principal
    holding it (when not the principal itself) and the deciding statements."""
    lines: list[str] = []
    for e in c.evidence:
        lines.append(f"{e.capability}: {e.action} on {short(e.resource)}"
                     + (f" as {short(e.holder)}" if e.holder != c.principal else ""))
        lines += _hop_lines(e.path.hops, "  ")
        lines += [f"  {statement_text(r, _POLICIES)}" for r in e.statements]
    return "\n".join(lines) or "-"


def _kind(graph: AccessGraph, node: str) -> str:
    return graph.node_kind(node).value


def _path_graph(graph: AccessGraph, esc: Escalation) -> PathGraph:
    nodes: dict[str, GraphNode] = {}
    edges: list[GraphEdge] = []

    def node(n: str) -> None:
        if n not in nodes:
            nodes[n] = GraphNode(id=n, label=short(n), kind=_kind(graph, n))

    def edge(e: Edge, change: bool = False) -> None:
        node(e.source)
        node(e.target)
        edges.append(GraphEdge(source=e.source, target=e.target, label=e.kind.value, change=change))

    for n in esc.path.nodes:
        node(n)
    for e in esc.path.hops:
        edge(e)
    for p in esc.change_paths:
        for e in p.hops:
            edge(e)
    for e in esc.changes:
        if e.source != e.target:
            edge(e, change=True)
    if esc.kind is EscalationKind.CHANGE:
        # The changed principal becomes admin-equivalent once the change is made: draw that as
        # the last, dashed hop to the account's admin node (a self-change has no other edge).
        changed = esc.path.nodes[-1]
        admin = f"admin:{esc.account}"
        nodes.setdefault(admin, GraphNode(id=admin, label=admin, kind="AdminEquivalent"))
        kinds = sorted({e.kind.value for e in esc.changes}) or ["change"]
        edges.append(GraphEdge(source=changed, target=admin, label=" + ".join(kinds), change=True))
    title = f"{short(esc.principal)} → {short(esc.admin)} ({esc.kind.value}, {esc.length} step(s))"
    return PathGraph(title=title, nodes=tuple(nodes.values()), edges=tuple(edges), definite=esc.definite)


def _parse_time(text: str | None) -> datetime | None:
    if not text or text in ("N/A", "no_information", "not_supported"):
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def credential_rows(snapshot: Snapshot, now: datetime) -> list[tuple[str, ...]]:
    """Findings from the credential report (column names as AWS documents them:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_getting-report.html)."""
    out: list[tuple[str, ...]] = []
    for acct in snapshot.accounts:
        for row in acct.credential_report:
            user = row.get("user", "?")
            is_root = user == "<root_account>"
            who = f"root ({acct.account_id})" if is_root else f"{user} ({acct.account_id})"
            if is_root:
                if row.get("mfa_active") == "false":
                    out.append((who, "root without MFA", "critical", "mfa_active = false"))
                for n in ("1", "2"):
                    if row.get(f"access_key_{n}_active") == "true":
                        out.append((who, "root access key", "critical", f"access_key_{n}_active = true"))
                continue
            if row.get("password_enabled") == "true":
                if row.get("mfa_active") == "false":
                    out.append((who, "console password without MFA", "high", "mfa_active = false"))
                used = _parse_time(row.get("password_last_used"))
                if used is None:
                    out.append((who, "unused password", "medium", "password never used"))
                elif now - used > timedelta(days=UNUSED_DAYS):
                    out.append((who, "unused password", "medium", f"last used {used:%Y-%m-%d}"))
            for n in ("1", "2"):
                if row.get(f"access_key_{n}_active") != "true":
                    continue
                rotated = _parse_time(row.get(f"access_key_{n}_last_rotated"))
                if rotated is not None and now - rotated > timedelta(days=KEY_MAX_AGE_DAYS):
                    days = (now - rotated).days
                    out.append(
                        (
                            who,
                            "old access key",
                            "high" if days > 365 else "medium",
                            f"key {n} rotated {rotated:%Y-%m-%d} ({days} days)",
                        )
                    )
                last = _parse_time(row.get(f"access_key_{n}_last_used_date"))
                if last is None:
                    out.append((who, "unused access key", "medium", f"key {n} never used"))
                elif now - last > timedelta(days=UNUSED_DAYS):
                    out.append((who, "unused access key", "medium", f"key {n} last used {last:%Y-%m-%d}"))
    return out


GC_ALLOCATIONS = 20_000
"""While a review is built, the cyclic garbage collector's youngest generation is collected after this many
allocations (CPython's default is 700)."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Python's cyclic garbage collector run less often while a review is built, and never over what survived a
    collection (its thresholds and frozen objects as they were after).

    A review keeps the snapshot, the graph, the action catalog and parliament's data alive (about 300 MB for the
    demo organization), and allocates millions of short-lived objects while it asks its questions. At CPython's
    default threshold the collector ran 2,670 times during ``iamgraph report --db`` on the demo organization, 7 of
    them over the whole heap: 1.2 of 6.2 CPU-s (``gc.callbacks``). Collecting the youngest generation every 20,000
    allocations instead: 197 collections, about 0.5 CPU-s, the same peak memory (326 MB against 322 MB). Cycles
    are still collected, only in larger batches (https://docs.python.org/3/library/gc.html#gc.set_threshold).

    What is alive when the review starts, and what survives a collection during it, is moved to the permanent
    generation (``gc.freeze``, a constant-time splice of the collector's lists): the older generations' collections
    walked the review's long-lived tables again and again (3 collections of the middle generation, 0.17 CPU-s of
    the 0.31 the collector still took). Cycles among those objects that die during the review are collected after
    it (``gc.unfreeze`` gives them back to the oldest generation); peak memory did not move (317-325 MB both ways).
    A process that froze objects itself (``gc.get_freeze_count()`` above 0) keeps its own arrangement: only the
    thresholds change then. https://docs.python.org/3/library/gc.html#gc.freeze
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_ALLOCATIONS), *old[1:])
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
        gc.callbacks.append(_freeze_survivors)
    try:
        yield
    finally:
        if freeze:
            gc.callbacks.remove(_freeze_survivors)
            gc.unfreeze()
        gc.set_threshold(*old)


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    if phase == "stop":
        gc.freeze()


def _with_fewer_collections(f: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(f)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with fewer_collections():
            return f(*args, **kwargs)

    return run


@_with_fewer_collections
def build_review(
    snapshot: Snapshot,
    *,
    source: str = "<snapshot>",
    usage_db: str | Path | None = None,
    sensitive_tags: tuple[str, ...] = ("DataClassification",),
    max_paths: int = 25,
    max_recommendations: int = 10,
    usage_principals: tuple[str, ...] = (),
    recommend_config: RecommendConfig | None = None,
    max_rows: int = 5000,
    baseline: Snapshot | None = None,
    baseline_source: str = "<baseline>",
) -> Review:
    now = _parse_time(snapshot.collected_at) or datetime.now(UTC)
    _NAMES.clear()
    _NAMES.update(identity_center_names(snapshot))
    _POLICIES.clear()
    _POLICIES.update(policy_names(snapshot))
    graph = build_graph(snapshot)
    notes: list[str] = []
    drift_table = _drift_table(build_graph(baseline), graph, baseline_source, baseline) if baseline else None

    escalations = privesc(graph)
    admins = [e for e in escalations if e.kind is EscalationKind.ADMIN]
    paths = [e for e in escalations if e.kind is not EscalationKind.ADMIN]
    admin_rows = tuple(
        (_NAMES.get(e.principal, e.principal), e.account, "yes" if e.definite else "if conditions hold",
         _escalation_statements(e))
        for e in admins
    )
    privesc_rows = tuple(
        (
            _NAMES.get(e.principal, e.principal),
            e.kind.value,
            short(e.admin),
            str(e.length),
            " → ".join(short(n) for n in e.path.nodes),
            "yes" if e.definite else "if conditions hold",
            _escalation_statements(e),
        )
        for e in paths
    )
    graphs = tuple(_path_graph(graph, e) for e in paths[:max_paths])
    if len(paths) > max_paths:
        notes.append(f"{len(paths)} escalation paths; the first {max_paths} are drawn, all are in the table")

    exp_rows = tuple(
        (
            x.resource,
            x.resource_type,
            x.principal,
            x.scope.value,
            ", ".join(x.actions),
            "yes" if x.definite else "if conditions hold",
            _path_statements(x.path, x.statements) if x.path else _statements(x.statements),
        )
        for x in exposure(graph)
    )

    sens_rows: list[tuple[str, ...]] = []
    for tag in sensitive_tags:
        for s in sensitive(graph, tag):
            if not s.access.holder.decision.possible and s.access.principal == "*":
                continue
            tags = ", ".join(f"{k}={v}" for k, v in sorted(s.tags.items()))
            sens_rows.append(
                (s.resource, tags, s.kind.value, _NAMES.get(s.access.principal, s.access.principal),
                 s.access.action, s.access.how.value, _path_statements(s.access.path, s.access.statements))
            )

    sod_rows = tuple(
        (_NAMES.get(c.principal, c.principal), c.rule.id, c.rule.severity, c.rule.title,
         resource_text(c.resource) if c.resource and is_stand_in(c.resource) else c.resource or "",
         "yes" if c.admin else "no", _sod_evidence(c))
        for c in sod(graph, load_rules())
    )

    unused_rows: list[tuple[str, ...]] = []
    diffs: list[Diff] = []
    unused_note = "give --db DB (from `iamgraph usage ingest`) for unused permissions and recommendations"
    if usage_db is not None:
        unused_note = ""
        unused_rows, diffs, more = _usage_sections(
            snapshot, usage_db, now, max_recommendations, usage_principals, recommend_config
        )
        notes.extend(more)
        if len(unused_rows) > max_rows:
            notes.append(
                f"{len(unused_rows)} unused-permission findings; the table holds the first {max_rows}"
            )
            unused_rows = unused_rows[:max_rows]

    counts = (
        ("accounts", str(len(snapshot.accounts))),
        ("IAM users", str(sum(len(a.users) for a in snapshot.accounts))),
        ("IAM roles", str(sum(len(a.roles) for a in snapshot.accounts))),
        ("admin-equivalent principals", str(len(admins))),
        ("privilege-escalation paths", str(len(paths))),
        ("exposed resources", str(len({r[0] for r in exp_rows}))),
        ("SoD conflicts", str(len(sod_rows))),
        ("credential findings", str(len(credential_rows(snapshot, now)))),
    )
    return Review(
        title="iamgraph security review",
        generated_from=source,
        collected_at=snapshot.collected_at,
        summary=counts,
        admins=Table(id="admins", columns=("principal", "account", "definite", "granted by"), rows=admin_rows),
        paths=graphs,
        privesc=Table(
            id="privesc",
            columns=("principal", "kind", "ends as", "steps", "path", "definite", "deciding statements"),
            rows=privesc_rows,
        ),
        exposure=Table(
            id="exposure",
            columns=("resource", "type", "principal", "scope", "actions", "definite", "deciding statements"),
            rows=exp_rows,
        ),
        sensitive=Table(
            id="sensitive",
            columns=("resource", "tags", "access", "principal", "action", "how", "deciding statements"),
            rows=tuple(sens_rows),
            note=f"resources tagged {', '.join(sensitive_tags)}",
        ),
        sod=Table(
            id="sod",
            columns=("principal", "rule", "severity", "title", "resource", "also admin", "evidence"),
            rows=sod_rows,
        ),
        unused=Table(
            id="unused",
            columns=("principal", "finding", "severity", "subject", "reason"),
            rows=tuple(unused_rows),
            note=unused_note,
        ),
        recommendations=tuple(diffs),
        credentials=Table(
            id="credentials",
            columns=("who", "finding", "severity", "evidence"),
            rows=tuple(credential_rows(snapshot, now)),
            note=f"from the IAM credential report; keys older than {KEY_MAX_AGE_DAYS} days, "
            f"credentials unused for {UNUSED_DAYS} days (as of {now:%Y-%m-%d})",
        ),
        notes=tuple(notes),
        drift=drift_table,
    )


def _drift_table(old: AccessGraph, new: AccessGraph, source: str, baseline: Snapshot) -> Table:
    """The findings that appeared, went away or changed definiteness since the baseline (``iamgraph diff``)."""
    from iamgraph.change.drift import drift

    d = drift(old, new)
    sections: tuple[tuple[str, Any, Any], ...] = (
        ("admin-equivalent", d.admins, lambda e: (e.principal, f"account {e.account}")),
        ("escalation path", d.escalations, lambda e: (e.principal, f"{e.kind.value} to {short(e.admin)} "
                                                      f"({e.length} steps)")),
        ("exposure", d.exposure, lambda x: (x.principal, f"{x.scope.value} → {x.resource}")),
        ("SoD conflict", d.sod, lambda c: (c.principal, c.rule.id + (f" on {c.resource}" if c.resource else ""))),
        ("sensitive data", d.sensitive, lambda s: (s.access.principal, f"{s.kind.value} {s.resource}")),
    )
    rows: list[tuple[str, ...]] = []
    for name, delta, cells in sections:
        for change, items in (("new", delta.added), ("gone", delta.removed), ("now definite", delta.now_definite),
                              ("now conditional", delta.now_conditional)):
            rows.extend((name, change, *cells(x)) for x in items)
    note = f"compared with {source} (collected {baseline.collected_at})"
    if d.skipped_old or d.skipped_new:
        note += (f"; incomplete: {d.skipped_old} question(s) on the baseline and {d.skipped_new} on this snapshot "
                 "could not be answered")
    return Table(id="drift", columns=("finding", "change", "principal", "detail"), rows=tuple(rows), note=note)


def _usage_sections(
    snapshot: Snapshot, usage_db: str | Path, now: datetime, limit: int, only: tuple[str, ...],
    config: RecommendConfig | None = None,
) -> tuple[list[tuple[str, ...]], list[Diff], list[str]]:
    """``config``: the project config's ``recommend`` and ``evidence.logged`` sections, as ``iamgraph recommend``
    and ``iamgraph unused`` read them (what each account and region's trails log decides what may be unused)."""
    from iamgraph.recommend import RecommendConfig, Recommender
    from iamgraph.snapshot import SnapshotIndex
    from iamgraph.usage import UsageStore
    from iamgraph.usage.unused import UnusedAnalyzer

    notes: list[str] = []
    store = UsageStore(usage_db, read_only=True)
    try:
        config = config or RecommendConfig()
        report = UnusedAnalyzer(snapshot, store, now=now, logged=config.logged).run(principals=only or None)
        notes.extend(report.notes)
        # Most severe first, so a capped table keeps what matters.
        ranked = sorted(report.findings, key=lambda f: (-f.severity.rank, f.principal_arn, f.subject))
        rows: list[tuple[str, ...]] = [
            (f.principal_arn, f.kind.value, f.severity.value, f.subject, f.reason) for f in ranked
        ]
        principals = []
        for f in report.findings:
            # "admin-grant" summarises a `*`-on-`*` principal's unused services in one finding.
            if f.principal_arn not in principals and f.kind.value in ("unused-service", "unused-action", "admin-grant"):
                principals.append(f.principal_arn)
        rec = Recommender(SnapshotIndex(snapshot), store, now=now, config=config)
        diffs: list[Diff] = []
        for arn in principals[:limit]:
            try:
                r = rec.recommend(arn)
            except Exception as exc:
                notes.append(f"no recommendation for {arn}: {exc}")
                continue
            for p in r.proposals:
                if not p.proposed:
                    continue
                before = json.dumps(p.original, indent=2, sort_keys=True).splitlines()
                after: list[str] = []
                for doc in p.proposed:
                    after += json.dumps(doc, indent=2, sort_keys=True).splitlines()
                text = "\n".join(
                    difflib.unified_diff(before, after, p.name, f"{p.name} (proposed)", lineterm="")
                )
                status = getattr(p.status, "value", str(p.status))
                diffs.append(Diff(title=f"{short(arn)}: {p.name} ({status})", text=text))
    finally:
        store.close()
    return rows, diffs, notes
