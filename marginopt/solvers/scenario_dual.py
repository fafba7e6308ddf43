r"""The dual of the expected-shortfall program, solved by column generation.

For ``min_h sum_g w_g ES_g(l0_g + L_g h) + cost'|h|`` with box bounds and linear rows
``lo <= A h <= hi``, the LP dual has one column per scenario and only
``2K + #terms + #rows`` rows (Ogryczak and Sliwinski): the simplex basis stays small
however many scenarios enter, where the primal's grows with every scenario row.

    max  sum_s mu_s l0_s + sum_r (nu+_r lo_r - nu-_r hi_r) + sum_k phi_k
    s.t. sum_{s in g} mu_s = w_g,   0 <= mu_s <= w_g p_s / beta_g,   nu+- >= 0
         phi_k <= v y_k + cost_k |v|   for each finite bound v of h_k (and phi_k <= 0 when 0 is one)
         -y_k <= cost_k if h_k has no upper bound,  y_k <= cost_k if no lower bound
    where y = sum_s mu_s L_s - A'(nu+ - nu-).

Minimizing the negated objective, the multipliers of the phi rows give h (a convex
combination of the bounds and 0, plus the unbounded directions), the rows
``sum mu = w_g`` give each term's VaR level ``c_g``. A scenario outside the working set
enters when ``l0_s + L_s h - c_g > 0`` (its reduced cost), as in the primal generation.
Restricting columns of a maximization gives a lower bound; the exact objective at ``h``
is the upper bound.
"""

from __future__ import annotations

import math
import time

import highspy
import numpy as np

from marginopt.solvers.scenario_lp import (
    LargeResult,
    ScenarioTerm,
    exact_objective,
    gather,
    run_lp,
    seed_size,
    violated,
    worst,
)

INF = highspy.kHighsInf


