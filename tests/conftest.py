"""Shared fixtures. The moto server is a real HTTP server on 127.0.0.1 that boto3 reaches over the network stack."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

STARTUP_SECONDS = 180
"""How long a server the tests start (moto, uvicorn) may take to answer: generous, since CI machines are shared."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """A moto_server subprocess on 127.0.0.1. ``reset()`` wipes its state between tests."""

    def __init__(self, *, load_managed_policies: bool) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.pop("MOTO_ACCOUNT_ID", None)  # it would override assumed-role credentials (see TESTING-AWS.md)
        if load_managed_policies:
            env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Readiness polling with a generous bound: on a loaded machine importing moto alone can take a minute.
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=10).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not start in {STARTUP_SECONDS} s") from None
                time.sleep(0.2)

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=STARTUP_SECONDS).read()

    def client_env(self) -> dict[str, str]:
        """Environment for boto3 clients (dummy credentials; every call goes to the local server)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto server without AWS managed policies (fast IAM start)."""
    server = MotoServer(load_managed_policies=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server_managed() -> Iterator[MotoServer]:
    """moto server with MOTO_IAM_LOAD_MANAGED_POLICIES=true (real AWS managed policy documents)."""
    server = MotoServer(load_managed_policies=True)
    yield server
    server.stop()


@pytest.fixture()
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A clean moto server and the environment variables that point boto3 at it."""
    moto_server.reset()
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k, raising=False)
    for k, v in moto_server.client_env().items():
        monkeypatch.setenv(k, v)
    yield moto_server
