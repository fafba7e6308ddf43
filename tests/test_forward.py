"""Forward margin: paths drawn from the case's model, the book re-priced and re-margined day by day.

Expected values are worked out on paper in each test's comment (market: BTC 100,000, rate 0, from
conftest.BASE, valuation date 2026-11-20), from an independent Black-76 written here with ``math.erf``,
or from the full margin of the case on that day (``health.days``: the whole of marginopt's margin and
equity code on a ``Case``), against which the vectorized projection must agree state by state.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import marginopt
from marginopt.errors import ArgumentError, CaseError
from marginopt.health import forward as forward_module
from marginopt.health import measures
from marginopt.health.days import PathDays
from marginopt.health.forward import STATE_BY_STATE, VECTORIZED, forward_report, project
from marginopt.health.measures import quantiles, tail_means
from marginopt.health.paths import draw_paths, historical_paths, monte_carlo_paths
from marginopt.health.state import venue_health
from marginopt.health.states import credited_collateral
from marginopt.models.collateral import credited_values
from marginopt.models.margin.shortfall import quantile, tail_mean

DEMO = Path(marginopt.__file__).parent / "data" / "demo" / "case.yaml"
FUTURE = {"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2027-06-30"}
FIXED = {"initial_margin": {"kind": "fixed_rate", "rate": 0.10}, "maintenance_margin": {"kind": "fixed_rate", "rate": 0.05}}
USDC = {"USDC": {"haircut": 0.0}}
# Two daily returns: BTC x0.9 then x1.1 (100,000 -> 90,000 -> 99,000 on a path from 100,000).
DOWN_UP = [{"date": "2026-11-17", "BTC": 100000.0}, {"date": "2026-11-18", "BTC": 90000.0},
           {"date": "2026-11-19", "BTC": 99000.0}]
# x1.1 then x0.9: 100,000 -> 110,000 -> 99,000.
UP_DOWN = [{"date": "2026-11-17", "BTC": 100000.0}, {"date": "2026-11-18", "BTC": 110000.0},
           {"date": "2026-11-19", "BTC": 99000.0}]


def _black76(f: float, k: float, vol: float, years: float, call: bool) -> float:
    """Undiscounted Black-76 per unit (rate 0), with the normal CDF from math.erf."""
    n = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # noqa: E731
    sd = vol * math.sqrt(years)
    d1 = math.log(f / k) / sd + 0.5 * sd
    d2 = d1 - sd
    return f * n(d1) - k * n(d2) if call else k * n(-d2) - f * n(-d1)


def _market(**more: Any) -> dict[str, Any]:
    return {"prices": {"BTC": 100000.0, "ETH": 3000.0, "USDC": 1.0}, "vols": {"BTC": 0.5, "ETH": 0.6}, **more}


def _case(write_case: Any, **sections: Any) -> marginopt.Case:
    return marginopt.load_case(write_case(**sections))


def test_a_future_on_a_deterministic_path_day_by_day(write_case) -> None:
    # Two daily returns and a 2-day horizon: the one window of history is every path (BTC 90,000 then 99,000).
    # Long 2 futures (rate 0: F = S) entered at 95,000, 20,000 USDC; IM 10% and MM 5% of 2 F.
    #   day 0: balance 20,000 + 2 (100,000 - 95,000) = 30,000; IM 20,000; MM 10,000.
    #   day 1: balance 20,000 + 2 (90,000 - 95,000) = 10,000; IM 18,000; MM 9,000: a call of 8,000, no liquidation.
    #   day 2: balance 20,000 + 2 (99,000 - 95,000) = 28,000; IM 19,800; MM 9,900.
    case = _case(write_case, market=_market(history=DOWN_UP), instruments=[FUTURE],
                 positions=[{"venue": "V", "instrument": "F", "quantity": 2, "entry_price": 95000}],
                 venues={"V": {**FIXED, "collateral": USDC, "posted": {"USDC": 20000}}})
    report = forward_report(case, model="historical", paths=7, days=2, seed=3)
    v = report["V"]
    assert v.method == VECTORIZED
    for d, (bal, im, mm) in enumerate([(30000, 20000, 10000), (10000, 18000, 9000), (28000, 19800, 9900)]):
        np.testing.assert_allclose(v.margin_balance[:, d], bal, rtol=1e-12)
        np.testing.assert_allclose(v.initial_margin[:, d], im, rtol=1e-12)
        np.testing.assert_allclose(v.maintenance_margin[:, d], mm, rtol=1e-12)
    np.testing.assert_allclose(v.call_amount[:, 1], 8000.0, rtol=1e-12)
    assert v.call_probability().tolist() == [0.0, 1.0, 0.0]
    assert v.liquidation_probability().tolist() == [0.0, 0.0, 0.0]
    doc = report.to_dict()
    day1 = doc["venues"][0]["days"][1]
    assert day1["date"] == "2026-11-21" and day1["call_amount"] == pytest.approx([8000.0] * 4)
    assert doc["model"]["block_days"] == 2 and doc["quantiles"] == [0.05, 0.5, 0.95, 0.99]


def test_futures_converge_to_spot_and_a_quoted_future_keeps_its_annualised_basis(write_case) -> None:
    # Rate 5%: the unquoted future F (222 days) is S e^{0.05 T}; on day 1 (S 90,000, 221 days left):
    #   F = 90,000 e^{0.05 x 221/365}. The quoted future G (102,000 at spot 100,000, 222 days) keeps
    #   its annualised basis: G = 90,000 x 1.02^(221/222) on day 1, 99,000 x 1.02^(220/222) on day 2.
    #   Each is 1 long, entered at 95,000: balance = 10,000 + (F - 95,000); IM = 0.1 F.
    quoted = {**FUTURE, "id": "G", "price": 102000}
    case = _case(write_case, market=_market(history=DOWN_UP, rate=0.05), instruments=[FUTURE, quoted],
                 positions=[{"venue": "V", "instrument": "F", "quantity": 1, "entry_price": 95000},
                            {"venue": "W", "instrument": "G", "quantity": 1, "entry_price": 95000}],
                 venues={"V": {**FIXED, "collateral": USDC, "posted": {"USDC": 10000}},
                         "W": {**FIXED, "collateral": USDC, "posted": {"USDC": 10000}}})
    report = forward_report(case, paths=2, days=2)
    f = [100000 * math.exp(0.05 * 222 / 365), 90000 * math.exp(0.05 * 221 / 365), 99000 * math.exp(0.05 * 220 / 365)]
    g = [102000.0, 90000 * 1.02 ** (221 / 222), 99000 * 1.02 ** (220 / 222)]
    for name, prices in (("V", f), ("W", g)):
        v = report[name]
        for d, p in enumerate(prices):
            assert v.margin_balance[0, d] == pytest.approx(10000 + p - 95000, rel=1e-12)
            assert v.initial_margin[0, d] == pytest.approx(0.1 * p, rel=1e-12)


def test_an_option_expiring_inside_the_horizon_pays_its_intrinsic_value(write_case) -> None:
    # Short 1 call, strike 95,000, expiring 2026-11-21 (day 1), vol 0.5; BTC 110,000 on day 1, 99,000 on day 2.
    #   day 0: the call is worth V0 = Black-76(100,000, 95,000, 0.5, 1/365): balance 50,000 - V0, IM 0.1 V0.
    #   day 1: it settles at 110,000: pays 1 x (110,000 - 95,000) = 15,000; the book is empty (IM 0).
    #     linear: -15,000 cash: balance 35,000 on days 1 and 2.
    #     inverse: -15,000 / 110,000 BTC: worth -15,000 on day 1, -15,000 x 99,000 / 110,000 = -13,500 on day 2.
    call = {"kind": "option", "underlying": "BTC", "expiry": "2026-11-21", "strike": 95000, "right": "call", "vol": 0.5}
    case = _case(write_case, market=_market(history=UP_DOWN),
                 instruments=[{**call, "id": "CL"}, {**call, "id": "CI", "settlement": "inverse"}],
                 positions=[{"venue": "L", "instrument": "CL", "quantity": -1}, {"venue": "I", "instrument": "CI", "quantity": -1}],
                 venues={n: {**FIXED, "collateral": USDC, "posted": {"USDC": 50000}} for n in ("L", "I")})
    report = forward_report(case, paths=3, days=2)
    v0 = _black76(100000, 95000, 0.5, 1 / 365, True)
    for name, day2 in (("L", 35000.0), ("I", 36500.0)):
        v = report[name]
        assert v.expiries == ((1, "C" + name),)
        assert v.margin_balance[0].tolist() == pytest.approx([50000 - v0, 35000.0, day2], rel=1e-12)
        assert v.initial_margin[0].tolist() == pytest.approx([0.1 * v0, 0.0, 0.0], rel=1e-12)
    # The reference settles it the same way, at its expiry date's prices.
    timeline = PathDays(case)
    paid = timeline.settled(report.paths.growth[0], 2, "I")
    assert paid.cash == 0.0 and paid.coins["BTC"] == pytest.approx(-15000 / 110000, rel=1e-12)
    assert timeline.settled(report.paths.growth[0], 2, "L").cash == pytest.approx(-15000.0, rel=1e-12)


def test_probabilities_that_are_zero_or_one_by_construction(write_case) -> None:
    # BTC vol 1% a year: over 5 days it stays within 1% of 100,000. Two long futures entered at today's
    # price, IM 10% (about 20,000), MM 5%: with nothing posted the balance 2 (S - 100,000) is below both
    # on every path and day (a call needs S < 100,000 / 0.9); with 1,000,000 posted, never. A venue with
    # neither positions nor collateral has IM 0 and balance 0: not below, so no call.
    pos = [{"venue": v, "instrument": "F", "quantity": 2} for v in ("A", "B")]
    case = _case(write_case, market=_market(vols={"BTC": 0.01}), instruments=[FUTURE], positions=pos,
                 venues={"A": {**FIXED, "collateral": USDC}, "B": {**FIXED, "collateral": USDC, "posted": {"USDC": 1e6}},
                         "C": {**FIXED, "collateral": USDC}})
    report = forward_report(case, paths=300, days=5, seed=11)
    assert report.paths.model == "monte_carlo"  # no history in the case
    a, b, c = report["A"], report["B"], report["C"]
    assert a.call_probability().tolist() == [1.0] * 6 and a.liquidation_probability().tolist() == [1.0] * 6
    assert b.call_probability().tolist() == [0.0] * 6 and b.liquidation_probability().tolist() == [0.0] * 6
    assert c.call_probability().tolist() == [0.0] * 6 and not c.initial_margin.any() and not c.margin_balance.any()


def test_the_vectorized_projection_is_the_full_margin_of_the_case_on_each_day() -> None:
    # The demo over 15 days: two options expire on day 14 (2026-12-04). Every venue's IM, MM and balance on
    # each state equal a full margin of the case on that day (health.days) plus what has settled by then.
    case = marginopt.load_case(DEMO)
    report = forward_report(case, model="monte_carlo", paths=4, days=15, seed=5)
    assert {v.method for v in report.venues} == {VECTORIZED}
    assert report["okx_std"].expiries == ((14, "BTC-04DEC26-95000-C"), (14, "ETH-04DEC26-3000-P"))
    timeline = PathDays(case)
    for p in range(4):
        for d in (0, 1, 13, 14, 15):
            growth = timeline.growth_of(report.paths.growth[p], d)
            day_case = timeline.case_on(growth, d)
            for v in report.venues:
                h = venue_health(day_case, v.venue)
                settled = timeline.settled(report.paths.growth[p], d, v.venue).value(day_case.market.prices)
                assert v.initial_margin[p, d] == pytest.approx(h.initial_margin, rel=1e-10)
                assert v.maintenance_margin[p, d] == pytest.approx(h.maintenance_margin, rel=1e-10)
                assert v.margin_balance[p, d] == pytest.approx(h.margin_balance + settled, rel=1e-10)
    # Day 0 is today's margin report.
    today = marginopt.margin(case)
    for v in report.venues:
        assert v.initial_margin[:, 0] == pytest.approx([today[v.venue].initial_margin] * 4, rel=1e-12)


def test_a_venue_it_cannot_vectorize_is_margined_state_by_state_with_the_same_numbers(monkeypatch) -> None:
    case = marginopt.load_case(DEMO)
    drawn = draw_paths(case, "monte_carlo", 3, 2, seed=2)
    fast = project(case, drawn)
    monkeypatch.setattr(forward_module, "unsupported", lambda spec: "a test's measure")
    slow = project(case, drawn)
    for a, b in zip(fast.venues, slow.venues, strict=True):
        assert b.method == STATE_BY_STATE and "a test's measure" in b.note
        for level in ("initial_margin", "maintenance_margin", "margin_balance"):
            np.testing.assert_allclose(getattr(b, level), getattr(a, level), rtol=1e-10)


def test_historical_paths_replay_history_in_blocks(write_case) -> None:
    # Closes 100, 110, 99, 118.8: daily ratios 1.1, 0.9, 1.2.
    hist = [{"date": f"2026-11-1{k}", "BTC": p} for k, p in enumerate((100.0, 110.0, 99.0, 118.8))]
    case = _case(write_case, market=_market(history=hist), instruments=[FUTURE], venues={"V": FIXED})
    whole = historical_paths(case, 50, 2, seed=1)  # a block of the horizon: windows (1.1, 0.9) or (0.9, 1.2)
    steps = {tuple(np.round(p[1:, 0] / p[:-1, 0], 12)) for p in whole.growth}
    assert steps <= {(1.1, 0.9), (0.9, 1.2)} and len(steps) == 2
    single = historical_paths(case, 200, 5, seed=1, block=1)  # any day, any order
    ratios = np.round(single.growth[:, 1:, 0] / single.growth[:, :-1, 0], 12)
    assert set(ratios.ravel().tolist()) == {1.1, 0.9, 1.2}
    again = historical_paths(case, 200, 5, seed=1, block=1)
    assert np.array_equal(single.growth, again.growth) and not np.array_equal(
        single.growth, historical_paths(case, 200, 5, seed=2, block=1).growth)


def test_monte_carlo_paths_step_at_the_case_vols() -> None:
    # One-day log returns: sd vol / sqrt(365) (BTC 0.55, ETH 0.65), mean -vol^2 / 730; 40,000 draws.
    case = marginopt.load_case(DEMO)
    drawn = monte_carlo_paths(case, 40000, 1, seed=4)
    logs = np.log(drawn.growth[:, 1, :])
    assert drawn.underlyings == ("BTC", "ETH")
    np.testing.assert_allclose(logs.std(axis=0), np.array([0.55, 0.65]) / math.sqrt(365), rtol=0.02)
    assert "history's daily log returns" in drawn.source
    assert np.corrcoef(logs, rowvar=False)[0, 1] > 0.3  # the demo's history correlates BTC and ETH


def test_a_horizon_past_the_history_and_other_bad_input_get_located_errors(write_case) -> None:
    case = _case(write_case, market=_market(history=DOWN_UP), instruments=[FUTURE], venues={"V": FIXED})
    with pytest.raises(CaseError) as err:  # 2 daily returns cannot make a 5-day window
        forward_report(case, model="historical", paths=10, days=5)
    assert "date" in str(err.value) and "at least 6 rows of prices" in str(err.value) and "--days" in str(err.value)
    with pytest.raises(CaseError, match="--block"):
        forward_report(case, model="historical", paths=10, days=5, block=3)
    with pytest.raises(ArgumentError, match="days=0"):
        forward_report(case, days=0)
    with pytest.raises(ArgumentError, match="paths=0"):
        forward_report(case, paths=0)
    with pytest.raises(ArgumentError, match="quantiles"):
        forward_report(case, quantiles=(0.5, 1.5))
    bare = _case(write_case, market={"prices": {"BTC": 100000.0, "USDC": 1.0}}, instruments=[FUTURE], venues={"V": FIXED})
    with pytest.raises(CaseError, match="market.history"):
        forward_report(bare, model="historical")
    with pytest.raises(CaseError, match="market.vols.BTC"):
        forward_report(bare, model="monte_carlo", paths=5, days=1)


@pytest.mark.parametrize("compiled", [False, True])
def test_vectorized_tails_and_collateral_match_their_one_state_forms(monkeypatch, compiled: bool) -> None:
    # Small tails of large sets go to the compiled kernel (health._tails), the rest to numpy's partition.
    monkeypatch.setattr(measures, "COMPILED_FROM", 0 if compiled else 10**12)
    rng = np.random.default_rng(0)
    loss = rng.standard_normal((40, 25)) * 100.0
    loss[:, 3] = loss[0, 3]  # a column of ties
    for prob in (np.full(40, 1 / 40), rng.uniform(0.1, 1.0, 40)):
        prob = prob / prob.sum()
        for level in (0.9, 0.975, 0.5, 0.999):
            want_es = [tail_mean(loss[:, n], prob, 1.0 - level) for n in range(25)]
            want_q = [quantile(loss[:, n], prob, level) for n in range(25)]
            np.testing.assert_allclose(tail_means(loss, prob, 1.0 - level), want_es, rtol=1e-12, atol=1e-9)
            np.testing.assert_allclose(quantiles(loss, prob, level), want_q, rtol=0, atol=0)
    # okx_std: USDC capped at half the credited total, BTC at 5% haircut, priced at several BTC prices.
    case = marginopt.load_case(DEMO)
    btc = np.array([1000.0, 40000.0, 91000.0, 300000.0])
    got = credited_collateral(case, "okx_std", {"BTC": btc})
    for k, p in enumerate(btc):
        after = {"USDC": 900000 * 0.98, "BTC": 3 * p * 0.95}
        assert got[k] == pytest.approx(sum(credited_values(after, {"USDC": 0.5}).values()), rel=1e-12)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marginopt", *args], capture_output=True, text=True, timeout=180)


def test_cli_forward_json_csv_and_errors(write_case, tmp_path) -> None:
    path = write_case(market=_market(history=DOWN_UP), instruments=[FUTURE],
                      positions=[{"venue": "V", "instrument": "F", "quantity": 2, "entry_price": 95000}],
                      venues={"V": {**FIXED, "collateral": USDC, "posted": {"USDC": 20000}}})
    out = _cli("forward", str(path), "--days", "2", "--paths", "20", "--quantiles", "0.5,0.99", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["model"]["kind"] == "historical" and doc["quantiles"] == [0.5, 0.99]
    days = doc["venues"][0]["days"]
    assert [d["margin_balance"][0] for d in days] == pytest.approx([30000.0, 10000.0, 28000.0])
    assert [d["call_probability"] for d in days] == [0.0, 1.0, 0.0]
    csv = _cli("forward", str(path), "--days", "2", "--paths", "20", "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    head, *rows = csv.stdout.splitlines()
    assert head.startswith("venue,day,date,initial_margin_p5,") and len(rows) == 3
    assert rows[1].split(",")[-2:] == ["1.0", "0.0"]
    short = _cli("forward", str(path), "--days", "5")  # 2 daily returns in the history
    assert short.returncode != 0 and "at least 6 rows of prices" in short.stderr
    assert _cli("forward", str(path), "--days", "0").returncode == 2
    bad = _cli("forward", str(path), "--venue", "W")
    assert bad.returncode == 2 and "--venue" in bad.stderr
    table = _cli("forward", str(path), "--days", "2", "--paths", "20")
    assert table.returncode == 0 and "P(call)" in table.stdout and "100.00%" in table.stdout


def test_cli_forward_html_report_has_a_fan_chart(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="the HTML report's charts need the plots extra")
    page = tmp_path / "forward.html"
    out = _cli("forward", str(DEMO), "--days", "3", "--paths", "30", "--report", str(page))
    assert out.returncode == 0, out.stderr
    html = page.read_text()
    assert html.count('data-chart="forward"') == 1 and "<svg" in html
    assert all(f'<table id="forward-{v}">' in html for v in ("deribit_pm", "okx_std", "cme_es"))


def _keys(doc: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON document, lists entered through their first item."""
    if isinstance(doc, dict):
        return {k for key, v in doc.items() for k in {prefix + key} | _keys(v, prefix + key + ".")}
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        return _keys(doc[0], prefix)
    return set()


