"""The text output carries every note and warning of the JSON output, and ``-o`` writes valid files for proposals
that delete a policy (a CloudFormation template needs at least one resource:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resources-section-structure.html)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_all
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.snapshot.io import write_snapshot
from iamgraph.snapshot.model import Snapshot
from iamgraph.usage.store import FileEntry, UsageStore

ACCT = "111122223333"
ROLE = f"arn:aws:iam::{ACCT}:role/app"
UNUSED = f"arn:aws:iam::{ACCT}:policy/unused"
B = "arn:aws:s3:::data"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _row(action: str, resource: str = "") -> dict[str, Any]:
    return {"principal_arn": ROLE, "identity_type": "AssumedRole", "action": action, "resource": resource,
            "source": "cloudtrail", "outcome": "allowed", "invoked_by": "", "permission_set": None,
            "account_id": ACCT, "certain": True, "first_seen": "2026-11-01T00:00:00Z",
            "last_seen": "2026-11-02T00:00:00Z", "count": 3}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("output")
    snap = Snapshot.model_validate({
        "collected_at": "2026-11-15T00:00:00Z",
        "accounts": [{"account_id": ACCT,
                      "policies": [{"arn": UNUSED, "name": "unused", "default_version_id": "v1", "versions": [
                          {"version_id": "v1", "is_default": True,
                           "document": doc({"Effect": "Allow", "Action": "sqs:PurgeQueue", "Resource": "*"})}]}],
                      "roles": [{"arn": ROLE, "name": "app", "role_id": "AROA", "trust_policy": TRUST,
                                 "attached_managed_policies": [UNUSED], "inline_policies": [
                                     {"name": "data", "document": doc(
                                         {"Effect": "Allow", "Action": ["s3:GetObject", "s3:DeleteObject"],
                                          "Resource": f"{B}/*"})},
                                     {"name": "admin", "document": doc(
                                         {"Sid": "KeepBreakGlass", "Effect": "Allow", "Action": "iam:CreateAccessKey",
                                          "Resource": "*"},
                                         {"Effect": "Allow", "Action": ["iam:AttachRolePolicy", "iam:DeleteRole"],
                                          "Resource": "*"})}]}]}],
    })
    write_snapshot(snap, root / "snapshot.json")
    store = UsageStore(root / "usage.duckdb")
    store.merge_usage([_row("s3:GetObject", f"{B}/reports/2026/a.csv"), _row("s3:GetObject", f"{B}/reports/b.csv"),
                       _row("iam:AttachRolePolicy")])
    # The trail's files start late: a coverage gap, accepted with --accept-incomplete-evidence (still reported).
    store.record_files([
        FileEntry(path=f"AWSLogs/{ACCT}/CloudTrail/us-east-1/{d}/{ACCT}_CloudTrail_us-east-1_x.json.gz", size=1,
                  mtime=None, sha256=d, status="ok") for d in ("2026/09/01", "2026/11/15")])
    store.close()
    yield root / "snapshot.json", root / "usage.duckdb"


def _run(files: tuple[Path, Path], *extra: str) -> str:
    snap, db = files
    res = CliRunner().invoke(app, ["recommend", "--snapshot", str(snap), "--db", str(db), "--principal", ROLE,
                                   "--as-of", "2026-11-15T00:00:00Z", "--accept-incomplete-evidence", *extra],
                             env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    return res.output


def _notes_and_warnings(rec: dict[str, Any]) -> list[str]:
    out = list(rec["notes"])
    for p in rec["proposals"]:
        out += [p["reason"], *p["notes"], *p["left_alone"], *(g["detail"] for g in p["coverage_gaps"])]
        out += [f"{f['action']}: {f['reason']}" for f in p["flagged"]]
        v = p["verification"] or {}
        out += [*v.get("replay_failures", ()), *v.get("new_access", ()), *v.get("new_lint_findings", ())]
    return [s for s in out if s]


def test_text_shows_every_note_and_warning_of_the_json(files: tuple[Path, Path]) -> None:
    (rec,) = json.loads(_run(files, "--json"))
    wanted = _notes_and_warnings(rec)
    statuses = {p["name"]: p["status"] for p in rec["proposals"]}
    assert statuses == {"data": "emitted", "admin": "emitted", "unused": "emitted"}
    # The scenario carries each kind of message: a coverage gap, an S3 prefix note, a kept statement, flags.
    kinds = {"gap": any(p["coverage_gaps"] for p in rec["proposals"]),
             "note": any(p["notes"] for p in rec["proposals"]),
             "left_alone": any(p["left_alone"] for p in rec["proposals"]),
             "flagged": any(p["flagged"] for p in rec["proposals"])}
    assert all(kinds.values()), kinds
    text = _run(files)
    for message in wanted:
        assert message in text, message
    assert "to remove: delete the customer managed policy " + UNUSED in text


def test_output_files_for_a_deletion_are_valid(files: tuple[Path, Path], tmp_path: Path) -> None:
    cfn = tmp_path / "cfn"
    _run(files, "--format", "cloudformation", "-o", str(cfn))
    written = {f.name: json.loads(f.read_text()) for f in cfn.iterdir()}
    removal = written["unused.cfn.json"]
    assert removal["Resources"] and removal["Metadata"]["iamgraph"]["remove"] == UNUSED
    assert "delete the customer managed policy" in removal["Description"]
    # cfn-lint (through moto[server], a test dependency) finds no error or warning in any template written, the
    # removal included. It does not itself reject an empty Resources section, hence the check above.
    for name, template in written.items():
        problems = [str(m) for m in lint_all(json.dumps(template)) if m.rule.id[:1] in ("E", "W")]
        assert not problems, (name, problems)
    tf = tmp_path / "tf"
    _run(files, "--format", "terraform", "-o", str(tf))
    text = (tf / "unused.tf").read_text()
    assert text.startswith("# iamgraph: delete the customer managed policy " + UNUSED)
    assert all(line.startswith("#") for line in text.splitlines())
    assert 'data "aws_iam_policy_document"' in (tf / "data.tf").read_text()
