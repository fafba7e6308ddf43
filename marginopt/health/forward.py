"""Forward margin (dynamic IM): each venue's margins and margin balance day by day along drawn price paths.

Over a horizon of ``days`` days, on ``paths`` paths drawn from the case's own scenario model
(``health.paths``: its price history, bootstrapped in blocks, or Monte Carlo at its vols), the whole
book is re-priced on each day of each path as ``health.days`` defines time passing (the valuation date
moves on a day per step: options lose time value, futures converge to spot, contracts that expire
within the horizon settle into the balance and leave the book) and re-margined at every venue in full:
the venue's own initial and maintenance margin models at that market, and its margin balance
(credited collateral at that market's prices, unrealized P&L, option value, settled amounts).

Reported per venue and day: quantiles over paths of the initial margin, the maintenance margin, the
margin balance and the margin-call amount ``max(IM - balance, 0)``, and the share of paths in a call
(``balance < IM``) and in liquidation (``balance < MM``). Quantiles interpolate linearly between order
statistics (numpy's default); day 0 is today, the same on every path.

How it is fast and still exact: a day's states (its distinct price vectors over the paths) are priced
together (``health.states``) and every scenario set prices all of them in one call of the loss kernel
(``health.measures``); each margin is then its measure's own arithmetic applied to each state. A venue
whose margin model has a kind that is not vectorized is re-margined state by state on the full case
(``health.days``), with the same numbers, and the report says so (``method``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from marginopt.errors import ArgumentError, CaseError, Location, ModelError, NotFoundError
from marginopt.health.days import PathDays
from marginopt.health.measures import Batch, margin, unsupported
from marginopt.health.paths import Paths, draw_paths
from marginopt.health.state import venue_health
from marginopt.health.states import VenueBook, credited_collateral, forwards, price_states, venue_book
from marginopt.models import kernel_codes as K
from marginopt.models.case import Case
from marginopt.models.venues import FractionOfInitial
from marginopt.typing import FloatArray

QUANTILES = (0.05, 0.5, 0.95, 0.99)
VECTORIZED, STATE_BY_STATE = "vectorized", "state by state"
# States priced together: the scenario-loss matrix of a chunk (scenarios x states x contracts) stays near this.
# Below glibc's largest mmap threshold (32 MiB), a freed matrix's memory is reused by the next chunk: at
# 32 MiB each chunk's was mapped afresh, 26,000 page faults and up to 1.2 s of system time a projection of
# the demo at 10,000 x 10; at 16 MiB none. Much smaller chunks pay the per-chunk work (4 MiB: 2x the CPU).
_CHUNK_BYTES = 16 << 20


@dataclass(frozen=True, eq=False)
class VenueProjection:
    """One venue's levels on every path and day, ``(paths, days + 1)`` each."""

    venue: str
    method: str  # VECTORIZED, or STATE_BY_STATE with the reason in ``note``
    initial_margin: FloatArray
    maintenance_margin: FloatArray
    margin_balance: FloatArray
    expiries: tuple[tuple[int, str], ...]  # (day it settles, instrument) within the horizon
    note: str = ""

    @property
    def call_amount(self) -> FloatArray:
        """``max(IM - balance, 0)``: what a margin call asks for."""
        return np.maximum(self.initial_margin - self.margin_balance, 0.0)

    def call_probability(self) -> FloatArray:
        """Share of paths with the balance below the initial margin, per day."""
        return (self.margin_balance < self.initial_margin).mean(axis=0)

    def liquidation_probability(self) -> FloatArray:
        """Share of paths with the balance below the maintenance margin, per day."""
        return (self.margin_balance < self.maintenance_margin).mean(axis=0)


LEVELS = ("initial_margin", "maintenance_margin", "margin_balance", "call_amount")


