"""Judge a grant before anyone makes it: the new access it creates, the escalation paths it opens, the SoD
conflicts, the exposure outside the organization, parliament findings, a least-privilege alternative scoped to
the stated need, and a deterministic verdict (approve, review, deny) with machine-readable reasons.

Method (each step through the one engine and the one graph, never a second opinion):
1. Apply the grant to a copy of the snapshot (``iamgraph.change.grant``).
2. New access: for every action the grant's Allow statements can match (expanded with the catalog) and every
   snapshot resource of a type that action works on (plus the resources the statement names), ask the engine in
   discovery mode before and after; report the pairs possible only after. Bounded by ``Limits``.
3. Privilege escalation and exposure: the access graph of the changed copy against the base graph.
4. SoD conflicts the subject has after and not before; parliament findings on the granted documents.
5. A least-privilege alternative scoped to the stated need, verified with the engine.
6. Verdict: deny (admin or a new path to admin, public and definite exposure), review (SoD, lint, sensitive
   data, broader than the need, incomplete analysis), approve otherwise. Everything is sorted, so the same
   request on the same snapshot gives the same answer.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from iamgraph.catalog import get_catalog
from iamgraph.change.grant import (
    Applied,
    IdentityCenterPrincipal,
    InlinePolicyGrant,
    Need,
    PolicyRemoval,
    TrustPolicyEdit,
    What,
    Who,
    apply_grant,
)
from iamgraph.errors import IamGraphError, InputError
from iamgraph.eval import Decision, Mode, SnapshotEvaluator
from iamgraph.eval.types import ResidualCondition
from iamgraph.model.arn import account_of
from iamgraph.model.policy import parse_policy
from iamgraph.query.sensitive import classification
from iamgraph.snapshot import Snapshot, SnapshotIndex

if TYPE_CHECKING:
    from iamgraph.graph import AccessGraph
    from iamgraph.query.privesc import Escalation
    from iamgraph.query.sod import Conflict

LINT_REVIEW = frozenset({"MEDIUM", "HIGH", "CRITICAL"})


class Verdict(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    DENY = "deny"


_ORDER = (Verdict.DENY, Verdict.REVIEW, Verdict.APPROVE)


class Base(Protocol):
    """The snapshot a change is judged against, with what is derived from it (built once, shared)."""

    snapshot: Snapshot
    index: SnapshotIndex
    evaluator: SnapshotEvaluator
    cache: dict[str, Any]
    graph_build_seconds: float | None

    def graph(self) -> AccessGraph: ...


@dataclass(slots=True)
class SnapshotBase:
    """A ``Base`` over a snapshot read from a file (the CLI's)."""

    snapshot: Snapshot
    index: SnapshotIndex = field(init=False)
    evaluator: SnapshotEvaluator = field(init=False)
    cache: dict[str, Any] = field(default_factory=dict)
    graph_build_seconds: float | None = None
    _graph: AccessGraph | None = None

    def __post_init__(self) -> None:
        self.index = SnapshotIndex(self.snapshot)
        self.evaluator = SnapshotEvaluator(self.index)

    def graph(self) -> AccessGraph:
        if self._graph is None:
            from iamgraph.graph import build_graph

            start = time.perf_counter()
            self._graph = build_graph(self.snapshot)
            self.graph_build_seconds = time.perf_counter() - start
        return self._graph


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_grant_actions: int = 5000
    max_diff_checks: int = 200_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    code: str
    """Stable: grants_admin, opens_privilege_escalation, exposes_outside_org, grant_reaches_outsiders,
    creates_sod_conflict, lint_findings, new_sensitive_access, broader_than_need, need_not_covered,
    incomplete_analysis, new_conditional_access, no_new_access (docs/api.md)."""
    effect: Verdict
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAccess:
    action: str
    resource: str
    access_level: str | None
    before: str
    """``denied`` or ``conditional``."""
    definite: bool
    conditions: tuple[tuple[ResidualCondition, ...], ...]
    sensitive: str | None
    """The resource's classification tag value, when it is classified sensitive."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LintFinding:
    issue: str
    title: str
    severity: str
    location: str
    detail: str
    policy: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Alternative:
    policy: dict[str, Any]
    verified: bool
    covers_need: tuple[str, ...]
    not_covered: tuple[str, ...]
    already_granted: tuple[str, ...]
    removed_from_grant_actions: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    subject: str
    verdict: Verdict
    reasons: tuple[Reason, ...]
    new_access: tuple[NewAccess, ...]
    new_access_truncated: bool
    checked_pairs: int
    actions_considered: int
    escalations: tuple[Escalation, ...]
    """The subject's best new escalation per account (none before in that account); for a trust edit or a
    removal, every other principal's new escalations."""
    admin_after: bool
    sod_conflicts: tuple[Conflict, ...]
    lint: tuple[LintFinding, ...]
    pairs_after: int
    already_granted: int
    alternative: Alternative | None
    base_build_seconds: float | None
    after_build_seconds: float
    notes: tuple[str, ...]


Checkpoint = Callable[[], None]


def _no_checkpoint() -> None:
    return None


def evaluate_grant(
    base: Base,
    who: Who,
    what: What,
    *,
    need: Need | None = None,
    limits: Limits | None = None,
    checkpoint: Checkpoint = _no_checkpoint,
    full_build: bool = False,
) -> Evaluation:
    """The judgement of one grant against ``base``. ``checkpoint`` is called between steps (and every 64
    engine questions) so a caller can stop a long evaluation by raising from it. ``full_build`` builds the
    changed snapshot's graph from nothing instead of from the base graph's decisions (same answer; tests
    and benchmarks compare the two)."""
    from iamgraph.gcpause import without_cyclic_gc

    # Beside a large base graph every collection of the oldest generation walks it all again.
    with without_cyclic_gc():
        return _evaluate(base, who, what, need=need, limits=limits or Limits(), checkpoint=checkpoint,
                         full_build=full_build)


def _evaluate(base: Base, who: Who, what: What, *, need: Need | None, limits: Limits, checkpoint: Checkpoint,
              full_build: bool) -> Evaluation:
    applied = apply_grant(base.snapshot, base.index, who, what)
    notes = list(applied.notes)
    reasons: list[Reason] = []
    actions = grant_actions(applied.documents)
    checkpoint()

    from iamgraph.graph import build_graph
    from iamgraph.graph.incremental import rebuild

    base_graph = base.graph()
    checkpoint()
    # The base side of every comparison first (kept per base graph): the incremental build below then
    # reuses the engine answers those questions asked, for every principal the change does not touch.
    _base_answers(base_graph, applied)
    checkpoint()
    t0 = time.perf_counter()
    if full_build:
        after_graph = build_graph(applied.snapshot)
    else:
        # The same graph a full build gives, reusing every engine decision of the base build the change
        # cannot alter (iamgraph.graph.incremental; docs/change.md).
        after_graph, _ = rebuild(base_graph, applied.snapshot)
    after_seconds = time.perf_counter() - t0
    checkpoint()
    # The diff asks each side through its graph's build context: the same engine answer ``SnapshotEvaluator.ask``
    # gives, shared with the build's (the changed side's are the base's for every principal the change does not
    # touch) and memoised across resources the engine provably sees alike (``BuildContext.check``).
    after_ev = after_graph.ctx.ev
    # The base side's new answers are kept for this judgement only (the base graph serves many).
    scratch: dict[tuple[object, ...], Any] = {}
    diff = new_access(base, applied, after_graph.ctx.ask_each,
                      lambda p, a, rs: base_graph.ctx.ask_each(p, a, rs, scratch), actions, limits, checkpoint)
    escalations, admin_after, esc_reasons = _escalations(base_graph, after_graph, applied)
    if isinstance(what, TrustPolicyEdit | PolicyRemoval):
        # Such a change gives the subject nothing; what it can open is a path for someone else.
        others, other_reasons = _others(base_graph, after_graph, applied)
        escalations.extend(others)
        esc_reasons.extend(other_reasons)
    reasons.extend(esc_reasons)
    reasons.extend(_exposure(base_graph, after_graph, applied, bool(diff.entries)))
    sod_new, sod_notes = _sod(base_graph, after_graph, applied)
    notes.extend(sod_notes)
    for c in sod_new:
        reasons.append(Reason(code="creates_sod_conflict", effect=Verdict.REVIEW,
                              message=f"{c.principal} would hold both sides of SoD rule {c.rule.id} ({c.rule.title})",
                              data={"rule": c.rule.id, "severity": c.rule.severity}))
    checkpoint()
    lint_out = _lint(applied)
    reasons.extend(_review_reasons(diff, lint_out))
    alternative = None
    if need is not None:
        alternative, alt_reasons = _alternative(base, who, need, applied, after_ev, actions, diff, checkpoint)
        reasons.extend(alt_reasons)
    if not diff.entries and not escalations and not sod_new:
        reasons.append(Reason(code="no_new_access", effect=Verdict.APPROVE,
                              message="the grant gives nothing the principal could not already do"))
    if any(not e.definite for e in diff.entries):
        reasons.append(Reason(code="new_conditional_access", effect=Verdict.APPROVE,
                              message="some new access depends on request context (see conditions)"))
    reasons.sort(key=lambda r: (_ORDER.index(r.effect), r.code, r.message))
    return Evaluation(
        subject=applied.subject,
        verdict=verdict_of(reasons),
        reasons=tuple(reasons),
        new_access=tuple(diff.entries),
        new_access_truncated=diff.truncated,
        checked_pairs=diff.checked,
        actions_considered=diff.actions,
        escalations=tuple(escalations),
        admin_after=admin_after,
        sod_conflicts=tuple(sod_new),
        lint=tuple(lint_out),
        pairs_after=diff.possible_after,
        already_granted=diff.possible_before,
        alternative=alternative,
        base_build_seconds=base.graph_build_seconds,
        after_build_seconds=after_seconds,
        notes=tuple(sorted(set(notes))),
    )


def preload(base: Base | None = None) -> None:
    """Pay once, ahead of the first judgement, what every judgement shares and only the first one would otherwise
    pay for. Per process: parliament's import and data (the lint step), the catalog's ARN-format index (the
    new-access diff's resource pool) and the shipped SoD rules. With ``base``, per base snapshot: its graph, the
    diff's resource pool, and the base graph's whole-graph structures the comparisons read (``prepare``). The API
    server calls it when it warms the graph at start; nothing in a judgement depends on it having run."""
    from iamgraph.lint import lint
    from iamgraph.query.sod import load_rules

    get_catalog().resource_types_for_arn("arn:aws:s3:::iamgraph-preload")
    lint({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                   "Resource": "arn:aws:s3:::iamgraph-preload/*"}]})
    with contextlib.suppress(IamGraphError):  # a judgement reports it
        load_rules()
    if base is not None:
        _resource_pool(base)
        prepare(base.graph())


