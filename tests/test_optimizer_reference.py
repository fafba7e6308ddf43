"""Reference allocation problems whose optimum and duals are known by hand, with every installed solver."""

from __future__ import annotations

import pytest

import marginopt
from marginopt.solvers import ProblemClass, installed_solvers
from marginopt.solvers.run import CAN_SOLVE

# Every installed solver that supports LPs; the others are listed as skipped with the reason.
LP_SOLVERS = [
    s if ProblemClass.LP in CAN_SOLVE[s] else pytest.param(s, marks=pytest.mark.skip(
        reason=f"{s} does not take LPs (marginopt/solvers/run.py says why)"))
    for s in installed_solvers()
]
PERP = [{"id": "BTCP", "kind": "perpetual", "underlying": "BTC"}, {"id": "ETHP", "kind": "perpetual", "underlying": "ETH"}]
MARKET = {"prices": {"BTC": 100000.0, "ETH": 2000.0, "TBILL": 100.0, "X": 1.0, "USDC": 1.0}}


def fixed_margin(rate: float) -> dict:
    return {"kind": "fixed_rate", "rate": rate}


def tol(solver: str) -> dict:
    return {"rel": 1e-7, "abs": 1e-6}


@pytest.mark.parametrize("solver", LP_SOLVERS)
def test_cheapest_to_deliver_two_venues_two_assets(write_case, solver):
    # Venue A needs 100 (1 BTC perp x 100000 x 0.1%), venue B 200 (1 ETH perp x 2000 x 10%).
    # At A: T-bills cost 0.04 / 0.98 = 0.0408 per unit of value covered, USD 0.05: T-bills first,
    # but only 0.5 units (gross 50, value 49) exist; USD covers the other 51. B takes 200 USD.
    # Cost 0.04 * 50 + 0.05 * (51 + 200) = 14.55.
    # Duals: one more unit of margin at A or B is covered by USD: 0.05. One more unit of value of
    # T-bills replaces 0.98 of USD at A: -0.05 * 0.98 + 0.04 = -0.009. USD inventory is slack: 0.
    case = marginopt.load_case(write_case(
        market=MARKET, instruments=PERP,
        positions=[{"venue": "A", "instrument": "BTCP", "quantity": 1}, {"venue": "B", "instrument": "ETHP", "quantity": 1}],
        venues={"A": {"initial_margin": fixed_margin(0.001), "collateral": {"USD": {"haircut": 0.0}, "TBILL": {"haircut": 0.02}}},
                "B": {"initial_margin": fixed_margin(0.1), "collateral": {"USD": {"haircut": 0.0}}}},
        treasury={"USD": {"quantity": 1e6, "cost": 0.05}, "TBILL": {"quantity": 0.5, "cost": 0.04}},
        objective="min_cost",
    ))
    r = marginopt.optimize(case, solver=solver)
    assert r.status == "optimal", r.solver.attempts
    t = tol(solver)
    assert r.objective_value == pytest.approx(14.55, **t)
    alloc = {(row.venue, row.asset): row.quantity for row in r.allocation.itertuples()}
    assert alloc[("A", "TBILL")] == pytest.approx(0.5, **t)
    assert alloc[("A", "USD")] == pytest.approx(51.0, **t)
    assert alloc[("B", "USD")] == pytest.approx(200.0, **t)
    assert r.shadow_prices["venues"] == pytest.approx({"A": 0.05, "B": 0.05}, **t)
    assert r.shadow_prices["assets"]["TBILL"] == pytest.approx(-0.009, **t)
    assert r.shadow_prices["assets"]["USD"] == pytest.approx(0.0, abs=1e-6)
    assert r.verification.passed


@pytest.mark.parametrize("solver", LP_SOLVERS)
def test_tiered_haircut_makes_splitting_optimal(write_case, solver):
    # Margin 150. X counts 100% up to 100 of value, 50% from 100 to 300; it costs 1%, so 1% per
    # unit covered in the first tier and 2% beyond; USDC costs 1.5% flat. Optimum: 100 of X and 50
    # of USDC, cost 1 + 0.75 = 1.75; one more unit of margin is USDC: dual 0.015.
    case = marginopt.load_case(write_case(
        market=MARKET, instruments=PERP,
        positions=[{"venue": "V", "instrument": "BTCP", "quantity": 1}],
        venues={"V": {"initial_margin": fixed_margin(0.0015),
                      "collateral": {"X": {"tiers": [[100, 1.0], [300, 0.5]]}, "USDC": {"haircut": 0.0}}}},
        treasury={"X": {"quantity": 1000, "cost": 0.01}, "USDC": {"quantity": 1000, "cost": 0.015}},
    ))
    r = marginopt.optimize(case, solver=solver)
    assert r.status == "optimal", r.solver.attempts
    t = tol(solver)
    alloc = {row.asset: row.quantity for row in r.allocation.itertuples()}
    assert alloc["X"] == pytest.approx(100.0, **t) and alloc["USDC"] == pytest.approx(50.0, **t)
    assert r.objective_value == pytest.approx(1.75, **t)
    assert r.shadow_prices["venues"]["V"] == pytest.approx(0.015, **t)


