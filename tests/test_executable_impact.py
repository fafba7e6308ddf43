"""Impact costs ``k h^2`` in an executable plan (issue 17): cut in exactly by the mixed-integer backend.

One future F (price 100, delta 1) at a venue margining 10% of notional, long 10 F held: the margin
is ``10 |10 + h|``. Under ``min_margin`` with a hedge cost ``1.5 |h| + h^2``, selling ``h`` in
[-10, 0] costs ``f(h) = 10 (10 + h) + 1.5 (-h) + h^2 = 100 + 8.5 h + h^2`` (buying only adds margin).
The continuous optimum is at ``h = -4.25``: ``100 - 36.125 + 18.0625 = 81.9375``. Every figure
below is worked out by hand from that, never taken from the solver's earlier output.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

import marginopt
from marginopt.models.case import load_case_data
from marginopt.optimizer.backends.mip import _ImpactCuts

CASE: dict[str, Any] = {
    "format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20",
    "market": {"prices": {"BTC": 100.0, "USDC": 1.0}, "rate": 0.0},
    "instruments": [{"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2026-12-20"}],
    "positions": [{"venue": "v", "instrument": "F", "quantity": 10}],
    "venues": {"v": {"initial_margin": {"kind": "fixed_rate", "rate": 0.1},
                     "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 1e6}}},
    "hedges": [{"venue": "v", "instrument": "F", "max_buy": 10, "max_sell": 10, "cost_per_unit": 1.5, "impact": 1.0}],
    "objective": "min_margin",
}


def case(**terms: float) -> Any:
    raw = copy.deepcopy(CASE)
    raw["hedges"][0].update(terms)
    return load_case_data(raw)


def test_the_continuous_optimum_by_hand() -> None:
    result = marginopt.optimize(case(), mode="hedge")
    assert result.status == "optimal"
    assert result.objective_value == pytest.approx(81.9375, abs=1e-5)
    assert result.hedges["quantity"].tolist() == pytest.approx([-4.25], abs=1e-4)


@pytest.mark.parametrize(("lot", "hedge", "cost"), [(1.0, -4.0, 82.0), (3.0, -3.0, 83.5), (2.5, -5.0, 82.5)])
def test_impact_with_lots_is_exact_at_whole_lots(lot: float, hedge: float, cost: float) -> None:
    """f at whole contracts: -3 -> 83.5, -4 -> 82, -5 -> 82.5, -6 -> 85: lots of 1 give -4 at 82.
    Lots of 3: -3 (83.5) or -6 (85): -3. Lots of 2.5: -2.5 (85), -5 (82.5), -7.5 (92.5): -5. The
    epigraph is cut by secants through consecutive lots, so the plan's impact cost (h^2, 16 at -4)
    is the program's exactly, and the bound is the incumbent: proven optimal."""
    result = marginopt.optimize(case(lot_size=lot), mode="hedge")
    assert result.status == "optimal" and result.verification is not None and result.verification.passed
    assert result.solver.solver == "HIGHS"
    assert result.hedges["quantity"].tolist() == [hedge]
    assert result.objective_value == pytest.approx(cost, abs=1e-6)
    cert = result.certificate
    assert cert is not None and cert["proven_optimal"] is True
    assert cert["incumbent"] == pytest.approx(cost, abs=1e-6)
    assert cost - 1e-6 <= cert["bound"] + 1e-6 and cert["bound"] <= cert["incumbent"] + 1e-9
    assert cert["outer_rounds"] >= 1


def test_impact_with_a_min_trade_that_does_not_bind_is_the_continuous_optimum() -> None:
    """min_trade 2: the continuous optimum -4.25 trades more than 2, so it stands (81.9375), found by
    tangents at each plan; the reported bound is below the true optimum and within the gap of it.
    The cost is flat at its minimum (h off by d costs d^2), so tangents stop where the plan's cost is
    within 1e-5 of the optimum, the quantity within sqrt(1e-5) of -4.25."""
    result = marginopt.optimize(case(min_trade=2.0), mode="hedge")
    assert result.status == "optimal" and result.verification is not None and result.verification.passed
    assert result.hedges["quantity"].tolist() == pytest.approx([-4.25], abs=3.2e-3)
    assert result.objective_value == pytest.approx(81.9375, abs=1e-5)
    cert = result.certificate
    assert cert is not None and cert["proven_optimal"] is True
    assert cert["bound"] <= 81.9375 + 1e-6
    assert cert["incumbent"] - cert["bound"] <= 1e-6 * abs(cert["incumbent"]) + 1e-5


def test_impact_with_a_min_trade_that_binds() -> None:
    """min_trade 5: h = 0 (100) or |h| >= 5, where f rises past -4.25, so h = -5: 100 - 42.5 + 25 = 82.5."""
    result = marginopt.optimize(case(min_trade=5.0), mode="hedge")
    assert result.status == "optimal" and result.verification is not None and result.verification.passed
    assert result.hedges["quantity"].tolist() == pytest.approx([-5.0], abs=1e-6)
    assert result.objective_value == pytest.approx(82.5, abs=1e-5)
    cert = result.certificate
    assert cert is not None and cert["proven_optimal"] is True and cert["bound"] <= 82.5 + 1e-6


def test_cuts_never_lie_above_the_square() -> None:
    """A secant through consecutive lots is below z^2 at every whole lot; a tangent everywhere."""
    import numpy as np

    cuts = _ImpactCuts(np.array([0, 1]), None, None, np.array([0.1, 0.0]), np.array([1.0, 1.0]))
    assert cuts.add(np.array([0.3, 0.37]), np.array([0.0, 0.0])) == 3
    assert cuts.add(np.array([0.3, 0.37]), np.array([0.0, 0.0])) == 0  # held already
    assert cuts.add(np.array([0.3, 0.37]), np.array([0.09, 0.1369])) == 0  # exact: none needed
    grid, line = np.arange(-10, 11) * 0.1, np.linspace(-1, 1, 201)
    for (p, q) in cuts.points[0]:
        assert np.all((p + q) * grid - p * q <= grid * grid + 1e-15)
    for (p, q) in cuts.points[1]:
        assert np.all((p + q) * line - p * q <= line * line + 1e-15)


def test_the_executable_demo_is_proven_optimal() -> None:
    """docs/examples/demo_executable: the demo with its venues' lot sizes and minimum trades, impact
    costs on every hedge but the inverse perpetual; proven optimal, verified, above the continuous optimum."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "demo_executable" / "case.yaml"
    result = marginopt.optimize(marginopt.load_case(path))
    assert result.status == "optimal" and result.verification is not None and result.verification.passed
    cert = result.certificate
    assert cert is not None and cert["proven_optimal"] is True and cert["relative_gap"] <= 1e-6
    continuous = marginopt.optimize(marginopt.load_case(marginopt.demo_case_path()))
    assert cert["incumbent"] >= continuous.objective_value - 1e-6 * abs(continuous.objective_value)
