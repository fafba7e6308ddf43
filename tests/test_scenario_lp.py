"""The scenario-generation solver against the full LP (cvxpy, HiGHS) on small random problems."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from marginopt.solvers.scenario_lp import ScenarioLP, ScenarioTerm

# The reference LP multiplies constant vectors into unbounded expressions, where cvxpy's bound
# propagation warns of NaN bounds (an error elsewhere, pyproject.toml); HiGHS's status is asserted.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in matmul:RuntimeWarning")


def full_lp(terms, lb, ub, cost, linear=None) -> float:
    """The Rockafellar-Uryasev LP with every scenario, solved by HiGHS through cvxpy."""
    k = len(lb)
    h = cp.Variable(k)
    obj = cost @ cp.abs(h)
    cons = [h >= lb, h <= ub]
    for t in terms:
        loss = t.offset + t.matrix @ h[t.cols]
        if t.kind == "es":
            c = cp.Variable()
            value = c + (t.probs / (1 - t.alpha)) @ cp.pos(loss - c)
        else:
            value = cp.max(cp.multiply(t.probs, loss))
        obj = obj + t.weight * (cp.pos(value) if t.floor else value)
    if linear is not None:
        a, lo, hi = linear
        cons += [a @ h >= lo, a @ h <= hi]
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver="HIGHS")
    assert prob.status == "optimal"
    return float(prob.value)


def factor_losses(rng, s, k, integer=False):
    m = rng.standard_t(4, (s, 3)) @ rng.normal(size=(3, k)) + 0.3 * rng.standard_t(4, (s, k))
    if integer:  # many exact ties in the tail
        m = np.round(m)
    return np.ascontiguousarray(m)


CASES = [
    # (scenarios, hedges, alpha, integer losses, weighted)
    (400, 6, 0.95, False, False),
    (333, 5, 0.9, False, False),  # (1 - alpha) S = 33.3: a fractional tail
    (250, 4, 0.97, True, False),  # ties at the VaR
    (300, 5, 0.9, False, True),  # weighted scenarios
    (1000, 12, 0.99, False, False),
]


# The primal on HiGHS, and the dual with each restricted LP by HiGHS's simplex or by the
# dense interior point (whose lower bound is recomputed from its scenario weights).
METHODS = [("primal", "auto"), ("dual", "simplex"), ("dual", "ipm")]


@pytest.mark.parametrize("method,lp", METHODS)
@pytest.mark.parametrize("s,k,alpha,integer,weighted", CASES)
def test_expected_shortfall_matches_the_full_lp(s, k, alpha, integer, weighted, method, lp):
    rng = np.random.default_rng(s + k)
    m = factor_losses(rng, s, k, integer)
    offset = m @ rng.normal(size=k) * 2
    w = rng.uniform(0.2, 3.0, s) if weighted else np.ones(s)
    term = ScenarioTerm("es", m, np.arange(k), offset, w / w.sum(), alpha, floor=False)
    lb, ub, cost = -np.full(k, 4.0), np.full(k, 4.0), np.full(k, 0.02)
    r = ScenarioLP([term], lb, ub, cost, method=method, lp=lp).solve()
    ref = full_lp([term], lb, ub, cost)
    assert r.status == "optimal"
    assert r.objective == pytest.approx(ref, rel=1e-8, abs=1e-9)
    assert r.lower_bound <= r.objective + 1e-9
    assert r.gap <= 1e-8 * max(1.0, abs(ref))
    assert len(r.working_set[0]) < s  # scenarios were generated, not all added


def test_scenario_max_with_dampening_weights_and_two_floored_terms():
    rng = np.random.default_rng(7)
    k = 5
    m1, m2 = factor_losses(rng, 200, k), factor_losses(rng, 150, k)
    w1 = np.r_[np.ones(180), np.full(20, 0.3)]  # 20 dampened tail scenarios
    terms = [
        ScenarioTerm("max", m1, np.arange(k), m1 @ rng.normal(size=k), w1),
        ScenarioTerm("es", m2[:, :3], np.array([0, 2, 4]), m2[:, :3] @ rng.normal(size=3) - 5.0, np.full(150, 1 / 150), 0.9,
                     weight=2.0),
    ]
    lb, ub, cost = -np.full(k, 3.0), np.full(k, 3.0), np.full(k, 0.05)
    r = ScenarioLP(terms, lb, ub, cost).solve()
    assert r.objective == pytest.approx(full_lp(terms, lb, ub, cost), rel=1e-8, abs=1e-9)
    assert all(v >= 0 for v in r.term_values)


@pytest.mark.parametrize("method,lp", METHODS)
def test_long_only_budget_and_its_dual(method, lp):
    # The peers' problem: min ES(L h) subject to sum h = 1, h >= 0.
    rng = np.random.default_rng(3)
    s, k = 600, 8
    m = factor_losses(rng, s, k)
    term = ScenarioTerm("es", m, np.arange(k), np.zeros(s), np.full(s, 1 / s), 0.95, floor=False)
    lb, ub, cost = np.zeros(k), np.full(k, np.inf), np.zeros(k)

    def solve(budget):
        return ScenarioLP([term], lb, ub, cost, (np.ones((1, k)), np.array([budget]), np.array([budget])),
                          method=method, lp=lp).solve()

    r = solve(1.0)
    ref = full_lp([term], lb, ub, cost, (np.ones((1, k)), np.array([1.0]), np.array([1.0])))
    assert r.objective == pytest.approx(ref, rel=1e-8)
    assert r.h.sum() == pytest.approx(1.0) and (r.h >= -1e-12).all()
    # ES is positively homogeneous in h, so the optimum scales with the budget: slope = optimum.
    assert r.linear_duals[0] == pytest.approx(r.objective, rel=1e-6)
    assert solve(1.1).objective == pytest.approx(1.1 * r.objective, rel=1e-8)


@pytest.mark.parametrize("method,lp", METHODS)
def test_warm_resolve_after_a_move_matches_a_cold_solve(method, lp):
    rng = np.random.default_rng(11)
    s, k = 2000, 10
    m = factor_losses(rng, s, k)
    offset = m @ rng.normal(size=k)
    term = ScenarioTerm("es", m, np.arange(k), offset, np.full(s, 1 / s), 0.99, floor=False)
    lb, ub, cost = -np.full(k, 5.0), np.full(k, 5.0), np.full(k, 0.01)
    program = ScenarioLP([term], lb, ub, cost, method=method, lp=lp)
    first = program.solve()
    term.matrix = np.ascontiguousarray(m * 1.01)  # a 1% move of every loss
    term.offset = offset * 1.01
    warm = program.solve(start=first.h)
    cold = ScenarioLP([ScenarioTerm("es", term.matrix, np.arange(k), term.offset, term.probs, 0.99, floor=False)],
                      lb, ub, cost, method=method, lp=lp).solve()
    assert warm.objective == pytest.approx(cold.objective, rel=1e-9)
    assert warm.iterations <= cold.iterations


@pytest.mark.parametrize("method,lp", METHODS)
def test_boxes_that_exclude_zero_or_are_one_sided(method, lp):
    # Each hedge's box and cost enter the dual as bounded columns (slopes lb, 0, ub around
    # +-cost); boxes away from zero and infinite sides take the other branches.
    rng = np.random.default_rng(5)
    s, k = 800, 6
    m = factor_losses(rng, s, k)
    term = ScenarioTerm("es", m, np.arange(k), m @ rng.normal(size=k), np.full(s, 1 / s), 0.95, floor=False)
    lb = np.array([0.5, -3.0, -np.inf, 0.0, -2.0, -np.inf])
    ub = np.array([2.0, -1.0, 1.0, np.inf, 0.0, np.inf])
    cost = np.array([0.03, 0.01, 0.02, 0.0, 0.05, 0.04])
    r = ScenarioLP([term], lb, ub, cost, method=method, lp=lp).solve()
    assert r.status == "optimal"
    assert r.objective == pytest.approx(full_lp([term], lb, ub, cost), rel=1e-8, abs=1e-9)
    assert (r.h >= lb - 1e-9).all() and (r.h <= ub + 1e-9).all()
    assert r.gap <= 1e-8 * max(1.0, abs(r.objective))


@pytest.mark.parametrize("method,lp", METHODS)
def test_an_unbounded_problem_is_reported(method, lp):
    # A hedge that gains 1 in every scenario and costs 0.5 a unit lowers the objective without end.
    rng = np.random.default_rng(8)
    s = 300
    m = np.column_stack([factor_losses(rng, s, 2), -np.ones(s)])
    term = ScenarioTerm("es", m, np.arange(3), m[:, :2] @ np.ones(2), np.full(s, 1 / s), 0.9, floor=False)
    r = ScenarioLP([term], np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, np.inf]), np.full(3, 0.5),
                   method=method, lp=lp).solve()
    assert r.status == "unbounded"


@pytest.mark.parametrize("method,lp", METHODS)
def test_expected_shortfall_as_a_limit(method, lp):
    # max mu'h  s.t.  ES_0.95(L h) <= kappa, sum h = 1, h >= 0: the CVQP problem class. On the
    # dual the limit's multiplier is a column and each scenario's cap a row.
    term, mu, ref = limit_problem(9, 1500, 10)
    r = ScenarioLP([term], np.zeros(10), np.full(10, np.inf), -mu, budget_row(10), method=method, lp=lp).solve()
    assert r.status == "optimal"
    assert -r.objective == pytest.approx(ref, rel=1e-8)
    assert term.value(r.h) <= term.limit * (1 + 1e-9)  # the limit holds on every scenario, not only those generated
    assert len(r.working_set[0]) < 1500


def budget_row(k):
    """sum h = 1 as a linear row."""
    return np.ones((1, k)), np.ones(1), np.ones(1)


def limit_problem(seed, s, k):
    """``max mu'h s.t. ES_0.95(L h) <= 0.9 ES(equal weights), sum h = 1, h >= 0``: the limited
    term, mu, and the optimum of the full Rockafellar-Uryasev LP by HiGHS through cvxpy."""
    rng = np.random.default_rng(seed)
    m = factor_losses(rng, s, k)
    mu = rng.uniform(0.0, 0.05, k)
    equal = ScenarioTerm("es", m, np.arange(k), np.zeros(s), np.full(s, 1 / s), 0.95, floor=False)
    kappa = 0.9 * equal.value(np.full(k, 1.0 / k))
    term = ScenarioTerm("es", m, np.arange(k), np.zeros(s), np.full(s, 1 / s), 0.95, weight=0.0, floor=False, limit=kappa)
    h, c = cp.Variable(k), cp.Variable()
    es = c + cp.sum(cp.pos(m @ h - c)) / (0.05 * s)
    ref = cp.Problem(cp.Maximize(mu @ h), [es <= kappa, cp.sum(h) == 1, h >= 0])
    ref.solve(solver="HIGHS")
    return term, mu, float(ref.value)


@pytest.mark.parametrize("linear", [False, True])
def test_dual_bound_is_a_bound_from_any_weights_and_tight_at_the_optimum(linear):
    # The interior point's certificate: from any scenario weights (here random, then the
    # simplex's optimal ones) dual_bound stays below the full optimum, and reaches it at an
    # optimal set of weights.
    from marginopt.solvers.scenario_dual import dual_bound

    rng = np.random.default_rng(21)
    s, k = 500, 6
    m = factor_losses(rng, s, k)
    term = ScenarioTerm("es", m, np.arange(k), m @ rng.normal(size=k), np.full(s, 1 / s), 0.95, floor=False)
    lb, ub, cost = -np.full(k, 3.0), np.full(k, 3.0), np.full(k, 0.02)
    rows = (np.ones((1, k)), np.array([-1.0]), np.array([1.0])) if linear else None
    ref = full_lp([term], lb, ub, cost, rows)
    for _ in range(5):
        scen = rng.choice(s, 60, replace=False)
        bound = dual_bound([term], [(scen, rng.random(60))], lb, ub, cost, rows)
        assert bound <= ref + 1e-9
    r = ScenarioLP([term], lb, ub, cost, rows, method="dual", lp="simplex").solve()
    scen, mu = r.scenario_duals[0]
    assert dual_bound([term], [(scen, mu)], lb, ub, cost, rows) == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_a_limit_and_a_term_in_the_objective_on_the_dual():
    # min ES_0.9(book + L h) + 0.01|h|  s.t.  ES_0.97 of the hedges alone <= 1.5: one term with
    # weight and no limit, one with a limit and weight 0, on the same hedges.
    rng = np.random.default_rng(13)
    s, k = 900, 6
    m = factor_losses(rng, s, k)
    book = ScenarioTerm("es", m, np.arange(k), m @ rng.normal(size=k) * 2, np.full(s, 1 / s), 0.9, floor=False)
    cap = ScenarioTerm("es", m, np.arange(k), np.zeros(s), np.full(s, 1 / s), 0.97, weight=0.0, floor=False, limit=1.5)
    lb, ub, cost = -np.full(k, 3.0), np.full(k, 3.0), np.full(k, 0.01)
    h, c1, c2 = cp.Variable(k), cp.Variable(), cp.Variable()
    es1 = c1 + cp.sum(cp.pos(book.offset + m @ h - c1)) / (0.1 * s)
    es2 = c2 + cp.sum(cp.pos(m @ h - c2)) / (0.03 * s)
    ref = cp.Problem(cp.Minimize(es1 + cost @ cp.abs(h)), [es2 <= 1.5, h >= lb, h <= ub])
    ref.solve(solver="HIGHS")
    assert es2.value == pytest.approx(1.5, rel=1e-6)  # the limit binds
    for lp in ("ipm", "simplex"):
        r = ScenarioLP([book, cap], lb, ub, cost, method="dual", lp=lp).solve()
        assert r.status == "optimal"
        assert r.objective == pytest.approx(ref.value, rel=1e-8)
        assert r.lower_bound <= r.objective + 1e-9 and r.gap <= 1e-7
        assert cap.value(r.h) <= 1.5 * (1 + 1e-8)


@pytest.mark.parametrize("method,lp", METHODS)
def test_a_limit_no_hedge_can_meet_is_infeasible(method, lp):
    # ES of a long-only portfolio of these instruments is positive: a limit of -5 is out of reach
    # (on the dual the restricted LP is unbounded, and the primal's relaxation infeasible).
    rng = np.random.default_rng(13)
    s, k = 900, 6
    m = factor_losses(rng, s, k)
    cap = ScenarioTerm("es", m, np.arange(k), np.zeros(s), np.full(s, 1 / s), 0.97, weight=0.0, floor=False, limit=-5.0)
    r = ScenarioLP([cap], np.zeros(k), np.ones(k), -np.ones(k), budget_row(k), method=method, lp=lp).solve()
    assert r.status == "infeasible"


@pytest.mark.parametrize("method,lp", METHODS)
def test_a_limit_starts_from_its_subsample_optimum(method, lp, monkeypatch):
    # With an ES limit over many scenarios the start is the same program solved on every 5th
    # scenario (lowered here to 2,000 scenarios so the test stays small): the optimum is the full LP's.
    import marginopt.solvers.scenario_lp as scenario_lp

    monkeypatch.setattr(scenario_lp, "SUBSAMPLE_MIN", 2000)
    used = []
    original = scenario_lp.ScenarioLP._subsample_start

    def spy(self):
        h = original(self)
        used.append(h is not None)
        return h

    monkeypatch.setattr(scenario_lp.ScenarioLP, "_subsample_start", spy)
    term, mu, ref = limit_problem(17, 3000, 8)
    r = ScenarioLP([term], np.zeros(8), np.full(8, np.inf), -mu, budget_row(8), method=method, lp=lp).solve()
    assert used[-1]  # the outer call (the subsample's own, first in the list, is too small to subsample)
    assert -r.objective == pytest.approx(ref, rel=1e-8)