def prepare(graph: AccessGraph) -> None:
    """The base graph's whole-graph structures a judgement's comparisons read, computed once per base graph and
    kept on it: its edges by account (the changed graph's overlay finds those it recomputes there), the capability
    edges that need no condition (paths to admin, SoD routes; the changed graph derives its own from them), the
    edges that change a principal's permissions and the group joins (escalations), and every role outsiders can
    become (exposure).
    What depends on the subject is computed per judgement."""
    from iamgraph.graph.incremental import edges_by_account
    from iamgraph.query.changes import join_edges, modifiers
    from iamgraph.query.paths import definite_acts

    edges_by_account(graph)
    definite_acts(graph)
    modifiers(graph)
    join_edges(graph)
    _base_role_exposures(graph)
    _sod_actions(graph)


def _sod_actions(graph: AccessGraph) -> None:
    """Who holds each action of the shipped SoD rules in their own policies, read once from the base graph's candidate
    index (``CandidateIndex.principals_with``): SoD of a subject then finds each principal it can act as there, and so
    does the changed graph's index for every principal the change did not touch."""
    from iamgraph.query.sod import load_rules

    try:
        rules = load_rules()
    except IamGraphError:
        return  # a judgement reports it
    for rule in rules:
        for cap in rule.capabilities:
            for action in cap.actions:
                graph.ctx.candidates.principals_with(action)


