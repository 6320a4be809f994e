"""What every edge rule gets: the snapshot index, the engine, candidate indexes, and cached checks.

All evaluation goes through the one engine (``iamgraph.eval``) in discovery mode, so a condition on a
key nobody supplied makes the edge conditional instead of silently dropping it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from iamgraph.errors import IamGraphError, InputError
from iamgraph.eval import Asker, Mode, Outsider, Overrides, SnapshotEvaluator, StandIn, named_policy
from iamgraph.eval.compiled import compiled
from iamgraph.eval.context_keys import unsupported_keys
from iamgraph.eval.kms_grants import grant_policy
from iamgraph.eval.principals import classify, principal_strength
from iamgraph.eval.service_rules import may_refuse
from iamgraph.eval.types import (
    ContextValue,
    Decision,
    NamedPolicy,
    PolicySet,
    PolicyType,
    StatementRef,
)
from iamgraph.graph.candidates import (
    CandidateIndex,
    TrustPrincipals,
    action_matches,
    instantiate,
    policy_principals,
    resource_matches,
    statement_principals,
)
from iamgraph.model.arn import account_of, is_account_id
from iamgraph.model.policy import Policy, PrincipalSpec, Statement, parse_policy
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Role

POLICY_WRITERS: dict[str, tuple[str, ...]] = {
    "s3:bucket": ("s3:PutBucketPolicy",),
    "kms:key": ("kms:PutKeyPolicy", "kms:CreateGrant"),
    "sqs:queue": ("sqs:SetQueueAttributes", "sqs:AddPermission"),
    "sns:topic": ("sns:SetTopicAttributes", "sns:AddPermission"),
    "secretsmanager:secret": ("secretsmanager:PutResourcePolicy",),
    "lambda:function": ("lambda:AddPermission",),
    "ecr:repository": ("ecr:SetRepositoryPolicy",),
}
"""Resource type -> the calls that rewrite (or, for KMS grants, extend) its resource-based policy."""

_ASSUME = "sts:AssumeRole"

NEW_PRINCIPAL_NAME = "iamgraph-new-principal"
"""The name of the stand-in for a principal someone could create (``as_new_principal``)."""



@dataclass(frozen=True, slots=True, kw_only=True)
class Skipped:
    """A question the build could not answer, kept as data (never silently dropped)."""

    rule: str
    subject: str
    message: str


@dataclass(slots=True)
class Stats:
    engine_calls: int = 0
    cache_hits: int = 0
    memo_hits: int = 0
    """Decisions reused from another request the engine would see identically (see ``BuildContext.check``)."""
    per_rule: dict[str, int] = field(default_factory=dict)


def _without_unsupported_keys(d: Decision) -> Decision:
    """What the memo keeps of a decision: its key holds only the context keys the policies read, so two requests
    sharing it may have supplied different keys the action never carries (``Decision.unsupported_keys``); those
    are the request's own, put back by ``_with_own_unsupported_keys``."""
    return replace(d, unsupported_keys=()) if d.unsupported_keys else d


def _with_own_unsupported_keys(d: Decision, action: str, context: Mapping[str, ContextValue] | None) -> Decision:
    """A memoised decision as the engine gives it to this request: with the supplied keys (lower-cased, not null)
    that ``action`` never carries, as ``engine._Eval`` lists them."""
    own = unsupported_keys(action.lower(), [k.lower() for k, v in context.items() if v is not None]) if context else ()
    return replace(d, unsupported_keys=own) if own != d.unsupported_keys else d


