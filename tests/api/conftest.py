"""Fixtures for the HTTP API tests: a small hand-built snapshot, token files, a TestClient, a real uvicorn."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import free_port, small_snapshot

from iamgraph.serving.tokens import Scope, TokenFile
from iamgraph.snapshot import write_snapshot


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


STARTUP_SECONDS = 180
"""How long ``iamgraph serve`` may take to answer (as tests/conftest.py allows moto): CI machines are shared."""


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
        # Readiness polling with a generous bound (a loaded CI machine can take long to import and start).
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
        yield base, audit
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def app_env(snapshot_file: Path, tokens: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Any]:
    """An app over the small snapshot with the token file; returns app, tokens, audit path."""
    from api.main import create_app
    from api.settings import Settings

    audit = tmp_path_factory.mktemp("api-audit-tc") / "audit.jsonl"
    app = create_app(Settings(snapshot=snapshot_file, token_file=tokens[0], audit_log=audit))
    return {"app": app, "tokens": tokens[1], "audit": audit}


