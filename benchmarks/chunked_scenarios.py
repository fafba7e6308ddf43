"""The large-scenario solver on a scenario matrix that is never in memory whole.

The matrix (S x k losses per unit of hedge: three common factors plus noise, heavy-tailed)
is a Dask array generated chunk by chunk from a seed, so every pass regenerates it and no
step can hold it whole. The hedge minimizing 99% expected shortfall plus a linear cost is
solved through ``solvers.chunked.ChunkedRows``; the same matrix, materialized, is then
solved in memory as the reference (the peer: the same solver on a numpy array). Printed:
solve time, peak traced memory of each against the matrix's size, and the two optima.

    .venv/bin/python benchmarks/chunked_scenarios.py [--scenarios 2000000] [--hedges 40] [--chunk 100000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import dask
import dask.array as da
import numpy as np

from marginopt.solvers.chunked import ChunkedRows
from marginopt.solvers.scenario_lp import ScenarioLP, ScenarioTerm


def lazy_matrix(s: int, k: int, chunk: int, seed: int = 5) -> da.Array:
    rng = da.random.default_rng(seed)
    factors = rng.standard_t(4, size=(s, 3), chunks=(chunk, 3))
    load = np.random.default_rng(seed).normal(size=(3, k))
    return factors @ load + 0.3 * rng.standard_t(4, size=(s, k), chunks=(chunk, k))


def solve(matrix, offset: np.ndarray, k: int) -> tuple[float, float, float]:
    s = len(offset)
    term = ScenarioTerm("es", matrix, np.arange(k), offset, np.full(s, 1.0 / s), 0.99, floor=False)
    tracemalloc.start()
    t0 = time.perf_counter()
    r = ScenarioLP([term], -np.full(k, 4.0), np.full(k, 4.0), np.full(k, 0.02)).solve()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert r.status == "optimal", r.status
    return seconds, peak, r.objective


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", type=int, default=2_000_000)
    ap.add_argument("--hedges", type=int, default=40)
    ap.add_argument("--chunk", type=int, default=100_000)
    args = ap.parse_args()
    s, k = args.scenarios, args.hedges
    dask.config.set(scheduler="threads", num_workers=2)
    lazy = lazy_matrix(s, k, args.chunk)
    offset = np.asarray((lazy @ np.random.default_rng(1).normal(size=k) * 2).compute())
    size = s * k * 8 / 2**20
    print(f"{s:,} scenarios x {k} hedges = {size:,.0f} MiB as float64; chunks of {args.chunk:,} rows; 99% ES + linear cost")
    t, peak, obj = solve(ChunkedRows(lazy), offset, k)
    print(f"chunked (never whole):  {t:7.1f} s   peak traced {peak:7.0f} MiB = {peak / size:.2f} x the matrix   objective {obj:.10g}")
    dense = np.ascontiguousarray(lazy.compute())
    t2, peak2, obj2 = solve(dense, offset, k)
    print(f"in memory (numpy):      {t2:7.1f} s   peak traced {peak2:7.0f} MiB = {peak2 / size:.2f} x the matrix (beyond it)   "
          f"objective {obj2:.10g}")
    print(f"optima agree to {abs(obj - obj2) / max(1.0, abs(obj2)):.1e} relative")


if __name__ == "__main__":
    main()
