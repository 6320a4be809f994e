"""Benchmark the access graph on generated organizations: build time, peak memory, who-can latency, privesc.

    .venv/bin/python benchmarks/bench_graph.py            # 20 accounts / ~2,000 roles and 200 / ~20,000
    .venv/bin/python benchmarks/bench_graph.py --quick    # 6 accounts / ~150 roles only
    .venv/bin/python benchmarks/bench_graph.py --only demo   # the demo organization's size (DemoConfig())
    .venv/bin/python benchmarks/bench_graph.py --no-memo  # the same, one engine call per request (before)
    .venv/bin/python benchmarks/bench_graph.py --only org100k  # 860 accounts / ~100,000 principals (slow)
    .venv/bin/python benchmarks/bench_graph.py --only org100k --queries 0 --no-privesc  # build + change figures

Each size runs in its own process so peak memory (max RSS) is that size's alone. Who-can is asked
100 times about random (resource, action) pairs from the snapshot (seeded); the median is printed.

Change analysis, beside the full build of the same run and right after it (before the who-can and privesc
figures, so nothing they compute is warm): a PassRole + Lambda grant to a random non-admin role (seeded) is
judged cold with ``evaluate_grant`` (``evaluate_s``: the whole judgement, new-access diff and graph comparisons
included), of which the changed snapshot's graph built from the base graph's decisions is ``incremental_s``
(``iamgraph.graph.incremental.rebuild``, timed on its own after the judgement); ``inc_pct`` is ``incremental_s`` as a
percentage of ``build_s``; ``again_s`` is a second grant (``s3:GetObject``) to the same principal.
``--full-after`` also times a full build of the changed snapshot (``full_after_s``) as the reference.
``preload_s`` is what the API server pays once at start before any judgement (``iamgraph.change.preload``
given the base: parliament, the catalog's ARN-format index, the SoD rules; the diff's resource pool and the
base graph's whole-graph structures, ``iamgraph.change.prepare``); it is run before the judgement is timed,
as in a server started with ``IAMGRAPH_API_WARM_GRAPH=1``. Code from before ``preload`` took the base is
given none (``preload()``). ``build_cpu_s``, ``evaluate_cpu_s`` and ``evaluate_cpu_pct``: the same two parts in
this process's CPU time, which the load of a shared machine moves much less than wall-clock time; likewise
``preload_cpu_s``, ``again_cpu_s`` and ``again_cpu_pct``. ``load_1min``: the machine's load average when the
judgements ended.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time

SIZES = {"medium": (20, 117), "large": (200, 117)}
QUICK = {"quick": (6, 25)}
DEMO = {"demo": (6, 15)}
"""The demo organization's own size (``DemoConfig()``: 6 accounts, topped up to 15 roles each)."""
SCALE = {"org100k": (860, 117)}
"""About 100,000 principals (roles and users) in the shape of the sizes above (issue 16's scale aim: build under
2 minutes and 4 GB); only with ``--only org100k``."""
ACTIONS = ("s3:GetObject", "s3:PutObject", "kms:Decrypt", "secretsmanager:GetSecretValue", "sqs:SendMessage",
           "sns:Publish", "lambda:InvokeFunction", "sts:AssumeRole", "iam:PassRole", "ecr:BatchGetImage")


def run_one(accounts: int, roles_per_account: int, queries: int, seed: int, memoise: bool,
            full_after: bool = False, with_privesc: bool = True) -> dict[str, object]:
    from iamgraph.demo import DemoConfig, build_demo_snapshot
    from iamgraph.graph import build_graph, build_report
    from iamgraph.query import privesc
    from iamgraph.query.who_can import who_can_one

    t0 = time.perf_counter()
    snap = build_demo_snapshot(DemoConfig(accounts=accounts, roles_per_account=roles_per_account, days=2,
                                          events_per_day=1))
    gen_s = time.perf_counter() - t0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    graph = build_graph(snap, memoise=memoise)
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    report = build_report(graph)
    rng = random.Random(seed)
    # The judgement first, right after the build (what a server has done before its first request), so nothing the
    # who-can and privesc figures below compute is warm for it.
    change = _change_figures(snap, graph, random.Random(seed), build_s, build_cpu, full_after) if memoise else {}
    idx = graph.index
    targets = [a + "/x" if r.type == "s3:bucket" else a for a, r in idx.resources.items()] + list(idx.roles)
    times = []
    for _ in range(queries):
        res, act = rng.choice(targets), rng.choice(ACTIONS)
        t0 = time.perf_counter()
        who_can_one(graph, res, act)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    found = privesc(graph) if with_privesc else []
    privesc_s = time.perf_counter() - t0
    return {
        "accounts": len(snap.accounts),
        "roles": sum(len(a.roles) for a in snap.accounts),
        "users": sum(len(a.users) for a in snap.accounts),
        "generate_s": round(gen_s, 2),
        "build_s": round(build_s, 2),
        "engine_calls": report.engine_calls,
        "memo_hits": graph.ctx.stats.memo_hits,
        "nodes": report.nodes,
        "edges": report.edges,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_build_mb": round(rss_before / 1024, 1),
        "who_can_median_ms": round(statistics.median(times) * 1000, 1) if times else "",
        "who_can_p90_ms": round(sorted(times)[int(len(times) * 0.9) - 1] * 1000, 1) if times else "",
        "privesc_all_s": round(privesc_s, 2) if with_privesc else "",
        "privesc_findings": len(found) if with_privesc else "",
        **change,
    }


