"""Fixtures for the HTTP API tests: a small hand-built snapshot, token files, a TestClient, a real uvicorn."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from iamgraph.cli.serve_tokens import Scope, TokenFile
from iamgraph.snapshot import write_snapshot
from iamgraph.snapshot.model import (
    Account,
    Group,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    Resource,
    Role,
    Snapshot,
    User,
)

ACCT = "111111111111"
BUCKET = "arn:aws:s3:::reports-bucket"
PII_BUCKET = "arn:aws:s3:::customer-pii"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(actions: Any, resources: Any = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def _trust(principal: dict[str, Any], action: str = "sts:AssumeRole") -> dict[str, Any]:
    return _doc({"Effect": "Allow", "Principal": principal, "Action": action})


def arn(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCT}:{kind}/{name}"


def _managed(name: str, doc: dict[str, Any]) -> ManagedPolicy:
    return ManagedPolicy(arn=arn("policy", name), name=name, default_version_id="v1",
                         versions=[PolicyVersion(version_id="v1", is_default=True, document=doc)])


def small_snapshot() -> Snapshot:
    """One account: an admin role anyone in the account may assume if allowed, a Lambda role with admin rights
    (so iam:PassRole + lambda:CreateFunction is a path to admin), a readers group, a deployers group."""
    roles = [
        Role(arn=arn("role", "admin"), name="admin", role_id="AROAADMIN0000000001",
             trust_policy=_trust({"AWS": f"arn:aws:iam::{ACCT}:root"}),
             inline_policies=[InlinePolicy(name="all", document=_doc(_allow("*")))]),
        Role(arn=arn("role", "ops-lambda"), name="ops-lambda", role_id="AROAOPSLAMBDA000001",
             trust_policy=_trust({"Service": "lambda.amazonaws.com"}),
             inline_policies=[InlinePolicy(name="all", document=_doc(_allow("*")))]),
        Role(arn=arn("role", "app"), name="app", role_id="AROAAPP000000000001",
             trust_policy=_trust({"Service": "ec2.amazonaws.com"}),
             inline_policies=[InlinePolicy(name="read", document=_doc(_allow("s3:GetObject", f"{BUCKET}/*")))]),
    ]
    groups = [
        Group(arn=arn("group", "readers"), name="readers", group_id="AGPAREADERS00000001",
              inline_policies=[InlinePolicy(name="list", document=_doc(_allow("s3:ListBucket", BUCKET)))]),
        Group(arn=arn("group", "deployers"), name="deployers", group_id="AGPADEPLOYERS000001",
              attached_managed_policies=[arn("policy", "deploy")]),
    ]
    users = [
        User(arn=arn("user", "alice"), name="alice", user_id="AIDAALICE0000000001", groups=["readers"]),
        User(arn=arn("user", "bob"), name="bob", user_id="AIDABOB000000000001"),
    ]
    policies = [
        _managed("deploy", _doc(_allow(["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"]))),
        _managed("ReadReports", _doc(_allow(["s3:GetObject", "s3:ListBucket"], [BUCKET, f"{BUCKET}/*"]))),
    ]
    resources = [
        Resource(arn=BUCKET, type="s3:bucket", region="us-east-1", name="reports-bucket",
                 tags={"DataClassification": "Public"}),
        Resource(arn=PII_BUCKET, type="s3:bucket", region="us-east-1", name="customer-pii",
                 tags={"DataClassification": "PII"}),
    ]
    account = Account(account_id=ACCT, name="test", users=users, groups=groups, roles=roles, policies=policies,
                      resources=resources, regions=["us-east-1"])
    return Snapshot(collected_at="2026-11-01T00:00:00Z", accounts=[account])


@pytest.fixture(scope="session")
def snapshot_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api-snap") / "snapshot.json.gz"
    write_snapshot(small_snapshot(), path)
    return path


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A token file with one token per scope combination the tests need; returns (file, name -> token)."""
    path = tmp_path_factory.mktemp("api-tokens") / "tokens.json"
    tf = TokenFile(path)
    out: dict[str, str] = {}
    for name, scopes in (("reader", (Scope.READ,)), ("evaluator", (Scope.READ, Scope.EVALUATE)),
                         ("admin", tuple(Scope)), ("revoked", tuple(Scope))):
        out[name], _ = tf.create(name, scopes)
    tf.revoke("revoked")
    return path, out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(snapshot_file: Path, tokens: tuple[Path, dict[str, str]],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``iamgraph serve`` in a child process on a free loopback port; yields (base URL, audit log path)."""
    port = free_port()
    audit = tmp_path_factory.mktemp("api-audit") / "audit.jsonl"
    cmd = [sys.executable, "-c", "from iamgraph.cli import main; main()", "serve", "--snapshot", str(snapshot_file), "--token-file",
           str(tokens[0]), "--host", "127.0.0.1", "--port", str(port), "--audit-log", str(audit)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"server exited with {proc.returncode}: {out}")
            try:
                httpx.get(base + "/openapi.json", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not start in 30 s")
        yield base, audit
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
