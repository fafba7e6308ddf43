"""Margin health benchmarks (issue 18): the forward projection on the demo and on a 2,000-position book.

Forward projection (``marginopt.health.forward``): 10,000 paths x 10 days on the demo, under its
historical model (the history's daily returns in whole-horizon blocks: at most 750 distinct paths, each
state priced once) and its Monte Carlo model (100,000 distinct states), each run twice in one warm
process, the better time printed with both, wall and CPU (the machine is shared: its load average is
printed beside them; CPU seconds count every thread, numba's waiting ones included). Then the
same projection re-margined in full state by state (``health.days``) on a sample of states, its time per
state, and the largest difference between the two on that sample (the projection is exact: the
difference is rounding). Then a generated book of 2,000 distinct option positions on BTC and ETH (24
expiries, strikes from 50% to 200% of spot) at a Deribit-style grid venue and a clearing-house ES venue
on 500 two-day historical scenarios, at ``--big-paths`` x 10 days; and ``marginopt forward`` on the
demo as a command, start-up included.

    .venv/bin/python benchmarks/health.py [--paths 10000] [--days 10] [--big-paths 100] [--sample 40]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import marginopt
from marginopt.health.days import PathDays
from marginopt.health.forward import forward_report
from marginopt.health.state import venue_health

DEMO = Path(marginopt.__file__).parent / "data" / "demo" / "case.yaml"

BIG_CASE = """format: marginopt/1
description: a 2,000-position book of BTC and ETH options
base_currency: USD
valuation_date: 2026-11-20
market: {prices: {BTC: 91000, ETH: 3100, USDC: 1.0}, vols: {BTC: 0.55, ETH: 0.65}, rate: 0.04, history: history.csv}
instruments: instruments.csv
positions: positions.csv
venues:
  pm:
    initial_margin:
      kind: sum
      terms:
        - kind: scenario_max
          scenarios:
            kind: grid
            price_moves: [-0.16, -0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16]
            vol_moves: [-0.25, 0.0, 0.45]
            vol_scaling: {reference_days: 30, power: 0.3, floor_days: 1}
            min_vol: 0.05
            extended:
              - {price_move: -0.33, vol_move: 0.45, weight: 0.5}
              - {price_move: 0.33, vol_move: 0.45, weight: 0.5}
        - {kind: short_option_minimum, per_contract: 0.005}
    maintenance_margin: {fraction_of_initial: 0.75}
    collateral: {USDC: {haircut: 0.0}, BTC: {haircut: 0.05}}
    posted: {USDC: 20000000, BTC: 100}
  ch:
    initial_margin:
      kind: expected_shortfall
      alpha: 0.99
      scenarios: {kind: historical, window: 500, horizon_days: 2}
    maintenance_margin: {fraction_of_initial: 0.9}
    collateral: {USDC: {haircut: 0.0}}
    posted: {USDC: 20000000}
