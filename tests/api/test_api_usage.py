"""The usage-backed endpoints with a real usage store: the demo organization's CloudTrail, ingested."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from api_helpers import LOOPBACK
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from api.settings import Settings
from iamgraph.cli import app as cli_app
from iamgraph.demo import generate_demo
from iamgraph.demo.config import DemoConfig

pytestmark = pytest.mark.slow  # demo organization / property-based: tens of seconds


@pytest.fixture(scope="module")
def usage_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("api-usage")
    # The activity ends today, so the API's window (which ends now) is covered by it (no removal without coverage).
    res = generate_demo(out / "demo", DemoConfig(days=30, events_per_day=10, end_date=datetime.now(UTC)))
    db = out / "usage.duckdb"
    r = CliRunner().invoke(cli_app, ["usage", "ingest", "--db", str(db), "--cloudtrail", str(res.cloudtrail_root),
                                     "--snapshot", str(res.snapshot)])
    assert r.exit_code == 0, r.output
    items = {i["id"]: i for i in orjson.loads(Path(res.planted).read_bytes())["items"]}
    app = create_app(Settings(snapshot=res.snapshot, usage=db, allow_anonymous_local=True))
    return {"client": TestClient(app, client=LOOPBACK), "items": items}


def test_unused_reports_the_planted_unused_permissions(usage_env: dict[str, Any]) -> None:
    item = usage_env["items"]["unused.services-and-actions"]  # dynamodb:* and s3:DeleteObject never used
    principal = item["principals"][0]
    r = usage_env["client"].get(f"/v1/principals/{principal}/unused")
    assert r.status_code == 200, r.text
    found = {(f["kind"], f["subject"]) for f in r.json()["findings"]}
    assert ("unused-service", "dynamodb") in found
    assert ("unused-action", "s3:DeleteObject") in found
    # It reads its data bucket every day: s3:GetObject is used, so never reported unused.
    assert not any(subject == "s3:GetObject" for _, subject in found)
    health = usage_env["client"].get("/v1/health").json()
    assert health["usage_loaded"] is True


def test_recommendation_drops_what_was_never_used(usage_env: dict[str, Any]) -> None:
    principal = usage_env["items"]["unused.services-and-actions"]["principals"][0]
    # The demo logs 30 days, ending at its newest activity: a longer window would not be covered by the
    # evidence (no removal without it).
    r = usage_env["client"].get(f"/v1/principals/{principal}/recommendation", params={"days": 29})
    assert r.status_code == 200, r.text
    rec = r.json()["recommendation"]
    assert rec["principal_arn"] == principal
    emitted = [p for p in rec["proposals"] if p["status"] == "emitted"]
    assert emitted
    actions: set[str] = set()
    for p in emitted:
        for doc in p["proposed"]:
            for st in doc["Statement"]:
                acts = st.get("Action", [])
                actions.update([acts] if isinstance(acts, str) else acts)
    assert "s3:GetObject" in actions and "s3:DeleteObject" not in actions and "dynamodb:DeleteTable" not in actions
    # DESIGN: unused is only claimed for observable actions; the dynamodb actions kept are the unobservable ones.
    assert {a for a in actions if a.startswith("dynamodb:")} <= set(rec["unobservable_actions"])


def test_usage_endpoints_404_for_unknown_principals(usage_env: dict[str, Any]) -> None:
    for what in ("unused", "recommendation"):
        r = usage_env["client"].get(f"/v1/principals/arn:aws:iam::123456789012:role/nobody/{what}")
        assert r.status_code == 404
