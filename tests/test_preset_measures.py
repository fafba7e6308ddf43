"""The measure kinds and grid options the venue presets added, against hand calculation.

delta_requirement and basis_shift (convex): numpy ``evaluate`` against the cvxpy form with
every installed solver, as tests/test_measures.py does for the others, plus convexity and
homogeneity. spread_credit (not convex): exact by hand, its bound never below it. Grid
options (long-term vega power, a floor on vol-up shocks, scan ranges, coin-margined
losses, covered underlyings) against hand pricing.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import marginopt
from marginopt import CaseError, NonConvexMeasureError
from marginopt.models import VenueBook
from marginopt.models.margin import DeltaRequirement, ScenarioMax, SpreadCredit, SumMeasure, ZeroMeasure, convex_form
from marginopt.models.margin.spread_credit import InterSpread, SpreadLeg
from marginopt.models.scenarios.grid import VolScaling
from marginopt.solvers import installed_solvers
from tests.test_measures import SOLVER_RTOL, datas, make_losses, portfolios, positions, random_data, scale_of
from tests.test_pricing import bs_reference

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in matmul:RuntimeWarning:cvxpy")

# ---------------------------------------------------------------------------
# delta_requirement


def test_delta_requirement_by_hand() -> None:
    # Paradex's example: deltas +1 (perp) and 0.3 per call, q = (1, -5), spot 70,000, 2% / 1%:
    # net -0.5, gross 2.5, hedged (2.5 - 0.5) / 2 = 1 -> (0.02 * 0.5 + 0.01 * 1) * 70,000 = 1,400
    m = DeltaRequirement("md", 0.02, 0.01, np.array([[1.0, 0.3]]), np.array([70_000.0]), ("BTC",))
    q = np.array([1.0, -5.0])
    assert m.evaluate(q) == pytest.approx(1400.0, rel=1e-14)
    assert float(q @ m.gradient(q)) == pytest.approx(1400.0, rel=1e-14)  # Euler: positively homogeneous
    # two underlyings, reported apart: u1 holds instrument 2 only (net = gross = 2 * 0.5 = 1) -> 0.02 * 1 * 100
    m2 = DeltaRequirement("md", 0.02, 0.01, np.array([[1.0, 0.3, 0.0], [0.0, 0.0, 0.5]]), np.array([70_000.0, 100.0]), ("A", "B"))
    assert m2.components(np.array([1.0, -5.0, 2.0])) == pytest.approx({"md[A]": 1400.0, "md[B]": 2.0})
    # gross r (unhedged r, hedged 2r): r * sum |delta q| * S = 0.01 * 2.5 * 70,000
    g = DeltaRequirement("g", 0.01, 0.02, np.array([[1.0, 0.3]]), np.array([70_000.0]), ("BTC",))
    assert g.evaluate(q) == pytest.approx(1750.0, rel=1e-14)


def _names(d: Any) -> tuple[str, ...]:
    return tuple(f"u{k}" for k in range(len(d.prices)))


DELTA_BUILDERS = {
    "paradex": lambda d: DeltaRequirement("md", 0.02, 0.01, d.delta, d.prices, _names(d)),
    "gross_only": lambda d: DeltaRequirement("g", 0.03, 0.06, d.delta, d.prices, _names(d)),
    "net_only": lambda d: DeltaRequirement("n", 0.05, 0.0, d.delta, d.prices, _names(d)),
}


@pytest.mark.parametrize("solver", installed_solvers())
@pytest.mark.parametrize("kind", list(DELTA_BUILDERS))
def test_delta_requirement_evaluate_matches_cvxpy(solver: str, kind: str) -> None:
    data = random_data(4, (40,), 6)
    measure = DELTA_BUILDERS[kind](data)
    x, qp = cp.Variable(data.n), cp.Parameter(data.n)
    expr, cons = measure.cvxpy(x)
    prob = cp.Problem(cp.Minimize(expr), [*cons, x == qp])
    assert prob.is_dcp() and prob.is_dpp()
    for q in portfolios(data.n, seed=zlib.crc32(kind.encode())):
        qp.value = q
        prob.solve(solver=solver)
        assert prob.status == cp.OPTIMAL
        want = measure.evaluate(q)
        assert prob.value == pytest.approx(want, rel=SOLVER_RTOL[solver], abs=SOLVER_RTOL[solver])


@settings(max_examples=50, deadline=None)
@given(data=st.data(), kind=st.sampled_from(list(DELTA_BUILDERS)), t=st.floats(0.01, 100))
def test_delta_requirement_convex_and_homogeneous(data: st.DataObject, kind: str, t: float) -> None:
    d = data.draw(datas())
    q1, q2 = data.draw(positions(d.n)), data.draw(positions(d.n))
    m = DELTA_BUILDERS[kind](d)
    slack = 1e-9 * scale_of(d, q1, q2)
    assert m.evaluate(0.5 * (q1 + q2)) <= 0.5 * (m.evaluate(q1) + m.evaluate(q2)) + slack
    assert m.evaluate(t * q1) == pytest.approx(t * m.evaluate(q1), rel=1e-9, abs=slack * t)
    assert float(q1 @ m.gradient(q1)) == pytest.approx(m.evaluate(q1), rel=1e-9, abs=slack)


def _venue_case(write_case: Any, measure: dict[str, Any], instruments: list[dict[str, Any]], q: dict[str, float]) -> Any:
    return marginopt.load_case(write_case(
        instruments=instruments,
        positions=[{"venue": "v", "instrument": i, "quantity": x} for i, x in q.items()],
        venues={"v": {"initial_margin": measure}},
    ))


def test_delta_requirement_parse_refuses_non_convex(write_case: Any) -> None:
    inst = [{"id": "P", "kind": "perpetual", "underlying": "BTC"}]
    with pytest.raises(CaseError, match=r"unhedged >= hedged / 2 = 0\.02.*convex"):
        _venue_case(write_case, {"kind": "delta_requirement", "unhedged": 0.01, "hedged": 0.04}, inst, {"P": 1})
    with pytest.raises(CaseError, match="either gross alone or unhedged and hedged"):
        _venue_case(write_case, {"kind": "delta_requirement", "gross": 0.01, "hedged": 0.04}, inst, {"P": 1})


def test_delta_requirement_applies_to_instrument_kinds(margin_of: Any) -> None:
    # Deribit's roll shock: 1% of gross size of futures and perpetuals only. Long 2 perps (delta 2) and
    # short 1 future (delta 1 at rate 0) and short 10 calls (left out): 0.01 * (2 + 1) * 100,000 = 3,000.
    report = margin_of(
        instruments=[{"id": "P", "kind": "perpetual", "underlying": "BTC"},
                     {"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25"},
                     {"id": "C", "kind": "option", "underlying": "BTC", "expiry": "2026-12-25", "strike": 100000, "right": "call"}],
        positions=[{"venue": "v", "instrument": "P", "quantity": 2}, {"venue": "v", "instrument": "F", "quantity": -1},
                   {"venue": "v", "instrument": "C", "quantity": -10}],
        venues={"v": {"initial_margin": {"kind": "delta_requirement", "gross": 0.01, "applies_to": ["future", "perpetual"]}}},
    )
    assert report["v"].initial_margin == pytest.approx(3000.0, rel=1e-12)


def test_basis_shift_by_hand(margin_of: Any) -> None:
    # Long 1 perp, short 1 future 73 days out (T = 0.2, delta 1 at rate 0): the perp has no basis, the future
    # loses 0.2 x 5% x 100,000 = 1,000 when its annualised basis moves by 5%.
    report = margin_of(
        instruments=[{"id": "P", "kind": "perpetual", "underlying": "BTC"},
                     {"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2027-02-01"}],
        positions=[{"venue": "v", "instrument": "P", "quantity": 1}, {"venue": "v", "instrument": "F", "quantity": -1}],
        venues={"v": {"initial_margin": {"kind": "basis_shift", "annual_move": 0.05}}},
    )
    assert report["v"].initial_margin == pytest.approx(1000.0, rel=1e-12)


# ---------------------------------------------------------------------------
# spread_credit


def credit_measure(caps: tuple[float, ...] = (100.0, 100.0, 100.0)) -> SpreadCredit:
    # Three underlyings A, B, C, one instrument each (delta 1 per unit), one scenario group each:
    # scan risk per unit of |position| 10 (A), 20 (B), 30 (C), whichever the sign.
    m = np.zeros((6, 3))
    for k, r in enumerate((10.0, 20.0, 30.0)):
        m[2 * k, k], m[2 * k + 1, k] = r, -r
    sl = make_losses(m, None, (2, 2, 2))
    sl = type(sl)(sl.labels, sl.weights, sl.instrument_ids, sl.matrix, ("A", "B", "C"), sl.group_bounds)
    spreads = (
        InterSpread(0.5, (SpreadLeg("A", 1.0, "A"), SpreadLeg("B", 1.0, "B"))),
        InterSpread(0.4, (SpreadLeg("A", 1.0, "A"), SpreadLeg("C", 2.0, "B"))),
    )
    return SpreadCredit("credit", sl, np.eye(3), np.array(caps), ("A", "B", "C"), spreads)


def test_spread_credit_by_hand() -> None:
    c = credit_measure()
    # q = (3, -1, -4.5): scan 30, 20, 135 -> WFPR 10, 20, 30. Spread 1 (A long, B short): n = min(3, 1) = 1,
    # credit 1 * 10 * .5 + 1 * 20 * .5 = 15; A has 2 left. Spread 2 (A vs C, 1:2): n = min(2, floor(4.5 / 2)) = 2,
    # credit 2 * 1 * 10 * .4 + 2 * 2 * 30 * .4 = 8 + 48 = 56. Total 71.
    q = np.array([3.0, -1.0, -4.5])
    assert c.evaluate(q) == pytest.approx(-71.0, rel=1e-14)
    assert c.credits(q) == pytest.approx([5.0 + 8.0, 10.0, 48.0], rel=1e-14)
    assert float(q @ c.gradient(q)) == pytest.approx(-71.0, rel=1e-14)  # the credit split over positions
    # the other direction (A short, B and C long) forms the same spreads
    assert c.evaluate(-q) == pytest.approx(-71.0, rel=1e-14)
    # B long with A long: spread 1 not formed; spread 2: n = min(3, 2) = 2 -> 2 * 10 * .4 + 4 * 30 * .4 = 56
    assert c.evaluate(np.array([3.0, 1.0, -4.5])) == pytest.approx(-56.0, rel=1e-14)
    # part of a spread is no spread: C -1.9 -> floor(0.95) = 0
    assert c.evaluate(np.array([3.0, 0.0, -1.9])) == 0.0
    # WFPR capped at the scan range per unit: caps 4 -> spread 1 earns 1 * 4 * .5 * 2 = 4; spread 2 2 * 4 * .4 + 4 * 4 * .4 = 9.6
    assert credit_measure((4.0, 4.0, 4.0)).evaluate(q) == pytest.approx(-13.6, rel=1e-14)


def test_spread_credit_is_bounded_by_no_credit() -> None:
    c = credit_measure()
    assert not c.convex
    with pytest.raises(NonConvexMeasureError):
        c.cvxpy(cp.Variable(3))
    bound = c.convex_bound()
    assert isinstance(bound, ZeroMeasure) and bound.convex
    rng = np.random.default_rng(3)
    scan = ScenarioMax("scan", c.losses)
    total = SumMeasure("risk", [scan, c])
    assert not total.convex
    relaxed = convex_form(total)
    x = cp.Variable(3)
    expr, cons = relaxed.cvxpy(x)
    for q in rng.normal(0.0, 3.0, size=(20, 3)):
        assert bound.evaluate(q) >= c.evaluate(q)
        # scan minus credit stays >= 0 (credit rates <= 1, consumed delta <= net delta)
        assert total.evaluate(q) >= 0.0
        prob = cp.Problem(cp.Minimize(expr), [*cons, x == q])
        prob.solve(solver="CLARABEL")
        assert prob.value == pytest.approx(scan.evaluate(q), rel=1e-7, abs=1e-7)
        assert relaxed.evaluate(q) >= total.evaluate(q)


def test_spread_credit_needs_a_per_underlying_grid(write_case: Any) -> None:
    inst = [{"id": "P", "kind": "perpetual", "underlying": "BTC"}]
    measure = {"kind": "spread_credit", "scenarios": {"kind": "grid", "price_moves": [0.1], "per_underlying": False}, "spreads": []}
    with pytest.raises(CaseError, match="one group per underlying"):
        _venue_case(write_case, measure, inst, {"P": 1})


# ---------------------------------------------------------------------------
# Grid options


def test_long_term_vega_power() -> None:
    s = VolScaling(30.0, 0.3, 1.0, 0.13)
    assert s.factor(np.array([10.0, 0.5, 30.0, 60.0])) == pytest.approx([3.0**0.3, 30.0**0.3, 1.0, 0.5**0.13], rel=1e-15)
    assert VolScaling(30.0, 0.3).factor(np.array([60.0])) == pytest.approx([0.5**0.3], rel=1e-15)


def test_min_vol_up_floors_only_vol_up_scenarios(write_case: Any) -> None:
    # One call, vol 0.2, 73 days (T = 0.2), spot 100,000, strike 100,000, rate 0. Vol moves -10%, 0, +10%, no
    # scaling: shocked vols 0.18, 0.2 and max(0.22, 0.5) = 0.5 (min_vol_up). Loss of a long call = C0 - C1.
    grid = {"kind": "grid", "price_moves": [0.0, 0.05], "vol_moves": [-0.1, 0.0, 0.1], "min_vol_up": 0.5}
    case = _venue_case(write_case, {"kind": "scenario_max", "scenarios": grid},
                       [{"id": "C", "kind": "option", "underlying": "BTC", "expiry": "2027-02-01", "strike": 100000,
                         "right": "call", "vol": 0.2}], {"C": 1})
    book = VenueBook(case, "v")
    losses = book.scenarios(case.venues["v"].initial_margin.scenarios)  # type: ignore[attr-defined]
    t, c0 = 0.2, bs_reference(100000, 100000, 0.2, 0.0, 0.2, True)
    want = [c0 - bs_reference(100000 * (1 + m), 100000, t, 0.0, v, True) for m in (0.0, 0.05) for v in (0.18, 0.2, 0.5)]
    np.testing.assert_allclose(losses.matrix[:, 0], want, rtol=1e-9, atol=1e-7)


def test_scan_ranges_make_moves_multiples_of_each_range(margin_of: Any) -> None:
    # BTC range 10%, ETH 20%; moves +-1 range and an extreme 2 ranges at 35%. Long 1 BTC future (rate 0: F = S),
    # short 10 ETH perps: BTC worst at -1 range = 10,000 (the extreme gives 0.35 * 20,000 = 7,000);
    # ETH worst at +1 range = 10 * 3,000 * 0.2 = 6,000 (extreme +2: 0.35 * 12,000 = 4,200). Total 16,000.
    grid = {"kind": "grid", "price_moves": [-1.0, 1.0], "scan_ranges": {"BTC": 0.1, "ETH": 0.2},
            "extended": [{"price_move": 2.0, "weight": 0.35}, {"price_move": -2.0, "weight": 0.35}]}
    report = margin_of(
        instruments=[{"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25"},
                     {"id": "E", "kind": "perpetual", "underlying": "ETH"}],
        positions=[{"venue": "v", "instrument": "F", "quantity": 1}, {"venue": "v", "instrument": "E", "quantity": -10}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": grid}}},
    )
    assert report["v"].components == pytest.approx({"scenario_max[BTC]": 10000.0, "scenario_max[ETH]": 6000.0}, rel=1e-12)
    assert report["v"].worst_scenario == "BTC -1 range vol +0%"


def test_scan_ranges_errors(write_case: Any) -> None:
    inst = [{"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25"},
            {"id": "E", "kind": "perpetual", "underlying": "ETH"}]
    grid = {"kind": "grid", "price_moves": [-1.0, 1.0], "scan_ranges": {"BTC": 0.1}}
    case = _venue_case(write_case, {"kind": "scenario_max", "scenarios": grid}, inst, {"F": 1, "E": 1})
    with pytest.raises(CaseError, match="a scan range for every underlying.*E is on ETH"):
        marginopt.margin(case)
    with pytest.raises(CaseError, match=r"1 \+ r \* -2 > 0"):
        _venue_case(write_case, {"kind": "scenario_max", "scenarios": {**grid, "price_moves": [-2.0], "scan_ranges": {"BTC": 0.6}}},
                    inst[:1], {"F": 1})
    with pytest.raises(CaseError, match="with a price in market.prices"):
        _venue_case(write_case, {"kind": "scenario_max", "scenarios": {**grid, "scan_ranges": {"DOGE": 0.1}}}, inst[:1], {"F": 1})


def test_coin_margined_grid_counts_linear_losses_in_coin(margin_of: Any) -> None:
    # Long 1 linear BTC perp at 100,000: USD loss at -10% is 10,000; in BTC at the shocked price 10,000 / 90,000,
    # times today's 100,000 = 11,111.11. An inverse perp of face 100,000 loses that by itself: 100,000 x (1/0.9 - 1).
    grid = {"kind": "grid", "price_moves": [-0.1], "coin_margined": True}
    report = margin_of(
        instruments=[{"id": "L", "kind": "perpetual", "underlying": "BTC"},
                     {"id": "I", "kind": "perpetual", "underlying": "BTC", "settlement": "inverse", "multiplier": 100000}],
        positions=[{"venue": "lin", "instrument": "L", "quantity": 1}, {"venue": "inv", "instrument": "I", "quantity": 1}],
        venues={name: {"initial_margin": {"kind": "scenario_max", "scenarios": grid}} for name in ("lin", "inv")},
    )
    assert report["lin"].initial_margin == pytest.approx(100000.0 * 0.1 / 0.9, rel=1e-14)
    assert report["inv"].initial_margin == pytest.approx(100000.0 * (1 / 0.9 - 1), rel=1e-14)
    assert not math.isclose(report["lin"].initial_margin, 10000.0)
