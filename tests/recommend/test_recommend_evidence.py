"""Evidence = every authorization a logged call implies: one scenario per rule, from a GetAccountAuthorizationDetails
export and CloudTrail records written from AWS documentation, through the real ingest, store and recommender.

Each scenario applies the emitted proposal to a copy of the snapshot and asks the engine about every authorization
the logs imply (each must stay allowed) and about probes the original did not grant (each must stay denied),
including an action name AWS does not have under any pattern yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from evidence_scenario import ACCT, REGION, applied, record, write_inputs, write_trail

from iamgraph.eval import SnapshotEvaluator
from iamgraph.recommend import ProposalStatus, recommend_principal
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore

ROLE = f"arn:aws:iam::{ACCT}:role/app"
NOW = datetime(2024, 3, 31, tzinfo=UTC)
KEY1 = f"arn:aws:kms:{REGION}:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY2 = f"arn:aws:kms:{REGION}:{ACCT}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCT}:table/orders"
TABLE2 = f"arn:aws:dynamodb:{REGION}:{ACCT}:table/customers"
GROUP = f"arn:aws:logs:{REGION}:{ACCT}:log-group:app-logs"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCT}:secret:prod/db-AbC123"

POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Objects", "Effect": "Allow",
     "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"],
     "Resource": ["arn:aws:s3:::src/*", "arn:aws:s3:::dst/*"]},
    {"Sid": "Tables", "Effect": "Allow", "Action": ["dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DeleteTable"],
     "Resource": [TABLE, f"{TABLE}/index/*", TABLE2]},
    {"Sid": "Keys", "Effect": "Allow", "Action": ["kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:Decrypt"],
     "Resource": [KEY1, KEY2]},
    {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:DescribeLogStreams", "logs:PutLogEvents",
                                                   "logs:DeleteLogGroup"],
     "Resource": f"{GROUP}:*"},
    # The exact form, with the six-character suffix: the snapshot resolves the name the call used.
    {"Sid": "Secret", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret"],
     "Resource": SECRET},
]}

_KEY_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "kms:*", "Resource": "*"}]}

RECORDS = [
    # CopyObject names its source in the x-amz-copy-source header, with a version
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html).
    record("app", "s3.amazonaws.com", "CopyObject",
           {"bucketName": "dst", "key": "b.csv", "x-amz-copy-source": "src/a.csv?versionId=v1"},
           [("AWS::S3::Object", "arn:aws:s3:::dst/b.csv"), ("AWS::S3::Bucket", "arn:aws:s3:::dst")]),
    # Query on an index (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/understanding-ddb-log-entries.html).
    record("app", "dynamodb.amazonaws.com", "Query", {"tableName": "orders", "indexName": "by-date"},
           [("AWS::DynamoDB::Table", TABLE)]),
    # BatchGetItem over two tables: one resources[] entry per table.
    record("app", "dynamodb.amazonaws.com", "BatchGetItem", {"requestItems": [{"tableName": "orders"},
                                                                               {"tableName": "customers"}]},
           [("AWS::DynamoDB::Table", TABLE), ("AWS::DynamoDB::Table", TABLE2)]),
    # ReEncrypt: resources[] is the source key, then the destination key
    # (https://docs.aws.amazon.com/kms/latest/developerguide/ct-reencrypt.html).
    record("app", "kms.amazonaws.com", "ReEncrypt", {"destinationKeyId": KEY2.rsplit("/", 1)[1]},
           [("AWS::KMS::Key", KEY1), ("AWS::KMS::Key", KEY2)]),
    # CloudWatch Logs calls name the group (and stream) only.
    record("app", "logs.amazonaws.com", "DescribeLogStreams", {"logGroupName": "app-logs"}),
    record("app", "logs.amazonaws.com", "PutLogEvents", {"logGroupName": "app-logs", "logStreamName": "s1"}),
    # Secrets Manager by name (https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieving-secrets.html).
    record("app", "secretsmanager.amazonaws.com", "GetSecretValue", {"secretId": "prod/db"}),
]

# Every authorization the records imply, from the Service Authorization Reference and the pages above.
IMPLIED = [
    ("s3:PutObject", "arn:aws:s3:::dst/b.csv"),
    ("s3:GetObject", "arn:aws:s3:::src/a.csv"),
    ("s3:GetObjectVersion", "arn:aws:s3:::src/a.csv"),
    ("dynamodb:Query", f"{TABLE}/index/by-date"),
    ("dynamodb:BatchGetItem", TABLE),
    ("dynamodb:BatchGetItem", TABLE2),
    ("kms:ReEncryptFrom", KEY1),
    ("kms:ReEncryptTo", KEY2),
    ("logs:DescribeLogStreams", f"{GROUP}:log-stream:"),
    ("logs:PutLogEvents", f"{GROUP}:log-stream:s1"),
    ("secretsmanager:GetSecretValue", SECRET),
]

# Denied before: must stay denied. s3:ReplicateFutureAction is no action AWS has (yet).
PROBES = [
    ("s3:ReplicateFutureAction", "arn:aws:s3:::src/a.csv"),
    ("s3:GetObject", "arn:aws:s3:::other/a.csv"),
    ("dynamodb:Query", f"arn:aws:dynamodb:{REGION}:{ACCT}:table/other"),
    ("kms:Encrypt", KEY1),
    ("logs:DescribeLogStreams", f"arn:aws:logs:{REGION}:{ACCT}:log-group:other:log-stream:"),
    ("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{REGION}:{ACCT}:secret:prod/other-XyZ789"),
]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, UsageStore, Any]]:
    root = tmp_path_factory.mktemp("evidence")
    snapshot = write_inputs(root / "inputs", {"app": POLICY}, {
        f"{REGION}/kms/{KEY1.rsplit('/', 1)[1]}.json": {"Policy": json.dumps(_KEY_POLICY)},
        f"{REGION}/kms/{KEY2.rsplit('/', 1)[1]}.json": {"Policy": json.dumps(_KEY_POLICY)},
        f"{REGION}/secretsmanager/db.json": {"ARN": SECRET, "Name": "prod/db", "ResourcePolicy": json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
                                                     "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})},
    })
    store = UsageStore(root / "usage.duckdb")
    ingest_location(store, str(write_trail(root / "trail", RECORDS)))
    yield snapshot, store, SnapshotIndex(snapshot)
    store.close()


def test_the_store_holds_every_implied_authorization(scenario: Any) -> None:
    _, store, _ = scenario
    got = {(r.action, r.resource) for r in store.records(principal_arn=ROLE)}
    # The secret is stored as its name with the suffix left open; the snapshot resolves it (next test).
    implied = {(a, r) for a, r in IMPLIED if a != "secretsmanager:GetSecretValue"}
    assert implied <= got
    assert ("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{REGION}:{ACCT}:secret:prod/db-??????") in got
    # Nothing recorded on the wrong resource: the copy's source is no PutObject target, the first key no ReEncryptTo.
    assert ("s3:PutObject", "arn:aws:s3:::src/a.csv") not in got
    assert ("kms:ReEncryptTo", KEY1) not in got and ("kms:ReEncryptFrom", KEY2) not in got
    assert ("dynamodb:Query", TABLE) not in got
    assert not [p for p in store.problems() if p.kind == "unknown_shape"]


def test_the_applied_proposal_allows_every_implied_authorization_and_nothing_new(scenario: Any) -> None:
    snapshot, store, index = scenario
    rec = recommend_principal(index, store, ROLE, days=90, now=NOW)
    (p,) = rec.proposals
    assert p.status is ProposalStatus.EMITTED, (p.reason, p.verification)
    before = SnapshotEvaluator(index)
    after = applied(snapshot, ROLE, "app", p.proposed)
    for action, resource in IMPLIED:
        assert before.ask(ROLE, action, resource).allowed, (action, resource)
        assert after.ask(ROLE, action, resource).allowed, (action, resource)
    for action, resource in PROBES:
        assert not before.ask(ROLE, action, resource).allowed, (action, resource)
        assert not after.ask(ROLE, action, resource).allowed, (action, resource)
    # What nobody used goes, and the test would see it if it stayed.
    for action, resource in (("s3:DeleteObject", "arn:aws:s3:::src/a.csv"), ("dynamodb:DeleteTable", TABLE),
                             ("kms:Decrypt", KEY1), ("secretsmanager:DeleteSecret", SECRET)):
        assert before.ask(ROLE, action, resource).allowed
        assert not after.ask(ROLE, action, resource).allowed, (action, resource)


def test_a_reencrypt_with_one_key_is_an_unknown_shape_counted_never_guessed(tmp_path: Path) -> None:
    store = UsageStore(tmp_path / "u.duckdb")
    try:
        ingest_location(store, str(write_trail(tmp_path / "trail", [
            record("app", "kms.amazonaws.com", "ReEncrypt", {}, [("AWS::KMS::Key", KEY1)])])))
        got = {(r.action, r.resource) for r in store.records(principal_arn=ROLE)}
        # Both actions were used; on which key each was is not known, so neither is pinned to KEY1.
        assert got == {("kms:ReEncryptFrom", None), ("kms:ReEncryptTo", None)}
        (problem,) = [p for p in store.problems() if p.kind == "unknown_shape"]
        assert problem.detail.startswith("kms.amazonaws.com ReEncrypt") and problem.count == 1
    finally:
        store.close()


def test_an_unknown_secret_name_keeps_the_original_resources(tmp_path: Path) -> None:
    """The snapshot has no secret of that name: the exact ARN cannot be known, so nothing is narrowed to a guess."""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret"],
         "Resource": f"arn:aws:secretsmanager:{REGION}:{ACCT}:secret:prod/*"}]}
    snapshot = write_inputs(tmp_path / "inputs", {"app": policy})
    store = UsageStore(tmp_path / "u.duckdb")
    try:
        ingest_location(store, str(write_trail(tmp_path / "trail", [RECORDS[-1]])))
        rec = recommend_principal(SnapshotIndex(snapshot), store, ROLE, days=90, now=NOW)
        (p,) = rec.proposals
        assert p.status is ProposalStatus.EMITTED
        assert p.proposed[0]["Statement"] == [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                                               "Resource": f"arn:aws:secretsmanager:{REGION}:{ACCT}:secret:prod/*"}]
    finally:
        store.close()
