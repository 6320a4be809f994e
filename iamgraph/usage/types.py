"""Values of the usage layer: what was seen, by whom, and whether it could have been seen at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Source(StrEnum):
    """Where a piece of usage evidence comes from."""

    CLOUDTRAIL = "cloudtrail"
    ACCESS_ADVISOR = "access_advisor"


class Outcome(StrEnum):
    """Whether the call passed authorization (a later service error still counts as allowed)."""

    ALLOWED = "allowed"
    DENIED = "denied"


class ObservabilityKind(StrEnum):
    """Can the use of an action be seen at all?"""

    OBSERVABLE = "observable"
    """A management event that every trail logs."""
    DATA_EVENT = "data_event"
    """A data event: seen only when the trail logs data events for that resource type."""
    MANAGEMENT_EVENT = "management_event"
    """A management event, where the principal acts in an account and region whose trails logged none."""
    NOT_LOGGED = "not_logged"
    """An authorization-only permission (``iam:PassRole``...): checked by AWS, never its own event."""
    NO_EVENT = "no_event"
    """No API operation of the service maps to it, so no CloudTrail event can show its use."""
    UNKNOWN_ACTION = "unknown_action"
    """Not an action of the catalog."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Observability:
    action: str
    kind: ObservabilityKind
    reason: str
    access_advisor_action_level: bool = False
    """Access Advisor tracks this action's service at action level (so its last use may be known from there)."""

    @property
    def observable(self) -> bool:
        """True when a missing event is evidence of non-use."""
        return self.kind is ObservabilityKind.OBSERVABLE


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRecord:
    """Aggregated use of one action by one principal (on one resource, when known)."""

    principal_arn: str
    identity_type: str
    action: str
    resource: str | None
    """The resource ARN when the event names it; None when unknown."""
    source: Source
    outcome: Outcome
    first_seen: datetime | None
    last_seen: datetime | None
    count: int
    """Events seen (0 for Access Advisor, which gives dates, not counts)."""
    invoked_by: str | None = None
    """The AWS service that made the call on the principal's behalf (``invokedBy``), None for direct calls."""
    permission_set: str | None = None
    """Identity Center permission set name, for ``AWSReservedSSO_<name>_<hash>`` roles."""
    account_id: str | None = None
    """The account that received the call (CloudTrail's recipientAccountId), which owns the resource."""
    certain: bool = True
    """False when the event could have needed any one of several actions (DynamoDB TransactWriteItems)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestStats:
    """What one ingest did. Nothing is dropped silently: every skipped or unusable input is counted here."""

    files_seen: int = 0
    files_ingested: int = 0
    files_skipped_done: int = 0
    """Already ingested earlier (same path and content): skipped, never counted twice."""
    files_outside_window: int = 0
    files_bad: int = 0
    events: int = 0
    events_unattributed: int = 0
    """Records without the fields needed to name a principal or an API call."""
    events_unmapped: int = 0
    """Events whose eventSource/eventName maps to no IAM action."""
    events_duplicate: int = 0
    """Records skipped because an event with the same eventID was already counted (in this ingest or an earlier
    one): an organization trail and an account trail deliver the same events."""
    records_written: int = 0
    """New usage rows (principal × action × resource × ...) the ingest added; existing rows only grew counts."""
    bad_files: tuple[tuple[str, str], ...] = ()
    """(path, reason) of files that could not be read."""
    bad_records: tuple[tuple[str, int], ...] = ()
    """(reason, count) of records skipped in files that were read: no or a malformed eventTime, a record that is
    not valid JSON or not an object. The file's other records are ingested."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProblemCount:
    kind: str
    detail: str
    count: int
