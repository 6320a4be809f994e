"""Trimmed, verified policy proposals for a snapshot's principals, from the usage store's evidence.

Every proposal is checked by the one engine (:mod:`iamgraph.eval`) before it is emitted: each observed allowed
call stays allowed, nothing the original did not allow becomes allowed, and parliament finds nothing new.
A proposal that fails any check is reported as failed, with the reasons, and its policy is not emitted.
Dry run only: nothing here writes to AWS.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from iamgraph.catalog import get_catalog
from iamgraph.errors import NotFoundError
from iamgraph.eval import Mode, Overrides, SnapshotEvaluator, named_policy
from iamgraph.eval.types import Decision, PolicySet, PolicyType
from iamgraph.lint import new_findings
from iamgraph.model.arn import try_parse
from iamgraph.model.policy import Policy
from iamgraph.recommend.config import RecommendConfig
from iamgraph.recommend.containment import prove_contained
from iamgraph.recommend.risk import RiskFlag, flag_actions
from iamgraph.recommend.split import (
    GROUP_INLINE_LIMIT,
    MANAGED_LIMIT,
    ROLE_INLINE_LIMIT,
    USER_INLINE_LIMIT,
    SplitError,
    policy_size,
    split_document,
)
from iamgraph.recommend.trim import Call, StatementMatcher, trim_document
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Group, Role, User
from iamgraph.usage.coverage import CoverageGap, CoverageJudge, called_services, issuing_actions
from iamgraph.usage.evidence import is_pattern, resolve_pattern
from iamgraph.usage.judgement import EvidenceJudgement, Removal
from iamgraph.usage.store import UsageStore
from iamgraph.usage.types import ObservabilityKind, Outcome, UsageRecord


class PolicyKind(StrEnum):
    USER_INLINE = "user-inline"
    ROLE_INLINE = "role-inline"
    GROUP_INLINE = "group-inline"
    CUSTOMER_MANAGED = "customer-managed"
    AWS_MANAGED = "aws-managed"
    """An AWS managed policy: the proposal is a customer managed policy to attach in its place."""


class ProposalStatus(StrEnum):
    EMITTED = "emitted"
    """Verified; the proposed documents replace the original."""
    UNCHANGED = "unchanged"
    """Everything the policy grants is used, unobservable or kept by configuration."""
    LEFT_ALONE = "left-alone"
    """Excluded by configuration (account, principal or tag of a principal the policy applies to)."""
    FAILED = "failed"
    """A proposal was made but did not pass verification (or could not be split to fit): not emitted."""
    INCOMPLETE_EVIDENCE = "incomplete-evidence"
    """The evidence does not cover the window for a principal of the policy (``coverage_gaps`` say how): no removal
    is proposed unless the configuration accepts incomplete evidence."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    passed: bool
    replayed_calls: int
    """Observed allowed calls (× probe resources when the resource is unknown) replayed through the engine."""
    replay_failures: tuple[str, ...] = ()
    requests_checked_for_new_access: int = 0
    """Engine requests of the catalog enumeration; 0 unless ``verify_proposal`` was asked to enumerate (the tests'
    oracle): no new access is proven by containment, before the engine is asked anything."""
    new_access: tuple[str, ...] = ()
    new_lint_findings: tuple[str, ...] = ()
    not_explained: int = 0
    """Observed calls the original policies do not allow either (session policies, other context): not
    counted against the proposal."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PolicyProposal:
    policy_id: str
    """The managed policy ARN, or ``<owner ARN>:inline/<name>`` (the engine's ids)."""
    name: str
    kind: PolicyKind
    principals: tuple[str, ...]
    """Every principal the policy applies to; their combined use is what it is trimmed against."""
    status: ProposalStatus
    original: dict[str, Any]
    proposed: tuple[dict[str, Any], ...] = ()
    """The proposal, split into documents that fit the size limit (empty when the policy can go)."""
    proposed_names: tuple[str, ...] = ()
    size_limit: int = MANAGED_LIMIT
    removed_actions: tuple[str, ...] = ()
    kept_unobservable: tuple[str, ...] = ()
    left_alone: tuple[str, ...] = ()
    verification: Verification | None = None
    reason: str = ""
    coverage_gaps: tuple[CoverageGap, ...] = ()
    """Where the evidence falls short of the window (also set, as a warning, when the configuration accepts it)."""
    flagged: tuple[RiskFlag, ...] = ()
    """High-risk actions the proposed documents grant (:mod:`iamgraph.recommend.risk`), each by name."""
    notes: tuple[str, ...] = ()
    """What the trim did that a reviewer should know (keys generalised to a prefix, quota moves)."""
    emit_as: PolicyKind | None = None
    """Set when an inline policy's proposal is to be created as a customer managed policy attached to the same
    identity instead (the identity's inline policies together would exceed the inline quota)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    principal_arn: str
    window_start: datetime
    window_end: datetime
    proposals: tuple[PolicyProposal, ...]
    used_actions: tuple[str, ...]
    unobservable_actions: tuple[str, ...]
    """Granted actions kept because their use cannot be seen (listed, never claimed unused)."""
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Policy:
    policy_id: str
    name: str
    kind: PolicyKind
    document: dict[str, Any]
    principals: tuple[str, ...]


def _naive_utc(d: datetime) -> datetime:
    return d.astimezone(UTC).replace(tzinfo=None) if d.tzinfo else d


class Recommender:
    """Build once per snapshot and store; ``recommend(principal_arn)`` per principal."""

    def __init__(
        self,
        index: SnapshotIndex,
        store: UsageStore,
        *,
        days: int = 90,
        config: RecommendConfig | None = None,
        now: datetime | None = None,
    ) -> None:
        self.index = index
        self.store = store
        self.config = config or RecommendConfig()
        self.cat = get_catalog()
        self.ev = SnapshotEvaluator(index)
        self.window_end = _naive_utc(now or datetime.now(UTC))
        self.window_start = self.window_end - timedelta(days=days)
        self.model = store.observability_model()
        self._excluded_actions: frozenset[str] | None = None
        self._verdicts: dict[tuple[str, str], dict[str, Removal]] = {}
        self._kept: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {}
        self._grouped: dict[frozenset[str], dict[str, frozenset[str]]] = {}
        self._ct: dict[str, frozenset[str]] = {}
        self._aa_of: dict[str, list[Any]] = defaultdict(list)
        for entry in index.snapshot.activity.access_advisor:
            self._aa_of[entry.principal_arn].append(entry)
        self.judgement = EvidenceJudgement(store, index.snapshot.activity.access_advisor,
                                           window_start=self.window_start, window_end=self.window_end,
                                           data_events_by_account=dict(self.config.data_events),
                                           logged=self.config.logged)
        self._calls: dict[str, list[Call]] = {}
        self._resources_by_service: dict[str, list[str]] | None = None
        self._attached: dict[str, list[str]] = defaultdict(list)
        self._members: dict[str, list[str]] = defaultdict(list)
        # The identities each managed policy is attached to directly: a proposal in several parts takes one more
        # attachment per extra part on every one of them (the attachment quota is per identity).
        self._holders: dict[str, list[User | Role | Group]] = defaultdict(list)
        for u in index.users.values():
            for g in index.groups_of(u):
                self._members[g.arn].append(u.arn)
            for arn in u.attached_managed_policies:
                self._attached[arn].append(u.arn)
                self._holders[arn].append(u)
        for r in index.roles.values():
            for arn in r.attached_managed_policies:
                self._attached[arn].append(r.arn)
                self._holders[arn].append(r)
        for g in index.groups.values():
            for arn in g.attached_managed_policies:
                self._attached[arn].extend(self._members[g.arn])
                self._holders[arn].append(g)
        self._done: dict[tuple[str, str], PolicyProposal] = {}
        self._current: dict[tuple[str, str, str], Decision] = {}
        self.coverage = CoverageJudge(store, self.window_start, self.window_end)
        self._gaps: dict[str, list[CoverageGap]] = {}

    # -- evidence

    def keep_action(self, action: str, principals: Sequence[str] = ()) -> bool:
        """Keep a granted action no call of ``principals`` shows? Excluded by configuration, or not removable for
        one of them by the shared evidence judgement (:mod:`iamgraph.usage.judgement`). It only looks verdicts up:
        the judgement's are kept per principal and service (``_removal``). The trimmer asks :meth:`keep_actions`, the
        same question for a statement's actions at once."""
        if action in self._excluded():
            return True
        if not principals:
            return self.model.observability(action).kind is not ObservabilityKind.OBSERVABLE
        return any(not self._removal(p, action).removable for p in principals)

    def keep_actions(self, actions: AbstractSet[str], principals: Sequence[str] = ()) -> frozenset[str]:
        """The actions among ``actions`` to keep (:meth:`keep_action` of each, the same answers), asked at once: what
        ``trim_document`` asks per statement. An admin's ``*`` statement grants ~18,000 actions, one call each cost
        about 0.2 CPU-s over the report's ten recommendations; here the verdicts of a principal and service are sets
        (``_keeps``), intersected with the service's actions."""
        if not principals:
            return frozenset(a for a in actions if self.keep_action(a))
        excluded = self._excluded()
        out = set(actions & excluded)
        for service, acts in self._by_service(frozenset(actions)).items():
            for p in principals:
                kept, judged = self._keeps(p, service)
                out |= acts & kept
                # An action outside the catalog's list of the service is asked alone, as ``_removal`` does.
                out.update(a for a in acts - judged if not self._removal(p, a).removable)
        return frozenset(out)

    def _by_service(self, actions: frozenset[str]) -> dict[str, frozenset[str]]:
        """``actions`` by service. The report's ten recommendations ask about 21 sets of up to 22,000 actions, 8 of
        them distinct (the admins' ``*`` statements): grouped once per set. Read, never changed."""
        hit = self._grouped.get(actions)
        if hit is None:
            by: dict[str, set[str]] = defaultdict(set)
            for a in actions:
                by[a.split(":", 1)[0]].add(a)
            if len(self._grouped) >= 16:  # a set of an admin's actions holds about 2 MB
                self._grouped.clear()
            hit = self._grouped[actions] = {k: frozenset(v) for k, v in by.items()}
        return hit

    def _keeps(self, principal_arn: str, service: str) -> tuple[frozenset[str], frozenset[str]]:
        """The catalog actions of ``service`` the judgement keeps for ``principal_arn`` (not removable), and all it
        judged (``_removal``'s verdicts of the service, as sets)."""
        key = (principal_arn, service)
        hit = self._kept.get(key)
        if hit is None:
            verdicts = self._service_verdicts(principal_arn, service)
            hit = self._kept[key] = (frozenset(a for a, v in verdicts.items() if not v.removable),
                                     frozenset(verdicts))
        return hit

    def _excluded(self) -> frozenset[str]:
        """The catalog actions ``recommend.exclude_actions`` names (its patterns expanded once)."""
        if self._excluded_actions is None:
            self._excluded_actions = frozenset(a for p in self.config.exclude_actions for a in self.cat.expand(p))
        return self._excluded_actions

    def _removal(self, principal_arn: str, action: str) -> Removal:
        """The judgement's verdict on ``action`` for ``principal_arn``. Asked for every granted action of a policy
        (an admin's ~18,000), so the verdicts of a service's catalog actions are asked together, once per principal
        and service (:meth:`EvidenceJudgement.removals` decides what depends on the service alone once); an action
        outside the catalog's list is asked alone. Either way the same verdict."""
        hit = self._service_verdicts(principal_arn, action.split(":", 1)[0]).get(action)
        if hit is None:
            hit = self.judgement.removal(principal_arn, action, accounts=self._accounts(principal_arn),
                                         cloudtrail_services=self._cloudtrail_services(principal_arn))
        return hit

    def _service_verdicts(self, principal_arn: str, service: str) -> dict[str, Removal]:
        """The judgement's verdicts on every catalog action of ``service`` for ``principal_arn``, decided once."""
        key = (principal_arn, service)
        verdicts = self._verdicts.get(key)
        if verdicts is None:
            verdicts = self._verdicts[key] = self.judgement.removals(
                principal_arn, service, self.cat.actions_of(service), accounts=self._accounts(principal_arn),
                cloudtrail_services=self._cloudtrail_services(principal_arn))
        return verdicts

    def _accounts(self, principal_arn: str) -> frozenset[str]:
        return self.judgement.accounts_of(principal_arn, self.index.account_of.get(principal_arn))

    def _cloudtrail_services(self, principal_arn: str) -> frozenset[str]:
        hit = self._ct.get(principal_arn)
        if hit is None:
            hit = self._ct[principal_arn] = frozenset(
                service for r in self._allowed(principal_arn) if r.source.value == "cloudtrail"
                for service in called_services(r.action, r.identity_type))
        return hit

    def _allowed(self, principal_arn: str) -> list[UsageRecord]:
        """The principal's allowed records in the window, in the store's order. Asked for every outcome and filtered
        here, so the store's in-memory read of the window serves them when the unused analysis (``iamgraph report``)
        or :meth:`principal_gaps` already read it: a read per outcome filter costs one query over the whole window
        each (``UsageStore.records``)."""
        return [r for r in self.store.usage_for(principal_arn, self.window_start, self.window_end)
                if r.outcome is Outcome.ALLOWED]

    def calls(self, principal_arn: str) -> list[Call]:
        hit = self._calls.get(principal_arn)
        if hit is not None:
            return hit
        seen: set[tuple[str, str | None]] = set()
        out: list[Call] = []
        for rec in self._allowed(principal_arn):
            if rec.action.endswith(":*"):
                continue  # Access Advisor service-level evidence: the service was used, not which action
            action = self.cat.canonical(rec.action)
            # A secret named without its suffix is the snapshot's one secret of that name, else unknown.
            resource = resolve_pattern(rec.resource, self.index.resources) if is_pattern(rec.resource) \
                else rec.resource
            if action is None or (action, resource) in seen:
                continue
            seen.add((action, resource))
            out.append(Call(principal_arn=principal_arn, action=action, resource=resource))
            for issued in issuing_actions(rec.identity_type):  # sessions count as use of what issued them
                if (issued, None) not in seen:
                    seen.add((issued, None))
                    out.append(Call(principal_arn=principal_arn, action=issued, resource=None))
        # Actions Access Advisor tracks and saw accessed in the window are used (their resource unknown).
        for entry in self._aa_of.get(principal_arn, ()):
            for t in entry.tracked_actions:
                action = self.cat.canonical(f"{entry.service_namespace}:{t.action_name}")
                if action and (action, None) not in seen and self.judgement.tracked_accessed(principal_arn, action):
                    seen.add((action, None))
                    out.append(Call(principal_arn=principal_arn, action=action, resource=None))
        self._calls[principal_arn] = out
        return out

    def principal_gaps(self, principal_arn: str) -> list[CoverageGap]:
        """Where the evidence falls short of the window for one principal (the judgement ``unused`` shares)."""
        hit = self._gaps.get(principal_arn)
        if hit is None:
            entity = self.index.users.get(principal_arn) or self.index.roles.get(principal_arn)
            acted = {r.account_id for r in self.store.usage_for(principal_arn, self.window_start, self.window_end)
                     if r.account_id and r.source.value == "cloudtrail"}
            hit = self._gaps[principal_arn] = self.coverage.gaps(
                principal_arn, home_account=self.index.account_of.get(principal_arn), acted_in=acted,
                created=entity.create_date if entity is not None else None, has_calls=bool(self.calls(principal_arn)),
                is_role=principal_arn in self.index.roles)
        return hit

    def policy_gaps(self, pol: _Policy) -> list[CoverageGap]:
        gaps = [g for p in pol.principals for g in self.principal_gaps(p)]
        mp = self.index.policies.get(pol.policy_id)
        if mp is not None and pol.kind is PolicyKind.CUSTOMER_MANAGED:
            young = self.coverage.policy_gap(pol.policy_id, mp.create_date)
            if young is not None:
                gaps.append(young)
        return list(dict.fromkeys(gaps))

    def excluded(self, principal_arn: str) -> str | None:
        cfg = self.config
        if principal_arn in cfg.exclude_principals:
            return f"{principal_arn} is excluded by configuration"
        account = self.index.account_of.get(principal_arn)
        if account in cfg.exclude_accounts:
            return f"account {account} of {principal_arn} is excluded by configuration"
        entity = self.index.users.get(principal_arn) or self.index.roles.get(principal_arn)
        if entity is not None:
            for k, v in cfg.exclude_tags:
                if entity.tags.get(k) == v:
                    return f"{principal_arn} carries the excluded tag {k}={v}"
        return None

    # -- policies

    def _policies_of(self, entity: User | Role) -> list[_Policy]:
        out: list[_Policy] = []
        kind = PolicyKind.USER_INLINE if isinstance(entity, User) else PolicyKind.ROLE_INLINE
        for ip in entity.inline_policies:
            out.append(_Policy(policy_id=f"{entity.arn}:inline/{ip.name}", name=ip.name, kind=kind,
                               document=dict(ip.document), principals=(entity.arn,)))
        attached = list(entity.attached_managed_policies)
        if isinstance(entity, User):
            for g in self.index.groups_of(entity):
                out.extend(self._group_inline(g))
                attached.extend(g.attached_managed_policies)
        for arn in dict.fromkeys(attached):
            mp = self.index.policies.get(arn)
            doc = mp.default_document() if mp is not None else None
            if mp is None or doc is None:
                continue
            aws = ":aws:policy/" in arn
            principals = (entity.arn,) if aws else tuple(sorted(set(self._attached[arn])))
            out.append(_Policy(policy_id=arn, name=mp.name, kind=PolicyKind.AWS_MANAGED if aws
                               else PolicyKind.CUSTOMER_MANAGED, document=dict(doc), principals=principals))
        return out

    def _group_inline(self, g: Group) -> list[_Policy]:
        members = tuple(sorted(set(self._members[g.arn])))
        return [_Policy(policy_id=f"{g.arn}:inline/{ip.name}", name=ip.name, kind=PolicyKind.GROUP_INLINE,
                        document=dict(ip.document), principals=members) for ip in g.inline_policies]

    # -- the proposal

    def recommend(self, principal_arn: str) -> Recommendation:
        entity = self.index.users.get(principal_arn) or self.index.roles.get(principal_arn)
        if entity is None:
            raise NotFoundError(f"the snapshot has no IAM user or role {principal_arn}")
        proposals = []
        notes: list[str] = []
        # The replay's decisions under the current policies, shared by this principal's proposals only (``--all``
        # would otherwise keep every principal's).
        self._current.clear()
        for pol in self._policies_of(entity):
            key = (pol.policy_id, principal_arn if pol.kind is PolicyKind.AWS_MANAGED else "")
            if key not in self._done:
                self._done[key] = self._propose(pol)
            proposals.append(self._done[key])
        if isinstance(entity, Role) and entity.name.startswith("AWSReservedSSO_"):
            notes.append("an Identity Center role: change its permission set, not the role (IAM Identity Center "
                         "overwrites the role's policies)")
        proposals, quota_notes = self._fit_quotas(entity, proposals)
        notes.extend(quota_notes)
        used = sorted({c.action for c in self.calls(principal_arn)})
        if not used:
            notes.append("no recorded use in the window: every observable action is proposed for removal; make sure "
                         "the ingested trail covers this principal's account and regions for the whole window")
        unobs = sorted({a for p in proposals for a in p.kept_unobservable})
        return Recommendation(principal_arn=principal_arn, window_start=self.window_start,
                              window_end=self.window_end, proposals=tuple(proposals), used_actions=tuple(used),
                              unobservable_actions=tuple(unobs), notes=tuple(notes))

    def _fit_quotas(self, entity: User | Role,
                    proposals: Sequence[PolicyProposal]) -> tuple[list[PolicyProposal], list[str]]:
        """Limits that hold per identity, not per policy, enforced on the proposed documents as AWS counts them
        (IAM quotas, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):

        - all inline policies of one user, role or group together: 2,048 / 10,240 / 5,120 characters without
          whitespace. Over it, emitted inline proposals (largest first) become customer managed policies to attach
          to the same identity, until the rest fits;
        - managed policies attached to one identity: 10 by default (``managed_policy_quota``, adjustable to 20 by a
          quota increase). Over it, the proposals that add most parts (a policy split in several) are not emitted,
          largest first, with the reason; their original stays attached.
        """
        out = list(proposals)
        notes: list[str] = []
        owners: list[User | Role | Group] = [entity]
        if isinstance(entity, User):
            owners.extend(self.index.groups_of(entity))
        for owner in owners:
            notes.extend(self._fit_inline(owner, out))
            notes.extend(self._fit_managed(owner, out))
        return out, notes

    @staticmethod
    def _inline_owner(p: PolicyProposal) -> str | None:
        return p.policy_id.rsplit(":inline/", 1)[0] if ":inline/" in p.policy_id else None

    @staticmethod
    def _size(p: PolicyProposal) -> int:
        return sum(policy_size(d) for d in (p.proposed if p.status is ProposalStatus.EMITTED else (p.original,)))

    def _fit_inline(self, owner: User | Role | Group, out: list[PolicyProposal]) -> list[str]:
        idxs = [i for i, p in enumerate(out) if self._inline_owner(p) == owner.arn and p.emit_as is None]
        if not idxs:
            return []
        limit = self._limit(out[idxs[0]].kind)
        total = before = sum(self._size(out[i]) for i in idxs)
        for i in sorted(idxs, key=lambda i: (-self._size(out[i]), out[i].policy_id)):
            p = out[i]
            if total <= limit:
                break
            if p.status is not ProposalStatus.EMITTED or not p.proposed:
                continue
            merged = {**p.proposed[0], "Statement": [st for d in p.proposed for st in d["Statement"]]}
            try:
                docs = tuple(split_document(merged, MANAGED_LIMIT))
            except SplitError:
                continue
            if not prove_contained(p.original, docs).contained:  # the same statements: a guard, not expected
                continue
            total -= self._size(p)
            out[i] = dataclasses.replace(
                p, emit_as=PolicyKind.CUSTOMER_MANAGED, proposed=docs, size_limit=MANAGED_LIMIT,
                proposed_names=tuple(p.name if k == 0 else f"{p.name}-{k + 1}" for k in range(len(docs))),
                notes=(*p.notes, f"the inline policies of {owner.arn} would total {before} characters, over the "
                       f"{limit} IAM allows for all inline policies of one identity together: proposed as a customer "
                       f"managed policy to create and attach to {owner.arn}, in place of the inline policy"))
        if total > limit:
            return [f"the inline policies of {owner.arn} still total {total} characters, over the {limit} allowed "
                    "together: the ones not proposed for change are too large (none could be moved to a managed "
                    "policy)"]
        return []

    def _fit_managed(self, owner: User | Role | Group, out: list[PolicyProposal]) -> list[str]:
        quota = self.config.managed_policy_quota
        attached = set(owner.attached_managed_policies)
        mine = [i for i, p in enumerate(out) if p.policy_id in attached
                or (p.emit_as is not None and self._inline_owner(p) == owner.arn)]

        def parts(p: PolicyProposal) -> int:
            return len(p.proposed) if p.status is ProposalStatus.EMITTED else (0 if p.emit_as else 1)

        count = sum(parts(out[i]) for i in mine) + len(attached - {out[i].policy_id for i in mine})
        if count <= quota:
            return []
        before = count
        # A policy attached to several identities was fitted to each of them alone (``_over_attachment_quota``);
        # proposals of this identity alone go first, so a shared one stays alike in every recommendation as long
        # as that is enough.
        def shared(p: PolicyProposal) -> bool:
            return p.kind is PolicyKind.CUSTOMER_MANAGED and len(self._holders.get(p.policy_id, ())) > 1

        for i in sorted(mine, key=lambda i: (shared(out[i]), -len(out[i].proposed), out[i].policy_id)):
            p = out[i]
            if count <= quota:
                break
            if p.status is not ProposalStatus.EMITTED:
                continue
            # Not emitted: the original stays (an inline one moved to managed goes back to inline, 0 attachments).
            gain = parts(p) - (0 if p.emit_as else 1)
            if gain <= 0:
                continue
            count -= gain
            alike = ("; it fits each identity it is attached to alone, so another principal's recommendation may "
                     "emit it: apply it only where every identity holding it can take it") if shared(p) else ""
            out[i] = dataclasses.replace(
                p, status=ProposalStatus.FAILED, proposed=(), proposed_names=(), flagged=(), emit_as=None,
                reason=f"not emitted: its {len(p.proposed)} parts would bring {owner.arn} to {before} attached "
                       f"managed policies, over the quota of {quota} per identity (IAM quotas; adjustable to 20, "
                       f"recommend.managed_policy_quota){alike}")
        if count > quota:
            return [f"{owner.arn} would still have {count} managed policies attached, over the quota of {quota}"]
        return []

    def _limit(self, kind: PolicyKind) -> int:
        return {PolicyKind.USER_INLINE: USER_INLINE_LIMIT, PolicyKind.ROLE_INLINE: ROLE_INLINE_LIMIT,
                PolicyKind.GROUP_INLINE: GROUP_INLINE_LIMIT}.get(kind, MANAGED_LIMIT)

    def _propose(self, pol: _Policy) -> PolicyProposal:
        if len(pol.principals) > 1:
            # A shared policy is judged on every principal's use: their records in one query.
            self.store.prefetch(pol.principals, self.window_start, self.window_end)
        base: dict[str, Any] = dict(policy_id=pol.policy_id, name=pol.name, kind=pol.kind, principals=pol.principals,
                    original=pol.document, size_limit=self._limit(pol.kind))
        for p in pol.principals:
            why = self.excluded(p)
            if why is not None:
                return PolicyProposal(status=ProposalStatus.LEFT_ALONE, reason=why, **base)
        gaps = self.policy_gaps(pol)
        if gaps and not self.config.accept_incomplete_evidence:
            why = "the evidence does not cover the window: " + "; ".join(g.detail for g in gaps[:3])
            return PolicyProposal(status=ProposalStatus.INCOMPLETE_EVIDENCE, coverage_gaps=tuple(gaps),
                                  reason=why, **base)
        base["coverage_gaps"] = tuple(gaps)
        calls = [c for p in pol.principals for c in self.calls(p)]
        contexts = {p: self.ev.principal_context(p) for p in pol.principals}
        trimmed = trim_document(pol.document, calls, keep_actions=lambda a: self.keep_actions(a, pol.principals),
                                config=self.config,
                                matcher=StatementMatcher(contexts), source=pol.policy_id)
        extra: dict[str, Any] = dict(removed_actions=trimmed.removed_actions, kept_unobservable=trimmed.kept_unobservable,
                                     left_alone=trimmed.left_alone, notes=trimmed.notes)
        if not trimmed.changed and pol.kind is not PolicyKind.AWS_MANAGED:
            flags = flag_actions([pol.document])
            return PolicyProposal(status=ProposalStatus.UNCHANGED, flagged=flags, **base, **extra)
        try:
            docs = tuple(split_document(trimmed.document, self._limit(pol.kind))) if trimmed.document["Statement"] \
                else ()
        except SplitError as exc:
            return PolicyProposal(status=ProposalStatus.FAILED, reason=str(exc), **base, **extra)
        proof = prove_contained(pol.document, docs)
        if not proof.contained:
            return PolicyProposal(status=ProposalStatus.FAILED, reason="not contained in the original (structural "
                                  "proof): " + "; ".join(proof.uncovered[:5]), **base, **extra)
        stem = pol.name + ("-trimmed" if pol.kind is PolicyKind.AWS_MANAGED else "")
        names = tuple(stem if i == 0 else f"{stem}-{i + 1}" for i in range(len(docs)))
        verification = verify_proposal(self.ev, self.index, pol.policy_id, pol.document, docs, pol.principals,
                                       {p: self.calls(p) for p in pol.principals},
                                       self._service_resources(), current=self._current)
        status = ProposalStatus.EMITTED if verification.passed else ProposalStatus.FAILED
        reason = "" if verification.passed else "did not pass verification; not emitted"
        crowded = self._over_attachment_quota(pol, len(docs)) if verification.passed else None
        if crowded is not None:
            return PolicyProposal(status=ProposalStatus.FAILED, reason=crowded, verification=verification,
                                  **base, **extra)
        flags = flag_actions(docs) if verification.passed else ()
        return PolicyProposal(status=status, proposed=docs if verification.passed else (),
                              proposed_names=names if verification.passed else (), verification=verification,
                              flagged=flags, reason=reason, **base, **extra)

    def _over_attachment_quota(self, pol: _Policy, parts: int) -> str | None:
        """Why a customer managed policy's proposal in ``parts`` parts cannot be emitted: some identity it is
        attached to would exceed the managed-policy attachment quota with the extra parts attached (every other
        attachment as it is). Decided once per policy, over every identity holding it, so a shared policy's
        proposal is emitted or not alike in every principal's recommendation (IAM quotas,
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html)."""
        if parts <= 1 or pol.kind is not PolicyKind.CUSTOMER_MANAGED:
            return None
        quota = self.config.managed_policy_quota
        over = [(len(set(h.attached_managed_policies)) - 1 + parts, h.arn) for h in self._holders.get(pol.policy_id, ())
                if len(set(h.attached_managed_policies)) - 1 + parts > quota]
        if not over:
            return None
        count, arn = max(over, key=lambda ca: (ca[0], ca[1]))
        more = f" (and {len(over) - 1} more identit{'y' if len(over) == 2 else 'ies'} it is attached to)" \
            if len(over) > 1 else ""
        return (f"not emitted: its {parts} parts would bring {arn} to {count} attached managed policies{more}, over "
                f"the quota of {quota} per identity (IAM quotas; adjustable to 20, recommend.managed_policy_quota)")

    def _service_resources(self) -> dict[str, list[str]]:
        if self._resources_by_service is None:
            by: dict[str, list[str]] = defaultdict(list)
            arns: Iterable[str] = (*self.index.resources, *self.index.roles, *self.index.users,
                                   *self.index.groups, *(p for p in self.index.policies if ":aws:policy/" not in p))
            for arn in arns:
                parsed = try_parse(arn)
                if parsed is not None:
                    by[parsed.service].append(arn)
            self._resources_by_service = {k: sorted(v) for k, v in by.items()}
        return self._resources_by_service


# -- verification ----------------------------------------------------------------------------------


def _strip(d: Decision) -> frozenset[frozenset[tuple[str, str, str, bool]]]:
    return frozenset(frozenset((c.operator, c.key.lower(), repr(c.values), c.negated) for c in conj)
                     for conj in d.conditions)


def _resource_entries(policies: Iterable[Policy]) -> list[str]:
    """The ``Resource`` entries of the Allow statements (a ``NotResource`` statement names none)."""
    return sorted({r for pol in policies for st in pol.statements if st.is_allow for r in st.resource or ()})


def _narrowed_star(issue: str, items: Sequence[str], original: Policy) -> bool:
    """parliament's RESOURCE_STAR lists the actions a policy allows on ``*``. Listing actions the original
    already allowed on ``*`` (often through ``"Action": "*"``, which parliament does not itemise) narrows
    access; it is not a new finding."""
    if issue != "RESOURCE_STAR" or not items:
        return False
    # Per statement on "*": (its action patterns, True for NotAction). parliament's data has actions our
    # catalog may lack, so its items are matched as text (IAM action patterns: case-insensitive, * and ?).
    covers: list[tuple[list[re.Pattern[str]], bool]] = []
    for st in original.statements:
        if not st.is_allow or "*" not in (st.resource or ()):
            continue
        negated = st.not_action is not None
        pats = [re.compile(re.escape(x).replace(r"\*", ".*").replace(r"\?", "."), re.I)
                for x in (st.not_action if negated else st.action) or ()]
        covers.append((pats, negated))
    return all(any(any(p.fullmatch(i) for p in pats) != negated for pats, negated in covers) for i in items)


@functools.lru_cache(maxsize=8192)
def _new_lint_findings(documents: str) -> tuple[str, ...]:
    """parliament's findings the proposal has and the original had not: a function of the two documents alone,
    so each (original, proposal) pair is linted once per process (copies of a template trimmed alike)."""
    original, merged = json.loads(documents)
    original_policy = named_policy(dict(original), "original", PolicyType.IDENTITY).policy
    return tuple(f"{f.issue} {f.location} {f.detail}".strip() for f in new_findings(dict(original), merged)
                 if not _narrowed_star(f.issue, f.items, original_policy))


def verify_proposal(
    ev: SnapshotEvaluator,
    index: SnapshotIndex,
    policy_id: str,
    original: Mapping[str, Any],
    proposed: Sequence[Mapping[str, Any]],
    principals: Sequence[str],
    calls: Mapping[str, Sequence[Call]],
    resources_by_service: Mapping[str, Sequence[str]],
    *,
    enumerate_new_access: bool = False,
    current: dict[tuple[str, str, str], Decision] | None = None,
) -> Verification:
    """Check a proposal with the engine, each principal's whole policy set with the one policy swapped.

    - replay: every observed allowed call the original set allows stays allowed (a call without a known
      resource is probed on ``*`` and on each Resource entry of the original, as literal resources);
    - parliament: no finding the original did not have (:func:`iamgraph.lint.new_findings`);
    - with ``enumerate_new_access`` (the tests' oracle, not the recommender's check: no new access is proven by
      :func:`iamgraph.recommend.containment.prove_contained`, which also covers actions AWS has not created
      yet): for every catalog action a proposed Allow statement covers (only those can gain), on ``*``, each
      snapshot resource of the action's service and each Resource entry of the proposal, the proposal allows
      nothing the original did not, and never more unconditionally. It asks the engine actions × resources
      questions per principal, which grows with the organization (issue 12: the enumeration is a test oracle).

    ``current``: decisions under the principals' policies as they are, by (principal, action, resource), kept by the
    caller across proposals (a principal's every policy is replayed on the same calls) and filled here. The same
    question gets the same answer; it is asked once.
    """
    new_nps = tuple(named_policy(dict(d), f"{policy_id}#proposal-{i + 1}", PolicyType.IDENTITY)
                    for i, d in enumerate(proposed))
    original_policy = named_policy(dict(original), policy_id, PolicyType.IDENTITY).policy
    orig_entries = _resource_entries([original_policy])
    prop_entries = _resource_entries(np.policy for np in new_nps)
    replay_fail: list[str] = []
    new_access: list[str] = []
    replayed = checked = not_explained = 0
    swap_in = Overrides(replace_identity=(policy_id,), add_identity=new_nps)
    known: dict[tuple[str, str, str], Decision] = current if current is not None else {}
    for p in principals:
        sets: dict[tuple[str, bool, bool], PolicySet] = {}
        swapped: dict[tuple[str, str], Decision] = {}

        def decide(action: str, resource: str, swap: bool, p: str = p,
                   sets: dict[tuple[str, bool, bool], PolicySet] = sets,
                   swapped: dict[tuple[str, str], Decision] = swapped) -> Decision:
            # A call without a resource is probed on "*" and on each Resource entry, which may be "*" again.
            hit = swapped.get((action, resource)) if swap else known.get((p, action, resource))
            if hit is not None:
                return hit
            # The policy set depends on the action only through "is it sts:" (a role's trust policy is the
            # resource policy only for sts: actions), so it is built once per resource and that flag.
            key = (resource, action.lower().startswith("sts:"), swap)
            ps = sets.get(key)
            if ps is None:
                ps = sets[key] = ev.policy_set(p, resource, action=action, overrides=swap_in if swap else None)
            d = ev.decide(p, action, resource, ps, mode=Mode.DISCOVERY)
            if swap:
                swapped[(action, resource)] = d
            else:
                known[(p, action, resource)] = d
            return d

        for c in calls.get(p, ()):
            probes = [c.resource] if c.resource is not None else ["*", *orig_entries]
            for r in probes:
                before = decide(c.action, r, False)
                if not before.possible:
                    not_explained += c.resource is not None
                    continue
                replayed += 1
                after = decide(c.action, r, True)
                if not after.possible or (before.allowed and not after.allowed):
                    replay_fail.append(f"{p} {c.action} on {r}: {before.decision.value} before, "
                                       f"{after.decision.value}{' (conditional)' if after.conditional else ''} after")
        if not enumerate_new_access:
            continue
        for action in sorted(get_catalog().allowed_actions(np.policy for np in new_nps)):
            svc = action.split(":", 1)[0]
            for r in ["*", *resources_by_service.get(svc, ()), *prop_entries]:
                checked += 1
                after = decide(action, r, True)
                if not after.possible:
                    continue
                before = decide(action, r, False)
                if not before.possible or (before.conditional and after.allowed) or (
                        before.conditional and not _strip(after) <= _strip(before)):
                    new_access.append(f"{p} {action} on {r}: {before.decision.value} before, "
                                      f"{after.decision.value} after")
    merged = dict(original)
    merged["Statement"] = [st for d in proposed for st in (d["Statement"] if isinstance(d["Statement"], list)
                                                           else [d["Statement"]])]
    lint_new = _new_lint_findings(json.dumps([original, merged], sort_keys=True, default=str)) \
        if merged["Statement"] else ()
    return Verification(
        passed=not replay_fail and not new_access and not lint_new,
        replayed_calls=replayed,
        replay_failures=tuple(replay_fail[:50]),
        requests_checked_for_new_access=checked,
        new_access=tuple(new_access[:50]),
        new_lint_findings=lint_new,
        not_explained=not_explained,
    )


# -- entry points ----------------------------------------------------------------------------------


def recommend_principal(
    snapshot_index: SnapshotIndex,
    store: UsageStore,
    principal_arn: str,
    *,
    days: int = 90,
    config: RecommendConfig | None = None,
    now: datetime | None = None,
) -> Recommendation:
    """Verified trimmed policies for one IAM user or role."""
    return Recommender(snapshot_index, store, days=days, config=config, now=now).recommend(principal_arn)


def recommend_all(
    snapshot_index: SnapshotIndex,
    store: UsageStore,
    *,
    days: int = 90,
    config: RecommendConfig | None = None,
    now: datetime | None = None,
    principals: Iterable[str] | None = None,
) -> list[Recommendation]:
    """Recommendations for every user and role of the snapshot (or the given ones), in ARN order; a policy
    shared by several principals is trimmed and verified once."""
    rec = Recommender(snapshot_index, store, days=days, config=config, now=now)
    arns = sorted(principals) if principals is not None else sorted([*snapshot_index.users, *snapshot_index.roles])
    return [rec.recommend(a) for a in arns]
