"""SARIF 2.1.0 output of the gate (https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html).

GitHub code scanning reads ``level`` (error/warning/note) and ``properties.security-severity`` (a
number 0-10) to rank results; locations are repository-relative URIs with 1-based lines.
https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iamgraph.check.types import CheckResult, Finding, Rule, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

RULE_TEXT: dict[Rule, tuple[str, str]] = {
    Rule.NEW_ACCESS: ("NewAccess", "The change grants access the previous policy did not."),
    Rule.PUBLIC: ("PublicAccess", "The change opens access to anonymous callers or to any AWS account."),
    Rule.CROSS_ACCOUNT: ("CrossAccountAccess", "The change grants access to principals of another account."),
    Rule.ADMIN: ("AdminEquivalent", "The change grants administrator-equivalent access."),
    Rule.PRIVESC: ("PrivilegeEscalation", "The change allows a known privilege-escalation method."),
    Rule.SOD: ("SeparationOfDuties", "The change gives one principal capabilities that should be separate."),
    Rule.WILDCARD_RESOURCE: (
        "WildcardResourceWrite",
        'Write or permissions-management actions on Resource "*" where narrower ARNs are possible.',
    ),
    Rule.LINT: ("PolicyLint", "A parliament finding that the previous policy did not have."),
    Rule.UNKNOWN: ("NotEvaluated", "Part of the change could not be judged offline."),
}

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
_SCORE = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def to_sarif(result: CheckResult, *, tool_version: str, base: Path | None = None) -> dict[str, Any]:
    rules = list(Rule)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "iamgraph",
                        "version": tool_version,
                        "informationUri": "https://github.com/iamgraph/iamgraph",
                        "rules": [
                            {
                                "id": r.value,
                                "name": RULE_TEXT[r][0],
                                "shortDescription": {"text": RULE_TEXT[r][1]},
                                "helpUri": "https://github.com/iamgraph/iamgraph/blob/main/docs/check.md",
                                "properties": {"tags": ["security", "iam"]},
                            }
                            for r in rules
                        ],
                    }
                },
                "results": [_result(f, rules.index(f.rule), base) for f in result.findings],
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _uri(file: str, base: Path | None) -> str:
    p = Path(file)
    if base is not None:
        try:
            return p.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    # Outside the checkout: an absolute file URI (a bare "/tmp/x" would be resolved against uriBaseId).
    return p.resolve().as_uri() if p.is_absolute() or base is not None else p.as_posix()


def _result(f: Finding, rule_index: int, base: Path | None) -> dict[str, Any]:
    region: dict[str, Any] = {}
    if f.location.line is not None:
        region["startLine"] = f.location.line
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.location.file, base)}}
    if region:
        physical["region"] = region
    loc: dict[str, Any] = {"physicalLocation": physical}
    if f.location.path:
        loc["logicalLocations"] = [{"fullyQualifiedName": f.location.path}]
    out: dict[str, Any] = {
        "ruleId": f.rule.value,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": f"{f.subject}: {f.message}"},
        "locations": [loc],
        "partialFingerprints": {"iamgraph/v1": f.fingerprint},
        "properties": {
            "severity": str(f.severity),
            "security-severity": _SCORE[f.severity],
            "subject": f.subject,
            "details": f.details,
        },
    }
    if f.suppressed_by is not None:
        out["suppressions"] = [{"kind": "external", "justification": f.suppressed_by}]
    return out
