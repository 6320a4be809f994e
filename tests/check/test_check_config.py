"""The shipped example config: every section parses with its own command's loader; check's errors name the place."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from iamgraph.check.config import load_config
from iamgraph.check.types import Severity
from iamgraph.errors import InputError

EXAMPLE = Path(str(resources.files("iamgraph").joinpath("data/iamgraph.example.yaml")))


def test_example_parses_for_check_recommend_and_detect() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.check.fail_on is Severity.HIGH
    assert cfg.check.accounts == ("111122223333",)
    assert {s.reason for s in cfg.check.suppressions} >= {"static website bucket, reviewed in SEC-1234"}
    assert cfg.sensitive_tags[0] == "DataClassification"
    from iamgraph.recommend.config import load_config as recommend_config

    assert recommend_config(EXAMPLE).resource_wildcard_threshold == 10
    from iamgraph.detect.config import load_detect_config

    assert load_detect_config(EXAMPLE).baseline_days == 90


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("check:\n  fail_on: severe\n", "unknown severity 'severe'"),
        ("check:\n  failon: high\n", "unknown key(s) failon"),
        ("check:\n  accounts: ['1234']\n", "not a 12-digit account id"),
        ("check:\n  suppressions:\n    - rule: IG999\n      reason: x\n", "unknown rule 'IG999'"),
        (
            "check:\n  suppressions:\n    - rule: IG001\n      reason: x\n      expires: soon\n",
            "expires must be a date",
        ),
        ("- just a list\n", "must be a mapping"),
    ],
)
def test_config_errors_name_the_file(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "iamgraph.yaml"
    p.write_text(text)
    with pytest.raises(InputError) as exc:
        load_config(p)
    assert needle in str(exc.value) and str(p) in str(exc.value)
