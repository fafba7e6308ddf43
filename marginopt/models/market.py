"""Market data: prices, flat implied vols, the rate and an optional price history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from marginopt.errors import CaseError, Location
from marginopt.models.reader import Node, Table, read_frame, read_table


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
        prices[asset] = p.number(lower=0.0, lower_open=True)
    if base_currency in prices and prices[base_currency] != 1.0:
        raise parts["prices"].mapping()[base_currency].error(f"1 for the base currency {base_currency}", prices[base_currency])
    prices.setdefault(base_currency, 1.0)  # the base currency is worth 1 by definition
    vols: dict[str, float] = {}
    if "vols" in parts:
        for asset, v in parts["vols"].mapping().items():
            if asset not in prices:
                raise v.error(f"an asset listed in market.prices ({', '.join(sorted(prices))})", asset)
            vols[asset] = v.number(lower=0.0, lower_open=True)
    rate = parts["rate"].number(lower=-1.0, upper=1.0) if "rate" in parts else 0.0
    history = _parse_history(parts["history"]) if "history" in parts else None
    return MarketData(base_currency, MappingProxyType(prices), MappingProxyType(vols), rate, history)


def _parse_history(node: Node) -> PriceHistory:
    """A CSV or Parquet file, or inline rows ``{date: ..., <underlying>: price, ...}``."""
    if isinstance(node.value, list):
        table = read_table(node, "market.history")
    else:
        node.refuse_file("inline rows")
        path, frame = read_frame(node)
        table = Table("market.history", frame, path, None)
    frame, path = table.frame, table.file
    if "date" not in frame.columns:
        raise CaseError(table.where(0) if len(frame) else Location(path), "date", "a column named date (then one price column per underlying)", list(frame.columns))
    if len(frame) < 2:
        raise CaseError(Location(path), "date", "at least two rows of prices", len(frame))
    dates: list[dt.date] = []
    for i, v in enumerate(frame["date"].tolist()):
        try:
            dates.append(pd.Timestamp(v).date())
        except (ValueError, TypeError):
            raise CaseError(table.where(i), "date", "a date YYYY-MM-DD", v) from None
    d = np.array(dates, dtype="datetime64[D]")
    bad = np.flatnonzero(np.diff(d) <= np.timedelta64(0, "D"))
    if bad.size:
        i = int(bad[0]) + 1
        raise CaseError(table.where(i), "date", f"dates strictly ascending (after {dates[i - 1]})", str(dates[i]))
    closes: dict[str, np.ndarray] = {}
    for col in frame.columns:
        if col == "date":
            continue
        raw = frame[col]
        # Inline rows keep Python objects: true/false is refused, not read as 1/0.
        cells = raw.map(lambda v: None if isinstance(v, bool) else v) if table.is_inline else raw
        vals = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
        bad_rows = np.flatnonzero(~np.isfinite(vals) | (vals <= 0))
        if bad_rows.size:
            i = int(bad_rows[0])
            raise CaseError(table.where(i), col, "a positive price", raw.iloc[i])
        vals.setflags(write=False)
        closes[col] = vals
    return PriceHistory(path, tuple(dates), MappingProxyType(closes))
