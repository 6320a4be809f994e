"""Recommendation speed, with verification.

    .venv/bin/python benchmarks/bench_recommend.py --demo [--quick] [--accounts N]
    .venv/bin/python benchmarks/bench_recommend.py [--accounts 12] [--roles 1000] [--shared 34] [--no-trailscraper]

``--demo``: every principal of a generated demo organization (``--quick``: the default 6 accounts; otherwise
``--accounts`` × 15 roles).

Default: a generated organization of ``--accounts`` accounts of ``--roles`` roles each, written as
``aws iam get-account-authorization-details`` exports and CloudTrail log files in the S3 layout. In the first account
one customer managed policy is attached to ``--shared`` roles (a shared policy is trimmed against all of them and
proven once). Each role also has an inline policy from a handful of workload templates, and made a few calls over
the 90-day window. Timed, each as a separate process (wall clock, this machine, whatever its load):

- ``iamgraph recommend`` for one principal of the shared policy, on the first account (snapshot + store already
  built: the ingest is timed on its own), beside **trailscraper** (``select --filter-assumed-role-arn`` piped into
  ``generate``) for the same role on the same account's log files. trailscraper is installed from PyPI into its own
  virtualenv under ``~/.cache/iamgraph-bench/`` on first use and run as a separate process; it reads local files only.
- ``iamgraph recommend --all`` over every principal of the organization.

Nothing here contacts any address: both tools read local files.
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
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iamgraph-bench"
TRAILSCRAPER = "trailscraper==0.10.0"
END = datetime(2024, 3, 31)
DAYS = 90
REGION = "us-east-1"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}

# (eventSource, eventName, IAM action, request parameters) per call a workload makes.
Call = tuple[str, str, str, dict[str, Any]]


def _calls(acct: str, n: int) -> dict[str, list[Call]]:
    """Per workload template: the calls its roles make (a few of them each)."""
    b = f"data-{acct}-{n % 7}"
    return {
        "etl": [("s3.amazonaws.com", "GetObject", "s3:GetObject", {"bucketName": b, "key": f"in/{n}.csv"}),
                ("s3.amazonaws.com", "PutObject", "s3:PutObject", {"bucketName": b, "key": f"out/{n}.parquet"}),
                ("glue.amazonaws.com", "GetTable", "glue:GetTable", {"databaseName": "lake", "name": f"t{n % 9}"}),
                ("athena.amazonaws.com", "StartQueryExecution", "athena:StartQueryExecution", {})],
        "web": [("dynamodb.amazonaws.com", "DescribeTable", "dynamodb:DescribeTable", {"tableName": f"orders{n % 5}"}),
                ("sqs.amazonaws.com", "ListQueues", "sqs:ListQueues", {}),
                ("ssm.amazonaws.com", "GetParameter", "ssm:GetParameter", {"name": f"/app/{n % 4}/db"})],
        "ops": [("ec2.amazonaws.com", "DescribeInstances", "ec2:DescribeInstances", {}),
                ("monitoring.amazonaws.com", "PutMetricData", "cloudwatch:PutMetricData", {"namespace": "App"}),
                ("logs.amazonaws.com", "DescribeLogGroups", "logs:DescribeLogGroups", {})],
        "read": [("iam.amazonaws.com", "ListRoles", "iam:ListRoles", {}),
                 ("sts.amazonaws.com", "GetCallerIdentity", "sts:GetCallerIdentity", {}),
                 ("ec2.amazonaws.com", "DescribeVpcs", "ec2:DescribeVpcs", {})],
    }


TEMPLATES: dict[str, list[dict[str, Any]]] = {
    "etl": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
             "Resource": ["arn:aws:s3:::data-*", "arn:aws:s3:::data-*/*"]},
            {"Effect": "Allow", "Action": ["glue:GetTable", "glue:GetTables", "glue:GetDatabase", "glue:UpdateTable",
                                           "athena:StartQueryExecution", "athena:GetQueryResults"], "Resource": "*"}],
    "web": [{"Effect": "Allow", "Action": ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem",
                                           "dynamodb:Query", "dynamodb:DeleteTable"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["sqs:ListQueues", "sqs:SendMessage", "sqs:DeleteQueue",
                                           "ssm:GetParameter", "ssm:PutParameter"], "Resource": "*"}],
    "ops": [{"Effect": "Allow", "Action": ["ec2:DescribeInstances", "ec2:StopInstances", "ec2:TerminateInstances",
                                           "cloudwatch:PutMetricData", "logs:DescribeLogGroups",
                                           "logs:DeleteLogGroup"], "Resource": "*"}],
    "read": [{"Effect": "Allow", "Action": ["iam:ListRoles", "iam:GetRole", "iam:ListPolicies", "ec2:DescribeVpcs",
                                            "ec2:DescribeSubnets", "sts:GetCallerIdentity"], "Resource": "*"}],
}
SHARED = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Lake", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject",
                                                 "s3:GetBucketLocation"],
     "Resource": ["arn:aws:s3:::data-*", "arn:aws:s3:::data-*/*"]},
    {"Sid": "Catalog", "Effect": "Allow", "Action": ["glue:Get*", "glue:CreateTable", "glue:DeleteTable",
                                                    "athena:StartQueryExecution", "athena:GetQueryExecution",
                                                    "athena:GetQueryResults", "athena:StopQueryExecution"],
     "Resource": "*"},
    {"Sid": "Keys", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:ScheduleKeyDeletion"],
     "Resource": "*"},
    {"Sid": "Queues", "Effect": "Allow", "Action": ["sqs:ListQueues", "sqs:SendMessage", "sqs:PurgeQueue"],
     "Resource": "*"},
]}


def account_id(i: int) -> str:
    return f"{210000000000 + i:012d}"


def role_name(i: int) -> str:
    return f"app-{i:04d}"


def _identity(acct: str, role: str) -> dict[str, Any]:
    return {"type": "AssumedRole", "principalId": f"AROA{abs(hash(role)) % 10**12:012d}:s", "accountId": acct,
            "arn": f"arn:aws:sts::{acct}:assumed-role/{role}/s",
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "accountId": acct,
                                                 "arn": f"arn:aws:iam::{acct}:role/{role}", "userName": role},
                               "attributes": {"creationDate": "2024-01-01T00:00:00Z", "mfaAuthenticated": "false"}}}


def write_account(root: Path, a: int, roles: int, shared: int, rng: random.Random) -> int:
    """One account's export under ``root/iam`` and its CloudTrail files under ``root/trail``; returns events."""
    acct = account_id(a)
    names = sorted(TEMPLATES)
    details = []
    by_day: dict[str, list[dict[str, Any]]] = {}
    shared_arn = f"arn:aws:iam::{acct}:policy/shared-lake"
    events = 0
    for i in range(roles):
        role = role_name(i)
        kind = names[i % len(names)]
        attached = [{"PolicyName": "shared-lake", "PolicyArn": shared_arn}] if a == 0 and i < shared else []
        details.append({
            "Path": "/", "RoleName": role, "RoleId": f"AROA{a:02d}{i:015d}", "Arn": f"arn:aws:iam::{acct}:role/{role}",
            "CreateDate": "2023-01-01T00:00:00Z", "AssumeRolePolicyDocument": TRUST, "InstanceProfileList": [],
            "RolePolicyList": [{"PolicyName": kind, "PolicyDocument": {"Version": "2012-10-17",
                                                                      "Statement": TEMPLATES[kind]}}],
            "AttachedManagedPolicies": attached, "Tags": [],
        })
        calls = _calls(acct, i)
        mine = rng.sample(calls[kind], k=min(len(calls[kind]), 2 + i % 2))
        if attached:
            mine += rng.sample(calls["etl"], k=2)
        for n, (source, name, _action, params) in enumerate(mine):
            day = END - timedelta(days=rng.randrange(1, DAYS - 1))
            key = day.strftime("%Y-%m-%d")
            by_day.setdefault(key, []).append({
                "eventVersion": "1.09", "userIdentity": _identity(acct, role),
                "eventTime": f"{key}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z", "eventSource": source,
                "eventName": name, "awsRegion": REGION, "sourceIPAddress": "192.0.2.1", "userAgent": "aws-sdk",
                "requestParameters": params or None, "responseElements": None,
                "eventID": f"{acct}-{i}-{n}-{key}", "eventType": "AwsApiCall", "recipientAccountId": acct})
            events += 1
    policies = [{"PolicyName": "shared-lake", "PolicyId": "ANPASHAREDLAKE", "Arn": shared_arn, "Path": "/",
                 "DefaultVersionId": "v1", "AttachmentCount": shared, "IsAttachable": True,
                 "CreateDate": "2023-01-01T00:00:00Z", "UpdateDate": "2023-01-01T00:00:00Z",
                 "PolicyVersionList": [{"Document": SHARED, "VersionId": "v1", "IsDefaultVersion": True,
                                        "CreateDate": "2023-01-01T00:00:00Z"}]}] if a == 0 and shared else []
    iam = root / "iam"
    iam.mkdir(parents=True, exist_ok=True)
    (iam / f"{acct}.json").write_text(json.dumps({"UserDetailList": [], "GroupDetailList": [],
                                                  "RoleDetailList": details, "Policies": policies}))
    # The window's first and last days are delivered too (the trail was on throughout).
    for key in ((END - timedelta(days=DAYS)).strftime("%Y-%m-%d"), END.strftime("%Y-%m-%d")):
        by_day.setdefault(key, [])
    for key, records in by_day.items():
        y, m, d = key.split("-")
        path = (root / "trail" / acct / "AWSLogs" / acct / "CloudTrail" / REGION / y / m / d /
                f"{acct}_CloudTrail_{REGION}_{y}{m}{d}T0000Z_bench.json.gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(json.dumps({"Records": records, "_": key + acct}).encode()))
    return events


def trailscraper() -> Path:
    """trailscraper in its own virtualenv under the cache directory (installed on first use, from PyPI)."""
    venv = CACHE / "trailscraper-venv"
    exe = venv / "bin" / "trailscraper"
    if not exe.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", TRAILSCRAPER], check=True)
    return exe


def timed(cmd: list[str] | str, *, shell: bool = False, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child processes, stdout). On a shared machine the wall clock depends on
    the load; the CPU time (user + system, every process of the pipeline) much less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, shell=shell, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"failed ({res.returncode}): {cmd}\n{res.stderr[-2000:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, res.stdout


def scale(args: argparse.Namespace) -> None:
    iamgraph = str(Path(sys.executable).with_name("iamgraph"))
    with tempfile.TemporaryDirectory(prefix="bench-rec-") as tmp:
        root = Path(tmp)
        rng = random.Random(7)
        t0 = time.perf_counter()
        events = sum(write_account(root, a, args.roles, args.shared, rng) for a in range(args.accounts))
        print(f"generated {args.accounts} account(s) × {args.roles} roles, {events} events "
              f"in {time.perf_counter() - t0:.1f} s")
        first = account_id(0)
        target = f"arn:aws:iam::{first}:role/{role_name(0)}"
        end = END.strftime("%Y-%m-%d")
        # The first account alone: snapshot and store, for the one-principal comparison.
        one_snap, one_db = root / "one.json", root / "one.duckdb"
        timed([iamgraph, "snapshot", "import", str(root / "iam" / f"{first}.json"), "-o", str(one_snap)])
        wall_ingest1, cpu_ingest1, _ = timed([iamgraph, "usage", "ingest", "--db", str(one_db), "--cloudtrail",
                                              str(root / "trail" / first)])
        rec_cmd = [iamgraph, "recommend", "-s", str(one_snap), "--db", str(one_db), "--as-of", end, "--days",
                   str(DAYS), "--json"]
        wall_one, cpu_one, out = timed([*rec_cmd, "-p", target])
        proposals = [p for r in json.loads(out) for p in r["proposals"]]
        shared_p = [p for p in proposals if p["name"] == "shared-lake"]
        print(f"one principal ({target}, its shared policy on {len(shared_p[0]['principals'])} roles): "
              f"iamgraph recommend {wall_one:.1f} s wall, {cpu_one:.1f} s CPU (one process; the ingest of the "
              f"account, {wall_ingest1:.1f} s wall / {cpu_ingest1:.1f} s CPU, apart); "
              f"statuses {dict(Counter(p['status'] for p in proposals))}")
        if not args.no_trailscraper:
            ts = trailscraper()
            ts_cmd = (f"'{ts}' select --log-dir '{root / 'trail' / first}' --filter-assumed-role-arn '{target}' "
                      f"--from 2024-01-01 --to 2024-04-01 | '{ts}' generate")
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env["AWS_DEFAULT_REGION"] = REGION
            wall_ts, cpu_ts, ts_out = timed(ts_cmd, shell=True, env=env)
            ts_actions = sorted({a for st in json.loads(ts_out)["Statement"] for a in st["Action"]})
            print(f"trailscraper (select | generate) for the same role on the same files: {wall_ts:.1f} s wall, "
                  f"{cpu_ts:.1f} s CPU, {len(ts_actions)} actions; iamgraph/trailscraper: wall "
                  f"{wall_one / wall_ts:.2f}, CPU {cpu_one / max(cpu_ts, 1e-9):.2f}")
        if args.no_all:
            return
        # The whole organization, every principal.
        snap, db = root / "org.json", root / "org.duckdb"
        timed([iamgraph, "snapshot", "import", *sorted(str(p) for p in (root / "iam").iterdir()), "-o", str(snap)])
        wall_ingest, cpu_ingest, _ = timed([iamgraph, "usage", "ingest", "--db", str(db), "--cloudtrail",
                                            str(root / "trail")])
        wall_all, cpu_all, out = timed([iamgraph, "recommend", "-s", str(snap), "--db", str(db), "--as-of", end,
                                        "--days", str(DAYS), "--json", "--all"])
        recs = json.loads(out)
        statuses = Counter(p["status"] for r in recs for p in r["proposals"])
        print(f"--all: {len(recs)} principals in {wall_all:.1f} s wall, {cpu_all:.1f} s CPU "
              f"({cpu_all / max(len(recs), 1) * 1000:.0f} ms CPU/principal; ingest {wall_ingest:.1f} s wall / "
              f"{cpu_ingest:.1f} s CPU apart); statuses {dict(sorted(statuses.items()))}")
        shutil.rmtree(root, ignore_errors=True)


def demo(args: argparse.Namespace) -> None:
    from iamgraph.demo import generate_demo
    from iamgraph.demo.config import DemoConfig
    from iamgraph.recommend import recommend_all
    from iamgraph.snapshot.index import SnapshotIndex
    from iamgraph.snapshot.io import read_snapshot
    from iamgraph.usage.ingest import ingest_location
    from iamgraph.usage.store import UsageStore

    cfg = DemoConfig() if args.quick else DemoConfig(accounts=args.accounts)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        result = generate_demo(out, cfg)
        snap = read_snapshot(result.snapshot)
        index = SnapshotIndex(snap)
        with UsageStore(out / "usage.duckdb") as store:
            assert result.cloudtrail_root is not None
            stats = ingest_location(store, str(result.cloudtrail_root))
            t0 = time.perf_counter()
            c0 = time.process_time()
            recs = recommend_all(index, store, days=cfg.days, now=cfg.end_date)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - c0
    statuses = Counter(p.status.value for r in recs for p in r.proposals)
    policies = len({p.policy_id for r in recs for p in r.proposals})
    print(f"{'accounts':>10} {'principals':>10} {'policies':>9} {'events':>8} {'wall s':>8} {'cpu s':>8} "
          f"{'s/principal':>12}  statuses")
    print(f"{cfg.accounts:>10} {len(recs):>10} {policies:>9} {stats.events:>8} {wall:>8.1f} {cpu:>8.1f} "
          f"{wall / max(len(recs), 1):>12.2f}  {dict(sorted(statuses.items()))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", action="store_true", help="every principal of a generated demo organization")
    ap.add_argument("--quick", action="store_true", help="with --demo: the default 6-account demo organization")
    ap.add_argument("--accounts", type=int, default=12, help="accounts of the generated organization")
    ap.add_argument("--roles", type=int, default=1000, help="roles per account")
    ap.add_argument("--shared", type=int, default=34, help="roles of the first account sharing one managed policy")
    ap.add_argument("--no-trailscraper", action="store_true", help="skip trailscraper")
    ap.add_argument("--no-all", action="store_true", help="only the one-principal comparison")
    args = ap.parse_args()
    if args.demo:
        demo(args)
    else:
        scale(args)


if __name__ == "__main__":
    main()
