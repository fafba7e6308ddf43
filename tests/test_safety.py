"""Stress-safe plans: each venue's margin balance at or above its maintenance (or initial) margin under every
move of a stress set. The optima are worked out by hand in each test's comment (conftest.BASE market: BTC
100,000, rate 0)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import marginopt
from marginopt.errors import CaseError, OptimizationError
from marginopt.optimizer import optimize

PERP = {"id": "P", "kind": "perpetual", "underlying": "BTC"}
FIXED = {"initial_margin": {"kind": "fixed_rate", "rate": 0.10}, "maintenance_margin": {"kind": "fixed_rate", "rate": 0.05}}
CRASH = {"crash": [{"BTC": -0.30}]}


def _two_venues(write_case: Any, safety: dict[str, Any] | None) -> marginopt.Case:
    # A holds +10 perpetuals, B -10: IM 100,000 and MM 50,000 each. USDC costs 5% a year, BTC 4% (of value).
    venue = {**FIXED, "collateral": {"USDC": {"haircut": 0.0}, "BTC": {"haircut": 0.0}}}
    extra = {"stress": CRASH, "safety": safety} if safety else {}
    return marginopt.load_case(write_case(
        instruments=[PERP], venues={"A": venue, "B": venue},
        positions=[{"venue": "A", "instrument": "P", "quantity": 10}, {"venue": "B", "instrument": "P", "quantity": -10}],
        treasury={"USDC": {"quantity": 1e6, "cost": 0.05}, "BTC": {"quantity": 10, "cost": 0.04}},
        objective="min_cost", **extra))


def test_a_crash_moves_collateral_away_from_a_coin_that_falls_with_the_book(write_case) -> None:
    # Without safety each venue posts its IM, 100,000, in the cheaper BTC (4% < 5%): 1 BTC each, 8,000 a year.
    # Under BTC -30%, A's long loses 300,000 and its MM is 5% of 700,000 = 35,000, so A's collateral must be worth
    # 335,000 at the stressed prices: b BTC (70,000 each) and u USDC with 70,000 b + u >= 335,000, at a cost of
    # 4,000 b + 0.05 u = 16,750 + 500 b: b = 0, u = 335,000 (16,750; 335,000 >= 100,000 covers IM too).
    # B's short gains 300,000 in the crash: 1 BTC still. Safe plan: 20,750.
    plain = optimize(_two_venues(write_case, None), mode="allocate")
    safe = optimize(_two_venues(write_case, {"stress": "crash"}), mode="allocate")
    assert plain.status == "optimal" and safe.status == "optimal"
    assert plain.objective_value == pytest.approx(8000.0, rel=1e-6)
    assert safe.objective_value == pytest.approx(20750.0, rel=1e-6)
    posted = {(r.venue, r.asset): r.quantity for r in safe.allocation.itertuples()}
    assert posted[("A", "USDC")] == pytest.approx(335000.0, rel=1e-6)
    assert posted.get(("A", "BTC"), 0.0) == pytest.approx(0.0, abs=1e-6)
    assert posted[("B", "BTC")] == pytest.approx(1.0, rel=1e-6)
    assert safe.verification.passed
    assert any("under crash[1] BTC -30.00%" in c.name for c in safe.verification.checks)
    # What safety costs. In the crash, the plain plan leaves A at 70,000 - 300,000 = -230,000 against an MM of
    # 35,000; the safe plan at 335,000 - 300,000 = 35,000, exactly its MM. Liquidation at A, plain: balance
    # S + 10 (S - 100,000) = 0.5 S at S = 1,000,000 / 10.5 = 95,238.10 (-4.7619%); safe: 335,000 + 10 (S - 100,000)
    # = 0.5 S at S = 70,000 (-30%), the stress itself.
    cost = safe.safety
    assert cost is not None and cost.stress == "stress set crash" and cost.level == "maintenance"
    assert cost.unconstrained.objective_value == pytest.approx(8000.0, rel=1e-6)
    assert cost.over_unconstrained == pytest.approx(12750.0, rel=1e-6)
    plain_a = next(x for x in cost.unconstrained.stressed if x[1] == "A")
    safe_a = next(x for x in cost.safe.stressed if x[1] == "A")
    assert plain_a[2:] == (pytest.approx(-230000.0, rel=1e-6), pytest.approx(35000.0, rel=1e-9))
    assert safe_a[2] == pytest.approx(35000.0, rel=1e-6)
    assert cost.unconstrained.liquidation["A"] == ("BTC down", pytest.approx(1e6 / 10.5 / 1e5 - 1, abs=1e-5))
    assert cost.safe.liquidation["A"] == ("BTC down", pytest.approx(-0.30, abs=1e-5))
    assert safe.to_dict()["safety"]["over_unconstrained"] == pytest.approx(12750.0, rel=1e-6)


def test_a_hedge_keeps_a_long_book_out_of_liquidation(write_case) -> None:
    # A holds +10 perpetuals with 200,000 USDC posted; it may sell perpetuals at 10 a contract. After trading h the
    # position is n = 10 + h. IM 10,000 |n| <= 200,000. Under BTC -30%: balance 200,000 - 30,000 n (the whole
    # position loses 30,000 a contract from today's mark) >= MM 0.05 * 70,000 n = 3,500 n, so n <= 200,000 / 33,500
    # = 5.970149: sell 4.029851 (cost 40.30), the least |h|.
    case = marginopt.load_case(write_case(
        instruments=[PERP],
        venues={"A": {**FIXED, "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 200000}}},
        positions=[{"venue": "A", "instrument": "P", "quantity": 10}],
        hedges=[{"venue": "A", "instrument": "P", "max_buy": 0, "max_sell": 20, "cost_per_unit": 10}],
        stress=CRASH, safety={"stress": "crash", "level": "maintenance"}, objective="min_cost"))
    plan = optimize(case, mode="hedge")
    assert plan.status == "optimal" and plan.verification.passed
    assert plan.hedges["quantity"].iloc[0] == pytest.approx(200000 / 33500 - 10, rel=1e-6)
    assert plan.objective_value == pytest.approx(10 * (10 - 200000 / 33500), rel=1e-6)


def test_stress_sets_are_checked(write_case) -> None:
    with pytest.raises(CaseError, match="underlying of the case"):
        _load(write_case, {"crash": [{"ETH": -0.3}]}, {"stress": "crash"})
    with pytest.raises(CaseError, match="name of a stress set"):
        _load(write_case, CRASH, {"stress": "rally"})
    with pytest.raises(CaseError, match=r"stress\.crash\.0\.BTC.*\(-1, 100\]"):
        _load(write_case, {"crash": [{"BTC": -1.0}]}, {"stress": "crash"})


def _load(write_case: Any, stress: Any, safety: Any) -> marginopt.Case:
    return marginopt.load_case(write_case(instruments=[PERP], venues={"A": FIXED},
                                          positions=[{"venue": "A", "instrument": "P", "quantity": 1}],
                                          stress=stress, safety=safety))


def test_another_backend_is_refused_with_the_reason(write_case) -> None:
    with pytest.raises(OptimizationError, match="stress-safe"):
        optimize(_two_venues(write_case, {"stress": "crash"}), mode="allocate", solver="GENERATE")


def test_cli_and_report_show_what_safety_costs(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="the HTML report's charts need the plots extra")
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "safety.yaml"  # worked in its comments
    page = tmp_path / "plan.html"
    out = subprocess.run([sys.executable, "-m", "marginopt", "allocate", str(example), "--format", "json", "--report", str(page)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["objective_value"] == pytest.approx(20750.0, rel=1e-6)
    assert doc["safety"]["unconstrained"]["objective_value"] == pytest.approx(8000.0, rel=1e-6)
    assert doc["safety"]["safe"]["nearest_liquidation"]["A"]["move"] == pytest.approx(-0.30, abs=1e-5)
    html = page.read_text()
    assert '<table id="safety">' in html and "12,750.00" in html


def test_the_demo_with_a_crash_stress_set() -> None:
    # The demo's files with two crashes (docs/examples/demo_safe): the plan is verified at every stressed move
    # (each venue re-priced and re-margined there with its own measures), and costs more than the plan without.
    case = marginopt.load_case(Path(__file__).resolve().parents[1] / "docs" / "examples" / "demo_safe" / "case.yaml")
    plan = optimize(case)
    assert plan.status == "optimal" and plan.verification.passed
    stressed = [c for c in plan.verification.checks if "under crash" in c.name]
    assert len(stressed) == 2 * len(case.venues)
    cost = plan.safety
    assert cost is not None and cost.over_unconstrained is not None and cost.over_unconstrained > 0.0
    assert min(b - lv for _, _, b, lv in cost.unconstrained.stressed) < 0.0  # unsafe without the constraint
    assert min(b - lv for _, _, b, lv in cost.safe.stressed) > -1e-6 * max(lv for _, _, _, lv in cost.safe.stressed)


def _budget_case(write_case: Any, budget: float | None) -> marginopt.Case:
    # +10 BTC perpetuals, IM 10% of notional; USDC at 5% a year. The price history falls 10% a day, so every
    # projected path (historical, 1 day) is BTC -10%: at 90,000, IM = 90,000 and the balance x + 10 (90,000 - 100,000)
    # = x - 100,000, a call of max(190,000 - x, 0) on every path (its expected shortfall too).
    history = [{"date": "2026-11-18", "BTC": 100000}, {"date": "2026-11-19", "BTC": 90000}, {"date": "2026-11-20", "BTC": 81000}]
    market = {"prices": {"BTC": 100000.0, "USDC": 1.0}, "history": history}
    extra = {} if budget is None else {"safety": {"call_budget": {"budget": {"A": budget}, "alpha": 0.9, "days": 1,
                                                                 "paths": 20, "model": "historical", "seed": 3}}}
    return marginopt.load_case(write_case(
        market=market, instruments=[PERP],
        venues={"A": {**FIXED, "collateral": {"USDC": {"haircut": 0.0}}}},
        positions=[{"venue": "A", "instrument": "P", "quantity": 10}],
        treasury={"USDC": {"quantity": 1e6, "cost": 0.05}}, objective="min_cost", **extra))


def test_a_call_budget_over_projected_paths(write_case) -> None:
    # Without the budget the plan posts the IM, 100,000 (5,000 a year). A budget of 40,000 on the call's ES needs
    # 190,000 - x <= 40,000: x = 150,000 (7,500 a year).
    plain = optimize(_budget_case(write_case, None), mode="allocate")
    safe = optimize(_budget_case(write_case, 40000.0), mode="allocate")
    assert plain.objective_value == pytest.approx(5000.0, rel=1e-6)
    assert safe.status == "optimal" and safe.verification.passed
    assert safe.objective_value == pytest.approx(7500.0, rel=1e-6)
    assert safe.allocation["quantity"].sum() == pytest.approx(150000.0, rel=1e-6)
    cost = safe.safety
    assert cost is not None and cost.stress == "call budget"
    assert cost.safe.calls["A"] == pytest.approx(40000.0, rel=1e-6)
    assert cost.unconstrained.calls["A"] == pytest.approx(90000.0, rel=1e-6)
    assert any("expected shortfall (0.9) of the margin-call amount" in c.name for c in safe.verification.checks)


def test_the_equal_weight_shortfall_by_hand() -> None:
    from marginopt.optimizer.safety import equal_weight_es

    # Worst 25% of ten values: 2.5 of them, 10 + 9 + half of 8 = 23 over 2.5.
    assert equal_weight_es(np.arange(1.0, 11.0), 0.75) == pytest.approx(23.0 / 2.5)


def test_a_call_budget_is_checked(write_case) -> None:
    with pytest.raises(CaseError, match=r"safety\.call_budget\.budget\.Z.*a venue of the case"):
        _load(write_case, CRASH, {"call_budget": {"budget": {"Z": 1000}}})
    with pytest.raises(CaseError, match=r"safety\.call_budget\.days"):
        _load(write_case, CRASH, {"call_budget": {"budget": {"A": 1000}, "days": 0}})
    with pytest.raises(CaseError, match="stress .* and/or call_budget"):
        _load(write_case, CRASH, {"level": "initial"})
