"""Distance to a margin call and to liquidation: the smallest market move at which a venue's margin balance
falls to its initial margin (a call) and to its maintenance margin (liquidation).

Each direction moves one underlying down or up, or every underlying together. Along a direction the
case is re-priced and re-margined in full at each move (``MarketMoves``; not a first-order estimate):
first on a scan of fixed steps out to the range's end, then, between the last safe step and the first
breached one, Brent's method to ``tolerance`` (of the relative move). What this does not see: a breach
that opens and closes again between two steps of the scan (``step_down``, ``step_up``) is missed; the
first breach found is exact to the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from scipy.optimize import brentq

from marginopt.errors import ArgumentError
from marginopt.health.state import VenueHealth, venue_health
from marginopt.models.moves import MarketMoves

LEVELS = ("initial", "maintenance")  # a margin call, liquidation


@dataclass(frozen=True)
class Scan:
    """How far and how finely each direction is searched (relative moves)."""

    down: float = 0.95  # to -95%
    up: float = 2.0  # to +200%
    step_down: float = 0.01
    step_up: float = 0.02
    tolerance: float = 1e-6

    def __post_init__(self) -> None:
        if not 0.0 < self.down < 1.0:
            raise ArgumentError(f"down={self.down!r}: expected a largest fall between 0 and 1 (100%), exclusive")
        if not 0.0 < self.up <= 100.0:
            raise ArgumentError(f"up={self.up!r}: expected a largest rise above 0, at most 100 (+10,000%)")
        for name, step, end in (("step_down", self.step_down, self.down), ("step_up", self.step_up, self.up)):
            if not 0.0 < step <= end:
                raise ArgumentError(f"{name}={step!r}: expected a step above 0 and at most the range ({end})")
        if not 0.0 < self.tolerance < min(self.step_down, self.step_up):
            raise ArgumentError(f"tolerance={self.tolerance!r}: expected above 0 and below the scan's steps")

    def steps(self, sign: int) -> np.ndarray:
        """The scan's moves along a direction, signed, nearest first (the range's end included)."""
        end, step = (self.down, self.step_down) if sign < 0 else (self.up, self.step_up)
        n = int(np.ceil(end / step - 1e-9))
        return sign * np.minimum(step * np.arange(1, n + 1), end)


@dataclass(frozen=True)
class Direction:
    underlyings: tuple[str, ...]
    sign: int  # -1 down, +1 up

    @property
    def name(self) -> str:
        return f"{'all' if len(self.underlyings) > 1 else self.underlyings[0]} {'down' if self.sign < 0 else 'up'}"

    def moves(self, t: float) -> dict[str, float]:
        return dict.fromkeys(self.underlyings, t)


@dataclass(frozen=True)
class Crossing:
    """Where a venue's margin balance first meets a level along a direction (``move`` None: nowhere in the scan)."""

    move: float | None
    prices: dict[str, float] = field(default_factory=dict)  # of the moved underlyings there
    now: bool = False  # the level is breached already, with no move

    def to_dict(self) -> dict[str, Any]:
        return {"move": self.move, "prices": self.prices, "breached_now": self.now}


@dataclass(frozen=True)
class VenueDistance:
    venue: str
    direction: Direction
    call: Crossing
    liquidation: Crossing

    def to_dict(self) -> dict[str, Any]:
        return {"direction": self.direction.name, "underlyings": list(self.direction.underlyings),
                "call": self.call.to_dict(), "liquidation": self.liquidation.to_dict()}


@dataclass(frozen=True)
class CurvePoint:
    """A venue's levels at one move of the scan: the chart of equity, IM and MM against the move."""

    move: float
    margin_balance: float
    initial_margin: float
    maintenance_margin: float


def directions(moves: MarketMoves) -> list[Direction]:
    """Each underlying down and up, then all together (when there are several)."""
    out = [Direction((u,), s) for u in moves.underlyings for s in (-1, 1)]
    if len(moves.underlyings) > 1:
        out += [Direction(moves.underlyings, s) for s in (-1, 1)]
    return out


def _gap(h: VenueHealth, level: str) -> float:
    return h.excess_initial if level == "initial" else h.excess_maintenance


def search(moves: MarketMoves, direction: Direction, venues: Sequence[str], scan: Scan,
           now: dict[str, VenueHealth]) -> tuple[list[VenueDistance], dict[str, list[CurvePoint]]]:
    """Every venue's call and liquidation along ``direction``, and the scan's curve of each venue."""
    base = moves.case.market.prices

    def at(t: float, venue: str) -> VenueHealth:
        return venue_health(moves.at(direction.moves(t)), venue)

    def crossing(t: float, breached_now: bool = False) -> Crossing:
        return Crossing(t, {u: base[u] * (1.0 + t) for u in direction.underlyings}, breached_now)

    found: dict[tuple[str, str], Crossing] = {}
    for v in venues:
        for level in LEVELS:
            if _gap(now[v], level) < 0.0:
                found[v, level] = crossing(0.0, True)
    curves: dict[str, list[CurvePoint]] = {v: [] for v in venues}
    last = 0.0
    for t in scan.steps(direction.sign):
        if len(found) == 2 * len(venues):
            break
        case = moves.at(direction.moves(float(t)))
        for v in venues:
            h = venue_health(case, v)
            curves[v].append(CurvePoint(float(t), h.margin_balance, h.initial_margin, h.maintenance_margin))
            for level in LEVELS:
                if (v, level) not in found and _gap(h, level) < 0.0:
                    found[v, level] = crossing(_root(partial(_gap_at, at, v, level), last, float(t), scan.tolerance))
        last = float(t)
    out = [VenueDistance(v, direction, found.get((v, "initial"), Crossing(None)),
                         found.get((v, "maintenance"), Crossing(None))) for v in venues]
    return out, curves


def _gap_at(at: Callable[[float, str], VenueHealth], venue: str, level: str, t: float) -> float:
    return _gap(at(t, venue), level)


def _root(f: Callable[[float], float], safe: float, breached: float, tolerance: float) -> float:
    """The move between ``safe`` (gap >= 0) and ``breached`` (gap < 0) where the gap is 0, to ``tolerance``;
    the breached side of the final bracket, so that the level is breached at the move reported."""
    if f(safe) == 0.0:  # a balance exactly at the level: the call is there
        return safe
    root = float(brentq(f, safe, breached, xtol=tolerance / 4, rtol=4 * np.finfo(float).eps))
    step = tolerance / 2 * np.sign(breached - safe)
    while f(root) >= 0.0 and abs(root - safe) <= abs(breached - safe):  # on the breached side of the root
        root += step
    return float(root)
