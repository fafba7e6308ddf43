"""The large-scenario solver on a matrix held as a chunked Dask array: the same optimum as the
full LP, every method, reading the matrix only through row-chunk passes and gathers."""

from __future__ import annotations

import numpy as np
import pytest

from marginopt.solvers.chunked import ChunkedRows
from marginopt.solvers.scenario_lp import ScenarioLP, ScenarioTerm
from tests.test_scenario_lp import factor_losses, full_lp

da = pytest.importorskip("dask.array", reason="the distributed extra (dask) is not installed")
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in matmul:RuntimeWarning")  # full_lp's


class Counting(ChunkedRows):
    """Records what the solver asks for, to check it never reads the whole matrix at once."""

    gathered: list[int] = []

    def __getitem__(self, rows):
        out = super().__getitem__(rows)
        if not isinstance(rows, slice):
            Counting.gathered.append(len(rows))
        return out


@pytest.mark.parametrize("method", ["primal", "dual"])
@pytest.mark.parametrize("kind,alpha", [("es", 0.95), ("max", 0.0)])
def test_a_chunked_matrix_gives_the_full_lp_optimum(method, kind, alpha):
    if kind == "max" and method == "dual":
        pytest.skip("the dual method takes expected shortfall terms")
    rng = np.random.default_rng(11)
    s, k = 6000, 5
    m = factor_losses(rng, s, k)
    offset = m @ rng.normal(size=k) * 2
    probs = np.full(s, 1.0 / s) if kind == "es" else np.ones(s)
    lb, ub, cost = -np.full(k, 4.0), np.full(k, 4.0), np.full(k, 0.02)
    Counting.gathered = []
    chunked = Counting(da.from_array(m, chunks=(700, k)))
    term = ScenarioTerm(kind, chunked, np.arange(k), offset, probs, alpha, floor=False)
    r = ScenarioLP([term], lb, ub, cost, method=method).solve()
    ref = full_lp([ScenarioTerm(kind, m, np.arange(k), offset, probs, alpha, floor=False)], lb, ub, cost)
    assert r.status == "optimal"
    assert r.objective == pytest.approx(ref, rel=1e-8, abs=1e-9)
    assert Counting.gathered and max(Counting.gathered) < s  # only working sets and sample blocks were gathered


def test_gathers_keep_the_order_asked_and_products_match():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(1000, 4))
    c = ChunkedRows(da.from_array(m, chunks=(128, 2)))  # column chunks are joined
    rows = np.array([999, 3, 500, 3, 0])
    assert np.array_equal(c[rows], m[rows])
    x, y = rng.normal(size=4), rng.normal(size=1000)
    assert np.allclose(c @ x, m @ x, rtol=1e-14) and np.allclose(y @ c, y @ m, rtol=1e-12)
    assert np.array_equal(c[::7][np.array([1, 2])], m[::7][[1, 2]]) and len(c[100:200]) == 100
    with pytest.raises(ValueError, match="2-D Dask array"):
        ChunkedRows(m)