"""


def write_big_book(folder: Path, n: int = 2000, seed: int = 0) -> Path:
    """``n`` distinct option positions (half at each venue) and two perpetuals, on BTC and ETH."""
    rng = np.random.default_rng(seed)
    val = dt.date(2026, 11, 20)
    rows = ["id,kind,underlying,expiry,strike,right,vol"]
    ids = []
    for u, s, v in (("BTC", 91000, 0.55), ("ETH", 3100, 0.65)):
        for e in range(24):
            expiry = (val + dt.timedelta(days=7 + 14 * e)).isoformat()
            for k in np.linspace(0.5, 2.0, 21):
                for r in ("call", "put"):
                    iid = f"{u}-{e}-{k:.3f}-{r[0]}"
                    rows.append(f"{iid},option,{u},{expiry},{round(k * s, 2)},{r},{v + 0.1 * abs(np.log(k)):.4f}")
                    ids.append(iid)
    rows += ["BTC-PERP,perpetual,BTC,,,,", "ETH-PERP,perpetual,ETH,,,,"]
    (folder / "instruments.csv").write_text("\n".join(rows) + "\n")
    held = rng.choice(ids, n, replace=False)
    pos = ["venue,instrument,quantity"]
    pos += [f"{'pm' if i % 2 else 'ch'},{iid},{int(rng.integers(-20, 21)) or 1}" for i, iid in enumerate(held)]
    pos += ["pm,BTC-PERP,-30", "ch,ETH-PERP,400"]
    (folder / "positions.csv").write_text("\n".join(pos) + "\n")
    (folder / "history.csv").write_text(DEMO.with_name("history.csv").read_text())
    (folder / "case.yaml").write_text(BIG_CASE)
    return folder / "case.yaml"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(case: marginopt.Case, runs: int, **kw: object) -> tuple[list[float], list[float], object]:
    """Wall and CPU seconds (this process's, every thread's) of each run, and the last report."""
    times, cpu, report = [], [], None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        report = forward_report(case, **kw)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return times, cpu, report


def _runs(times: list[float], cpu: list[float]) -> str:
    best = int(np.argmin(times))
    return (f"best {times[best]:.2f} s wall, {cpu[best]:.2f} s CPU (runs {', '.join(f'{x:.2f}' for x in times)} s wall; "
            f"load average {os.getloadavg()[0]:.1f})")


def forward_section(args: argparse.Namespace) -> None:
    print("== forward projection (marginopt.health.forward) ==")
    case = marginopt.load_case(DEMO)
    t = time.perf_counter()
    forward_report(case, model="monte_carlo", paths=2000, days=2, seed=99)  # loads numba and its kernels
    print(f"warm-up (numba and the compiled kernels loaded): {time.perf_counter() - t:.2f} s")
    for model in ("historical", "monte_carlo"):
        times, cpu, report = _timed(case, 2, model=model, paths=args.paths, days=args.days, seed=1)
        assert report is not None
        print(f"demo, {model:11s} {args.paths:,} paths x {args.days} days: {_runs(times, cpu)}; {report.states:,} "
              f"distinct states per venue (3 venues); peak RSS {_peak_mib():,.0f} MiB")
        _check_sample(case, report, args.sample)
    with tempfile.TemporaryDirectory() as tmp:
        big = marginopt.load_case(write_big_book(Path(tmp)))
        n = len(big.positions)
        forward_report(big, model="monte_carlo", paths=20, days=2, seed=99)
        times, cpu, report = _timed(big, 2, model="monte_carlo", paths=args.big_paths, days=args.days, seed=1)
        assert report is not None
        print(f"{n:,}-position book (grid venue and 500-scenario ES venue), monte_carlo {args.big_paths:,} paths x "
              f"{args.days} days: {_runs(times, cpu)}; {report.states:,} states; peak RSS {_peak_mib():,.0f} MiB")
        _check_sample(big, report, min(args.sample, 10))
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "marginopt", "forward", str(DEMO), "--model", "monte_carlo", "--paths",
                          str(args.paths), "--days", str(args.days), "--format", "json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    print(f"marginopt forward demo --model monte_carlo --paths {args.paths} --days {args.days} --format json: "
          f"{time.perf_counter() - t:.2f} s as a command (start-up, case load, paths, projection, JSON)")


def _check_sample(case: marginopt.Case, report: object, sample: int) -> None:
    """Full re-margining of the case on ``sample`` random (path, day) states: its time per state, and the
    largest difference from the projection in IM, MM and balance, relative to the state's IM (or 1)."""
    from marginopt.health.forward import ForwardReport

    assert isinstance(report, ForwardReport)
    timeline = PathDays(case)
    rng = np.random.default_rng(7)
    worst, spent, n = 0.0, 0.0, 0
    for _ in range(sample):
        p, d = int(rng.integers(report.paths.n_paths)), int(rng.integers(report.days + 1))
        path = report.paths.growth[p]
        t = time.perf_counter()
        day_case = timeline.case_on(timeline.growth_of(path, d), d)
        for v in report.venues:
            h = venue_health(day_case, v.venue)
            settled = timeline.settled(path, d, v.venue).value(day_case.market.prices)
            scale = max(1.0, abs(h.initial_margin))
            for got, want in ((v.initial_margin[p, d], h.initial_margin), (v.maintenance_margin[p, d], h.maintenance_margin),
                              (v.margin_balance[p, d], h.margin_balance + settled)):
                worst = max(worst, abs(got - want) / scale)
        spent += time.perf_counter() - t
        n += 1
    per = spent / n
    print(f"  full re-margining state by state on {n} sampled states: {1e3 * per:.1f} ms a state (all venues); "
          f"{report.paths.n_paths * (report.days + 1):,} states would take {per * report.paths.n_paths * (report.days + 1):,.0f} s; "
          f"largest difference from the projection {worst:.1e} of the state's IM")


# -- the distance search (issue 18, item 2) is measured in its own section, added beside this one --


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--big-paths", type=int, default=100)
    ap.add_argument("--sample", type=int, default=40, help="states re-margined in full to check the projection")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}; machine shared (2 cores)")
    forward_section(args)


if __name__ == "__main__":
    main()
