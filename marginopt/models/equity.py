"""A venue's equity (margin balance): credited collateral, unrealized P&L and the mark value of options.

- Futures, perpetuals and spot count their unrealized P&L against each position row's entry price
  (today's mark where none is given, so 0 today): ``q m (F - e)`` for a linear contract, and
  ``q face (1/e - 1/F) S`` for an inverse one (its P&L is in coin, worth ``S`` each).
- Options count at their mark value ``q V``: a short option is a liability at every venue, a long one
  adds its value where the venue credits it (``credit_long_options``, on by default).
- Collateral counts its credited value (after haircuts and concentration), as the margin report's
  ``collateral_value``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from marginopt.models import kernel_codes as K
from marginopt.models.book import VenueBook


@dataclass(frozen=True)
class VenueEquity:
    collateral: float  # credited value of posted collateral
    unrealized_pnl: float  # futures, perpetuals and spot against their entry prices
    long_options: float  # mark value of long options (>= 0), counted or not
    short_options: float  # mark value of short options (<= 0)
    long_options_counted: bool

    @property
    def option_value(self) -> float:
        """What options add to equity: short options, and long ones where the venue credits them."""
        return self.short_options + (self.long_options if self.long_options_counted else 0.0)

    @property
    def margin_balance(self) -> float:
        return self.collateral + self.unrealized_pnl + self.option_value

    def to_dict(self) -> dict[str, Any]:
        return {"margin_balance": self.margin_balance, "collateral": self.collateral,
                "unrealized_pnl": self.unrealized_pnl, "option_value": self.option_value,
                "long_option_value": self.long_options, "short_option_value": self.short_options,
                "long_options_counted": self.long_options_counted}


def delta_one_pnl(code: np.ndarray, mult: np.ndarray, entry: np.ndarray, mark: np.ndarray, spot: np.ndarray) -> np.ndarray:
    """P&L per contract of futures, perpetuals and spot entered at ``entry`` and marked at ``mark`` (0 for any
    other kernel code): ``m (F - e)`` linear, ``face (1/e - 1/F) S`` inverse (coin P&L worth the spot each)."""
    out = np.zeros(len(code))
    linear, inverse = code == K.DELTA_ONE_LINEAR, code == K.DELTA_ONE_INVERSE
    out[linear] = mult[linear] * (mark[linear] - entry[linear])
    i = inverse  # only there: an option's mark (not in this sum) may be 0
    out[i] = mult[i] * (1.0 / entry[i] - 1.0 / mark[i]) * spot[i]
    return out


def venue_equity(book: VenueBook, collateral: float) -> VenueEquity:
    """The equity of ``book``'s venue given its credited collateral, from the case's position rows there."""
    pos = book.case.positions
    rows = [i for i, v in enumerate(pos.venue) if v == book.venue.name]
    if not rows:
        return VenueEquity(collateral, 0.0, 0.0, 0.0, book.venue.credit_long_options)
    cols = np.fromiter((book.column(pos.instrument[i]) for i in rows), dtype=np.int64, count=len(rows))
    q = pos.quantity[rows]
    inp = book.inputs
    code, mark, mult, spot = inp.code[cols], inp.mark[cols], inp.multiplier[cols], inp.spot[cols]
    entry = pos.entries()[rows]
    entry = np.where(np.isnan(entry), mark, entry)
    pnl = q * delta_one_pnl(code, mult, entry, mark, spot)
    option = inp.is_option[cols]
    value = np.where(option, q * inp.value[cols], 0.0)
    return VenueEquity(collateral, float(pnl.sum()), float(value[value > 0].sum()), float(value[value < 0].sum()),
                       book.venue.credit_long_options)
