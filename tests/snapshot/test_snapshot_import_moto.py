"""get-account-authorization-details produced by a moto server round-trips through import -> write -> read.

moto quirks (shared/TESTING-AWS.md), planned around here:
- with MOTO_IAM_LOAD_MANAGED_POLICIES=true moto returns *every* AWS managed policy (~1,580) in
  Policies[], where real AWS returns only the attached ones; the importer must keep them all.
- Policies[] entries have no PolicyName/PolicyId; the importer takes the name from the ARN.
- MaxItems is ignored (one page), so the multi-page test splits the real output into pages itself.
- user permission boundaries are not stored by moto, so only the role boundary is checked.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.collect.files import load_paths
from iamgraph.snapshot import Snapshot, read_snapshot, write_snapshot

pytestmark = pytest.mark.moto

ACCOUNT = "123456789012"  # moto's default account
WHEN = "2026-01-01T00:00:00Z"

READ_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}
READ_S3_V2 = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": "arn:aws:s3:::b/*",
        }
    ],
}
READ_S3_V3 = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {
                "IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]},
                "Bool": {"aws:SecureTransport": "true"},
            },
        }
    ],
}
BOUNDARY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
}
INLINE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Deny", "Action": "ec2:TerminateInstances", "NotResource": "arn:aws:ec2:*:*:instance/i-1"}
    ],
}
TRUST_EC2 = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
TRUST_XACCT = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "x-1"}},
        }
    ],
}


def _populate() -> None:
    iam = boto3.client("iam")
    p1 = iam.create_policy(PolicyName="ReadS3", Path="/team/", PolicyDocument=json.dumps(READ_S3))["Policy"][
        "Arn"
    ]
    iam.create_policy_version(PolicyArn=p1, PolicyDocument=json.dumps(READ_S3_V2), SetAsDefault=True)
    iam.create_policy_version(PolicyArn=p1, PolicyDocument=json.dumps(READ_S3_V3), SetAsDefault=False)
    boundary = iam.create_policy(PolicyName="Boundary", PolicyDocument=json.dumps(BOUNDARY))["Policy"]["Arn"]

    iam.create_group(GroupName="devs", Path="/eng/")
    iam.attach_group_policy(GroupName="devs", PolicyArn=p1)
    iam.put_group_policy(GroupName="devs", PolicyName="no-terminate", PolicyDocument=json.dumps(INLINE))
    iam.create_group(GroupName="ops")
    iam.attach_group_policy(GroupName="ops", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")

    iam.create_user(
        UserName="alice",
        Tags=[{"Key": "team", "Value": "eng"}, {"Key": "DataClassification", "Value": "PII"}],
    )
    iam.add_user_to_group(UserName="alice", GroupName="devs")
    iam.add_user_to_group(UserName="alice", GroupName="ops")
    iam.put_user_policy(UserName="alice", PolicyName="inline-a", PolicyDocument=json.dumps(INLINE))
    iam.create_user(UserName="bob", Path="/contractors/")
    iam.attach_user_policy(UserName="bob", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.create_user(UserName="carol")

    iam.create_role(
        RoleName="app",
        Path="/svc/",
        AssumeRolePolicyDocument=json.dumps(TRUST_EC2),
        Description="web servers",
        MaxSessionDuration=7200,
        PermissionsBoundary=boundary,
        Tags=[{"Key": "env", "Value": "prod"}],
    )
    iam.attach_role_policy(RoleName="app", PolicyArn=p1)
    iam.put_role_policy(RoleName="app", PolicyName="inline-r", PolicyDocument=json.dumps(INLINE))
    iam.create_instance_profile(InstanceProfileName="app-profile", Tags=[{"Key": "k", "Value": "v"}])
    iam.add_role_to_instance_profile(InstanceProfileName="app-profile", RoleName="app")
    iam.create_role(RoleName="auditor", AssumeRolePolicyDocument=json.dumps(TRUST_XACCT))
    iam.attach_role_policy(RoleName="auditor", PolicyArn="arn:aws:iam::aws:policy/SecurityAudit")


def _fetch_all_pages() -> dict[str, Any]:
    """All pages merged, as `aws iam get-account-authorization-details` prints them (auto-pagination)."""
    iam = boto3.client("iam")
    merged: dict[str, list[Any]] = {
        "UserDetailList": [],
        "GroupDetailList": [],
        "RoleDetailList": [],
        "Policies": [],
    }
    for page in iam.get_paginator("get_account_authorization_details").paginate():
        for key in merged:
            merged[key].extend(page.get(key, []))
    return merged


def _as_cli_json(data: Any) -> str:
    # The AWS CLI prints timestamps as ISO 8601 text; boto3 gives datetime objects.
    def default(o: Any) -> str:
        if isinstance(o, dt.datetime):
            return o.isoformat()
        raise TypeError(type(o).__name__)

    return json.dumps(data, default=default, indent=2)


@pytest.fixture(scope="module")
def authz(
    moto_server_managed: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, Any]]]:
    saved = {k: os.environ.get(k) for k in moto_server_managed.client_env()}
    moto_server_managed.reset()
    os.environ.update(moto_server_managed.client_env())
    try:
        _populate()
        doc = json.loads(_as_cli_json(_fetch_all_pages()))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    path = tmp_path_factory.mktemp("authz") / "authz.json"
    path.write_text(json.dumps(doc, indent=2))
    yield path, doc


# -- a reverse mapping, to compare the snapshot with the input key by key


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _export(snap: Snapshot, account_id: str) -> dict[str, dict[str, Any]]:
    """Snapshot -> {arn: authorization-details-shaped entry}."""
    acct = snap.account(account_id)
    assert acct is not None
    profiles = {p.arn: p for p in acct.instance_profiles}
    out: dict[str, dict[str, Any]] = {}
    for u in acct.users:
        out[u.arn] = {
            "Path": u.path, "UserName": u.name, "UserId": u.user_id, "Arn": u.arn, "CreateDate": u.create_date,
            "UserPolicyList": [{"PolicyName": p.name, "PolicyDocument": p.document} for p in u.inline_policies],
            "GroupList": u.groups,
            "AttachedManagedPolicies": [{"PolicyArn": a} for a in u.attached_managed_policies],
            "Tags": _tags(u.tags),
        }  # fmt: skip
    for g in acct.groups:
        out[g.arn] = {
            "Path": g.path, "GroupName": g.name, "GroupId": g.group_id, "Arn": g.arn, "CreateDate": g.create_date,
            "GroupPolicyList": [{"PolicyName": p.name, "PolicyDocument": p.document} for p in g.inline_policies],
            "AttachedManagedPolicies": [{"PolicyArn": a} for a in g.attached_managed_policies],
        }  # fmt: skip
    for r in acct.roles:
        out[r.arn] = {
            "Path": r.path, "RoleName": r.name, "RoleId": r.role_id, "Arn": r.arn, "CreateDate": r.create_date,
            "AssumeRolePolicyDocument": r.trust_policy,
            "InstanceProfileList": [
                {
                    "Path": profiles[a].path, "InstanceProfileName": profiles[a].name,
                    "InstanceProfileId": profiles[a].instance_profile_id, "Arn": a,
                    "CreateDate": profiles[a].create_date, "Tags": _tags(profiles[a].tags),
                    "Roles": [{"Arn": ra} for ra in profiles[a].roles],
                }
                for a in r.instance_profiles
            ],
            "RolePolicyList": [{"PolicyName": p.name, "PolicyDocument": p.document} for p in r.inline_policies],
            "AttachedManagedPolicies": [{"PolicyArn": a} for a in r.attached_managed_policies],
            "Tags": _tags(r.tags),
            "RoleLastUsed": {} if r.last_used is None else r.last_used.model_dump(exclude_none=True),
        }  # fmt: skip
        if r.permissions_boundary:
            out[r.arn]["PermissionsBoundary"] = {
                "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                "PermissionsBoundaryArn": r.permissions_boundary,
            }
    for p in [*acct.policies, *snap.aws_managed_policies]:
        out[p.arn] = {
            "Arn": p.arn, "Path": p.path, "DefaultVersionId": p.default_version_id,
            "AttachmentCount": p.attachment_count, "PermissionsBoundaryUsageCount": p.permissions_boundary_usage_count,
            "IsAttachable": p.is_attachable, "Description": p.description,
            "CreateDate": p.create_date, "UpdateDate": p.update_date,
            "PolicyVersionList": [
                {"Document": v.document, "VersionId": v.version_id, "IsDefaultVersion": v.is_default,
                 "CreateDate": v.create_date}
                for v in p.versions
            ],
        }  # fmt: skip
    return out


def _normal(key: str, value: Any) -> Any:
    """Order-free forms of the lists whose order AWS does not define."""
    if key == "Tags":
        return sorted((t["Key"], t["Value"]) for t in value)
    if key == "AttachedManagedPolicies":
        return sorted(a["PolicyArn"] for a in value)  # PolicyName is derivable from the ARN
    if key == "GroupList":
        return sorted(value)
    if key in ("UserPolicyList", "GroupPolicyList", "RolePolicyList"):
        return sorted(json.dumps(p, sort_keys=True) for p in value)
    if key == "PolicyVersionList":
        return sorted((v["VersionId"], json.dumps(v, sort_keys=True)) for v in value)
    if key == "InstanceProfileList":
        # Nested Roles are kept as ARNs: the full role is in RoleDetailList already.
        return sorted(
            json.dumps(
                {
                    **p,
                    "Roles": sorted(r["Arn"] for r in p.get("Roles", [])),
                    "Tags": _normal("Tags", p.get("Tags", [])),
                },
                sort_keys=True,
            )
            for p in value
        )
    return value


def _assert_same(original: dict[str, Any], exported: dict[str, dict[str, Any]]) -> int:
    """Every key of every input entry survives with an equal value; no entry appears or disappears."""
    checked = 0
    arns = set()
    for list_key in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"):
        for entry in original[list_key]:
            arns.add(entry["Arn"])
            mine = exported[entry["Arn"]]
            for key, value in entry.items():
                if list_key == "Policies" and key in ("PolicyName", "PolicyId"):
                    continue  # moto omits them; when present they are checked below by name
                assert key in mine, f"{entry['Arn']}: {key} lost"
                assert _normal(key, mine[key]) == _normal(key, value), f"{entry['Arn']}: {key} changed"
                checked += 1
    assert arns == set(exported)
    return checked


def test_authorization_details_round_trip(authz: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, original = authz
    snap = load_paths([path], collected_at=WHEN)
    out = tmp_path / "snap.json.gz"
    written = write_snapshot(snap, out)
    back = read_snapshot(out)
    assert back == written
    assert back.content_hash is not None and back.content_hash.startswith("sha256:")

    assert [a.account_id for a in back.accounts] == [ACCOUNT]  # inferred from the ARNs
    checked = _assert_same(original, _export(back, ACCOUNT))
    assert checked > 10_000  # ~1,580 AWS managed policies with all their keys

    acct = back.account(ACCOUNT)
    assert acct is not None
    # moto returns every AWS managed policy, real AWS only the attached ones; both are kept, once.
    aws_arns = {p["Arn"] for p in original["Policies"] if p["Arn"].startswith("arn:aws:iam::aws:policy/")}
    assert len(aws_arns) > 1000
    assert {p.arn for p in back.aws_managed_policies} == aws_arns
    assert {p.name for p in acct.policies} == {"ReadS3", "Boundary"}

    read_s3 = next(p for p in acct.policies if p.name == "ReadS3")
    assert read_s3.path == "/team/"
    assert read_s3.default_version_id == "v2"
    assert [v.document for v in sorted(read_s3.versions, key=lambda v: v.version_id)] == [
        READ_S3,
        READ_S3_V2,
        READ_S3_V3,
    ]
    assert read_s3.default_document() == READ_S3_V2

    role = next(r for r in acct.roles if r.name == "app")
    assert role.trust_policy == TRUST_EC2
    assert role.permissions_boundary == f"arn:aws:iam::{ACCOUNT}:policy/Boundary"
    assert role.tags == {"env": "prod"}
    assert role.instance_profiles == [f"arn:aws:iam::{ACCOUNT}:instance-profile/app-profile"]
    assert acct.instance_profiles[0].roles == [role.arn]
    assert acct.instance_profiles[0].tags == {"k": "v"}
    # RoleDetail has no Description/MaxSessionDuration; the instance profile's copy of the role does.
    assert role.description == "web servers" and role.max_session_duration == 7200
    auditor = next(r for r in acct.roles if r.name == "auditor")
    assert auditor.trust_policy == TRUST_XACCT and auditor.instance_profiles == []

    alice = next(u for u in acct.users if u.name == "alice")
    assert sorted(alice.groups) == ["devs", "ops"]
    assert alice.tags == {"team": "eng", "DataClassification": "PII"}
    assert [p.document for p in alice.inline_policies] == [INLINE]


def test_url_encoded_documents_give_the_same_snapshot(
    authz: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """IAM's query API returns documents RFC 3986 URL-encoded; the CLI decodes them. Both must import alike."""
    path, original = authz
    encoded = json.loads(json.dumps(original))

    def enc(doc: Any) -> str:
        return quote(json.dumps(doc), safe="")

    for u in encoded["UserDetailList"]:
        for p in u.get("UserPolicyList", []):
            p["PolicyDocument"] = enc(p["PolicyDocument"])
    for g in encoded["GroupDetailList"]:
        for p in g.get("GroupPolicyList", []):
            p["PolicyDocument"] = enc(p["PolicyDocument"])
    for r in encoded["RoleDetailList"]:
        r["AssumeRolePolicyDocument"] = enc(r["AssumeRolePolicyDocument"])
        for p in r.get("RolePolicyList", []):
            p["PolicyDocument"] = enc(p["PolicyDocument"])
        for prof in r.get("InstanceProfileList", []):
            for nested in prof.get("Roles", []):
                nested["AssumeRolePolicyDocument"] = enc(nested["AssumeRolePolicyDocument"])
    for pol in encoded["Policies"]:
        for v in pol["PolicyVersionList"]:
            v["Document"] = enc(v["Document"])
    assert encoded["RoleDetailList"][0]["AssumeRolePolicyDocument"].startswith("%7B")
    enc_path = tmp_path / "encoded.json"
    enc_path.write_text(json.dumps(encoded))

    plain = write_snapshot(load_paths([path], collected_at=WHEN), tmp_path / "a.json.gz")
    other = write_snapshot(load_paths([enc_path], collected_at=WHEN), tmp_path / "b.json.gz")
    assert other == plain
    assert other.content_hash == plain.content_hash


