"""Other sources: CloudTrail files in S3 (moto server), LookupEvents (Stubber: moto server answers
lookup_events with HTTP 500, see TESTING-AWS.md), Access Advisor from a snapshot."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from usage_ct_logs import ACCT, event, log_path, role_identity, write_log

from iamgraph.snapshot.model import Activity, ServiceLastAccessed, Snapshot, TrackedAction
from iamgraph.usage.access_advisor import ingest_access_advisor
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.lookup import ingest_lookup_events
from iamgraph.usage.store import UsageStore
from iamgraph.usage.types import Source

ROLE = f"arn:aws:iam::{ACCT}:role/app"


@pytest.mark.moto
def test_ingest_from_s3(aws_env: object, tmp_path: Path) -> None:
    root = tmp_path / "logs"
    app = role_identity("app")
    write_log(log_path(root, "2024-03-05", "a"), [event(app, "iam.amazonaws.com", "ListRoles")] * 3)
    write_log(log_path(root, "2024-03-06", "b"), [event(app, "iam.amazonaws.com", "GetRole")])
    bad = log_path(root, "2024-03-06", "bad")
    bad.write_bytes(b"\x1f\x8b not really")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="trail")
    for p in root.rglob("*.json.gz"):
        s3.upload_file(str(p), "trail", "org-trail/" + str(p.relative_to(root)))
    s3.put_object(Bucket="trail", Key="org-trail/AWSLogs/README.txt", Body=b"not a log")
    with UsageStore(tmp_path / "u.duckdb") as store:
        stats = ingest_location(store, "s3://trail/org-trail", s3_client=s3)
        assert (stats.files_seen, stats.files_ingested, stats.files_bad) == (3, 2, 1)
        assert {r.action: r.count for r in store.usage_for(ROLE)} == {"iam:ListRoles": 3, "iam:GetRole": 1}
        assert any(f.path.startswith("s3://trail/org-trail/AWSLogs/") for f in store.files())
        again = ingest_location(store, "s3://trail/org-trail", s3_client=s3)
        assert again.files_skipped_done == 3 and again.events == 0
        assert {r.action: r.count for r in store.usage_for(ROLE)} == {"iam:ListRoles": 3, "iam:GetRole": 1}


def test_lookup_events_with_stubber(tmp_path: Path) -> None:
    client = boto3.client("cloudtrail", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                          endpoint_url="http://127.0.0.1:9")
    start, end = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 31, tzinfo=UTC)
    app = role_identity("app")
    page1 = [event(app, "iam.amazonaws.com", "ListRoles"), event(app, "kms.amazonaws.com", "ReEncrypt")]
    page2 = [event(app, "iam.amazonaws.com", "ListRoles", time="2024-03-09T00:00:00Z")]
    with Stubber(client) as stub:
        stub.add_response(
            "lookup_events",
            {"Events": [{"EventId": str(i), "CloudTrailEvent": json.dumps(e)} for i, e in enumerate(page1)],
             "NextToken": "n"},
            {"StartTime": start, "EndTime": end},
        )
        stub.add_response(
            "lookup_events",
            {"Events": [{"EventId": "9", "CloudTrailEvent": json.dumps(page2[0])}]},
            {"StartTime": start, "EndTime": end, "NextToken": "n"},
        )
        with UsageStore(tmp_path / "u.duckdb") as store:
            stats = ingest_lookup_events(store, client, start=start, end=end)
            assert stats.events == 3
            got = {r.action: (r.count, r.last_seen) for r in store.usage_for(ROLE)}
    assert got == {
        "iam:ListRoles": (2, datetime(2024, 3, 9)),
        "kms:ReEncryptFrom": (1, datetime(2024, 3, 5, 10)),
        "kms:ReEncryptTo": (1, datetime(2024, 3, 5, 10)),
    }


def test_access_advisor_from_snapshot(tmp_path: Path) -> None:
    snap = Snapshot(
        collected_at="2024-04-01T00:00:00Z",
        activity=Activity(
            access_advisor=[
                ServiceLastAccessed(principal_arn=ROLE, service_namespace="s3",
                                    last_authenticated="2024-03-20T08:00:00+00:00",
                                    tracked_actions=[
                                        TrackedAction(action_name="GetObject",
                                                      last_accessed_time="2024-03-20T08:00:00+00:00"),
                                        TrackedAction(action_name="PutObject"),
                                    ]),
                ServiceLastAccessed(principal_arn=ROLE, service_namespace="ec2", last_authenticated=None),
            ]
        ),
    )
    with UsageStore(tmp_path / "u.duckdb") as store:
        assert ingest_access_advisor(store, snap) == 2
        assert ingest_access_advisor(store, snap) == 2  # replaces, does not add up
        recs = {r.action: r for r in store.usage_for(ROLE)}
        assert set(recs) == {"s3:*", "s3:GetObject"}
        assert recs["s3:GetObject"].source is Source.ACCESS_ADVISOR
        assert recs["s3:GetObject"].last_seen == datetime(2024, 3, 20, 8)
        assert store.access_advisor_services() == {"s3"}
        assert store.observability("s3:PutObject").access_advisor_action_level
