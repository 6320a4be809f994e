"""A batch's transaction: the aggregate mapped to IAM actions and upserted inside DuckDB (``Ingestor._store_aggregate``)
gives the store that mapping it row by row in Python (``rows_from_aggregate`` and ``UsageStore.merge_usage``) gives,
and the event-ID claim counts an event once across batches and runs."""

from __future__ import annotations

import hashlib
import random
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest
from usage_ct_logs import ACCT, event, log_path, role_identity, user_identity, write_log

from iamgraph.usage import ingest
from iamgraph.usage import store as store_module
from iamgraph.usage.ingest import Ingestor, local_files
from iamgraph.usage.store import UsageStore, UsageStoreError

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


LOWER = "6f1c3b1e-8d3a-4c1e-9f0a-1b2c3d4e5f60"
UPPER = "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"
OTHER = "not-a-uuid-7"


def _one_call(event_id: str, minute: int) -> dict[str, Any]:
    return event(role_identity("app"), "iam.amazonaws.com", "GetRole", time=f"2024-03-05T10:{minute:02d}:00Z",
                 params={"roleName": "r"}, event_id=event_id)


def _get_role_count(store: UsageStore) -> int:
    row = store.con.execute("SELECT sum(count) FROM usage WHERE action = 'iam:GetRole'").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def test_an_event_counted_in_an_earlier_run_is_taken_back_whatever_its_id_looks_like(tmp_path: Path) -> None:
    """An organization trail and an account trail deliver the same event (same eventID) in two files
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html): counted once,
    whether its ID is a UUID as CloudTrail writes one (kept as a UUID), an upper-case UUID or no UUID at all (kept
    as text). An upper-case UUID's text is not the lower-case one's: they are two events, as the text says."""
    root = tmp_path / "logs"
    write_log(log_path(root, "2024-03-05", "first"), [_one_call(LOWER, 1), _one_call(UPPER, 2), _one_call(OTHER, 3)])
    with UsageStore(tmp_path / "u.duckdb") as store:
        first = Ingestor(store, workers=1).ingest(local_files(root))
        assert (first.events, first.events_duplicate) == (3, 0)
        again = log_path(root, "2024-03-06", "again", org="o-abc123def4")
        write_log(again, [_one_call(OTHER, 3), _one_call(UPPER, 2), _one_call(LOWER, 1), _one_call(UPPER.lower(), 4),
                          _one_call(str(uuid.UUID(int=9)), 5)])
        second = Ingestor(store, workers=1).ingest(local_files(root))
        assert (second.files_ingested, second.events, second.events_duplicate) == (1, 2, 3)
        assert _get_role_count(store) == 5
        assert sorted(store.counted_event_ids()) == sorted([LOWER, UPPER, OTHER, UPPER.lower(), str(uuid.UUID(int=9))])
        kept_as_text = {r[0] for r in store.con.execute("SELECT event_id FROM event_texts").fetchall()}
        assert kept_as_text == {UPPER, OTHER}


def _as_older_schema(store: UsageStore, version: int) -> None:
    """Rewrites a store's eventIDs as schema ``version`` kept them: schema 1 every ID as text in ``event_ids``,
    schema 2 the canonical UUIDs in ``event_uuids`` and the others as text in ``event_ids``."""
    store.con.execute("CREATE TABLE event_ids (event_id VARCHAR NOT NULL); "
                      "INSERT INTO event_ids SELECT event_id FROM event_texts; DROP TABLE event_texts")
    if version == 1:
        store.con.execute("INSERT INTO event_ids SELECT CAST(event_id AS VARCHAR) FROM event_uuids; "
                          "DELETE FROM event_uuids")
    store.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])


