"""What a hostile or careless user sends: every case here exits with an exact code and, when it is
refused, one ``error:`` line naming the file, the line (YAML) or row (tables) and the field.

Issue 15, parts 2, 3 and 8: numbers past the magnitude guard (``marginopt.models.magnitude``,
|x| <= 1e15, prices, strikes and vols also >= 1e-15) in every numeric field, NaN and infinity,
control characters, byte-order marks and bytes that are not UTF-8, impossible dates, wrong
types, duplicate position rows, and absurd trades for ``whatif`` and ``whatif --route``.

The CLI runs in process (click's runner: the same group, so the same exit codes as the
installed script); ``test_installed_script`` runs a few through ``.venv/bin/marginopt`` itself.
Cases are built from tests/test_validation.py's BASE, dumped one table row per line, so a
marker string finds the YAML line a message must name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from marginopt.cli.main import cli
from marginopt.errors import CaseError
from marginopt.models.magnitude import MAX_MAGNITUDE
from tests.test_validation import base, dump, instrument, line_of

HUGE = 1e300  # far past the guard, and finite: the numbers that used to give 9.1e303 margins
NOT_UTF8 = b"\xff\xfe"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def go(case: dict[str, Any]) -> None:
        d = case
        for k in keys[:-1]:
            d = d[int(k)] if isinstance(d, list) else d[k]
        d[int(keys[-1]) if isinstance(d, list) else keys[-1]] = value

    return go


def _instrument(iid: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda case: instrument(case, iid).update(changes)


def _grid(**kw: Any) -> Callable[[dict[str, Any]], None]:
    return _set("venues.pm.initial_margin.scenarios", {"kind": "grid", "price_moves": [-0.1, 0.0, 0.1], **kw})


def _with_hedges(**row: Any) -> Callable[[dict[str, Any]], None]:
    hedge = {"venue": "pm", "instrument": "F_BTC", "max_buy": 10, "max_sell": 10, "cost_per_unit": 5.0, **row}
    return _set("hedges", [hedge])


def _history(btc: Any) -> Callable[[dict[str, Any]], None]:
    rows = [{"date": "2026-11-18", "BTC": 90000, "ETH": 3000}, {"date": "2026-11-19", "BTC": btc, "ETH": 3050},
            {"date": "2026-11-20", "BTC": 91000, "ETH": 3100}]
    return _set("market.history", rows)


def _replace_line(marker: str, new: str) -> Callable[[str], str]:
    """Replace the one line holding ``marker`` (text the dict form cannot write: an unquoted impossible date)."""

    def go(text: str) -> str:
        lines = text.splitlines()
        k = line_of(text, marker) - 1
        lines[k] = new
        return "\n".join(lines) + "\n"

    return go


@dataclass(frozen=True)
class Adv:
    """One adversarial input: how it is built, the exit code, and what the error line must name.

    ``args`` is the command line, ``{case}`` standing for the written case file. ``line`` is a
    marker whose line in the written YAML the message names; ``row`` a data row and ``file_line``
    a line of a table file; ``file`` the file named (None: a command-line option, no file).
    """

    id: str
    field: str | None
    words: tuple[str, ...] = ()
    mutate: Callable[[dict[str, Any]], None] | None = None
    edit_text: Callable[[str], str] | None = None
    raw: Callable[[str], bytes] | None = None  # the case file's bytes, from the YAML text
    tables: dict[str, str | bytes] = field(default_factory=dict)
    line: str | None = None
    row: int | None = None
    file_line: int | None = None
    file: str | None = "case.yaml"
    args: tuple[str, ...] = ("margin", "{case}", "--format", "json")
    code: int = 2


BOUND = f"{MAX_MAGNITUDE:g}"  # how messages write the guard: 1e+15
POSITIONS_HEAD = "venue,instrument,quantity\n"

ADV: list[Adv] = [
    # -- the magnitude guard, field by field -------------------------------------------------
    Adv("position-quantity-1e300", "positions.quantity", (BOUND,),
        mutate=_set("positions.0.quantity", HUGE), line="quantity: 1.0e+300"),
    Adv("position-quantity-past-float-range", "positions.quantity", (BOUND,),
        mutate=_set("positions.0.quantity", 10**400), line="quantity: 1000000"),
    Adv("position-quantity-inf-csv", "positions.quantity", ("finite number",),
        mutate=_set("positions", "positions.csv"), tables={"positions.csv": POSITIONS_HEAD + "pm,F_BTC,2\npm,C_BTC,inf\n"},
        row=2, file="positions.csv"),
    Adv("position-quantity-just-past-bound-csv", "positions.quantity", (BOUND,),
        mutate=_set("positions", "positions.csv"), tables={"positions.csv": POSITIONS_HEAD + "pm,F_BTC,1.1e15\n"},
        row=1, file="positions.csv"),
    Adv("market-price-1e300", "market.prices.BTC", ("> 0", BOUND),
        mutate=_set("market.prices.BTC", HUGE), line="prices:"),
    Adv("market-price-denormal", "market.prices.ETH", ("> 0", "1e-15"),
        mutate=_set("market.prices.ETH", 5e-324), line="prices:"),
    Adv("market-vol-inf", "market.vols.BTC", ("finite number",),
        mutate=_set("market.vols.BTC", float("inf")), line="vols:"),
    Adv("instrument-multiplier-1e300", "instruments.multiplier", (BOUND,),
        mutate=_instrument("F_BTC", multiplier=HUGE), line="id: F_BTC"),
    Adv("instrument-strike-tiny", "instruments.strike", ("1e-15",),
        mutate=_instrument("C_BTC", strike=1e-300), line="id: C_BTC"),
    Adv("instrument-vol-huge", "instruments.vol", (BOUND,),
        mutate=_instrument("C_BTC", vol=1e16), line="id: C_BTC"),
    Adv("instrument-price-nan", "instruments.price", ("finite number",),
        mutate=_instrument("P_ETH", price=float("nan")), line="id: P_ETH"),
    Adv("posted-1e300", "venues.lin.posted.USDC", (BOUND,),
        mutate=_set("venues.lin.posted.USDC", HUGE), line="posted: {USDC: 1.0e+300}"),
    Adv("tier-bound-inf", "venues.pm.collateral.BTC.tiers.1.0", ("finite number",),
        mutate=_set("venues.pm.collateral.BTC.tiers", [[50000, 0.95], [float("inf"), 0.9]]), line="- [.inf, 0.9]"),
    Adv("treasury-quantity-1e300", "treasury.USDC.quantity", (BOUND,),
        mutate=_set("treasury", {"USDC": {"quantity": HUGE}}), line="quantity: 1.0e+300"),
    Adv("hedge-max-buy-1e300", "hedges.max_buy", (BOUND,),
        mutate=_with_hedges(max_buy=HUGE), line="max_buy: 1.0e+300"),
    Adv("hedge-cost-inf", "hedges.cost_per_unit", ("finite number",),
        mutate=_with_hedges(cost_per_unit=float("inf")), line="cost_per_unit: .inf"),
    Adv("hedge-impact-huge", "hedges.impact", (BOUND,),
        mutate=_with_hedges(impact=1e16), line="impact: 1.0e+16"),
    Adv("limit-max-loss-1e300", "limits.max_loss.limit", (BOUND,),
        mutate=_set("limits", {"max_loss": {"scenarios": {"kind": "grid", "price_moves": [-0.3, 0.3]}, "limit": HUGE}}),
        line="limit: 1.0e+300"),
    Adv("limit-net-delta-minus-1e300", "limits.net_delta.BTC.0", (BOUND,),
        mutate=_set("limits", {"net_delta": {"BTC": [-HUGE, 5]}}), line="BTC: [-1.0e+300"),
    Adv("grid-price-move-1e300", "venues.pm.initial_margin.scenarios.price_moves.2", (BOUND,),
        mutate=_grid(price_moves=[-0.1, 0.0, HUGE]), line="price_moves:"),
    Adv("fixed-rate-1e300", "venues.lin.initial_margin.rate", (BOUND,),
        mutate=_set("venues.lin.initial_margin.rate", HUGE), line="rate: 1.0e+300"),
    Adv("history-price-1e300", "BTC", ("positive price", BOUND),
        mutate=_history(HUGE), line="BTC: 1.0e+300"),
    Adv("matrix-loss-1e300-csv", "C_BTC", (BOUND,),
        mutate=_set("venues.pm.initial_margin.scenarios", {"kind": "matrix", "file": "losses.csv"}),
        tables={"losses.csv": "F_BTC,C_BTC\n1,2\n3,1e300\n"}, row=2, file="losses.csv"),
    Adv("monte-carlo-n-past-memory", "n", ("fit in memory",),
        mutate=_set("venues.pm.initial_margin.scenarios", {"kind": "monte_carlo", "n": MAX_MAGNITUDE, "seed": 1}),
        line="kind: monte_carlo"),
    # -- bytes: control characters, byte-order marks, not UTF-8 ---------------------------------
    Adv("nul-byte-in-case", "(syntax)", ("valid YAML",),
        raw=lambda t: t.replace("objective: min_cost", "objective: min\x00cost").encode(), line="objective:"),
    Adv("nul-byte-in-a-table-path", "positions", ("file path",),
        mutate=_set("positions", "positions\x00.csv"), line="positions: "),
    Adv("bel-control-character", "(syntax)", ("valid YAML",),
        raw=lambda t: t.replace("base_currency: USD", "base_currency: U\x07SD").encode(), line="base_currency:"),
    Adv("not-utf8-case", "(encoding)", ("UTF-8",),
        raw=lambda t: t.replace("objective: min_cost", "objective: \x00").encode().replace(b"\x00", NOT_UTF8), line="objective:"),
    Adv("not-utf8-csv", "positions", ("readable table file", "0xff"),
        mutate=_set("positions", "positions.csv"), tables={"positions.csv": POSITIONS_HEAD.encode() + b"pm,F_BTC,2\npm,C" + NOT_UTF8 + b",1\n"},
        file_line=3, file="positions.csv"),
    Adv("bom-case-is-read", None, raw=lambda t: b"\xef\xbb\xbf" + t.encode(), code=0),
    Adv("bom-csv-is-read", None, mutate=_set("positions", "positions.csv"),
        tables={"positions.csv": b"\xef\xbb\xbf" + POSITIONS_HEAD.encode() + b"pm,F_BTC,2\n"}, code=0),
    # -- impossible dates ------------------------------------------------------------------------
    Adv("valuation-date-month-13", "valuation_date", ("YYYY-MM-DD",),
        edit_text=_replace_line("valuation_date:", "valuation_date: 2026-13-45"), line="valuation_date:"),
    Adv("valuation-date-february-30", "valuation_date", ("YYYY-MM-DD",),
        edit_text=_replace_line("valuation_date:", "valuation_date: 2026-02-30"), line="valuation_date:"),
    Adv("valuation-date-year-0", "valuation_date", ("YYYY-MM-DD",),
        edit_text=_replace_line("valuation_date:", "valuation_date: 0000-01-01"), line="valuation_date:"),
    Adv("valuation-date-hour-25", "valuation_date", ("YYYY-MM-DD",),
        edit_text=_replace_line("valuation_date:", "valuation_date: 2026-11-20T25:00:00"), line="valuation_date:"),
    Adv("expiry-february-30-unquoted", "instruments.expiry", ("date",),
        edit_text=lambda t: t.replace("expiry: '2026-12-25', multiplier", "expiry: 2026-02-30, multiplier"), line="id: F_BTC"),
    Adv("expiry-month-13-csv", "instruments.expiry", ("date",),
        mutate=_set("instruments", "instruments.csv"),
        tables={"instruments.csv": "id,kind,underlying,expiry,strike,right\nF_BTC,future,BTC,2026-12-25,,\n"
                "P_ETH,perpetual,ETH,,,\nC_BTC,option,BTC,2026-13-01,100000,call\n"}, row=3, file="instruments.csv"),
    # -- wrong types -----------------------------------------------------------------------------
    Adv("format-a-number", "format", ("marginopt/1",), mutate=_set("format", 1), line="format: 1"),
    Adv("market-a-list", "market", ("mapping",), mutate=_set("market", [1, 2]), line="market: [1, 2]"),
    Adv("prices-a-text", "market.prices", ("mapping",), mutate=_set("market.prices", "cheap"), line="prices: cheap"),
    Adv("positions-a-number", "positions", ("list of rows",), mutate=_set("positions", 5), line="positions: 5"),
    Adv("venue-a-number", "venues.pm", ("mapping",), mutate=_set("venues.pm", 7), line="pm: 7"),
    Adv("quantity-a-list", "positions.quantity", ("finite number",),
        mutate=_set("positions.1.quantity", [1, 2]), line="- venue: pm"),  # a row is located by its first line
    Adv("quantity-true", "positions.quantity", ("finite number",),
        mutate=_set("positions.1.quantity", True), line="quantity: true"),
    Adv("quantity-a-date", "positions.quantity", ("finite number",),
        edit_text=lambda t: t.replace("instrument: C_BTC, quantity: -1", "instrument: C_BTC, quantity: 2026-01-01"),
        line="quantity: 2026-01-01"),
    Adv("valuation-date-a-number", "valuation_date", ("YYYY-MM-DD",), mutate=_set("valuation_date", 5), line="valuation_date: 5"),
    Adv("treasury-asset-a-text", "treasury.USDC", ("mapping",), mutate=_set("treasury", {"USDC": "lots"}), line="USDC: lots"),
    Adv("limits-a-list", "limits", ("mapping",), mutate=_set("limits", [1]), line="limits: [1]"),
    Adv("float-tag-on-text", "(syntax)", ("tag",),
        edit_text=lambda t: t.replace("rate: 0.0\n", "rate: !!float abc\n"), line="rate: !!float abc"),
    Adv("row-a-list", "positions.0", ("mapping",), mutate=_set("positions", [["pm", "F_BTC", 1]]), line="- [pm, F_BTC, 1]"),
    # an inline (YAML or JSON) cell is typed: quoted "10" is text, refused where a number belongs, and
    # a number or true/false is refused where text belongs; a CSV cell is text and read as a number
    Adv("inline-quantity-quoted", "positions.quantity", ("not text", 'write 10, not "10"'),
        mutate=_set("positions.1.quantity", "10"), line="quantity: '10'"),
    Adv("inline-quantity-empty-text-is-empty", "positions.quantity", ("an empty cell",),
        mutate=_set("positions.1.quantity", " "), line="quantity: ' '"),
    Adv("inline-strike-quoted", "instruments.strike", ("not text",),
        mutate=_instrument("C_BTC", strike="100000"), line="strike: '100000'"),
    Adv("inline-multiplier-true", "instruments.multiplier", ("not text or true/false",),
        mutate=_instrument("F_BTC", multiplier=True), line="multiplier: true"),
    Adv("inline-hedge-max-buy-quoted", "hedges.max_buy", ("not text",),
        mutate=_with_hedges(max_buy="5"), line="max_buy: '5'"),
    Adv("inline-hedge-impact-false", "hedges.impact", ("not text or true/false",),
        mutate=_with_hedges(impact=False), line="impact: false"),
    Adv("inline-history-price-quoted", "BTC", ("positive price", "not text"),
        mutate=_history("91000"), line="BTC: '91000'"),
    Adv("inline-instrument-id-a-number", "instruments.id", ("expected text (not a number or true/false", "quote it"),
        mutate=_instrument("P_ETH", id=7), line="id: 7"),
    Adv("inline-position-venue-a-number", "positions.venue", ("expected text (not a number",),
        mutate=_set("positions.2.venue", 5), line="venue: 5"),
    Adv("inline-position-account-true", "positions.account", ("expected text (not a number or true/false",),
        mutate=_set("positions.2.account", True), line="account: true"),
    Adv("inline-expiry-a-number", "instruments.expiry", ("a date YYYY-MM-DD",),
        mutate=_instrument("F_BTC", expiry=20261225), line="expiry: 20261225"),
    Adv("inline-history-date-a-number", "date", ("a date YYYY-MM-DD",),
        mutate=lambda c: (_history(91000)(c), c["market"]["history"][1].update(date=20261119)), line="date: 20261119"),
    Adv("treasury-quantity-quoted", "treasury.USDC.quantity", ("finite number",),
        mutate=_set("treasury", {"USDC": {"quantity": "10"}}), line="quantity: '10'"),
    Adv("collateral-haircut-quoted", "venues.lin.collateral.USDC.haircut", ("finite number",),
        mutate=_set("venues.lin.collateral.USDC.haircut", "0.01"), line="USDC: {haircut: '0.01'}"),
    Adv("inline-expiry-unquoted-date-is-read", None, code=0,
        edit_text=lambda t: t.replace("expiry: '2026-12-25', multiplier", "expiry: 2026-12-25, multiplier")),
    Adv("csv-quoted-number-is-read", None, mutate=_set("positions", "positions.csv"),
        tables={"positions.csv": POSITIONS_HEAD + 'pm,F_BTC,"2"\npm,C_BTC, -1\n'}, code=0),
    # -- execution terms (issue 17): lots, minimum trades and transfers, move and ticket caps, rounding ---
    Adv("hedge-lot-size-zero", "hedges.lot_size", ("> 0",), mutate=_with_hedges(lot_size=0), line="lot_size: 0"),
    Adv("hedge-lot-size-negative", "hedges.lot_size", ("> 0",), mutate=_with_hedges(lot_size=-0.1), line="lot_size: -0.1"),
    Adv("hedge-lot-size-quoted", "hedges.lot_size", ("not text",), mutate=_with_hedges(lot_size="0.1"), line="lot_size: '0.1'"),
    Adv("hedge-min-trade-negative", "hedges.min_trade", (">= 0",), mutate=_with_hedges(min_trade=-1), line="min_trade: -1"),
    Adv("hedge-min-trade-past-the-bounds", "hedges.min_trade", ("larger bound", "max_buy 10"),
        mutate=_with_hedges(min_trade=11), line="min_trade: 11"),
    Adv("venue-minimum-transfer-negative", "venues.lin.minimum_transfer", (">= 0",),
        mutate=_set("venues.lin.minimum_transfer", -5000), line="minimum_transfer: -5000"),
    Adv("venue-minimum-transfer-text", "venues.lin.minimum_transfer", ("finite number",),
        mutate=_set("venues.lin.minimum_transfer", "5k"), line="minimum_transfer: 5k"),
    Adv("venue-max-moves-not-integer", "venues.lin.max_moves", ("integer",),
        mutate=_set("venues.lin.max_moves", 1.5), line="max_moves: 1.5"),
    Adv("venue-max-moves-negative", "venues.lin.max_moves", ("integer >= 0",),
        mutate=_set("venues.lin.max_moves", -1), line="max_moves: -1"),
    Adv("treasury-rounding-zero", "treasury.USDC.rounding", ("> 0",),
        mutate=_set("treasury", {"USDC": {"quantity": 1000, "rounding": 0}}), line="rounding: 0"),
    Adv("execution-max-tickets-text", "execution.max_tickets", ("integer",),
        mutate=_set("execution", {"max_tickets": "five"}), line="max_tickets: five"),
    Adv("execution-max-moves-not-integer", "execution.max_moves", ("integer",),
        mutate=_set("execution", {"max_moves": 2.5}), line="max_moves: 2.5"),
    Adv("execution-unknown-key", "execution.max_lots", ("max_moves, max_tickets",),
        mutate=_set("execution", {"max_lots": 2}), line="max_lots: 2"),
    Adv("execution-terms-are-read", None, code=0,
        mutate=lambda c: (_with_hedges(lot_size=0.1, min_trade=1)(c), c["venues"]["lin"].update(minimum_transfer=5000, max_moves=1),
                          c.update(execution={"max_moves": 2, "max_tickets": 1},
                                   treasury={"USDC": {"quantity": 1000, "rounding": 100}}))),
    # -- duplicate position rows -------------------------------------------------------------------
    Adv("duplicate-position-inline", "positions.instrument", ("one row per venue, account and instrument", "aggregate: true"),
        mutate=lambda c: c["positions"].append({"venue": "pm", "instrument": "C_BTC", "quantity": 5}), line="quantity: 5"),
    Adv("duplicate-position-csv", "positions.instrument", ("row 1 holds pm, main, F_BTC",),
        mutate=_set("positions", "positions.csv"), tables={"positions.csv": POSITIONS_HEAD + "pm,F_BTC,2\nlin,P_ETH,1\npm,F_BTC,2\n"},
        row=3, file="positions.csv"),
    Adv("duplicate-position-blank-account-is-main", "positions.instrument", ("row 1",),
        mutate=_set("positions", "positions.csv"),
        tables={"positions.csv": "venue,account,instrument,quantity\npm,main,F_BTC,2\npm,,F_BTC,2\n"}, row=2, file="positions.csv"),
    Adv("aggregate-not-a-boolean", "positions.aggregate", ("true or false",),
        mutate=lambda c: c.update(positions={"table": c["positions"], "aggregate": "yes"}), line="aggregate: 'yes'"),
    Adv("aggregate-sum-past-the-bound", "positions.quantity", ("sum to", BOUND),
        mutate=_set("positions", {"table": "positions.csv", "aggregate": True}),
        tables={"positions.csv": POSITIONS_HEAD + "pm,F_BTC,9e14\npm,F_BTC,9e14\n"}, row=1, file="positions.csv"),
    # -- absurd trades -------------------------------------------------------------------------------
    Adv("whatif-inf", "--trade QTY", ("finite number", BOUND), file=None, args=("whatif", "{case}", "--trade", "pm:F_BTC:inf")),
    Adv("whatif-nan", "--trade QTY", ("finite number",), file=None, args=("whatif", "{case}", "--trade", "pm:F_BTC:nan")),
    Adv("whatif-1e300", "--trade QTY", (BOUND,), file=None, args=("whatif", "{case}", "--trade", "pm:F_BTC:1e300")),
    Adv("whatif-past-float-range", "--trade QTY", (BOUND,), file=None, args=("whatif", "{case}", "--trade", "pm:F_BTC:1e999")),
    Adv("route-minus-1e308", "--trade QTY", (BOUND,), file=None,
        args=("whatif", "{case}", "--trade", ":F_BTC:-1e308", "--route")),
    Adv("route-text", "--trade QTY", ("finite number",), file=None, args=("whatif", "{case}", "--trade", ":F_BTC:ten", "--route")),
    Adv("whatif-four-parts", "--trade", ("VENUE:INSTRUMENT:QTY",), file=None, args=("whatif", "{case}", "--trade", "pm:F_BTC:1:2")),
    Adv("whatif-at-the-bound-is-computed", None, args=("whatif", "{case}", "--trade", "lin:P_ETH:3e11", "--format", "json"), code=0),
    # -- gross value: |quantity| x multiplier x price (an inverse perpetual: x face value) within 1e15 of base currency ------
    # 1e15 ETH perpetuals at 3,100 are 3.1e18 USD: past 2**53 an amount is not carried to a fraction of a unit
    Adv("whatif-gross-value-past-the-bound", "--trade QTY", ("at most 1e+15 USD gross", "= 3.1e+18 USD"), file=None,
        args=("whatif", "{case}", "--trade", "lin:P_ETH:1e15")),
    Adv("route-gross-value-past-the-bound", "--trade QTY", ("at most 1e+15 USD gross", "= 9.1e+15 USD"), file=None,
        args=("whatif", "{case}", "--trade", ":F_BTC:-1e11", "--route")),
    # 1e12 x 3,100 = 3.1e15 USD
    Adv("position-gross-value-past-the-bound", "positions.quantity", ("at most 1e+15 USD gross", "ETH price 3100 = 3.1e+15 USD"),
        mutate=_set("positions.2.quantity", 10**12), line="quantity: 1000000000000"),
    # 2e10 x 91,000 = 1.82e15 USD, in a CSV file
    Adv("position-gross-value-past-the-bound-csv", "positions.quantity", ("= 1.82e+15 USD",),
        mutate=_set("positions", "positions.csv"), tables={"positions.csv": POSITIONS_HEAD + "lin,P_ETH,1\npm,F_BTC,2e10\n"},
        row=2, file="positions.csv"),
    # two rows of 6e9 summed (aggregate: true): 1.2e10 x 91,000 = 1.092e15 USD, at the first row
    Adv("aggregated-gross-value-past-the-bound", "positions.quantity", ("= 1.09e+15 USD",),
        mutate=_set("positions", {"table": "positions.csv", "aggregate": True}),
        tables={"positions.csv": POSITIONS_HEAD + "lin,P_ETH,1\npm,F_BTC,6e9\npm,F_BTC,6e9\n"}, row=2, file="positions.csv"),
    # an inverse perpetual's multiplier is its face value in USD: 2e14 x 10 = 2e15 USD
    Adv("inverse-perpetual-face-value-past-the-bound", "positions.quantity", ("face value 10 = 2e+15 USD",),
        mutate=lambda c: (c["instruments"].append({"id": "INV", "kind": "perpetual", "underlying": "BTC", "settlement": "inverse",
                                                   "multiplier": 10}),
                          c["positions"].append({"venue": "pm", "instrument": "INV", "quantity": 2 * 10**14})),
        line="quantity: 200000000000000"),
    # 9.3e14 USD is within the bound: its margin is computed
    Adv("position-gross-value-at-the-bound-is-computed", None, mutate=_set("positions.2.quantity", 3 * 10**11), code=0),
]


def _write(tmp_path: Path, a: Adv) -> tuple[Path, str]:
    case = base()
    if a.mutate is not None:
        a.mutate(case)
    text = dump(case)
    if a.edit_text is not None:
        text = a.edit_text(text)
    path = tmp_path / "case.yaml"
    path.write_bytes(a.raw(text) if a.raw is not None else text.encode())
    for name, content in a.tables.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return path, text


def invoke(args: list[str]) -> tuple[int, str, str]:
    """The ``marginopt`` group in process: exit code, stdout, stderr."""
    result = CliRunner().invoke(cli, args, prog_name="marginopt")
    return result.exit_code, result.stdout, result.stderr


def _check_message(a: Adv, stderr: str, text: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    msg = lines[0]
    assert "internal error" not in msg and "Traceback" not in stderr
    if a.file is not None:
        assert a.file in msg, f"file {a.file!r} not named in: {msg}"
    if a.field is not None:
        assert f"field '{a.field}'" in msg, f"field {a.field!r} not named in: {msg}"
    if a.line is not None:
        assert f"line {line_of(text, a.line)}:" in msg, f"expected line {line_of(text, a.line)} in: {msg}"
    if a.row is not None:
        assert f"row {a.row}:" in msg, f"expected row {a.row} in: {msg}"
    if a.file_line is not None:
        assert f"line {a.file_line}:" in msg, f"expected line {a.file_line} in: {msg}"
    for word in a.words:
        assert word in msg, f"{word!r} missing from: {msg}"


@pytest.mark.parametrize("a", [pytest.param(a, id=a.id) for a in ADV])
def test_adversarial_input(tmp_path: Path, a: Adv) -> None:
    path, text = _write(tmp_path, a)
    code, stdout, stderr = invoke([str(path) if arg == "{case}" else arg for arg in a.args])
    assert code == a.code, f"exit {code}, expected {a.code}\nstdout: {stdout[:1000]}\nstderr: {stderr[-2000:]}"
    if a.code == 2:
        assert stdout == ""
        _check_message(a, stderr, text)
    else:
        json.loads(stdout)  # a whole, valid JSON document: no NaN or Infinity token in it


def test_the_guard_covers_each_table_of_the_cases_above() -> None:
    """At least 25 adversarial cases, and a huge number in each kind of numeric input."""
    assert len(ADV) >= 25
    fields = {a.field for a in ADV if a.field is not None}
    for f in ("positions.quantity", "market.prices.BTC", "instruments.multiplier", "instruments.strike", "venues.lin.posted.USDC",
              "treasury.USDC.quantity", "hedges.max_buy", "hedges.cost_per_unit", "limits.max_loss.limit", "--trade QTY"):
        assert f in fields, f


def test_optimize_on_the_demo_with_a_position_of_1e15_names_the_row(tmp_path: Path) -> None:
    """The demo with 1e15 BTC perpetuals at OKX (row 11 of positions.csv): 1e15 x 91,000 = 9.1e19 USD gross.
    It used to reach the solver and exit 3 ("the elastic problem could not be solved"), naming no input."""
    import shutil

    import marginopt

    demo = tmp_path / "demo"
    shutil.copytree(marginopt.demo_case_path().parent, demo)
    rows = (demo / "positions.csv").read_text().splitlines()
    assert rows[11] == "okx_std,main,BTC-PERP,18"
    rows[11] = "okx_std,main,BTC-PERP,1e15"
    (demo / "positions.csv").write_text("\n".join(rows) + "\n")
    for command in ("optimize", "margin"):
        code, stdout, stderr = invoke([command, str(demo / "case.yaml")])
        assert code == 2 and stdout == "", stderr
        assert stderr.startswith(f"error: {demo / 'positions.csv'}, row 11: field 'positions.quantity': expected a position worth "
                                 "at most 1e+15 USD gross (1e+15 x multiplier 1 x BTC price 91000 = 9.1e+19 USD)"), stderr


def test_a_solve_that_fails_without_saying_why_names_the_largest_amounts(tmp_path: Path) -> None:
    """The demo with 1e7 BTC perpetuals at OKX (9.1e11 USD gross, within the guard): when the solvers give no plan and
    no shortfall, the output names the case's largest amounts (hand values: 1e7 x 91,000; CME BTC future bound 50 x
    5 BTC x 91,000; Deribit BTC future bound 100 x 1 x 91,000)."""
    import shutil
    from dataclasses import replace

    import marginopt
    from marginopt.cli import render

    demo = tmp_path / "demo"
    shutil.copytree(marginopt.demo_case_path().parent, demo)
    text = (demo / "positions.csv").read_text()
    (demo / "positions.csv").write_text(text.replace("okx_std,main,BTC-PERP,18\n", "okx_std,main,BTC-PERP,1e7\n"))
    case = marginopt.load_case(demo / "case.yaml")
    assert render.largest_amounts(case) == [
        {"table": "positions", "input": "okx_std main BTC-PERP", "quantity": 1e7, "value": 9.1e11},
        {"table": "hedges", "input": "cme_es CME-BTC-DEC26 max_buy/max_sell", "quantity": 50.0, "value": 50 * 5 * 91000.0},
        {"table": "hedges", "input": "deribit_pm BTC-26DEC26 max_buy/max_sell", "quantity": 100.0, "value": 9.1e6}]
    plan = marginopt.optimize(marginopt.load_case(marginopt.demo_case_path()), mode="hedge")
    assert not render.unexplained(plan)
    assert render.unexplained(replace(plan, status="failed"))
    assert render.unexplained(replace(plan, status="infeasible", shortfalls=(("the elastic problem could not be solved", float("nan")),)))
    assert not render.unexplained(replace(plan, status="infeasible", shortfalls=(("okx_std: initial margin not covered", 5.0),)))


def _json_case_with(table: str, column: str, value: Any) -> tuple[dict[str, Any], int]:
    """The base case as parsed JSON (no lines) with one inline cell of ``table`` set to ``value``; its row (from 1)."""
    case = json.loads(json.dumps(base()))
    _history(91000)(case)
    _with_hedges()(case)
    rows = case["market"]["history"] if table == "market.history" else case[table]
    k = {"instruments": 2, "positions": 1, "hedges": 0, "market.history": 1}[table]  # C_BTC: an option, every column applies
    rows[k][column] = value
    return case, k + 1


def _typed_cells() -> list[Any]:
    """Every column the service checks (service/cases.py: NUMBER_COLUMNS, TEXT_COLUMNS, market.history), with a
    cell of the other JSON type: text or true where a number belongs, a number or true where text belongs."""
    from marginopt.service.cases import NUMBER_COLUMNS, TEXT_COLUMNS

    out = [("market.history", "BTC", "91000"), ("market.history", "BTC", True), ("market.history", "date", 20261119)]
    for table, columns in NUMBER_COLUMNS.items():
        out += [(table, c, "10") for c in columns] + [(table, c, True) for c in columns]
    for table, columns in TEXT_COLUMNS.items():
        out += [(table, c, 7) for c in columns] + [(table, c, False) for c in columns]
    return [pytest.param(*cell, id=f"{cell[0]}.{cell[1]}={cell[2]!r}") for cell in out]


@pytest.mark.parametrize(("table", "column", "value"), _typed_cells())
def test_the_case_reader_refuses_a_json_cell_of_the_wrong_type(table: str, column: str, value: Any) -> None:
    """The reader itself (as the CLI reads a JSON or YAML case), without the service's own check of cell types."""
    from marginopt.models.case import load_case_data

    case, row = _json_case_with(table, column, value)
    with pytest.raises(CaseError) as info:
        load_case_data(case, "<request>")
    field = column if table == "market.history" else f"{table}.{column}"
    assert str(info.value).startswith(f"<request>, row {row}: field '{field}': expected "), str(info.value)
    assert f"got {value!r}" in str(info.value)


