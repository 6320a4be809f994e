"""The unused-permission report: what principals are granted and did not use, for a window, with evidence.

Granted actions come from the engine: each Allow statement of a principal's identity policies is expanded
with the catalog, and the engine (discovery mode) confirms the action is possible on the statement's resource.
"Unused" is claimed only for observable actions; the rest is listed as unobservable, never as unused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from iamgraph.catalog import AccessLevel, get_catalog
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Snapshot
from iamgraph.usage.coverage import CoverageJudge, called_services, issuing_actions
from iamgraph.usage.judgement import EvidenceJudgement, Removal, ServiceAdvice
from iamgraph.usage.logged import LoggedOverride, PlaceLog
from iamgraph.usage.store import UsageStore, _ts
from iamgraph.usage.types import Outcome, Source


class FindingKind(StrEnum):
    UNUSED_SERVICE = "unused-service"
    UNUSED_ACTION = "unused-action"
    UNOBSERVABLE_ACTION = "unobservable-action"
    NEVER_USED_ROLE = "never-used-role"
    UNUSED_PASSWORD = "unused-password"
    UNUSED_ACCESS_KEY = "unused-access-key"
    UNUSED_POLICY = "unused-policy"
    ADMIN_GRANT = "admin-grant"
    """An admin-equivalent grant (``*`` on ``*``) summarised: its unused services and actions, counted."""


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"high": 3, "medium": 2, "low": 1, "info": 0}[self.value]


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    kind: FindingKind
    severity: Severity
    confidence: Confidence
    account_id: str | None
    principal_arn: str
    subject: str
    """The action, service prefix, policy ARN, access key id or ``password``."""
    reason: str
    last_seen: datetime | None = None
    count: int = 0
    source: str | None = None
    actions: tuple[str, ...] = ()
    """For service-level findings: the actions concerned (the unused observable ones, or the unobservable ones)."""
    services: tuple[str, ...] = ()
    """For an admin-grant summary: the granted services with no use in the window."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnusedReport:
    window_start: datetime
    window_end: datetime
    findings: tuple[Finding, ...]
    principals_checked: int
    notes: tuple[str, ...] = ()
    data_event_services: tuple[str, ...] = ()
    logged: tuple[PlaceLog, ...] = ()
    """What was logged per account and region, and by which trails (:mod:`iamgraph.usage.logged`)."""


_SEVERITY_BY_LEVEL = {
    AccessLevel.PERMISSIONS_MANAGEMENT: Severity.HIGH,
    AccessLevel.WRITE: Severity.MEDIUM,
    AccessLevel.TAGGING: Severity.MEDIUM,
    AccessLevel.READ: Severity.LOW,
    AccessLevel.LIST: Severity.LOW,
}


_HOT = frozenset({AccessLevel.PERMISSIONS_MANAGEMENT, AccessLevel.WRITE})
_ONLY_NOT_ACCESSED = {Removal.SERVICE_NOT_ACCESSED}

