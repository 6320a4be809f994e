"""The planted-findings manifest (``planted.json``): what the demo organization hides, for tests to assert on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PlantedKind(StrEnum):
    PRIVILEGE_ESCALATION = "privilege_escalation"
    NEAR_MISS = "near_miss"
    """Looks like a finding of ``technique``'s kind but a guardrail stops it: must NOT be reported."""
    SEPARATION_OF_DUTIES = "separation_of_duties"
    OVER_BROAD = "over_broad"
    UNUSED_PERMISSIONS = "unused_permissions"
    UNUSED_ROLE = "unused_role"
    UNUSED_CREDENTIALS = "unused_credentials"
    CREDENTIAL_HYGIENE = "credential_hygiene"
    EXTERNAL_EXPOSURE = "external_exposure"
    EXTERNAL_ACCESS = "external_access"
    """Access granted to a named account outside the organization (not public)."""
    SENSITIVE_DATA_ACCESS = "sensitive_data_access"
    DEVIATION = "deviation"


class Expect(StrEnum):
    FINDING = "finding"
    NO_FINDING = "no_finding"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlantedItem:
    id: str
    """Stable across seeds and sizes (``privesc.create-policy-version``); ARNs change with the seed."""
    kind: PlantedKind
    technique: str
    """What the item is an instance of, in a few words (``iam:CreatePolicyVersion on own policy``)."""
    expect: Expect
    account_id: str
    principals: tuple[str, ...]
    """The principal(s) the finding is about: the start of a path, the holder of a grant."""
    resources: tuple[str, ...]
    """Targets: the admin principal reached, the exposed resource, the policy involved."""
    actions: tuple[str, ...]
    why: str
    path: tuple[str, ...] = ()
    """For multi-hop items, the ARNs from start to target."""
    blocked_by: str | None = None
    """For near misses: the guardrail that stops it (deny, permissions boundary, SCP, condition, resource)."""
    also: tuple[str, ...] = ()
    """Ids of other planted items about the same principal (so a test can tell overlaps from extras)."""
    window: tuple[str, str] | None = None
    """For deviations: first and last eventTime of the planted records (ISO 8601, UTC)."""
    details: tuple[tuple[str, Any], ...] = ()
    """Kind-specific facts, e.g. ``unused_services`` for unused permissions."""

    def detail(self, key: str, default: Any = None) -> Any:
        """A kind-specific fact (``unused_actions``, ``region``, ``count``), or ``default``."""
        return dict(self.details).get(key, default)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlantedItem:
        """The item as ``planted.json`` holds it (the inverse of ``to_json``); keys it does not name are details."""
        known = {"id", "kind", "technique", "expect", "account_id", "principals", "resources", "actions", "why",
                 "path", "blocked_by", "also", "window"}
        window = data.get("window")
        return cls(
            id=data["id"],
            kind=PlantedKind(data["kind"]),
            technique=data["technique"],
            expect=Expect(data["expect"]),
            account_id=data["account_id"],
            principals=tuple(data["principals"]),
            resources=tuple(data["resources"]),
            actions=tuple(data["actions"]),
            why=data["why"],
            path=tuple(data.get("path", ())),
            blocked_by=data.get("blocked_by"),
            also=tuple(data.get("also", ())),
            window=(window[0], window[1]) if window else None,
            details=tuple((k, v) for k, v in data.items() if k not in known),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "technique": self.technique,
            "expect": self.expect.value,
            "account_id": self.account_id,
            "principals": list(self.principals),
            "resources": list(self.resources),
            "actions": list(self.actions),
            "why": self.why,
        }
        if self.path:
            out["path"] = list(self.path)
        if self.blocked_by:
            out["blocked_by"] = self.blocked_by
        if self.also:
            out["also"] = list(self.also)
        if self.window:
            out["window"] = list(self.window)
        for key, value in self.details:
            out[key] = value
        return out
