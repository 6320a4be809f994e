"""Values of the policy gate: the policy changes it reads and the findings it reports."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class Severity(IntEnum):
    """Ordered so thresholds compare; ``str()`` gives the config word."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            words = ", ".join(str(s) for s in cls)
            raise ValueError(f"unknown severity {text!r} (one of: {words})") from None


class PolicyKind(StrEnum):
    """What a changed document is, which decides how it is judged."""

    IDENTITY = "identity"
    TRUST = "trust"
    RESOURCE = "resource"
    ATTACHMENT = "attachment"


class Rule(StrEnum):
    """Stable ids of the checks (SARIF ruleId, suppression keys)."""

    NEW_ACCESS = "IG001-new-access"
    PUBLIC = "IG002-public-access"
    CROSS_ACCOUNT = "IG003-cross-account-access"
    ADMIN = "IG004-admin-equivalent"
    PRIVESC = "IG005-privilege-escalation"
    SOD = "IG006-sod-conflict"
    WILDCARD_RESOURCE = "IG007-wildcard-resource-write"
    LINT = "IG008-policy-lint"
    UNKNOWN = "IG009-not-evaluated"


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """A place in an input file (1-based line; None when the input does not say)."""

    file: str
    line: int | None = None
    path: str = ""
    """Where inside the file, e.g. ``resource_changes[3].change.after.policy``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDoc:
    """One side (before or after) of a changed policy.

    ``document`` is None when the value is not known (a Terraform value computed at apply time, a
    CloudFormation intrinsic that cannot be resolved offline); ``unknowns`` then says why.
    ``statement_lines`` holds the line of each statement when the policy is written inline in the
    input (a CloudFormation template); a policy held as a JSON string has only its own line.
    """

    document: dict[str, Any] | None
    location: Location
    statement_lines: tuple[int | None, ...] = ()
    unknowns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyChange:
    """A policy that a change adds, modifies or deletes.

    ``subject`` names it for people (``aws_iam_role.app trust policy``); ``resource_arn`` is the
    resource a resource or trust policy protects, or the policy ARN an attachment attaches;
    ``owner_account`` is the account that owns it when the input says so.
    """

    subject: str
    kind: PolicyKind
    resource_type: str
    before: PolicyDoc | None
    after: PolicyDoc | None
    resource_arn: str | None = None
    owner_account: str | None = None
    attached_to: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    rule: Rule
    severity: Severity
    subject: str
    message: str
    location: Location
    details: dict[str, Any] = field(default_factory=dict)
    suppressed_by: str | None = None

    @property
    def fingerprint(self) -> str:
        """Stable across runs and line moves: used for suppressions and SARIF partialFingerprints."""
        basis = "\n".join((self.rule.value, self.subject, self.message))
        return hashlib.sha256(basis.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    inputs: tuple[str, ...]
    changes: tuple[PolicyChange, ...]
    findings: tuple[Finding, ...]
    threshold: Severity

    @property
    def active(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.suppressed_by is None)

    @property
    def failing(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.active if f.severity >= self.threshold)
