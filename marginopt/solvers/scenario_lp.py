r"""Exact expected-shortfall and scenario-maximum programs over very many scenarios.

The Rockafellar-Uryasev LP of expected shortfall has one variable and one row per
scenario; at its optimum only about ``(1 - alpha) S`` scenarios have ``u_s > 0``.
This solver generates scenario rows as they become active:

1. Solve the LP with a working set ``W`` of scenarios (first: the worst at the
   second-moment hedge, ``solvers.scenario_start``). Dropping the other rows is a
   relaxation, so its optimum is a **lower bound** on the full LP.
2. One pass over the matrix computes the losses at the candidate ``h``; the exact
   objective there (ES by a tail sum, the maximum) is an **upper bound**.
3. Scenarios that violate the candidate (``loss_s > c`` for ES, ``w_s loss_s > t``
   for a maximum) join ``W``; HiGHS continues from the previous basis.

When no scenario is violated the restricted solution is feasible for the full LP,
so it is the full LP's optimum: same objective, same duals (rows never added are
inactive, with zero duals). The result carries both bounds and the gap.

Memory: the matrix is only read: a matrix-vector product per pass and the rows of
the working set copied into the LP; no sparse or dense copy of it is ever built.

Program:
    min  sum_g weight_g m_g + cost' (h+ + h-)
    s.t. m_g >= ES_alpha_g(l0_g + L_g h)  or  m_g >= max_s w_s (l0_g + L_g h)_s   (floored at 0 if asked)
         lower <= A h <= upper,  lb <= h <= ub,  h = h+ - h-
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace

import highspy
import numpy as np

from marginopt.errors import SolverError
from marginopt.solvers.highs import Highs, quiet_highs, run_lp
from marginopt.solvers.scenario_dual import solve_dual, supported
from marginopt.solvers.scenario_start import start_point
from marginopt.solvers.scenario_terms import LargeResult, ScenarioTerm, exact_objective
from marginopt.solvers.status import SolveStatus
from marginopt.solvers.working_set import add_size, cap, first_set, gather, largest, seed_size, violated

# Importable from here as before: optimizer/backends (generation, scenario_route), the tests and
# the benchmarks import the terms, the result and generation's working-set rules from this module.
__all__ = ["LargeResult", "ScenarioLP", "ScenarioTerm", "add_size", "largest", "seed_size", "violated"]

INF = highspy.kHighsInf
ARTIFICIAL = 1e6  # stands in for an infinite bound on h while scenarios are generated
# An ES limit makes the dual's scenarios cap rows, whose interior point has more fixed cost per
# iteration: at 20,000 x 100 the primal on HiGHS took 0.23 s against 0.42, at 100,000 x 200
# 5.4 s against 2.8 and at 100,000 x 1,000 55 s against 31.
LIMIT_DUAL_MIN_K = 150
SUBSAMPLE, SUBSAMPLE_MIN = 5, 50_000  # an ES-limit program over this many scenarios starts from every 5th


class ScenarioLP:
    """The program above, solved by scenario generation on one HiGHS instance.

    ``solve(start=...)`` may be called again after the terms' matrices or offsets are
    replaced by a market move of the same shape: the previous working sets seed the
    new solve, so a re-run adds few rows.
    """

    def __init__(
        self,
        terms: Sequence[ScenarioTerm],
        lb: np.ndarray,
        ub: np.ndarray,
        cost: np.ndarray,
        linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        *,
        tol: float = 1e-9,
        max_iterations: int = 200,
        method: str = "auto",
        lp: str = "auto",
    ) -> None:
        """``method``: ``primal`` (scenario rows), ``dual`` (scenario columns, ES terms without
        floor, in the objective or as limits; ``solvers.scenario_dual``) or ``auto`` (dual when
        it applies, with a limit from ``LIMIT_DUAL_MIN_K`` hedges).
        ``lp``, how the dual method solves each restricted LP: ``simplex`` (HiGHS, a vertex) or
        ``ipm`` (``solvers.dense_ipm``, an interior point of the optimal face); ``auto`` is ipm,
        4x faster at 100,000 x 200 (0.27 s against 1.15) and the only one to finish at 100,000 x 1,000."""
        self.terms = list(terms)
        self.lb, self.ub, self.cost = np.asarray(lb, float), np.asarray(ub, float), np.asarray(cost, float)
        # A restricted LP can be unbounded along an infinite side of h that the scenarios not yet
        # generated would stop (the dual restriction is then infeasible). Infinite sides are
        # solved as +-ARTIFICIAL; an optimum strictly inside that box is the optimum without it
        # (convexity), one on it means the problem is unbounded.
        self._lb = np.where(np.isfinite(self.lb), self.lb, -ARTIFICIAL)
        self._ub = np.where(np.isfinite(self.ub), self.ub, ARTIFICIAL)
        self.k = len(self.lb)
        # LP column of h+_j and h-_j in the primal, -1 where the box fixes that half at zero.
        pos, neg = np.flatnonzero(self._ub > 0.0), np.flatnonzero(self._lb < 0.0)
        self._pos = np.full(self.k, -1)
        self._neg = np.full(self.k, -1)
        self._pos[pos] = np.arange(len(pos))
        self._neg[neg] = len(pos) + np.arange(len(neg))
        self.linear = linear  # (A, lower, upper)
        self.tol = tol
        self.max_iterations = max_iterations
        self.working: list[np.ndarray] = [np.zeros(0, dtype=np.int64) for _ in self.terms]
        if method not in ("auto", "primal", "dual"):
            raise SolverError(f"method {method!r}: expected auto, primal or dual", argument="method")
        if method == "dual" and not supported(self.terms):
            raise SolverError("method 'dual': takes expected-shortfall terms without a floor only; use auto or primal",
                              argument="method")
        limited = any(t.limit is not None for t in self.terms)
        auto_dual = supported(self.terms) and (not limited or self.k >= LIMIT_DUAL_MIN_K)
        self.method = "dual" if method == "dual" or (method == "auto" and auto_dual) else "primal"
        if lp not in ("auto", "simplex", "ipm"):
            raise SolverError(f"lp {lp!r}: expected auto, simplex or ipm", argument="lp")
        self.ipm = lp in ("ipm", "auto")

    # -- the LP ------------------------------------------------------------------
    def _base(self) -> tuple[Highs, list[int], list[int], list[int]]:
        """HiGHS with h+, h-, each term's value (and VaR) column, definition rows, linear rows.

        A side of h that its box fixes at zero (h- when h >= 0) gets no column: with every
        scenario row carrying both halves, that halved the LP of a long-only problem."""
        hs = quiet_highs()
        hp_lo, hp_hi = np.maximum(self._lb, 0.0), np.maximum(self._ub, 0.0)
        hn_lo, hn_hi = np.maximum(-self._ub, 0.0), np.maximum(-self._lb, 0.0)
        pos, neg = np.flatnonzero(self._pos >= 0), np.flatnonzero(self._neg >= 0)
        n = len(pos) + len(neg)
        hs.addCols(n, np.concatenate([self.cost[pos], self.cost[neg]]), np.concatenate([hp_lo[pos], hn_lo[neg]]),
                   np.concatenate([hp_hi[pos], hn_hi[neg]]), 0, np.zeros(n, np.int32), np.zeros(0, np.int32),
                   np.zeros(0))
        m_cols, c_cols, def_rows = [], [], []
        for term in self.terms:
            # The value column and its definition row are kept even for a term in the objective:
            # putting c + sum (p_s / beta) u_s in the objective directly made HiGHS over 50 times
            # slower at 100,000 x 200.
            m = hs.getNumCol()
            hs.addCol(term.weight, 0.0 if term.floor else -INF, INF if term.limit is None else term.limit, 0,
                      np.zeros(0, np.int32), np.zeros(0))
            m_cols.append(m)
            if term.kind == "es":
                c = hs.getNumCol()
                hs.addCol(0.0, -INF, INF, 0, np.zeros(0, np.int32), np.zeros(0))
                c_cols.append(c)
                # m - c - sum (p_s / beta) u_s >= 0; the u_s entries arrive with their columns.
                def_rows.append(hs.getNumRow())
                hs.addRow(0.0, INF, 2, np.array([m, c], np.int32), np.array([1.0, -1.0]))
            else:
                c_cols.append(-1)
                def_rows.append(-1)
        if self.linear is not None:
            a, lo, hi = self.linear
            for r in range(a.shape[0]):
                nz = np.flatnonzero(a[r])
                idx, val = self._h_entries(nz, a[r, nz][None, :])
                hs.addRow(float(lo[r]), float(hi[r]), idx.shape[1], idx[0].astype(np.int32), val[0])
        return hs, m_cols, c_cols, def_rows

    def _h_entries(self, cols: np.ndarray, coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and values of ``coef @ h[cols]`` written on h+ and h- (a row of ``coef``
        per LP row, a column per entry of ``cols``; halves without a column are left out)."""
        pc, nc = self._pos[cols], self._neg[cols]
        has_p, has_n = pc >= 0, nc >= 0
        idx = np.concatenate([pc[has_p], nc[has_n]])
        val = np.hstack([coef[:, has_p], -coef[:, has_n]])
        return np.broadcast_to(idx, (coef.shape[0], len(idx))), val

    def _hedge(self, col: np.ndarray) -> np.ndarray:
        """h = h+ - h- from the LP's column values."""
        h = np.zeros(self.k)
        has_p, has_n = self._pos >= 0, self._neg >= 0
        h[has_p] += col[self._pos[has_p]]
        h[has_n] -= col[self._neg[has_n]]
        return h

    def _add(self, hs: Highs, t: int, term: ScenarioTerm, scen: np.ndarray, m: int, c: int, def_row: int,
             rows: list[tuple[np.ndarray, int]]) -> None:
        """Add scenarios ``scen`` of term ``t`` (their u columns and rows); ``rows`` records
        (scenarios, first row) in the order added."""
        n = len(scen)
        block = term.matrix[scen]  # rows of the working set only
        if term.kind == "es":
            beta = 1.0 - term.alpha
            first_u = hs.getNumCol()
            hs.addCols(n, np.zeros(n), np.zeros(n), np.full(n, INF), n, np.arange(n, dtype=np.int32),
                       np.full(n, def_row, np.int32), -term.probs[scen] / beta)
            # u_s + c - L_s (h+ - h-) >= l0_s
            h_idx, h_val = self._h_entries(term.cols, -block)
            lead_idx = np.column_stack([first_u + np.arange(n), np.full(n, c)])
            lead_val = np.ones((n, 2))
            lower = term.offset[scen]
        else:
            # m - w_s L_s (h+ - h-) >= w_s l0_s
            w = term.probs[scen]
            h_idx, h_val = self._h_entries(term.cols, -w[:, None] * block)
            lead_idx = np.full((n, 1), m)
            lead_val = np.ones((n, 1))
            lower = w * term.offset[scen]
        idx = np.hstack([lead_idx, h_idx]).astype(np.int32)
        val = np.hstack([lead_val, h_val])
        width = idx.shape[1]
        rows.append((scen, hs.getNumRow()))
        hs.addRows(n, lower, np.full(n, INF), n * width, np.arange(0, n * width, width, dtype=np.int32),
                   idx.ravel(), val.ravel())

    # -- the loop ------------------------------------------------------------------
    def solve(self, start: np.ndarray | None = None) -> LargeResult:
        """``start``: the hedge whose worst scenarios seed the first LP; by default the hedge
        minimizing the second moment of loss (``solvers.scenario_start``), or with an ES limit
        over many scenarios the optimum on every ``SUBSAMPLE``-th scenario. Ignored on a warm
        re-solve, which seeds with the previous working sets."""
        t_start = time.perf_counter()
        if start is None and not any(len(w) for w in self.working):
            start = self._subsample_start()
            if start is None:
                start = start_point(self.terms, self._lb, self._ub, self.linear)
        t_start = time.perf_counter() - t_start
        if self.method == "dual":
            result, self.working = solve_dual(self.terms, self._lb, self._ub, self.cost, self.linear, self.working, start,
                                              self.tol, self.max_iterations, self.ipm)
            result.seconds["start"] = t_start
            result.seconds["total"] = result.seconds.get("total", 0.0) + t_start
            return self._bounded(result)
        t0 = time.perf_counter()
        seconds = {"passes": 0.0, "lp": 0.0, "start": t_start}
        hs, m_cols, c_cols, def_rows = self._base()
        h = np.zeros(self.k) if start is None else np.asarray(start, float)
        rows: list[list[tuple[np.ndarray, int]]] = [[] for _ in self.terms]
        in_lp = [np.zeros(len(term.offset), dtype=bool) for term in self.terms]
        # Seed: the previous working set (a warm re-solve), else the worst scenarios at h.
        for t, term in enumerate(self.terms):
            t1 = time.perf_counter()
            loss = term.losses(h)
            seconds["passes"] += time.perf_counter() - t1
            seed = self.working[t] if len(self.working[t]) else first_set(term, loss)
            self._add(hs, t, term, seed, m_cols[t], c_cols[t], def_rows[t], rows[t])
            in_lp[t][seed] = True
        lower = -math.inf
        for it in range(1, self.max_iterations + 1):
            failed = run_lp(hs, seconds)
            if failed:
                return LargeResult(failed, h, math.nan, lower, it, self.working, [], np.zeros(0), [], seconds)
            sol = hs.getSolution()
            col = np.asarray(sol.col_value)
            h = self._hedge(col)
            lower = float(hs.getInfo().objective_function_value)
            added = 0
            t1 = time.perf_counter()
            for t, term in enumerate(self.terms):
                loss = term.losses(h)
                level = col[c_cols[t]] if term.kind == "es" else col[m_cols[t]]
                excess = (loss if term.kind == "es" else term.probs * loss) - level
                viol = violated(excess, loss, in_lp[t], self.tol, cap(term))
                if viol.size:
                    self._add(hs, t, term, viol, m_cols[t], c_cols[t], def_rows[t], rows[t])
                    in_lp[t][viol] = True
                    added += viol.size
            seconds["passes"] += time.perf_counter() - t1
            if not added:
                break
        self.working = [np.flatnonzero(mask) for mask in in_lp]
        exact, values = exact_objective(self.terms, h, self.cost)
        row_dual = np.asarray(hs.getSolution().row_dual)
        n_lin = 0 if self.linear is None else self.linear[0].shape[0]
        first_lin = sum(1 for r in def_rows if r >= 0)
        lin_duals = row_dual[first_lin:first_lin + n_lin]
        scen_duals = [gather(blocks, row_dual) for blocks in rows]
        seconds["total"] = time.perf_counter() - t0 + t_start
        return self._bounded(LargeResult(SolveStatus.OPTIMAL, h, exact, lower, it, self.working, values, lin_duals, scen_duals,
                                         seconds))

    def _subsample_start(self) -> np.ndarray | None:
        """With an ES limit, the least-variance start is far from the optimum (which leans on
        the objective up to the limit) and generation took five rounds at 100,000 x 200. The
        same program on every ``SUBSAMPLE``-th scenario (row views, no copy) lands near it:
        0.6 s for the subsample, then two rounds (2.5 s -> 1.1 s in all)."""
        if all(t.limit is None for t in self.terms) or min(len(t.offset) for t in self.terms) < SUBSAMPLE_MIN:
            return None
        sub = [replace(t, matrix=t.matrix[::SUBSAMPLE], offset=t.offset[::SUBSAMPLE],
                       probs=_thinned(t.kind, t.probs[::SUBSAMPLE])) for t in self.terms]
        r = ScenarioLP(sub, self.lb, self.ub, self.cost, self.linear, tol=self.tol, method=self.method,
                       lp="ipm" if self.ipm else "simplex").solve()
        return r.h if r.status is SolveStatus.OPTIMAL else None

    def _bounded(self, result: LargeResult) -> LargeResult:
        if result.status is SolveStatus.OPTIMAL:
            edge = ARTIFICIAL * (1.0 - 1e-6)
            if ((~np.isfinite(self.lb)) & (result.h <= -edge)).any() or ((~np.isfinite(self.ub)) & (result.h >= edge)).any():
                result.status = SolveStatus.UNBOUNDED
        return result


def _thinned(kind: str, probs: np.ndarray) -> np.ndarray:
    """A subsample's scenario weights: probabilities rescaled to sum 1 (ES), dampening weights as they are."""
    return probs / probs.sum() if kind == "es" else probs
