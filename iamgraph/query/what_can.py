"""What a principal can do: effective permissions by service and access level, directly and through
every principal it can act as.

Each Allow statement's actions are expanded against the action catalog (NotAction included) and
each (action, resource pattern) is confirmed by the engine, so a Deny, SCP, boundary or condition
elsewhere is honoured; a wildcard resource pattern is asked about as the literal pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

from iamgraph.catalog import get_catalog
from iamgraph.errors import NotFoundError
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


def what_can(graph: AccessGraph, principal: str, *, max_actions: int = 20000) -> list[Permission]:
    if principal not in graph.g:
        raise NotFoundError(f"the snapshot has no principal {principal}")
    cat = get_catalog()
    ctx = graph.ctx
    parent = reach(graph, principal)
    out: list[Permission] = []
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
        grouped: dict[tuple[str, str, str, bool], list[str]] = {}
        seen: set[tuple[str, str]] = set()
        for st in statements:
            actions = cat.statement_actions(st)
            for pattern in st.resource or ("*",):
                for action in sorted(actions)[:max_actions]:
                    if (action, pattern) in seen:
                        continue
                    seen.add((action, pattern))
                    d = ctx.possible(RULE, node, action, pattern)
                    if d is None:
                        continue
                    info = cat.action(action)
                    level = info.access_level.value if info is not None else "Unknown"
                    key = (action.split(":", 1)[0], level, pattern, d.conditional or not path.definite)
                    grouped.setdefault(key, []).append(action)
        for (service, level, pattern, conditional), acts in grouped.items():
            out.append(Permission(service=service, access_level=level, actions=tuple(sorted(acts)),
                                  resource=pattern, via=node, path=path, conditional=conditional))
    out.sort(key=lambda p: (p.path.length, p.via, p.service, p.access_level, p.resource))
    return out
