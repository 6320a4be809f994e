"""``iamgraph serve --config`` carries the config file's ``evidence.logged`` section to the unused and recommendation
endpoints, as ``--config`` does for ``iamgraph unused`` and ``iamgraph recommend``; asked over real HTTP of a real
``iamgraph serve`` (uvicorn on loopback).

The evidence: trail one delivers us-east-1 with S3 data events; trail two, another location, delivers eu-west-1 with
management events only. The role's unused ``s3:PutObject`` may have been called in eu-west-1, where nothing would
show it, so it is kept, unless the configuration says eu-west-1 logs S3 data events too. Records are written from
the CloudTrail record contents page
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html) and
S3's data-event entries
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-understanding-s3-entries.html)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from api_helpers import free_port

from iamgraph.collect.files import load_paths
from iamgraph.snapshot.io import write_snapshot
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore

ACCT = "111122223333"
ROLE = f"arn:aws:iam::{ACCT}:role/etl"
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "ec2:DescribeInstances", "sqs:ListQueues"],
     "Resource": "*"}]}
STARTUP_SECONDS = 180
"""How long ``iamgraph serve`` may take to answer on a loaded machine (as tests/api/conftest.py allows)."""


def _identity() -> dict[str, Any]:
    # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
    return {"type": "AssumedRole", "principalId": "AROAEXAMPLEETL:s", "accountId": ACCT,
            "arn": f"arn:aws:sts::{ACCT}:assumed-role/etl/s",
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEETL", "accountId": ACCT,
                                                 "arn": ROLE, "userName": "etl"}}}


def _record(region: str, when: str, n: int, *, data: bool) -> dict[str, Any]:
    common = {"eventVersion": "1.09", "userIdentity": _identity(), "eventTime": when, "awsRegion": region,
              "sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2", "responseElements": None,
              "eventID": f"{region}-{n}", "readOnly": True, "eventType": "AwsApiCall", "recipientAccountId": ACCT}
    if data:
        return {**common, "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
                "requestParameters": {"bucketName": "data", "key": "in/k", "Host": "data.s3.amazonaws.com"},
                "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::data/in/k"},
                              {"accountId": ACCT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::data"}],
                "managementEvent": False, "eventCategory": "Data"}
    return {**common, "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
            "requestParameters": {"instancesSet": {}, "filterSet": {}}, "managementEvent": True,
            "eventCategory": "Management"}


def _file(location: Path, region: str, day: str, n: int, record: dict[str, Any]) -> None:
    y, m, d = day.split("-")
    base = location / "AWSLogs" / ACCT / "CloudTrail" / region / y / m / d
    base.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"Records": [record]})
    (base / f"{ACCT}_CloudTrail_{region}_{y}{m}{d}T0000Z_{location.name}{n}.json.gz").write_bytes(
        gzip.compress(body.encode()))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("api-config")
    gaad = {"UserDetailList": [], "GroupDetailList": [], "Policies": [], "RoleDetailList": [{
        "Path": "/", "RoleName": "etl", "RoleId": "AROAEXAMPLEETL", "Arn": ROLE, "CreateDate": "2023-01-01T00:00:00Z",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "InstanceProfileList": [], "RolePolicyList": [{"PolicyName": "etl", "PolicyDocument": POLICY}],
        "AttachedManagedPolicies": [], "Tags": []}]}
    (root / "gaad.json").write_text(json.dumps(gaad))
    write_snapshot(load_paths([root / "gaad.json"], collected_at="2024-03-31T00:00:00Z"), root / "snap.json")
    one, two = root / "trail-one", root / "trail-two"
    # Trail one was on throughout the API's window (90 days ending at the newest activity, 2024-03-31 10:00).
    _file(one, "us-east-1", "2024-01-01", 1, _record("us-east-1", "2024-01-01T00:10:00Z", 1, data=False))
    _file(one, "us-east-1", "2024-03-05", 2, _record("us-east-1", "2024-03-05T10:00:00Z", 2, data=True))
    _file(one, "us-east-1", "2024-03-31", 3, _record("us-east-1", "2024-03-31T10:00:00Z", 3, data=False))
    _file(two, "eu-west-1", "2024-03-06", 1, _record("eu-west-1", "2024-03-06T10:00:00Z", 4, data=False))
    with UsageStore(root / "u.duckdb") as store:
        for loc in (one, two):
            ingest_location(store, str(loc))
    (root / "iamgraph.yaml").write_text(f'evidence:\n  logged:\n    "{ACCT}/eu-west-1":\n      data_events: [s3]\n')
    (root / "bad.yaml").write_text('evidence:\n  logged:\n    "12345":\n      data_events: [s3]\n')
    return {"snapshot": root / "snap.json", "db": root / "u.duckdb", "config": root / "iamgraph.yaml",
            "bad": root / "bad.yaml", "root": root}


def _serve_cmd(files: dict[str, Path], port: int, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from iamgraph.cli import main; main()", "serve", "--snapshot",
            str(files["snapshot"]), "--db", str(files["db"]), "--allow-anonymous-local", "--host", "127.0.0.1",
            "--port", str(port), *extra]


@contextmanager
def _server(files: dict[str, Path], *extra: str) -> Iterator[str]:
    port = free_port()
    # cwd: the fixture's directory holds an iamgraph.yaml, which serve would read by default; run elsewhere.
    proc = subprocess.Popen(_serve_cmd(files, port, *extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=files["root"].parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"server exited with {proc.returncode}: {out}")
            try:
                httpx.get(base + "/openapi.json", timeout=10.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start in {STARTUP_SECONDS} s") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    cmd = _serve_cmd(files, port)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=files["root"])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                httpx.get(base + "/openapi.json", timeout=10.0)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"server did not start in {STARTUP_SECONDS} s"
                time.sleep(0.1)
        unused, _ = _answers(base)
        assert "s3:PutObject" in unused
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_bad_config_file_stops_serve_before_it_starts_with_one_line(files: dict[str, Path]) -> None:
    res = subprocess.run(_serve_cmd(files, free_port(), "--config", str(files["bad"])), capture_output=True,
                         text=True, timeout=600, cwd=files["root"].parent)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.yaml" in lines[0] and "evidence.logged.12345" in lines[0], res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
