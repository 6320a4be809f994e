"""Kept answers (api.answers), group-committed audit lines and the frozen snapshot objects: the speed-ups of the
API's cached reads, and what they must not give up (authentication and an audit line on every call)."""

from __future__ import annotations

import asyncio
import gc
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from api_helpers import ACCT, BUCKET, arn, bearer, small_snapshot
from fastapi import Request
from fastapi.testclient import TestClient

from api.audit import AuditLog
from api.main import YOUNG_GC_THRESHOLD, create_app, freeze_loaded_objects
from api.schemas import WhoCanResponse
from api.settings import Settings
from iamgraph.serving.tokens import Scope, TokenFile
from iamgraph.snapshot import write_snapshot

ALICE = arn("user", "alice")


@pytest.fixture
def served(tmp_path: Path) -> dict[str, Any]:
    """An app of its own (its token file is changed by a test), with an audit log."""
    snap = tmp_path / "snap.json.gz"
    write_snapshot(small_snapshot(), snap)
    tf = TokenFile(tmp_path / "tokens.json")
    token, _ = tf.create("caller", tuple(Scope))
    audit = tmp_path / "audit.jsonl"
    app = create_app(Settings(snapshot=snap, token_file=tmp_path / "tokens.json", audit_log=audit))
    return {"app": app, "client": TestClient(app, headers=bearer(token)), "tokens": tf, "audit": audit}


