"""The ``check:`` and ``sensitive_tags:`` sections of the project config file (``iamgraph.yaml``).

The file is read by ``iamgraph.config.read_config``; the gate and the report read these two sections.

Format: docs/config.md; an annotated example ships as ``iamgraph/data/iamgraph.example.yaml``.
Other top-level sections belong to other commands and are not judged here.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iamgraph.check.types import Finding, Rule, Severity
from iamgraph.config import ConfigDocument, read_config
from iamgraph.errors import InputError


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppression:
    rule: str = "*"
    subject: str = "*"
    fingerprint: str | None = None
    reason: str
    expires: dt.date | None = None

    def matches(self, f: Finding, today: dt.date) -> bool:
        if self.expires is not None and today > self.expires:
            return False
        if self.fingerprint is not None and self.fingerprint != f.fingerprint:
            return False
        return fnmatch.fnmatchcase(f.rule.value, self.rule) and fnmatch.fnmatchcase(f.subject, self.subject)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckConfig:
    fail_on: Severity = Severity.HIGH
    accounts: tuple[str, ...] = ()
    region: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    severity_overrides: dict[str, Severity] = field(default_factory=dict)
    suppressions: tuple[Suppression, ...] = ()
    lint: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    source: str = "<defaults>"
    check: CheckConfig = field(default_factory=CheckConfig)
    sensitive_tags: tuple[str, ...] = ()


def load_config(path: str | Path | None) -> Config:
    if path is None:
        return Config()
    doc = read_config(path)
    return parse_check_config(doc)


def parse_check_config(doc: ConfigDocument) -> Config:
    """The ``check:`` and ``sensitive_tags:`` sections of a read config file."""
    source = doc.source
    return Config(
        source=source,
        check=_check(doc.section("check") or {}, source),
        sensitive_tags=tuple(str(t) for t in _list(doc.section("sensitive_tags"), source, "sensitive_tags")),
    )


def _check(data: Any, source: str) -> CheckConfig:
    data = _mapping(data, source, "check")
    known = {"fail_on", "accounts", "region", "parameters", "severity_overrides", "suppressions", "lint"}
    extra = sorted(set(data) - known)
    if extra:
        raise InputError(
            f"unknown key(s) {', '.join(extra)}; known: {', '.join(sorted(known))}",
            source=source,
            location="check",
        )
    try:
        fail_on = Severity.parse(str(data.get("fail_on", "high")))
        overrides = {
            _rule(k, source): Severity.parse(str(v))
            for k, v in _mapping(
                data.get("severity_overrides") or {}, source, "check.severity_overrides"
            ).items()
        }
    except ValueError as exc:
        raise InputError(str(exc), source=source, location="check") from None
    sups = []
    for i, s in enumerate(_list(data.get("suppressions"), source, "check.suppressions")):
        where = f"check.suppressions[{i}]"
        s = _mapping(s, source, where)
        if not s.get("reason"):
            raise InputError("a suppression needs a reason", source=source, location=where)
        expires = s.get("expires")
        if expires is not None and not isinstance(expires, dt.date):
            try:
                expires = dt.date.fromisoformat(str(expires))
            except ValueError:
                raise InputError(
                    f"expires must be a date (YYYY-MM-DD), not {expires!r}", source=source, location=where
                ) from None
        rule = str(s.get("rule", "*"))
        if "*" not in rule and "?" not in rule:
            rule = _rule(rule, source)
        sups.append(
            Suppression(
                rule=rule,
                subject=str(s.get("subject", "*")),
                fingerprint=str(s["fingerprint"]) if s.get("fingerprint") else None,
                reason=str(s["reason"]),
                expires=expires,
            )
        )
    accounts = tuple(str(a) for a in _list(data.get("accounts"), source, "check.accounts"))
    for a in accounts:
        if not (a.isdigit() and len(a) == 12):
            raise InputError(f"{a!r} is not a 12-digit account id", source=source, location="check.accounts")
    return CheckConfig(
        fail_on=fail_on,
        accounts=accounts,
        region=str(data["region"]) if data.get("region") else None,
        parameters={
            str(k): str(v)
            for k, v in _mapping(data.get("parameters") or {}, source, "check.parameters").items()
        },
        severity_overrides=overrides,
        suppressions=tuple(sups),
        lint=bool(data.get("lint", True)),
    )


def _rule(text: str, source: str) -> str:
    for r in Rule:
        if text in (r.value, r.value.split("-", 1)[0]):
            return r.value
    raise InputError(f"unknown rule {text!r} (one of: {', '.join(r.value for r in Rule)})", source=source)


def _mapping(v: Any, source: str, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise InputError("must be a mapping", source=source, location=where)
    return v


def _list(v: Any, source: str, where: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise InputError("must be a list", source=source, location=where)
    return v
