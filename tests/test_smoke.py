from __future__ import annotations

import pytest

from iamgraph.errors import PolicyParseError
from iamgraph.model import parse_policy


def test_policy_roundtrip_minimal() -> None:
    doc = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}
    pol = parse_policy(doc)
    assert pol.to_json() == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}],
    }


def test_zero_statements_names_location() -> None:
    with pytest.raises(PolicyParseError, match=r"f\.json: Statement: the policy has 0 statements"):
        parse_policy({"Version": "2012-10-17", "Statement": []}, source="f.json")


def test_snapshot_commands_have_help() -> None:
    from typer.testing import CliRunner

    from iamgraph.cli import app

    runner = CliRunner()
    for args in (["snapshot"], ["snapshot", "import"], ["snapshot", "info"]):
        res = runner.invoke(app, [*args, "--help"])
        assert res.exit_code == 0, res.output
        assert "Usage:" in res.output
    out = runner.invoke(app, ["snapshot", "import", "--help"]).output
    for option in ("--output", "--account-id", "--json"):
        assert option in out
