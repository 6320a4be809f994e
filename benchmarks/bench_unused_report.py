"""``iamgraph unused`` over every principal of the demo organization and ``iamgraph report --db``, timed as the
user runs them (one CLI process each), and their answers compared with a saved run.

    .venv/bin/iamgraph demo --out /tmp/perf-demo
    .venv/bin/python benchmarks/bench_unused_report.py --demo /tmp/perf-demo [--save F | --compare F] [--repeat N]

``--code DIR`` runs another checkout's code (``PYTHONPATH=DIR``, e.g. an export of an earlier commit) with the
same commands: before and after side by side. ``--save F`` writes the unused findings (``--json``) to F;
``--compare F`` exits 1 when they differ from F's. Wall time is shared-machine time; CPU time is the child's own
(user + system), the steadier figure when the machine is loaded. ``--only report`` (repeatable: ``unused``,
``unused-json``, ``report``) runs only those commands; each line ends with the 1-minute load average after it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRY = "from iamgraph.cli import main; main()"


def _env(code: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return env


def run(args: list[str], code: Path | None) -> tuple[float, float, bytes]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # cwd: `python -c` puts the working directory first on sys.path, ahead of PYTHONPATH; run from a checkout, it
    # would import that checkout's iamgraph instead of --code's.
    done = subprocess.run([sys.executable, "-c", ENTRY, *args], env=_env(code), capture_output=True, check=False,
                          cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args[:1])} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", type=Path, default=Path("/tmp/perf-demo"))
    ap.add_argument("--code", type=Path, default=None, help="run this checkout's iamgraph (PYTHONPATH)")
    ap.add_argument("--save", type=Path, default=None)
    ap.add_argument("--compare", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--html", type=Path, default=None,
                    help="where the report writes its HTML (default: DEMO/bench-report.html), to cmp two versions' output")
    ap.add_argument("--only", action="append", choices=("unused", "unused-json", "report"), default=None,
                    help="run only these commands (repeatable; default: all three)")
    args = ap.parse_args()
    only = set(args.only or ("unused", "unused-json", "report"))
    snap, db = args.demo / "snapshot.json.gz", args.demo / "usage.duckdb"
    window = json.loads((args.demo / "planted.json").read_text()).get("window", {})
    as_of = ["--as-of", window["end"][:10]] if window.get("end") else []
    common = ["--snapshot", str(snap), "--db", str(db)]
    which = subprocess.run([sys.executable, "-c", "import iamgraph; print(iamgraph.__file__)"], env=_env(args.code),
                           capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()).stdout.strip()
    print(f"code: {which}; demo {args.demo}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'command':<44} {'wall s':>8} {'cpu s':>8} {'load':>5}")
    findings: bytes = b""
    for _ in range(args.repeat):
        if "unused" in only:
            wall, cpu, _out = run(["unused", *common, *as_of], args.code)
            print(f"{'iamgraph unused (table)':<44} {wall:8.2f} {cpu:8.2f} {os.getloadavg()[0]:5.1f}")
        if "unused-json" in only:
            wall, cpu, findings = run(["unused", *common, *as_of, "--json"], args.code)
            print(f"{'iamgraph unused --json':<44} {wall:8.2f} {cpu:8.2f} {os.getloadavg()[0]:5.1f}")
        if "report" in only:
            html = args.html or args.demo / "bench-report.html"
            wall, cpu, _out = run(["report", *common, "--html", str(html)], args.code)
            print(f"{'iamgraph report --db --html':<44} {wall:8.2f} {cpu:8.2f} {os.getloadavg()[0]:5.1f}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    if not findings:
        if args.save is not None or args.compare is not None:
            sys.exit("--save and --compare need the unused --json command (--only unused-json)")
        return 0
    doc = json.loads(findings)
    print(f"unused: {len(doc['findings'])} findings over {doc['principals_checked']} principals")
    if args.save is not None:
        args.save.write_bytes(findings)
    if args.compare is not None:
        old = json.loads(args.compare.read_bytes())
        if old != doc:
            print(f"DIFFERENT from {args.compare}")
            return 1
        print(f"identical unused findings to {args.compare}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
