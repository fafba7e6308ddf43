"""Hedge every shipped Derive snapshot: build time, solve time, peak memory, and Derive's IM
requirement before and after the verified plan.

Reads ../shared/data/derive_pmrm2 (Derive's published portfolio cases); writes each case
with ``derive.case.write_case`` into a temporary folder and runs ``optimize(mode="hedge")``.
There is no peer figure to set beside these: no public tool hedges against Derive's margin.

    .venv/bin/python benchmarks/derive_hedge.py [--data ../shared/data/derive_pmrm2] [--quiet] [--memory]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from marginopt.errors import MarginoptError
from marginopt.models import load_case
from marginopt.models.derive.case import write_case
from marginopt.optimizer import optimize

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "derive_pmrm2"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--quiet", action="store_true", help="Only the summary.")
    ap.add_argument("--memory", action="store_true", help="Trace peak memory (tracemalloc triples the wall time).")
    args = ap.parse_args()
    paths = sorted(args.data.glob("test_*.json"), key=lambda p: int(p.name.split("_")[1]))
    if not paths:
        raise SystemExit(f"no snapshots in {args.data}")
    lowered, unchanged, skipped, failed, cuts, times, peaks = 0, [], [], [], [], [], []
    for path in paths:
        with tempfile.TemporaryDirectory() as folder:
            try:
                case = load_case(write_case(path, Path(folder)))
            except MarginoptError as exc:
                skipped.append((path.name, str(exc).split(": ", 1)[-1][:60]))
                continue
            if args.memory:
                tracemalloc.start()
            t0 = time.perf_counter()
            result = optimize(case, mode="hedge")
            wall = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1] / 2**20 if args.memory else float("nan")
            tracemalloc.stop()
        if result.status != "optimal" or result.verification is None or not result.verification.passed:
            failed.append(path.name)
            continue
        row = result.margins.iloc[0]
        before, after = float(row["before"]), float(row["after"])
        times.append(wall)
        peaks.append(peak)
        if after < before - 1e-9 * max(1.0, before):
            lowered += 1
            cuts.append(1.0 - after / before)
        else:
            unchanged.append((path.name, before))
        if not args.quiet:
            print(f"{path.name[:60]:60s} IM required {before:16,.2f} -> {after:16,.2f}  build {result.solver.build_seconds:.2f} s"
                  f"  solve {result.solver.solve_seconds:.3f} s  peak {peak:.1f} MiB")
    print(f"\n{len(paths)} snapshots: {lowered} lowered, {len(unchanged)} unchanged, {len(failed)} failed, "
          f"{len(skipped)} with nothing to trade")
    if cuts:
        print(f"IM requirement cut: median {statistics.median(cuts):.1%}, least {min(cuts):.1%}")
    if times:
        print(f"wall per plan (build + solve + verify): median {statistics.median(times):.2f} s, max {max(times):.2f} s"
              + (f"; peak traced memory max {max(peaks):.1f} MiB" if args.memory else ""))
    for name, before in unchanged:
        print(f"  unchanged: {name} ({before:,.2f})")
    for name in failed:
        print(f"  FAILED: {name}")


if __name__ == "__main__":
    main()
