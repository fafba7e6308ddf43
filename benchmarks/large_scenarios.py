"""Expected shortfall over many scenarios: marginopt's scenario generation against the peers.

Heavy-tailed factor scenarios (Student-t factors and noise, seeded) where the book is
hedgeable. Two problems per size:

* hedge:  min ES_0.99(l0 + L h) + c |h|_1,  -10 <= h <= 10;
* budget: min ES_0.99(L h),  sum h = 1,  h >= 0  (the long-only problem the portfolio
          libraries solve);
* limit:  max mu'h  s.t.  ES_0.99(L h) <= kappa,  sum h = 1,  h >= 0  (the CVaR-constrained
          problem CVQP solves; printed as the minimized -mu'h).

Methods: marginopt (``solvers.scenario_lp``: scenario generation, each restricted LP by
the dense interior point or HiGHS, exact with a certificate), ``marginopt warm`` (the
re-solve after a 1% market move, from the previous working set), ``marginopt case`` (the same problem written as a case file with a matrix
scenario set, hedge candidates and ``limits.linear``, solved by ``marginopt.optimize``:
load, price, the whole problem handed to the large-scenario solver, verification), the Rockafellar-Uryasev
LP in cvxpy with HiGHS and with Clarabel, on the budget problem PyPortfolioOpt
``EfficientCVaR`` and skfolio ``MeanRisk`` (CVaR), and on the limit problem CVQP at its
default tolerances and at tight ones (abstol 1e-7, reltol 1e-6), when installed
(``pip install -e '.[bench]'``). Each method runs in its own process, so the peak memory
printed is that method's, and a method past ``--timeout`` is reported as not finished.

    .venv/bin/python benchmarks/large_scenarios.py [--sizes 20000x100,100000x200] [--timeout 300]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from typing import Any

import numpy as np

ALPHA = 0.99
BOUND = 10.0
COST = 0.001
OWN = 3.0  # default scale of the book's unhedgeable risk (--own; 0 makes the hedges replicate it exactly)


def scenarios(s: int, k: int, own: float = OWN, seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    """Instruments load on five Student-t factors plus their own noise. The book holds a
    combination of them (hedgeable) and a heavy-tailed risk of its own that no hedge
    offsets, so the optimum is a partial hedge with a tail of about (1 - alpha) S scenarios
    (a book the hedges replicate exactly makes every scenario tie at zero loss).

    Filled in blocks of rows, so no full-size temporary raises the peak memory measured."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(5, k))
    w = rng.normal(size=k)
    m = np.empty((s, k))
    l0 = np.empty(s)
    for lo in range(0, s, 50_000):
        hi = min(s, lo + 50_000)
        m[lo:hi] = rng.standard_t(4, (hi - lo, 5)) @ loadings
        m[lo:hi] += 0.5 * rng.standard_t(4, (hi - lo, k))
        l0[lo:hi] = m[lo:hi] @ w + own * rng.standard_t(4, hi - lo)
    return m, l0


def limit_data(m: np.ndarray) -> tuple[np.ndarray, float]:
    """Expected returns (minus the mean loss, plus a seeded drift) and a binding ES limit:
    0.9 times the ES of equal weights."""
    s, k = m.shape
    mu = -m.mean(axis=0) + np.random.default_rng(7).uniform(0.0, 0.05, k)
    return mu, 0.9 * _es(m @ np.full(k, 1.0 / k))


def _program(m: np.ndarray, l0: np.ndarray, problem: str) -> tuple[Any, Any]:
    """The hedge or budget problem as a ScenarioTerm and its ScenarioLP."""
    from marginopt.solvers.scenario_lp import ScenarioLP, ScenarioTerm

    s, k = m.shape
    if problem == "hedge":
        term = ScenarioTerm("es", m, np.arange(k), l0, np.full(s, 1 / s), ALPHA, floor=False)
        return term, ScenarioLP([term], -np.full(k, BOUND), np.full(k, BOUND), np.full(k, COST))
    term = ScenarioTerm("es", m, np.arange(k), np.zeros(s), np.full(s, 1 / s), ALPHA, floor=False)
    return term, ScenarioLP([term], np.zeros(k), np.full(k, np.inf), np.zeros(k), (np.ones((1, k)), np.ones(1), np.ones(1)))


