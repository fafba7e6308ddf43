"""Which scenarios scenario generation holds in its LP: the first set, what joins each round.

The rules are one for every generating solver (``scenario_lp``'s primal rows,
``scenario_dual``'s columns, and ``optimizer.generation`` inside the whole problem), so
that their round counts, measured together, stay comparable.
"""

from __future__ import annotations

import math

import numpy as np

from marginopt.solvers.scenario_terms import ScenarioTerm


def seed_size(kind: str, alpha: float, s: int, k: int) -> int:
    """Scenarios in the first LP: one and a half tails and as many again as there are hedges (k).

    At a start near the optimum (``scenario_start``) most of the optimal tail lies within
    1.5 tails of the top; one tail needed five rounds at 100,000 x 200 against two, and
    2.5 tails made the first LP slower than the rounds it saved."""
    if kind == "max":
        return min(s, 64)
    return min(s, int(math.ceil(1.5 * (1.0 - alpha) * s)) + k + 16)


def add_size(kind: str, alpha: float, s: int) -> int:
    """At most one tail's worth of violated scenarios a round (a quarter needed twice the
    rounds on a budget problem; more rows make each LP slower)."""
    return max(64, int(math.ceil((1.0 - alpha) * s))) if kind == "es" else 256


def largest(key: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` scenarios with the largest ``key``, in index order."""
    if n >= len(key):
        return np.arange(len(key))
    return np.sort(np.argpartition(-key, n - 1)[:n])


def first_set(term: ScenarioTerm, loss: np.ndarray) -> np.ndarray:
    """The first working set: the worst (weighted, for a maximum) scenarios at the start."""
    key = loss if term.kind == "es" else term.probs * loss
    return largest(key, seed_size(term.kind, term.alpha, len(term.offset), len(term.cols)))


def cap(term: ScenarioTerm) -> int:
    """The most scenarios of ``term`` that join in one round."""
    return add_size(term.kind, term.alpha, len(term.offset))


def violated(excess: np.ndarray, loss: np.ndarray, in_lp: np.ndarray, tol: float, cap: int) -> np.ndarray:
    """Scenarios outside the LP whose excess over the current level is above round-off
    (``tol`` relative to the largest loss), the largest ``cap`` of them."""
    scale = tol * max(1.0, float(np.abs(loss).max(initial=0.0)))
    viol = np.flatnonzero((excess > scale) & ~in_lp)
    return viol[np.argpartition(-excess[viol], cap - 1)[:cap]] if viol.size > cap else viol


def gather(blocks: list[tuple[np.ndarray, int]], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scenarios added in blocks (scenarios, first row or column) and their entries of ``values``."""
    scen = np.concatenate([b for b, _ in blocks])
    at = np.concatenate([np.arange(first, first + len(b)) for b, first in blocks])
    return scen, values[at]