def test_the_documented_json_has_the_keys_the_command_writes(write_case) -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "CASE_FORMAT.md").read_text()
    block = text[text.index("`marginopt forward CASE --format json`"):]
    documented = json.loads(block[block.index("```json") + 7:block.index("```", block.index("```json") + 7)])
    case = _case(write_case, market=_market(history=UP_DOWN), instruments=[
        {"id": "C", "kind": "option", "underlying": "BTC", "expiry": "2026-11-21", "strike": 95000, "right": "call", "vol": 0.5}],
        positions=[{"venue": "V", "instrument": "C", "quantity": -1}], venues={"V": {**FIXED, "collateral": USDC}})
    written = forward_report(case, paths=2, days=2).to_dict()
    assert _keys(written) == _keys(documented)


def _history(days: int = 60, seed: int = 8) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    steps = np.exp(np.cumsum(rng.normal(0.0, 0.03, (days, 2)), axis=0))
    start = np.datetime64("2026-08-01")
    return [{"date": str(start + k), "BTC": float(100000.0 * a), "ETH": float(3000.0 * b)} for k, (a, b) in enumerate(steps)]


def _batch(case: marginopt.Case, report: Any) -> Any:
    """The "cme" venue's book at day 1's states of ``report``, for one of its measures on its own."""
    from marginopt.health.measures import Batch
    from marginopt.health.states import price_states, venue_book

    timeline = PathDays(case)
    book = venue_book(timeline.anchored, "cme", report.paths.underlyings)
    return Batch(price_states(book, report.paths.growth[:, 1, :], 1), case.market, frozenset(case.instruments.index))


