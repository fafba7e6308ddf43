"""Bad input is refused with a located message; valid edge cases are accepted.

Every refusal must name the file, the row (tables) or line (YAML), the field and
what was expected, through the Python API (``marginopt.load_case`` /
``marginopt.margin`` raising a ``MarginoptError``) and through the CLI (exit 2,
one ``error: ...`` line on stderr, no traceback).

Each bad case is built from one valid base case: the base is a dict dumped with
``yaml.safe_dump(default_flow_style=None)`` so every table row and scalar list
sits on one line, and the expected YAML line is found by searching the dumped
text for a marker that occurs exactly once.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import marginopt
from marginopt import CaseError, MarginoptError

# ---------------------------------------------------------------------------
# The valid base case and helpers
# ---------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "format": "marginopt/1",
    "base_currency": "USD",
    "valuation_date": "2026-11-20",
    "market": {
        "prices": {"BTC": 91000, "ETH": 3100, "USDC": 1.0},
        "vols": {"BTC": 0.55, "ETH": 0.65},
        "rate": 0.0,
    },
    "instruments": [
        {"id": "F_BTC", "kind": "future", "underlying": "BTC", "expiry": "2026-12-25", "multiplier": 1},
        {"id": "P_ETH", "kind": "perpetual", "underlying": "ETH"},
        {"id": "C_BTC", "kind": "option", "underlying": "BTC", "expiry": "2026-12-25", "strike": 100000, "right": "call"},
    ],
    "positions": [
        {"venue": "pm", "instrument": "F_BTC", "quantity": 2},
        {"venue": "pm", "instrument": "C_BTC", "quantity": -1},
        {"venue": "lin", "instrument": "P_ETH", "quantity": 10},
    ],
    "venues": {
        "pm": {
            "initial_margin": {
                "kind": "scenario_max",
                "scenarios": {"kind": "grid", "price_moves": [-0.1, 0.0, 0.1], "vol_moves": [0.0]},
            },
            "collateral": {
                "USDC": {"haircut": 0.02},
                "BTC": {"tiers": [[50000, 0.95], [100000, 0.9]]},
            },
            "concentration": {"BTC": 0.4},
            "posted": {"USDC": 3000, "BTC": 1.0},
        },
        "lin": {
            "initial_margin": {"kind": "fixed_rate", "rate": 0.05},
            "collateral": {"USDC": {"haircut": 0.01}},
            "posted": {"USDC": 20000},
        },
    },
    "objective": "min_cost",
}

POSITIONS_CSV = "venue,instrument,quantity\npm,F_BTC,2\npm,NOPE,-1\nlin,P_ETH,10\n"
INSTRUMENTS_CSV_HEAD = "id,kind,underlying,expiry,strike,right,price\n"


def dump(case: dict[str, Any]) -> str:
    return yaml.safe_dump(case, sort_keys=False, default_flow_style=None, width=10_000)


def write_case(
    tmp_path: Path,
    case: dict[str, Any] | None = None,
    *,
    text: str | None = None,
    tables: dict[str, str | pd.DataFrame] | None = None,
    name: str = "case.yaml",
) -> Path:
    """Write a case (a dict, or YAML text as given) and its table files; return the case path."""
    if text is None:
        text = dump(BASE if case is None else case)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    for fname, content in (tables or {}).items():
        target = tmp_path / fname
        if isinstance(content, pd.DataFrame):
            content.to_parquet(target, index=False)
        else:
            target.write_text(content, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    """1-based line of the one line of ``text`` that contains ``needle``."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    assert len(hits) == 1, f"marker {needle!r} found on lines {hits} of:\n{text}"
    return hits[0]


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def instrument(case: dict[str, Any], iid: str) -> dict[str, Any]:
    return next(row for row in case["instruments"] if row["id"] == iid)


