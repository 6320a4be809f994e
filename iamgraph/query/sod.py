"""Separation of duties: rules (YAML) naming capabilities no single principal may hold together.

A principal holds a capability when the engine allows one of its actions on one of its resources,
either to the principal itself or to any principal it can act as (a path). Rule format:
docs/graph.md ("SoD rules"); the defaults ship in ``iamgraph/data/sod-rules.yaml``.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path as FsPath
from typing import Any

import yaml

from iamgraph.errors import InputError
from iamgraph.eval.types import Decision, StatementRef
from iamgraph.graph import AccessGraph, NodeKind
from iamgraph.graph.build import PRINCIPAL_KINDS
from iamgraph.graph.candidates import resource_matches
from iamgraph.graph.types import Conditions, and_conditions
from iamgraph.query.incomplete import Incomplete, policy_holder_arn, unknown_policies
from iamgraph.query.paths import Path, path_of, reach, reverse_reach, routes, single

RULE = "sod"
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability:
    name: str
    actions: tuple[str, ...]
    resources: tuple[str, ...] = ("*",)
    """Resource ARNs; ``{account}`` and ``{region}`` are filled per account."""
    accounts: tuple[str, ...] = ()
    """Globs over account id, name or alias: evaluate in those accounts instead of the principal's own."""
    member_accounts: bool = False
    """Evaluate in every account of the organization except the management account."""
    resource_tags: dict[str, str] = field(default_factory=dict)
    """Use the snapshot's resources that carry all these tags instead of ``resources``."""
    context: dict[str, str] = field(default_factory=dict)
    snapshot_resources: tuple[str, ...] = ()
    """Globs over the snapshot's resource ARNs: evaluate on every match too (``suffix`` appended)."""
    suffix: str = ""
    from_attribute: dict[str, str] = field(default_factory=dict)
    """``{arn_like, attribute, format}``: for snapshot resources matching ``arn_like``, evaluate on
    ``format`` with ``{value}`` = the resource's ``attribute`` (e.g. a trail's S3 bucket)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SodRule:
    id: str
    title: str
    severity: str
    description: str
    capabilities: tuple[Capability, ...]
    scope: str = "principal"
    """``principal``: anywhere; ``resource``: both capabilities on the same resource of ``resource_type``."""
    resource_type: str | None = None


STAND_IN = "iamgraph-sod"
"""The resource name the shipped rules ask about when any resource of a kind will do (iamgraph/data/sod-rules.yaml):
"can it delete a bucket of this account" is asked about ``arn:aws:s3:::iamgraph-sod``. The name is ours, not the
customer's, so answers show it as the pattern a policy would write (``resource_pattern``)."""


def resource_pattern(resource: str) -> str:
    """A stand-in resource as the ARN pattern it stands for (``arn:aws:s3:::*``); any other resource as it is."""
    # A CloudFormation stack ARN ends in stack/NAME/ID, an ECS service in service/CLUSTER/NAME.
    return resource.replace(f"{STAND_IN}/x", "*/*").replace(STAND_IN, "*") if STAND_IN in resource else resource


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    capability: str
    action: str
    resource: str
    holder: str
    path: Path
    statements: tuple[StatementRef, ...]
    conditions: Conditions


@dataclass(frozen=True, slots=True, kw_only=True)
class Conflict:
    rule: SodRule
    principal: str
    evidence: tuple[Evidence, ...]
    resource: str | None = None
    admin: bool = False
    """The principal is admin-equivalent: it holds every capability, so every rule fires for it."""

    @property
    def definite(self) -> bool:
        return all(not e.conditions and e.path.definite for e in self.evidence)


# ---------------------------------------------------------------- loading


def load_rules(path: str | FsPath | None = None) -> tuple[SodRule, ...]:
    """The rules in ``path``, or the shipped defaults."""
    if path is None:
        return _shipped_rules()
    source = str(path)
    try:
        text = FsPath(path).read_text("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read SoD rules: {exc.strerror}", source=source) from None
    return _parse_text(text, source)


@functools.lru_cache(maxsize=1)
def _shipped_rules() -> tuple[SodRule, ...]:
    # The packaged file does not change while the process runs: read and parsed once (an access-request
    # judgement asks for the rules on both sides of its comparison).
    text = importlib_resources.files("iamgraph").joinpath("data/sod-rules.yaml").read_text("utf-8")
    return _parse_text(text, "iamgraph/data/sod-rules.yaml")


