"""Each limit's use against its bound, in the margin report and after a plan, with what one more unit of a
binding bound is worth; excess summed apart (shortfalls and surpluses not netted). Values worked by hand
(conftest.BASE market: BTC 100,000, rate 0)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import marginopt
from marginopt.optimizer import optimize

FUTURE = {"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2027-06-30"}
PERP = {"id": "P", "kind": "perpetual", "underlying": "BTC"}


def _case(write_case: Any) -> marginopt.Case:
    # 2.35 futures at A and 1 at B (net delta 3.35 BTC) against a limit of [-0.1, 0.1]; the perpetual trades at 3.
    # Venue A has 100,000 USDC against an IM of 10% of 235,000 = 23,500; B has nothing against a book of 1 future
    # (IM 10,000): A's surplus 76,500 and B's shortfall 10,000 are not netted. USDC may be at most 50% of A's credit.
    return marginopt.load_case(write_case(
        instruments=[FUTURE, PERP],
        venues={"A": {"initial_margin": {"kind": "fixed_rate", "rate": 0.10}, "collateral": {"USDC": {"haircut": 0.0},
                      "BTC": {"haircut": 0.0}}, "concentration": {"USDC": 0.5}, "posted": {"USDC": 100000, "BTC": 1}},
                "B": {"initial_margin": {"kind": "fixed_rate", "rate": 0.10}, "collateral": {"USDC": {"haircut": 0.0}}}},
        positions=[{"venue": "A", "instrument": "F", "quantity": 2.35}, {"venue": "B", "instrument": "F", "quantity": 1}],
        hedges=[{"venue": "A", "instrument": "P", "max_buy": 10, "max_sell": 10, "cost_per_unit": 3}],
        limits={"net_delta": {"BTC": [-0.1, 0.1]}}, objective="min_margin"))


def test_margin_report_shows_each_limit_and_excess_apart(write_case) -> None:
    report = marginopt.margin(_case(write_case))
    uses = {u.name: u for u in report.limits}
    delta = uses["net delta BTC"]
    assert delta.value == pytest.approx(3.35) and delta.violation == pytest.approx(3.25) and delta.binding is None
    assert delta.use == pytest.approx(33.5)
    # USDC 100,000 and BTC 100,000 after haircut: USDC is exactly half of the 200,000 credited, its cap.
    conc = uses["A: concentration of USDC"]
    assert conc.value == pytest.approx(0.5) and conc.binding == "upper"
    doc = report.to_dict()
    assert doc["total_surplus"] == pytest.approx(200000 - 23500)
    assert doc["total_shortfall"] == pytest.approx(10000.0)


def test_a_binding_limit_says_what_one_more_unit_is_worth(write_case) -> None:
    # min_margin. A fixed rate is on each position's notional (100,000 a contract for both the future and the
    # perpetual): IM_A = 0.1 * 100,000 * (2.35 + |h|). The net delta limit needs 3.35 + h <= 0.1: h <= -3.25. The plan:
    # margin 0.1 * 100,000 * (2.35 + 3.25) + 10,000 (B) + 3 * 3.25 = 66,009.75. One more BTC of upper bound lets
    # h = -2.25: 10,000 (margin) + 3 (cost) saved: worth 10,003 per BTC.
    plan = optimize(_case(write_case), mode="hedge")
    assert plan.status == "optimal" and plan.verification.passed
    assert plan.hedges["quantity"].iloc[0] == pytest.approx(-3.25, rel=1e-6)
    assert plan.objective_value == pytest.approx(0.1 * 100000 * (2.35 + 3.25) + 10000 + 3 * 3.25, rel=1e-6)
    delta = next(u for u in plan.limits if u.name == "net delta BTC")
    assert delta.binding == "upper"
    assert delta.worth == pytest.approx(10003.0, rel=1e-4)
    assert "limits" not in plan.to_dict()  # the documented keys only, unless asked
    doc = plan.to_dict(details=True)
    assert next(x for x in doc["limits"] if x["limit"] == "net delta BTC")["worth"] == pytest.approx(10003.0, rel=1e-4)


@pytest.mark.parametrize("mode", ["allocate", "optimize"])
def test_a_buffer_leaves_headroom_over_initial_margin(write_case, mode: str) -> None:
    # 1 future needs IM 10,000 (10% of 100,000); a buffer of 20% of IM plus 5,000 makes the plan post
    # 1.2 * 10,000 + 5,000 = 17,000 USDC at 5% a year: 850. allocate goes to the direct LP, optimize (with a
    # hedge candidate it does not trade: any trade raises the fixed-rate margin) to the cvxpy program.
    case = marginopt.load_case(write_case(
        instruments=[FUTURE, PERP],
        venues={"A": {"initial_margin": {"kind": "fixed_rate", "rate": 0.10}, "collateral": {"USDC": {"haircut": 0.0}},
                      "buffer": {"fraction": 0.2, "amount": 5000}}},
        positions=[{"venue": "A", "instrument": "F", "quantity": 1}],
        hedges=[{"venue": "A", "instrument": "P", "max_buy": 1, "max_sell": 1, "cost_per_unit": 3}],
        treasury={"USDC": {"quantity": 1e6, "cost": 0.05}}, objective="min_cost"))
    plan = optimize(case, mode=mode)
    assert plan.status == "optimal" and plan.verification.passed, plan.solver
    assert plan.objective_value == pytest.approx(850.0, rel=1e-6)
    assert plan.allocation["quantity"].sum() == pytest.approx(17000.0, rel=1e-6)
    assert any("initial margin and its buffer covered" in c.name for c in plan.verification.checks)
    assert plan.to_dict(details=True)["excess"]["total_surplus"] == pytest.approx(7000.0, rel=1e-6)


def test_cli_details_adds_limits_and_excess_to_the_json(write_case) -> None:
    path = _case(write_case).path
    plain = subprocess.run([sys.executable, "-m", "marginopt", "hedge", str(path), "--format", "json"],
                           capture_output=True, text=True, timeout=300)
    detailed = subprocess.run([sys.executable, "-m", "marginopt", "hedge", str(path), "--format", "json", "--details"],
                              capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and detailed.returncode == 0, detailed.stderr
    a, b = json.loads(plain.stdout), json.loads(detailed.stdout)
    assert set(b) - set(a) == {"limits", "excess"}
    assert next(x for x in b["limits"] if x["limit"] == "net delta BTC")["binding"] == "upper"
