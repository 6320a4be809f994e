"""POST /v1/simulate: explicit policies through the engine's batch path, or the loaded snapshot's policies."""

from __future__ import annotations

from typing import Any

from api.errors import ApiError
from api.holder import State
from api.limits import Deadline
from api.schemas import SimLine, SimResult, SimulateBody, SimulateResponse
from api.services.convert import canonical_json, conditions, ref
from api.settings import Limits
from iamgraph.catalog import require_action
from iamgraph.errors import IamGraphError
from iamgraph.eval import Decision, DecisionKind
from iamgraph.eval.batch import evaluate_line
from iamgraph.eval.types import Mode
from iamgraph.eval.unsupplied import how_to_supply, unsupplied_keys


def check_policy_sizes(line: SimLine, limits: Limits, where: str) -> None:
    if line.policies is None:
        return
    pol = line.policies.model_dump(exclude_defaults=True)
    docs: list[tuple[str, Any]] = []
    for key, value in pol.items():
        if key in ("identity",):
            docs += [(f"{where}.policies.identity[{i}]", d) for i, d in enumerate(value)]
        elif key in ("scps", "rcps"):
            docs += [(f"{where}.policies.{key}[{i}][{j}]", d) for i, lvl in enumerate(value) for j, d in enumerate(lvl)]
        elif key in ("resource", "permissionBoundary", "session"):
            docs.append((f"{where}.policies.{key}", value))
    for loc, doc in docs:
        size = len(doc) if isinstance(doc, str) else len(canonical_json(doc))
        if size > limits.max_policy_chars:
            raise ApiError(422, "policy_too_large",
                           f"{loc}: policy of {size} characters is over the limit of {limits.max_policy_chars}",
                           location=loc)


def _result(line_id: Any, d: Decision, explain: bool) -> SimResult:
    from iamgraph.eval.batch import error_to_text

    return SimResult(
        id=line_id,
        decision=d.decision.value,
        conditional=d.conditional,
        conditions=conditions(d.conditions),
        reasons=[ref(r) for r in d.reasons] if explain else [],
        blockedBy=[t.value for t in d.blocked_by] if explain else [],
        error="; ".join(error_to_text(e) for e in d.errors) if d.errors else None,
    )


def _from_batch_json(out: dict[str, Any], explain: bool) -> SimResult:
    conds = out.get("conditions") or []
    return SimResult.model_validate({
        "id": out.get("id"),
        "decision": out["decision"],
        "conditional": out["decision"] == DecisionKind.ALLOWED.value and bool(conds),
        "conditions": conds,
        "reasons": out.get("reasons", []) if explain else [],
        "blockedBy": out.get("blockedBy", []) if explain else [],
        "error": out.get("error"),
    })


def simulate(deadline: Deadline, state: State, body: SimulateBody, limits: Limits) -> SimulateResponse:
    if (body.request is None) == (body.batch is None):
        raise ApiError(422, "invalid_request", "give exactly one of 'request' (one question) or 'batch' (a list)",
                       location="body")
    if body.batch is not None:
        if body.policies is not None:
            raise ApiError(422, "invalid_request", "'policies' goes inside each batch line", location="policies")
        if len(body.batch) > limits.max_batch:
            raise ApiError(422, "batch_too_large",
                           f"batch of {len(body.batch)} lines is over the limit of {limits.max_batch}",
                           location="batch")
        lines = body.batch
    else:
        assert body.request is not None
        lines = [SimLine(request=body.request, policies=body.policies)]
    for i, line in enumerate(lines):
        check_policy_sizes(line, limits, f"batch[{i}]" if body.batch is not None else "body")
        if len(line.request.context) > limits.max_context_keys:
            raise ApiError(422, "context_too_large",
                           f"request context has {len(line.request.context)} keys; the limit is "
                           f"{limits.max_context_keys}", location="request.context")
    results: list[SimResult] = []
    kinds = set()
    for line in lines:
        deadline.check()
        if line.policies is not None:
            kinds.add("explicit")
            raw = line.model_dump(exclude_none=True)
            raw["policies"] = line.policies.model_dump()
            results.append(_from_batch_json(evaluate_line(raw, body.mode), body.explain))
        else:
            kinds.add("snapshot")
            results.append(_snapshot_line(state, line, body.mode, body.explain, single=body.batch is None))
    source = "mixed" if len(kinds) > 1 else next(iter(kinds), "explicit")
    return SimulateResponse(mode=body.mode, snapshot_hash=state.content_hash, source=source,  # type: ignore[arg-type]
                            results=results)


def _snapshot_line(state: State, line: SimLine, mode: Mode, explain: bool, *, single: bool) -> SimResult:
    req = line.request
    try:
        require_action(req.action)  # as the CLI does: an action the catalog lacks is a 400, not a denial
        d = state.evaluator.ask(
            req.principal, req.action, req.resource,
            context=dict(req.context),  # type: ignore[arg-type]  # None: the key is known to be absent
            mode=mode, resource_account=req.resourceAccount,
        )
    except IamGraphError as exc:
        if single:
            raise
        # One bad line of a batch must not fail the others: the line carries its error, and never reads as allowed.
        return SimResult(id=line.id, decision="ImplicitlyDenied", conditional=False, conditions=[], reasons=[],
                         blockedBy=[], error=str(exc))
    out = _result(line.id, d, explain)
    if mode is Mode.STRICT:
        keys = unsupplied_keys(state.evaluator, req.principal, req.action, req.resource, d,
                               context=dict(req.context),  # type: ignore[arg-type]
                               resource_account=req.resourceAccount)
        if keys:
            out = out.model_copy(update={"unsuppliedKeys": list(keys), "note": how_to_supply(keys, api=True)})
    return out
