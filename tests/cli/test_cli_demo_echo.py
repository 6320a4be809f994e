"""``iamgraph demo`` shows exactly what the commands it echoes print: each command is run as a user would
run it (a new process, the same terminal width, a directory without iamgraph.yaml) and its output is
compared with what the demo printed under it.

The commands are replayed into a second directory of the same path length, so that the usage store and the
detect spool start afresh there as they did for the demo (both remember what they have done: ``usage
ingest`` skips files it has read, ``detect`` does not print an alert twice); the directory name is the only
thing normalised.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# The demo's steps in order; a step missing from the output would make the comparison vacuous.
ECHOED = ["demo-org generate", "snapshot info", "privesc", "exposure", "sod", "sensitive", "usage ingest", "unused",
          "recommend", "detect", "report"]
RULE = re.compile(r"^─+ .+ ─+$")  # a step's title line (rich's rule), not a table border


def _iamgraph(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "IAMGRAPH_DEBUG")}
    env["COLUMNS"] = "120"
    # stderr joined to stdout, as in a terminal: detect prints its run summary on stderr, its alerts on stdout.
    return subprocess.run([sys.executable, "-c", "from iamgraph.cli import main; main()", *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False)


def _echoed(output: str) -> list[tuple[str, str]]:
    """(command, what the demo printed under it) for every ``$ iamgraph ...`` line of the demo's output."""
    blocks: list[tuple[str, list[str]]] = []
    open_block = False
    for line in output.splitlines():
        if line.startswith("$ iamgraph "):
            blocks.append((line[2:], []))
            open_block = True
        elif RULE.match(line):
            open_block = False
        elif open_block:
            blocks[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in blocks]


def _subcommand(command: str) -> str:
    words = shlex.split(command)[1:]
    return " ".join(words[:2]) if words[0] in ("demo-org", "snapshot", "usage") else words[0]


def test_every_command_the_demo_echoes_prints_what_the_demo_showed(tmp_path: Path) -> None:
    first, second = tmp_path / "run-a", tmp_path / "run-b"
    shown = _iamgraph("demo", "--out", str(first), cwd=tmp_path)
    assert shown.returncode == 0, shown.stdout[-3000:]
    assert "40/40 planted checks passed" in shown.stdout
    steps = _echoed(shown.stdout)
    assert [_subcommand(c) for c, _ in steps] == ECHOED

    for command, printed in steps:
        args = shlex.split(command.replace(str(first), str(second)))[1:]
        run = _iamgraph(*args, cwd=tmp_path)
        assert run.returncode == 0, f"{command}\n{run.stdout[-3000:]}"
        assert printed.strip(), f"the demo printed nothing under {command}"
        assert run.stdout.replace(str(second), str(first)).rstrip("\n") == printed.rstrip("\n"), command

    # The report the echoed command writes is the demo's report.
    html = (second / "report.html").read_text(encoding="utf-8")
    assert html.replace(str(second), str(first)) == (first / "report.html").read_text(encoding="utf-8")
