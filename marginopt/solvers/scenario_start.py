"""The first point of scenario generation: the hedge minimizing the losses' second moment.

Generation seeds its first LP with the worst scenarios at a starting hedge, and the
number of simplex pivots it spends depends mostly on how far that start is from the
optimum. From ``h = 0`` the first restricted LP pushes ``h`` to the box corners (only
the tail at zero is in it) and the next rounds climb back; from the hedge that
minimizes ``sum_g w_g E[(l0_g + L_g h)^2]`` under the same box and linear rows, about
99% of the optimal tail is already among the worst ``2.5 (1 - alpha) S`` scenarios
(heavy-tailed factor book, 100,000 x 200), and a seed of ``1.5 (1 - alpha) S`` scenarios
at that start needs two rounds instead of seven.

The second moment is estimated on evenly spaced rows (about ``ROWS`` of them), read in
blocks, so no copy of the matrix is made; the start only picks the seed, so its
accuracy does not affect the answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import osqp
import scipy.sparse as sp

from marginopt.solvers.scenario_terms import ScenarioTerm

ROWS = 20_000  # rows sampled for the second moment (it is a K x K estimate)
BLOCK = 1_024


def second_moment(
    read_rows: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    s: int,
    probs: np.ndarray,
    cols: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``E[(l0 + L h)^2] = h'Gh + 2 b'h + const`` over the full hedge vector of length ``k``,
    where ``read_rows(r)`` gives rows ``r`` of ``L`` (columns ``cols`` of h) and of ``l0`` (the
    book held: read at the sampled rows only), ``s`` the scenarios and ``probs`` their
    probabilities (normalized here)."""
    step = max(1, s // ROWS)
    rows = np.arange(0, s, step)
    p = probs[rows] / probs[rows].sum()
    kc = len(cols)
    g, b = np.zeros((kc, kc)), np.zeros(kc)
    for lo in range(0, len(rows), BLOCK):
        r = rows[lo:lo + BLOCK]
        block, offset = read_rows(r)  # a gathered block of rows, never the whole matrix
        weighted = block * p[lo:lo + BLOCK, None]
        g += weighted.T @ block
        b += weighted.T @ offset
    full_g, full_b = np.zeros((k, k)), np.zeros(k)
    full_g[np.ix_(cols, cols)] = g
    full_b[cols] = b
    return full_g, full_b


def start_point(
    terms: Sequence[ScenarioTerm],
    lb: np.ndarray,
    ub: np.ndarray,
    linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """The box- and row-feasible hedge minimizing the terms' weighted second moment of loss
    (a maximum's dampening weights count as uniform probabilities; a term with zero weight,
    a limit only, counts with weight one: its tail matters as much)."""
    k = len(lb)
    g, b = np.zeros((k, k)), np.zeros(k)
    for term in terms:
        probs = term.probs if term.kind == "es" else np.ones(len(term.offset))
        gt, bt = second_moment(_rows_of(term), len(term.offset), probs, np.asarray(term.cols), k)
        w = term.weight if term.weight > 0 else 1.0
        g += w * gt
        b += w * bt
    return minimize_second_moment(g, b, lb, ub, linear)


def _rows_of(term: ScenarioTerm) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Rows of a term's matrix and of its offset (the book held)."""
    return lambda rows: (term.matrix[rows], term.offset[rows])


def minimize_second_moment(
    g: np.ndarray,
    b: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """``argmin h'Gh + 2b'h`` over ``lb <= h <= ub`` and ``lo <= A h <= hi``: closed form when
    no bound binds, else OSQP; the point of the box nearest zero if that fails."""
    k = len(lb)
    fallback = np.clip(np.zeros(k), lb, ub)
    if k == 0:
        return fallback
    scale = max(float(np.abs(np.diag(g)).max()), 1e-300)
    g, b = g / scale, b / scale
    g[np.diag_indices(k)] += 1e-9  # the sample Gram may be singular (k near the rows sampled)
    free = np.linalg.solve(g, -b)
    if linear is None and np.all(free >= lb) and np.all(free <= ub):
        return np.asarray(free)
    a_rows = [sp.identity(k, format="csc")]
    lo_parts, hi_parts = [lb], [ub]
    if linear is not None:
        a, lo, hi = linear
        a_rows.append(sp.csc_matrix(a))
        lo_parts.append(lo)
        hi_parts.append(hi)
    solver = osqp.OSQP()
    solver.setup(sp.triu(sp.csc_matrix(g), format="csc"), b, sp.vstack(a_rows, format="csc"),
                 np.concatenate(lo_parts), np.concatenate(hi_parts),
                 verbose=False, eps_abs=1e-6, eps_rel=1e-6, max_iter=20_000)
    with warnings.catch_warnings():  # osqp 1.x warns that raise_error's default will change
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        res = solver.solve()
    if res.x is None or not np.all(np.isfinite(res.x)):
        return fallback
    start: np.ndarray = np.clip(np.asarray(res.x, float), lb, ub)
    return start
