"""``marginopt import``: venue accounts in ccxt's unified structures to a case.

Recorded raw responses of Deribit, OKX and Binance (USD-M, COIN-M and options) in tests/data/ccxt/ go
through ccxt's own request building and parsers (``tests/ccxt_replay.py`` answers its HTTP layer),
as ``--exchange`` fetches them; the payload is saved and imported with ``--from ccxt``. Every
expected value is read off the raw fixtures by hand (the arithmetic is written out), never taken
from the importer's output.
"""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("ccxt", reason="ccxt is not installed (pip install 'marginopt[venues]')")

from marginopt import formats  # noqa: E402
from marginopt.cli.main import cli  # noqa: E402
from marginopt.models import load_case  # noqa: E402
from marginopt.models.ccxt.live import fetch_account  # noqa: E402
from tests.ccxt_replay import client  # noqa: E402


def saved(name: str, folder: Path, base: str = "USD") -> Path:
    """The fixture's account fetched through ccxt (replayed) and saved as ``--save`` writes it."""
    exchange, replay = client(name)
    payload = fetch_account(exchange.id, client=exchange, base_currency=base)
    assert set(replay.asked) <= set(replay.responses)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(payload, default=str), encoding="utf-8")
    return path


def run(*args: str) -> object:
    return CliRunner().invoke(cli, ["import", *args], catch_exceptions=False)


def rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    key = "id" if "id" in table[0] else "instrument"
    return {r[key]: r for r in table}


