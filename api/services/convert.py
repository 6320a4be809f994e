"""Internal values -> wire models."""

from __future__ import annotations

import json
from typing import Any

import orjson

from api.schemas import HopOut, PathOut, ResidualOut, StatementRefOut
from iamgraph.eval.types import ResidualCondition, StatementRef


def residual(c: ResidualCondition) -> ResidualOut:
    return ResidualOut(operator=c.operator, key=c.key, values=[_plain(v) for v in c.values], negated=c.negated)


def conditions(conds: tuple[tuple[ResidualCondition, ...], ...]) -> list[list[ResidualOut]]:
    return [[residual(c) for c in term] for term in conds]


def ref(r: StatementRef) -> StatementRefOut:
    return StatementRefOut(policyType=r.policy_type.value, policyId=r.policy_id, statementIndex=r.statement_index,
                           sid=r.sid, effect=r.effect)


def _plain(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return str(v)


def hop(e: Any) -> HopOut:
    """A graph ``Edge`` on the wire."""
    return HopOut(
        kind=e.kind.value,
        source=e.source,
        target=e.target,
        via=list(e.reason.via),
        target_resource=e.reason.target,
        service=e.reason.service,
        note=e.reason.note,
        statements=[ref(s) for s in e.statements],
        conditions=conditions(e.conditions),
        assumptions=list(e.assumptions),
    )


def path(p: Any) -> PathOut:
    """A ``iamgraph.query.paths.Path`` on the wire."""
    return PathOut(nodes=list(p.nodes), hops=[hop(e) for e in p.hops], definite=p.definite,
                   conditions=conditions(p.conditions), assumptions=list(p.assumptions))


def canonical_json(value: Any) -> bytes:
    """Sorted-key JSON bytes. orjson holds integers to 64 bits; JSON (and a request) may carry longer ones."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
