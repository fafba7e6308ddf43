"""The optimizer on random and demo cases: never worse than doing nothing, always verified;
warm re-solves, attribution, what-if and routing, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import marginopt
from marginopt.models import VenueBook
from marginopt.optimizer import MarginProblem, euler_allocation, run

PRICES = {"BTC": 90000.0, "ETH": 3000.0, "USDC": 1.0, "TBILL": 99.0}
INSTRUMENTS = [
    {"id": "BTCP", "kind": "perpetual", "underlying": "BTC"},
    {"id": "ETHP", "kind": "perpetual", "underlying": "ETH"},
    {"id": "BTCF", "kind": "future", "underlying": "BTC", "expiry": "2027-03-26"},
    {"id": "BTCC", "kind": "option", "underlying": "BTC", "expiry": "2027-01-29", "strike": 100000, "right": "call", "vol": 0.55},
    {"id": "ETHP2", "kind": "option", "underlying": "ETH", "expiry": "2026-12-25", "strike": 2800, "right": "put", "vol": 0.7},
]
GRID = {"kind": "grid", "price_moves": [-0.15, -0.075, 0.0, 0.075, 0.15], "vol_moves": [-0.3, 0.3],
        "extended": [{"price_move": -0.4, "vol_move": 0.3, "weight": 0.3}]}
MEASURES = [
    {"kind": "scenario_max", "scenarios": GRID},
    {"kind": "sum", "terms": [{"kind": "fixed_rate", "rate": 0.08}, {"kind": "short_option_minimum", "per_contract": 0.05}]},
    {"kind": "expected_shortfall", "alpha": 0.9, "scenarios": {"kind": "monte_carlo", "n": 300, "seed": 5}},
    {"kind": "max", "terms": [{"kind": "scenario_max", "scenarios": GRID}, {"kind": "net_delta_charge", "rate": 0.05}]},
]


def random_case(seed: int, objective: str, with_posted: bool) -> dict:
    rng = np.random.default_rng(seed)
    venues, positions, hedges = {}, [], []
    for k in range(int(rng.integers(1, 4))):
        name = f"v{k}"
        collateral = {"USDC": {"haircut": float(rng.choice([0.0, 0.02]))}, "BTC": {"tiers": [[2e5, 0.95], [1e6, 0.8]]},
                      "TBILL": {"haircut": 0.03}}
        venue = {"initial_margin": MEASURES[int(rng.integers(len(MEASURES)))], "collateral": collateral}
        if rng.random() < 0.5:
            venue["concentration"] = {"USDC": 0.6}
        if with_posted:
            venue["posted"] = {"USDC": float(rng.uniform(0, 3e5)), "BTC": float(rng.uniform(0, 5))}
        venues[name] = venue
        for inst in INSTRUMENTS:
            if rng.random() < 0.6:
                positions.append({"venue": name, "instrument": inst["id"], "quantity": float(rng.normal(0, 5 if inst["underlying"] == "BTC" else 60))})
        for inst in rng.choice(INSTRUMENTS, size=2, replace=False):
            hedges.append({"venue": name, "instrument": inst["id"], "max_buy": 20.0, "max_sell": 20.0,
                           "cost_per_unit": float(rng.uniform(0.5, 40)), "impact": float(rng.choice([0.0, 0.1]))})
    return {
        "format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20",
        "market": {"prices": PRICES, "vols": {"BTC": 0.5, "ETH": 0.6}},
        "instruments": INSTRUMENTS, "positions": positions, "venues": venues, "hedges": hedges,
        "treasury": {"USDC": {"quantity": 5e6, "cost": 0.05, "transfer_cost": 0.0005}, "BTC": {"quantity": 40, "cost": 0.02},
                     "TBILL": {"quantity": 1e4, "cost": 0.04, "transfer_cost": 0.0001}},
        "objective": objective,
    }


def load(doc: dict, tmp_path) -> marginopt.Case:
    path = tmp_path / f"case{np.random.default_rng().integers(1 << 30)}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return marginopt.load_case(path)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_min_margin_never_worse_than_doing_nothing(tmp_path, seed):
    case = load(random_case(seed, "min_margin", with_posted=False), tmp_path)
    r = marginopt.optimize(case)
    assert r.status == "optimal", r.solver.attempts
    assert r.verification.passed
    before = float(r.margins["before"].sum())
    assert r.objective_value <= before * (1 + 1e-7) + 1e-6  # doing nothing costs its margin and no hedge


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_min_cost_never_costs_more_than_doing_nothing_when_that_is_covered(tmp_path, seed):
    doc = random_case(seed, "min_cost", with_posted=True)
    case = load(doc, tmp_path)
    r = marginopt.optimize(case)
    assert r.status in ("optimal", "infeasible"), r.solver.attempts
    if r.status == "infeasible":
        assert r.shortfalls and all(amount > 0 for _, amount in r.shortfalls)
        return
    assert r.verification.passed
    report = marginopt.margin(case)
    if all(v.excess >= 0 for v in report.venues):
        # Doing nothing is a feasible plan: its cost is the funding of what is posted now.
        nothing = sum(case.treasury[a].cost * q * case.market.prices[a]
                      for v in case.venues.values() for a, q in v.posted.items() if a in case.treasury)
        assert r.objective_value <= nothing * (1 + 1e-7) + 1e-6


def test_demo_plan_is_verified_and_lowers_every_margin():
    case = marginopt.load_case(marginopt.demo_case_path())
    r = marginopt.optimize(case)
    assert r.status == "optimal" and r.verification.passed
    m = r.margins.set_index("venue")
    assert (m["after"] <= m["before"] + 1e-6).all()
    assert (m["excess_after"] >= -1e-6).all()  # every venue covered, the short cme_es included
    assert r.objective_value == pytest.approx(sum(r.costs.values()))
    # The demo's limits hold on the recomputed book.
    names = [c.name for c in r.verification.checks]
    assert any(n.startswith("net delta BTC") for n in names) and any("max_loss" in n for n in names)


def test_warm_resolve_after_a_market_move_matches_a_fresh_build(tmp_path):
    doc = random_case(3, "min_cost", with_posted=True)
    case = load(doc, tmp_path)
    problem = MarginProblem(case)
    first = run(problem)
    assert first.status == "optimal"
    doc["market"]["prices"] = {k: v * (1.01 if k in ("BTC", "ETH") else 1.0) for k, v in PRICES.items()}
    moved = load(doc, tmp_path)
    problem.update(moved)
    warm = run(problem, warm=True)
    fresh = marginopt.optimize(moved)
    assert warm.status == fresh.status == "optimal"
    assert warm.objective_value == pytest.approx(fresh.objective_value, rel=1e-6)
    assert warm.margins["after"].to_numpy() == pytest.approx(fresh.margins["after"].to_numpy(), rel=1e-5, abs=1e-3)
    assert warm.verification.passed


def test_euler_allocation_adds_up_and_matches_finite_differences():
    case = marginopt.load_case(marginopt.demo_case_path())
    for venue in case.venues:
        book = VenueBook(case, venue)
        table = euler_allocation(book)
        assert table["contribution"].sum() == pytest.approx(book.initial.evaluate(book.q), rel=1e-9)
        grad = book.initial.gradient(book.q)
        for j in range(len(book.q)):
            if book.q[j] == 0:
                continue
            step = 1e-6 * max(1.0, abs(book.q[j]))
            up, down = book.q.copy(), book.q.copy()
            up[j] += step
            down[j] -= step
            fd = (book.initial.evaluate(up) - book.initial.evaluate(down)) / (2 * step)
            assert fd == pytest.approx(grad[j], rel=1e-4, abs=1e-4 * max(1.0, abs(grad).max()))


def test_what_if_and_route_by_hand(write_case):
    # Venue G scans +-10% on 2 long BTC perps at 100000: margin 20000. Selling 1 future there
    # leaves 1 BTC: 10000, so -10000. At venue F (fixed 10% of notional), the same trade adds
    # 0.1 * 100000 = 10000. Route: G (both venues list F).
    case = marginopt.load_case(write_case(
        market={"prices": {"BTC": 100000.0}},
        instruments=[{"id": "P", "kind": "perpetual", "underlying": "BTC"},
                     {"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25", "price": 100000}],
        positions=[{"venue": "G", "instrument": "P", "quantity": 2}],
        venues={"G": {"initial_margin": {"kind": "scenario_max", "scenarios": {"kind": "grid", "price_moves": [-0.1, 0.1]}},
                      "lists": ["F"]},
                "F": {"initial_margin": {"kind": "fixed_rate", "rate": 0.1}, "lists": ["F"]}},
    ))
    w = marginopt.what_if(case, "G", "F", -1)
    assert (w.margin_before, w.margin_after, w.incremental) == pytest.approx((20000.0, 10000.0, -10000.0))
    routes = marginopt.route(case, "F", -1)
    assert [r.venue for r in routes] == ["G", "F"]
    assert routes[1].incremental == pytest.approx(10000.0)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marginopt", *args], capture_output=True, text=True, timeout=300)


def test_optimize_json_is_exactly_the_documented_shape(tmp_path):
    proc = cli("optimize", str(marginopt.demo_case_path()), "--format", "json", "--out", str(tmp_path / "plan"))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"status", "objective", "objective_value", "hedges", "allocation", "margins", "shadow_prices",
                        "verification", "solver", "tolerance"}
    assert out["status"] == "optimal" and out["verification"]["passed"] is True
    assert set(out["hedges"][0]) == {"venue", "instrument", "quantity", "cost"}
    assert set(out["allocation"][0]) == {"venue", "asset", "quantity", "value"}
    assert set(out["margins"][0]) == {"venue", "before", "after"}
    assert set(out["shadow_prices"]) == {"assets", "venues"}
    assert set(out["solver"]) == {"name", "build_seconds", "solve_seconds"}
    for name in ("hedges", "allocation", "margins"):
        assert (tmp_path / "plan" / f"{name}.csv").exists() and (tmp_path / "plan" / f"{name}.parquet").exists()


# 1 BTC perp at 100,000 under a 1% rate needs 1,000 of margin; 250 is posted: short by 750.
SHORT_CASE = dict(
    market={"prices": {"BTC": 100000.0}},
    instruments=[{"id": "P", "kind": "perpetual", "underlying": "BTC"}],
    positions=[{"venue": "V", "instrument": "P", "quantity": 1}],
    venues={"V": {"initial_margin": {"kind": "fixed_rate", "rate": 0.01}, "collateral": {"USD": {"haircut": 0.0}},
                  "posted": {"USD": 250}}},
)


def test_cli_infeasible_exits_non_zero_and_names_the_venue(write_case):
    path = write_case(**SHORT_CASE)
    proc = cli("optimize", str(path))
    assert proc.returncode == 3
    assert "INFEASIBLE" in proc.stdout and "V: initial margin not covered" in proc.stdout and "750.00" in proc.stdout
    proc = cli("optimize", str(path), "--format", "json")
    assert proc.returncode == 3
    out = json.loads(proc.stdout)
    assert out["status"] == "infeasible" and out["infeasibility"][0]["shortfall"] == pytest.approx(750.0)


def test_cli_hedge_allocate_and_whatif():
    demo = str(marginopt.demo_case_path())
    hedge = json.loads(cli("hedge", demo, "--format", "json").stdout)
    assert hedge["status"] == "optimal"
    # Collateral stays as posted in hedge mode.
    posted = {(a["venue"], a["asset"]): a["quantity"] for a in hedge["allocation"]}
    assert posted[("deribit_pm", "BTC")] == 60
    alloc = json.loads(cli("allocate", demo, "--format", "json").stdout)
    assert alloc["status"] == "optimal" and alloc["hedges"] == []
    assert all(m["before"] == m["after"] for m in alloc["margins"])
    proc = cli("whatif", demo, "--trade", "deribit_pm:BTC-PERP-INV:-10000", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["venue"] == "deribit_pm"
    proc = cli("whatif", demo, "--trade", ":CME-BTC-DEC26:2", "--route")
    assert proc.returncode == 0 and "route to" in proc.stdout
    bad = cli("whatif", demo, "--trade", "nonsense")
    assert bad.returncode == 2 and "VENUE:INSTRUMENT:QTY" in bad.stderr


def treasury_doc(seed: int, move: float = 1.0) -> dict:
    rng = np.random.default_rng(seed)
    assets = [f"A{i}" for i in range(8)]
    prices = {a: float(p) * move for a, p in zip(assets, rng.lognormal(2.0, 1.5, 8), strict=True)}
    prices["BTC"] = 90000.0
    venues, positions = {}, []
    for v in range(4):
        collateral = {a: ({"tiers": [[5e4, 0.97], [2e5, 0.85], [5e5, 0.6]]} if i % 3 == 0 else {"haircut": float(rng.uniform(0, 0.2))})
                      for i, a in enumerate(assets) if rng.random() < 0.8}
        posted = {a: float(rng.uniform(0, 2e4) / prices[a]) for a in list(collateral)[:2]}
        venues[f"v{v}"] = {"initial_margin": {"kind": "fixed_rate", "rate": 0.1}, "collateral": collateral, "posted": posted,
                           "concentration": {list(collateral)[-1]: 0.3}}
        positions.append({"venue": f"v{v}", "instrument": "P", "quantity": float(rng.uniform(1, 8))})
    return {"format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20", "market": {"prices": prices},
            "instruments": [{"id": "P", "kind": "perpetual", "underlying": "BTC"}], "positions": positions, "venues": venues,
            "treasury": {a: {"quantity": float(rng.uniform(1e5, 1e6) / prices[a]), "cost": float(rng.uniform(0, 0.08)),
                             "transfer_cost": float(rng.uniform(0, 0.002))} for a in assets}}


@pytest.mark.parametrize("seed", range(6))
def test_direct_lp_matches_the_cvxpy_formulation(tmp_path, seed):
    case = load(treasury_doc(seed), tmp_path)
    direct = MarginProblem(case)
    assert direct.backend.name == "direct"
    a = run(direct)
    # The cvxpy formulation solved by simplex: Clarabel stopped 4e-4 above the optimum on seed 3.
    b = run(MarginProblem(case, backend="cvxpy"), "HIGHS")
    assert a.status == b.status == "optimal"
    assert a.solver.attempts[0].note == "direct LP"
    assert a.objective_value == pytest.approx(b.objective_value, rel=1e-6)
    assert a.shadow_prices["venues"] == pytest.approx(b.shadow_prices["venues"], rel=1e-5, abs=1e-7)
    assert a.shadow_prices["assets"] == pytest.approx(b.shadow_prices["assets"], rel=1e-5, abs=1e-7)
    # A warm re-solve of the direct LP after a 1% move equals a fresh solve.
    moved = load(treasury_doc(seed, move=1.01), tmp_path)
    direct.update(moved)
    warm = run(direct, warm=True)
    fresh = marginopt.optimize(moved)
    assert warm.objective_value == pytest.approx(fresh.objective_value, rel=1e-9)
    assert warm.verification.passed


def test_more_inventory_never_raises_the_optimum(tmp_path):
    """The demo (its limits dropped) with 3e6, 1e10 and 1e12 USDC in the treasury: more inventory only
    adds plans, so the optimum can only fall, and here the USDC inventory does not bind at all, so it is
    the same. Collateral scaled by inventory alone put the plan's million USDC at 1e-6 of its variable
    at 1e12: Clarabel gave up and ECOS stopped at a verified (feasible) plan costing 16x the optimum."""
    import shutil

    values = []
    for quantity in (3.0e6, 1.0e10, 1.0e12):
        folder = tmp_path / f"usdc{quantity:g}"
        shutil.copytree(marginopt.demo_case_path().parent, folder)
        doc = yaml.safe_load((folder / "case.yaml").read_text())
        doc.pop("limits")
        doc["treasury"]["USDC"]["quantity"] = quantity
        (folder / "case.yaml").write_text(yaml.safe_dump(doc))
        result = marginopt.optimize(marginopt.load_case(folder / "case.yaml"))
        assert result.status == "optimal"
        values.append(result.objective_value)
    assert values[1] <= values[0] * (1 + 1e-6) and values[2] <= values[1] * (1 + 1e-6)
    assert values[2] == pytest.approx(values[0], rel=1e-6)
