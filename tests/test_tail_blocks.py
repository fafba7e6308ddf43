"""Tails, cuts and bands read from a scenario matrix block by block (issue 15 item 6), against
references computed here from the whole loss vector: a stable sort of every scenario's loss,
its cumulative probabilities, and the mean of the worst ``beta`` mass.

Matrices and positions are small integers, so every loss is exact and the block-by-block
products equal the whole one to the bit: the orders and masses are compared exactly, ties
(many, on purpose) included.
"""

from __future__ import annotations

import numpy as np
import pytest

from marginopt.models.margin.columns import Folded, reduce_rows
from marginopt.models.margin.shortfall import ExpectedShortfall, matrix_tail, ranked, rows_product
from marginopt.models.scenarios import ScenarioLosses
from marginopt.models.scenarios.base import equal_weights

N = 70_000  # above shortfall._PARTITION_FROM: the blocked path


def _reference(loss: np.ndarray, prob: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Every scenario worst first (ties by index) and its mass in the tail."""
    order = np.argsort(-loss, kind="stable")
    p = prob[order]
    before = np.concatenate([[0.0], np.cumsum(p)[:-1]])
    return order, np.clip(beta - before, 0.0, p)


def _case(seed: int, n: int = N, j: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(-40, 41, (n, j)).astype(float), rng.integers(-3, 4, j).astype(float)


@pytest.mark.parametrize("weights", ["equal", "random"])
@pytest.mark.parametrize("beta", [0.025, 0.2])
def test_the_blocked_tail_is_the_full_sorts(weights: str, beta: float) -> None:
    matrix, q = _case(int(beta * 1000) + len(weights))
    rng = np.random.default_rng(5)
    prob = equal_weights(N) / N if weights == "equal" else rng.random(N) / (N / 2)
    prob = prob / prob.sum() if weights == "random" else prob
    loss = matrix @ q
    assert len(np.unique(loss)) < N / 50  # ties everywhere, the boundary's included
    order, take = _reference(loss, prob, beta)
    tail = int(np.count_nonzero(take))
    rows, masses, values, size = matrix_tail(matrix, q, prob, beta)
    assert np.array_equal(rows, order[:tail]) and np.array_equal(masses, take[:tail])
    assert np.array_equal(values, loss[order[:tail]]) and size == np.abs(loss).max()
    below = 300
    rows, masses, values, _ = ranked(matrix, q, prob, beta, below=below)
    assert np.array_equal(rows, order[:tail + below]) and np.array_equal(masses, take[:tail + below])
    es = ExpectedShortfall("es", ScenarioLosses(np.arange(N).astype(str), np.asarray(prob) * N, ("a", "b", "c"), matrix), 1 - beta)
    assert es.evaluate(q) == pytest.approx(max(0.0, take @ loss[order] / beta), rel=1e-13)
    weight_of = np.zeros(N)
    weight_of[order] = take / beta
    assert np.allclose(es.gradient(q), weight_of @ matrix, rtol=1e-12, atol=1e-9)


def test_rows_product_is_the_gathered_product_whatever_the_width() -> None:
    rng = np.random.default_rng(2)
    for width in (3, 7_000):  # 7,000 columns: a handful of rows gathered at a time
        matrix = rng.normal(size=(400, width))
        rows = rng.choice(400, 150, replace=False)
        w = rng.random(150)
        assert np.allclose(rows_product(w, matrix, rows), w @ matrix[rows], rtol=1e-12, atol=1e-12)


def test_a_fold_maps_positions_rows_and_covectors_as_reduce_rows_does() -> None:
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(50, 9))
    q0 = rng.normal(size=9)
    cols = np.array([1, 4, 6])
    fold = Folded(cols, q0)
    assert np.array_equal(fold.rows(matrix), reduce_rows(matrix, cols, q0))
    q = q0.copy()
    q[cols] = rng.normal(size=3)  # a plan: the hedged columns move, the rest of the book stays
    x = fold.positions(q)
    assert x[-1] == 1.0 and np.allclose(fold.book(x), q, rtol=0, atol=0)
    assert np.allclose(fold.rows(matrix) @ x, matrix @ q, rtol=1e-13)
    g = rng.normal(size=9)
    assert fold.covector(g) @ x == pytest.approx(g @ q, rel=1e-13)


@pytest.mark.parametrize("folded", [False, True])
def test_a_band_is_below_the_es_everywhere_and_equal_to_it_around_its_plan(folded: bool) -> None:
    """A band (``in_program.Band``) bounds the ES from below at any positions, equals it at the plan
    it was taken at and near it, and the cut there is exact at the plan."""
    from marginopt.optimizer.backends.in_program import take_cut

    rng = np.random.default_rng(7)
    n, j = 6_000, 5
    matrix = rng.standard_t(4, size=(n, j)) * np.array([3.0, 1.0, 2.0, 0.5, 1.5])
    es = ExpectedShortfall("es", ScenarioLosses(np.arange(n).astype(str), np.ones(n), tuple("abcde"), matrix), 0.95)
    q0 = rng.normal(size=j)
    cols = np.array([0, 2, 3])
    fold = Folded(cols, q0) if folded else None
    at = (lambda q: fold.positions(q)) if fold is not None else (lambda q: q)

    def plan(q_cols: np.ndarray) -> np.ndarray:
        q = q0.copy()
        q[cols] = q_cols
        return q

    q = plan(rng.normal(size=3))
    taken = take_cut(es, 0, q, fold, below=64)
    band = taken.band(es, 0, 64, fold)
    assert taken.es == pytest.approx(es.evaluate(q), rel=1e-12)
    assert taken.cut @ at(q) == pytest.approx(es.evaluate(q), rel=1e-12)
    assert band.value(at(q)) == pytest.approx(es.evaluate(q), rel=1e-12)
    for step in (1e-9, 1e-7):  # near the plan: the tail stays inside the band
        near = plan(q[cols] + step * rng.normal(size=3))
        assert band.value(at(near)) == pytest.approx(es.evaluate(near), rel=1e-12)
    exact = 0
    for _ in range(300):  # anywhere: a lower bound (a cut too), exact only where the tail stays in the band
        far = plan(q[cols] + rng.normal(scale=rng.choice([1e-3, 1e-1, 3.0]), size=3))
        value = es.evaluate(far)
        assert band.value(at(far)) <= value + 1e-12 * max(1.0, abs(value))
        assert taken.cut @ at(far) <= value + 1e-12 * max(1.0, abs(value))
        exact += band.value(at(far)) >= value - 1e-12 * max(1.0, abs(value))
    assert 0 < exact < 300
