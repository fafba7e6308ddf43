"""Which positions drive margin, and what a trade would add: Euler allocation and what-if."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from marginopt.errors import CaseError, Location
from marginopt.models.book import VenueBook
from marginopt.models.case import Case
from marginopt.models.magnitude import gross_value_error, trade_quantity
from marginopt.typing import FloatArray


def euler_allocation(book: VenueBook, q: FloatArray | None = None) -> pd.DataFrame:
    """Each position's contribution ``q_j * dm/dq_j`` to the venue's initial margin.

    Every margin measure here is positively homogeneous of degree one, so by
    Euler's theorem the contributions add up to the margin itself. A negative
    contribution is a position that offsets others (a hedge).
    """
    q = book.q if q is None else q
    contribution = q * book.initial.gradient(q)
    return pd.DataFrame({"venue": book.venue.name, "instrument": list(book.ids), "position": q, "contribution": contribution})


def attribution(case: Case) -> pd.DataFrame:
    """Euler allocation of every venue's initial margin to its positions."""
    frames = [euler_allocation(VenueBook(case, v)) for v in case.venues]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass(frozen=True)
class WhatIf:
    """One trade at one venue: its initial margin before and after (``what_if``, ``route``)."""

    venue: str
    instrument: str
    quantity: float
    margin_before: float
    margin_after: float

    @property
    def incremental(self) -> float:
        return self.margin_after - self.margin_before


@dataclass(frozen=True)
class Leg:
    """One leg of a trade: signed ``quantity`` (negative: sell) of ``instrument`` at ``venue``.

    ``venue`` is ``None`` only for ``route_legs``, which sends every leg to the same venue.
    """

    instrument: str
    quantity: float
    venue: str | None = None


@dataclass(frozen=True)
class VenueChange:
    """A venue's margin before and after a trade's legs there. ``collateral_value`` is the credited
    value of the collateral posted (the trade does not move it); excess = collateral value - IM."""

    venue: str
    initial_before: float
    initial_after: float
    maintenance_before: float
    maintenance_after: float
    collateral_value: float

    @property
    def excess_before(self) -> float:
        return self.collateral_value - self.initial_before

    @property
    def excess_after(self) -> float:
        return self.collateral_value - self.initial_after

    @property
    def incremental(self) -> float:
        return self.initial_after - self.initial_before


@dataclass(frozen=True)
class LegsWhatIf:
    """Every leg applied together: each venue touched (in the case's venue order), before and after."""

    legs: tuple[Leg, ...]
    venues: tuple[VenueChange, ...]

    @property
    def venue(self) -> str | None:
        """The venue of every leg, or ``None`` when the legs are at several venues."""
        return self.venues[0].venue if len(self.venues) == 1 else None

    @property
    def margin_before(self) -> float:
        return sum(v.initial_before for v in self.venues)

    @property
    def margin_after(self) -> float:
        return sum(v.initial_after for v in self.venues)

    @property
    def incremental(self) -> float:
        return sum(v.incremental for v in self.venues)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``whatif --format json`` and the service: ``instrument`` and ``quantity`` are the
        single leg's (null for several legs), ``venue`` the legs' venue (null for several venues); the
        margins are initial margin summed over the venues touched; ``venues`` has each one's detail."""
        one = self.legs[0] if len(self.legs) == 1 else None
        return {
            "venue": self.venue, "instrument": one.instrument if one else None, "quantity": one.quantity if one else None,
            "legs": [{"venue": leg.venue, "instrument": leg.instrument, "quantity": leg.quantity} for leg in self.legs],
            "margin_before": self.margin_before, "margin_after": self.margin_after, "incremental_margin": self.incremental,
            "venues": [{"venue": v.venue, "initial_margin_before": v.initial_before, "initial_margin_after": v.initial_after,
                        "maintenance_margin_before": v.maintenance_before, "maintenance_margin_after": v.maintenance_after,
                        "collateral_value": v.collateral_value, "excess_before": v.excess_before, "excess_after": v.excess_after,
                        "incremental_margin": v.incremental} for v in self.venues],
        }


def listed_at(case: Case, venue: str) -> frozenset[str]:
    """The instruments ``venue`` lists: held there, a hedge candidate there (a row of the hedge
    table), or named under the venue's ``lists:``."""
    held = case.positions.at_venue(venue)
    return frozenset(held) | {h.instrument for h in case.hedges if h.venue == venue} | case.venues[venue].lists


def venues_listing(case: Case, instruments: Iterable[str]) -> list[str]:
    """The venues (in case order) that list every one of ``instruments``."""
    wanted = set(instruments)
    return [v for v in case.venues if wanted <= listed_at(case, v)]


def _check_leg(case: Case, leg: Leg, field: str) -> Leg:
    """``leg`` checked against the case; ``field`` is the leg's name in the call (``legs.0.`` of
    ``what_if_legs``, nothing for ``what_if``'s own arguments), so an error names the argument."""
    where = Location(case.path)
    if leg.venue is not None and leg.venue not in case.venues:
        raise CaseError(where, f"{field}venue", f"one of the case's venues ({', '.join(case.venues)})", leg.venue)
    if leg.instrument not in case.instruments:
        raise CaseError(where, f"{field}instrument", "an instrument id of the case", leg.instrument)
    # route and the service come through here: the magnitude guard on every leg, and on its gross value
    quantity = trade_quantity(leg.quantity, where, f"{field}quantity")
    market = case.market
    too_big = gross_value_error(quantity, case.instruments[leg.instrument], market.prices, market.base_currency)
    if too_big is not None:
        raise CaseError(where, f"{field}quantity", "a trade " + too_big.removeprefix("a position "), quantity)
    return Leg(leg.instrument, quantity, leg.venue)


