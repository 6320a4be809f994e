"""CloudTrail ingest speed: events per second of ``iamgraph usage ingest`` (ISA-L gunzip + msgspec reader in Python, the
aggregation SQL on DuckDB over the staged rows) next to merely decompressing the same files (``gzip -dc > /dev/null``) and a plain Python loop
(gzip + json.load over every record, touching the fields the aggregation reads). The ingest runs twice, in one
process (``workers=1``) and with the default pool of worker processes (one per CPU, files decoded in parallel
past the first 16 MB); CPU time includes the workers'.

    .venv/bin/python benchmarks/bench_usage.py            # 1,000,000 events
    .venv/bin/python benchmarks/bench_usage.py --quick    # 100,000 events

Then the default demo organization: ingest of its ~2,800 small files and the unused report over every principal
(``--no-demo`` skips it).

    .venv/bin/python benchmarks/bench_usage.py --keep DIR --breakdown 100

instead times, on the first 100 files in one process, each step of the ingest (ISA-L alone, the reader, each step
of a batch's transaction) and DuckDB's own JSON reader over the same files (the per-event work in C, issue 16),
each beside ``gzip -dc`` of those files; DuckDB's aggregate is checked equal to the reader's.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from iamgraph.usage import ingest as ingest_module
from iamgraph.usage.ingest import CloudTrailReader, Ingestor, default_workers, local_files
from iamgraph.usage.mapping import EventMapper
from iamgraph.usage.sql import Dialect, aggregation_sql
from iamgraph.usage.store import UsageStore

ACCOUNTS = [f"1000000000{i:02d}" for i in range(10)]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
CALLS = [
    ("s3.amazonaws.com", "GetObject"), ("s3.amazonaws.com", "PutObject"), ("s3.amazonaws.com", "ListBuckets"),
    ("iam.amazonaws.com", "ListRoles"), ("iam.amazonaws.com", "GetRole"), ("sts.amazonaws.com", "AssumeRole"),
    ("kms.amazonaws.com", "Decrypt"), ("kms.amazonaws.com", "GenerateDataKey"), ("ec2.amazonaws.com", "DescribeInstances"),
    ("lambda.amazonaws.com", "Invoke"), ("lambda.amazonaws.com", "GetFunction20150331v2"),
    ("dynamodb.amazonaws.com", "GetItem"), ("logs.amazonaws.com", "PutLogEvents"), ("monitoring.amazonaws.com", "PutMetricData"),
    ("secretsmanager.amazonaws.com", "GetSecretValue"), ("ssm.amazonaws.com", "GetParameter"),
]


def _record(rng: random.Random, acct: str, region: str, day: str) -> dict[str, object]:
    role = f"role-{rng.randrange(40)}"
    source, name = CALLS[rng.randrange(len(CALLS))]
    params: dict[str, object] = {"bucketName": f"bucket-{rng.randrange(20)}", "key": f"data/{rng.randrange(50)}.csv"} \
        if source.startswith("s3") and name != "ListBuckets" else {"functionName": f"fn-{rng.randrange(10)}"} \
        if source.startswith("lambda") else {"roleName": role} if source.startswith("iam") else {}
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole", "principalId": f"AROA{rng.randrange(10**9)}:session", "accountId": acct,
            "arn": f"arn:aws:sts::{acct}:assumed-role/{role}/session", "accessKeyId": f"ASIA{rng.randrange(10**9)}",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "accountId": acct,
                                  "arn": f"arn:aws:iam::{acct}:role/{role}", "userName": role},
                "attributes": {"creationDate": f"{day}T00:00:00Z", "mfaAuthenticated": "false"},
            },
        },
        "eventTime": f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
        "eventSource": source, "eventName": name, "awsRegion": region,
        "sourceIPAddress": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
        "userAgent": "aws-sdk-python/1.34 Python/3.11 Linux",
        "requestParameters": params, "responseElements": None,
        "requestID": f"{rng.getrandbits(64):016x}", "eventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True,
        "recipientAccountId": acct, "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": source},
        **({"errorCode": "AccessDenied", "errorMessage": "denied"} if rng.random() < 0.02 else {}),
    }


GENERATED_FORMAT = "2"
"""The generated files' layout: 2 writes eventIDs as CloudTrail does, a GUID in its 8-4-4-4-12 text
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html);
1 wrote 32 hex digits, which the store keeps as text where CloudTrail's are kept as UUIDs."""


