"""The case on a day of a path: the valuation date moved on, prices moved, expired contracts settled.

This is the forward projection's definition of time passing (CASE_FORMAT.md, Forward margin), one
market state at a time, as a ``Case`` the rest of marginopt prices and margins in full. The
vectorized projection (``health.batch``) computes the same numbers for many states at once; this
module is its reference (the tests compare them) and its way for a margin model it cannot vectorize.

On day ``d`` of a path (calendar days; underlying ``u`` at ``S_u(d) = S_u(0) g_u(d)``):

- the valuation date is ``t0 + d``: every option's time to expiry ``T`` shrinks, and with it its time
  value; collateral assets that are underlyings move with them (``MarketMoves``), others keep their price;
- a future without a ``price`` is marked at ``S e^{rT}``, so it converges to spot at expiry; one with a
  ``price`` ``p0`` (at ``T0``) keeps its annualised basis ``b = ln(p0 / S0) / T0``: ``F = S e^{bT}``,
  which is the quote's ratio today and spot at expiry;
- a perpetual or spot instrument with a ``price`` keeps its ratio to the underlying (``p0 g``);
- an option keeps its vol (a quoted option the vol implied from its quote today) and is priced off its
  forward (or its future's) at the shrunken ``T``;
- an instrument whose expiry is on or before the day's date (from day 1 on) has **settled** at its
  expiry date's prices: it leaves the book and the margin, and its final value enters the balance.
  An option pays ``q m max(cp (F_E - K), 0)`` (``F_E`` its forward on the expiry date: the spot, or its
  future's price), a future ``q m (F_E - e)`` against its entry price. A linear contract pays base
  currency, held as cash from then on; an inverse one pays coin (``q m max(cp (F_E - K), 0) / S_E``
  for an option, ``q m (1/e - 1/F_E)`` for a future), held and valued at each later day's price.
  Neither takes a haircut: a realized P&L counts in the balance as an unrealized one does.

Not modelled: funding of perpetuals, interest on cash, vols moving along a path, and the scenario sets
of the margin models themselves (a historical window does not roll forward with the path's days).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from marginopt.models.case import Case
from marginopt.models.enums import InstrumentKind, Settlement
from marginopt.models.instruments import Instrument
from marginopt.models.moves import MarketMoves, underlyings
from marginopt.models.pricing import price_inputs


def expiry_day(inst: Instrument, start: dt.date) -> int | None:
    """The day of the path on which ``inst`` expires (0: today), or None for a perpetual or spot."""
    return None if inst.expiry is None else (inst.expiry - start).days


def live_on(inst: Instrument, start: dt.date, day: int) -> bool:
    """In the book on ``day``: today everything is; later, what has not reached its expiry date."""
    k = expiry_day(inst, start)
    return day == 0 or k is None or k > day


def quoted_future_price(p0: float | np.ndarray, s0: float, s: float | np.ndarray, years: float | np.ndarray,
                        years0: float) -> float | np.ndarray:
    """A quoted future's price at spot ``s`` with ``years`` left: the annualised basis of its quote ``p0``
    at spot ``s0`` and ``years0`` kept (``s (p0 / s0)^(T / T0)``); the ratio kept where it expires today."""
    if years0 <= 0.0:
        return p0 * (s / s0)
    return s * (p0 / s0) ** (years / years0)


@dataclass(frozen=True)
class Settled:
    """What a venue's expired contracts have paid by a day: cash in base currency, coins per underlying."""

    cash: float = 0.0
    coins: Mapping[str, float] = field(default_factory=dict)

    def value(self, prices: Mapping[str, float]) -> float:
        return self.cash + sum(c * prices[u] for u, c in self.coins.items())


