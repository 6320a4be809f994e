"""The entry point skips the collections CPython runs over the whole heap at interpreter exit (``gc.freeze`` in an
``atexit`` handler), only at the exit of the process, after the command's files are complete; a test that calls
``main`` in-process keeps its collector working."""

from __future__ import annotations

import atexit
import gc
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from iamgraph.cli import _no_collections_at_exit, main
from iamgraph.snapshot.io import write_snapshot
from iamgraph.snapshot.model import Snapshot

ACCT = "111122223333"
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}

# Registered before main runs, so it runs after main's handler (atexit runs handlers last-in, first-out): it sees
# what the process looks like when CPython starts tearing it down.
_RUNNER = """
import atexit, gc, json, os, sys
from pathlib import Path
out, html, sys.argv = sys.argv[1], Path(sys.argv[2]), ["iamgraph", *sys.argv[3:]]

def last() -> None:
    text = html.read_text() if html.is_file() else ""
    with open(out, "w") as fh:
        json.dump({"frozen": gc.get_freeze_count(), "html_complete": text.rstrip().endswith("</html>"),
                   "mode": os.stat(html).st_mode & 0o777 if html.is_file() else None}, fh)

atexit.register(last)
from iamgraph.cli import main
main()
"""


def _snapshot(tmp: Path) -> Path:
    snap = Snapshot.model_validate({
        "collected_at": "2026-11-15T00:00:00Z",
        "accounts": [{"account_id": ACCT, "roles": [{
            "arn": f"arn:aws:iam::{ACCT}:role/admin", "name": "admin", "role_id": "AROAADMIN",
            "trust_policy": TRUST, "inline_policies": [{"name": "all", "document": ADMIN}]}]}],
    })
    path = tmp / "s.json"
    write_snapshot(snap, path)
    return path


def test_at_exit_the_heap_is_frozen_after_the_report_is_written_whole(tmp_path: Path) -> None:
    out, html = tmp_path / "exit.json", tmp_path / "r.html"
    res = subprocess.run([sys.executable, "-c", _RUNNER, str(out), str(html), "report", "--snapshot",
                          str(_snapshot(tmp_path)), "--html", str(html)], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    seen = json.loads(out.read_text())
    assert seen["frozen"] > 0  # main's handler ran before the last one: the teardown's collections have no work
    assert seen["html_complete"] and seen["mode"] == stat.S_IRUSR | stat.S_IWUSR
    assert "admin" in html.read_text()


def test_calling_main_in_process_leaves_the_collector_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["iamgraph", "version"])
    before = gc.get_freeze_count()
    try:
        with pytest.raises(SystemExit) as done:
            main()
        assert done.value.code == 0
        assert gc.get_freeze_count() == before  # nothing frozen until this interpreter exits
        gc.collect()  # and the collector still collects
    finally:
        atexit.unregister(_no_collections_at_exit)
