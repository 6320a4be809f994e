"""Access requests on the demo organization (docs/demo-org.md; principals found through planted.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from api_helpers import LOOPBACK
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from iamgraph.demo import generate_demo
from iamgraph.demo.config import DemoConfig

pytestmark = pytest.mark.slow  # demo organization / property-based: tens of seconds


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("api-demo")
    result = generate_demo(out, DemoConfig(with_activity=False))
    planted = orjson.loads(Path(result.planted).read_bytes())
    items = {i["id"]: i for i in planted["items"]}
    app = create_app(Settings(snapshot=result.snapshot, allow_anonymous_local=True))
    prod = planted["accounts"]["prod-01"]
    return {"client": TestClient(app, client=LOOPBACK), "items": items, "prod": prod,
            # An ECS task role of the orders service: a workload with narrow rights of its own.
            "requester": items["deviation.new-region"]["principals"][0],
            # The admin role the planted PassRole-to-Lambda escalation reaches (Lambda may assume it).
            "lambda_admin": items["privesc.passrole-lambda"]["resources"][0]}


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _evaluate(demo: dict[str, Any], what: dict[str, Any], **more: Any) -> dict[str, Any]:
    r = demo["client"].post("/v1/access-requests/evaluate",
                            json={"who": {"principal_arn": demo["requester"]}, "what": what, **more})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _codes(out: dict[str, Any]) -> set[str]:
    return {r["code"] for r in out["reasons"]}


def test_harmless_read_grant_is_approved(demo: dict[str, Any]) -> None:
    bucket = f"arn:aws:s3:::examplecorp-shared-reports-{demo['prod']}"  # classified Internal, not PII/PHI/PCI
    out = _evaluate(demo, {"policy_document": _doc(
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [bucket, f"{bucket}/*"]})})
    assert out["verdict"] == "approve", out["reasons"]
    assert {(e["action"], e["resource"]) for e in out["new_access"]["entries"]} >= {
        ("s3:ListBucket", bucket), ("s3:GetObject", f"{bucket}/*")}
    assert out["privilege_escalation"] == [] and out["sod_conflicts"] == []


def test_grant_opening_a_path_to_admin_is_denied_with_the_path(demo: dict[str, Any]) -> None:
    # iam:PassRole of an admin role to Lambda + CreateFunction + InvokeFunction: code runs as that role
    # (the planted privesc.passrole-lambda technique, granted to someone new).
    out = _evaluate(demo, {"policy_document": _doc(
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": demo["lambda_admin"]},
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"})})
    assert out["verdict"] == "deny"
    assert "opens_privilege_escalation" in _codes(out)
    paths = [p["nodes"] for p in out["privilege_escalation"]]
    assert any(p[0] == demo["requester"] and demo["lambda_admin"] in p for p in paths), paths
    hop = next(h for p in out["privilege_escalation"] for h in p["hops"] if h["target"] == demo["lambda_admin"])
    assert "iam:PassRole" in hop["via"]


def test_grant_creating_an_sod_conflict_goes_to_review_with_the_rule(demo: dict[str, Any]) -> None:
    # Managing GuardDuty and suppressing its findings: SOD-GUARDDUTY-MANAGE-VS-SUPPRESS (sod-rules.yaml).
    out = _evaluate(demo, {"policy_document": _doc(
        {"Effect": "Allow", "Action": ["guardduty:UpdateDetector", "guardduty:ArchiveFindings"], "Resource": "*"})})
    assert out["verdict"] == "review", out["reasons"]
    assert "creates_sod_conflict" in _codes(out)
    assert "SOD-GUARDDUTY-MANAGE-VS-SUPPRESS" in {c["rule"] for c in out["sod_conflicts"]}
    conflict = next(c for c in out["sod_conflicts"] if c["rule"] == "SOD-GUARDDUTY-MANAGE-VS-SUPPRESS")
    assert {e["action"] for e in conflict["evidence"]} == {"guardduty:UpdateDetector", "guardduty:ArchiveFindings"}
    assert "opens_privilege_escalation" not in _codes(out)


def test_broad_grant_with_a_stated_need_gets_the_scoped_alternative(demo: dict[str, Any]) -> None:
    bucket = f"arn:aws:s3:::examplecorp-shared-reports-{demo['prod']}"
    out = _evaluate(demo, {"policy_document": _doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})},
                    need={"actions": ["s3:GetObject"], "resources": [f"{bucket}/*"]},
                    justification="read the weekly reports")
    assert out["verdict"] == "review"
    assert "broader_than_need" in _codes(out)
    alt = out["alternative"]
    assert alt["policy"]["Statement"] == [{"Sid": "StatedNeed", "Effect": "Allow", "Action": "s3:GetObject",
                                           "Resource": f"{bucket}/*"}]
    assert alt["verified"] is True
    assert alt["covers_need"] == [f"s3:GetObject on {bucket}/*"] and alt["not_covered"] == []
    assert alt["removed_from_grant_actions"] > 100  # s3:* has well over a hundred actions
    # s3:* on * reaches the PII buckets too.
    assert "new_sensitive_access" in _codes(out)


def test_same_request_same_answer(demo: dict[str, Any]) -> None:
    what = {"policy_document": _doc({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})}
    a, b = _evaluate(demo, what), _evaluate(demo, what)
    assert a == b and a["request_id"].startswith("ar-")


def test_admin_permission_set_for_an_identity_center_user_is_denied(demo: dict[str, Any]) -> None:
    from iamgraph.snapshot import read_snapshot

    client = demo["client"]
    snap = read_snapshot(client.app.state.settings.snapshot)
    ic = snap.identity_center
    admin_ps = next(p for p in ic.permission_sets if p.name == "AdministratorAccess")
    assert admin_ps.aws_managed_policies == ["arn:aws:iam::aws:policy/AdministratorAccess"]
    # A user with no way to admin anywhere today (the "before" side of the comparison).
    user = next(u for u in ic.users if not client.get(
        f"/v1/principals/identitycenter:{ic.identity_store_id}:user/{u.user_id}/paths").json()["escalations"])
    node = f"identitycenter:{ic.identity_store_id}:user/{user.user_id}"
    r = client.post("/v1/access-requests/evaluate", json={
        "who": {"identity_center": {"type": "USER", "id": user.user_id}},
        "what": {"permission_set_arn": admin_ps.arn, "account_id": demo["prod"]}})
    assert r.status_code == 200, r.text
    out = r.json()
    # The set is provisioned as AWSReservedSSO_AdministratorAccess_* under /aws-reserved/sso.amazonaws.com/
    # (IAM Identity Center user guide, "Permission sets"); signing in gives that role's session.
    assert out["subject"].startswith(
        f"arn:aws:iam::{demo['prod']}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_")
    assert out["verdict"] == "deny"
    assert any(p["nodes"][0] == node and out["subject"] in p["nodes"] for p in out["privilege_escalation"])
    # "*" expands to more actions than the diff takes one by one: said, not hidden.
    assert out["new_access"]["truncated"] and "incomplete_analysis" in _codes(out)