# name, import options, then by hand from the raw fixture: instruments (kind, underlying, expiry, strike, right,
# multiplier, settlement, price), positions (quantity, entry price), prices, posted, lot / minimum per instrument.
CASES = {
    "deribit": (
        ["--price", "USDC=1.0"],
        {"BTC-PERPETUAL": ("perpetual", "BTC", "", None, "", 10.0, "inverse", 91050.0),  # contract_size 10 USD
         "BTC-25DEC26": ("future", "BTC", "2026-12-25", None, "", 10.0, "inverse", 92000.0),
         "BTC-25DEC26-100000-C": ("option", "BTC", "2026-12-25", 100000.0, "call", 1.0, "inverse", 0.015 * 91000.0),
         "BTC-25DEC26-80000-P": ("option", "BTC", "2026-12-25", 80000.0, "put", 1.0, "inverse", 0.0125 * 91000.0)},
        # Deribit's size is USD for futures (20,000 USD = 2,000 contracts of 10 USD), BTC for options; shorts negative
        {"BTC-PERPETUAL": (2000.0, 88000.0), "BTC-25DEC26": (-500.0, 95000.0), "BTC-25DEC26-100000-C": (-2.5, None),
         "BTC-25DEC26-80000-P": (1.2, None)},
        {"BTC": 91000.0, "ETH": 3100.0 * 1.0, "USDC": 1.0},  # BTC: index_price; ETH: ETH_USDC last x USDC
        {"BTC": 3.2 - (20000 * (1 / 88000 - 1 / 91050) - 5000 * (1 / 95000 - 1 / 92000))  # equity less futures P&L in BTC
                - (-2.5 * 0.015 + 1.2 * 0.0125),  # ... less the options' mark value in BTC
         "ETH": 10.5, "USDC": 25000.0},
        {"BTC-PERPETUAL": (1.0, 1.0, 0.5), "BTC-25DEC26": (1.0, 1.0, 2.5), "BTC-25DEC26-100000-C": (0.1, 0.1, 0.0001)},
    ),
    "okx": (
        ["--price", "USDT=1", "--price", "USDC=1", "--param", "minimum_charge_rate=0.0005"],
        {"BTC-USD-SWAP": ("perpetual", "BTC", "", None, "", 100.0, "inverse", 91020.0),  # ctVal 100 USD
         "ETH-USDT-SWAP": ("perpetual", "ETH", "", None, "", 0.1, "linear", 3105.0),
         "BTC-USDT-261225": ("future", "BTC", "2026-12-25", None, "", 0.01, "linear", 92010.0),
         # ctVal 1 x ctMult 0.01 BTC; markPx 0.0151 BTC x BTC 91,010
         "BTC-USD-261225-100000-C": ("option", "BTC", "2026-12-25", 100000.0, "call", 0.01, "inverse", 0.0151 * 91010.0)},
        {"BTC-USD-SWAP": (-30.0, 93000.0), "ETH-USDT-SWAP": (25.0, 3000.0), "BTC-USDT-261225": (12.3, 90000.0),
         "BTC-USD-261225-100000-C": (-40.0, None)},
        {"BTC": 91010.0, "ETH": 3102.0, "USDT": 1.0, "USDC": 1.0},  # spot last x USDT
        {"BTC": 1.25 - (-30 * 100 * (1 / 93000 - 1 / 91020)) - (-40 * 0.01 * 0.0151),
         "USDT": 40509.73 - 25 * 0.1 * (3105 - 3000) - 12.3 * 0.01 * (92010 - 90000),  # = cashBal 40,000
         "ETH": 2.0, "USDC": 10000.0},
        {"ETH-USDT-SWAP": (0.1, 1.0, 0.01), "BTC-USD-261225-100000-C": (1.0, 1.0, 0.0005), "BTC-USD-SWAP": (1.0, 1.0, 0.1)},
    ),
    "binanceusdm": (
        ["--base-currency", "USDT", "--fallback-rate", "0.1"],
        {"BTCUSDT": ("perpetual", "BTC", "", None, "", 1.0, "linear", 91012.3),
         "ETHUSDT_261225": ("future", "ETH", "2026-12-25", None, "", 1.0, "linear", 3125.4)},
        {"BTCUSDT": (0.25, 88500.5), "ETHUSDT_261225": (-3.5, 3180.0)},
        {"BTC": 91005.0, "ETH": 3101.5, "USDT": 1.0},  # premiumIndex indexPrice
        {"USDT": 20819.05 - 0.25 * (91012.3 - 88500.5) + 3.5 * (3125.4 - 3180),  # = walletBalance 20,000
         "BTC": 0.35},
        {"BTCUSDT": (0.001, 0.001, 0.1), "ETHUSDT_261225": (0.001, 0.001, 0.01)},
    ),
    "binancecoinm": (
        ["--fallback-rate", "0.05", "--price", "ETH=3100"],
        {"BTCUSD_PERP": ("perpetual", "BTC", "", None, "", 100.0, "inverse", 91010.0),
         "BTCUSD_261225": ("future", "BTC", "2026-12-25", None, "", 100.0, "inverse", 92020.0)},
        {"BTCUSD_PERP": (-20.0, 92000.0), "BTCUSD_261225": (7.0, 90500.0)},
        {"BTC": 91000.0, "ETH": 3100.0},
        {"BTC": 0.50036424 - (-20 * 100 * (1 / 92000 - 1 / 91010) + 7 * 100 * (1 / 90500 - 1 / 92020)), "ETH": 3.0},
        {"BTCUSD_PERP": (1.0, 1.0, 0.1)},
    ),
    "binance": (  # European options (eapi), USDT-settled: linear; a contract is unit 1 BTC
        ["--base-currency", "USDT", "--fallback-rate", "0.1"],
        # expiryDate 1798185600000 ms = 2026-12-25 08:00 UTC; strikePrice; side CALL / PUT; marks from eapi/v1/mark (USDT)
        {"BTC-261225-100000-C": ("option", "BTC", "2026-12-25", 100000.0, "call", 1.0, "linear", 1650.0),
         "BTC-261225-80000-P": ("option", "BTC", "2026-12-25", 80000.0, "put", 1.0, "linear", 1100.0)},
        # LONG quantity 2; SHORT quantity -1.5 (Binance signs a short; ccxt negates it again: its magnitude counts);
        # entryPrice 1,500 and 1,200 are not carried: an option counts at its mark
        {"BTC-261225-100000-C": (2.0, None), "BTC-261225-80000-P": (-1.5, None)},
        {"BTC": 91000.0, "USDT": 1.0},  # BTCUSDT spot lastPrice
        # marginAccount equity 51,650 less the options at mark, 2 x 1,650 - 1.5 x 1,100 = 1,650: the cash, 50,000;
        # BTC equity 0.2 (no BTC-settled position)
        {"USDT": 51650.0 - (2 * 1650.0 - 1.5 * 1100.0), "BTC": 0.2},
        # LOT_SIZE stepSize 0.01, minQty 0.01 contracts; PRICE_FILTER tickSize 5 USDT
        {"BTC-261225-100000-C": (0.01, 0.01, 5.0), "BTC-261225-80000-P": (0.01, 0.01, 5.0)},
    ),
}
BASE = {"binanceusdm": "USDT", "binance": "USDT"}