@pytest.mark.parametrize("version", [1, 2])
def test_a_store_of_an_older_schema_moves_its_event_ids_and_still_counts_each_event_once(
        tmp_path: Path, version: int) -> None:
    """A store written before the hashed text IDs (schema 2: UUIDs in ``event_uuids``, other IDs as text in
    ``event_ids``) or before the UUID table (schema 1: every eventID as text) is moved over the first time it is
    opened for writing, and an event it counted is taken back when delivered again; a read-only open leaves it as it
    is."""
    root = tmp_path / "logs"
    write_log(log_path(root, "2024-03-05", "first"), [_one_call(LOWER, 1), _one_call(UPPER, 2), _one_call(OTHER, 3)])
    db = tmp_path / "u.duckdb"
    with UsageStore(db) as store:
        Ingestor(store, workers=1).ingest(local_files(root))
        _as_older_schema(store, version)
    with UsageStore(db, read_only=True) as store:
        assert store.get_meta("schema_version") == str(version)
    with UsageStore(db) as store:
        assert store.get_meta("schema_version") == "3"
        tables = {r[0] for r in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "event_ids" not in tables
        assert [str(r[0]) for r in store.con.execute("SELECT event_id FROM event_uuids").fetchall()] == [LOWER]
        assert sorted(store.con.execute("SELECT event_id, h FROM event_texts").fetchall()) == sorted(
            (t, int.from_bytes(hashlib.md5(t.encode()).digest(), "little")) for t in (UPPER, OTHER))
        write_log(log_path(root, "2024-03-06", "again"), [_one_call(LOWER, 1), _one_call(OTHER, 3),
                                                          _one_call(UPPER, 2), _one_call("new-one", 4)])
        second = Ingestor(store, workers=1).ingest(local_files(root))
        assert (second.events, second.events_duplicate) == (1, 3)
        assert _get_role_count(store) == 4


def test_ids_that_share_a_hash_are_still_two_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Text eventIDs are looked up by a 128-bit hash, and the text decides: with every text ID forced onto one hash,
    an ID counted before is still taken back, a new one is still counted, and the store ends as it does with the
    real hash."""
    def ingest_twice(db: Path) -> list[tuple[int, int]]:
        root = tmp_path / db.stem
        write_log(log_path(root, "2024-03-05", "first"), [_one_call("id-a", 1), _one_call(LOWER, 2),
                                                          _one_call("id-b", 3)])
        out = []
        with UsageStore(db) as store:
            first = Ingestor(store, workers=1).ingest(local_files(root))
            out.append((first.events, first.events_duplicate))
            write_log(log_path(root, "2024-03-06", "again"), [_one_call("id-b", 3), _one_call("id-c", 4),
                                                              _one_call(LOWER, 2), _one_call("id-d", 5)])
            second = Ingestor(store, workers=1).ingest(local_files(root))
            out.append((second.events, second.events_duplicate))
            out.append((_get_role_count(store), 0))
            assert sorted(store.counted_event_ids()) == sorted(["id-a", "id-b", "id-c", "id-d", LOWER])
        return out

    real = ingest_twice(tmp_path / "real.duckdb")
    monkeypatch.setattr(store_module, "TEXT_ID_HASH", "(0 * length({}))::UHUGEINT")
    monkeypatch.setattr(UsageStore, "_check_text_hash", lambda self: None)  # a constant is not MD5, by design
    forced = ingest_twice(tmp_path / "forced.duckdb")
    assert real == forced == [(3, 0), (2, 2), (5, 0)]


def test_the_text_id_hash_is_md5_read_little_endian(tmp_path: Path) -> None:
    """The stored hash is defined outside DuckDB (MD5, its 16 bytes as a little-endian integer), so a store written
    by one DuckDB is read right by another; a DuckDB that hashed differently is refused before anything is written."""
    ids = ["not-a-uuid-7", "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D", "é\u00e9", "x" * 300, ""]
    with UsageStore(tmp_path / "u.duckdb") as store:
        got = store.con.execute(f"SELECT {store_module.TEXT_ID_HASH.format('unnest($1::VARCHAR[])')}",
                                [ids]).fetchall()
        assert [int(r[0]) for r in got] == [int.from_bytes(hashlib.md5(t.encode()).digest(), "little") for t in ids]


def test_a_store_is_refused_when_duckdb_hashes_text_ids_differently(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "TEXT_ID_HASH", "md5_number({} || 'x')")
    with pytest.raises(UsageStoreError, match="hashes eventIDs differently"):
        UsageStore(tmp_path / "u.duckdb")


def test_a_batch_that_fails_in_its_upsert_leaves_the_store_as_it_was_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's temporary tables go with its rollback: the error raised is the upsert's own (not one of a cleanup in
    the aborted transaction), nothing of the batch is kept, and the next ingest counts every event once."""
    _logs(tmp_path / "logs")
    original = UsageStore.merge_usage_query

    def broken(self: UsageStore, select: str, params: Any = ()) -> int:
        self.con.execute("SELECT no_such_column FROM usage")
        return 0

    with UsageStore(tmp_path / "u.duckdb") as store:
        monkeypatch.setattr(UsageStore, "merge_usage_query", broken)
        with pytest.raises(Exception, match="no_such_column"):
            Ingestor(store, workers=1).ingest(local_files(tmp_path / "logs"))
        assert _content(store) == {"usage": [], "logged": [], "problems": []}
        assert store.counted_event_ids() == [] and store.files() == []
        monkeypatch.setattr(UsageStore, "merge_usage_query", original)
        stats = Ingestor(store, workers=1).ingest(local_files(tmp_path / "logs"))
        reference_stats, reference = _ingest(tmp_path / "logs", tmp_path / "fresh.duckdb", 64 * 1024 * 1024)
        assert stats == reference_stats and _content(store) == reference


ODD_IDS = [" x ", "NULL", "null", '"q"', "a,b", "a\\b", "#c", "é", "\t", UPPER, "{" + LOWER + "}", LOWER.replace("-", ""),
           LOWER, "x;y", "'s'", "a\tb", " ", "\x02", "😀"]
"""eventIDs a CSV reader could change (quotes, separators, escapes, comments, NULL words, whitespace)."""


@pytest.mark.parametrize("by_file", [True, False], ids=["file", "string"])
@pytest.mark.parametrize("extra", [[], ["with\rcr"], ["with\x01soh"], ["with\x00nul"], [""], ["with\nnewline"],
                                   ["\ud800"]], ids=["none", "cr", "soh", "nul", "empty", "newline", "surrogate"])
def test_event_ids_reach_duckdb_as_they_are_whichever_way_they_go(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_file: bool, extra: list[str]) -> None:
    """The claim hands a batch's IDs to DuckDB in a file of lines (many IDs) or in one string (few, or any ID the
    file could not keep as it is): each ID is stored and found again exactly as given, whichever way it went."""
    monkeypatch.setattr(store_module, "_IDS_BY_FILE", 1 if by_file else 10 ** 9)
    ids = ODD_IDS + extra
    with UsageStore(tmp_path / "u.duckdb") as store:
        _, _, tmp = store._given_ids(ids)
        assert (tmp is not None) == (by_file and not extra)  # the path under test is the one taken
        if tmp is not None:
            Path(tmp).unlink()
        if extra == ["\ud800"]:  # not UTF-8 either way: DuckDB refuses it, as it did before the file path
            store.begin()
            with pytest.raises(duckdb.InvalidInputException, match="surrogate"):
                store.claim_event_ids(ids)
            store.rollback()
            return
        store.begin()
        assert store.claim_event_ids(ids) == []
        store.commit()
        assert sorted(store.counted_event_ids()) == sorted(ids)
        store.begin()
        assert sorted(store.claim_event_ids([*ids, "new"])) == sorted(ids)
        store.commit()
        assert sorted(store.counted_event_ids()) == sorted([*ids, "new"])


def test_an_ingest_runs_duckdb_on_one_thread_and_gives_its_threads_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's statements run on one DuckDB thread (less CPU on small inputs); the store's setting is back as it was
    after the ingest, also after one that failed."""
    _logs(tmp_path / "logs")
    seen: list[str] = []
    original = UsageStore.claim_event_ids

    def spy(self: UsageStore, ids: Any) -> list[str]:
        row = self.con.execute("SELECT current_setting('threads')").fetchone()
        seen.append(str(row[0]) if row else "")
        return original(self, ids)

    monkeypatch.setattr(UsageStore, "claim_event_ids", spy)
    with UsageStore(tmp_path / "u.duckdb") as store:
        store.con.execute("SET threads = 3")
        Ingestor(store, workers=1).ingest(local_files(tmp_path / "logs"))
        assert seen and set(seen) == {"1"}
        assert store.con.execute("SELECT current_setting('threads')").fetchone() == (3,)
        monkeypatch.setattr(UsageStore, "merge_usage_query", lambda *a, **k: 1 / 0)
        _logs(tmp_path / "more", seed=6)
        with pytest.raises(ZeroDivisionError):
            Ingestor(store, workers=1).ingest(local_files(tmp_path / "more"))
        assert store.con.execute("SELECT current_setting('threads')").fetchone() == (3,)


def test_a_store_of_schema_1_from_before_the_event_id_table_opens_and_counts_from_then_on(tmp_path: Path) -> None:
    """A schema-1 store written before ``event_ids`` existed has no such table: it is moved to schema 3 all the same
    (it holds no IDs of the events it counted, as before), and the events ingested from then on count once."""
    db = tmp_path / "u.duckdb"
    with UsageStore(db) as store:
        store.con.execute("DROP TABLE event_texts; UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with UsageStore(db) as store:
        assert store.get_meta("schema_version") == "3"
        root = tmp_path / "logs"
        write_log(log_path(root, "2024-03-05", "first"), [_one_call(OTHER, 1), _one_call(LOWER, 2)])
        write_log(log_path(root, "2024-03-06", "again", org="o-abc123def4"),
                  [_one_call(OTHER, 1), _one_call(LOWER, 2), _one_call(UPPER, 3)])
        stats = Ingestor(store, workers=1, batch_bytes=1).ingest(local_files(root))
        assert (stats.files_ingested, stats.events, stats.events_duplicate) == (2, 3, 2)
