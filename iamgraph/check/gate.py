"""Read the inputs, run every check on every change, apply the config. Entry point of the gate."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from iamgraph.check.checks import CheckContext, run_checks
from iamgraph.check.cloudformation import changes_from_template
from iamgraph.check.config import Config
from iamgraph.check.locate import Located, load_any, load_json
from iamgraph.check.terraform import changes_from_plan
from iamgraph.check.types import (
    CheckResult,
    Finding,
    Location,
    PolicyChange,
    PolicyDoc,
    PolicyKind,
    Rule,
    Severity,
)
from iamgraph.errors import InputError
from iamgraph.snapshot.model import Snapshot


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=str(path)) from None


def pair_change(
    before: str | Path | None,
    after: str | Path,
    *,
    kind: PolicyKind = PolicyKind.IDENTITY,
    resource_arn: str | None = None,
    owner_account: str | None = None,
) -> PolicyChange:
    """A before/after pair of policy documents (JSON files); ``before`` None means a new policy."""

    def side(path: str | Path) -> PolicyDoc:
        loc = load_json(_read(path), str(path))
        if not isinstance(loc.value, dict):
            raise InputError("a policy must be a JSON object", source=str(path))
        st = loc.value.get("Statement")
        n = len(st) if isinstance(st, list) else 1
        lines = tuple(
            loc.lines.get(("Statement", i) if isinstance(st, list) else ("Statement",)) for i in range(n)
        )
        return PolicyDoc(
            document=loc.value, location=Location(file=str(path), line=loc.line(())), statement_lines=lines
        )

    b = side(before) if before is not None else None
    a = side(after)
    return PolicyChange(
        subject=str(after),
        kind=kind,
        resource_type="policy document",
        before=b,
        after=a,
        resource_arn=resource_arn,
        owner_account=owner_account,
    )


def terraform_changes(path: str | Path) -> list[PolicyChange]:
    return changes_from_plan(load_json(_read(path), str(path)))


def cloudformation_changes(path: str | Path, config: Config) -> tuple[list[PolicyChange], tuple[str, ...]]:
    located: Located = load_any(_read(path), str(path))
    cc = config.check
    return changes_from_template(
        located,
        parameters=cc.parameters,
        account=cc.accounts[0] if cc.accounts else None,
        region=cc.region,
    )


def context_for(config: Config, snapshot: Snapshot | None) -> CheckContext:
    from iamgraph.query.sod import load_rules

    accounts = set(config.check.accounts)
    managed: dict[str, dict[str, Any]] = {}
    if snapshot is not None:
        accounts |= {a.account_id for a in snapshot.accounts}
        for acct in snapshot.accounts:
            for p in acct.policies:
                managed[p.arn] = _default_doc(p)
        for p in snapshot.aws_managed_policies:
            managed[p.arn] = _default_doc(p)
    else:
        managed.update(_moto_managed())
    return CheckContext(
        own_accounts=frozenset(accounts),
        region=config.check.region or "us-east-1",
        managed_policies=managed,
        sod_rules=load_rules(),
        lint=config.check.lint,
    )


def _default_doc(p: Any) -> dict[str, Any]:
    for v in p.versions:
        if v.is_default:
            doc = v.document
            return doc if isinstance(doc, dict) else json.loads(doc) if isinstance(doc, str) else dict(doc)
    return {}


def _moto_managed() -> dict[str, dict[str, Any]]:
    """AWS managed policies as moto ships them, when moto is installed (a test/dev dependency)."""
    try:
        from moto.iam.aws_managed_policies import aws_managed_policies_data
    except ImportError:
        return {}
    data = json.loads(aws_managed_policies_data)
    return {
        f"arn:aws:iam::aws:policy{e.get('Path', '/')}{name}": e["Document"]
        for name, e in data.items()
        if isinstance(e, dict) and isinstance(e.get("Document"), dict)
    }


def run_check(
    changes: list[PolicyChange],
    *,
    inputs: tuple[str, ...],
    config: Config,
    snapshot: Snapshot | None = None,
    assumptions: tuple[str, ...] = (),
    today: dt.date | None = None,
) -> CheckResult:
    ctx = context_for(config, snapshot)
    findings: list[Finding] = []
    for change in changes:
        findings.extend(run_checks(change, ctx))
    if snapshot is not None:
        from iamgraph.check.in_context import graph_findings

        findings.extend(
            graph_findings(snapshot, changes, ctx.managed_policies, frozenset(config.check.accounts))
        )
    for note in assumptions:
        findings.append(
            Finding(
                rule=Rule.UNKNOWN,
                severity=Severity.INFO,
                subject=inputs[0] if inputs else "input",
                message=f"assumed: {note}",
                location=Location(file=inputs[0] if inputs else ""),
            )
        )
    today = today or dt.date.today()
    out = []
    for f in findings:
        sev = config.check.severity_overrides.get(f.rule.value)
        if sev is not None:
            f = replace(f, severity=sev)
        for s in config.check.suppressions:
            if s.matches(f, today):
                f = replace(f, suppressed_by=s.reason)
                break
        out.append(f)
    out.sort(key=lambda f: (-f.severity, f.location.file, f.location.line or 0, f.rule.value, f.subject))
    return CheckResult(
        inputs=inputs, changes=tuple(changes), findings=tuple(out), threshold=config.check.fail_on
    )
