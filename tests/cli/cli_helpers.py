"""Running ``iamgraph`` in-process with stdout and stderr kept apart (a module of its own: every test folder's
conftest.py is imported as ``conftest``, so helpers there collide)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from iamgraph.cli import app


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
