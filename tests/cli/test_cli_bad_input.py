"""Every mistake a new user makes gives one line and exit 2: never a confident answer about something that does
not exist, never a traceback, and never a file left behind (issue: strict input, no tracebacks)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import Run, run_cli

from iamgraph.demo import DemoResult

JANE = "arn:aws:iam::903241987127:user/contractor-jane"
PII = "arn:aws:s3:::examplecorp-customer-pii-903241987127"


def _one_error_line(r: Run) -> str:
    assert r.code == 2, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def _policy(tmp: Path, statement: dict[str, object]) -> Path:
    p = tmp / "policy.json"
    p.write_text(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    return p


# (name, argv builder, words the one line must hold)
CASES: list[tuple[str, Callable[[DemoResult, Path], list[str | Path]], tuple[str, ...]]] = [
    ("simulate: action not in the catalog",
     lambda d, t: ["simulate", "-s", d.snapshot, "-p", JANE, "-a", "s3:GetObjekt", "-r", PII],
     ("--action", "s3:GetObjekt", "did you mean", "s3:GetObject")),
    ("simulate: principal that is not an ARN nor a name of the snapshot",
     lambda d, t: ["simulate", "-s", d.snapshot, "-p", "notanarn", "-a", "s3:GetObject", "-r", PII],
     ("--principal", "notanarn")),
    ("simulate: IAM user the snapshot does not hold",
     lambda d, t: ["simulate", "-s", d.snapshot, "-p", "arn:aws:iam::903241987127:user/ghost", "-a", "s3:GetObject",
                   "-r", PII], ("ghost",)),
    ("simulate: resource that is not an ARN",
     lambda d, t: ["simulate", "-s", d.snapshot, "-p", JANE, "-a", "s3:GetObject", "-r", "arn:aws:s3"],
     ("--resource", "not an ARN")),
    ("simulate: bucket the snapshot does not hold",
     lambda d, t: ["simulate", "-s", d.snapshot, "-p", JANE, "-a", "s3:GetObject", "-r", "arn:aws:s3:::no-such/k"],
     ("--resource", "no bucket no-such")),
    ("simulate: role of an account of the snapshot that it does not hold",
     lambda d, t: ["simulate", "-s", d.snapshot, "-p", JANE, "-a", "iam:GetRole", "-r",
                   "arn:aws:iam::903241987127:role/prod-admn"], ("prod-admn", "did you mean", "role/prod-admin")),
    ("who-can: action not in the catalog",
     lambda d, t: ["who-can", "-s", d.snapshot, "-r", PII, "-a", "s3:GetObjekt"], ("--action", "s3:GetObject")),
    ("who-can: pattern that matches no action",
     lambda d, t: ["who-can", "-s", d.snapshot, "-r", PII, "-a", "s3:Gxt*"], ("matches no action",)),
    ("who-can: truncated ARN",
     lambda d, t: ["who-can", "-s", d.snapshot, "-r", "arn:aws:s3", "-a", "s3:GetObject"], ("not an ARN",)),
    ("what-can: unknown principal",
     lambda d, t: ["what-can", "-s", d.snapshot, "-p", "ghost"], ("--principal", "ghost")),
    ("path: unknown --to",
     lambda d, t: ["path", "-s", d.snapshot, "--from", JANE, "--to", "role/nobody"], ("--to", "role/nobody")),
    ("unused: unknown principal",
     lambda d, t: ["unused", "-s", d.snapshot, "--db", d.out_dir / "usage-missing.duckdb", "-p", "ghost"],
     ("ghost",)),
    ("unused: a snapshot given as --db",
     lambda d, t: ["unused", "-s", d.snapshot, "--db", d.snapshot], ("--db", "not a usage store", "--snapshot")),
    ("check: Effect typo",
     lambda d, t: ["check", "--after", _policy(t, {"Effect": "Alow", "Action": "s3:GetObject", "Resource": "*"})],
     ("Effect", "Alow")),
    ("check: unknown statement key",
     lambda d, t: ["check", "--after", _policy(t, {"Effect": "Allow", "Actions": "s3:GetObject", "Resource": "*"})],
     ("Actions",)),
    ("usage ingest: empty CloudTrail folder",
     lambda d, t: ["usage", "ingest", "--db", t / "u.duckdb", "--cloudtrail", _mkdir(t / "empty")],
     ("--cloudtrail", "no CloudTrail log files")),
    ("usage ingest: missing CloudTrail folder",
     lambda d, t: ["usage", "ingest", "--db", t / "u.duckdb", "--cloudtrail", t / "nope"],
     ("--cloudtrail", "no such directory")),
    ("usage ingest: a folder whose .json.gz files are not CloudTrail logs",
     lambda d, t: ["usage", "ingest", "--db", t / "u.duckdb", "--cloudtrail", _not_a_log(t / "exports")],
     ("--cloudtrail", "is a readable CloudTrail log file", "not a CloudTrail log file", "Records")),
    ("sensitive: a tag without a key",
     lambda d, t: ["sensitive", "-s", d.snapshot, "--tag", "=PII"], ("--tag", "no tag key")),
    ("report: a sensitive tag without a key",
     lambda d, t: ["report", "-s", d.snapshot, "--html", t / "r.html", "--sensitive-tag", "="],
     ("--sensitive-tag", "no tag key")),
    ("request evaluate: a file that is not a policy document",
     lambda d, t: ["request", "evaluate", "-s", d.snapshot, "-p", JANE, "--policy",
                   _json(t / "auth.json", {"UserDetailList": [], "Statement": []})],
     ("auth.json", "UserDetailList")),
    ("token create: a token file where nothing can be written",
     lambda d, t: ["token", "create", "--name", "x", "--token-file", "/proc/iamgraph-tokens.json"],
     ("--token-file /proc/iamgraph-tokens.json",)),
    ("report: --html is a directory",
     lambda d, t: ["report", "-s", d.snapshot, "--html", t], ("--html", "is a directory")),
    ("report: --html in a missing directory",
     lambda d, t: ["report", "-s", d.snapshot, "--html", t / "no" / "r.html"], ("--html", "no such directory")),
    ("recommend: -o an existing file",
     lambda d, t: ["recommend", "-s", d.snapshot, "--db", d.snapshot, "-p", JANE, "-o", _touch(t / "f")],
     ("-o", "not a directory")),
    ("simulate --batch: -o where nothing can be written",
     lambda d, t: ["simulate", "--batch", _batch(t), "-o", "/proc/x"], ("--out /proc/x", "cannot write")),
    ("a usage store given as --snapshot",
     lambda d, t: ["privesc", "-s", d.out_dir / "usage.duckdb"] if (d.out_dir / "usage.duckdb").exists()
     else ["privesc", "-s", _duckdb(t)], ("--snapshot", "usage store")),
]


def _not_a_log(p: Path) -> Path:
    """A folder holding a gzip'd JSON document that is not a CloudTrail log file (no Records array): a snapshot,
    an export. https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-examples.html"""
    import gzip

    p.mkdir(exist_ok=True)
    (p / "snapshot.json.gz").write_bytes(gzip.compress(json.dumps({"schema_version": "1.1"}).encode()))
    return p


def _json(p: Path, doc: object) -> Path:
    p.write_text(json.dumps(doc))
    return p


def _mkdir(p: Path) -> Path:
    p.mkdir(exist_ok=True)
    return p


def _touch(p: Path) -> Path:
    p.write_text("x")
    return p


def _batch(t: Path) -> Path:
    p = t / "b.jsonl"
    p.write_text(json.dumps({"id": 1, "request": {"principal": "arn:aws:iam::111122223333:user/a",
                                                  "action": "s3:GetObject", "resource": "*"},
                             "policies": {"identity": []}}) + "\n")
    return p


def _duckdb(t: Path) -> Path:
    from iamgraph.usage.store import UsageStore

    p = t / "store.duckdb"
    UsageStore(p).close()
    return p


@pytest.mark.parametrize(("name", "argv", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(name: str, argv: Callable[[DemoResult, Path], list[str | Path]],
                                          words: tuple[str, ...], demo: DemoResult, tmp_path: Path) -> None:
    args = argv(demo, tmp_path)
    before = set(tmp_path.rglob("*"))
    line = _one_error_line(run_cli(*args))
    for w in words:
        assert w in line, line
    # Nothing was written: no store for an ingest that failed, no partial report.
    assert {p for p in set(tmp_path.rglob("*")) - before if p.suffix in (".duckdb", ".html", ".wal")} == set()


def test_ingest_from_s3_without_credentials_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    # No instance metadata: the credential chain must not reach beyond loopback.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    line = _one_error_line(run_cli("usage", "ingest", "--db", tmp_path / "u.duckdb", "--cloudtrail",
                                   "s3://bucket/prefix"))
    assert "credentials" in line
    assert not (tmp_path / "u.duckdb").exists()


def test_an_internal_error_is_one_line_naming_the_trace_file(demo: DemoResult, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    import iamgraph.cli.simulate as sim

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("planted failure")

    monkeypatch.setattr(sim, "load_snapshot", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    r = run_cli("simulate", "-s", demo.snapshot, "-p", JANE, "-a", "s3:GetObject", "-r", PII)
    assert r.code == 70 and "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "internal error: RuntimeError: planted failure" in lines[0]
    traces = list(tmp_path.glob("iamgraph-error-*.txt"))
    assert len(traces) == 1 and str(traces[0]) in lines[0]
    assert "Traceback" in traces[0].read_text() and traces[0].stat().st_mode & 0o777 == 0o600
    r = run_cli("--debug", "simulate", "-s", demo.snapshot, "-p", JANE, "-a", "s3:GetObject", "-r", PII)
    assert r.code == 70 and "Traceback" in r.stderr


def test_check_gate_fails_on_a_misspelt_policy_rather_than_passing(tmp_path: Path) -> None:
    """Regression: "Alow" used to give one medium IG009 finding under the high threshold, exit 0."""
    p = _policy(tmp_path, {"Effect": "Alow", "Action": "s3:GetObject", "Resource": "*"})
    for fmt in ("text", "json", "sarif"):
        r = run_cli("check", "--after", p, "--format", fmt)
        assert r.code == 2, r.output


def test_the_api_answers_400_with_the_clis_message(demo: DemoResult) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings

    client = TestClient(create_app(Settings(snapshot=demo.snapshot, allow_anonymous_local=True)),
                        client=("127.0.0.1", 50000))
    cli = _one_error_line(run_cli("simulate", "-s", demo.snapshot, "-p", JANE, "-a", "s3:GetObjekt", "-r", PII))
    r = client.post("/v1/simulate", json={"request": {"principal": JANE, "action": "s3:GetObjekt", "resource": PII}})
    assert r.status_code == 400
    assert cli == f"error: --action: {r.json()['error']['message']}"
    r = client.get("/v1/who-can", params={"resource": PII, "action": "s3:GetObjekt"})
    assert r.status_code == 400 and cli.endswith(r.json()["error"]["message"])
    cli = _one_error_line(run_cli("who-can", "-s", demo.snapshot, "-r", "arn:aws:s3", "-a", "s3:GetObject"))
    r = client.get("/v1/who-can", params={"resource": "arn:aws:s3", "action": "s3:GetObject"})
    assert r.status_code == 400 and cli.endswith(r.json()["error"]["message"])


def test_usage_mistakes_through_the_entry_point_are_one_line() -> None:
    import subprocess
    import sys

    for argv, words in ((["simulate", "-x"], ("No such option: -x", "iamgraph simulate --help")),
                        (["nosuch"], ("No such command",)),
                        (["simulate", "--mode", "bogus"], ("--mode",))):
        p = subprocess.run([sys.executable, "-c", "from iamgraph.cli import main; main()", *argv],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
        for w in words:
            assert w in lines[0]
