"""What a principal can do: effective permissions by service and access level, directly and through
every principal it can act as.

Each Allow statement's actions are expanded against the action catalog (NotAction included) and
each (action, resource pattern) is confirmed by the engine, so a Deny, SCP, boundary or condition
elsewhere is honoured; a wildcard resource pattern is asked about as the literal pattern.

Resource-based policies grant too: a bucket, queue or key policy, a KMS grant or a role's trust policy
naming the principal (or everyone, or its account where that is more than delegation) adds its actions
on that resource, as the statement writes them and limited to the actions that apply to the resource
(``BuildContext.resource_statements``). The engine decides each, with AWS's same-account and
cross-account rules (an identity Allow is needed as well across accounts).

The engine is asked once per class of actions it cannot tell apart under the principal's compiled
policy set on that pattern (``iamgraph.eval.compiled.action_classes``), not once per action: a
principal granted ``*`` has about 18,000 actions but a few hundred classes. ``exhaustive=True``
asks for every action instead: the reference the classes are tested against (slow).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from iamgraph.catalog import get_catalog
from iamgraph.errors import IamGraphError, NotFoundError
from iamgraph.eval.compiled import action_classes
from iamgraph.graph import AccessGraph
from iamgraph.graph.candidates import resource_matches, statement_resources
from iamgraph.graph.types import Conditions, and_conditions
from iamgraph.model.policy import Statement
from iamgraph.query.incomplete import Incomplete, all_unknown
from iamgraph.query.paths import Path, path_of, reach, single, walk_back
from iamgraph.query.who_can import resolve_actions

RULE = "what-can"


@dataclass(frozen=True, slots=True, kw_only=True)
class Permission:
    service: str
    access_level: str
    actions: tuple[str, ...]
    resource: str
    """The resource pattern as the granting identity statement writes it; for a grant of a resource-based
    policy, the resource holding it (or, for a bucket policy, the object pattern it names)."""
    via: str
    """The principal whose policies grant it (the queried principal or one it can act as)."""
    path: Path
    conditional: bool
    conditions: Conditions = ()
    """The path's and the engine's residual conditions combined (none: granted outright)."""
    assumptions: tuple[str, ...] = ()


def what_can_incomplete(graph: AccessGraph) -> tuple[Incomplete, ...]:
    """The ``incomplete`` notes of any what-can answer: a resource whose policy could not be read may name the
    principal (or everyone, or its account) whatever account it is in, so every such resource is named."""
    return all_unknown(graph)


def what_can(
    graph: AccessGraph, principal: str, *, max_actions: int = 20000, exhaustive: bool = False
) -> list[Permission]:
    if principal not in graph.g:
        raise NotFoundError(f"the snapshot has no principal {principal}")
    cat = get_catalog()
    ctx = graph.ctx
    parent = reach(graph, principal)
    out: list[Permission] = []
    levels: dict[str, str] = {}
    for node in parent:
        nodes = walk_back(parent, node)
        if any(n.startswith("admin:") for n in nodes[:-1]):
            continue  # beyond an account's admin node everything is reachable: reported once, below
        path = path_of(graph, nodes) if len(nodes) > 1 else single(node)
        if node.startswith("admin:"):
            out.append(Permission(service="*", access_level="*", actions=("*",), resource="*", via=node, path=path,
                                  conditional=not path.definite, conditions=path.conditions,
                                  assumptions=path.assumptions))
            continue
        statements = ctx.candidates.statements.get(node) or ()
        granted = ctx.resource_statements(node) if node in graph.index.users or node in graph.index.roles else ()
        if not statements and not granted:
            continue
        # (action, pattern) pairs, each asked once: the union over statements of what they cover.
        wanted: dict[str, set[str]] = {}
        for st in statements:
            covered = sorted(cat.statement_actions(st))[:max_actions]
            for pattern in st.resource or ("*",):
                wanted.setdefault(pattern, set()).update(covered)
        for holder, st in granted:
            for target, actions in _granted_on(holder, st, max_actions):
                wanted.setdefault(target, set()).update(actions)
        grouped: dict[tuple[str, str, str, Conditions, str], list[str]] = {}
        for pattern, actions in wanted.items():
            for members in _classes(ctx, node, pattern, actions, exhaustive):
                d = ctx.possible(RULE, node, members[0], pattern)
                if d is None:
                    continue
                conds = and_conditions(path.conditions, d.conditions)
                for action in members:
                    level = levels.get(action)
                    if level is None:
                        info = cat.action(action)
                        level = levels[action] = info.access_level.value if info is not None else "Unknown"
                    grouped.setdefault((action.split(":", 1)[0], level, pattern, conds, _own_policy(action, pattern)),
                                       []).append(action)
        for (service, level, pattern, conds, own), acts in grouped.items():
            assumptions = (*path.assumptions, own) if own else path.assumptions
            out.append(Permission(service=service, access_level=level, actions=tuple(sorted(acts)),
                                  resource=pattern, via=node, path=path,
                                  conditional=bool(conds) or bool(assumptions), conditions=conds,
                                  assumptions=assumptions))
    out.sort(key=lambda p: (p.path.length, p.via, p.service, p.access_level, p.resource, p.conditional))
    return out


# Resources whose own policy must also allow a same-account request, whatever the identity policy says: a KMS
# key's key policy (https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html: "no AWS principal,
# including the account root user, has any permissions to a KMS key unless explicitly allowed in the key policy")
# and a role's trust policy for AssumeRole (https://docs.aws.amazon.com/IAM/latest/UserGuide/
# reference_policies_evaluation-logic-cross-account.html and id_roles_terms-and-concepts.html). The engine asked
# about a pattern such as "*" sees no such policy, so an answer on a pattern is only as good as each resource's own
# policy: said as an assumption, never as a definite grant.
_OWN_POLICY = {
    ("kms", "key"): "each KMS key's own key policy must also allow this (asked of the pattern, not of each key)",
    ("sts", "role"): "each role's trust policy must also allow this (asked of the pattern, not of each role)",
}


def _own_policy(action: str, pattern: str) -> str:
    """The assumption an answer on ``pattern`` rests on when the action's resource has a policy of its own that
    must allow it (empty: none, or ``pattern`` names one resource, whose policy the engine read)."""
    if "*" not in pattern and "?" not in pattern:
        return ""
    info = get_catalog().action(action)
    if info is None:
        return ""
    for ref in info.resource_types:
        note = _OWN_POLICY.get((info.service, ref.name))
        if note is not None:
            return note
    return ""


def _granted_on(holder: str, st: Statement, max_actions: int) -> list[tuple[str, set[str]]]:
    """What a resource-based policy's Allow statement held by ``holder`` could grant: (resource, actions)
    pairs, the resource being the holder itself (a statement's ``*`` means the resource the policy is
    attached to) or, for a bucket, the object pattern the statement names; actions limited to those that
    apply to that resource (a bucket policy's ``s3:*`` grants no ``s3:GetObject`` on the bucket itself).
    A role's trust policy grants ``sts:`` actions on the role only."""
    covered = get_catalog().statement_actions(st)
    targets: list[str] = []
    for pattern in statement_resources(st):
        if pattern == "*" or resource_matches(pattern, holder):
            targets.append(holder)
        if _is_bucket(holder):
            prefix = holder + "/"
            if pattern.startswith(prefix):
                targets.append(pattern)
            elif pattern == "*" or resource_matches(pattern, prefix + "x"):
                targets.append(prefix + "*")
    out: list[tuple[str, set[str]]] = []
    role = ":iam::" in holder and ":role/" in holder
    for target in dict.fromkeys(targets):
        acts: set[str]
        if role:
            acts = {a for a in covered if a.lower().startswith("sts:")}
        else:
            acts = set(covered & _applicable(target))
        if acts:
            out.append((target, set(sorted(acts)[:max_actions])))
    return out


def _is_bucket(arn: str) -> bool:
    parts = arn.split(":", 5)
    return len(parts) == 6 and parts[2] == "s3" and not parts[3] and not parts[4] and "/" not in parts[5]


@lru_cache(maxsize=4096)
def _applicable(resource: str) -> frozenset[str]:
    """The catalog actions that apply to ``resource`` (who-can's ``--any``); none when no type matches."""
    try:
        return frozenset(resolve_actions(resource, any_action=True))
    except IamGraphError:
        return frozenset()


def _classes(ctx: Any, node: str, pattern: str, actions: set[str], exhaustive: bool) -> list[list[str]]:
    """``actions`` in classes the engine decides alike for ``node`` on ``pattern`` (singletons when
    ``exhaustive``). ``sts:`` actions get their own policy set (a role's trust policy applies)."""
    if exhaustive:
        return [[a] for a in sorted(actions)]
    out: list[list[str]] = []
    for sts in (False, True):
        group = [a for a in actions if a.lower().startswith("sts:") == sts]
        if not group:
            continue
        try:
            ps = ctx.ev.policy_set(node, pattern, action=group[0])
        except IamGraphError:
            out.extend([a] for a in sorted(group))  # each asked (and its failure recorded) as before
            continue
        supplied = [k for layer in (ctx.ev.principal_context(node), ctx.ev.resource_context(pattern))
                    for k, v in layer.items() if v is not None]
        out.extend(action_classes(ps, group, pattern, supplied=supplied))
    return out
