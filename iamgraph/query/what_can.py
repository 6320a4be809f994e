"""What a principal can do: effective permissions by service and access level, directly and through
every principal it can act as.

Each Allow statement's actions are expanded against the action catalog (NotAction included) and
each (action, resource pattern) is confirmed by the engine, so a Deny, SCP, boundary or condition
elsewhere is honoured; a wildcard resource pattern is asked about as the literal pattern.

The engine is asked once per class of actions it cannot tell apart under the principal's compiled
policy set on that pattern (``iamgraph.eval.compiled.action_classes``), not once per action: a
principal granted ``*`` has about 18,000 actions but a few hundred classes. ``exhaustive=True``
asks for every action instead: the reference the classes are tested against (slow).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iamgraph.catalog import get_catalog
from iamgraph.errors import IamGraphError, NotFoundError
from iamgraph.eval.compiled import action_classes
from iamgraph.graph import AccessGraph
from iamgraph.query.paths import Path, path_of, reach, single, walk_back

RULE = "what-can"


@dataclass(frozen=True, slots=True, kw_only=True)
class Permission:
    service: str
    access_level: str
    actions: tuple[str, ...]
    resource: str
    """The resource pattern as the granting statement writes it."""
    via: str
    """The principal whose policies grant it (the queried principal or one it can act as)."""
    path: Path
    conditional: bool


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
                                  conditional=not path.definite))
            continue
        statements = ctx.candidates.statements.get(node)
        if not statements:
            continue
        # (action, pattern) pairs, each asked once: the union over statements of what they cover.
        wanted: dict[str, set[str]] = {}
        for st in statements:
            covered = sorted(cat.statement_actions(st))[:max_actions]
            for pattern in st.resource or ("*",):
                wanted.setdefault(pattern, set()).update(covered)
        grouped: dict[tuple[str, str, str, bool], list[str]] = {}
        for pattern, actions in wanted.items():
            for members in _classes(ctx, node, pattern, actions, exhaustive):
                d = ctx.possible(RULE, node, members[0], pattern)
                if d is None:
                    continue
                for action in members:
                    level = levels.get(action)
                    if level is None:
                        info = cat.action(action)
                        level = levels[action] = info.access_level.value if info is not None else "Unknown"
                    key = (action.split(":", 1)[0], level, pattern, d.conditional or not path.definite)
                    grouped.setdefault(key, []).append(action)
        for (service, level, pattern, conditional), acts in grouped.items():
            out.append(Permission(service=service, access_level=level, actions=tuple(sorted(acts)),
                                  resource=pattern, via=node, path=path, conditional=conditional))
    out.sort(key=lambda p: (p.path.length, p.via, p.service, p.access_level, p.resource, p.conditional))
    return out


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
