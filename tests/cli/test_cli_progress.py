"""Progress goes to stderr, only when stderr is a terminal, and never with --quiet: stdout stays the answer."""

from __future__ import annotations

import pytest
from cli_helpers import run_cli

from iamgraph.demo import DemoResult


def test_no_progress_when_stderr_is_not_a_terminal(demo: DemoResult) -> None:
    r = run_cli("privesc", "-s", demo.snapshot)
    assert r.code == 0 and r.stderr == ""


def test_progress_phases_on_a_terminal_and_quiet_silences_them(demo: DemoResult,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from iamgraph.cli.app import err_console

    monkeypatch.setattr(err_console, "_force_terminal", True)
    r = run_cli("privesc", "-s", demo.snapshot)
    assert r.code == 0, r.output
    assert "reading the snapshot:" in r.stderr and "building the access graph:" in r.stderr
    assert "building the access graph" not in r.stdout
    quiet = run_cli("--quiet", "privesc", "-s", demo.snapshot)
    assert quiet.code == 0 and quiet.stderr == ""
    assert quiet.stdout == r.stdout
