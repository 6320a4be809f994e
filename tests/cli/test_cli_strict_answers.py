"""Strict answers that turn on a key nobody supplied say so, and --region supplies aws:RequestedRegion.

The demo organization's prod account sits under an SCP that denies requests outside the approved regions
(StringNotEquals on aws:RequestedRegion; docs/demo-org.md). A request that names no region is denied by it,
as AWS would deny a request without that key
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
the answer must name the key and how to give it."""

from __future__ import annotations

import json

from cli_helpers import run_cli

from iamgraph.demo import DemoResult

JANE = "arn:aws:iam::903241987127:user/contractor-jane"
OBJ = "arn:aws:s3:::examplecorp-customer-pii-903241987127/k"
BUCKET = "arn:aws:s3:::examplecorp-customer-pii-903241987127"


def test_strict_denial_by_an_unsupplied_region_names_the_key_in_text_explain_and_json(demo: DemoResult) -> None:
    base = ["simulate", "-s", demo.snapshot, "-p", JANE, "-a", "s3:GetObject", "-r", OBJ]
    for extra in ([], ["--explain"]):
        r = run_cli(*base, *extra)
        assert r.code == 0, r.output
        assert r.stdout.splitlines()[0] == "ExplicitlyDenied"
        note = [ln for ln in r.stdout.splitlines() if ln.startswith("note: strict mode")]
        assert len(note) == 1 and "aws:RequestedRegion" in note[0] and "--region" in note[0]
    out = json.loads(run_cli(*base, "--json").stdout)
    assert out["decision"] == "ExplicitlyDenied" and out["unsuppliedKeys"] == ["aws:RequestedRegion"]


def test_region_supplies_requested_region_and_the_note_goes(demo: DemoResult) -> None:
    base = ["simulate", "-s", demo.snapshot, "-p", JANE, "-a", "s3:GetObject", "-r", OBJ]
    inside = json.loads(run_cli(*base, "--region", "us-east-1", "--json").stdout)
    assert inside["decision"] != "ExplicitlyDenied" and inside["unsuppliedKeys"] == []
    ctx = json.loads(run_cli(*base, "-c", "aws:RequestedRegion=us-east-1", "--json").stdout)
    assert ctx["decision"] == inside["decision"]
    # A region outside the SCP's list: denied, and now nothing unsupplied decided it.
    outside = json.loads(run_cli(*base, "--region", "ap-south-1", "--json").stdout)
    assert outside["decision"] == "ExplicitlyDenied" and outside["unsuppliedKeys"] == []


def test_the_api_says_the_same(demo: DemoResult) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings

    client = TestClient(create_app(Settings(snapshot=demo.snapshot, allow_anonymous_local=True)),
                        client=("127.0.0.1", 50000))
    req = {"principal": JANE, "action": "s3:GetObject", "resource": OBJ}
    res = client.post("/v1/simulate", json={"request": req}).json()["results"][0]
    assert res["decision"] == "ExplicitlyDenied" and res["unsuppliedKeys"] == ["aws:RequestedRegion"]
    assert "request.context" in res["note"]
    res = client.post("/v1/simulate", json={"request": {**req, "context": {"aws:RequestedRegion": "us-east-1"}}}
                      ).json()["results"][0]
    assert res["unsuppliedKeys"] == [] and res["note"] is None


def test_who_can_region_decides_region_conditions(demo: DemoResult) -> None:
    base = ["who-can", "-s", demo.snapshot, "-r", BUCKET, "-a", "s3:GetObject", "--json"]
    every = json.loads(run_cli(*base).stdout)["accesses"]
    region_bound = [a for a in every if any(c["key"].lower() == "aws:requestedregion"
                                            for term in a["conditions"] for c in term)]
    assert region_bound, "the demo's region SCP should leave region conditions"
    inside = json.loads(run_cli(*base, "--region", "us-east-1").stdout)["accesses"]
    outside = json.loads(run_cli(*base, "--region", "ap-south-1").stdout)["accesses"]
    for found in (inside, outside):
        assert not any(c["key"].lower() == "aws:requestedregion" for a in found for term in a["conditions"]
                       for c in term)
    assert len(outside) < len(every)
    assert {(a["principal"], a["resource"]) for a in outside} <= {(a["principal"], a["resource"]) for a in every}


def test_who_can_context_decides_like_region(demo: DemoResult) -> None:
    base = ["who-can", "-s", demo.snapshot, "-r", BUCKET, "-a", "s3:GetObject", "--json"]
    by_region = json.loads(run_cli(*base, "--region", "ap-south-1").stdout)["accesses"]
    by_context = json.loads(run_cli(*base, "-c", "aws:RequestedRegion=ap-south-1").stdout)["accesses"]
    assert by_region == by_context
