"""``what-can`` for every principal of the demo organization: time per principal, and (``--check``) the answers
compared with asking the engine for every action (``what_can(..., exhaustive=True)``, the method before issue 16).

    .venv/bin/iamgraph demo --out /tmp/perf-demo
    .venv/bin/python benchmarks/bench_what_can.py --snapshot /tmp/perf-demo/snapshot.json.gz [--check] [--exhaustive]

Each method gets its own graph, built once, and answers the principals in the same order (the graph's decision
cache carries over between principals alike for both). ``--exhaustive`` times the old method too (minutes per
principal that reaches an admin); ``--check`` implies it and exits 1 when any principal's answers differ, compared
as the set of (service, access level, action, resource, via, conditional).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iamgraph.graph import build_graph
from iamgraph.query.what_can import Permission, what_can
from iamgraph.snapshot import read_snapshot

Answer = set[tuple[str, str, str, str, str, bool]]


def answer(perms: list[Permission]) -> Answer:
    return {(p.service, p.access_level, a, p.resource, p.via, p.conditional) for p in perms for a in p.actions}


def run(snapshot_path: Path, principals: list[str], exhaustive: bool) -> tuple[dict[str, float], dict[str, Answer], float]:
    snap = read_snapshot(snapshot_path)
    t0 = time.perf_counter()
    graph = build_graph(snap)
    build_s = time.perf_counter() - t0
    times: dict[str, float] = {}
    answers: dict[str, Answer] = {}
    for arn in principals:
        t = time.perf_counter()
        perms = what_can(graph, arn, exhaustive=exhaustive)
        times[arn] = time.perf_counter() - t
        answers[arn] = answer(perms)
    return times, answers, build_s


def summary(name: str, times: dict[str, float], build_s: float) -> None:
    vals = sorted(times.values())
    worst = max(times, key=lambda k: times[k])
    print(f"{name:<11} principals {len(vals):>3}  graph build {build_s:6.1f} s  total {sum(vals):8.1f} s  "
          f"median {statistics.median(vals):6.2f} s  max {vals[-1]:7.2f} s ({worst.rsplit(':', 1)[-1]})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshot", type=Path, default=Path("/tmp/perf-demo/snapshot.json.gz"))
    ap.add_argument("--exhaustive", action="store_true", help="time the every-action method too")
    ap.add_argument("--check", action="store_true", help="compare the answers with the every-action method")
    ap.add_argument("--principal", action="append", default=[], help="only these ARNs (repeatable)")
    args = ap.parse_args()
    snap = read_snapshot(args.snapshot)
    principals = args.principal or [p.arn for a in snap.accounts for p in (*a.users, *a.roles)]
    print(f"snapshot {args.snapshot}, {len(principals)} principals; load average {os.getloadavg()[0]:.1f}")
    times, answers, build_s = run(args.snapshot, principals, exhaustive=False)
    summary("classes", times, build_s)
    slow = sorted(times.items(), key=lambda kv: -kv[1])[:5]
    print("  slowest: " + ", ".join(f"{a.rsplit(':', 1)[-1]} {t:.2f} s" for a, t in slow))
    if not (args.exhaustive or args.check):
        return 0
    old_times, old_answers, old_build = run(args.snapshot, principals, exhaustive=True)
    summary("every-action", old_times, old_build)
    worst = sorted(principals, key=lambda a: -max(old_times[a], times[a]))[:8]
    for a in worst:
        print(f"  {a.rsplit(':', 1)[-1]}: every-action {old_times[a]:.2f} s, classes {times[a]:.2f} s "
              f"({old_times[a] / max(times[a], 1e-9):.1f}x)")
    print(f"load average {os.getloadavg()[0]:.1f}")
    bad = [a for a in principals if answers[a] != old_answers[a]]
    rows = sum(len(v) for v in answers.values())
    if bad:
        for a in bad:
            print(f"DIFFERENT {a}: only classes {len(answers[a] - old_answers[a])}, "
                  f"only every-action {len(old_answers[a] - answers[a])}")
        return 1
    print(f"identical answers for all {len(principals)} principals ({rows} (service, level, action, resource, via, "
          "conditional) rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
