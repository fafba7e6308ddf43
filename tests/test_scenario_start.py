"""The second-moment start of scenario generation, against least squares solved independently."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from marginopt.solvers.scenario_lp import ScenarioLP, ScenarioTerm
from marginopt.solvers.scenario_start import start_point


def _book(seed: int, s: int = 600, k: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = rng.standard_t(4, (s, k)) + rng.normal(size=(s, 1))
    l0 = m @ rng.normal(size=k) + rng.standard_t(4, s)
    p = rng.uniform(0.5, 1.5, s)
    return m, l0, p / p.sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_free_start_is_weighted_least_squares(seed: int) -> None:
    m, l0, p = _book(seed)
    k = m.shape[1]
    term = ScenarioTerm("es", m, np.arange(k), l0, p, 0.95, floor=False)
    h = start_point([term], np.full(k, -np.inf), np.full(k, np.inf), None)
    w = np.sqrt(p)
    expected = np.linalg.lstsq(w[:, None] * m, -w * l0, rcond=None)[0]
    np.testing.assert_allclose(h, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", [3, 4])
def test_constrained_start_matches_cvxpy(seed: int) -> None:
    """Two terms on overlapping hedges, weights, a box that binds and a budget row."""
    m, l0, p = _book(seed, k=7)
    k = 7
    t1 = ScenarioTerm("es", m[:, :5], np.arange(5), l0, p, 0.99, weight=2.0, floor=False)
    t2 = ScenarioTerm("es", m[:, 2:], np.arange(2, 7), -0.5 * l0, np.full(len(l0), 1 / len(l0)), 0.9, floor=False)
    lb, ub = np.full(k, -0.3), np.full(k, 0.4)
    a = np.ones((1, k))
    h = start_point([t1, t2], lb, ub, (a, np.array([0.5]), np.array([0.5])))
    x = cp.Variable(k)
    obj = 2.0 * p @ cp.square(l0 + m[:, :5] @ x[:5]) + cp.sum_squares(-0.5 * l0 + m[:, 2:] @ x[2:]) / len(l0)
    cp.Problem(cp.Minimize(obj), [x >= lb, x <= ub, cp.sum(x) == 0.5]).solve(solver="CLARABEL")
    assert np.all(h >= lb - 1e-9) and np.all(h <= ub + 1e-9)
    assert abs(h.sum() - 0.5) < 1e-4
    np.testing.assert_allclose(h, x.value, atol=2e-4)


def test_start_does_not_change_the_optimum() -> None:
    """Generation from the second-moment start and from a poor explicit start agree."""
    m, l0, p = _book(5, s=3000, k=8)
    k = m.shape[1]
    term = ScenarioTerm("es", m, np.arange(k), l0, p, 0.97, floor=False)
    args = ([term], np.full(k, -2.0), np.full(k, 2.0), np.full(k, 0.01))
    auto = ScenarioLP(*args).solve()
    poor = ScenarioLP(*args).solve(start=np.full(k, 2.0))
    assert auto.status == poor.status == "optimal"
    assert abs(auto.objective - poor.objective) <= 1e-9 * max(1.0, abs(poor.objective))
    assert auto.gap <= 1e-9 * max(1.0, abs(auto.objective))
