"""Parallel ingest: files decoded by a process pool give the same store as reading them one after the other.

The generated set has what the serial reader handles record by record and file by file: malformed and missing
``eventTime`` (skipped and counted per reason), a file that is not valid JSON as a whole (its readable records
kept), records without an ``eventID``, events delivered twice under two trails (same eventID: counted once,
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html), the same file
delivered again under another name (same bytes), a truncated gzip file and a file that is not gzip at all
(bad files), and small batches so that the deduplication also crosses transactions.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from usage_ct_logs import event, log_path, role_identity, user_identity

from iamgraph.usage.ingest import (
    BAD_FILE_ERRORS,
    CloudTrailReader,
    Ingestor,
    local_files,
    read_file,
    read_in_order,
)
from iamgraph.usage.store import UsageStore

CALLS = (("s3.amazonaws.com", "GetObject"), ("s3.amazonaws.com", "PutObject"), ("iam.amazonaws.com", "GetRole"),
         ("kms.amazonaws.com", "Decrypt"), ("sts.amazonaws.com", "AssumeRole"), ("ec2.amazonaws.com", "RunInstances"))


def _record(rng: random.Random, n: int) -> dict[str, Any]:
    who = role_identity(f"app-{rng.randrange(4)}") if rng.random() < 0.8 else user_identity(f"u{rng.randrange(3)}")
    source, name = CALLS[rng.randrange(len(CALLS))]
    params = {"bucketName": f"b{rng.randrange(3)}", "key": f"k{rng.randrange(5)}"} if source.startswith("s3") else {}
    day = 5 + rng.randrange(3)
    ev = event(who, source, name, time=f"2024-03-{day:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
               params=params, error="AccessDenied" if rng.random() < 0.1 else None,
               event_id=str(uuid.UUID(int=n + 1)) if rng.random() < 0.95 else None)
    roll = rng.random()
    if roll < 0.03:
        ev["eventTime"] = "2024-02-30T00:00:00Z"
    elif roll < 0.05:
        del ev["eventTime"]
    return ev


def generate(root: Path, seed: int = 11) -> list[Path]:
    """About 40 files, each with its quirks (see the module docstring); returns the paths written."""
    rng = random.Random(seed)
    written: list[Path] = []
    n = 0
    delivered: list[dict[str, Any]] = []
    for i in range(36):
        recs = [_record(rng, n + j) for j in range(rng.randrange(20, 60))]
        n += len(recs)
        if delivered and i % 5 == 4:  # an organization trail delivers some of the same events again
            recs += rng.sample(delivered, min(6, len(delivered)))
        delivered += recs
        path = log_path(root, f"2024-03-{5 + i % 3:02d}", f"f{i:02d}")
        if i == 7:  # not valid JSON as a whole: one broken record among readable ones
            body = b'{"Records": [' + b",".join(orjson.dumps(r) for r in recs[:5]) + b',{"eventTime": nope},' \
                + b",".join(orjson.dumps(r) for r in recs[5:]) + b"]}"
        else:
            body = orjson.dumps({"Records": recs})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(body))
        written.append(path)
    copy = log_path(root, "2024-03-06", "copy-of-f03")  # the same bytes again
    shutil.copyfile(written[3], copy)
    truncated = log_path(root, "2024-03-06", "truncated")
    truncated.write_bytes(written[10].read_bytes()[:200])
    not_gzip = log_path(root, "2024-03-07", "not-gzip")
    not_gzip.write_bytes(b"this is not a log file")
    return [*written, copy, truncated, not_gzip]


def _content(store: UsageStore) -> dict[str, list[tuple[Any, ...]]]:
    con = store.con
    return {
        "usage": sorted(con.execute("SELECT * FROM usage").fetchall(), key=repr),
        "problems": sorted(con.execute("SELECT * FROM problems").fetchall(), key=repr),
        "event_ids": sorted(store.counted_event_ids()),
        "files": sorted(con.execute("SELECT path, size, sha256, status, error FROM ingested_files").fetchall(),
                        key=repr),
    }


def _ingest(root: Path, db: Path, workers: int, batch_bytes: int) -> tuple[Any, dict[str, list[tuple[Any, ...]]]]:
    with UsageStore(db) as store:
        ingestor = Ingestor(store, workers=workers, batch_bytes=batch_bytes)
        ingestor.min_parallel_bytes = 0  # the pool from the first file on (the default waits for 16 MB)
        stats = ingestor.ingest(local_files(root))
        return stats, _content(store)


@pytest.mark.slow
@pytest.mark.parametrize("batch_bytes", [4096, 64 * 1024 * 1024], ids=["a-batch-per-file", "one-batch"])
def test_parallel_ingest_gives_the_same_store_as_the_serial_one(tmp_path: Path, batch_bytes: int) -> None:
    """Deduplication across files happens in the reader within a batch and against the store across batches."""
    generate(tmp_path / "logs")
    serial_stats, serial = _ingest(tmp_path / "logs", tmp_path / "serial.duckdb", 1, batch_bytes)
    parallel_stats, parallel = _ingest(tmp_path / "logs", tmp_path / "parallel.duckdb", 2, batch_bytes)
    # The set is what it claims to be, so the comparison covers each case.
    assert serial_stats.files_bad == 2 and serial_stats.files_skipped_done == 1
    assert serial_stats.events_duplicate > 0 and dict(serial_stats.bad_records).keys() >= {
        "eventTime is not a UTC timestamp", "no eventTime", "invalid JSON"}
    assert len(serial["usage"]) > 20
    assert parallel_stats == serial_stats
    assert parallel == serial


def test_merging_files_read_alone_equals_reading_them_into_one_reader(tmp_path: Path) -> None:
    """The merge (``CloudTrailReader.merge``) against the serial reader itself, file by file in the same order:
    same groups with the same first/last time and count, same events in each, same duplicates and bad records."""
    generate(tmp_path / "logs")
    paths = [Path(f.path) for f in local_files(tmp_path / "logs")]
    one = CloudTrailReader()
    merged = CloudTrailReader()
    for p in paths:
        with contextlib.suppress(*BAD_FILE_ERRORS):  # a bad file leaves the reader as it was
            one.add_file(p.read_bytes())
        read = read_file(str(p))
        if read.part is not None:
            merged.merge(read.part)

    def view(r: CloudTrailReader) -> Any:
        key_of = {id(g): k for k, g in r.groups.items()}
        return (r.groups, {e: key_of[id(g)] for e, g in r.events.items()}, list(r.events), r._times,
                [(key_of[id(g)], t) for g, t in r._no_id], r.duplicates, r.bad)

    assert one.duplicates > 0 and one._no_id and one.bad
    assert view(merged) == view(one)


@pytest.mark.slow
def test_files_come_back_in_order_from_worker_processes(tmp_path: Path) -> None:
    paths = generate(tmp_path / "logs")
    files = local_files(tmp_path / "logs")
    results = list(read_in_order(files, 2, min_parallel_bytes=0))
    assert [f.path for f, _ in results] == [f.path for f in files]
    assert {r.pid for _, r in results} - {os.getpid()}, "no file was decoded by a worker process"
    for f, r in results:
        direct = read_file(f.path)
        assert (r.sha256, r.error) == (direct.sha256, direct.error)
    assert len(results) == len(paths)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "worker-processes"])
def test_a_copy_of_a_bad_file_under_another_name_is_recorded_bad_again(tmp_path: Path, workers: int) -> None:
    """Only a file that was read counts as done by its content: the same bad bytes under a new name are read
    again and recorded as bad (in one process a file's hash is checked before it is decoded, so the store's
    hashes must be those of good files only), while a copy of a good file is skipped."""
    logs = tmp_path / "logs"
    good = log_path(logs, "2024-03-05", "good")
    good.parent.mkdir(parents=True)
    good.write_bytes(gzip.compress(orjson.dumps({"Records": [_record(random.Random(1), 1)]})))
    bad = log_path(logs, "2024-03-05", "bad")
    bad.write_bytes(b"this is not a log file")
    with UsageStore(tmp_path / "u.duckdb") as store:
        ingestor = Ingestor(store, workers=workers)
        ingestor.min_parallel_bytes = 0
        first = ingestor.ingest(local_files(logs))
        assert (first.files_ingested, first.files_bad) == (1, 1)
        log_path(logs, "2024-03-06", "bad-again").parent.mkdir(parents=True)
        shutil.copyfile(bad, log_path(logs, "2024-03-06", "bad-again"))
        shutil.copyfile(good, log_path(logs, "2024-03-06", "good-again"))
        second = ingestor.ingest(local_files(logs))
        assert [Path(p).name for p, _ in second.bad_files] == [log_path(logs, "2024-03-06", "bad-again").name]
        assert (second.files_ingested, second.files_bad, second.files_skipped_done) == (0, 1, 3)
        statuses = {Path(r[0]).name: r[1] for r in store.con.execute("SELECT path, status FROM ingested_files").fetchall()}
        assert statuses[log_path(logs, "2024-03-06", "bad-again").name] == "bad"