def verdict_of(reasons: list[Reason]) -> Verdict:
    """The strictest effect any reason asks for (approve when none asks for more)."""
    for v in _ORDER:
        if any(r.effect is v for r in reasons):
            return v
    return Verdict.APPROVE


def _review_reasons(diff: Diff, lint_out: list[LintFinding]) -> list[Reason]:
    out: list[Reason] = []
    serious = sorted({f.issue for f in lint_out if f.severity in LINT_REVIEW})
    if serious:
        out.append(Reason(code="lint_findings", effect=Verdict.REVIEW,
                          message=f"parliament reports {', '.join(serious)} on the granted policy",
                          data={"issues": serious}))
    sensitive = sorted({(e.resource, e.sensitive) for e in diff.entries if e.sensitive})
    if sensitive:
        out.append(Reason(code="new_sensitive_access", effect=Verdict.REVIEW,
                          message=f"new access to {len(sensitive)} resource(s) classified "
                          f"{', '.join(sorted({s for _, s in sensitive}))}",
                          data={"resources": [r for r, _ in sensitive]}))
    if diff.truncated or diff.errors:
        out.append(Reason(code="incomplete_analysis", effect=Verdict.REVIEW,
                          message="the new-access diff is incomplete (over the analysis limits or engine "
                          "errors); unknown is not safe",
                          data={"truncated": diff.truncated, "errors": diff.errors}))
    return out


