"""marginopt batch on Dask: accounts per second with 1 and 2 local workers.

Generates N accounts (48 options and 2 perpetuals each, drawn from BTC and ETH futures,
perpetuals and options at three expiries) on one Deribit-style grid venue, with six
perpetual and future hedges, in one case whose positions carry ``account``; then runs
``run_batch`` (margin and a verified min_margin hedge plan per account) and prints, per
worker count, accounts per second, the cluster's start time, the median per-account time
(build, solve and verification) and the workers' peak memory. The in-process loop (the
same accounts one after another, no Dask) is the baseline the workers are measured against.

    .venv/bin/python benchmarks/batch.py [--accounts 2000] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from marginopt.batch import find_accounts, run_account, run_batch

GRID = """format: marginopt/1
description: batch benchmark accounts
base_currency: USD
valuation_date: 2026-11-20
market: {prices: {BTC: 91000, ETH: 3100, USDC: 1.0}, vols: {BTC: 0.55, ETH: 0.65}, rate: 0.04}
instruments: instruments.csv
positions: positions.csv
hedges: hedges.csv
venues:
  pm:
    initial_margin:
      kind: scenario_max
      scenarios:
        kind: grid
        price_moves: [-0.16, -0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16]
        vol_moves: [-0.25, 0.0, 0.45]
        vol_scaling: {reference_days: 30, power: 0.3, floor_days: 1}
        min_vol: 0.05
        extended:
          - {price_move: -0.33, vol_move: 0.45, weight: 0.5}
          - {price_move: 0.33, vol_move: 0.45, weight: 0.5}
    maintenance_margin: {fraction_of_initial: 0.75}
    collateral: {USDC: {haircut: 0.0}}
    posted: {USDC: 1000000}
objective: min_margin
"""


def write_accounts(n: int, folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    val = dt.date(2026, 11, 20)
    rows = [{"id": "BTC-PERP", "kind": "perpetual", "underlying": "BTC"}, {"id": "ETH-PERP", "kind": "perpetual", "underlying": "ETH"}]
    for u, s in (("BTC", 91000), ("ETH", 3100)):
        for d in (7, 30, 90):
            e = (val + dt.timedelta(days=d)).isoformat()
            rows.append({"id": f"{u}-F{d}", "kind": "future", "underlying": u, "expiry": e})
            for k in np.linspace(0.7, 1.3, 13):
                for r in ("call", "put"):
                    rows.append({"id": f"{u}-{d}-{k * s:.0f}-{r[0].upper()}", "kind": "option", "underlying": u, "expiry": e,
                                 "strike": round(k * s), "right": r})
    instruments = pd.DataFrame(rows)
    instruments.to_csv(folder / "instruments.csv", index=False)
    options = instruments[instruments.kind == "option"].id.to_numpy()
    pos = []
    for a in range(n):
        for iid in rng.choice(options, 48, replace=False):
            pos.append({"venue": "pm", "account": f"A{a:05d}", "instrument": iid, "quantity": float(rng.integers(-20, 21) or 1)})
        for iid in ("BTC-PERP", "ETH-PERP"):
            pos.append({"venue": "pm", "account": f"A{a:05d}", "instrument": iid, "quantity": float(rng.normal(0, 5))})
    pd.DataFrame(pos).to_csv(folder / "positions.csv", index=False)
    hedges = [("BTC-PERP", 20.0), ("ETH-PERP", 0.8), ("BTC-F30", 25.0), ("ETH-F30", 1.0), ("BTC-F90", 30.0), ("ETH-F90", 1.2)]
    pd.DataFrame([{"venue": "pm", "instrument": i, "max_buy": 200, "max_sell": 200, "cost_per_unit": c} for i, c in hedges]
                 ).to_csv(folder / "hedges.csv", index=False)
    (folder / "case.yaml").write_text(GRID)
    return folder / "case.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--baseline", type=int, default=200, help="Accounts run in process, one after another (0: none).")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        case = write_accounts(args.accounts, Path(tmp))
        print(f"{args.accounts} accounts x 50 positions, one grid venue (58 scenarios per underlying), 6 hedges; mode optimize")
        if args.baseline:
            jobs = find_accounts(case)[:args.baseline]
            run_account(jobs[0], "optimize", None, None)  # compile the pricing kernel, load the case
            t0 = time.perf_counter()
            done = [run_account(j, "optimize", None, None) for j in jobs]
            wall = time.perf_counter() - t0
            print(f"in process, no Dask ({len(jobs)} accounts): {len(jobs) / wall:6.1f} accounts/s; "
                  f"median {np.median([r.seconds for r in done]) * 1e3:.1f} ms per account")
        for w in (int(x) for x in args.workers.split(",")):
            run = run_batch(case, Path(tmp) / f"out{w}", workers=w)
            s = run.summary
            print(f"{w} worker{'s' if w > 1 else ' '}: {run.accounts_per_second:6.1f} accounts/s ({run.seconds:.1f} s; cluster start "
                  f"{run.start_seconds:.1f} s); median {s.seconds.median() * 1e3:.1f} ms per account; statuses "
                  f"{s.status.value_counts().to_dict()}; worker peak {s.worker_peak_mib.max():.0f} MiB")


if __name__ == "__main__":
    main()
