"""Instruments: spot, futures, perpetuals and European options, linear or inverse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from marginopt.errors import CaseError, Location
from marginopt.models.enums import InstrumentKind, Right, Settlement
from marginopt.models.magnitude import Bound
from marginopt.models.market import MarketData
from marginopt.models.reader import Node, Table, read_table

_COLUMNS_REQUIRED = ("id", "kind", "underlying")
_COLUMNS_OPTIONAL = ("expiry", "strike", "right", "multiplier", "settlement", "price", "vol")


@dataclass(frozen=True)
class Instrument:
    """One tradable contract.

    ``underlying`` is the asset whose price moves it (a key of market.prices).
    An option may name a future as ``underlying``; it is then priced off that
    future's price and ``future`` holds the future's id. ``multiplier`` is units
    of underlying per contract, except for inverse futures and perpetuals where
    it is the face value in base currency (as on coin-margined venues).
    """

    id: str
    kind: InstrumentKind
    underlying: str
    expiry: dt.date | None = None
    strike: float | None = None
    right: Right | None = None
    multiplier: float = 1.0
    settlement: Settlement = Settlement.LINEAR
    price: float | None = None
    vol: float | None = None
    future: str | None = None
    where: Location = field(default=Location(), compare=False, repr=False)  # its row, for errors found later

    @property
    def is_option(self) -> bool:
        return self.kind is InstrumentKind.OPTION


@dataclass(frozen=True)
class InstrumentSet:
    """All instruments of a case, in table order, looked up by id."""

    items: tuple[Instrument, ...]
    index: Mapping[str, int]

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, instrument_id: object) -> bool:
        return instrument_id in self.index

    def __getitem__(self, instrument_id: str) -> Instrument:
        return self.items[self.index[instrument_id]]


def parse_instruments(node: Node, market: MarketData, valuation_date: dt.date) -> InstrumentSet:
    table = read_table(node, "instruments")
    table.check_columns(_COLUMNS_REQUIRED, _COLUMNS_OPTIONAL)
    if len(table) == 0:
        raise node.error("at least one instrument", node.value)
    ids = table.texts("id")
    kinds = [InstrumentKind(k) for k in table.texts("kind", choices=[k.value for k in InstrumentKind])]
    underlyings = table.texts("underlying")
    expiries = table.dates("expiry", required=False)
    strikes = table.numbers("strike", default=float("nan"), lower=0.0, lower_open=True, bound=Bound.SCALE) if table.has("strike") else None
    rights = table.texts("right", required=False, choices=[r.value for r in Right])
    multipliers = table.numbers("multiplier", default=1.0, lower=0.0, lower_open=True)
    settlements = table.texts("settlement", required=False, choices=[s.value for s in Settlement])
    prices = table.numbers("price", default=float("nan"), lower=0.0, lower_open=True, bound=Bound.SCALE) if table.has("price") else None
    vols = table.numbers("vol", default=float("nan"), lower=0.0, lower_open=True, bound=Bound.SCALE) if table.has("vol") else None
    seen: dict[str, int] = {}
    for i, iid in enumerate(ids):
        assert iid is not None
        if iid in seen:
            raise table.error(i, "id", f"a unique instrument id (already used in row {seen[iid] + 1})", iid)
        seen[iid] = i
    futures = {ids[i]: underlyings[i] for i, k in enumerate(kinds) if k is InstrumentKind.FUTURE}
    items = []
    for i in range(len(table)):
        items.append(
            _build(
                table, i, ids[i], kinds[i], underlyings[i], expiries[i],
                None if strikes is None else strikes[i], rights[i], multipliers[i], settlements[i],
                None if prices is None else prices[i], None if vols is None else vols[i],
                market, valuation_date, futures,
            )
        )
    index = {inst.id: i for i, inst in enumerate(items)}
    return InstrumentSet(tuple(items), MappingProxyType(index))


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or x != x else float(x)


def _build(
    table: Table, i: int, iid: str | None, kind: InstrumentKind, underlying: str | None,
    expiry: dt.date | None, strike: float | None, right: str | None, multiplier: float,
    settlement: str | None, price: float | None, vol: float | None,
    market: MarketData, valuation_date: dt.date, futures: dict[str | None, str | None],
) -> Instrument:
    assert iid is not None and underlying is not None
    strike, price, vol = _nan_to_none(strike), _nan_to_none(price), _nan_to_none(vol)
    future = None
    if kind is InstrumentKind.OPTION and underlying in futures:
        future, underlying = underlying, futures[underlying]
        assert underlying is not None  # the future's row was validated first
    elif underlying not in market.prices:
        what = "an asset in market.prices" + (" or the id of a future" if kind is InstrumentKind.OPTION else "")
        raise table.error(i, "underlying", f"{what} ({', '.join(sorted(market.prices))})", underlying)
    needs_expiry = kind in (InstrumentKind.FUTURE, InstrumentKind.OPTION)
    if needs_expiry and expiry is None:
        raise table.error(i, "expiry", f"an expiry date for a {kind.value}", None)
    if not needs_expiry and expiry is not None:
        raise table.error(i, "expiry", f"no expiry for a {kind.value}", expiry.isoformat())
    if expiry is not None and expiry < valuation_date:
        raise table.error(i, "expiry", f"an expiry on or after the valuation date {valuation_date} (the contract has expired)", expiry.isoformat())
    if kind is InstrumentKind.OPTION:
        if strike is None:
            raise table.error(i, "strike", "a positive strike for an option", None)
        if right is None:
            raise table.error(i, "right", "call or put for an option", None)
        if vol is None and price is None and underlying not in market.vols:
            raise table.error(
                i, "vol", f"a vol for the option (this column, a price to imply it from, or market.vols.{underlying})", None
            )
    else:
        if strike is not None:
            raise table.error(i, "strike", f"no strike for a {kind.value}", strike)
        if right is not None:
            raise table.error(i, "right", f"no right for a {kind.value}", right)
        if vol is not None:
            raise table.error(i, "vol", f"no vol for a {kind.value}", vol)
    return Instrument(
        id=iid,
        kind=kind,
        underlying=underlying,
        expiry=expiry,
        strike=strike,
        right=Right(right) if right is not None else None,
        multiplier=float(multiplier),
        settlement=Settlement(settlement) if settlement is not None else Settlement.LINEAR,
        price=price,
        vol=vol,
        future=future,
        where=table.where(i),
    )


def ensure_known(table: Table, column: str, ids: list[str | None], instruments: InstrumentSet) -> None:
    """Every id in ``ids`` names an instrument of the case."""
    for i, iid in enumerate(ids):
        if iid not in instruments:
            raise CaseError(table.where(i), f"{table.name}.{column}", "an instrument id from the instruments table", iid)