def test_the_same_case_with_cells_of_the_right_type_is_read() -> None:
    from marginopt.models.case import load_case_data

    case, _ = _json_case_with("positions", "quantity", -1)
    assert load_case_data(case, "<request>").positions is not None


# ---------------------------------------------------------------------------
# Duplicate rows summed only when asked, and said so
# ---------------------------------------------------------------------------


def _aggregated_case(tmp_path: Path) -> Path:
    case = base()
    case["positions"] = {"table": "positions.csv", "aggregate": True}
    (tmp_path / "positions.csv").write_text(POSITIONS_HEAD + "pm,F_BTC,2\npm,C_BTC,-1\nlin,P_ETH,4\npm,F_BTC,3\nlin,P_ETH,6\n")
    path = tmp_path / "case.yaml"
    path.write_text(dump(case))
    return path


def test_aggregate_true_sums_duplicates_and_reports_it(tmp_path: Path) -> None:
    import marginopt

    path = _aggregated_case(tmp_path)
    loaded = marginopt.load_case(path)
    rows = dict(zip(zip(loaded.positions.venue, loaded.positions.instrument, strict=True), loaded.positions.quantity.tolist(), strict=True))
    assert rows == {("pm", "F_BTC"): 5.0, ("pm", "C_BTC"): -1.0, ("lin", "P_ETH"): 10.0}  # first-seen order, summed
    code, stdout, stderr = invoke(["margin", str(path), "--format", "json"])
    assert code == 0, stderr
    notes = json.loads(stdout)["notes"]
    assert len(notes) == 1 and "2 duplicate position row(s) summed" in notes[0] and "row 4 into row 1" in notes[0], notes
    code, stdout, _ = invoke(["margin", str(path)])
    assert code == 0 and "note: positions.csv: 2 duplicate position row(s) summed" in stdout


