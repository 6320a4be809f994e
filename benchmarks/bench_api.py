"""Load test of the HTTP API on the demo organization, from a second process over loopback.

    .venv/bin/python benchmarks/bench_api.py [--quick]

Starts ``iamgraph serve`` (one uvicorn worker, graph built at start) on a free 127.0.0.1 port in a child
process, then drives it from this process with asyncio + httpx at 1, 16 and 64 concurrent clients:
POST /v1/simulate (a single request decided against the snapshot), GET /v1/who-can, and
POST /v1/access-requests/evaluate. Bounded in count and in time per phase. Prints a table; any non-2xx
answer counts as an error.

Who-can answers and access-request evaluations are memoised per snapshot by the server (the same query
on the same snapshot has the same answer), so the load phases measure a warm server; the first, uncached
computation of each query is timed separately (sequentially) and printed as "cold".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iamgraph.demo import generate_demo  # noqa: E402
from iamgraph.demo.config import DemoConfig  # noqa: E402
from iamgraph.serving.tokens import Scope, TokenFile  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def workloads(planted: dict[str, Any], snapshot: Path) -> dict[str, list[tuple[str, str, Any]]]:
    """(method, path, json body) per endpoint, rotated through by the clients."""
    from iamgraph.snapshot import read_snapshot

    snap = read_snapshot(snapshot)
    items = {i["id"]: i for i in planted["items"]}
    roles = [r.arn for a in snap.accounts for r in a.roles][:40]
    buckets = [r.arn for a in snap.accounts for r in a.resources if r.type == "s3:bucket"]
    sim = [("POST", "/v1/simulate", {"request": {"principal": p, "action": act, "resource": res}})
           for p in roles[:20] for act, res in (("s3:GetObject", f"{buckets[0]}/report.csv"),
                                                ("s3:ListBucket", buckets[-1]))]
    who = [("GET", f"/v1/who-can?resource={b}&action=s3:GetObject&limit=50", None) for b in buckets[:6]]
    who += [("GET", f"/v1/who-can?resource={r}&action=sts:AssumeRole&limit=50", None) for r in roles[:6]]
    requester = items["deviation.new-region"]["principals"][0]
    admin_role = items["privesc.passrole-lambda"]["resources"][0]

    def doc(*st: dict[str, Any]) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": list(st)}

    grants = [
        doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [b, f"{b}/*"]})
        for b in buckets[:3]
    ] + [
        doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": admin_role},
            {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"}),
        doc({"Effect": "Allow", "Action": ["guardduty:UpdateDetector", "guardduty:ArchiveFindings"], "Resource": "*"}),
        doc({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}),
    ]
    ev = [("POST", "/v1/access-requests/evaluate", {"who": {"principal_arn": requester},
                                                    "what": {"policy_document": g}}) for g in grants]
    return {"simulate": sim, "who-can": who, "evaluate": ev}


async def phase(base: str, token: str, calls: list[tuple[str, str, Any]], clients: int, count: int,
                max_seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0
    stop_at = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300,
                                 limits=limits) as http:

        async def client() -> None:
            nonlocal issued
            while issued < count and time.perf_counter() < stop_at:
                method, path, body = calls[issued % len(calls)]
                issued += 1
                t0 = time.perf_counter()
                try:
                    r = await http.request(method, path, content=orjson.dumps(body) if body is not None else None,
                                           headers={"content-type": "application/json"} if body else None)
                    ok = 200 <= r.status_code < 300
                    if not ok:
                        errors.append(f"{r.status_code} {r.text[:120]}")
                except httpx.HTTPError as exc:
                    ok = False
                    errors.append(repr(exc))
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - start
    return {"requests": len(latencies), "errors": len(errors), "first_error": errors[0] if errors else "",
            "rps": len(latencies) / wall if wall else 0.0, "p50": pct(latencies, 50) * 1000,
            "p99": pct(latencies, 99) * 1000, "wall": wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Fewer requests per phase (smoke run).")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="Upper bound on each phase's duration.")
    args = ap.parse_args()
    counts = {"simulate": 400, "who-can": 400, "evaluate": 200}
    if args.quick:
        counts = {k: v // 8 for k, v in counts.items()}

    work = Path(tempfile.mkdtemp(prefix="iamgraph-bench-api-"))
    t0 = time.perf_counter()
    demo = generate_demo(work / "demo", DemoConfig(with_activity=False))
    print(f"demo organization generated in {time.perf_counter() - t0:.1f} s: {demo.counts.accounts} accounts, "
          f"{demo.counts.roles} roles, {demo.counts.users} users, {demo.counts.resources} resources")
    token, _ = TokenFile(work / "tokens.json").create("bench", (Scope.READ, Scope.EVALUATE))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-c", "from iamgraph.cli import main; main()", "serve", "--snapshot", str(demo.snapshot),
           "--token-file", str(work / "tokens.json"), "--port", str(port), "--warm-graph", "--time-limit", "300"]
    log = open(work / "server.log", "wb")  # noqa: SIM115
    t0 = time.perf_counter()
    # One token drives up to 64 concurrent clients here: let it hold that many places (the default, 16 per
    # token, would answer the rest 429 by design; docs/api.md "Load").
    env = {**os.environ, "IAMGRAPH_API_MAX_PER_TOKEN": "64"}
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True, env=env)
    try:
        while True:
            if server.poll() is not None:
                print((work / "server.log").read_text())
                return 1
            try:
                if httpx.get(base + "/v1/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        print(f"server ready in {time.perf_counter() - t0:.1f} s (snapshot loaded, graph built); pid {server.pid}")
        calls = workloads(orjson.loads(Path(demo.planted).read_bytes()), demo.snapshot)

        # Cold: every distinct who-can and evaluate query once, sequentially, before the load phases.
        cold: dict[str, list[float]] = {}
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300) as http:
            for name in ("who-can", "evaluate"):
                for method, path, body in calls[name]:
                    t = time.perf_counter()
                    r = http.request(method, path, json=body)
                    cold.setdefault(name, []).append(time.perf_counter() - t)
                    if r.status_code != 200:
                        print(f"cold {name} failed: {r.status_code} {r.text[:300]}")
                        return 1
        for name, values in cold.items():
            print(f"cold {name}: {len(values)} distinct queries, median {statistics.median(values) * 1000:.0f} ms, "
                  f"max {max(values) * 1000:.0f} ms (sequential, uncached)")

        rows = []
        for name in ("simulate", "who-can", "evaluate"):
            for clients in (1, 16, 64):
                res = asyncio.run(phase(base, token, calls[name], clients, counts[name], args.max_seconds))
                rows.append((name, clients, res))
        print()
        print(f"{'endpoint':<10} {'clients':>7} {'requests':>8} {'errors':>6} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for name, clients, r in rows:
            print(f"{name:<10} {clients:>7} {r['requests']:>8} {r['errors']:>6} {r['rps']:>8.1f} {r['p50']:>8.1f} "
                  f"{r['p99']:>8.1f}")
            if r["errors"]:
                print(f"    first error: {r['first_error']}")
        return 1 if any(r["errors"] for _, _, r in rows) else 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


if __name__ == "__main__":
    raise SystemExit(main())
