"""A batch's transaction: the aggregate mapped to IAM actions and upserted inside DuckDB (``Ingestor._store_aggregate``)
gives the store that mapping it row by row in Python (``rows_from_aggregate`` and ``UsageStore.merge_usage``) gives,
and the event-ID claim counts an event once across batches and runs."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from usage_ct_logs import ACCT, event, log_path, role_identity, user_identity, write_log

from iamgraph.usage import ingest
from iamgraph.usage.ingest import Ingestor, local_files
from iamgraph.usage.store import UsageStore

KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/"
WHO: tuple[dict[str, Any], ...] = (
    role_identity("app"),
    role_identity("AWSReservedSSO_ReadOnly_0123456789abcdef", path="/aws-reserved/sso.amazonaws.com/"),
    user_identity("alice"),
    role_identity("svc", invoked_by="lambda.amazonaws.com"),
    {"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"},
    {"type": "AWSAccount", "accountId": "444455556666", "principalId": "X"},
    {"principalId": "nobody"},  # no type, no ARN: unattributed
)
# Calls whose facts take each branch of the mapping: rules of iamgraph.usage.evidence (the S3 copy source, KMS
# ReEncrypt with both keys and with one, a DynamoDB index), an ambiguous mapping (TransactWriteItems), name hints,
# an unknown service and event, an event that is no authorization (ConsoleLogin) and one without an eventSource.
CALLS: tuple[tuple[str, str, dict[str, Any] | None, list[dict[str, Any]] | None], ...] = (
    ("s3.amazonaws.com", "CopyObject", {"bucketName": "dst", "key": "k", "x-amz-copy-source": "src/a.txt?versionId=3"},
     None),
    ("s3.amazonaws.com", "CopyObject", {"bucketName": "dst", "key": "k2"}, None),
    ("kms.amazonaws.com", "ReEncrypt", None, [{"ARN": KEY + "a"}, {"ARN": KEY + "b"}]),
    ("kms.amazonaws.com", "ReEncrypt", None, [{"ARN": KEY + "a"}]),
    ("dynamodb.amazonaws.com", "Query", {"tableName": "t", "indexName": "i"}, None),
    ("dynamodb.amazonaws.com", "TransactWriteItems", None, None),
    ("lambda.amazonaws.com", "Invoke", {"functionName": "f"}, None),
    ("logs.amazonaws.com", "PutLogEvents", {"logGroupName": "g", "logStreamName": "s"}, None),
    ("secretsmanager.amazonaws.com", "GetSecretValue", {"secretId": "db-pass"}, None),
    ("madeup.amazonaws.com", "DoThing", None, None),
    ("signin.amazonaws.com", "ConsoleLogin", None, None),
    ("", "GetRole", None, None),
)


def _logs(root: Path, seed: int = 5) -> None:
    rng = random.Random(seed)
    for day in ("2024-03-05", "2024-03-06"):
        for f in range(3):
            recs = []
            for _ in range(80):
                source, name, params, resources = CALLS[rng.randrange(len(CALLS))]
                frac = rng.choice(["", ".5", ".123456"])
                recs.append(event(WHO[rng.randrange(len(WHO))], source, name,
                                  time=f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00{frac}Z",
                                  params=params, resources=resources,
                                  error=rng.choice([None, None, "AccessDenied", "ThrottlingException"]),
                                  region=rng.choice(["us-east-1", "eu-west-1"]),
                                  event_id=str(uuid.UUID(int=rng.randrange(1, 400)))))
            write_log(log_path(root, day, f"f{f}"), recs)


def _content(store: UsageStore) -> dict[str, list[Any]]:
    con = store.con
    return {table: sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in ("usage", "logged", "problems")}


def _ingest(root: Path, db: Path, batch_bytes: int) -> tuple[Any, dict[str, list[Any]]]:
    with UsageStore(db) as store:
        stats = Ingestor(store, workers=1, batch_bytes=batch_bytes).ingest(local_files(root))
        return stats, _content(store)


@pytest.mark.parametrize("batch_bytes", [4096, 64 * 1024 * 1024], ids=["a-batch-per-file", "one-batch"])
def test_the_aggregate_mapped_in_duckdb_gives_the_store_of_mapping_it_row_by_row(
        tmp_path: Path, batch_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sets of facts are joined back to their rows by a hash (``ingest._FID``). With a hash that gives every set
    the same value, each batch has two sets with one hash and must take the row-by-row path
    (``rows_from_aggregate``), whose store is the reference: without that check, rows would be joined to other rows'
    actions and the stores would differ."""
    _logs(tmp_path / "logs")
    row_by_row: list[int] = []
    original = ingest.rows_from_aggregate

    def counted(*args: Any, **kwargs: Any) -> Any:
        row_by_row.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(ingest, "rows_from_aggregate", counted)
    stats, in_duckdb = _ingest(tmp_path / "logs", tmp_path / "duckdb.duckdb", batch_bytes)
    assert row_by_row == []
    monkeypatch.setattr(ingest, "_FID", "0::UBIGINT")
    reference_stats, reference = _ingest(tmp_path / "logs", tmp_path / "python.duckdb", batch_bytes)
    assert len(row_by_row) > 1 if batch_bytes == 4096 else len(row_by_row) == 1  # every batch
    # The set is what it claims to be: each kind of row is there.
    kinds = {p[0] for p in reference["problems"]}
    assert kinds == {"unattributed", "unmapped", "no_action", "unknown_shape"}
    assert any(r[7] == "ReadOnly" for r in reference["usage"])  # a permission set
    assert any(not r[9] for r in reference["usage"])  # an ambiguous mapping: not certain
    assert {"kms:ReEncryptFrom", "kms:ReEncryptTo", "s3:GetObjectVersion"} <= {r[2] for r in reference["usage"]}
    assert stats.events_duplicate > 0 and stats.events_unattributed > 0 and stats.events_unmapped > 0
    assert stats == reference_stats
    assert in_duckdb == reference
