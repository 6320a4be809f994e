"""Incomplete said out loud: an unread policy is unknown, not absent, and a type a question does not
analyse is named, in the query results and in the CLI's text and JSON."""

from __future__ import annotations

import json

import pytest
from graphsnap import A, SnapBuilder, allow
from typer.testing import CliRunner

from iamgraph.graph import build_graph
from iamgraph.query import sensitive, who_can
from iamgraph.query.incomplete import unknown_policies
from iamgraph.query.sensitive import sensitive_incomplete
from iamgraph.snapshot.model import CollectionError, Snapshot

KEY = f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TABLE = f"arn:aws:dynamodb:us-east-1:{A}:table/patients"
QUEUE = f"arn:aws:sqs:us-east-1:{A}:jobs"
QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/{A}/jobs"
U = f"arn:aws:iam::{A}:user/"


def _snapshot(*, marker: bool) -> Snapshot:
    """A key whose key policy the collector was denied: with the snapshot marker, or (older snapshots)
    known only from the collection error on GetKeyPolicy."""
    b = SnapBuilder()
    b.resource(KEY, "kms:key", None, tags={"DataClassification": "PHI"})
    b.resource(TABLE, "other", None, tags={"DataClassification": "PHI"})
    b.resource(QUEUE, "sqs:queue", None, queue_url=QUEUE_URL)
    b.user("app", allow("kms:Decrypt", KEY))
    snap = b.build()
    if marker:
        res = snap.accounts[0].resources[0]
        snap.accounts[0].resources[0] = res.model_copy(update={"policy_unknown": True})
    else:
        snap.errors.append(CollectionError(account_id=A, region="us-east-1", service="kms", call="GetKeyPolicy",
                                           error_code="AccessDeniedException", resource=KEY))
    # A denied SQS call is recorded under the queue URL; a denied tag read is not about the policy.
    snap.errors.append(CollectionError(account_id=A, region="us-east-1", service="sqs", call="GetQueueAttributes",
                                       error_code="AccessDenied", resource=QUEUE_URL))
    snap.errors.append(CollectionError(account_id=A, region="us-east-1", service="kms", call="ListResourceTags",
                                       error_code="AccessDeniedException", resource=KEY))
    return snap


@pytest.mark.parametrize("marker", [True, False])
def test_unread_policies_are_unknown_not_absent(marker: bool) -> None:
    g = build_graph(_snapshot(marker=marker))
    assert set(unknown_policies(g)) == {KEY, QUEUE}
    res = who_can(g, KEY, action="kms:Decrypt")
    # Without the key policy nobody is allowed (a key policy is required), so the answer must say why.
    assert U + "app" not in res.principals()
    assert [x.resource for x in res.incomplete] == [KEY]
    assert "could not be read" in res.incomplete[0].reason
    assert who_can(g, "arn:aws:s3:::elsewhere/x", action="s3:GetObject").incomplete == ()


def test_sensitive_names_unanalysed_types_and_unknown_policies() -> None:
    g = build_graph(_snapshot(marker=True))
    assert sensitive(g, "DataClassification=PHI") == []
    gaps = {x.resource: x.reason for x in sensitive_incomplete(g, "DataClassification=PHI")}
    assert set(gaps) == {KEY, TABLE}
    assert gaps[TABLE] == "sensitive does not analyse dynamodb:table resources"


def test_cli_says_incomplete_in_text_and_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from iamgraph.cli import app
    from iamgraph.snapshot import write_snapshot

    snap = tmp_path / "s.json"
    write_snapshot(_snapshot(marker=True), snap)
    runner = CliRunner()
    out = runner.invoke(app, ["who-can", "-s", str(snap), "-r", KEY, "-a", "kms:Decrypt", "--json"])
    assert out.exit_code == 0, out.output
    assert [x["resource"] for x in json.loads(out.output)["incomplete"]] == [KEY]
    text = runner.invoke(app, ["who-can", "-s", str(snap), "-r", KEY, "-a", "kms:Decrypt"])
    assert "incomplete: 1 resource with an unknown policy" in text.output
    assert f"note: incomplete: {KEY}: its policy could not be read" in text.output
    sens = runner.invoke(app, ["sensitive", "-s", str(snap), "--tag", "DataClassification=PHI", "--json"])
    doc = json.loads(sens.output)
    assert doc["accesses"] == [] and {x["resource"] for x in doc["incomplete"]} == {KEY, TABLE}
    sens_text = runner.invoke(app, ["sensitive", "-s", str(snap), "--tag", "DataClassification=PHI"])
    assert "incomplete: 2 resources not answered for" in sens_text.output
    assert f"note: incomplete: {TABLE}: sensitive does not analyse dynamodb:table resources" in sens_text.output
    exp = runner.invoke(app, ["exposure", "-s", str(snap), "--json"])
    assert {x["resource"] for x in json.loads(exp.output)["incomplete"]} == {KEY, QUEUE}


