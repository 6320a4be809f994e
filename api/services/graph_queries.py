"""The graph questions (iamgraph.query) for the routers: computed once per snapshot and query, then paged."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from api.errors import ApiError
from api.holder import State
from api.limits import Deadline
from api.schemas import (
    AccessEntry,
    EscalationOut,
    ExposureEntry,
    Page,
    SodConflictOut,
    SodEvidence,
    WhoCanEntry,
)
from api.services.convert import conditions, hop, path, ref
from api.settings import Limits
from iamgraph.catalog import get_catalog, require_action
from iamgraph.errors import IamGraphError, NotFoundError
from iamgraph.model.arn import Arn
from iamgraph.query.incomplete import Incomplete
from iamgraph.query.sod import resource_pattern

T = TypeVar("T")
_CACHE_SIZE = 64
_lock = threading.Lock()


def cached(state: State, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """A small LRU per snapshot state: paging through a result does not recompute it."""
    with _lock:
        memo: OrderedDict[tuple[Any, ...], Any] = state.cache.setdefault("queries", OrderedDict())
        if key in memo:
            memo.move_to_end(key)
            return memo[key]  # type: ignore[no-any-return]
    value = compute()
    with _lock:
        memo[key] = value
        while len(memo) > _CACHE_SIZE:
            memo.popitem(last=False)
    return value


def page_of(items: list[T], offset: int, limit: int, limits: Limits) -> tuple[list[T], Page]:
    if limit > limits.max_page_size:
        raise ApiError(422, "page_too_large", f"limit {limit} is over the maximum page size {limits.max_page_size}",
                       location="limit")
    chunk = items[offset: offset + limit]
    nxt = offset + limit if offset + limit < len(items) else None
    return chunk, Page(total=len(items), offset=offset, limit=limit, next_offset=nxt)


def who_can(deadline: Deadline, state: State, resource: str, action: str | None, access_level: str | None,
            paths: int, offset: int, limit: int, limits: Limits) -> tuple[list[str], list[str], list[WhoCanEntry],
                                                                       Page, list[str]]:
    from iamgraph.query.who_can import who_can as q_who_can

    if paths > limits.max_paths:
        raise ApiError(422, "too_many_paths", f"paths={paths} is over the limit of {limits.max_paths}",
                       location="paths")
    # The CLI's checks (iamgraph/cli/inputs.py), same messages: a typo is a 400, not an empty answer.
    if action is not None:
        action = require_action(action, allow_patterns=True)
    if "*" not in resource and "?" not in resource:
        Arn.parse(resource)
    graph = state.graph()
    deadline.check()
    result = cached(state, ("who-can", resource, action, None if action else access_level, paths),
                    lambda: q_who_can(graph, resource, action=action,
                                      access_level=None if action else access_level,
                                      any_action=action is None and access_level is None, paths=paths))
    accesses = list(result.accesses)
    actions = list(result.actions)
    if action is not None and access_level is not None:
        level = _level(access_level)
        keep = {a for a in actions if (lv := get_catalog().action(a)) is not None
                and any(x.value.lower().replace(" ", "") == level for x in lv.access_levels)}
        accesses = [a for a in accesses if a.action in keep]
        actions = [a for a in actions if a in keep]
    entries = [
        WhoCanEntry(
            principal=a.principal, kind=a.principal_kind.value, action=a.action, resource=a.resource,
            how=a.how.value, holder=a.holder.principal, definite=a.definite, conditions=conditions(a.conditions),
            assumptions=list(a.assumptions), statements=[ref(r) for r in a.statements], path=path(a.path),
            changes=[hop(e) for e in a.holder.changes], alternatives=[path(p) for p in a.alternatives],
        )
        for a in accesses
    ]
    chunk, page = page_of(entries, offset, limit, limits)
    # An unknown policy among the resources asked about travels as a note (``incomplete: ...``), so a
    # client that reads notes sees that principals may be missing.
    return list(result.resources), actions, chunk, page, [*result.notes, *(x.text() for x in result.incomplete)]


def _level(text: str) -> str:
    from iamgraph.catalog import AccessLevel

    norm = text.lower().replace(" ", "").replace("-", "")
    if norm not in {lv.value.lower().replace(" ", "") for lv in AccessLevel}:
        raise ApiError(422, "invalid_request", f"unknown access level {text!r}; one of: "
                       + ", ".join(lv.value for lv in AccessLevel), location="access_level")
    return norm


def access_of(deadline: Deadline, state: State, principal: str, service: str | None, access_level: str | None,
              offset: int, limit: int, limits: Limits) -> tuple[list[AccessEntry], Page, list[str]]:
    """What one principal can do, directly and through every principal it can act as (iamgraph.query.what_can)."""
    from iamgraph.query.what_can import what_can, what_can_incomplete

    graph = state.graph()
    if principal not in graph.g:
        raise NotFoundError(f"the snapshot has no principal {principal}")
    deadline.check()
    found = cached(state, ("what-can", principal), lambda: what_can(graph, principal))
    level = _level(access_level) if access_level else None
    entries = [
        AccessEntry(service=p.service, access_level=p.access_level, actions=list(p.actions), resource=p.resource,
                    via=p.via, path=path(p.path), conditional=p.conditional)
        for p in found
        if (service is None or p.service == service.lower())
        and (level is None or p.access_level.lower().replace(" ", "") == level)
    ]
    return (*page_of(entries, offset, limit, limits), _notes(what_can_incomplete(graph)))


def _notes(gaps: tuple[Incomplete, ...]) -> list[str]:
    """``incomplete`` notes as the API carries them: one ``incomplete: <resource>: <reason>`` line each, in
    ``notes`` (as who-can's), so a client that reads notes sees that the answer may be missing access."""
    return [x.text() for x in gaps]


def escalations(deadline: Deadline, state: State, principal: str, k: int, offset: int, limit: int,
                limits: Limits) -> tuple[bool, list[EscalationOut], Page, list[str], list[str]]:
    from iamgraph.query.incomplete import moves_incomplete
    from iamgraph.query.paths import reach
    from iamgraph.query.privesc import EscalationKind, escalations_of

    if k > limits.max_paths:
        raise ApiError(422, "too_many_paths", f"paths={k} is over the limit of {limits.max_paths}", location="paths")
    graph = state.graph()
    if principal not in graph.g:
        raise NotFoundError(f"the snapshot has no principal {principal}")
    deadline.check()
    found = cached(state, ("privesc", principal), lambda: sorted(escalations_of(graph, principal),
                                                                  key=lambda e: e.rank()))
    out = [
        EscalationOut(principal=e.principal, kind=e.kind.value, account=e.account, admin=e.admin,
                      path=path(e.path), changes=[hop(c) for c in e.changes],
                      change_paths=[path(p) for p in e.change_paths], definite=e.definite,
                      conditions=conditions(e.conditions), assumptions=list(e.assumptions),
                      definite_path=path(e.definite_path) if e.definite_path is not None else None)
        for e in found[: max(k, 0) or None]
    ] if k else []
    admin = any(e.kind is EscalationKind.ADMIN for e in found)
    radius = sorted(n for n in reach(graph, principal) if n != principal) if principal in graph.acts else []
    chunk, page = page_of(out, offset, limit, limits)
    return admin, chunk, page, radius, _notes(moves_incomplete(graph))


def exposures(deadline: Deadline, state: State, offset: int, limit: int, limits: Limits
              ) -> tuple[list[ExposureEntry], Page, list[str]]:
    from iamgraph.query.exposure import exposure
    from iamgraph.query.incomplete import all_unknown

    graph = state.graph()
    deadline.check()
    found = cached(state, ("exposure",), lambda: exposure(graph))
    entries = [
        ExposureEntry(resource=e.resource, resource_type=e.resource_type, principal=e.principal,
                      scope=e.scope.value, actions=list(e.actions), definite=e.definite,
                      conditions=conditions(e.conditions), statements=[ref(r) for r in e.statements],
                      path=path(e.path) if e.path is not None else None)
        for e in found
    ]
    return (*page_of(entries, offset, limit, limits), _notes(all_unknown(graph)))


def conflict_out(c: Any) -> SodConflictOut:
    return SodConflictOut(
        rule=c.rule.id, title=c.rule.title, severity=c.rule.severity, principal=c.principal,
        resource=resource_pattern(c.resource) if c.resource else c.resource, definite=c.definite,
        evidence=[SodEvidence(capability=e.capability, action=e.action, resource=resource_pattern(e.resource),
                              holder=e.holder,
                              path=path(e.path), statements=[ref(r) for r in e.statements],
                              conditions=conditions(e.conditions)) for e in c.evidence],
    )


def sod_conflicts(deadline: Deadline, state: State, principal: str | None, rule: str | None, offset: int,
                  limit: int, limits: Limits) -> tuple[list[SodConflictOut], Page, list[str]]:
    from iamgraph.query.sod import load_rules, sod, sod_incomplete

    graph = state.graph()
    deadline.check()
    try:
        rules = load_rules()
    except IamGraphError as exc:
        raise ApiError(409, "sod_rules_unavailable", f"the server's SoD rules cannot be loaded: {exc}") from None
    if rule is not None:
        rules = tuple(r for r in rules if r.id == rule)
        if not rules:
            raise NotFoundError(f"no SoD rule with id {rule!r}")
    found = cached(state, ("sod", principal, rule), lambda: sod(graph, rules, principal=principal))
    return (*page_of([conflict_out(c) for c in found], offset, limit, limits), _notes(sod_incomplete(graph, rules)))
