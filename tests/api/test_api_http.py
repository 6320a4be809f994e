"""The real thing: ``iamgraph serve`` under uvicorn on a loopback port, called with httpx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from api_helpers import BUCKET, arn, bearer

ALICE = arn("user", "alice")


@pytest.fixture(scope="module")
def http(live_server: tuple[str, Path], tokens: tuple[Path, dict[str, str]]) -> Any:
    base, _ = live_server
    with httpx.Client(base_url=base, headers=bearer(tokens[1]["admin"]), timeout=60) as c:
        yield c


def test_every_endpoint_over_http(http: httpx.Client) -> None:
    ok: dict[str, Any] = {
        "/v1/health": http.get("/v1/health"),
        "/v1/version": http.get("/v1/version"),
        "/v1/simulate": http.post("/v1/simulate", json={"request": {"principal": ALICE, "action": "s3:ListBucket",
                                                                    "resource": BUCKET}}),
        "/v1/who-can": http.get("/v1/who-can", params={"resource": BUCKET, "action": "s3:ListBucket"}),
        "access": http.get(f"/v1/principals/{ALICE}/access"),
        "paths": http.get(f"/v1/principals/{ALICE}/paths"),
        "/v1/exposure": http.get("/v1/exposure"),
        "/v1/sod/conflicts": http.get("/v1/sod/conflicts"),
        "evaluate": http.post("/v1/access-requests/evaluate", json={
            "who": {"principal_arn": ALICE}, "what": {"managed_policy_arn": arn("policy", "ReadReports")}}),
        "reload": http.post("/v1/snapshots/reload"),
    }
    for name, r in ok.items():
        assert r.status_code == 200, (name, r.text)
    assert ok["/v1/simulate"].json()["results"][0]["decision"] == "Allowed"
    assert ok["evaluate"].json()["verdict"] == "approve"
    assert ok["reload"].json()["changed"] is False
    for what in ("unused", "recommendation"):
        r = http.get(f"/v1/principals/{ALICE}/{what}")
        assert r.status_code == 409
    spec = http.get("/openapi.json").json()
    assert set(spec["paths"]) >= {"/v1/simulate", "/v1/access-requests/evaluate", "/v1/snapshots/reload"}
    assert http.get("/docs").status_code == 200


def test_auth_failures_over_http(live_server: tuple[str, Path], tokens: tuple[Path, dict[str, str]]) -> None:
    base, _ = live_server
    r = httpx.get(base + "/v1/version")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.get(base + "/v1/version", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401
    r = httpx.post(base + "/v1/snapshots/reload", headers=bearer(tokens[1]["evaluator"]))
    assert r.status_code == 403 and "admin" in r.json()["error"]["message"]
    r = httpx.post(base + "/v1/access-requests/evaluate", headers=bearer(tokens[1]["reader"]), json={})
    assert r.status_code == 403


def test_limits_over_http(http: httpx.Client) -> None:
    r = http.post("/v1/simulate", content=b"[" + b"0," * 600_000 + b"0]", headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = http.post("/v1/simulate", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_server_writes_the_audit_log(http: httpx.Client, live_server: tuple[str, Path]) -> None:
    _, audit = live_server
    http.post("/v1/access-requests/evaluate", json={"who": {"principal_arn": arn("user", "bob")},
                                                    "what": {"group_arn": arn("group", "deployers")},
                                                    "justification": "deploy lambdas"})
    entries = [orjson.loads(x) for x in audit.read_bytes().splitlines()]
    mine = [e for e in entries if e.get("justification") == "deploy lambdas"]
    assert len(mine) == 1
    assert mine[0]["token"] == "admin" and mine[0]["verdict"] == "deny"
    assert "opens_privilege_escalation" in mine[0]["reasons"]


def test_kept_reads_over_http_are_still_authenticated_checked_and_audited(
        live_server: tuple[str, Path], tokens: tuple[Path, dict[str, str]]) -> None:
    """A repeated GET is answered from its kept bytes ahead of routing (api.answers.ServeKept); over a real server
    it must still refuse what the route refuses and write the same audit line."""
    base, audit = live_server
    path = f"/v1/who-can?resource={BUCKET}&action=s3:GetObject&limit=7"
    with httpx.Client(base_url=base, headers=bearer(tokens[1]["reader"]), timeout=60) as c:
        answers = [c.get(path) for _ in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert answers[0].content == answers[1].content == answers[2].content
        unknown = c.get(path + "&acton=s3:PutObject")
        assert unknown.status_code == 422 and unknown.json()["error"]["location"] == "query.acton"
    for headers in ({}, bearer(tokens[1]["revoked"]), {"Authorization": "Bearer igt_000000000000_" + "A" * 43}):
        r = httpx.get(base + path, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), r.text
        r = httpx.get(base + path + "&acton=s3:PutObject", headers=headers)
        assert r.status_code == 401  # nothing about the request is looked at before the token
    entries = [orjson.loads(x) for x in audit.read_bytes().splitlines()]
    mine = [e for e in entries if e["path"] == "/v1/who-can"][-10:]
    assert [(e["status"], e["token"], e["route"]) for e in mine] == [
        (200, "reader", "/v1/who-can")] * 3 + [(422, "reader", "/v1/who-can")] + [(401, None, "/v1/who-can")] * 6


def test_kept_access_requests_over_http_are_audited_as_the_route_audits_them(
        http: httpx.Client, live_server: tuple[str, Path], tokens: tuple[Path, dict[str, str]]) -> None:
    _, audit = live_server
    body = {"who": {"principal_arn": ALICE}, "what": {"managed_policy_arn": arn("policy", "ReadReports")},
            "justification": "kept over http"}
    answers = [http.post("/v1/access-requests/evaluate", json=body) for _ in range(3)]
    assert [r.status_code for r in answers] == [200] * 3 and len({r.content for r in answers}) == 1
    refused = httpx.post(str(http.base_url) + "/v1/access-requests/evaluate", json=body,
                         headers=bearer(tokens[1]["reader"]))
    assert refused.status_code == 403
    lines = [orjson.loads(x) for x in audit.read_bytes().splitlines()]
    mine = [e for e in lines if e["path"] == "/v1/access-requests/evaluate"][-4:]
    assert [(e["status"], e["token"], e.get("cached")) for e in mine] == [
        (200, "admin", False), (200, "admin", True), (200, "admin", True), (403, "reader", None)]
    for e in mine[1:3]:
        del e["time"], e["duration_ms"]
    assert mine[1] == mine[2] and mine[1]["verdict"] == answers[0].json()["verdict"]
    assert mine[1]["justification"] == "kept over http" and "justification" not in mine[3]  # refused before the body
