"""Helpers that write CloudTrail log files in the S3 layout, for the usage tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

ACCT = "111122223333"


def role_identity(role: str, *, account: str = ACCT, invoked_by: str | None = None, path: str = "/") -> dict[str, Any]:
    ident: dict[str, Any] = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{role}-session",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/session",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": f"arn:aws:iam::{account}:role{path}{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2024-03-01T00:00:00Z", "mfaAuthenticated": "false"},
        },
    }
    if invoked_by:
        ident["invokedBy"] = invoked_by
    return ident


def user_identity(user: str, *, account: str = ACCT) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": f"arn:aws:iam::{account}:user/{user}",
        "accountId": account,
        "userName": user,
    }


def event(
    identity: dict[str, Any],
    source: str,
    name: str,
    *,
    time: str = "2024-03-05T10:00:00Z",
    region: str = "us-east-1",
    params: dict[str, Any] | None = None,
    resources: list[dict[str, Any]] | None = None,
    error: str | None = None,
    account: str = ACCT,
    event_id: str | None = None,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": time,
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2",
        "requestParameters": params,
        "responseElements": None,
        "eventType": "AwsApiCall",
        "recipientAccountId": account,
    }
    if resources is not None:
        ev["resources"] = resources
    if event_id is not None:
        ev["eventID"] = event_id
    if error:
        ev["errorCode"] = error
        ev["errorMessage"] = "denied"
    return ev


def log_path(root: Path, day: str, name: str, *, account: str = ACCT, region: str = "us-east-1", org: str | None = None) -> Path:
    y, m, d = day.split("-")
    base = root / "AWSLogs"
    if org:
        base = base / org
    return base / account / "CloudTrail" / region / y / m / d / f"{account}_CloudTrail_{region}_{y}{m}{d}T0000Z_{name}.json.gz"


def write_log(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    return path
