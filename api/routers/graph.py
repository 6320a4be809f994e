"""The graph questions: who-can, a principal's access and escalation paths, exposure, SoD conflicts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from api import deps
from api.answers import answered, respond
from api.deps import Call
from api.errors import responses
from api.limits import Deadline
from api.schemas import AccessResponse, ExposureResponse, PathsResponse, SodResponse, WhoCanResponse
from api.services import graph_queries as q

router = APIRouter(prefix="/v1", tags=["graph"])
ERRORS = responses(400, 404, 409, 429, 503)
# Each route names its answer by every parameter that shapes it (paging included): a repeated query on the same
# snapshot is answered from the kept bytes on the event loop (api.answers), a new one in the work pool.

Offset = Query(0, ge=0, le=10_000_000, description="Index of the first item to return.")
Limit = Query(100, ge=1, le=500, description="Items per page (at most 500).")
Arn = Path(..., min_length=1, max_length=2048, description="The principal's ARN (URL-encoded).")


@router.get("/who-can", response_model=WhoCanResponse, responses=ERRORS)
async def who_can(
    request: Request,
    resource: str = Query(..., min_length=1, max_length=2048, description="A resource ARN, or a pattern with * "
                          "and ? matched against the snapshot's ARNs."),
    action: str | None = Query(None, max_length=256, description="An action or action pattern (s3:Get*)."),
    access_level: str | None = Query(None, max_length=64, description="List, Read, Write, Permissions "
                                     "management or Tagging: every action of that level on the resource."),
    paths: int = Query(1, ge=0, le=20, description="Alternative paths to return per principal."),
    offset: int = Offset, limit: int = Limit,
    call: Call = Depends(deps.READ),
) -> Response:
    """Every principal that can perform the action(s) on the resource: directly, through a path of roles it can
    act as, by taking over the resource's policy, or by first escalating; each with the deciding statements and
    the conditions it depends on. Without ``action`` and ``access_level``: any action on the resource; with both,
    the actions matching ``action`` that have that access level."""
    st, cfg = call.state, call.settings

    def compute(deadline: Deadline) -> WhoCanResponse:
        resources, actions, entries, page, notes = q.who_can(
            deadline, st, resource, action, access_level, paths, offset, limit, cfg.limits)
        return WhoCanResponse(resources=resources, actions=actions, page=page, accesses=entries, notes=notes)

    key = ("who-can", resource, action, access_level, paths, offset, limit)
    return respond(await answered(request, call, key, compute))


@router.get("/principals/{arn:path}/access", response_model=AccessResponse, responses=ERRORS)
async def principal_access(
    request: Request,
    arn: str = Arn,
    service: str | None = Query(None, max_length=64, description="Only this service prefix (s3, iam, ...)."),
    access_level: str | None = Query(None, max_length=64, description="Only this access level (List, Read, "
                                     "Write, Permissions management, Tagging)."),
    offset: int = Offset, limit: int = Limit,
    call: Call = Depends(deps.READ),
) -> Response:
    """What the principal can do, by service, access level and resource pattern: its own policies and those of
    every principal it can act as (with the path), each action confirmed by the engine."""
    st, cfg = call.state, call.settings

    def compute(deadline: Deadline) -> AccessResponse:
        entries, page, notes = q.access_of(deadline, st, arn, service, access_level, offset, limit, cfg.limits)
        return AccessResponse(principal=arn, page=page, access=entries, notes=notes)

    key = ("access", arn, service, access_level, offset, limit)
    return respond(await answered(request, call, key, compute))


@router.get("/principals/{arn:path}/paths", response_model=PathsResponse, responses=ERRORS)
async def principal_paths(
    request: Request,
    arn: str = Arn,
    paths: int = Query(5, ge=0, le=20, description="Escalations to return, best first."),
    offset: int = Offset, limit: int = Limit,
    call: Call = Depends(deps.READ),
) -> Response:
    """Privilege escalation: how the principal becomes admin-equivalent (ranked), and its blast radius (every
    principal it can act as)."""
    st, cfg = call.state, call.settings

    def compute(deadline: Deadline) -> PathsResponse:
        admin, escalations, page, radius, notes = q.escalations(deadline, st, arn, paths, offset, limit,
                                                                cfg.limits)
        return PathsResponse(principal=arn, admin=admin, page=page, escalations=escalations, blast_radius=radius,
                             notes=notes)

    key = ("paths", arn, paths, offset, limit)
    return respond(await answered(request, call, key, compute))


@router.get("/exposure", response_model=ExposureResponse, responses=ERRORS)
async def exposure(request: Request, offset: int = Offset, limit: int = Limit, call: Call = Depends(deps.READ)
                   ) -> Response:
    """Resources and roles reachable from outside the organization: public, other accounts, federated."""
    st, cfg = call.state, call.settings

    def compute(deadline: Deadline) -> ExposureResponse:
        entries, page, notes = q.exposures(deadline, st, offset, limit, cfg.limits)
        return ExposureResponse(page=page, exposures=entries, notes=notes)

    return respond(await answered(request, call, ("exposure", offset, limit), compute))


@router.get("/sod/conflicts", response_model=SodResponse, responses=ERRORS)
async def sod_conflicts(
    request: Request,
    principal: str | None = Query(None, max_length=2048, description="Only this principal's conflicts."),
    rule: str | None = Query(None, max_length=128, description="Only this rule's conflicts (rule id)."),
    offset: int = Offset, limit: int = Limit,
    call: Call = Depends(deps.READ),
) -> Response:
    """Separation-of-duties conflicts under the shipped rules (iamgraph/data/sod-rules.yaml), with evidence."""
    st, cfg = call.state, call.settings

    def compute(deadline: Deadline) -> SodResponse:
        entries, page, notes = q.sod_conflicts(deadline, st, principal, rule, offset, limit, cfg.limits)
        return SodResponse(page=page, conflicts=entries, notes=notes)

    key = ("sod", principal, rule, offset, limit)
    return respond(await answered(request, call, key, compute))
