"""What-if of several legs, routing only to venues that list the instruments, and solver dust in plans.

The legs' margins are checked against an independent computation: ``marginopt.margin`` on the
same case with the legs written into its positions table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

import marginopt
from marginopt.errors import CaseError
from marginopt.optimizer import Leg, listed_at, route_legs, what_if_legs
from marginopt.optimizer.result import SNAP_ABSOLUTE, snap

INSTRUMENTS = [
    {"id": "P", "kind": "perpetual", "underlying": "BTC"},
    {"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25", "price": 100000},
    {"id": "E", "kind": "perpetual", "underlying": "ETH"},
    {"id": "X", "kind": "perpetual", "underlying": "ETH"},  # listed nowhere
]
GRID = {"kind": "scenario_max", "scenarios": {"kind": "grid", "price_moves": [-0.15, -0.05, 0.0, 0.05, 0.15]}}
VENUES: dict[str, Any] = {
    "G": {"initial_margin": GRID, "maintenance_margin": {"fraction_of_initial": 0.75},
          "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 50000}},
    "H": {"initial_margin": {"kind": "fixed_rate", "rate": 0.1}, "collateral": {"USDC": {"haircut": 0.02}},
          "posted": {"USDC": 80000}, "lists": ["F"]},
    "K": {"initial_margin": {"kind": "fixed_rate", "rate": 0.05}},
}
POSITIONS = [{"venue": "G", "instrument": "P", "quantity": 2}, {"venue": "H", "instrument": "E", "quantity": 10}]
HEDGES = [{"venue": "G", "instrument": "F", "max_buy": 10, "max_sell": 10, "cost_per_unit": 1.0}]


def _case(write_case, positions=POSITIONS, venues=VENUES, name="case.yaml") -> marginopt.Case:
    return marginopt.load_case(write_case(name, instruments=INSTRUMENTS, positions=positions, venues=venues, hedges=HEDGES))


def _with_legs(legs: list[Leg]) -> list[dict[str, Any]]:
    """The positions table with the legs traded: a held line changes, a new one is a new row."""
    rows = {(p["venue"], p["instrument"]): float(p["quantity"]) for p in POSITIONS}
    for leg in legs:
        rows[(leg.venue, leg.instrument)] = rows.get((leg.venue, leg.instrument), 0.0) + leg.quantity
    return [{"venue": v, "instrument": i, "quantity": q} for (v, i), q in rows.items()]


@pytest.mark.parametrize("legs", [
    [Leg("P", 1.0, "G"), Leg("F", -3.0, "G")],  # a calendar spread at one venue, offsetting under the grid
    [Leg("P", -2.0, "G"), Leg("F", 2.5, "G"), Leg("E", -4.0, "H")],  # legs at two venues
])
def test_legs_margin_is_the_margin_of_the_book_with_the_legs_added(write_case, legs: list[Leg]) -> None:
    case = _case(write_case)
    before = {v.venue: v for v in marginopt.margin(case).venues}
    after = {v.venue: v for v in marginopt.margin(_case(write_case, _with_legs(legs), name="after.yaml")).venues}
    w = what_if_legs(case, legs)
    touched = list(dict.fromkeys(v for v in case.venues if any(leg.venue == v for leg in legs)))
    assert [v.venue for v in w.venues] == touched
    for v in w.venues:
        assert v.initial_before == pytest.approx(before[v.venue].initial_margin, rel=1e-12)
        assert v.initial_after == pytest.approx(after[v.venue].initial_margin, rel=1e-12)
        assert v.maintenance_before == pytest.approx(before[v.venue].maintenance_margin, rel=1e-12)
        assert v.maintenance_after == pytest.approx(after[v.venue].maintenance_margin, rel=1e-12)
        assert v.collateral_value == pytest.approx(after[v.venue].collateral_value, rel=1e-12)
        assert v.excess_before == pytest.approx(before[v.venue].excess, rel=1e-12, abs=1e-6)
        assert v.excess_after == pytest.approx(after[v.venue].excess, rel=1e-12, abs=1e-6)
    assert w.incremental == pytest.approx(sum(after[v].initial_margin - before[v].initial_margin for v in touched), rel=1e-12)
    if len(touched) == 1:  # the spread offsets: less margin than its legs one at a time
        alone = sum(what_if_legs(case, [leg]).incremental for leg in legs)
        assert w.incremental < alone


def test_cli_takes_every_leg(write_case) -> None:
    path = write_case(instruments=INSTRUMENTS, positions=POSITIONS, venues=VENUES, hedges=HEDGES)
    proc = subprocess.run([sys.executable, "-m", "marginopt", "whatif", str(path), "--trade", "G:P:1", "--trade", "G:F:-3",
                           "--trade", "H:E:-4", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (doc,) = json.loads(proc.stdout)
    assert [(leg["venue"], leg["instrument"], leg["quantity"]) for leg in doc["legs"]] == [("G", "P", 1.0), ("G", "F", -3.0),
                                                                                           ("H", "E", -4.0)]
    assert doc["venue"] is None and doc["instrument"] is None and doc["quantity"] is None
    expected = what_if_legs(marginopt.load_case(path), [Leg("P", 1, "G"), Leg("F", -3, "G"), Leg("E", -4, "H")])
    assert [v["venue"] for v in doc["venues"]] == ["G", "H"]
    assert doc["incremental_margin"] == pytest.approx(expected.incremental, rel=1e-12)
    for v in doc["venues"]:
        assert v["excess_after"] == pytest.approx(v["collateral_value"] - v["initial_margin_after"], rel=1e-12)
    table = subprocess.run([sys.executable, "-m", "marginopt", "whatif", str(path), "--trade", "G:P:1", "--trade", "H:E:-4"],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "excess after" in table.stdout and "all venues" in table.stdout, table.stdout


def test_route_goes_only_where_every_leg_is_listed(write_case) -> None:
    case = _case(write_case)
    # G holds P and offers F as a hedge; H holds E and lists F; K lists nothing.
    assert listed_at(case, "G") == {"P", "F"} and listed_at(case, "H") == {"E", "F"} and listed_at(case, "K") == set()
    assert sorted(w.venue or "" for w in route_legs(case, [Leg("F", 1.0)])) == ["G", "H"]
    spread = route_legs(case, [Leg("P", 1.0), Leg("F", -1.0)])
    assert [w.venue for w in spread] == ["G"] and len(spread[0].legs) == 2
    assert [r.venue for r in marginopt.route(case, "E", 1.0)] == ["H"]
    with pytest.raises(CaseError, match=r"X at no venue"):
        route_legs(case, [Leg("X", 1.0)])
    with pytest.raises(CaseError, match=r"P at G; E at H"):  # listed, but not at one venue together
        route_legs(case, [Leg("P", 1.0), Leg("E", 1.0)])


def test_route_on_the_demo_keeps_an_okx_perpetual_at_okx(tmp_path) -> None:
    demo = str(marginopt.demo_case_path())
    proc = subprocess.run([sys.executable, "-m", "marginopt", "whatif", demo, "--trade", ":BTC-PERP:-4", "--route", "--format",
                           "json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [w["venue"] for w in json.loads(proc.stdout)] == ["okx_std"]
    proc = subprocess.run([sys.executable, "-m", "marginopt", "whatif", demo, "--trade", ":CME-BTC-DEC26:1",
                           "--trade", ":BTC-PERP:-1", "--route"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "CME-BTC-DEC26 at cme_es; BTC-PERP at okx_std" in proc.stderr, proc.stderr


def test_route_refuses_a_leg_that_names_a_venue(write_case) -> None:
    """The route chooses the venue: a venue written in --trade would be overruled, so it is refused."""
    demo = str(marginopt.demo_case_path())
    proc = subprocess.run([sys.executable, "-m", "marginopt", "whatif", demo, "--trade", ":BTC-PERP:-1", "--trade",
                           "okx_std:BTC-PERP:5", "--route"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert "field '--trade'" in proc.stderr and ":BTC-PERP:5" in proc.stderr and "the route chooses the venue" in proc.stderr
    assert "got 'okx_std:BTC-PERP:5'" in proc.stderr and "Traceback" not in proc.stderr
    case = _case(write_case)
    with pytest.raises(CaseError, match=r"field 'legs\.0\.venue'.*the route chooses the venue.*got 'G'"):
        route_legs(case, [Leg("F", 1.0, "G")])


def test_lists_names_instruments_of_the_case(write_case) -> None:
    venues = {**VENUES, "K": {**VENUES["K"], "lists": ["P", "NOPE"]}}
    with pytest.raises(CaseError, match=r"venues\.K\.lists\.1.*NOPE"):
        _case(write_case, venues=venues)
    venues = {**VENUES, "K": {**VENUES["K"], "lists": "P"}}
    with pytest.raises(CaseError, match=r"venues\.K\.lists.*a list"):
        _case(write_case, venues=venues)
    case = _case(write_case, venues={**VENUES, "K": {**VENUES["K"], "lists": ["P", "X"]}})
    assert [w.venue for w in route_legs(case, [Leg("X", 2.0)])] == ["K"]


@pytest.mark.parametrize(("raw", "shown"), [
    (3e-8, 0.0), (-3.12e-08, 0.0), (17.99999999999897, 18.0), (-17.99999999999897, -18.0), (3.6e-14, 0.0), (-0.0, 0.0),
    (0.5, 0.5), (1e-3, 1e-3), (-1e-3, -1e-3), (2.5, 2.5), (1e6 + 0.25, 1e6 + 0.25), (float("inf"), float("inf")),
])
def test_dust_is_snapped_and_real_values_are_kept(raw: float, shown: float) -> None:
    out = snap(raw)
    assert out == shown and (str(out) != "-0.0")


def test_plan_json_states_the_tolerance_and_carries_no_dust() -> None:
    plan = marginopt.optimize(marginopt.load_case(marginopt.demo_case_path()), mode="hedge")
    doc = plan.to_dict()
    assert doc["tolerance"] == {"absolute": SNAP_ABSOLUTE, "relative": 1e-8}
    numbers = [h["quantity"] for h in doc["hedges"]] + [a["quantity"] for a in doc["allocation"]]
    numbers += [v for group in doc["shadow_prices"].values() for v in group.values() if v is not None]
    for x in numbers:
        assert x == round(x) or abs(x - round(x)) > SNAP_ABSOLUTE, x
    assert str(doc["verification"]["max_violation"]) != "-0.0"
    # the plan itself keeps the solver's numbers (verification ran on them)
    assert list(plan.hedges["quantity"]) == pytest.approx([h["quantity"] for h in doc["hedges"]], abs=2 * SNAP_ABSOLUTE)


def test_a_snapped_quantity_carries_its_own_value_and_cost() -> None:
    """Every number derived from a snapped quantity is computed from the quantity as shown
    (demo prices: BTC 91,000, ETH 3,100, TBILL 99.2)."""
    plan = marginopt.optimize(marginopt.load_case(marginopt.demo_case_path()), mode="hedge")
    raw_alloc = pd.DataFrame([
        {"venue": "deribit_pm", "asset": "BTC", "quantity": 2.9999999999, "value": 2.9999999999 * 91000, "posted_before": 60.0},
        {"venue": "okx_std", "asset": "ETH", "quantity": 5.3e-10, "value": 5.3e-10 * 3100, "posted_before": 0.0},
        {"venue": "cme_es", "asset": "TBILL", "quantity": 3.0489, "value": 3.0489 * 99.2, "posted_before": 6000.0},
    ])
    # one candidate per hedge row, as the plan builds them: cost = cost_per_unit * |q| + impact * q^2
    cands = tuple(replace(c, cost_per_unit=22.8, impact=0.01) for c in plan.candidates[:2])
    raw_hedges = pd.DataFrame([
        {"venue": "okx_std", "instrument": "BTC-PERP", "quantity": -17.99999999999404, "cost": 22.8 * 17.99999999999404 + 0.01 * 17.99999999999404**2},
        {"venue": "okx_std", "instrument": "ETH-PERP", "quantity": 2.5, "cost": 22.8 * 2.5 + 0.01 * 6.25},
    ])
    shown = replace(plan, allocation=raw_alloc, hedges=raw_hedges, candidates=cands)
    doc = shown.to_dict()
    # 3 BTC at 91,000 = 273,000; 0 ETH = 0; 3.0489 TBILL is real and keeps 3.0489 * 99.2 = 302.45088
    assert [(a["quantity"], a["value"]) for a in doc["allocation"]] == [(3.0, 273000.0), (0.0, 0.0), (3.0489, pytest.approx(302.45088, rel=1e-15))]
    # 18 short: 22.8 * 18 + 0.01 * 324 = 413.64; 2.5 long keeps 57.0625
    assert [(h["quantity"], h["cost"]) for h in doc["hedges"]] == [(-18.0, pytest.approx(413.64, rel=1e-15)), (2.5, pytest.approx(57.0625, rel=1e-15))]
    # without its candidates a hedge snapped to no trade still costs nothing
    assert replace(shown, candidates=()).table("hedges")["cost"].tolist()[0] == raw_hedges["cost"][0]


def test_demo_plan_shows_no_value_on_a_quantity_shown_as_zero() -> None:
    plan = marginopt.optimize(marginopt.load_case(marginopt.demo_case_path()))
    prices = {"BTC": 91000.0, "ETH": 3100.0, "USDC": 1.0, "USD": 1.0, "TBILL": 99.2}
    doc = plan.to_dict()
    for a in doc["allocation"]:
        assert a["value"] == pytest.approx(a["quantity"] * prices[a["asset"]], rel=1e-15, abs=0.0), a
    costs = {(c.venue, c.instrument): (c.cost_per_unit, c.impact) for c in plan.candidates}
    for h in doc["hedges"]:
        unit, impact = costs[(h["venue"], h["instrument"])]
        assert h["cost"] == pytest.approx(unit * abs(h["quantity"]) + impact * h["quantity"] ** 2, rel=1e-15, abs=0.0), h


def test_a_leg_past_the_gross_value_bound_is_refused_by_the_library() -> None:
    """What the CLI refuses, the library (and so the service's /v1/whatif and /v1/route) refuses too:
    1e14 BTC perpetuals at the demo's 91,000 USD are worth 9.1e18 USD gross, past the 1e15 bound,
    though the quantity itself is within it."""
    case = marginopt.load_case(marginopt.demo_case_path())
    with pytest.raises(CaseError, match=r"legs\.0\.quantity.*at most 1e\+15 USD gross.*= 9\.1e\+18 USD"):
        what_if_legs(case, [Leg("BTC-PERP", 1e14, "okx_std")])
    with pytest.raises(CaseError, match=r"legs\.0\.quantity.*at most 1e\+15 USD gross"):
        route_legs(case, [Leg("BTC-PERP", -1e14)])
    assert what_if_legs(case, [Leg("BTC-PERP", 1e9, "okx_std")]).venues  # 9.1e13 USD: within the bound, computed
