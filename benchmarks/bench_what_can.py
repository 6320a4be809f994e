"""``what-can`` for every principal of the demo organization: time per principal, and (``--check``) the answers
compared with asking the engine for every action (``what_can(..., exhaustive=True)``, the method before issue 16).

    .venv/bin/iamgraph demo --out /tmp/perf-demo
    .venv/bin/python benchmarks/bench_what_can.py --snapshot /tmp/perf-demo/snapshot.json.gz [--check] [--exhaustive]
        [--save FILE | --compare FILE]

Each method gets its own graph, built once, and answers the principals in the same order (the graph's decision
cache carries over between principals alike for both). ``--exhaustive`` times the old method too (minutes per
principal that reaches an admin); ``--check`` implies it and exits 1 when any principal's answers differ, compared
as the set of (service, access level, action, resource, via, conditional). ``--save``/``--compare`` compare the
classes method of two versions of the code (run the script from each version's directory) without the slow
every-action method. Times are wall and CPU seconds per principal.
"""

from __future__ import annotations

import argparse
import gzip
import json
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


def run(snapshot_path: Path, principals: list[str], exhaustive: bool
        ) -> tuple[dict[str, float], dict[str, Answer], float, dict[str, float]]:
    """Wall seconds per principal, answers, graph build seconds, and CPU seconds per principal (this process's
    own time: the fairer figure when other processes share the machine)."""
    snap = read_snapshot(snapshot_path)
    t0 = time.perf_counter()
    graph = build_graph(snap)
    build_s = time.perf_counter() - t0
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    answers: dict[str, Answer] = {}
    for arn in principals:
        t = time.perf_counter()
        c = time.process_time()
        perms = what_can(graph, arn, exhaustive=exhaustive)
        cpu[arn] = time.process_time() - c
        times[arn] = time.perf_counter() - t
        answers[arn] = answer(perms)
    return times, answers, build_s, cpu


def summary(name: str, times: dict[str, float], build_s: float, cpu: dict[str, float] | None = None) -> None:
    vals = sorted(times.values())
    worst = max(times, key=lambda k: times[k])
    print(f"{name:<11} principals {len(vals):>3}  graph build {build_s:6.1f} s  total {sum(vals):8.1f} s  "
          f"median {statistics.median(vals):6.2f} s  max {vals[-1]:7.2f} s ({worst.rsplit(':', 1)[-1]})")
    if cpu:
        cvals = sorted(cpu.values())
        cworst = max(cpu, key=lambda k: cpu[k])
        print(f"{'':<11} CPU: total {sum(cvals):8.1f} s  median {statistics.median(cvals):6.2f} s  "
              f"max {cvals[-1]:7.2f} s ({cworst.rsplit(':', 1)[-1]})")


def save(path: Path, answers: dict[str, Answer]) -> None:
    rows = {arn: sorted(list(r) for r in rs) for arn, rs in answers.items()}
    path.write_bytes(gzip.compress(json.dumps(rows).encode()))


def compare(path: Path, answers: dict[str, Answer]) -> list[str]:
    """Principals whose answers differ from those saved at ``path`` (by another version of the code)."""
    saved = json.loads(gzip.decompress(path.read_bytes()))
    return [arn for arn in set(saved) | set(answers)
            if {tuple(r) for r in saved.get(arn, [])} != answers.get(arn, set())]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshot", type=Path, default=Path("/tmp/perf-demo/snapshot.json.gz"))
    ap.add_argument("--exhaustive", action="store_true", help="time the every-action method too")
    ap.add_argument("--check", action="store_true", help="compare the answers with the every-action method")
    ap.add_argument("--principal", action="append", default=[], help="only these ARNs (repeatable)")
    ap.add_argument("--save", type=Path, help="write the classes method's answers to this file (gzip JSON)")
    ap.add_argument("--compare", type=Path,
                    help="compare the classes method's answers with a file --save wrote (another version of the "
                         "code); exit 1 when any principal's answers differ")
    args = ap.parse_args()
    snap = read_snapshot(args.snapshot)
    principals = args.principal or [p.arn for a in snap.accounts for p in (*a.users, *a.roles)]
    print(f"snapshot {args.snapshot}, {len(principals)} principals; load average {os.getloadavg()[0]:.1f}")
    times, answers, build_s, cpu = run(args.snapshot, principals, exhaustive=False)
    summary("classes", times, build_s, cpu)
    slow = sorted(cpu.items(), key=lambda kv: -kv[1])[:5]
    print("  slowest (CPU): " + ", ".join(f"{a.rsplit(':', 1)[-1]} {t:.2f} s" for a, t in slow))
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.save:
        save(args.save, answers)
    if args.compare:
        differ = compare(args.compare, answers)
        for a in differ:
            print(f"DIFFERENT from {args.compare}: {a}")
        if differ:
            return 1
        print(f"answers identical to {args.compare} for all {len(principals)} principals "
              f"({sum(len(v) for v in answers.values())} rows)")
    if not (args.exhaustive or args.check):
        return 0
    old_times, old_answers, old_build, _ = run(args.snapshot, principals, exhaustive=True)
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
