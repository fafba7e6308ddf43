"""marginopt explain: a change in margin between two cases split into pieces that add up to it.

Small cases whose pieces are worked on paper (a fixed-rate venue: a trade and a price move; a scan
grid's maximum, where the order of the factors changes even the sign of a piece), and the demo against
its next day (docs/examples/next_day: BTC -4%, ETH +3%, one trade, one day later), where each piece is
checked against margins recomputed at the cases in between, built independently of explain (market
moves applied to the loaded case, the valuation date, history and positions replaced)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import marginopt
from marginopt.errors import ArgumentError
from marginopt.models import load_case, margin_report
from marginopt.models.document import case_document, data_document
from marginopt.models.explain import REL_TOL, explain
from marginopt.models.moves import MarketMoves

ROOT = Path(__file__).resolve().parents[1]
DEMO = marginopt.demo_case_path()
NEXT_DAY = ROOT / "docs" / "examples" / "next_day" / "case.yaml"
MOVES = {"BTC": -0.04, "ETH": 0.03}  # scripts/make_next_day.py
TRADE = ("deribit_pm", "BTC-26DEC26-90000-C", 20.0)

FIXED: dict[str, Any] = {
    "format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20",
    "market": {"prices": {"BTC": 100000.0, "USDC": 1.0}},
    "instruments": [{"id": "BTC-PERP", "kind": "perpetual", "underlying": "BTC"}],
    "positions": [{"venue": "v", "instrument": "BTC-PERP", "quantity": 10}],
    "venues": {"v": {"initial_margin": {"kind": "fixed_rate", "rate": 0.1}, "collateral": {"USDC": {"haircut": 0.0}},
                     "posted": {"USDC": 1000000}}},
}


def _docs(a: dict[str, Any], b: dict[str, Any]) -> tuple[Any, Any]:
    return data_document(a, "a.yaml"), data_document(b, "b.yaml")


def test_a_trade_and_a_price_move_at_a_fixed_rate_venue() -> None:
    """IM = 10% of |q x price|. A: 10 BTC at 100,000 (100,000). B: 12 BTC at 90,000 (108,000).
    Sequential (market, then positions): 10 x 90,000 x 0.1 - 100,000 = -10,000, then 12 x 90,000 x 0.1 - 90,000
    = +18,000. The other order: positions +20,000 at 100,000, then the market -12,000. Shapley averages both:
    market -11,000, positions +19,000. Each adds up to +8,000."""
    b = copy.deepcopy(FIXED)
    b["market"]["prices"]["BTC"] = 90000.0
    b["positions"][0]["quantity"] = 12
    e = explain(*_docs(FIXED, b))
    assert [f.key for f in e.factors] == ["market:BTC", "positions"]
    s = e.venues[0].initial_margin
    assert (s.a, s.b) == (100_000.0, 108_000.0)
    assert s.sequential == pytest.approx({"market:BTC": -10_000.0, "positions": 18_000.0}, abs=1e-8)
    assert s.shapley == pytest.approx({"market:BTC": -11_000.0, "positions": 19_000.0}, abs=1e-8)
    assert s.levels == pytest.approx((100_000.0, 90_000.0, 108_000.0), abs=1e-8)
    assert s.order_matters(e.tolerance(s))
    c = e.venues[0].collateral_value  # USDC posted: no factor moves it
    assert c.change == 0.0 and all(v == 0.0 for v in c.sequential.values())


def test_a_factor_alone_is_its_whole_change_in_either_method() -> None:
    """Only the price moves: the market piece is the change, sequential and Shapley alike, and order does not matter."""
    b = copy.deepcopy(FIXED)
    b["market"]["prices"]["BTC"] = 80000.0
    e = explain(*_docs(FIXED, b))
    s = e.venues[0].initial_margin
    assert [f.key for f in e.factors] == ["market:BTC"]
    assert s.sequential["market:BTC"] == s.shapley["market:BTC"] == pytest.approx(-20_000.0, abs=1e-8)
    assert not s.order_matters(e.tolerance(s))


SCAN: dict[str, Any] = {
    "format": "marginopt/1", "base_currency": "USD", "valuation_date": "2026-11-20",
    "market": {"prices": {"BTC": 100000.0, "ETH": 3000.0, "USDC": 1.0}},
    "instruments": [{"id": "BTC-PERP", "kind": "perpetual", "underlying": "BTC"},
                    {"id": "ETH-PERP", "kind": "perpetual", "underlying": "ETH"}],
    "positions": [{"venue": "v", "instrument": "BTC-PERP", "quantity": 1}, {"venue": "v", "instrument": "ETH-PERP", "quantity": -30}],
    "venues": {"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {
        "kind": "grid", "price_moves": [-0.1, 0.1], "per_underlying": False}},
        "collateral": {"USDC": {"haircut": 0.0}}, "posted": {"USDC": 1000000}}},
}


def test_a_scan_maximum_where_the_order_changes_the_sign_of_a_piece() -> None:
    """Everything moves together by -10% or +10%; IM is the worse loss. A: 1 BTC (100,000) against -30 ETH (-90,000):
    -10% loses 10,000 - 9,000 = 1,000. B: ETH at 4,000 and 2 BTC: -10% loses 20,000 - 12,000 = 8,000.
    ETH's move alone: |100,000 - 120,000| x 10% = 2,000 (market +1,000); the trade alone: |200,000 - 90,000| x 10%
    = 11,000 (positions +10,000). Sequential (market first): +1,000 then +6,000; market last: -3,000.
    Shapley: market (1,000 - 3,000) / 2 = -1,000, positions (10,000 + 6,000) / 2 = +8,000; both add up to +7,000."""
    b = copy.deepcopy(SCAN)
    b["market"]["prices"]["ETH"] = 4000.0
    b["positions"][0]["quantity"] = 2
    e = explain(*_docs(SCAN, b))
    s = e.venues[0].initial_margin
    assert [f.key for f in e.factors] == ["market:ETH", "positions"]  # BTC's price did not move: no factor
    assert (s.a, s.b) == pytest.approx((1_000.0, 8_000.0), abs=1e-8)
    assert s.sequential == pytest.approx({"market:ETH": 1_000.0, "positions": 6_000.0}, abs=1e-8)
    assert s.shapley == pytest.approx({"market:ETH": -1_000.0, "positions": 8_000.0}, abs=1e-8)
    assert abs(sum(s.shapley.values()) - s.change) <= 1e-9 * 8_000


def test_venue_parameters_and_haircuts() -> None:
    """The rate 10% -> 12% is the venue model's piece (+20,000 on 1,000,000 of notional); a haircut 0 -> 5% on the
    posted USDC is the haircuts' piece of the collateral value (-50,000) and nothing of the margin."""
    b = copy.deepcopy(FIXED)
    b["venues"]["v"]["initial_margin"]["rate"] = 0.12
    b["venues"]["v"]["collateral"]["USDC"]["haircut"] = 0.05
    e = explain(*_docs(FIXED, b))
    assert [f.key for f in e.factors] == ["model", "haircuts"]
    v = e.venues[0]
    assert v.initial_margin.sequential == pytest.approx({"model": 20_000.0, "haircuts": 0.0}, abs=1e-8)
    assert v.collateral_value.sequential == pytest.approx({"model": 0.0, "haircuts": -50_000.0}, abs=1e-8)


