"""The CLI: usage ingest and unused, in table, JSON and CSV forms, and their error messages."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from test_usage_unused import _snapshot
from typer.testing import CliRunner
from usage_ct_logs import event, log_path, role_identity, write_log

from iamgraph.cli import app
from iamgraph.snapshot.io import write_snapshot

runner = CliRunner()


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    logs = tmp_path / "logs"
    write_log(log_path(logs, "2024-03-05", "a"), [event(role_identity("app"), "iam.amazonaws.com", "ListRoles"),
                                                   event(role_identity("app"), "bogus.amazonaws.com", "Zap")])
    bad = log_path(logs, "2024-03-05", "bad")
    bad.write_bytes(b"garbage")
    snap = tmp_path / "snap.json.gz"
    write_snapshot(_snapshot(), snap)
    return logs, snap, tmp_path / "usage.duckdb"


def test_ingest_then_unused(tmp_path: Path) -> None:
    logs, snap, db = _setup(tmp_path)
    res = runner.invoke(app, ["usage", "ingest", "--db", str(db), "--cloudtrail", str(logs), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["cloudtrail"]["files_ingested"] == 1 and out["cloudtrail"]["files_bad"] == 1
    assert {"kind": "unmapped", "detail": "bogus.amazonaws.com Zap", "count": 1} in out["problems"]
    res = runner.invoke(app, ["usage", "ingest", "--db", str(db), "--cloudtrail", str(logs)])
    assert res.exit_code == 0 and "2 already done" in res.output, res.output

    res = runner.invoke(app, ["unused", "--snapshot", str(snap), "--db", str(db), "--json", "--as-of", "2024-04-01"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["window_start"].startswith("2024-01-02") and data["window_end"].startswith("2024-04-01")
    kinds = {(f["kind"], f["subject"]) for f in data["findings"]}
    assert ("unused-access-key", "access_key_1") in kinds
    # app used iam:ListRoles on 2024-03-05, inside the window: iam is not an unused service for it.
    assert not any(f["kind"] == "unused-service" and f["subject"] == "iam" and f["principal_arn"].endswith("/app")
                   for f in data["findings"])
    assert all(f["severity"] != "info" for f in data["findings"])  # default --min-severity low

    res = runner.invoke(app, ["unused", "--snapshot", str(snap), "--db", str(db), "--csv", "--principal", "bob"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert rows and {r["principal_arn"].rsplit("/", 1)[-1] for r in rows} == {"bob"}

    res = runner.invoke(app, ["unused", "--snapshot", str(snap), "--db", str(db)])
    # Summary line first (the table follows, bounded).
    assert res.exit_code == 0 and " findings over " in res.output.splitlines()[0], res.output


def test_errors_are_messages(tmp_path: Path) -> None:
    res = runner.invoke(app, ["usage", "ingest", "--db", str(tmp_path / "u.duckdb"), "--cloudtrail",
                              str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no such directory" in res.output
    res = runner.invoke(app, ["usage", "ingest", "--db", str(tmp_path / "u.duckdb"), "--cloudtrail", "x",
                              "--since", "yesterday"])
    assert res.exit_code == 2 and "--since" in res.output
    res = runner.invoke(app, ["unused", "--snapshot", str(tmp_path / "nosnap.json"), "--db", "x.duckdb"])
    assert res.exit_code == 2 and "nosnap.json" in res.output
    snap = tmp_path / "snap.json.gz"
    write_snapshot(_snapshot(), snap)
    res = runner.invoke(app, ["unused", "--snapshot", str(snap), "--db", str(tmp_path / "none.duckdb")])
    assert res.exit_code == 2 and "no such usage database" in res.output
    res = runner.invoke(app, ["usage", "ingest", "--db", str(tmp_path / "u.duckdb"), "--engine", "athena",
                              "--database", "d", "--table", "t", "--partition-style", "weekly"])
    assert res.exit_code == 2 and "--partition-style" in res.output


def test_unused_admin_summary_and_detail(tmp_path: Path) -> None:
    from test_usage_unused import _doc, _role

    logs = tmp_path / "logs"
    write_log(log_path(logs, "2024-03-05", "a"), [event(role_identity("admin"), "iam.amazonaws.com", "ListRoles")])
    model = _snapshot()
    model.accounts[0].roles.append(_role("admin", _doc("*")))
    snap, db = tmp_path / "snap.json.gz", tmp_path / "usage.duckdb"
    write_snapshot(model, snap)
    assert runner.invoke(app, ["usage", "ingest", "--db", str(db), "--cloudtrail", str(logs)]).exit_code == 0
    base = ["unused", "--snapshot", str(snap), "--db", str(db), "--as-of", "2024-04-01", "--principal", "admin"]
    res = runner.invoke(app, [*base, "--csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert [r["kind"] for r in rows] == ["admin-grant"]
    assert "ec2" in rows[0]["services"].split() and "iam" not in rows[0]["services"].split()
    res = runner.invoke(app, [*base, "--detail", "--json"])
    assert res.exit_code == 0, res.output
    kinds = {f["kind"] for f in json.loads(res.output)["findings"]}
    assert "admin-grant" not in kinds and {"unused-service", "unused-action"} <= kinds


def test_ingest_workers_option_picks_the_processes_and_gives_the_same_store(tmp_path: Path, monkeypatch: Any) -> None:
    """``--workers 1`` reads every file in this process; ``--workers 2`` hands files to worker processes (the pool
    starting at the first byte here, not past 16 MB); both stores hold the same rows. A negative count is a
    one-line error, exit 2."""
    from test_usage_parallel import _content, generate

    import iamgraph.usage.ingest as ingest_module
    from iamgraph.usage.store import UsageStore

    generate(tmp_path / "logs")
    monkeypatch.setattr(ingest_module, "PARALLEL_MIN_BYTES", 0)
    readers: dict[str, set[int]] = {}
    real = ingest_module.read_in_order

    def watched(files: Any, workers: int, **kw: Any) -> Any:
        for f, read in real(files, workers, **kw):
            readers.setdefault(run, set()).add(read.pid)
            yield f, read

    monkeypatch.setattr(ingest_module, "read_in_order", watched)
    contents = {}
    for run in ("1", "2"):
        db = tmp_path / f"w{run}.duckdb"
        res = runner.invoke(app, ["usage", "ingest", "--db", str(db), "--cloudtrail", str(tmp_path / "logs"),
                                  "--workers", run, "--json"])
        assert res.exit_code == 0, res.output
        with UsageStore(db, read_only=True) as store:
            contents[run] = _content(store)
    assert readers["1"] == {os.getpid()}
    assert readers["2"] - {os.getpid()}, "no file was decoded by a worker process"
    assert len(contents["1"]["usage"]) > 20 and contents["2"] == contents["1"]

    res = runner.invoke(app, ["usage", "ingest", "--db", str(tmp_path / "x.duckdb"), "--cloudtrail",
                              str(tmp_path / "logs"), "--workers", "-1"])
    assert res.exit_code == 2 and "--workers" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.duckdb").exists()
