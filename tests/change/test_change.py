"""Change analysis (iamgraph.change): one judgement behind the API's access requests, ``iamgraph request
evaluate`` and ``iamgraph diff``; and the question interface's overrides and stand-ins never touch the snapshot."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from api.settings import Settings
from iamgraph.cli import app
from iamgraph.demo import generate_demo
from iamgraph.demo.config import DemoConfig
from iamgraph.eval import ALLOW_ALL, Mode, Overrides, SnapshotEvaluator, StandIn
from iamgraph.query.sensitive import classification
from iamgraph.snapshot import SnapshotIndex, read_snapshot, write_snapshot
from iamgraph.snapshot.model import InlinePolicy, Role

pytestmark = pytest.mark.slow  # demo organization: tens of seconds

runner = CliRunner()
LOOPBACK = ("127.0.0.1", 50000)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("change-demo")
    result = generate_demo(out, DemoConfig(with_activity=False))
    planted = orjson.loads(Path(result.planted).read_bytes())
    items = {i["id"]: i for i in planted["items"]}
    app_ = create_app(Settings(snapshot=result.snapshot, allow_anonymous_local=True))
    return {"snapshot": Path(result.snapshot), "client": TestClient(app_, client=LOOPBACK), "items": items,
            "prod": planted["accounts"]["prod-01"], "tmp": out,
            "requester": items["deviation.new-region"]["principals"][0],
            "lambda_admin": items["privesc.passrole-lambda"]["resources"][0]}


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _grants(demo: dict[str, Any]) -> dict[str, dict[str, Any]]:
    bucket = f"arn:aws:s3:::examplecorp-shared-reports-{demo['prod']}"
    return {
        "approve": _doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                         "Resource": [bucket, f"{bucket}/*"]}),
        "deny": _doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": demo["lambda_admin"]},
                     {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"],
                      "Resource": "*"}),
        "review": _doc({"Effect": "Allow", "Action": ["guardduty:UpdateDetector", "guardduty:ArchiveFindings"],
                        "Resource": "*"}),
    }


@pytest.mark.parametrize("expected", ["approve", "review", "deny"])
def test_request_evaluate_gives_the_api_verdict_and_reasons(demo: dict[str, Any], expected: str) -> None:
    doc = _grants(demo)[expected]
    api = demo["client"].post("/v1/access-requests/evaluate",
                              json={"who": {"principal_arn": demo["requester"]}, "what": {"policy_document": doc}})
    assert api.status_code == 200, api.text
    policy = demo["tmp"] / f"grant-{expected}.json"
    policy.write_text(json.dumps(doc))
    res = runner.invoke(app, ["request", "evaluate", "-s", str(demo["snapshot"]), "-p", demo["requester"],
                              "--policy", str(policy), "--json"])
    # Exit codes: 0 approve, 1 review, 3 deny (docs/api.md, the CLI's help).
    assert res.exit_code == {"approve": 0, "review": 1, "deny": 3}[expected], res.output
    cli = json.loads(res.stdout)
    out = api.json()
    assert cli["verdict"] == out["verdict"] == expected
    assert [r["code"] for r in cli["reasons"]] == [r["code"] for r in out["reasons"]]
    assert {(e["action"], e["resource"]) for e in cli["new_access"]["entries"]} == {
        (e["action"], e["resource"]) for e in out["new_access"]["entries"]}
    assert [p["path"]["nodes"] for p in cli["privilege_escalation"]] == [p["nodes"] for p in
                                                                       out["privilege_escalation"]]


def test_request_evaluate_text_leads_with_the_verdict(demo: dict[str, Any]) -> None:
    policy = demo["tmp"] / "grant-deny-text.json"
    policy.write_text(json.dumps(_grants(demo)["deny"]))
    res = runner.invoke(app, ["request", "evaluate", "-s", str(demo["snapshot"]), "-p", demo["requester"],
                              "--policy", str(policy)])
    assert res.exit_code == 3
    first = res.stdout.strip().splitlines()[0]
    assert first.startswith("DENY ") and "1 new escalation path" in first, first
    assert "opens_privilege_escalation" in res.stdout


@pytest.mark.parametrize("args, message", [
    (["--policy", "/nonexistent/grant.json"], "cannot read the policy"),
    (["--policy", "{bad}"], "cannot read the policy"),
    ([], "exactly one of --policy"),
    (["--policy", "GRANT", "--group", "arn:aws:iam::1:group/x"], "exactly one of --policy"),
])
def test_request_evaluate_bad_input_is_one_line_and_exit_2(demo: dict[str, Any], args: list[str],
                                                           message: str) -> None:
    grant = demo["tmp"] / "ok.json"
    grant.write_text(json.dumps(_grants(demo)["approve"]))
    args = [str(grant) if a == "GRANT" else a for a in args]
    res = runner.invoke(app, ["request", "evaluate", "-s", str(demo["snapshot"]), "-p", demo["requester"], *args])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_request_evaluate_refuses_an_unknown_principal(demo: dict[str, Any]) -> None:
    grant = demo["tmp"] / "ok2.json"
    grant.write_text(json.dumps(_grants(demo)["approve"]))
    res = runner.invoke(app, ["request", "evaluate", "-s", str(demo["snapshot"]), "-p",
                              f"arn:aws:iam::{demo['prod']}:role/ghost", "--policy", str(grant)])
    assert res.exit_code == 2 and "the snapshot has no principal" in res.output


def test_diff_of_a_snapshot_with_itself_is_no_change(demo: dict[str, Any]) -> None:
    res = runner.invoke(app, ["diff", str(demo["snapshot"]), str(demo["snapshot"])])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("NO CHANGE")


def test_diff_reports_a_new_admin_and_its_removal(demo: dict[str, Any]) -> None:
    # An inline AdministratorAccess-like policy on a narrow workload role makes it admin-equivalent
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_job-functions.html#jf_administrator).
    snap = read_snapshot(demo["snapshot"])
    role_arn = demo["requester"]
    changed = snap.model_copy(deep=True)
    role = next(r for a in changed.accounts for r in a.roles if r.arn == role_arn)
    role.inline_policies.append(InlinePolicy(name="drift-admin", document=_doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"})))
    changed.content_hash = None
    new = demo["tmp"] / "changed.json.gz"
    write_snapshot(changed, new)
    res = runner.invoke(app, ["diff", str(demo["snapshot"]), str(new), "--json"])
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert out["changed"] is True
    assert role_arn in {e["principal"] for e in out["admins"]["added"]}
    assert out["admins"]["removed"] == []
    # The other way round, the admin is lost.
    back = json.loads(runner.invoke(app, ["diff", str(new), str(demo["snapshot"]), "--json"]).stdout)
    assert role_arn in {e["principal"] for e in back["admins"]["removed"]}
    assert back["admins"]["added"] == []
    text = runner.invoke(app, ["diff", str(demo["snapshot"]), str(new)])
    assert text.stdout.startswith("CHANGED") and "admin-equivalent principals, gained" in text.stdout


def test_stand_ins_and_overrides_never_touch_the_shared_index(demo: dict[str, Any]) -> None:
    index = SnapshotIndex(read_snapshot(demo["snapshot"]))
    ev = SnapshotEvaluator(index)
    roles_before = dict(index.roles)
    account = demo["prod"]
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(sum(1 for arn in list(index.roles) if "stand-in" in arn))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(50):
            stand_in = StandIn(entity=Role(arn=f"arn:aws:iam::{account}:role/stand-in-{i}", name=f"stand-in-{i}",
                                           role_id="AROASTANDIN", trust_policy=_doc()))
            d = ev.ask(stand_in, "iam:CreateUser", f"arn:aws:iam::{account}:user/x", mode=Mode.DISCOVERY,
                       overrides=Overrides(add_identity=(ALLOW_ALL,)))
            assert d.possible or d.blocked_by  # an allow-all identity: only a guardrail can say no
    finally:
        stop.set()
        watcher.join()
    assert index.roles == roles_before
    assert not any(seen)


def test_overrides_drop_once_and_replace_every_occurrence() -> None:
    from iamgraph.eval import PolicySet, PolicyType, named_policy

    a = named_policy(_doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}), "arn:p", PolicyType.IDENTITY)
    ps = PolicySet(identity=(a, a))
    # A managed policy detached from a user still applies through a group that attaches it too.
    assert Overrides(drop_identity=("arn:p",)).apply(ps).identity == (a,)
    assert Overrides(replace_identity=("arn:p",)).apply(ps).identity == ()
    assert Overrides(allow_all=True).apply(ps).identity == (a, a, ALLOW_ALL)


def test_report_with_a_baseline_has_the_diff_section(demo: dict[str, Any]) -> None:
    from iamgraph.report.html import render_html
    from iamgraph.report.review import build_review

    snap = read_snapshot(demo["snapshot"])
    changed = snap.model_copy(deep=True)
    role = next(r for a in changed.accounts for r in a.roles if r.arn == demo["requester"])
    role.inline_policies.append(InlinePolicy(name="drift-admin", document=_doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"})))
    review = build_review(changed, baseline=snap, baseline_source="last-week.json.gz")
    assert review.drift is not None
    assert ("admin-equivalent", "new", demo["requester"]) in {r[:3] for r in review.drift.rows}
    html = render_html(review)
    assert "Changes since the baseline" in html and "last-week.json.gz" in html
    # Without a baseline there is no such section.
    assert "Changes since the baseline" not in render_html(build_review(snap))


def test_trust_edit_letting_a_workload_assume_an_admin_role_is_denied(demo: dict[str, Any]) -> None:
    from iamgraph.change import ExistingPrincipal, SnapshotBase, TrustPolicyEdit, Verdict, evaluate_grant

    # The admin role the planted PassRole technique reaches, now trusting the narrow workload role: the
    # workload can assume it (same account: the trust policy naming the role ARN is enough,
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
    admin, requester = demo["lambda_admin"], demo["requester"]
    trust = _doc({"Effect": "Allow", "Principal": {"AWS": requester}, "Action": "sts:AssumeRole"})
    ev = evaluate_grant(SnapshotBase(read_snapshot(demo["snapshot"])), ExistingPrincipal(principal_arn=admin),
                        TrustPolicyEdit(trust_policy=trust))
    assert ev.verdict is Verdict.DENY
    assert any(r.code == "opens_privilege_escalation" and r.data.get("principal") == requester for r in ev.reasons)
    assert ev.new_access == ()  # the role's own permissions do not change


def test_removing_a_deny_policy_is_judged_by_what_it_opens(demo: dict[str, Any]) -> None:
    from iamgraph.change import ExistingPrincipal, PolicyRemoval, SnapshotBase, Verdict, evaluate_grant

    snap = read_snapshot(demo["snapshot"])
    role = next(r for a in snap.accounts for r in a.roles if r.arn == demo["requester"])
    bucket = f"arn:aws:s3:::examplecorp-shared-reports-{demo['prod']}"
    role.inline_policies.append(InlinePolicy(name="reports", document=_doc(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{bucket}/*"})))
    role.inline_policies.append(InlinePolicy(name="guard", document=_doc(
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{bucket}/*"})))
    base = SnapshotBase(snap)
    ev = evaluate_grant(base, ExistingPrincipal(principal_arn=demo["requester"]), PolicyRemoval(policy="guard"))
    assert ("s3:GetObject", f"{bucket}/*") in {(e.action, e.resource) for e in ev.new_access}
    # Removing the Allow instead opens nothing.
    quiet = evaluate_grant(base, ExistingPrincipal(principal_arn=demo["requester"]), PolicyRemoval(policy="reports"))
    assert quiet.new_access == () and quiet.verdict is Verdict.APPROVE
    assert [r.code for r in quiet.reasons] == ["no_new_access"]


def test_request_evaluate_takes_the_short_principal_forms(demo: dict[str, Any]) -> None:
    grant = demo["tmp"] / "ok3.json"
    grant.write_text(json.dumps(_grants(demo)["approve"]))
    res = runner.invoke(app, ["request", "evaluate", "-s", str(demo["snapshot"]), "-p", "role/SecurityAuditHub",
                              "--policy", str(grant), "--json"])
    assert res.exit_code in (0, 1), res.output
    assert json.loads(res.stdout)["subject"].endswith(":role/SecurityAuditHub")
    # The workload role's name is in three accounts: a short form naming it is ambiguous, never a guess.
    short = "role/" + demo["requester"].rsplit("/", 1)[1]
    res = runner.invoke(app, ["request", "evaluate", "-s", str(demo["snapshot"]), "-p", short, "--policy",
                              str(grant)])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_object_read_on_star_is_judged_per_bucket_and_its_classification(demo: dict[str, Any]) -> None:
    # s3:GetObject authorizes on the object ARN (arn:aws:s3:::bucket/key, Service Authorization Reference, Amazon
    # S3), which a snapshot never lists. A grant on "*" reaches the objects of every bucket, so each bucket's objects
    # are asked (as bucket/*), and a PII-tagged bucket among them makes the request a review, not an approval.
    policy = demo["tmp"] / "grant-object-star.json"
    policy.write_text(json.dumps(_doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})))
    res = runner.invoke(app, ["request", "evaluate", "-s", str(demo["snapshot"]), "-p", demo["requester"],
                              "--policy", str(policy), "--json"])
    out = json.loads(res.stdout)
    snap = read_snapshot(demo["snapshot"])
    pii = {r.arn for a in snap.accounts for r in a.resources if r.type == "s3:bucket" and classification(r.tags)}
    assert pii, "the demo plants PII-classified buckets"
    entries = {e["resource"]: e for e in out["new_access"]["entries"] if e["action"] == "s3:GetObject"}
    for bucket in pii:
        if f"{bucket}/*" in entries:
            assert entries[f"{bucket}/*"]["sensitive"]
    assert any(f"{b}/*" in entries for b in pii), sorted(entries)
    assert out["verdict"] == "review" and res.exit_code == 1, res.stdout[:400]
    assert "new_sensitive_access" in [r["code"] for r in out["reasons"]]
