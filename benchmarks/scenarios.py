"""Time to build an option scenario-loss matrix: marginopt's kernel vs plain numpy.

5,000 European options (BTC and ETH, calls and puts, 1 day to 1 year, linear and
inverse) x 10,000 scenarios, each scenario a distinct joint price and vol move,
so no element can be reused. Plain numpy is Black-76 with scipy.special.ndtr
over the same matrix, in scenario chunks of 500 rows to bound its memory.

    .venv/bin/python benchmarks/scenarios.py [--options 5000] [--scenarios 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time
import tracemalloc
from types import MappingProxyType

import numba
import numpy as np
from scipy.special import ndtr

from marginopt.models.enums import InstrumentKind, Right, Settlement
from marginopt.models.instruments import Instrument, InstrumentSet
from marginopt.models.market import MarketData
from marginopt.models.pricing import price_inputs
from marginopt.models.scenarios import Moves, ScenarioContext, losses_from_moves

VALUATION = dt.date(2026, 11, 20)
PRICES = {"BTC": 91000.0, "ETH": 3100.0, "USD": 1.0}


def make_options(n: int, rng: np.random.Generator) -> InstrumentSet:
    items = []
    for i in range(n):
        u = "BTC" if i % 2 == 0 else "ETH"
        items.append(Instrument(
            id=f"O{i}", kind=InstrumentKind.OPTION, underlying=u,
            expiry=VALUATION + dt.timedelta(days=int(rng.integers(1, 366))),
            strike=float(PRICES[u] * rng.uniform(0.6, 1.5)),
            right=Right.CALL if rng.random() < 0.5 else Right.PUT,
            settlement=Settlement.INVERSE if rng.random() < 0.5 else Settlement.LINEAR,
            vol=float(rng.uniform(0.3, 1.0)),
        ))
    return InstrumentSet(tuple(items), MappingProxyType({x.id: k for k, x in enumerate(items)}))


def numpy_losses(inp, growth: np.ndarray, vol_move: np.ndarray, chunk: int = 500) -> np.ndarray:
    """Plain numpy Black-76 repricing, the way one writes it without a compiler."""
    out = np.empty((growth.shape[0], len(inp)))
    inverse = (inp.code == 3)
    for lo in range(0, growth.shape[0], chunk):
        g = growth[lo:lo + chunk][:, inp.uidx]
        f1 = inp.forward * g
        sd1 = inp.sd * (1.0 + vol_move[lo:lo + chunk][:, inp.uidx])
        d1 = np.log(f1 / inp.strike) / sd1 + 0.5 * sd1
        v1 = inp.disc_mult * inp.cp * (f1 * ndtr(inp.cp * d1) - inp.strike * ndtr(inp.cp * (d1 - sd1)))
        out[lo:lo + chunk] = inp.value - np.where(inverse, v1 / g, v1)
    return out


def timed(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--options", type=int, default=5000)
    ap.add_argument("--scenarios", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    instruments = make_options(args.options, rng)
    market = MarketData("USD", MappingProxyType(PRICES), rate=0.04)
    t0 = time.perf_counter()
    inp = price_inputs([x.id for x in instruments], instruments, market, VALUATION)
    setup = time.perf_counter() - t0
    ctx = ScenarioContext(inp, market, VALUATION, frozenset(instruments.index))
    n_s = args.scenarios
    z = rng.standard_normal((n_s, 2)) @ np.linalg.cholesky([[1, 0.8], [0.8, 1]]).T
    growth = np.exp(0.08 * z - 0.0032)
    vol_move = np.clip(0.15 * rng.standard_normal((n_s, 2)), -0.5, 0.5)
    moves = Moves(growth, vol_move, np.array([f"s{i}" for i in range(n_s)]), np.ones(n_s))
    elements = n_s * len(inp)

    t0 = time.perf_counter()
    losses_from_moves(ctx, moves)  # first call: loads or compiles the kernel
    first = time.perf_counter() - t0
    ours, losses = timed(lambda: losses_from_moves(ctx, moves), args.repeat)
    ours_mem = peak_mib(lambda: losses_from_moves(ctx, moves))
    ref, ref_losses = timed(lambda: numpy_losses(inp, growth, vol_move), max(1, args.repeat - 1))
    ref_mem = peak_mib(lambda: numpy_losses(inp, growth, vol_move))
    diff = float(np.abs(losses.matrix - ref_losses).max())

    def first_touch() -> None:
        np.empty((n_s, len(inp))).fill(0.0)

    touch, _ = timed(first_touch, args.repeat)
    scale = float(np.abs(ref_losses).max())

    print(f"option scenario matrix: {len(inp):,} options x {n_s:,} scenarios = {elements:,} elements "
          f"({elements * 8 / 2**20:,.0f} MiB), {numba.get_num_threads()} threads")
    print(f"pricing inputs (forwards, vols, values now): {setup:.3f} s; first kernel call (load/compile): {first:.2f} s")
    print(f"{'method':<28}{'seconds':>10}{'ns/element':>12}{'peak MiB':>10}")
    print(f"{'marginopt (numba kernel)':<28}{ours:>10.3f}{ours / elements * 1e9:>12.2f}{ours_mem:>10.0f}")
    print(f"{'plain numpy + scipy ndtr':<28}{ref:>10.3f}{ref / elements * 1e9:>12.2f}{ref_mem:>10.0f}")
    print(f"speed-up {ref / ours:.1f}x; max |difference| {diff:.3g} on losses up to {scale:,.0f} "
          f"(relative {diff / scale:.2g}); target <= 15 ns/element")
    print(f"of which the OS's first touch of a fresh {elements * 8 / 2**20:,.0f} MiB output: {touch:.3f} s "
          f"({touch / elements * 1e9:.2f} ns/element), paid by both methods")
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
