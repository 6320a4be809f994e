"""The graph build alone, on a generated organization: CPU seconds of ``build_graph``, peak memory, graph size.

    .venv/bin/python benchmarks/bench_build.py                       # 860 accounts x 117 roles (~100,000 principals)
    .venv/bin/python benchmarks/bench_build.py --accounts 20 --roles 100   # the medium size (~2,000 roles)
    .venv/bin/python benchmarks/bench_build.py --before /tmp/main-src      # the same, then the code at that path

The organization is generated in the same process first (``build_demo_snapshot``, as benchmarks/bench_graph.py
does for its sizes); its time is printed apart. CPU time is this process's (``time.process_time``), which a
shared machine disturbs far less than wall time; peak memory is the process's maximum RSS (generation and
build together). ``--before PATH`` runs the same measurement again in a fresh interpreter with ``PYTHONPATH=PATH``
(a ``git archive`` of another commit), after this code's, so the two are compared in one sitting.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def measure(accounts: int, roles: int) -> dict[str, object]:
    from iamgraph.demo import DemoConfig, build_demo_snapshot
    from iamgraph.graph import build_graph

    c0 = time.process_time()
    snap = build_demo_snapshot(DemoConfig(accounts=accounts, roles_per_account=roles, days=2, events_per_day=1))
    c1, w1 = time.process_time(), time.perf_counter()
    graph = build_graph(snap)
    c2, w2 = time.process_time(), time.perf_counter()
    return {
        "accounts": accounts,
        "principals": sum(len(a.roles) + len(a.users) for a in snap.accounts),
        "nodes": graph.g.number_of_nodes(),
        "edges": graph.g.number_of_edges(),
        "generate_cpu_s": round(c1 - c0, 2),
        "build_cpu_s": round(c2 - c1, 2),
        "build_wall_s": round(w2 - w1, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_1min": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=860)
    parser.add_argument("--roles", type=int, default=117, help="roles per account")
    parser.add_argument("--before", metavar="PATH", help="also measure the code at PATH (a git archive)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.accounts, args.roles)))
        return
    runs = [("this code", None)] + ([("before", args.before)] if args.before else [])
    for label, path in runs:
        env = dict(os.environ)
        if path:
            env["PYTHONPATH"] = path
        # One interpreter per run: peak memory is that run's alone.
        out = subprocess.run([sys.executable, __file__, "--accounts", str(args.accounts), "--roles", str(args.roles),
                              "--child"], env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"{label}: failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