def test_api_who_can_notes_say_incomplete(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The API's who-can carries the same line in ``notes`` (the app through its test client, as
    tests/api/test_api_endpoints.py does)."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings
    from iamgraph.serving.tokens import Scope, TokenFile
    from iamgraph.snapshot import write_snapshot

    snap = tmp_path / "s.json"
    write_snapshot(_snapshot(marker=False), snap)
    token, _ = TokenFile(tmp_path / "tokens.json").create("admin", tuple(Scope))
    app = create_app(Settings(snapshot=snap, token_file=tmp_path / "tokens.json", audit_log=tmp_path / "a.jsonl"))
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    r = client.get("/v1/who-can", params={"resource": KEY, "action": "kms:Decrypt"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accesses"] == []
    assert [n for n in body["notes"] if n.startswith("incomplete: ")] == [
        f"incomplete: {KEY}: its policy could not be read (kms GetKeyPolicy: AccessDeniedException; "
        "unknown, not absent)"]


def test_sod_names_unknown_policies_its_rules_ask_about(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The shipped rules include a resource-scoped rule over kms:key: the unread key is named (text and
    JSON); the queue, which no shipped rule asks about, is not."""
    from iamgraph.cli import app
    from iamgraph.query.sod import load_rules, sod_incomplete
    from iamgraph.snapshot import write_snapshot

    assert any(r.scope == "resource" and r.resource_type == "kms:key" for r in load_rules())
    g = build_graph(_snapshot(marker=True))
    assert [x.resource for x in sod_incomplete(g)] == [KEY]
    snap = tmp_path / "s.json"
    write_snapshot(_snapshot(marker=True), snap)
    runner = CliRunner()
    doc = json.loads(runner.invoke(app, ["sod", "-s", str(snap), "--json"]).output)
    assert [x["resource"] for x in doc["incomplete"]] == [KEY]
    text = runner.invoke(app, ["sod", "-s", str(snap)]).output
    assert "incomplete: 1 resource with an unknown policy" in text and f"incomplete: {KEY}:" in text


FUNCTION = f"arn:aws:lambda:us-east-1:{A}:function:deploy"


def _with_unread_function() -> Snapshot:
    """``_snapshot`` plus a Lambda function whose policy the collector was denied: its policy could let another
    principal update its code (a path to its role), so path and privesc name it too."""
    snap = _snapshot(marker=True)
    b = SnapBuilder()
    b.resource(FUNCTION, "lambda:function", None)
    snap.accounts[0].resources.append(b.accounts[A].resources[0].model_copy(update={"policy_unknown": True}))
    return snap


def test_what_can_path_privesc_and_blast_radius_name_what_they_could_not_read() -> None:
    from iamgraph.query import blast_radius
    from iamgraph.query.incomplete import moves_incomplete
    from iamgraph.query.what_can import what_can_incomplete

    g = build_graph(_with_unread_function())
    assert [x.resource for x in what_can_incomplete(g)] == sorted([FUNCTION, KEY, QUEUE])
    assert [x.resource for x in moves_incomplete(g)] == [FUNCTION]
    b = blast_radius(g, U + "app", tag="DataClassification=PHI")
    assert {x.resource for x in b.incomplete} == {FUNCTION, KEY, QUEUE, TABLE}
    assert moves_incomplete(build_graph(_snapshot(marker=True))) == ()


def test_cli_what_can_path_privesc_blast_radius_say_incomplete(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from iamgraph.cli import app
    from iamgraph.snapshot import write_snapshot

    snap = tmp_path / "s.json"
    write_snapshot(_with_unread_function(), snap)
    runner = CliRunner()

    def run(*args: str) -> str:
        out = runner.invoke(app, [args[0], "-s", str(snap), *args[1:]])
        assert out.exit_code == 0, out.output
        return out.output

    app_user = U + "app"
    wanted = {
        ("what-can", "-p", app_user): ({FUNCTION, KEY, QUEUE}, "permissions"),
        ("path", "--from", app_user, "--to", f"admin:{A}"): ({FUNCTION}, "paths"),
        ("privesc",): ({FUNCTION}, "escalations"),
        ("blast-radius", "-p", app_user, "--tag", "DataClassification=PHI"): ({FUNCTION, KEY, QUEUE, TABLE}, None),
    }
    for args, (resources, key) in wanted.items():
        doc = json.loads(run(*args, "--json"))
        assert {x["resource"] for x in doc["incomplete"]} == resources, args
        assert key is None or isinstance(doc[key], list)
        text = run(*args)
        n = len(resources)
        counted = f"incomplete: {n} resource{'s' if n > 1 else ''} "
        summary = [ln for ln in text.splitlines() if counted in ln]
        assert summary, (args, text)
        assert {ln.split(": ")[2] for ln in text.splitlines() if ln.startswith("note: incomplete: ")} == resources, args


def test_api_exposure_sod_access_and_paths_carry_the_notes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings
    from iamgraph.serving.tokens import Scope, TokenFile
    from iamgraph.snapshot import write_snapshot

    snap = tmp_path / "s.json"
    write_snapshot(_with_unread_function(), snap)
    token, _ = TokenFile(tmp_path / "tokens.json").create("admin", tuple(Scope))
    app = create_app(Settings(snapshot=snap, token_file=tmp_path / "tokens.json", audit_log=tmp_path / "a.jsonl"))
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})

    def named(path: str) -> set[str]:
        r = client.get(path)
        assert r.status_code == 200, r.text
        return {n.split(": ")[1] for n in r.json()["notes"] if n.startswith("incomplete: ")}

    assert named("/v1/exposure") == {FUNCTION, KEY, QUEUE}
    assert named("/v1/sod/conflicts") == {KEY}
    assert named(f"/v1/principals/{U}app/access") == {FUNCTION, KEY, QUEUE}
    assert named(f"/v1/principals/{U}app/paths") == {FUNCTION}
