"""The planted findings: the manifest names things that exist, and the activity agrees with what is planted."""

from __future__ import annotations

import fnmatch
import gzip
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from iamgraph.demo import DemoResult
from iamgraph.snapshot import SnapshotIndex, read_snapshot
from iamgraph.snapshot.model import Snapshot

# The ids docs/demo-org.md documents. Stable across seeds and sizes.
DOCUMENTED_IDS = {
    "privesc.create-policy-version", "privesc.passrole-lambda", "privesc.attach-user-policy",
    "privesc.create-access-key", "privesc.update-assume-role-policy", "privesc.update-function-code",
    "privesc.ssm-send-command", "privesc.assume-role-chain", "privesc.iam-full-access",
    "privesc.launch-template-version", "privesc.detach-deny-guardrail", "privesc.stackset-update",
    "nearmiss.deny", "nearmiss.boundary", "nearmiss.scp", "nearmiss.passed-to-service",
    "nearmiss.resource-constraint", "nearmiss.detach-other-policy", "nearmiss.public-bucket-under-rcp",
    "nearmiss.github-oidc-with-sub",
    "sod.create-user-and-attach-admin", "sod.cloudtrail-and-log-deletion", "sod.kms-admin-and-decrypt",
    "overbroad.s3-star", "unused.services-and-actions", "unused.role", "unused.credentials",
    "credentials.root-without-mfa", "credentials.old-active-key",
    "exposure.public-bucket", "exposure.role-any-account", "exposure.github-oidc-without-sub",
    "external.vendor-role-with-external-id", "sensitive.pii-readable-by-broad-group",
    "deviation.new-iam-actions", "deviation.new-region", "deviation.stop-logging", "deviation.access-denied-burst",
}


@pytest.fixture(scope="module")
def snap(demo_default: DemoResult) -> Snapshot:
    return read_snapshot(demo_default.snapshot)


@pytest.fixture(scope="module")
def manifest(demo_default: DemoResult) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(demo_default.planted.read_bytes())
    return data


@pytest.fixture(scope="module")
def records(demo_dir: Path) -> list[dict[str, Any]]:
    out = []
    for f in sorted((demo_dir / "cloudtrail").rglob("*.json.gz")):
        out.extend(orjson.loads(gzip.decompress(f.read_bytes()))["Records"])
    return out


def _actor(rec: dict[str, Any]) -> str | None:
    """The IAM user or role a record's usage counts for (None for root, services, other accounts)."""
    ident = rec["userIdentity"]
    if rec.get("recipientAccountId") != ident.get("accountId") and ident["type"] == "AWSAccount":
        return None
    if ident["type"] == "IAMUser":
        return str(ident["arn"])
    if ident["type"] in ("AssumedRole", "FederatedUser"):
        return str(ident["sessionContext"]["sessionIssuer"]["arn"])
    return None


