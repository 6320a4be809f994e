"""POST /v1/access-requests/evaluate: a thin adapter over ``iamgraph.change`` (the judgement itself).

The request's wire models become a change set, ``evaluate_grant`` judges it against the snapshot the server
holds (the deadline checked between steps), and the domain answer becomes the wire response. Answers are
memoised per snapshot by ``request_id``; concurrent identical requests wait for the one computation.
"""

from __future__ import annotations

import hashlib
import threading
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
    PermissionSetGrant,
    PolicyGrant,
    ReasonOut,
    Verdict,
)
from api.services.convert import canonical_json, conditions, path
from api.services.graph_queries import conflict_out
from api.settings import Limits
from iamgraph import change


def _who(body: AccessRequestBody) -> change.Who:
    who = body.who
    if isinstance(who, IdentityCenterWho):
        return change.IdentityCenterPrincipal(id=who.identity_center.id, type=who.identity_center.type)
    if isinstance(who, NewRoleWho):
        nr = who.new_role
        return change.NewRole(account_id=nr.account_id, name=nr.name, path=nr.path, trust_policy=nr.trust_policy,
                              permissions_boundary=nr.permissions_boundary)
    return change.ExistingPrincipal(principal_arn=who.principal_arn)


def _what(body: AccessRequestBody) -> change.What:
    what = body.what
    if isinstance(what, PolicyGrant):
        return change.InlinePolicyGrant(policy_document=what.policy_document, policy_name=what.policy_name)
    if isinstance(what, ManagedPolicyGrant):
        return change.ManagedPolicyGrant(managed_policy_arn=what.managed_policy_arn)
    if isinstance(what, GroupGrant):
        return change.GroupGrant(group_arn=what.group_arn)
    assert isinstance(what, PermissionSetGrant)
    return change.PermissionSetGrant(permission_set_arn=what.permission_set_arn, account_id=what.account_id)


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
    need = change.Need(actions=tuple(body.need.actions), resources=tuple(body.need.resources)) if body.need else None
    ev = change.evaluate_grant(
        state, _who(body), _what(body), need=need,
        limits=change.Limits(max_grant_actions=limits.max_grant_actions, max_diff_checks=limits.max_diff_checks),
        checkpoint=deadline.check,
    )
    return response(ev, request_id(body, state.content_hash), state.content_hash, body)


def response(ev: change.Evaluation, rid: str, snapshot_hash: str, body: AccessRequestBody) -> AccessRequestResponse:
    entries = [NewAccessEntry(action=e.action, resource=e.resource, access_level=e.access_level,
                              before=e.before,  # type: ignore[arg-type]
                              definite=e.definite, conditions=conditions(e.conditions), sensitive=e.sensitive)
               for e in ev.new_access]
    alt = ev.alternative
    return AccessRequestResponse(
        request_id=rid,
        snapshot_hash=snapshot_hash,
        subject=ev.subject,
        verdict=Verdict(ev.verdict.value),
        reasons=[ReasonOut(code=r.code, effect=Verdict(r.effect.value), message=r.message, data=r.data)
                 for r in ev.reasons],
        new_access=NewAccessOut(total=len(entries), returned=min(len(entries), 1000),
                                truncated=ev.new_access_truncated, checked_pairs=ev.checked_pairs,
                                actions_considered=ev.actions_considered, entries=entries[:1000]),
        privilege_escalation=[path(e.path) for e in ev.escalations],
        admin_after=ev.admin_after,
        sod_conflicts=[conflict_out(c) for c in ev.sod_conflicts],
        lint=[LintFindingOut(issue=f.issue, title=f.title, severity=f.severity, location=f.location,
                             detail=f.detail, policy=f.policy) for f in ev.lint],
        coverage=CoverageOut(pairs=ev.pairs_after, already_granted=ev.already_granted,
                             ratio=round(ev.already_granted / ev.pairs_after, 4) if ev.pairs_after else None),
        alternative=AlternativeOut(policy=alt.policy, verified=alt.verified, covers_need=list(alt.covers_need),
                                   not_covered=list(alt.not_covered), already_granted=list(alt.already_granted),
                                   removed_from_grant_actions=alt.removed_from_grant_actions) if alt else None,
        justification=body.justification,
        duration_hours=body.duration_hours,
        graph_cost=GraphCostOut(base_build_seconds=ev.base_build_seconds, after_build_seconds=ev.after_build_seconds),
        notes=list(ev.notes),
    )