def _audit(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


READS = (
    f"/v1/who-can?resource={BUCKET}&action=s3:ListBucket",
    f"/v1/principals/{ALICE}/access",
    f"/v1/principals/{ALICE}/paths",
    "/v1/exposure",
    "/v1/sod/conflicts",
)


@pytest.mark.parametrize("path", READS)
def test_a_repeated_read_is_the_same_bytes_and_skips_the_work_pool(served: dict[str, Any], path: str) -> None:
    client, pool = served["client"], served["app"].state.pool
    first = client.get(path)
    assert first.status_code == 200, first.text
    started = pool.started
    assert started >= 1
    again = client.get(path)
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["content-type"] == "application/json"
    assert pool.started == started  # answered from the kept bytes, on the loop
    # Both calls are audited, as every call is.
    lines = [x for x in _audit(served["audit"]) if x["path"] == path.split("?")[0]]
    assert [x["status"] for x in lines] == [200, 200] and all(x["token"] == "caller" for x in lines)


def test_paging_is_part_of_the_key_and_the_bytes_are_the_response_model(served: dict[str, Any]) -> None:
    client, pool = served["client"], served["app"].state.pool
    base = f"/v1/who-can?resource={BUCKET}&action=s3:ListBucket"
    whole = client.get(base).json()
    assert whole["page"]["total"] >= 2, whole  # the small snapshot has several principals that can list it
    started = pool.started
    one = client.get(base + "&limit=1")
    assert pool.started == started + 1  # another page is another answer
    body = WhoCanResponse.model_validate_json(one.content)  # what the route declares, field names and all
    assert body.page.limit == 1 and len(body.accesses) == 1
    assert body.accesses[0].model_dump(mode="json") == whole["accesses"][0]


def test_a_kept_answer_still_needs_a_valid_token(served: dict[str, Any]) -> None:
    client = served["client"]
    path = f"/v1/who-can?resource={BUCKET}&action=s3:ListBucket"
    assert client.get(path).status_code == 200
    assert client.get(path, headers={"Authorization": "Bearer igt_000000000000_" + "A" * 43}).status_code == 401
    served["tokens"].revoke("caller")  # the server re-reads the token file when it changes
    refused = client.get(path)
    assert refused.status_code == 401
    assert _audit(served["audit"])[-1]["status"] == 401


def test_a_repeated_access_request_is_kept_and_audited_as_cached(served: dict[str, Any]) -> None:
    client, pool = served["client"], served["app"].state.pool
    body = {"who": {"principal_arn": ALICE}, "what": {"managed_policy_arn": arn("policy", "ReadReports")},
            "justification": "quarterly report"}
    first = client.post("/v1/access-requests/evaluate", json=body)
    assert first.status_code == 200, first.text
    started = pool.started
    again = client.post("/v1/access-requests/evaluate", json=body)
    assert again.content == first.content and pool.started == started
    other = client.post("/v1/access-requests/evaluate", json={**body, "justification": "another reason"})
    assert other.status_code == 200 and pool.started == started + 1  # the body is part of the key
    lines = [x for x in _audit(served["audit"]) if x["event"] == "access_request.evaluate"]
    assert [x["cached"] for x in lines] == [False, True, False]
    assert lines[1]["verdict"] == first.json()["verdict"] and lines[1]["request_id"] == first.json()["request_id"]


def test_a_reload_drops_the_kept_answers(served: dict[str, Any]) -> None:
    client, pool = served["client"], served["app"].state.pool
    path = f"/v1/who-can?resource={BUCKET}&action=s3:ListBucket"
    assert client.get(path).status_code == 200
    assert client.post("/v1/snapshots/reload").status_code == 200
    started = pool.started
    assert client.get(path).status_code == 200
    assert pool.started == started + 1


def test_audit_lines_committed_in_groups_are_each_written_once(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")

    async def many() -> None:
        await asyncio.gather(*(log.record_async("api.call", f"t{i % 7}", seq=i) for i in range(300)))

    asyncio.run(many())
    lines = _audit(tmp_path / "audit.jsonl")
    assert sorted(x["seq"] for x in lines) == list(range(300))
    assert (tmp_path / "audit.jsonl").stat().st_mode & 0o777 == 0o600


def test_a_failed_group_write_fails_every_caller_of_the_group(tmp_path: Path) -> None:
    where = tmp_path / "logs"
    log = AuditLog(where / "audit.jsonl")
    shutil.rmtree(where)  # the file cannot be opened any more

    async def three() -> list[BaseException | None]:
        return await asyncio.gather(*(log.record_async("api.call", "t", seq=i) for i in range(3)),
                                    return_exceptions=True)

    assert all(isinstance(r, OSError) for r in asyncio.run(three()))
    where.mkdir()
    asyncio.run(log.record_async("api.call", "t", seq=99))  # the writer recovers once the file can be written
    assert [x["seq"] for x in _audit(where / "audit.jsonl")] == [99]


def test_the_server_freezes_the_loaded_snapshot_and_a_reload_unfreezes_it(served: dict[str, Any]) -> None:
    threshold = gc.get_threshold()
    try:
        freeze_loaded_objects()
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
        assert served["client"].post("/v1/snapshots/reload").status_code == 200
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_answers_are_kept_per_account_snapshot_not_shared(served: dict[str, Any]) -> None:
    """Two apps over different snapshots never see each other's kept answers."""
    path = f"/v1/who-can?resource={BUCKET}&action=s3:ListBucket"
    first = served["client"].get(path).json()
    assert any(a["principal"].startswith(f"arn:aws:iam::{ACCT}:") for a in first["accesses"])
    snap = small_snapshot()
    snap.accounts[0].users[0].groups.clear()  # alice leaves the group that lets her list the bucket
    other_path = Path(served["audit"]).parent / "other.json.gz"
    write_snapshot(snap, other_path)
    tf = TokenFile(Path(served["audit"]).parent / "other-tokens.json")
    token, _ = tf.create("other", tuple(Scope))
    other = TestClient(create_app(Settings(snapshot=other_path, token_file=tf.path)), headers=bearer(token))
    second = other.get(path).json()
    assert {a["principal"] for a in first["accesses"]} != {a["principal"] for a in second["accesses"]}


# ----------------------------------------------------------------------------------- kept GETs ahead of routing


def _count_dependency_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every run of the routes' dependency (api.deps.Authorized): a GET served from its kept bytes ahead
    of routing (api.answers.ServeKept) never reaches it."""
    from api.deps import Authorized

    calls: list[str] = []
    original = Authorized.__call__

    async def counting(self: Authorized, request: Request) -> Any:
        calls.append(request.url.path)
        return await original(self, request)

    counting.__annotations__["request"] = Request  # a class, not this module's postponed string: FastAPI reads it
    monkeypatch.setattr(Authorized, "__call__", counting)
    return calls


WHO = f"/v1/who-can?resource={BUCKET}&action=s3:ListBucket"


def test_a_repeated_get_is_answered_ahead_of_routing_with_the_same_audit_line(
        served: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    client = served["client"]
    calls = _count_dependency_calls(monkeypatch)
    first = client.get(WHO)
    assert first.status_code == 200 and calls == ["/v1/who-can"]
    again = client.get(WHO)
    assert again.status_code == 200 and again.content == first.content and calls == ["/v1/who-can"]
    assert again.headers["content-type"] == "application/json"
    assert again.headers["content-length"] == str(len(first.content))
    a, b = _audit(served["audit"])[-2:]
    # The same line but for the time it was written and how long it took.
    for line in (a, b):
        del line["time"], line["duration_ms"]
    assert a == b and a["route"] == "/v1/who-can" and a["token"] == "caller" and a["status"] == 200


def test_the_same_query_spelled_differently_is_the_same_answer(served: dict[str, Any],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    client, pool = served["client"], served["app"].state.pool
    first = client.get(WHO)
    started = pool.started
    calls = _count_dependency_calls(monkeypatch)
    reordered = client.get(f"/v1/who-can?action=s3:ListBucket&resource={BUCKET}")
    # Not the same request text, so it goes through routing and validation; the same parameters, so the same
    # kept answer, without new work.
    assert reordered.content == first.content and calls == ["/v1/who-can"] and pool.started == started


def test_an_unknown_query_parameter_on_a_kept_read_is_still_refused_and_audited(served: dict[str, Any]) -> None:
    client, pool = served["client"], served["app"].state.pool
    assert client.get(WHO).status_code == 200
    started = pool.started
    r = client.get(WHO + "&acton=s3:GetObject")
    assert r.status_code == 422 and r.json()["error"]["location"] == "query.acton"
    assert pool.started == started
    line = _audit(served["audit"])[-1]
    # Authentication comes first now, so the refusal names the caller.
    assert (line["status"], line["error_code"], line["token"], line["route"]) == (422, "invalid_request", "caller",
                                                                                  "/v1/who-can")


@pytest.mark.parametrize("authorization", [None, "Bearer igt_000000000000_" + "A" * 43, "Basic dXNlcjpwYXNz",
                                           "Bearer"])
def test_a_kept_read_without_a_valid_token_is_refused_before_any_work(
        served: dict[str, Any], monkeypatch: pytest.MonkeyPatch, authorization: str | None) -> None:
    client, pool = served["client"], served["app"].state.pool
    assert client.get(WHO).status_code == 200
    started = pool.started
    headers = {"Authorization": authorization} if authorization is not None else {}
    anonymous = TestClient(served["app"], headers=headers)
    for path in (WHO, WHO + "&acton=x"):  # an unknown parameter is not even looked at without a valid token
        r = anonymous.get(path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
        assert r.headers["www-authenticate"].startswith("Bearer")
        line = _audit(served["audit"])[-1]
        assert line["status"] == 401 and line["token"] is None
    assert pool.started == started


def test_a_kept_read_is_refused_403_to_a_token_without_the_read_scope(served: dict[str, Any]) -> None:
    client = served["client"]
    assert client.get(WHO).status_code == 200
    token, _ = served["tokens"].create("evaluate-only", (Scope.EVALUATE,))
    r = TestClient(served["app"], headers=bearer(token)).get(WHO)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    line = _audit(served["audit"])[-1]
    assert (line["status"], line["token"]) == (403, "evaluate-only")


def test_a_kept_read_stops_at_once_for_a_revoked_token(served: dict[str, Any]) -> None:
    client = served["client"]
    assert client.get(WHO).status_code == 200 and client.get(WHO).status_code == 200  # the second one kept
    served["tokens"].revoke("caller")
    assert client.get(WHO).status_code == 401


def test_every_route_takes_the_one_dependency(served: dict[str, Any]) -> None:
    """Authentication, the scope check and the unknown-query check live in api.deps.Authorized; a route without it
    would be open."""
    from fastapi.routing import APIRoute

    from api.deps import Authorized

    routes: list[APIRoute] = []
    pending = list(served["app"].routes)
    while pending:  # FastAPI 0.165 keeps an included router as one entry (``original_router``)
        r = pending.pop()
        if isinstance(r, APIRoute) and r.path.startswith("/v1/"):
            routes.append(r)
        pending.extend(getattr(getattr(r, "original_router", None), "routes", ()))
    assert len(routes) >= 12
    for route in routes:
        assert [d.call for d in route.dependant.dependencies if isinstance(d.call, Authorized)], route.path
    spec = served["app"].openapi()
    assert spec["components"]["securitySchemes"] == {"HTTPBearer": {"type": "http", "scheme": "bearer",
                                                                    "description": "A token from 'iamgraph token create'"}}
    for path, methods in spec["paths"].items():
        if path.startswith("/v1/"):
            assert all(op["security"] == [{"HTTPBearer": []}] for op in methods.values()), path


EVALUATE_BODY = {"who": {"principal_arn": ALICE}, "what": {"managed_policy_arn": arn("policy", "ReadReports")},
                 "justification": "quarterly report"}


def test_a_repeated_access_request_is_answered_ahead_of_routing_with_the_routes_audit_line(
        served: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    client, pool = served["client"], served["app"].state.pool
    calls = _count_dependency_calls(monkeypatch)
    answers = [client.post("/v1/access-requests/evaluate", json=EVALUATE_BODY) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert answers[0].content == answers[1].content == answers[2].content
    # The first is computed by the route; the repeats are answered ahead of routing.
    assert len(calls) == 1 and pool.started == 1
    # The same grant in other bytes goes through the route, which answers it from the kept answer.
    spaced = client.post("/v1/access-requests/evaluate", content=orjson.dumps(EVALUATE_BODY) + b"  ",
                         headers={"content-type": "application/json"})
    assert spaced.content == answers[0].content and len(calls) == 2 and pool.started == 1
    lines = [x for x in _audit(served["audit"]) if x["event"] == "access_request.evaluate"]
    assert [x["cached"] for x in lines] == [False, True, True, True]
    for line in lines:
        del line["time"], line["duration_ms"]
    assert lines[1] == lines[2]
    # What the route writes for a repeated request is what the line of a request answered ahead of routing says,
    # but for the body's hash and size (other bytes).
    assert lines[1]["body"] != lines[3]["body"]
    del lines[1]["body"], lines[3]["body"]
    assert lines[1] == lines[3]
    assert lines[1]["verdict"] == answers[0].json()["verdict"] and lines[1]["principal"] == {"principal_arn": ALICE}
    assert lines[1]["token"] == "caller" and lines[1]["route"] == "/v1/access-requests/evaluate"


def test_an_access_request_sent_differently_goes_through_the_route(served: dict[str, Any],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    client = served["client"]
    first = client.post("/v1/access-requests/evaluate", json=EVALUATE_BODY)
    client.post("/v1/access-requests/evaluate", json=EVALUATE_BODY)
    calls = _count_dependency_calls(monkeypatch)
    # Another Content-Type is another request: FastAPI chooses the body's parser by it (and refuses this one
    # while reading the body, before any dependency runs).
    text = client.post("/v1/access-requests/evaluate", content=orjson.dumps(EVALUATE_BODY),
                       headers={"content-type": "text/plain"})
    assert text.status_code == 422 and text.content != first.content and calls == ["/v1/access-requests/evaluate"]
    calls.clear()
    other = client.post("/v1/access-requests/evaluate", json={**EVALUATE_BODY, "justification": "other"})
    assert other.status_code == 200 and calls == ["/v1/access-requests/evaluate"]


def test_a_kept_access_request_still_needs_a_token_with_the_evaluate_scope(served: dict[str, Any]) -> None:
    client = served["client"]
    for _ in range(2):
        assert client.post("/v1/access-requests/evaluate", json=EVALUATE_BODY).status_code == 200
    token, _ = served["tokens"].create("reader-only", (Scope.READ,))
    r = TestClient(served["app"], headers=bearer(token)).post("/v1/access-requests/evaluate", json=EVALUATE_BODY)
    assert r.status_code == 403 and "evaluate" in r.json()["error"]["message"]
    r = TestClient(served["app"]).post("/v1/access-requests/evaluate", json=EVALUATE_BODY)
    assert r.status_code == 401
    lines = _audit(served["audit"])[-2:]
    assert [(x["status"], x["token"], x.get("verdict")) for x in lines] == [(403, "reader-only", None),
                                                                             (401, None, None)]


def test_a_very_long_request_is_answered_but_not_remembered(served: dict[str, Any],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from api.answers import MAX_REQUEST_KEY

    client = served["client"]
    long = WHO + "&limit=100" * (MAX_REQUEST_KEY // 10)  # a scalar parameter repeated: the last one counts
    calls = _count_dependency_calls(monkeypatch)
    first, again = client.get(long), client.get(long)
    assert first.status_code == 200 and again.content == first.content
    assert len(calls) == 2  # both through the route
