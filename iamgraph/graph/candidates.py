"""Candidate indexes: who *might* be allowed an action, read from the policy text alone.

Rules never simulate all principal pairs. They ask these indexes for the few principals whose
Allow statements could match (an over-approximation: Deny, conditions, boundaries and SCPs are
left to the engine), then ask the engine about those only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from iamgraph.errors import IamGraphError
from iamgraph.model.arn import account_of, is_account_id
from iamgraph.model.policy import Policy, PrincipalSpec, Statement, parse_policy
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import PolicyDocument

_VARIABLE = re.compile(r"\$\{[^}]*\}")


@lru_cache(maxsize=65536)
def _glob(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    # Policy variables (${aws:username}) are resolved per request; for candidates any value may match.
    parts = _VARIABLE.split(pattern)
    out = []
    for i, part in enumerate(parts):
        out.append(re.escape(part).replace(r"\*", ".*").replace(r"\?", "."))
        if i < len(parts) - 1:
            out.append(".*")
    return re.compile("^" + "".join(out) + "$", 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """Action names match case-insensitively with ``*`` and ``?`` (IAM's Action element)."""
    return _glob(pattern, False).match(action) is not None


def resource_matches(pattern: str, arn: str) -> bool:
    """Resource ARNs match case-sensitively with ``*`` and ``?``; policy variables match anything here."""
    return pattern == "*" or _glob(pattern, True).match(arn) is not None


class _ActionSet:
    """A statement's action patterns: literal names in a set, wildcards as regexes (long lists are common)."""

    __slots__ = ("globs", "literals")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.literals = frozenset(p.lower() for p in patterns if "*" not in p and "?" not in p)
        self.globs = tuple(_glob(p, False) for p in patterns if "*" in p or "?" in p)

    def matches(self, action: str) -> bool:
        return action.lower() in self.literals or any(g.match(action) for g in self.globs)


@lru_cache(maxsize=65536)
def _any_action(patterns: tuple[str, ...]) -> _ActionSet:
    return _ActionSet(patterns)


def statement_covers(st: Statement, action: str) -> bool:
    if st.action is not None:
        return _any_action(st.action).matches(action)
    if st.not_action is not None:
        return not _any_action(st.not_action).matches(action)
    return False


_Shape = tuple[bool, _ActionSet] | None


def _action_shape(st: Statement) -> _Shape:
    """What ``statement_covers`` reads of a statement: (Action rather than NotAction, its patterns)."""
    if st.action is not None:
        return True, _any_action(st.action)
    if st.not_action is not None:
        return False, _any_action(st.not_action)
    return None


def _shape_covers(item: _Shape, action: str, seen: dict[_ActionSet, bool]) -> bool:
    """``statement_covers`` for a statement read as ``_action_shape``; ``seen``: each pattern set's answer."""
    if item is None:
        return False
    positive, patterns = item
    hit = seen.get(patterns)
    if hit is None:
        hit = seen[patterns] = patterns.matches(action)
    return hit if positive else not hit


def statement_resources(st: Statement) -> tuple[str, ...]:
    """The resource patterns a statement could match; NotResource (or none) counts as ``*`` here."""
    if st.resource is not None:
        return st.resource
    return ("*",)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustPrincipals:
    """Who a role's trust policy names in Allow statements (any sts action), by kind."""

    arns: tuple[str, ...] = ()
    """User/role ARNs (assumed-role session ARNs are mapped back to the role)."""
    accounts: tuple[str, ...] = ()
    """Account ids named as ``123456789012`` or ``arn:aws:iam::123456789012:root``."""
    everyone: bool = False
    services: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()


class CandidateIndex:
    """Parsed identity policies per principal (users with their groups, roles) and trust principals."""

    def __init__(self, index: SnapshotIndex, *, seed: CandidateIndex | None = None,
                 stale: frozenset[str] = frozenset()) -> None:
        """``seed``: the index of the snapshot before a change (``iamgraph.graph.incremental``); its parsed
        policies are taken for every policy whose owner (principal, group, managed policy, resource) is not
        in ``stale``, and what it found about a policy is taken wherever the same parsed policy is."""
        self.index = index
        self._seed = seed
        self._stale = stale
        self._parsed: dict[str, Policy | None] = {}
        self._covers: dict[str, dict[str, tuple[str, ...]]] = {}
        """Action (lower case) -> policy key -> the resource patterns of its Allow statements covering it."""
        self._key_cache: dict[str, dict[str, tuple[str, ...]]] = {}
        self._asked: dict[tuple[str, str], tuple[str, ...]] = {}
        """The same, per key, for actions asked about a few principals only (``patterns_for``)."""
        self.errors: list[str] = []
        self.failed: dict[str, str] = {}
        """Policy key -> why it did not parse (the same messages as ``errors``, by key)."""
        self.statements: dict[str, tuple[Statement, ...]] = {}
        """Principal ARN -> every identity Allow statement that applies to it."""
        self._policy_allows: dict[str, tuple[Statement, ...]] = {}
        self._holders: dict[str, list[str]] = {}
        """Policy key -> principals it applies to (through groups too): the inverted index."""
        self._keys: dict[str, tuple[str, ...]] = {}
        """Principal ARN -> its policy keys."""
        for user in index.users.values():
            keys = list(self._principal_docs(user.arn, user.inline_policies, user.attached_managed_policies))
            for group in index.groups_of(user):
                keys += self._principal_docs(group.arn, group.inline_policies, group.attached_managed_policies)
            self._register(user.arn, keys)
        for role in index.roles.values():
            self._register(role.arn, list(self._principal_docs(role.arn, role.inline_policies,
                                                                role.attached_managed_policies)))
        self._by_action: dict[str, dict[str, tuple[str, ...]]] = {}
        self._shape_index: tuple[int, dict[tuple[_Shape, ...], list[str]], dict[str, int]] | None = None
        self.principals_by_account: dict[str, list[str]] = {}
        for arn in self.statements:
            self.principals_by_account.setdefault(index.account_of.get(arn, ""), []).append(arn)
        self._trust: dict[str, TrustPrincipals] = {}
        self.init_errors = len(self.errors)
        """How many of ``errors`` come from the identity policies (parsed here); the rest are from documents the
        rules asked for (trust and resource policies)."""
        self.init_keys = frozenset(self._parsed)
        self._changed = self._changed_since_seed()
        self._key_order: dict[str, int] | None = None
        self._registered: dict[str, int] | None = None

    # -- parsing (cached by policy id)

    def parsed(self, policy_id: str, doc: PolicyDocument | None, *, trust: bool = False) -> Policy | None:
        if policy_id in self._parsed:
            return self._parsed[policy_id]
        policy: Policy | None = None
        if self._seed is not None and not self.owner_stale(policy_id):
            # Only parsed documents are taken: a document that failed is parsed again, so its error is
            # recorded in this index too, in the order a fresh build records it.
            policy = self._seed._parsed.get(policy_id)
        if policy is None and doc is not None:
            try:
                policy = parse_policy(doc, source=policy_id, principal=True if trust else None)
            except IamGraphError as exc:
                # The engine reports the same document as an evaluation error; here it only
                # means this policy contributes no candidates.
                self.errors.append(str(exc))
                self.failed[policy_id] = str(exc)
        self._parsed[policy_id] = policy
        return policy

    def owner_stale(self, policy_id: str) -> bool:
        """Whether the record a policy key comes from changed: keys are ``OWNER:NAME`` (inline), ``ARN@VERSION``
        (managed), ``ARN:trust`` and ``ARN:policy``; both readings are checked, so a name holding ``@`` or
        ``:`` can only make a key stale, never fresh."""
        return policy_id.rsplit(":", 1)[0] in self._stale or policy_id.rsplit("@", 1)[0] in self._stale

    def _principal_docs(self, owner: str, inline: Iterable[object], attached: Iterable[str]) -> Iterable[str]:
        """Keys of the parsed policies (inline and attached) of one principal or group."""
        for pol in inline:
            key = f"{owner}:{getattr(pol, 'name', '')}"
            if self.parsed(key, getattr(pol, "document", None)) is not None:
                yield key
        for arn in attached:
            managed = self.index.policies.get(arn)
            if managed is None:
                continue
            key = f"{arn}@{managed.default_version_id}"
            if self.parsed(key, managed.default_document()) is not None:
                yield key

    def _changed_since_seed(self) -> frozenset[str] | None:
        """Principals whose answers to ``principals_with`` may differ from the seed's (their policy keys or
        statements differ, or they appear or disappear); None when the seed's answers cannot be reused at all
        (no seed, or the policy keys the two share come in another order, which orders the patterns)."""
        seed = self._seed
        if seed is None:
            return None
        mine, theirs = self._policy_allows, seed._policy_allows
        if [k for k in mine if k in theirs] != [k for k in theirs if k in mine]:
            return None
        changed = {p for p, sts in self.statements.items()
                   if self._keys[p] != seed._keys.get(p) or sts != seed.statements.get(p)}
        changed.update(p for p in seed.statements if p not in self.statements)
        return frozenset(changed)

    def _register(self, principal: str, keys: list[str]) -> None:
        statements: list[Statement] = []
        mine = self._keys[principal] = tuple(dict.fromkeys(keys))
        seed = self._seed
        for key in mine:
            allows = self._policy_allows.get(key)
            if allows is None:
                policy = self._parsed[key]
                if seed is not None and policy is not None and seed._parsed.get(key) is policy:
                    # The seed's parsed policy: its Allow statements are the seed's (a judgement's index over a changed
                    # snapshot takes them instead of reading every principal's policies again).
                    allows = seed._policy_allows.get(key)
                if allows is None:
                    allows = tuple(st for st in policy.statements if st.is_allow) if policy is not None else ()
                self._policy_allows[key] = allows
            statements.extend(allows)
            self._holders.setdefault(key, []).append(principal)
        self.statements[principal] = tuple(statements)

    # -- questions

    def principals_with(self, action: str) -> dict[str, tuple[str, ...]]:
        """Principal ARN -> resource patterns of its Allow statements that cover ``action``."""
        key = action.lower()
        hit = self._by_action.get(key)
        if hit is not None:
            return hit
        seed = self._seed
        if seed is not None and self._changed is not None and key in seed._by_action:
            hit = self._from_seed(key, seed._by_action[key], self._changed)
            self._by_action[key] = hit
            return hit
        collected: dict[str, list[str]] = {}
        covers: dict[str, tuple[str, ...]] = {}
        for pkey, mask in self._covering(action):
            patterns = tuple(r for st, m in zip(self._policy_allows[pkey], mask, strict=True) if m
                             for r in statement_resources(st))
            if patterns:
                covers[pkey] = patterns
                for principal in self._holders.get(pkey, ()):
                    collected.setdefault(principal, []).extend(patterns)
        self._covers[key] = covers
        out = {p: tuple(dict.fromkeys(pats)) for p, pats in collected.items()}
        self._by_action[key] = out
        return out

    def _covering(self, action: str) -> list[tuple[str, tuple[bool, ...]]]:
        """(policy key, which of its Allow statements cover ``action``) for every key with at least one, in the
        index's order: ``statement_covers`` asked once per distinct list of statement actions (an organization's
        policies repeat a few templates), not once per statement of every policy."""
        idx = self._shape_index
        if idx is None or idx[0] != len(self._policy_allows):
            groups: dict[tuple[_Shape, ...], list[str]] = {}
            for pkey, allows in self._policy_allows.items():
                groups.setdefault(tuple(_action_shape(st) for st in allows), []).append(pkey)
            idx = self._shape_index = (len(self._policy_allows), groups,
                                       {k: i for i, k in enumerate(self._policy_allows)})
        _, groups, order = idx
        seen: dict[_ActionSet, bool] = {}
        found: list[tuple[str, tuple[bool, ...]]] = []
        for shape, keys in groups.items():
            mask = tuple(_shape_covers(item, action, seen) for item in shape)
            if any(mask):
                found.extend((k, mask) for k in keys)
        found.sort(key=lambda km: order[km[0]])
        return found

    def _from_seed(self, action: str, answer: dict[str, tuple[str, ...]],
                   changed: frozenset[str]) -> dict[str, tuple[str, ...]]:
        """The seed's answer for ``action``, with the changed principals' patterns computed again (each from its
        policy keys in the index's order, as the full scan collects them) and put where the full scan puts them."""
        out = {p: pats for p, pats in answer.items() if p not in changed} if changed else dict(answer)
        seed = self._seed
        cover = seed._covers.get(action) if seed is not None else None
        order = self._key_order
        if order is None:
            order = self._key_order = {k: i for i, k in enumerate(self._policy_allows)}

        def patterns_of(pkey: str) -> tuple[str, ...]:
            if cover is not None and seed is not None and self._parsed[pkey] is seed._parsed.get(pkey):
                return cover.get(pkey, ())
            return tuple(r for st in self._policy_allows[pkey] if statement_covers(st, action)
                         for r in statement_resources(st))

        inserts: list[tuple[str, tuple[str, ...]]] = []
        for p in changed:
            keys = self._keys.get(p)
            if not keys:
                continue
            patterns = [r for pkey in sorted(keys, key=order.__getitem__) for r in patterns_of(pkey)]
            if patterns:
                inserts.append((p, tuple(dict.fromkeys(patterns))))
        if not inserts:
            return out
        reg = self._registered
        if reg is None:
            reg = self._registered = {p: i for i, p in enumerate(self.statements)}

        def rank(p: str) -> tuple[int, int]:
            # The full scan meets a principal at its first key (in the index's order) covering the action, among
            # that key's holders in registration order.
            first = min((order[k] for k in self._keys[p] if patterns_of(k)), default=len(order))
            return first, reg[p]

        items = list(out.items())
        for p, pats in sorted(inserts, key=lambda x: rank(x[0])):
            mine, lo, hi = rank(p), 0, len(items)
            while lo < hi:
                mid = (lo + hi) // 2
                if rank(items[mid][0]) < mine:
                    lo = mid + 1
                else:
                    hi = mid
            items.insert(lo, (p, pats))
        return dict(items)

    def patterns_for(self, principal: str, action: str) -> tuple[str, ...]:
        """``principals_with(action).get(principal, ())`` without scanning every policy for an action no one
        asked about yet: a question about a few principals (SoD for one subject) reads their own policies only."""
        key = action.lower()
        hit = self._by_action.get(key)
        if hit is not None:
            return hit.get(principal, ())
        mine = self._asked.get((principal, key))
        if mine is not None:
            return mine
        seed = self._seed
        if seed is not None and self._changed is not None and principal not in self._changed:
            # Its policy keys and statements are the seed's (``_from_seed`` takes the seed's answers the same way).
            mine = seed.patterns_for(principal, action)
        else:
            keys = self._keys.get(principal) or ()
            order = self._key_order
            if order is None:
                order = self._key_order = {k: i for i, k in enumerate(self._policy_allows)}
            # The full scan visits policy keys in the index's order and appends each one's patterns to its holders'.
            mine = tuple(dict.fromkeys(r for pkey in sorted(keys, key=order.__getitem__)
                                       for r in self._key_patterns(pkey, key, action)))
        if len(self._asked) > 200_000:
            self._asked.clear()  # a long-lived (base) index asked about many subjects: bounded
        self._asked[(principal, key)] = mine
        return mine

    def _key_patterns(self, pkey: str, key: str, action: str) -> tuple[str, ...]:
        cover = self._covers.get(key)
        if cover is not None:
            return cover.get(pkey, ())
        table = self._key_cache.setdefault(key, {})
        hit = table.get(pkey)
        if hit is None:
            seed = self._seed
            seeded = seed._covers.get(key) if seed is not None else None
            if seeded is not None and seed is not None and self._parsed[pkey] is seed._parsed.get(pkey):
                hit = seeded.get(pkey, ())
            else:
                hit = tuple(r for st in self._policy_allows[pkey] if statement_covers(st, action)
                            for r in statement_resources(st))
            table[pkey] = hit
        return hit

    def may(self, principal: str, action: str, resource: str) -> bool:
        patterns = self.principals_with(action).get(principal, ())
        return any(resource_matches(p, resource) for p in patterns)

    def named_in_policy(self, principal: str, resource_arn: str) -> bool:
        """Whether the resource's own policy (snapshot resources only) could grant ``principal``."""
        res = self.index.resources.get(resource_arn)
        if res is None or res.policy is None:
            return False
        tp = policy_principals(self.parsed(f"{resource_arn}:policy", res.policy, trust=True))
        return tp.everyone or principal in tp.arns or bool(tp.accounts)

    def trust(self, role_arn: str) -> TrustPrincipals:
        hit = self._trust.get(role_arn)
        if hit is None and self._seed is not None and role_arn not in self._stale:
            # The role's record is the seed's: the same trust policy names the same principals.
            hit = self._seed._trust.get(role_arn)
            if hit is not None:
                self._trust[role_arn] = hit
        if hit is not None:
            return hit
        role = self.index.roles.get(role_arn)
        policy = self.parsed(f"{role_arn}:trust", role.trust_policy if role else None, trust=True)
        result = policy_principals(policy, ("sts:AssumeRole", "sts:AssumeRoleWithSAML",
                                            "sts:AssumeRoleWithWebIdentity"))
        self._trust[role_arn] = result
        return result


def policy_principals(policy: Policy | None, actions: Iterable[str] | None = None) -> TrustPrincipals:
    """Principals named by a resource-based policy's Allow statements (covering any of ``actions``).

    ``NotPrincipal`` in an Allow matches everyone except the named ones, so it counts as everyone.
    """
    if policy is None:
        return TrustPrincipals()
    wanted = tuple(actions) if actions is not None else None
    found = [statement_principals(st) for st in policy.statements
             if st.is_allow and (wanted is None or any(statement_covers(st, a) for a in wanted))]
    return TrustPrincipals(
        arns=tuple(dict.fromkeys(a for tp in found for a in tp.arns)),
        accounts=tuple(dict.fromkeys(a for tp in found for a in tp.accounts)),
        everyone=any(tp.everyone for tp in found),
        services=tuple(dict.fromkeys(s for tp in found for s in tp.services)),
        federated=tuple(dict.fromkeys(f for tp in found for f in tp.federated)),
    )


def statement_principals(st: Statement) -> TrustPrincipals:
    """Who one statement of a resource-based policy names (its effect aside); ``NotPrincipal`` counts as everyone."""
    if st.not_principal is not None:
        return TrustPrincipals(everyone=True)
    spec: PrincipalSpec | None = st.principal
    if spec is None:
        return TrustPrincipals()
    arns: list[str] = []
    accounts: list[str] = []
    for value in spec.aws:
        if value == "*":
            continue
        if is_account_id(value):
            accounts.append(value)
        elif value.endswith(":root") and (acct := account_of(value)):
            accounts.append(acct)
        elif ":assumed-role/" in value and (acct := account_of(value)):
            role_name = value.split(":assumed-role/", 1)[1].split("/", 1)[0]
            arns.append(f"arn:aws:iam::{acct}:role/{role_name}")
        else:
            arns.append(value)
    return TrustPrincipals(
        arns=tuple(dict.fromkeys(arns)),
        accounts=tuple(dict.fromkeys(accounts)),
        everyone=spec.wildcard or "*" in spec.aws,
        services=tuple(dict.fromkeys(spec.service)),
        federated=tuple(dict.fromkeys(spec.federated)),
    )


def instantiate(pattern: str, template: str) -> str:
    """A concrete ARN a caller could choose that a resource pattern allows.

    ``*`` -> the template; otherwise wildcards become ``x`` (a caller names its new resource freely).
    """
    if pattern == "*":
        return template
    return _VARIABLE.sub("x", pattern).replace("*", "x").replace("?", "x")
