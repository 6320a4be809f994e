"""``iamgraph serve --config`` carries the config file's ``evidence.logged`` section to the unused and recommendation
endpoints, as ``--config`` does for ``iamgraph unused`` and ``iamgraph recommend``; asked over real HTTP of a real
``iamgraph serve`` (uvicorn on loopback). The evidence is tests/logged_scenario.py's: the role's unused
``s3:PutObject`` may have been called in a region whose trail logs no S3 data events, so it is kept, unless the
configuration says that region logs them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from api_helpers import free_port, running_server
from logged_scenario import ROLE, write_scenario


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_scenario(tmp_path_factory.mktemp("api-config"))


def _serve_cmd(files: dict[str, Path], port: int, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from iamgraph.cli import main; main()", "serve", "--snapshot",
            str(files["snapshot"]), "--db", str(files["db"]), "--allow-anonymous-local", "--host", "127.0.0.1",
            "--port", str(port), *extra]


@contextmanager
def _server(files: dict[str, Path], *extra: str) -> Iterator[str]:
    port = free_port()
    # cwd: the fixture's directory holds an iamgraph.yaml, which serve would read by default; run elsewhere.
    with running_server(_serve_cmd(files, port, *extra), port, cwd=files["root"].parent) as base:
        yield base


def _answers(base: str) -> tuple[set[str], dict[str, Any]]:
    arn = quote(ROLE, safe="")
    r = httpx.get(f"{base}/v1/principals/{arn}/unused", timeout=120.0)
    assert r.status_code == 200, r.text
    # An unused action of a used service is named; a service none of whose actions was used, by its prefix.
    unused = {f["subject"] for f in r.json()["findings"] if f["kind"] in ("unused-action", "unused-service")}
    r = httpx.get(f"{base}/v1/principals/{arn}/recommendation", timeout=120.0)
    assert r.status_code == 200, r.text
    (proposal,) = r.json()["recommendation"]["proposals"]
    return unused, proposal


def test_serve_config_says_what_a_region_logs_to_unused_and_recommendation(files: dict[str, Path]) -> None:
    with _server(files) as base:
        unused, proposal = _answers(base)
    # Without the configuration: PutObject may have been called in eu-west-1, unseen; ListQueues is logged there.
    assert "sqs" in unused and "s3:PutObject" not in unused
    assert proposal["status"] == "emitted", proposal
    assert "sqs:ListQueues" in proposal["removed_actions"] and "s3:PutObject" not in proposal["removed_actions"]
    with _server(files, "--config", str(files["config"])) as base:
        unused, proposal = _answers(base)
    assert {"sqs", "s3:PutObject"} <= unused
    assert proposal["status"] == "emitted", proposal
    assert {"sqs:ListQueues", "s3:PutObject"} <= set(proposal["removed_actions"])


def test_serve_reads_iamgraph_yaml_of_its_directory_by_default(files: dict[str, Path]) -> None:
    port = free_port()
    with running_server(_serve_cmd(files, port), port, cwd=files["root"]) as base:
        unused, _ = _answers(base)
    assert "s3:PutObject" in unused


def test_a_bad_config_file_stops_serve_before_it_starts_with_one_line(files: dict[str, Path]) -> None:
    res = subprocess.run(_serve_cmd(files, free_port(), "--config", str(files["bad"])), capture_output=True,
                         text=True, timeout=600, cwd=files["root"].parent)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.yaml" in lines[0] and "evidence.logged.12345" in lines[0], res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