@dataclass(frozen=True, eq=False)
class ForwardReport:
    base_currency: str
    valuation_date: dt.date
    paths: Paths
    quantiles: tuple[float, ...]
    venues: tuple[VenueProjection, ...]
    states: int  # distinct market states re-margined (days x distinct price vectors), per venue
    seconds: float  # the projection's wall time (the paths drawn and every venue re-margined)

    @property
    def days(self) -> int:
        return self.paths.days

    def date(self, day: int) -> dt.date:
        return self.valuation_date + dt.timedelta(days=day)

    def levels(self, venue: VenueProjection, level: str) -> FloatArray:
        """``(quantiles, days + 1)``: each quantile of ``level`` over paths, per day."""
        return np.quantile(getattr(venue, level), self.quantiles, axis=0)

    def __getitem__(self, venue: str) -> VenueProjection:
        """The projection of ``venue``; one the report does not have is a ``NotFoundError`` (a ``KeyError``)."""
        for v in self.venues:
            if v.venue == venue:
                return v
        raise NotFoundError(f"venue {venue!r}: expected one of the report's venues ({', '.join(v.venue for v in self.venues)})")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``marginopt forward --format json`` (CASE_FORMAT.md, Forward margin)."""
        p = self.paths
        model: dict[str, Any] = {"kind": p.model, "paths": p.n_paths, "days": p.days, "seed": p.seed, "source": p.source,
                                 "underlyings": list(p.underlyings)}
        if p.block is not None:
            model["block_days"] = p.block
        venues = []
        for v in self.venues:
            q = {level: self.levels(v, level) for level in LEVELS}
            call, liq = v.call_probability(), v.liquidation_probability()
            days = [{"day": d, "date": self.date(d).isoformat(), **{level: q[level][:, d].tolist() for level in LEVELS},
                     "call_probability": float(call[d]), "liquidation_probability": float(liq[d])}
                    for d in range(self.days + 1)]
            entry: dict[str, Any] = {"venue": v.venue, "method": v.method,
                                     "expiries": [{"day": d, "date": self.date(d).isoformat(), "instrument": i}
                                                  for d, i in v.expiries], "days": days}
            if v.note:
                entry["note"] = v.note
            venues.append(entry)
        return {"base_currency": self.base_currency, "valuation_date": self.valuation_date.isoformat(), "model": model,
                "quantiles": list(self.quantiles), "states": self.states, "seconds": self.seconds, "venues": venues}


def forward_report(case: Case, *, model: str | None = None, paths: int = 10_000, days: int = 10, seed: int = 0,
                   block: int | None = None, quantiles: Sequence[float] = QUANTILES,
                   venues: Sequence[str] | None = None) -> ForwardReport:
    """Draw the paths (``model``: historical where the case has a price history, else monte_carlo, by
    default) and project every venue (or ``venues``) along them."""
    qs = tuple(float(x) for x in quantiles)
    if not qs or not all(0.0 <= x <= 1.0 for x in qs):
        raise ArgumentError(f"quantiles={list(quantiles)!r}: expected at least one level between 0 and 1")
    for v in venues or ():
        if v not in case.venues:
            raise CaseError(Location(case.path), "venues", f"a venue of the case ({', '.join(case.venues)})", v)
    start = time.perf_counter()
    kind = model or ("historical" if case.market.history is not None else "monte_carlo")
    drawn = draw_paths(case, kind, paths, days, seed, block)
    out = project(case, drawn, venues, qs)
    return dataclasses.replace(out, seconds=time.perf_counter() - start)


def project(case: Case, drawn: Paths, venues: Sequence[str] | None = None,
            quantiles: tuple[float, ...] = QUANTILES) -> ForwardReport:
    """Every venue (or ``venues``) of ``case`` re-margined on each day of each of ``drawn``'s paths."""
    timeline = PathDays(case)
    if timeline.underlyings != drawn.underlyings:
        raise ArgumentError(f"paths of {', '.join(drawn.underlyings)}: expected paths of the case's underlyings "
                            f"({', '.join(timeline.underlyings)})")
    start = time.perf_counter()
    names = tuple(case.venues) if venues is None else tuple(venues)
    unique = [np.unique(drawn.growth[:, d, :], axis=0, return_inverse=True) for d in range(drawn.days + 1)]
    projections = tuple(_venue(timeline, name, drawn, unique) for name in names)
    states = sum(len(u) for u, _ in unique)
    return ForwardReport(case.base_currency, case.valuation_date, drawn, quantiles, projections, states,
                         time.perf_counter() - start)


def _venue(timeline: PathDays, name: str, drawn: Paths, unique: list[tuple[FloatArray, np.ndarray]]) -> VenueProjection:
    anchored = timeline.anchored
    venue = anchored.venues[name]
    book = venue_book(anchored, name, drawn.underlyings)
    mm_spec = venue.maintenance_margin
    why = unsupported(venue.initial_margin) if len(book) else None  # an empty book has no margin in any model
    if why is None and len(book) and mm_spec is not None and not isinstance(mm_spec, FractionOfInitial):
        why = unsupported(mm_spec)
    n_paths, n_days = drawn.n_paths, drawn.days
    im, mm, balance = (np.empty((n_paths, n_days + 1)) for _ in range(3))
    rows = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a path past floats: checked below
        growth = drawn.growth.reshape(-1, len(drawn.underlyings))
        prices = {u: anchored.market.prices[u] * growth[:, k] for k, u in enumerate(drawn.underlyings)}
        collateral = credited_collateral(anchored, name, prices).reshape(n_paths, n_days + 1) if why is None else None
        for d in range(n_days + 1):
            states, inverse = unique[d]
            inverse = inverse.reshape(-1)
            if why is None:
                cols = np.flatnonzero(book.live(d))
                i_d, m_d, v_d, rows = _vectorized(anchored, book.select(cols), states, d, rows)
                assert collateral is not None
                balance[:, d] = collateral[:, d] + v_d[inverse]
            else:
                i_d, m_d, v_d = _state_by_state(timeline, name, states, d)
                balance[:, d] = v_d[inverse]
            im[:, d], mm[:, d] = i_d[inverse], m_d[inverse]
        settled, expiries = _settlements(book, drawn)
        balance += settled
    for level, values in (("initial margin", im), ("maintenance margin", mm), ("margin balance", balance)):
        bad = np.argwhere(~np.isfinite(values))
        if bad.size:  # never shown as a number: say where it happened
            p, d = (int(x) for x in bad[0])
            raise ModelError(f"venues.{name}: the {level} on day {d} of path {p} is not finite (underlyings at "
                             f"{drawn.growth[p, d].tolist()} times today's prices): a path or a position too large to "
                             "compute with; draw fewer days or check the case's vols and quantities")
    note = "" if why is None else f"re-margined state by state on the full case: {why} is not vectorized"
    return VenueProjection(name, VECTORIZED if why is None else STATE_BY_STATE, im, mm, balance, expiries, note)


