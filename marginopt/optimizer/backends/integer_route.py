r"""Integer hedges over large scenario sets: the relaxation on the scenario solver, then rounding
and repair (issue 17, item 4).

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
   (nearest lots) to about 1e-3, and the search below from it ends at 8e-4 (from nearest lots it
   stopped at a local optimum at 1.1e-3).
3. **repair**: while a linear or net-delta row is violated, the one-lot move that cuts the total
   violation most per unit of predicted objective increase.
4. **local search**: one lot up or down on one hedge (from 0 a step goes to the minimum trade
   and back), then on two hedges at once. ``f`` is convex, so with ``g`` a subgradient at ``h``
   no move with ``g'd + u'(|h + d| - |h|) >= 0`` can lower it; the others are tried in order of
   that prediction, and one is taken only when ``f`` over every scenario falls. The search
   stops at a local optimum, at the requested relative gap, or at the time limit.

What it guarantees: the plan is a whole number of lots, respects minimum trades, the box and the
limits, and its objective is exact over every scenario (verification recomputes it all on the full
scenario set); the bound is the continuous relaxation's ``z_LP`` and the gap ``f(plan) - z_LP``
bounds how far the plan is from the integer optimum. It is proven optimal (to the requested gap)
only when that gap closes within the requested gap: a local optimum of one- and two-lot moves need
not be the integer optimum, and the gap to the relaxation does not close where the integer optimum
itself lies above it by more (on the 100,000 x 200 hedge at lots of 0.25 every plan found, HiGHS's
MIP over the working set included, is about 1% above the relaxation: rounding 200 hedges by up to an
eighth of a unit adds risk no other hedge offsets). A hedge with a minimum trade and no lot size keeps its relaxed quantity (or
0 or the minimum, whichever is nearer); the search moves lotted hedges only. Only lots and
minimum trades are held here (``max_tickets`` is a cardinality the rounding does not keep).
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np

from marginopt.models.margin.shortfall import tail_mean, tail_weights
from marginopt.optimizer.backends.base import DEFAULT_GAP, DEFAULT_TIME_LIMIT, Certificate, Solution, SolveRequest
from marginopt.optimizer.backends.lot_dive import Grid, LotDive
from marginopt.optimizer.backends.scenario_route import ScenarioBackend
from marginopt.optimizer.description import Description
from marginopt.optimizer.executability import GAP_CLOSED, LOCAL_OPTIMUM, TIME_LIMIT, naive_rounding, whole_multiple
from marginopt.optimizer.verify import ABS_TOL, REL_TOL, Plan, Verification
from marginopt.solvers.column_view import ColumnView
from marginopt.solvers.scenario_terms import ScenarioTerm
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus
from marginopt.typing import FloatArray

HELD = ("hedges.lot_size", "hedges.min_trade")
PAIR_TRIALS = 400  # two-lot moves tried per round once no single move improves
GUARANTEE = ("a verified executable plan (lots, minimum trades, box and limits) with its objective exact over every "
             "scenario, and a lower bound from the continuous relaxation; proven optimal only when the gap closes "
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
            return (f"rounding and repair holds lot sizes and minimum trades only, not {', '.join(other)} (use the mip "
                    "backend below 20,000 scenarios)")
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
        search = LotSearch(lp.terms, d, res.h)  # the relaxation rounded to its nearest lots
        t1 = time.perf_counter()
        dive = LotDive(lp.terms, d, res.h)
        dived = dive.run(t0 + self.time_limit) if search.obj - lower > self.mip_gap * abs(search.obj) else None
        dive_s = time.perf_counter() - t1
        start = "nearest lots"
        if dived is not None:
            # The dive's plan keeps the limits (its LP holds them): the start where it is the better one.
            other = LotSearch(lp.terms, d, dived)
            if other.violation() <= 0.0 and (search.violation() > 0.0 or other.obj < search.obj):
                search, start = other, "dive"
        search.run(lower, self.mip_gap, t0 + self.time_limit)
        timed = time.perf_counter() >= t0 + self.time_limit  # else it stopped at the gap or a local optimum
        seconds = time.perf_counter() - t0
        note = (f"rounding and repair: {search.repairs} repair moves, {search.moves} improving moves, "
                f"{search.trials} exact evaluations")
        if dive.rounds:
            note += f"; started from the {start} (dive on the working set: {dive.rounds} rounds, {dive_s:.2f} s)"
        if search.violation() > 0.0:
            note += f"; no lot plan within the limits found (violation {search.violation():.6g} left)"
            attempts.append(Attempt("ROUNDING", SolveStatus.ERROR, seconds - relax_s, note))
            return Solution(SolveStatus.ERROR, self._report(SolveStatus.ERROR, attempts, seconds, res.iterations, request))
        attempts.append(Attempt("ROUNDING", SolveStatus.OPTIMAL, seconds - relax_s, note))
        plan = Plan(search.plan_hedges(), {})
        check: Verification | None = request.check(plan) if request.check is not None else None
        # The verified objective less the terms' (venues without hedges add a constant).
        offset = check.objective_value - search.obj if check is not None else 0.0
        incumbent = search.obj + offset
        bound = min(lower + offset, incumbent)
        relative = (incumbent - bound) / abs(incumbent) if incumbent != 0.0 else (0.0 if incumbent == bound else math.inf)
        proven = relative <= self.mip_gap
        stopped = GAP_CLOSED if proven else TIME_LIMIT if timed else LOCAL_OPTIMUM
        rounding: dict[str, Any] = {"continuous_optimum": res.objective + offset, "continuous_bound": lower + offset,
                                    "repair_moves": search.repairs, "improving_moves": search.moves,
                                    "relaxation_seconds": relax_s, "search_seconds": seconds - relax_s - dive_s,
                                    "dive_seconds": dive_s, "dive_rounds": dive.rounds, "start": start,
                                    "guarantee": GUARANTEE}
        # The naive rounding of the relaxation, by the one rule (``executability.naive_rounding``):
        # ``optimizer.api`` shows it, with the relaxation as the continuous optimum, and solves nothing again.
        extra: dict[str, Any] = {"relaxation": relaxed}
        naive_plan = naive_rounding(d, relaxed)
        naive_check = request.check(naive_plan) if request.check is not None else None
        if naive_check is not None:
            rounding.update(naive_objective=naive_check.objective_value, naive_feasible=naive_check.passed,
                            naive_failures=[c.name for c in naive_check.failures])
            extra["naive_rounding"] = (naive_plan, naive_check)
        certificate = Certificate("rounding and repair on the continuous relaxation (scenario generation)", search.moves,
                                  True, bound, incumbent - bound, self.relaxed.sizes(), incumbent=incumbent,
                                  relative_gap=relative, proven_optimal=proven, requested_gap=self.mip_gap,
                                  time_limit=self.time_limit, rounding=rounding, stopped=stopped)
        report = self._report(SolveStatus.OPTIMAL, attempts, seconds, res.iterations, request)
        extra["mip"] = certificate.to_dict()
        return Solution(SolveStatus.OPTIMAL, report, plan, check, certificate, extra=extra)

    def _report(self, status: SolveStatus, attempts: list[Attempt], seconds: float, iterations: int,
                request: SolveRequest) -> SolveReport:
        return SolveReport("SCENARIO", status, self.problem_class, self.build_seconds, seconds, tuple(attempts), iterations,
                           request.warm)

    def shadow_prices(self) -> dict[str, dict[str, float]]:
        return {"assets": {}, "venues": {}}  # a rounded plan has no duals


class LotSearch:
    """Lot counts of the hedges and the exact objective over the terms, updated move by move.

    Each term's losses over every scenario are kept and moved by a column of its matrix per
    move, so a move costs a column read and a tail (ES) or a maximum, not a product with the
    matrix. Terms are valued floored at zero, as the venues' margins are."""

    def __init__(self, terms: list[ScenarioTerm], d: Description, relaxed: FloatArray) -> None:
        self.terms = terms
        self.cost = d.unit_costs
        k = len(d.cands)
        self.grid = Grid.of(d)
        self.lots, self.lotted = self.grid.lots, self.grid.lotted
        self.n_lo, self.n_hi, self.min_n = self.grid.n_lo, self.grid.n_hi, self.grid.min_n
        # Where hedge j enters each term: (term, positions in its columns).
        self.where: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(k)]
        for t, term in enumerate(terms):
            for j in np.unique(term.cols):
                self.where[int(j)].append((t, np.flatnonzero(term.cols == j)))
        rows = d.limit_rows()
        self.a = np.zeros((0, k)) if rows is None else rows[0]
        self.row_lo = np.zeros(0) if rows is None else rows[1]
        self.row_hi = np.zeros(0) if rows is None else rows[2]
        finite = np.where(np.isfinite(self.row_lo), np.abs(self.row_lo), 0.0)
        finite = np.maximum(finite, np.where(np.isfinite(self.row_hi), np.abs(self.row_hi), 0.0))
        self.row_tol = 0.1 * (ABS_TOL + REL_TOL * finite)  # well inside verification's tolerance
        self.h = self._rounded(np.asarray(relaxed, dtype=float), [c.min_trade for c in d.cands])
        self.losses = [term.losses(self.h) for term in terms]
        self.values = [self._value(term, loss) for term, loss in zip(terms, self.losses, strict=True)]
        self.obj = self._total(self.values, self.h)
        self.ah = self.a @ self.h
        self.moves = self.repairs = self.trials = 0

    # -- values ---------------------------------------------------------------------
    def _rounded(self, h: FloatArray, minimum: list[float]) -> FloatArray:
        """Nearest lots inside the box; under the minimum trade, 0 or the minimum, the nearer."""
        out = h.copy()
        for j in range(len(h)):
            if math.isfinite(self.lots[j]):
                out[j] = self.grid.nearest(j, float(h[j])) * self.lots[j]
            elif 0.0 < abs(h[j]) < minimum[j]:
                out[j] = math.copysign(minimum[j], h[j]) if abs(h[j]) >= minimum[j] / 2 else 0.0
        return out

    @staticmethod
    def _value(term: ScenarioTerm, loss: FloatArray) -> float:
        v = tail_mean(loss, term.probs, 1.0 - term.alpha) if term.kind == "es" else float(np.max(term.probs * loss))
        return max(v, 0.0)

    def _total(self, values: list[float], h: FloatArray) -> float:
        return float(sum(t.weight * v for t, v in zip(self.terms, values, strict=True)) + self.cost @ np.abs(h))

    def subgradient(self) -> FloatArray:
        """A subgradient of the objective's margin terms at ``h`` (the cost's is taken move by move)."""
        g = np.zeros(len(self.h))
        for term, loss, value in zip(self.terms, self.losses, self.values, strict=True):
            if value <= 0.0 and self._raw(term, loss) < 0.0:
                continue  # the floor holds: zero is a subgradient
            if term.kind == "es":
                w = tail_weights(loss, term.probs, 1.0 - term.alpha)
                rows = np.flatnonzero(w)
                gt = w[rows] @ term.matrix[rows]
            else:
                s = int(np.argmax(term.probs * loss))
                gt = term.probs[s] * term.matrix[np.array([s])][0]
            np.add.at(g, term.cols, term.weight * np.asarray(gt, dtype=float))
        return g

    @staticmethod
    def _raw(term: ScenarioTerm, loss: FloatArray) -> float:
        return tail_mean(loss, term.probs, 1.0 - term.alpha) if term.kind == "es" else float(np.max(term.probs * loss))

    def _column(self, t: int, positions: np.ndarray) -> FloatArray:
        matrix = self.terms[t].matrix
        base, cols = (matrix.base, matrix.cols) if isinstance(matrix, ColumnView) else (matrix, np.arange(matrix.shape[1]))
        out: FloatArray = np.asarray(base[:, cols[positions[0]]], dtype=float)
        for p in positions[1:]:
            out = out + base[:, cols[p]]
        return out

    def trial(self, change: dict[int, float]) -> tuple[float, dict[int, tuple[FloatArray, float]]]:
        """The objective with hedge ``j`` moved by ``change[j]``, and each moved term's losses and value."""
        self.trials += 1
        moved: dict[int, FloatArray] = {}
        for j, dh in change.items():
            for t, positions in self.where[j]:
                moved[t] = (moved[t] if t in moved else self.losses[t]) + dh * self._column(t, positions)
        values = list(self.values)
        out = {}
        for t, loss in moved.items():
            values[t] = self._value(self.terms[t], loss)
            out[t] = (loss, values[t])
        h = self.h.copy()
        for j, dh in change.items():
            h[j] += dh
        return self._total(values, h), out

    def accept(self, change: dict[int, float], obj: float, terms: dict[int, tuple[FloatArray, float]]) -> None:
        for j, dh in change.items():
            n = round((self.h[j] + dh) / self.lots[j])
            self.h[j] = n * self.lots[j]
            self.ah = self.ah + self.a[:, j] * dh
        for t, (loss, value) in terms.items():
            self.losses[t], self.values[t] = loss, value
        self.obj = obj

    # -- moves ----------------------------------------------------------------------
    def step(self, j: int, direction: int) -> float | None:
        """The change of hedge ``j`` one lot in ``direction`` (through the minimum trade), or None at its box."""
        n = round(self.h[j] / self.lots[j])
        m = n + direction
        if 0 < abs(m) < self.min_n[j]:
            m = 0 if n != 0 else int(direction * self.min_n[j])
        if not self.n_lo[j] <= m <= self.n_hi[j]:
            return None
        return float(m * self.lots[j] - self.h[j])

    def violation(self, ah: FloatArray | None = None) -> float:
        ah = self.ah if ah is None else ah
        over = np.maximum(ah - self.row_hi - self.row_tol, 0.0) + np.maximum(self.row_lo - ah - self.row_tol, 0.0)
        return float(over.sum())

    def _predicted(self, g: FloatArray, j: int, dh: float) -> float:
        return float(g[j] * dh + self.cost[j] * (abs(self.h[j] + dh) - abs(self.h[j])))

    def _singles(self, g: FloatArray) -> list[tuple[float, int, float]]:
        out = []
        for j in self.lotted:
            for direction in (1, -1):
                dh = self.step(int(j), direction)
                if dh is not None:
                    out.append((self._predicted(g, int(j), dh), int(j), dh))
        return out

    def run(self, lower: float, gap: float, deadline: float) -> None:
        """Repair, then improve until a local optimum, the relative ``gap`` to ``lower`` or ``deadline``."""
        self._repair(deadline)
        if self.violation() > 0.0:
            return
        while time.perf_counter() < deadline and self.obj - lower > gap * abs(self.obj):
            g = self.subgradient()
            singles = self._singles(g)
            tol = 1e-12 * max(1.0, abs(self.obj))
            hopeful = sorted(s for s in singles if s[0] < -tol)
            if self._first_improvement([({j: dh}, p) for p, j, dh in hopeful], deadline):
                continue
            pairs = [({j1: d1, j2: d2}, p1 + p2) for p1, j1, d1 in hopeful for p2, j2, d2 in singles
                     if j2 != j1 and p1 + p2 < -tol]
            pairs.sort(key=lambda c: c[1])
            if not self._first_improvement(pairs[:PAIR_TRIALS], deadline):
                return

    def _first_improvement(self, moves: list[tuple[dict[int, float], float]], deadline: float) -> bool:
        tol = 1e-12 * max(1.0, abs(self.obj))
        for change, _ in moves:
            if time.perf_counter() >= deadline:
                return False
            if len(self.a) and self.violation(self.ah + sum(self.a[:, j] * dh for j, dh in change.items())) > 0.0:
                continue
            obj, terms = self.trial(change)
            if obj < self.obj - tol:
                self.accept(change, obj, terms)
                self.moves += 1
                return True
        return False

    def _repair(self, deadline: float) -> None:
        """One-lot moves that cut the limits' total violation, the cheapest per unit cut first."""
        limit = 10 * len(self.h) + 100
        while self.violation() > 0.0 and self.repairs < limit and time.perf_counter() < deadline:
            now, g = self.violation(), self.subgradient()
            best: tuple[float, int, float] | None = None
            for _, j, dh in self._singles(g):
                cut = now - self.violation(self.ah + self.a[:, j] * dh)
                if cut > 1e-12 * max(1.0, now):
                    score = max(self._predicted(g, j, dh), 0.0) / cut
                    if best is None or score < best[0]:
                        best = (score, j, dh)
            if best is None:
                return
            obj, terms = self.trial({best[1]: best[2]})
            self.accept({best[1]: best[2]}, obj, terms)
            self.repairs += 1

    def plan_hedges(self, h: FloatArray | None = None) -> FloatArray:
        """``h`` (the search's by default) with each lotted hedge a decimal multiple of its lot
        (3 lots of 0.1 are 0.3, not 0.30000000000000004)."""
        out = (self.h if h is None else h).copy()
        for j in self.lotted:
            count = round(out[j] / self.lots[j])
            out[j] = whole_multiple(0.0, float(self.lots[j]), count)
        return out
