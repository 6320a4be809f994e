"""Values of the detection layer: the calls it looks at, what a principal did before, and the alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Severity(StrEnum):
    """ASFF's severity labels, so a Security Hub finding and a chat message say the same thing.

    https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html
    """

    INFORMATIONAL = "INFORMATIONAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {
    Severity.INFORMATIONAL: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class RuleId(StrEnum):
    NEW_ACTION = "new-action"
    """A mutating call to an action the principal never called in the baseline window."""
    NEW_REGION = "new-region"
    """A call in a region the principal never called in the baseline window."""
    NEW_ACCOUNT = "new-account"
    """A call from (or into) an account the principal was never seen with in the baseline window."""
    SENSITIVE_ACTION = "sensitive-action"
    """A mutating call that weakens logging, detection or key protection, whatever the baseline says."""
    ACCESS_DENIED_BURST = "access-denied-burst"
    """At least ``threshold`` refused calls by one principal within ``window``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    """One CloudTrail record, reduced to what the rules read."""

    event_id: str
    time: datetime
    principal: str
    """The principal as the usage store names it (role ARN for role sessions, ``service:...`` ...)."""
    identity_type: str
    event_source: str
    event_name: str
    actions: tuple[str, ...]
    """The IAM actions the call needed (usage's mapping); empty when it maps to none."""
    region: str | None
    source_ip: str | None
    source_account: str | None
    """``userIdentity.accountId``: the account whose credentials made the call."""
    recipient_account: str | None
    """``recipientAccountId``: the account that received the call."""
    read_only: bool | None
    """CloudTrail's ``readOnly``; None when the record does not say."""
    mutating: bool
    """``readOnly: false``; when absent, an action of access level Write, Permissions management, Tagging."""
    error_code: str | None
    denied: bool
    invoked_by: str | None = None
    file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact:
    """What the baseline knows about one value (an action, a region...) of one principal."""

    first_seen: datetime | None
    last_seen: datetime | None
    count: int


@dataclass(slots=True)
class PrincipalBaseline:
    """A principal's behaviour over the baseline window. Mutable while it is built, then only read."""

    principal: str
    actions: dict[str, Fact] = field(default_factory=dict)
    regions: dict[str, Fact] = field(default_factory=dict)
    source_accounts: dict[str, Fact] = field(default_factory=dict)
    recipient_accounts: dict[str, Fact] = field(default_factory=dict)
    source_ips: dict[str, Fact] = field(default_factory=dict)
    services: dict[str, Fact] = field(default_factory=dict)
    events: int = 0
    regions_known: bool = True
    """False when the baseline came from a source that does not keep regions (the usage store's aggregate)."""
    ips_known: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One deviation. ``id`` depends only on the rule, principal, subject and the first event: re-running a
    detection over the same logs gives the same ids, so sinks can drop what they already delivered."""

    id: str
    rule: RuleId
    severity: Severity
    title: str
    principal: str
    identity_type: str
    action: str | None
    """The IAM action, or the ``eventSource eventName`` when the call maps to no action."""
    time: datetime
    """The first event's time."""
    last_time: datetime
    region: str | None
    source_ip: str | None
    account_id: str | None
    event_ids: tuple[str, ...]
    evidence: dict[str, object]
    """Baseline facts and event details, JSON-ready."""

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "rule": self.rule.value,
            "severity": self.severity.value,
            "title": self.title,
            "principal": self.principal,
            "identity_type": self.identity_type,
            "action": self.action,
            "time": _iso(self.time),
            "last_time": _iso(self.last_time),
            "region": self.region,
            "source_ip": self.source_ip,
            "account_id": self.account_id,
            "event_ids": list(self.event_ids),
            "evidence": self.evidence,
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> Alert:
        ev = data["evidence"]
        ids = data["event_ids"]
        return Alert(
            id=str(data["id"]),
            rule=RuleId(str(data["rule"])),
            severity=Severity(str(data["severity"])),
            title=str(data["title"]),
            principal=str(data["principal"]),
            identity_type=str(data["identity_type"]),
            action=None if data.get("action") is None else str(data["action"]),
            time=datetime.fromisoformat(str(data["time"])),
            last_time=datetime.fromisoformat(str(data["last_time"])),
            region=None if data.get("region") is None else str(data["region"]),
            source_ip=None if data.get("source_ip") is None else str(data["source_ip"]),
            account_id=None if data.get("account_id") is None else str(data["account_id"]),
            event_ids=tuple(str(i) for i in ids) if isinstance(ids, list) else (),
            evidence=dict(ev) if isinstance(ev, dict) else {},
        )


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")
