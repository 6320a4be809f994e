"""Small parts: settings from the environment, the audit log under concurrent writers, the body limit."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import orjson
import pytest

from api.audit import AuditLog
from api.settings import Settings
from iamgraph.errors import InputError


def test_settings_round_trip_through_the_environment(tmp_path: Path) -> None:
    s = Settings(snapshot=tmp_path / "s.json", token_file=tmp_path / "t.json", audit_log=tmp_path / "a.jsonl",
                 usage=tmp_path / "u.duckdb", warm_graph=True)
    back = Settings.from_env(s.to_env())
    assert back == s


@pytest.mark.parametrize(("env", "message"), [
    ({}, "IAMGRAPH_API_SNAPSHOT is not set"),
    ({"IAMGRAPH_API_SNAPSHOT": "s.json"}, "no token file"),
    ({"IAMGRAPH_API_SNAPSHOT": "s.json", "IAMGRAPH_API_ALLOW_ANONYMOUS_LOCAL": "1",
      "IAMGRAPH_API_HOST": "10.0.0.5"}, "loopback"),
    ({"IAMGRAPH_API_SNAPSHOT": "s.json", "IAMGRAPH_API_TOKEN_FILE": "t.json",
      "IAMGRAPH_API_TIME_LIMIT": "soon"}, "number of seconds"),
    ({"IAMGRAPH_API_SNAPSHOT": "s.json", "IAMGRAPH_API_TOKEN_FILE": "t.json",
      "IAMGRAPH_API_TIME_LIMIT": "0"}, "from 0 to 3600"),
])
def test_settings_refuse_what_they_cannot_use(env: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Settings.from_env(env)


def test_audit_lines_never_interleave(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    big = "x" * 20_000  # longer than a pipe buffer: still one line

    def writer(n: int) -> None:
        for i in range(50):
            log.record("access_request.evaluate", f"t{n}", seq=i, blob=big)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "audit.jsonl").read_bytes().splitlines()
    assert len(lines) == 400
    parsed = [orjson.loads(x) for x in lines]
    assert {(p["token"], p["seq"]) for p in parsed} == {(f"t{n}", i) for n in range(8) for i in range(50)}
    assert (tmp_path / "audit.jsonl").stat().st_mode & 0o777 == 0o600


def test_audit_log_writes_integers_beyond_64_bits(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.record("access_request.evaluate", "t", what={"n": 10**30})
    line = (tmp_path / "audit.jsonl").read_text().splitlines()[0]
    assert json.loads(line)["what"] == {"n": 10**30}


def test_bad_content_length_is_400(snapshot_file: Path, tokens: tuple[Path, dict[str, str]]) -> None:
    import asyncio

    from api.limits import BodySizeLimit

    sent: list[dict[str, object]] = []

    async def app(scope: object, receive: object, send: object) -> None:  # never reached
        raise AssertionError

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "headers": [(b"content-length", b"12abc")]}
    asyncio.run(BodySizeLimit(app, 100)(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 400
