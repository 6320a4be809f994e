"""Who can perform an action on a resource: directly, through a path, or after changing permissions.

Completeness comes from three sources, each asked of the engine (discovery mode):
1. *holders*: principals the engine allows now — candidates are every principal whose Allow
   statements could match plus every principal the resource's policy names (outsiders included);
2. *changers*: principals that can first change what someone is allowed (rewrite the resource
   policy, grant themselves or a principal they control arbitrary permissions, drop a boundary,
   join a group); the engine decides the request after that change, SCPs and RCPs still applying;
3. everyone who can act as a holder or changer, found by walking capability edges backwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from iamgraph.catalog import AccessLevel, get_catalog
from iamgraph.errors import InputError
from iamgraph.eval import named_policy
from iamgraph.eval.types import Decision, DecisionKind, PolicyType, StatementRef
from iamgraph.graph import AccessGraph, Edge, EdgeKind, NodeKind
from iamgraph.graph.build import PRINCIPAL_KINDS
from iamgraph.graph.candidates import instantiate, resource_matches
from iamgraph.graph.context import new_principal_parts
from iamgraph.graph.rules.assume import PUBLIC, external_node
from iamgraph.graph.types import Conditions, and_conditions
from iamgraph.query.changes import arbitrary, join_edges, join_users, modifiers, removal_key
from iamgraph.query.incomplete import Incomplete, incomplete_for, policy_holder_arn
from iamgraph.query.kept import controllers, escalation_options, may_allow
from iamgraph.query.kept import group_policies as kept_group_policies
from iamgraph.query.kept import path as kept_path
from iamgraph.query.paths import Path, routes, simple_paths, single, walk_forward

RULE = "who-can"


class How(StrEnum):
    DIRECT = "direct"
    """The principal's own policies (and the resource's) allow it now."""
    PATH = "path"
    """The principal can act as one that has the access."""
    RESOURCE_POLICY = "resource-policy-takeover"
    """The principal can rewrite the resource's policy, then allow itself."""
    ESCALATION = "escalation"
    """The principal can first give a principal it controls the permissions it needs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Holder:
    """Who makes the final request and why the engine allows it (possibly after ``changes``)."""

    principal: str
    how: How
    decision: Decision
    changes: tuple[Edge, ...] = ()
    """The edges that change permissions first (policy rewrite, grant, boundary removal, group join)."""
    assumptions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    principal: str
    principal_kind: NodeKind
    action: str
    resource: str
    how: How
    holder: Holder
    path: Path
    """From ``principal`` to the holder (one node when the principal is the holder)."""
    change_paths: tuple[Path, ...] = ()
    """From ``principal`` to the source of each change edge (for escalations)."""
    alternatives: tuple[Path, ...] = ()
    conditions: Conditions = ()
    """Everything along the way combined: path ∧ change edges ∧ the final decision."""
    assumptions: tuple[str, ...] = ()

    @property
    def definite(self) -> bool:
        return not self.conditions and not self.assumptions

    @property
    def statements(self) -> tuple[StatementRef, ...]:
        return self.holder.decision.reasons

    def rank(self) -> tuple[int, int, int, int]:
        order = (How.DIRECT, How.PATH, How.RESOURCE_POLICY, How.ESCALATION)
        hops = self.path.length + sum(p.length for p in self.change_paths) + len(self.holder.changes)
        return (0 if self.definite else 1, hops, order.index(self.how), sum(len(c) for c in self.conditions))


@dataclass(frozen=True, slots=True, kw_only=True)
class WhoCanResult:
    resources: tuple[str, ...]
    actions: tuple[str, ...]
    accesses: tuple[Access, ...]
    notes: tuple[str, ...] = ()
    incomplete: tuple[Incomplete, ...] = ()
    """Resources asked about whose policy is unknown: principals may be missing (``query.incomplete``)."""

    def principals(self) -> set[str]:
        return {a.principal for a in self.accesses}


# ---------------------------------------------------------------- inputs


def resolve_resources(graph: AccessGraph, resource: str) -> tuple[str, ...]:
    """An ARN, or a pattern with ``*``/``?`` matched against every ARN the snapshot holds."""
    if not resource:
        raise InputError("a resource ARN or pattern is required", location="--resource")
    if "*" not in resource and "?" not in resource:
        if not resource.startswith("arn:"):
            raise InputError(f"{resource!r} is not an ARN", location="--resource")
        return (resource,)
    idx = graph.index
    pool = [*idx.resources, *idx.roles, *idx.users, *idx.compute]
    hits = tuple(sorted(a for a in pool if resource_matches(resource, a)))
    if not hits:
        raise InputError(f"no resource in the snapshot matches {resource!r}", location="--resource")
    return hits


def resolve_actions(
    resource: str,
    *,
    action: str | None = None,
    access_level: str | None = None,
    any_action: bool = False,
) -> tuple[str, ...]:
    cat = get_catalog()
    if sum((action is not None, access_level is not None, any_action)) != 1:
        raise InputError("give exactly one of --action, --access-level or --any")
    if action is not None:
        if "*" in action or "?" in action:
            found = tuple(sorted(cat.expand(action)))
            if not found:
                raise InputError(f"{action!r} matches no action in the catalog", location="--action")
            return found
        if ":" not in action:
            raise InputError(f"{action!r} is not an action (service:Name)", location="--action")
        return (cat.canonical(action) or action,)
    types = get_catalog().resource_types_for_arn(resource)
    services = {svc for svc, _ in types} or {resource.split(":")[2]}
    names = {info.name.lower() for _, info in types}
    level: AccessLevel | None = None
    if access_level is not None:
        try:
            level = AccessLevel(_level_name(access_level))
        except ValueError:
            allowed = ", ".join(lv.value for lv in AccessLevel)
            raise InputError(f"unknown access level {access_level!r}; one of: {allowed}",
                             location="--access-level") from None
    out: list[str] = []
    for svc in sorted(services):
        for act in cat.actions_of(svc):
            info = cat.action(act)
            if info is None:
                continue
            if level is not None and level not in info.access_levels:
                continue
            if names and not any(rt.name.lower() in names for rt in info.resource_types):
                continue
            out.append(act)
    if not out:
        raise InputError(f"no catalog action applies to {resource}", location="--resource")
    return tuple(out)


def _level_name(text: str) -> str:
    for lv in AccessLevel:
        if lv.value.lower().replace(" ", "") == text.lower().replace(" ", "").replace("-", ""):
            return lv.value
    return text


# ---------------------------------------------------------------- the question


def who_can(
    graph: AccessGraph,
    resource: str,
    *,
    action: str | None = None,
    access_level: str | None = None,
    any_action: bool = False,
    paths: int = 1,
) -> WhoCanResult:
    """Every principal that can perform the action(s) on the resource(s), with how and under what conditions."""
    resources = resolve_resources(graph, resource)
    accesses: list[Access] = []
    all_actions: list[str] = []
    notes = list(graph.notes)
    for res in resources:
        actions = resolve_actions(res, action=action, access_level=access_level, any_action=any_action)
        all_actions.extend(a for a in actions if a not in all_actions)
        for act in actions:
            target = _object_of_bucket(res, act)
            if target == res:
                accesses.extend(who_can_one(graph, res, act, paths=paths))
                continue
            keys, more = _object_keys(graph, res, act)
            notes.append(f"{act} acts on objects, not on the bucket: answered for {target} (a key no policy "
                         f"singles out) and for one key under each narrower key pattern the policies name "
                         f"({len(keys) - 1}); each answer's resource is the key it holds for"
                         + (f"; {more} more patterns not asked" if more else ""))
            best: dict[str, Access] = {}
            for key in keys:
                for acc in who_can_one(graph, key, act, paths=paths):
                    cur = best.get(acc.principal)
                    if cur is None or acc.rank() < cur.rank():
                        best[acc.principal] = acc
            accesses.extend(best.values())
    accesses.sort(key=lambda a: (a.resource, a.action, a.rank(), a.principal))
    return WhoCanResult(resources=resources, actions=tuple(all_actions), accesses=tuple(accesses),
                        notes=tuple(notes), incomplete=incomplete_for(graph, resources))


MAX_OBJECT_PATTERNS = 50
"""Narrower object-key patterns asked about per bucket and action (beyond ``bucket/*``)."""


def _object_keys(graph: AccessGraph, bucket: str, action: str) -> tuple[list[str], int]:
    """``bucket/*`` and one concrete key per narrower pattern an Allow names (identity or bucket
    policy), so a principal allowed only ``bucket/reports/*`` is asked about ``bucket/reports/x``.
    Returns the keys and how many patterns were left out (beyond ``MAX_OBJECT_PATTERNS``)."""
    prefix = bucket + "/"
    patterns: set[str] = set()
    for pats in graph.ctx.candidates.principals_with(action).values():
        patterns.update(p for p in pats if p.startswith(prefix))
    res = graph.index.resources.get(bucket)
    if res is not None and isinstance(res.policy, dict):
        policy = graph.ctx.candidates.parsed(f"{bucket}:policy", res.policy, trust=True)
        for st in policy.statements if policy is not None else ():
            if st.is_allow:
                patterns.update(p for p in st.resource or () if p.startswith(prefix))
    patterns.discard(prefix + "*")
    ordered = sorted(patterns)
    keys = [prefix + "*", *dict.fromkeys(instantiate(p, prefix + "x") for p in ordered[:MAX_OBJECT_PATTERNS])]
    return keys, max(0, len(ordered) - MAX_OBJECT_PATTERNS)


def _object_of_bucket(resource: str, action: str) -> str:
    """``bucket/*`` for an action that applies to S3 objects but not to buckets; else the resource."""
    if not resource.startswith("arn:aws:s3:::") or "/" in resource:
        return resource
    info = get_catalog().action(action)
    names = {rt.name.lower() for rt in info.resource_types} if info is not None else set()
    return f"{resource}/*" if "object" in names and "bucket" not in names else resource


def who_can_one(graph: AccessGraph, resource: str, action: str, *, paths: int = 1) -> list[Access]:
    holders = direct_holders(graph, resource, action)
    for h in takeover_holders(graph, resource, action):
        holders.setdefault(h.principal, h)
    for h in new_principal_holders(graph, resource, action):
        holders.setdefault(h.principal, h)
    best: dict[str, Access] = {}

    def offer(acc: Access) -> None:
        cur = best.get(acc.principal)
        if cur is None or acc.rank() < cur.rank():
            best[acc.principal] = acc

    sure = {h: not hd.decision.conditions and not hd.assumptions for h, hd in holders.items()}
    for node, nodes in routes(graph, sure).items():
        if graph.node_kind(node) not in PRINCIPAL_KINDS:
            continue
        offer(_access(graph, node, action, resource, holders[nodes[-1]],
                      kept_path(graph, nodes) if len(nodes) > 1 else single(node)))
    # Escalations add principals (and better answers for conditional ones); principals that already
    # have a definite answer are not re-explained, which keeps this cheap on large accounts.
    settled = {p for p, a in best.items() if a.definite}
    escalations = escalation_holders(graph, resource, action, exclude=set(holders), settled=settled)
    for target, h in escalations.items():
        for node, (to_target, to_changes, used) in _controllers(graph, target, h.changes, skip=settled).items():
            if graph.node_kind(node) not in PRINCIPAL_KINDS:
                continue
            hh = Holder(principal=h.principal, how=h.how, decision=h.decision, changes=used,
                        assumptions=h.assumptions)
            offer(_access(graph, node, action, resource, hh, to_target, change_paths=to_changes))
    out = list(best.values())
    if paths > 1:
        out = [_with_alternatives(graph, acc, holders, paths) for acc in out]
    return out


def _access(
    graph: AccessGraph,
    principal: str,
    action: str,
    resource: str,
    holder: Holder,
    path: Path,
    *,
    change_paths: tuple[Path, ...] = (),
) -> Access:
    conds = path.conditions
    assumptions = list(path.assumptions)
    for cp in change_paths:
        conds = and_conditions(conds, cp.conditions)
        assumptions.extend(a for a in cp.assumptions if a not in assumptions)
    for e in holder.changes:
        conds = and_conditions(conds, e.conditions)
        assumptions.extend(a for a in e.assumptions if a not in assumptions)
    conds = and_conditions(conds, holder.decision.conditions)
    assumptions.extend(a for a in holder.assumptions if a not in assumptions)
    how = holder.how if holder.how is not How.DIRECT else (How.DIRECT if path.length == 0 else How.PATH)
    return Access(
        principal=principal,
        principal_kind=graph.node_kind(principal),
        action=action,
        resource=resource,
        how=how,
        holder=holder,
        path=path,
        change_paths=change_paths,
        conditions=conds,
        assumptions=tuple(assumptions),
    )


def _with_alternatives(graph: AccessGraph, acc: Access, holders: dict[str, Holder], k: int) -> Access:
    """The K best ways to any holder, ranked as answers are (definite first, then shortest, then fewest
    conditions); the best becomes the path. ``acc`` stays a candidate: the K shortest paths need not
    include the definite one it may hold, and the verdict must not change with K."""
    if acc.how is not How.PATH and acc.how is not How.DIRECT:
        return acc
    found = [_access(graph, acc.principal, acc.action, acc.resource, holders[p.nodes[-1]], p)
             for p in simple_paths(graph, acc.principal, list(holders), k + 1) if p.nodes != acc.path.nodes]
    pool = sorted([acc, *found], key=lambda a: a.rank())
    best = pool[0]
    return Access(**{**_fields(best), "alternatives": tuple(a.path for a in pool[1:k] if a.path.length)})


def _fields(acc: Access) -> dict[str, Any]:
    return {f: getattr(acc, f) for f in acc.__dataclass_fields__}


# ---------------------------------------------------------------- holders


def direct_candidates(graph: AccessGraph, resource: str, action: str) -> tuple[set[str], set[str], bool]:
    """(snapshot principals, outside accounts, everyone?) that could be allowed, from policy text."""
    ctx = graph.ctx
    holder = policy_holder_arn(resource)
    inside = {p for p, pats in ctx.candidates.principals_with(action).items()
              if any(resource_matches(x, resource) for x in pats)}
    outside: set[str] = set()
    everyone = False
    if holder in ctx.index.roles:
        tp = ctx.candidates.trust(holder)
        named, outside = ctx.named_principals(tp)
        inside |= named
        everyone = tp.everyone
    else:
        named, everyone, outside = ctx.resource_principals(holder, (action,))
        inside |= named
    racct = ctx.account(holder)
    if everyone:
        # A resource policy open to everyone needs no identity Allow in the same account.
        inside |= set(ctx.candidates.principals_by_account.get(racct, ()))
    elif racct and (holder in ctx.index.resources or holder in ctx.index.roles):
        # Another account's principal gets in only through the resource's policy (which then names
        # it or its account): principals of accounts the policy does not mention cannot be allowed.
        text = _policy_text(graph, holder)
        inside = {p for p in inside if ctx.account(p) == racct or ctx.account(p) in text}
    return inside, outside, everyone


def direct_holders(graph: AccessGraph, resource: str, action: str) -> dict[str, Holder]:
    ctx = graph.ctx
    inside, outside, everyone = direct_candidates(graph, resource, action)
    out: dict[str, Holder] = {}
    for p in sorted(inside):
        d = ctx.possible(RULE, p, action, resource)
        if d is not None:
            out[p] = Holder(principal=p, how=How.DIRECT, decision=d)
    holder = policy_holder_arn(resource)
    outsider = "the outside principal's own policies allow it (not in the snapshot)"
    for acct in sorted(outside):
        node = external_node(acct)
        d = outsider_decision(graph, node, action, resource, holder, {"aws:PrincipalAccount": acct})
        if d is not None:
            out[node] = Holder(principal=node, how=How.DIRECT, decision=d, assumptions=(outsider,))
    if everyone:
        d = outsider_decision(graph, "anonymous", action, resource, holder, None)
        if d is not None:
            out[PUBLIC] = Holder(principal=PUBLIC, how=How.DIRECT, decision=d)
    return out


def new_principal_holders(graph: AccessGraph, resource: str, action: str) -> list[Holder]:
    """``new-principal:<account>`` nodes (someone can create a principal there and give it any
    policy) whose allow-all principal the engine allows: who can act as the node gets in too."""
    ctx = graph.ctx
    racct = ctx.account(policy_holder_arn(resource))
    text = _policy_text(graph, policy_holder_arn(resource))
    rcp_text = json.dumps([p.document for level in ctx.index.org_chain(racct) for p in level.rcps]) if racct else ""
    out: list[Holder] = []
    seen: dict[tuple[Any, ...], Decision | None] = {}
    nodes = graph.cache.get("new_principals")
    if nodes is None:
        nodes = graph.cache["new_principals"] = sorted(
            {e.target for e in graph.edges((EdgeKind.CREATE_PRINCIPAL,))})
    for node in nodes:
        acct, boundary = new_principal_parts(node)
        if racct and acct != racct and acct not in text and '"*"' not in text:
            continue  # another account's principal gets in only through the resource policy
        # Stand-ins of two accounts get the same answer when everything the engine reads is the
        # same: the OU path and the account's own SCPs (so the same SCP chain), and no policy that
        # reads the principal's account or ARN (or names this account).
        chain = ctx.index.org_chain(acct)
        scp_text = json.dumps([p.document for level in chain for p in level.scps])
        reads_account = acct == racct or acct in text or any(
            k in t for t in (text.lower(), rcp_text.lower(), scp_text.lower()) for k in _ACCOUNT_KEYS)
        key = (tuple(level.target_id for level in chain if level.kind != "account"),
               tuple(p.id for level in chain if level.kind == "account" for p in level.scps),
               ctx.index.is_management_account(acct), acct if reads_account or not chain else None, boundary)
        if key not in seen:
            seen[key] = ctx.as_new_principal(acct, action, resource, boundary)
        d = seen[key]
        if d is not None and d.possible:
            out.append(Holder(principal=node, how=How.DIRECT, decision=d))
    return out


_ACCOUNT_KEYS = ("principalaccount", "principalarn", "aws:userid", "aws:username", "sourceaccount",
                 "principaltag", "${aws:")
"""Condition keys and variables whose value differs between two accounts' stand-ins."""


def outsider_decision(
    graph: AccessGraph, principal: str, action: str, resource: str, holder: str, context: dict[str, Any] | None
) -> Decision | None:
    # The engine finds the policy that governs ``resource`` (``holder``: an S3 object's bucket) itself.
    return graph.ctx.as_outsider(RULE, principal, action, resource, context=context)


def takeover_holders(graph: AccessGraph, resource: str, action: str) -> list[Holder]:
    """Principals that can rewrite the resource's policy: the engine decides with a policy allowing them."""
    holder = policy_holder_arn(resource)
    if holder not in graph.g:
        return []
    out: list[Holder] = []
    for src, _, data in graph.g.in_edges(holder, data=True):
        edge: Edge = data["edge"]
        if edge.kind is not EdgeKind.RESOURCE_POLICY_TAKEOVER:
            continue
        if src == PUBLIC and graph.ctx.block_public_access(holder) & {"BlockPublicPolicy", "RestrictPublicBuckets"}:
            # Everyone gets in only through a public policy: BlockPublicPolicy rejects writing one, and
            # RestrictPublicBuckets keeps one from serving anyone outside the account
            # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PublicAccessBlockConfiguration.html).
            continue
        if src not in graph.index.users and src not in graph.index.roles:
            # An outside account or everyone: its side is unknown; the rewrite could allow it.
            d = Decision(decision=DecisionKind.ALLOWED, reasons=edge.statements, conditions=edge.conditions)
            out.append(Holder(principal=src, how=How.RESOURCE_POLICY, decision=d, changes=(edge,),
                              assumptions=edge.assumptions))
            continue
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": src},
                                                       "Action": "*", "Resource": "*"}]}
        d2 = graph.ctx.what_if(src, action, resource,
                               resource_policy=named_policy(doc, f"{holder}:rewritten", PolicyType.RESOURCE))
        if d2 is not None and d2.possible:
            out.append(Holder(principal=src, how=How.RESOURCE_POLICY, decision=d2, changes=(edge,)))
    return out


def escalation_holders(
    graph: AccessGraph,
    resource: str,
    action: str,
    *,
    exclude: set[str],
    settled: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Holder]:
    """Principals T that would be allowed after someone grants T arbitrary permissions, drops T's
    boundary, or adds T to a group. Only T that could reach the resource at all are tried: same
    account, or named (directly, by account or as everyone) in its policy.

    What does not depend on the resource (who controls whom, each T's options, a group's policies) is worked out
    once per graph (``iamgraph.query.kept``); the engine is asked about the resource."""
    ctx = graph.ctx
    holder = policy_holder_arn(resource)
    racct = ctx.account(holder)
    _inside, _outside, everyone = direct_candidates(graph, resource, action)
    policy_text = _policy_text(graph, holder)
    out: dict[str, Holder] = {}
    for target, by_kind in modifiers(graph).items():
        if target in exclude:
            continue
        tacct = ctx.account(target)
        # Another account's principal reaches the resource only through its resource policy.
        # (An S3 resource the snapshot lacks has no known account: anyone may be its owner.)
        if racct and tacct != racct and not everyone and tacct not in policy_text:
            continue
        if settled and _only_settled_controllers(graph, by_kind, settled):
            continue
        for changes, kwargs in escalation_options(graph, target):
            d = ctx.what_if(target, action, resource, **kwargs)
            if d is not None and d.possible:
                out[target] = Holder(principal=target, how=How.ESCALATION, decision=d, changes=changes)
                break
    # AddUserToGroup on behalf of another user (users adding themselves are in ``modifiers``): any
    # user of the group's account may be added, if the group's policies could allow the action.
    for e in join_edges(graph):
        if e.source.startswith("admin:"):
            continue
        tacct = ctx.account(e.target)
        if racct and tacct != racct and not everyone and tacct not in policy_text:
            continue
        if not may_allow(graph, e.target, action):
            continue
        added = kept_group_policies(graph, e.target)
        pool = (u for u in ctx.candidates.principals_by_account.get(tacct, ())
                if u in graph.index.users and u != e.source and u not in exclude and u not in out)
        for user in join_users(graph, e, pool):
            d = ctx.what_if(user, action, resource, add_identity=added)
            if d is not None and d.possible:
                out[user] = Holder(principal=user, how=How.ESCALATION, decision=d, changes=(e,))
    return out


def _only_settled_controllers(
    graph: AccessGraph,
    by_kind: dict[EdgeKind, list[Edge]],
    settled: set[str] | frozenset[str],
) -> bool:
    """Whether everyone who could make these changes already has a definite answer (nothing to add).

    Checked only when every change comes from an account's admin node (the common case after the
    admin shortcut): whoever controls that node is who could use the change.
    """
    sources = frozenset(e.source for edges in by_kind.values() for e in edges)
    if not sources or not all(s.startswith("admin:") for s in sources):
        return False
    hit = controllers(graph, sources)
    return all(n in settled or graph.node_kind(n) not in PRINCIPAL_KINDS for n in hit)


def _same_effect(edge: Edge, pool: list[Edge]) -> list[Edge]:
    """Edges that change the target the same way as ``edge`` (any of them will do)."""
    if edge.kind is EdgeKind.JOIN_GROUP:
        return [edge]
    if edge.kind is EdgeKind.REMOVE_DENY:
        return [e for e in pool if removal_key(e) == removal_key(edge)] or [edge]
    if edge.kind is EdgeKind.GRANT_PERMISSIONS and not arbitrary(edge):
        return [e for e in pool if e.reason.target == edge.reason.target and not arbitrary(e)] or [edge]
    if edge.kind is EdgeKind.GRANT_PERMISSIONS:
        return [e for e in pool if arbitrary(e)] or [edge]
    return pool or [edge]


def _policy_text(graph: AccessGraph, holder: str) -> str:
    """The text of what can name another account's principal for ``holder``: its trust or resource policy and,
    for a KMS key, its grants (a grantee needs no policy naming it)."""
    role = graph.index.roles.get(holder)
    res = graph.index.resources.get(holder)
    doc = role.trust_policy if role is not None else (res.policy if res is not None else None)
    grants = res.attributes.get("grants") if res is not None and res.type == "kms:key" else None
    return (json.dumps(doc) if doc is not None else "") + (json.dumps(grants) if grants else "")


def _controllers(
    graph: AccessGraph,
    target: str,
    changes: Sequence[Edge],
    *,
    skip: set[str] | frozenset[str] = frozenset(),
) -> dict[str, tuple[Path, tuple[Path, ...], tuple[Edge, ...]]]:
    """Principals that control ``target`` and the source of every change edge (kind-wise, any edge)."""
    all_mods = modifiers(graph).get(target, {})
    options: list[list[Edge]] = [_same_effect(e, all_mods.get(e.kind, [e])) for e in changes]
    to_target = controllers(graph, frozenset((target,)))
    sets: list[dict[str, str | None]] = [controllers(graph, frozenset(e.source for e in opts)) for opts in options]
    out: dict[str, tuple[Path, tuple[Path, ...], tuple[Edge, ...]]] = {}
    for node in _iter_common(to_target, sets):
        if node in skip or graph.node_kind(node) not in PRINCIPAL_KINDS:
            continue
        t_nodes = walk_forward(to_target, node)
        t_path = kept_path(graph, t_nodes) if len(t_nodes) > 1 else single(node)
        cps: list[Path] = []
        used: list[Edge] = []
        for s, opts in zip(sets, options, strict=True):
            c_nodes = walk_forward(s, node)
            cps.append(kept_path(graph, c_nodes) if len(c_nodes) > 1 else single(node))
            used.append(next(e for e in opts if e.source == c_nodes[-1]))
        out[node] = (t_path, tuple(cps), tuple(used))
    return out


def _iter_common(first: dict[str, Any], others: Iterable[dict[str, Any]]) -> list[str]:
    rest = list(others)
    return [n for n in first if all(n in o for o in rest)]

