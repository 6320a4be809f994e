"""Usage-backed answers: unused permissions (iamgraph.usage) and recommendations (iamgraph.recommend)."""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.errors import ApiError
from api.holder import State
from api.limits import Deadline
from api.schemas import Page, RecommendationResponse, UnusedFindingOut, UnusedResponse
from api.services.graph_queries import page_of
from api.settings import Limits
from iamgraph.errors import NotFoundError

if TYPE_CHECKING:
    from iamgraph.recommend.config import RecommendConfig
    from iamgraph.usage.logged import LoggedOverride


def _need_store(usage: Path | None) -> Path:
    if usage is None:
        raise ApiError(409, "no_usage_data", "this server has no usage store loaded (start it with --usage DB); "
                       "unused permissions and recommendations need recorded activity")
    return usage


def _need_principal(state: State, arn: str) -> None:
    if arn not in state.index.users and arn not in state.index.roles:
        raise NotFoundError(f"the snapshot has no IAM user or role {arn}")


def unused(deadline: Deadline, state: State, usage: Path | None, arn: str, days: int, offset: int, limit: int,
           limits: Limits, logged: LoggedOverride | None = None) -> UnusedResponse:
    """``logged``: the ``evidence.logged`` section of the server's config file (what each place's trails log)."""
    from iamgraph.usage.store import UsageStore
    from iamgraph.usage.unused import unused_report

    path = _need_store(usage)
    _need_principal(state, arn)
    with UsageStore(path, read_only=True) as store:
        # The window ends at the newest recorded activity (the Days parameter's contract), not the wall clock.
        report = unused_report(state.snapshot, store, days=days, principals=[arn], now=store.latest_activity(),
                               logged=logged)
    deadline.check()
    findings = [
        UnusedFindingOut(kind=f.kind.value, severity=f.severity.value, confidence=f.confidence.value,
                         account_id=f.account_id, subject=f.subject, reason=f.reason,
                         last_seen=f.last_seen.isoformat() if f.last_seen else None, count=f.count, source=f.source)
        for f in report.findings if f.principal_arn == arn
    ]
    chunk, page = page_of(findings, offset, limit, limits)
    return UnusedResponse(principal=arn, window_start=report.window_start.isoformat(),
                          window_end=report.window_end.isoformat(), page=page, findings=chunk,
                          notes=list(report.notes))


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def recommendation(deadline: Deadline, state: State, usage: Path | None, arn: str, days: int,
                   config: RecommendConfig | None = None) -> RecommendationResponse:
    """``config``: the server's config file's ``recommend`` and ``evidence.logged`` sections (default: none)."""
    path = _need_store(usage)
    _need_principal(state, arn)
    from iamgraph.recommend import recommend_principal
    from iamgraph.usage.store import UsageStore

    with UsageStore(path, read_only=True) as store:
        rec = recommend_principal(state.index, store, arn, days=days, config=config, now=store.latest_activity())
    deadline.check()
    return RecommendationResponse(principal=arn, recommendation=_jsonable(rec))


__all__ = ["Page", "recommendation", "unused"]
