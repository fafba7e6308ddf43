"""The whole min_margin hedge problem on the large-scenario solver (optimizer/backends/scenario_route.py)
against the full program with every scenario in cvxpy, on random cases; floors, limits,
infeasibility, the automatic choice and a market move."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import marginopt
from marginopt.errors import MarginoptError
from marginopt.optimizer import MarginProblem
from tests.test_generation import INSTRUMENTS, MC, PRICES, load


def case_doc(seed: int, n: int = 3000, es_only: bool = False) -> dict:
    """Three venues (ES, dampened maximum, ES plus maximum; or ES only, which the dual method
    takes), each hedgeable, with net-delta and linear limits; min_margin."""
    rng = np.random.default_rng(seed)
    mc = {**MC, "n": n}
    second = ({"kind": "expected_shortfall", "alpha": 0.95, "scenarios": {**mc, "n": 500, "seed": seed + 3}} if es_only
              else {"kind": "scenario_max", "scenarios": {**mc, "n": 500, "seed": seed + 3}})
    measures = [
        {"kind": "expected_shortfall", "alpha": 0.99, "scenarios": {**mc, "seed": seed}},
        {"kind": "expected_shortfall" if es_only else "scenario_max", "alpha": 0.9, "scenarios": {**mc, "seed": seed + 1}},
        {"kind": "sum", "terms": [{"kind": "expected_shortfall", "alpha": 0.975, "scenarios": {**mc, "seed": seed + 2}}, second]},
    ]
    if not es_only:
        del measures[1]["alpha"]
    venues, positions, hedges = {}, [], []
    for k, measure in enumerate(measures):
        name = f"v{k}"
        venues[name] = {"initial_margin": measure, "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 1e6}}
        for inst in INSTRUMENTS:
            positions.append({"venue": name, "instrument": inst["id"],
                              "quantity": float(rng.normal(0, 5 if inst["underlying"] == "BTC" else 60))})
        for inst in INSTRUMENTS[:4]:  # ETHPUT is held, never traded: a column the route must skip
            hedges.append({"venue": name, "instrument": inst["id"], "max_buy": 30.0, "max_sell": 30.0,
                           "cost_per_unit": float(rng.uniform(0.5, 40))})
    return {
        "format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20",
        "market": {"prices": PRICES, "vols": {"BTC": 0.5, "ETH": 0.6}},
        "instruments": INSTRUMENTS, "positions": positions, "venues": venues, "hedges": hedges,
        "limits": {"net_delta": {"BTC": [-20, 20]}, "linear": [{"coefficients": {"ETHP": 1.0, "BTCC": 0.5}, "upper": 40}]},
        "objective": "min_margin",
    }


def assert_same(route, full) -> None:
    assert route.status == full.status == "optimal", (route.solver.attempts, full.solver.attempts)
    assert route.solver.solver == "SCENARIO", route.solver.attempts
    assert route.verification.passed
    assert route.objective_value == pytest.approx(full.objective_value, rel=1e-6)
    cert = route.certificate
    assert cert is not None and cert["converged"]
    assert cert["lower_bound"] <= route.objective_value + 1e-6 * abs(route.objective_value)
    assert cert["gap"] <= 1e-6 * max(1.0, abs(route.objective_value))
    assert route.shadow_prices["venues"] == {v: 1.0 for v in route.margins["venue"]}


@pytest.mark.parametrize(("seed", "es_only"), [(1, False), (2, False), (3, True), (4, True)])
def test_route_matches_the_full_program(tmp_path, seed, es_only):
    case = load(case_doc(seed, es_only=es_only), tmp_path)
    problem = MarginProblem(case, backend="scenario")
    route = marginopt.optimizer.run(problem)
    full = marginopt.optimize(case, solver="FULL")
    assert_same(route, full)
    # ES alone goes to the dual, unless a venue's floor binds (seed 4: then the primal with floors).
    assert problem.backend.lp.method == ("dual" if es_only and not problem.backend.floor else "primal")
    assert problem.backend.floor == (seed == 4)
    # The limits bind or not as in the full program: both plans respect them (verified), and the
    # hedges differ only where the optimum is not unique, so compare what they cost, not the units.
    assert route.costs["margin"] + route.costs["hedge"] == pytest.approx(full.objective_value, rel=1e-6)


def _matrix_case(tmp_path, losses: np.ndarray, held: float, bound: float, cost: float, alpha: float) -> marginopt.Case:
    """One ES venue on a loss matrix: column A held, column B a hedge candidate."""
    pd.DataFrame({"A": losses[:, 0], "B": losses[:, 1]}).to_csv(tmp_path / "losses.csv", index=False)
    doc = {
        "format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20",
        "market": {"prices": {"X": 1.0}},
        "instruments": [{"id": "A", "kind": "perpetual", "underlying": "X"}, {"id": "B", "kind": "perpetual", "underlying": "X"}],
        "positions": [{"venue": "V", "instrument": "A", "quantity": held}],
        "venues": {"V": {"initial_margin": {"kind": "expected_shortfall", "alpha": alpha,
                                            "scenarios": {"kind": "matrix", "file": "losses.csv"}}}},
        "hedges": [{"venue": "V", "instrument": "B", "max_buy": bound, "max_sell": bound, "cost_per_unit": cost}],
        "objective": "min_margin",
    }
    return load(doc, tmp_path)


def test_a_floor_that_binds_is_solved_with_floors(tmp_path):
    """Buying B gains in every scenario, so the unfloored ES falls below zero; the margin is
    floored at zero, so the optimum buys only what brings ES to zero (hand check below)."""
    rng = np.random.default_rng(5)
    a = rng.normal(0.0, 1.0, 400)
    b = -1.0 - rng.uniform(0.0, 0.5, 400)  # a loss of -1 to -1.5 per unit: a gain everywhere
    case = _matrix_case(tmp_path, np.column_stack([a, b]), held=1.0, bound=50.0, cost=0.01, alpha=0.9)
    route = marginopt.optimize(case, solver="SCENARIO")
    full = marginopt.optimize(case, solver="FULL")
    assert_same(route, full)
    # Margin zero at the optimum, and no more of B bought than that needs (it costs 0.01 a unit).
    assert route.margins["after"].iloc[0] == pytest.approx(0.0, abs=1e-7)
    h = float(route.hedges["quantity"].iloc[0])
    es = marginopt.optimizer.MarginProblem(case).parts[0].book.initial
    assert 0 < h < 50
    assert es.evaluate(np.array([1.0, h * (1 - 1e-6)])) > 0.0  # any less and the margin is positive


def test_infeasible_limits_are_reported_with_what_is_short(tmp_path):
    doc = case_doc(4, n=600)
    doc["limits"]["linear"] = [{"coefficients": {"ETHP": 1.0}, "lower": 200.0}]  # three venues x 30 at most
    case = load(doc, tmp_path)
    route = marginopt.optimize(case, solver="SCENARIO")
    full = marginopt.optimize(case, solver="FULL")
    # Generation's elastic min_margin program weighs only the slacks, so its ES levels are in no row
    # and have no value: refining them raised a TypeError instead of naming what is short.
    generated = marginopt.optimize(case, solver="GENERATE")
    assert route.status == full.status == generated.status == "infeasible"
    assert dict(route.shortfalls) == pytest.approx(dict(full.shortfalls), rel=1e-6)
    assert dict(generated.shortfalls) == pytest.approx(dict(full.shortfalls), rel=1e-6)
    assert dict(route.shortfalls)["linear limit 1 below 200"] == pytest.approx(110.0, rel=1e-6)


def test_forcing_the_route_where_it_does_not_apply_says_why(tmp_path):
    doc = case_doc(1, n=500)
    doc["objective"] = "min_cost"
    with pytest.raises(MarginoptError, match="min_margin"):
        marginopt.optimize(load(doc, tmp_path), solver="SCENARIO")
    doc = case_doc(1, n=500)
    doc["venues"]["v1"]["initial_margin"] = {"kind": "fixed_rate", "rate": 0.01}
    with pytest.raises(MarginoptError, match="v1"):
        marginopt.optimize(load(doc, tmp_path), solver="SCENARIO")


def test_auto_chooses_the_route_by_size_and_a_market_move_reuses_the_working_sets(tmp_path):
    doc = case_doc(6)
    doc["venues"]["v0"]["initial_margin"]["scenarios"]["n"] = 25_000  # above LARGE_SCENARIOS
    case = load(doc, tmp_path)
    problem = MarginProblem(case)
    assert problem.backend.name == "scenario"
    first = marginopt.optimizer.run(problem)
    assert_same(first, marginopt.optimize(case, solver="FULL"))
    moved = dict(doc)
    moved["market"] = {**doc["market"], "prices": {**PRICES, "BTC": PRICES["BTC"] * 1.01}}
    moved_case = load(moved, tmp_path)
    problem.update(moved_case)
    warm = marginopt.optimizer.run(problem, warm=True)
    assert_same(warm, marginopt.optimize(moved_case, solver="FULL"))
    assert warm.certificate["rounds"] <= first.certificate["rounds"]
    # min_cost puts collateral in play: the cvxpy generation route instead.
    doc["objective"] = "min_cost"
    other = MarginProblem(load(doc, tmp_path))
    assert other.backend.name == "generate"


def test_auto_takes_the_route_at_any_size_and_a_forced_highs_does_not(tmp_path):
    """Below LARGE_SCENARIOS too: every program the scenario solver can hold goes there (issue 15),
    to the same optimum as every scenario in one program; a forced HiGHS solves the program in
    cvxpy as asked, and the route only from LARGE_SCENARIOS up."""
    doc = case_doc(6)
    doc["venues"]["v0"]["initial_margin"]["scenarios"]["n"] = 500
    case = load(doc, tmp_path)
    problem = MarginProblem(case)
    assert problem.backend.name == "scenario"
    auto = marginopt.optimizer.run(problem)
    assert auto.solver.solver == "SCENARIO"
    assert_same(auto, marginopt.optimize(case, solver="FULL"))
    forced = MarginProblem(case, solver="HIGHS")
    assert forced.backend.name != "scenario" and forced.solver == "HIGHS"
