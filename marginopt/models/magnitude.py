"""The magnitude guard: the one bound on every number a user sends, and the finiteness check of what is shown.

Every number of a case (quantities, prices, multipliers, strikes, vols, posted and treasury
quantities, hedge bounds and costs, limits, tier bounds, scenario moves, matrix losses) and
every traded quantity (``whatif --trade``, the what-if and route functions) must satisfy
``|x| <= MAX_MAGNITUDE`` = 1e15. Why 1e15:

- below 2**53 (about 9.007e15) every whole number is exact in a double, so a count of
  contracts or units up to the bound is carried without rounding;
- the longest product a margin computation forms is quantity x multiplier x price x
  (1 + price move), at most 1e60 per position; summed over 1e10 positions or scenarios
  and squared (parametric VaR's q' Cov q) it stays near 1e140, far below the largest
  double (1.8e308): no intermediate can overflow to infinity, and no result becomes NaN;
- it still admits any real book: 1e15 units of the cheapest token, or a tier bound or
  limit of 1e15 in a weak base currency.

Numbers that are divided by (prices, strikes, vols: an inverse contract's P&L is
``1 / price``, Black-76 divides by the vol and by the strike) must also be at least
``MIN_SCALE`` = 1e-15 = 1 / MAX_MAGNITUDE, so their reciprocals obey the same bound.

Beyond the inputs, a computed margin, equity or cost that is not finite all the same is
refused by ``require_finite`` with the input it came from, never shown as a number.

Amounts: a position's gross value, ``|quantity| x multiplier x price`` of its underlying (for an
inverse future or perpetual ``|quantity| x multiplier``, the face value in base currency), is an
amount of base currency, and it must also be at most ``MAX_MAGNITUDE`` (``gross_value_error``). Two
factors within the bound make an amount up to 1e30, which overflows nothing, but a double carries an
amount to a fraction of a unit only below 2**53 (about 9.007e15): one BTC perpetual at 91,000 held
1e15 times is a margin of 9.1e18 shown as 9,100,000,000,000,128,000.00, the last digits round-off
passed off as money, and no solver works to 1e-8 of that with costs of a few dollars.
"""

from __future__ import annotations

import enum
import math
from typing import Any

from marginopt.errors import CaseError, Location

MAX_MAGNITUDE = 1e15
MIN_SCALE = 1.0 / MAX_MAGNITUDE


class Bound(enum.Enum):
    """Which magnitude bound a number is read under."""

    MAGNITUDE = "magnitude"  # |x| <= MAX_MAGNITUDE
    SCALE = "scale"  # MIN_SCALE <= |x| <= MAX_MAGNITUDE: a price, strike or vol (divided by)
    NONE = "none"  # an identifier, not an amount (a random seed)


def within(x: float, bound: Bound = Bound.MAGNITUDE) -> bool:
    """Whether a finite ``x`` obeys ``bound`` (zero is below every scale: a price is also > 0 by its range)."""
    if bound is Bound.NONE:
        return True
    size = abs(x)
    return size <= MAX_MAGNITUDE and (bound is not Bound.SCALE or size >= MIN_SCALE)


def describe(bound: Bound) -> str:
    """The bound as the tail of an 'expected ...' text."""
    if bound is Bound.SCALE:
        return f"within [{MIN_SCALE:g}, {MAX_MAGNITUDE:g}] in magnitude"
    if bound is Bound.MAGNITUDE:
        return f"at most {MAX_MAGNITUDE:g} in magnitude"
    return ""


def trade_quantity(text: str | float, where: Location | None, field: str) -> float:
    """A traded quantity as given (text or a number): finite and within the magnitude bound."""
    expected = f"a finite number of contracts {describe(Bound.MAGNITUDE)}"
    try:
        qty = float(text)
    except (TypeError, ValueError, OverflowError):
        raise CaseError(where, field, expected, text) from None
    if not math.isfinite(qty) or not within(qty):
        raise CaseError(where, field, expected, text)
    return qty


def exposure_per_contract(instrument: Any, prices: Any) -> float:
    """Base currency per contract a position's gross value counts: the face value of an inverse future or
    perpetual (its ``multiplier``), else ``multiplier`` units of the underlying at its price."""
    face = instrument.settlement.value == "inverse" and instrument.kind.value in ("future", "perpetual")
    return float(instrument.multiplier) if face else float(instrument.multiplier) * float(prices[instrument.underlying])


def gross_value_error(quantity: float, instrument: Any, prices: Any, currency: str) -> str | None:
    """``None`` when ``|quantity|`` contracts of ``instrument`` are worth at most ``MAX_MAGNITUDE`` of base
    currency; else what was expected, for a ``CaseError`` naming the quantity's row and field."""
    per = exposure_per_contract(instrument, prices)
    value = abs(quantity) * per
    if value <= MAX_MAGNITUDE:
        return None
    how = (f"{abs(quantity):g} x face value {per:g}" if per == instrument.multiplier and instrument.settlement.value == "inverse"
           else f"{abs(quantity):g} x multiplier {float(instrument.multiplier):g} x {instrument.underlying} price "
                f"{float(prices[instrument.underlying]):g}")
    return (f"a position worth at most {MAX_MAGNITUDE:g} {currency} gross ({how} = {value:.3g} {currency}): past that "
            "an amount is not carried to a fraction of a unit (marginopt.models.magnitude)")


def require_finite(value: float, where: Location | None, field: str, cause: str) -> float:
    """``value`` when it is finite; otherwise a located error saying which input ``cause`` made it so."""
    if math.isfinite(value):
        return value
    raise CaseError(where, field, f"a finite amount: {cause} is too large to compute with", value)


def largest_position(ids: Any, q: Any, notional: Any) -> str:
    """The position with the largest gross value, as text naming it (the likely cause of an overflow)."""
    import numpy as np

    gross = np.abs(np.asarray(q, dtype=float) * np.asarray(notional, dtype=float))
    gross = np.where(np.isnan(gross), np.inf, gross)
    if gross.size == 0:
        return "the venue's collateral"
    j = int(np.argmax(gross))
    return f"the position of {q[j]:g} contracts of {ids[j]}"