# ------------------------------------------------------------------------------------------- new access


def _resource_pool(base: Base) -> dict[tuple[str, str], list[str]]:
    """(service, resource type) -> snapshot ARNs of that type; cached per base."""
    pool: dict[tuple[str, str], list[str]] | None = base.cache.get("rt_pool")
    if pool is None:
        cat = get_catalog()
        idx = base.index
        pool = {}
        arns = sorted({*idx.resources, *idx.roles, *idx.users, *idx.groups, *idx.compute,
                       *(a for a in idx.policies if account_of(a) not in (None, "aws"))})
        for arn in arns:
            for svc, info in cat.resource_types_for_arn(arn):
                pool.setdefault((svc, info.name.lower()), []).append(arn)
        base.cache["rt_pool"] = pool
    return pool


def grant_actions(docs: list[tuple[str, dict[str, Any]]]) -> dict[str, set[str]]:
    """Action -> resource patterns, over the Allow statements of the granted documents."""
    from iamgraph.graph.candidates import statement_resources

    cat = get_catalog()
    out: dict[str, set[str]] = {}
    for pid, doc in docs:
        pol = parse_policy(doc, source=pid)
        for st in pol.statements:
            if not st.is_allow:
                continue
            acts = cat.statement_actions(st)
            patterns = statement_resources(st) if st.not_resource is None else ("*",)
            for a in acts:
                out.setdefault(a, set()).update(patterns)
    return out


# Resource types the snapshot never lists, asked through a stand-in per listed parent: the objects of each bucket as
# ``arn:aws:s3:::<bucket>/*`` (the form the sensitive-data and who-can queries use), so that a grant of
# ``s3:GetObject`` on ``*`` is judged against every bucket's policy and classification, not on ``*`` alone.
_CHILD_STAND_INS: dict[tuple[str, str], tuple[tuple[str, str], str]] = {
    ("s3", "object"): (("s3", "bucket"), "/*"),
}


def _candidates(base: Base, action: str, patterns: set[str]) -> list[str]:
    from iamgraph.graph.candidates import resource_matches

    info = get_catalog().action(action)
    if info is None or not info.resource_types:
        return ["*"]
    pool = _resource_pool(base)
    found: set[str] = set()
    for rt in info.resource_types:
        key = (info.service, rt.name.lower())
        arns: list[str] = list(pool.get(key, ()))
        child = _CHILD_STAND_INS.get(key)
        if child is not None:
            parent, suffix = child
            arns.extend(arn + suffix for arn in pool.get(parent, ()))
        if "*" in patterns:
            found.update(arns)  # a statement on every resource (the usual grant): no pattern to match per ARN
            continue
        for arn in arns:
            if any(resource_matches(p, arn) for p in patterns):
                found.add(arn)
    # The statement's own patterns stand for resources the snapshot does not list (objects, new ARNs).
    found.update(p for p in patterns if p != "*")
    return sorted(found) or ["*"]


def _sensitive(base: Base, arn: str) -> str | None:
    res = base.index.resources.get(arn)
    if res is None and arn.startswith("arn:aws:s3:::") and "/" in arn:
        res = base.index.resources.get(arn.split("/", 1)[0])
    return classification(res.tags) if res is not None else None


@dataclass(slots=True)
class Diff:
    entries: list[NewAccess]
    checked: int
    truncated: bool
    actions: int
    possible_after: int
    possible_before: int
    errors: list[str]


def _decide(ev: SnapshotEvaluator, principal: str, action: str, resource: str) -> Decision:
    return ev.ask(principal, action, resource, mode=Mode.DISCOVERY)


AskEach = Callable[[str, str, list[str]], Iterator[tuple[str, "Decision | IamGraphError"]]]
"""(principal, action, resources) -> each resource's discovery-mode decision, or the error asking raised
(``BuildContext.ask_each``)."""