def _parse_text(text: str, source: str) -> tuple[SodRule, ...]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", source=source) from None
    return parse_rules(data, source=source)


def parse_rules(data: Any, *, source: str = "<rules>") -> tuple[SodRule, ...]:
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise InputError("expected a mapping with a 'rules' list", source=source)
    out: list[SodRule] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["rules"]):
        loc = f"rules[{i}]"
        if not isinstance(raw, dict):
            raise InputError("a rule must be a mapping", source=source, location=loc)
        unknown = set(raw) - {"id", "title", "severity", "description", "capabilities", "scope", "resource_type"}
        if unknown:
            raise InputError(f"unknown key(s) {sorted(unknown)}", source=source, location=loc)
        rid = _str(raw, "id", source, loc)
        if rid in seen:
            raise InputError(f"duplicate rule id {rid!r}", source=source, location=loc)
        seen.add(rid)
        severity = str(raw.get("severity", "medium"))
        if severity not in SEVERITIES:
            raise InputError(f"severity must be one of {', '.join(SEVERITIES)}", source=source,
                             location=f"{loc}.severity")
        scope = str(raw.get("scope", "principal"))
        if scope not in ("principal", "resource"):
            raise InputError("scope must be 'principal' or 'resource'", source=source, location=f"{loc}.scope")
        rtype = raw.get("resource_type")
        if scope == "resource" and not isinstance(rtype, str):
            raise InputError("a resource-scoped rule needs resource_type (e.g. kms:key)", source=source,
                             location=loc)
        caps_raw = raw.get("capabilities")
        if not isinstance(caps_raw, list) or len(caps_raw) < 2:
            raise InputError("a rule needs at least two capabilities", source=source,
                             location=f"{loc}.capabilities")
        caps = tuple(_capability(c, source, f"{loc}.capabilities[{j}]") for j, c in enumerate(caps_raw))
        out.append(SodRule(id=rid, title=_str(raw, "title", source, loc), severity=severity,
                           description=str(raw.get("description", "")), capabilities=caps, scope=scope,
                           resource_type=rtype if isinstance(rtype, str) else None))
    return tuple(out)


def _str(raw: dict[str, Any], key: str, source: str, loc: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"{key} must be a non-empty string", source=source, location=f"{loc}.{key}")
    return value


def _strings(raw: dict[str, Any], key: str, source: str, loc: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{key} must be a non-empty list of strings", source=source, location=f"{loc}.{key}")
    return tuple(value)


def _capability(raw: Any, source: str, loc: str) -> Capability:
    if not isinstance(raw, dict):
        raise InputError("a capability must be a mapping", source=source, location=loc)
    unknown = set(raw) - {"name", "actions", "resources", "accounts", "member_accounts", "resource_tags", "context",
                          "snapshot_resources", "suffix", "from_attribute"}
    if unknown:
        raise InputError(f"unknown key(s) {sorted(unknown)}", source=source, location=loc)
    actions = _strings(raw, "actions", source, loc, ())
    if not actions:
        raise InputError("actions is required", source=source, location=f"{loc}.actions")
    for j, a in enumerate(actions):
        if ":" not in a:
            raise InputError(f"{a!r} is not an action (service:Name)", source=source, location=f"{loc}.actions[{j}]")
    tags = raw.get("resource_tags") or {}
    ctx = raw.get("context") or {}
    attr = raw.get("from_attribute") or {}
    if not isinstance(tags, dict) or not isinstance(ctx, dict) or not isinstance(attr, dict):
        raise InputError("resource_tags, context and from_attribute must be mappings", source=source, location=loc)
    if attr and not {"arn_like", "attribute", "format"} <= set(attr):
        raise InputError("from_attribute needs arn_like, attribute and format", source=source,
                         location=f"{loc}.from_attribute")
    return Capability(
        name=_str(raw, "name", source, loc),
        actions=actions,
        resources=_strings(raw, "resources", source, loc, ("*",)),
        accounts=_strings(raw, "accounts", source, loc, ()),
        member_accounts=bool(raw.get("member_accounts", False)),
        resource_tags={str(k): str(v) for k, v in tags.items()},
        context={str(k): str(v) for k, v in ctx.items()},
        snapshot_resources=_strings(raw, "snapshot_resources", source, loc, ()),
        suffix=str(raw.get("suffix", "")),
        from_attribute={str(k): str(v) for k, v in attr.items()},
    )


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True, slots=True, kw_only=True)
class _Hold:
    action: str
    resource: str
    decision: Decision


