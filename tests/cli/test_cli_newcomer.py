"""The newcomer's path: the API's /docs works offline, and `token create` then `serve` pair up as the README
shows them (no --token-file on either)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from iamgraph.demo import DemoResult


def test_docs_page_loads_swagger_ui_from_the_app_itself(demo: DemoResult) -> None:
    from api.main import create_app
    from api.settings import Settings

    app = create_app(Settings(snapshot=demo.snapshot, allow_anonymous_local=True))
    client = TestClient(app, client=("127.0.0.1", 50000))
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text and "/docs-assets/swagger-ui.css" in page.text
    # Nothing on the page points off the host: every script and stylesheet is relative.
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = client.get(f"/docs-assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_token_create_then_serve_work_as_the_readme_writes_them(demo: DemoResult, tmp_path: Path) -> None:
    cli = [sys.executable, "-c", "from iamgraph.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IAMGRAPH_")}
    made = subprocess.run([*cli, "token", "create", "--name", "portal", "--scopes", "read,evaluate"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    port = _free_port()
    proc = subprocess.Popen([*cli, "serve", "--snapshot", str(demo.snapshot), "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/health", headers={"Authorization": f"Bearer {token}"},
                              timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("serve did not answer in 60 s")
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