# ---------------------------------------------------------------------------
# The bad cases
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """One bad input and what the refusal must say.

    ``mutate`` edits a deep copy of BASE; ``edit_text`` edits the dumped YAML
    text instead (for what a dict cannot express). ``line`` is a marker whose
    line in the written YAML the message must name; ``row`` a 1-based data row
    of a table file. ``stage`` "margin" means the case loads and the error comes
    when the margin is computed.
    """

    id: str
    file: str  # file name the message must contain
    field: str | None  # exact CaseError.field (and quoted in the message)
    expected: tuple[str, ...]  # words of what was expected
    mutate: Callable[[dict[str, Any]], None] | None = None
    edit_text: Callable[[str], str] | None = None
    tables: dict[str, str | pd.DataFrame] = field(default_factory=dict)
    line: str | None = None
    line_offset: int = 0  # expected line = line of the marker + this
    row: int | None = None
    stage: str = "load"
    case_name: str = "case.yaml"
    marks: tuple[Any, ...] = ()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def go(case: dict[str, Any]) -> None:
        d = case
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return go


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def go(case: dict[str, Any]) -> None:
        d = case
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]

    return go


def _all(*fns: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def go(case: dict[str, Any]) -> None:
        for fn in fns:
            fn(case)

    return go


def _instrument(iid: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def go(case: dict[str, Any]) -> None:
        row = instrument(case, iid)
        for k, v in changes.items():
            if v is _DROP:
                row.pop(k, None)
            else:
                row[k] = v

    return go


_DROP = object()


def _unknown_instrument_inline(case: dict[str, Any]) -> None:
    case["positions"][1]["instrument"] = "NOPE"


def _duplicate_id(case: dict[str, Any]) -> None:
    case["instruments"].append({"id": "F_BTC", "kind": "perpetual", "underlying": "BTC"})


def _instruments_csv(case: dict[str, Any]) -> None:
    case["instruments"] = "instruments.csv"


def _unknown_column_row2(case: dict[str, Any]) -> None:
    case["positions"][1]["colour"] = "red"


def _grid(**kw: Any) -> Callable[[dict[str, Any]], None]:
    return _set("venues.pm.initial_margin.scenarios", kw)


def _yaml_syntax_error(text: str) -> str:
    lines = text.splitlines()
    k = line_of(text, "valuation_date:")
    lines[k - 1] = "valuation_date: [2026-11-20"  # unclosed flow sequence
    lines.insert(k, "market: {prices: {BTC: 1}")
    return "\n".join(lines) + "\n"


BAD: list[Bad] = [
    # -- files -----------------------------------------------------------------
    Bad("missing-case-file", "nope.yaml", "file", ("existing",), case_name="nope.yaml"),
    Bad("missing-table-file", "case.yaml", "positions", ("existing file",),
        mutate=_set("positions", "positions.csv"), line="positions: positions.csv"),
    Bad("table-file-wrong-suffix", "case.yaml", "positions", (".csv",),
        mutate=_set("positions", "positions.txt"), tables={"positions.txt": POSITIONS_CSV},
        line="positions: positions.txt"),
    Bad("yaml-syntax-error", "case.yaml", "(syntax)", ("valid YAML",),
        edit_text=_yaml_syntax_error, line="market: {prices: {BTC: 1}"),
    Bad("yaml-duplicate-key", "case.yaml", "objective", ("each key once",),
        edit_text=lambda t: t + "objective: min_margin\n", line="objective: min_margin"),
    Bad("wrong-format", "case.yaml", "format", ("'marginopt/1'",),
        mutate=_set("format", "marginopt/2"), line="format: marginopt/2"),
    Bad("top-level-not-mapping", "case.yaml", "(top level)", ("mapping",),
        edit_text=lambda t: "- just\n- a list\n", line="- just"),
    # -- unknown keys and columns ----------------------------------------------
    Bad("unknown-top-level-key", "case.yaml", "colour", ("known key",),
        mutate=_set("colour", "red"), line="colour: red"),
    Bad("unknown-venue-key", "case.yaml", "venues.pm.colour", ("known key",),
        mutate=_set("venues.pm.colour", "red"), line="colour: red"),
    Bad("unknown-measure-key", "case.yaml", "venues.lin.initial_margin.colour", ("known key",),
        mutate=_set("venues.lin.initial_margin.colour", "red"), line="colour: red"),
    Bad("unknown-scenario-key", "case.yaml", "venues.pm.initial_margin.scenarios.colour", ("known key",),
        mutate=_set("venues.pm.initial_margin.scenarios.colour", "red"), line="colour: red"),
    Bad("unknown-measure-kind", "case.yaml", "venues.lin.initial_margin.kind", ("one of", "fixed_rate"),
        mutate=_set("venues.lin.initial_margin.kind", "magic"), line="kind: magic"),
    Bad("unknown-column-inline-row1", "case.yaml", "positions.colour", ("known column",),
        mutate=lambda c: c["positions"][0].__setitem__("colour", "red"), line="colour: red"),
    Bad("unknown-column-inline-row2", "case.yaml", "positions.colour", ("known column",),
        mutate=_unknown_column_row2, line="colour: red"),
    Bad("unknown-column-csv", "positions.csv", "positions.colour", ("known column",),
        mutate=_set("positions", "positions.csv"),
        tables={"positions.csv": "venue,instrument,quantity,colour\npm,F_BTC,2,red\n"}),
    # -- instruments -------------------------------------------------------------
    Bad("unknown-instrument-inline", "case.yaml", "positions.instrument", ("instrument id",),
        mutate=_unknown_instrument_inline, line="instrument: NOPE"),
    Bad("unknown-instrument-csv", "positions.csv", "positions.instrument", ("instrument id",),
        mutate=_set("positions", "positions.csv"), tables={"positions.csv": POSITIONS_CSV}, row=2),
    Bad("unknown-instrument-parquet", "positions.parquet", "positions.instrument", ("instrument id",),
        mutate=_set("positions", "positions.parquet"),
        tables={"positions.parquet": pd.DataFrame(
            {"venue": ["pm", "pm", "lin"], "instrument": ["F_BTC", "C_BTC", "NOPE"], "quantity": [2.0, -1.0, 10.0]})},
        row=3),
    Bad("unknown-venue-in-positions", "case.yaml", "positions.venue", ("one of", "lin", "pm"),
        mutate=lambda c: c["positions"][2].__setitem__("venue", "nowhere"), line="venue: nowhere"),
    Bad("bad-quantity-csv", "positions.csv", "positions.quantity", ("finite number",),
        mutate=_set("positions", "positions.csv"),
        tables={"positions.csv": "venue,instrument,quantity\npm,F_BTC,2\nlin,P_ETH,ten\n"}, row=2),
    Bad("duplicate-instrument-id", "case.yaml", "instruments.id", ("unique",),
        mutate=_duplicate_id, line="{id: F_BTC, kind: perpetual"),
    Bad("duplicate-instrument-id-csv", "instruments.csv", "instruments.id", ("unique",),
        mutate=_instruments_csv,
        tables={"instruments.csv": INSTRUMENTS_CSV_HEAD
                + "F_BTC,future,BTC,2026-12-25,,,\nP_ETH,perpetual,ETH,,,,\nC_BTC,option,BTC,2026-12-25,100000,call,\n"
                + "P_ETH,perpetual,ETH,,,,\n"},
        row=4),
    Bad("unknown-underlying", "case.yaml", "instruments.underlying", ("market.prices",),
        mutate=_instrument("P_ETH", underlying="DOGE"), line="underlying: DOGE"),
    Bad("unknown-instrument-kind-csv", "instruments.csv", "instruments.kind", ("one of", "option"),
        mutate=_instruments_csv,
        tables={"instruments.csv": INSTRUMENTS_CSV_HEAD
                + "F_BTC,future,BTC,2026-12-25,,,\nP_ETH,perpetul,ETH,,,,\nC_BTC,option,BTC,2026-12-25,100000,call,\n"},
        row=2),
    Bad("zero-multiplier", "case.yaml", "instruments.multiplier", ("> 0",),
        mutate=_instrument("F_BTC", multiplier=0), line="id: F_BTC"),
    Bad("nan-price-csv", "instruments.csv", "instruments.price", ("> 0",),
        mutate=_instruments_csv,
        tables={"instruments.csv": INSTRUMENTS_CSV_HEAD
                + "F_BTC,future,BTC,2026-12-25,,,91000\nP_ETH,perpetual,ETH,,,,nan\n"
                + "C_BTC,option,BTC,2026-12-25,100000,call,\n"},
        row=2),
    Bad("nan-price-inline", "case.yaml", "instruments.price", ("> 0",),
        mutate=_instrument("P_ETH", price=float("nan")), line="id: P_ETH"),
    Bad("nan-multiplier-csv", "instruments.csv", "instruments.multiplier", ("> 0",),
        mutate=_instruments_csv,
        tables={"instruments.csv": "id,kind,underlying,expiry,strike,right,multiplier\n"
                + "F_BTC,future,BTC,2026-12-25,,,nan\nP_ETH,perpetual,ETH,,,,\n"
                + "C_BTC,option,BTC,2026-12-25,100000,call,\n"},
        row=1),
    Bad("negative-price-csv", "instruments.csv", "instruments.price", ("> 0",),
        mutate=_instruments_csv,
        tables={"instruments.csv": INSTRUMENTS_CSV_HEAD
                + "F_BTC,future,BTC,2026-12-25,,,91000\nP_ETH,perpetual,ETH,,,,-3100\n"
                + "C_BTC,option,BTC,2026-12-25,100000,call,\n"},
        row=2),
    Bad("expiry-with-trailing-junk-csv", "instruments.csv", "instruments.expiry", ("date",),
        mutate=_instruments_csv,
        tables={"instruments.csv": INSTRUMENTS_CSV_HEAD
                + "F_BTC,future,BTC,2026-12-25junk,,,\nP_ETH,perpetual,ETH,,,,\n"
                + "C_BTC,option,BTC,2026-12-25,100000,call,\n"},
        row=1),
    # -- options -------------------------------------------------------------------
    Bad("option-without-strike", "case.yaml", "instruments.strike", ("strike",),
        mutate=_instrument("C_BTC", strike=_DROP), line="id: C_BTC"),
    Bad("option-without-expiry", "case.yaml", "instruments.expiry", ("expiry",),
        mutate=_instrument("C_BTC", expiry=_DROP), line="id: C_BTC"),
    Bad("option-without-right", "case.yaml", "instruments.right", ("call or put",),
        mutate=_instrument("C_BTC", right=_DROP), line="id: C_BTC"),
    Bad("option-bad-right", "case.yaml", "instruments.right", ("one of", "call", "put"),
        mutate=_instrument("C_BTC", right="straddle"), line="id: C_BTC"),
    Bad("option-expired", "case.yaml", "instruments.expiry", ("on or after", "2026-11-20"),
        mutate=_instrument("C_BTC", expiry="2026-11-01"), line="id: C_BTC"),
    Bad("option-without-any-vol", "case.yaml", "instruments.vol", ("vol",),
        mutate=_del("market.vols.BTC"), line="id: C_BTC"),
    Bad("option-csv-without-strike", "instruments.csv", "instruments.strike", ("strike",),
        mutate=_instruments_csv,
        tables={"instruments.csv": INSTRUMENTS_CSV_HEAD
                + "F_BTC,future,BTC,2026-12-25,,,\nP_ETH,perpetual,ETH,,,,\nC_BTC,option,BTC,2026-12-25,,call,\n"},
        row=3),
    Bad("option-price-above-no-arbitrage-bound", "case.yaml", "instruments.price", ("price",),
        mutate=_all(_instrument("C_BTC", price=95000), _del("market.vols.BTC")), line="id: C_BTC", stage="margin"),
    Bad("future-with-strike", "case.yaml", "instruments.strike", ("no strike",),
        mutate=_instrument("F_BTC", strike=90000), line="id: F_BTC"),
    # -- market ----------------------------------------------------------------------
    Bad("negative-price", "case.yaml", "market.prices.BTC", ("> 0",),
        mutate=_set("market.prices.BTC", -91000), line="prices:"),
    Bad("zero-price", "case.yaml", "market.prices.ETH", ("> 0",),
        mutate=_set("market.prices.ETH", 0), line="prices:"),
    Bad("nan-price-market", "case.yaml", "market.prices.ETH", ("finite number",),
        mutate=_set("market.prices.ETH", float("nan")), line="prices:"),
    Bad("text-price-market", "case.yaml", "market.prices.ETH", ("finite number",),
        mutate=_set("market.prices.ETH", "cheap"), line="prices:"),
    Bad("bad-valuation-date", "case.yaml", "valuation_date", ("YYYY-MM-DD",),
        mutate=_set("valuation_date", "2026-13-01"), line="valuation_date:"),
    # -- collateral ------------------------------------------------------------------
    Bad("haircut-one", "case.yaml", "venues.pm.collateral.USDC.haircut", ("[0, 1)",),
        mutate=_set("venues.pm.collateral.USDC.haircut", 1.0), line="haircut: 1.0"),
    Bad("haircut-negative", "case.yaml", "venues.pm.collateral.USDC.haircut", ("[0, 1)",),
        mutate=_set("venues.pm.collateral.USDC.haircut", -0.1), line="haircut: -0.1"),
    Bad("haircut-and-tiers", "case.yaml", "venues.pm.collateral.USDC", ("exactly one of haircut or tiers",),
        mutate=_set("venues.pm.collateral.USDC", {"haircut": 0.1, "tiers": [[1000, 0.9]]}), line="haircut: 0.1", line_offset=-1),
    Bad("tiers-not-ascending", "case.yaml", "venues.pm.collateral.BTC.tiers.1.0", ("ascending",),
        mutate=_set("venues.pm.collateral.BTC.tiers", [[70000, 0.95], [60000, 0.9]]), line="[60000, 0.9]"),
    Bad("tier-rates-increasing", "case.yaml", "venues.pm.collateral.BTC.tiers.1.1", ("not increase",),
        mutate=_set("venues.pm.collateral.BTC.tiers", [[50000, 0.9], [100000, 0.95]]), line="[100000, 0.95]"),
    Bad("posted-not-eligible", "case.yaml", "venues.lin.posted.BTC", ("eligible",),
        mutate=_set("venues.lin.posted", {"USDC": 20000, "BTC": 0.25}), line="BTC: 0.25"),
    Bad("concentration-not-eligible", "case.yaml", "venues.lin.concentration.ETH", ("eligible",),
        mutate=_set("venues.lin.concentration", {"ETH": 0.5}), line="concentration: {ETH: 0.5}"),
    Bad("collateral-asset-without-price", "case.yaml", "venues.lin.collateral.EUR", ("market.prices",),
        mutate=_set("venues.lin.collateral.EUR", {"haircut": 0.05}), line="EUR: {haircut: 0.05}"),
    Bad("posted-negative", "case.yaml", "venues.lin.posted.USDC", (">= 0",),
        mutate=_set("venues.lin.posted", {"USDC": -5}), line="posted: {USDC: -5}"),
    # -- scenario sets -----------------------------------------------------------------
    Bad("grid-price-move-minus-one", "case.yaml", "venues.pm.initial_margin.scenarios.price_moves.0", ("> -1",),
        mutate=_grid(kind="grid", price_moves=[-1.0, 0.0, 0.1]), line="price_moves:"),
    Bad("grid-price-move-below-minus-one", "case.yaml", "venues.pm.initial_margin.scenarios.price_moves.1", ("> -1",),
        mutate=_grid(kind="grid", price_moves=[0.1, -1.5]), line="price_moves:"),
    Bad("grid-no-price-moves", "case.yaml", "venues.pm.initial_margin.scenarios.price_moves", ("present",),
        mutate=_grid(kind="grid", vol_moves=[0.0]), line="scenarios:"),
    Bad("unknown-scenario-kind", "case.yaml", "venues.pm.initial_margin.scenarios.kind", ("one of", "grid"),
        mutate=_grid(kind="crystal_ball"), line="crystal_ball"),
    Bad("historical-without-history", "case.yaml", "market.history", ("price history",),
        mutate=_grid(kind="historical", window=10), line="kind: historical", stage="margin"),
    Bad("history-file-missing", "case.yaml", "market.history", ("existing file",),
        mutate=_set("market.history", "history.csv"), line="history: history.csv"),
    Bad("history-non-positive-price", "history.csv", "BTC", ("positive price",),
        mutate=_set("market.history", "history.csv"),
        tables={"history.csv": "date,BTC,ETH\n2026-11-18,90000,3000\n2026-11-19,0,3050\n2026-11-20,91000,3100\n"},
        row=2),
    Bad("history-dates-not-ascending", "history.csv", "date", ("ascending",),
        mutate=_set("market.history", "history.csv"),
        tables={"history.csv": "date,BTC,ETH\n2026-11-18,90000,3000\n2026-11-20,91000,3100\n2026-11-19,90500,3050\n"},
        row=3),
    Bad("matrix-missing-instrument-column", "losses.csv", "C_BTC", ("column",),
        mutate=_grid(kind="matrix", file="losses.csv"),
        tables={"losses.csv": "scenario,F_BTC\ndown,9100\nup,-9100\n"}, stage="margin"),
    Bad("matrix-unknown-column", "losses.csv", "X_BTC", ("instrument id",),
        mutate=_grid(kind="matrix", file="losses.csv"),
        tables={"losses.csv": "F_BTC,C_BTC,X_BTC\n1,2,3\n"}, stage="margin"),
    Bad("matrix-nan-loss", "losses.csv", "C_BTC", ("finite",),
        mutate=_grid(kind="matrix", file="losses.csv"),
        tables={"losses.csv": "F_BTC,C_BTC\n1,2\n3,nan\n"}, row=2, stage="margin"),
    Bad("matrix-parquet-nan-loss", "losses.parquet", "C_BTC", ("finite",),
        mutate=_grid(kind="matrix", file="losses.parquet"),
        tables={"losses.parquet": pd.DataFrame({"F_BTC": [1.0, 3.0, 5.0], "C_BTC": [2.0, 4.0, float("nan")]})},
        row=3, stage="margin"),
    Bad("matrix-parquet-empty-loss", "losses.parquet", "F_BTC", ("finite", "empty cell"),
        mutate=_grid(kind="matrix", file="losses.parquet"),
        tables={"losses.parquet": pd.DataFrame({"F_BTC": pd.array([1, None, 5], dtype="Int64"), "C_BTC": [2.0, 4.0, 6.0]})},
        row=2, stage="margin"),
    Bad("matrix-file-missing", "case.yaml", "venues.pm.initial_margin.scenarios.file", ("existing file",),
        mutate=_grid(kind="matrix", file="losses.parquet"), line="kind: matrix"),
    Bad("monte-carlo-student-t-without-dof", "case.yaml", "venues.pm.initial_margin.scenarios", ("dof",),
        mutate=_grid(kind="monte_carlo", n=100, seed=1, distribution="student_t"), line="distribution: student_t"),
    Bad("monte-carlo-dof-too-low", "case.yaml", "venues.pm.initial_margin.scenarios.dof", ("> 2",),
        mutate=_grid(kind="monte_carlo", n=100, seed=1, distribution="student_t", dof=2), line="distribution: student_t"),
    Bad("monte-carlo-correlation-unknown-underlying", "case.yaml",
        "venues.pm.initial_margin.scenarios.correlation.BTC.XRP", ("market.prices",),
        mutate=_grid(kind="monte_carlo", n=100, seed=1, correlation={"BTC": {"XRP": 0.5}}), line="XRP"),
    Bad("grid-vol-move-minus-one", "case.yaml", "venues.pm.initial_margin.scenarios.vol_moves", ("vol",),
        mutate=_grid(kind="grid", price_moves=[0.0], vol_moves=[-1.0]), line="vol_moves:", stage="margin"),
    # -- other sections ------------------------------------------------------------------
    Bad("maintenance-fraction-above-one", "case.yaml", "venues.lin.maintenance_margin.fraction_of_initial", ("(0, 1]",),
        mutate=_set("venues.lin.maintenance_margin", {"fraction_of_initial": 1.5}), line="fraction_of_initial"),
    Bad("no-venues", "case.yaml", "venues", ("at least one venue",),
        mutate=_set("venues", {}), line="venues: {}"),
    Bad("missing-required-key", "case.yaml", "instruments", ("present",),
        mutate=_del("instruments"), line="format:"),
    Bad("unknown-objective", "case.yaml", "objective", ("min_cost",),
        mutate=_set("objective", "max_profit"), line="objective: max_profit"),
    Bad("treasury-unknown-asset", "case.yaml", "treasury.EUR", ("market.prices",),
        mutate=_set("treasury", {"EUR": {"quantity": 10}}), line="EUR:"),
]


def _param(b: Bad) -> Any:
    return pytest.param(b, id=b.id, marks=b.marks)


def _build(tmp_path: Path, b: Bad) -> tuple[Path, str]:
    """Write the bad case; return the path to load and the YAML text written."""
    case = base()
    if b.mutate is not None:
        b.mutate(case)
    text = dump(case)
    if b.edit_text is not None:
        text = b.edit_text(text)
    path = write_case(tmp_path, text=text, tables=b.tables)
    if b.case_name != "case.yaml":
        return tmp_path / b.case_name, text
    return path, text


def _refuse(path: Path, stage: str) -> MarginoptError:
    with pytest.raises(MarginoptError) as info:
        case = marginopt.load_case(path)
        if stage == "load":
            pytest.fail("load_case accepted the bad case")
        marginopt.margin(case)
    return info.value


def _check_message(b: Bad, msg: str, text: str) -> None:
    assert b.file in msg, f"file {b.file!r} not named in: {msg}"
    if b.field is not None:
        assert f"'{b.field}'" in msg, f"field {b.field!r} not named in: {msg}"
    if b.line is not None:
        n = line_of(text, b.line) + b.line_offset
        assert f"line {n}" in msg, f"expected line {n} in: {msg}"
    if b.row is not None:
        assert f"row {b.row}" in msg, f"expected row {b.row} in: {msg}"
    if b.line is None and b.row is None and b.case_name == "case.yaml" and b.file == "case.yaml":
        assert "line " in msg, msg
    for word in b.expected:
        assert word in msg, f"expected-word {word!r} missing from: {msg}"
    assert "\n" not in msg, f"message is not one line: {msg!r}"


@pytest.mark.parametrize("b", [_param(b) for b in BAD])
def test_bad_input_is_refused_with_location(tmp_path: Path, b: Bad) -> None:
    path, text = _build(tmp_path, b)
    err = _refuse(path, b.stage)
    _check_message(b, str(err), text)
    assert isinstance(err, CaseError), f"{type(err).__name__} rather than CaseError: {err}"
    if b.field is not None:
        assert err.field == b.field
    assert err.where.file is not None and Path(err.where.file).name == b.file
    if b.line is not None:
        assert (err.where.row, err.where.row_kind) == (line_of(text, b.line) + b.line_offset, "line")
    if b.row is not None:
        assert (err.where.row, err.where.row_kind) == (b.row, "row")


def test_yaml_syntax_error_names_the_line_of_the_problem(tmp_path: Path) -> None:
    text = "format: marginopt/1\nbase_currency: USD\nvaluation_date: 2026-11-20\nmarket:\n  prices: {BTC: 1\n  rate: 0.0\n"
    path = write_case(tmp_path, text=text)
    with pytest.raises(CaseError) as info:
        marginopt.load_case(path)
    msg = str(info.value)
    assert "case.yaml" in msg and "valid YAML" in msg
    # the flow mapping opened on line 5 is broken by line 6; either line is a fair pointer
    assert info.value.where.row_kind == "line" and info.value.where.row in (5, 6), msg


def test_csv_row_numbers_count_data_rows_after_the_header(tmp_path: Path) -> None:
    """Row r of a table file is data row r (line r + 1 of the CSV): check rows 1, 3 and 5."""
    good = ["pm,F_BTC,2", "pm,C_BTC,-1", "lin,P_ETH,10", "pm,F_BTC,1", "lin,P_ETH,-2"]
    for bad_row in (1, 3, 5):
        rows = list(good)
        rows[bad_row - 1] = "pm,NOPE,1"
        sub = tmp_path / f"r{bad_row}"
        sub.mkdir()
        case = base()
        case["positions"] = "positions.csv"
        path = write_case(sub, case, tables={"positions.csv": "venue,instrument,quantity\n" + "\n".join(rows) + "\n"})
        with pytest.raises(CaseError) as info:
            marginopt.load_case(path)
        assert f"positions.csv, row {bad_row}:" in str(info.value)
        assert "'NOPE'" in str(info.value)


# ---------------------------------------------------------------------------
# The CLI: exit 2, one `error:` line, no traceback
# ---------------------------------------------------------------------------

CLI_CASES = ["missing-case-file", "unknown-instrument-csv", "yaml-syntax-error", "historical-without-history"]


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.CompletedProcess[str], str]]:
    """Run every CLI case at once (each interpreter start costs seconds): name -> (process, YAML text)."""
    jobs: dict[str, tuple[subprocess.Popen[str], str, list[str]]] = {}
    for name in CLI_CASES:
        b = next(x for x in BAD if x.id == name)
        path, text = _build(tmp_path_factory.mktemp(name), b)
        jobs[name] = (_start_cli(path), text, [])
    empty = base()
    empty["positions"] = []
    jobs["empty-book"] = (_start_cli(write_case(tmp_path_factory.mktemp("empty-book"), empty)), "", [])
    out = {}
    for name, (proc, text, _) in jobs.items():
        stdout, stderr = proc.communicate(timeout=120)
        out[name] = (subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), text)
    return out


