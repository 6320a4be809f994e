"""The ``detect:`` section of iamgraph.yaml: defaults, every sink type, and errors that name the place."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from iamgraph.detect.config import (
    DetectConfigError,
    SinkKind,
    SyslogProtocol,
    WebhookFormat,
    load_detect_config,
    parse_detect,
)
from iamgraph.detect.types import Severity

FULL = """
recommend: {}
detect:
  baseline_days: 30
  burst: {threshold: 5, window_minutes: 2}
  sensitive_actions: ["lambda:UpdateFunctionConfiguration"]
  ignore_principals: ["arn:aws:iam::*:role/ci-*"]
  min_severity: medium
  spool_dir: /var/spool/iamgraph
  sinks:
    - {type: stdout}
    - {name: slack, type: webhook, url: "https://hooks.slack.com/services/T/B/X", retries: 2,
       backoff_seconds: 0.5}
    - {name: teams, type: webhook, url: "https://example.webhook.office.com/x", format: teams-adaptive,
       min_severity: high}
    - {name: siem, type: syslog, host: 127.0.0.1, port: 6514, protocol: tcp, facility: 4}
    - {name: hub, type: asff, path: findings.json, product_account: "111122223333", region: eu-west-1}
"""


def test_full_section(tmp_path: Path) -> None:
    p = tmp_path / "iamgraph.yaml"
    p.write_text(FULL)
    cfg = load_detect_config(p)
    assert cfg.baseline_days == 30 and cfg.burst_threshold == 5 and cfg.burst_window == timedelta(minutes=2)
    assert cfg.min_severity is Severity.MEDIUM and cfg.spool_dir == "/var/spool/iamgraph"
    assert [s.name for s in cfg.sinks] == ["stdout", "slack", "teams", "siem", "hub"]
    stdout, slack, teams, siem, hub = cfg.sinks
    assert stdout.kind is SinkKind.STDOUT
    assert slack.format is WebhookFormat.SLACK and slack.retries == 2 and slack.backoff_seconds == 0.5
    assert teams.format is WebhookFormat.TEAMS_ADAPTIVE and teams.min_severity is Severity.HIGH
    assert siem.protocol is SyslogProtocol.TCP and siem.port == 6514 and siem.facility == 4
    assert hub.path == "findings.json" and hub.region == "eu-west-1"


def test_defaults_without_a_section() -> None:
    cfg = parse_detect({"recommend": {}})
    assert cfg.baseline_days == 90 and cfg.sinks == () and cfg.burst_threshold == 10
    assert parse_detect(None) == cfg


@pytest.mark.parametrize(
    "text,where",
    [
        ("detect: {baseline_dayz: 3}", "detect: unknown keys: baseline_dayz"),
        ("detect: {baseline_days: 0}", "detect.baseline_days"),
        ("detect: {sinks: [{type: pager}]}", "detect.sinks[0].type"),
        ("detect: {sinks: [{type: webhook}]}", "detect.sinks[0].url"),
        ("detect: {sinks: [{type: syslog, host: h, port: 70000}]}", "detect.sinks[0].port"),
        ("detect: {sinks: [{type: syslog, host: h, protocol: sctp}]}", "detect.sinks[0].protocol"),
        ("detect: {sinks: [{type: asff}]}", "detect.sinks[0].path"),
        ("detect: {sinks: [{type: stdout}, {type: stdout}]}", "sink names must be unique"),
        ("detect: {sinks: [{type: stdout, name: '../x'}]}", "detect.sinks[0].name"),
        ("detect: {min_severity: severe}", "detect.min_severity"),
        ("detect: {burst: {threshold: 3, minutes: 2}}", "detect.burst"),
        ("detect: [1]", "detect: must be a mapping"),
        ("detect: {sinks: [{type: stdout, colour: red}]}", "detect.sinks[0]: unknown keys: colour"),
    ],
)
def test_errors_name_file_and_location(tmp_path: Path, text: str, where: str) -> None:
    p = tmp_path / "iamgraph.yaml"
    p.write_text(text)
    with pytest.raises(DetectConfigError) as exc:
        load_detect_config(p)
    assert str(exc.value).startswith(str(p)) and where in str(exc.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(DetectConfigError, match="cannot read"):
        load_detect_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("detect: [unclosed")
    with pytest.raises(DetectConfigError, match="not valid YAML"):
        load_detect_config(bad)


def test_shipped_example_config_parses() -> None:
    """The annotated example that ships with iamgraph (its detect: section) must stay loadable."""
    import iamgraph

    example = Path(iamgraph.__file__).parent / "data" / "iamgraph.example.yaml"
    cfg = load_detect_config(example)
    assert cfg.sinks and all(s.name for s in cfg.sinks)