@pytest.mark.parametrize("name", list(CASES))
def test_recorded_account_maps_exactly(name, tmp_path):
    options, instruments, positions, prices, posted, lots = CASES[name]
    path = saved(name, tmp_path, BASE.get(name, "USD"))
    out = tmp_path / "case"
    result = run(str(path), "--out", str(out), *options)
    assert result.exit_code == 0, result.output
    got = rows(out / "instruments.csv")
    assert set(got) == set(instruments)
    for iid, (kind, underlying, expiry, strike, right, mult, settlement, price) in instruments.items():
        row = got[iid]
        assert (row["kind"], row["underlying"], row["expiry"], row["right"], row["settlement"]) == \
            (kind, underlying, expiry, right, settlement), iid
        assert (float(row["strike"]) if row["strike"] else None) == strike, iid
        assert float(row["multiplier"]) == pytest.approx(mult, rel=1e-15), iid
        assert float(row["price"]) == pytest.approx(price, rel=1e-15), iid
    held = rows(out / "positions.csv")
    assert set(held) == set(positions)
    for iid, (quantity, entry) in positions.items():
        assert float(held[iid]["quantity"]) == pytest.approx(quantity, rel=1e-15), iid
        assert (float(held[iid]["entry_price"]) if held[iid]["entry_price"] else None) == entry, iid
    case = yaml.safe_load((out / "case.yaml").read_text())
    assert case["market"]["prices"] == pytest.approx(prices, rel=1e-15)
    venue = case["venues"][name]
    assert set(venue["posted"]) == set(posted)
    for asset, quantity in posted.items():
        assert venue["posted"][asset] == pytest.approx(quantity, rel=1e-12), asset
    report = json.loads((out / "import.json").read_text())
    by_id = {i["id"]: i for i in report["instruments"]}
    for iid, (lot, least, tick) in lots.items():
        assert (by_id[iid]["lot_size"], by_id[iid]["min_trade"], by_id[iid]["tick"]) == pytest.approx((lot, least, tick)), iid
    load_case(out / "case.yaml")
    margin = CliRunner().invoke(cli, ["margin", str(out / "case.yaml"), "--format", "json"], catch_exceptions=False)
    assert margin.exit_code == 0, margin.output
    assert json.loads(margin.output)["venues"][0]["initial_margin"] > 0