def _warm(m: np.ndarray, l0: np.ndarray, problem: str) -> tuple[float, float, float, str]:
    """A desk re-run: solve, move the market (each instrument's losses by its own seeded
    ~1%, the book's by 1%; the matrix is changed in place, so no second copy), re-solve
    from the previous working set. The times printed are the re-solve's."""
    s, k = m.shape
    term, lp = _program(m, l0, problem)
    t0 = time.perf_counter()
    cold = lp.solve()
    cold_s = time.perf_counter() - t0
    move = 1.0 + 0.01 * np.random.default_rng(99).standard_normal(k)
    for lo in range(0, s, 50_000):
        m[lo:lo + 50_000] *= move
    term.offset = term.offset * 1.01
    t0 = time.perf_counter()
    r = lp.solve(start=cold.h)
    return (0.0, time.perf_counter() - t0, r.objective,
            f"after a 1% move: {r.iterations} round(s), gap {r.gap:.1e}; the cold solve took {cold_s:.2f} s, {cold.iterations} rounds")


def _marginopt(m: np.ndarray, l0: np.ndarray, problem: str) -> tuple[float, float, float, str]:
    from marginopt.solvers.scenario_lp import ScenarioLP, ScenarioTerm

    s, k = m.shape
    t0 = time.perf_counter()
    if problem == "limit":
        mu, kappa = limit_data(m)
        t0 = time.perf_counter()
        term = ScenarioTerm("es", m, np.arange(k), np.zeros(s), np.full(s, 1 / s), ALPHA, weight=0.0, floor=False,
                            limit=kappa)
        lp = ScenarioLP([term], np.zeros(k), np.full(k, np.inf), -mu, (np.ones((1, k)), np.ones(1), np.ones(1)))
        build = time.perf_counter() - t0
        r = lp.solve()
        return (build, time.perf_counter() - t0 - build, r.objective,
                f"gap {r.gap:.1e}, {r.iterations} rounds, {len(r.working_set[0])} rows, ES/limit {term.value(r.h) / kappa:.9f}")
    _, lp = _program(m, l0, problem)
    build = time.perf_counter() - t0
    # No start given: the solver starts from its second-moment hedge (solvers.scenario_start),
    # whose time is in the solve time printed.
    r = lp.solve()
    return build, time.perf_counter() - t0 - build, r.objective, f"gap {r.gap:.1e}, {r.iterations} rounds, {len(r.working_set[0])} rows"


def _cvxpy(m: np.ndarray, l0: np.ndarray, problem: str, solver: str) -> tuple[float, float, float, str]:
    import cvxpy as cp

    s, k = m.shape
    mu, kappa = limit_data(m) if problem == "limit" else (None, 0.0)
    t0 = time.perf_counter()
    h, c = cp.Variable(k), cp.Variable()
    if problem == "limit":
        obj = -mu @ h
        cons = [c + cp.sum(cp.pos(m @ h - c)) / ((1 - ALPHA) * s) <= kappa, h >= 0, cp.sum(h) == 1]
    elif problem == "hedge":
        obj = c + cp.sum(cp.pos(l0 + m @ h - c)) / ((1 - ALPHA) * s) + COST * cp.norm1(h)
        cons = [h >= -BOUND, h <= BOUND]
    else:
        obj = c + cp.sum(cp.pos(m @ h - c)) / ((1 - ALPHA) * s)
        cons = [h >= 0, cp.sum(h) == 1]
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.get_problem_data(solver)  # compile: the build time
    build = time.perf_counter() - t0
    prob.solve(solver=solver)
    note = prob.status
    if problem == "limit":
        note += f", ES/limit {_es(m @ h.value) / kappa:.9f}"
    return build, time.perf_counter() - t0 - build, float(prob.value), note


def _cvqp(m: np.ndarray, l0: np.ndarray, problem: str, tight: bool) -> tuple[float, float, float, str]:
    """CVQP (ADMM): min (1/2) x'Px + q'x s.t. CVaR_beta(A x) <= kappa, l <= B x <= u. Its x is
    an ADMM iterate: clipped to h >= 0 and scaled to sum 1 before the objective and ES are
    recomputed here."""
    import cvqp
    import scipy.sparse as sp

    s, k = m.shape
    mu, kappa = limit_data(m)
    t0 = time.perf_counter()
    # cvqp takes the int((1 - beta) S) largest entries; half a scenario of slack keeps the count exact.
    beta = 1.0 - (round((1 - ALPHA) * s) + 0.5) / s
    b = sp.vstack([sp.csr_matrix(np.ones((1, k))), sp.identity(k, format="csr")], format="csr")
    lo, hi = np.concatenate([[1.0], np.zeros(k)]), np.concatenate([[1.0], np.full(k, np.inf)])
    settings = cvqp.Settings(abstol=1e-7, reltol=1e-6) if tight else None
    build = time.perf_counter() - t0
    res = cvqp.solve(None, -mu, m, b, lo, hi, beta, kappa, settings=settings)
    solve = time.perf_counter() - t0 - build
    h = np.clip(res.x, 0.0, None)
    h /= h.sum()
    return build, solve, float(-mu @ h), f"{res.status}, {res.iterations} iterations, ES/limit {_es(m @ h) / kappa:.9f}"


