"""Per-principal baselines: what each principal did over the baseline window.

Built from CloudTrail events (every dimension known), or from the usage store's aggregate (actions and
accounts with first/last seen and counts; regions and source IPs are not kept there, so the rules that need
them say "unknown" instead of alerting on every region).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from iamgraph.detect.types import CallEvent, Fact, PrincipalBaseline
from iamgraph.usage.store import UsageStore
from iamgraph.usage.types import Source


def _bump(
    facts: dict[str, Fact], key: str | None, first: datetime | None, last: datetime | None, n: int
) -> None:
    if not key:
        return
    old = facts.get(key)
    if old is None:
        facts[key] = Fact(first_seen=first, last_seen=last, count=n)
        return
    facts[key] = Fact(
        first_seen=_min(old.first_seen, first),
        last_seen=_max(old.last_seen, last),
        count=old.count + n,
    )


def _utc(t: datetime | None) -> datetime | None:
    # The store's timestamps are naive UTC.
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def call_key(ev: CallEvent) -> tuple[str, ...]:
    """The actions of a call, or ``eventSource:eventName`` when it maps to no IAM action (still behaviour)."""
    return ev.actions or (f"{ev.event_source}:{ev.event_name}",)


class Baselines:
    """All principals' baselines, keyed by principal name."""

    def __init__(self) -> None:
        self.by_principal: dict[str, PrincipalBaseline] = {}
        self.sources: list[str] = []

    def get(self, principal: str) -> PrincipalBaseline | None:
        return self.by_principal.get(principal)

    def _of(self, principal: str) -> PrincipalBaseline:
        b = self.by_principal.get(principal)
        if b is None:
            b = self.by_principal[principal] = PrincipalBaseline(principal=principal)
        return b

    def add_event(self, ev: CallEvent) -> None:
        b = self._of(ev.principal)
        b.events += 1
        t = ev.time
        for key in call_key(ev):
            _bump(b.actions, key, t, t, 1)
            _bump(b.services, key.split(":", 1)[0], t, t, 1)
        _bump(b.regions, ev.region, t, t, 1)
        _bump(b.source_accounts, ev.source_account, t, t, 1)
        _bump(b.recipient_accounts, ev.recipient_account, t, t, 1)
        _bump(b.source_ips, ev.source_ip, t, t, 1)

    def add_events(self, events: Iterable[CallEvent]) -> None:
        for ev in events:
            self.add_event(ev)

    def add_store(self, store: UsageStore, since: datetime, until: datetime) -> int:
        """CloudTrail rows of the usage store that overlap [since, until).

        The store keeps first/last seen per row, not each event: a row counts when its span overlaps the
        window
        (its count may include calls outside it). Regions and source IPs are not in the store, so a principal
        known only from the store has ``regions_known = ips_known = False``.
        """
        n = 0
        for rec in store.records(since=since, until=until):
            if rec.source is not Source.CLOUDTRAIL:
                continue
            known = rec.principal_arn in self.by_principal
            b = self._of(rec.principal_arn)
            if not known:
                b.regions_known = False
                b.ips_known = False
            b.events += rec.count
            first, last = _utc(rec.first_seen), _utc(rec.last_seen)
            _bump(b.actions, rec.action, first, last, rec.count)
            _bump(b.services, rec.action.split(":", 1)[0], first, last, rec.count)
            _bump(b.recipient_accounts, rec.account_id, first, last, rec.count)
            n += 1
        return n
