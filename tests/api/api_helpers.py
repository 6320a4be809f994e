"""Helpers for the HTTP API tests: a small hand-built snapshot and request headers."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

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

LOOPBACK = ("127.0.0.1", 50000)
"""TestClient's default client host is the word ``testclient``; anonymous local mode wants loopback."""

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


STARTUP_SECONDS = 180
"""How long ``iamgraph serve`` may take to answer (as tests/conftest.py allows moto): CI machines are shared."""


@contextmanager
def running_server(cmd: list[str], port: int, *, cwd: Path | None = None) -> Iterator[str]:
    """Run ``cmd`` (an ``iamgraph serve`` on ``port`` of loopback) as a child process; yield its base URL once it
    answers, and stop it on exit. Readiness is polled with a generous bound: a loaded machine can take long to
    import and start."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
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
