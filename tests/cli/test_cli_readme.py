"""The README's command table, run as written on the demo organization: each placeholder (S, ARN, DIR,
AKIA..., plan.json, ...) is replaced by a real file or name of the demo, nothing else is changed.

Rows that need a live AWS organization (collect) or files the demo does not have (snapshot import of an
`aws iam get-account-authorization-details` export) are skipped with the reason; `token create` then
`serve` is run for real in test_cli_newcomer.py."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from cli_helpers import run_cli

from iamgraph.demo import DemoResult

ROOT = Path(__file__).resolve().parents[2]
JANE = "arn:aws:iam::903241987127:user/contractor-jane"
MONITORING = "arn:aws:iam::903241987127:role/ThirdPartyMonitoring"
PROD_ADMIN = "arn:aws:iam::903241987127:role/prod-admin"
PII_OBJECT = "arn:aws:s3:::examplecorp-customer-pii-903241987127/exports/x.csv"
KEY = "arn:aws:kms:us-east-1:903241987127:key/5ffb2468-03d7-45a3-96b2-571dd7c03bd0"
SKIP = {"collect": "needs a live AWS organization", "snapshot import": "needs AWS CLI exports",
        "token create": "run for real with serve in test_cli_newcomer.py"}


def readme_commands() -> list[str]:
    rows = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.startswith("| ")]
    out: list[str] = []
    for row in rows:
        out += [c.replace("\\|", "|") for c in re.findall(r"`(iamgraph [^`]+)`", row)]
    return out


def _fill(cmd: str, demo: DemoResult) -> list[str]:
    cmd = re.sub(r" \[[^\]]*\]", "", cmd)  # optional parts in brackets are left out
    cmd = cmd.replace("DIR|s3://bucket/prefix", "DIR")
    words = shlex.split(cmd)[1:]
    out: list[str] = []
    for i, w in enumerate(words):
        flag = words[i - 1] if i else ""
        command = words[0]
        if w in ("S", "snap.json.gz"):
            w = "snap.json.gz"
        elif w == "DIR":
            w = str(demo.cloudtrail_root)
        elif w == "AKIA...":
            w = "AKIAXN4OPQYPQZWJ4R42"  # contractor-jane's key in the demo
        elif w == "ARN" and flag == "--principal":
            w = JANE if command in ("simulate", "recommend") else MONITORING
        elif w == "ARN" and flag == "--resource":
            w = KEY if command == "who-can" else PII_OBJECT
        elif w == "A":
            w = JANE
        elif w == "B":
            w = PROD_ADMIN
        out.append(w)
    return out


@pytest.mark.slow
def test_every_row_of_the_readme_table_runs_as_written(demo: DemoResult, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(demo.snapshot, tmp_path / "snap.json.gz")
    shutil.copy(ROOT / "tests" / "check" / "data" / "plan.json", tmp_path / "plan.json")
    (tmp_path / "requests.jsonl").write_text(json.dumps({
        "id": 1, "request": {"principal": "arn:aws:iam::111122223333:user/a", "action": "s3:GetObject",
                             "resource": "arn:aws:s3:::b/k"},
        "policies": {"identity": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}]}}) + "\n")
    (tmp_path / "grant.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::examplecorp-shared-reports-*"}]}))
    shutil.copy(demo.snapshot, tmp_path / "old.json.gz")
    shutil.copy(demo.snapshot, tmp_path / "new.json.gz")
    ran = []
    for cmd in readme_commands():
        if any(cmd.startswith(f"iamgraph {k}") for k in SKIP) or cmd.startswith("iamgraph serve"):
            continue
        args = _fill(cmd, demo)
        r = run_cli(*args)
        # Answers, not failures: check exits 1 on findings at the threshold, diff 1 on a change, and
        # request evaluate 1 for review and 3 for deny.
        answers = {"check": (0, 1), "diff": (0, 1), "request": (0, 1, 3)}.get(args[0], (0,))
        assert r.code in answers, f"{cmd}\n{r.output}"
        assert "Traceback" not in r.output and "error:" not in r.stderr, cmd
        ran.append(args[0])
    assert {"simulate", "who-can", "what-can", "privesc", "path", "blast-radius", "exposure", "sensitive", "sod",
            "usage", "unused", "recommend", "check", "report", "detect", "request", "diff"} <= set(ran)
    assert (tmp_path / "report.html").stat().st_size > 10_000
    assert json.loads((tmp_path / "out.sarif").read_text())["version"] == "2.1.0"