def _targets(graph: AccessGraph, cap: Capability, principal_account: str) -> list[str]:
    idx = graph.index
    if cap.resource_tags:
        return [r.arn for r in idx.resources.values()
                if all(r.tags.get(k) == v for k, v in cap.resource_tags.items())]
    if cap.member_accounts:
        accounts = [a for a in idx.accounts if not idx.is_management_account(a)]
    elif cap.accounts:
        accounts = [a.account_id for a in idx.accounts.values()
                    if any(fnmatch.fnmatch(x, g) for g in cap.accounts
                           for x in (a.account_id, a.name or "", a.alias or "", _org_name(graph, a.account_id)))]
    else:
        accounts = [principal_account]
    out: list[str] = []
    if not cap.snapshot_resources and not cap.from_attribute:
        for acct in accounts:
            region = graph.ctx.region(acct)
            for r in cap.resources:
                arn = r.replace("{account}", acct).replace("{region}", region)
                if arn not in out:
                    out.append(arn)
    for res in idx.resources.values():
        if any(resource_matches(g, res.arn) for g in cap.snapshot_resources):
            out.append(res.arn + cap.suffix)
        fa = cap.from_attribute
        if fa and resource_matches(fa["arn_like"], res.arn):
            value = res.attributes.get(fa["attribute"])
            if isinstance(value, str) and value:
                out.append(fa["format"].replace("{value}", value))
    return list(dict.fromkeys(out))


def _org_name(graph: AccessGraph, account_id: str) -> str:
    org = graph.index.snapshot.organization
    if org is None:
        return ""
    return next((a.name or "" for a in org.accounts if a.id == account_id), "")


def direct_holders(graph: AccessGraph, cap: Capability, *, only: list[str] | None = None,
                   among: set[str] | None = None, identity: set[str] | None = None) -> dict[str, _Hold]:
    """Principals the engine allows the capability now (candidates from the policy text first); with
    ``among``, only those principals are asked about. ``identity``: the candidates whose own policies cover one
    of the capability's actions, when the caller already has them (``identity_candidates``)."""
    ctx = graph.ctx
    out: dict[str, _Hold] = {}
    candidates = set(identity) if identity is not None else identity_candidates(graph, cap, among)
    for t in only or ():
        # A resource policy can grant without any identity policy (same account, or a KMS key policy).
        named, everyone = _resource_principals(graph, t, cap.actions)
        candidates |= named
        if everyone:
            candidates |= set(ctx.candidates.principals_by_account.get(ctx.account(t), ()))
    if among is not None:
        candidates &= among
    holds = _holds(graph)
    base = graph.base
    shared = _holds(base) if base is not None else None
    name = _cap_key(cap)
    for p in sorted(candidates):
        targets = only if only is not None else _targets_of(graph, cap, name, ctx.account(p))
        key = (name, tuple(targets), p)
        if key in holds:
            hold = holds[key]
        else:
            if shared is not None and base is not None and graph.unchanged(p, targets):
                # A graph built over a base graph: the change touched neither the principal nor the targets, so the
                # engine's answers, the policies naming it and its candidate patterns are the base's. Asked of the
                # base graph and kept there, so the next judgement whose subject can act as it finds it.
                hit = shared.get(key, _UNKNOWN)
                if hit is _UNKNOWN:
                    hit = _first_hold(base, p, cap, targets)
                    if len(shared) > 200_000:
                        shared.clear()
                    shared[key] = hit
                hold = hit if isinstance(hit, _Hold) else None
            else:
                hold = _first_hold(graph, p, cap, targets)
            if len(holds) > 200_000:
                holds.clear()  # a long-lived (base) graph asked about many subjects: bounded
            holds[key] = hold
        if hold is not None:
            out[p] = hold
    return out


