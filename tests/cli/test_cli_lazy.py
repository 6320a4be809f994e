"""A command imports what it runs, not every command's dependencies: ``iamgraph recommend`` does not load boto3,
httpx, networkx or FastAPI, while ``iamgraph --help`` still lists every command with its help. Each run is a fresh
interpreter (a subprocess), since this test process has long imported everything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iamgraph.cli.app import COMMAND_MODULES, app
from iamgraph.snapshot.io import write_snapshot
from iamgraph.snapshot.model import Snapshot
from iamgraph.usage.store import UsageStore

ACCT = "111122223333"
ROLE = f"arn:aws:iam::{ACCT}:role/app"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}
HEAVY = ("boto3", "botocore.session", "httpx", "networkx", "fastapi", "uvicorn")

# Runs the CLI's entry point as the installed script does, then writes the names of the loaded modules.
_RUNNER = """
import json, sys
from iamgraph.cli import main
out, sys.argv = sys.argv[1], ["iamgraph", *sys.argv[2:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
with open(out, "w") as fh:
    json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""


def _run(tmp: Path, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp / "modules.json"
    res = subprocess.run([sys.executable, "-c", _RUNNER, str(out), *args], capture_output=True, text=True,
                         env=_env(), timeout=600)
    assert out.is_file(), res.stderr
    return json.loads(out.read_text()), res.stdout + res.stderr


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "COLUMNS": "200"}


def test_the_command_table_names_the_module_that_registers_each_command() -> None:
    import importlib

    for module in dict.fromkeys(COMMAND_MODULES.values()):
        importlib.import_module(module)
    registered = {c.name or c.callback.__name__: c.callback.__module__
                  for c in app.registered_commands if c.callback is not None}
    for g in app.registered_groups:
        assert g.typer_instance is not None and g.name is not None
        modules = {c.callback.__module__ for c in g.typer_instance.registered_commands if c.callback is not None}
        assert len(modules) == 1, (g.name, modules)
        registered[g.name] = modules.pop()
    assert registered == COMMAND_MODULES


def test_recommend_loads_neither_boto3_nor_the_graph_nor_http_and_still_lints(tmp_path: Path) -> None:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::data/*"}]}
    snap = Snapshot.model_validate({
        "collected_at": "2026-11-15T00:00:00Z",
        "accounts": [{"account_id": ACCT, "roles": [{"arn": ROLE, "name": "app", "role_id": "AROA",
                                                     "trust_policy": TRUST, "inline_policies": [
                                                         {"name": "data", "document": doc}]}]}],
    })
    write_snapshot(snap, tmp_path / "s.json")
    with UsageStore(tmp_path / "u.duckdb") as store:
        store.merge_usage([{"principal_arn": ROLE, "identity_type": "AssumedRole", "action": "s3:GetObject",
                            "resource": "arn:aws:s3:::data/a.csv", "source": "cloudtrail", "outcome": "allowed",
                            "invoked_by": "", "permission_set": None, "account_id": ACCT, "certain": True,
                            "first_seen": "2026-11-01T00:00:00Z", "last_seen": "2026-11-02T00:00:00Z",
                            "count": 1}])
    got, output = _run(tmp_path, "recommend", "-s", str(tmp_path / "s.json"), "--db", str(tmp_path / "u.duckdb"),
                       "-p", ROLE, "--as-of", "2026-11-15T00:00:00Z", "--accept-incomplete-evidence", "--json")
    assert got["code"] == 0, output
    recs = json.loads(output[output.index("["):])
    (prop,) = recs[0]["proposals"]
    assert prop["status"] == "emitted" and "s3:DeleteObject" in prop["removed_actions"], prop
    loaded = set(got["modules"])
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    # The proposal was linted (parliament ran), and only recommend's command module was imported.
    assert "parliament" in loaded
    assert {m for m in loaded if m.startswith("iamgraph.cli.")} <= {
        "iamgraph.cli.app", "iamgraph.cli.recommend", "iamgraph.cli.inputs", "iamgraph.cli.progress"}


@pytest.mark.parametrize("args", [("--help",), ()])
def test_help_still_lists_every_command_with_its_help(tmp_path: Path, args: tuple[str, ...]) -> None:
    got, output = _run(tmp_path, *args)
    assert got["code"] in (0, 2), output  # bare `iamgraph` shows the help and exits 2 (click's no-args rule)
    lines = output.splitlines()
    for name in COMMAND_MODULES:
        assert any(line.strip("│ ").startswith(name + " ") for line in lines), name
    assert "Separation-of-duties conflicts" in output and "Propose trimmed policies" in output
    assert "Usage evidence: ingest CloudTrail" in output  # a group's help, too


def test_a_mistyped_command_is_still_matched_against_every_command(tmp_path: Path) -> None:
    got, output = _run(tmp_path, "blast-radios")
    assert got["code"] == 2
    assert "Did you mean 'blast-radius'?" in output, output