@pytest.mark.parametrize("solver", LP_SOLVERS)
def test_binding_concentration_limit(write_case, solver):
    # Margin 100; USDC costs 1% but may be at most 50% of the credited total; USD costs 5%.
    # Optimum 50 + 50: cost 0.5 + 2.5 = 3.0. One more unit of margin needs half USDC, half USD:
    # dual 0.5 * 0.01 + 0.5 * 0.05 = 0.03.
    case = marginopt.load_case(write_case(
        market=MARKET, instruments=PERP,
        positions=[{"venue": "V", "instrument": "BTCP", "quantity": 1}],
        venues={"V": {"initial_margin": fixed_margin(0.001), "collateral": {"USDC": {"haircut": 0.0}, "USD": {"haircut": 0.0}},
                      "concentration": {"USDC": 0.5}}},
        treasury={"USDC": {"quantity": 1000, "cost": 0.01}, "USD": {"quantity": 1000, "cost": 0.05}},
    ))
    r = marginopt.optimize(case, solver=solver)
    assert r.status == "optimal", r.solver.attempts
    t = tol(solver)
    alloc = {row.asset: row.quantity for row in r.allocation.itertuples()}
    assert alloc["USDC"] == pytest.approx(50.0, **t) and alloc["USD"] == pytest.approx(50.0, **t)
    assert r.objective_value == pytest.approx(3.0, **t)
    assert r.shadow_prices["venues"]["V"] == pytest.approx(0.03, **t)


GRID = {"kind": "scenario_max", "scenarios": {"kind": "grid", "price_moves": [-0.1, 0.0, 0.1]}}
FUT = [*PERP, {"id": "BTCF", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25", "price": 100000}]
HEDGE = [{"venue": "G", "instrument": "BTCF", "max_buy": 10, "max_sell": 10, "cost_per_unit": 5.0}]


@pytest.mark.parametrize("solver", LP_SOLVERS)
def test_futures_hedge_offsets_the_grid_worst_case(write_case, solver):
    # Long 2 BTC perps under +-10%: margin 2 * 100000 * 0.1 = 20000. Selling h futures leaves
    # 10000 |2 + h|, plus 5 |h| in costs: the optimum sells exactly 2 (margin 0, cost 10).
    case = marginopt.load_case(write_case(
        market=MARKET, instruments=FUT, positions=[{"venue": "G", "instrument": "BTCP", "quantity": 2}],
        venues={"G": {"initial_margin": GRID}}, hedges=HEDGE, objective="min_margin",
    ))
    r = marginopt.optimize(case, solver=solver)
    assert r.status == "optimal", r.solver.attempts
    t = tol(solver)
    assert r.hedges.set_index("instrument").loc["BTCF", "quantity"] == pytest.approx(-2.0, **t)
    assert r.margins.set_index("venue").loc["G", "before"] == pytest.approx(20000.0, rel=1e-12)
    assert r.margins.set_index("venue").loc["G", "after"] == pytest.approx(0.0, abs=1e-5)
    assert r.objective_value == pytest.approx(10.0, **t)
    assert r.shadow_prices["venues"]["G"] == 1.0


@pytest.mark.parametrize("solver", LP_SOLVERS)
def test_hedge_just_enough_to_be_covered(write_case, solver):
    # Collateral fixed at 5000 USD, margin 10000 |2 + h|: the cheapest covered plan sells 1.5
    # futures (|2 - 1.5| * 10000 = 5000) for 7.5. One more unit of margin must be offset by
    # 1/10000 more futures at 5 each: dual 0.0005.
    case = marginopt.load_case(write_case(
        market=MARKET, instruments=FUT, positions=[{"venue": "G", "instrument": "BTCP", "quantity": 2}],
        venues={"G": {"initial_margin": GRID, "collateral": {"USD": {"haircut": 0.0}}, "posted": {"USD": 5000}}},
        hedges=HEDGE, objective="min_cost",
    ))
    r = marginopt.optimize(case, solver=solver, mode="hedge")
    assert r.status == "optimal", r.solver.attempts
    t = tol(solver)
    assert r.hedges.set_index("instrument").loc["BTCF", "quantity"] == pytest.approx(-1.5, **t)
    assert r.objective_value == pytest.approx(7.5, **t)
    assert r.shadow_prices["venues"]["G"] == pytest.approx(0.0005, **t)


@pytest.mark.parametrize("solver", LP_SOLVERS)
def test_infeasible_case_reports_the_shortfall(write_case, solver):
    # Margin 1000 (1 BTC perp x 1%); eligible: 300 USD posted + 300 USD in the treasury; T-bills
    # are not eligible. Short by 1000 - 600 = 400.
    case = marginopt.load_case(write_case(
        market=MARKET, instruments=PERP, positions=[{"venue": "V", "instrument": "BTCP", "quantity": 1}],
        venues={"V": {"initial_margin": fixed_margin(0.01), "collateral": {"USD": {"haircut": 0.0}}, "posted": {"USD": 300}}},
        treasury={"USD": {"quantity": 300, "cost": 0.05}, "TBILL": {"quantity": 1000, "cost": 0.01}},
    ))
    r = marginopt.optimize(case, solver=solver)
    assert r.status == "infeasible"
    assert len(r.shortfalls) == 1
    name, amount = r.shortfalls[0]
    assert name.startswith("V:") and amount == pytest.approx(400.0, **tol(solver))
    assert r.to_dict()["infeasibility"] == [{"constraint": name, "shortfall": amount}]
