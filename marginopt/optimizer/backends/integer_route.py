r"""Integer hedges over large scenario sets: the relaxation on the scenario solver, then rounding
and repair, or with a cap on tickets a MIP over generated scenarios (issue 17, item 4).

The problem is the scenario route's (``backends/scenario_route.py``)

    min  f(h) = sum_t w_t M_t(l0_t + L_t h) + u'|h|   over the box and ``lower <= A h <= upper``

with the hedges' execution terms: ``h_c = L_c n_c``, ``n_c`` integer (``lot_size``), and
``h_c = 0`` or ``|h_c| >= m_c`` (``min_trade``). From 20,000 scenarios a whole MIP (a row per
scenario, an integer per hedge) is out of reach (``backends/mip.py`` refuses it), so:

1. **relaxation**: the program without integrality, by scenario generation. Its lower bound
   ``z_LP`` is a lower bound on the integer optimum too.
2. **rounding**: each lotted hedge to its nearest whole number of lots inside its box; a count
   under the minimum trade to 0 or to the minimum, whichever is nearer. Where that is not within
   the requested gap, a **dive** (``backends/lot_dive.py``) on a small exact model of the terms
   around the relaxation's working set (the scenarios nearest each VaR with rows, the deeper tail
   folded into one): lots fixed a batch at a time, the nearest a whole lot first, the rest solved
   again, which takes up what the rounding moved; scenarios that break the model at its plan join
   it and it dives again. Its plan is the start where it is the better one (exact objective, limits
   kept). On the 100,000 x 200 hedge at lots of 0.05 the start went from 4.2e-3 of the bound
   (nearest lots) to about 1e-3, and the search below from it ends at 8e-4.
3. **repair**: while a linear or net-delta row is violated, the one-lot move that cuts the total
   violation most per unit of predicted objective increase.
4. **local search**: one lot up or down on one hedge (from 0 a step goes to the minimum trade
   and back), then on two hedges at once. ``f`` is convex, so with ``g`` a subgradient at ``h``
   no move with ``g'd + u'(|h + d| - |h|) >= 0`` can lower it; the others are tried in order of
   that prediction, and one is taken only when ``f`` over every scenario falls. The search
   stops at a local optimum, at the requested relative gap, or at the time limit.

What it guarantees: the plan is a whole number of lots, respects minimum trades, the box and the
limits, and its objective is exact over every scenario (verification recomputes it all); the gap
``f(plan) - z_LP`` bounds how far it is from the integer optimum. It is proven optimal only when
that gap closes within the requested gap: a local optimum of one- and two-lot moves need not be
the integer optimum, and the gap to the relaxation does not close where the integer optimum itself
lies above it by more (on the 100,000 x 200 hedge at lots of 0.25 every plan found, HiGHS's MIP over
the working set included, is about 1% above the relaxation: rounding 200 hedges by up to an eighth
of a unit adds risk no other hedge offsets). A hedge with a minimum trade and no lot size keeps its relaxed quantity (or
0 or the minimum, whichever is nearer); the search moves lotted hedges only.

**A cap on tickets** (``execution.max_tickets``: non-zero hedge lines) is a cardinality no rounding
keeps, and with it the relaxation's bound is weak (the relaxation trades every line). It is held
exactly: after the relaxation, ``solvers.scenario_mip`` solves the MIP with a pair of binaries per
line (bought, sold) whose big-M bounds are the case's (``max_buy`` and ``max_sell``, for a lotted
hedge its largest whole number of lots within them; a hedge without a finite bound is refused,
``why_not``), the lots as integers and the minimum trades on the binaries, over the relaxation's
working sets of scenarios, adding the scenarios its plan leaves beyond its level and solving again.
Each of those MIPs is a relaxation of the integer problem over every scenario, so its best bound is
a lower bound on the integer optimum; each plan is valued over every scenario. HiGHS starts from
the best first plan of ``backends/ticket_cap.py`` (relax and fix by halving the lines traded, the
naive rounding cut to the cap, no trade). Guarantee: the same verified plan, and the gap to the best of the MIPs' bounds and the
relaxation's; proven optimal when that closes within the requested gap (it does when no scenario is
left beyond the last MIP's level and HiGHS proved that MIP). Its size is the working sets' scenarios
times the hedges, densely: a MIP HiGHS may not finish within the time limit at 100,000 x 200 (the
best plan so far, valued over every scenario, is then the answer, with its gap).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from marginopt.optimizer.backends.base import DEFAULT_GAP, DEFAULT_TIME_LIMIT, Certificate, Solution, SolveRequest
from marginopt.optimizer.backends.lot_dive import LotDive
from marginopt.optimizer.backends.lot_search import LotSearch
from marginopt.optimizer.backends.scenario_route import ScenarioBackend
from marginopt.optimizer.backends.ticket_cap import shortfalls_within_tickets, solve_within_tickets
from marginopt.optimizer.description import Description
from marginopt.optimizer.executability import GAP_CLOSED, LOCAL_OPTIMUM, TIME_LIMIT, naive_rounding, whole_multiple
from marginopt.optimizer.verify import ABS_TOL, Plan, Verification
from marginopt.solvers.scenario_terms import ScenarioTerm
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus
from marginopt.typing import FloatArray

HELD = ("hedges.lot_size", "hedges.min_trade", "execution.max_tickets")
GUARANTEE = ("a verified executable plan (lots, minimum trades, box and limits) with its objective exact over every "
             "scenario, and a lower bound from the continuous relaxation; proven optimal only when the gap closes "
             "within the requested gap")
TICKETS_GUARANTEE = ("a verified executable plan (lots, minimum trades, ticket cap, box and limits) with its objective exact "
                     "over every scenario; each MIP, over a subset of the scenarios, is a relaxation of the integer problem, "
                     "so its best bound is a lower bound on the integer optimum; proven optimal only when the gap closes "
                     "within the requested gap")


class IntegerBackend:
    """Relaxation on the scenario route, then rounding, repair and a local search on lots."""

    name: ClassVar[str] = "integer"
    fallback: ClassVar[str | None] = None
    holds_execution_terms: ClassVar[bool] = True
    problem_class = ProblemClass.MILP

    def __init__(self, description: Description, elastic: bool = False, mip_gap: float | None = None,
                 time_limit: float | None = None) -> None:
        t0 = time.perf_counter()
        self.description = description
        self.elastic = elastic
        self.mip_gap = DEFAULT_GAP if mip_gap is None else float(mip_gap)
        self.time_limit = DEFAULT_TIME_LIMIT if time_limit is None else float(time_limit)
        self.relaxed = ScenarioBackend(description)
        self.build_seconds = time.perf_counter() - t0

    @classmethod
    def why_not(cls, description: Description) -> str | None:
        other = [t for t in description.execution_terms if t not in HELD]
        if other:
            return (f"the integer route holds lot sizes, minimum trades and ticket caps only, not {', '.join(other)} "
                    "(use the mip backend below 20,000 scenarios)")
        if "execution.max_tickets" in description.execution_terms:
            for c in description.cands:  # every line carries the binaries of the ticket count
                if not (math.isfinite(c.max_buy) and math.isfinite(c.max_sell)):
                    return f"hedge {c.venue}:{c.instrument} has no finite bound to take a big-M from"
        reason = ScenarioBackend.why_not(description)
        return None if reason is None else f"its relaxation goes to the scenario solver, which cannot hold it: {reason}"

    def update(self, description: Description) -> None:
        t0 = time.perf_counter()
        self.description = description
        self.relaxed.update(description)  # the working sets carry over
        self.build_seconds = time.perf_counter() - t0

    def shortfalls(self, solver: str | None) -> tuple[tuple[str, float], ...]:
        """What is short when the relaxation is infeasible. Its margins bind nothing (``min_margin``
        keeps them in the objective), so only the limits on the hedges' box can be: the elastic LP
        ``min sum(s) : lower - s_lo <= A h <= upper + s_hi`` over the box says by how much."""
        from scipy.optimize import linprog

        d = self.description
        rows = d.linear_rows() + d.net_delta_rows()
        if not rows:
            return ()
        if d.case.execution.max_tickets is not None:
            return shortfalls_within_tickets(d, rows, self.mip_gap, self.time_limit)
        k, r = len(d.cands), len(rows)
        a = np.array([row.coefficients for row in rows], dtype=float)
        lo, hi = np.array([row.lower for row in rows]), np.array([row.upper for row in rows])
        # Variables (h, s_lo, s_hi); A h - s_hi <= upper and -A h - s_lo <= -lower, finite sides only.
        eye, zero = np.eye(r), np.zeros((r, r))
        ub_rows = np.vstack([np.hstack([a, zero, -eye]), np.hstack([-a, -eye, zero])])
        ub = np.concatenate([hi, -lo])
        keep = np.isfinite(ub)
        cost = np.concatenate([np.zeros(k), np.ones(2 * r)])
        bounds = [(float(x), float(y)) for x, y in zip(d.lower, d.upper, strict=True)] + [(0.0, None)] * (2 * r)
        res = linprog(cost, A_ub=ub_rows[keep], b_ub=ub[keep], bounds=bounds, method="highs")
        if res.status != 0:
            return (("the elastic problem could not be solved", float("nan")),)
        s_lo, s_hi = res.x[k:k + r], res.x[k + r:]
        tol = ABS_TOL
        return tuple([(row.names[0], float(v)) for row, v in zip(rows, s_lo, strict=True) if v > tol]
                     + [(row.names[1], float(v)) for row, v in zip(rows, s_hi, strict=True) if v > tol])

    # -- solving -------------------------------------------------------------------
    def solve(self, request: SolveRequest) -> Solution:
        t0 = time.perf_counter()
        d = self.description
        res = self.relaxed.relaxation()
        lp = self.relaxed.lp
        assert lp is not None
        relax_s = time.perf_counter() - t0
        attempts = [Attempt("SCENARIO", res.status, relax_s,
                            f"continuous relaxation ({lp.method} LP), {res.iterations} rounds")]
        if res.status is not SolveStatus.OPTIMAL:
            status = SolveStatus.INFEASIBLE if res.status is SolveStatus.INFEASIBLE else SolveStatus.ERROR
            return Solution(status, self._report(status, attempts, time.perf_counter() - t0, res.iterations, request))
        lower = min(res.lower_bound, res.objective)
        relaxed = Plan(np.asarray(res.h, dtype=float).copy(), {})
        naive_plan = naive_rounding(d, relaxed)
        if d.case.execution.max_tickets is not None:
            found = self._tickets(lp.terms, res.h, naive_plan.hedges, lower, t0)
        else:
            found = self._lots(lp.terms, res.h, lower, t0)
        timed = time.perf_counter() >= t0 + self.time_limit  # else it stopped at the gap or a local optimum
        seconds = time.perf_counter() - t0
        if found.failure is not None:
            attempts.append(Attempt(found.solver, found.failure, seconds - relax_s, found.note))
            return Solution(found.failure, self._report(found.failure, attempts, seconds, res.iterations, request))
        attempts.append(Attempt(found.solver, SolveStatus.OPTIMAL, seconds - relax_s, found.note))
        plan = Plan(decimal_lots(d, found.h), {})
        check: Verification | None = request.check(plan) if request.check is not None else None
        # The verified objective less the terms' (venues without hedges add a constant).
        offset = check.objective_value - found.objective if check is not None else 0.0
        incumbent = found.objective + offset
        bound = min(max(lower, found.bound) + offset, incumbent)
        relative = (incumbent - bound) / abs(incumbent) if incumbent != 0.0 else (0.0 if incumbent == bound else math.inf)
        proven = relative <= self.mip_gap
        stopped = GAP_CLOSED if proven else TIME_LIMIT if timed else LOCAL_OPTIMUM
        rounding: dict[str, Any] = {"continuous_optimum": res.objective + offset, "continuous_bound": lower + offset,
                                    **found.counts, "relaxation_seconds": relax_s, "search_seconds": seconds - relax_s,
                                    "guarantee": found.guarantee}
        # The naive rounding of the relaxation, by the one rule (``executability.naive_rounding``):
        # ``optimizer.api`` shows it, with the relaxation as the continuous optimum, and solves nothing again.
        extra: dict[str, Any] = {"relaxation": relaxed}
        naive_check = request.check(naive_plan) if request.check is not None else None
        if naive_check is not None:
            rounding.update(naive_objective=naive_check.objective_value, naive_feasible=naive_check.passed,
                            naive_failures=[c.name for c in naive_check.failures])
            extra["naive_rounding"] = (naive_plan, naive_check)
        sizes = self.relaxed.sizes() if found.working is None else self._sizes(found.working)
        certificate = Certificate(found.method, found.rounds, found.converged, bound, incumbent - bound, sizes,
                                  incumbent=incumbent, relative_gap=relative, proven_optimal=proven,
                                  requested_gap=self.mip_gap, time_limit=self.time_limit, outer_rounds=found.outer_rounds,
                                  rounding=rounding, stopped=stopped)
        report = self._report(SolveStatus.OPTIMAL, attempts, seconds, res.iterations, request)
        extra["mip"] = certificate.to_dict()
        return Solution(SolveStatus.OPTIMAL, report, plan, check, certificate, extra=extra)

    def _lots(self, terms: list[ScenarioTerm], relaxed: FloatArray, lower: float, t0: float) -> _Found:
        """Lots and minimum trades: rounding, repair and the local search (module docstring), started from the
        better of the relaxation's nearest lots and the dive on the working set (``backends/lot_dive.py``)."""
        d = self.description
        search = LotSearch(terms, d, relaxed)  # the relaxation rounded to its nearest lots
        t1 = time.perf_counter()
        dive = LotDive(terms, d, relaxed)
        dived = dive.run(t0 + self.time_limit) if search.obj - lower > self.mip_gap * abs(search.obj) else None
        dive_s = time.perf_counter() - t1
        start = "nearest lots"
        if dived is not None:
            # The dive's plan keeps the limits (its LP holds them): the start where it is the better one.
            other = LotSearch(terms, d, dived)
            if other.violation() <= 0.0 and (search.violation() > 0.0 or other.obj < search.obj):
                search, start = other, "dive"
        search.run(lower, self.mip_gap, t0 + self.time_limit)
        note = (f"rounding and repair: {search.repairs} repair moves, {search.moves} improving moves, "
                f"{search.trials} exact evaluations")
        if dive.rounds:
            note += f"; started from the {start} (dive on the working set: {dive.rounds} rounds, {dive_s:.2f} s)"
        counts = {"repair_moves": search.repairs, "improving_moves": search.moves, "dive_seconds": dive_s,
                  "dive_rounds": dive.rounds, "start": start}
        if search.violation() > 0.0:
            note += f"; no lot plan within the limits found (violation {search.violation():.6g} left)"
            return _Found("ROUNDING", search.h, math.nan, -math.inf, note, counts, "", GUARANTEE, 0, False, SolveStatus.ERROR)
        return _Found("ROUNDING", search.h, search.obj, -math.inf, note, counts,
                      "rounding and repair on the continuous relaxation (scenario generation)", GUARANTEE, search.moves, True)

    def _tickets(self, terms: list[ScenarioTerm], relaxed: FloatArray, naive: FloatArray, lower: float, t0: float) -> _Found:
        """A cap on tickets: scenario generation on the MIP with binaries (``backends/ticket_cap.py``)."""
        lp = self.relaxed.lp
        assert lp is not None
        res, first = solve_within_tickets(self.description, terms, lp.working, relaxed, naive, lower, self.mip_gap,
                                          t0 + self.time_limit)
        note = (f"scenario generation on a MIP: {res.rounds} MIPs, {res.nodes} nodes, "
                f"{sum(len(w) for w in res.working)} scenarios in the last; {first}" + (f"; {res.note}" if res.note else ""))
        counts = {"mip_rounds": res.rounds, "mip_nodes": res.nodes, "converged": res.converged}
        failure = None if res.status is SolveStatus.OPTIMAL else res.status
        return _Found("HIGHS", res.h, res.objective, res.bound, note, counts,
                      "scenario generation on a MIP (HiGHS branch and bound) from the continuous relaxation",
                      TICKETS_GUARANTEE, res.nodes, res.converged, failure, res.rounds, res.working)

    def _sizes(self, working: list[np.ndarray]) -> dict[str, int]:
        """Scenarios in the last MIP, per venue (the relaxation's terms, in order)."""
        out: dict[str, int] = {}
        for venue, w in zip(self.relaxed.venues, working, strict=True):
            out[venue] = out.get(venue, 0) + len(w)
        return out

    def _report(self, status: SolveStatus, attempts: list[Attempt], seconds: float, iterations: int,
                request: SolveRequest) -> SolveReport:
        return SolveReport("SCENARIO", status, self.problem_class, self.build_seconds, seconds, tuple(attempts), iterations,
                           request.warm)

    def shadow_prices(self) -> dict[str, dict[str, float]]:
        return {"assets": {}, "venues": {}}  # a rounded plan has no duals


def decimal_lots(d: Description, h: FloatArray) -> FloatArray:
    """``h`` with each lotted hedge a decimal multiple of its lot (3 lots of 0.1 are 0.3, not
    0.30000000000000004)."""
    out = np.asarray(h, dtype=float).copy()
    for j, c in enumerate(d.cands):
        if c.lot_size is not None:
            out[j] = whole_multiple(0.0, c.lot_size, round(out[j] / c.lot_size))
    return out


@dataclass(frozen=True)
class _Found:
    """What a search on the relaxation found: the plan, its objective over the terms (exact), a lower
    bound of its own (-inf: the relaxation's only), and what the certificate says of it."""

    solver: str
    h: FloatArray
    objective: float
    bound: float
    note: str
    counts: dict[str, Any]
    method: str
    guarantee: str
    rounds: int
    converged: bool
    failure: SolveStatus | None = None
    outer_rounds: int | None = None  # MIPs solved (the ticket cap's scenario generation)
    working: list[np.ndarray] | None = None  # their last working sets, per term
