"""The margin report: per venue initial and maintenance margin, components, collateral and excess."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marginopt.errors import Location, NotFoundError
from marginopt.models.book import VenueBook
from marginopt.models.case import Case
from marginopt.models.collateral import CollateralLine
from marginopt.models.limit_use import LimitUse, limit_uses
from marginopt.models.magnitude import largest_position, require_finite
from marginopt.models.margin.composite import bound_notes

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class VenueMargin:
    venue: str
    initial_margin: float
    maintenance_margin: float
    collateral_value: float
    worst_scenario: str | None
    worst_scenario_loss: float | None
    components: Mapping[str, float]
    collateral: tuple[CollateralLine, ...]
    convex: bool  # False when the initial margin includes a non-convex measure (historical VaR, Derive's margin)
    bound_notes: tuple[str, ...] = ()  # what the optimizer does instead of each non-convex term

    @property
    def excess(self) -> float:
        """Collateral value minus initial margin; negative is a shortfall."""
        return self.collateral_value - self.initial_margin

    @property
    def maintenance_excess(self) -> float:
        return self.collateral_value - self.maintenance_margin

    def to_dict(self) -> dict[str, Any]:
        """Exactly the venue entry of CASE_FORMAT.md's margin JSON."""
        return {
            "venue": self.venue,
            "initial_margin": self.initial_margin,
            "maintenance_margin": self.maintenance_margin,
            "collateral_value": self.collateral_value,
            "excess": self.excess,
            "worst_scenario": self.worst_scenario,
            "components": dict(self.components),
        }


def excess_apart(excess: Any, venues: Any) -> dict[str, Any]:
    """Excess per venue summed apart: shortfalls and surpluses are not netted across venues (collateral
    at one venue does not cover another's margin)."""
    pairs = [(str(v), float(x)) for v, x in zip(venues, excess, strict=True)]
    return {"total_shortfall": sum(-x for _, x in pairs if x < 0.0), "total_surplus": sum(x for _, x in pairs if x > 0.0),
            "short": [v for v, x in pairs if x < 0.0]}


@dataclass(frozen=True)
class MarginReport:
    base_currency: str
    valuation_date: dt.date
    venues: tuple[VenueMargin, ...]
    notes: tuple[str, ...] = ()  # what was done to the input on the way (duplicate position rows summed)
    limits: tuple[LimitUse, ...] = ()  # each limit of the case, used by the book as it is

    @property
    def total_initial_margin(self) -> float:
        return float(sum(v.initial_margin for v in self.venues))

    def __getitem__(self, venue: str) -> VenueMargin:
        """The margin at ``venue``; a venue the report does not have is a ``NotFoundError`` (a ``KeyError``)."""
        for v in self.venues:
            if v.venue == venue:
                return v
        raise NotFoundError(f"venue {venue!r}: expected one of the report's venues ({', '.join(v.venue for v in self.venues)})")

    def to_dict(self) -> dict[str, Any]:
        """Exactly the JSON of ``marginopt margin --format json`` (CASE_FORMAT.md), and ``notes`` when there are any."""
        out: dict[str, Any] = {
            "base_currency": self.base_currency,
            "venues": [v.to_dict() for v in self.venues],
            "total_initial_margin": self.total_initial_margin,
            **{k: v for k, v in excess_apart([v.excess for v in self.venues], [v.venue for v in self.venues]).items()
               if k != "short"},
        }
        if self.limits:
            out["limits"] = [u.to_dict() for u in self.limits]
        if self.notes:  # only then: the contract's document is unchanged for every case that needs no note
            out["notes"] = list(self.notes)
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per venue; components as ``component:<name>`` columns."""
        import pandas as pd  # only where a table is asked for: margin alone never loads pandas

        rows = []
        for v in self.venues:
            row = {k: val for k, val in v.to_dict().items() if k != "components"}
            row["maintenance_excess"] = v.maintenance_excess
            row.update({f"component:{k}": c for k, c in v.components.items()})
            rows.append(row)
        return pd.DataFrame(rows)


def venue_margin(book: VenueBook) -> VenueMargin:
    q = book.q
    im = book.initial.evaluate(q)
    worst = book.initial.worst_scenario(q)
    lines = book.collateral()
    out = VenueMargin(
        venue=book.venue.name,
        initial_margin=im,
        maintenance_margin=book.maintenance_margin(q, im),
        collateral_value=float(sum(c.credited_value for c in lines)),
        worst_scenario=worst[0] if worst else None,
        worst_scenario_loss=worst[1] if worst else None,
        components=book.initial.components(q),
        collateral=lines,
        convex=book.initial.convex,
        bound_notes=tuple(bound_notes(book.initial)),
    )
    _check_finite(book, out)
    return out


def _check_finite(book: VenueBook, v: VenueMargin) -> None:
    """Every amount of ``v`` finite, or a located error naming the input that overflowed (never a number shown).

    The magnitude guard on input keeps this from happening; this is the check that it did.
    """
    where, at = Location(book.case.path), f"venues.{v.venue}"
    amounts = {"initial_margin": v.initial_margin, "maintenance_margin": v.maintenance_margin,
               "collateral_value": v.collateral_value, "worst_scenario_loss": v.worst_scenario_loss or 0.0, **{f"components.{k}": c for k, c in v.components.items()}}
    if not all(math.isfinite(a) for a in amounts.values()):  # the cause is looked for only when there is one
        held = largest_position(book.ids, book.q, book.inputs.notional)
        for name, amount in amounts.items():
            require_finite(amount, where, f"{at}.{name}", held)
    for c in v.collateral:
        require_finite(c.credited_value, where, f"{at}.posted.{c.asset}", f"the posted quantity {c.quantity:g} of {c.asset}")


def margin_report(case: Case, on_venue: Callable[[str], None] | None = None) -> MarginReport:
    """Margin, collateral and excess of every venue of the case, as positioned now."""
    out, books = [], []
    for name in case.venues:
        if on_venue is not None:
            on_venue(name)
        books.append(VenueBook(case, name))
        out.append(venue_margin(books[-1]))
    limits = limit_uses(case, books, {b.venue.name: b.q for b in books}, {b.venue.name: b.venue.posted for b in books}, {})
    return MarginReport(case.base_currency, case.valuation_date, tuple(out), case.positions.notes, tuple(limits))