def test_pages_merge_like_one_file(authz: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, original = authz
    keys = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
    # three pages as the raw API would return them (moto ignores MaxItems, so split by hand)
    pages: list[dict[str, Any]] = [{k: [] for k in keys} for _ in range(3)]
    for k in keys:
        for i, item in enumerate(original[k]):
            pages[i % 3][k].append(item)
    pages[0].update(IsTruncated=True, Marker="m1")
    pages[1].update(IsTruncated=True, Marker="m2")
    pages[2].update(IsTruncated=False)
    files = []
    for i, page in enumerate(pages):
        f = tmp_path / f"page{i}.json"
        f.write_text(json.dumps(page))
        files.append(f)
    whole = load_paths([path], collected_at=WHEN)
    assert load_paths(files, collected_at=WHEN) == whole
    assert load_paths([tmp_path], collected_at=WHEN) == whole  # a folder of pages
    # AWS lists policies last, so a last page can hold only AWS managed policies, naming no account:
    # it belongs to the one account whose pages are incomplete
    aws_arn = "arn:aws:iam::aws:policy/"
    head = {k: [x for x in original[k] if not x["Arn"].startswith(aws_arn)] for k in keys}
    tail = {
        "Policies": [x for x in original["Policies"] if x["Arn"].startswith(aws_arn)],
        "IsTruncated": False,
    }
    (tmp_path / "split").mkdir()
    (tmp_path / "split/1.json").write_text(json.dumps({**head, "IsTruncated": True, "Marker": "m"}))
    (tmp_path / "split/2.json").write_text(json.dumps(tail))
    assert load_paths([tmp_path / "split"], collected_at=WHEN) == whole
    # without the last page, the import refuses rather than silently missing entities
    from iamgraph.errors import InputError

    with pytest.raises(InputError, match=r"last page is missing"):
        load_paths(files[:2], collected_at=WHEN)


def test_cli_import_and_info(authz: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, original = authz
    out = tmp_path / "s.json.gz"
    runner = CliRunner()
    res = runner.invoke(app, ["snapshot", "import", str(path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["snapshot", "info", str(out), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["content_hash_verified"] is True
    assert info["source"] == "import"
    [acct] = info["accounts"]
    assert acct["account_id"] == ACCOUNT
    assert (acct["users"], acct["groups"], acct["roles"], acct["customer_managed_policies"]) == (3, 2, 2, 2)
    # inline: alice 1, devs 1, app 1
    assert acct["inline_policies"] == 3
    assert acct["instance_profiles"] == 1
    assert info["aws_managed_policies"] == len(original["Policies"]) - 2
    assert info["errors"] == []
    res = runner.invoke(app, ["snapshot", "info", str(out)])
    assert res.exit_code == 0 and ACCOUNT in res.output and "verified" in res.output
