"""CloudTrail ingest speed: events per second of ``iamgraph usage ingest`` (ISA-L gunzip + msgspec reader in Python, the
aggregation SQL on DuckDB over the staged rows) next to merely decompressing the same files (``gzip -dc > /dev/null``) and a plain Python loop
(gzip + json.load over every record, touching the fields the aggregation reads). The ingest runs twice, in one
process (``workers=1``) and with the default pool of worker processes (one per CPU, files decoded in parallel
past the first 16 MB); CPU time includes the workers'.

    .venv/bin/python benchmarks/bench_usage.py            # 1,000,000 events
    .venv/bin/python benchmarks/bench_usage.py --quick    # 100,000 events

Then the default demo organization: ingest of its ~2,800 small files and the unused report over every principal
(``--no-demo`` skips it).
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

from iamgraph.usage.ingest import Ingestor, default_workers, local_files
from iamgraph.usage.mapping import EventMapper
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
        "requestID": f"{rng.getrandbits(64):016x}", "eventID": f"{rng.getrandbits(128):032x}",
        "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True,
        "recipientAccountId": acct, "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": source},
        **({"errorCode": "AccessDenied", "errorMessage": "denied"} if rng.random() < 0.02 else {}),
    }


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
    args = ap.parse_args()
    events = args.events or (100_000 if args.quick else 1_000_000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-usage-"))
    root = Path(args.keep) if args.keep else tmp / "logs"
    try:
        t = time.perf_counter()
        if not (root.exists() and any(root.rglob("*.json.gz"))):
            generate(root, events)
        gen = time.perf_counter() - t
        files = sorted(str(p) for p in root.rglob("*.json.gz"))
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