def test_every_vectorized_measure_kind_is_the_full_margin_of_the_day(write_case) -> None:
    # One venue per family of measure kinds (and CME SPAN's preset, with its spread credit), each holding linear and inverse options (one on a quoted future,
    # one expiring on day 2), futures and an inverse perpetual; tiered and concentrated collateral. On each
    # state the projection equals a full margin of the case on that day; the spread credit is not 0 on every state.
    grid = {"kind": "grid", "price_moves": [-1.0, -0.5, 0.0, 0.5, 1.0], "vol_moves": [-0.2, 0.0, 0.3],
            "scan_ranges": {"BTC": 0.1, "ETH": 0.12}, "coin_margined": True, "min_vol_up": 0.6,
            "vol_scaling": {"reference_days": 30, "power": 0.3, "long_power": 0.1},
            "extended": [{"price_move": -2.0, "vol_move": 0.3, "weight": 0.3}, {"price_move": 2.0, "vol_move": 0.3, "weight": 0.3}]}
    mc = {"kind": "monte_carlo", "n": 300, "seed": 3, "correlation": {"BTC": {"ETH": 0.6}}}
    hist = {"kind": "historical", "window": 40, "horizon_days": 2}
    venues = {
        "span": {"initial_margin": {"kind": "max", "terms": [{"kind": "scenario_max", "scenarios": grid},
                                                            {"kind": "fixed_rate", "rate": 0.01, "notional": "underlying"}]},
                 "maintenance_margin": {"kind": "expected_shortfall", "alpha": 0.8, "scenarios": grid}},
        "stats": {"initial_margin": {"kind": "parametric_var", "z": 2.33, "scenarios": mc},
                  "maintenance_margin": {"kind": "historical_var", "alpha": 0.95, "scenarios": hist}},
        "delta": {"initial_margin": {"kind": "sum", "terms": [
            {"kind": "net_delta_charge", "rate": 0.02}, {"kind": "basis_shift", "annual_move": 0.1},
            {"kind": "delta_requirement", "unhedged": 0.02, "hedged": 0.01, "applies_to": ["future", "perpetual"]},
            {"kind": "expected_shortfall", "alpha": 0.9, "scenarios": hist}, {"kind": "short_option_minimum", "per_contract": 0.01}]},
                  "maintenance_margin": {"fraction_of_initial": 0.6}},
    }
    venues["cme"] = {"preset": "cme-span-2024", "scan_ranges": {"BTC": 0.12, "ETH": 0.15}, "vol_scan_range": 0.25,
                     "short_option_minimum": 0.005, "spreads": [{"rate": 0.5, "legs": [
                         {"underlying": "BTC", "ratio": 1.0, "side": "A"}, {"underlying": "ETH", "ratio": 5.0, "side": "B"}]}]}
    for v in venues.values():
        v.update(collateral={"USDC": {"haircut": 0.02}, "BTC": {"tiers": [[500000, 0.95], [2000000, 0.8]]}},
                 concentration={"USDC": 0.7}, posted={"USDC": 300000, "BTC": 12})
    instruments = [
        {"id": "FQ", "kind": "future", "underlying": "BTC", "expiry": "2027-03-26", "price": 101500},
        {"id": "FE", "kind": "future", "underlying": "ETH", "expiry": "2026-12-26"},
        {"id": "IP", "kind": "perpetual", "underlying": "BTC", "multiplier": 10, "settlement": "inverse"},
        {"id": "OQ", "kind": "option", "underlying": "FQ", "expiry": "2027-03-26", "strike": 105000, "right": "call", "price": 9000},
        {"id": "OI", "kind": "option", "underlying": "BTC", "expiry": "2026-12-26", "strike": 90000, "right": "put", "settlement": "inverse"},
        {"id": "OX", "kind": "option", "underlying": "BTC", "expiry": "2026-11-22", "strike": 99000, "right": "call", "vol": 0.7},
        {"id": "OE", "kind": "option", "underlying": "ETH", "expiry": "2026-12-26", "strike": 3200, "right": "call", "settlement": "inverse"},
    ]
    rows = [("FQ", 3, 99000), ("FE", 20, 2900), ("IP", 5000, 98000), ("OQ", -4, None), ("OI", 6, None), ("OX", -5, None),
            ("OE", -30, None)]
    positions = [{"venue": v, "instrument": i, "quantity": q, **({"entry_price": e} if e else {})}
                 for v in venues for i, q, e in rows]
    case = _case(write_case, market=_market(rate=0.03, history=_history()), instruments=instruments, positions=positions,
                 venues=venues)
    report = forward_report(case, model="monte_carlo", paths=4, days=3, seed=9)
    assert {v.method for v in report.venues} == {VECTORIZED}
    assert report["span"].expiries == ((2, "OX"),)
    credit = forward_module.margin(case.venues["cme"].initial_margin.terms[0].terms[1], _batch(case, report))
    assert (credit < 0.0).any()
    timeline = PathDays(case)
    for p in range(4):
        for d in range(4):
            day_case = timeline.case_on(timeline.growth_of(report.paths.growth[p], d), d)
            for v in report.venues:
                h = venue_health(day_case, v.venue)
                settled = timeline.settled(report.paths.growth[p], d, v.venue).value(day_case.market.prices)
                assert v.initial_margin[p, d] == pytest.approx(h.initial_margin, rel=1e-9), (v.venue, p, d)
                assert v.maintenance_margin[p, d] == pytest.approx(h.maintenance_margin, rel=1e-9), (v.venue, p, d)
                assert v.margin_balance[p, d] == pytest.approx(h.margin_balance + settled, rel=1e-10), (v.venue, p, d)