def test_what_explain_refuses() -> None:
    b = copy.deepcopy(FIXED)
    b["base_currency"] = "EUR"
    with pytest.raises(ArgumentError, match="one base currency"):
        explain(*_docs(FIXED, b))
    b = copy.deepcopy(FIXED)
    b["venues"]["w"] = b["venues"]["v"]
    with pytest.raises(ArgumentError, match="the same venues: w in one case only"):
        explain(*_docs(FIXED, b))
    b = copy.deepcopy(FIXED)
    b["instruments"][0]["multiplier"] = 10
    with pytest.raises(ArgumentError, match="BTC-PERP's multiplier differ"):
        explain(*_docs(FIXED, b))


def test_an_instrument_held_by_one_case_only_follows_the_other_market() -> None:
    """B sells 5 of a future A does not list, quoted at 95,000 with BTC at 95,000 (from 100,000). Sequentially the
    market comes first, so the trade is priced at B's market; the Shapley split also adds the trade at A's market,
    where the future's quote moves as a market move moves it: 95,000 x 100,000 / 95,000 = 100,000."""
    b = copy.deepcopy(FIXED)
    b["market"]["prices"]["BTC"] = 95000.0
    b["instruments"].append({"id": "BTC-FUT", "kind": "future", "underlying": "BTC", "expiry": "2026-12-26", "price": 95000.0})
    b["positions"].append({"venue": "v", "instrument": "BTC-FUT", "quantity": -5})
    e = explain(*_docs(FIXED, b))
    s = e.venues[0].initial_margin
    # A: 100,000. B: 10% x (10 + 5) x 95,000 = 142,500. Market first: 95,000 (-5,000), then the trade +47,500.
    # Positions first (at A's market, the future quoted 100,000): 10% x 15 x 100,000 = 150,000 (+50,000), market -7,500.
    assert s.sequential == pytest.approx({"market:BTC": -5_000.0, "positions": 47_500.0}, abs=1e-8)
    assert s.shapley == pytest.approx({"market:BTC": -6_250.0, "positions": 48_750.0}, abs=1e-8)


