"""One evidence scenario for tests of what the config file's ``evidence.logged`` changes (API, report).

Trail one delivers us-east-1 with S3 data events; trail two, another location, delivers eu-west-1 with management
events only. The role ``etl`` reads objects in us-east-1 and describes instances in eu-west-1: its unused
``s3:PutObject`` may have been called in eu-west-1, where nothing would show it, so it is kept, unless the
configuration says eu-west-1 logs S3 data events too; its unused ``sqs:ListQueues`` is a management event, logged in
both. Records are written from the CloudTrail record contents page
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html) and
S3's data-event entries
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-understanding-s3-entries.html)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from iamgraph.collect.files import load_paths
from iamgraph.snapshot.io import write_snapshot
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore

ACCT = "111122223333"
ROLE = f"arn:aws:iam::{ACCT}:role/etl"
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "ec2:DescribeInstances", "sqs:ListQueues"],
     "Resource": "*"}]}


def identity() -> dict[str, Any]:
    # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
    return {"type": "AssumedRole", "principalId": "AROAEXAMPLEETL:s", "accountId": ACCT,
            "arn": f"arn:aws:sts::{ACCT}:assumed-role/etl/s",
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEETL", "accountId": ACCT,
                                                 "arn": ROLE, "userName": "etl"}}}


def _record(region: str, when: str, n: int, *, data: bool) -> dict[str, Any]:
    common = {"eventVersion": "1.09", "userIdentity": identity(), "eventTime": when, "awsRegion": region,
              "sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2", "responseElements": None,
              "eventID": f"{region}-{n}", "readOnly": True, "eventType": "AwsApiCall", "recipientAccountId": ACCT}
    if data:
        return {**common, "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
                "requestParameters": {"bucketName": "data", "key": "in/k", "Host": "data.s3.amazonaws.com"},
                "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::data/in/k"},
                              {"accountId": ACCT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::data"}],
                "managementEvent": False, "eventCategory": "Data"}
    return {**common, "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
            "requestParameters": {"instancesSet": {}, "filterSet": {}}, "managementEvent": True,
            "eventCategory": "Management"}


def _file(location: Path, region: str, day: str, n: int, record: dict[str, Any]) -> None:
    y, m, d = day.split("-")
    base = location / "AWSLogs" / ACCT / "CloudTrail" / region / y / m / d
    base.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"Records": [record]})
    (base / f"{ACCT}_CloudTrail_{region}_{y}{m}{d}T0000Z_{location.name}{n}.json.gz").write_bytes(
        gzip.compress(body.encode()))


def write_scenario(root: Path) -> dict[str, Path]:
    """The snapshot, the ingested store, a config saying eu-west-1 logs S3 data events, and a malformed config."""
    root.mkdir(parents=True, exist_ok=True)
    gaad = {"UserDetailList": [], "GroupDetailList": [], "Policies": [], "RoleDetailList": [{
        "Path": "/", "RoleName": "etl", "RoleId": "AROAEXAMPLEETL", "Arn": ROLE, "CreateDate": "2023-01-01T00:00:00Z",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "InstanceProfileList": [], "RolePolicyList": [{"PolicyName": "etl", "PolicyDocument": POLICY}],
        "AttachedManagedPolicies": [], "Tags": []}]}
    (root / "gaad.json").write_text(json.dumps(gaad))
    write_snapshot(load_paths([root / "gaad.json"], collected_at="2024-03-31T00:00:00Z"), root / "snap.json")
    one, two = root / "trail-one", root / "trail-two"
    # Trail one was on throughout the API's window (90 days ending at the newest activity, 2024-03-31 10:00).
    _file(one, "us-east-1", "2024-01-01", 1, _record("us-east-1", "2024-01-01T00:10:00Z", 1, data=False))
    _file(one, "us-east-1", "2024-03-05", 2, _record("us-east-1", "2024-03-05T10:00:00Z", 2, data=True))
    _file(one, "us-east-1", "2024-03-31", 3, _record("us-east-1", "2024-03-31T10:00:00Z", 3, data=False))
    _file(two, "eu-west-1", "2024-03-06", 1, _record("eu-west-1", "2024-03-06T10:00:00Z", 4, data=False))
    with UsageStore(root / "u.duckdb") as store:
        for loc in (one, two):
            ingest_location(store, str(loc))
    (root / "iamgraph.yaml").write_text(f'evidence:\n  logged:\n    "{ACCT}/eu-west-1":\n      data_events: [s3]\n')
    (root / "bad.yaml").write_text('evidence:\n  logged:\n    "12345":\n      data_events: [s3]\n')
    return {"snapshot": root / "snap.json", "db": root / "u.duckdb", "config": root / "iamgraph.yaml",
            "bad": root / "bad.yaml", "root": root}
