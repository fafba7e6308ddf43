"""The dense interior-point LP solver against HiGHS's simplex on random bounded LPs."""

from __future__ import annotations

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

from marginopt.solvers import dense_ipm


def highs(c, a, b, lo, up):
    """The same LP solved by HiGHS (an independent method: a simplex vertex)."""
    inf = highspy.kHighsInf
    a = sp.csc_matrix(a)
    m, n = a.shape
    hs = highspy.Highs()
    hs.setOptionValue("output_flag", False)
    hs.addRows(m, b, b, 0, np.zeros(m, np.int32), np.zeros(0, np.int32), np.zeros(0))
    hs.addCols(n, c, np.where(np.isfinite(lo), lo, -inf), np.where(np.isfinite(up), up, inf), a.nnz,
               a.indptr[:-1].astype(np.int32), a.indices.astype(np.int32), a.data)
    hs.run()
    return hs.modelStatusToString(hs.getModelStatus()), hs.getInfo().objective_function_value


def random_lp(seed, m=30, n=120, dense_share=0.5):
    """Boxed, one-sided and free columns; the first part dense (the BLAS block), the rest
    sparse, some of them empty. Feasible by construction; bounded by costs pushing the
    unbounded sides inward."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(m, n))
    nd = int(dense_share * n)
    a[:, nd:] *= rng.random((m, n - nd)) < 0.05
    lo = np.where(rng.random(n) < 0.05, -np.inf, 0.0)
    up = np.where(rng.random(n) < 0.7, 1.0 + rng.random(n), np.inf)
    x0 = np.clip(rng.random(n), np.where(np.isfinite(lo), lo, -5), np.where(np.isfinite(up), up, 5)) * 0.9 + 0.01
    c = rng.normal(size=n) + 3.0 * ~np.isfinite(up)
    return c, a, a @ x0, lo, up


@pytest.mark.parametrize("seed", range(8))
def test_optimum_matches_highs(seed):
    c, a, b, lo, up = random_lp(seed)
    status, ref = highs(c, a, b, lo, up)
    r = dense_ipm.solve(c, a, b, lo, up)
    if status != "Optimal":
        assert r.status != "optimal"
        return
    assert r.status == "optimal"
    assert r.objective == pytest.approx(ref, rel=1e-8, abs=1e-8)
    # The iterate is primal feasible and its duals price the columns as an optimum must.
    assert np.abs(a @ r.x - b).max() < 1e-7
    assert (r.x >= lo - 1e-9).all() and (r.x <= up + 1e-9).all()
    reduced = c - a.T @ r.y
    at_lower = np.isfinite(lo) & (r.x - lo < 1e-6)
    at_upper = np.isfinite(up) & (up - r.x < 1e-6)
    inside = ~at_lower & ~at_upper
    assert np.abs(reduced[inside]).max(initial=0.0) < 1e-5
    assert (reduced[at_lower & ~at_upper] > -1e-5).all() and (reduced[at_upper & ~at_lower] < 1e-5).all()


def test_scales_a_million_apart():
    # The scenario dual's columns for an infinite hedge bound cost 1e6 next to weights of 1e-3:
    # a unit starting point diverged on it, Mehrotra's scaled start does not.
    rng = np.random.default_rng(4)
    m, n = 20, 200
    a = np.hstack([rng.normal(size=(m, n - m)), np.eye(m)])
    c = np.r_[rng.normal(size=n - m), np.full(m, 1e6)]
    lo, up = np.zeros(n), np.r_[np.full(n - m, 1e-3), np.full(m, np.inf)]
    b = a[:, : n - m] @ np.full(n - m, 5e-4)
    status, ref = highs(c, a, b, lo, up)
    assert status == "Optimal"
    r = dense_ipm.solve(c, a, b, lo, up)
    assert r.status == "optimal"
    assert r.objective == pytest.approx(ref, rel=1e-8, abs=1e-8)


def test_unbounded_is_not_reported_optimal():
    # min -x1 with x1 - x2 = 0 and both unbounded above.
    a = np.array([[1.0, -1.0]])
    r = dense_ipm.solve(np.array([-1.0, 0.0]), a, np.zeros(1), np.zeros(2), np.full(2, np.inf), max_iterations=60)
    assert r.status != "optimal"


def capped_lp(seed, k=12, n=150, limit=2.0):
    """The scenario dual of ``min f'h s.t. ES_0.9(l0 + L h) <= limit, |h| <= 1``: weights mu_s
    on k + 1 dense rows (sum mu = lam, and per hedge L'mu - a + b = -f with a + b pricing the
    box), each capped by its own row mu_s - v_s lam + sigma_s = 0 that links it to the limit's
    multiplier lam."""
    rng = np.random.default_rng(seed)
    v = np.full(n, 1.0 / (0.1 * n))
    loss = rng.standard_t(4, (n, k))
    rows = 1 + k + n
    a = np.zeros((rows, n + 1 + n + 2 * k))
    a[0, :n] = 1.0
    a[0, n] = -1.0
    a[1:1 + k, :n] = loss.T
    a[1 + k:, :n] = np.eye(n)
    a[1 + k:, n] = -v
    a[1 + k:, n + 1:n + 1 + n] = np.eye(n)
    a[1:1 + k, 2 * n + 1:2 * n + 1 + k] = -np.eye(k)
    a[1:1 + k, 2 * n + 1 + k:] = np.eye(k)
    b = np.zeros(rows)
    b[1:1 + k] = -rng.normal(size=k)
    c = np.r_[-rng.normal(size=n), limit, np.zeros(n), np.ones(2 * k)]
    lo = np.zeros(a.shape[1])
    up = np.full(a.shape[1], np.inf)
    return c, a, b, lo, up, np.arange(1 + k, rows)


@pytest.mark.parametrize("seed", range(4))
def test_eliminating_cap_rows_gives_the_same_optimum(seed):
    c, a, b, lo, up, caps = capped_lp(seed)
    status, ref = highs(c, a, b, lo, up)
    assert status == "Optimal"
    whole = dense_ipm.solve(c, a, b, lo, up)
    reduced = dense_ipm.solve(c, a, b, lo, up, eliminate=caps)
    assert reduced.status == "optimal"
    assert reduced.objective == pytest.approx(ref, rel=1e-8, abs=1e-8)
    assert whole.objective == pytest.approx(ref, rel=1e-8, abs=1e-8)
    assert reduced.x[150] > 1e-3  # the limit binds: the linking column is in play
