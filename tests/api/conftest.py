"""Fixtures for the HTTP API tests: a small hand-built snapshot, token files, a TestClient, a real uvicorn."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import free_port, running_server, small_snapshot

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




@pytest.fixture(scope="module")
def live_server(snapshot_file: Path, tokens: tuple[Path, dict[str, str]],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``iamgraph serve`` in a child process on a free loopback port; yields (base URL, audit log path)."""
    port = free_port()
    audit = tmp_path_factory.mktemp("api-audit") / "audit.jsonl"
    cmd = [sys.executable, "-c", "from iamgraph.cli import main; main()", "serve", "--snapshot", str(snapshot_file), "--token-file",
           str(tokens[0]), "--host", "127.0.0.1", "--port", str(port), "--audit-log", str(audit)]
    with running_server(cmd, port) as base:
        yield base, audit


@pytest.fixture(scope="module")
def app_env(snapshot_file: Path, tokens: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Any]:
    """An app over the small snapshot with the token file; returns app, tokens, audit path."""
    from api.main import create_app
    from api.settings import Settings

    audit = tmp_path_factory.mktemp("api-audit-tc") / "audit.jsonl"
    app = create_app(Settings(snapshot=snapshot_file, token_file=tokens[0], audit_log=audit))
    return {"app": app, "tokens": tokens[1], "audit": audit}


