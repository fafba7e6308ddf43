"""The health report: each venue's equity and margins now, and its distance to a call and to liquidation."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from marginopt.errors import Location
from marginopt.health.distance import CurvePoint, Direction, Scan, VenueDistance, directions, search
from marginopt.health.state import VenueHealth, venue_health
from marginopt.models.case import Case
from marginopt.models.magnitude import require_finite
from marginopt.models.moves import MarketMoves


@dataclass(frozen=True)
class HealthReport:
    base_currency: str
    valuation_date: dt.date
    scan: Scan
    venues: tuple[VenueHealth, ...]
    distances: tuple[VenueDistance, ...]  # venue by venue, direction by direction
    curves: dict[tuple[str, str], list[CurvePoint]]  # (venue, direction name) -> the scan's points

    def distances_at(self, venue: str) -> list[VenueDistance]:
        return [d for d in self.distances if d.venue == venue]

    def nearest(self, venue: str, level: str) -> VenueDistance | None:
        """The direction where ``venue`` is closest to a call (``initial``) or liquidation (``maintenance``)."""
        def size(d: VenueDistance) -> float:
            c = d.call if level == "initial" else d.liquidation
            return abs(c.move) if c.move is not None else float("inf")
        found = [d for d in self.distances_at(venue) if size(d) < float("inf")]
        return min(found, key=size) if found else None

    def to_dict(self, curves: bool = False) -> dict[str, Any]:
        """The JSON document of ``marginopt health --format json`` (CASE_FORMAT.md, Health)."""
        venues = []
        for v in self.venues:
            entry = v.to_dict()
            entry["distance"] = [d.to_dict() for d in self.distances_at(v.venue)]
            if curves:
                entry["curves"] = {name: [asdict(p) for p in pts] for (venue, name), pts in self.curves.items()
                                   if venue == v.venue}
            venues.append(entry)
        return {"base_currency": self.base_currency, "valuation_date": self.valuation_date.isoformat(),
                "scan": asdict(self.scan), "venues": venues}


def health_report(case: Case, scan: Scan | None = None, venues: tuple[str, ...] | None = None) -> HealthReport:
    """Equity, margins and distances of every venue (or of ``venues``) of the case."""
    scan = scan or Scan()
    names = tuple(case.venues) if venues is None else venues
    moves = MarketMoves(case)
    now = {v: venue_health(moves.at({}), v) for v in names}
    for h in now.values():
        for name, amount in h.to_dict().items():
            if isinstance(amount, float):
                require_finite(amount, Location(case.path), f"venues.{h.venue}.{name}", "the venue's positions and collateral")
    found: list[VenueDistance] = []
    curves: dict[tuple[str, str], list[CurvePoint]] = {}
    for d in directions(moves):
        dist, pts = search(moves, d, names, scan, now)
        found += dist
        curves.update({(v, d.name): p for v, p in pts.items()})
    order = {v: i for i, v in enumerate(names)}
    found.sort(key=lambda d: order[d.venue])  # stable: directions stay in their order within a venue
    return HealthReport(case.base_currency, case.valuation_date, scan, tuple(now[v] for v in names), tuple(found), curves)


__all__ = ["Direction", "HealthReport", "Scan", "health_report"]
