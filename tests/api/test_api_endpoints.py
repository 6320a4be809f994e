"""Every endpoint through TestClient on the small snapshot; expectations from AWS's documented behaviour."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from api_helpers import ACCT, BUCKET, LOOPBACK, PII_BUCKET, arn, bearer, small_snapshot
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from iamgraph.serving.tokens import Scope, TokenFile
from iamgraph.snapshot import write_snapshot

ALICE, BOB = arn("user", "alice"), arn("user", "bob")


@pytest.fixture(scope="module")
def client(app_env: dict[str, Any]) -> TestClient:
    return TestClient(app_env["app"], headers=bearer(app_env["tokens"]["admin"]))


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# ------------------------------------------------------------------------------------------- simulate


def test_simulate_against_the_snapshot(client: TestClient) -> None:
    # A user's group policies are part of its identity-based policies (IAM user guide, "IAM user groups").
    r = client.post("/v1/simulate", json={"request": {"principal": ALICE, "action": "s3:ListBucket",
                                                      "resource": BUCKET}})
    assert r.status_code == 200
    body = r.json()
    assert body["source"] == "snapshot" and body["snapshot_hash"].startswith("sha256:")
    res = body["results"][0]
    assert res["decision"] == "Allowed" and not res["conditional"]
    assert res["reasons"][0]["policyId"] == f"{arn('group', 'readers')}:inline/list"
    # Nothing allows bob anything: implicit deny (Policy evaluation logic: "denied by default").
    r = client.post("/v1/simulate", json={"request": {"principal": BOB, "action": "s3:ListBucket",
                                                      "resource": BUCKET}, "explain": False})
    assert r.json()["results"][0]["decision"] == "ImplicitlyDenied"


def test_simulate_batch_explicit_policies_deny_wins_and_discovery(client: TestClient) -> None:
    allow_s3 = doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    deny_get = doc({"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"})
    allow_ip = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                    "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    req = {"principal": f"arn:aws:iam::{ACCT}:user/x", "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}
    lines = [
        {"id": "allow", "request": req, "policies": {"identity": [allow_s3]}},
        # "An explicit deny in any policy overrides any allows" (IAM user guide, Policy evaluation logic).
        {"id": "deny", "request": req, "policies": {"identity": [allow_s3, deny_get]}},
        {"id": "cond", "request": req, "policies": {"identity": [allow_ip]}},
        {"id": "bad", "request": req, "policies": {"identity": [{"Statement": [{"Action": "s3:*"}]}]}},
    ]
    strict = client.post("/v1/simulate", json={"batch": lines}).json()["results"]
    disc = client.post("/v1/simulate", json={"batch": lines, "mode": "discovery"}).json()["results"]
    assert [r["decision"] for r in strict] == ["Allowed", "ExplicitlyDenied", "ImplicitlyDenied", "ImplicitlyDenied"]
    assert strict[3]["error"]  # a malformed policy is reported on its line, never read as a grant
    assert disc[2]["decision"] == "Allowed" and disc[2]["conditional"]
    assert disc[2]["conditions"][0][0]["key"].lower() == "aws:sourceip"
    assert [r["id"] for r in strict] == ["allow", "deny", "cond", "bad"]


def test_simulate_unknown_principal_is_404_alone_and_a_line_error_in_a_batch(client: TestClient) -> None:
    req = {"principal": arn("user", "nobody"), "action": "s3:ListBucket", "resource": BUCKET}
    r = client.post("/v1/simulate", json={"request": req})
    assert r.status_code == 404 and "nobody" in r.json()["error"]["message"]
    r = client.post("/v1/simulate", json={"batch": [{"request": req}]})
    assert r.status_code == 200
    assert r.json()["results"][0]["decision"] == "ImplicitlyDenied" and r.json()["results"][0]["error"]


def test_simulate_needs_exactly_one_form(client: TestClient) -> None:
    r = client.post("/v1/simulate", json={})
    assert r.status_code == 422 and "exactly one" in r.json()["error"]["message"]


# ------------------------------------------------------------------------------------------- graph


def test_who_can_and_pages(client: TestClient) -> None:
    r = client.get("/v1/who-can", params={"resource": BUCKET, "action": "s3:ListBucket"})
    assert r.status_code == 200
    body = r.json()
    direct = {a["principal"] for a in body["accesses"] if a["how"] == "direct"}
    # alice through her group; admin and ops-lambda through Action "*".
    assert {ALICE, arn("role", "admin"), arn("role", "ops-lambda")} <= direct
    assert BOB not in {a["principal"] for a in body["accesses"]}
    total = body["page"]["total"]
    first = client.get("/v1/who-can", params={"resource": BUCKET, "action": "s3:ListBucket", "limit": 1}).json()
    assert first["page"] == {"total": total, "offset": 0, "limit": 1, "next_offset": 1 if total > 1 else None}
    assert first["accesses"] == body["accesses"][:1]
    # Both: the matching actions of that level (s3:ListBucket is List in the service authorization reference).
    r = client.get("/v1/who-can", params={"resource": BUCKET, "action": "s3:List*", "access_level": "List"})
    assert r.status_code == 200 and "s3:ListBucket" in r.json()["actions"]
    r = client.get("/v1/who-can", params={"resource": BUCKET, "action": "s3:ListBucket", "access_level": "Write"})
    assert r.json()["actions"] == [] and r.json()["accesses"] == []
    r = client.get("/v1/who-can", params={"resource": BUCKET, "action": "s3:ListBucket", "access_level": "Sideways"})
    assert r.status_code == 422 and r.json()["error"]["location"] == "access_level"


def test_principal_access_paths_exposure_sod(client: TestClient) -> None:
    r = client.get(f"/v1/principals/{ALICE}/access")
    assert r.status_code == 200
    assert [(a["actions"], a["resource"], a["via"]) for a in r.json()["access"]] == [(["s3:ListBucket"], BUCKET, ALICE)]
    assert client.get(f"/v1/principals/{ALICE}/access", params={"service": "ec2"}).json()["access"] == []
    r = client.get(f"/v1/principals/{arn('role', 'app')}/access", params={"access_level": "read"})
    assert [(a["actions"], a["resource"]) for a in r.json()["access"]] == [(["s3:GetObject"], f"{BUCKET}/*")]
    r = client.get(f"/v1/principals/{arn('role', 'admin')}/paths")
    assert r.status_code == 200 and r.json()["admin"] is True
    r = client.get(f"/v1/principals/{BOB}/paths")
    assert r.json()["admin"] is False and r.json()["escalations"] == []
    assert client.get(f"/v1/principals/{arn('user', 'nobody')}/paths").status_code == 404
    r = client.get("/v1/exposure")
    assert r.status_code == 200 and r.json()["exposures"] == []  # nothing in the small snapshot faces outward
    r = client.get("/v1/sod/conflicts", params={"principal": BOB})
    assert r.status_code == 200 and r.json()["conflicts"] == []
    r = client.get("/v1/sod/conflicts", params={"rule": "NO-SUCH-RULE"})
    assert r.status_code == 404


def test_usage_endpoints_without_a_store_are_409(client: TestClient) -> None:
    for what in ("unused", "recommendation"):
        r = client.get(f"/v1/principals/{ALICE}/{what}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_usage_data"


def test_version_and_health(client: TestClient) -> None:
    v = client.get("/v1/version").json()
    assert v["collected_at"] == "2026-11-01T00:00:00Z" and v["snapshot_hash"].startswith("sha256:")
    h = client.get("/v1/health").json()
    assert h["status"] == "ok" and h["usage_loaded"] is False


# ------------------------------------------------------------------------------------------- access requests


def _evaluate(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/access-requests/evaluate", json=body)
    assert r.status_code == 200, r.json()
    out: dict[str, Any] = r.json()
    return out


def test_access_request_small_cases(client: TestClient) -> None:
    read = _evaluate(client, {"who": {"principal_arn": ALICE},
                              "what": {"managed_policy_arn": arn("policy", "ReadReports")}})
    assert read["verdict"] == "approve"
    new = {(e["action"], e["resource"]) for e in read["new_access"]["entries"]}
    assert ("s3:GetObject", f"{BUCKET}/*") in new
    assert ("s3:ListBucket", BUCKET) not in new  # she has it through her group already
    assert read["coverage"]["already_granted"] >= 1
    deploy = _evaluate(client, {"who": {"principal_arn": BOB}, "what": {"group_arn": arn("group", "deployers")}})
    assert deploy["verdict"] == "deny"
    # iam:PassRole + lambda:CreateFunction + InvokeFunction runs code as a role Lambda may assume.
    assert any(arn("role", "ops-lambda") in p["nodes"] for p in deploy["privilege_escalation"])
    assert "opens_privilege_escalation" in {r["code"] for r in deploy["reasons"]}
    pii = _evaluate(client, {"who": {"new_role": {"account_id": ACCT, "name": "reader", "trust_policy": doc(
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})}},
        "what": {"policy_document": doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{PII_BUCKET}/*"})}})
    assert pii["subject"] == arn("role", "reader")
    assert pii["verdict"] == "review"
    assert {r["code"] for r in pii["reasons"]} >= {"new_sensitive_access"}


def test_new_role_trusting_outsiders(client: TestClient) -> None:
    read = {"policy_document": doc({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET})}

    def role(name: str, principal: Any, condition: Any = None) -> dict[str, Any]:
        st: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
        if condition:
            st["Condition"] = condition
        return {"new_role": {"account_id": ACCT, "name": name, "trust_policy": doc(st)}}

    # "Principal": "*" in a trust policy lets any AWS principal assume the role (IAM user guide, "AWS JSON
    # policy elements: Principal", all principals): never approve.
    out = _evaluate(client, {"who": role("public", "*"), "what": read})
    exp = [r for r in out["reasons"] if r["code"] == "exposes_outside_org"]
    assert out["verdict"] == "deny" and exp and exp[0]["data"]["scope"] == "public"
    # Another account's root delegates to that account: outside the organization, a human should look.
    out = _evaluate(client, {"who": role("vendor", {"AWS": "arn:aws:iam::999999999999:root"}), "what": read})
    exp = [r for r in out["reasons"] if r["code"] == "exposes_outside_org"]
    assert out["verdict"] == "review" and exp and exp[0]["data"]["scope"] == "outside-organization"
    # The account's own root: nobody outside.
    out = _evaluate(client, {"who": role("internal", {"AWS": f"arn:aws:iam::{ACCT}:root"}), "what": read})
    assert "exposes_outside_org" not in {r["code"] for r in out["reasons"]}


def test_admin_grant_is_denied_and_a_truncated_diff_says_so(client: TestClient) -> None:
    out = _evaluate(client, {"who": {"principal_arn": BOB},
                             "what": {"policy_document": doc({"Effect": "Allow", "Action": "*", "Resource": "*"})}})
    assert out["verdict"] == "deny" and out["admin_after"] is True
    assert {"grants_admin", "incomplete_analysis"} <= {r["code"] for r in out["reasons"]}
    assert out["new_access"]["truncated"] and out["new_access"]["actions_considered"] == 5000


def test_access_request_is_deterministic_across_servers(snapshot_file: Path) -> None:
    body = {"who": {"principal_arn": BOB}, "what": {"policy_document": doc(
        {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"})},
        "need": {"actions": ["s3:GetObject"], "resources": [f"{BUCKET}/*"]}}
    outs = []
    for _ in range(2):
        c = TestClient(create_app(Settings(snapshot=snapshot_file, allow_anonymous_local=True)), client=LOOPBACK)
        out = _evaluate(c, body)
        out.pop("graph_cost")  # timings are the one thing that may differ
        outs.append(orjson.dumps(out))
    assert outs[0] == outs[1]


def test_access_request_bad_input(client: TestClient) -> None:
    def post(body: dict[str, Any]) -> Any:
        return client.post("/v1/access-requests/evaluate", json=body)

    good_what = {"managed_policy_arn": arn("policy", "ReadReports")}
    r = post({"who": {"principal_arn": ALICE, "new_role": {"account_id": ACCT, "name": "x", "trust_policy": {}}},
              "what": good_what})
    assert r.status_code == 422 and "exactly one" in r.json()["error"]["message"]
    assert r.json()["error"]["location"] == "who"
    r = post({"who": {"principal_arn": ALICE}, "what": {}})
    assert r.status_code == 422 and r.json()["error"]["location"] == "what"
    r = post({"who": {"principal_arn": arn("user", "nobody")}, "what": good_what})
    assert r.status_code == 404
    r = post({"who": {"principal_arn": ALICE}, "what": {"policy_document": {"Statement": [{"Action": "s3:*"}]}}})
    assert r.status_code == 400
    assert r.json()["error"]["location"].startswith("what.policy_document")
    r = post({"who": {"principal_arn": arn("role", "app")}, "what": {"group_arn": arn("group", "readers")}})
    assert r.status_code == 400 and "users" in r.json()["error"]["message"]
    r = post({"who": {"principal_arn": ALICE}, "what": good_what, "duration_hours": 0})
    assert r.status_code == 422 and r.json()["error"]["location"] == "duration_hours"
    r = post({"who": {"principal_arn": ALICE}, "what": good_what, "need": {"actions": ["nope:Nothing"]}})
    assert r.status_code == 400 and r.json()["error"]["location"] == "need.actions[0]"


def test_audit_log_records_every_evaluate_call(app_env: dict[str, Any]) -> None:
    client = TestClient(app_env["app"], headers=bearer(app_env["tokens"]["evaluator"]))
    before = app_env["audit"].read_bytes().count(b"\n") if app_env["audit"].exists() else 0
    _evaluate(client, {"who": {"principal_arn": ALICE}, "what": {"managed_policy_arn": arn("policy", "ReadReports")},
                       "justification": "quarterly report", "duration_hours": 8})
    client.post("/v1/access-requests/evaluate", json={"who": {"principal_arn": arn("user", "nobody")},
                                                      "what": {"managed_policy_arn": arn("policy", "ReadReports")}})
    lines = [orjson.loads(x) for x in app_env["audit"].read_bytes().splitlines()[before:]]
    assert len(lines) == 2
    ok, failed = lines
    assert ok["token"] == "evaluator" and ok["verdict"] == "approve" and ok["justification"] == "quarterly report"
    assert ok["principal"] == {"principal_arn": ALICE} and ok["what"]["managed_policy_arn"].endswith("ReadReports")
    assert failed["verdict"] is None and "nobody" in failed["error"]


# ------------------------------------------------------------------------------------------- reload


def _variant(collected_at: str, alice_can_list: bool) -> Any:
    snap = small_snapshot().model_copy(update={"collected_at": collected_at})
    if not alice_can_list:
        snap.accounts[0].users[0].groups.clear()
    return snap


def test_reload_is_atomic_and_refuses_bad_snapshots(tmp_path: Path) -> None:
    path = tmp_path / "snap.json.gz"
    write_snapshot(_variant("2026-11-01T00:00:00Z", True), path)
    tf = TokenFile(tmp_path / "t.json")
    admin, _ = tf.create("admin", tuple(Scope))
    app = create_app(Settings(snapshot=path, token_file=tmp_path / "t.json"))
    client = TestClient(app, headers=bearer(admin))
    old = client.get("/v1/version").json()

    # A request in flight holds the state it started with.
    in_flight = app.state.holder.current
    write_snapshot(_variant("2026-11-02T00:00:00Z", False), path)
    r = client.post("/v1/snapshots/reload")
    assert r.status_code == 200 and r.json()["changed"] is True
    new = client.get("/v1/version").json()
    assert new["collected_at"] == "2026-11-02T00:00:00Z" and new["generation"] == old["generation"] + 1
    assert in_flight.evaluator.ask(ALICE, "s3:ListBucket", BUCKET).allowed
    assert not app.state.holder.current.evaluator.ask(ALICE, "s3:ListBucket", BUCKET).allowed

    # Garbage, and a stored hash that does not match: refused, the current snapshot keeps serving.
    good = path.read_bytes()
    for bad in (b"\x1f\x8b garbage", orjson.dumps({**orjson.loads(orjson.dumps(
            _variant("2026-11-03T00:00:00Z", True).model_dump(mode="json"))), "content_hash": "sha256:" + "0" * 64})):
        path.write_bytes(bad)
        r = client.post("/v1/snapshots/reload")
        assert r.status_code == 409, r.json()
        assert client.get("/v1/version").json()["snapshot_hash"] == new["snapshot_hash"]
    path.write_bytes(good)


def test_requests_during_reload_see_one_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    write_snapshot(_variant("2026-11-01T00:00:00Z", True), path)
    app = create_app(Settings(snapshot=path, allow_anonymous_local=True))
    client = TestClient(app, client=LOOPBACK)
    batch = [{"id": i, "request": {"principal": ALICE, "action": "s3:ListBucket", "resource": BUCKET}}
             for i in range(400)]
    results: list[Any] = []

    def ask() -> None:
        results.append(client.post("/v1/simulate", json={"batch": batch}).json())

    versions = [_variant(f"2026-11-{d:02d}T00:00:00Z", d % 2 == 0) for d in range(2, 8)]
    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for v in versions:
        write_snapshot(v, path)
        assert client.post("/v1/snapshots/reload").status_code == 200
    for t in threads:
        t.join()
    assert len(results) == 4
    for res in results:
        decisions = {r["decision"] for r in res["results"]}
        assert len(decisions) == 1, "a request mixed two snapshots"
