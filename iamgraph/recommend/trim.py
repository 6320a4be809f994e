"""Trimming one identity policy document against observed calls. Pure: no snapshot, no store.

Rules (docs/recommend.md):
- Deny statements, and Allow statements whose Sid starts with a keep marker, are copied verbatim.
- An Allow statement keeps the catalog actions it grants that were used (a call it matches, conditions
  aside), that cannot be observed, or that the configuration excludes from trimming; everything else goes.
- Resources narrow to the ARNs used, per action, only when every use of the action named its resource and
  the statement's Resource entries have no policy variables; past a threshold of distinct ARNs they are
  generalised to one wildcard that an original entry provably contains, else back to the original entries.
- Conditions are copied onto every statement derived from a statement. ``NotResource`` is kept as written;
  an Allow ``NotAction`` statement that loses actions becomes an ``Action`` list (never broader).
- An original wildcard comes back only when every catalog action it covers is kept. Other kept actions are folded
  into the narrowest pattern an original wildcard contains whose every catalog action is kept (never over an
  explicit list, never over a high-risk action: those stay listed); no other wildcard is made.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from iamgraph.catalog import get_catalog
from iamgraph.eval import Mode, ask_policies, named_policy
from iamgraph.eval.types import PolicyType
from iamgraph.model.policy import load_document, parse_policy
from iamgraph.recommend.config import RecommendConfig
from iamgraph.recommend.containment import pattern_contains
from iamgraph.recommend.risk import is_high_risk
from iamgraph.recommend.split import unique_sids


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One observed allowed call: who, which IAM action, on which resource (None when not known)."""

    principal_arn: str
    action: str
    resource: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Trimmed:
    document: dict[str, Any]
    changed: bool
    removed_actions: tuple[str, ...]
    """Catalog actions the original granted (in some statement) that the proposal no longer grants there."""
    kept_unobservable: tuple[str, ...]
    """Actions kept only because their use cannot be seen (or the configuration excludes them)."""
    left_alone: tuple[str, ...]
    """Statements copied verbatim, as ``Statement[i]`` (with the Sid when there is one) and why."""
    notes: tuple[str, ...] = ()
    """Generalisations a reviewer should know of (S3 object keys to the prefix they were used under)."""


_ALL = "__original__"  # marker: keep the statement's original Resource/NotResource entries


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