# How an unused-action finding words the judgement's verdict.
_ACTION_REASON = {
    Removal.UNOBSERVED: "granted, observable, and not seen in the window",
    Removal.TRACKED_NOT_ACCESSED: "granted, tracked by Access Advisor at action level, and not accessed in the window",
    Removal.SERVICE_NOT_ACCESSED: "granted; Access Advisor shows its service not accessed in the window",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class _ServiceVerdicts:
    """The judgement's verdicts on one service's granted actions for one principal (``_service_verdicts``)."""

    service: str
    actions: Sequence[str]
    """The service's granted actions, sorted (shared with other principals of the same granted set: read only)."""
    advice: ServiceAdvice | None
    """Access Advisor's record of the service for the principal (``EvidenceJudgement.advice``)."""
    verdicts: Mapping[str, Removal]
    all_not_accessed: bool
    """Access Advisor shows the service not accessed and no action of it used: the whole service is unused."""
    removable: tuple[str, ...]
    quiet: tuple[tuple[str, Removal], ...]
    """Granted actions that show no use and whose use cannot be seen, unobservable first."""


def _cr_date(value: str | None) -> datetime | None:
    """Credential report dates; ``N/A``, ``no_information`` and ``not_supported`` mean no date."""
    if not value or value in ("N/A", "no_information", "not_supported"):
        return None
    return _ts(value)


def _true(value: str | None) -> bool:
    return str(value).lower() == "true"


@dataclass(slots=True)
class _Used:
    actions: dict[str, tuple[datetime | None, int, str]] = field(default_factory=dict)
    services: dict[str, tuple[datetime | None, int, str]] = field(default_factory=dict)
    cloudtrail_services: set[str] = field(default_factory=set)

    def add(self, action: str, last: datetime | None, count: int, source: str) -> None:
        service = action.split(":", 1)[0]
        for table, key in ((self.services, service), (self.actions, action)):
            if key == action and action.endswith(":*"):
                continue
            cur = table.get(key)
            if cur is None or (last is not None and (cur[0] is None or last > cur[0])):
                table[key] = (last, (cur[1] if cur else 0) + count, source)
            else:
                table[key] = (cur[0], cur[1] + count, cur[2])


class UnusedAnalyzer:
    def __init__(
        self,
        snapshot: Snapshot,
        store: UsageStore,
        *,
        days: int = 90,
        now: datetime | None = None,
        data_events: Iterable[str] | None = None,
        logged: LoggedOverride | None = None,
    ) -> None:
        """``data_events``: services whose data events every trail logs (``--data-events``); ``logged``: what the
        configuration (``evidence.logged``) says was logged per account and region."""
        self.snapshot = snapshot
        self.index = SnapshotIndex(snapshot)
        self.store = store
        self.cat = get_catalog()
        end = now or datetime.now(UTC)
        self.window_end = (end.astimezone(UTC) if end.tzinfo else end.replace(tzinfo=UTC)).replace(tzinfo=None)
        self.window_start = self.window_end - timedelta(days=days)
        self.model = store.observability_model(data_events=data_events)
        self.coverage = CoverageJudge(store, self.window_start, self.window_end)
        self.judgement = EvidenceJudgement(store, snapshot.activity.access_advisor, window_start=self.window_start,
                                           window_end=self.window_end, data_events=data_events, logged=logged)
        self._sts: frozenset[str] | None = None
        from iamgraph.eval import SnapshotEvaluator

        self.ev = SnapshotEvaluator(self.index)
        self._aa: dict[tuple[str, str], Any] = {
            (e.principal_arn, e.service_namespace): e for e in snapshot.activity.access_advisor
        }
        self._levels: dict[str, AccessLevel | None] = {}
        self._grouped: dict[frozenset[str], dict[str, list[str]]] = {}
        self._aa_of: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for (arn, service), entry in self._aa.items():
            self._aa_of[arn].append((service, entry))

    # -- evidence

    def _used(self, principal: str) -> _Used:
        used = _Used()
        for rec in self.store.usage_for(principal, since=self.window_start, until=self.window_end):
            if rec.outcome is not Outcome.ALLOWED:
                continue
            used.add(rec.action, rec.last_seen, rec.count, rec.source.value)
            if rec.source is Source.CLOUDTRAIL:
                used.cloudtrail_services.update(called_services(rec.action, rec.identity_type))
            for issued in issuing_actions(rec.identity_type):  # sessions count as use of what issued them
                used.add(issued, rec.last_seen, 0, rec.source.value)
        # The snapshot's own Access Advisor data counts too, whether or not it was loaded into the store.
        for service, entry in self._aa_of.get(principal, ()):
            last = _ts(entry.last_authenticated) if entry.last_authenticated else None
            if last is not None and self.window_start <= last <= self.window_end:
                used.add(f"{service}:*", last, 0, "access_advisor")
            for tracked in entry.tracked_actions:
                when = _ts(tracked.last_accessed_time) if tracked.last_accessed_time else None
                if when is not None and self.window_start <= when <= self.window_end:
                    action = self.cat.canonical(f"{service}:{tracked.action_name}")
                    if action:
                        used.add(action, when, 0, "access_advisor")
        return used

    def coverage_start(self) -> datetime | None:
        row = self.store.con.execute(
            "SELECT min(first_seen) FROM usage WHERE source = ?", [Source.CLOUDTRAIL.value]
        ).fetchone()
        return row[0] if row else None

    # -- grants

    def granted(self, principal: str) -> set[str]:
        """Actions some Allow statement grants and the engine confirms possible (discovery mode).

        Each action is tried on the statement's own Resource entries (a pattern stands for "some resource it
        matches"). Actions the engine cannot tell apart under the policy set on that resource get the same
        answer, so one representative per class is asked (``iamgraph.eval.compiled.action_classes``;
        ``tests/usage`` checks this against asking for every action).
        """
        from iamgraph.eval import Mode
        from iamgraph.eval.compiled import action_classes

        wanted: dict[str, set[str]] = defaultdict(set)
        for named in self.ev.policy_set(principal, "*").identity:
            for st in named.policy.statements:
                if not st.is_allow:
                    continue
                actions = self.cat.statement_actions(st)
                for res in st.resource or ("*",):
                    wanted[res] |= actions
        out: set[str] = set()
        if self._sts is None:
            self._sts = frozenset(a for a in self.cat.all_actions() if a.startswith("sts:"))
        for res in sorted(wanted):
            todo = wanted[res] - out
            # statement_actions gives catalog actions only, so the catalog's sts: actions split them as a test of
            # each name's prefix would (set operations: an admin's todo holds ~18,000 actions per resource).
            sts_group = todo & self._sts
            for sts in (False, True):
                group = sts_group if sts else todo - sts_group
                if not group:
                    continue
                pset = self.ev.policy_set(principal, res, action="sts:AssumeRole" if sts else None)
                supplied = [k for layer in (self.ev.principal_context(principal), self.ev.resource_context(res))
                            for k, v in layer.items() if v is not None]
                for members in action_classes(pset, group, res, supplied=supplied):
                    if self.ev.decide(principal, members[0], res, pset, mode=Mode.DISCOVERY).possible:
                        out.update(members)
        return out

    def _level(self, action: str) -> AccessLevel | None:
        # An admin's findings name every action of the catalog, for each such principal: looked up once.
        try:
            return self._levels[action]
        except KeyError:
            level = self._levels[action] = self.cat.access_level(action)
            return level

    # -- the report

    def principals(self, accounts: set[str] | None, principals: set[str] | None) -> list[tuple[str, str, str]]:
        out = []
        for acct in self.snapshot.accounts:
            if accounts and acct.account_id not in accounts:
                continue
            for kind, items in (("role", acct.roles), ("user", acct.users)):
                for p in items:
                    if principals and p.arn not in principals and p.name not in principals:
                        continue
                    out.append((acct.account_id, kind, p.arn))
        return out

    def run(
        self,
        *,
        accounts: Iterable[str] | None = None,
        principals: Iterable[str] | None = None,
        min_severity: Severity = Severity.INFO,
        summarize_admins: bool = True,
    ) -> UnusedReport:
        """``summarize_admins``: a principal granted ``*`` on ``*`` gets one ``admin-grant`` finding instead of
        hundreds of per-service and per-action ones (False lists them all)."""
        acct_filter = set(accounts) if accounts else None
        p_filter = set(principals) if principals else None
        findings: list[Finding] = []
        notes: list[str] = []
        start = self.coverage_start()
        partial = start is None or start > self.window_start + timedelta(days=1)
        if start is None:
            notes.append("no CloudTrail evidence in the store: unused claims rest on Access Advisor only")
        elif partial:
            notes.append(
                f"CloudTrail evidence starts {start:%Y-%m-%d}, after the window start "
                f"{self.window_start:%Y-%m-%d}: confidence lowered"
            )
        if self.model.data_events:
            notes.append("data events seen for: " + ", ".join(sorted(self.model.data_events)))
        inferred = [p for p in self.judgement.where_logged() if p.from_trail]
        if inferred:
            notes.append(f"in {len(inferred)} account-region(s), what the delivering trail logs elsewhere in the "
                         "account was taken for that region too (a trail logs alike in every region it covers; "
                         "`logged` lists them, evidence.logged in iamgraph.yaml overrides)")
        selected = self.principals(acct_filter, p_filter)
        rows = self.store.con.execute(
            "SELECT DISTINCT account_id FROM usage WHERE source = ? AND account_id IS NOT NULL",
            [Source.CLOUDTRAIL.value],
        ).fetchall()
        covered = {r[0] for r in rows}
        uncovered = sorted({a for a, _, _ in selected} - covered) if covered else []
        if uncovered:
            notes.append(
                "no CloudTrail event at all from account(s) " + ", ".join(uncovered)
                + ": the trail may not cover them; confidence lowered there"
            )
        for account_id, kind, arn in selected:
            partial_here = partial or account_id in uncovered
            used = self._used(arn)
            if kind == "role":
                never = self._role_findings(account_id, arn, used, partial_here)
                findings.extend(never)
                if not never:
                    # A role with no use at all is one finding; listing each of its services would only repeat it.
                    findings.extend(self._grants(account_id, arn, used, partial_here, summarize_admins))
            else:
                findings.extend(self._grants(account_id, arn, used, partial_here, summarize_admins))
                findings.extend(self._user_findings(account_id, arn))
        findings.extend(self._policy_findings(acct_filter, p_filter))
        findings = [f for f in findings if f.severity.rank >= min_severity.rank]
        return UnusedReport(
            window_start=self.window_start,
            window_end=self.window_end,
            findings=tuple(findings),
            principals_checked=len(selected),
            notes=tuple(notes),
            data_event_services=tuple(sorted(self.model.data_events)),
            logged=self.judgement.where_logged(),
        )

    def admin_grant(self, principal: str) -> bool:
        """An identity policy allows every action on every resource, unconditionally (``*`` on ``*``)."""
        everything = self.cat.all_actions()
        for named in self.ev.policy_set(principal, "*").identity:
            for st in named.policy.statements:
                if (st.is_allow and st.action is not None and st.resource == ("*",) and not st.conditions
                        and self.cat.statement_actions(st) >= everything):
                    return True
        return False

    def _grants(self, account_id: str, arn: str, used: _Used, partial: bool, summarize: bool) -> list[Finding]:
        if not summarize or not self.admin_grant(arn):
            return self._grant_findings(account_id, arn, used, partial)
        # The one summary finding counts what the per-service findings would list (``_grant_findings``); they are
        # not made (an admin's are thousands: about 0.2 CPU-s over the demo organization's 22 admins).
        services: list[str] = []
        actions: list[str] = []
        quiet = 0
        for sv in self._service_verdicts(account_id, arn, used):
            if sv.all_not_accessed:
                services.append(sv.service)
                continue
            if sv.service not in used.services:
                if sv.removable:
                    services.append(sv.service)
            else:
                actions.extend(sv.removable)
            quiet += len(sv.quiet)
        in_use = sorted(used.services)
        return [
            Finding(
                kind=FindingKind.ADMIN_GRANT, severity=Severity.HIGH,
                confidence=Confidence.LOW if partial else Confidence.MEDIUM, account_id=account_id,
                principal_arn=arn, subject="*",
                reason=f"admin-equivalent grant (* on *); {len(in_use)} service(s) used, {len(services)} granted "
                f"service(s) unused, {len(actions)} unused action(s) in the used services, {quiet} granted "
                "action(s) unobservable; `iamgraph unused --detail` lists them",
                source="cloudtrail", actions=tuple(actions), services=tuple(sorted(services)),
            )
        ]

    def _service_verdicts(self, account_id: str, arn: str, used: _Used) -> Iterator[_ServiceVerdicts]:
        """The judgement's verdicts on a principal's granted actions, service by service (sorted): what may be called
        unused, and on which evidence, is the verdict of the judgement ``recommend`` asks too
        (:meth:`EvidenceJudgement.removal`). ``_grant_findings`` words them; an admin's summary counts them."""
        by_service = self._by_service(frozenset(self.granted(arn)))
        # Observability is judged where this principal acts (its account and those its calls reached).
        accounts = self.judgement.accounts_of(arn, account_id)
        for service, actions in sorted(by_service.items()):
            advice = self.judgement.advice(arn, service)
            # Every used action's service is in used.services: a service not there has no used action to leave out.
            pending = actions if service not in used.services else [a for a in actions if a not in used.actions]
            verdicts = self.judgement.removals(arn, service, pending, accounts=accounts,
                                               cloudtrail_services=used.cloudtrail_services)
            # Access Advisor records authentication to the service whatever the action, so when it says "not
            # accessed" the whole service is unused, observable in CloudTrail or not.
            if service not in used.services and verdicts and set(verdicts.values()) == _ONLY_NOT_ACCESSED:
                yield _ServiceVerdicts(service=service, actions=actions, advice=advice, verdicts=verdicts,
                                       all_not_accessed=True, removable=(), quiet=())
                continue
            # Unobservable first, then those CloudTrail does not see for this principal (the order they are listed).
            quiet: list[tuple[str, Removal]] = sorted(
                ((a, v) for a, v in verdicts.items() if v in (Removal.KEEP_UNOBSERVABLE, Removal.KEEP_BLIND)),
                key=lambda av: av[1] is Removal.KEEP_BLIND)
            yield _ServiceVerdicts(service=service, actions=actions, advice=advice, verdicts=verdicts,
                                   all_not_accessed=False,
                                   removable=tuple(a for a, v in verdicts.items() if v.removable), quiet=tuple(quiet))

    def _grant_findings(self, account_id: str, arn: str, used: _Used, partial: bool) -> list[Finding]:
        """Per service: one finding when none of it is used; otherwise one per unused observable action.

        Unobservable granted actions that show no use are grouped in one informational finding per service. The
        verdicts are ``_service_verdicts``'; this only words them.
        """
        out: list[Finding] = []
        base_conf = Confidence.LOW if partial else Confidence.MEDIUM
        model = self.judgement.model(self.judgement.accounts_of(arn, account_id))
        for sv in self._service_verdicts(account_id, arn, used):
            service, actions, verdicts, removable, quiet = sv.service, sv.actions, sv.verdicts, sv.removable, sv.quiet
            aa_last = sv.advice.last if sv.advice is not None else None
            if sv.all_not_accessed:
                out.append(Finding(
                    kind=FindingKind.UNUSED_SERVICE, severity=self._severity_of_service(actions),
                    confidence=Confidence.HIGH, account_id=account_id, principal_arn=arn, subject=service,
                    source="access_advisor", last_seen=aa_last,
                    reason=f"{len(actions)} granted action(s) of {service}, none used in the window",
                    actions=tuple(actions),
                ))
                continue
            if service not in used.services:
                if removable:
                    rest = f"; {len(quiet)} more cannot be observed" if quiet else ""
                    out.append(Finding(
                        kind=FindingKind.UNUSED_SERVICE, severity=self._severity_of_service(removable),
                        confidence=base_conf, account_id=account_id, principal_arn=arn, subject=service,
                        source="cloudtrail", last_seen=aa_last,
                        reason=f"{len(removable)} granted action(s) of {service}, none used in the window{rest}",
                        actions=tuple(removable),
                    ))
            else:
                for a in removable:
                    level = self._level(a)
                    by_aa = verdicts[a] is not Removal.UNOBSERVED
                    out.append(Finding(
                        kind=FindingKind.UNUSED_ACTION,
                        severity=_SEVERITY_BY_LEVEL.get(level, Severity.LOW) if level else Severity.LOW,
                        confidence=Confidence.HIGH if by_aa else base_conf, account_id=account_id,
                        principal_arn=arn, subject=a, source="access_advisor" if by_aa else "cloudtrail",
                        reason=_ACTION_REASON[verdicts[a]],
                    ))
            if quiet:
                kinds = sorted({"not_in_cloudtrail" if v is Removal.KEEP_BLIND else model.observability(a).kind.value
                                for a, v in quiet})
                out.append(Finding(
                    kind=FindingKind.UNOBSERVABLE_ACTION, severity=Severity.INFO, confidence=Confidence.LOW,
                    account_id=account_id, principal_arn=arn, subject=service,
                    reason=f"{len(quiet)} granted action(s) whose use cannot be seen ({', '.join(kinds)}); "
                    "not claimed unused",
                    actions=tuple(a for a, _ in quiet),
                ))
        return out

    def _by_service(self, granted: frozenset[str]) -> dict[str, list[str]]:
        """The actions by service, each service's sorted. Principals often share a granted set (the demo
        organization's 22 admins have 4 sets of ~22,000 actions, its 98 principals 51 sets): sorted and grouped
        once per set. Read, never changed."""
        hit = self._grouped.get(granted)
        if hit is None:
            hit = defaultdict(list)
            for action in sorted(granted):
                hit[action.split(":", 1)[0]].append(action)
            if len(self._grouped) >= 64:
                self._grouped.clear()
            self._grouped[granted] = hit = dict(hit)
        return hit

    def _severity_of_service(self, actions: Iterable[str]) -> Severity:
        return Severity.HIGH if any(self._level(a) in _HOT for a in actions) else Severity.MEDIUM

    def _role_findings(self, account_id: str, arn: str, used: _Used, partial: bool) -> list[Finding]:
        role = self.index.roles.get(arn)
        if role is None or used.services or used.actions or arn in self.coverage.assumed_roles():
            return []  # a role assumed in the window was used, whatever its sessions did
        last = _ts(role.last_used.last_used_date) if role.last_used and role.last_used.last_used_date else None
        if last is not None and last >= self.window_start:
            return []
        created = _ts(role.create_date) if role.create_date else None
        young = created is not None and created > self.window_start
        return [
            Finding(
                kind=FindingKind.NEVER_USED_ROLE,
                severity=Severity.LOW if young else Severity.MEDIUM,
                confidence=Confidence.LOW if partial or young else Confidence.HIGH if last is not None or
                role.last_used is not None else Confidence.MEDIUM,
                account_id=account_id, principal_arn=arn, subject=role.name, last_seen=last,
                source="role_last_used" if role.last_used else "cloudtrail",
                reason="no use in the window" + (" (created during the window)" if young else ""),
            )
        ]

    def _user_findings(self, account_id: str, arn: str) -> list[Finding]:
        out: list[Finding] = []
        acct = self.index.accounts.get(account_id)
        row = next((r for r in (acct.credential_report if acct else []) if r.get("arn") == arn), None)
        user = self.index.users.get(arn)
        if row is not None:
            if _true(row.get("password_enabled")):
                last = _cr_date(row.get("password_last_used"))
                if last is None or last < self.window_start:
                    out.append(
                        Finding(
                            kind=FindingKind.UNUSED_PASSWORD, severity=Severity.MEDIUM, confidence=Confidence.HIGH,
                            account_id=account_id, principal_arn=arn, subject="password", last_seen=last,
                            source="credential_report", reason="console password not used in the window",
                        )
                    )
            for n in ("1", "2"):
                if not _true(row.get(f"access_key_{n}_active")):
                    continue
                last = _cr_date(row.get(f"access_key_{n}_last_used_date"))
                if last is None or last < self.window_start:
                    out.append(
                        Finding(
                            kind=FindingKind.UNUSED_ACCESS_KEY, severity=Severity.HIGH, confidence=Confidence.HIGH,
                            account_id=account_id, principal_arn=arn, subject=f"access_key_{n}", last_seen=last,
                            source="credential_report", reason="active access key not used in the window",
                        )
                    )
        elif user is not None:
            for key in user.access_keys:
                if key.status != "Active":
                    continue
                last = _ts(key.last_used_date) if key.last_used_date else None
                if last is None or last < self.window_start:
                    out.append(
                        Finding(
                            kind=FindingKind.UNUSED_ACCESS_KEY, severity=Severity.HIGH, confidence=Confidence.MEDIUM,
                            account_id=account_id, principal_arn=arn, subject=key.access_key_id, last_seen=last,
                            source="access_key_last_used", reason="active access key not used in the window",
                        )
                    )
        return out

    def _policy_findings(self, accounts: set[str] | None, principals: set[str] | None) -> list[Finding]:
        attached: set[str] = set()
        for acct in self.snapshot.accounts:
            for u in acct.users:
                attached.update(u.attached_managed_policies)
            for g in acct.groups:
                attached.update(g.attached_managed_policies)
            for r in acct.roles:
                attached.update(r.attached_managed_policies)
            for u in acct.users:
                if u.permissions_boundary:
                    attached.add(u.permissions_boundary)
            for r in acct.roles:
                if r.permissions_boundary:
                    attached.add(r.permissions_boundary)
        out = []
        for acct in self.snapshot.accounts:
            if accounts and acct.account_id not in accounts:
                continue
            for pol in acct.policies:
                if pol.arn in attached or (pol.attachment_count or 0) > 0:
                    continue
                if (pol.permissions_boundary_usage_count or 0) > 0:
                    continue
                if principals and pol.arn not in principals and pol.name not in principals:
                    continue
                out.append(
                    Finding(
                        kind=FindingKind.UNUSED_POLICY, severity=Severity.LOW, confidence=Confidence.HIGH,
                        account_id=acct.account_id, principal_arn=pol.arn, subject=pol.name, source="snapshot",
                        reason="customer managed policy attached to nothing",
                    )
                )
        return out


SORT_KEYS = ("severity", "account", "principal", "last-seen", "kind")


def sort_findings(findings: Iterable[Finding], key: str = "severity") -> list[Finding]:
    def k(f: Finding) -> tuple[Any, ...]:
        base = (-f.severity.rank, f.account_id or "", f.principal_arn, f.kind.value, f.subject)
        if key == "account":
            return (f.account_id or "", *base)
        if key == "principal":
            return (f.principal_arn, *base)
        if key == "last-seen":
            return (f.last_seen or datetime.min, *base)
        if key == "kind":
            return (f.kind.value, *base)
        return base

    return sorted(findings, key=k)


def unused_report(
    snapshot: Snapshot,
    store: UsageStore,
    *,
    days: int = 90,
    now: datetime | None = None,
    accounts: Iterable[str] | None = None,
    principals: Iterable[str] | None = None,
    min_severity: Severity = Severity.INFO,
    data_events: Iterable[str] | None = None,
    summarize_admins: bool = True,
    logged: LoggedOverride | None = None,
) -> UnusedReport:
    analyzer = UnusedAnalyzer(snapshot, store, days=days, now=now, data_events=data_events, logged=logged)
    return analyzer.run(accounts=accounts, principals=principals, min_severity=min_severity,
                        summarize_admins=summarize_admins)