# -- the demo and its next day ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def day_apart() -> Any:
    return explain(case_document(DEMO), case_document(NEXT_DAY))


def test_the_next_day_file_is_the_demo_moved_traded_and_a_day_later() -> None:
    """docs/examples/next_day is what scripts/make_next_day.py says: the demo at MarketMoves(BTC -4%, ETH +3%),
    one trade more, the valuation date a day later, the day's closes appended to the history."""
    demo, nxt = load_case(DEMO), load_case(NEXT_DAY)
    moved = MarketMoves(demo).at(MOVES)
    assert nxt.valuation_date == demo.valuation_date + dt.timedelta(days=1)
    assert {a: nxt.market.prices[a] for a in demo.market.prices} == dict(moved.market.prices)
    for inst in demo.instruments:
        m, n = moved.instruments[inst.id], nxt.instruments[inst.id]
        assert (n.price, n.vol) == (m.price, m.vol), inst.id
    extra = [(v, i, q) for v, i, q in zip(nxt.positions.venue, nxt.positions.instrument, nxt.positions.quantity)][len(demo.positions.quantity):]
    assert extra == [TRADE]
    assert nxt.market.history is not None and demo.market.history is not None
    assert nxt.market.history.dates[:-1] == demo.market.history.dates
    assert nxt.market.history.dates[-1] == dt.date(2026, 11, 20)


def test_the_demo_a_day_apart_pieces_add_up_to_the_change(day_apart: Any) -> None:
    """Per venue and in total, sequential and Shapley pieces each sum to B's initial margin less A's within 1e-9
    relative, A's and B's margins those of the two files' own margin reports."""
    e = day_apart
    assert [f.key for f in e.factors] == ["time", "market:BTC", "market:ETH", "history", "positions"]
    demo, nxt = margin_report(load_case(DEMO)), margin_report(load_case(NEXT_DAY))
    for v in e.venues:
        s = v.initial_margin
        assert (s.a, s.b) == (demo[v.venue].initial_margin, nxt[v.venue].initial_margin)
        for pieces in (s.sequential, s.shapley):
            assert abs(sum(pieces.values()) - s.change) <= REL_TOL * max(abs(s.a), abs(s.b)), v.venue
    total = e.total["initial_margin"]
    assert (total.a, total.b) == pytest.approx((demo.total_initial_margin, nxt.total_initial_margin), rel=1e-15)
    assert abs(sum(total.sequential.values()) - total.change) <= REL_TOL * total.b
    assert abs(sum(total.shapley.values()) - total.change) <= REL_TOL * total.b
    # Only deribit_pm traded: the positions piece is zero elsewhere, by either method.
    for v in e.venues[1:]:
        assert v.initial_margin.sequential["positions"] == 0.0 and v.initial_margin.shapley["positions"] == 0.0


