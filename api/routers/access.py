"""POST /v1/access-requests/evaluate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api import deps
from api.admission import run_admitted
from api.answers import Answer, keep, peek, remember, render, respond
from api.audit import audit_details, digest
from api.deps import Call
from api.errors import responses
from api.limits import Deadline
from api.schemas import AccessRequestBody, AccessRequestResponse
from api.services.access import evaluate as run_evaluate
from api.services.access import request_id
from api.services.convert import canonical_json

router = APIRouter(prefix="/v1", tags=["access requests"])

_DOCUMENTS = ("policy_document", "trust_policy")
"""Policy documents in ``who``/``what``: the audit log keeps their SHA-256 and size, never the document (a
refused oversized grant must not become an 800 KB audit line; the hash still identifies it)."""


def _without_documents(part: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in part.items():
        if key in _DOCUMENTS and value is not None:
            d = digest(canonical_json(value))
            out[f"{key}_sha256"], out[f"{key}_bytes"] = d["sha256"], d["bytes"]
        elif isinstance(value, dict):
            out[key] = _without_documents(value)
        else:
            out[key] = value
    return out


@router.post("/access-requests/evaluate", response_model=AccessRequestResponse,
             responses=responses(400, 401, 403, 404, 413, 422, 429, 503))
async def evaluate(request: Request, body: AccessRequestBody, call: Call = Depends(deps.EVALUATE)) -> Response:
    """Evaluate an access request before anyone grants it: the new access it creates (diffed with the engine),
    the privilege-escalation paths it opens (graph rebuilt with the grant), SoD conflicts it creates, parliament
    findings, how much is already granted, a least-privilege alternative scoped to the stated need, and a
    verdict (approve, review, deny) with machine-readable reasons. Deterministic for a given snapshot. Every
    call, answered or refused, is written to the audit log."""
    st, cfg = call.state, call.settings
    details = audit_details(request)
    details.update(principal=_without_documents(body.who.model_dump(exclude_none=True)),
                   what=_without_documents(body.what.model_dump(exclude_none=True)),
                   justification=body.justification, duration_hours=body.duration_hours,
                   snapshot_hash=st.content_hash, verdict=None)
    # The answer is a pure function of the request and the snapshot: a repeated request is answered from the
    # kept bytes on the event loop (api.answers); its audit line says cached, like one the service memoised.
    key = ("evaluate", request_id(body, st.content_hash))
    kept = peek(st, key)
    if kept is not None:
        answer, cached = kept, True
    else:

        def work(deadline: Deadline) -> tuple[Answer, bool]:
            result, memoised = run_evaluate(deadline, st, body, cfg.limits)
            return render(result), memoised

        answer, cached = await run_admitted(request, call.caller, work)
        keep(st, key, answer)
    result = answer.model
    assert isinstance(result, AccessRequestResponse)
    details.update(request_id=result.request_id, verdict=result.verdict.value,
                   reasons=[r.code for r in result.reasons], cached=cached)
    # The same request again is answered ahead of routing (api.answers.ServeKept), with this audit line's details.
    await remember(request, call, key, {**{k: v for k, v in details.items() if k != "token"}, "cached": True})
    return respond(answer)
