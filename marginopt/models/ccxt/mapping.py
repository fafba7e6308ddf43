"""ccxt's unified structures to a case's rows: instruments, positions and posted collateral.

Instruments (one per market held; CASE_FORMAT.md "instruments"):

- ``type`` swap -> perpetual, future -> future, option -> option (anything else is unknown);
  ``base`` -> underlying; ``linear`` / ``inverse`` -> settlement; ``expiry`` (ms) -> its UTC date
  (futures, options); ``strike`` and ``optionType`` (options).
- multiplier: ``contractSize`` (times OKX's ``ctMult``, ``rules``): units of the underlying per
  contract; for an inverse future or perpetual the contract's face value in the base currency
  (``contractSize`` in the quote currency times its price).
- price: the mark, ``tickers[symbol].markPrice``, else the position's ``markPrice``: in the quote
  currency for futures and perpetuals, in the settlement currency for options (the premium's
  currency: BTC for coin-settled options), times that currency's price.
- lot: ``precision.amount`` (a step under ccxt's TICK_SIZE mode, ``10^-p`` under DECIMAL_PLACES) and
  ``limits.amount.min``, in contracts; tick ``precision.price``. The case has a place for the lot and
  the minimum only on a hedge row (``lot_size``, ``min_trade``); the tick has none.

Positions: ``side`` long -> +, short -> -, times ``contracts`` (Deribit gives a short's size
negative: its magnitude counts); a position of 0 contracts is left out and counted. ``entryPrice``
(in the quote currency) -> ``entry_price`` on futures and perpetuals; options count at their mark
(CASE_FORMAT.md: no entry price on an option).

Collateral: ccxt's ``total`` per currency is the venue's equity in it (Deribit's ``equity``, OKX's
``eq``, Binance's ``marginBalance``): cash plus unrealized P&L plus option value. The case counts the
P&L against ``entry_price`` and the options at their mark itself, so what is posted is the total less
those, in the currency they settle in; the case's margin balance at the imported marks is then the
venue's equity (before haircuts).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marginopt.errors import CaseError
from marginopt.models.ccxt.payload import Account
from marginopt.models.ccxt.prices import Prices
from marginopt.models.ccxt.rules import ExchangeRules

KINDS = {"swap": "perpetual", "future": "future", "option": "option"}
TICK_SIZE, DECIMAL_PLACES = 4, 2  # ccxt's precision modes (ccxt.base.decimal_to_precision)
ZERO = 1e-9  # a posted quantity within ZERO of the amounts it is computed from is 0 (float rounding)


@dataclass
class Instrument:
    symbol: str
    market_path: str
    venue: str
    id: str
    kind: str
    underlying: str
    quote: str
    settle: str
    settlement: str
    multiplier: float
    price: float
    mark_source: str
    contract_size: float
    contract_unit: str
    expiry: dt.date | None = None
    strike: float | None = None
    right: str | None = None
    lot: float | None = None
    min_trade: float | None = None
    tick: float | None = None
    tick_unit: str = ""


@dataclass
class Position:
    venue: str
    instrument: Instrument
    quantity: float
    entry_price: float | None
    path: str


@dataclass
class Posted:
    asset: str
    total: float
    pnl: float  # unrealized P&L against entry prices, in the asset, taken out
    options: float  # option mark value settled in the asset, taken out
    quantity: float
    path: str


@dataclass
class Mapped:
    """One account mapped: what the case holds, and what was left out and why."""

    account: Account
    instruments: dict[str, Instrument] = field(default_factory=dict)  # by symbol
    positions: list[Position] = field(default_factory=list)
    posted: list[Posted] = field(default_factory=list)
    empty_positions: list[str] = field(default_factory=list)
    no_entry: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Unknown:
    """What to do with something the importer cannot map: raise its located error, or, with
    ``--skip-unknown``, keep it in the list of what was skipped."""

    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.skipped: list[str] = []

    def __call__(self, error: CaseError, what: str) -> None:
        if not self.skip:
            raise error
        self.skipped.append(f"{what}: {error}")


def map_account(account: Account, rules: ExchangeRules, precision_mode: int, prices: Prices, unknown: Unknown) -> Mapped:
    out = Mapped(account)
    failed: set[str] = set()  # markets found unknown once: each of their positions is skipped with the same reason
    for i, pos in enumerate(account.positions):
        path = f"positions[{i}]"
        symbol = pos.get("symbol")
        market = account.markets.get(symbol) if isinstance(symbol, str) else None
        if market is None or not isinstance(symbol, str):
            unknown(account.error(f"{path}.symbol", "the symbol of a market in the markets section (fetch_markets)", symbol),
                    f"position {symbol}")
            continue
        contracts = account.number(pos.get("contracts"), f"{path}.contracts")
        assert contracts is not None
        if contracts == 0.0:
            out.empty_positions.append(str(symbol))
            continue
        side = pos.get("side")
        if side not in ("long", "short") or (contracts < 0 and side == "long"):
            raise account.error(f"{path}.side", "long or short (short where contracts is negative)", side)
        if symbol in failed:
            unknown.skipped.append(f"position {symbol} ({path}): its market is skipped above")
            continue
        if symbol not in out.instruments:
            try:
                out.instruments[symbol] = _instrument(account, market, pos, path, rules, precision_mode, prices)
            except CaseError as exc:
                failed.add(symbol)
                unknown(exc, f"position {symbol} ({path})")
                continue
        inst = out.instruments[symbol]
        quantity = (1.0 if side == "long" else -1.0) * abs(contracts)
        if rules.amounts_in_size_unit:
            quantity /= inst.contract_size
        entry = None
        if inst.kind != "option":
            raw = account.number(pos.get("entryPrice"), f"{path}.entryPrice", optional=True)
            if raw is not None and raw < 0:
                raise account.error(f"{path}.entryPrice", "a price > 0 (or none)", raw)
            if raw:
                entry = raw * prices.value(inst.quote)
            else:
                out.no_entry.append(f"{symbol} ({path})")
        out.positions.append(Position(account.venue, inst, quantity, entry, path))
    _collateral(out, prices, unknown)
    return out


def _instrument(account: Account, market: Mapping[str, Any], pos: Mapping[str, Any], path: str, rules: ExchangeRules,
                precision_mode: int, prices: Prices) -> Instrument:
    symbol = str(market["symbol"])
    mpath = account.market_paths[symbol]
    kind = KINDS.get(str(market.get("type")))
    if kind is None:
        raise account.error(f"{mpath}.type", "swap, future or option (a derivative position)", market.get("type"))
    names = {}
    for key in ("base", "quote", "settle"):
        value = market.get(key)
        if not isinstance(value, str) or not value:
            raise account.error(f"{mpath}.{key}", "a currency code", value)
        names[key] = value
    for key in ("base", "quote", "settle"):
        if prices.get(names[key]) is None:
            raise account.error(f"{mpath}.{key}", _unpriced(names[key], prices.base), names[key])
    if market.get("linear") is True and market.get("inverse") is not True:
        settlement = "linear"
    elif market.get("inverse") is True and market.get("linear") is not True:
        settlement = "inverse"
    else:
        raise account.error(f"{mpath}.linear", "linear true or inverse true (how the contract settles)", market.get("linear"))
    size = account.number(market.get("contractSize"), f"{mpath}.contractSize", positive=True)
    assert size is not None
    if rules.contract_multiplier is not None and (market.get("info") or {}).get(rules.contract_multiplier) not in (None, ""):
        extra = account.number(market["info"][rules.contract_multiplier], f"{mpath}.info.{rules.contract_multiplier}",
                               positive=True)
        assert extra is not None
        size *= extra
    face = settlement == "inverse" and kind != "option"
    multiplier = size * prices.value(names["quote"]) if face else size
    mark_ccy = names["settle"] if kind == "option" else names["quote"]
    mark, source = _mark(account, symbol, pos, path)
    inst = Instrument(symbol=symbol, market_path=mpath, venue=account.venue, id=str(market.get("id") or symbol), kind=kind,
                      underlying=names["base"], quote=names["quote"], settle=names["settle"], settlement=settlement,
                      multiplier=multiplier, price=mark * prices.value(mark_ccy), mark_source=source, contract_size=size,
                      contract_unit=names["quote"] if face else names["base"])
    if kind in ("future", "option"):
        expiry = account.number(market.get("expiry"), f"{mpath}.expiry", positive=True)
        assert expiry is not None
        inst.expiry = dt.datetime.fromtimestamp(expiry / 1000.0, dt.UTC).date()
    if kind == "option":
        strike = account.number(market.get("strike"), f"{mpath}.strike", positive=True)
        assert strike is not None
        inst.strike = strike * prices.value(names["quote"])
        if market.get("optionType") not in ("call", "put"):
            raise account.error(f"{mpath}.optionType", "call or put", market.get("optionType"))
        inst.right = str(market["optionType"])
    unit = size if rules.amounts_in_size_unit else 1.0
    precision, limits = market.get("precision") or {}, (market.get("limits") or {}).get("amount") or {}
    step = _step(account, precision.get("amount"), f"{mpath}.precision.amount", precision_mode)
    inst.lot = None if step is None else step / unit
    least = account.number(limits.get("min"), f"{mpath}.limits.amount.min", optional=True)
    inst.min_trade = None if not least else least / unit
    inst.tick = _step(account, precision.get("price"), f"{mpath}.precision.price", precision_mode)
    inst.tick_unit = mark_ccy
    return inst


def _mark(account: Account, symbol: str, pos: Mapping[str, Any], path: str) -> tuple[float, str]:
    ticker = account.tickers.get(symbol) or {}
    if ticker.get("markPrice") is not None:
        value = account.number(ticker["markPrice"], f"tickers.{symbol}.markPrice", positive=True)
        assert value is not None
        return value, f"tickers.{symbol}.markPrice"
    if pos.get("markPrice") is not None:
        value = account.number(pos["markPrice"], f"{path}.markPrice", positive=True)
        assert value is not None
        return value, f"{path}.markPrice"
    raise account.error(f"tickers.{symbol}.markPrice", f"a mark price for {symbol} (its ticker's markPrice or the "
                        "position's markPrice)", None)


def _step(account: Account, value: Any, path: str, mode: int) -> float | None:
    number = account.number(value, path, optional=True)
    if number is None:
        return None
    if mode == TICK_SIZE:
        return number if number > 0 else None
    if mode == DECIMAL_PLACES:
        return 10.0 ** -number
    return None  # significant digits: not a step


def _unpriced(asset: str, base: str) -> str:
    return (f"an asset priced in {base}: a ticker {asset}/{base} (spot last, or a derivative's indexPrice) in tickers, "
            f"the file's prices or --price {asset}=VALUE")


def _collateral(out: Mapped, prices: Prices, unknown: Unknown) -> None:
    """Posted per currency: ccxt's total less the P&L and option value the case counts itself (module docstring)."""
    account = out.account
    pnl: dict[str, float] = {}
    options: dict[str, float] = {}
    for p in out.positions:
        inst = p.instrument
        settle_price = prices.value(inst.settle)
        if inst.kind == "option":
            options[inst.settle] = options.get(inst.settle, 0.0) + p.quantity * inst.multiplier * inst.price / settle_price
        elif p.entry_price is not None:
            if inst.settlement == "linear":
                base = p.quantity * inst.multiplier * (inst.price - p.entry_price)
            else:
                base = p.quantity * inst.multiplier * (1.0 / p.entry_price - 1.0 / inst.price) * prices.value(inst.underlying)
            pnl[inst.settle] = pnl.get(inst.settle, 0.0) + base / settle_price
    totals, where = _totals(account)
    for asset in sorted(set(totals) | set(pnl) | set(options), key=lambda a: list(totals).index(a) if a in totals else len(totals)):
        total = totals.get(asset, 0.0)
        taken = pnl.get(asset, 0.0) + options.get(asset, 0.0)
        path = where.get(asset, f"balance.total.{asset}")
        if total == 0.0 and taken == 0.0:
            continue
        if total < 0:
            raise account.error(path, f"a balance >= 0 (a negative {asset} balance is a loan, which a case cannot post)", total)
        quantity = total - taken
        if abs(quantity) <= ZERO * max(abs(total), abs(pnl.get(asset, 0.0)), abs(options.get(asset, 0.0))):
            quantity = 0.0
        if quantity < 0:
            raise account.error(path, f"a total at least the unrealized P&L and option value settled in {asset} that the case "
                                f"counts itself ({taken!r}): the rest, {quantity!r}, would be a negative quantity posted", total)
        if prices.get(asset) is None:
            unknown(account.error(path, _unpriced(asset, prices.base), asset), f"balance {asset}")
            continue
        out.posted.append(Posted(asset, total, pnl.get(asset, 0.0), options.get(asset, 0.0), quantity, path))


def _totals(account: Account) -> tuple[dict[str, float], dict[str, str]]:
    """ccxt's ``total`` per currency (the ``total`` mapping, else each currency's ``total``)."""
    balance = account.balance
    totals: dict[str, float] = {}
    where: dict[str, str] = {}
    number: Callable[..., float | None] = account.number
    if isinstance(balance.get("total"), dict):
        for asset, value in balance["total"].items():
            path = f"balance.total.{asset}"
            amount = number(value, path, optional=True)
            if amount is not None:
                totals[asset], where[asset] = amount, path
        return totals, where
    for asset, entry in balance.items():
        if asset in ("info", "timestamp", "datetime", "free", "used", "debt") or not isinstance(entry, dict):
            continue
        path = f"balance.{asset}.total"
        amount = number(entry.get("total"), path, optional=True)
        if amount is not None:
            totals[asset], where[asset] = amount, path
    if not totals and balance:
        raise account.error("balance.total", "ccxt's balance structure: a total per currency", None)
    return totals, where


