"""Evaluations per second of the policy engine, one process, through the batch interface.

Cases (issue 3):
- simple: one identity statement plus a bucket policy;
- complex: six conditional identity statements, two SCP levels, a permissions boundary and a
  resource policy, with a context that satisfies them;
each with policies unique to every case and with policies repeated across cases (the cache's job).

Each line goes through what ``iamgraph simulate --batch`` does per line: JSON decode, evaluate,
JSON encode. Run: ``.venv/bin/python benchmarks/bench_eval.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iamgraph.eval import Mode
from iamgraph.eval.batch import evaluate_line

ACCOUNT = "111122223333"


def simple_line(i: int, unique: bool) -> dict[str, Any]:
    tag = f"-{i}" if unique else ""
    bucket = f"bucket{tag}"
    return {
        "id": i,
        "request": {
            "principal": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "action": "s3:GetObject",
            "resource": f"arn:aws:s3:::{bucket}/reports/{i}.csv",
            "resourceAccount": ACCOUNT,
        },
        "policies": {
            "identity": [
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}],
                }
            ],
            "resource": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": ["s3:GetObject", "s3:ListBucket"],
                        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    }
                ],
            },
        },
    }


def complex_line(i: int, unique: bool) -> dict[str, Any]:
    tag = f"-{i}" if unique else ""
    bucket = f"data{tag}"
    statements = [
        {"Sid": "Ip", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}},
        {"Sid": "Tls", "Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Sid": "Team", "Effect": "Allow", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/${{aws:PrincipalTag/team}}/*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}}},
        {"Sid": "Tags", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "*",
         "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": ["env", "cost-*"]}}},
        {"Sid": "Time", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
         "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}},
        {"Sid": "NoDelete", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*",
         "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
    ]
    return {
        "id": i,
        "request": {
            "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/analyst/s{i}",
            "action": "s3:GetObject",
            "resource": f"arn:aws:s3:::{bucket}/blue/{i}.parquet",
            "resourceAccount": ACCOUNT,
            "context": {
                "aws:SourceIp": "10.1.2.3",
                "aws:SecureTransport": True,
                "aws:PrincipalTag/team": "blue",
                "aws:CurrentTime": "2026-11-30T12:00:00Z",
                "aws:PrincipalOrgID": "o-abc123",
                "aws:RequestedRegion": "us-east-1",
                "aws:MultiFactorAuthPresent": True,
                "aws:TagKeys": ["env"],
            },
        },
        "policies": {
            "identity": [{"Version": "2012-10-17", "Statement": statements}],
            "permissionBoundary": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:*", "kms:Decrypt"], "Resource": "*"}],
            },
            "resource": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/*",
                     "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"}}},
                    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/analyst"},
                     "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
                ],
            },
            "scps": [
                [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}],
                [{"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "*", "Resource": "*",
                     "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}},
                ]}],
            ],
        },
    }


def run(kind: str, make: Callable[[int, bool], dict[str, Any]], unique: bool, n: int, mode: Mode) -> dict[str, Any]:
    raw = [orjson.dumps(make(i, unique)) for i in range(n)]
    # Warm the catalog and code paths once (not the policy cache: unique cases stay unique).
    evaluate_line(orjson.loads(orjson.dumps(make(-1, False))), mode)
    gc.collect()
    decisions: dict[str, int] = {}
    start = time.perf_counter()
    cpu_start = time.process_time()
    for line in raw:
        out = orjson.dumps(evaluate_line(orjson.loads(line), mode))
        key = out[out.index(b'"decision":"') + 12 : out.index(b'"', out.index(b'"decision":"') + 12)].decode()
        decisions[key] = decisions.get(key, 0) + 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return {
        "case": kind,
        "policies": "unique" if unique else "repeated",
        "mode": mode.value,
        "n": n,
        "seconds": elapsed,
        "per_second": n / elapsed,
        "cpu_seconds": cpu,
        "per_cpu_second": n / cpu if cpu else float("inf"),
        "decisions": decisions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer evaluations (a smoke run)")
    args = parser.parse_args()
    n = 3_000 if args.quick else 40_000
    rows = []
    for kind, make in (("simple", simple_line), ("complex", complex_line)):
        for unique in (False, True):
            # Unique policies are compiled once per case, which is slow: a quarter as many cases.
            rows.append(run(kind, make, unique, n // 4 if unique else n, Mode.STRICT))
    rows.append(run("complex", complex_line, False, n, Mode.DISCOVERY))
    print(f"python {platform.python_version()} on {platform.machine()}, one process, batch interface")
    # evals/s is wall clock; evals/cpu-s divides by this process's CPU time, which is the fairer
    # "one core" figure when other processes share the machine.
    print(f"{'case':<8} {'policies':<9} {'mode':<9} {'n':>7} {'wall s':>7} {'evals/s':>9} {'evals/cpu-s':>11}  decisions")
    for r in rows:
        print(
            f"{r['case']:<8} {r['policies']:<9} {r['mode']:<9} {r['n']:>7} {r['seconds']:>7.2f} "
            f"{r['per_second']:>9,.0f} {r['per_cpu_second']:>11,.0f}  {r['decisions']}"
        )
    bad = [r for r in rows if set(r["decisions"]) != {"Allowed"}]
    if bad:
        # Every case is built to be allowed; anything else means the benchmark measures the wrong path.
        print("unexpected decisions in:", [(r["case"], r["policies"], r["mode"]) for r in bad])
        sys.exit(1)


if __name__ == "__main__":
    main()
