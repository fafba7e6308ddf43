r"""The dual of the expected-shortfall program, solved by column generation.

For ``min_h sum_g w_g ES_g(l0_g + L_g h) + cost'|h|`` with box bounds and linear rows
``lo <= A h <= hi``, the LP dual has one column per scenario and only ``#terms + K``
rows (Ogryczak and Sliwinski): the simplex basis stays small however many scenarios
enter, where the primal's grows with every scenario row.

    max  sum_s mu_s l0_s + sum_r (nu+_r lo_r - nu-_r hi_r) - sum_k f_k*(-y_k)
    s.t. sum_{s in g} mu_s = w_g,   0 <= mu_s <= w_g p_s / beta_g,   nu+- >= 0
    where y = sum_s mu_s L_s - A'(nu+ - nu-) and f_k*(q) = sup_{lb <= h <= ub} (q h - cost_k |h|).

f_k* is piecewise linear in q (slope lb below -cost, 0 between when h = 0 is allowed, ub
above +cost), so it is written with bounded columns in hedge k's row: -y_k = z + a - b,
z in [-cost, cost], a costing ub, b costing -lb; an infinite bound drops its column.

Minimizing the negated objective, the hedge rows' duals are h and the term rows' duals
give each term's VaR level ``c_g``. A scenario outside the working set enters when
``l0_s + L_s h - c_g > 0`` (its reduced cost), as in the primal generation. Restricting
columns of a maximization gives a lower bound; the exact objective at ``h`` is the upper
bound.

Each restricted LP is solved by ``solvers.dense_ipm`` (the default) or HiGHS's dual
simplex (warm from the last basis). An interior point is not a vertex, so its lower bound
is not read off the iterate but recomputed from its scenario weights (``dual_bound``),
made exactly dual-feasible first. An interior-point round costs the same whatever it adds,
so it also takes the scenarios nearest to violating (``AHEAD``).
"""

from __future__ import annotations

import math
import time

import highspy
import numpy as np
import scipy.sparse as sp

from marginopt.solvers import dense_ipm
from marginopt.solvers.highs import Highs, quiet_highs, run_lp
from marginopt.solvers.scenario_terms import LargeResult, ScenarioTerm, exact_objective
from marginopt.solvers.status import SolveStatus
from marginopt.solvers.working_set import cap, first_set, gather, violated

INF = highspy.kHighsInf
# With the interior point, each round also adds this many tails of the scenarios nearest to
# violating: at 100,000 x 1,000 the last rounds added 107, 19, 3 and 2 scenarios at 4-6 s
# each; with a quarter tail ahead 7 rounds became 4 (40 -> 20 s); a whole tail was slower.
AHEAD = 0.25


def supported(terms: list[ScenarioTerm]) -> bool:
    """Expected shortfall without a floor, in the objective, as a limit, or both."""
    return all(t.kind == "es" and not t.floor and (t.weight > 0 or t.limit is not None) for t in terms)


def solve_dual(
    terms: list[ScenarioTerm],
    lb: np.ndarray,
    ub: np.ndarray,
    cost: np.ndarray,
    linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    working: list[np.ndarray],
    start: np.ndarray | None,
    tol: float,
    max_iterations: int,
    ipm: bool = False,
) -> tuple[LargeResult, list[np.ndarray]]:
    """Column generation on the dual: seed each term (its previous working set, else the worst
    scenarios at ``start``), then solve the restricted dual, read h and the bound off it and add
    the scenarios it prices in, until there are none. ``ipm``: solve each restricted LP with
    ``dense_ipm`` instead of HiGHS's simplex."""
    t0 = time.perf_counter()
    seconds = {"passes": 0.0, "lp": 0.0}
    dual = RestrictedDual(terms, lb, ub, cost, linear)
    h = np.zeros(len(lb)) if start is None else np.asarray(start, float)
    dual.seed(h, working, seconds)
    lower, it, col = -math.inf, 0, np.zeros(0)
    for it in range(1, max_iterations + 1):
        failed, col, row_dual = dual.run(ipm, seconds)
        if failed:
            return LargeResult(failed, h, math.nan, lower, it, working, [], np.zeros(0), [], seconds), working
        h = dual.hedge(row_dual)
        lower = dual.lower_bound(col, ipm)
        if not dual.price(h, dual.levels(row_dual), tol, ipm, seconds):
            break
    working = [np.flatnonzero(mask) for mask in dual.in_lp]
    exact, values = exact_objective(terms, h, cost)
    scen_duals = [gather(blocks, col) for blocks in dual.cols_of]
    seconds["total"] = time.perf_counter() - t0
    return LargeResult(SolveStatus.OPTIMAL, h, exact, lower, it, working, values, dual.linear_duals(col), scen_duals,
                       seconds), working


