"""POST /v1/access-requests/evaluate."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends

from api import deps
from api.audit import AuditLog
from api.auth import Caller, require
from api.errors import responses
from api.holder import State
from api.limits import run_limited
from api.schemas import AccessRequestBody, AccessRequestResponse
from api.services.access import evaluate as run_evaluate
from api.services.convert import canonical_json
from api.settings import Settings
from iamgraph.serving.tokens import Scope

router = APIRouter(prefix="/v1", tags=["access requests"])


def _what(body: AccessRequestBody) -> dict[str, object]:
    what = body.what.model_dump(exclude_none=True)
    if "policy_document" in what:
        raw = canonical_json(what["policy_document"])
        what["policy_document_sha256"] = hashlib.sha256(raw).hexdigest()
    return what


@router.post("/access-requests/evaluate", response_model=AccessRequestResponse,
             responses=responses(400, 401, 403, 404, 413, 422, 503))
async def evaluate(body: AccessRequestBody, st: State = Depends(deps.state), cfg: Settings = Depends(deps.settings),
                   audit: AuditLog = Depends(deps.audit), caller: Caller = Depends(require(Scope.EVALUATE))) -> AccessRequestResponse:
    """Evaluate an access request before anyone grants it: the new access it creates (diffed with the engine),
    the privilege-escalation paths it opens (graph rebuilt with the grant), SoD conflicts it creates, parliament
    findings, how much is already granted, a least-privilege alternative scoped to the stated need, and a
    verdict (approve, review, deny) with machine-readable reasons. Deterministic for a given snapshot. Every
    call is written to the audit log."""
    who = body.who.model_dump(exclude_none=True)
    try:
        result, cached = await run_limited(cfg.limits.time_limit_seconds, run_evaluate, st, body, cfg.limits)
    except Exception as exc:
        audit.record("access_request.evaluate", caller.name, principal=who, what=_what(body), verdict=None,
                     error=str(exc), snapshot_hash=st.content_hash)
        raise
    audit.record("access_request.evaluate", caller.name, request_id=result.request_id, principal=who, what=_what(body),
                 justification=body.justification, duration_hours=body.duration_hours, verdict=result.verdict.value,
                 reasons=[r.code for r in result.reasons], snapshot_hash=st.content_hash,
                 cached=cached)
    return result
