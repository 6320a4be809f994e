"""Results read as a person writes them: conditions as set membership, Identity Center users and groups by
name, and no internal stand-in names (``iamgraph-sod``) in findings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import run_cli

from iamgraph.demo import DemoResult
from iamgraph.eval.types import ResidualCondition
from iamgraph.report.conditions import condition_text, conditions_text


def test_a_deny_on_other_regions_reads_as_the_regions_allowed() -> None:
    # From a Deny (negated): access needs "aws:RequestedRegion StringNotEquals [...]" to be false, i.e. the
    # region is one of the list (condition operators: StringNotEquals is the negation of StringEquals).
    c = ResidualCondition(operator="StringNotEquals", key="aws:RequestedRegion",
                          values=("us-east-1", "eu-west-1"), negated=True)
    assert condition_text(c) == "aws:RequestedRegion ∈ {us-east-1, eu-west-1}"
    assert condition_text(ResidualCondition(operator="StringEquals", key="aws:PrincipalOrgID",
                                            values=("o-1",))) == "aws:PrincipalOrgID = o-1"
    assert condition_text(ResidualCondition(operator="NotIpAddress", key="aws:SourceIp", values=("10.0.0.0/8",),
                                            negated=True)) == "aws:SourceIp in 10.0.0.0/8"
    # Null true means "the key is absent"; negated, access needs it present.
    assert condition_text(ResidualCondition(operator="Null", key="aws:MultiFactorAuthAge", values=("true",),
                                            negated=True)) == "aws:MultiFactorAuthAge is present"
    # not (for any value: P) is "for every value: not P".
    assert condition_text(ResidualCondition(operator="ForAnyValue:StringEquals", key="aws:TagKeys",
                                            values=("a", "b"), negated=True)) == "every value of aws:TagKeys ∉ {a, b}"
    assert conditions_text(()) == "-"


def test_identity_center_and_stand_ins_by_name(demo: DemoResult, monkeypatch: pytest.MonkeyPatch) -> None:
    from iamgraph.cli.app import console

    monkeypatch.setattr(console, "width", 1000)  # one row per line: names are not folded
    r = run_cli("privesc", "-s", demo.snapshot, "--all")
    assert r.code == 0, r.output
    assert "Identity Center group" in r.stdout and "identitycenter:" not in r.stdout
    r = run_cli("sod", "-s", demo.snapshot, "--all")
    assert r.code == 0, r.output
    assert "iamgraph-sod" not in r.stdout and "any s3 bucket" in r.stdout


def test_sod_json_shows_stand_ins_as_the_pattern_they_stand_for(demo: DemoResult) -> None:
    import json

    r = run_cli("sod", "-s", demo.snapshot, "--json", "--include-admins")
    assert r.code == 0, r.output
    assert "iamgraph-sod" not in r.stdout
    resources = {e["resource"] for c in json.loads(r.stdout)["conflicts"] for e in c["evidence"]}
    # "delete any bucket" of the CloudTrail rule, as a policy writes "any bucket" (an ARN with a wildcard).
    assert "arn:aws:s3:::*" in resources
    assert any(re.fullmatch(r"arn:aws:iam::\d{12}:user/\*", x) for x in resources)


def test_detect_says_when_the_alerts_were_printed_by_an_earlier_run(demo: DemoResult, tmp_path: Path) -> None:
    assert demo.cloudtrail_root is not None
    args = ("detect", "--cloudtrail", demo.cloudtrail_root, "--since", "24h", "--as-of", "2026-11-15",
            "--spool-dir", tmp_path / "spool")
    first = run_cli(*args)
    assert first.code == 0, first.output
    assert re.match(r"\d+ alerts \(", first.stdout)
    n = int(first.stdout.split(" ", 1)[0])
    again = run_cli(*args)
    assert again.code == 0, again.output
    # Not "none found": the calls are still outside the baselines; this spool has printed them already.
    assert again.stdout.startswith(f"no new alert: {n} alerts of this window already printed by an earlier run")
    assert "none found" not in again.stdout


def test_explain_says_why_when_nothing_allows(demo: DemoResult) -> None:
    # contractor-jane holds no grant on the PII bucket (her only policy lets her assume jump-role, docs/demo-org.md):
    # with the region supplied no Deny applies either, so the answer is the default deny, and --explain says so
    # instead of printing nothing.
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policies_evaluation.html
    r = run_cli("simulate", "-s", demo.snapshot, "-p", "contractor-jane", "-a", "s3:GetObject", "-r",
                "arn:aws:s3:::examplecorp-customer-pii-903241987127/x", "--region", "us-east-1", "--explain")
    assert r.code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "ImplicitlyDenied"
    assert lines[1].startswith("  no Allow statement") and "implicit" in lines[1]