def identity_candidates(graph: AccessGraph, cap: Capability, among: set[str] | None) -> set[str]:
    """The principals (of ``among``, when given) whose identity policies hold an Allow statement covering one of
    the capability's actions. It does not depend on the resource, so a resource-scoped rule asks it once for all
    its resources (``sod``)."""
    found: set[str] = set()
    cands = graph.ctx.candidates
    for action in cap.actions:
        if among is None:
            found.update(cands.principals_with(action))
        else:
            # With ``among`` (usually a few principals), read their own policies only: no scan of every
            # principal's for an action the build never asked about.
            statements = cands.statements
            found.update(p for p in among if p in statements and cands.patterns_for(p, action))
    return found


def _resource_principals(graph: AccessGraph, resource: str, actions: tuple[str, ...]) -> tuple[frozenset[str], bool]:
    """``BuildContext.resource_principals`` (the principals a resource policy names, and whether it names everyone),
    kept per graph: SoD asks it for every (principal, target) pair its identity policies do not reach. Per graph,
    not shared with a base graph: which principals a name resolves to depends on the snapshot."""
    table: dict[tuple[str, tuple[str, ...]], tuple[frozenset[str], bool]] = graph.cache.setdefault(
        "sod_resource_principals", {})
    hit = table.get((resource, actions))
    if hit is None:
        named, everyone, _ = graph.ctx.resource_principals(resource, actions)
        if len(table) > 200_000:
            table.clear()  # a long-lived (base) graph asked about many subjects: bounded
        hit = table[(resource, actions)] = (frozenset(named), everyone)
    return hit


_UNKNOWN = object()


def _holds(graph: AccessGraph) -> dict[tuple[str, tuple[str, ...], str], _Hold | None]:
    """(capability, targets, principal) -> the principal's first hold of it (None: none), kept per graph."""
    found: dict[tuple[str, tuple[str, ...], str], _Hold | None] = graph.cache.setdefault("sod_holds", {})
    return found


_CAP_KEYS: dict[int, tuple[Capability, str]] = {}


def _cap_key(cap: Capability) -> str:
    """A capability by its content (its fields hold dicts, so it does not hash)."""
    hit = _CAP_KEYS.get(id(cap))
    if hit is None or hit[0] is not cap:
        if len(_CAP_KEYS) > 10_000:
            _CAP_KEYS.clear()  # rules loaded again and again (each load makes new objects): bounded
        hit = _CAP_KEYS[id(cap)] = (cap, repr(cap))
    return hit[1]


def _targets_of(graph: AccessGraph, cap: Capability, name: str, account: str) -> list[str]:
    table: dict[tuple[str, str], list[str]] = graph.cache.setdefault("sod_targets", {})
    hit = table.get((name, account))
    if hit is None:
        hit = table[(name, account)] = _targets(graph, cap, account)
    return hit


def _first_hold(graph: AccessGraph, principal: str, cap: Capability, targets: list[str]) -> _Hold | None:
    ctx = graph.ctx
    best: _Hold | None = None
    for action in cap.actions:
        patterns = ctx.candidates.patterns_for(principal, action)
        for target in targets:
            if not any(resource_matches(x, target) for x in patterns) and not _named(graph, principal, target, cap.actions):
                continue
            d = ctx.possible(RULE, principal, action, target, cap.context or None)
            if d is not None and (best is None or (best.decision.conditions and not d.conditions)):
                best = _Hold(action=action, resource=target, decision=d)
                if not d.conditions:
                    return best
    return best


def _named(graph: AccessGraph, principal: str, resource: str, actions: tuple[str, ...]) -> bool:
    """Whether a resource or trust policy names the principal (it may grant without identity policy)."""
    if resource in graph.index.roles:
        return principal in {graph.ctx.resolve_principal(a) for a in graph.ctx.candidates.trust(resource).arns}
    named, everyone = _resource_principals(graph, resource, actions)
    return principal in named or everyone


def holders_with_paths(graph: AccessGraph, direct: dict[str, _Hold]) -> dict[str, tuple[Path, _Hold]]:
    """Each principal's route to a holder: an unconditional one when there is one (``routes``)."""
    out: dict[str, tuple[Path, _Hold]] = {}
    for node, nodes in routes(graph, {p: not h.decision.conditions for p, h in direct.items()}).items():
        if graph.node_kind(node) not in PRINCIPAL_KINDS:
            continue
        out[node] = (path_of(graph, nodes) if len(nodes) > 1 else single(node), direct[nodes[-1]])
    return out


