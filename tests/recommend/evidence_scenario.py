"""Scenario helpers for the evidence tests: a GetAccountAuthorizationDetails export, CloudTrail log files in the S3
layout, the ingest into a real DuckDB store, and a proposal applied to a copy of the snapshot.

The record shapes follow the AWS pages cited where each record is written (tests/recommend/test_recommend_evidence.py).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from iamgraph.collect.files import load_paths
from iamgraph.eval import SnapshotEvaluator
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.model import Snapshot

ACCT = "111122223333"
REGION = "us-east-1"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def gaad(roles: Mapping[str, Mapping[str, Any]], *, created: str = "2023-06-01T00:00:00Z") -> dict[str, Any]:
    """``aws iam get-account-authorization-details`` output with one inline policy per role
    (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountAuthorizationDetails.html)."""
    return {
        "UserDetailList": [],
        "GroupDetailList": [],
        "RoleDetailList": [
            {
                "Path": "/", "RoleName": name, "RoleId": f"AROA{name.upper():0<17}"[:21],
                "Arn": f"arn:aws:iam::{ACCT}:role/{name}", "CreateDate": created,
                "AssumeRolePolicyDocument": TRUST, "InstanceProfileList": [],
                "RolePolicyList": [{"PolicyName": name, "PolicyDocument": dict(doc)}],
                "AttachedManagedPolicies": [], "Tags": [],
            }
            for name, doc in roles.items()
        ],
        "Policies": [],
    }


def write_inputs(root: Path, roles: Mapping[str, Mapping[str, Any]],
                 resource_policies: Mapping[str, Any] | None = None, *,
                 created: str = "2023-06-01T00:00:00Z") -> Snapshot:
    """The export, plus ``resource-policies/<account>/<region>/<service>/<name>.json`` files, read as a snapshot."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "gaad.json").write_text(json.dumps(gaad(roles, created=created)))
    paths = [root / "gaad.json"]
    if resource_policies:
        for rel, body in resource_policies.items():
            p = root / "resource-policies" / ACCT / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(body))
        paths.append(root / "resource-policies")
    return load_paths(paths, collected_at="2024-03-31T00:00:00Z")


def role_identity(role: str) -> dict[str, Any]:
    """An AssumedRole userIdentity (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html)."""
    return {
        "type": "AssumedRole", "principalId": f"AROAEXAMPLE:{role}", "accountId": ACCT,
        "arn": f"arn:aws:sts::{ACCT}:assumed-role/{role}/session",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "accountId": ACCT,
                                             "arn": f"arn:aws:iam::{ACCT}:role/{role}", "userName": role}},
    }


def record(role: str, source: str, name: str, params: Mapping[str, Any] | None = None,
           resources: Sequence[tuple[str, str]] = (), *, time: str = "2024-03-05T10:00:00Z") -> dict[str, Any]:
    rec: dict[str, Any] = {
        "eventVersion": "1.09", "userIdentity": role_identity(role), "eventTime": time, "eventSource": source,
        "eventName": name, "awsRegion": REGION, "sourceIPAddress": "192.0.2.0", "userAgent": "aws-cli/2",
        "requestParameters": dict(params) if params is not None else None, "responseElements": None,
        "eventType": "AwsApiCall", "recipientAccountId": ACCT,
    }
    if resources:
        rec["resources"] = [{"accountId": ACCT, "type": t, "ARN": a} for t, a in resources]
    return rec


def write_trail(root: Path, records: Sequence[Mapping[str, Any]], day: str = "2024-03-05", *,
                covered: Sequence[str] = ("2024-01-01", "2024-03-31"), account: str = ACCT) -> Path:
    """The records in one file of ``day``, and a file without records on each ``covered`` day: the trail was on
    from the first to the last of them (files are delivered every few minutes while a trail logs)."""
    def one(d: str, n: int, recs: Sequence[Mapping[str, Any]]) -> None:
        y, m, dd = d.split("-")
        path = (root / "AWSLogs" / account / "CloudTrail" / REGION / y / m / dd /
                f"{account}_CloudTrail_{REGION}_{y}{m}{dd}T0000Z_{n}.json.gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        # n spaces of padding: identical bytes under two names count once (a re-delivered file), these are not.
        pad = n + 4 * (int(account) % 97)  # per account too: two accounts' empty files differ
        path.write_bytes(gzip.compress((json.dumps({"Records": list(recs)}) + " " * pad).encode()))

    one(day, 0, records)
    for i, d in enumerate(covered):
        one(d, i + 1, [])
    return root


def applied(snapshot: Snapshot, role_arn: str, policy_name: str, docs: Sequence[Mapping[str, Any]]) -> SnapshotEvaluator:
    """A copy of the snapshot with the role's inline policy replaced by the proposal (merged into one document:
    the split is only a size matter), and an engine over it."""
    data = snapshot.model_dump(mode="json")
    for account in data["accounts"]:
        for role in account["roles"]:
            if role["arn"] != role_arn:
                continue
            kept = [p for p in role["inline_policies"] if p["name"] != policy_name]
            statements = [st for d in docs for st in (d["Statement"] if isinstance(d["Statement"], list)
                                                      else [d["Statement"]])]
            if statements:
                kept.append({"name": policy_name, "document": {"Version": "2012-10-17", "Statement": statements}})
            role["inline_policies"] = kept
    return SnapshotEvaluator(SnapshotIndex(Snapshot.model_validate(data)))