def _start_cli(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "marginopt", "margin", str(path), "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_refuses_bad_input_with_one_error_line(cli_runs: dict[str, Any], name: str) -> None:
    b = next(x for x in BAD if x.id == name)
    proc, text = cli_runs[name]
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    _check_message(b, lines[0], text)


def test_cli_accepts_an_empty_book(cli_runs: dict[str, Any]) -> None:
    proc, _ = cli_runs["empty-book"]
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [v["venue"] for v in out["venues"]] == ["pm", "lin"]
    assert all(v["initial_margin"] == 0.0 for v in out["venues"])
    assert out["total_initial_margin"] == 0.0


# ---------------------------------------------------------------------------
# Valid edge cases are accepted
# ---------------------------------------------------------------------------


def test_base_case_is_valid(tmp_path: Path) -> None:
    case = marginopt.load_case(write_case(tmp_path))
    report = marginopt.margin(case)
    assert [v.venue for v in report.venues] == ["pm", "lin"]
    assert all(math.isfinite(v.initial_margin) and v.initial_margin > 0 for v in report.venues)


@pytest.mark.parametrize(
    "positions",
    [
        pytest.param([], id="empty-list"),
        pytest.param(None, id="null"),
        pytest.param(_DROP, id="no-key"),
        pytest.param("positions.csv", id="header-only-csv"),
    ],
)
def test_empty_book_gives_zero_margin_everywhere(tmp_path: Path, positions: Any) -> None:
    case = base()
    if positions is _DROP:
        del case["positions"]
    else:
        case["positions"] = positions
    path = write_case(tmp_path, case, tables={"positions.csv": "venue,instrument,quantity\n"})
    loaded = marginopt.load_case(path)
    assert len(loaded.positions) == 0
    report = marginopt.margin(loaded)
    assert [v.venue for v in report.venues] == ["pm", "lin"]
    for v in report.venues:
        assert v.initial_margin == 0.0, v
        assert v.maintenance_margin == 0.0, v
        assert v.collateral_value > 0.0  # posted collateral still counts
    assert report.total_initial_margin == 0.0


def test_venue_without_positions_gets_zero_margin(tmp_path: Path) -> None:
    """A venue that only holds collateral (all positions elsewhere) has zero margin; the others are unchanged."""
    case = base()
    case["positions"] = [row for row in case["positions"] if row["venue"] != "lin"]
    report = marginopt.margin(marginopt.load_case(write_case(tmp_path, case)))
    assert report["lin"].initial_margin == 0.0
    assert report["pm"].initial_margin > 0.0


def test_option_with_price_and_no_vol_loads_and_implies_its_vol(tmp_path: Path) -> None:
    case = base()
    del case["market"]["vols"]  # no market vol to fall back on
    instrument(case, "C_BTC")["price"] = 2000.0
    loaded = marginopt.load_case(write_case(tmp_path, case))
    inst = loaded.instruments["C_BTC"]
    assert inst.vol is None and inst.price == 2000.0
    report = marginopt.margin(loaded)
    assert math.isfinite(report["pm"].initial_margin) and report["pm"].initial_margin > 0

    from marginopt.models.pricing import price_inputs

    inp = price_inputs(("C_BTC",), loaded.instruments, loaded.market, loaded.valuation_date)
    assert inp.value[0] == pytest.approx(2000.0, rel=1e-9)  # the implied vol reproduces the price


def test_empty_price_cell_in_csv_means_no_price(tmp_path: Path) -> None:
    """An empty optional cell is 'not given' (unlike a literal nan, see nan-price-csv)."""
    case = base()
    case["instruments"] = "instruments.csv"
    path = write_case(tmp_path, case, tables={"instruments.csv": INSTRUMENTS_CSV_HEAD
                      + "F_BTC,future,BTC,2026-12-25,,,91500\nP_ETH,perpetual,ETH,,,,\n"
                      + "C_BTC,option,BTC,2026-12-25,100000,call,\n"})
    loaded = marginopt.load_case(path)
    assert loaded.instruments["P_ETH"].price is None
    assert loaded.instruments["F_BTC"].price == 91500.0
    assert loaded.instruments["C_BTC"].strike == 100000.0


def test_option_expiring_on_valuation_date_is_accepted(tmp_path: Path) -> None:
    case = base()
    instrument(case, "C_BTC")["expiry"] = "2026-11-20"
    loaded = marginopt.load_case(write_case(tmp_path, case))
    assert math.isfinite(marginopt.margin(loaded)["pm"].initial_margin)
