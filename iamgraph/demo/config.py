"""What the demo generator is asked for (``DemoConfig``) and what it hands back (``DemoResult``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from iamgraph.errors import IamGraphError, InputError

DEFAULT_END_DATE = datetime(2026, 11, 15, tzinfo=UTC)
"""A fixed end of the activity window, so that the same seed gives the same bytes on any day."""

MIN_ACCOUNTS = 6
"""management, audit, log-archive, and one account each in Prod, Dev and Sandbox (the planted set needs them)."""
MAX_ACCOUNTS = 2000


class DemoConfigError(InputError):
    """A demo configuration that cannot be generated (sizes out of range)."""


class DemoOutputError(IamGraphError):
    """The output directory cannot be written (not a directory, no permission, disk full)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoConfig:
    """Size and shape of the demo organization. Same config, same bytes.

    ``roles_per_account`` is the number of roles a member account is topped up to with generic workload
    roles; the accounts that carry the planted findings or required service roles can hold more.
    ``events_per_day`` is the number of CloudTrail records drawn per day across the organization; the
    generator also emits each planted principal's baseline calls at least once in the window, so the
    total can exceed ``days * events_per_day`` slightly.
    """

    accounts: int = 6
    roles_per_account: int = 15
    days: int = 90
    seed: int = 7
    events_per_day: int = 40
    end_date: datetime = DEFAULT_END_DATE
    with_activity: bool = True

    def validate(self) -> DemoConfig:
        """Return self, or raise DemoConfigError naming the parameter that is out of range."""
        checks = (
            ("accounts", self.accounts, MIN_ACCOUNTS, MAX_ACCOUNTS),
            ("roles_per_account", self.roles_per_account, 1, 5000),
            # The last day carries the planted deviations; they need at least one day of history before it.
            ("days", self.days, 2, 3650),
            ("events_per_day", self.events_per_day, 0, 50_000_000),
        )
        for name, value, low, high in checks:
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise DemoConfigError(
                    f"{name} must be an integer from {low} to {high}, not {value!r}",
                    source="demo config",
                    location=name,
                )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise DemoConfigError(
                f"seed must be an integer, not {self.seed!r}", source="demo config", location="seed"
            )
        if self.end_date.tzinfo is None:
            raise DemoConfigError(
                "end_date must be timezone-aware (UTC)", source="demo config", location="end_date"
            )
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoCounts:
    accounts: int
    users: int
    roles: int
    groups: int
    customer_policies: int
    aws_managed_policies: int
    resources: int
    compute: int
    permission_sets: int
    planted: int
    cloudtrail_files: int
    cloudtrail_events: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoResult:
    """Where the generated files are, and how much was generated."""

    out_dir: Path
    snapshot: Path
    cloudtrail_root: Path | None
    """``<out>/cloudtrail``: holds ``AWSLogs/<org-id>/<account>/CloudTrail/...``; None without activity."""
    planted: Path
    organization_id: str
    counts: DemoCounts
