"""Margin health benchmarks (issue 18): the forward projection and the distance search on the demo and on a
2,000-position book, and the stress-safe plan's build and solve times beside the plain plan's.

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

Measured 2026-12-06 (2 cores, load 0.9-1.7, best of two): the distance search on the demo 1.24 s (18
searches, 1,653 venue margin evaluations at 0.7 ms), on the 2,000-position book 13.5 s (12 searches,
1,229 evaluations at 11 ms); the stress-safe demo (docs/examples/demo_safe, two crashes) builds in 0.27 s
and solves in 0.06 s (Clarabel) against 0.07 s and 0.02 s for the plain plan, and its whole run, with
the plain plan solved beside it and both plans' distances, takes 2.9 s. The forward projection's figures
are in README's Margin health section.
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


def distance_section(args: argparse.Namespace) -> None:
    """The distance to a call and to liquidation (``health_report``): every underlying down and up and all
    together, at every venue, by a scan of full re-margining then Brent's method to 1e-6 of the move; on
    the demo and on the 2,000-position book, with the count of full margin evaluations."""
    from marginopt.health import health_report
    from marginopt.health import state as health_state

    print("== distance to a call and to liquidation (marginopt.health.health_report) ==")
    calls = {"n": 0}
    inner = health_state.venue_health

    def counted(case: marginopt.Case, venue: str) -> object:
        calls["n"] += 1
        return inner(case, venue)

    import marginopt.health.distance as distance_module
    distance_module.venue_health = counted  # type: ignore[assignment]  # count the evaluations, nothing else
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, case in (("demo", marginopt.load_case(DEMO)), ("2,000-position book", marginopt.load_case(write_big_book(Path(tmp))))):
                times = []
                for _ in range(2):
                    calls["n"] = 0
                    t = time.perf_counter()
                    report = health_report(case)
                    times.append(time.perf_counter() - t)
                found = sum(d.liquidation.move is not None and not d.liquidation.now for d in report.distances)
                print(f"{name}: {len(report.distances)} (venue, direction) searches, {found} liquidations found: best "
                      f"{min(times):.2f} s (runs {', '.join(f'{x:.2f}' for x in times)} s), {calls['n']:,} venue margin "
                      f"evaluations ({1e3 * min(times) / max(calls['n'], 1):.1f} ms each); load {os.getloadavg()[0]:.1f}")
    finally:
        distance_module.venue_health = inner  # type: ignore[assignment]


def safety_section(args: argparse.Namespace) -> None:
    """The stress-safe plan on the demo (docs/examples/demo_safe: two crashes) beside the plain plan: build and
    solve seconds of each program (the comparison and distances the result carries are timed apart)."""
    import dataclasses

    from marginopt.optimizer import MarginProblem, run

    print("== stress-safe plan (optimizer.safety) ==")
    safe = marginopt.load_case(Path(__file__).resolve().parents[1] / "docs" / "examples" / "demo_safe" / "case.yaml")
    for label, case in (("plain", dataclasses.replace(safe, safety=None)), ("stress-safe", safe)):
        best = None
        for _ in range(2):
            problem = MarginProblem(case)
            t = time.perf_counter()
            result = run(problem)
            wall = time.perf_counter() - t
            if best is None or wall < best[0]:
                best = (wall, result)
        assert best is not None
        wall, result = best
        print(f"demo_safe, {label:11s}: build {result.solver.build_seconds:.2f} s, solve {result.solver.solve_seconds:.2f} s "
              f"({result.solver.solver}), whole run {wall:.2f} s (the safe plan's includes the plain plan beside it and "
              f"both plans' distances); objective {result.objective_value:,.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--big-paths", type=int, default=100)
    ap.add_argument("--sample", type=int, default=40, help="states re-margined in full to check the projection")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}; machine shared (2 cores)")
    forward_section(args)
    distance_section(args)
    safety_section(args)


if __name__ == "__main__":
    main()