def new_access(base: Base, applied: Applied, after: AskEach, before: AskEach, actions: dict[str, set[str]],
               limits: Limits, checkpoint: Checkpoint = _no_checkpoint) -> Diff:
    """The pairs possible after the change and not before; ``after`` and ``before`` answer about the changed
    snapshot and the base."""
    cat = get_catalog()
    names = sorted(actions)
    truncated = len(names) > limits.max_grant_actions
    names = names[: limits.max_grant_actions]
    diff = Diff(entries=[], checked=0, truncated=truncated, actions=len(names), possible_after=0,
                possible_before=0, errors=[])

    def error(action: str, res: str, exc: IamGraphError) -> None:
        if len(diff.errors) < 20:
            diff.errors.append(f"{action} on {res}: {exc}")

    for action in names:
        candidates = _candidates(base, action, actions[action])
        room = limits.max_diff_checks - diff.checked
        if len(candidates) > room:
            candidates = candidates[:room]
            diff.truncated = True
        possible: dict[str, Decision] = {}
        for res, now in after(applied.subject, action, candidates):
            if diff.checked % 64 == 0:
                checkpoint()
            diff.checked += 1
            if isinstance(now, IamGraphError):
                error(action, res, now)
            elif now.possible:
                possible[res] = now  # nothing after, so nothing new: the base side is not asked
        earlier: dict[str, Decision | IamGraphError] = (
            dict(before(applied.subject, action, list(possible))) if applied.exists_before and possible else {})
        for res, now in possible.items():
            was = earlier.get(res)
            if isinstance(was, IamGraphError):
                error(action, res, was)
                continue
            diff.possible_after += 1
            if was is not None and was.possible:
                diff.possible_before += 1
                if was.allowed or not now.allowed:
                    continue  # allowed before, or conditional before and after: nothing new
            level = cat.access_level(action)
            diff.entries.append(NewAccess(
                action=action, resource=res, access_level=level.value if level is not None else None,
                before="conditional" if was is not None and was.possible else "denied",
                definite=now.allowed, conditions=now.conditions, sensitive=_sensitive(base, res),
            ))
        if diff.truncated and diff.checked >= limits.max_diff_checks:
            return diff
    return diff


# ------------------------------------------------------------------------------------------- graph comparisons


_BASE_MEMO: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Any]] = weakref.WeakKeyDictionary()
_BASE_LOCK = threading.Lock()


def _base_cached(base: Any, key: tuple[str, str], compute: Callable[[], Any]) -> Any:
    """Answers about the base graph, kept as long as the graph (and so its snapshot) lives; safe to share
    between the API's worker threads (two may compute the same answer; both are the same)."""
    with _BASE_LOCK:
        memo = _BASE_MEMO.setdefault(base, {})
        if key in memo:
            return memo[key]
    value = compute()
    with _BASE_LOCK:
        memo[key] = value
    return value


def _base_answers(base: AccessGraph, applied: Applied) -> None:
    """The base graph's side of the escalation, exposure and SoD comparisons (cached per base graph)."""
    _base_escalations(base, applied.graph_subject)
    _base_exposure(base, applied.subject)
    _base_sod(base, applied.graph_subject)


def _base_escalations(base: AccessGraph, node: str) -> list[Escalation]:
    from iamgraph.query.privesc import escalations_of

    if node not in base.g:
        return []
    found: list[Escalation] = _base_cached(base, ("privesc-base", node), lambda: escalations_of(base, node))
    return found


def _escalations(base: AccessGraph, after: AccessGraph, applied: Applied
                 ) -> tuple[list[Escalation], bool, list[Reason]]:
    from iamgraph.query.paths import reverse_reach
    from iamgraph.query.privesc import EscalationKind, escalations_of

    node = applied.graph_subject
    before = _base_escalations(base, node)
    now = escalations_of(after, node) if node in after.g else []
    before_accounts = {e.account for e in before}
    new = sorted((e for e in now if e.account not in before_accounts), key=lambda e: (e.rank(), e.account))
    admin_after = any(e.kind is EscalationKind.ADMIN for e in now)
    best: dict[str, Escalation] = {}
    for e in new:
        best.setdefault(e.account, e)
    reasons: list[Reason] = []
    for acct, e in sorted(best.items()):
        inherit = sorted(n for n in reverse_reach(after, [node]) if n != node) if node in after.acts else []
        if e.kind is EscalationKind.ADMIN:
            reasons.append(Reason(code="grants_admin", effect=Verdict.DENY,
                                  message=f"{node} would be admin-equivalent in account {acct}",
                                  data={"account": acct, "admin": e.admin, "also_reachable_by": inherit}))
        else:
            reasons.append(Reason(code="opens_privilege_escalation", effect=Verdict.DENY,
                                  message=f"{node} could become admin-equivalent in account {acct} through "
                                  f"{e.admin} ({e.kind.value}, {e.length} step(s))",
                                  data={"account": acct, "admin": e.admin, "kind": e.kind.value,
                                        "path": list(e.path.nodes), "definite": e.definite,
                                        "also_reachable_by": inherit}))
    return [best[a] for a in sorted(best)], admin_after, reasons