def _item(manifest: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(i for i in manifest["items"] if i["id"] == item_id)


def test_manifest_ids_are_the_documented_ones(manifest: dict[str, Any]) -> None:
    ids = [i["id"] for i in manifest["items"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == DOCUMENTED_IDS
    for item in manifest["items"]:
        assert item["why"] and item["kind"] and item["expect"] in ("finding", "no_finding")
        assert (item["kind"] == "near_miss") == (item["expect"] == "no_finding")
        if item["kind"] == "near_miss":
            assert item["blocked_by"]


def test_manifest_refers_to_things_in_the_snapshot(manifest: dict[str, Any], snap: Snapshot) -> None:
    idx = SnapshotIndex(snap)
    accounts = {a.account_id for a in snap.accounts}
    managed = {p.arn for p in snap.aws_managed_policies}
    oidc = {p.arn for a in snap.accounts for p in a.oidc_providers}
    known = set(idx.users) | set(idx.roles) | set(idx.groups) | set(idx.policies) | set(idx.resources) \
        | set(idx.compute) | managed | oidc | set(idx.access_keys) | {f"arn:aws:iam::{a}:root" for a in accounts}
    for item in manifest["items"]:
        assert item["account_id"] in accounts
        for ref in item["principals"] + item["resources"] + item.get("path", []):
            if ref == "*" or ref.startswith("arn:aws:iam::210987654321:"):  # everyone; the outside vendor
                continue
            assert ref in known, (item["id"], ref)


def test_near_misses_carry_their_guardrail(manifest: dict[str, Any], snap: Snapshot) -> None:
    idx = SnapshotIndex(snap)
    boundary = idx.roles[_item(manifest, "nearmiss.boundary")["principals"][0]].permissions_boundary
    assert boundary and boundary.endswith(":policy/builder-boundary")
    deny_user = idx.users[_item(manifest, "nearmiss.deny")["principals"][0]]
    assert any(st["Effect"] == "Deny" for p in deny_user.inline_policies for st in p.document["Statement"])
    sandbox = _item(manifest, "nearmiss.scp")["account_id"]
    scps = [lvl.scps for lvl in idx.org_chain(sandbox)]
    assert any(p.name == "DenyIamUserCredentials" for level in scps for p in level)
    prod = _item(manifest, "nearmiss.public-bucket-under-rcp")["account_id"]
    assert any(p.name == "EnforceOrgIdentitiesS3" for lvl in idx.org_chain(prod) for p in lvl.rcps)


def test_unused_is_unused_in_the_files(manifest: dict[str, Any], records: list[dict[str, Any]], snap: Snapshot) -> None:
    idx = SnapshotIndex(snap)
    by_actor: dict[str, set[str]] = {}
    for rec in records:
        arn = _actor(rec)
        if arn:
            by_actor.setdefault(arn, set()).add(f"{rec['eventSource']}|{rec['eventName']}")
    role = _item(manifest, "unused.role")["principals"][0]
    assert role not in by_actor and idx.roles[role].last_used is None
    user = _item(manifest, "unused.credentials")["principals"][0]
    assert user not in by_actor
    assert idx.users[user].password_last_used and idx.users[user].password_last_used < manifest["window"]["start"]
    etl = _item(manifest, "unused.services-and-actions")
    used = by_actor[etl["principals"][0]]
    assert not any(u.startswith("dynamodb.") for u in used)
    assert "s3.amazonaws.com|DeleteObject" not in used
    assert "athena.amazonaws.com|StartQueryExecution" in used
    # Every role but the planted never-used one shows up in the files (the demo's baseline covers them).
    assert {r for r in idx.roles if r not in by_actor} == {role}


def test_access_advisor_agrees_with_cloudtrail(records: list[dict[str, Any]], snap: Snapshot) -> None:
    last: dict[tuple[str, str], str] = {}
    from iamgraph.demo.events import TEMPLATES

    action_of = {(t.source, t.name): t.action for t in TEMPLATES.values()}
    for rec in records:
        arn = _actor(rec)
        action = action_of[(rec["eventSource"], rec["eventName"])]
        if arn and action:
            key = (arn, action.split(":")[0])
            last[key] = max(last.get(key, ""), rec["eventTime"])
    advisor = {(e.principal_arn, e.service_namespace): e.last_authenticated for e in snap.activity.access_advisor
               if e.last_authenticated}
    assert advisor == last
    # The rest of each report: services the principal's policies allow and no record shows (AWS lists them with no
    # LastAuthenticated: https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetServiceLastAccessedDetails.html).
    quiet = {(e.principal_arn, e.service_namespace) for e in snap.activity.access_advisor if not e.last_authenticated}
    assert quiet and not quiet & set(last)
    assert {p for p, _ in quiet} <= {p for p, _ in last}
    assert any(e.tracked_actions for e in snap.activity.access_advisor if e.service_namespace == "iam")


def test_baseline_calls_are_allowed_by_identity_policies(records: list[dict[str, Any]], snap: Snapshot) -> None:
    """Successful calls of IAM users and roles match an Allow action pattern in their identity policies.

    Action patterns only (resources and conditions are the engine's job); enough to catch a baseline that
    calls what the principal was never granted.
    """
    from iamgraph.demo.events import TEMPLATES

    idx = SnapshotIndex(snap)
    action_of = {(t.source, t.name): t.action for t in TEMPLATES.values()}

    def docs(arn: str) -> list[dict[str, Any]]:
        p = idx.principal(arn)
        assert p is not None, arn
        out = [ip.document for ip in p.inline_policies]
        out += [d for m in p.attached_managed_policies if (d := idx.policies[m].default_document())]
        if hasattr(p, "groups"):
            for g in idx.groups_of(p):  # type: ignore[arg-type]
                out += [ip.document for ip in g.inline_policies]
                out += [d for m in g.attached_managed_policies if (d := idx.policies[m].default_document())]
        return out

    def allows(doc: dict[str, Any], action: str) -> bool:
        sts = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        for st in sts:
            if st["Effect"] != "Allow":
                continue
            if "Action" in st:
                pats = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in pats):
                    return True
            else:
                pats = st["NotAction"] if isinstance(st["NotAction"], list) else [st["NotAction"]]
                if not any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in pats):
                    return True
        return False

    refused = []
    checked = 0
    for rec in records:
        arn = _actor(rec)
        action = action_of[(rec["eventSource"], rec["eventName"])]
        if not arn or not action or rec.get("errorCode") or action.startswith("sts:AssumeRoleWith"):
            continue
        checked += 1
        if _resource_policy_names(idx, rec, arn):
            continue  # granted by the resource's own policy (the PII key names analytics-etl directly)
        if not any(allows(d, action) for d in docs(arn)):
            refused.append((arn, action))
    assert checked > 1000
    assert sorted(set(refused)) == [], sorted(set(refused))


def _resource_policy_names(idx: SnapshotIndex, rec: dict[str, Any], arn: str) -> bool:
    for res in rec.get("resources", []):
        resource = idx.resources.get(res["ARN"])
        if resource and resource.policy:
            for st in resource.policy["Statement"]:
                principal = st.get("Principal")
                if st["Effect"] == "Allow" and isinstance(principal, dict) and principal.get("AWS") == arn:
                    return True
    return False


def test_deviations_only_on_the_last_day(manifest: dict[str, Any], records: list[dict[str, Any]]) -> None:
    last_day = "2026-11-14T"
    ida = _item(manifest, "deviation.new-iam-actions")
    names = [(r["eventName"], r["eventTime"]) for r in records if _actor(r) == ida["principals"][0]
             and r["eventName"] in ("CreateUser", "AttachRolePolicy")]
    assert sorted(n for n, _ in names) == ["AttachRolePolicy", "CreateUser"]
    assert all(t.startswith(last_day) and ida["window"][0] <= t <= ida["window"][1] for _, t in names)
    region = _item(manifest, "deviation.new-region")
    regions = Counter((r["awsRegion"], r["eventTime"][:11] == last_day) for r in records
                      if _actor(r) == region["principals"][0])
    assert {reg for reg, _ in regions} == {"us-east-1", "eu-west-1"}
    assert regions[("eu-west-1", False)] == 0 and regions[("eu-west-1", True)] == 3
    stops = [r for r in records if r["eventName"] == "StopLogging"]
    assert len(stops) == 1 and stops[0]["eventTime"].startswith(last_day)
    burst = _item(manifest, "deviation.access-denied-burst")
    denied = [r for r in records if _actor(r) == burst["principals"][0] and r.get("errorCode")]
    assert len(denied) == 40 and all(r["eventTime"].startswith(last_day) for r in denied)
    assert burst["window"][0] <= min(r["eventTime"] for r in denied)
    assert max(r["eventTime"] for r in denied) <= burst["window"][1]


def test_credential_report_matches_the_planted_hygiene(manifest: dict[str, Any], snap: Snapshot) -> None:
    root = _item(manifest, "credentials.root-without-mfa")
    acct = snap.account(root["account_id"])
    assert acct is not None
    assert acct.credential_report[0]["user"] == "<root_account>" and acct.credential_report[0]["mfa_active"] == "false"
    others = [a.credential_report[0]["mfa_active"] for a in snap.accounts if a.account_id != root["account_id"]]
    assert set(others) == {"true"}
    old = _item(manifest, "credentials.old-active-key")
    row = next(r for a in snap.accounts for r in a.credential_report if r["arn"] == old["principals"][0])
    assert row["access_key_1_active"] == "true" and row["access_key_1_last_rotated"] < "2024-01-01"
    assert row["access_key_1_last_used_date"] >= manifest["window"]["start"]
    fc = _item(manifest, "unused.credentials")
    row = next(r for a in snap.accounts for r in a.credential_report if r["arn"] == fc["principals"][0])
    assert row["password_enabled"] == "true" and row["password_last_used"] < manifest["window"]["start"]
    assert row["access_key_1_last_used_date"] < manifest["window"]["start"]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    st = document["Statement"]
    return st if isinstance(st, list) else [st]


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def test_launch_template_plant_has_the_shape_of_the_technique(manifest: dict[str, Any], snap: Snapshot) -> None:
    """A group launching ``$Default`` takes a new version once it is made the default (ModifyLaunchTemplate),
    with the template's instance profile; nobody passes the role, so no PassRole is involved.
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/launch-template-support.html"""
    idx = SnapshotIndex(snap)
    item = _item(manifest, "privesc.launch-template-version")
    template = idx.compute[item["resources"][0]]
    assert template.kind == "ec2_launch_template"
    groups = template.attributes["autoscaling_groups"]
    assert [g["version"] for g in groups] == ["$Default"]
    default_profile = template.attributes["version_profiles"][str(template.attributes["default_version"])]
    assert default_profile == template.instance_profile_arn
    fleet = idx.roles[item["resources"][1]]
    assert default_profile in fleet.instance_profiles and ADMIN in fleet.attached_managed_policies
    engineer = idx.roles[item["principals"][0]]
    granted = [(a, st["Resource"]) for p in engineer.inline_policies for st in _statements(p.document)
               if st["Effect"] == "Allow" for a in _as_list(st["Action"])]
    writes = {a: r for a, r in granted if a in ("ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate")}
    assert writes == {"ec2:CreateLaunchTemplateVersion": template.arn, "ec2:ModifyLaunchTemplate": template.arn}
    assert not any(a.startswith("iam:") or a == "ec2:RunInstances" or "*" in a for a, _ in granted)
    assert engineer.permissions_boundary is None and not engineer.attached_managed_policies


def test_guardrail_plants_differ_only_in_what_may_be_detached(manifest: dict[str, Any], snap: Snapshot) -> None:
    """Both users hold AdministratorAccess under a Deny guardrail that leaves iam:DetachUserPolicy on themselves;
    the near miss's guardrail also denies detaching any policy but one that holds no Deny."""
    idx = SnapshotIndex(snap)
    found, near = _item(manifest, "privesc.detach-deny-guardrail"), _item(manifest, "nearmiss.detach-other-policy")
    for item in (found, near):
        user = idx.users[item["principals"][0]]
        guardrail = item["resources"][0]
        assert ADMIN in user.attached_managed_policies and guardrail in user.attached_managed_policies
        assert not user.inline_policies and not user.groups and user.permissions_boundary is None
        sts = _statements(idx.policies[guardrail].default_document())
        assert all(st["Effect"] == "Deny" for st in sts)
        freeze = next(st for st in sts if "NotAction" in st)
        assert freeze["Resource"] == "*" and "iam:DetachUserPolicy" in freeze["NotAction"]
        assert not any(a.startswith("iam:") and a not in ("iam:GetUser", "iam:DetachUserPolicy")
                       and not a.startswith("iam:List") for a in freeze["NotAction"])
        own = next(st for st in sts if "NotResource" in st)
        assert own["NotResource"] == user.arn and "iam:DetachUserPolicy" in own["Action"]
    found_conditions = [st for st in _statements(idx.policies[found["resources"][0]].default_document())
                        if "Condition" in st]
    assert found_conditions == []
    near_sts = _statements(idx.policies[near["resources"][0]].default_document())
    (limit,) = [st for st in near_sts if "Condition" in st]
    tooling = near["resources"][1]
    assert limit["Action"] == "iam:DetachUserPolicy"
    assert limit["Condition"] == {"ArnNotEquals": {"iam:PolicyARN": tooling}}
    assert all(st["Effect"] == "Allow" for st in _statements(idx.policies[tooling].default_document()))


def test_stackset_plant_is_self_managed_across_accounts(manifest: dict[str, Any], snap: Snapshot) -> None:
    """Self-managed permissions: the administration role trusts CloudFormation and may assume the execution
    role, which each target account trusts it with.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-prereqs-self-managed.html"""
    idx = SnapshotIndex(snap)
    item = _item(manifest, "privesc.stackset-update")
    stackset, admin_arn, exec_arn = item["resources"]
    ss = idx.compute[stackset]
    assert ss.kind == "cloudformation_stackset" and ss.role_arn == admin_arn
    assert ss.attributes["permission_model"] == "SELF_MANAGED"
    assert item["account_id"] == manifest["management_account_id"]
    assert manifest["accounts"]["prod-01"] in ss.attributes["instance_accounts"]
    assert item["account_id"] not in ss.attributes["instance_accounts"]
    admin_role = idx.roles[admin_arn]
    assert _statements(admin_role.trust_policy)[0]["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    for account in ss.attributes["instance_accounts"]:
        role = idx.roles[f"arn:aws:iam::{account}:role/{ss.attributes['execution_role_name']}"]
        assert _statements(role.trust_policy)[0]["Principal"] == {"AWS": admin_arn}
        assert role.attached_managed_policies == [ADMIN]
    assert exec_arn.split(":")[4] == manifest["accounts"]["prod-01"]
    deployer = idx.roles[item["principals"][0]]
    sts = [st for p in deployer.inline_policies for st in _statements(p.document)]
    passes = [st for st in sts if st["Action"] == "iam:PassRole"]
    assert [st["Resource"] for st in passes] == [admin_arn]
    assert passes[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    assert not any("*" in a for st in sts for a in _as_list(st["Action"]))
