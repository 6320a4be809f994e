"""Exposure: resources and roles that principals outside the organization, or anyone, can reach.

Outsiders are evaluated by the engine with their own (unknown) identity policies assumed to allow,
so the resource's policy, the RCPs of its account and any Deny decide. A conditional answer whose
every alternative pins the caller to this organization or its accounts (``aws:PrincipalOrgID``,
``aws:PrincipalAccount``, ...) is not exposure; any other condition is shown with the finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from iamgraph.catalog import get_catalog
from iamgraph.eval.types import Decision, ResidualCondition, StatementRef
from iamgraph.graph import AccessGraph, EdgeKind, NodeKind
from iamgraph.graph.candidates import instantiate, policy_principals, statement_covers
from iamgraph.graph.rules.assume import PUBLIC, external_node
from iamgraph.graph.types import Conditions, and_conditions
from iamgraph.query.paths import Path, path_of, reach, walk_back
from iamgraph.query.who_can import RULE, outsider_decision

_ORG_KEYS = {
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:sourceaccount",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:principalarn",
    "aws:sourcearn",
    "aws:sourceowner",
}


class Scope(StrEnum):
    PUBLIC = "public"
    OUTSIDE_ORG = "outside-organization"
    FEDERATED = "federated"


@dataclass(frozen=True, slots=True, kw_only=True)
class Exposure:
    resource: str
    resource_type: str
    principal: str
    scope: Scope
    actions: tuple[str, ...]
    statements: tuple[StatementRef, ...]
    conditions: Conditions = ()
    path: Path | None = None
    """For a role reached through other roles: from the exposed entry role to this one."""

    @property
    def definite(self) -> bool:
        return not self.conditions


def _requires_match(c: ResidualCondition) -> bool:
    """Whether access needs the key to equal/match the values: a positive Allow clause, or a Deny's
    negative clause (``Deny ... StringNotEquals`` is passed only by matching)."""
    op = c.operator.lower().split(":")[-1]
    positive = op.startswith(("stringequals", "stringlike", "arnequals", "arnlike"))
    negative = op.startswith(("stringnotequals", "stringnotlike", "arnnotequals", "arnnotlike"))
    return positive if not c.negated else negative


def _pins_to_org(conj: tuple[ResidualCondition, ...], org_id: str | None, accounts: frozenset[str]) -> bool:
    for c in conj:
        if c.key.lower() not in _ORG_KEYS or not _requires_match(c):
            continue
        values = [str(v) for v in c.values]
        inside = all(
            (org_id is not None and org_id in v) or any(a in v for a in accounts) for v in values
        )
        if inside and values:
            return True
    return False


def _pins_subject(conj: tuple[ResidualCondition, ...]) -> bool:
    """An OIDC/Cognito trust condition naming who may federate (``...:sub``, Cognito's ``:aud``)."""
    for c in conj:
        key = c.key.lower()
        if not (key.endswith(":sub") or key == "cognito-identity.amazonaws.com:aud") or not _requires_match(c):
            continue
        if c.values and all(str(v) and not str(v).startswith("*") and str(v) != "repo:*" for v in c.values):
            return True
    return False


def restricted_to_subject(conds: Conditions) -> bool:
    return bool(conds) and all(_pins_subject(conj) for conj in conds)


def restricted_to_org(graph: AccessGraph, d: Decision | Conditions) -> bool:
    conds = d.conditions if isinstance(d, Decision) else d
    if not conds:
        return False
    return all(_pins_to_org(conj, graph.ctx.org_id, graph.ctx.org_accounts) for conj in conds)


def _scope(graph: AccessGraph, node: str) -> Scope | None:
    kind = graph.node_kind(node)
    if kind is NodeKind.PUBLIC:
        return Scope.PUBLIC
    if kind is NodeKind.EXTERNAL_ACCOUNT:
        acct = node.split(":")[4]
        return None if acct in graph.ctx.org_accounts else Scope.OUTSIDE_ORG
    if kind in (NodeKind.FEDERATED, NodeKind.OIDC_PROVIDER):
        return Scope.FEDERATED
    return None


def exposure(graph: AccessGraph) -> list[Exposure]:
    out = resource_exposures(graph)
    out.extend(role_exposures(graph))
    out.sort(key=lambda e: (e.scope != Scope.PUBLIC, e.resource, e.principal))
    return out


def resource_exposures(graph: AccessGraph) -> list[Exposure]:
    ctx = graph.ctx
    cat = get_catalog()
    out: list[Exposure] = []
    for res in ctx.index.resources.values():
        # The resource policy and, for a KMS key, its grants: a grant to another account's principal opens
        # the key to it as a key policy statement would (https://docs.aws.amazon.com/kms/latest/developerguide/grants.html).
        policies = [p for p in (ctx.candidates.parsed(f"{res.arn}:policy", res.policy, trust=True),
                                *ctx.grant_policies(res.arn)) if p is not None]
        if not policies:
            continue
        service = res.arn.split(":")[2]
        found = [policy_principals(p) for p in policies]
        outsiders: list[tuple[str, str, dict[str, str] | None]] = []
        if any(tp.everyone for tp in found):
            outsiders.append((PUBLIC, "anonymous", None))
        for acct in dict.fromkeys(a for tp in found for a in tp.accounts):
            if acct not in ctx.org_accounts:
                outsiders.append((external_node(acct), external_node(acct), {"aws:PrincipalAccount": acct}))
        for arn in dict.fromkeys(a for tp in found for a in tp.arns):
            acct = arn.split(":")[4] if arn.count(":") >= 5 else ""
            if acct and acct not in ctx.org_accounts:
                outsiders.append((external_node(acct), arn, {"aws:PrincipalAccount": acct}))
        if not outsiders:
            continue
        actions: set[str] = set()
        targets: set[str] = set()
        for st in (st for p in policies for st in p.statements):
            if not st.is_allow:
                continue
            for act in cat.actions_of(service):
                if statement_covers(st, act):
                    actions.add(act)
            for pattern in st.resource or ("*",):
                targets.add(instantiate(pattern, res.arn))
        for node, caller, context in outsiders:
            groups: dict[str, tuple[list[str], list[StatementRef], Conditions]] = {}
            for act in sorted(actions):
                for target in sorted(targets):
                    d = outsider_decision(graph, caller, act, target, res.arn, context)
                    if d is None or restricted_to_org(graph, d):
                        continue
                    key = repr(d.conditions)
                    acts, refs, _ = groups.setdefault(key, ([], [], d.conditions))
                    if act not in acts:
                        acts.append(act)
                    refs.extend(r for r in d.reasons if r not in refs)
                    break
            for acts, refs, conds in groups.values():
                out.append(Exposure(
                    resource=res.arn, resource_type=res.type, principal=node,
                    scope=Scope.PUBLIC if node == PUBLIC else Scope.OUTSIDE_ORG,
                    actions=tuple(acts), statements=tuple(refs), conditions=conds,
                ))
    return out


def role_exposures(graph: AccessGraph) -> list[Exposure]:
    """Roles outsiders can assume, and every principal reachable from those roles.

    A principal reached through another exposed role is listed once per outside principal, and not
    at all when that outside principal can already assume it directly.
    """
    direct: list[Exposure] = []
    for e in graph.edges((EdgeKind.ASSUME_ROLE, EdgeKind.FEDERATION)):
        scope = _scope(graph, e.source)
        if scope is None or restricted_to_org(graph, e.conditions):
            continue
        if scope is Scope.FEDERATED and restricted_to_subject(e.conditions):
            # A web identity trust pinned to a subject (a repository, a user) admits only that subject.
            continue
        direct.append(Exposure(
            resource=e.target, resource_type="iam:role", principal=e.source, scope=scope,
            actions=e.reason.via, statements=e.statements, conditions=e.conditions,
        ))
    seen = {(x.principal, x.resource) for x in direct}
    out = list(direct)
    for x in direct:
        parent = reach(graph, x.resource)
        for node in parent:
            if (x.principal, node) in seen or graph.node_kind(node) not in (NodeKind.ROLE, NodeKind.USER):
                continue
            seen.add((x.principal, node))
            p = path_of(graph, walk_back(parent, node))
            out.append(Exposure(
                resource=node, resource_type="iam:" + graph.node_kind(node).value.lower(), principal=x.principal,
                scope=x.scope, actions=tuple(a for hop in p.hops for a in hop.reason.via), statements=x.statements,
                conditions=and_conditions(x.conditions, p.conditions), path=p,
            ))
    return out


__all__ = ["RULE", "Exposure", "Scope", "exposure", "restricted_to_org"]
