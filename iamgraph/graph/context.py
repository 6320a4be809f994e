"""What every edge rule gets: the snapshot index, the engine, candidate indexes, and cached checks.

All evaluation goes through the one engine (``iamgraph.eval``) in discovery mode, so a condition on a
key nobody supplied makes the edge conditional instead of silently dropping it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from iamgraph.errors import IamGraphError
from iamgraph.eval import Mode, SnapshotEvaluator, authorize, named_policy
from iamgraph.eval.types import (
    ContextValue,
    Decision,
    NamedPolicy,
    PolicySet,
    PolicyType,
    Request,
)
from iamgraph.graph.candidates import CandidateIndex, instantiate, policy_principals
from iamgraph.model.arn import account_of
from iamgraph.snapshot.index import SnapshotIndex

ALLOW_ALL_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ALLOW_ALL_ID = "iamgraph:assumed-allow-all"
"""Stands for identity policies nobody can see (an external account's) or that an attacker writes."""


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
    per_rule: dict[str, int] = field(default_factory=dict)


class BuildContext:
    def __init__(
        self, index: SnapshotIndex, evaluator: SnapshotEvaluator | None = None, *, admin_shortcut: bool = True
    ) -> None:
        self.index = index
        self.ev = evaluator if evaluator is not None else SnapshotEvaluator(index)
        self.candidates = CandidateIndex(index)
        self.skipped: list[Skipped] = []
        self.stats = Stats()
        self._cache: dict[tuple[object, ...], Decision | None] = {}
        self.org_id = index.org_id()
        self.org_accounts: frozenset[str] = frozenset(
            a.id for a in (index.snapshot.organization.accounts if index.snapshot.organization else ())
        ) | frozenset(index.accounts)
        self._allow_all = named_policy(ALLOW_ALL_DOC, ALLOW_ALL_ID, PolicyType.IDENTITY)
        self.admin_shortcut = admin_shortcut
        self.definite_admins: dict[str, str] = {}
        """Principal -> account where it is admin without any condition (filled by the admin rule)."""
        self.cache: dict[str, Any] = {}

    def admin_of(self, principal: str, account: str) -> bool:
        """A definite admin of ``account``: its per-target edges there are replaced by the account's
        admin node (``AdminControl``), which reaches every principal of the account."""
        return self.definite_admins.get(principal) == account

    # -- facts

    def account(self, arn: str) -> str:
        return self.index.account_of.get(arn) or account_of(arn) or ""

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
            principal, action, resource, tuple(sorted((context or {}).items(), key=lambda kv: kv[0]))
        )
        if key in self._cache:
            self.stats.cache_hits += 1
            return self._cache[key]
        self.stats.engine_calls += 1
        self.stats.per_rule[rule] = self.stats.per_rule.get(rule, 0) + 1
        decision: Decision | None
        try:
            decision = self.ev.authorize(
                principal, action, resource, context=dict(context or {}), mode=Mode.DISCOVERY
            )
            known = self.known_absent(decision, principal, resource, context)
            if known:
                decision = self.ev.authorize(
                    principal, action, resource, context={**(context or {}), **known}, mode=Mode.DISCOVERY
                )
        except IamGraphError as exc:
            self.skipped.append(Skipped(rule=rule, subject=f"{principal} {action} {resource}", message=str(exc)))
            decision = None
        self._cache[key] = decision
        return decision

    def known_absent(
        self,
        decision: Decision,
        principal: str | None,
        resource: str,
        context: Mapping[str, ContextValue] | None,
    ) -> dict[str, Any]:
        """Tag keys a residual condition asks about that the snapshot knows are absent.

        A snapshot holds every tag of its principals and resources, so a tag key they lack is known
        to be missing, not unknown; the engine is told so (``None`` = known absent).
        """
        if not decision.conditions:
            return {}
        given = {k.lower() for k in (context or {})}
        res_known = resource in self.index.resources or resource in self.index.roles or resource in self.index.users
        holder = resource.split("/", 1)[0] if resource.startswith("arn:aws:s3:::") else resource
        res_known = res_known or holder in self.index.resources
        p_known = principal is not None and (principal in self.index.users or principal in self.index.roles)
        out: dict[str, Any] = {}
        for conj in decision.conditions:
            for c in conj:
                key = c.key.lower()
                if key in given:
                    continue
                if key.startswith("aws:resourcetag/") and res_known:
                    tags = self._tags(holder)
                    if key.split("/", 1)[1] not in tags:
                        out[key] = None
                elif key.startswith("aws:principaltag/") and p_known:
                    assert principal is not None
                    if key.split("/", 1)[1] not in self._tags(principal):
                        out[key] = None
        return out

    def _tags(self, arn: str) -> set[str]:
        obj = self.index.resources.get(arn) or self.index.roles.get(arn) or self.index.users.get(arn)
        return {k.lower() for k in obj.tags} if obj is not None else set()

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
        if key in self._cache:
            return self._cache[key]
        self.stats.engine_calls += 1
        decision: Decision | None = None
        try:
            policies = self.outsider_policy_set(resource)
            if policies is not None:
                full: dict[str, Any] = dict(self.ev.resource_context(resource, None))
                full.update({k.lower(): v for k, v in (context or {}).items()})
                request = Request(
                    principal=principal,
                    action=action,
                    resource=resource,
                    resource_account=self.account(resource) or None,
                    context=full,
                )
                decision = authorize(request, policies, mode=Mode.DISCOVERY)
                known = self.known_absent(decision, None, resource, context)
                if known:
                    request = replace(request, context={**request.context, **known})
                    decision = authorize(request, policies, mode=Mode.DISCOVERY)
        except IamGraphError as exc:
            self.skipped.append(Skipped(rule=rule, subject=f"{principal} {action} {resource}", message=str(exc)))
        self._cache[key] = decision
        return decision if decision is not None and decision.possible else None

    def outsider_policy_set(self, resource: str) -> PolicySet | None:
        """Resource policy (or trust policy) plus the resource account's RCPs, identity = allow-all."""
        doc = None
        role = self.index.roles.get(resource)
        if role is not None:
            doc = role.trust_policy
        else:
            res = self.index.resources.get(resource)
            doc = res.policy if res is not None else None
        if doc is None:
            return None
        resource_policy = named_policy(doc, f"{resource}:policy", PolicyType.RESOURCE)
        racct = self.account(resource)
        rcps: tuple[tuple[NamedPolicy, ...], ...] = ()
        if not self.index.is_management_account(racct):
            # RCPs do not apply to resources of the management account.
            # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html
            rcps = tuple(
                tuple(named_policy(p.document, p.arn or p.id, PolicyType.RCP) for p in level.rcps)
                for level in self.index.org_chain(racct)
            )
        return PolicySet(identity=(self._allow_all,), resource=resource_policy, rcps=rcps)

    def what_if(
        self,
        principal: str,
        action: str,
        resource: str,
        *,
        add_identity: tuple[NamedPolicy, ...] = (),
        allow_all: bool = False,
        drop_boundary: bool = False,
        resource_policy: NamedPolicy | None = None,
        context: Mapping[str, ContextValue] | None = None,
    ) -> Decision | None:
        """The engine's decision after a change a path makes (new policies, boundary removed, ...)."""
        try:
            ps = self.ev.policy_set(principal, resource, resource_account=self.account(resource) or None,
                                    action=action)
            identity = ps.identity + add_identity + ((self._allow_all,) if allow_all else ())
            ps = replace(
                ps,
                identity=identity,
                permission_boundary=None if drop_boundary else ps.permission_boundary,
                resource=resource_policy if resource_policy is not None else ps.resource,
            )
            ctx = dict(self.ev.principal_context(principal))
            ctx.update(self.ev.resource_context(resource, None))
            ctx.update({k.lower(): v for k, v in (context or {}).items()})
            request = Request(
                principal=principal,
                action=action,
                resource=resource,
                resource_account=self.account(resource) or None,
                context=ctx,
            )
            self.stats.engine_calls += 1
            d = authorize(request, ps, mode=Mode.DISCOVERY)
            known = self.known_absent(d, principal, resource, ctx)
            if known:
                d = authorize(replace(request, context={**ctx, **known}), ps, mode=Mode.DISCOVERY)
            return d
        except IamGraphError as exc:
            self.skipped.append(Skipped(rule="what-if", subject=f"{principal} {action} {resource}", message=str(exc)))
            return None

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
        if res is None or res.policy is None:
            return set(), False, set()
        policy = self.candidates.parsed(f"{resource_arn}:policy", res.policy, trust=True)
        tp = policy_principals(policy, actions)
        inside: set[str] = set()
        outside: set[str] = set()
        for arn in tp.arns:
            node = self.resolve_principal(arn)
            if node is not None:
                inside.add(node)
            elif (acct := account_of(arn)) and acct not in self.index.accounts:
                outside.add(acct)
        for acct in tp.accounts:
            if acct in self.index.accounts:
                # Naming an account delegates to it: its principals still need an identity Allow,
                # which the identity candidate index already covers.
                continue
            outside.add(acct)
        return inside, tp.everyone, outside
