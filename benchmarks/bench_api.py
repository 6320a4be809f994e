"""Load test of the HTTP API on the demo organization, from a second process over loopback.

    .venv/bin/python benchmarks/bench_api.py [--quick] [--client raw|httpx] [--no-audit]

Starts ``iamgraph serve`` (one uvicorn worker, graph built at start, an audit log unless ``--no-audit``) on a
free 127.0.0.1 port in a child process, then drives it from this process at 1, 16 and 64 concurrent clients:
POST /v1/simulate (a single request decided against the snapshot), GET /v1/who-can, and
POST /v1/access-requests/evaluate. Bounded in count and in time per phase. Prints a table; any non-2xx
answer counts as an error. ``server ms/req`` is the server process's CPU time (user + system, from
/proc) over the phase divided by its requests: the server's own cost, whatever the client costs. ``load`` is the
machine's 1-minute load average when the phase started (on a shared machine the wall-clock columns follow it).

Clients: ``raw`` (default) is a minimal HTTP/1.1 client on asyncio streams, one keep-alive connection per
client, so 64 clients are 64 connections as 64 independent callers would be; it costs little CPU, so the
figures are the server's. ``httpx`` is one shared ``httpx.AsyncClient`` (the client of the first version of
this benchmark): at 64 clients on this 2-core machine it spent more CPU than the server and set the tail
itself (docs/benchmarks.md).

Who-can answers and access-request evaluations are memoised per snapshot by the server (the same query
on the same snapshot has the same answer), so the load phases measure a warm server; the first, uncached
computation of each query is timed separately (sequentially) and printed as "cold".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


def server_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RawClient:
    """One keep-alive HTTP/1.1 connection; requests one at a time; answers read by Content-Length."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self.conn is None:  # connecting is part of the first request's latency, as for a real caller
            self.conn = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.conn
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.auth}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        await writer.drain()
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = next((int(v) for k, _, v in (ln.partition(b":") for ln in lines[1:]) if k.lower() == b"content-length"),
                      None)
        if length is None:  # every answer of this server has a Content-Length; anything else is a failure
            raise ConnectionError(f"answer without Content-Length: {raw[:200]!r}")
        return status, await reader.readexactly(length)

    async def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            with contextlib.suppress(OSError):
                await self.conn[1].wait_closed()


async def phase(base: str, token: str, calls: list[tuple[str, str, Any]], clients: int, count: int,
                max_seconds: float, client_kind: str, server_pid: int) -> dict[str, Any]:
    if client_kind == "raw":
        return await raw_phase(int(base.rsplit(":", 1)[1]), token, calls, clients, count, max_seconds, server_pid)
    return await httpx_phase(base, token, calls, clients, count, max_seconds, server_pid)


def summary(latencies: list[float], errors: list[str], wall: float, cpu: float | None) -> dict[str, Any]:
    return {"requests": len(latencies), "errors": len(errors), "first_error": errors[0] if errors else "",
            "rps": len(latencies) / wall if wall else 0.0, "p50": pct(latencies, 50) * 1000,
            "p99": pct(latencies, 99) * 1000, "wall": wall,
            "server_ms": cpu / len(latencies) * 1000 if cpu is not None and latencies else float("nan")}


async def raw_phase(port: int, token: str, calls: list[tuple[str, str, Any]], clients: int, count: int,
                    max_seconds: float, server_pid: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0
    stop_at = time.perf_counter() + max_seconds

    async def client() -> None:
        nonlocal issued
        conn = RawClient(port, token)
        try:
            while issued < count and time.perf_counter() < stop_at:
                method, path, body = calls[issued % len(calls)]
                issued += 1
                t0 = time.perf_counter()
                try:
                    status, text = await conn.request(method, path, orjson.dumps(body) if body is not None else None)
                    if not 200 <= status < 300:
                        errors.append(f"{status} {text[:120]!r}")
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors.append(repr(exc))
                    await conn.close()
                    conn = RawClient(port, token)
                latencies.append(time.perf_counter() - t0)
        finally:
            await conn.close()

    cpu0 = server_cpu_seconds(server_pid)
    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    cpu1 = server_cpu_seconds(server_pid)
    return summary(latencies, errors, wall, cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None)


async def httpx_phase(base: str, token: str, calls: list[tuple[str, str, Any]], clients: int, count: int,
                      max_seconds: float, server_pid: int) -> dict[str, Any]:
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

        cpu0 = server_cpu_seconds(server_pid)
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - start
        cpu1 = server_cpu_seconds(server_pid)
    return summary(latencies, errors, wall, cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Fewer requests per phase (smoke run).")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="Upper bound on each phase's duration.")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw", help="Load generator (see above).")
    ap.add_argument("--no-audit", action="store_true", help="Serve without an audit log.")
    ap.add_argument("--requests", type=int, default=None, help="Requests per phase (default 2,000; 250 with --quick).")
    args = ap.parse_args()
    # 2,000 per phase so that p99 is the 20th slowest answer, not the 4th (400 requests gave a noisy p99).
    n = args.requests or (250 if args.quick else 2000)
    counts = {"simulate": n, "who-can": n, "evaluate": n}

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
    if not args.no_audit:
        cmd += ["--audit-log", str(work / "audit.jsonl")]
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
                load = os.getloadavg()[0]  # the machine is shared: each phase's figures beside the load they met
                res = asyncio.run(phase(base, token, calls[name], clients, counts[name], args.max_seconds, args.client,
                                        server.pid))
                rows.append((name, clients, {**res, "load": load}))
        print()
        print(f"client: {args.client}; audit log: {'off' if args.no_audit else 'on'}")
        print(f"{'endpoint':<10} {'clients':>7} {'requests':>8} {'errors':>6} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'server ms/req':>13} {'load':>5}")
        for name, clients, r in rows:
            print(f"{name:<10} {clients:>7} {r['requests']:>8} {r['errors']:>6} {r['rps']:>8.1f} {r['p50']:>8.1f} "
                  f"{r['p99']:>8.1f} {r['server_ms']:>13.2f} {r['load']:>5.1f}")
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
