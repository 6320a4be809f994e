"""Text and JSON forms of a gate result (the CLI prints them)."""

from __future__ import annotations

from typing import Any

from iamgraph.check.types import CheckResult, Finding


def to_json(result: CheckResult) -> dict[str, Any]:
    return {
        "inputs": list(result.inputs),
        "threshold": str(result.threshold),
        "changes": len(result.changes),
        "failed": bool(result.failing),
        "counts": _counts(result.active),
        "findings": [
            {
                "rule": f.rule.value,
                "severity": str(f.severity),
                "subject": f.subject,
                "message": f.message,
                "file": f.location.file,
                "line": f.location.line,
                "path": f.location.path,
                "fingerprint": f.fingerprint,
                "suppressed": f.suppressed_by,
                "details": f.details,
            }
            for f in result.findings
        ],
    }


def _counts(findings: tuple[Finding, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in findings:
        out[str(f.severity)] = out.get(str(f.severity), 0) + 1
    return out


def to_text(result: CheckResult) -> str:
    lines = [f"iamgraph check: {len(result.changes)} policy change(s) in {', '.join(result.inputs)}"]
    for f in result.findings:
        where = f"{f.location.file}:{f.location.line}" if f.location.line else f.location.file
        mark = f" [suppressed: {f.suppressed_by}]" if f.suppressed_by else ""
        lines.append(
            f"  {str(f.severity).upper():8} {f.rule.value:30} {where}  {f.subject}: {f.message}{mark}"
        )
    counts = ", ".join(f"{n} {s}" for s, n in sorted(_counts(result.active).items())) or "no findings"
    verdict = (
        f"FAIL: {len(result.failing)} finding(s) at or above {result.threshold}"
        if result.failing
        else f"pass (threshold {result.threshold})"
    )
    lines.append(f"{counts}. {verdict}")
    return "\n".join(lines)