def sod(graph: AccessGraph, rules: tuple[SodRule, ...] | None = None, *, principal: str | None = None) -> list[Conflict]:
    """Every conflict of every rule (or those of one principal).

    With ``principal``, only the principals it can act as are asked about: a route from it ends at one of
    them, and a holder it cannot reach cannot change which route it takes (every node on its routes is
    one it reaches, so the breadth-first search of ``routes`` assigns them the same next hops), so the
    answer is the one the full computation filtered to it gives (tests/graph/test_graph_demo.py compares
    them for every demo principal).
    """
    rules = rules if rules is not None else load_rules()
    among = set(reach(graph, principal)) if principal is not None else None
    admin_edges = graph.admins()
    admins: set[str]
    if principal is None or among is None:
        admins = set(reverse_reach(graph, admin_edges))
    else:
        # The principal is admin-equivalent when it can act as a principal that is.
        admins = {principal} if any(n in admin_edges for n in among) else set()
    out: list[Conflict] = []
    for rule in rules:
        scopes: list[str | None]
        if rule.scope == "resource":
            scopes = [r.arn for r in graph.index.resources.values() if r.type == rule.resource_type]
        else:
            scopes = [None]
        # Who holds each capability's actions in its own policies is the same for every resource of the scope.
        identity = {id(cap): identity_candidates(graph, cap, among) for cap in rule.capabilities}
        for res in scopes:
            per_cap = []
            for cap in rule.capabilities:
                direct = direct_holders(graph, cap, only=[res] if res is not None else None, among=among,
                                        identity=identity[id(cap)])
                per_cap.append((cap, holders_with_paths(graph, direct)))
            common = set(per_cap[0][1])
            for _, h in per_cap[1:]:
                common &= set(h)
            if principal is not None:
                common &= {principal}
            for p in sorted(common):
                if graph.node_kind(p) is NodeKind.SERVICE:
                    # AWS services act for whoever configures them; those principals are reported.
                    continue
                evidence = []
                for cap, h in per_cap:
                    path, hold = h[p]
                    evidence.append(Evidence(
                        capability=cap.name, action=hold.action, resource=hold.resource, holder=path.nodes[-1],
                        path=path, statements=hold.decision.reasons,
                        conditions=and_conditions(path.conditions, hold.decision.conditions),
                    ))
                out.append(Conflict(rule=rule, principal=p, evidence=tuple(evidence), resource=res,
                                    admin=p in admins))
    out.sort(key=lambda c: (-SEVERITIES.index(c.rule.severity), c.rule.id, c.principal))
    return out



def sod_incomplete(graph: AccessGraph, rules: tuple[SodRule, ...] | None = None) -> tuple[Incomplete, ...]:
    """Resources the rules ask about whose policy is unknown: a resource-scoped rule's resources of its
    type, and the resources a capability names (ARN patterns, tags, snapshot globs, attributes). A
    conflict that rests on such a policy may be missing."""
    rules = rules if rules is not None else load_rules()
    unknown = unknown_policies(graph)
    if not unknown:
        return ()
    hit: set[str] = set()
    for rule in rules:
        for cap in rule.capabilities:
            patterns = [r.replace("{account}", "*").replace("{region}", "*") for r in cap.resources
                        if not cap.resource_tags and not cap.snapshot_resources and not cap.from_attribute]
            patterns += list(cap.snapshot_resources)
            for res in graph.index.resources.values():
                fa = cap.from_attribute
                value = res.attributes.get(fa["attribute"]) if fa and resource_matches(fa["arn_like"], res.arn) else None
                if isinstance(value, str) and value:
                    patterns.append(policy_holder_arn(fa["format"].replace("{value}", value)))
            for arn in unknown:
                res = graph.index.resources[arn]
                if (rule.scope == "resource" and res.type == rule.resource_type) \
                        or (cap.resource_tags and all(res.tags.get(k) == v for k, v in cap.resource_tags.items())) \
                        or any(p != "*" and resource_matches(p, arn) for p in patterns):
                    hit.add(arn)
    return tuple(unknown[a] for a in sorted(hit))
