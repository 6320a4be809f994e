"""The one evidence judgement ``recommend`` and ``unused`` share: may a granted action that no call shows be taken
away from a principal?

- **Observability is judged where the evidence was collected** (:mod:`iamgraph.usage.logged`): the principal acts in
  its own account and each account its calls reached, and there in every region the evidence reaches (a data event
  is recorded in the resource's region, not the caller's, so the regions where the principal's calls were seen do
  not bound where its unlogged calls went). A data-event action is observable only when data events of its service
  were logged in every one of those accounts and regions, a management-event action only when management events
  were; the configuration (``evidence.logged``) replaces what the store shows.
- **Access Advisor** (the snapshot's last-accessed data): a service "not accessed" in the window (never in the
  tracking period, or last before the window) is unused as a whole, unobservable actions included (AWS records
  the authentication to the service whatever the action); a service accessed in the window with no CloudTrail call
  of it means the trail does not see this principal's use there, so its CloudTrail silence proves nothing; actions
  Access Advisor tracks at action level are judged by it.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_last-accessed.html
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from iamgraph.usage.logged import Logged, LoggedOverride, PlaceLog
from iamgraph.usage.observability import ObservabilityModel
from iamgraph.usage.store import UsageStore, _shared_mapper, _ts
from iamgraph.usage.types import Observability, ObservabilityKind


class Removal(StrEnum):
    """Why an unused granted action may go, or why it stays."""

    UNOBSERVED = "unobserved"
    """Observable where the principal acts, and not seen in the window."""
    SERVICE_NOT_ACCESSED = "service-not-accessed"
    """Access Advisor: the service was not accessed in the window (the whole service goes)."""
    TRACKED_NOT_ACCESSED = "tracked-not-accessed"
    """Access Advisor tracks the action and it was not accessed in the window."""
    KEEP_UNOBSERVABLE = "keep-unobservable"
    """Its use cannot be seen: kept."""
    KEEP_BLIND = "keep-blind"
    """Access Advisor shows the service used but CloudTrail has no call of it: the trail does not see this use."""
    KEEP_TRACKED_ACCESSED = "keep-tracked-accessed"
    """Access Advisor tracks the action and saw it accessed in the window: used."""

    @property
    def removable(self) -> bool:
        return self in _REMOVABLE


_REMOVABLE = frozenset({Removal.UNOBSERVED, Removal.SERVICE_NOT_ACCESSED, Removal.TRACKED_NOT_ACCESSED})


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceAdvice:
    """Access Advisor's word on one principal and service, for the window."""

    not_accessed: bool
    accessed: bool
    last: datetime | None
    tracked: frozenset[str]
    """Actions (lower case) tracked at action level."""


_MODELS: dict[tuple[frozenset[str], bool, frozenset[str]], ObservabilityModel] = {}
_MAX_MODELS = 16
"""A model keeps an answer per action asked (up to the catalog's ~22,000, a few MB): a bounded few are kept."""
_MODELS_LOCK = threading.Lock()


def observability_model(data_events: frozenset[str], management_events: bool,
                        access_advisor_action_level: frozenset[str]) -> ObservabilityModel:
    """The observability model of one configuration of the trails, one per process.

    A model's answers depend only on these three and the process's one event mapper, and it keeps each answer (an
    admin's ~22,000 granted actions each). ``iamgraph report`` judges the same evidence twice, for the unused section
    and for the recommendations: a configuration both meet gets one model, not two (on the demo organization 11,500
    answers made instead of 14,600)."""
    key = (data_events, management_events, access_advisor_action_level)
    hit = _MODELS.get(key)
    if hit is None:
        with _MODELS_LOCK:
            hit = _MODELS.get(key)
            if hit is None:
                while len(_MODELS) >= _MAX_MODELS:
                    del _MODELS[next(iter(_MODELS))]  # the oldest first
                hit = _MODELS[key] = ObservabilityModel(
                    _shared_mapper(), data_events=data_events, management_events=management_events,
                    access_advisor_action_level=access_advisor_action_level)
    return hit