def _leg_fields(legs: Sequence[Leg], single: bool) -> list[str]:
    return [""] if single else [f"legs.{i}." for i in range(len(legs))]


def what_if_legs(case: Case, legs: Sequence[Leg]) -> LegsWhatIf:
    """Initial and maintenance margin and excess at each venue a leg touches, before and after all
    ``legs`` are traded together (a spread, a strategy: the legs offset each other in the margin).
    A leg without a venue, or naming a venue or instrument the case does not have, is a ``CaseError``
    naming the leg (``legs.I.venue``)."""
    return _what_if_legs(case, legs, single=False)


def _what_if_legs(case: Case, legs: Sequence[Leg], single: bool) -> LegsWhatIf:
    if not legs:
        raise CaseError(Location(case.path), "legs", "at least one Leg(instrument, quantity, venue)", [])
    checked = [_check_leg(case, leg, f) for leg, f in zip(legs, _leg_fields(legs, single), strict=True)]
    for leg, f in zip(checked, _leg_fields(legs, single), strict=True):
        if leg.venue is None:
            raise CaseError(Location(case.path), f"{f}venue", f"the venue where {leg.instrument} is traded (one of "
                            f"{', '.join(case.venues)}); route_legs chooses one for legs without a venue", None)
    changes = []
    for venue in case.venues:
        here = [leg for leg in checked if leg.venue == venue]
        if not here:
            continue
        book = VenueBook(case, venue, extra=tuple(leg.instrument for leg in here))
        after = book.q.copy()
        for leg in here:
            after[book.column(leg.instrument)] += leg.quantity
        im_before, im_after = book.initial.evaluate(book.q), book.initial.evaluate(after)
        changes.append(VenueChange(venue, im_before, im_after, book.maintenance_margin(book.q, im_before),
                                   book.maintenance_margin(after, im_after),
                                   float(sum(c.credited_value for c in book.collateral()))))
    return LegsWhatIf(tuple(checked), tuple(changes))


def route_legs(case: Case, legs: Sequence[Leg]) -> list[LegsWhatIf]:
    """All ``legs`` traded together at each venue that lists every leg's instrument, least incremental
    initial margin first. A spread or strategy is traded at one venue, so the legs are not split
    across venues. A leg that names a venue (the route would overrule it) and no venue listing them all
    are each a ``CaseError``."""
    return _route_legs(case, legs, single=False)


def _route_legs(case: Case, legs: Sequence[Leg], single: bool) -> list[LegsWhatIf]:
    if not legs:
        raise CaseError(Location(case.path), "legs", "at least one Leg(instrument, quantity)", [])
    fields = _leg_fields(legs, single)
    for leg, f in zip(legs, fields, strict=True):
        if leg.venue is not None:
            raise CaseError(Location(case.path), f"{f}venue", f"no venue for the leg in {leg.instrument}: the route chooses "
                            "the venue (what_if_legs prices legs at the venues they name)", leg.venue)
    checked = [_check_leg(case, Leg(leg.instrument, leg.quantity), f) for leg, f in zip(legs, fields, strict=True)]
    instruments = list(dict.fromkeys(leg.instrument for leg in checked))
    venues = venues_listing(case, instruments)
    if not venues:
        raise CaseError(Location(case.path), "instrument" if single else "legs", no_venue_lists(case, instruments),
                        ", ".join(instruments))
    results = [_what_if_legs(case, [Leg(leg.instrument, leg.quantity, v) for leg in checked], single) for v in venues]
    return sorted(results, key=lambda w: (w.incremental, w.venue or ""))


def no_venue_lists(case: Case, instruments: Sequence[str]) -> str:
    """What a route needs and did not find, naming where each instrument is listed."""
    where = {i: [v for v in case.venues if i in listed_at(case, v)] for i in instruments}
    seen = "; ".join(f"{i} at {', '.join(vs) or 'no venue'}" for i, vs in where.items())
    return (f"instruments that one venue lists together ({seen}); a venue lists what it holds, what its hedge-table rows "
            "offer and what its lists: key names")


def what_if(case: Case, venue: str, instrument: str, quantity: float) -> WhatIf:
    """Initial margin at ``venue`` before and after trading ``quantity`` of ``instrument`` there."""
    return _single(_what_if_legs(case, [Leg(instrument, quantity, venue)], single=True))


def route(case: Case, instrument: str, quantity: float) -> list[WhatIf]:
    """The trade's incremental margin at every venue that lists ``instrument``, least first."""
    return [_single(w) for w in _route_legs(case, [Leg(instrument, quantity)], single=True)]


def _single(w: LegsWhatIf) -> WhatIf:
    leg, change = w.legs[0], w.venues[0]
    assert leg.venue is not None
    return WhatIf(leg.venue, leg.instrument, leg.quantity, change.initial_before, change.initial_after)
