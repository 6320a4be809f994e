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