@pytest.mark.parametrize("name", list(CASES))
def test_margin_balance_is_the_venues_equity(name, tmp_path):
    """Posted is ccxt's total less what the case counts itself, so the case's margin balance at the imported
    marks is the sum of ccxt's totals at their prices (every haircut here 0, Binance's BTC tier 100% below 100M)."""
    options, _, _, prices, _, _ = CASES[name]
    out = tmp_path / "case"
    assert run(str(saved(name, tmp_path, BASE.get(name, "USD"))), "--out", str(out), *options).exit_code == 0
    totals = {"deribit": {"BTC": 3.2, "ETH": 10.5, "USDC": 25000.0},
              "okx": {"BTC": 1.25, "USDT": 40509.73, "ETH": 2.0, "USDC": 10000.0},
              "binanceusdm": {"USDT": 20819.05, "BTC": 0.35},
              "binancecoinm": {"BTC": 0.50036424, "ETH": 3.0},
              "binance": {"USDT": 51650.0, "BTC": 0.2}}[name]
    health = CliRunner().invoke(cli, ["health", str(out / "case.yaml"), "--format", "json"], catch_exceptions=False)
    balance = json.loads(health.output)["venues"][0]["margin_balance"]
    assert balance == pytest.approx(sum(q * prices[a] for a, q in totals.items()), rel=1e-9)


def test_binance_options_read_the_options_account_and_marks(tmp_path):
    """ccxt's binance set to spot and option markets, positions from eapi/v1/position, the balance from
    eapi/v1/marginAccount (ccxt's fetch_balance has none for options) and marks from eapi/v1/mark."""
    exchange, replay = client("binance")
    payload = fetch_account("binance", client=exchange, base_currency="USDT")
    assert sorted(replay.asked) == sorted(replay.responses)  # every recorded request asked, and nothing else
    assert "GET /fapi/v3/positionRisk" not in replay.asked and "GET /api/v3/account" not in replay.asked
    assert payload["balance"]["total"] == {"USDT": 51650.0, "BTC": 0.2}  # equity per asset
    out = tmp_path / "case"
    path = tmp_path / "binance.json"
    path.write_text(json.dumps(payload, default=str), encoding="utf-8")
    assert run(str(path), "--out", str(out), *CASES["binance"][0]).exit_code == 0
    report = json.loads((out / "import.json").read_text())
    assert {i["mark_source"] for i in report["instruments"]} == {
        "tickers.BTC/USDT:USDT-261225-100000-C.markPrice", "tickers.BTC/USDT:USDT-261225-80000-P.markPrice"}


def test_hedge_rows_carry_the_venues_lot_and_minimum(tmp_path):
    out = tmp_path / "case"
    result = run(str(saved("binancecoinm", tmp_path)), "--out", str(out), "--fallback-rate", "0.05", "--price", "ETH=3100",
                 "--hedge-cost-bp", "2")
    assert result.exit_code == 0, result.output
    hedges = rows(out / "hedges.csv")
    # LOT_SIZE stepSize 1, minQty 1 (contracts of 100 USD); 2 bp of the 100 USD face; up to the held size
    assert hedges["BTCUSD_PERP"] == {"venue": "binancecoinm", "instrument": "BTCUSD_PERP", "max_buy": "20.0",
                                     "max_sell": "20.0", "cost_per_unit": repr(2e-4 * 100.0), "lot_size": "1.0",
                                     "min_trade": "1.0"}
    plan = CliRunner().invoke(cli, ["hedge", str(out / "case.yaml"), "--format", "json"], catch_exceptions=False)
    assert json.loads(plan.output)["status"] == "optimal"


def test_unknown_currency_is_a_located_error_unless_skipped(tmp_path):
    path = saved("binancecoinm", tmp_path)
    result = CliRunner().invoke(cli, ["import", str(path), "--out", str(tmp_path / "a"), "--fallback-rate", "0.05"])
    assert result.exit_code == 2
    assert str(path) in result.output and "balance.total.ETH" in result.output and "--price ETH=VALUE" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["import", str(path), "--out", str(tmp_path / "b"), "--fallback-rate", "0.05",
                                      "--skip-unknown"])
    assert result.exit_code == 0
    assert "skipped: balance ETH" in result.stderr
    case = yaml.safe_load((tmp_path / "b" / "case.yaml").read_text())
    assert "1 unknown item(s) skipped" in case["description"] and "ETH" not in case["venues"]["binancecoinm"]["posted"]
    assert json.loads((tmp_path / "b" / "import.json").read_text())["skipped"][0].startswith("balance ETH")


