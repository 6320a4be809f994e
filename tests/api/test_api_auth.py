"""Bearer tokens: storage, 401 vs 403, scopes, anonymous local mode, the token CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ACCT, LOOPBACK, bearer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from api.settings import Settings
from iamgraph.cli import app as cli_app
from iamgraph.errors import InputError
from iamgraph.serving.tokens import Scope, TokenFile, TokenVerifier, parse_scopes

EVALUATE = {"who": {"principal_arn": f"arn:aws:iam::{ACCT}:user/alice"},
            "what": {"managed_policy_arn": f"arn:aws:iam::{ACCT}:policy/ReadReports"}}

# Every endpoint with the scope it needs and a request that is otherwise valid.
ENDPOINTS: list[tuple[str, str, Scope, Any]] = [
    ("GET", "/v1/health", Scope.READ, None),
    ("GET", "/v1/version", Scope.READ, None),
    ("POST", "/v1/simulate", Scope.READ, {"request": {"principal": f"arn:aws:iam::{ACCT}:user/alice",
                                                      "action": "s3:ListBucket",
                                                      "resource": "arn:aws:s3:::reports-bucket"}}),
    ("GET", "/v1/who-can?resource=arn:aws:s3:::reports-bucket&action=s3:ListBucket", Scope.READ, None),
    ("GET", f"/v1/principals/arn:aws:iam::{ACCT}:user/alice/access", Scope.READ, None),
    ("GET", f"/v1/principals/arn:aws:iam::{ACCT}:user/alice/paths", Scope.READ, None),
    ("GET", "/v1/exposure", Scope.READ, None),
    ("GET", "/v1/sod/conflicts", Scope.READ, None),
    ("GET", f"/v1/principals/arn:aws:iam::{ACCT}:user/alice/unused", Scope.READ, None),
    ("GET", f"/v1/principals/arn:aws:iam::{ACCT}:user/alice/recommendation", Scope.READ, None),
    ("POST", "/v1/access-requests/evaluate", Scope.EVALUATE, EVALUATE),
    ("POST", "/v1/snapshots/reload", Scope.ADMIN, None),
]


@pytest.fixture(scope="module")
def client(app_env: dict[str, Any]) -> TestClient:
    return TestClient(app_env["app"])


def _call(client: TestClient, method: str, url: str, body: Any, headers: dict[str, str]) -> Any:
    return client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize(("method", "url", "scope", "body"), ENDPOINTS, ids=[e[1].split("?")[0] for e in ENDPOINTS])
def test_every_endpoint_needs_a_token(client: TestClient, method: str, url: str, scope: Scope, body: Any) -> None:
    r = _call(client, method, url, body, {})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("method", "url", "scope", "body"), ENDPOINTS, ids=[e[1].split("?")[0] for e in ENDPOINTS])
def test_invalid_and_revoked_tokens_are_401(client: TestClient, app_env: dict[str, Any], method: str, url: str,
                                            scope: Scope, body: Any) -> None:
    good = app_env["tokens"]["admin"]
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    for token in (tampered, "not-a-token", app_env["tokens"]["revoked"]):
        r = _call(client, method, url, body, bearer(token))
        assert r.status_code == 401, token
        assert 'error="invalid_token"' in r.headers["www-authenticate"]


@pytest.mark.parametrize(("method", "url", "scope", "body"), ENDPOINTS, ids=[e[1].split("?")[0] for e in ENDPOINTS])
def test_scopes_403_when_missing_and_pass_when_held(client: TestClient, app_env: dict[str, Any], method: str,
                                                   url: str, scope: Scope, body: Any) -> None:
    holders = {"reader": {Scope.READ}, "evaluator": {Scope.READ, Scope.EVALUATE}, "admin": set(Scope)}
    for name, scopes in holders.items():
        r = _call(client, method, url, body, bearer(app_env["tokens"][name]))
        if scope in scopes:
            # Authorised: whatever the endpoint answers, it is not an auth error (usage endpoints say 409).
            assert r.status_code not in (401, 403), (name, r.json())
        else:
            assert r.status_code == 403, name
            assert r.json()["error"]["code"] == "forbidden"
            assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_token_file_stores_only_salted_hashes(tmp_path: Path) -> None:
    tf = TokenFile(tmp_path / "t.json")
    token, rec = tf.create("ci", (Scope.READ, Scope.EVALUATE))
    token2, rec2 = tf.create("bot", (Scope.READ,))
    text = (tmp_path / "t.json").read_text()
    secret = token.split("_", 2)[2]
    assert secret not in text and token not in text
    assert rec.salt != rec2.salt
    assert (tmp_path / "t.json").stat().st_mode & 0o777 == 0o600
    verifier = TokenVerifier(tf.load())
    assert verifier.verify(token) == rec
    assert verifier.verify(token2) == rec2
    # The other token's secret with this token's id: wrong.
    assert verifier.verify(f"igt_{rec.token_id}_{token2.split('_', 2)[2]}") is None


def test_token_file_errors_name_the_place(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text('{"version": 1, "tokens": [{"id": "x"}]}')
    with pytest.raises(InputError, match=r"t\.json: tokens\[0\]"):
        TokenFile(p).load()
    p.write_text("{not json")
    with pytest.raises(InputError, match="invalid JSON"):
        TokenFile(p).load()
    with pytest.raises(InputError, match="unknown scope"):
        parse_scopes("read,root")
    tf = TokenFile(tmp_path / "ok.json")
    tf.create("a", (Scope.READ,))
    with pytest.raises(InputError, match="exists"):
        tf.create("a", (Scope.READ,))


def test_revocation_takes_effect_without_restart(snapshot_file: Path, tmp_path: Path) -> None:
    tf = TokenFile(tmp_path / "t.json")
    token, _ = tf.create("temp", (Scope.READ,))
    client = TestClient(create_app(Settings(snapshot=snapshot_file, token_file=tmp_path / "t.json")))
    assert client.get("/v1/health", headers=bearer(token)).status_code == 200
    tf.revoke("temp")
    assert client.get("/v1/health", headers=bearer(token)).status_code == 401


def test_no_token_file_refused_unless_anonymous_local(snapshot_file: Path) -> None:
    with pytest.raises(InputError, match="token"):
        create_app(Settings(snapshot=snapshot_file))
    with pytest.raises(InputError, match="loopback"):
        create_app(Settings(snapshot=snapshot_file, allow_anonymous_local=True, host="0.0.0.0"))
    client = TestClient(create_app(Settings(snapshot=snapshot_file, allow_anonymous_local=True)), client=LOOPBACK)
    assert client.get("/v1/health").status_code == 200
    assert client.post("/v1/access-requests/evaluate", json=EVALUATE).status_code == 200


def test_anonymous_local_refuses_non_loopback_callers(snapshot_file: Path) -> None:
    app = create_app(Settings(snapshot=snapshot_file, allow_anonymous_local=True))
    remote = TestClient(app, client=("203.0.113.9", 50000))
    assert remote.get("/v1/health").status_code == 401
    local = TestClient(app, client=("127.0.0.1", 50000))
    assert local.get("/v1/health").status_code == 200


def test_token_cli_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    tf = tmp_path / "tokens.json"
    res = runner.invoke(cli_app, ["token", "create", "--name", "portal", "--scopes", "read,evaluate",
                                  "--token-file", str(tf)])
    assert res.exit_code == 0, res.output
    token = res.output.strip().splitlines()[-1]
    assert token.startswith("igt_")
    assert TokenVerifier(TokenFile(tf).load()).verify(token) is not None
    res = runner.invoke(cli_app, ["token", "list", "--token-file", str(tf), "--json"])
    rows = json.loads(res.output)
    assert [(r["name"], r["scopes"], r["revoked"]) for r in rows] == [("portal", ["read", "evaluate"], False)]
    assert "sha256" not in res.output and "salt" not in res.output
    res = runner.invoke(cli_app, ["token", "revoke", "portal", "--token-file", str(tf)])
    assert res.exit_code == 0
    assert TokenVerifier(TokenFile(tf).load()).verify(token) is None
    res = runner.invoke(cli_app, ["token", "create", "--name", "x", "--scopes", "sudo", "--token-file", str(tf)])
    assert res.exit_code == 2 and "unknown scope" in res.output


def test_serve_refuses_unsafe_configurations(snapshot_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli_app, ["serve", "--snapshot", str(snapshot_file)])
    assert res.exit_code == 2 and "--token-file" in res.output
    res = runner.invoke(cli_app, ["serve", "--snapshot", str(snapshot_file), "--allow-anonymous-local",
                                  "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "loopback" in res.output
    res = runner.invoke(cli_app, ["serve", "--snapshot", str(tmp_path / "missing.json"), "--allow-anonymous-local"])
    assert res.exit_code == 2 and "no such snapshot" in res.output
