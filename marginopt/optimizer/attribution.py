"""Which positions drive margin, and what a trade would add: Euler allocation and what-if."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from marginopt.errors import CaseError, Location
from marginopt.models.book import VenueBook
from marginopt.models.case import Case
from marginopt.models.magnitude import trade_quantity
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
    venue: str
    instrument: str
    quantity: float
    margin_before: float
    margin_after: float

    @property
    def incremental(self) -> float:
        return self.margin_after - self.margin_before


def what_if(case: Case, venue: str, instrument: str, quantity: float) -> WhatIf:
    """Initial margin at ``venue`` before and after trading ``quantity`` of ``instrument`` there."""
    if venue not in case.venues:
        raise CaseError(Location(case.path), "--trade venue", f"one of {', '.join(case.venues)}", venue)
    if instrument not in case.instruments:
        raise CaseError(Location(case.path), "--trade instrument", "an instrument id of the case", instrument)
    quantity = trade_quantity(quantity, Location(case.path), "quantity")  # route and the service come through here
    book = VenueBook(case, venue, extra=(instrument,))
    after = book.q.copy()
    after[book.column(instrument)] += quantity
    return WhatIf(venue, instrument, quantity, book.initial.evaluate(book.q), book.initial.evaluate(after))


def route(case: Case, instrument: str, quantity: float) -> list[WhatIf]:
    """The trade's incremental margin at every venue, least first."""
    return sorted((what_if(case, v, instrument, quantity) for v in case.venues), key=lambda w: (w.incremental, w.venue))