class BuildContext:
    def __init__(
        self,
        index: SnapshotIndex,
        evaluator: SnapshotEvaluator | None = None,
        *,
        admin_shortcut: bool = True,
        memoise: bool = True,
        candidates: CandidateIndex | None = None,
        scope: frozenset[str] | None = None,
    ) -> None:
        self.index = index
        self.scope = scope
        """Accounts whose edges the rules compute (None: every account). ``iamgraph.graph.incremental`` sets it:
        an edge is a function of the facts of the accounts of its source, its target and the item it goes
        through (and of the organization), so after a change only edges touching a changed account differ.
        A rule given a scope must yield every edge of the full build that touches a scoped account; it may
        yield more (the caller keeps only those)."""
        self._seed: tuple[BuildContext, Callable[[tuple[object, ...]], bool]] | None = None
        self.ev = evaluator if evaluator is not None else SnapshotEvaluator(index)
        self.candidates = candidates if candidates is not None else CandidateIndex(index)
        self.skipped: list[Skipped] = []
        self.stats = Stats()
        self._cache: dict[tuple[object, ...], Decision | None] = {}
        self.org_id = index.org_id()
        self.org_accounts: frozenset[str] = frozenset(
            a.id for a in (index.snapshot.organization.accounts if index.snapshot.organization else ())
        ) | frozenset(index.accounts)
        self.admin_shortcut = admin_shortcut
        self.creatable_admin: set[str] = set()
        """Accounts where someone can create a principal that is a definite admin (CreatePrincipalRule)."""
        self.definite_admins: dict[str, str] = {}
        """Principal -> account where it is admin without any condition (filled by the admin rule)."""
        self.cache: dict[str, Any] = {}
        self.memoise = memoise
        self._memo: dict[tuple[object, ...], tuple[Decision, PolicySet]] = {}
        self._set_facts: dict[tuple[object, ...], tuple[frozenset[str], bool, PolicySet]] = {}
        self._policy_sets: dict[tuple[object, ...], tuple[PolicySet, tuple[object, ...], frozenset[str], bool]] = {}
        self._patterns: dict[tuple[tuple[object, ...], str], tuple[Any, ...] | None] = {}
        self._shapes: dict[str, tuple[object, ...]] = {}
        self._pctx: dict[str, dict[str, Any]] = {}
        self._rfacts: dict[tuple[str, bool], _ResourceFacts | None] = {}
        self._absent_principal: dict[tuple[object, ...], dict[str, Any]] = {}
        self._fresh_resource: Callable[[str], bool] | None = None
        self._sorted_refs: dict[frozenset[str], tuple[str, ...]] = {}
        self._trust_memo: dict[tuple[object, ...], tuple[Decision, str, PolicySet]] = {}
        self._trust_facts: dict[tuple[object, ...], tuple[frozenset[str], bool, tuple[Any, ...] | None, PolicySet]] = {}
        self._strengths: dict[str, object] = {}
        self._outsider_memo: dict[tuple[object, ...], tuple[Decision, str, PolicySet]] = {}
        self._groups: dict[tuple[object, ...], tuple[dict[str | None, Any], dict[tuple[object, ...], Decision]]] = {}

    def admin_of(self, principal: str, account: str, target: str | None = None) -> bool:
        """A definite admin of ``account``: its per-target edges there are replaced by the account's
        admin node (``AdminControl``), which reaches every principal of the account -- except
        ``protected`` targets, for which the admin's own edges are computed like anyone's."""
        if self.definite_admins.get(principal) != account:
            return False
        return target is None or target not in self.protected(account)

    def protected(self, account: str) -> frozenset[str]:
        """Targets in ``account`` that a Deny keeps from at least one of its definite admins.

        Passing the admin probe on ``*`` says nothing about a Deny that names particular ARNs
        (an SCP guarding a break-glass role, a boundary excluding one bucket), that depends on a
        target's tags, or that sits in a resource's own policy. A target some such Deny could apply
        to (for the calls the admin node stands for) is asked of the engine for every definite
        admin; unless each gets a definite Allow for each call, the admin node draws no edge to it
        and the rules ask the engine per admin. Also protected: managed policies and groups that
        apply to a protected principal (rewriting them changes it).
        """
        table: dict[str, frozenset[str]] = self.cache.setdefault("protected", {})
        hit = table.get(account)
        if hit is not None:
            return hit
        table[account] = frozenset()  # re-entrant calls from the engine checks below see "none yet"
        admins = sorted(p for p, a in self.definite_admins.items() if a == account)
        denies = self._admin_denies(account)
        acct = self.index.accounts.get(account)
        out: set[str] = set()

        def guarded(arn: str, tags: Mapping[str, str], calls: tuple[str, ...], own_deny: bool) -> bool:
            relevant = [st for st in denies if _deny_covers_any(st, calls)]
            if not own_deny and not any(_deny_may_single_out(st, arn, tags) for st in relevant):
                return False
            for admin in admins:
                for action in calls:
                    d = self.check("admin-control", admin, action, arn)
                    if d is None or not d.allowed or d.conditional:
                        return True
            return False

        if acct is not None:
            for u in acct.users:
                if guarded(u.arn, u.tags, _USER_CALLS, False):
                    out.add(u.arn)
            for r in acct.roles:
                if guarded(r.arn, r.tags, _ROLE_CALLS, False):
                    out.add(r.arn)
            for res in acct.resources:
                calls = POLICY_WRITERS.get(res.type, ())[:1]
                if calls and guarded(res.arn, res.tags, calls, has_deny(res.policy)):
                    out.add(res.arn)
            for u in acct.users:
                if u.arn in out:
                    out.update(g.arn for g in self.index.groups_of(u))
                    out.update(u.attached_managed_policies)
                    for g in self.index.groups_of(u):
                        out.update(g.attached_managed_policies)
            for r in acct.roles:
                if r.arn in out:
                    out.update(r.attached_managed_policies)
        hit = frozenset(out)
        table[account] = hit
        return hit

    def _admin_denies(self, account: str) -> list[Statement]:
        seen: set[str] = set()
        out: list[Statement] = []
        for principal, acct in self.definite_admins.items():
            if acct != account:
                continue
            try:
                ps = self.ev.policy_set(principal, "*", resource_account=account, action="iam:PutRolePolicy")
            except IamGraphError:
                continue
            pols = [*ps.identity, *(p for level in ps.scps for p in level), *(p for level in ps.rcps for p in level)]
            if ps.permission_boundary is not None:
                pols.append(ps.permission_boundary)
            for np in pols:
                if np.policy_id in seen:
                    continue
                seen.add(np.policy_id)
                out.extend(st for st in np.policy.statements if not st.is_allow)
        return out

    # -- facts

    def account(self, arn: str) -> str:
        if arn.startswith("new-principal:"):
            return new_principal_parts(arn)[0]
        return self.index.account_of.get(arn) or account_of(arn) or ""

    def block_public_access(self, bucket: str) -> frozenset[str]:
        """The S3 Block Public Access settings on for ``bucket`` (the engine's one reading of them), for the
        graph's own moves such as a rewrite of the bucket policy."""
        return self.ev.block_public_access(bucket)

    def region(self, account_id: str) -> str:
        acct = self.index.accounts.get(account_id)
        return acct.regions[0] if acct is not None and acct.regions else "us-east-1"

    def resolve_principal(self, arn: str) -> str | None:
        """A principal ARN as a trust policy names it -> the snapshot's node id (None when not held)."""
        if arn in self.index.users or arn in self.index.roles:
            return arn
        acct = account_of(arn)
        if acct is None:
            return None
        if ":role/" in arn:
            role = self.index.role_by_name(acct, arn.rsplit("/", 1)[1])
            return role.arn if role is not None else None
        if ":user/" in arn:
            user = self.index.user_by_name(acct, arn.rsplit("/", 1)[1])
            return user.arn if user is not None else None
        return None

    # -- engine calls

    def check(
        self,
        rule: str,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, ContextValue] | None = None,
    ) -> Decision | None:
        """The engine's discovery-mode decision, or None when it could not be asked (recorded)."""
        key: tuple[object, ...] = (
            principal, action, resource, tuple(sorted(context.items(), key=lambda kv: kv[0])) if context else ()
        )
        if key in self._cache:
            self.stats.cache_hits += 1
            return self._cache[key]
        if self._seed is not None and (seeded := self._seeded(key)) is not None:
            return seeded
        # A rule asks one principal and action about many resources of an account in a row: those the memo key would
        # see alike (``_alike``: no policy holder, the same Resource patterns matched and the same tag values read)
        # take the first one's answer without building the key.
        group: tuple[dict[str | None, Any], dict[tuple[object, ...], Decision]] | None = None
        cls: tuple[object, ...] | None = None
        sts = False
        if self.memoise:
            gkey = (principal, action, key[3])
            group = self._groups.get(gkey)
            if group is None:
                if len(self._groups) > 20_000:
                    self._groups.clear()  # bounded: rules move on from one principal to the next
                group = self._groups[gkey] = ({}, {})
            sts = action.lower().startswith("sts:")
            cls = self._alike(principal, action, resource, sts, group[0])
            if cls is not None and (alike := group[1].get(cls)) is not None:
                self.stats.memo_hits += 1
                self._cache[key] = alike
                return alike
        memo = self._memo_key(principal, action, resource, context) if self.memoise else None
        memo_key = memo[0] if memo is not None else None
        if memo_key is not None:
            hit = self._memo.get(memo_key)
            if hit is not None:
                self.stats.memo_hits += 1
                shared = _with_own_unsupported_keys(hit[0], action, context)
                self._cache[key] = shared
                if group is not None:
                    if cls is None:
                        cls = self._alike(principal, action, resource, sts, group[0])
                    if cls is not None:
                        group[1][cls] = shared
                return shared
        self.stats.engine_calls += 1
        self.stats.per_rule[rule] = self.stats.per_rule.get(rule, 0) + 1
        decision: Decision | None
        try:
            ps = memo[1] if memo is not None else self.ev.policy_set(principal, resource, action=action)
            decision = self.ev.decide(principal, action, resource, ps, context=context, mode=Mode.DISCOVERY)
        except IamGraphError as exc:
            self.skipped.append(Skipped(rule=rule, subject=f"{principal} {action} {resource}", message=str(exc)))
            decision = None
        self._cache[key] = decision
        if group is not None and decision is not None:
            if cls is None:
                cls = self._alike(principal, action, resource, sts, group[0])  # the memo key made the account's set
            if cls is not None:
                group[1][cls] = decision
        if memo is not None and decision is not None:
            # The PolicySet rides along so the Policy objects whose id() is in the key stay alive
            # (an id is only unique among live objects). Failures are not shared: each is recorded.
            self._memo[memo[0]] = (_without_unsupported_keys(decision), memo[1])
        return decision

    def ask(self, principal: str, action: str, resource: str,
            scratch: dict[tuple[object, ...], Any] | None = None) -> Decision:
        """``SnapshotEvaluator.ask`` in discovery mode, sharing this build's answers and memo (``check``'s) --
        for questions asked beside the graph (``iamgraph.change``'s new-access diff). A question that cannot be
        asked raises ``IamGraphError`` for the caller to report; nothing is recorded in ``skipped``.

        ``scratch``: new answers and memo entries go there instead of into this context (a graph that lives
        long, such as the API's base graph, does not grow with every question asked beside it)."""
        key: tuple[object, ...] = (principal, action, resource, ())
        hit = self._cache.get(key)
        if hit is None and self._seed is not None:
            hit = self._seeded(key)
        if hit is not None:
            return hit
        answers: dict[tuple[object, ...], Any] = self._cache if scratch is None else scratch
        memos: dict[tuple[object, ...], Any] = self._memo if scratch is None else scratch
        if scratch is not None and (hit := scratch.get(key)) is not None:
            return hit  # type: ignore[no-any-return]
        memo = self._memo_key(principal, action, resource, None) if self.memoise else None
        if memo is not None:
            shared = self._memo.get(memo[0]) or memos.get(("memo", memo[0]) if scratch is not None else memo[0])
            if shared is not None:
                answers[key] = own = _with_own_unsupported_keys(shared[0], action, None)
                return own
        ps = memo[1] if memo is not None else self.ev.policy_set(principal, resource, action=action)
        decision = self.ev.decide(principal, action, resource, ps, mode=Mode.DISCOVERY)
        answers[key] = decision
        if memo is not None:
            memos[("memo", memo[0]) if scratch is not None else memo[0]] = (_without_unsupported_keys(decision), memo[1])
        return decision

    def ask_each(self, principal: str, action: str, resources: Iterable[str],
                 scratch: dict[tuple[object, ...], Any] | None = None
                 ) -> Iterator[tuple[str, Decision | IamGraphError]]:
        """``ask`` for one principal and action on each of ``resources`` (the new-access diff asks every resource of
        a type): each answer, or the ``IamGraphError`` the question raised. Among the resources of one account that
        hold no policy (``_resource_facts``), two whose ARNs match the same statements' patterns and whose context
        values the policies read are alike get the first one's answer without building a memo key: that key would be
        the same (``_memo_key``: the policy set is the account's, the principal and action are fixed)."""
        sts = action.lower().startswith("sts:")
        alike: dict[tuple[object, ...], Decision] = {}
        groups: dict[str | None, tuple[tuple[Any, ...] | None, tuple[str, ...]] | None] = {}
        for resource in resources:
            cls = self._alike(principal, action, resource, sts, groups) if self.memoise else None
            if cls is not None and (hit := alike.get(cls)) is not None:
                yield resource, hit
                continue
            try:
                decision = self.ask(principal, action, resource, scratch)
            except IamGraphError as exc:
                yield resource, exc
                continue
            if cls is None and self.memoise:
                cls = self._alike(principal, action, resource, sts, groups)  # the first ask made the account's set
            if cls is not None:
                alike[cls] = decision
            yield resource, decision

    def _alike(self, principal: str, action: str, resource: str, sts: bool,
               groups: dict[str | None, tuple[tuple[Any, ...] | None, tuple[str, ...]] | None]
               ) -> tuple[object, ...] | None:
        """What ``_memo_key`` reads of a resource without a policy holder once the principal and action are fixed
        (None when it is not such a resource, or its account's policy set is not known yet). ``groups``: per
        account, the Resource patterns of the set and the tag keys it reads (the caller's, for one principal and
        action)."""
        if may_refuse(action, resource):
            return None
        rf = self._resource_facts(resource, sts)
        if rf is None:
            return None
        account, rctx, known, names = rf
        group = groups.get(account)
        if group is None:
            got = self._policy_sets.get((principal, (account,), sts))
            if got is None or principal not in self._shapes:
                return None  # not asked yet, or a memo key could not be made (the answers are then not shared)
            fp, refs = got[1], got[2]
            pkey = (fp, action.lower())
            if pkey not in self._patterns:
                return None
            # Of the keys the policies read, the resource's account and organization are the same for every resource
            # of the account; its tags are its own (their value, or whether their absence is known).
            group = groups[account] = (_telling(self._patterns[pkey]),
                                       tuple(sorted(k for k in refs if k.startswith(_RESOURCE_TAG_KEYS))))
        pats, tag_keys = group
        values = tuple(("value", rctx[k]) if k in rctx else ("absent", known and k.split("/", 1)[1] not in names)
                       for k in tag_keys)
        return account, _resource_class(pats, resource), values

    def in_scope(self, account: str) -> bool:
        """Whether edges touching ``account`` are computed in this build (``scope``)."""
        return self.scope is None or account in self.scope

    def scoped(self, found: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        """The principals of ``found`` (a ``principals_with`` answer) whose account is in scope, in the
        answer's own order."""
        if self.scope is None:
            return found
        return {p: v for p, v in found.items() if self.account(p) in self.scope}

    def principals_in_scope(self, action: str) -> dict[str, tuple[str, ...]]:
        """``candidates.principals_with(action)`` limited to principals of in-scope accounts (cached)."""
        if self.scope is None:
            return self.candidates.principals_with(action)
        table: dict[str, dict[str, tuple[str, ...]]] = self.cache.setdefault("principals_in_scope", {})
        hit = table.get(action)
        if hit is None:
            hit = table[action] = self.scoped(self.candidates.principals_with(action))
        return hit

    def principals_with_in(self, action: str, account: str) -> list[tuple[str, tuple[str, ...]]]:
        """The (principal, patterns) of ``candidates.principals_with(action)`` of one account, in that answer's order:
        grouped once per action, for rules that look at one account's callers per item (walking every caller of the
        organization for each item grew with both)."""
        table: dict[str, dict[str, list[tuple[str, tuple[str, ...]]]]] = self.cache.setdefault("principals_with_in", {})
        hit = table.get(action)
        if hit is None:
            hit = table[action] = {}
            for principal, patterns in self.candidates.principals_with(action).items():
                hit.setdefault(self.account(principal), []).append((principal, patterns))
        return hit.get(account, [])

    def seed_lazily(self, other: BuildContext, keep: Callable[[tuple[object, ...]], bool],
                    fresh_resource: Callable[[str], bool] | None = None) -> None:
        """Answer from ``other``'s decisions (a build over the snapshot before a change) every question ``keep``
        says the change cannot alter, when it is asked (``iamgraph.graph.incremental``): nothing is copied up
        front. Only answered questions are taken: one ``other`` could not ask is asked again, so its ``Skipped``
        is recorded in this build too. ``fresh_resource``: the resources whose records the change did not
        touch, whose facts (``_resource_facts``) are ``other``'s."""
        self._seed = (other, keep)
        self._fresh_resource = fresh_resource

    def _seeded(self, key: tuple[object, ...]) -> Decision | None:
        assert self._seed is not None
        other, keep = self._seed
        # dict.get is atomic: the base graph may be answering queries in another thread meanwhile (the API).
        hit = other._cache.get(key)
        if hit is None or not keep(key):
            return None
        self.stats.cache_hits += 1
        self._cache[key] = hit
        return hit

    def _memo_key(
        self, principal: str, action: str, resource: str, context: Mapping[str, ContextValue] | None
    ) -> tuple[tuple[object, ...], PolicySet] | None:
        """A key under which the engine's inputs for this request are provably identical, or None.

        Many principals share one policy set (the same managed policies, SCPs, RCPs and resource
        policy), so their decisions for one (action, resource) are the same -- unless something
        principal-specific reaches the engine. The key therefore holds:
        - the policy set: each policy's id (reasons name it) and its parsed ``Policy`` object
          (shared by content, so its identity stands for its content), plus the set's flags and
          unresolved errors;
        - action, resource (and so the resource's context, tags and policy holder);
        - the principal's shape (kind, account, partition, IAM or not, service-linked): what the
          engine's combination step and SCP/RCP applicability read;
        - every context value, except the principal-specific keys (aws:PrincipalArn,
          aws:username, aws:userid, aws:PrincipalTag/*) that no policy of the set reads -- the
          engine reads the context only through the keys the policies reference, in conditions
          and in policy variables;
        - the principal's ARN itself when a resource policy or RCP names principals other than
          ``*`` (Principal/NotPrincipal matching reads it), or when a policy reads a principal
          tag (whether the tag is known absent depends on which principal it is).
        """
        if may_refuse(action, resource):
            return None  # a service rule reads the exact resource and the caller's role path
        # The evaluator reads the action only to tell sts: calls (a role's trust policy applies) from
        # others, so one policy set serves every action of the same kind on the pair.
        sts = action.lower().startswith("sts:")
        rf = self._resource_facts(resource, sts)
        # A resource without a policy holder contributes only its account to the policy set (its RCPs): one set
        # serves every such resource of the account (``_resource_facts``).
        ps_key: tuple[object, ...] = (principal, resource, sts) if rf is None else (principal, (rf[0],), sts)
        got = self._policy_sets.get(ps_key)
        if got is None:
            try:
                ps = self.ev.policy_set(principal, resource, action=action)
            except IamGraphError:
                return None
            fp = _fingerprint(ps)
            facts = self._set_facts.get(fp)
            if facts is None:
                # ``ps`` rides along: the key holds id()s of its policies, unique only while they live.
                facts = (*_set_facts(ps), ps)
                self._set_facts[fp] = facts
            if len(self._policy_sets) > 200_000:
                self._policy_sets.clear()
            got = self._policy_sets[ps_key] = (ps, fp, facts[0], facts[1])
        ps, fp, refs, principal_matters = got
        shape = self._shape(principal)
        if shape is None:
            return None
        # Only the keys the policies read; looked up in (supplied, resource, principal) order, the
        # precedence SnapshotEvaluator.authorize gives them.
        supplied = {k.lower(): v for k, v in context.items()} if context else _EMPTY
        pctx = self._pctx.get(principal)
        if pctx is None:
            pctx = self._pctx[principal] = self.ev.principal_context(principal)
        if not refs:
            rctx = _EMPTY
        else:
            rctx = rf[1] if rf is not None else self.ev.resource_context(resource, None)
        absent: dict[str, Any] = _EMPTY
        if refs and any(k.startswith(_RESOURCE_TAG_KEYS) for k in refs):
            # Which of the tags the policies read are known to be absent depends on the resource (the snapshot
            # holds its tags or not): the evaluator's own reading of that joins the values, so two resources
            # whose tags read alike share a decision instead of keeping the exact ARN.
            if rf is None:
                absent = {}
                self.ev._absent_tags(absent, ps, principal, resource, action)
            else:
                absent = self._absent(principal, ps, fp, refs, resource, action, rf)
        # The evaluator's precedence: supplied, then resource and principal context, then known absence.
        items = _values_read(refs, (supplied, rctx, pctx, absent))
        pkey = (fp, action.lower())
        if pkey in self._patterns:
            pats = self._patterns[pkey]
        else:
            pats = self._patterns[pkey] = _resource_patterns(ps, refs, action)
        target = _resource_class(pats, resource)
        return (fp, action, target, shape, principal if principal_matters else None, items), ps

    def _shape(self, principal: str) -> tuple[object, ...] | None:
        """What the engine's combination step and SCP/RCP applicability read of the principal (``_memo_key``):
        kind, account, partition, IAM or not, service-linked; None when it is no principal the engine takes."""
        shape = self._shapes.get(principal)
        if shape is None:
            try:
                p = classify(principal)
            except IamGraphError:
                return None
            shape = (p.kind, p.account, p.partition, p.is_iam, p.is_service_linked_role)
            self._shapes[principal] = shape
        return shape

    def _resource_facts(self, resource: str, sts: bool) -> _ResourceFacts | None:
        """What the engine reads of a resource that holds no policy, when that is all it reads besides the ARN's
        patterns: (the account the evaluator gives it, or None when it falls back to the caller's; its
        ``resource_context``; whether its tags are known, so an absent one reads as absent; its tag names).
        None when a policy holder stands behind the ARN (a resource with a record, a role asked with an sts:
        call, an S3 object's bucket): its policy set is its own.

        ``SnapshotEvaluator.policy_set`` reads of the resource only its holder (``_resource``: policy, grants,
        Block Public Access, AWS-managed key) and the account ``account_of`` gives it, to pick the RCPs; with no
        holder, two resources of one account get the same policy set. Cached per resource: for a build over a
        changed snapshot, a resource the change did not touch reads as it did in the base build."""
        key = (resource, sts)
        if key in self._rfacts:
            return self._rfacts[key]
        if self._seed is not None and self._fresh_resource is not None and self._fresh_resource(resource):
            other = self._seed[0]._rfacts
            if key in other:
                found = self._rfacts[key] = other[key]
                return found
        facts: _ResourceFacts | None = None
        lookup, holder = self.ev._resource(resource, "sts:AssumeRole" if sts else "iamgraph:Any")
        if holder is None and lookup == resource:
            rctx = self.ev.resource_context(resource, None)
            probe: dict[str, Any] = {}
            # The evaluator's own reading of whether it knows the resource's tags (a record holds them): a tag
            # no policy could name reads as absent exactly when they are known.
            self.ev._absent_tags(probe, _PROBE_SET, _PROBE_ASKER, resource, "sts:AssumeRole")
            known = _PROBE_KEY in probe or _PROBE_KEY in rctx
            names = frozenset(k.split("/", 1)[1] for k in rctx if k.startswith(_RESOURCE_TAG_KEYS[0]))
            facts = (self.index.account_of.get(resource) or account_of(resource), rctx, known, names)
        self._rfacts[key] = facts
        return facts

    def _absent(self, principal: str, ps: PolicySet, fp: tuple[object, ...], refs: frozenset[str], resource: str,
                action: str, rf: _ResourceFacts) -> dict[str, Any]:
        """``SnapshotEvaluator._absent_tags`` for a resource without a policy holder: the principal's part once per
        policy set, the resource's from its known tag names (``_resource_facts``)."""
        pkey = (principal, fp)
        mine = self._absent_principal.get(pkey)
        if mine is None:
            found: dict[str, Any] = {}
            self.ev._absent_tags(found, ps, principal, resource, action)
            if len(self._absent_principal) > 200_000:
                self._absent_principal.clear()  # a long-lived (base) graph asked about many subjects: bounded
            mine = self._absent_principal[pkey] = {k: v for k, v in found.items() if k.startswith(_PRINCIPAL_TAG)}
        _, _, known, names = rf
        if not known:
            return mine
        out = dict(mine)
        for k in refs:
            if k.startswith(_RESOURCE_TAG_KEYS) and k.split("/", 1)[1] not in names:
                out[k] = None
        return out

    def possible(
        self,
        rule: str,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, ContextValue] | None = None,
    ) -> Decision | None:
        """The decision when the action is possible (allowed or conditional), else None."""
        d = self.check(rule, principal, action, resource, context)
        return d if d is not None and d.possible else None

    def possible_on_any(
        self,
        rule: str,
        principal: str,
        action: str,
        template: str,
        context: Mapping[str, ContextValue] | None = None,
    ) -> Decision | None:
        """For an action that creates something the caller names: try each ARN its statements allow.

        A statement ``Resource: arn:aws:lambda:*:111:function:dev-*`` lets the caller create
        ``dev-x``; the template (a name the caller picks) stands for ``*``.
        """
        patterns = self.candidates.principals_with(action).get(principal, ())
        tried: set[str] = set()
        best: Decision | None = None
        service = action.split(":", 1)[0].lower()
        for pattern in (*patterns, "*"):
            arn = instantiate(pattern, template)
            if arn in tried or (arn != template and f":{service}:" not in arn.lower()):
                continue
            tried.add(arn)
            d = self.possible(rule, principal, action, arn, context)
            if d is not None and (best is None or (best.conditions and not d.conditions)):
                best = d
                if not d.conditions:
                    break
        return best

    def as_outsider(
        self,
        rule: str,
        principal: str,
        action: str,
        resource: str,
        *,
        context: Mapping[str, ContextValue] | None = None,
    ) -> Decision | None:
        """A principal the snapshot does not hold (another account, ``*``, a service, an IdP).

        Its own identity policies are unknown, so we assume they allow everything and let the
        resource's policy, the resource account's RCPs and any Deny decide. Callers record that
        assumption on the edge.
        """
        key: tuple[object, ...] = ("outsider", principal, action, resource,
                                   tuple(sorted((context or {}).items(), key=lambda kv: kv[0])))
        if key in self._cache or (self._seed is not None and self._seeded(key) is not None):
            # The raw decision is cached; a second asker must get the same answer as the first
            # (an implicit deny is None, not a holder).
            hit = self._cache[key]
            return hit if hit is not None and hit.possible else None
        decision: Decision | None = None
        asker = Outsider(arn=principal)
        racct = self.account(resource) or None
        memo = self._outsider_memo_key(asker, action, resource, racct, key[-1], context) if self.memoise else None
        if memo is not None and (shared := self._outsider_memo.get(memo[0])) is not None:
            self.stats.memo_hits += 1
            held = memo[1].resource
            decision = self._cache[key] = _credited(shared[0], shared[1], held.policy_id if held else "")
            return decision if decision.possible else None
        self.stats.engine_calls += 1
        try:
            if memo is not None:
                decision = self.ev.decide(asker, action, resource, memo[1], context=context, mode=Mode.DISCOVERY,
                                          resource_account=racct)
            else:
                decision = self.ev.ask(asker, action, resource, context=context, mode=Mode.DISCOVERY,
                                       resource_account=racct)
        except IamGraphError as exc:
            self.skipped.append(Skipped(rule=rule, subject=f"{principal} {action} {resource}", message=str(exc)))
        self._cache[key] = decision
        if memo is not None and decision is not None and not decision.errors:
            # An error may name the policy or the request: such a decision is not shared. The policy set rides along
            # (the key holds id()s of its policies).
            held = memo[1].resource
            self._outsider_memo[memo[0]] = (decision, held.policy_id if held else "", memo[1])
        return decision if decision is not None and decision.possible else None

    def _outsider_memo_key(self, asker: Outsider, action: str, resource: str, racct: str | None,
                           supplied_items: object, context: Mapping[str, ContextValue] | None
                           ) -> tuple[tuple[object, ...], PolicySet] | None:
        """A key under which two ``as_outsider`` questions give the engine the same inputs but for the resource's
        name and the id of its resource-based policy, or None.

        The caller is the same outsider (its ARN enters the key whole, and nothing else of it reaches the engine:
        ``Outsider``); the policy set is ``policy_set``'s for the question, its resource-based policy entering by
        its parsed ``Policy`` object (one object per content, ``named_policy``) rather than by its id, which names
        the resource -- so roles whose trust policies read the same share a decision. Of the resource, the key
        holds what ``_memo_key`` does (its ARN through the policies' Resource patterns and its shape, every
        context value a policy reads -- its tags and which are known absent) and the account the question gives
        it. The decisions then differ only by the resource policy's id in the statements they cite
        (``_credited``)."""
        if may_refuse(action, resource):
            return None  # a service rule reads the exact resource
        try:
            ps = self.ev.policy_set(asker, resource, resource_account=racct, action=action)
        except IamGraphError:
            return None
        fp = _fingerprint(ps)
        held = ps.resource
        fp = _HashOnce((fp[0], ("content", id(held.policy)) if held is not None else None, *fp[2:]))
        facts = self._set_facts.get(fp)
        if facts is None:
            facts = self._set_facts[fp] = (*_set_facts(ps), ps)
        refs = facts[0]
        pkey = (fp, action.lower())
        if pkey in self._patterns:
            pats = self._patterns[pkey]
        else:
            pats = self._patterns[pkey] = _resource_patterns(ps, refs, action)
        items: tuple[tuple[str, Any], ...] = ()
        if refs:
            # The context ``decide`` fills for an outsider (no principal keys), in its precedence.
            supplied = {k.lower(): v for k, v in context.items()} if context else _EMPTY
            rctx = self.ev.resource_context(resource, racct)
            absent: dict[str, Any] = {}
            self.ev._absent_tags(absent, ps, asker, resource, action)
            items = _values_read(refs, (supplied, rctx, absent))
        return (asker.arn, action, supplied_items, racct, fp, _resource_class(pats, resource), items), ps

    def what_if(
        self,
        principal: Asker,
        action: str,
        resource: str,
        *,
        add_identity: tuple[NamedPolicy, ...] = (),
        allow_all: bool = False,
        drop_boundary: bool = False,
        drop_policies: tuple[str, ...] = (),
        replace_policies: tuple[str, ...] = (),
        resource_policy: NamedPolicy | None = None,
        context: Mapping[str, ContextValue] | None = None,
    ) -> Decision | None:
        """The engine's decision after a change a path makes (new policies, boundary removed, ...);
        see ``Overrides`` for what each change means."""
        overrides = Overrides(
            add_identity=add_identity,
            allow_all=allow_all,
            drop_boundary=drop_boundary,
            drop_identity=drop_policies,
            replace_identity=replace_policies,
            resource_policy=resource_policy,
        )
        # A snapshot principal's what-if answer is kept like ``check``'s (same snapshot, same question,
        # same answer), under a key ``iamgraph.graph.incremental`` can read: ("what-if", principal,
        # action, resource, ...). Stand-ins are not kept: their entity is part of the question.
        key: tuple[object, ...] | None = None
        if isinstance(principal, str):
            try:
                key = _HashOnce(("what-if", principal, action, resource, overrides,
                                 tuple(sorted((context or {}).items(), key=lambda kv: kv[0]))))
                hit = self._cache.get(key)
                if hit is None and self._seed is not None:
                    hit = self._seeded(key)
            except TypeError:  # a context value that cannot be hashed: ask every time
                key, hit = None, None
            if hit is not None:
                self.stats.cache_hits += 1
                return hit
        try:
            self.stats.engine_calls += 1
            decision = self.ev.ask(principal, action, resource, context=context, mode=Mode.DISCOVERY,
                                   resource_account=self.account(resource) or None, overrides=overrides)
        except IamGraphError as exc:
            self.skipped.append(Skipped(rule="what-if", subject=f"{_subject(principal)} {action} {resource}",
                                        message=str(exc)))
            return None
        if key is not None:
            self._cache[key] = decision
        return decision

    def trusted_caller(self, rule: str, principal: str, role: str, trust_id: str) -> Decision | None:
        """The engine's decision on ``principal``'s ``sts:AssumeRole`` into ``role`` once the role's trust policy is one
        that allows exactly ``principal`` (no condition), named ``trust_id``: what a caller gets who rewrites a role's
        trust policy (``iam:UpdateAssumeRolePolicy``) or creates a role to name itself. ``what_if`` with that policy as
        ``resource_policy``, and kept under a key of the same form (``("what-if", principal, action, role, ...)``).

        Each such policy names its caller, so the memo of ``check`` never sees two alike. Here the engine is asked once
        per class of (caller, role) whose inputs differ only by the caller's and the role's names (``_trust_memo_key``);
        the others take that decision with the policy's statements credited to their own ``trust_id``."""
        key: tuple[object, ...] = ("what-if", principal, _ASSUME, role, trust_id)
        hit = self._cache.get(key)
        if hit is None and self._seed is not None:
            hit = self._seeded(key)
        if hit is not None:
            self.stats.cache_hits += 1
            return hit
        memo = self._trust_memo_key(principal, role) if self.memoise else None
        if memo is not None and (shared := self._trust_memo.get(memo[0])) is not None:
            self.stats.memo_hits += 1
            decision = self._cache[key] = _credited(shared[0], shared[1], trust_id)
            return decision
        trust = named_policy({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": _ASSUME}]}, trust_id, PolicyType.RESOURCE)
        try:
            self.stats.engine_calls += 1
            decision = self.ev.ask(principal, _ASSUME, role, mode=Mode.DISCOVERY,
                                   resource_account=self.account(role) or None,
                                   overrides=Overrides(resource_policy=trust))
        except IamGraphError as exc:
            self.skipped.append(Skipped(rule="what-if", subject=f"{principal} {_ASSUME} {role}", message=str(exc)))
            return None
        self._cache[key] = decision
        if memo is not None and not decision.errors:
            # An error may name the policy or the request; such a decision is not shared. The policy set rides along
            # (the key holds id()s of its policies).
            self._trust_memo[memo[0]] = (decision, trust_id, memo[1])
        return decision

    def _trust_memo_key(self, principal: str, role: str) -> tuple[tuple[object, ...], PolicySet] | None:
        """A key under which two (caller, role) pairs of ``trusted_caller`` give the engine the same inputs but for
        the caller's and the role's names, or None.

        The policy set is the one ``policy_set`` gives the pair, its resource policy replaced: everything but that
        policy enters the key as in ``_memo_key`` (the policies by identity, the set's flags and unresolved errors,
        the caller's shape, every context value a policy reads -- the role's account, organization and tags, and
        which tags are known absent -- and what the engine reads of the role's ARN through the policies' Resource
        patterns and the ARN's shape). The caller's ARN itself is kept when another policy of the set matches
        principals or reads principal-specific keys. The replaced policy is the same for every pair but for the
        name it gives in its one Principal entry, which is the caller's own: the engine reads that entry only for
        how strongly it names the caller (``principal_strength``), which enters the key. So the decisions differ
        only by the policy's id in the statements they cite (``_credited``)."""
        if may_refuse(_ASSUME, role):
            return None  # a service rule reads the exact role
        shape = self._shape(principal)
        if shape is None:
            return None
        try:
            ps = self.ev.policy_set(principal, role, action=_ASSUME)
        except IamGraphError:
            return None
        fp = _fingerprint(ps)
        fp = _HashOnce((fp[0], "the caller's own trust", *fp[2:]))
        facts = self._trust_facts.get(fp)
        if facts is None:
            bare = replace(ps, resource=None)
            refs, principal_matters = _set_facts(bare)
            # ``bare`` rides along: the key holds id()s of its policies.
            facts = self._trust_facts[fp] = (refs, principal_matters, _resource_patterns(bare, refs, _ASSUME), bare)
        refs, principal_matters, pats, _ = facts
        strength = self._strengths.get(principal)
        if strength is None:
            strength = self._strengths[principal] = principal_strength(PrincipalSpec(aws=(principal,)),
                                                                       classify(principal))
        items: tuple[tuple[str, Any], ...] = ()
        if refs:
            # The context ``decide`` fills for the question (``what_if`` passes the role's account), in its order.
            rctx = self.ev.resource_context(role, self.account(role) or None)
            pctx = self._pctx.get(principal)
            if pctx is None:
                pctx = self._pctx[principal] = self.ev.principal_context(principal)
            absent: dict[str, Any] = {}
            self.ev._absent_tags(absent, ps, principal, role, _ASSUME)
            items = _values_read(refs, (rctx, pctx, absent))
        return (fp, _resource_class(pats, role), shape, strength, principal if principal_matters else None, items), ps

    def as_new_principal(self, account: str, action: str, resource: str, boundary: str | None = None) -> Decision | None:
        """The decision for a role someone creates in ``account`` with only an allow-all policy.

        Its account's SCPs apply, and ``boundary`` (a managed policy ARN) when it was created with
        one. The role is a stand-in the engine is asked about; the snapshot index is not changed.
        """
        names: dict[str | None, str] = self.cache.setdefault("new_principal_names", {None: NEW_PRINCIPAL_NAME})
        name = names.setdefault(boundary, f"{NEW_PRINCIPAL_NAME}-{len(names)}")
        arn = f"arn:aws:iam::{account}:role/{name}"
        stand_in = StandIn(entity=Role(arn=arn, name=name, role_id="AROAIAMGRAPHNEWPRINCIPAL",
                                       trust_policy={"Version": "2012-10-17", "Statement": []},
                                       permissions_boundary=boundary))
        return self.what_if(stand_in, action, resource, allow_all=True)

    def group_policies(self, group_arn: str) -> tuple[NamedPolicy, ...]:
        """A group's identity policies as the engine names them, for 'after joining the group' checks."""
        group = self.index.groups.get(group_arn)
        if group is None:
            return ()
        out: list[NamedPolicy] = []
        for pol in group.inline_policies:
            out.append(named_policy(pol.document, f"{group_arn}:{pol.name}", PolicyType.IDENTITY))
        for arn in group.attached_managed_policies:
            managed = self.index.policies.get(arn)
            doc = managed.default_document() if managed is not None else None
            if doc is not None:
                out.append(named_policy(doc, arn, PolicyType.IDENTITY))
        return tuple(out)

    def resource_principals(self, resource_arn: str, actions: tuple[str, ...]) -> tuple[set[str], bool, set[str]]:
        """Who a resource's policy names for ``actions``: (snapshot principals, everyone?, outside accounts)."""
        res = self.index.resources.get(resource_arn)
        if res is None:
            return set(), False, set()
        inside: set[str] = set()
        outside: set[str] = set()
        everyone = False
        # The resource policy, and for a KMS key its grants: each names a grantee that may use the key
        # without any policy naming it (https://docs.aws.amazon.com/kms/latest/developerguide/grants.html).
        for policy in (self.candidates.parsed(f"{resource_arn}:policy", res.policy, trust=True),
                       *self.grant_policies(resource_arn)):
            tp = policy_principals(policy, actions)
            everyone = everyone or tp.everyone
            named, others = self.named_principals(tp)
            inside |= named
            outside |= others
        return inside, everyone, outside

    def named_principals(self, tp: TrustPrincipals) -> tuple[set[str], set[str]]:
        """The principals a policy's ``Principal`` elements name (``policy_principals``'s answer): (snapshot
        principals, accounts outside the snapshot). Naming an account of the snapshot delegates to it: its
        principals still need an identity Allow, which the identity candidate index already covers."""
        inside: set[str] = set()
        outside: set[str] = set()
        for arn in tp.arns:
            node = self.resolve_principal(arn)
            if node is not None:
                inside.add(node)
            elif (acct := account_of(arn)) and acct not in self.index.accounts:
                outside.add(acct)
        outside |= {a for a in tp.accounts if a not in self.index.accounts}
        return inside, outside

    def grant_policies(self, key_arn: str) -> tuple[Policy, ...]:
        """A KMS key's grants as the engine reads them (``iamgraph.eval.kms_grants``); a malformed grant is
        left out here (the engine reports it as an evaluation error)."""
        table: dict[str, tuple[Policy, ...]] = self.cache.setdefault("grant_policies", {})
        hit = table.get(key_arn)
        if hit is not None:
            return hit
        res = self.index.resources.get(key_arn)
        raw = res.attributes.get("grants") if res is not None and res.type == "kms:key" else None
        out: list[Policy] = []
        for i, grant in enumerate(raw if isinstance(raw, list) else []):
            try:
                out.append(grant_policy(grant, key_arn, f"grants[{i}]").policy)
            except InputError:
                continue
        table[key_arn] = hit = tuple(out)
        return hit

    def resource_statements(self, principal: str) -> tuple[tuple[str, Statement], ...]:
        """(policy holder, Allow statement) of every resource-based policy that could grant ``principal``
        beyond its identity policies: resource policies, KMS grants and role trust policies whose statement
        names it, everyone, or its account where naming the account is more than delegation to identity
        policies (another account's resource, or a KMS key, whose key policy must allow). Same-account
        naming of the account adds nothing: "an identity-based policy or a resource-based policy" grant
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html),
        and the account alone delegates to identity policies. An over-approximation the engine decides."""
        index = self.cache.get("resource_statements")
        if index is None:
            index = self.cache["resource_statements"] = self._resource_statement_index()
        by_arn, by_account, everyone = index
        acct = self.account(principal)
        found = [*by_arn.get(principal, ()), *everyone]
        found += [(h, st) for h, st in by_account.get(acct, ())
                  if self.account(h) != acct or _is_key(h)]
        return tuple(dict.fromkeys(found))

    def _resource_statement_index(
        self,
    ) -> tuple[dict[str, list[tuple[str, Statement]]], dict[str, list[tuple[str, Statement]]],
               list[tuple[str, Statement]]]:
        by_arn: dict[str, list[tuple[str, Statement]]] = {}
        by_account: dict[str, list[tuple[str, Statement]]] = {}
        everyone: list[tuple[str, Statement]] = []
        held: list[tuple[str, Policy | None]] = []
        for res in self.index.resources.values():
            held.append((res.arn, self.candidates.parsed(f"{res.arn}:policy", res.policy, trust=True)))
            held.extend((res.arn, g) for g in self.grant_policies(res.arn))
        for role in self.index.roles.values():
            held.append((role.arn, self.candidates.parsed(f"{role.arn}:trust", role.trust_policy, trust=True)))
        for holder, policy in held:
            for st in policy.statements if policy is not None else ():
                if not st.is_allow:
                    continue
                tp = statement_principals(st)
                if tp.everyone:
                    everyone.append((holder, st))
                for arn in tp.arns:
                    node = self.resolve_principal(arn)
                    if node is not None:
                        by_arn.setdefault(node, []).append((holder, st))
                for acct in tp.accounts:
                    by_account.setdefault(acct, []).append((holder, st))
        return by_arn, by_account, everyone


_PRINCIPAL_SPECIFIC = frozenset({"aws:principalarn", "aws:username", "aws:userid", "aws:principalservicename"})
"""Keys whose value the engine may derive from the principal's ARN itself (when the context lacks them)."""


class _HashOnce(tuple[object, ...]):
    """A cache key whose hash is computed once: a what-if key holds the override policies, whose hash walks
    every statement, and one question looks the key up in up to three dicts."""

    _hash: int

    def __new__(cls, items: tuple[object, ...]) -> _HashOnce:
        obj = super().__new__(cls, items)
        obj._hash = tuple.__hash__(obj)
        return obj

    def __hash__(self) -> int:
        return self._hash


def _credited(d: Decision, old: str, new: str) -> Decision:
    """``d`` with the statements of policy ``old`` it cites (reasons, the sources of its residual conditions) credited
    to policy ``new`` instead (``trusted_caller``: the same trust policy under another role's name)."""
    if old == new:
        return d

    def ref(r: StatementRef) -> StatementRef:
        return replace(r, policy_id=new) if r.policy_id == old else r

    return replace(d, reasons=tuple(map(ref, d.reasons)), conditions=tuple(
        tuple(replace(c, source=ref(c.source)) if c.source is not None else c for c in alt) for alt in d.conditions))


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _values_read(refs: Iterable[str], layers: tuple[Mapping[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """Each context key the policies read, with the value the first layer holding it gives (the layers in the
    evaluator's precedence), sorted by key: the part of a memo key that stands for the request's context."""
    found: list[tuple[str, Any]] = []
    for k in sorted(refs):
        for layer in layers:
            if k in layer:
                found.append((k, _hashable(layer[k])))
                break
    return tuple(found)
_PRINCIPAL_TAG = "aws:principaltag/"


def _fingerprint(ps: PolicySet) -> tuple[object, ...]:
    # NamedPolicy objects come from the engine's content cache (same content and id -> same
    # object), so their identities name them; the caller keeps them alive while the key is used.
    # Hashed once (``_HashOnce``): it holds the organization levels (dataclasses, hashed field by field), and every
    # memo lookup hashes it again.
    return _HashOnce((
        tuple(map(id, ps.identity)),
        id(ps.resource),
        id(ps.permission_boundary),
        id(ps.session),
        tuple(tuple(map(id, level)) for level in ps.scps),
        tuple(tuple(map(id, level)) for level in ps.rcps),
        ps.restrict_public_buckets,
        ps.unresolved,
        ps.scp_levels,
        ps.rcp_levels,
        tuple(map(id, ps.kms_grants)),
        id(ps.vpc_endpoint_policy),
    ))


_RESOURCE_TAG_KEYS = ("aws:resourcetag/", "iam:resourcetag/")

_ResourceFacts = tuple[str | None, dict[str, Any], bool, frozenset[str]]
_PROBE_KEY = "aws:resourcetag/iamgraph-probe"
_PROBE_SET = PolicySet(identity=(named_policy({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {_PROBE_KEY: "x"}}}]},
    "iamgraph-probe", PolicyType.IDENTITY),))
_PROBE_ASKER = Outsider(arn="arn:aws:iam::000000000000:root")


def _resource_patterns(ps: PolicySet, refs: frozenset[str], action: str) -> tuple[Any, ...] | None:
    """The Resource/NotResource patterns of every statement the engine considers for ``action``
    (None when the exact resource ARN must be kept; see ``_resource_class``)."""
    action_l = action.lower()
    out: list[Any] = []
    for np in _every(ps):
        for st in compiled(np.policy).candidates(action_l):
            for pat in st.resources or ():
                if pat.var_keys or pat.dynamic:
                    return None
                out.append(pat)
    return tuple(out)


def _resource_class(patterns: tuple[Any, ...] | None, resource: str) -> object:
    """What the engine reads of the resource ARN, when that is provably all it reads; else the ARN.

    With the policy set fixed (its resource policy is named by the resource's own ARN, so two
    resources share a set only when neither has one), the engine reads the resource ARN only to
    match each applicable statement's Resource/NotResource patterns, to tell KMS keys and role
    trust from the ARN's service and resource type, to spot service-linked roles, and for its
    account. Two ARNs that agree on all of those get the same decision -- e.g. every Lambda
    function of one account under ``Resource: "*"``. Patterns with policy variables keep the exact
    ARN. The resource's tags the policies read, and which of them are known absent, are in the key's
    context values (``_memo_key``).
    """
    if patterns is None:
        return resource
    return ("class", tuple([p.matches(resource, _EMPTY) for p in patterns]), _arn_shape(resource))


@functools.lru_cache(maxsize=1 << 18)
def _arn_shape(resource: str) -> tuple[Any, ...]:
    """What the engine reads of an ARN besides its patterns (``_resource_class``). A function of the string alone, so
    kept per process: a build asks it for every resource, and a judgement's new-access diff asks it again for each of
    thousands of resources per action (bounded; its strings are interned, so an entry is about 200 bytes)."""
    parts = resource.split(":", 5)
    # account_of's reading of the ARN, from the parts at hand (Arn.parse splits the same way).
    well_formed = len(parts) == 6 and parts[0] == "arn" and bool(parts[1]) and bool(parts[2])
    return (
        len(parts),
        sys.intern(parts[2]) if len(parts) == 6 else None,
        len(parts) == 6 and parts[5].startswith("key/"),
        len(parts) == 6 and parts[5].startswith("role/"),
        ":iam::" in resource,
        ":role/" in resource,
        ":role/aws-service-role/" in resource,
        sys.intern(parts[4]) if well_formed and is_account_id(parts[4]) else None,
    )


_EMPTY: dict[str, Any] = {}


def _telling(patterns: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    """Of ``_resource_patterns``' answer, the patterns that can tell two resources apart: ``*`` matches every ARN and a
    pattern read twice answers the same both times, so ``_alike`` (whose classes are compared only with each other,
    within one account) matches each distinct one once. None stays None (the exact ARN is kept)."""
    if patterns is None:
        return None
    seen: dict[tuple[str, bool], Any] = {}
    for p in patterns:
        if not p.always:
            seen.setdefault((p.text, p.arn), p)
    return tuple(seen.values())


def _every(ps: PolicySet) -> list[NamedPolicy]:
    out = [*ps.identity]
    out.extend(np for np in (ps.resource, ps.permission_boundary, ps.session) if np is not None)
    out.extend(n for level in ps.scps for n in level)
    out.extend(n for level in ps.rcps for n in level)
    out.extend(ps.kms_grants)
    if ps.vpc_endpoint_policy is not None:
        out.append(ps.vpc_endpoint_policy)
    return out


def _set_facts(ps: PolicySet) -> tuple[frozenset[str], bool]:
    """(condition keys the set reads, whether the principal's own ARN can change the decision)."""
    refs: set[str] = set()
    for np in _every(ps):
        refs.update(compiled(np.policy).referenced_keys)
    principal_matters = any(k.startswith(_PRINCIPAL_TAG) or k in _PRINCIPAL_SPECIFIC for k in refs)
    # Policies the engine matches against the caller: the resource policy, the RCPs, KMS grants and
    # the VPC endpoint policy.
    for matched in (ps.resource, *(n for level in ps.rcps for n in level), *ps.kms_grants, ps.vpc_endpoint_policy):
        if matched is None or principal_matters:
            continue
        for st in compiled(matched.policy).statements:
            if st.not_principal is not None or (st.principal is not None and not st.principal.wildcard):
                principal_matters = True
                break
    return frozenset(refs), principal_matters


_RESOURCE_KEY_PREFIXES = ("aws:resourcetag/", "iam:resourcetag/")
# The calls the admin node's edges stand for (AdminControlRule), per kind of target.
_USER_CALLS = ("iam:CreateAccessKey", "iam:PutUserPolicy", "iam:DeleteUserPermissionsBoundary")
_ROLE_CALLS = ("iam:UpdateAssumeRolePolicy", "sts:AssumeRole", "iam:PutRolePolicy",
               "iam:DeleteRolePermissionsBoundary")


def _deny_covers_any(st: Statement, actions: tuple[str, ...]) -> bool:
    if st.action is not None:
        return any(action_matches(p, a) for p in st.action for a in actions)
    if st.not_action is not None:
        return any(not any(action_matches(p, a) for p in st.not_action) for a in actions)
    return False


def _subject(principal: Asker) -> str:
    if isinstance(principal, StandIn):
        return principal.entity.arn
    return principal.arn if isinstance(principal, Outsider) else principal


def new_principal_parts(node: str) -> tuple[str, str | None]:
    """``new-principal:<account>[:<boundary ARN>]`` -> (account, boundary or None)."""
    _, acct, *rest = node.split(":", 2)
    return acct, rest[0] if rest else None


def has_deny(doc: Any) -> bool:
    """Whether a policy document holds a Deny statement (only removing those can widen access). A document
    that does not parse counts as holding one: nothing shows it cannot deny."""
    if not isinstance(doc, dict):
        return False
    try:
        policy = parse_policy(doc, source="policy")
    except InputError:
        return True
    return any(not st.is_allow for st in policy.statements)


def _deny_may_single_out(st: Statement, arn: str, tags: Mapping[str, str]) -> bool:
    """Whether a Deny might apply to ``arn`` without applying to the literal resource ``*``."""
    if st.not_resource is not None:
        return not any(resource_matches(p, arn) for p in st.not_resource)
    if st.resource is not None and any(p != "*" and resource_matches(p, arn) for p in st.resource):
        return True
    tag_keys = {k.lower() for k in tags}
    for clause in st.conditions:
        key = clause.key.lower()
        prefix = next((p for p in _RESOURCE_KEY_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            continue
        op = clause.operator.lower()
        if "not" in op or op.startswith("null") or "ifexists" in op:
            return True  # may hold for a target without the tag too
        if key[len(prefix):] in tag_keys:
            return True
    return False


def _is_key(arn: str) -> bool:
    parts = arn.split(":", 5)
    return len(parts) == 6 and parts[2] == "kms" and parts[5].startswith("key/")
