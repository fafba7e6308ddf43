"""A venue's margin health at one market: equity, initial and maintenance margin, their ratio and excesses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from marginopt.models.book import VenueBook
from marginopt.models.case import Case
from marginopt.models.equity import VenueEquity, venue_equity
from marginopt.models.report import VenueMargin, venue_margin


@dataclass(frozen=True)
class VenueHealth:
    venue: str
    equity: VenueEquity
    initial_margin: float
    maintenance_margin: float

    @property
    def margin_balance(self) -> float:
        return self.equity.margin_balance

    @property
    def excess_initial(self) -> float:
        """Margin balance over initial margin: negative is a margin call."""
        return self.margin_balance - self.initial_margin

    @property
    def excess_maintenance(self) -> float:
        """Margin balance over maintenance margin: negative is liquidation."""
        return self.margin_balance - self.maintenance_margin

    @property
    def margin_ratio(self) -> float | None:
        """Maintenance margin over margin balance (liquidation at 1); ``None`` without a positive balance."""
        b = self.margin_balance
        return self.maintenance_margin / b if b > 0.0 and math.isfinite(self.maintenance_margin / b) else None

    def to_dict(self) -> dict[str, Any]:
        return {"venue": self.venue, **self.equity.to_dict(), "initial_margin": self.initial_margin,
                "maintenance_margin": self.maintenance_margin, "margin_ratio": self.margin_ratio,
                "excess_initial": self.excess_initial, "excess_maintenance": self.excess_maintenance}


def health_of(margin: VenueMargin, book: VenueBook) -> VenueHealth:
    return VenueHealth(margin.venue, venue_equity(book, margin.collateral_value), margin.initial_margin,
                       margin.maintenance_margin)


def venue_health(case: Case, venue: str) -> VenueHealth:
    """One venue's health at ``case``'s market: a full margin computation there."""
    book = VenueBook(case, venue)
    return health_of(venue_margin(book), book)
