"""Vectorized valuation inputs: forwards, Black-76 values, deltas and notionals per contract.

Conventions (CASE_FORMAT.md, Pricing conventions): T = calendar days / 365;
futures without a price are marked at ``S exp(rT)``, perpetuals at spot; options
are Black-76 on that forward (or on the price of the future they name),
discounted by ``exp(-rT)``. An option's vol is, in order: its ``vol`` column, the
vol implied by its ``price`` column, ``market.vols`` of its underlying.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from marginopt.errors import CaseError
from marginopt.models import kernel_codes as K
from marginopt.models._kernels_numpy import black76_array
from marginopt.models.enums import InstrumentKind, Settlement
from marginopt.models.instruments import Instrument, InstrumentSet
from marginopt.models.market import MarketData
from marginopt.typing import FloatArray, IntArray

# sigma * sqrt(T) of an option expiring today: its value is then intrinsic (the T -> 0 limit).
_SD_EXPIRY = 1e-12


@dataclass(frozen=True, eq=False)
class PricingInputs:
    """Per-contract arrays for a list of instruments (all length J, read-only)."""

    ids: tuple[str, ...]
    underlyings: tuple[str, ...]  # distinct underlyings, sorted
    uidx: IntArray  # index into ``underlyings``
    code: IntArray  # loss-kernel code, see _kernels
    forward: FloatArray  # F0: futures price / forward / spot
    strike: FloatArray  # options only (1 elsewhere)
    sd: FloatArray  # sigma * sqrt(T) (options only)
    days: FloatArray  # calendar days to expiry (0 for spot and perpetuals)
    cp: FloatArray  # +1 call, -1 put
    disc_mult: FloatArray  # exp(-rT) * multiplier
    multiplier: FloatArray
    spot: FloatArray  # S0 of the underlying
    value: FloatArray  # value now per contract, base currency (options: premium)
    mark: FloatArray  # mark price per unit of the instrument
    delta: FloatArray  # units of underlying per contract
    notional: FloatArray  # base currency per contract (fixed-rate margin)
    underlying_notional: FloatArray  # multiplier * S0
    is_option: np.ndarray
    kinds: tuple[str, ...] = ()  # instrument kind of each contract (spot, future, perpetual, option)

    def __len__(self) -> int:
        return len(self.ids)

    def delta_matrix(self) -> FloatArray:
        """(U, J): delta of each contract in units of each underlying."""
        d = np.zeros((len(self.underlyings), len(self.ids)))
        d[self.uidx, np.arange(len(self.ids))] = self.delta
        return d


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def price_inputs(
    ids: Sequence[str], instruments: InstrumentSet, market: MarketData, valuation_date: dt.date
) -> PricingInputs:
    items = [instruments[i] for i in ids]
    n = len(items)
    underlyings = tuple(sorted({inst.underlying for inst in items}))
    uidx = np.array([underlyings.index(inst.underlying) for inst in items], dtype=np.int64)
    spot = np.array([market.prices[inst.underlying] for inst in items], dtype=float)
    mult = np.array([inst.multiplier for inst in items], dtype=float)
    years = np.array([_years(inst, valuation_date) for inst in items], dtype=float)
    r = market.rate
    forward = np.array([_forward(inst, instruments, market, valuation_date) for inst in items], dtype=float)
    is_opt = np.array([inst.is_option for inst in items], dtype=bool)
    inverse = np.array([inst.settlement is Settlement.INVERSE for inst in items], dtype=bool)
    spot_like = np.array([inst.kind is InstrumentKind.SPOT for inst in items], dtype=bool)
    has_price = np.array([inst.price is not None for inst in items], dtype=bool)
    strike = np.array([inst.strike if inst.is_option else 1.0 for inst in items], dtype=float)
    cp = np.array([1.0 if (inst.right is not None and inst.right.value == "call") else -1.0 for inst in items], dtype=float)
    disc = np.where(is_opt, np.exp(-r * years), 1.0)
    sigma = np.array([_vol(inst, market, f, t, r) if inst.is_option else 0.0 for inst, f, t in zip(items, forward, years)],
                     dtype=float)
    sd = np.where(is_opt, np.maximum(sigma * np.sqrt(years), _SD_EXPIRY), 0.0)
    disc_mult = disc * mult

    premium = np.zeros(n)
    if is_opt.any():
        out = np.empty(int(is_opt.sum()))
        black76_array(forward[is_opt], strike[is_opt], sd[is_opt], cp[is_opt], out)
        premium[is_opt] = out
    value = np.where(is_opt, disc_mult * premium, mult * forward)
    mark = np.array([inst.price if inst.price is not None else 0.0 for inst in items], dtype=float)
    model_mark = np.where(is_opt, disc * premium, forward)
    mark = np.where(has_price, mark, model_mark)

    code = np.where(
        is_opt,
        np.where(inverse, K.OPTION_INVERSE, K.OPTION_LINEAR),
        np.where(inverse, np.where(spot_like, K.NO_PNL, K.DELTA_ONE_INVERSE), K.DELTA_ONE_LINEAR),
    ).astype(np.int64)

    # delta = d(P&L in base)/d(relative move) / S0, in units of underlying
    sd_opt = np.where(is_opt, sd, 1.0)
    d1 = np.where(is_opt, np.log(forward / strike) / sd_opt + 0.5 * sd_opt, 0.0)
    opt_dv = forward * disc_mult * cp * ndtr(cp * d1)  # F dV/dF
    delta = np.select(
        [code == K.DELTA_ONE_LINEAR, code == K.DELTA_ONE_INVERSE, code == K.OPTION_LINEAR, code == K.OPTION_INVERSE],
        [mult * forward / spot, mult / forward, opt_dv / spot, (opt_dv - value) / spot],
        0.0,
    )
    inverse_face = inverse & ~is_opt & ~spot_like
    notional = np.where(inverse_face, mult, np.abs(mult * mark))
    return PricingInputs(
        ids=tuple(ids),
        underlyings=underlyings,
        uidx=_ro(uidx),
        code=_ro(code),
        forward=_ro(forward),
        strike=_ro(strike),
        sd=_ro(sd),
        days=_ro(years * 365.0),
        cp=_ro(cp),
        disc_mult=_ro(disc_mult),
        multiplier=_ro(mult),
        spot=_ro(spot),
        value=_ro(value),
        mark=_ro(mark),
        delta=_ro(delta),
        notional=_ro(notional),
        underlying_notional=_ro(mult * spot),
        is_option=_ro(is_opt),
        kinds=tuple(inst.kind.value for inst in items),
    )


def check_option_prices(instruments: InstrumentSet, market: MarketData, valuation_date: dt.date) -> None:
    """Refuse, at load time, an option price no vol can reproduce (the vol is implied from it)."""
    for inst in instruments:
        if inst.is_option and inst.vol is None and inst.price is not None:
            implied_vol(inst, _forward(inst, instruments, market, valuation_date), _years(inst, valuation_date), market.rate)


def _years(inst: Instrument, valuation_date: dt.date) -> float:
    return 0.0 if inst.expiry is None else (inst.expiry - valuation_date).days / 365.0


def _forward(inst: Instrument, instruments: InstrumentSet, market: MarketData, valuation_date: dt.date) -> float:
    spot = market.prices[inst.underlying]
    if inst.kind is InstrumentKind.OPTION:
        if inst.future is not None:
            return _forward(instruments[inst.future], instruments, market, valuation_date)
        return spot * math.exp(market.rate * _years(inst, valuation_date))
    if inst.price is not None:
        return inst.price
    if inst.kind is InstrumentKind.FUTURE:
        return spot * math.exp(market.rate * _years(inst, valuation_date))
    return spot


def _vol(inst: Instrument, market: MarketData, forward: float, years: float, rate: float) -> float:
    if inst.vol is not None:
        return inst.vol
    if inst.price is not None:
        return implied_vol(inst, forward, years, rate)
    if inst.underlying in market.vols:
        return market.vols[inst.underlying]
    raise CaseError(inst.where, "instruments.vol",
                    f"a vol for option {inst.id} (this column, a price to imply it from, or market.vols.{inst.underlying})", None)


def implied_vol(inst: Instrument, forward: float, years: float, rate: float) -> float:
    """Black-76 vol that reproduces the option's price (bisection on a monotone function)."""
    assert inst.price is not None and inst.strike is not None
    cp = 1.0 if inst.right is not None and inst.right.value == "call" else -1.0
    disc = math.exp(-rate * years)
    target = inst.price / disc
    intrinsic = max(cp * (forward - inst.strike), 0.0)
    upper_bound = forward if cp > 0 else inst.strike
    if years <= 0 or not (intrinsic < target < upper_bound):
        raise CaseError(
            inst.where, "instruments.price",
            f"a price for option {inst.id} strictly between its discounted intrinsic value {disc * intrinsic:.6g} and "
            f"{disc * upper_bound:.6g} (no-arbitrage bounds; expiring today it needs a vol instead)", inst.price,
        )
    lnfk, sqt, strike = math.log(forward / inst.strike), math.sqrt(years), inst.strike

    def price(sig: float) -> float:
        sd = sig * sqt
        d1 = lnfk / sd + 0.5 * sd
        return cp * (forward * float(ndtr(cp * d1)) - strike * float(ndtr(cp * (d1 - sd))))

    lo, hi = 1e-6, 1.0
    while price(hi) < target:
        hi *= 2.0
        if hi > 1e3:
            raise CaseError(inst.where, "instruments.price", f"a price of option {inst.id} that a vol below 100000% reproduces", inst.price)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if price(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return 0.5 * (lo + hi)