def test_each_piece_is_a_margin_recomputed_at_the_case_between(day_apart: Any) -> None:
    """The cases between A and B built without explain's code: the valuation date moved on the loaded demo, the
    market moved by MarketMoves one underlying at a time, then the next day's history and positions put in.
    Each sequential piece is the difference of their margins (relative 1e-9)."""
    demo, nxt = load_case(DEMO), load_case(NEXT_DAY)
    day = dt.timedelta(days=1)

    def later(case: marginopt.Case) -> marginopt.Case:
        return dataclasses.replace(case, valuation_date=case.valuation_date + day)

    states = [demo, later(demo), later(MarketMoves(demo).at({"BTC": MOVES["BTC"]})), later(MarketMoves(demo).at(MOVES))]
    states.append(dataclasses.replace(states[-1], market=dataclasses.replace(states[-1].market, history=nxt.market.history)))
    states.append(dataclasses.replace(states[-1], positions=nxt.positions))
    reports = [margin_report(s) for s in states]
    keys = [f.key for f in day_apart.factors]
    for v in day_apart.venues:
        s = v.initial_margin
        margins = [r[v.venue].initial_margin for r in reports]
        scale = max(abs(s.a), abs(s.b))
        for k, key in enumerate(keys, start=1):
            assert abs(s.sequential[key] - (margins[k] - margins[k - 1])) <= REL_TOL * scale, (v.venue, key)
        assert abs(margins[-1] - s.b) <= REL_TOL * scale  # the last case between is B
    # The trade buys calls, whose value the venue's worst scenario (BTC -66%) wipes out: it adds margin, and more
    # at A's higher BTC price (which the Shapley split also counts) than after BTC's fall (where the order puts it).
    deribit = day_apart.venues[0].initial_margin
    assert deribit.sequential["positions"] > 0 and deribit.shapley["positions"] > deribit.sequential["positions"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marginopt", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_explain_from_runs_and_files_with_a_report(tmp_path: Path, day_apart: Any) -> None:
    """Two stored runs (margin --store) explained by id: the same JSON as from the files; the HTML report carries
    a waterfall per venue and the total, and a table whose pieces are the JSON's."""
    pytest.importorskip("matplotlib", reason="the plots extra (matplotlib) is not installed")
    db = str(tmp_path / "runs.db")
    for case in (DEMO, NEXT_DAY):
        assert _cli("margin", str(case), "--format", "json", "--db", db).returncode == 0
    out = _cli("explain", "1", "2", "--db", db, "--format", "json", "--report", str(tmp_path / "explain.html"))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["a"]["run"] == 1 and doc["b"]["run"] == 2 and doc["notes"] == []
    files = json.loads(_cli("explain", str(DEMO), str(NEXT_DAY), "--format", "json").stdout)
    assert doc["venues"] == files["venues"] and doc["total"] == files["total"]
    assert doc["method"]["order"] == ["time", "market:BTC", "market:ETH", "history", "positions"]
    for v, mine in zip(doc["venues"], day_apart.venues):
        assert v["initial_margin"]["sequential"] == dict(mine.initial_margin.sequential)
    page = (tmp_path / "explain.html").read_text()
    assert page.count('data-chart="waterfall"') == 1 + len(day_apart.venues)
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    table = _cli("explain", str(DEMO), str(NEXT_DAY))
    assert "Sequential" in table.stdout and "Shapley" in table.stdout and "market BTC" in table.stdout
    missing = _cli("explain", "7", "1", "--db", db)
    assert missing.returncode == 2 and "run 7: not in the history" in missing.stderr


def test_explain_of_a_case_against_itself_has_nothing_to_split(tmp_path: Path) -> None:
    path = tmp_path / "fixed.yaml"
    path.write_text(yaml.safe_dump(FIXED))
    e = explain(case_document(path), case_document(path))
    assert e.factors == () and e.total["initial_margin"].change == 0.0
    assert math.isclose(e.total["initial_margin"].a, 100_000.0)
