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
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import osqp
import scipy.sparse as sp

if TYPE_CHECKING:
    from marginopt.solvers.scenario_lp import ScenarioTerm

ROWS = 20_000  # rows sampled for the second moment (it is a K x K estimate)
BLOCK = 4_096


def second_moment(term: ScenarioTerm, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``E[(l0 + L h)^2] = h'Gh + 2 b'h + c`` for one term, over the full hedge vector of length ``k``,
    with scenario probabilities (uniform for a maximum's dampening weights)."""
    s = len(term.offset)
    step = max(1, s // ROWS)
    rows = np.arange(0, s, step)
    p = term.probs[rows] if term.kind == "es" else np.ones(len(rows))
    p = p / p.sum()
    kc = len(term.cols)
    g, b = np.zeros((kc, kc)), np.zeros(kc)
    for lo in range(0, len(rows), BLOCK):
        r = rows[lo:lo + BLOCK]
        block = term.matrix[r]  # a gathered block of rows, never the whole matrix
        weighted = block * p[lo:lo + BLOCK, None]
        g += weighted.T @ block
        b += weighted.T @ term.offset[r]
    full_g, full_b = np.zeros((k, k)), np.zeros(k)
    full_g[np.ix_(term.cols, term.cols)] = g
    full_b[term.cols] = b
    return full_g, full_b, float(p @ term.offset[rows] ** 2)


def start_point(
    terms: Sequence[ScenarioTerm],
    lb: np.ndarray,
    ub: np.ndarray,
    linear: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """The box- and row-feasible hedge minimizing the terms' weighted second moment of loss.

    Terms with zero weight (a limit only) count with weight one: their tail matters as much.
    Falls back to the point of the box nearest zero if the QP cannot be solved."""
    k = len(lb)
    fallback = np.clip(np.zeros(k), lb, ub)
    if k == 0:
        return fallback
    g, b = np.zeros((k, k)), np.zeros(k)
    for term in terms:
        gt, bt, _ = second_moment(term, k)
        w = term.weight if term.weight > 0 else 1.0
        g += w * gt
        b += w * bt
    scale = max(float(np.abs(np.diag(g)).max()), 1e-300)
    g, b = g / scale, b / scale
    g[np.diag_indices(k)] += 1e-9  # the sample Gram may be singular (k near the rows sampled)
    if linear is None and np.all(np.isinf(lb)) and np.all(np.isinf(ub)):
        return np.asarray(np.linalg.solve(g, -b))
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
    return np.clip(np.asarray(res.x, float), lb, ub)
