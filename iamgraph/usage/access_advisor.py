"""Access Advisor (service last accessed) data from a snapshot, into the store.

https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_last-accessed.html
Service-level entries become ``<service>:*`` records; action-level ``TrackedActionsLastAccessed`` entries become
records of that action. Only services with action-level data in the snapshot are marked as covered at action
level. Access Advisor gives dates, not counts, so ``count`` is 0.
"""

from __future__ import annotations

from typing import Any

from iamgraph.catalog import get_catalog
from iamgraph.snapshot.model import Snapshot
from iamgraph.usage.store import UsageStore, _ts
from iamgraph.usage.types import Outcome, Source


def access_advisor_rows(snapshot: Snapshot) -> tuple[list[dict[str, Any]], set[str]]:
    cat = get_catalog()
    rows: list[dict[str, Any]] = []
    covered: set[str] = set()

    def row(principal: str, action: str, when: str | None, account: str | None) -> dict[str, Any]:
        ts = _ts(when)
        return {
            "principal_arn": principal,
            "identity_type": "AccessAdvisor",
            "action": action,
            "resource": "",
            "source": Source.ACCESS_ADVISOR.value,
            "outcome": Outcome.ALLOWED.value,
            "invoked_by": "",
            "permission_set": None,
            "account_id": account,
            "certain": True,
            "first_seen": ts,
            "last_seen": ts,
            "count": 0,
        }

    for entry in snapshot.activity.access_advisor:
        ns = entry.service_namespace
        account = entry.principal_arn.split(":")[4] if entry.principal_arn.count(":") >= 5 else None
        if entry.tracked_actions:
            covered.add(ns)
        if entry.last_authenticated:
            rows.append(row(entry.principal_arn, f"{ns}:*", entry.last_authenticated, account))
        for tracked in entry.tracked_actions:
            if not tracked.last_accessed_time:
                continue
            action = cat.canonical(f"{ns}:{tracked.action_name}") or f"{ns}:{tracked.action_name}"
            rows.append(row(entry.principal_arn, action, tracked.last_accessed_time, account))
    return rows, covered


def ingest_access_advisor(store: UsageStore, snapshot: Snapshot) -> int:
    rows, covered = access_advisor_rows(snapshot)
    store.begin()
    try:
        n = store.replace_access_advisor(rows, covered)
        store.commit()
    except BaseException:
        store.rollback()
        raise
    return n
