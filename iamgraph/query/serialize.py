"""Plain JSON-able dicts of query results (the CLI's ``--json`` and the API use them)."""

from __future__ import annotations

from typing import Any

from iamgraph.eval.types import StatementRef
from iamgraph.graph.export import edge_data
from iamgraph.graph.types import Conditions
from iamgraph.query.blast import BlastRadius
from iamgraph.query.exposure import Exposure
from iamgraph.query.incomplete import Incomplete
from iamgraph.query.paths import Path
from iamgraph.query.privesc import Escalation
from iamgraph.query.sensitive import SensitiveAccess
from iamgraph.query.sod import Conflict, resource_pattern
from iamgraph.query.what_can import Permission
from iamgraph.query.who_can import Access


def statements(refs: tuple[StatementRef, ...]) -> list[dict[str, Any]]:
    return [{"policy_type": r.policy_type.value, "policy_id": r.policy_id, "statement_index": r.statement_index,
             "sid": r.sid, "effect": r.effect} for r in refs]


def conditions(conds: Conditions) -> list[list[dict[str, Any]]]:
    """Disjunction (outer) of conjunctions (inner); empty = no condition."""
    return [[{"operator": c.operator, "key": c.key, "values": [str(v) for v in c.values], "negated": c.negated}
             for c in conj] for conj in conds]


def incomplete(x: Incomplete) -> dict[str, Any]:
    return {"resource": x.resource, "reason": x.reason}


def path(p: Path) -> dict[str, Any]:
    return {"nodes": list(p.nodes), "hops": [edge_data(e) for e in p.hops], "conditions": conditions(p.conditions),
            "assumptions": list(p.assumptions)}


def access(a: Access) -> dict[str, Any]:
    return {
        "principal": a.principal,
        "principal_kind": a.principal_kind.value,
        "action": a.action,
        "resource": a.resource,
        "how": a.how.value,
        "definite": a.definite,
        "holder": a.holder.principal,
        "statements": statements(a.statements),
        "changes": [edge_data(e) for e in a.holder.changes],
        "path": path(a.path),
        "change_paths": [path(p) for p in a.change_paths],
        "alternatives": [path(p) for p in a.alternatives],
        "conditions": conditions(a.conditions),
        "assumptions": list(a.assumptions),
    }


def escalation(e: Escalation) -> dict[str, Any]:
    return {
        "principal": e.principal, "kind": e.kind.value, "account": e.account, "admin": e.admin,
        "length": e.length, "definite": e.definite, "path": path(e.path),
        "changes": [edge_data(c) for c in e.changes], "change_paths": [path(p) for p in e.change_paths],
        "conditions": conditions(e.conditions), "assumptions": list(e.assumptions),
        "definite_path": path(e.definite_path) if e.definite_path is not None else None,
    }


def exposure(x: Exposure) -> dict[str, Any]:
    return {
        "resource": x.resource, "resource_type": x.resource_type, "principal": x.principal, "scope": x.scope.value,
        "actions": list(x.actions), "statements": statements(x.statements), "conditions": conditions(x.conditions),
        "definite": x.definite, "path": path(x.path) if x.path else None,
    }


def sensitive_access(s: SensitiveAccess) -> dict[str, Any]:
    return {"resource": s.resource, "resource_type": s.resource_type, "tags": s.tags, "kind": s.kind.value,
            **{k: v for k, v in access(s.access).items() if k != "resource"}}


def conflict(c: Conflict) -> dict[str, Any]:
    return {
        "rule": c.rule.id, "title": c.rule.title, "severity": c.rule.severity, "principal": c.principal,
        "resource": resource_pattern(c.resource) if c.resource else c.resource, "definite": c.definite,
        "evidence": [
            {"capability": e.capability, "action": e.action, "resource": resource_pattern(e.resource), "holder": e.holder,
             "path": path(e.path), "statements": statements(e.statements), "conditions": conditions(e.conditions)}
            for e in c.evidence
        ],
    }


def permission(p: Permission) -> dict[str, Any]:
    return {"service": p.service, "access_level": p.access_level, "actions": list(p.actions),
            "resource": p.resource, "via": p.via, "path": path(p.path), "conditional": p.conditional,
            "conditions": conditions(p.conditions), "assumptions": list(p.assumptions)}


def blast(b: BlastRadius) -> dict[str, Any]:
    return {
        "principal": b.principal, "access_key_id": b.access_key_id,
        "reachable": [{"principal": n, "path": path(p)} for n, p in b.reachable],
        "admin": [escalation(e) for e in b.admin],
        "sensitive": [sensitive_access(s) for s in b.sensitive],
        "resource_takeovers": [{"source": e.source, "resource": e.target, **edge_data(e)} for e in b.resource_takeovers],
        "minimal_cut": [{"source": e.source, "target": e.target, **edge_data(e)} for e in b.cut],
        "cut_note": b.cut_note,
        "incomplete": [incomplete(x) for x in b.incomplete],
    }
