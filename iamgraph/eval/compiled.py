"""Policies compiled for evaluation: action matchers, resource patterns, condition clauses, and an
index from action to the statements that can match it. Compiled once per policy and cached.

Action matching follows the Action element: service prefix and action name are case-insensitive,
``*`` and ``?`` are wildcards (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html).
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from iamgraph.eval.conditions import CompiledClause, compiled_clause
from iamgraph.eval.context_keys import unsupported_keys
from iamgraph.eval.patterns import Pattern, compile_regex, glob_regex, resource_pattern
from iamgraph.eval.service_rules import may_refuse
from iamgraph.eval.types import PolicySet, PolicyType, StatementRef
from iamgraph.model.policy import ConditionClause, Effect, Policy, Statement, shared_statement
from iamgraph.model.slots import maker

VARIABLES_VERSION = "2012-10-17"
_cache_lock = threading.Lock()


class _ActionPattern:
    __slots__ = ("literal", "prefix", "regex", "text")

    def __init__(self, text: str) -> None:
        low = text.lower()
        self.literal: str | None = None
        self.prefix: str | None = None
        self.regex: re.Pattern[str] | None = None
        self.text = low
        if low == "*":
            self.regex = None
        elif "?" not in low and low.endswith("*") and "*" not in low[:-1]:
            self.prefix = low[:-1]
        elif "*" in low or "?" in low:
            self.regex = compile_regex(glob_regex((low,), None, arn=False))
        else:
            self.literal = low

    def matches(self, action_l: str) -> bool:
        if self.literal is not None:
            return action_l == self.literal
        if self.prefix is not None:
            return action_l.startswith(self.prefix)
        if self.regex is None:
            return True
        return self.regex.fullmatch(action_l) is not None


_action_sets: dict[tuple[str, ...], tuple[tuple[_ActionPattern, ...], dict[str, bool]]] = {}


def _action_patterns(texts: tuple[str, ...]) -> tuple[tuple[_ActionPattern, ...], dict[str, bool]]:
    """The matchers of an Action/NotAction list, and whether one of them matches each action asked about so far,
    shared by every statement that names the same list: distinct documents name the same few actions
    (``s3:GetObject``, ``s3:Get*``) again and again, and a new document's statements are matched against the
    request's action once each. Kept from the first sight: a tuple of strings is cheap to hash, and the matchers
    hold nothing of a request."""
    hit = _action_sets.get(texts)
    if hit is None:
        hit = tuple([_ActionPattern(a) for a in texts]), {}
        with _cache_lock:
            if len(_action_sets) >= 20_000:
                _action_sets.clear()
            _action_sets[texts] = hit
    return hit


_refs: dict[tuple[PolicyType, str, int, str | None, str], StatementRef] = {}
_new_ref = maker(StatementRef)  # a batch of distinct documents names new Sids line after line (slots.py says why)


def statement_ref(ptype: PolicyType, pid: str, index: int, sid: str | None, effect: str) -> StatementRef:
    """One StatementRef per (type, policy id, index, sid, effect), whatever statement it names: a batch's
    distinct documents sit at the same places (``policies.identity[0]`` statement 0) line after line, so a
    new statement there needs no new reference. A StatementRef is a value (compared by its fields)."""
    key = (ptype, pid, index, sid, effect)
    ref = _refs.get(key)
    if ref is None:
        ref = _new_ref(policy_type=ptype, policy_id=pid, statement_index=index, sid=sid, effect=effect, level=None)
        with _cache_lock:
            if len(_refs) >= 65_536:
                _refs.clear()
            _refs[key] = ref
    return ref


_ANY = Pattern("*", False, True)
_Clauses = tuple[tuple[CompiledClause, ...], tuple[CompiledClause, ...]]
_NO_CLAUSES: _Clauses = ((), ())
_clause_sets: dict[int, tuple[tuple[ConditionClause, ...], bool, _Clauses]] = {}


def _compiled_clauses(conditions: tuple[ConditionClause, ...], variables: bool) -> _Clauses:
    """The compiled clauses of a statement's Condition block, by the identity of its tuple: statements parsed
    from one template (model.policy) carry the template's own tuple, so a batch's new statements of one shape
    find their clauses without hashing each clause. The entry holds the tuple, so its id names no other object
    while the entry lives; a small table, cleared when full (a tuple seen once is only a short-lived entry)."""
    hit = _clause_sets.get(id(conditions))
    if hit is not None and hit[0] is conditions and hit[1] is variables:
        return hit[2]
    made: _Clauses
    if len(conditions) == 1:  # the usual Condition block: one operator, one key
        clause = compiled_clause(conditions[0], variables)
        made = (clause,), (() if clause.error is None else (clause,))
    else:
        clauses = tuple([compiled_clause(c, variables) for c in conditions])
        made = clauses, tuple([c for c in clauses if c.error is not None])  # (clauses, those that cannot be evaluated)
    with _cache_lock:
        if len(_clause_sets) >= 4096:
            _clause_sets.clear()
        _clause_sets[id(conditions)] = (conditions, variables, made)
    return made


class CompiledStatement:
    __slots__ = (
        "_action_hits",
        "actions",
        "clauses",
        "effect",
        "errors",
        "index",
        "is_allow",
        "not_action",
        "not_principal",
        "not_resource",
        "plain",
        "principal",
        "resources",
        "sid",
        "star",
        "statement",
    )

    def __init__(self, st: Statement, variables: bool, one_document: bool = False) -> None:
        # Written out (no helper per element, no generator): a batch of distinct documents compiles every new
        # statement once.
        self.statement = st
        self.index = st.index
        self.sid = st.sid
        allow = self.is_allow = st.effect is Effect.ALLOW
        self.effect = "Allow" if allow else "Deny"  # the StrEnum's value
        action = st.action
        self.not_action = action is None
        texts = action if action is not None else st.not_action or ()
        hit = _action_sets.get(texts)
        self.actions, self._action_hits = hit if hit is not None else _action_patterns(texts)
        raw_res = st.resource
        not_resource = False
        if raw_res is None:
            raw_res = st.not_resource
            not_resource = raw_res is not None
        self.not_resource = not_resource
        resources: tuple[Pattern, ...] | None
        if raw_res is None:
            resources = None
        elif one_document:
            # A statement of a document seen once names resources of its own (what made it new): a Pattern shared
            # through the cache would be looked up and kept for nothing. "*" is one object.
            resources = tuple([_ANY if r == "*" else Pattern(r, variables, True) for r in raw_res])
        else:
            resources = tuple([resource_pattern(r, variables) for r in raw_res])
        self.resources = resources
        principal = self.principal = st.principal
        not_principal = self.not_principal = st.not_principal
        conditions = st.conditions
        self.clauses, self.errors = _compiled_clauses(conditions, variables) if conditions else _NO_CLAUSES
        self.star, self.plain = _flags(resources, not_resource,
                                       not conditions and principal is None and not_principal is None)

    @classmethod
    def from_template(cls, proto: CompiledStatement, st: Statement, variables: bool) -> CompiledStatement:
        """The compiled form of ``st``, a statement parsed from a template (``model.policy.with_resources``: every
        element the template's own object but its Resource or NotResource), made from ``proto``, the template's
        compiled form under the same ``variables``: only the resources are compiled, as ``__init__`` compiles those
        of a document seen once."""
        out = object.__new__(cls)
        out.statement = st
        out.index = proto.index
        out.sid = proto.sid
        out.effect = proto.effect
        out.is_allow = proto.is_allow
        out.not_action = proto.not_action
        out.actions = proto.actions
        out._action_hits = proto._action_hits
        out.not_resource = proto.not_resource
        raw_res = st.resource if st.resource is not None else st.not_resource
        out.resources = None if raw_res is None else tuple([
            _ANY if r == "*" else Pattern(r, variables, True) for r in raw_res])
        out.principal = proto.principal
        out.not_principal = proto.not_principal
        out.clauses = proto.clauses
        out.errors = proto.errors
        out.star, out.plain = _flags(out.resources, out.not_resource,
                                     not out.clauses and out.principal is None and out.not_principal is None)
        return out

    def action_matches(self, action_l: str) -> bool:
        return _listed(self.actions, self._action_hits, action_l) != self.not_action


def _flags(resources: tuple[Pattern, ...] | None, not_resource: bool, unconditional: bool) -> tuple[bool, bool]:
    """(star, plain) of a compiled statement; ``unconditional``: no condition, no Principal and no NotPrincipal.

    star: the statement names every resource, "*" among its Resource entries and no entry with a variable (which
    discovery mode may leave as a residual condition); the engine skips the resource check (engine.py).
    plain: it applies to every request its Action matches, unconditional with a Resource of "*" only (or none, as
    SCPs may write it); the engine skips its checks (engine.py)."""
    if resources is None:
        return False, unconditional
    if not_resource:
        return False, False
    star = every = True
    named = False
    for p in resources:  # one loop, no generators
        if p.always:
            named = True
        else:
            every = False
        if p.var_keys:
            star = False
    return star and named, unconditional and every


def _listed(patterns: tuple[_ActionPattern, ...], hits: dict[str, bool], action_l: str) -> bool:
    """Whether one of an Action/NotAction list's ``patterns`` matches ``action_l``; ``hits``: the list's answers so far
    (``_action_patterns``)."""
    hit = hits.get(action_l)
    if hit is None:
        hit = False
        for a in patterns:
            if a.matches(action_l):
                hit = True
                break
        if len(hits) < 4096:  # an answer per action asked about, up to a bound (what-can asks about thousands)
            hits[action_l] = hit
    return hit


def _statement_matches(st: Statement, action_l: str) -> bool:
    """``CompiledStatement.action_matches`` of ``st``'s compiled form, without compiling it."""
    if st.action is not None:
        return _listed(*_action_patterns(st.action), action_l)
    return not _listed(*_action_patterns(st.not_action or ()), action_l)


_shared: tuple[dict[int, tuple[Statement, CompiledStatement]], dict[int, tuple[Statement, CompiledStatement]]] = (
    {}, {})
"""Compiled forms of the statements the parse shares (``model.policy.shared_statement``), by the statement's
identity; one table per value of ``variables``. The entry holds the statement, so its id names no other object
while the entry lives."""


def _compiled_statement(st: Statement, variables: bool, one_document: bool) -> CompiledStatement:
    # Distinct documents often share whole statements (same index, same content), and the parse hands them
    # the same Statement object from its second sight on: compiled once, found by identity, without hashing
    # the statement's content. A statement the parse made for one document alone is compiled, used and
    # dropped with its document. (A table keyed by identity that kept statements from their own second
    # sight would count the reuse of a dropped statement's id as a second sight.) The compiled statement
    # holds nothing of its policy.
    table = _shared[variables]
    hit = table.get(id(st))
    if hit is not None and hit[0] is st:
        return hit[1]
    shared = shared_statement(st)
    made = CompiledStatement(st, variables, one_document and not shared)
    if shared:
        with _cache_lock:
            if len(table) >= 50_000:
                table.clear()
            table[id(st)] = (st, made)
    return made


_K = TypeVar("_K")
_V = TypeVar("_V")

KEPT_PER_POLICY = 4096
"""The most answers a compiled policy keeps per table (candidates per action, plans, placed plans); a fuller table is
emptied before it takes one more, so a long-lived policy asked about many actions stays bounded."""


def _kept(table: dict[_K, _V] | None, key: _K, value: _V) -> dict[_K, _V]:
    """``table`` (a new one when there is none) with ``key`` -> ``value``, emptied first when already full. Callers hold
    the policy's lock."""
    if table is None:
        table = {}
    elif len(table) > KEPT_PER_POLICY:
        table.clear()
    table[key] = value
    return table


class CompiledPolicy:
    """A policy ready for evaluation. ``candidates(action)`` returns only statements that can match."""

    __slots__ = (
        "_by_action",
        "_by_service",
        "_exact",
        "_first",
        "_indexed",
        "_lock",
        "_placed",
        "_plans",
        "_referenced_keys",
        "_some",
        "_statements",
        "_template",
        "_variables",
        "_wild",
        "policy",
    )

    def __init__(self, policy: Policy, *, one_document: bool = False,
                 template: tuple[CompiledPolicy, Iterable[int]] | None = None) -> None:
        """``one_document``: the policy of a document seen for the first time (``transient``). ``template``: the
        compiled form of a policy ``policy`` was made from (``transient``), and the places where it differs."""
        self.policy = policy
        variables = self._variables = policy.version == VARIABLES_VERSION
        self._template: CompiledPolicy | None = None
        self._some: list[CompiledStatement | None] | None = None
        self._statements: tuple[CompiledStatement, ...] | None
        if template is not None:
            base, changed = template
            theirs: tuple[CompiledStatement, ...] = base.statements
            statements = list(theirs)
            for j in changed:
                statements[j] = CompiledStatement.from_template(theirs[j], policy.statements[j], variables)
            self._statements = tuple(statements)
            self._template = base
        elif one_document:
            # A document seen for the first time is asked about one action, once (a batch line's own): only the
            # statements whose Action or NotAction can match it are compiled (``_scan``), the rest when asked for
            # (``statements``). The parse has validated every statement already; compiling reports nothing of them
            # (a clause that cannot be evaluated is reported when its statement is evaluated, engine.py).
            self._statements = None
            self._some = [None] * len(policy.statements)
        else:
            self._statements = tuple([_compiled_statement(s, variables, False) for s in policy.statements])
        # The index and the per-action answers are made when asked for: a batch line's own document is asked
        # about one action, once, and dropped (each container made here would be made and freed for nothing).
        self._exact: dict[str, list[int]] = _NO_INDEX
        self._by_service: dict[str, list[int]] = _NO_INDEX
        self._wild: Sequence[int] = ()
        self._indexed = False
        self._by_action: dict[str, tuple[CompiledStatement, ...]] | None = None
        self._plans: dict[tuple[str, PolicyType, str], tuple[tuple[CompiledStatement, StatementRef], ...]] | None = None
        self._first: tuple[tuple[str, PolicyType, str], tuple[tuple[CompiledStatement, StatementRef], ...]] | None = None
        self._lock = _cache_lock  # held for a dict update only: one lock for all policies is enough
        self._referenced_keys: frozenset[str] | None = None
        self._placed: dict[tuple[str, PolicyType, str], tuple[tuple[int, StatementRef], ...]] | None = None

    @property
    def statements(self) -> tuple[CompiledStatement, ...]:
        """Every statement, compiled, in the document's order."""
        made = self._statements
        if made is not None:
            return made
        some = self._some
        assert some is not None
        fresh = [st if st is not None else _compiled_statement(raw, self._variables, True)
                 for st, raw in zip(some, self.policy.statements, strict=True)]
        with self._lock:
            if self._statements is None:
                # A statement a scan compiled meanwhile is the one its plan holds: kept, so that the plans and this
                # tuple name the same objects (``_placed_plan`` finds places by identity).
                self._statements = tuple([st if st is not None else mine for st, mine in zip(some, fresh, strict=True)])
            return self._statements

    def _scan(self, action_l: str) -> tuple[CompiledStatement, ...]:
        """``candidates`` of a document not compiled yet: the statements that can match ``action_l``, compiling only
        those."""
        some = self._some
        assert some is not None
        out: list[CompiledStatement] = []
        for i, raw in enumerate(self.policy.statements):
            st = some[i]
            if st is None:
                if not _statement_matches(raw, action_l):
                    continue
                made = _compiled_statement(raw, self._variables, True)
                with self._lock:
                    done = self._statements
                    if done is not None:
                        st = done[i]
                    else:
                        st = some[i]
                        if st is None:
                            st = some[i] = made
            elif not st.action_matches(action_l):
                continue
            out.append(st)
        return tuple(out)

    def _index(self, statements: tuple[CompiledStatement, ...]) -> None:
        """The statements by the actions they name (made when a second action is asked about: a policy of
        one request, such as a batch line's own document, is scanned once instead)."""
        exact: dict[str, list[int]] = {}
        by_service: dict[str, list[int]] = {}
        wild: list[int] = []
        for i, st in enumerate(statements):
            if st.not_action:
                wild.append(i)
                continue
            for text in st.statement.action or ():
                low = text.lower()
                service, _, _ = low.partition(":")
                if "*" not in low and "?" not in low:
                    exact.setdefault(low, []).append(i)
                elif low != "*" and "*" not in service and "?" not in service:
                    by_service.setdefault(service, []).append(i)
                else:
                    wild.append(i)
        self._exact, self._by_service, self._wild = exact, by_service, wild
        self._indexed = True

    @property
    def referenced_keys(self) -> frozenset[str]:
        """Condition keys (lower-case) the policy reads, in conditions or variables (made on first use:
        the engine does not need it)."""
        keys = self._referenced_keys
        if keys is None:
            found: set[str] = set()
            for st in self.statements:
                for c in st.clauses:
                    found.add(c.key_l)
                    found.update(c.var_keys)
                for pat in st.resources or ():
                    found.update(pat.var_keys)
            keys = self._referenced_keys = frozenset(found)
        return keys

    def candidates(self, action_l: str) -> tuple[CompiledStatement, ...]:
        by_action = self._by_action
        if by_action is not None:
            hit = by_action.get(action_l)
            if hit is not None:
                return hit
        if by_action is None and not self._indexed:
            # The first action asked about: a plain scan costs what building the index would.
            if self._statements is None:
                out = self._scan(action_l)
            else:
                out = tuple([st for st in self._statements if st.action_matches(action_l)])
        else:
            statements = self.statements  # compiled whole first: the property takes the lock
            with self._lock:
                if not self._indexed:
                    self._index(statements)
            service = action_l.partition(":")[0]
            idx = set(self._exact.get(action_l, ()))
            idx.update(self._by_service.get(service, ()))
            idx.update(self._wild)
            out = tuple(statements[i] for i in sorted(idx) if statements[i].action_matches(action_l))
        with self._lock:
            self._by_action = _kept(self._by_action, action_l, out)
        return out

    def plan(self, action_l: str, ptype: PolicyType, pid: str) -> tuple[tuple[CompiledStatement, StatementRef], ...]:
        """``candidates(action_l)``, each with its StatementRef as the policy ``pid`` of type ``ptype``: what
        the engine walks for one policy of a request, made once per (action, type, id)."""
        key = (action_l, ptype, pid)
        first = self._first
        if first is not None and first[0] == key:
            return first[1]
        plans = self._plans
        if plans is not None:
            hit = plans.get(key)
            if hit is not None:
                return hit
        base = self._template
        if base is not None:
            # The template's statements match the same actions as these (only resources differ), at the same places:
            # its plan (made once for all the documents made from it), with these statements.
            mine = self.statements
            out = tuple([(mine[at], ref) for at, ref in base._placed_plan(action_l, ptype, pid)])
        else:
            out = tuple([(st, statement_ref(ptype, pid, st.index, st.sid, st.effect))
                         for st in self.candidates(action_l)])
        if first is None:
            # The first plan needs no table: a batch line's own document is asked once and dropped.
            self._first = (key, out)
            return out
        with self._lock:
            self._plans = _kept(self._plans, key, out)
        return out

    def _placed_plan(self, action_l: str, ptype: PolicyType, pid: str) -> tuple[tuple[int, StatementRef], ...]:
        """``plan``, with each statement's place in ``statements`` instead of the statement (made once per key: the
        documents made from this one ask it once each)."""
        key = (action_l, ptype, pid)
        placed = self._placed
        if placed is not None:
            hit = placed.get(key)
            if hit is not None:
                return hit
        places = {id(st): at for at, st in enumerate(self.statements)}
        out = tuple([(places[id(st)], ref) for st, ref in self.plan(action_l, ptype, pid)])
        with self._lock:
            self._placed = _kept(self._placed, key, out)
        return out


_NO_INDEX: dict[str, list[int]] = {}
"""The index of a policy not yet indexed (read only: ``_index`` makes the policy's own)."""


# ------------------------------------------------------------------------------- the cache

_MAX = 50_000
_by_id: dict[int, tuple[Policy, CompiledPolicy]] = {}
_by_content: dict[tuple[Policy, tuple[tuple[type, ...], ...]], CompiledPolicy] = {}


# Policies parsed from a document seen for the first time (``engine.named_policy``): most are used by
# one request only (a batch whose lines each carry their own documents), so their compiled forms are
# kept only among the last few such policies, not in the cache above. Keeping every one of them would
# make the interpreter's cyclic garbage collector walk them again and again (measured: about half the
# time of a batch of distinct complex documents), and hashing a fresh Policy by content costs a walk
# of the whole document. A document seen again is parsed into the shared caches and compiled there.
_TRANSIENT_MAX = 16
_Derivation = tuple[Policy, tuple[int, ...]]
_transient: dict[int, tuple[Policy, CompiledPolicy | None, _Derivation | None]] = {}


def transient(policy: Policy, *, template: Policy | None = None, changed: Iterable[int] = ()) -> None:
    """Note that ``policy`` is probably used once: compile it on demand without caching it for long.

    ``template``: a policy whose statements ``policy`` has (the same objects) but at the places ``changed``, where
    it has the template's statement with its own Resource or NotResource (``model.policy.with_resources``): its
    compiled form is made from the template's, which is compiled once for all such policies."""
    derivation = None if template is None else (template, tuple(changed))
    with _cache_lock:
        while len(_transient) >= _TRANSIENT_MAX:
            del _transient[next(iter(_transient))]
        _transient[id(policy)] = (policy, None, derivation)


def compiled(policy: Policy) -> CompiledPolicy:
    """The compiled form of ``policy``, cached by object identity and then by content."""
    hit = _by_id.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    fresh = _transient.get(id(policy))
    if fresh is not None and fresh[0] is policy:
        if fresh[1] is not None:
            return fresh[1]
        derivation = fresh[2]
        if derivation is None:
            made = CompiledPolicy(policy, one_document=True)
        else:
            made = CompiledPolicy(policy, template=(compiled(derivation[0]), derivation[1]))
        with _cache_lock:
            # Still there (not evicted meanwhile): keep the compiled form for the rest of the request.
            if id(policy) in _transient:
                _transient[id(policy)] = (policy, made, derivation)
        return made
    # By content and the condition values' types: Policy equality is Python's, which has 1 == True, but a JSON
    # true and 1 are different condition values (conditions.compiled_clause).
    content = (policy, _value_types(policy))
    cp = _by_content.get(content)
    if cp is None:
        cp = CompiledPolicy(policy)
    with _cache_lock:
        if len(_by_id) > _MAX:
            _by_id.clear()
            _by_content.clear()
        _by_id[id(policy)] = (policy, cp)
        _by_content[content] = cp
    return cp


def _value_types(policy: Policy) -> tuple[tuple[type, ...], ...]:
    """The types of every condition value of ``policy``, clause by clause: with the policy, what tells two
    documents apart that Python's equality takes for one."""
    return tuple([tuple(map(type, c.values)) for st in policy.statements for c in st.conditions])


# ------------------------------------------------------------------ actions the engine cannot tell apart


def action_classes(
    policies: PolicySet, actions: Iterable[str], resource: str, *, supplied: Iterable[str] | None = None
) -> list[list[str]]:
    """``actions`` split into classes that ``authorize`` decides alike for one principal on ``resource``
    under ``policies``: one question per class answers for all its members.

    The engine reads a request's action only through (engine.py; keep this list in step with it):
    - which statements of the set's policies its Action/NotAction patterns match (``candidates``);
    - its service where the service matters: whether RCPs govern it (``rcp_supported``), ``sts:`` (the
      trust policy), ``s3`` (Block Public Access), ``kms`` (grants);
    - ``kms:RetireGrant``, which RCPs do not govern;
    - the service rules naming it (``service_rules.may_refuse``);
    - which supplied context keys it supports (``context_keys.unsupported_keys``), which matters only
      for keys a policy reads and the request carries with a value. ``supplied``: the context keys the
      requests will carry with a value (``SnapshotEvaluator.principal_context`` and ``resource_context``
      plus any given); None takes every key the policies read, which is never wrong, only slower.
    Members of a class agree on all of these. Actions a service rule may single out are classes of their
    own. Classes and their members come sorted (deterministic).
    """
    docs = [*policies.identity, policies.resource, policies.permission_boundary, policies.session,
            policies.vpc_endpoint_policy, *(p for level in policies.scps for p in level),
            *(p for level in policies.rcps for p in level), *policies.kms_grants]
    wanted = frozenset(actions)
    # Many principals share one policy set (the same managed policies and SCPs): the classes are made once.
    # Parsed policies are shared by content, so their identities stand for their contents; the entry
    # holds them, so the ids stay unique while it lives.
    carried = None if supplied is None else frozenset(k.lower() for k in supplied)
    # The resource enters the classes only through the service rules that may refuse an action on it
    # (``_action_classes``): keyed by those rather than by the resource, one walk over an admin's hundreds of
    # resource patterns finds the classes of each policy set made once, instead of evicting them.
    key = (tuple(id(n.policy) if n is not None else None for n in docs), bool(policies.rcps), wanted,
           _refusable(resource), carried)
    hit = _classes_cache.get(key)
    if hit is not None:
        return [list(c) for c in hit[1]]
    out = _action_classes(policies, docs, wanted, resource, carried)
    with _cache_lock:
        while len(_classes_cache) >= 2048:
            # Oldest first (dicts keep insertion order): a full cache no longer drops everything at once. An
            # entry holds tuples of names the catalog already holds (about 150 kB for an admin's ~18,000
            # actions); the demo organization's what-can over every principal builds about 900.
            del _classes_cache[next(iter(_classes_cache))]
        _classes_cache[key] = (tuple(n.policy for n in docs if n is not None), tuple(tuple(c) for c in out))
    return out


_classes_cache: dict[tuple[Any, ...], tuple[tuple[Policy, ...], tuple[tuple[str, ...], ...]]] = {}


@lru_cache(maxsize=16384)
def _refusable(resource: str) -> frozenset[str]:
    """The singled-out actions a service rule may refuse on ``resource`` (``may_refuse``): all that
    ``_action_classes`` reads of the resource."""
    return frozenset(a for a in _SINGLED_OUT if a != "kms:retiregrant" and may_refuse(a, resource))


def _action_classes(
    policies: PolicySet, docs: list[Any], actions: frozenset[str], resource: str, carried: frozenset[str] | None
) -> list[list[str]]:
    from iamgraph.eval.engine import rcp_supported  # engine.py imports this module

    by_service = _by_service(actions)
    marks: dict[str, list[int]] = defaultdict(list)
    keys: set[str] = set()
    i = 0
    for named in docs:
        if named is None:
            continue
        cp = compiled(named.policy)
        keys.update(k for k in cp.referenced_keys if not k.startswith("aws:"))
        for st in cp.statements:
            i += 1
            # The statement applies to the actions its patterns match (Action) or to the rest
            # (NotAction): either way it splits them into the matched and the others.
            hit: set[str] = set()
            whole = False
            for pat in st.actions:
                service, _, name = pat.text.partition(":")
                if pat.text == "*":
                    whole = True
                    break
                if service in by_service and name == "*":
                    hit.update(a for a, _ in by_service[service])
                elif "*" in service or "?" in service:
                    hit.update(a for group in by_service.values() for a, a_l in group if pat.matches(a_l))
                elif service in by_service:
                    hit.update(a for a, a_l in by_service[service] if pat.matches(a_l))
            if whole:
                continue  # matches every action: it cannot split them
            for a in hit:
                marks[a].append(i)
    # Keys of no service's namespace are never judged unsupported (context_keys.py).
    read_keys = tuple(sorted(k for k in keys if k.partition(":")[0] in _service_names()
                             and (carried is None or k in carried)))
    rcps = bool(policies.rcps)
    classes: dict[tuple[Any, ...], list[str]] = {}
    empty: tuple[int, ...] = ()
    for service, group in sorted(by_service.items()):
        kind = service if service in _SERVICES_READ else (rcp_supported(service) if rcps else None)
        if not read_keys and not any(a in marks or a_l in _SINGLED_OUT for a, a_l in group):
            # Nothing singles out any action of the service: it joins its kind's class whole.
            classes.setdefault((kind, None, empty, ()), []).extend(a for a, _ in group)
            continue
        for a, a_l in group:
            alone = a_l in _SINGLED_OUT and (a_l == "kms:retiregrant" or may_refuse(a_l, resource))
            m = marks.get(a)
            key = (kind, a_l if alone else None, tuple(m) if m else empty,
                   unsupported_keys(a_l, read_keys) if read_keys else ())
            classes.setdefault(key, []).append(a)
    return list(classes.values())


def _by_service(actions: frozenset[str]) -> dict[str, list[tuple[str, str]]]:
    """The actions by lower-case service prefix, sorted, each with its lower-case name. Read, never changed.

    One set of actions is split under many policy sets (``unused`` on the demo organization: 231 splits of 91
    distinct sets, 329,000 actions sorted and lowered for 62,000 distinct), so the grouping is kept per set, up to
    ``_MAX_GROUPED`` actions in all (the oldest sets go first)."""
    hit = _grouped.get(actions)
    if hit is not None:
        return hit
    made: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for a in sorted(actions):
        a_l = a.lower()
        made[a_l.partition(":")[0]].append((a, a_l))
    out = dict(made)
    global _grouped_size
    with _cache_lock:
        if actions not in _grouped:
            while _grouped and _grouped_size + len(actions) > _MAX_GROUPED:
                oldest = next(iter(_grouped))
                del _grouped[oldest]
                _grouped_size -= len(oldest)
            _grouped[actions] = out
            _grouped_size += len(actions)
    return out


_grouped: dict[frozenset[str], dict[str, list[tuple[str, str]]]] = {}
_grouped_size = 0
_MAX_GROUPED = 100_000
"""About 12 MB at most (a tuple and a lower-case name per action): four admins' sets of ~22,000 actions."""


_SERVICES_READ = frozenset({"sts", "s3", "kms"})
"""Services the engine tells apart by name (trust policy, Block Public Access, KMS grants)."""


def _singled_out() -> frozenset[str]:
    from iamgraph.eval.service_rules import _BY_ACTION

    return frozenset({"kms:retiregrant", *_BY_ACTION})


_SINGLED_OUT = _singled_out()
_services_cache: list[frozenset[str]] = []


def _service_names() -> frozenset[str]:
    if not _services_cache:
        from iamgraph.catalog import get_catalog

        _services_cache.append(frozenset(get_catalog().services()))
    return _services_cache[0]