def _case(m: np.ndarray, l0: np.ndarray, problem: str) -> tuple[float, float, float, str]:
    """The problem as a case file: a matrix scenario set (instrument H<j> per hedge, BOOK for the
    book's own risk), hedge candidates, and for the budget problem ``limits.linear``."""
    import tempfile
    from pathlib import Path

    import marginopt

    case_path = _write_case(m, l0, problem, Path(tempfile.mkdtemp()))
    t0 = time.perf_counter()
    case = marginopt.load_case(case_path)
    build = time.perf_counter() - t0
    r = marginopt.optimize(case, mode="hedge")
    solve = time.perf_counter() - t0 - build
    if r.status != "optimal":
        return build, solve, float("nan"), f"status {r.status}"
    cert = r.certificate or {}
    return (build, solve, float(r.objective_value), f"verified; {cert.get('rounds')} rounds, gap {cert.get('gap', 0):.1e}, "
            f"{sum(cert.get('scenarios_in_program', {}).values())} scenarios in the program")


def _write_case(m: np.ndarray, l0: np.ndarray, problem: str, folder: Any) -> Any:
    """The case file and its Parquet matrix in ``folder``; the case's path."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    s, k = m.shape
    ids = [f"H{j}" for j in range(k)]
    # Written in row groups, so no table the size of the matrix raises the peak measured.
    names = ids + (["BOOK"] if problem == "hedge" else [])
    with pq.ParquetWriter(folder / "losses.parquet", pa.schema([(n, pa.float64()) for n in names])) as writer:
        for lo in range(0, s, 20_000):
            cols = [m[lo:lo + 20_000, j] for j in range(k)] + ([l0[lo:lo + 20_000]] if problem == "hedge" else [])
            writer.write_table(pa.table(dict(zip(names, cols, strict=True))))
    instruments = [{"id": i, "kind": "perpetual", "underlying": "X"} for i in ids + (["BOOK"] if problem == "hedge" else [])]
    if problem == "hedge":
        hedges = [{"venue": "V", "instrument": i, "max_buy": BOUND, "max_sell": BOUND, "cost_per_unit": COST} for i in ids]
        positions, limits = [{"venue": "V", "instrument": "BOOK", "quantity": 1.0}], {}
    else:
        hedges = [{"venue": "V", "instrument": i, "max_buy": 1.0, "max_sell": 0.0, "cost_per_unit": 0.0} for i in ids]
        positions = []
        limits = {"linear": [{"coefficients": {i: 1.0 for i in ids}, "lower": 1.0, "upper": 1.0}]}
    doc = {"format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20",
           "market": {"prices": {"X": 1.0}}, "instruments": instruments, "positions": positions,
           "venues": {"V": {"initial_margin": {"kind": "expected_shortfall", "alpha": ALPHA,
                                               "scenarios": {"kind": "matrix", "file": "losses.parquet"}}}},
           "hedges": hedges, "limits": limits, "objective": "min_margin"}
    (folder / "case.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder / "case.yaml"


def _pypfopt(m: np.ndarray, l0: np.ndarray, problem: str) -> tuple[float, float, float, str]:
    import pandas as pd
    from pypfopt import EfficientCVaR

    t0 = time.perf_counter()
    returns = pd.DataFrame(-m)  # losses are negative returns
    ef = EfficientCVaR(None, returns, beta=ALPHA, weight_bounds=(0, 1))
    build = time.perf_counter() - t0
    ef.min_cvar()
    w = np.array(list(ef.clean_weights(cutoff=0, rounding=None).values()))
    value = _es(m @ w)
    return build, time.perf_counter() - t0 - build, value, "ES recomputed at its weights"


def _skfolio(m: np.ndarray, l0: np.ndarray, problem: str) -> tuple[float, float, float, str]:
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    t0 = time.perf_counter()
    model = MeanRisk(risk_measure=RiskMeasure.CVAR, cvar_beta=ALPHA, objective_function=ObjectiveFunction.MINIMIZE_RISK,
                     min_weights=0.0, max_weights=1.0, budget=1.0)
    build = time.perf_counter() - t0
    model.fit(-m)
    w = np.asarray(model.weights_)
    return build, time.perf_counter() - t0 - build, _es(m @ w), "ES recomputed at its weights"


def _es(loss: np.ndarray) -> float:
    from marginopt.models.margin.shortfall import tail_mean

    return tail_mean(loss, np.full(len(loss), 1 / len(loss)), 1 - ALPHA)


METHODS: dict[str, Any] = {
    "marginopt": _marginopt,
    "marginopt warm": _warm,
    "marginopt case": _case,
    "cvxpy+HiGHS": lambda m, l0, p: _cvxpy(m, l0, p, "HIGHS"),
    "cvxpy+Clarabel": lambda m, l0, p: _cvxpy(m, l0, p, "CLARABEL"),
    "PyPortfolioOpt": _pypfopt,
    "skfolio": _skfolio,
    "CVQP": lambda m, l0, p: _cvqp(m, l0, p, False),
    "CVQP tight": lambda m, l0, p: _cvqp(m, l0, p, True),
}
# Which problems each method takes (all three when not listed).
PROBLEMS = {"PyPortfolioOpt": {"budget"}, "skfolio": {"budget"}, "CVQP": {"limit"}, "CVQP tight": {"limit"},
            "marginopt case": {"hedge", "budget"}, "marginopt warm": {"hedge", "budget"}}
# Imported before the memory baseline, so "x matrix" is what solving adds, not the imports.
MODULES = {"marginopt": ["marginopt.solvers.scenario_lp"], "marginopt warm": ["marginopt.solvers.scenario_lp"],
           "marginopt case": ["marginopt", "pandas", "pyarrow", "pyarrow.parquet"],
           "CVQP": ["cvqp"], "CVQP tight": ["cvqp"], "cvxpy+HiGHS": ["cvxpy"], "cvxpy+Clarabel": ["cvxpy"],
           "PyPortfolioOpt": ["pypfopt", "pandas"], "skfolio": ["skfolio.optimization"]}


LOADS_OWN = {"marginopt case"}


def _worker(name: str, s: int, k: int, problem: str, own: float, out: Any) -> None:
    import importlib

    for module in MODULES.get(name, []):
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # reported by the method itself
    m, l0 = scenarios(s, k, own)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        build, solve, value, note = METHODS[name](m, l0, problem)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out.put((build, solve, value, note, peak / 1024, max(peak - base, 0) / 1024))
    except ImportError as exc:
        out.put((None, None, None, f"not installed ({exc.name})", None, None))
    except Exception as exc:  # a peer failing is a result to print, not a reason to stop
        out.put((None, None, None, f"failed: {type(exc).__name__}: {str(exc)[:80]}", None, None))


def run(name: str, s: int, k: int, problem: str, timeout: float, own: float = OWN) -> tuple[Any, ...]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(name, s, k, problem, own, out))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return (None, None, None, f"did not finish in {timeout:.0f} s", None, None)
    return out.get() if not out.empty() else (None, None, None, f"crashed (exit {proc.exitcode})", None, None)


ROUTES = {"auto": None, "SCENARIO": "SCENARIO", "GENERATE": "GENERATE", "FULL": "FULL"}


def _route_worker(s: int, k: int, out: Any) -> None:
    """Each route of ``marginopt.optimize`` on the hedge problem as a case (load excluded): seconds
    and objective per route, the fastest of three runs each after one untimed warm-up call."""
    import tempfile
    from pathlib import Path

    import marginopt

    m, l0 = scenarios(s, k)
    case_path = _write_case(m, l0, "hedge", Path(tempfile.mkdtemp()))
    case = marginopt.load_case(case_path)
    # One untimed call first: the matrix file is read, the kernels and solvers' imports are warmed, so
    # the first route in the table (auto) does not pay for what every later one finds done.
    marginopt.optimize(case, mode="hedge", solver="SCENARIO")
    res = {}
    for name, solver in ROUTES.items():
        times, value, path = [], float("nan"), ""
        for _ in range(3):
            t0 = time.perf_counter()
            r = marginopt.optimize(case, mode="hedge", solver=solver)
            times.append(time.perf_counter() - t0)
            value, path = float(r.objective_value) if r.status == "optimal" else float("nan"), r.solver.solver or ""
        res[name] = (min(times), value, path)
    out.put(res)


def route_table(sizes: list[int], k: int, timeout: float) -> None:
    """How ``auto`` compares with each forced route at 1,000-20,000 scenarios (issue 15: within
    1.2x of the best), the whole optimize call timed, verification included."""
    print(f"\nmin-margin ES hedge as a case, K = {k} hedges; seconds of marginopt.optimize (load excluded), "
          "best of three after a warm-up; auto / best forced")
    print(f"{'scenarios':>10}" + "".join(f"{n:>12}" for n in ROUTES) + f"{'auto/best':>11}  auto took   objectives agree")
    ctx = mp.get_context("spawn")
    for s in sizes:
        out = ctx.Queue()
        proc = ctx.Process(target=_route_worker, args=(s, k, out))
        proc.start()
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            print(f"{s:>10,}  did not finish in {timeout:.0f} s")
            continue
        res = out.get()
        best = min(res[n][0] for n in ROUTES if n != "auto")
        values = [res[n][1] for n in ROUTES]
        agree = max(values) - min(values) <= 1e-6 * max(1.0, abs(min(values)))
        print(f"{s:>10,}" + "".join(f"{res[n][0]:>12.3f}" for n in ROUTES) + f"{res['auto'][0] / best:>10.2f}x  "
              f"{res['auto'][2]:<10} {'yes' if agree else 'NO: ' + str(values)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--route-table", default="", help="scenario counts, e.g. 1000,3000,10000,20000: the route table only")
    ap.add_argument("--sizes", default="20000x100,100000x200")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--problems", default="hedge,budget,limit")
    ap.add_argument("--own", type=float, default=OWN, help="scale of the book's own (unhedgeable) risk")
    args = ap.parse_args()
    if args.route_table:
        route_table([int(x) for x in args.route_table.split(",")], 100, args.timeout)
        return
    sizes = [tuple(int(x) for x in size.split("x")) for size in args.sizes.split(",")]
    methods = args.methods.split(",")
    print(f"ES at alpha {ALPHA}; matrix generation excluded from times; each method in its own process; "
          "peak MiB is the process's high-water mark, the matrix included; x matrix is the memory held at the peak "
          "(the matrix and what the method added) over the matrix's size (marginopt case: over the copy it loads)")
    for s, k in sizes:
        for problem in args.problems.split(","):
            rows = [(name, run(name, s, k, problem, args.timeout, args.own)) for name in methods
                    if problem in PROBLEMS.get(name, {"hedge", "budget", "limit"})]
            # The warm row solves the moved market: another objective, kept out of the comparison.
            values = [r[2] for n, r in rows if r[2] is not None and n != "marginopt warm"]
            best = min(values) if values else float("nan")
            ours = next((r[0] + r[1] for n, r in rows if n == "marginopt" and r[0] is not None), None)
            print(f"\n{s:,} x {k:,}, {problem} problem (matrix {s * k * 8 / 2**20:,.0f} MiB)")
            print(f"{'method':<16}{'build s':>9}{'solve s':>9}{'total s':>9}{'peak MiB':>10}{'x matrix':>9}"
                  f"{'objective':>18}{'gap to best':>13}{'vs us':>8}  note")
            matrix_mib = s * k * 8 / 2**20
            for name, (build, solve, value, note, peak, extra) in rows:
                if build is None:
                    print(f"{name:<16}{'':>9}{'':>9}{'':>9}{'':>10}{'':>9}{'':>18}{'':>13}{'':>8}  {note}")
                    continue
                total = build + solve
                ratio = f"{total / ours:.1f}x" if ours else ""
                gap = (value - best) / max(abs(best), 1e-12) if name != "marginopt warm" else float("nan")
                # Memory the method added on top of the matrix (and the interpreter holding it); a
                # method that loads the matrix from its file holds its own copy: that one is "the matrix".
                times = (extra if name in LOADS_OWN else matrix_mib + extra) / matrix_mib
                print(f"{name:<16}{build:>9.3f}{solve:>9.3f}{total:>9.3f}{peak:>10,.0f}{times:>9.2f}{value:>18.10g}"
                      f"{gap:>13.1e}{ratio:>8}  {note}")


if __name__ == "__main__":
    main()