class EvidenceJudgement:
    def __init__(
        self,
        store: UsageStore,
        access_advisor: Iterable[Any],
        *,
        window_start: datetime,
        window_end: datetime,
        data_events: Iterable[str] | None = None,
        data_events_by_account: Mapping[str, Iterable[str]] | None = None,
        logged: LoggedOverride | None = None,
    ) -> None:
        """``data_events``: services whose data events every trail logs (all accounts and regions; the
        ``--data-events`` of ``unused``); ``logged``: the ``evidence.logged`` configuration;
        ``data_events_by_account``: the older per-account form (``recommend.data_events``), under ``logged``."""
        self.store = store
        self.window_start = window_start
        self.window_end = window_end
        self._override = frozenset(data_events) if data_events is not None else None
        override = (logged or LoggedOverride()).merged(
            LoggedOverride.of_data_events(data_events_by_account or {}).settings)
        self.logged = Logged(store.logged_rows(), (f.path for f in store.files() if f.status == "ok"), override)
        self._aa = {(e.principal_arn, e.service_namespace): e for e in access_advisor}
        self._advice: dict[tuple[str, str], ServiceAdvice | None] = {}
        self._aa_services = store.access_advisor_services()
        self._models: dict[tuple[frozenset[str], bool], ObservabilityModel] = {}
        self._reached: dict[str, frozenset[str]] | None = None
        self._where: dict[frozenset[str], tuple[frozenset[str], bool]] = {}

    # -- where the principal acts

    def accounts_of(self, principal_arn: str, home: str | None) -> frozenset[str]:
        """The principal's own account and each account its calls in the window reached."""
        if self._reached is None:
            # One query for every principal: asked per principal, it cost a query each (``recommend --all``).
            reached: dict[str, set[str]] = defaultdict(set)
            for p, a in self.store.con.execute(
                    "SELECT DISTINCT principal_arn, account_id FROM usage WHERE source = 'cloudtrail' AND "
                    "account_id IS NOT NULL AND last_seen >= ? AND (first_seen IS NULL OR first_seen <= ?)",
                    [self.window_start, self.window_end]).fetchall():
                reached[str(p)].add(str(a))
            self._reached = {p: frozenset(a) for p, a in reached.items()}
        return self._reached.get(principal_arn, frozenset()) | ({home} if home else frozenset())

    def data_events(self, accounts: Iterable[str]) -> frozenset[str]:
        """Services whose data events were logged in every region of every one of ``accounts`` (or as configured)."""
        return self._logged_in(accounts)[0]

    def management_events(self, accounts: Iterable[str]) -> bool:
        """Management events were logged in every region of every one of ``accounts`` (or as configured)."""
        return self._logged_in(accounts)[1]

    def _logged_in(self, accounts: Iterable[str]) -> tuple[frozenset[str], bool]:
        key = frozenset(accounts)
        hit = self._where.get(key)
        if hit is None:
            hit = self._where[key] = self._logged_in_places(key)
        return hit

    def _logged_in_places(self, accounts: frozenset[str]) -> tuple[frozenset[str], bool]:
        places = self.logged.places(accounts)
        if not places:
            return (self._override or frozenset()), True
        at = [self.logged.at(a, r) for a, r in places]
        data = self._override if self._override is not None else frozenset.intersection(*(d for _, d in at))
        return data, all(m for m, _ in at)

    def where_logged(self) -> tuple[PlaceLog, ...]:
        """What was logged per account and region, and by which trails (for reports)."""
        return self.logged.summary()

    def model(self, accounts: Iterable[str]) -> ObservabilityModel:
        key = self._logged_in(accounts)
        hit = self._models.get(key)
        if hit is None:
            hit = self._models[key] = observability_model(key[0], key[1], self._aa_services)
        return hit

    def observability(self, action: str, accounts: Iterable[str]) -> Observability:
        return self.model(accounts).observability(action)

    # -- Access Advisor

    def advice(self, principal_arn: str, service: str) -> ServiceAdvice | None:
        key = (principal_arn, service)
        if key in self._advice:
            return self._advice[key]
        entry = self._aa.get(key)
        hit = None
        if entry is not None:
            last = _ts(entry.last_authenticated) if entry.last_authenticated else None
            hit = ServiceAdvice(
                not_accessed=last is None or last < self.window_start,
                accessed=last is not None and self.window_start <= last <= self.window_end,
                last=last, tracked=frozenset(f"{service}:{t.action_name}".lower() for t in entry.tracked_actions))
        # Asked for each granted action (an admin's ~18,000): built once per principal and service.
        self._advice[key] = hit
        return hit

    def tracked_accessed(self, principal_arn: str, action: str) -> bool:
        """Access Advisor tracks the action for this principal and saw it accessed in the window."""
        service = action.split(":", 1)[0]
        entry = self._aa.get((principal_arn, service))
        if entry is None:
            return False
        for t in entry.tracked_actions:
            if f"{service}:{t.action_name}".lower() == action.lower():
                when = _ts(t.last_accessed_time) if t.last_accessed_time else None
                return when is not None and self.window_start <= when <= self.window_end
        return False

    # -- the verdict

    def removal(self, principal_arn: str, action: str, *, accounts: Iterable[str],
                cloudtrail_services: Collection[str]) -> Removal:
        """The verdict on a granted action no recorded call of ``principal_arn`` shows (in the window);
        ``cloudtrail_services``: the services of its calls CloudTrail recorded in the window. ``recommend`` (what
        may go) and ``unused`` (what to report, and with which evidence) both ask it."""
        return self.removals(principal_arn, action.split(":", 1)[0], (action,), accounts=accounts,
                             cloudtrail_services=cloudtrail_services)[action]

    def removals(self, principal_arn: str, service: str, actions: Iterable[str], *, accounts: Iterable[str],
                 cloudtrail_services: Collection[str]) -> dict[str, Removal]:
        """:meth:`removal` for each of ``actions``, all of ``service``: what depends on the service alone is decided
        once (``unused`` asks about every granted action of an admin, ~18,000 of them)."""
        called = service in cloudtrail_services
        advice = self.advice(principal_arn, service)
        if advice is not None and advice.not_accessed and not called:
            return dict.fromkeys(actions, Removal.SERVICE_NOT_ACCESSED)
        observability = self.model(accounts).observability
        tracked = advice.tracked if advice is not None else frozenset()
        blind = advice is not None and advice.accessed and not called
        # An observable action no call shows: unseen, or unseen only because the trail does not see this use.
        unseen = Removal.KEEP_BLIND if blind else Removal.UNOBSERVED
        observable = ObservabilityKind.OBSERVABLE
        out: dict[str, Removal] = {}
        if not tracked:
            # Most services have no action-level Access Advisor data (an admin's ~400 services each ask): one test.
            for action in actions:
                out[action] = unseen if observability(action).kind is observable else Removal.KEEP_UNOBSERVABLE
            return out
        for action in actions:
            if action.lower() in tracked:
                out[action] = Removal.KEEP_TRACKED_ACCESSED if self.tracked_accessed(principal_arn, action) else \
                    Removal.TRACKED_NOT_ACCESSED
            elif observability(action).kind is not observable:
                out[action] = Removal.KEEP_UNOBSERVABLE
            else:
                out[action] = unseen
        return out
