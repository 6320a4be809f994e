"""POST /v1/simulate."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from api import deps
from api.admission import run_admitted
from api.deps import Call
from api.errors import responses
from api.schemas import SimulateBody, SimulateResponse
from api.services.simulate import simulate as run_simulate

router = APIRouter(prefix="/v1", tags=["simulate"])


@router.post("/simulate", response_model=SimulateResponse, responses=responses(400, 401, 403, 404, 413, 422, 429, 503))
async def simulate(request: Request, body: SimulateBody, call: Call = Depends(deps.READ)) -> SimulateResponse:
    """Decide requests as AWS would: one (``request``) or a batch (``batch``, the engine's JSON-lines format
    as a list). A line with ``policies`` is decided against those policies alone; a line without them against
    the loaded snapshot (the principal's policies, boundary, SCPs/RCPs and the resource's policy).
    ``mode``: strict (the context given is the whole context) or discovery (conditions on keys nobody
    supplied come back as residual conditions). ``explain``: include the deciding statements."""
    return await run_admitted(request, call.caller, run_simulate, call.state, body, call.settings.limits)
