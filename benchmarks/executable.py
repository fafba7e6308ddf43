"""Executable plans (issue 17): time to an executable plan, the gap reached, the continuous
optimum and a naive rounding of it, side by side, in one run.

1. The demo's executable plan (docs/examples/demo_executable/case.yaml: lots, minimum trades and impact
   costs, on the cvxpy mip backend). Target: under 2 s. Measured on a quiet machine (2026-12-06):
   0.48 s for the call in a warm process (as a desk re-runs it), 1.36 s for the process's first call,
   which imports cvxpy (about 1 s); proven, 7.9e-07 gap. Under load from other sessions the first call
   took 2.5-2.8 s.
2. The 200-asset x 30-venue treasury of benchmarks/optimize.py with a minimum transfer and
   ``max_moves`` at every venue, collateral only, to a proven optimum or a 1e-4 relative gap, on the
   direct MIP (backends/direct_mip.py, chosen for it) and on the cvxpy mip backend in the same run.
   Target: under 2 s. The continuous plan posts one asset (the cheapest, A076) at each venue, 193,000
   to 2.3 million, so the terms are set to bind: a minimum transfer of 500,000 (venues needing less
   must over-post; the naive rounding drops their moves and leaves them short) with max_moves 3, and
   the same with the inventory at 0.9 of the case's and max_moves 1 (A076 then runs out, the
   continuous plan splits a venue over two assets, and the cap forces it to consolidate).
   Measured (optimize call, proven at 1e-4):
     500,000 / max_moves 3: direct_mip 1.12 s best (1.1-2.7 s over six runs; the code before this
       session 1.6-2.3 s in the same A/B runs, 0.96 s at a quieter moment), mip 14.4 s best (to 24 s);
       executable 37,308.01, continuous 36,386.15, naive 34,671.78 infeasible.
     inventory x0.9 / max_moves 1: direct_mip 0.54 s best (0.54-0.97 s; before: 5.2-12.2 s), mip 35.7 s
       best (to 55 s); executable 39,681.67, continuous 37,444.45, naive 35,327.23 infeasible. The
       venues with nothing posted and one move are a choice of one asset each (direct_mip's docstring).
3. A 100,000-scenario x 200-hedge ES hedge (benchmarks/large_scenarios.py's scenarios and case)
   with lot sizes on the hedges: the integer backend (relaxation on the scenario solver, a dive on its
   working set, then rounding and repair) to a 1e-3 gap to the continuous bound. Target: under 10 s.
   Measured: lots of 0.05: 8.2e-4 in 3.65 s best (4.6-14 s as the machine got busier; the relaxation
   alone 1.5-7.7 s of it), proven within the 1e-3 asked (before: 1.1e-3 in 5.2 s, not proven); lots of
   0.25: 9.5e-3 in 8.3-22 s, feasible, not proven (before: 1.3e-2 in 4.1 s). At lots of 0.25 no plan
   comes near 1e-3: HiGHS's MIP over the relaxation's working set (2,000 scenarios, 200 integers) found
   nothing better than 1.1e-2 in 60 s (its own bound barely above the relaxation), and rounding 200
   hedges by up to an eighth of a unit adds risk no other hedge offsets (a quadratic model of the ES
   around the relaxation puts the best lattice point near 7e-3); the target holds at lots of 0.05.

All on 2 cores shared with other sessions (load 2-3.5): single runs vary by 2x; the figures are the
best of at least two runs, with the range. On a quiet machine (2026-12-06, 06:36, nothing else running):
treasury max_moves 3 0.88 s, max_moves 1 at x0.9 0.45 s, both proven; the 100,000 x 200 hedge at lots
of 0.05 8.2e-4 in 2.00 s (relaxation 0.37 s, dive 0.79 s, search 0.83 s).
   ``--tickets N`` adds ``execution.max_tickets: N`` to it (the integer route's MIP over generated
   scenarios, 60 s limit). Measured: 20,000 x 50 with a cap of 10: 60.8 s, 17.8058 against a bound of
   15.8303 (gap 11%, not proven: HiGHS improved neither relax-and-fix's start nor the relaxation's
   bound in 3,162 nodes); 100,000 x 200 with a cap of 20: 65.6 s, 23.4156 against 15.4283 (gap 34%:
   HiGHS did not finish the root of the MIP over ~4,000 scenarios x 200 dense columns).

Each row runs in its own process: the peak memory printed is that row's peak RSS (imports included).
"Continuous" is the case without its execution terms solved exactly (a lower bound on the
executable plan); "naive" is the continuous plan rounded by hand (nearest lots, moves under the
minimum dropped), verified against the executable case.

    .venv/bin/python benchmarks/executable.py [--rows demo,treasury,hedge] [--backends direct_mip,mip] [--lots 0.05,0.25]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "docs" / "examples" / "demo_executable" / "case.yaml"


def _figures(r: Any, seconds: float) -> dict[str, Any]:
    cert = r.certificate or {}
    ex = r.executability
    return {"status": r.status, "seconds": seconds, "objective": r.objective_value, "bound": cert.get("bound"),
            "relative_gap": cert.get("relative_gap"), "proven": cert.get("proven_optimal"),
            "continuous": ex.continuous_value if ex is not None else None,
            "naive": ex.rounded.objective_value if ex is not None and ex.rounded is not None else None,
            "naive_feasible": ex.rounded_feasible if ex is not None else None,
            "method": cert.get("method", r.solver.solver)}


def demo_row() -> dict[str, Any]:
    import marginopt

    case = marginopt.load_case(DEMO)
    t0 = time.perf_counter()
    marginopt.optimize(case)  # the first call in a process also imports cvxpy (about 1 s)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = marginopt.optimize(case)  # as a desk re-runs it: the process warm
    out = _figures(r, time.perf_counter() - t0)
    out["cold_s"] = cold
    return out


def treasury_row(assets: int, venues: int, backend: str, minimum: float, moves: int, scale: float,
                 time_limit: float) -> dict[str, Any]:
    """The treasury with ``minimum_transfer`` and ``max_moves`` at every venue and its inventory scaled by
    ``scale``, on ``backend`` (direct_mip: the choice for it; mip: the cvxpy program) to a 1e-4 gap."""
    import marginopt
    from marginopt.optimizer.api import run as solve
    from marginopt.optimizer.problem import MarginProblem

    sys.path.insert(0, str(HERE))
    from optimize import treasury_case

    folder = Path(tempfile.mkdtemp())
    path = treasury_case(assets, venues, 1.0, folder)
    doc = yaml.safe_load(path.read_text())
    for spec in doc["venues"].values():
        spec["minimum_transfer"] = minimum
        spec["max_moves"] = moves
    for t in doc["treasury"].values():
        t["quantity"] *= scale
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    case = marginopt.load_case(path)
    t0 = time.perf_counter()
    r = solve(MarginProblem(case, mode="allocate", backend=backend, mip_gap=1e-4, time_limit=time_limit))
    out = _figures(r, time.perf_counter() - t0)
    out["solve_s"] = r.solver.build_seconds + r.solver.solve_seconds
    moved = r.allocation[(r.allocation["quantity"] - r.allocation["posted_before"]).abs() > 1e-9]
    ex = r.executability
    naive = ex.rounded_plan.allocation if ex is not None and ex.rounded_plan is not None else {}
    before = ex.posted if ex is not None else {}
    out["collateral_moves"] = (len(moved), sum(1 for v, units in naive.items() for a, q in units.items()
                                               if abs(q - before.get(v, {}).get(a, 0.0)) > 1e-9))
    out["smallest_move"] = float((moved["value"]).min()) if len(moved) else None
    return out


def hedge_row(s: int, k: int, lot: float, tickets: int | None = None) -> dict[str, Any]:
    import marginopt

    sys.path.insert(0, str(HERE))
    from large_scenarios import _write_case, scenarios

    folder = Path(tempfile.mkdtemp())
    m, l0 = scenarios(s, k)
    path = _write_case(m, l0, "hedge", folder)
    del m, l0
    doc = yaml.safe_load(path.read_text())
    for h in doc["hedges"]:
        h["lot_size"] = lot
    if tickets is not None:
        doc["execution"] = {"max_tickets": tickets}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    case = marginopt.load_case(path)
    t0 = time.perf_counter()
    r = marginopt.optimize(case, mode="hedge", mip_gap=1e-3, time_limit=60.0)
    out = _figures(r, time.perf_counter() - t0)
    rounding = (r.certificate or {}).get("rounding", {})
    out.update(relaxation_s=rounding.get("relaxation_seconds"), search_s=rounding.get("search_seconds"),
               moves=(rounding.get("repair_moves"), rounding.get("improving_moves")) if tickets is None
               else (rounding.get("mip_rounds"), rounding.get("mip_nodes")),
               lines=int((r.hedges["quantity"] != 0).sum()) if r.succeeded else None, dive_s=rounding.get("dive_seconds"),
               dive_rounds=rounding.get("dive_rounds"), start=rounding.get("start"))
    return out


def _worker(name: str, args: tuple[Any, ...], out: Any) -> None:
    fn = {"demo": demo_row, "treasury": treasury_row, "hedge": hedge_row}[name]
    row = fn(*args)
    row["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put(row)


def run(name: str, *args: Any) -> dict[str, Any] | None:
    q: Any = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=_worker, args=(name, args, q))
    p.start()
    p.join(600)
    if p.is_alive():
        p.kill()
        return None
    return q.get() if not q.empty() else None


def _f(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", type=int, default=100_000)
    ap.add_argument("--hedges", type=int, default=200)
    ap.add_argument("--lots", default="0.05,0.25", help="lot size of every hedge (bounds +-10), a row each, comma-separated")
    ap.add_argument("--tickets", type=int, default=None, help="execution.max_tickets on the hedge rows (default: none)")
    ap.add_argument("--assets", type=int, default=200)
    ap.add_argument("--venues", type=int, default=30)
    ap.add_argument("--time-limit", type=float, default=60.0, help="per treasury row, seconds")
    ap.add_argument("--rows", default="demo,treasury,hedge", help="which rows, comma-separated")
    ap.add_argument("--backends", default="direct_mip,mip", help="the treasury rows' backends, comma-separated")
    a = ap.parse_args()
    wanted = set(a.rows.split(","))
    rows: list[tuple[str, dict[str, Any] | None]] = []
    if "demo" in wanted:
        if DEMO.exists():
            rows.append(("demo", run("demo")))
        else:
            print("demo: not yet (impact costs in the MIP)")
    if "treasury" in wanted:
        for minimum, moves, scale in ((500_000.0, 3, 1.0), (500_000.0, 1, 0.9)):
            for backend in a.backends.split(","):
                label = (f"treasury {a.assets}x{a.venues} {backend}, min transfer {minimum:,.0f}, max_moves {moves}"
                         + (f", inventory x{scale:g}" if scale != 1.0 else ""))
                rows.append((label, run("treasury", a.assets, a.venues, backend, minimum, moves, scale, a.time_limit)))
    if "hedge" in wanted:
        for lot in (float(x) for x in a.lots.split(",")):
            label = f"hedge {a.scenarios:,}x{a.hedges}, lots {lot:g}" + (f", max_tickets {a.tickets}" if a.tickets is not None else "")
            rows.append((label, run("hedge", a.scenarios, a.hedges, lot, a.tickets)))
    head = (f"{'case':<78} {'status':>8} {'time s':>7} {'peak MiB':>9} {'executable':>16} {'bound':>16} {'rel gap':>9} "
            f"{'proven':>6} {'continuous':>16} {'naive':>16} {'naive ok':>8}")
    print(head)
    print("-" * len(head))
    for label, r in rows:
        if r is None:
            print(f"{label:<78} did not finish")
            continue
        print(f"{label:<78} {r['status']:>8} {r['seconds']:>7.2f} {r['peak_mib']:>9.0f} {_f(r['objective'], '16,.4f')} "
              f"{_f(r['bound'], '16,.4f')} {_f(r['relative_gap'], '9.1e')} {str(r['proven']):>6} "
              f"{_f(r['continuous'], '16,.4f')} {_f(r['naive'], '16,.4f')} {str(r['naive_feasible']):>8}")
        if "relaxation_s" in r and a.tickets is None:
            print(f"{'':<78} relaxation {_f(r['relaxation_s'], '.2f')} s, dive {_f(r['dive_s'], '.2f')} s ({r['dive_rounds']} rounds), "
                  f"search {_f(r['search_s'], '.2f')} s from the {r['start']} (repair, improving moves {r['moves']}); "
                  "the rest verification (the continuous optimum is the relaxation)")
        elif "relaxation_s" in r:
            print(f"{'':<78} relaxation {_f(r['relaxation_s'], '.2f')} s, MIPs over generated scenarios {_f(r['search_s'], '.2f')} s "
                  f"(MIPs, nodes {r['moves']}); lines traded {r['lines']}")
        if "cold_s" in r:
            print(f"{'':<78} the time is a second call in the process; the first, importing cvxpy, took {r['cold_s']:.2f} s")
        if "collateral_moves" in r:
            print(f"{'':<78} solver build + solve {r['solve_s']:.2f} s; moves: executable {r['collateral_moves'][0]}, naive rounding "
                  f"{r['collateral_moves'][1]}; smallest executable move {_f(r['smallest_move'], ',.0f')}")
    print("time: the optimize call (solve, verification and the continuous optimum and naive rounding shown beside it)")


if __name__ == "__main__":
    main()
