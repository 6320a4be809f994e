"""Every limit: oversized or malformed input gets a 4xx that says what is wrong, never a 500 or a hang."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ACCT, BUCKET, arn, bearer
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Limits, Settings

REQ = {"principal": arn("user", "alice"), "action": "s3:ListBucket", "resource": BUCKET}


@pytest.fixture(scope="module")
def client(app_env: dict[str, Any]) -> TestClient:
    return TestClient(app_env["app"], headers=bearer(app_env["tokens"]["admin"]))


def test_body_over_the_limit_is_413_declared_or_streamed(client: TestClient) -> None:
    big = b'{"request": {"principal": "' + b"a" * 1_100_000 + b'"}}'
    r = client.post("/v1/simulate", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "1048576" in r.json()["error"]["message"]

    def chunks() -> Any:  # no Content-Length: the limit is counted as the body streams in
        for _ in range(20):
            yield b" " * 100_000
    r = client.post("/v1/simulate", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_policy_over_the_size_limit(client: TestClient) -> None:
    huge = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                    "Resource": [f"arn:aws:s3:::b/{i:05d}" for i in range(1500)]}]}
    r = client.post("/v1/simulate", json={"request": REQ, "policies": {"identity": [huge]}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "policy_too_large"
    assert r.json()["error"]["location"] == "body.policies.identity[0]"
    r = client.post("/v1/access-requests/evaluate", json={"who": {"principal_arn": arn("user", "bob")},
                                                          "what": {"policy_document": huge}})
    assert r.status_code == 422 and r.json()["error"]["location"] == "what.policy_document"


def test_batch_over_the_limit(client: TestClient) -> None:
    r = client.post("/v1/simulate", json={"batch": [{"request": REQ}] * 1001})
    assert r.status_code == 422 and r.json()["error"]["code"] == "batch_too_large"
    assert client.post("/v1/simulate", json={"batch": [{"request": REQ}] * 1000}).status_code == 200


def test_page_size_and_path_count_limits(client: TestClient) -> None:
    r = client.get("/v1/who-can", params={"resource": BUCKET, "limit": 501})
    assert r.status_code == 422 and r.json()["error"]["location"] == "query.limit"
    assert "500" in r.json()["error"]["message"]
    r = client.get("/v1/who-can", params={"resource": BUCKET, "paths": 21})
    assert r.status_code == 422 and r.json()["error"]["location"] == "query.paths"
    r = client.get(f"/v1/principals/{arn('user', 'bob')}/paths", params={"paths": 21})
    assert r.status_code == 422
    assert client.get("/v1/who-can", params={"resource": BUCKET, "limit": 500}).status_code == 200
    for q in ({"limit": 0}, {"offset": -1}):
        assert client.get("/v1/exposure", params=q).status_code == 422


def test_context_key_limit(client: TestClient) -> None:
    ctx = {f"aws:k{i}": "v" for i in range(101)}
    r = client.post("/v1/simulate", json={"request": {**REQ, "context": ctx}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "context_too_large"


def test_malformed_bodies_are_422_with_a_location(client: TestClient) -> None:
    r = client.post("/v1/simulate", content=b'{"request": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["error"]["message"]
    r = client.post("/v1/simulate", json={"request": {**REQ, "principal": 5}})
    assert r.status_code == 422 and r.json()["error"]["location"] == "request.principal"
    r = client.post("/v1/simulate", json={"request": REQ, "surprise": 1})
    assert r.status_code == 422 and r.json()["error"]["location"] == "surprise"
    r = client.post("/v1/simulate", json=[1, 2])
    assert r.status_code == 422
    r = client.post("/v1/access-requests/evaluate", json={"who": {"new_role": {
        "account_id": "12", "name": "x", "trust_policy": {}}}, "what": {}})
    assert r.status_code == 422 and r.json()["error"]["location"] == "who.new_role.account_id"


def test_time_limit_gives_503_not_a_hang(snapshot_file: Path, tokens: tuple[Path, dict[str, str]]) -> None:
    # A limit so small that any work is over it; the first who-can also has to build the graph.
    limits = replace(Limits(), time_limit_seconds=1e-6)
    app = create_app(Settings(snapshot=snapshot_file, token_file=tokens[0], limits=limits))
    client = TestClient(app, headers=bearer(tokens[1]["admin"]))
    for method, url, body in (
        ("GET", f"/v1/who-can?resource={BUCKET}", None),
        ("POST", "/v1/simulate", {"batch": [{"request": REQ}] * 50}),
        ("POST", "/v1/access-requests/evaluate", {"who": {"principal_arn": arn("user", "bob")},
                                                  "what": {"managed_policy_arn": arn("policy", "ReadReports")}}),
    ):
        r = client.request(method, url, json=body)
        assert r.status_code == 503, (url, r.json())
        assert r.json()["error"]["code"] == "time_limit_exceeded"


def test_unknown_query_parameters_are_refused(client: TestClient) -> None:
    r = client.get("/v1/who-can", params={"resource": BUCKET, "acton": "s3:GetObject"})
    assert r.status_code == 422 and r.json()["error"]["location"] == "query.acton"
    assert "action" in r.json()["error"]["message"]


def test_unknown_routes_and_methods(client: TestClient) -> None:
    assert client.get("/v1/nothing-here").status_code == 404
    r = client.get("/v1/simulate")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_account_ids_in_paths_are_validated(client: TestClient) -> None:
    r = client.post("/v1/access-requests/evaluate", json={"who": {"new_role": {
        "account_id": "999999999999", "name": "x", "trust_policy": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
        "what": {"managed_policy_arn": arn("policy", "ReadReports")}})
    assert r.status_code == 404 and "999999999999" in r.json()["error"]["message"]
    assert ACCT  # the small snapshot's only account
