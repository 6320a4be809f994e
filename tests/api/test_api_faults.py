"""The API under faults and load, over real HTTP: ``iamgraph serve`` (uvicorn) on a loopback port.

One test per defect found by fault injection (issue 17): refusals that were not audited, whole policy documents
in the audit log, a token in the URL written to the access log, a repeated Authorization header that was
resolved instead of refused, a deeply nested grant that broke the server and its connection, and a burst of
evaluations that timed out in the queue (503) instead of being refused (429) or answered.

The server runs with one work thread, a queue of 4 and 3 places per token, so a burst overflows it whatever the
machine's speed; its output (uvicorn's access log included) goes to a file the tests read.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from api_helpers import BUCKET, arn, bearer, free_port

BOB = arn("user", "bob")
ALICE = arn("user", "alice")


@dataclass
class Server:
    base: str
    port: int
    audit: Path
    output: Path

    def audit_lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(x) for x in self.audit.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def server(snapshot_file: Path, tokens: tuple[Path, dict[str, str]],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    tmp = tmp_path_factory.mktemp("api-faults")
    audit, output = tmp / "audit.jsonl", tmp / "server.log"
    env = {**os.environ, "IAMGRAPH_API_WORK_THREADS": "1", "IAMGRAPH_API_MAX_QUEUED": "4",
           "IAMGRAPH_API_MAX_PER_TOKEN": "3"}
    cmd = [sys.executable, "-c", "from iamgraph.cli import main; main()", "serve", "--snapshot", str(snapshot_file),
           "--token-file", str(tokens[0]), "--host", "127.0.0.1", "--port", str(port), "--audit-log", str(audit)]
    with output.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # generous: the machine may be loaded
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {output.read_text()}")
            try:
                httpx.get(base + "/openapi.json", timeout=5.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start in 120 s") from None
                time.sleep(0.1)  # readiness polling
        yield Server(base=base, port=port, audit=audit, output=output)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _grant(i: int, actions: Any = "s3:GetObject") -> dict[str, Any]:
    return {"who": {"principal_arn": BOB}, "what": {"policy_document": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": f"{BUCKET}/team-{i}/*"}]}},
        "justification": f"burst {i}"}


def _wait_for_audit(server: Server, pred: Any, what: str) -> list[dict[str, Any]]:
    # The line is written before the response is sent, so it is there already; poll only in case of a slow disk.
    end = time.monotonic() + 30
    while True:
        found = [e for e in server.audit_lines() if pred(e)]
        if found or time.monotonic() > end:
            assert found, f"no audit line for {what}"
            return found
        time.sleep(0.05)


# ----------------------------------------------------------------------------------------------- defect 6: audit


def test_refused_calls_are_audited_with_their_outcome(server: Server, tokens: tuple[Path, dict[str, str]]) -> None:
    t = tokens[1]
    with httpx.Client(base_url=server.base, timeout=60) as c:
        marker = "refusal-audit"
        calls = {
            401: c.get(f"/v1/principals/{marker}-401/access"),
            403: c.post("/v1/access-requests/evaluate", headers=bearer(t["reader"]), json=_grant(1)),
            413: c.post("/v1/simulate", headers=bearer(t["admin"]),
                        content=b'{"x": "' + b"a" * 1_100_000 + b'"}'),
            422: c.post("/v1/simulate", headers={**bearer(t["admin"]), "content-type": "application/json"},
                        content=b"{oops"),
        }
        ok = c.get("/v1/version", headers=bearer(t["reader"]))
    for status, r in calls.items():
        assert r.status_code == status, (status, r.text)
    assert ok.status_code == 200
    lines = server.audit_lines()
    by_status = {e["status"]: e for e in lines}
    assert by_status[401]["outcome"] == "refused" and by_status[401]["error_code"] == "unauthorized"
    assert by_status[401]["path"] == f"/v1/principals/{marker}-401/access" and by_status[401]["token"] is None
    assert by_status[403]["token"] == "reader" and by_status[403]["event"] == "access_request.evaluate"
    assert by_status[403]["error_code"] == "forbidden"
    assert by_status[413]["error_code"] == "body_too_large" and by_status[413]["body"]["complete"] is False
    assert by_status[422]["error_code"] == "invalid_request" and by_status[422]["body"]["bytes"] == 5
    version = [e for e in lines if e["path"] == "/v1/version" and e["status"] == 200]
    assert version and version[-1]["outcome"] == "ok" and version[-1]["token"] == "reader"


def test_grants_are_audited_as_sha256_and_size_never_whole(server: Server,
                                                           tokens: tuple[Path, dict[str, str]]) -> None:
    # A grant far over the policy size limit, with a resource name that would show if the document were logged.
    needle = "whole-document-must-not-be-logged"
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                   "Resource": [f"{BUCKET}/{needle}-{i:06d}" for i in range(12_000)]}]}
    body = orjson.dumps({"who": {"principal_arn": BOB}, "what": {"policy_document": doc}})
    assert 500_000 < len(body) < 1_048_576
    r = httpx.post(server.base + "/v1/access-requests/evaluate", headers={**bearer(tokens[1]["evaluator"]),
                   "content-type": "application/json"}, content=body, timeout=60)
    assert r.status_code == 422 and r.json()["error"]["code"] == "policy_too_large"
    small = _grant(7)
    r = httpx.post(server.base + "/v1/access-requests/evaluate", headers=bearer(tokens[1]["evaluator"]), json=small,
                   timeout=60)
    assert r.status_code == 200
    raw = server.audit.read_bytes()
    assert needle.encode() not in raw and b"team-7" not in raw

    refused = _wait_for_audit(server, lambda e: e["body"].get("sha256") == hashlib.sha256(body).hexdigest(), "grant")
    assert refused[0]["status"] == 422 and refused[0]["body"]["bytes"] == len(body)
    assert max(len(line) for line in raw.splitlines()) < 4096
    answered = _wait_for_audit(server, lambda e: e.get("justification") == "burst 7", "small grant")[0]
    canon = orjson.dumps(small["what"]["policy_document"], option=orjson.OPT_SORT_KEYS)
    # The grant's document as sorted-key JSON: its hash and size identify it without storing it.
    assert answered["what"]["policy_document_sha256"] == hashlib.sha256(canon).hexdigest()
    assert answered["what"]["policy_document_bytes"] == len(canon)
    assert "policy_document" not in answered["what"] and answered["verdict"] in ("approve", "review", "deny")


def test_a_token_in_the_url_is_refused_and_never_logged(server: Server, tokens: tuple[Path, dict[str, str]]) -> None:
    token = tokens[1]["admin"]
    r = httpx.get(server.base + "/v1/version", params={"access_token": token}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["location"] == "query.access_token"
    # Under another parameter name, or as a bare name: refused all the same.
    r = httpx.get(server.base + "/v1/who-can", params={"resource": BUCKET, "note": token},
                  headers=bearer(tokens[1]["reader"]), timeout=60)
    assert r.status_code == 400 and r.json()["error"]["location"] == "query"
    r = httpx.get(server.base + f"/v1/who-can?resource={BUCKET}&{token}", headers=bearer(tokens[1]["reader"]),
                  timeout=60)
    assert r.status_code == 400
    # Pasted into the path: not an ARN of the snapshot (404), and neither log keeps the secret.
    r = httpx.get(server.base + f"/v1/principals/{token}/access", headers=bearer(tokens[1]["reader"]), timeout=60)
    assert r.status_code == 404
    _wait_for_audit(server, lambda e: e.get("error_code") == "invalid_request" and e["path"] == "/v1/version",
                    "the refused URL token")
    secret = token.split("_", 2)[2].encode()

    def logged() -> bytes:
        return server.output.read_bytes()

    end = time.monotonic() + 30
    while b"/access HTTP/1.1\" 404" not in logged() and time.monotonic() < end:
        time.sleep(0.05)  # uvicorn writes the access line after the response
    out = logged()
    assert b"GET /v1/version?[query redacted]" in out and b"/v1/who-can?[query redacted]" in out
    assert b"_[redacted]/access" in out
    assert secret not in out and secret not in server.audit.read_bytes()


def test_a_repeated_authorization_header_is_400(server: Server, tokens: tuple[Path, dict[str, str]]) -> None:
    good, bad = f"Bearer {tokens[1]['admin']}", "Bearer igt_000000000000_" + "A" * 43
    for headers in ([("Authorization", good), ("Authorization", bad)], [("Authorization", bad), ("Authorization", good)],
                    [("Authorization", good), ("Authorization", good)]):
        r = httpx.get(server.base + "/v1/version", headers=headers, timeout=60)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["location"] == "header.authorization"
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_request"'
    assert httpx.get(server.base + "/v1/version", headers={"Authorization": good}, timeout=60).status_code == 200


# ----------------------------------------------------------------------------------------------- defect 8: input


def test_a_deeply_nested_grant_is_400_and_the_connection_survives(server: Server,
                                                                  tokens: tuple[Path, dict[str, str]]) -> None:
    resource: Any = f"{BUCKET}/*"
    for _ in range(300):
        resource = [resource]
    # The standard library writes it (orjson stops at 254 levels, which is how the old server failed).
    deep = json.dumps({"who": {"principal_arn": BOB}, "what": {"policy_document": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}]}}})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {tokens[1]['evaluator']}", "Content-Type": "application/json"}
        conn.request("POST", "/v1/access-requests/evaluate", body=deep, headers=headers)
        r = conn.getresponse()
        body = orjson.loads(r.read())
        assert r.status == 400 and "nested more than 32" in body["error"]["message"]
        assert (r.getheader("connection") or "").lower() != "close"
        sock = conn.sock
        assert sock is not None
        # The same connection (keep-alive) answers the next request.
        conn.request("GET", "/v1/version", headers={"Authorization": f"Bearer {tokens[1]['reader']}"})
        r = conn.getresponse()
        assert r.status == 200 and orjson.loads(r.read())["api"] == "v1"
        assert conn.sock is sock
    finally:
        conn.close()
    wide = b'{"who": {"principal_arn": "x"}, "what": {"policy_document": [' + b"0," * 250_000 + b"0]}}"
    r = httpx.post(server.base + "/v1/access-requests/evaluate", content=wide, timeout=60,
                   headers={"Authorization": f"Bearer {tokens[1]['evaluator']}", "Content-Type": "application/json"})
    assert r.status_code == 400 and "more than 200000 values" in r.json()["error"]["message"]


# ----------------------------------------------------------------------------------------------- defect 7: load


async def _burst(base: str, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as c:
        return list(await asyncio.gather(*(c.post("/v1/access-requests/evaluate", json=body, headers=bearer(tok))
                                           for tok, body in requests)))


def test_a_burst_of_distinct_evaluations_degrades_to_429_never_5xx(server: Server,
                                                                   tokens: tuple[Path, dict[str, str]]) -> None:
    t = tokens[1]
    reqs = [(t["evaluator"] if i % 2 else t["admin"], _grant(1000 + i, "s3:*")) for i in range(200)]
    answers = asyncio.run(_burst(server.base, reqs))
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    assert statuses.count(429) >= 1 and statuses.count(200) >= 1
    for r in answers:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["code"] == "too_many_requests"
        else:
            assert r.json()["verdict"] in ("approve", "review", "deny")  # every accepted request got its answer
    audited = {e["justification"]: e["status"] for e in server.audit_lines()
               if str(e.get("justification", "")).startswith("burst 1")}
    assert len(audited) == 200 and sorted(audited.values()) == sorted(statuses)


def test_one_token_cannot_starve_another(server: Server, tokens: tuple[Path, dict[str, str]]) -> None:
    t = tokens[1]

    async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=server.base, timeout=300, limits=limits) as c:
            flood = [asyncio.create_task(c.post("/v1/access-requests/evaluate", json=_grant(5000 + i, "s3:*"),
                                                headers=bearer(t["evaluator"]))) for i in range(40)]
            # Once the flooding token is refused, it holds all the places it may have: another token still gets in.
            for done in asyncio.as_completed(flood):
                if (await done).status_code == 429:
                    break
            other = await c.post("/v1/access-requests/evaluate", json=_grant(6000, "s3:*"), headers=bearer(t["admin"]))
            return list(await asyncio.gather(*flood)), other

    flood, other = asyncio.run(scenario())
    assert any(r.status_code == 429 for r in flood)
    assert {r.status_code for r in flood} <= {200, 429}
    assert other.status_code == 200, other.text
