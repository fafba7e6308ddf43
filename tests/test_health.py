"""Margin health: equity (margin balance), market moves, and the distance to a call and to liquidation.

Every expected value is worked out on paper in the test's comment (market: BTC 100,000, ETH 3,000,
rate 0, from conftest.BASE), or from an independent Black-76 written here with ``math.erf``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

import marginopt
from marginopt.errors import ArgumentError, CaseError
from marginopt.health.distance import Scan
from marginopt.health.report import health_report
from marginopt.health.state import venue_health
from marginopt.models.moves import MarketMoves

FUTURE = {"id": "F", "kind": "future", "underlying": "BTC", "expiry": "2027-06-30"}
INVERSE_PERP = {"id": "IP", "kind": "perpetual", "underlying": "BTC", "multiplier": 100, "settlement": "inverse"}
FIXED = {"initial_margin": {"kind": "fixed_rate", "rate": 0.10}, "maintenance_margin": {"kind": "fixed_rate", "rate": 0.05}}


def _black76(f: float, k: float, vol: float, years: float, call: bool) -> float:
    """Undiscounted Black-76 per unit (rate 0), with the normal CDF from math.erf."""
    n = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # noqa: E731
    sd = vol * math.sqrt(years)
    d1 = math.log(f / k) / sd + 0.5 * sd
    d2 = d1 - sd
    return f * n(d1) - k * n(d2) if call else k * n(-d2) - f * n(-d1)


def _case(write_case: Any, **sections: Any) -> marginopt.Case:
    return marginopt.load_case(write_case(**sections))


def _future_case(write_case: Any) -> marginopt.Case:
    # Long 2 BTC futures (forward = spot at rate 0) entered at 95,000; 20,000 USDC posted.
    return _case(write_case, instruments=[FUTURE],
                 positions=[{"venue": "V", "instrument": "F", "quantity": 2, "entry_price": 95000}],
                 venues={"V": {**FIXED, "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 20000}}})


def test_a_future_with_an_entry_price_counts_its_unrealized_pnl(write_case) -> None:
    # Balance = 20,000 + 2 (100,000 - 95,000) = 30,000; IM = 10% of 200,000 = 20,000; MM = 10,000.
    h = venue_health(_future_case(write_case), "V")
    assert h.equity.collateral == pytest.approx(20000.0)
    assert h.equity.unrealized_pnl == pytest.approx(10000.0)
    assert h.margin_balance == pytest.approx(30000.0)
    assert (h.initial_margin, h.maintenance_margin) == (pytest.approx(20000.0), pytest.approx(10000.0))
    assert h.excess_initial == pytest.approx(10000.0)
    assert h.margin_ratio == pytest.approx(10000.0 / 30000.0)


def test_distance_of_a_future_to_a_call_and_to_liquidation(write_case) -> None:
    # Balance(S) = 20,000 + 2 (S - 95,000); IM(S) = 0.2 S; MM(S) = 0.1 S.
    # Call: 2 S - 170,000 = 0.2 S -> S = 170,000 / 1.8 = 94,444.44 (move -5.5556%).
    # Liquidation: 2 S - 170,000 = 0.1 S -> S = 170,000 / 1.9 = 89,473.68 (move -10.5263%).
    # Up: the balance grows by 2 per dollar, IM by 0.2: never.
    report = health_report(_future_case(write_case), Scan(tolerance=1e-7))
    down = next(d for d in report.distances if d.direction.name == "BTC down")
    assert down.call.move == pytest.approx(170000 / 1.8 / 100000 - 1, abs=1e-6)
    assert down.liquidation.move == pytest.approx(170000 / 1.9 / 100000 - 1, abs=1e-6)
    assert down.call.prices["BTC"] == pytest.approx(170000 / 1.8, abs=0.1)
    # Reported on the breached side: at that move the balance is below the level, not above it.
    at = venue_health(MarketMoves(report_case := _future_case(write_case)).at({"BTC": down.call.move}), "V")
    assert at.excess_initial < 0.0 < venue_health(MarketMoves(report_case).at({"BTC": down.call.move + 1e-6}), "V").excess_initial
    up = next(d for d in report.distances if d.direction.name == "BTC up")
    assert up.call.move is None and up.liquidation.move is None


def _inverse_case(write_case: Any, collateral: str, posted: float) -> marginopt.Case:
    # 1,000 inverse perpetuals of face 100 USD: 100,000 USD long, entered at 100,000; IM 10% and MM 6% of the face.
    venue = {"initial_margin": {"kind": "fixed_rate", "rate": 0.10}, "maintenance_margin": {"kind": "fixed_rate", "rate": 0.06},
             "collateral": {collateral: {"haircut": 0.0}}, "posted": {collateral: posted}}
    return _case(write_case, instruments=[INVERSE_PERP],
                 positions=[{"venue": "V", "instrument": "IP", "quantity": 1000, "entry_price": 100000}], venues={"V": venue})


def test_an_inverse_perpetual_against_coin_collateral_is_wrong_way(write_case) -> None:
    # P&L in coin: 100,000 (1/100,000 - 1/S), worth S each: S - 100,000 USD. IM 10,000, MM 6,000 (face, fixed).
    # Against 1 BTC: balance = S + S - 100,000 = 2 S - 100,000: call at S = 55,000 (-45%), liquidation at 53,000 (-47%).
    # Against 100,000 USDC: balance = S: call at S = 10,000 (-90%), liquidation at 6,000 (-94%).
    scan = Scan(down=0.99, tolerance=1e-7)
    coin = next(d for d in health_report(_inverse_case(write_case, "BTC", 1.0), scan).distances if d.direction.name == "BTC down")
    usdc = next(d for d in health_report(_inverse_case(write_case, "USDC", 100000.0), scan).distances
                if d.direction.name == "BTC down")
    assert coin.call.move == pytest.approx(-0.45, abs=1e-6)
    assert coin.liquidation.move == pytest.approx(-0.47, abs=1e-6)
    assert usdc.call.move == pytest.approx(-0.90, abs=1e-6)
    assert usdc.liquidation.move == pytest.approx(-0.94, abs=1e-6)
    h = venue_health(MarketMoves(_inverse_case(write_case, "BTC", 1.0)).at({"BTC": -0.2}), "V")
    assert h.equity.collateral == pytest.approx(80000.0)  # the coin collateral moved with the market
    assert h.equity.unrealized_pnl == pytest.approx(-20000.0)


def test_a_quoted_future_keeps_its_basis_and_a_quoted_option_its_implied_vol(write_case) -> None:
    # The future is quoted at 102,000 against spot 100,000 (a ratio of 1.02); a call on it at 3,000.
    instruments = [{**FUTURE, "price": 102000},
                   {"id": "C", "kind": "option", "underlying": "F", "expiry": "2027-06-30", "strike": 110000, "right": "call",
                    "price": 9000}]
    case = _case(write_case, instruments=instruments,
                 positions=[{"venue": "V", "instrument": "F", "quantity": 1}, {"venue": "V", "instrument": "C", "quantity": -1}],
                 venues={"V": {**FIXED, "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 50000}}})
    moved = MarketMoves(case).at({"BTC": -0.10})
    assert moved.market.prices["BTC"] == pytest.approx(90000.0)
    assert moved.instruments["F"].price == pytest.approx(102000 * 0.9)  # 91,800: the basis ratio kept
    h0, h = venue_health(case, "V"), venue_health(moved, "V")
    years = 222 / 365  # 2026-11-20 to 2027-06-30
    lo, hi = 0.01, 3.0  # the implied vol, by bisection on the independent Black-76
    for _ in range(100):
        lo, hi = ((lo + hi) / 2, hi) if _black76(102000, 110000, (lo + hi) / 2, years, True) < 9000 else (lo, (lo + hi) / 2)
    vol = (lo + hi) / 2
    # No entry price: the future's P&L counts from today's quote, 91,800 - 102,000; the short call at its model value.
    assert h0.equity.unrealized_pnl == pytest.approx(0.0)
    assert h0.equity.option_value == pytest.approx(-9000.0)
    assert h.equity.unrealized_pnl == pytest.approx(-10200.0)
    assert h.equity.option_value == pytest.approx(-_black76(91800, 110000, vol, years, True), rel=1e-9)


def test_long_options_count_only_where_the_venue_credits_them(write_case) -> None:
    # A long BTC put, strike 90,000, vol 0.5, expiry 2027-06-30 (222 days), rate 0: worth its Black-76 value.
    put = {"id": "P", "kind": "option", "underlying": "BTC", "expiry": "2027-06-30", "strike": 90000, "right": "put", "vol": 0.5}
    value = _black76(100000, 90000, 0.5, 222 / 365, False)
    for credit, counted in ((True, value), (False, 0.0)):
        case = _case(write_case, instruments=[put], positions=[{"venue": "V", "instrument": "P", "quantity": 3}],
                     venues={"V": {**FIXED, "credit_long_options": credit, "collateral": {"USDC": {"haircut": 0.0}},
                                   "posted": {"USDC": 1000}}})
        e = venue_health(case, "V").equity
        assert e.long_options == pytest.approx(3 * value, rel=1e-9)
        assert e.option_value == pytest.approx(3 * counted, rel=1e-9)
        assert e.margin_balance == pytest.approx(1000 + 3 * counted, rel=1e-9)


def test_a_venue_already_short_is_breached_now(write_case) -> None:
    # 2 futures need IM 20,000 and MM 10,000; 5,000 posted: both breached with no move.
    case = _case(write_case, instruments=[FUTURE], positions=[{"venue": "V", "instrument": "F", "quantity": 2}],
                 venues={"V": {**FIXED, "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 5000}}})
    for d in health_report(case).distances:
        assert d.call.now and d.liquidation.now and d.call.move == 0.0


@pytest.mark.parametrize(("row", "expected"), [
    ({"instrument": "P", "quantity": 1, "entry_price": 100}, "no entry price on an option (P)"),
    ({"instrument": "F", "quantity": 1, "entry_price": -5}, "entry_price"),
])
def test_entry_prices_are_checked(write_case, row: dict[str, Any], expected: str) -> None:
    put = {"id": "P", "kind": "option", "underlying": "BTC", "expiry": "2027-06-30", "strike": 90000, "right": "put", "vol": 0.5}
    with pytest.raises(CaseError) as err:
        _case(write_case, instruments=[FUTURE, put], positions=[{"venue": "V", **row}], venues={"V": FIXED})
    assert "positions.entry_price" in str(err.value) and expected in str(err.value)


def test_summed_rows_keep_their_pnl(write_case) -> None:
    # Rows of +3 at 90,000 and -1 at 99,000, summed: P&L 3 (100,000 - 90,000) - (100,000 - 99,000) = 29,000,
    # the P&L of 2 entered at (3 * 90,000 - 99,000) / 2 = 85,500.
    rows = [{"venue": "V", "instrument": "F", "quantity": 3, "entry_price": 90000},
            {"venue": "V", "instrument": "F", "quantity": -1, "entry_price": 99000}]
    case = _case(write_case, instruments=[FUTURE], positions={"table": rows, "aggregate": True}, venues={"V": FIXED})
    assert case.positions.entries()[0] == pytest.approx(85500.0)
    assert venue_health(case, "V").equity.unrealized_pnl == pytest.approx(29000.0)
    rows[1].pop("entry_price")
    with pytest.raises(CaseError, match="on every row"):
        _case(write_case, instruments=[FUTURE], positions={"table": rows, "aggregate": True}, venues={"V": FIXED})


def test_moves_are_checked(write_case) -> None:
    moves = MarketMoves(_future_case(write_case))
    with pytest.raises(ArgumentError, match="underlying of the case"):
        moves.at({"ETH": 0.1})
    with pytest.raises(ArgumentError, match="greater than -1"):
        moves.at({"BTC": -1.0})
    with pytest.raises(ArgumentError, match="tolerance"):
        Scan(tolerance=0.5)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marginopt", *args], capture_output=True, text=True, timeout=120)


def test_cli_health_json_and_errors(write_case) -> None:
    path = write_case(instruments=[FUTURE], positions=[{"venue": "V", "instrument": "F", "quantity": 2, "entry_price": 95000}],
                      venues={"V": {**FIXED, "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 20000}}})
    out = _cli("health", str(path), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    v = doc["venues"][0]
    assert v["margin_balance"] == pytest.approx(30000.0) and v["unrealized_pnl"] == pytest.approx(10000.0)
    down = next(d for d in v["distance"] if d["direction"] == "BTC down")
    assert down["call"]["move"] == pytest.approx(170000 / 1.8 / 100000 - 1, abs=1e-5)
    bad = _cli("health", str(path), "--venue", "W")
    assert bad.returncode == 2 and "--venue" in bad.stderr and "W" in bad.stderr
    assert _cli("health", str(path), "--down", "1.5").returncode == 2


def test_cli_health_html_report_has_the_tables_and_a_chart_per_venue(write_case, tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="the HTML report's charts need the plots extra")
    path = write_case(instruments=[FUTURE], positions=[{"venue": "V", "instrument": "F", "quantity": 2, "entry_price": 95000}],
                      venues={"V": {**FIXED, "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 20000}}})
    page = tmp_path / "health.html"
    out = _cli("health", str(path), "--report", str(page))
    assert out.returncode == 0, out.stderr
    html = page.read_text()
    assert '<table id="health">' in html and '<table id="distance">' in html
    assert html.count('data-chart="health"') == 1 and "<svg" in html
    assert "30,000.00" in html  # the margin balance, 20,000 + 2 (100,000 - 95,000)


def test_the_worked_example_in_the_docs_matches_its_comments() -> None:
    from pathlib import Path

    case = marginopt.load_case(Path(__file__).resolve().parents[1] / "docs" / "examples" / "health.yaml")
    report = health_report(case, Scan(tolerance=1e-7))
    down = {d.venue: d for d in report.distances if d.direction.name == "BTC down"}
    assert down["linear"].call.move == pytest.approx(170000 / 1.8 / 100000 - 1, abs=1e-6)
    assert down["linear"].liquidation.move == pytest.approx(170000 / 1.9 / 100000 - 1, abs=1e-6)
    assert down["coin"].call.move == pytest.approx(-0.45, abs=1e-6)
    assert down["coin"].liquidation.move == pytest.approx(-0.47, abs=1e-6)