def _vectorized(case: Case, book: VenueBook, states: FloatArray, day: int,
                rows: int) -> tuple[FloatArray, FloatArray, FloatArray, int]:
    """IM, MM and the live book's value (P&L and options) at each of ``states`` on ``day``, and the
    scenario rows the venue's measures price (learned on the first day, to size the chunks)."""
    n = len(states)
    im, mm, value = np.zeros(n), np.zeros(n), np.zeros(n)
    if len(book) == 0:
        return im, mm, value, rows
    venue = case.venues[book.venue]
    mm_spec = venue.maintenance_margin
    step = min(n, 64) if rows == 0 else max(1, _CHUNK_BYTES // (8 * rows * len(book)))  # the first chunk learns the rows
    ids = frozenset(case.instruments.index)
    lo = 0
    while lo < n:
        st = price_states(book, states[lo:lo + step], day)
        batch = Batch(st, case.market, ids)
        i = margin(venue.initial_margin, batch)
        if mm_spec is None:
            m = i
        elif isinstance(mm_spec, FractionOfInitial):
            m = mm_spec.fraction * i
        else:
            m = margin(mm_spec, batch)
        long, short = st.option_values()
        im[lo:lo + step], mm[lo:lo + step] = i, m
        value[lo:lo + step] = st.unrealized_pnl() + short + (long if venue.credit_long_options else 0.0)
        rows = max(rows, batch.scenario_rows(), 1)
        lo += step
        step = max(1, _CHUNK_BYTES // (8 * rows * len(book)))
    return im, mm, value, rows


def _state_by_state(timeline: PathDays, venue: str, states: FloatArray, day: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """IM, MM and the balance (before settlements) at each state, each a full margin of the case on that day."""
    im, mm, balance = np.empty(len(states)), np.empty(len(states)), np.empty(len(states))
    for k, g in enumerate(states):
        h = venue_health(timeline.case_on(dict(zip(timeline.underlyings, g.tolist(), strict=True)), day), venue)
        im[k], mm[k], balance[k] = h.initial_margin, h.maintenance_margin, h.margin_balance
    return im, mm, balance


def _settlements(book: VenueBook, drawn: Paths) -> tuple[FloatArray, tuple[tuple[int, str], ...]]:
    """What the contracts expiring within the horizon add to the balance on each path and day
    (``health.days``: settled at the expiry date's prices, cash kept, coins valued at each day's price)."""
    n_paths, n_days = drawn.n_paths, drawn.days
    out = np.zeros((n_paths, n_days + 1))
    expiries = []
    for j in np.flatnonzero(book.expiry <= n_days):
        k = int(book.expiry[j])
        first = max(k, 1)
        expiries.append((first, book.ids[j]))
        one = book.select(np.array([j]))
        f, s = forwards(one, drawn.growth[:, k, :], k)
        f, s = f[:, 0], s[:, 0]
        m, q = book.multiplier[j], book.q[j]
        if book.is_option[j]:
            pay = q * m * np.maximum(book.cp[j] * (f - book.strike[j]), 0.0)
            coins = pay / s if book.inverse[j] else None
            cash = None if book.inverse[j] else pay
        elif book.code[j] == K.DELTA_ONE_INVERSE:
            cash, coins = None, m * (book.qe[j] - q / f)
        else:
            cash, coins = m * (f * q - book.qe[j]), None
        if cash is not None:
            out[:, first:] += cash[:, None]
        if coins is not None:  # held in the coin, worth each later day's price
            out[:, first:] += coins[:, None] * (book.spot0[j] * drawn.growth[:, first:, book.pu[j]])
    return out, tuple(sorted(expiries))


__all__ = ["ForwardReport", "VenueProjection", "forward_report", "project"]