def supported(terms: list[ScenarioTerm]) -> bool:
    return all(t.kind == "es" and not t.floor and t.weight > 0 for t in terms)


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
) -> tuple[LargeResult, list[np.ndarray]]:
    t0 = time.perf_counter()
    seconds = {"passes": 0.0, "lp": 0.0}
    k = len(lb)
    hs = highspy.Highs()
    hs.setOptionValue("output_flag", False)
    # Rows: one per term (sum mu = w), then per hedge its bound rows, then nothing else.
    n_terms = len(terms)
    hs.addRows(n_terms, np.array([t.weight for t in terms]), np.array([t.weight for t in terms]), 0,
               np.zeros(n_terms, np.int32), np.zeros(0, np.int32), np.zeros(0))
    # For each hedge k, the rows in which y_k appears, with the multiplier v of y_k:
    # a finite bound v: phi_k - v y_k <= cost |v|; no upper bound: -y_k <= cost; no lower: y_k <= cost.
    y_rows: list[list[tuple[int, float]]] = [[] for _ in range(k)]
    phi_rows: list[list[tuple[int, float]]] = [[] for _ in range(k)]  # (row, bound value v) for recovering h
    dir_rows: list[list[tuple[int, float]]] = [[] for _ in range(k)]  # (row, +1 / -1) unbounded directions
    phi_cols = []
    for j in range(k):
        zero_ok = lb[j] <= 0.0 <= ub[j]
        phi = hs.getNumCol()
        # Minimizing -objective: phi costs -1; phi <= 0 when h_j = 0 is allowed.
        hs.addCol(-1.0, -INF, 0.0 if zero_ok else INF, 0, np.zeros(0, np.int32), np.zeros(0))
        phi_cols.append(phi)
        for v in (lb[j], ub[j]):
            if math.isfinite(v) and v != 0.0:
                r = hs.getNumRow()
                hs.addRow(-INF, cost[j] * abs(v), 1, np.array([phi], np.int32), np.array([1.0]))
                y_rows[j].append((r, -v))
                phi_rows[j].append((r, v))
        if not math.isfinite(ub[j]):
            r = hs.getNumRow()
            hs.addRow(-INF, cost[j], 0, np.zeros(0, np.int32), np.zeros(0))
            y_rows[j].append((r, -1.0))
            dir_rows[j].append((r, 1.0))
        if not math.isfinite(lb[j]):
            r = hs.getNumRow()
            hs.addRow(-INF, cost[j], 0, np.zeros(0, np.int32), np.zeros(0))
            y_rows[j].append((r, 1.0))
            dir_rows[j].append((r, -1.0))
    # Linear rows on h: nu+ (lower bound lo) and nu- (upper bound hi) columns, entering y with -a and +a.
    nu_cols: list[tuple[int, float, int]] = []  # (linear row, sign, column)
    if linear is not None:
        a, lo, hi = linear
        for r_ in range(a.shape[0]):
            for sign, bound in ((1.0, lo[r_]), (-1.0, hi[r_])):
                if not math.isfinite(bound):
                    continue
                nu_cols.append((r_, sign, hs.getNumCol()))
                idx, val = [], []
                for col_j in np.flatnonzero(a[r_]).tolist():
                    for row, mult in y_rows[col_j]:  # y_j gets -sign * a_rj * nu
                        idx.append(row)
                        val.append(mult * (-sign * a[r_, col_j]))
                hs.addCol(-sign * bound, 0.0, INF, len(idx), np.array(idx, np.int32), np.array(val))
    h = np.zeros(k) if start is None else np.asarray(start, float)
    in_lp = [np.zeros(len(t.offset), dtype=bool) for t in terms]
    cols_of: list[list[tuple[np.ndarray, int]]] = [[] for _ in terms]

    def add(g: int, scen: np.ndarray) -> None:
        term = terms[g]
        n = len(scen)
        block = term.matrix[scen]
        beta = 1.0 - term.alpha
        # Column mu_s: cost -l0_s, entry 1 in the term's row, entry mult * L[s, j] in hedge j's rows.
        entries_r = [g]
        for j in term.cols:
            entries_r += [row for row, _ in y_rows[j]]
        width = len(entries_r)
        idx = np.tile(np.array(entries_r, np.int32), n)
        val = np.empty((n, width))
        val[:, 0] = 1.0
        pos = 1
        for j_local, j in enumerate(term.cols):
            for _, mult in y_rows[j]:
                val[:, pos] = mult * block[:, j_local]
                pos += 1
        first = hs.getNumCol()
        hs.addCols(n, -term.offset[scen], np.zeros(n), term.weight * term.probs[scen] / beta, n * width,
                   np.arange(0, n * width, width, dtype=np.int32), idx, val.ravel())
        cols_of[g].append((scen, first))
        in_lp[g][scen] = True

    for g, term in enumerate(terms):
        t1 = time.perf_counter()
        loss = term.losses(h)
        seconds["passes"] += time.perf_counter() - t1
        add(g, working[g] if len(working[g]) else worst(term, loss, seed_size(term)))
    lower, it, c_level = -math.inf, 0, np.zeros(n_terms)
    for it in range(1, max_iterations + 1):
        failed = run_lp(hs, seconds)
        if failed:
            return LargeResult(failed, h, math.nan, lower, it, working, [], np.zeros(0), [], seconds), working
        sol = hs.getSolution()
        row_dual = np.asarray(sol.row_dual)
        lower = -float(hs.getInfo().objective_function_value)
        # Minimizing: a row at its upper bound has a dual <= 0; its multiplier in the primal is -dual.
        h = np.zeros(k)
        for j in range(k):
            for row, v in phi_rows[j]:
                h[j] += v * -row_dual[row]
            for row, d in dir_rows[j]:
                h[j] += d * -row_dual[row]
        c_level = -row_dual[:n_terms]  # d(-objective)/d(w_g): the VaR level c_g, sign as above
        added = 0
        t1 = time.perf_counter()
        for g, term in enumerate(terms):
            loss = term.losses(h)
            viol = violated(term, loss - c_level[g], loss, in_lp[g], tol)
            if viol.size:
                add(g, viol)
                added += viol.size
        seconds["passes"] += time.perf_counter() - t1
        if not added:
            break
    working = [np.flatnonzero(mask) for mask in in_lp]
    exact, values = exact_objective(terms, h, cost)
    col = np.asarray(hs.getSolution().col_value)
    scen_duals = [gather(blocks, col) for blocks in cols_of]
    # d(objective)/d(bound) of each linear row: nu+ for its lower bound less nu- for its upper.
    lin_duals = np.zeros(0 if linear is None else linear[0].shape[0])
    for r_, sign, c in nu_cols:
        lin_duals[r_] += sign * col[c]
    seconds["total"] = time.perf_counter() - t0
    return LargeResult("optimal", h, exact, lower, it, working, values, lin_duals, scen_duals, seconds), working
