"""Market moves: the case at a market where some underlyings have moved, everything quoted on them moving too.

A move ``m`` of an underlying takes its price ``S`` to ``S (1 + m)``. What is quoted on it keeps its
relation to it (CASE_FORMAT.md, Market moves):

- a future or perpetual with a ``price`` keeps its basis as a ratio: ``F (1 + m)``, as a scan grid
  moves a future (its price ``S e^{rT}`` without a ``price`` moves the same way);
- an option with a ``price`` keeps the vol implied from it (the price itself is dropped and the option
  is priced off its moved forward), an option with a ``vol`` keeps it;
- collateral assets that are underlyings (BTC posted at a venue) move with them: a crash lowers the
  collateral as it lowers the book (wrong-way risk); other assets (USDC, T-bills) keep their prices.

Positions without an ``entry_price`` are taken as entered at today's mark, so their unrealized P&L
under a move is the move's P&L from today; with one, it is counted from that price.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from marginopt.errors import ArgumentError
from marginopt.models.case import Case
from marginopt.models.enums import InstrumentKind
from marginopt.models.pricing import _forward, _years, implied_vol


def underlyings(case: Case) -> tuple[str, ...]:
    """The assets the case's instruments are priced off, sorted (an option on a future counts its future's)."""
    return tuple(sorted({inst.underlying for inst in case.instruments}))


class MarketMoves:
    """The case at any move of its underlyings; what does not depend on the move is worked out once."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.underlyings = underlyings(case)
        self._anchored = _anchored(case)

    def at(self, moves: Mapping[str, float]) -> Case:
        """The case with each underlying in ``moves`` moved by its relative move (greater than -1)."""
        for u, m in moves.items():
            if u not in self.underlyings:
                raise ArgumentError(f"a move of {u!r}: expected an underlying of the case ({', '.join(self.underlyings)})")
            if not (np.isfinite(m) and m > -1.0):
                raise ArgumentError(f"a move of {u} by {m!r}: expected a finite relative move greater than -1 (-100%)")
        base = self._anchored
        growth = {u: 1.0 + float(m) for u, m in moves.items()}
        prices = {a: p * growth.get(a, 1.0) for a, p in base.market.prices.items()}
        items = tuple(inst if inst.price is None or inst.underlying not in growth
                      else dataclasses.replace(inst, price=inst.price * growth[inst.underlying])
                      for inst in base.instruments)
        market = dataclasses.replace(base.market, prices=MappingProxyType(prices))
        return dataclasses.replace(base, market=market, instruments=dataclasses.replace(base.instruments, items=items))


def anchored(case: Case) -> Case:
    """The case as every market move starts from it (``_anchored``): quoted option prices as the vols
    they imply, delta-one positions with an entry price; its margin is the case's."""
    return _anchored(case)


def _anchored(case: Case) -> Case:
    """The same case with every quoted option price replaced by its implied vol and every delta-one
    position's entry price given (today's mark where the case gives none): unchanged at no move."""
    items = []
    for inst in case.instruments:
        if inst.is_option and inst.price is not None and inst.vol is None:
            fwd = _forward(inst, case.instruments, case.market, case.valuation_date)
            inst = dataclasses.replace(inst, price=None, vol=implied_vol(inst, fwd, _years(inst, case.valuation_date),
                                                                         case.market.rate))
        items.append(inst)
    instruments = dataclasses.replace(case.instruments, items=tuple(items))
    pos = case.positions
    entry = pos.entries().copy()
    for i, iid in enumerate(pos.instrument):
        inst = case.instruments[iid]
        if np.isnan(entry[i]) and inst.kind is not InstrumentKind.OPTION:
            entry[i] = _forward(inst, case.instruments, case.market, case.valuation_date)
    entry.setflags(write=False)
    return dataclasses.replace(case, instruments=instruments, positions=dataclasses.replace(pos, entry_price=entry))