def generate(root: Path, events: int, per_file: int = 2000, seed: int = 7) -> int:
    rng = random.Random(seed)
    written = 0
    n = 0
    while written < events:
        acct = ACCOUNTS[n % len(ACCOUNTS)]
        region = REGIONS[(n // len(ACCOUNTS)) % len(REGIONS)]
        day = f"2024-03-{1 + (n // 30) % 28:02d}"
        y, m, d = day.split("-")
        path = root / "AWSLogs" / acct / "CloudTrail" / region / y / m / d / f"{acct}_CloudTrail_{region}_{n:06d}.json.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        count = min(per_file, events - written)
        recs = [_record(rng, acct, region, day) for _ in range(count)]
        path.write_bytes(gzip.compress(json.dumps({"Records": recs}).encode(), compresslevel=6))
        written += count
        n += 1
    return n


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_gzip(files: list[str]) -> tuple[float, float]:
    t, c = time.perf_counter(), _children_cpu()
    # The list goes through xargs so the command line stays short; output is discarded like `> /dev/null`.
    subprocess.run(["xargs", "-0", "gzip", "-dc"], input="\0".join(files).encode(), stdout=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - t, _children_cpu() - c


def bench_python(files: list[str]) -> tuple[float, float, int]:
    t, c = time.perf_counter(), time.process_time()
    n = 0
    seen: dict[tuple[object, ...], int] = {}
    for f in files:
        with gzip.open(f, "rb") as fh:
            for rec in json.load(fh)["Records"]:
                ui = rec.get("userIdentity") or {}
                key = (ui.get("type"), ui.get("arn"), rec.get("eventSource"), rec.get("eventName"), rec.get("errorCode"))
                seen[key] = seen.get(key, 0) + 1
                n += 1
    return time.perf_counter() - t, time.process_time() - c, n


def bench_ingest(root: Path, db: Path, workers: int | None) -> tuple[float, float, int, int]:
    """One ingest into a fresh store; CPU is this process's plus its worker processes' (``workers`` None: the
    default, one per CPU; the pool's processes have ended, and are counted, when ``ingest`` returns)."""
    mapper = EventMapper()
    mapper.actions_with_events("s3")  # load botocore's models before timing (a one-off ~4 s per process)
    with UsageStore(db) as store:
        t, c, cc = time.perf_counter(), time.process_time(), _children_cpu()
        stats = Ingestor(store, mapper=mapper, workers=workers).ingest(local_files(root))
        elapsed, cpu = time.perf_counter() - t, time.process_time() - c + _children_cpu() - cc
        rows = store.con.execute("SELECT count(*) FROM usage").fetchone()
    return elapsed, cpu, stats.events, int(rows[0]) if rows else 0


# DuckDB's own reader, the experiment of issue 16 point 4: each file read and gunzipped by DuckDB
# (read_json_objects), the fields the aggregation reads taken out by one json_transform per file (yyjson, in C),
# shaped like the Athena table for the same aggregation SQL (unweighted: one row per event).
_ISSUER = {"type": "VARCHAR", "principalId": "VARCHAR", "arn": "VARCHAR", "accountId": "VARCHAR", "userName": "VARCHAR"}
_RECORD_SHAPE = json.dumps({"Records": [{
    "eventID": "VARCHAR", "eventTime": "VARCHAR", "eventSource": "VARCHAR", "eventName": "VARCHAR",
    "awsRegion": "VARCHAR", "errorCode": "VARCHAR", "recipientAccountId": "VARCHAR",
    "userIdentity": {**_ISSUER, "invokedBy": "VARCHAR", "sessionContext": {"sessionIssuer": _ISSUER}},
    "requestParameters": "JSON", "resources": [{"ARN": "VARCHAR"}],
}]})
_UI = "r.userIdentity"
_SI = "r.userIdentity.sessionContext.sessionIssuer"
DUCKDB_RELATION = f"""(SELECT r.eventID AS eventid, r.eventTime AS eventtime, r.eventSource AS eventsource,
    r.eventName AS eventname, r.awsRegion AS awsregion, r.errorCode AS errorcode,
    r.recipientAccountId AS recipientaccountid,
    struct_pack(type := {_UI}.type, principalid := {_UI}.principalId, arn := {_UI}.arn, accountid := {_UI}.accountId,
        invokedby := {_UI}.invokedBy, username := {_UI}.userName,
        sessioncontext := struct_pack(sessionissuer := struct_pack(type := {_SI}.type, principalid := {_SI}.principalId,
            arn := {_SI}.arn, accountid := {_SI}.accountId, username := {_SI}.userName))) AS useridentity,
    CAST(r.requestParameters AS VARCHAR) AS requestparameters,
    list_transform(r.resources, lambda x: struct_pack(arn := x.ARN, accountid := NULL::VARCHAR,
                                                      type := NULL::VARCHAR)) AS resources
  FROM (SELECT unnest(json_transform(json, '{_RECORD_SHAPE}').Records) AS r
        FROM read_json_objects($files, format = 'auto', compression = 'gzip', maximum_object_size = 268435456)))"""


def bench_breakdown(files: list[str], tmp: Path) -> None:
    """CPU seconds of each step of a one-process ingest of ``files`` (one batch), and of DuckDB's own reader."""
    g, g_cpu = bench_gzip(files)
    mapper = EventMapper()
    mapper.actions_with_events("s3")
    mapper.map("s3.amazonaws.com", "GetObject")
    datas = [Path(f).read_bytes() for f in files]
    steps: list[tuple[str, float]] = []

    c = time.process_time()
    for d in datas:
        ingest_module._gunzip(d)
    steps.append(("ISA-L gunzip alone (inside the reader)", time.process_time() - c))

    # As Ingestor.ingest runs them: without the cyclic garbage collector (getattr: a tree from before it).
    no_gc = getattr(ingest_module, "without_cyclic_gc", None) or getattr(ingest_module, "_without_cyclic_gc",
                                                                          contextlib.nullcontext)
    with UsageStore(tmp / "breakdown.duckdb") as store, no_gc(), (
            # DuckDB on one thread, as Ingestor.ingest runs it (a tree from before it: as it comes).
            store.one_thread() if hasattr(store, "one_thread") else contextlib.nullcontext()):
        ingestor = Ingestor(store, mapper=mapper, workers=1)
        reader = CloudTrailReader()
        c = time.process_time()
        for d in datas:
            reader.add_file(d)
        read_cpu = time.process_time() - c
        steps.append(("reader: gunzip, msgspec, per-event loop", read_cpu))
        # event_ids: the IDs without moving the C path's events into Python (``events`` would; a tree before it: events)
        n_events = len(reader.event_ids() if hasattr(reader, "event_ids") else reader.events)
        flush: dict[str, float] = {}
        labels: list[str] = []
        """The steps in the order they are printed (those that ran)."""

        def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            labels.append(name)

            def wrapper(*a: Any, **k: Any) -> Any:
                c = time.process_time()
                try:
                    return fn(*a, **k)
                finally:
                    flush[name] = flush.get(name, 0.0) + time.process_time() - c
            return wrapper

        # Instance attributes shadow the methods for this one batch; the module's are put back after it. A tree from
        # before the aggregate stayed in DuckDB (no ``_store_aggregate``) is timed by the steps it has.
        store.claim_event_ids = timed("  event IDs (claim_event_ids)", store.claim_event_ids)  # type: ignore[method-assign]
        originals = {name: getattr(ingest_module, name) for name in ("rows_from_aggregate", "_Derivations")
                     if hasattr(ingest_module, name)}
        if hasattr(ingestor, "_store_aggregate"):
            ingestor._store_aggregate = timed(  # type: ignore[method-assign]
                "  the rest (_store_aggregate), of which:", ingestor._store_aggregate)
            reader.write_staging = timed("    staging CSV (write_staging)", reader.write_staging)  # type: ignore[method-assign]
            derive = originals["_Derivations"].of
            originals["_Derivations.of"] = derive
            ingest_module._Derivations.of = timed("    IAM actions per set of facts", derive)
            store.merge_usage_query = timed("    upsert (merge_usage_query)", store.merge_usage_query)  # type: ignore[method-assign]
        else:
            reader.write_staging = timed("  staging CSV (write_staging)", reader.write_staging)  # type: ignore[method-assign]
            ingestor.aggregate_reader = timed("  aggregation SQL, staging included", ingestor.aggregate_reader)  # type: ignore[method-assign]
            store.merge_usage = timed("  upsert (merge_usage)", store.merge_usage)  # type: ignore[method-assign]
        store.commit = timed("  commit", store.commit)  # type: ignore[method-assign]
        ingest_module.rows_from_aggregate = timed("  IAM actions (rows_from_aggregate)", originals["rows_from_aggregate"])
        try:
            reader_aggregate = sorted(map(repr, ingestor.aggregate_reader(reader)))
            flush.clear()
            c = time.process_time()
            ingestor._flush(reader, [], ingest_module._Tally(), {"written": 0, "duplicate": 0}, {})
            flush_cpu = time.process_time() - c
        finally:
            ingest_module.rows_from_aggregate = originals["rows_from_aggregate"]
            if "_Derivations.of" in originals:
                ingest_module._Derivations.of = originals["_Derivations.of"]
        steps.append(("a batch's transaction (_flush)", flush_cpu))
        steps.extend((name, flush[name]) for name in labels if name in flush)
        steps.append(("reader + transaction", read_cpu + flush_cpu))

    con = duckdb.connect()
    con.execute("SET threads = 1")  # fewer CPU seconds than two threads here
    c = time.process_time()
    con.execute("SELECT count(*) FROM read_json_objects($files, format = 'auto', compression = 'gzip', "
                "maximum_object_size = 268435456)", {"files": files}).fetchall()
    steps.append(("DuckDB: read and gunzip the files alone", time.process_time() - c))
    c = time.process_time()
    con.execute(f"CREATE TEMP TABLE ev AS SELECT * FROM {DUCKDB_RELATION}", {"files": files})
    stage = time.process_time() - c
    c = time.process_time()
    con.execute("CREATE TEMP TABLE ids AS SELECT DISTINCT eventid FROM ev WHERE eventid IS NOT NULL")
    ids = time.process_time() - c
    c = time.process_time()
    duck_aggregate = sorted(map(repr, con.execute(aggregation_sql("ev", dialect=Dialect.DUCKDB)).fetchall()))
    agg = time.process_time() - c
    steps += [("DuckDB: records to rows (json_transform)", stage), ("DuckDB: distinct event IDs", ids),
              ("DuckDB: aggregation SQL", agg), ("DuckDB: all three", stage + ids + agg)]
    same = "the same aggregate as the reader's" if duck_aggregate == reader_aggregate else "A DIFFERENT AGGREGATE"
    print(f"{len(files)} files, {n_events:,} events; load average {os.getloadavg()[0]:.1f}; DuckDB: {same}")
    # getattr: the same script times a tree from before the C path (PYTHONPATH set to it).
    print(f"reader: {getattr(ingest_module, 'FAST_PATH', 'Python (msgspec)')}; files read by the C path "
          f"{getattr(reader, 'fast_files', 0)}, refused by it {getattr(reader, 'fast_refused', 0)} "
          "(IAMGRAPH_PURE_INGEST=1: the Python path alone)")
    print(f"{'step (one process)':<45}{'cpu s':>8}{'x gzip cpu':>11}")
    print(f"{'gzip -dc > /dev/null (' + format(g, '.2f') + ' s wall)':<45}{g_cpu:>8.2f}{1:>11.2f}")
    for name, cpu in steps:
        print(f"{name:<45}{cpu:>8.2f}{cpu / g_cpu:>11.2f}")


def bench_demo(tmp: Path) -> None:
    """The default demo organization: ingest of its many small files, then the unused report over everyone."""
    from datetime import datetime

    from iamgraph.demo import generate_demo
    from iamgraph.demo.config import DemoConfig
    from iamgraph.snapshot.io import read_snapshot
    from iamgraph.usage.access_advisor import ingest_access_advisor
    from iamgraph.usage.unused import unused_report

    result = generate_demo(tmp / "demo", DemoConfig())
    assert result.cloudtrail_root is not None
    snap = read_snapshot(result.snapshot)
    planted = json.loads(result.planted.read_text())
    end = datetime.fromisoformat(planted["window"]["end"].replace("Z", "+00:00"))
    mapper = EventMapper()
    mapper.actions_with_events("s3")
    with UsageStore(tmp / "demo.duckdb") as store:
        t, c = time.perf_counter(), time.process_time()
        stats = Ingestor(store, mapper=mapper).ingest(local_files(result.cloudtrail_root))
        ing, ing_cpu = time.perf_counter() - t, time.process_time() - c
        ingest_access_advisor(store, snap)
        t, c = time.perf_counter(), time.process_time()
        report = unused_report(snap, store, days=int(planted["window"]["days"]), now=end)
        rep, rep_cpu = time.perf_counter() - t, time.process_time() - c
    print(f"\ndemo organization: {stats.files_ingested:,} files, {stats.events:,} events; "
          f"{report.principals_checked} principals, {len(report.findings):,} findings; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':<37}{'wall s':>8}{'cpu s':>8}")
    print(f"{'ingest (many small files)':<37}{ing:>8.2f}{ing_cpu:>8.2f}")
    print(f"{'unused report (every principal)':<37}{rep:>8.2f}{rep_cpu:>8.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100,000 events instead of 1,000,000")
    ap.add_argument("--events", type=int, default=None, help="number of events to generate")
    ap.add_argument("--keep", default=None, help="generate into (or reuse) this directory")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo organization (small files, unused report)")
    ap.add_argument("--breakdown", type=int, default=None, metavar="N",
                    help="instead: CPU of each ingest step, and of DuckDB's own JSON reader, on the first N files")
    args = ap.parse_args()
    events = args.events or (100_000 if args.quick else 1_000_000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-usage-"))
    root = Path(args.keep) if args.keep else tmp / "logs"
    try:
        t = time.perf_counter()
        stamp = root / ".bench-usage-format"
        if not (root.exists() and any(root.rglob("*.json.gz"))):
            generate(root, events)
            stamp.write_text(GENERATED_FORMAT)
        elif not (stamp.exists() and stamp.read_text() == GENERATED_FORMAT):
            # Never delete a directory the caller named: it may hold files this benchmark did not write.
            print(f"{root}: holds .json.gz files not generated by this version of the benchmark (format "
                  f"{GENERATED_FORMAT}); remove it or name another --keep directory", file=sys.stderr)
            return 2
        gen = time.perf_counter() - t
        files = sorted(str(p) for p in root.rglob("*.json.gz"))
        if args.breakdown is not None:
            bench_breakdown(files[: args.breakdown], tmp)
            return 0
        size = sum(Path(f).stat().st_size for f in files)
        raw_size = 0
        for f in files[:20]:
            raw_size += len(gzip.decompress(Path(f).read_bytes()))
        raw_est = raw_size / max(1, min(20, len(files))) * len(files)
        g, g_cpu = bench_gzip(files)
        py, py_cpu, n_py = bench_python(files)
        one, one_cpu, n_one, rows_one = bench_ingest(root, tmp / "usage-serial.duckdb", 1)
        ing, ing_cpu, n_ing, rows = bench_ingest(root, tmp / "usage.duckdb", None)
        assert (n_one, rows_one) == (n_ing, rows), "serial and parallel ingest disagree"
        print(f"{len(files)} files, {n_ing:,} events, {size / 1e6:.1f} MB gzip, ~{raw_est / 1e6:.0f} MB JSON "
              f"(generated in {gen:.1f} s); {rows:,} usage rows; load average {os.getloadavg()[0]:.1f}")
        print(f"{'method':<37}{'wall s':>8}{'events/s':>11}{'x gzip':>8}{'cpu s':>8}{'x gzip cpu':>11}")
        for name, secs, cpu, n in (
            ("gzip -dc > /dev/null", g, g_cpu, n_ing),
            ("python gzip+json loop", py, py_cpu, n_py),
            ("iamgraph ingest, 1 process", one, one_cpu, n_one),
            (f"iamgraph ingest, {default_workers()} workers", ing, ing_cpu, n_ing),
        ):
            print(f"{name:<37}{secs:>8.2f}{n / secs:>11,.0f}{secs / g:>8.2f}{cpu:>8.2f}{cpu / g_cpu:>11.2f}")
        if not args.no_demo:
            bench_demo(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
