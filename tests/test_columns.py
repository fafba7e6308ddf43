"""A measure on the hedged columns (``Measure.on_columns``) against the measure at full width.

The reference is the full measure's own numpy ``evaluate`` at the full positions, an
independent computation: ``on_columns`` builds new arrays (folded columns, constants) and
the reduced measure evaluates on them. The cvxpy form of the reduced measure is checked
against its numpy value with the same solvers as tests/test_measures.py.
"""

from __future__ import annotations

import zlib

import cvxpy as cp
import numpy as np
import pytest

from marginopt.models.margin import DeltaRequirement, Measure, SumMeasure, ZeroMeasure
from marginopt.models.margin.columns import REST, reduced_positions
from tests.test_measures import BUILDERS, DATASETS, SOCP, Data

# cvxpy's ES canonicalization multiplies an unset parameter once (as in tests/test_measures.py).
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in matmul:RuntimeWarning:cvxpy")
CASES = [(m, d) for m in BUILDERS for d in ("3groups_weighted_ties", "S40_J6")]


def _delta_requirement(d: Data) -> Measure:
    return SumMeasure("dr+zero", [DeltaRequirement("dr", 0.02, 0.01, d.delta, d.prices, ("u0", "u1")), ZeroMeasure("z", d.n)])


def _measures() -> dict[str, object]:
    return {**BUILDERS, "delta_requirement": _delta_requirement}


@pytest.mark.parametrize(("kind", "dataset"), CASES + [("delta_requirement", "S40_J6")])
def test_a_measure_on_columns_equals_it_at_full_width(kind: str, dataset: str) -> None:
    data = DATASETS[dataset]()
    full = _measures()[kind](data)  # type: ignore[operator]
    rng = np.random.default_rng(zlib.crc32(f"{kind}/{dataset}".encode()))
    for trial in range(40):
        q0 = rng.normal(0.0, 3.0, data.n) * (rng.random(data.n) < 0.8)
        cols = np.unique(rng.choice(data.n, size=int(rng.integers(1, data.n + 1)), replace=True))
        reduced = full.on_columns(cols, q0)
        assert reduced is not None
        q = q0.copy()
        q[cols] += rng.normal(0.0, 5.0, len(cols)) * (trial % 5 != 0)  # every fifth: the book as held
        want = full.evaluate(q)
        got = reduced.evaluate(reduced_positions(q, cols))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-9 * max(1.0, abs(want))), (trial, cols)


def test_the_folded_column_of_a_scenario_matrix_is_the_rest_of_the_book() -> None:
    data = DATASETS["S40_J6"]()
    q0 = np.arange(1.0, data.n + 1)
    cols = np.array([1, 4])
    reduced = BUILDERS["scenario_max"](data).on_columns(cols, q0)
    losses = reduced.losses  # type: ignore[attr-defined]
    assert losses.instrument_ids == (data.losses.instrument_ids[1], data.losses.instrument_ids[4], REST)
    rest = [j for j in range(data.n) if j not in (1, 4)]
    np.testing.assert_allclose(losses.matrix[:, 2], data.losses.matrix[:, rest] @ q0[rest], rtol=1e-13)
    np.testing.assert_array_equal(losses.matrix[:, :2], data.losses.matrix[:, [1, 4]])


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate:UserWarning")
@pytest.mark.parametrize(("kind", "dataset"), CASES)
def test_the_cvxpy_form_on_columns_gives_the_numpy_value(kind: str, dataset: str) -> None:
    data = DATASETS[dataset]()
    full = BUILDERS[kind](data)
    rng = np.random.default_rng(7)
    q0 = rng.normal(0.0, 3.0, data.n)
    cols = np.array([0, data.n - 1])
    reduced = full.on_columns(cols, q0)
    assert reduced is not None
    h, hp = cp.Variable(len(cols)), cp.Parameter(len(cols))  # the hedge a variable, as in the builder
    expr, cons = reduced.cvxpy(cp.hstack([q0[cols] + h, np.ones(1)]))
    prob = cp.Problem(cp.Minimize(expr), [*cons, h == hp])
    assert prob.is_dpp()
    for trial in range(5):
        hp.value = rng.normal(0.0, 4.0, len(cols))
        prob.solve(solver="CLARABEL" if kind in SOCP else "HIGHS")
        q = q0.copy()
        q[cols] += hp.value
        assert prob.value == pytest.approx(full.evaluate(q), rel=1e-6, abs=1e-6), trial