class StatementMatcher:
    """Does a statement's Action/Resource cover a call, conditions aside? Asked of the engine, never guessed."""

    def __init__(self, contexts: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.contexts = contexts or {}
        self._cache: dict[tuple[str, str, str, str], bool] = {}

    def matches(self, key: str, stmt: Mapping[str, Any], call: Call, resource: str) -> bool:
        ck = (key, call.principal_arn, call.action, resource)
        hit = self._cache.get(ck)
        if hit is not None:
            return hit
        bare = {k: v for k, v in stmt.items() if k not in ("Condition", "Sid")}
        bare["Effect"] = "Allow"
        np = named_policy({"Version": "2012-10-17", "Statement": [bare]}, "match", PolicyType.IDENTITY)
        d = ask_policies(call.principal_arn, call.action, resource, identity=(np,),
                         context=self.contexts.get(call.principal_arn), mode=Mode.DISCOVERY)
        # Only the statement is in the set: a request it matches is allowed, or (KMS keys, role trust) blocked
        # only for want of a resource policy, which ``blocked_by`` reports for an otherwise-allowed request.
        out = d.possible or bool(d.blocked_by)
        self._cache[ck] = out
        return out


_S3_OBJECT = "arn:aws:s3:::"


def _s3_prefixes(arns: Sequence[str], originals: Sequence[str], threshold: int) -> tuple[list[str], list[tuple[str, int]]]:
    """S3 object ARNs used under one prefix, generalised to that prefix plus ``*`` when at least ``threshold`` distinct
    keys were used there: tomorrow's object under ``reports/`` is allowed, as it is today.

    Keys are grouped by bucket and first path segment; the prefix is the longest common *directory* of the group's keys
    (``reports/2026/a.csv`` and ``reports/2025/b.csv`` give ``reports/*``). Keys at the bucket's root, and keys holding
    ``*``, ``?`` or ``$`` (they would read as patterns), stay exact. A prefix is used only when an original Resource entry
    contains it as a pattern (:func:`iamgraph.recommend.containment.pattern_contains`), so it never reaches beyond the
    original. Returns the ARNs (generalised ones replaced) and (prefix pattern, keys it stands for) per generalisation.
    """
    groups: dict[str, list[str]] = defaultdict(list)
    out: list[str] = []
    for arn in arns:
        rest = arn[len(_S3_OBJECT):] if arn.startswith(_S3_OBJECT) else ""
        bucket, _, key = rest.partition("/")
        if not bucket or "/" not in key or any(ch in key for ch in "*?$"):
            out.append(arn)
            continue
        groups[f"{bucket}/{key.split('/', 1)[0]}"].append(arn)
    made: list[tuple[str, int]] = []
    for _, members in sorted(groups.items()):
        if len(members) < threshold:
            out.extend(members)
            continue
        common = members[0]
        for m in members[1:]:
            n = 0
            while n < min(len(common), len(m)) and common[n] == m[n]:
                n += 1
            common = common[:n]
        candidate = common[: common.rfind("/") + 1] + "*"
        if any(pattern_contains(o, candidate) for o in originals):
            out.append(candidate)
            made.append((candidate, len(members)))
        else:
            out.extend(members)
    return sorted(set(out)), made


def _generalise(arns: Sequence[str], originals: Sequence[str]) -> list[str]:
    """One wildcard for many ARNs, if an original entry provably contains it; else the originals that matched.

    The wildcard is the ARNs' longest common prefix cut back to a ``/`` or ``:`` boundary, plus ``*``. It is
    accepted only under an original entry of the form ``<literal>*`` (or ``*``) whose literal prefixes it, so
    it can never reach beyond the original statement.
    """
    prefix = arns[0]
    for a in arns[1:]:
        n = 0
        while n < min(len(prefix), len(a)) and prefix[n] == a[n]:
            n += 1
        prefix = prefix[:n]
    cut = max(prefix.rfind("/"), prefix.rfind(":"))
    candidate = prefix[: cut + 1] + "*" if cut >= 0 else "*"
    for o in originals:
        lit = o[:-1] if o.endswith("*") else None
        if lit is not None and "*" not in lit and "?" not in lit and "$" not in lit and \
                candidate[:-1].startswith(lit):
            return [candidate]
    return list(originals)


def _derived_sid(sid: str, k: int, taken: set[str]) -> str:
    while f"{sid}{k}" in taken:
        k += 1
    taken.add(f"{sid}{k}")
    return f"{sid}{k}"


def _lcp(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n].lower() == b[n].lower():
        n += 1
    return n


def _compact(actions: set[str], original_patterns: Sequence[str], keep_all: frozenset[str]) -> tuple[set[str], list[str]]:
    """Runs of kept actions as the narrowest pattern that covers them: the longest common prefix of a run (in name
    order, within one service) plus ``*``, accepted only when (1) an original action pattern of the statement contains
    it as a pattern (so the original already granted everything it can ever match, actions AWS adds later included:
    ``iamgraph.recommend.containment``) and (2) every catalog action it matches today is kept (so it gives back
    nothing the trim removed). High-risk actions (:mod:`iamgraph.recommend.risk`) are never folded: they stay listed.
    Returns the actions folded and the patterns."""
    wild = [p for p in original_patterns if "*" in p or "?" in p]
    if not wild:
        return set(), []
    cat = get_catalog()
    by_service: dict[str, list[str]] = defaultdict(list)
    for a in actions:
        if not is_high_risk(a):
            by_service[a.split(":", 1)[0]].append(a)
    # A pattern made here matches no high-risk action today: those are read by name, never through a pattern.
    foldable = frozenset(a for a in keep_all if not is_high_risk(a))
    folded: set[str] = set()
    out: list[str] = []

    def ok(pattern: str) -> bool:
        return any(pattern_contains(w, pattern, case_sensitive=False) for w in wild) and cat.expand(pattern) <= foldable

    for service, names in sorted(by_service.items()):
        names.sort(key=str.lower)
        whole = f"{service}:*"
        if len(names) > 1 and ok(whole):
            out.append(whole)
            folded.update(names)
            continue
        i = 0
        while i < len(names):
            j, pattern = i + 1, ""
            while j < len(names):
                n = _lcp(names[i], names[j])
                candidate = names[i][:n] + "*"
                if n <= len(service) + 1 or not ok(candidate):
                    break
                pattern, j = candidate, j + 1
            if pattern:
                out.append(pattern)
                folded.update(names[i:j])
            i = j
    return folded, out


def _collapse(actions: set[str], original_patterns: Sequence[str], keep_all: frozenset[str]) -> list[str]:
    """Action entries for a set of actions: the original's own wildcards whose every action is kept, then runs of
    actions as the narrowest pattern an original wildcard contains (:func:`_compact`), then single actions. A wildcard
    no original pattern contains is never made (it would grant actions AWS adds later under it:
    ``iamgraph.recommend.containment``)."""
    cat = get_catalog()
    left = set(actions)
    out: list[str] = []
    for p in original_patterns:
        if ("*" in p or "?" in p):
            cover = cat.expand(p)
            if cover and cover <= keep_all and cover & left:
                out.append(p)
                left -= cover
    folded, patterns = _compact(left, original_patterns, keep_all)
    out.extend(patterns)
    out.extend(sorted(left - folded))
    return out


def trim_document(
    doc: Mapping[str, Any] | str,
    calls: Iterable[Call],
    *,
    keep_action: Callable[[str], bool] | None = None,
    keep_actions: Callable[[Set[str]], Set[str]] | None = None,
    config: RecommendConfig,
    matcher: StatementMatcher | None = None,
    source: str = "<policy>",
) -> Trimmed:
    """Trim one identity policy against the calls of every principal it applies to.

    ``keep_action(a)`` is True for a granted action that must stay although no call shows it (its use cannot
    be observed, or the configuration excludes it). ``keep_actions(actions)`` answers the same question for every
    action of a statement no call shows at once (the actions to keep among them); give one of the two. The
    recommender gives ``keep_actions``: an admin's statement grants ~18,000 actions, asked one call each 128,000
    times over the report's ten recommendations.
    """
    if keep_actions is None:
        if keep_action is None:
            raise TypeError("trim_document: give keep_action or keep_actions")
        one = keep_action
        keep_actions = lambda actions: {a for a in actions if one(a)}  # noqa: E731
    elif keep_action is not None:
        raise TypeError("trim_document: give keep_action or keep_actions, not both")
    cat = get_catalog()
    raw = load_document(doc, source=source)
    # Fail early, naming the place; the parsed statements are read, the raw ones kept for the output's shape.
    policy = parse_policy(raw, source=source, require_resource=True, principal=False)
    matcher = matcher or StatementMatcher()
    calls = list(calls)
    statements = _as_list(raw.get("Statement"))
    out_statements: list[dict[str, Any]] = []
    removed: set[str] = set()
    unobservable: set[str] = set()
    left_alone: list[str] = []
    notes: list[str] = []
    # The original's Sids keep their names; a derived one (<Sid>2, ...) steps over any of them.
    sids_taken = {p.sid for p in policy.statements if p.sid is not None}
    changed = False
    for i, (st, parsed) in enumerate(zip(statements, policy.statements, strict=True)):
        sid = parsed.sid
        label = f"Statement[{i}]" + (f" ({sid})" if sid else "")
        if not parsed.is_allow:
            out_statements.append(st)
            continue
        if config.keeps_sid(sid):
            out_statements.append(st)
            left_alone.append(f"{label}: Sid starts with a keep marker")
            continue
        action_patterns = list(parsed.action or ())
        not_action = parsed.not_action is not None
        granted = cat.statement_actions(parsed)
        unknown = [] if not_action else cat.unknown_patterns(action_patterns)
        resources = list(parsed.resource or ())
        narrowable = parsed.resource is not None and not any("${" in r for r in resources)
        used: dict[str, set[str]] = defaultdict(set)
        key = json.dumps(st, sort_keys=True, default=str)
        for c in calls:
            if c.action not in granted:
                continue
            if c.resource is None:
                # The resource is unknown: the statement keeps its original resources for this action, so
                # whatever the call touched stays reachable.
                used[c.action].add(_ALL)
            elif matcher.matches(key, st, c, c.resource):
                used[c.action].add(c.resource if narrowable else _ALL)
        kept: dict[str, set[str]] = {}
        keep = keep_actions(granted - used.keys())
        for a in granted:
            if a in used:
                kept[a] = used[a]
            elif a in keep:
                kept[a] = {_ALL}
                unobservable.add(a)
        removed |= granted - set(kept)
        if not kept and not unknown:
            changed = True
            continue
        keep_all = frozenset(kept)
        if keep_all == granted and all(_ALL in r for r in kept.values()):
            out_statements.append(st)  # nothing to take away: the statement stays as written
            continue
        changed = True
        groups: dict[tuple[str, ...], set[str]] = defaultdict(set)
        prefixed: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for a, res in kept.items():
            if _ALL in res:
                groups[(_ALL,)].add(a)
            else:
                arns = sorted(res)
                if not config.exact_keys:
                    arns, made = _s3_prefixes(arns, resources, config.s3_prefix_threshold)
                    for prefix, count in made:
                        prefixed[prefix].append((a, count))
                if len(arns) > config.resource_wildcard_threshold:
                    arns = _generalise(arns, resources)
                groups[tuple(sorted(arns))].add(a)
        for prefix, uses in sorted(prefixed.items()):
            notes.append(f"{label}: {', '.join(sorted(a for a, _ in uses))} granted on {prefix}: "
                         f"{max(c for _, c in uses)} object keys were used under this prefix "
                         f"(s3_prefix_threshold {config.s3_prefix_threshold}; --exact-keys keeps the exact keys)")
        if unknown:
            groups.setdefault((_ALL,), set())
        n = 0
        for res_key in sorted(groups, key=lambda k: (k != (_ALL,), k)):
            acts = groups[res_key]
            # Wildcards only over this group: an action kept on other resources must not widen here.
            entries = _collapse(acts, [] if not_action else action_patterns, frozenset(acts))
            if res_key == (_ALL,):
                entries += unknown  # not in our catalog: cannot be judged, so never removed
            if not entries:
                continue
            new: dict[str, Any] = {}
            if sid is not None:
                new["Sid"] = sid if n == 0 else _derived_sid(sid, n + 1, sids_taken)
            new["Effect"] = "Allow"
            new["Action"] = entries
            if res_key == (_ALL,):
                for k in ("Resource", "NotResource"):
                    if k in st:
                        new[k] = st[k]
            else:
                new["Resource"] = list(res_key)
            if "Condition" in st:
                new["Condition"] = st["Condition"]
            out_statements.append(new)
            n += 1
    out: dict[str, Any] = {k: v for k, v in raw.items() if k != "Statement"}
    # A derived Sid (<Sid>2, ...) may be one the original already uses: renamed, deterministically.
    out["Statement"] = unique_sids(out_statements)
    return Trimmed(
        document=out,
        changed=changed,
        removed_actions=tuple(sorted(removed)),
        kept_unobservable=tuple(sorted(unobservable)),
        left_alone=tuple(left_alone),
        notes=tuple(notes),
    )

