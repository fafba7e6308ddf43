r"""Integer hedges with a cap on tickets over very many scenarios: scenario generation on a MIP.

``scenario_lp``'s program with the hedges' execution terms, every one exact:

    min  sum_t weight_t m_t + cost' (h+ + h-)
    s.t. ES term t:   m_t >= c_t + sum_{s in W_t} (p_s / beta) u_s,   u_s >= l0_s + L_s h - c_t,   u_s >= 0
         max term t:  m_t >= w_s (l0_s + L_s h)                        for s in W_t
         m_t >= 0                                                     (a venue's margin is floored at zero)
         h = h+ - h-,  m_j b+_j <= h+_j <= B_j b+_j,  m_j b-_j <= h-_j <= S_j b-_j,  b+_j + b-_j <= 1
         h_j = L_j n_j, n_j integer (a lot size)
         sum_j (b+_j + b-_j) <= T                                     (max_tickets)
         lower <= A h <= upper

``b+``, ``b-`` are binaries (a line bought, sold), ``m_j`` the minimum trade (0: none), and the big-M
``B_j``, ``S_j`` the hedge's own bounds (``max_buy``, ``max_sell``), for a lotted hedge the largest
whole number of lots within them: taken from the case, never guessed, so a hedge without a finite
bound is refused (``SolverError``). With the binaries exclusive, ``h+ + h-`` is ``|h|`` exactly.

Each ``W_t`` is a working set of scenarios (first: the relaxation's). Leaving a scenario out drops a
row (a maximum) or a non-negative term of the sum (ES, Rockafellar-Uryasev), so every MIP solved is
a relaxation of the integer problem over every scenario and HiGHS's best bound on it is a lower
bound on the integer optimum. Each MIP's plan is then valued over every scenario (an upper bound),
and the scenarios beyond its level (``loss_s > c_t``, ``w_s loss_s > m_t``) join ``W_t`` for the next
MIP, started from the best plan so far. When none is beyond, the plan's value over ``W`` is its value
over every scenario, and it is optimal within HiGHS's gap. The loop stops there, at the requested
relative gap between the best plan and the best bound, or at the deadline; the answer is the best
plan valued over every scenario, the best bound and whether it converged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import highspy
import numpy as np
import scipy.sparse as sp

from marginopt.errors import SolverError
from marginopt.models.margin.shortfall import quantile
from marginopt.solvers.highs import FEASIBLE_SOLUTION, Highs, quiet_highs
from marginopt.solvers.scenario_terms import ScenarioTerm, exact_objective
from marginopt.solvers.status import SolveStatus
from marginopt.solvers.working_set import cap, violated

INF = highspy.kHighsInf
MAX_ROUNDS = 50  # MIPs solved while scenarios join; past them the plan is not proven optimal
LIMITED = (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kSolutionLimit,
           highspy.HighsModelStatus.kIterationLimit, highspy.HighsModelStatus.kInterrupt)


@dataclass(frozen=True)
class HedgeTerms:
    """The hedges' execution terms: lot size (NaN: none), minimum trade (0: none), ticket cap (None: none)."""

    lots: np.ndarray
    min_trade: np.ndarray
    max_tickets: int | None


@dataclass
class MipResult:
    status: SolveStatus  # OPTIMAL (a plan: see converged and the gap), INFEASIBLE, LIMIT (no plan) or ERROR
    h: np.ndarray  # the best plan, lots whole (``L round(n)``)
    objective: float  # its exact objective over every scenario (an upper bound on the integer optimum)
    bound: float  # the best MIP bound (a lower bound on the integer optimum); -inf when none
    rounds: int  # MIPs solved
    nodes: int  # branch-and-bound nodes over every MIP
    converged: bool  # the last MIP's plan left no scenario beyond its level
    working: list[np.ndarray]  # per term: scenarios in the last MIP
    note: str = ""


@dataclass(frozen=True)
class _Layout:
    """Column indices of one MIP (``k`` hedges, ``nl`` lotted ones, then per term its value, threshold, tail)."""

    k: int
    lotted: np.ndarray
    m: list[int]
    c: list[int]  # -1 for a maximum
    u: list[np.ndarray]  # per term, the tail column of each working scenario (empty for a maximum)
    n_cols: int
    slack: np.ndarray  # the elastic problem's: below each limit row's lower bound, then above its upper

    def pos(self) -> np.ndarray:
        return np.arange(self.k)

    def neg(self) -> np.ndarray:
        return self.k + np.arange(self.k)

    def buy(self) -> np.ndarray:
        return 2 * self.k + np.arange(self.k)

    def sell(self) -> np.ndarray:
        return 3 * self.k + np.arange(self.k)

    def counts(self) -> np.ndarray:
        return 4 * self.k + np.arange(len(self.lotted))