class RestrictedDual:
    """The dual LP held in HiGHS with the scenario columns added so far, and how its solution reads.

    Rows: one per term (sum mu = w_g), one per hedge, then a cap row per scenario of a term with
    a limit. Columns: each hedge's bounded pieces, the linear rows' and the limits' multipliers,
    then the scenarios' weights mu (and their caps' slacks) as they enter.
    """

    def __init__(
        self,
        terms: list[ScenarioTerm],
        lb: np.ndarray,
        ub: np.ndarray,
        cost: np.ndarray,
        linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> None:
        self.terms, self.lb, self.ub, self.cost, self.linear = terms, lb, ub, cost, linear
        self.hs = quiet_highs()
        n_terms = len(terms)
        self.hs.addRows(n_terms, np.array([t.weight for t in terms]), np.array([t.weight for t in terms]), 0,
                        np.zeros(n_terms, np.int32), np.zeros(0, np.int32), np.zeros(0))
        self.hedge_row0 = _hedge_rows(self.hs, lb, ub, cost)
        self.nu_cols = _linear_columns(self.hs, linear, self.hedge_row0)
        self.lam_col = _limit_columns(self.hs, terms)
        self.in_lp = [np.zeros(len(t.offset), dtype=bool) for t in terms]
        self.cols_of: list[list[tuple[np.ndarray, int]]] = [[] for _ in terms]  # per term: (scenarios, first column)
        self.cap_rows: list[np.ndarray] = []

    def add(self, g: int, scen: np.ndarray) -> None:
        """Scenarios ``scen`` of term ``g`` enter: a column mu_s each (cost -l0_s, 1 in the term's
        row, L[s, j] in hedge j's row), with a cap row and its slack when the term has a limit."""
        hs, term = self.hs, self.terms[g]
        n = len(scen)
        beta = 1.0 - term.alpha
        share = term.probs[scen] / beta
        limited = self.lam_col[g] >= 0
        width = 1 + len(term.cols) + limited
        idx = np.empty((n, width), np.int32)
        idx[:, 0] = g
        idx[:, 1:1 + len(term.cols)] = self.hedge_row0 + term.cols
        val = np.empty((n, width))
        val[:, 0] = 1.0
        val[:, 1:1 + len(term.cols)] = term.matrix[scen]
        if limited:
            first_cap = hs.getNumRow()
            hs.addRows(n, term.weight * share, term.weight * share, n, np.arange(n, dtype=np.int32),
                       np.full(n, self.lam_col[g], np.int32), -share)
            idx[:, -1] = first_cap + np.arange(n)
            val[:, -1] = 1.0
            self.cap_rows.append(first_cap + np.arange(n))
        first = hs.getNumCol()
        hs.addCols(n, -term.offset[scen], np.zeros(n), np.full(n, INF) if limited else term.weight * share, n * width,
                   np.arange(0, n * width, width, dtype=np.int32), idx.ravel(), val.ravel())
        if limited:
            hs.addCols(n, np.zeros(n), np.zeros(n), np.full(n, INF), n, np.arange(n, dtype=np.int32),
                       (first_cap + np.arange(n)).astype(np.int32), np.ones(n))
        self.cols_of[g].append((scen, first))
        self.in_lp[g][scen] = True

    def seed(self, h: np.ndarray, working: list[np.ndarray], seconds: dict[str, float]) -> None:
        """The first columns: each term's previous working set (a warm re-solve), else its worst scenarios at h."""
        for g, term in enumerate(self.terms):
            t1 = time.perf_counter()
            loss = term.losses(h)
            seconds["passes"] += time.perf_counter() - t1
            self.add(g, working[g] if len(working[g]) else first_set(term, loss))

    def run(self, ipm: bool, seconds: dict[str, float]) -> tuple[SolveStatus | None, np.ndarray, np.ndarray]:
        """The restricted LP solved: (failure, column values, row duals)."""
        if ipm:
            return run_ipm(self.hs, seconds, np.concatenate(self.cap_rows) if self.cap_rows else None)
        return run_simplex(self.hs, seconds)

    def hedge(self, row_dual: np.ndarray) -> np.ndarray:
        """h: the hedge rows' duals (minimizing the negated dual), clipped to the box, where an
        interior point's may sit a round-off outside it."""
        h: np.ndarray = np.clip(row_dual[self.hedge_row0:self.hedge_row0 + len(self.lb)], self.lb, self.ub)
        return h

    def levels(self, row_dual: np.ndarray) -> np.ndarray:
        """Each term's VaR level c_g: d(-objective)/d(w_g), minus the term row's dual. A scenario's
        mu_s then has reduced cost -(l0_s + L_s h - c_g)."""
        return -row_dual[:len(self.terms)]

    def lower_bound(self, col: np.ndarray, ipm: bool) -> float:
        """The restricted dual's optimum, a lower bound on the full program; an interior point's
        is recomputed from its scenario weights (``dual_bound``), not read off the iterate."""
        if not ipm:
            return -float(self.hs.getInfo().objective_function_value)
        scen_mu = [gather(blocks, col) for blocks in self.cols_of]
        lams = [float(col[c]) if c >= 0 else 0.0 for c in self.lam_col]
        return dual_bound(self.terms, scen_mu, self.lb, self.ub, self.cost, self.linear, lams)

    def price(self, h: np.ndarray, level: np.ndarray, tol: float, ipm: bool, seconds: dict[str, float]) -> int:
        """Add the scenarios whose loss at h exceeds their term's level (and, on the interior
        point, those nearest to it, ``AHEAD``); returns how many entered."""
        added = 0
        t1 = time.perf_counter()
        for g, term in enumerate(self.terms):
            loss = term.losses(h)
            excess = loss - level[g]
            viol = violated(excess, loss, self.in_lp[g], tol, cap(term))
            if ipm and viol.size and AHEAD > 0:
                viol = ahead(excess, self.in_lp[g], viol, int(math.ceil(AHEAD * (1 - term.alpha) * len(loss))))
            if viol.size:
                self.add(g, viol)
                added += viol.size
        seconds["passes"] += time.perf_counter() - t1
        return added

    def linear_duals(self, col: np.ndarray) -> np.ndarray:
        """d(objective)/d(bound) of each linear row: nu+ for its lower bound less nu- for its upper."""
        lin_duals = np.zeros(0 if self.linear is None else self.linear[0].shape[0])
        for r_, sign, c in self.nu_cols:
            lin_duals[r_] += sign * col[c]
        return lin_duals


def _hedge_rows(hs: Highs, lb: np.ndarray, ub: np.ndarray, cost: np.ndarray) -> int:
    """The hedge rows and their bounded columns; returns the first hedge row.

    One row per hedge j: sum_s mu_s L_sj - (A'nu)_j + z_j + a_j - b_j = 0. The primal's box and
    cost on h_j become column bounds: -y = z + a - b prices the conjugate of cost |h| on [lb, ub]
    (slope 0 for |y| <= cost when h = 0 is allowed, slope ub beyond +cost through a, lb beyond
    -cost through b). The basis is then #terms + K rows and a scenario column has K + 1 entries;
    bound rows for h made the basis three times as large and each simplex iteration slower."""
    k = len(lb)
    row0 = hs.getNumRow()
    hs.addRows(k, np.zeros(k), np.zeros(k), 0, np.zeros(k, np.int32), np.zeros(0, np.int32), np.zeros(0))
    for j in range(k):
        c_j, lo_j, hi_j = float(cost[j]), float(lb[j]), float(ub[j])
        if lo_j > 0.0:
            z_lo = z_hi = c_j
        elif hi_j < 0.0:
            z_lo = z_hi = -c_j
        else:  # h = 0 allowed; a zero bound extends the flat part
            z_lo = -c_j if lo_j < 0.0 else -INF
            z_hi = c_j if hi_j > 0.0 else INF
        row = np.array([row0 + j], np.int32)
        hs.addCol(0.0, z_lo, z_hi, 1, row, np.array([1.0]))
        if math.isfinite(hi_j) and hi_j != 0.0:  # a: costs ub per unit (minimizing the negated dual)
            hs.addCol(hi_j, 0.0, INF, 1, row, np.array([1.0]))
        if math.isfinite(lo_j) and lo_j != 0.0:  # b: costs -lb per unit
            hs.addCol(-lo_j, 0.0, INF, 1, row, np.array([-1.0]))
    return int(row0)


def _linear_columns(hs: Highs, linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                    hedge_row0: int) -> list[tuple[int, float, int]]:
    """The linear rows on h as multiplier columns: nu+ (lower bound lo) and nu- (upper bound hi),
    entering hedge rows with -a and +a. Returns (linear row, sign, column) for each."""
    nu_cols: list[tuple[int, float, int]] = []
    if linear is None:
        return nu_cols
    a, lo, hi = linear
    for r_ in range(a.shape[0]):
        nz = np.flatnonzero(a[r_])
        if lo[r_] == hi[r_]:
            # An equality row's multiplier is free: one column, not nu+ - nu- (a split pair
            # drifts off to infinity together in an interior-point method).
            nu_cols.append((r_, 1.0, hs.getNumCol()))
            hs.addCol(-float(lo[r_]), -INF, INF, len(nz), (hedge_row0 + nz).astype(np.int32), -a[r_, nz])
            continue
        for sign, bound in ((1.0, lo[r_]), (-1.0, hi[r_])):
            if not math.isfinite(bound):
                continue
            nu_cols.append((r_, sign, hs.getNumCol()))
            hs.addCol(-sign * bound, 0.0, INF, len(nz), (hedge_row0 + nz).astype(np.int32), -sign * a[r_, nz])
    return nu_cols


def _limit_columns(hs: Highs, terms: list[ScenarioTerm]) -> list[int]:
    """Each limited term's multiplier column, -1 for a term without a limit.

    A term with a limit: its multiplier lam_g >= 0 (cost kappa_g) joins the term's row, sum mu =
    w_g + lam_g, and each of its scenarios gets a cap row mu_s - (p_s / beta) lam_g + sigma_s =
    w_g p_s / beta (sigma_s >= 0): the cap moves with lam_g, so it is a row, not a bound. The
    interior point eliminates these rows (dense_ipm's ``eliminate``)."""
    lam_col = [-1] * len(terms)
    for g, term in enumerate(terms):
        if term.limit is not None:
            lam_col[g] = hs.getNumCol()
            hs.addCol(float(term.limit), 0.0, INF, 1, np.array([g], np.int32), np.array([-1.0]))
    return lam_col


def run_ipm(hs: Highs, seconds: dict[str, float],
            eliminate: np.ndarray | None = None) -> tuple[SolveStatus | None, np.ndarray, np.ndarray]:
    """The restricted LP held in ``hs`` (equality rows only) solved by ``dense_ipm`` (``eliminate``:
    the cap rows); HiGHS's simplex takes over if the interior point fails. Returns (failure,
    column values, row duals)."""
    t1 = time.perf_counter()
    lp = hs.getLp()
    a = lp.a_matrix_
    mat = sp.csc_matrix((np.asarray(a.value_), np.asarray(a.index_), np.asarray(a.start_)),
                        shape=(lp.num_row_, lp.num_col_))

    def finite(v: object) -> np.ndarray:
        v = np.asarray(v, float)
        return np.where(np.abs(v) >= INF, np.copysign(np.inf, v), v)

    r = dense_ipm.solve(np.asarray(lp.col_cost_), mat, np.asarray(lp.row_lower_), finite(lp.col_lower_),
                        finite(lp.col_upper_), eliminate=eliminate)
    seconds["lp"] += time.perf_counter() - t1
    if r.status is not SolveStatus.ERROR and r.residual < 1e-6:
        return None, r.x, r.y
    return run_simplex(hs, seconds)


def dual_bound(
    terms: list[ScenarioTerm],
    scen_mu: list[tuple[np.ndarray, np.ndarray]],
    lb: np.ndarray,
    ub: np.ndarray,
    cost: np.ndarray,
    linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    lams: list[float] | None = None,
) -> float:
    """A lower bound on the full program from any scenario weights ``mu`` (per term: scenario
    indices and weights) and limit multipliers ``lam >= 0``: ``ES_g(x) >= sum_s q_s x_s`` for
    every ``0 <= q_s <= p_s / beta_g`` with ``sum q = 1``, so with ``t_g = w_g + lam_g`` and
    ``mu_g = t_g q_g``, for all h in H (the box and the linear rows) with ``ES_g <= kappa_g``

        sum_g w_g ES_g + cost'|h|  >=  sum_g (t_g ES_g - lam_g kappa_g) + cost'|h|
                                   >=  sum_g (mu_g'l0_g - lam_g kappa_g) + min_{h in H} (sum_g L_g'mu_g)'h + cost'|h|.

    The weights are first clipped to their caps and rescaled to sum t_g, which makes the bound
    exact whatever the accuracy of mu."""
    k = len(lb)
    value = 0.0
    grad = np.zeros(k)
    for g, (term, (scen, mu)) in enumerate(zip(terms, scen_mu, strict=True)):
        lam = max(lams[g], 0.0) if lams is not None and term.limit is not None else 0.0
        total = term.weight + lam
        cap_ = total * term.probs[scen] / (1.0 - term.alpha)
        q = np.clip(mu, 0.0, cap_)
        short = total - q.sum()
        if short > 0.0:  # raise the uncapped ones in proportion to their room
            room = cap_ - q
            q = q + short * room / max(room.sum(), 1e-300) if room.sum() >= short else cap_
        elif short < 0.0:
            q = q * (total / q.sum())
        value += float(q @ term.offset[scen]) - (lam * term.limit if term.limit is not None else 0.0)
        np.add.at(grad, term.cols, q @ term.matrix[scen])
    return value + _min_linear(grad, lb, ub, cost, linear)


def _min_linear(g: np.ndarray, lb: np.ndarray, ub: np.ndarray, cost: np.ndarray,
                linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> float:
    """min g'h + cost'|h| over lb <= h <= ub and the linear rows; -inf if unbounded or infeasible."""
    if linear is None:
        # Separable: each h_j at lb_j, 0 (if allowed) or ub_j.
        cand = np.stack([g * lb + cost * np.abs(lb), g * ub + cost * np.abs(ub),
                         np.where((lb <= 0.0) & (ub >= 0.0), 0.0, np.inf)])
        return float(np.min(cand, axis=0).sum())
    a, lo, hi = linear
    k = len(g)
    hs = quiet_highs()
    # h = p - n with p, n >= 0 split at zero.
    hs.addCols(2 * k, np.concatenate([g + cost, -g + cost]),
               np.concatenate([np.maximum(lb, 0.0), np.maximum(-ub, 0.0)]),
               np.concatenate([np.maximum(ub, 0.0), np.maximum(-lb, 0.0)]), 0,
               np.zeros(2 * k, np.int32), np.zeros(0, np.int32), np.zeros(0))
    rows = sp.csr_matrix(np.hstack([a, -a]))
    hs.addRows(a.shape[0], np.where(np.isfinite(lo), lo, -INF), np.where(np.isfinite(hi), hi, INF), rows.nnz,
               rows.indptr[:-1].astype(np.int32), rows.indices.astype(np.int32), rows.data)
    hs.run()
    if hs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return -math.inf
    return float(hs.getInfo().objective_function_value)


def ahead(excess: np.ndarray, in_lp: np.ndarray, viol: np.ndarray, n: int) -> np.ndarray:
    """``viol`` and the ``n`` scenarios outside the LP nearest to violating after them."""
    out = ~in_lp
    out[viol] = False
    cand = np.flatnonzero(out)
    if cand.size > n:
        cand = cand[np.argpartition(-excess[cand], n - 1)[:n]]
    return np.concatenate([viol, cand])


def run_simplex(hs: Highs, seconds: dict[str, float]) -> tuple[SolveStatus | None, np.ndarray, np.ndarray]:
    """HiGHS on the restricted dual: (failure, column values, row duals). Unbounded there means
    the primal's restriction, a relaxation of the full program, is infeasible (a limit or
    linear rows no h meets)."""
    failed = run_lp(hs, seconds)
    if failed is SolveStatus.ERROR and hs.getModelStatus() in (highspy.HighsModelStatus.kUnbounded,
                                                      highspy.HighsModelStatus.kUnboundedOrInfeasible):
        failed = SolveStatus.INFEASIBLE
    if failed:
        return failed, np.zeros(0), np.zeros(0)
    sol = hs.getSolution()
    return None, np.asarray(sol.col_value), np.asarray(sol.row_dual)