def _others(base: AccessGraph, after: AccessGraph, applied: Applied) -> tuple[list[Escalation], list[Reason]]:
    """Escalations of any other principal that the changed snapshot has and the base does not
    (``iamgraph.change.drift``'s comparison): a trust edit can let someone new become an admin role."""
    from iamgraph.change.drift import drift

    d = drift(base, after)
    found = [e for e in (*d.admins.added, *d.escalations.added) if e.principal != applied.graph_subject]
    found.sort(key=lambda e: (e.principal, e.account, e.rank()))
    return found, [Reason(code="opens_privilege_escalation", effect=Verdict.DENY,
                          message=f"{e.principal} could become admin-equivalent in account {e.account} through "
                          f"{e.admin} ({e.kind.value}, {e.length} step(s))",
                          data={"account": e.account, "admin": e.admin, "kind": e.kind.value, "principal": e.principal,
                                "path": list(e.path.nodes), "definite": e.definite})
                   for e in found]


def _exposures_of(graph: AccessGraph, subject: str) -> dict[tuple[str, str], Any]:
    from iamgraph.query.exposure import role_exposures

    return {(e.principal, e.scope.value): e for e in role_exposures(graph) if e.resource == subject}


def _base_role_exposures(base: AccessGraph) -> dict[str, dict[tuple[str, str], Any]]:
    """Every exposure of the base graph by the principal outsiders can become (once per base graph)."""
    from iamgraph.query.exposure import role_exposures

    def compute() -> dict[str, dict[tuple[str, str], Any]]:
        out: dict[str, dict[tuple[str, str], Any]] = {}
        for e in role_exposures(base):
            out.setdefault(e.resource, {})[(e.principal, e.scope.value)] = e
        return out

    found: dict[str, dict[tuple[str, str], Any]] = _base_cached(base, ("exposure-all", ""), compute)
    return found


def _base_exposure(base: AccessGraph, subject: str) -> dict[tuple[str, str], Any]:
    return _base_role_exposures(base).get(subject, {})


def _exposure(base: AccessGraph, after: AccessGraph, applied: Applied, new_access: bool) -> list[Reason]:
    """Outsiders (public, other accounts, federated identities) who can become the subject, before and after."""
    from iamgraph.query.exposure import Scope
    from iamgraph.query.serialize import conditions

    subject = applied.subject
    before = _base_exposure(base, subject)
    now = _exposures_of(after, subject)
    reasons: list[Reason] = []
    for key in sorted(set(now) - set(before)):
        e = now[key]
        public = e.scope is Scope.PUBLIC
        reasons.append(Reason(
            code="exposes_outside_org",
            # Anyone at all, unconditionally, able to act as the principal: never approve that.
            effect=Verdict.DENY if public and e.definite else Verdict.REVIEW,
            message=f"{e.principal} ({e.scope.value}) could act as {subject}",
            data={"principal": e.principal, "scope": e.scope.value, "definite": e.definite,
                  "conditions": conditions(e.conditions)},
        ))
    if new_access and before:
        outsiders = sorted(p for p, _ in before)
        reasons.append(Reason(
            code="grant_reaches_outsiders", effect=Verdict.REVIEW,
            message=f"{subject} can already be used from outside the organization ({', '.join(outsiders)}); the new "
            "access goes to them too",
            data={"principals": outsiders},
        ))
    return reasons