class _Rows:
    """Rows in triplets: each block ``(rows x columns)`` with its bounds, stacked once."""

    def __init__(self) -> None:
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.n = 0

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Entries at ``rows`` (0-based within this block of ``len(lo)`` rows)."""
        self.r.append(np.asarray(rows, dtype=np.int64).ravel() + self.n)
        self.c.append(np.asarray(cols, dtype=np.int64).ravel())
        self.v.append(np.asarray(vals, dtype=float).ravel())
        self.lo.append(np.asarray(lo, dtype=float))
        self.hi.append(np.asarray(hi, dtype=float))
        self.n += len(lo)

    def matrix(self, n_cols: int) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray]:
        a = sp.coo_matrix((np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))), shape=(self.n, n_cols))
        return a.tocsc(), np.concatenate(self.lo), np.concatenate(self.hi)


class ScenarioMip:
    """The program above over ``terms`` (``ScenarioTerm``; their floors are put on: a margin is never
    negative), the box ``lb <= h <= ub``, ``cost`` per unit of ``|h|`` and ``linear`` rows ``(A, lower, upper)``."""

    def __init__(self, terms: Sequence[ScenarioTerm], lb: np.ndarray, ub: np.ndarray, cost: np.ndarray,
                 linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None, execution: HedgeTerms, *,
                 mip_gap: float, tol: float = 1e-9, elastic: bool = False) -> None:
        """``elastic``: no terms, and a slack on each side of each limit row, their sum minimized
        (``shortfalls``: what is short when no plan keeps to the terms and the limits)."""
        self.terms = [replace(t, floor=True) for t in terms]
        self.elastic = elastic
        self.lb, self.ub = np.asarray(lb, dtype=float), np.asarray(ub, dtype=float)
        self.cost = np.asarray(cost, dtype=float)
        self.linear = linear
        self.execution = execution
        self.mip_gap, self.tol = mip_gap, tol
        self.k = len(self.lb)
        lots = np.asarray(execution.lots, dtype=float)
        self.lotted = np.flatnonzero(np.isfinite(lots))
        self.lots = lots
        if not (np.isfinite(self.lb).all() and np.isfinite(self.ub).all()):
            j = int(np.flatnonzero(~(np.isfinite(self.lb) & np.isfinite(self.ub)))[0])
            raise SolverError(f"hedge {j} has no finite bound to take a big-M from", argument="hedges")
        size = np.where(np.isfinite(lots), lots, 1.0)
        self.n_lo = np.ceil(self.lb / size - 1e-9)
        self.n_hi = np.floor(self.ub / size + 1e-9)
        # The big-M of each side: the bound, for a lotted hedge its largest whole number of lots.
        self.big_buy = np.where(np.isfinite(lots), np.maximum(self.n_hi, 0.0) * size, np.maximum(self.ub, 0.0))
        self.big_sell = np.where(np.isfinite(lots), np.maximum(-self.n_lo, 0.0) * size, np.maximum(-self.lb, 0.0))
        self.min_trade = np.asarray(execution.min_trade, dtype=float)

    # -- the model -------------------------------------------------------------------
    def _hedge_part(self, rows: _Rows, lay: _Layout) -> tuple[list[float], list[float], list[float], list[int]]:
        """The hedges' columns (cost, lower, upper; integer indices) and rows: lines, lots, tickets, limits."""
        k, p, n, b, s = self.k, lay.pos(), lay.neg(), lay.buy(), lay.sell()
        nl = len(self.lotted)
        paid = np.zeros(k) if self.elastic else self.cost
        cost = [*paid, *paid, *np.zeros(2 * k), *np.zeros(nl)]
        lo = [*np.zeros(4 * k), *self.n_lo[self.lotted]]
        hi = [*self.big_buy, *self.big_sell, *(self.big_buy > 0.0).astype(float), *(self.big_sell > 0.0).astype(float),
              *self.n_hi[self.lotted]]
        integer = [*b, *s, *lay.counts()]
        one, at = np.ones(k), np.arange(k)
        for side, binary, big in ((p, b, self.big_buy), (n, s, self.big_sell)):
            # side - big * binary <= 0;  side - min_trade * binary >= 0
            rows.add(np.r_[at, at], np.r_[side, binary], np.r_[one, -big], np.full(k, -INF), np.zeros(k))
            rows.add(np.r_[at, at], np.r_[side, binary], np.r_[one, -self.min_trade], np.zeros(k), np.full(k, INF))
        rows.add(np.r_[at, at], np.r_[b, s], np.ones(2 * k), np.full(k, -INF), np.ones(k))
        if nl:
            at_l = np.arange(nl)
            rows.add(np.r_[at_l, at_l, at_l], np.r_[p[self.lotted], n[self.lotted], lay.counts()],
                     np.r_[np.ones(nl), -np.ones(nl), -self.lots[self.lotted]], np.zeros(nl), np.zeros(nl))
        if self.execution.max_tickets is not None:
            rows.add(np.zeros(2 * k), np.r_[b, s], np.ones(2 * k), np.array([-INF]), np.array([float(self.execution.max_tickets)]))
        if self.linear is not None:
            a, alo, ahi = self.linear
            r, j = np.nonzero(a)
            at_r, cols, vals = np.r_[r, r], np.r_[p[j], n[j]], np.r_[a[r, j], -a[r, j]]
            if self.elastic:  # A h + s_lo - s_hi within the bounds
                nr = len(alo)
                at_r = np.r_[at_r, np.arange(nr), np.arange(nr)]
                cols, vals = np.r_[cols, lay.slack], np.r_[vals, np.ones(nr), -np.ones(nr)]
            rows.add(at_r, cols, vals, alo, ahi)
        return cost, lo, hi, integer

    def _model(self, working: list[np.ndarray]) -> tuple[highspy.HighsLp, _Layout]:
        k, rows = self.k, _Rows()
        nl = len(self.lotted)
        first = 4 * k + nl
        n_slack = 2 * len(self.linear[1]) if self.elastic and self.linear is not None else 0
        slack = first + np.arange(n_slack)
        m_cols, c_cols, u_cols, col = [], [], [], first + n_slack
        for term, w in zip(self.terms, working, strict=True):
            m_cols.append(col)
            col += 1
            if term.kind == "es":
                c_cols.append(col)
                u_cols.append(col + 1 + np.arange(len(w)))
                col += 1 + len(w)
            else:
                c_cols.append(-1)
                u_cols.append(np.zeros(0, dtype=np.int64))
        lay = _Layout(k, self.lotted, m_cols, c_cols, u_cols, col, slack)
        cost, lo, hi, integer = self._hedge_part(rows, lay)
        cost, lo, hi = cost + [1.0] * n_slack, lo + [0.0] * n_slack, hi + [INF] * n_slack
        for t, (term, w) in enumerate(zip(self.terms, working, strict=True)):
            cost += [term.weight]
            lo += [0.0]
            hi += [INF]
            self._scenario_rows(rows, lay, t, term, w)
            if term.kind == "es":
                cost += [0.0] * (1 + len(w))
                lo += [-INF] + [0.0] * len(w)
                hi += [INF] * (1 + len(w))
        a, rlo, rhi = rows.matrix(lay.n_cols)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = lay.n_cols, a.shape[0]
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.array(cost), np.array(lo), np.array(hi)
        lp.row_lower_, lp.row_upper_ = rlo, rhi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
        kinds = [highspy.HighsVarType.kContinuous] * lay.n_cols
        for c in integer:
            kinds[int(c)] = highspy.HighsVarType.kInteger
        lp.integrality_ = kinds
        return lp, lay

    def _scenario_rows(self, rows: _Rows, lay: _Layout, t: int, term: ScenarioTerm, w: np.ndarray) -> None:
        """A term's definition row and a row per working scenario, on ``h = h+ - h-``."""
        cols = np.asarray(term.cols)
        pc, nc = lay.pos()[cols], lay.neg()[cols]
        ns = len(w)
        block = np.asarray(term.matrix[w], dtype=float).reshape(ns, len(cols))
        at = np.repeat(np.arange(ns), len(cols))
        if term.kind == "es":
            beta = 1.0 - term.alpha
            # m - c - sum (p_s / beta) u_s >= 0
            rows.add(np.zeros(2 + ns), np.r_[lay.m[t], lay.c[t], lay.u[t]], np.r_[1.0, -1.0, -term.probs[w] / beta],
                     np.zeros(1), np.full(1, INF))
            # u_s + c - L_s (h+ - h-) >= l0_s
            lead = np.repeat(np.arange(ns), 2)
            rows.add(np.r_[lead, at, at], np.r_[np.column_stack([lay.u[t], np.full(ns, lay.c[t])]).ravel(),
                                                np.tile(pc, ns), np.tile(nc, ns)],
                     np.r_[np.ones(2 * ns), -block.ravel(), block.ravel()], term.offset[w], np.full(ns, INF))
        else:
            weight = term.probs[w]
            scaled = weight[:, None] * block
            # m - w_s L_s (h+ - h-) >= w_s l0_s
            rows.add(np.r_[np.arange(ns), at, at], np.r_[np.full(ns, lay.m[t]), np.tile(pc, ns), np.tile(nc, ns)],
                     np.r_[np.ones(ns), -scaled.ravel(), scaled.ravel()], weight * term.offset[w], np.full(ns, INF))

    # -- plans -------------------------------------------------------------------------
    def plan(self, col: np.ndarray, lay: _Layout) -> np.ndarray:
        """The MIP's hedges with its integers whole: ``L round(n)``, and a line whose binaries are both 0 none."""
        h: np.ndarray = col[lay.pos()] - col[lay.neg()]
        if len(self.lotted):
            h[self.lotted] = self.lots[self.lotted] * np.round(col[lay.counts()])
        idle = (np.round(col[lay.buy()]) + np.round(col[lay.sell()])) == 0
        h[idle] = 0.0
        return h

    def value(self, h: np.ndarray) -> float:
        """The objective at ``h`` over every scenario (margins floored at zero)."""
        return exact_objective(self.terms, h, self.cost)[0]

    def keeps(self, h: np.ndarray) -> bool:
        """``h`` within the box, the lots, the minimum trades, the ticket cap and the limits (a start HiGHS
        need not repair: HiGHS 1.16, handed one it must repair, returned another plan than it reported)."""
        traded = h != 0.0
        size = np.where(np.isfinite(self.lots), self.lots, 1.0)
        whole = np.abs(h / size - np.round(h / size)) <= 1e-9
        ok = bool(np.all(h >= self.lb - 1e-9) and np.all(h <= self.ub + 1e-9) and np.all(whole[self.lotted])
                  and np.all(~traded | (np.abs(h) >= self.min_trade - 1e-9)))
        if self.execution.max_tickets is not None:
            ok = ok and int(traded.sum()) <= self.execution.max_tickets
        if ok and self.linear is not None:
            a, lo, hi = self.linear
            ah = a @ h
            ok = bool(np.all(ah >= lo - 1e-7 * (1.0 + np.abs(lo))) and np.all(ah <= hi + 1e-7 * (1.0 + np.abs(hi))))
        return ok

    def start_columns(self, h: np.ndarray, lay: _Layout, working: list[np.ndarray]) -> np.ndarray:
        """The MIP's columns at the plan ``h``: its lines, lots, and each term's value over ``W`` with the
        threshold at the term's value-at-risk over every scenario (any threshold keeps the rows)."""
        col = np.zeros(lay.n_cols)
        col[lay.pos()], col[lay.neg()] = np.maximum(h, 0.0), np.maximum(-h, 0.0)
        col[lay.buy()], col[lay.sell()] = (h > 0.0).astype(float), (h < 0.0).astype(float)
        if len(self.lotted):
            col[lay.counts()] = np.round(h[self.lotted] / self.lots[self.lotted])
        for t, (term, w) in enumerate(zip(self.terms, working, strict=True)):
            loss = term.losses(h)
            if term.kind == "es":
                c = quantile(loss, term.probs, term.alpha)
                tail = np.maximum(loss[w] - c, 0.0)
                col[lay.c[t]], col[lay.u[t]] = c, tail
                col[lay.m[t]] = max(c + float(term.probs[w] @ tail) / (1.0 - term.alpha), 0.0)
            else:
                col[lay.m[t]] = max(float(np.max(term.probs[w] * loss[w], initial=-math.inf)), 0.0)
        return col

    # -- the loop ------------------------------------------------------------------------
    def solve(self, working: list[np.ndarray], deadline: float, start: np.ndarray | None = None) -> MipResult:
        """Scenario generation from the working sets ``working`` (one per term), started from the plan
        ``start`` where it keeps to every term, until converged, the gap or ``deadline``."""
        working = [np.unique(np.asarray(w, dtype=np.int64)) for w in working]
        best_h: np.ndarray | None = None
        best = math.inf
        if start is not None and self.keeps(start):
            best_h, best = start.copy(), self.value(start)
        bound, rounds, nodes, converged, note = -math.inf, 0, 0, False, ""
        while rounds < MAX_ROUNDS:
            left = deadline - time.perf_counter()
            if left <= 0.0:
                note = "time limit"
                break
            lp, lay = self._model(working)
            hs = self._highs(left)
            hs.passModel(lp)
            started = best_h is not None
            if best_h is not None:
                sol = highspy.HighsSolution()
                sol.col_value = self.start_columns(best_h, lay, working)
                hs.setSolution(sol)
            hs.run()
            rounds += 1
            info = hs.getInfo()
            if started and _misread(hs, lp):
                hs = self._highs(max(deadline - time.perf_counter(), 1e-3))  # solved again without the start
                hs.passModel(lp)
                hs.run()
                info = hs.getInfo()
            nodes += int(info.mip_node_count)
            model = hs.getModelStatus()
            found = int(info.primal_solution_status) == FEASIBLE_SOLUTION
            if model in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
                # Scenario rows never bind h (m and u rise): the lots, lines and limits admit no plan.
                return MipResult(SolveStatus.INFEASIBLE, np.zeros(self.k), math.nan, math.inf, rounds, nodes, False, working,
                                 "no plan keeps to the lots, minimum trades, ticket cap and limits")
            if model != highspy.HighsModelStatus.kOptimal and not (model in LIMITED and found):
                note = f"HiGHS: {hs.modelStatusToString(model)}"
                break
            mip_bound = float(info.mip_dual_bound)
            if not math.isfinite(mip_bound) and model == highspy.HighsModelStatus.kOptimal:
                mip_bound = float(info.objective_function_value)
            bound = max(bound, mip_bound)
            if not found:
                break
            col = np.asarray(hs.getSolution().col_value, dtype=float)
            h = self.plan(col, lay)
            value = self.value(h)
            if value < best:
                best_h, best = h, value
            added = self._violated(h, col, lay, working)
            converged = not added and model == highspy.HighsModelStatus.kOptimal
            if model != highspy.HighsModelStatus.kOptimal:
                note = "time limit"
                break
            if not added or best - bound <= self.mip_gap * abs(best):
                break
        if best_h is None:
            return MipResult(SolveStatus.LIMIT if note == "time limit" else SolveStatus.ERROR, np.zeros(self.k), math.nan,
                             bound, rounds, nodes, False, working, note or "no plan found")
        return MipResult(SolveStatus.OPTIMAL, best_h, best, min(bound, best), rounds, nodes, converged, working, note)

    def shortfalls(self, deadline: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The elastic problem's slacks (below each limit row's lower bound, above its upper), or None
        when HiGHS does not solve it."""
        assert self.elastic and not self.terms
        lp, lay = self._model([])
        hs = self._highs(deadline - time.perf_counter())
        hs.passModel(lp)
        hs.run()
        if hs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        col = np.asarray(hs.getSolution().col_value, dtype=float)
        half = len(lay.slack) // 2
        return col[lay.slack[:half]], col[lay.slack[half:]]

    def _violated(self, h: np.ndarray, col: np.ndarray, lay: _Layout, working: list[np.ndarray]) -> int:
        """Add to ``working`` the scenarios beyond the MIP's level at ``h`` (at most a round's cap per term)."""
        added = 0
        for t, term in enumerate(self.terms):
            loss = term.losses(h)
            level = col[lay.c[t]] if term.kind == "es" else col[lay.m[t]]
            excess = (loss if term.kind == "es" else term.probs * loss) - level
            in_lp = np.zeros(len(loss), dtype=bool)
            in_lp[working[t]] = True
            viol = violated(excess, loss, in_lp, self.tol, cap(term))
            if viol.size:
                working[t] = np.union1d(working[t], viol)
                added += viol.size
        return added

    def _highs(self, time_limit: float) -> Highs:
        hs = quiet_highs()
        hs.setOptionValue("mip_rel_gap", self.mip_gap)
        hs.setOptionValue("time_limit", max(time_limit, 1e-3))
        return hs


def _misread(hs: Highs, lp: highspy.HighsLp) -> bool:
    """The plan HiGHS returns costs more than the objective it reports for it (HiGHS 1.16 can value a
    start in its presolved space below its own cost: ``backends/direct_mip.py``)."""
    if int(hs.getInfo().primal_solution_status) != FEASIBLE_SOLUTION:
        return False
    cost = float(np.asarray(lp.col_cost_) @ np.asarray(hs.getSolution().col_value))
    reported = float(hs.getInfo().objective_function_value)
    return cost > reported + 1e-9 * (1.0 + abs(reported))
