"""Does the evidence cover the window? No permission is judged unused on evidence that could not have seen it.

Coverage is read from what was ingested: the CloudTrail files of the store, whose S3 keys name the account, region
and delivery day (``AWSLogs/[o-id/]<account>/CloudTrail/<region>/YYYY/MM/DD/``,
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html). A store filled
without files (Athena, LookupEvents, an aggregate) covers, per account, from its earliest recorded event.

A principal's evidence has a gap when:

- nothing covers an account it acts in (its own, and every account it made calls in);
- the covered days of such an account start after the window starts, or end before it ends (a day of slack at
  either end: files are delivered by day and events reach them within minutes);
- the principal (or the policy) was created during the window, so "not used in the window" says less than asked;
- it is a role that was assumed in the window (sessions count as use of what issued them) with no call recorded:
  its session acted where the evidence does not reach, or did nothing, and the two cannot be told apart.

``recommend`` and ``unused`` share this judgement (:class:`CoverageJudge`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from iamgraph.usage.store import UsageStore, _ts

_LOG_PATH = re.compile(
    r"AWSLogs/(?:o-[a-z0-9]+/)?(?P<account>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
)

# Actions whose success hands a session to the role named as their resource.
# https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html (and its SAML/web identity variants)
ASSUME_ACTIONS = frozenset({"sts:AssumeRole", "sts:AssumeRoleWithSAML", "sts:AssumeRoleWithWebIdentity"})


# A session's calls prove the call that issued it: a federated user's session exists only through the IAM user's
# GetFederationToken (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetFederationToken.html; its events
# carry userIdentity.type FederatedUser with the user as sessionIssuer,
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html).
SESSION_ISSUING_ACTIONS: dict[str, tuple[str, ...]] = {"FederatedUser": ("sts:GetFederationToken",)}


def issuing_actions(identity_type: str | None) -> tuple[str, ...]:
    """Actions the principal must have used for a call of this identity type to exist (its resource unknown)."""
    return SESSION_ISSUING_ACTIONS.get(identity_type or "", ())


def called_services(action: str, identity_type: str | None) -> tuple[str, ...]:
    """The services a recorded call shows its principal calling: the call's own, and those of the calls that issued
    its session (``issuing_actions``). ``unused`` and ``recommend`` both judge Access Advisor's "not accessed" against
    these, so they agree on what a federated session proves."""
    return (action.split(":", 1)[0], *(issued.split(":", 1)[0] for issued in issuing_actions(identity_type)))


class Gap(StrEnum):
    NO_CLOUDTRAIL = "no-cloudtrail"
    ACCOUNT_NOT_COVERED = "account-not-covered"
    STARTS_LATE = "ingest-starts-after-window-start"
    ENDS_EARLY = "ingest-ends-before-window-end"
    PRINCIPAL_YOUNGER = "principal-younger-than-window"
    POLICY_YOUNGER = "policy-younger-than-window"
    SESSIONS_WITHOUT_CALLS = "sessions-without-recorded-calls"


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageGap:
    kind: Gap
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    account: str
    regions: tuple[str, ...]
    first: date
    last: date


class CoverageJudge:
    """The coverage of one store over one window (naive UTC datetimes)."""

    def __init__(self, store: UsageStore, window_start: datetime, window_end: datetime) -> None:
        self.store = store
        self.window_start = window_start
        self.window_end = window_end
        self.spans = self._spans()
        self._assumed: dict[str, datetime] | None = None

    def _spans(self) -> dict[str, Span]:
        days: dict[str, list[date]] = defaultdict(list)
        regions: dict[str, set[str]] = defaultdict(set)
        for f in self.store.files():
            m = _LOG_PATH.search(f.path.replace("\\", "/"))
            if f.status != "ok" or m is None:
                continue
            try:
                day = date(int(m["y"]), int(m["m"]), int(m["d"]))
            except ValueError:
                continue
            days[m["account"]].append(day)
            regions[m["account"]].add(m["region"])
        if not days:
            rows = self.store.con.execute(
                "SELECT account_id, min(first_seen), max(last_seen) FROM usage WHERE source = 'cloudtrail' AND "
                "account_id IS NOT NULL GROUP BY 1").fetchall()
            return {str(a): Span(account=str(a), regions=(), first=lo.date(), last=hi.date())
                    for a, lo, hi in rows if lo is not None and hi is not None}
        return {a: Span(account=a, regions=tuple(sorted(regions[a])), first=min(d), last=max(d))
                for a, d in days.items()}

    def assumed_roles(self) -> dict[str, datetime]:
        """Roles some recorded AssumeRole* call named as its resource, with the last such call."""
        if self._assumed is None:
            rows = self.store.con.execute(
                "SELECT resource, max(last_seen) FROM usage WHERE outcome = 'allowed' AND list_contains(?, action) "
                "AND resource <> '' AND last_seen >= ? AND (first_seen IS NULL OR first_seen <= ?) GROUP BY 1",
                [sorted(ASSUME_ACTIONS), self.window_start, self.window_end]).fetchall()
            self._assumed = {str(r): last for r, last in rows}
        return self._assumed

    def gaps(
        self,
        principal_arn: str,
        *,
        home_account: str | None,
        acted_in: set[str],
        created: str | None,
        has_calls: bool,
        is_role: bool,
    ) -> list[CoverageGap]:
        out: list[CoverageGap] = []
        if not self.spans:
            return [CoverageGap(kind=Gap.NO_CLOUDTRAIL, detail="the usage store holds no CloudTrail evidence")]
        start, end = self.window_start.date(), self.window_end.date()
        for account in sorted({a for a in (home_account, *acted_in) if a}):
            span = self.spans.get(account)
            if span is None:
                out.append(CoverageGap(kind=Gap.ACCOUNT_NOT_COVERED,
                                       detail=f"no CloudTrail evidence of account {account}"))
                continue
            if span.first > start + timedelta(days=1):
                out.append(CoverageGap(kind=Gap.STARTS_LATE, detail=f"account {account}'s evidence starts "
                                       f"{span.first.isoformat()}, after the window start {start.isoformat()}"))
            if span.last < end - timedelta(days=1):
                out.append(CoverageGap(kind=Gap.ENDS_EARLY, detail=f"account {account}'s evidence ends "
                                       f"{span.last.isoformat()}, before the window end {end.isoformat()}"))
        born = _ts(created) if created else None
        if born is not None and born > self.window_start:
            out.append(CoverageGap(kind=Gap.PRINCIPAL_YOUNGER, detail=f"{principal_arn} was created "
                                   f"{born.date().isoformat()}, during the window"))
        if is_role and not has_calls and principal_arn in self.assumed_roles():
            out.append(CoverageGap(kind=Gap.SESSIONS_WITHOUT_CALLS, detail=f"{principal_arn} was assumed in the "
                                   "window but none of its sessions' calls was recorded"))
        return out

    def policy_gap(self, policy_arn: str, created: str | None) -> CoverageGap | None:
        born = _ts(created) if created else None
        if born is not None and born > self.window_start:
            return CoverageGap(kind=Gap.POLICY_YOUNGER, detail=f"{policy_arn} was created "
                               f"{born.date().isoformat()}, during the window")
        return None