def test_the_health_page_takes_the_forward_section(write_case) -> None:
    pytest.importorskip("matplotlib", reason="the HTML report's charts need the plots extra")
    from marginopt.health.report import health_report
    from marginopt.reports.health import health_html

    case = _case(write_case, market=_market(history=DOWN_UP), instruments=[FUTURE],
                 positions=[{"venue": "V", "instrument": "F", "quantity": 2, "entry_price": 95000}],
                 venues={"V": {**FIXED, "collateral": USDC, "posted": {"USDC": 20000}}})
    page = health_html(health_report(case), forward=forward_report(case, paths=3, days=2))
    assert '<table id="health">' in page and '<table id="forward-V">' in page
    assert page.count('data-chart="forward"') == 1 and page.count('data-chart="health"') == 1
    assert "10,000.00" in page  # day 1's balance on every path: 20,000 + 2 (90,000 - 95,000)


def test_a_margin_that_overflows_on_a_path_is_an_error_naming_where(write_case) -> None:
    # One daily return of x1e18 (each price within the reader's bounds): 20 days of it are past any float.
    hist = [{"date": "2026-11-18", "BTC": 1e-3}, {"date": "2026-11-19", "BTC": 1e15}]
    case = _case(write_case, market=_market(history=hist), instruments=[FUTURE],
                 positions=[{"venue": "V", "instrument": "F", "quantity": 1}], venues={"V": {**FIXED, "collateral": USDC}})
    with pytest.raises(marginopt.ModelError, match=r"venues\.V: the .* on day \d+ of path \d+ is not finite"):
        forward_report(case, model="historical", block=1, paths=3, days=20)
