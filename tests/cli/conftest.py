"""Fixtures for the command-line tests: one demo organization per session (tests only read it), and a helper
that runs ``iamgraph`` in-process with stdout and stderr kept apart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.demo import DemoConfig, DemoResult, generate_demo


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str | Path) -> Run:
    res = CliRunner().invoke(app, [str(a) for a in args])
    return Run(code=res.exit_code, stdout=res.stdout, stderr=res.stderr)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return generate_demo(tmp_path_factory.mktemp("cli-demo"), DemoConfig())
