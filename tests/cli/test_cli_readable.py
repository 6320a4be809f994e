"""Results read as a person writes them: conditions as set membership, Identity Center users and groups by
name, and no internal stand-in names (``iamgraph-sod``) in findings."""

from __future__ import annotations

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