def _sod(base: AccessGraph, after: AccessGraph, applied: Applied) -> tuple[list[Conflict], list[str]]:
    from iamgraph.query.sod import load_rules, sod

    try:
        rules = load_rules()
    except IamGraphError as exc:
        return [], [f"SoD rules could not be loaded, so SoD was not checked: {exc}"]
    node = applied.graph_subject
    before = _base_sod(base, node)
    now = sod(after, rules, principal=node) if node in after.g else []
    new = [c for c in now if (c.rule.id, c.resource) not in before]
    new.sort(key=lambda c: (c.rule.id, c.resource or ""))
    return new, []


def _base_sod(base: AccessGraph, node: str) -> set[tuple[str, str | None]]:
    from iamgraph.query.sod import load_rules, sod

    if node not in base.g:
        return set()
    try:
        rules = load_rules()
    except IamGraphError:
        return set()  # _sod reports it
    found: set[tuple[str, str | None]] = _base_cached(
        base, ("sod-base", node), lambda: {(c.rule.id, c.resource) for c in sod(base, rules, principal=node)})
    return found


def _lint(applied: Applied) -> list[LintFinding]:
    from iamgraph.lint import lint

    out = [LintFinding(issue=f.issue, title=f.title, severity=f.severity.value, location=f.location,
                       detail=f.detail, policy=pid)
           for pid, doc in applied.documents for f in lint(doc).findings]
    out.sort(key=lambda f: (f.policy, f.issue, f.location, f.detail))
    return out


# ------------------------------------------------------------------------------------------- the alternative


def _alternative(base: Base, who: Who, need: Need, applied: Applied, after_ev: SnapshotEvaluator,
                 actions: dict[str, set[str]], diff: Diff, checkpoint: Checkpoint
                 ) -> tuple[Alternative, list[Reason]]:
    from iamgraph.graph.candidates import resource_matches

    cat = get_catalog()
    need_actions: set[str] = set()
    for i, a in enumerate(need.actions):
        found = cat.expand(a)
        if not found:
            raise InputError(f"{a!r} matches no action in the catalog", location=f"need.actions[{i}]")
        need_actions |= found
    need_resources = sorted(set(need.resources))
    if not need_resources:
        raise InputError("the stated need names no resource", location="need.resources")
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "StatedNeed", "Effect": "Allow",
        "Action": sorted(need_actions) if len(need_actions) > 1 else next(iter(need_actions)),
        "Resource": need_resources if len(need_resources) > 1 else need_resources[0]}]}
    alt: tuple[Applied, SnapshotEvaluator] | None = None
    if not isinstance(who, IdentityCenterPrincipal):
        alt_applied = apply_grant(base.snapshot, base.index, who,
                                  InlinePolicyGrant(policy_document=policy, policy_name="iamgraph-scoped-alternative"))
        alt = (alt_applied, SnapshotEvaluator(SnapshotIndex(alt_applied.snapshot)))
    # For an Identity Center principal the alternative is a permission set's inline policy; it is not
    # provisioned here, so it is reported unverified rather than guessed.
    covered: list[str] = []
    not_covered: list[str] = []
    already: list[str] = []
    ok = True
    for a in sorted(need_actions):
        for r in need_resources:
            checkpoint()
            label = f"{a} on {r}"
            try:
                if applied.exists_before and _decide(base.evaluator, applied.subject, a, r).possible:
                    already.append(label)
                (covered if _decide(after_ev, applied.subject, a, r).possible else not_covered).append(label)
                if alt is None or not _decide(alt[1], alt[0].subject, a, r).possible:
                    ok = False
            except IamGraphError:
                ok = False
    extra = sorted(set(actions) - need_actions)
    outside = [e for e in diff.entries
               if e.action not in need_actions or not any(resource_matches(r, e.resource) for r in need_resources)]
    reasons: list[Reason] = []
    if outside:
        reasons.append(Reason(code="broader_than_need", effect=Verdict.REVIEW,
                              message=f"the grant gives {len(outside)} new action/resource pair(s) beyond the "
                              "stated need; the alternative is scoped to it",
                              data={"extra_actions": len(extra),
                                    "examples": [f"{e.action} on {e.resource}" for e in outside[:10]]}))
    if not_covered:
        reasons.append(Reason(code="need_not_covered", effect=Verdict.REVIEW,
                              message=f"the grant does not give {len(not_covered)} of the stated needs",
                              data={"not_covered": not_covered[:50]}))
    return Alternative(policy=policy, verified=ok, covers_need=tuple(covered), not_covered=tuple(not_covered),
                       already_granted=tuple(already), removed_from_grant_actions=len(extra)), reasons
