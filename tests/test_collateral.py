"""Collateral: flat and tiered haircuts, concentration limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from marginopt.models.collateral import HaircutSchedule, credited_values


def test_tiered_haircut_from_the_issue():
    # 6,000 BTC at 20,000 USDT = 120M gross; 100% up to 100M, 97.5% from 100M to 120M:
    # 100M + 20M * 0.975 = 119.5M.
    tiers = HaircutSchedule(tiers=((100e6, 1.0), (120e6, 0.975)))
    assert tiers.value(6000 * 20000.0) == pytest.approx(119_500_000.0, rel=1e-15)
    # Above the last bound value counts zero.
    assert tiers.value(130e6) == pytest.approx(119_500_000.0, rel=1e-15)
    assert tiers.value(50e6) == pytest.approx(50e6)


def test_flat_haircut():
    assert HaircutSchedule(haircut=0.05).value(1000.0) == pytest.approx(950.0)


def test_tiered_value_is_concave_and_nondecreasing():
    s = HaircutSchedule(tiers=((1e6, 0.98), (5e6, 0.9), (2e7, 0.5)))
    x = np.linspace(0, 3e7, 3001)
    v = s.values(x)
    dv = np.diff(v)
    assert (dv >= -1e-9).all()
    assert (np.diff(dv) <= 1e-6).all()


def test_concentration_by_hand():
    # USDC 900k after haircut, BTC 259,350, USDC limited to 50% of the total:
    # c_USDC <= 0.5 (c_USDC + 259350) -> c_USDC <= 259350; total 518,700.
    c = credited_values({"USDC": 900_000.0, "BTC": 259_350.0}, {"USDC": 0.5})
    assert c == pytest.approx({"USDC": 259_350.0, "BTC": 259_350.0})
    # Not binding: USDC 100k is well under 50% of 359,350.
    c = credited_values({"USDC": 100_000.0, "BTC": 259_350.0}, {"USDC": 0.5})
    assert c == pytest.approx({"USDC": 100_000.0, "BTC": 259_350.0})
    # Two limited assets: A <= 0.3 T, B <= 0.3 T, C = 40 free: T = 40 / 0.4 = 100.
    c = credited_values({"A": 80.0, "B": 70.0, "C": 40.0}, {"A": 0.3, "B": 0.3})
    assert c == pytest.approx({"A": 30.0, "B": 30.0, "C": 40.0})


def _lp_total(values: list[float], shares: list[float]) -> float:
    """Largest credited total by linear programming: max sum c, 0 <= c <= v, c_a <= s_a sum c."""
    n = len(values)
    a_ub = np.array([[(1.0 if i == a else 0.0) - shares[a] for i in range(n)] for a in range(n)])
    res = linprog(-np.ones(n), A_ub=a_ub, b_ub=np.zeros(n), bounds=list(zip([0.0] * n, values)), method="highs")
    assert res.status == 0
    return -res.fun


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e7), st.sampled_from([0.1, 0.25, 0.4, 0.5, 0.8, 1.0])), min_size=1, max_size=6))
def test_concentration_matches_linear_program(assets):
    values = {f"a{i}": v for i, (v, _) in enumerate(assets)}
    shares = {f"a{i}": s for i, (_, s) in enumerate(assets) if s < 1.0}
    c = credited_values(values, shares)
    total = sum(c.values())
    assert total == pytest.approx(_lp_total([v for v, _ in assets], [s for _, s in assets]), rel=1e-9, abs=1e-6)
    for a, v in values.items():
        assert -1e-9 <= c[a] <= v + 1e-9
        assert c[a] <= shares.get(a, 1.0) * total * (1 + 1e-12) + 1e-9


def test_vectorized_credited_total_matches_the_line_by_line_valuation():
    import marginopt
    from marginopt.models import VenueBook

    case = marginopt.load_case(marginopt.demo_case_path())
    rng = np.random.default_rng(0)
    for venue in case.venues:
        book = VenueBook(case, venue)
        for _ in range(20):
            units = {a: float(rng.uniform(0, 2) * (1e6 / case.market.prices[a])) for a in book.venue.collateral}
            lines = book.collateral(units)
            assert book.credited_total(units) == pytest.approx(sum(c.credited_value for c in lines), rel=1e-12)
