"""Evaluations per second of the policy engine, one process, through the batch interface.

Cases (issue 3):
- simple: one identity statement plus a bucket policy;
- complex: six conditional identity statements, two SCP levels, a permissions boundary and a
  resource policy, with a context that satisfies them;
each with policies repeated across cases (the cache's job), with policies unique to every case that differ only
in the bucket's name ("unique": what a template such as one bucket policy per bucket gives, which the engine
reads from the template's parse), and with policies unique to every case that also differ in their Sids, the
order of their statements, an action pattern and condition values ("varied": no template applies).
Values inside the cases (object keys, source addresses, session names) are drawn from a seeded random
generator, within what keeps every case allowed.

Each line goes through what ``iamgraph simulate --batch`` does per line: the batch reader
(``evaluate_lines``: JSON decode of the line's bytes, evaluate), JSON encode. Run: ``.venv/bin/python benchmarks/bench_eval.py [--quick] [--no-peer]``.

The peer: iam-simulate (npm ``@cloud-copilot/iam-simulate``, pinned below), installed with npm into a
cache directory (``$XDG_CACHE_HOME/iamgraph-bench``, default ``~/.cache/iamgraph-bench``; never vendored)
and run as a separate node process (``iam_simulate_runner.cjs``) on the same lines, converted to its
Simulation shape before its clock starts. Each strict row prints both rates and the ratio (wall and CPU).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iamgraph.eval import Mode
from iamgraph.eval.batch import evaluate_line, evaluate_lines

ACCOUNT = "111122223333"
PEER = "@cloud-copilot/iam-simulate"
PEER_VERSION = "0.1.173"
RUNNER = Path(__file__).resolve().parent / "iam_simulate_runner.cjs"


def simple_line(i: int, unique: bool) -> dict[str, Any]:
    rng = random.Random(i)
    tag = f"-{i}" if unique else ""
    bucket = f"bucket{tag}"
    return {
        "id": i,
        "request": {
            "principal": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "action": "s3:GetObject",
            "resource": f"arn:aws:s3:::{bucket}/{rng.choice(['reports', 'raw', 'tmp'])}/{rng.randrange(10**6)}.csv",
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
    rng = random.Random(i)
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
            "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/analyst/s{rng.randrange(10**6)}",
            "action": "s3:GetObject",
            "resource": f"arn:aws:s3:::{bucket}/blue/{rng.randrange(10**6)}.parquet",
            "resourceAccount": ACCOUNT,
            "context": {
                "aws:SourceIp": rng.choice([f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                                            f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}"]),
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


_EXTRA_ACTIONS = ("ec2:Describe*", "kms:GetKeyPolicy", "sqs:List*", "dynamodb:GetItem", "s3:GetBucketTagging",
                  "logs:Describe*", "sns:ListTopics", "iam:GetRole")


def simple_varied(i: int, unique: bool) -> dict[str, Any]:
    """A simple case whose documents differ from every other case's beyond the bucket's name."""
    line = simple_line(i, True)
    rng = random.Random(10**7 + i)
    (st,) = line["policies"]["identity"][0]["Statement"]
    st["Sid"] = f"Read{i}"
    st["Action"] = ["s3:GetObject", rng.choice(_EXTRA_ACTIONS)]
    (rst,) = line["policies"]["resource"]["Statement"]
    rst["Sid"] = f"Account{i}"
    rst["Action"] = ["s3:GetObject", "s3:ListBucket", rng.choice(("s3:GetBucketTagging", "s3:GetObjectTagging"))]
    return line


def complex_varied(i: int, unique: bool) -> dict[str, Any]:
    """A complex case whose documents differ from every other case's beyond the bucket's name: Sids, the order of
    the identity statements, one action pattern, and values in the IP, tag, date, organization and region
    conditions (each still satisfied by the request's context)."""
    line = complex_line(i, True)
    rng = random.Random(10**7 + i)
    pol = line["policies"]
    statements = pol["identity"][0]["Statement"]
    for st in statements:
        st["Sid"] = f"{st['Sid']}{i}"
        cond = st.get("Condition", {})
        if "IpAddress" in cond:
            cond["IpAddress"]["aws:SourceIp"] = [*cond["IpAddress"]["aws:SourceIp"], f"172.{16 + i % 16}.{i % 256}.0/24"]
        if "StringEquals" in cond:
            cond["StringEquals"]["aws:PrincipalTag/team"] = ["blue", f"team-{i}"]
        if "DateLessThan" in cond:
            cond["DateLessThan"]["aws:CurrentTime"] = f"{2030 + i % 40}-01-01T00:00:00Z"
        if st["Sid"].startswith("Tls"):
            st["Action"] = [*st["Action"], rng.choice(_EXTRA_ACTIONS)]
    rng.shuffle(statements)
    deny, _allow = pol["resource"]["Statement"]
    deny["Condition"]["StringNotEquals"]["aws:PrincipalOrgID"] = ["o-abc123", f"o-{i:08x}"]
    regions = pol["scps"][1][0]["Statement"][1]["Condition"]["StringNotEquals"]
    regions["aws:RequestedRegion"] = ["us-east-1", "eu-west-1", rng.choice(["ap-south-1", "sa-east-1", f"us-west-{1 + i % 2}"])]
    pol["permissionBoundary"]["Statement"][0]["Action"] = ["s3:*", "kms:Decrypt", rng.choice(_EXTRA_ACTIONS)]
    return line


def run(kind: str, make: Callable[[int, bool], dict[str, Any]], unique: bool, n: int, mode: Mode,
        label: str | None = None) -> dict[str, Any]:
    raw = [orjson.dumps(make(i, unique), option=orjson.OPT_APPEND_NEWLINE) for i in range(n)]
    # Warm the catalog and code paths once (not the policy cache: unique cases stay unique).
    evaluate_line(orjson.loads(orjson.dumps(make(-1, False))), mode)
    gc.collect()
    decisions: dict[str, int] = {}
    start = time.perf_counter()
    cpu_start = time.process_time()
    # The lines as `simulate --batch` reads and writes them (cli/simulate.py: evaluate_lines over the file's
    # lines, one orjson.dumps with a newline per answer); the output is kept in memory, not written.
    for _, res in evaluate_lines(raw, "bench", mode):
        out = orjson.dumps(res, option=orjson.OPT_APPEND_NEWLINE)
        key = out[out.index(b'"decision":"') + 12 : out.index(b'"', out.index(b'"decision":"') + 12)].decode()
        decisions[key] = decisions.get(key, 0) + 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return {
        "case": kind,
        "policies": label or ("unique" if unique else "repeated"),
        "mode": mode.value,
        "n": n,
        "seconds": elapsed,
        "per_second": n / elapsed,
        "cpu_seconds": cpu,
        "per_cpu_second": n / cpu if cpu else float("inf"),
        "decisions": decisions,
    }


def peer_dir() -> Path:
    """The cache directory holding iam-simulate, installed with npm on first use (and when the pin changes)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "iamgraph-bench" / "iam-simulate"
    pkg = base / "node_modules" / "@cloud-copilot" / "iam-simulate" / "package.json"
    if pkg.exists() and json.loads(pkg.read_text()).get("version") == PEER_VERSION:
        return base
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        sys.exit("the peer needs node and npm on PATH (or run with --no-peer)")
    base.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(base), f"{PEER}@{PEER_VERSION}"],
                   check=True, stdout=subprocess.DEVNULL)
    return base


def run_peer(cache: Path, make: Callable[[int, bool], dict[str, Any]], unique: bool, n: int) -> dict[str, Any]:
    """iam-simulate over the same lines (ids 0..n-1) in its own node process."""
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
        for i in range(n):
            f.write(orjson.dumps(make(i, unique)) + b"\n")
        cases = f.name
    try:
        done = subprocess.run(["node", str(RUNNER), str(cache), cases], capture_output=True, check=True)
    finally:
        os.unlink(cases)
    out: dict[str, Any] = json.loads(done.stdout)
    out["per_second"] = out["n"] / out["seconds"]
    out["per_cpu_second"] = out["n"] / out["cpu_seconds"] if out["cpu_seconds"] else float("inf")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer evaluations (a smoke run)")
    parser.add_argument("--no-peer", action="store_true", help="skip iam-simulate")
    args = parser.parse_args()
    n = 3_000 if args.quick else 40_000
    cache = None if args.no_peer else peer_dir()
    rows = []
    cases: list[tuple[str, Callable[[int, bool], dict[str, Any]], bool, str]] = [
        ("simple", simple_line, False, "repeated"), ("simple", simple_line, True, "unique"),
        ("simple", simple_varied, True, "varied"),
        ("complex", complex_line, False, "repeated"), ("complex", complex_line, True, "unique"),
        ("complex", complex_varied, True, "varied"),
    ]
    for kind, make, unique, label in cases:
        # Unique policies are compiled once per case, which is slow: a quarter as many cases.
        rows.append(run(kind, make, unique, n // 4 if unique else n, Mode.STRICT, label))
        if cache is not None:
            # The peer is slower: a quarter as many of the same cases (rates are per second).
            rows[-1]["peer"] = run_peer(cache, make, unique, rows[-1]["n"] // 4)
    rows.append(run("complex", complex_line, False, n, Mode.DISCOVERY))
    print(f"python {platform.python_version()} on {platform.machine()}, one process, batch interface; "
          f"load average {os.getloadavg()[0]:.1f}")
    # evals/s is wall clock; evals/cpu-s divides by this process's CPU time, which is the fairer
    # "one core" figure when other processes share the machine.
    print(f"{'case':<8} {'policies':<9} {'mode':<9} {'n':>7} {'wall s':>7} {'evals/s':>9} {'evals/cpu-s':>11}  decisions")
    for r in rows:
        print(
            f"{r['case']:<8} {r['policies']:<9} {r['mode']:<9} {r['n']:>7} {r['seconds']:>7.2f} "
            f"{r['per_second']:>9,.0f} {r['per_cpu_second']:>11,.0f}  {r['decisions']}"
        )
    if cache is not None:
        print(f"\npeer: {PEER}@{PEER_VERSION}, node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}, "
              "one process, runSimulation per case")
        print(f"{'case':<8} {'policies':<9} {'peer n':>7} {'peer evals/s':>12} {'peer /cpu-s':>11} "
              f"{'ratio (wall)':>12} {'ratio (cpu)':>11}  peer decisions")
        for r in rows:
            pr = r.get("peer")
            if pr is None:
                continue
            print(f"{r['case']:<8} {r['policies']:<9} {pr['n']:>7} {pr['per_second']:>12,.0f} {pr['per_cpu_second']:>11,.0f} "
                  f"{r['per_second'] / pr['per_second']:>11.1f}x {r['per_cpu_second'] / pr['per_cpu_second']:>10.1f}x  "
                  f"{pr['decisions']}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    bad = [r for r in rows if set(r["decisions"]) != {"Allowed"}
           or ("peer" in r and set(r["peer"]["decisions"]) != {"Allowed"})]
    if bad:
        # Every case is built to be allowed; anything else means the benchmark measures the wrong path.
        print("unexpected decisions in:", [(r["case"], r["policies"], r["mode"]) for r in bad])
        sys.exit(1)


if __name__ == "__main__":
    main()
