"""POST /v1/access-requests/evaluate: what a grant would change, and whether to approve it.

Method (each step through the one engine and the one graph, never a second opinion):
1. Apply the grant to a copy of the snapshot (an inline policy, an attached managed policy, a group membership,
   a new role, or a permission set assignment).
2. New access: for every action the grant's Allow statements can match (expanded with the catalog) and every
   snapshot resource of a type that action works on (plus the resources the statement names), ask the engine in
   discovery mode before and after; report the pairs possible only after. Bounded by ``max_diff_checks``.
3. Privilege escalation: rebuild the access graph on the changed copy (the base graph is cached per snapshot)
   and compare the subject's escalations before and after.
4. SoD conflicts the subject has after and not before; parliament findings on the granted documents.
5. A least-privilege alternative scoped to the stated need, verified with the engine.
6. Verdict: deny (admin or a new path to admin), review (SoD, lint, sensitive data, broader than the need,
   incomplete analysis), approve otherwise. Everything is sorted, so the same request on the same snapshot gives
   the same answer.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from api.errors import ApiError
from api.holder import State
from api.limits import Deadline
from api.schemas import (
    AccessRequestBody,
    AccessRequestResponse,
    AlternativeOut,
    CoverageOut,
    GraphCostOut,
    GroupGrant,
    IdentityCenterWho,
    LintFindingOut,
    ManagedPolicyGrant,
    NewAccessEntry,
    NewAccessOut,
    NewRoleWho,
    PathOut,
    PermissionSetGrant,
    PolicyGrant,
    ReasonOut,
    SodConflictOut,
    Verdict,
    What,
    Who,
)
from api.services.convert import canonical_json, conditions, path
from api.settings import Limits
from iamgraph.catalog import get_catalog
from iamgraph.errors import IamGraphError, InputError, NotFoundError
from iamgraph.eval import Decision, Mode, SnapshotEvaluator
from iamgraph.model.arn import account_of
from iamgraph.model.policy import parse_policy
from iamgraph.snapshot import Snapshot, SnapshotIndex
from iamgraph.snapshot.model import AccountAssignment, InlinePolicy, Role

SENSITIVE_TAG = "dataclassification"
SENSITIVE_VALUES = frozenset({"pii", "phi", "pci"})
"""Classification tag values (docs/demo-org.md, DESIGN principle 6) whose new access asks for a review."""
LINT_REVIEW = frozenset({"MEDIUM", "HIGH", "CRITICAL"})
DEFAULT_INLINE_NAME = "iamgraph-access-request"


@dataclass(slots=True)
class Applied:
    """The snapshot with the grant applied, and what the grant consists of."""

    snapshot: Snapshot
    subject: str
    """The IAM principal whose policies change (the role a permission set becomes, for Identity Center)."""
    graph_subject: str
    """The graph node whose escalations and SoD conflicts to compare (an Identity Center user or group node)."""
    exists_before: bool
    documents: list[tuple[str, dict[str, Any]]]
    """(policy id, document) the subject gains."""
    notes: list[str] = field(default_factory=list)


def _entity(snap: Snapshot, arn: str) -> Any:
    for acct in snap.accounts:
        for coll in (acct.users, acct.roles):
            for e in coll:
                if e.arn == arn:
                    return e
    return None


def apply_grant(state: State, who: Who, what: What) -> Applied:
    idx = state.index
    snap = state.snapshot.model_copy(deep=True)
    notes: list[str] = []

    if isinstance(who, IdentityCenterWho):
        if not isinstance(what, PermissionSetGrant):
            raise InputError("an Identity Center user or group gets a permission set (what.permission_set_arn "
                             "and what.account_id)", location="what")
        return _apply_permission_set(state, snap, who, what)
    if isinstance(what, PermissionSetGrant):
        raise InputError("a permission set is assigned to an Identity Center user or group (who.identity_center)",
                         location="what.permission_set_arn")

    if isinstance(who, NewRoleWho):
        nr = who.new_role
        acct = snap.account(nr.account_id)
        if acct is None:
            raise NotFoundError(f"the snapshot has no account {nr.account_id}")
        if idx.role_by_name(nr.account_id, nr.name) is not None:
            raise InputError(f"account {nr.account_id} already has a role named {nr.name}", location="who.new_role.name")
        _check_doc(nr.trust_policy, "who.new_role.trust_policy", trust=True)
        subject = f"arn:{snap.partition}:iam::{nr.account_id}:role{nr.path}{nr.name}"
        acct.roles.append(Role(arn=subject, name=nr.name, role_id="AROAIAMGRAPHREQUEST0", path=nr.path,
                               trust_policy=nr.trust_policy, permissions_boundary=nr.permissions_boundary))
        exists_before = False
    else:
        subject = who.principal_arn
        if subject not in idx.users and subject not in idx.roles:
            raise NotFoundError(f"the snapshot has no IAM user or role {subject}")
        exists_before = True
    entity = _entity(snap, subject)
    docs: list[tuple[str, dict[str, Any]]] = []
    if isinstance(what, PolicyGrant):
        _check_doc(what.policy_document, "what.policy_document")
        name = what.policy_name or DEFAULT_INLINE_NAME
        if any(p.name == name for p in entity.inline_policies):
            raise InputError(f"{subject} already has an inline policy named {name}; choose another policy_name",
                             location="what.policy_name")
        entity.inline_policies.append(InlinePolicy(name=name, document=what.policy_document))
        docs.append((f"{subject}:inline/{name}", what.policy_document))
    elif isinstance(what, ManagedPolicyGrant):
        arn = what.managed_policy_arn
        pol = idx.policies.get(arn)
        if pol is None:
            raise NotFoundError(f"the snapshot has no managed policy {arn}")
        doc = pol.default_document()
        if doc is None:
            raise InputError(f"managed policy {arn} has no default version in the snapshot",
                             location="what.managed_policy_arn")
        if arn in entity.attached_managed_policies:
            notes.append(f"{arn} is already attached to {subject}")
        else:
            entity.attached_managed_policies.append(arn)
        docs.append((arn, doc))
    else:
        assert isinstance(what, GroupGrant)
        arn = what.group_arn
        group = idx.groups.get(arn)
        if group is None:
            raise NotFoundError(f"the snapshot has no group {arn}")
        if subject not in idx.users:
            raise InputError("only IAM users join groups", location="what.group_arn")
        if idx.account_of.get(arn) != idx.account_of.get(subject):
            raise InputError("a user can only join a group of its own account", location="what.group_arn")
        if group.name in entity.groups:
            notes.append(f"{subject} is already in {group.name}")
        else:
            entity.groups.append(group.name)
        for p in group.inline_policies:
            docs.append((f"{arn}:inline/{p.name}", p.document))
        for parn in group.attached_managed_policies:
            mp = idx.policies.get(parn)
            doc = mp.default_document() if mp is not None else None
            if doc is not None:
                docs.append((parn, doc))
            else:
                notes.append(f"group policy {parn} is not in the snapshot; its access is not analysed")
    return Applied(snapshot=snap, subject=subject, graph_subject=subject, exists_before=exists_before,
                   documents=docs, notes=notes)


def _apply_permission_set(state: State, snap: Snapshot, who: IdentityCenterWho, what: PermissionSetGrant
                          ) -> Applied:
    from iamgraph.graph.rules.identity_center import materialise, role_prefix, sso_group_node, sso_user_node

    ic = snap.identity_center
    if ic is None:
        raise NotFoundError("the snapshot has no Identity Center data")
    pid, ptype = who.identity_center.id, who.identity_center.type
    known = {u.user_id for u in ic.users} if ptype == "USER" else {g.group_id for g in ic.groups}
    if pid not in known:
        raise NotFoundError(f"the snapshot has no Identity Center {ptype.lower()} {pid}")
    ps = next((p for p in ic.permission_sets if p.arn == what.permission_set_arn), None)
    if ps is None:
        raise NotFoundError(f"the snapshot has no permission set {what.permission_set_arn}")
    if snap.account(what.account_id) is None:
        raise NotFoundError(f"the snapshot has no account {what.account_id}")
    notes: list[str] = []
    asg = AccountAssignment(account_id=what.account_id, permission_set_arn=ps.arn, principal_type=ptype,
                            principal_id=pid)
    if asg in ic.assignments:
        notes.append("this permission set is already assigned to this principal in this account")
    else:
        ic.assignments.append(asg)
    materialised, more = materialise(snap)
    notes.extend(more)
    acct = materialised.account(what.account_id)
    role = next((r for r in (acct.roles if acct else []) if r.name.startswith(role_prefix(ps))), None)
    if role is None:
        raise InputError(f"permission set {ps.name} cannot be provisioned in {what.account_id}: "
                         + "; ".join(more), location="what.permission_set_arn")
    node = (sso_user_node if ptype == "USER" else sso_group_node)(ic.identity_store_id, pid)
    idx = SnapshotIndex(materialised)
    docs = [(f"{role.arn}:inline/{p.name}", p.document) for p in role.inline_policies]
    for parn in role.attached_managed_policies:
        mp = idx.policies.get(parn)
        d = mp.default_document() if mp is not None else None
        if d is not None:
            docs.append((parn, d))
    base_has_role = role.arn in state.index.roles or any(
        r.name.startswith(role_prefix(ps)) for r in (state.snapshot.account(what.account_id) or acct).roles)  # type: ignore[union-attr]
    notes.append("new access is what the permission set's role can do in the account; access the principal "
                 "already has there through other permission sets is not subtracted")
    # The materialised copy: the engine must see the role the set becomes (materialise is idempotent, so the
    # graph build that materialises again adds nothing).
    return Applied(snapshot=materialised, subject=role.arn, graph_subject=node, exists_before=base_has_role and
                   asg in (state.snapshot.identity_center.assignments if state.snapshot.identity_center else []),
                   documents=docs, notes=notes)


def _check_doc(doc: dict[str, Any], where: str, *, trust: bool = False) -> None:
    try:
        parse_policy(doc, source=where, principal=True if trust else None)
    except InputError as exc:
        raise InputError(exc.message, location=": ".join(x for x in (where, exc.location) if x)) from None


# ------------------------------------------------------------------------------------------- new access


def _resource_pool(state: State) -> dict[tuple[str, str], list[str]]:
    """(service, resource type) -> snapshot ARNs of that type; cached per snapshot."""
    pool = state.cache.get("rt_pool")
    if pool is None:
        cat = get_catalog()
        idx = state.index
        pool = {}
        arns = sorted({*idx.resources, *idx.roles, *idx.users, *idx.groups, *idx.compute,
                       *(a for a in idx.policies if account_of(a) not in (None, "aws"))})
        for arn in arns:
            for svc, info in cat.resource_types_for_arn(arn):
                pool.setdefault((svc, info.name.lower()), []).append(arn)
        state.cache["rt_pool"] = pool
    return pool


def grant_actions(docs: list[tuple[str, dict[str, Any]]], limits: Limits) -> dict[str, set[str]]:
    """Action -> resource patterns, over the Allow statements of the granted documents."""
    from iamgraph.graph.candidates import statement_resources

    cat = get_catalog()
    out: dict[str, set[str]] = {}
    for pid, doc in docs:
        pol = parse_policy(doc, source=pid)
        for st in pol.statements:
            if not st.is_allow:
                continue
            if st.action is not None:
                acts = cat.expand_many(list(st.action))
            else:
                acts = cat.expand_not(list(st.not_action or ()))
            patterns = statement_resources(st) if st.not_resource is None else ("*",)
            for a in acts:
                out.setdefault(a, set()).update(patterns)
    return out


def _candidates(state: State, action: str, patterns: set[str]) -> list[str]:
    from iamgraph.graph.candidates import resource_matches

    cat = get_catalog()
    info = cat.action(action)
    if info is None or not info.resource_types:
        return ["*"]
    pool = _resource_pool(state)
    found: set[str] = set()
    for rt in info.resource_types:
        for arn in pool.get((info.service, rt.name.lower()), ()):
            if any(resource_matches(p, arn) for p in patterns):
                found.add(arn)
    # The statement's own patterns stand for resources the snapshot does not list (objects, new ARNs).
    for p in patterns:
        if p != "*" and p not in found:
            found.add(p)
    if not found:
        found.add("*")
    return sorted(found)


def _tags_of(state: State, arn: str) -> dict[str, str]:
    res = state.index.resources.get(arn)
    if res is None and arn.startswith("arn:aws:s3:::") and "/" in arn:
        res = state.index.resources.get(arn.split("/", 1)[0])
    return res.tags if res is not None else {}


def _sensitive(state: State, arn: str) -> str | None:
    for k, v in _tags_of(state, arn).items():
        if k.lower() == SENSITIVE_TAG and v.lower() in SENSITIVE_VALUES:
            return v
    return None


@dataclass(slots=True)
class Diff:
    entries: list[NewAccessEntry]
    checked: int
    truncated: bool
    actions: int
    possible_after: int
    possible_before: int
    errors: list[str]


def _decide(ev: SnapshotEvaluator, principal: str, action: str, resource: str) -> Decision:
    return ev.ask(principal, action, resource, mode=Mode.DISCOVERY)


def new_access(deadline: Deadline, state: State, applied: Applied, after_ev: SnapshotEvaluator,
               actions: dict[str, set[str]], limits: Limits) -> Diff:
    cat = get_catalog()
    names = sorted(actions)
    truncated = len(names) > limits.max_grant_actions
    names = names[: limits.max_grant_actions]
    entries: list[NewAccessEntry] = []
    errors: list[str] = []
    checked = after_n = before_n = 0
    out_of_budget = False
    for action in names:
        for res in _candidates(state, action, actions[action]):
            if checked >= limits.max_diff_checks:
                out_of_budget = True
                break
            if checked % 64 == 0:
                deadline.check()
            checked += 1
            try:
                after = _decide(after_ev, applied.subject, action, res)
                before = (_decide(state.evaluator, applied.subject, action, res)
                          if applied.exists_before else None)
            except IamGraphError as exc:
                if len(errors) < 20:
                    errors.append(f"{action} on {res}: {exc}")
                continue
            if not after.possible:
                continue
            after_n += 1
            if before is not None and before.possible:
                before_n += 1
            if before is not None and before.allowed:
                continue
            if before is not None and before.possible and not after.allowed:
                continue  # conditional before and after: nothing new to report
            level = cat.access_level(action)
            entries.append(NewAccessEntry(
                action=action, resource=res, access_level=level.value if level is not None else None,
                before="conditional" if before is not None and before.possible else "denied",
                definite=after.allowed, conditions=conditions(after.conditions), sensitive=_sensitive(state, res),
            ))
        if out_of_budget:
            break
    return Diff(entries=entries, checked=checked, truncated=truncated or out_of_budget, actions=len(names),
                possible_after=after_n, possible_before=before_n, errors=errors)


# ------------------------------------------------------------------------------------------- the evaluation


def request_id(body: AccessRequestBody, snapshot_hash: str) -> str:
    canon = canonical_json(body.model_dump(mode="json"))
    return "ar-" + hashlib.sha256(canon + b"\0" + snapshot_hash.encode()).hexdigest()[:32]


_RESULTS = 256
_results_lock = threading.Lock()


def evaluate(deadline: Deadline, state: State, body: AccessRequestBody, limits: Limits
             ) -> tuple[AccessRequestResponse, bool]:
    """The evaluation, and whether it came from the per-snapshot result cache.

    The answer is a pure function of the request and the snapshot, so it is memoised by ``request_id``
    (per snapshot state: a reload starts afresh); concurrent identical requests wait for the one computation.
    """
    rid = request_id(body, state.content_hash)
    with _results_lock:
        memo: OrderedDict[str, Any] = state.cache.setdefault("access_results", OrderedDict())
        entry = memo.get(rid)
        if entry is None:
            entry = memo[rid] = _Flight()
            owner = True
        else:
            memo.move_to_end(rid)
            owner = False
    if not owner:
        while not entry.done.wait(0.05):
            deadline.check()
        if entry.result is not None:
            return entry.result, True
        # The first computation failed (e.g. its deadline); compute it here instead.
        return _evaluate(deadline, state, body, limits), False
    try:
        result = _evaluate(deadline, state, body, limits)
        entry.result = result
        return result, False
    except BaseException:
        with _results_lock:
            memo.pop(rid, None)
        raise
    finally:
        entry.done.set()
        with _results_lock:
            while len(memo) > _RESULTS:
                memo.popitem(last=False)


@dataclass(slots=True)
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: AccessRequestResponse | None = None


def _evaluate(deadline: Deadline, state: State, body: AccessRequestBody, limits: Limits) -> AccessRequestResponse:
    for key, doc in (("what.policy_document", getattr(body.what, "policy_document", None)),
                     ("who.new_role.trust_policy",
                      body.who.new_role.trust_policy if isinstance(body.who, NewRoleWho) else None)):
        if doc is not None and len(canonical_json(doc)) > limits.max_policy_chars:
            raise ApiError(422, "policy_too_large", f"{key}: over the policy size limit of {limits.max_policy_chars}"
                           " characters", location=key)
    applied = apply_grant(state, body.who, body.what)
    notes = list(applied.notes)
    reasons: list[ReasonOut] = []
    after_index = SnapshotIndex(applied.snapshot)
    after_ev = SnapshotEvaluator(after_index)
    actions = grant_actions(applied.documents, limits)
    deadline.check()
    diff = new_access(deadline, state, applied, after_ev, actions, limits)

    # Privilege escalation and SoD, on the graph rebuilt with the grant applied.
    from iamgraph.graph import build_graph

    base_graph = state.graph()
    deadline.check()
    t0 = time.perf_counter()
    after_graph = build_graph(applied.snapshot)
    cost = GraphCostOut(base_build_seconds=state.graph_build_seconds, after_build_seconds=time.perf_counter() - t0)
    deadline.check()
    escalation_paths, admin_after, esc_reasons = _escalations(base_graph, after_graph, applied)
    reasons.extend(esc_reasons)
    reasons.extend(_exposure(base_graph, after_graph, applied, bool(diff.entries)))
    sod_new, sod_notes = _sod(base_graph, after_graph, applied)
    notes.extend(sod_notes)
    for c in sod_new:
        reasons.append(ReasonOut(code="creates_sod_conflict", effect=Verdict.REVIEW,
                                 message=f"{c.principal} would hold both sides of SoD rule {c.rule} ({c.title})",
                                 data={"rule": c.rule, "severity": c.severity}))
    deadline.check()
    lint_out = _lint(applied)
    serious = sorted({f.issue for f in lint_out if f.severity in LINT_REVIEW})
    if serious:
        reasons.append(ReasonOut(code="lint_findings", effect=Verdict.REVIEW,
                                 message=f"parliament reports {', '.join(serious)} on the granted policy",
                                 data={"issues": serious}))
    sensitive = sorted({(e.resource, e.sensitive) for e in diff.entries if e.sensitive})
    if sensitive:
        reasons.append(ReasonOut(code="new_sensitive_access", effect=Verdict.REVIEW,
                                 message=f"new access to {len(sensitive)} resource(s) classified "
                                 f"{', '.join(sorted({s for _, s in sensitive}))}",
                                 data={"resources": [r for r, _ in sensitive]}))
    if diff.truncated or diff.errors:
        reasons.append(ReasonOut(code="incomplete_analysis", effect=Verdict.REVIEW,
                                 message="the new-access diff is incomplete (over the analysis limits or engine "
                                 "errors); unknown is not safe",
                                 data={"truncated": diff.truncated, "errors": diff.errors}))
    alternative = None
    if body.need is not None:
        alternative, alt_reasons = _alternative(deadline, state, body, applied, after_ev, actions, diff)
        reasons.extend(alt_reasons)
    if not diff.entries and not escalation_paths and not sod_new:
        reasons.append(ReasonOut(code="no_new_access", effect=Verdict.APPROVE,
                                 message="the grant gives nothing the principal could not already do"))
    if any(not e.definite for e in diff.entries):
        reasons.append(ReasonOut(code="new_conditional_access", effect=Verdict.APPROVE,
                                 message="some new access depends on request context (see conditions)"))
    verdict = Verdict.APPROVE
    if any(r.effect is Verdict.DENY for r in reasons):
        verdict = Verdict.DENY
    elif any(r.effect is Verdict.REVIEW for r in reasons):
        verdict = Verdict.REVIEW
    reasons.sort(key=lambda r: ([Verdict.DENY, Verdict.REVIEW, Verdict.APPROVE].index(r.effect), r.code, r.message))
    pairs = diff.possible_after
    return AccessRequestResponse(
        request_id=request_id(body, state.content_hash),
        snapshot_hash=state.content_hash,
        subject=applied.subject,
        verdict=verdict,
        reasons=reasons,
        new_access=NewAccessOut(total=len(diff.entries), returned=min(len(diff.entries), 1000),
                                truncated=diff.truncated, checked_pairs=diff.checked,
                                actions_considered=diff.actions, entries=diff.entries[:1000]),
        privilege_escalation=escalation_paths,
        admin_after=admin_after,
        sod_conflicts=sod_new,
        lint=lint_out,
        coverage=CoverageOut(pairs=pairs, already_granted=diff.possible_before,
                             ratio=round(diff.possible_before / pairs, 4) if pairs else None),
        alternative=alternative,
        justification=body.justification,
        duration_hours=body.duration_hours,
        graph_cost=cost,
        notes=sorted(set(notes)),
    )


_BASE_MEMO: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Any]] = weakref.WeakKeyDictionary()


def _base_cached(base: Any, key: tuple[str, str], compute: Any) -> Any:
    """Answers about the base graph, kept as long as the graph (and so its snapshot state) lives."""
    with _results_lock:
        memo = _BASE_MEMO.setdefault(base, {})
        if key in memo:
            return memo[key]
    value = compute()
    with _results_lock:
        memo[key] = value
    return value


def _escalations(base: Any, after: Any, applied: Applied) -> tuple[list[PathOut], bool, list[ReasonOut]]:
    from iamgraph.query.paths import reverse_reach
    from iamgraph.query.privesc import EscalationKind, escalations_of

    node = applied.graph_subject
    before = _base_cached(base, ("privesc-base", node), lambda: escalations_of(base, node)) if node in base.g else []
    now = escalations_of(after, node) if node in after.g else []
    before_accounts = {e.account for e in before}
    new = sorted((e for e in now if e.account not in before_accounts), key=lambda e: (e.rank(), e.account))
    admin_after = any(e.kind is EscalationKind.ADMIN for e in now)
    reasons: list[ReasonOut] = []
    best: dict[str, Any] = {}
    for e in new:
        best.setdefault(e.account, e)
    paths: list[PathOut] = []
    for acct, e in sorted(best.items()):
        p = path(e.path)
        paths.append(p)
        inherit = sorted(n for n in reverse_reach(after, [node]) if n != node) if node in after.acts else []
        if e.kind is EscalationKind.ADMIN:
            reasons.append(ReasonOut(code="grants_admin", effect=Verdict.DENY,
                                     message=f"{node} would be admin-equivalent in account {acct}",
                                     data={"account": acct, "admin": e.admin, "also_reachable_by": inherit}))
        else:
            reasons.append(ReasonOut(code="opens_privilege_escalation", effect=Verdict.DENY,
                                     message=f"{node} could become admin-equivalent in account {acct} through "
                                     f"{e.admin} ({e.kind.value}, {e.length} step(s))",
                                     data={"account": acct, "admin": e.admin, "kind": e.kind.value,
                                           "path": list(e.path.nodes), "definite": e.definite,
                                           "also_reachable_by": inherit}))
    return paths, admin_after, reasons


def _exposure(base: Any, after: Any, applied: Applied, new_access: bool) -> list[ReasonOut]:
    """Outsiders (public, other accounts, federated identities) who can become the subject, before and after."""
    from iamgraph.query.exposure import Scope as ExposureScope
    from iamgraph.query.exposure import role_exposures

    subject = applied.subject

    def of(graph: Any) -> dict[tuple[str, str], Any]:
        return {(e.principal, e.scope.value): e for e in role_exposures(graph) if e.resource == subject}

    before = _base_cached(base, ("exposure-base", subject), lambda: of(base))
    now = of(after)
    reasons: list[ReasonOut] = []
    for key in sorted(set(now) - set(before)):
        e = now[key]
        public = e.scope is ExposureScope.PUBLIC
        reasons.append(ReasonOut(
            code="exposes_outside_org",
            # Anyone at all, unconditionally, able to act as the principal: never approve that.
            effect=Verdict.DENY if public and e.definite else Verdict.REVIEW,
            message=f"{e.principal} ({e.scope.value}) could act as {subject}",
            data={"principal": e.principal, "scope": e.scope.value, "definite": e.definite,
                  "conditions": [[c.model_dump() for c in term] for term in conditions(e.conditions)]},
        ))
    if new_access and before:
        outsiders = sorted(p for p, _ in before)
        reasons.append(ReasonOut(
            code="grant_reaches_outsiders", effect=Verdict.REVIEW,
            message=f"{subject} can already be used from outside the organization ({', '.join(outsiders)}); the new "
            "access goes to them too",
            data={"principals": outsiders},
        ))
    return reasons


def _sod(base: Any, after: Any, applied: Applied) -> tuple[list[SodConflictOut], list[str]]:
    from api.services.graph_queries import conflict_out
    from iamgraph.query.sod import load_rules, sod

    try:
        rules = load_rules()
    except IamGraphError as exc:
        return [], [f"SoD rules could not be loaded, so SoD was not checked: {exc}"]
    node = applied.graph_subject
    before = _base_cached(base, ("sod-base", node), lambda: {(c.rule.id, c.resource)
                                                               for c in sod(base, rules, principal=node)}
                          ) if node in base.g else set()
    now = sod(after, rules, principal=node) if node in after.g else []
    new = [conflict_out(c) for c in now if (c.rule.id, c.resource) not in before]
    new.sort(key=lambda c: (c.rule, c.resource or ""))
    return new, []


def _lint(applied: Applied) -> list[LintFindingOut]:
    from iamgraph.lint import lint

    out: list[LintFindingOut] = []
    for pid, doc in applied.documents:
        for f in lint(doc).findings:
            out.append(LintFindingOut(issue=f.issue, title=f.title, severity=f.severity.value, location=f.location,
                                      detail=f.detail, policy=pid))
    out.sort(key=lambda f: (f.policy, f.issue, f.location, f.detail))
    return out


def _alternative(deadline: Deadline, state: State, body: AccessRequestBody, applied: Applied,
                 after_ev: SnapshotEvaluator, actions: dict[str, set[str]], diff: Diff
                 ) -> tuple[AlternativeOut, list[ReasonOut]]:
    from iamgraph.graph.candidates import resource_matches

    assert body.need is not None
    cat = get_catalog()
    need_actions: set[str] = set()
    for i, a in enumerate(body.need.actions):
        found = cat.expand(a)
        if not found:
            raise InputError(f"{a!r} matches no action in the catalog", location=f"need.actions[{i}]")
        need_actions |= found
    need_resources = sorted(set(body.need.resources))
    policy = {"Version": "2012-10-17", "Statement": [{"Sid": "StatedNeed", "Effect": "Allow",
                                                       "Action": sorted(need_actions) if len(need_actions) > 1
                                                       else next(iter(need_actions)),
                                                       "Resource": need_resources if len(need_resources) > 1
                                                       else need_resources[0]}]}
    alt_what = PolicyGrant(policy_document=policy, policy_name="iamgraph-scoped-alternative")
    alt: tuple[Applied, SnapshotEvaluator] | None = None
    if not isinstance(body.who, IdentityCenterWho):
        alt_applied = apply_grant(state, body.who, alt_what)
        alt = (alt_applied, SnapshotEvaluator(SnapshotIndex(alt_applied.snapshot)))
    # For an Identity Center principal the alternative is a permission set's inline policy; it is not
    # provisioned here, so it is reported unverified rather than guessed.
    covered, not_covered, already = [], [], []
    ok = True
    for a in sorted(need_actions):
        for r in need_resources:
            deadline.check()
            label = f"{a} on {r}"
            try:
                if applied.exists_before and _decide(state.evaluator, applied.subject, a, r).possible:
                    already.append(label)
                if _decide(after_ev, applied.subject, a, r).possible:
                    covered.append(label)
                else:
                    not_covered.append(label)
                if alt is None or not _decide(alt[1], alt[0].subject, a, r).possible:
                    ok = False
            except IamGraphError:
                ok = False
    extra = sorted(set(actions) - need_actions)
    outside = [e for e in diff.entries
               if e.action not in need_actions or not any(resource_matches(r, e.resource) for r in need_resources)]
    reasons: list[ReasonOut] = []
    if outside:
        reasons.append(ReasonOut(code="broader_than_need", effect=Verdict.REVIEW,
                                 message=f"the grant gives {len(outside)} new action/resource pair(s) beyond the "
                                 "stated need; the alternative is scoped to it",
                                 data={"extra_actions": len(extra),
                                       "examples": [f"{e.action} on {e.resource}" for e in outside[:10]]}))
    if not_covered:
        reasons.append(ReasonOut(code="need_not_covered", effect=Verdict.REVIEW,
                                 message=f"the grant does not give {len(not_covered)} of the stated needs",
                                 data={"not_covered": not_covered[:50]}))
    return AlternativeOut(policy=policy, verified=ok, covers_need=covered, not_covered=not_covered,
                          already_granted=already, removed_from_grant_actions=len(extra)), reasons
