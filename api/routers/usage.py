"""Unused permissions and trimmed-policy recommendations (need a usage store: ``iamgraph serve --usage DB``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from api import deps
from api.admission import run_admitted
from api.deps import Call
from api.errors import responses
from api.schemas import RecommendationResponse, UnusedResponse
from api.services import usage as svc

router = APIRouter(prefix="/v1", tags=["usage"])
ERRORS = responses(400, 401, 403, 404, 409, 422, 429, 503)
Days = Query(90, ge=1, le=3650, description="Activity window in days, ending at the newest recorded activity.")
Arn = Path(..., min_length=1, max_length=2048, description="The principal's ARN (URL-encoded).")


@router.get("/principals/{arn:path}/unused", response_model=UnusedResponse, responses=ERRORS)
async def unused(request: Request, arn: str = Arn, days: int = Days, offset: int = Query(0, ge=0, le=10_000_000),
                 limit: int = Query(100, ge=1, le=500), call: Call = Depends(deps.READ)) -> UnusedResponse:
    """Unused services and actions (observable ones only; the rest is reported as unobservable), never-used
    roles, unused passwords and keys of the principal; what each account and region logged is judged from the
    store and the server's config file (`iamgraph serve --config`, section evidence.logged). 409 when no usage
    store is loaded."""
    cfg = call.settings
    return await run_admitted(request, call.caller, svc.unused, call.state, cfg.usage, arn, days, offset, limit,
                              cfg.limits, cfg.recommend.logged)


@router.get("/principals/{arn:path}/recommendation", response_model=RecommendationResponse, responses=ERRORS)
async def recommendation(request: Request, arn: str = Arn, days: int = Days,
                         call: Call = Depends(deps.READ)) -> RecommendationResponse:
    """Verified trimmed policy proposals for the principal from its recorded use (docs/recommend.md), under the
    server's config file (`iamgraph serve --config`: sections recommend and evidence.logged); a proposal that
    fails verification is reported, not emitted. 409 when no usage store is loaded."""
    cfg = call.settings
    return await run_admitted(request, call.caller, svc.recommendation, call.state, cfg.usage, arn, days,
                              cfg.recommend)