class PathDays:
    """The case on any day of a path; what does not depend on the day is worked out once."""

    def __init__(self, case: Case) -> None:
        self.anchored = MarketMoves(case).at({})  # quoted options at their implied vols, every entry price given
        self.underlyings = underlyings(case)
        self.start = case.valuation_date

    def case_on(self, growth: Mapping[str, float], day: int) -> Case:
        """The case on ``day`` at prices ``S_u(0) growth[u]``, its positions the live ones (hedge candidates
        dropped: they change no margin and may have expired)."""
        base = self.anchored
        date = self.start + dt.timedelta(days=day)
        prices0 = base.market.prices
        prices = {a: p * growth.get(a, 1.0) for a, p in prices0.items()}
        items = tuple(self._quoted(inst, prices0, prices, growth, day) for inst in base.instruments)
        pos = base.positions
        keep = np.array([i for i, iid in enumerate(pos.instrument) if live_on(base.instruments[iid], self.start, day)],
                        dtype=np.intp)
        return dataclasses.replace(
            base, valuation_date=date, market=dataclasses.replace(base.market, prices=MappingProxyType(prices)),
            instruments=dataclasses.replace(base.instruments, items=items), positions=pos.rows(keep), hedges=())

    def _quoted(self, inst: Instrument, prices0: Mapping[str, float], prices: Mapping[str, float],
                growth: Mapping[str, float], day: int) -> Instrument:
        if inst.price is None or inst.is_option:  # quoted options carry their implied vol instead (anchored)
            return inst
        if inst.kind is InstrumentKind.FUTURE:
            assert inst.expiry is not None
            left = max((inst.expiry - self.start).days - day, 0) / 365.0
            price = quoted_future_price(inst.price, prices0[inst.underlying], prices[inst.underlying], left,
                                        (inst.expiry - self.start).days / 365.0)
            return dataclasses.replace(inst, price=float(price))
        return dataclasses.replace(inst, price=inst.price * growth.get(inst.underlying, 1.0))

    def settled(self, path: np.ndarray, day: int, venue: str) -> Settled:
        """What ``venue``'s contracts expired by ``day`` of ``path`` (``(days + 1, U)`` growth, columns in
        ``self.underlyings`` order) have paid, each at its expiry date's prices."""
        if day == 0:
            return Settled()
        base = self.anchored
        pos = base.positions
        cash, coins = 0.0, dict.fromkeys(self.underlyings, 0.0)
        for i, (v, iid) in enumerate(zip(pos.venue, pos.instrument, strict=True)):
            inst = base.instruments[iid]
            if v != venue or live_on(inst, self.start, day):
                continue
            k = max(expiry_day(inst, self.start) or 0, 0)
            then = self.case_on(dict(zip(self.underlyings, path[k].tolist(), strict=True)), k)
            inp = price_inputs((iid,), then.instruments, then.market, then.valuation_date)
            q, m, f = float(pos.quantity[i]), inst.multiplier, float(inp.forward[0])
            if inst.is_option:
                assert inst.strike is not None and inst.right is not None
                cp = 1.0 if inst.right.value == "call" else -1.0
                pay = q * m * max(cp * (f - inst.strike), 0.0)
                if inst.settlement is Settlement.INVERSE:
                    coins[inst.underlying] += pay / then.market.prices[inst.underlying]
                else:
                    cash += pay
            else:
                e = float(pos.entries()[i])
                if inst.settlement is Settlement.INVERSE:
                    coins[inst.underlying] += q * m * (1.0 / e - 1.0 / f)
                else:
                    cash += q * m * (f - e)
        return Settled(cash, {u: c for u, c in coins.items() if c != 0.0})

    def growth_of(self, path: np.ndarray, day: int) -> dict[str, float]:
        return dict(zip(self.underlyings, path[day].tolist(), strict=True))


def years_left(inst: Instrument, start: dt.date, day: int) -> float:
    """Time to expiry on ``day`` in years (0 for a perpetual or spot, and once expired)."""
    k = expiry_day(inst, start)
    return 0.0 if k is None else max(k - day, 0) / 365.0


__all__ = ["PathDays", "Settled", "expiry_day", "live_on", "quoted_future_price", "years_left"]
