"""Market data: prices, flat implied vols, the rate and an optional price history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from marginopt.errors import CaseError, Location
from marginopt.models.magnitude import MAX_MAGNITUDE, MIN_SCALE, Bound, describe
from marginopt.models.reader import INLINE_NUMBER, Node, read_table, read_table_file, to_numbers


@dataclass(frozen=True)
class PriceHistory:
    """Daily closes, one column per underlying, dates ascending and unique."""

    file: Path
    dates: tuple[dt.date, ...]
    closes: Mapping[str, np.ndarray]

    def returns(self, underlying: str, horizon_days: int) -> np.ndarray:
        """Overlapping ``horizon_days`` relative returns ``P[t+h] / P[t] - 1``."""
        p = self.closes[underlying]
        return p[horizon_days:] / p[:-horizon_days] - 1.0


@dataclass(frozen=True)
class MarketData:
    """Prices in base currency of every underlying and collateral asset."""

    base_currency: str
    prices: Mapping[str, float]
    vols: Mapping[str, float] = field(default_factory=dict)
    rate: float = 0.0
    history: PriceHistory | None = None

    def price(self, asset: str) -> float:
        return self.prices[asset]


def parse_market(node: Node, base_currency: str) -> MarketData:
    parts = node.mapping(allowed=("prices", "vols", "rate", "history"), required=("prices",))
    prices: dict[str, float] = {}
    for asset, p in parts["prices"].mapping().items():
        prices[asset] = p.number(lower=0.0, lower_open=True, bound=Bound.SCALE)
    if base_currency in prices and prices[base_currency] != 1.0:
        raise parts["prices"].mapping()[base_currency].error(f"1 for the base currency {base_currency}", prices[base_currency])
    prices.setdefault(base_currency, 1.0)  # the base currency is worth 1 by definition
    vols: dict[str, float] = {}
    if "vols" in parts:
        for asset, v in parts["vols"].mapping().items():
            if asset not in prices:
                raise v.error(f"an asset listed in market.prices ({', '.join(sorted(prices))})", asset)
            vols[asset] = v.number(lower=0.0, lower_open=True, bound=Bound.SCALE)
    rate = parts["rate"].number(lower=-1.0, upper=1.0) if "rate" in parts else 0.0
    history = _parse_history(parts["history"]) if "history" in parts else None
    return MarketData(base_currency, MappingProxyType(prices), MappingProxyType(vols), rate, history)


def _parse_history(node: Node) -> PriceHistory:
    """A CSV or Parquet file, or inline rows ``{date: ..., <underlying>: price, ...}``."""
    if isinstance(node.value, list):
        table = read_table(node, "market.history")
    else:
        node.refuse_file("inline rows")
        table = read_table_file(node, "market.history")
    columns, path = table.columns, table.file
    if "date" not in columns:
        raise CaseError(table.where(0) if len(table) else Location(path), "date", "a column named date (then one price column per underlying)", list(columns))
    if len(table) < 2:
        raise CaseError(Location(path), "date", "at least two rows of prices", len(table))
    dates: list[dt.date] = []
    for i, v in enumerate(columns["date"]):
        day = _history_date(v)
        if day is None:
            raise CaseError(table.where(i), "date", "a date YYYY-MM-DD", v)
        dates.append(day)
    d = np.array(dates, dtype="datetime64[D]")
    bad = np.flatnonzero(np.diff(d) <= np.timedelta64(0, "D"))
    if bad.size:
        i = int(bad[0]) + 1
        raise CaseError(table.where(i), "date", f"dates strictly ascending (after {dates[i - 1]})", str(dates[i]))
    closes: dict[str, np.ndarray] = {}
    for col, raw in columns.items():
        if col == "date":
            continue
        # true/false is refused, not read as 1/0; numeric text counts as its number in a file, and is
        # refused in an inline row (YAML or JSON), where a number is written as one.
        if table.is_inline:
            text = next((i for i, v in enumerate(raw) if isinstance(v, str)), None)
            if text is not None:
                raise CaseError(table.where(text), col, f"a positive price {describe(Bound.SCALE)}{INLINE_NUMBER}", raw[text])
        vals = to_numbers(raw)
        # NaN fails both comparisons, so it is refused with the rest.
        bad_rows = np.flatnonzero(~((vals >= MIN_SCALE) & (vals <= MAX_MAGNITUDE)))
        if bad_rows.size:
            i = int(bad_rows[0])
            raise CaseError(table.where(i), col, f"a positive price {describe(Bound.SCALE)}", "an empty cell" if raw[i] is None else raw[i])
        vals.setflags(write=False)
        closes[col] = vals
    return PriceHistory(path, tuple(dates), MappingProxyType(closes))


def _history_date(value: object) -> dt.date | None:
    """A date cell: a date or timestamp (YAML, Parquet), or ISO 8601 text; a timestamp's time is
    dropped (daily closes). ``None`` for anything else."""
    if isinstance(value, dt.datetime):  # a pandas Timestamp too
        return None if value != value else value.date()  # NaT (a Parquet null) is not a date
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip()).date()
        except ValueError:
            return None
    return None