def test_unknown_instrument_is_a_located_error_unless_skipped(tmp_path):
    payload = json.loads(saved("okx", tmp_path).read_text())
    payload["positions"][1]["symbol"] = "DOGE/USDT:USDT"  # a market the markets section does not hold
    path = tmp_path / "okx-doge.json"
    path.write_text(json.dumps(payload))
    args = ["import", str(path), "--price", "USDT=1", "--price", "USDC=1", "--param", "minimum_charge_rate=0.0005"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "positions[1].symbol" in result.output and "DOGE/USDT:USDT" in result.output
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b"), "--skip-unknown"])
    assert result.exit_code == 0 and "skipped: position DOGE/USDT:USDT" in result.stderr
    assert "ETH-USDT-SWAP" not in rows(tmp_path / "b" / "positions.csv")


def test_preset_that_does_not_fit_says_why(tmp_path):
    path = saved("okx", tmp_path)
    result = CliRunner().invoke(cli, ["import", str(path), "--out", str(tmp_path / "a"), "--price", "USDT=1", "--price", "USDC=1"])
    assert result.exit_code == 2 and "minimum_charge_rate" in result.output and "--fallback-rate" in result.output
    result = CliRunner().invoke(cli, ["import", str(path), "--out", str(tmp_path / "b"), "--price", "USDT=1", "--price",
                                      "USDC=1", "--fallback-rate", "0.02"])
    assert result.exit_code == 0
    venue = yaml.safe_load((tmp_path / "b" / "case.yaml").read_text())["venues"]["okx"]
    assert "preset" not in venue and venue["initial_margin"] == {"kind": "fixed_rate", "rate": 0.02}


def test_live_without_network_is_a_clear_error_that_shows_no_secret(tmp_path, monkeypatch):
    secret = "s3cret-VALUE-never-shown"
    monkeypatch.setenv("MARGINOPT_DERIBIT_API_KEY", "key-VALUE-never-shown")
    monkeypatch.setenv("MARGINOPT_DERIBIT_SECRET", secret)
    import socket

    def offline(*args, **kwargs):  # no name resolves: as on a machine without network, wherever the test runs
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    result = CliRunner().invoke(cli, ["import", "--exchange", "deribit", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "--exchange deribit (fetch_markets)" in result.output
    assert "NetworkError" in result.output and "Name or service not known" in result.output
    assert result.output.count("\n") == 1
    assert secret not in result.output and "key-VALUE" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "c").exists()


def test_live_without_credentials_names_the_variables(tmp_path, monkeypatch):
    for var in ("MARGINOPT_OKX_API_KEY", "MARGINOPT_OKX_SECRET", "MARGINOPT_OKX_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MARGINOPT_OKX_API_KEY", "k-VALUE")
    result = CliRunner().invoke(cli, ["import", "--exchange", "okx", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "MARGINOPT_OKX_SECRET" in result.output and "MARGINOPT_OKX_PASSWORD" in result.output
    assert "k-VALUE" not in result.output


def test_a_malformed_file_is_located(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"exchange": "deribit", "markets": [], "positions": []}))
    result = CliRunner().invoke(cli, ["import", str(path), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and str(path) in result.output and "'balance'" in result.output
    payload = json.loads(saved("deribit", tmp_path).read_text())
    payload["positions"][0]["contracts"] = "lots"
    path.write_text(json.dumps(payload))
    result = CliRunner().invoke(cli, ["import", str(path), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "positions[0].contracts" in result.output


def test_the_account_format_is_declared_with_code_that_exists():
    for fmt in formats.account_formats():
        for target in (fmt.importer, fmt.fetcher):
            module, _, name = target.partition(":")
            assert callable(getattr(importlib.import_module(module), name)), target
    assert "import" in cli.commands
