"""One venue account in ccxt's unified structures, as saved in a JSON file or fetched live.

A saved account is one JSON object::

    {"format": "ccxt",                       # optional
     "exchange": "deribit",                  # ccxt's exchange id
     "venue": "deribit",                     # optional: the case's venue name (default: the exchange id)
     "timestamp": 1795248000000,             # optional: when it was fetched (ms since 1970, or ISO 8601)
     "markets": [...],                       # fetch_markets() (or the dict exchange.markets)
     "positions": [...],                     # fetch_positions()
     "balance": {...},                       # fetch_balance()
     "tickers": {"BTC/USD:BTC": {...}},      # optional: fetch_tickers(): marks (markPrice), index prices
     "prices": {"USDT": 1.0}}                # optional: prices in the base currency given by hand

Every error names the file, the JSON path of the value (``positions[2].contracts``) and what was expected.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marginopt.errors import CaseError, Location

REQUIRED = ("exchange", "markets", "positions", "balance")
OPTIONAL = ("format", "venue", "timestamp", "tickers", "prices")


@dataclass(frozen=True)
class Account:
    """One account: its source (a file, or ``--exchange NAME``), exchange, venue name and structures."""

    source: str
    exchange: str
    venue: str
    timestamp: dt.datetime | None
    markets: Mapping[str, Mapping[str, Any]]  # by unified symbol
    market_paths: Mapping[str, str]  # symbol -> its JSON path, for errors
    positions: tuple[Mapping[str, Any], ...]
    balance: Mapping[str, Any]
    tickers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    prices: Mapping[str, float] = field(default_factory=dict)

    def error(self, path: str, expected: str, got: Any = CaseError._MISSING) -> CaseError:
        """A located error: this account's source and the JSON path of the value."""
        return CaseError(Location(self.source), path, expected, got)

    def number(self, value: Any, path: str, *, positive: bool = False, optional: bool = False) -> float | None:
        """A finite number at ``path`` (ccxt gives numbers as floats or, unparsed, as text)."""
        if value is None and optional:
            return None
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.error(path, "a number", value) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(path, "a finite number" + (" > 0" if positive else ""), value)
        if positive and not value > 0:
            raise self.error(path, "a number > 0", value)
        return float(value)


def read_account(path: Path) -> Account:
    """A saved account (the layout in this module's docstring)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CaseError(Location(path), "file", "a readable JSON file of ccxt structures", exc.strerror) from None
    except UnicodeDecodeError:
        raise CaseError(Location(path), "file", "UTF-8 text", "bytes that are not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=lambda c: c)  # NaN / Infinity stay text, refused where read
    except json.JSONDecodeError as exc:
        raise CaseError(Location(path, exc.lineno, "line"), "file", f"JSON ({exc.msg})", None) from None
    return account_from_payload(data, str(path))


def account_from_payload(data: Any, source: str) -> Account:
    """An account from its JSON data (a saved file's, or a live fetch's)."""
    where = Location(source)
    if not isinstance(data, dict):
        raise CaseError(where, "(top level)", "a JSON object with " + ", ".join(REQUIRED), type(data).__name__)
    for key in REQUIRED:
        if key not in data:
            raise CaseError(where, key, f"the key {key!r} ({_WHAT[key]})", None)
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise CaseError(where, unknown[0], "one of " + ", ".join(REQUIRED + OPTIONAL), unknown[0])
    if data.get("format", "ccxt") != "ccxt":
        raise CaseError(where, "format", "'ccxt'", data["format"])
    exchange = data["exchange"]
    if not isinstance(exchange, str) or not exchange:
        raise CaseError(where, "exchange", "ccxt's exchange id (text, e.g. 'deribit')", exchange)
    venue = data.get("venue", exchange)
    if not isinstance(venue, str) or not venue.strip():
        raise CaseError(where, "venue", "a venue name (text)", venue)
    markets, paths = _markets(data["markets"], where)
    positions = data["positions"]
    if not isinstance(positions, list) or not all(isinstance(p, dict) for p in positions):
        raise CaseError(where, "positions", "a list of ccxt position structures (objects)", _kind(positions))
    balance = data["balance"]
    if not isinstance(balance, dict):
        raise CaseError(where, "balance", "a ccxt balance structure (an object)", _kind(balance))
    tickers = data.get("tickers") or {}
    if not isinstance(tickers, dict) or not all(isinstance(t, dict) for t in tickers.values()):
        raise CaseError(where, "tickers", "an object of ccxt ticker structures by symbol", _kind(tickers))
    account = Account(source, exchange, venue, None, markets, paths, tuple(positions), balance, tickers, {})
    prices = data.get("prices") or {}
    if not isinstance(prices, dict):
        raise CaseError(where, "prices", "an object of prices in the base currency by asset", _kind(prices))
    checked = {str(a): account.number(v, f"prices.{a}", positive=True) for a, v in prices.items()}
    stamp = _timestamp(data.get("timestamp"), where, "timestamp")
    if stamp is None:
        stamp = _timestamp(balance.get("timestamp"), where, "balance.timestamp")
    return Account(source, exchange, venue, stamp, markets, paths, tuple(positions), balance, tickers,
                   checked)  # type: ignore[arg-type]


_WHAT = {"exchange": "ccxt's exchange id", "markets": "fetch_markets()", "positions": "fetch_positions()",
         "balance": "fetch_balance()"}


def _kind(value: Any) -> str:
    return type(value).__name__


def _markets(value: Any, where: Location) -> tuple[dict[str, Mapping[str, Any]], dict[str, str]]:
    items: list[tuple[str, Any]]
    if isinstance(value, list):
        items = [(f"markets[{i}]", m) for i, m in enumerate(value)]
    elif isinstance(value, dict):
        items = [(f"markets.{k}", m) for k, m in value.items()]
    else:
        raise CaseError(where, "markets", "a list of ccxt market structures (fetch_markets) or an object of them by symbol",
                        _kind(value))
    markets: dict[str, Mapping[str, Any]] = {}
    paths: dict[str, str] = {}
    for path, market in items:
        if not isinstance(market, dict) or not isinstance(market.get("symbol"), str):
            raise CaseError(where, f"{path}.symbol", "a ccxt market structure with its unified symbol", _kind(market))
        symbol = market["symbol"]
        if symbol in markets:
            raise CaseError(where, f"{path}.symbol", f"a symbol listed once ({paths[symbol]} lists it too)", symbol)
        markets[symbol] = market
        paths[symbol] = path
    return markets, paths


def _timestamp(value: Any, where: Location, path: str) -> dt.datetime | None:
    """ms since 1970 (ccxt's timestamps) or ISO 8601 text (ccxt's datetime), in UTC."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return dt.datetime.fromtimestamp(value / 1000.0, dt.UTC)
    if isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    raise CaseError(where, path, "milliseconds since 1970 or an ISO 8601 time", value)