def _change_figures(snap: object, graph: object, rng: random.Random, build_s: float, build_cpu: float,
                    full_after: bool) -> dict[str, object]:
    from iamgraph.change import ExistingPrincipal, InlinePolicyGrant, SnapshotBase, evaluate_grant, preload
    from iamgraph.change.grant import apply_grant
    from iamgraph.graph import AccessGraph, build_graph
    from iamgraph.graph.incremental import rebuild
    from iamgraph.snapshot import Snapshot

    assert isinstance(snap, Snapshot) and isinstance(graph, AccessGraph)
    admins = graph.admins()
    role = rng.choice(sorted(r for r in graph.index.roles if r not in admins and "/aws-service-role/" not in r))
    grant = InlinePolicyGrant(policy_document={"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"],
        "Resource": "*"}]})
    who = ExistingPrincipal(principal_arn=role)
    base = SnapshotBase(snap)
    base._graph = graph  # the graph built above: the judgement is cold, the base graph is not rebuilt
    base.graph_build_seconds = build_s
    # What the API server pays once at start (IAMGRAPH_API_WARM_GRAPH=1), before any judgement
    # (iamgraph.change.preload), timed on its own: parliament, the catalog's ARN-format index, the SoD rules, and
    # per base snapshot the diff's resource pool and the base graph's whole-graph structures.
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        preload(base)
    except TypeError:  # the code before preload took the base (a before/after comparison runs this script)
        preload()  # type: ignore[call-arg]
    preload_s, preload_cpu = time.perf_counter() - t0, time.process_time() - c0
    # The judgement first: nothing of this grant is warm for it. The changed graph alone is timed after it (its own
    # process-wide caches, such as the granted document's parse, are then warm; the base graph is never changed).
    t0, c0 = time.perf_counter(), time.process_time()
    ev = evaluate_grant(base, who, grant)
    eval_s, eval_cpu = time.perf_counter() - t0, time.process_time() - c0
    applied = apply_grant(snap, base.index, who, grant)
    t0 = time.perf_counter()
    _, reused = rebuild(graph, applied.snapshot)
    inc_s = time.perf_counter() - t0
    # A second request about the same principal: the base side of its comparisons is kept per base graph.
    again = InlinePolicyGrant(policy_document={"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]})
    t0, c0 = time.perf_counter(), time.process_time()
    evaluate_grant(base, who, again)
    again_s, again_cpu = time.perf_counter() - t0, time.process_time() - c0
    out: dict[str, object] = {
        "preload_s": round(preload_s, 2), "incremental_s": round(inc_s, 2), "inc_pct": round(100 * inc_s / build_s, 1), "reused": reused,
        "evaluate_s": round(eval_s, 2), "evaluate_pct": round(100 * eval_s / build_s, 1),
        # CPU time of this process: on a shared machine the wall-clock ratio moves with the load during each part.
        "build_cpu_s": round(build_cpu, 2), "evaluate_cpu_s": round(eval_cpu, 2),
        "evaluate_cpu_pct": round(100 * eval_cpu / build_cpu, 1),
        "verdict": ev.verdict.value, "again_s": round(again_s, 2), "again_pct": round(100 * again_s / build_s, 1),
        "preload_cpu_s": round(preload_cpu, 2), "again_cpu_s": round(again_cpu, 2),
        "again_cpu_pct": round(100 * again_cpu / build_cpu, 1),
        # The machine's load when the judgements ended (1-minute average; the benchmark's own process counts 1).
        "load_1min": round(os.getloadavg()[0], 1),
    }
    if full_after:
        t0 = time.perf_counter()
        build_graph(applied.snapshot)
        out["full_after_s"] = round(time.perf_counter() - t0, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="only a small organization")
    ap.add_argument("--only", choices=sorted({*SIZES, *QUICK, *DEMO, *SCALE}), help="run one size")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-memo", action="store_true", help="build without sharing identical engine decisions")
    ap.add_argument("--full-after", action="store_true", help="also time a full build of the changed snapshot")
    ap.add_argument("--no-privesc", action="store_true",
                    help="skip the whole-organization privesc figure (minutes at 100,000 principals); with --queries 0 "
                    "the run is generation, build and the change figures")
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], args.child[1], args.queries, args.seed, not args.no_memo,
                                 args.full_after, not args.no_privesc)))
        return
    sizes = QUICK if args.quick else SIZES
    if args.only:
        sizes = {args.only: {**SIZES, **QUICK, **DEMO, **SCALE}[args.only]}
    rows = []
    for name, (accounts, rpa) in sizes.items():
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(accounts), str(rpa), "--queries", str(args.queries),
             "--seed", str(args.seed), *(["--no-memo"] if args.no_memo else []),
             *(["--full-after"] if args.full_after else []), *(["--no-privesc"] if args.no_privesc else [])],
            capture_output=True, text=True,
        )
        if out.returncode != 0:
            # The child's own traceback, not only its exit status.
            sys.stderr.write(out.stderr)
            raise SystemExit(f"{name}: the benchmark process failed (exit {out.returncode})")
        rows.append({"size": name, **json.loads(out.stdout.strip().splitlines()[-1])})
    cols = ["size", "accounts", "roles", "users", "build_s", "engine_calls", "memo_hits", "nodes", "edges", "peak_rss_mb",
            "who_can_median_ms", "who_can_p90_ms", "privesc_all_s", "privesc_findings"]
    if not args.no_memo:
        cols += ["preload_s", "incremental_s", "inc_pct", "evaluate_s", "evaluate_pct", "build_cpu_s", "evaluate_cpu_s",
                 "evaluate_cpu_pct", "verdict", "again_s", "again_pct", "preload_cpu_s", "again_cpu_s", "again_cpu_pct",
                 "load_1min"]
        if args.full_after:
            cols.append("full_after_s")
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "")) for c in cols))


if __name__ == "__main__":
    main()
