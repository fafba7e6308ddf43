"""The integer route with a cap on tickets (``execution.max_tickets``: non-zero hedge lines).

No rounding keeps a cardinality, so the plan is ``solvers.scenario_mip``'s MIP over generated
scenarios (binaries per line, big-M from the case's bounds), from the relaxation's working sets.
HiGHS's own heuristics find poor first plans there: the big-M relaxation of a cap is nearly the
continuous problem, whose optimum trades every line. So it starts from the best of:

1. **relax and fix**: keep the half of the lines the relaxation trades most (``|h| / bound``), solve the
   relaxation again on them alone (its working sets carried over), and halve again until the cap is
   reached; then round those lines to lots and run the lot search on them (``LotSearch``, the other
   lines held at zero). On 20,000 x 50 ES with a cap of 10 (benchmarks/executable.py's hedge row):
   17.81 in 1.2 s, against 17.94 keeping the relaxation's top 10 in one step and 21.38 for HiGHS's
   incumbent after 60 s started from the naive rounding cut to the cap;
2. the naive rounding of the relaxation cut to the cap: the lines whose removal alone would raise
   the objective most (each valued over every scenario) kept;
3. no trade at all.

Each is a plan only where it keeps to every term and limit (``ScenarioMip.keeps``).
"""

from __future__ import annotations

import math
import time

import numpy as np

from marginopt.optimizer.backends.lot_search import LotSearch
from marginopt.optimizer.description import Description, LimitRow
from marginopt.optimizer.verify import ABS_TOL
from marginopt.solvers.scenario_lp import ScenarioLP
from marginopt.solvers.scenario_mip import HedgeTerms, MipResult, ScenarioMip
from marginopt.solvers.scenario_terms import ScenarioTerm
from marginopt.solvers.status import SolveStatus
from marginopt.typing import FloatArray

START_SHARE = 0.25  # of the time left after the relaxation, the most the first plan's lot search takes


def hedge_terms(d: Description) -> HedgeTerms:
    return HedgeTerms(np.array([c.lot_size if c.lot_size is not None else math.nan for c in d.cands]),
                      np.array([c.min_trade for c in d.cands]), d.case.execution.max_tickets)


def solve_within_tickets(d: Description, terms: list[ScenarioTerm], working: list[np.ndarray], relaxed: FloatArray,
                         naive: FloatArray, lower: float, mip_gap: float, deadline: float) -> tuple[MipResult, str]:
    """The MIP from the relaxation's ``working`` sets and the best first plan (module docstring); the
    result and a note on that plan."""
    mip = ScenarioMip(terms, d.lower, d.upper, d.unit_costs, d.limit_rows(), hedge_terms(d), mip_gap=mip_gap)
    share = time.perf_counter() + START_SHARE * max(deadline - time.perf_counter(), 0.0)
    found: list[tuple[float, str, FloatArray]] = []
    fixed = relax_and_fix(d, terms, working, relaxed, mip, lower, mip_gap, share)
    plans = [] if fixed is None else [(f"relax and fix ({fixed[1]} LPs)", fixed[0])]
    plans += [("the naive rounding cut to the cap", cut_to_cap(LotSearch(terms, d, naive), mip)),
              ("no trade", np.zeros(len(d.cands)))]
    for how, h in plans:
        if mip.keeps(h):
            found.append((mip.value(h), how, h))
    if not found:
        return mip.solve(working, deadline), "first plan: none found (HiGHS's own)"
    value, how, start = min(found, key=lambda f: f[0])
    return mip.solve(working, deadline, start), f"first plan: {how}, {value:.6g}"


def relax_and_fix(d: Description, terms: list[ScenarioTerm], working: list[np.ndarray], relaxed: FloatArray,
                  mip: ScenarioMip, lower: float, mip_gap: float, deadline: float) -> tuple[FloatArray, int] | None:
    """The relaxation on halves of its most traded lines down to the cap, then lots by the lot search on
    those lines; with the number of LPs solved. None where a restricted relaxation fails or the lot
    search leaves a limit violated."""
    cap = mip.execution.max_tickets
    assert cap is not None
    if cap == 0:
        return None  # no trade is the only plan, and a candidate already
    live, h, solves = np.flatnonzero(relaxed), np.asarray(relaxed, dtype=float), 0
    while len(live) > cap:
        score = np.abs(h[live]) / d.h_scale[live]
        live = live[np.argsort(-score, kind="stable")[:max(cap, len(live) // 2)]]
        lb, ub = np.zeros(len(h)), np.zeros(len(h))
        lb[live], ub[live] = d.lower[live], d.upper[live]
        lp = ScenarioLP(terms, lb, ub, d.unit_costs, d.limit_rows())
        lp.working = [w.copy() for w in working]
        res = lp.solve()
        solves += 1
        if res.status is not SolveStatus.OPTIMAL:
            return None
        h, working = res.h, lp.working
    search = LotSearch(terms, d, h)
    search.pin(np.setdiff1d(np.arange(len(h)), live))
    search.run(lower, mip_gap, deadline)
    if search.violation() > 0.0:
        return None
    return search.h.copy(), solves


def cut_to_cap(search: LotSearch, mip: ScenarioMip) -> FloatArray:
    """``search.h`` with only the ``max_tickets`` lines whose removal alone would raise the objective most."""
    h, cap = search.h.copy(), mip.execution.max_tickets
    traded = np.flatnonzero(h)
    if cap is not None and len(traded) > cap:
        raised = np.array([search.trial({int(j): -float(h[j])})[0] for j in traded])
        h[traded[np.argsort(-raised, kind="stable")[cap:]]] = 0.0
    return h


def shortfalls_within_tickets(d: Description, rows: list[LimitRow], mip_gap: float, time_limit: float) -> tuple[tuple[str, float], ...]:
    """The elastic problem keeping the lots, minimum trades and the cap (a MIP with no scenario:
    ``ScenarioMip`` elastic): a limit reachable only with more lines than the cap allows is short."""
    a = np.array([row.coefficients for row in rows], dtype=float)
    lo, hi = np.array([row.lower for row in rows]), np.array([row.upper for row in rows])
    mip = ScenarioMip([], d.lower, d.upper, d.unit_costs, (a, lo, hi), hedge_terms(d), mip_gap=mip_gap, elastic=True)
    slacks = mip.shortfalls(time.perf_counter() + time_limit)
    if slacks is None:
        return (("the elastic problem could not be solved", float("nan")),)
    s_lo, s_hi = slacks
    return tuple([(row.names[0], float(v)) for row, v in zip(rows, s_lo, strict=True) if v > ABS_TOL]
                 + [(row.names[1], float(v)) for row, v in zip(rows, s_hi, strict=True) if v > ABS_TOL])
