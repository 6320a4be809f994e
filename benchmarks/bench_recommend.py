"""Recommendation time for every principal of a generated organization (demo generator), with verification.

    .venv/bin/python benchmarks/bench_recommend.py [--quick] [--accounts N]

--quick: the default demo organization (6 accounts); otherwise 20 accounts × 15 roles.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from iamgraph.demo import generate_demo
from iamgraph.demo.config import DemoConfig
from iamgraph.recommend import recommend_all
from iamgraph.snapshot.index import SnapshotIndex
from iamgraph.snapshot.io import read_snapshot
from iamgraph.usage.ingest import ingest_location
from iamgraph.usage.store import UsageStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="the default 6-account demo organization")
    ap.add_argument("--accounts", type=int, default=20, help="accounts of the generated organization")
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