def test_aggregated_margin_equals_the_margin_of_the_merged_rows(tmp_path: Path) -> None:
    import marginopt

    merged = base()
    merged["positions"] = [{"venue": "pm", "instrument": "F_BTC", "quantity": 5}, {"venue": "pm", "instrument": "C_BTC", "quantity": -1},
                           {"venue": "lin", "instrument": "P_ETH", "quantity": 10}]
    (tmp_path / "merged.yaml").write_text(dump(merged))
    want = marginopt.margin(marginopt.load_case(tmp_path / "merged.yaml"))
    got = marginopt.margin(marginopt.load_case(_aggregated_case(tmp_path)))
    assert [v.initial_margin for v in got.venues] == pytest.approx([v.initial_margin for v in want.venues], rel=1e-12)
    assert not want.notes and "notes" not in want.to_dict()  # the contract's document is unchanged without duplicates


def test_same_instrument_in_two_accounts_is_no_duplicate(tmp_path: Path) -> None:
    case = base()
    case["positions"] = [{"venue": "pm", "account": "a", "instrument": "F_BTC", "quantity": 1},
                         {"venue": "pm", "account": "b", "instrument": "F_BTC", "quantity": 1}]
    path = tmp_path / "case.yaml"
    path.write_text(dump(case))
    code, stdout, stderr = invoke(["margin", str(path), "--format", "json"])
    assert code == 0, stderr
    assert "notes" not in json.loads(stdout)


# ---------------------------------------------------------------------------
# The installed script: the same exit codes outside the test process
# ---------------------------------------------------------------------------

MARGINOPT = Path(sys.executable).parent / "marginopt"
INSTALLED = ["nul-byte-in-case", "valuation-date-month-13", "whatif-inf", "route-minus-1e308", "position-quantity-1e300"]


@pytest.mark.skipif(not MARGINOPT.is_file(), reason=f"the marginopt console script is not installed at {MARGINOPT}")
def test_installed_script(tmp_path: Path) -> None:
    """Started together (each interpreter start costs a second or more), then checked one by one."""
    jobs = []
    for name in INSTALLED:
        a = next(x for x in ADV if x.id == name)
        folder = tmp_path / name
        folder.mkdir()
        path, text = _write(folder, a)
        args = [str(MARGINOPT), *(str(path) if arg == "{case}" else arg for arg in a.args)]
        jobs.append((a, text, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for a, text, proc in jobs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == a.code, (a.id, proc.returncode, stderr)
        assert stdout == ""
        _check_message(a, stderr, text)
