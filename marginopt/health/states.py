"""One venue's book at many market states of one day at once: pricing inputs, margin balance, collateral.

A state is a day ``d`` of a path and the underlyings' price ratios ``g`` to today. ``price_states``
gives, for ``N`` states, every pricing array ``price_inputs`` gives for one (CASE_FORMAT.md, Pricing
conventions), at the forwarded market of ``health.days`` (the valuation date ``t0 + d``, futures
converging, quoted futures keeping their annualised basis, options keeping their vols), as
``(N, J)`` arrays; ``States.inputs`` lays them out as one book of ``N J`` contracts (state-major),
which the scenario sets price in one call of the loss kernel: a scenario's moves are relative, the
same at every state, so the book of all states under the scenario set is the scenario-loss matrix of
every state side by side.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import ndtr

from marginopt.models import kernel_codes as K
from marginopt.models._kernels_numpy import _black76
from marginopt.models.case import Case
from marginopt.models.collateral import HaircutSchedule
from marginopt.models.enums import InstrumentKind, Settlement
from marginopt.models.instruments import Instrument
from marginopt.models.pricing import _SD_EXPIRY, PricingInputs
from marginopt.typing import FloatArray

NEVER = 1 << 30  # the expiry day of a perpetual or spot instrument

# How each contract's forward moves with its underlying (``health.days``):
_EXP, _BASIS, _RATIO, _SPOT = 0, 1, 2, 3  # S e^{rT}; S (p0/S0)^(T/T0); p0 g; S


@dataclass(frozen=True, eq=False)
class VenueBook:
    """A venue's held instruments (instrument-table order) and what pricing them at any state needs.

    Position rows are folded per instrument: ``q`` (net, what the margin sees), the long and short
    quantities (the options' value in the balance is split by side) and ``qe``, the sum over rows of
    ``q e`` (linear) or ``q / e`` (inverse), so the unrealized P&L of a column is ``m (F q - qe)`` or
    ``m (qe - q / F) S``, as ``models.equity`` sums it row by row.
    """

    venue: str
    ids: tuple[str, ...]
    items: tuple[Instrument, ...]
    q: FloatArray
    q_long: FloatArray
    q_short: FloatArray
    qe: FloatArray
    pu: np.ndarray  # index of each instrument's underlying in the path's underlyings
    spot0: FloatArray  # today's price of that underlying
    expiry: np.ndarray  # expiry day (NEVER for perpetuals and spot)
    rule: np.ndarray  # how the forward moves (_EXP, _BASIS, _RATIO, _SPOT)
    fwd_expiry: np.ndarray  # expiry day of the contract that sets the forward (an option's future, or its own)
    quote: FloatArray  # p0 of _BASIS and _RATIO rules
    sigma: FloatArray  # options' vols
    strike: FloatArray
    cp: FloatArray
    multiplier: FloatArray
    code: np.ndarray
    is_option: np.ndarray
    spot_like: np.ndarray
    inverse: np.ndarray
    kinds: tuple[str, ...]
    rate: float
    start: dt.date

    def __len__(self) -> int:
        return len(self.ids)

    def live(self, day: int) -> np.ndarray:
        """The columns in the book on ``day``: everything today, later what has not reached its expiry."""
        return np.ones(len(self), dtype=bool) if day == 0 else self.expiry > day

    def select(self, cols: np.ndarray) -> VenueBook:
        """The columns ``cols`` (indices) only."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if isinstance(v, np.ndarray):
                v = v[cols]
            elif isinstance(v, tuple):
                v = tuple(v[int(j)] for j in cols)
            out[name] = v
        return VenueBook(**out)  # type: ignore[arg-type]


def venue_book(anchored: Case, venue: str, path_underlyings: tuple[str, ...]) -> VenueBook:
    """``venue``'s held instruments in ``anchored`` (``MarketMoves(case).at({})``: every entry price given,
    quoted options at their implied vols), as ``price_states`` prices them."""
    pos, instruments, market = anchored.positions, anchored.instruments, anchored.market
    rows = [i for i, v in enumerate(pos.venue) if v == venue]
    held = {pos.instrument[i] for i in rows}
    items = tuple(inst for inst in instruments if inst.id in held)
    col = {inst.id: j for j, inst in enumerate(items)}
    n = len(items)
    q, q_long, q_short, qe = (np.zeros(n) for _ in range(4))
    entries = pos.entries()
    for i in rows:
        j, qi = col[pos.instrument[i]], float(pos.quantity[i])
        q[j] += qi
        if qi > 0:
            q_long[j] += qi
        else:
            q_short[j] += qi
        inst = items[j]
        if not inst.is_option:
            qe[j] += qi / entries[i] if inst.settlement is Settlement.INVERSE else qi * entries[i]
    start = anchored.valuation_date

    def days(inst: Instrument) -> int:
        return NEVER if inst.expiry is None else (inst.expiry - start).days

    rule, fwd_expiry, quote = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n)
    for j, inst in enumerate(items):
        f = instruments[inst.future] if inst.is_option and inst.future is not None else inst
        fwd_expiry[j] = days(f)
        if f.kind is InstrumentKind.OPTION or (f.kind is InstrumentKind.FUTURE and f.price is None):
            rule[j] = _EXP
        elif f.kind is InstrumentKind.FUTURE:
            rule[j] = _BASIS if fwd_expiry[j] > 0 else _RATIO
            quote[j] = f.price  # type: ignore[assignment]
        elif f.price is not None:
            rule[j], quote[j] = _RATIO, f.price
        else:
            rule[j] = _SPOT
    is_opt = np.array([inst.is_option for inst in items], dtype=bool)
    inverse = np.array([inst.settlement is Settlement.INVERSE for inst in items], dtype=bool)
    spot_like = np.array([inst.kind is InstrumentKind.SPOT for inst in items], dtype=bool)
    code = np.where(is_opt, np.where(inverse, K.OPTION_INVERSE, K.OPTION_LINEAR),
                    np.where(inverse, np.where(spot_like, K.NO_PNL, K.DELTA_ONE_INVERSE), K.DELTA_ONE_LINEAR)).astype(np.int64)
    sigma = np.array([(inst.vol if inst.vol is not None else market.vols[inst.underlying]) if inst.is_option else 0.0
                      for inst in items])
    return VenueBook(
        venue=venue, ids=tuple(inst.id for inst in items), items=items, q=q, q_long=q_long, q_short=q_short, qe=qe,
        pu=np.array([path_underlyings.index(inst.underlying) for inst in items], dtype=np.int64),
        spot0=np.array([market.prices[inst.underlying] for inst in items]),
        expiry=np.array([days(inst) for inst in items], dtype=np.int64), rule=rule, fwd_expiry=fwd_expiry, quote=quote,
        sigma=sigma, strike=np.array([inst.strike if inst.is_option else 1.0 for inst in items]),
        cp=np.array([1.0 if (inst.right is not None and inst.right.value == "call") else -1.0 for inst in items]),
        multiplier=np.array([inst.multiplier for inst in items]), code=code, is_option=is_opt, spot_like=spot_like,
        inverse=inverse, kinds=tuple(inst.kind.value for inst in items), rate=market.rate, start=start)


def forwards(book: VenueBook, growth: FloatArray, day: int) -> tuple[FloatArray, FloatArray]:
    """``(F, S)``: each contract's forward and its underlying's price at states ``growth`` (``(N, U)`` price
    ratios to today, the path's underlyings) on ``day``, ``(N, J)`` each."""
    g = growth[:, book.pu]
    s = book.spot0 * g
    f_years = np.maximum(book.fwd_expiry - day, 0) / 365.0
    t0 = book.fwd_expiry / 365.0
    f = np.empty_like(s)
    for rule in (_EXP, _BASIS, _RATIO, _SPOT):
        c = book.rule == rule
        if not c.any():
            continue
        if rule == _EXP:
            f[:, c] = s[:, c] * np.exp(book.rate * f_years[c])
        elif rule == _BASIS:
            f[:, c] = s[:, c] * (book.quote[c] / book.spot0[c]) ** (f_years[c] / t0[c])
        elif rule == _RATIO:
            f[:, c] = book.quote[c] * g[:, c]
        else:
            f[:, c] = s[:, c]
    return f, s


@dataclass(frozen=True, eq=False)
class States:
    """``N`` states of one day of a venue's live book: the pricing arrays ``(N, J)``."""

    book: VenueBook
    day: int
    forward: FloatArray
    spot: FloatArray
    years: FloatArray  # (J,): the same at every state of a day
    sd: FloatArray
    disc: FloatArray  # (J,)
    premium: FloatArray  # undiscounted Black-76 per unit (options; 0 elsewhere)
    value: FloatArray
    mark: FloatArray

    @property
    def n(self) -> int:
        return int(self.forward.shape[0])

    @cached_property
    def inputs(self) -> PricingInputs:
        """The ``N`` states as one book of ``N J`` contracts, state-major, for the scenario sets."""
        b, n = self.book, self.n
        unders = tuple(sorted({b.items[j].underlying for j in range(len(b))}))
        uidx = np.array([unders.index(inst.underlying) for inst in b.items], dtype=np.int64)
        opt = b.is_option
        disc_mult = self.disc * b.multiplier
        sd_opt = np.where(opt, self.sd, 1.0)
        d1 = np.where(opt, np.log(self.forward / b.strike) / sd_opt + 0.5 * sd_opt, 0.0)
        opt_dv = self.forward * disc_mult * b.cp * ndtr(b.cp * d1)
        f, s, m = self.forward, self.spot, b.multiplier
        delta = np.select(
            [b.code == K.DELTA_ONE_LINEAR, b.code == K.DELTA_ONE_INVERSE, b.code == K.OPTION_LINEAR, b.code == K.OPTION_INVERSE],
            [m * f / s, m / f, opt_dv / s, (opt_dv - self.value) / s], 0.0)
        inverse_face = b.inverse & ~opt & ~b.spot_like
        notional = np.where(inverse_face, m, np.abs(m * self.mark))

        def flat(a: np.ndarray) -> np.ndarray:
            out = np.ascontiguousarray(np.broadcast_to(a, (n, len(b))).reshape(-1))
            out.setflags(write=False)
            return out

        return PricingInputs(
            ids=b.ids * n, underlyings=unders, uidx=flat(uidx), code=flat(b.code), forward=flat(f), strike=flat(b.strike),
            sd=flat(self.sd), days=flat(self.years * 365.0), cp=flat(b.cp), disc_mult=flat(disc_mult), multiplier=flat(m),
            spot=flat(s), value=flat(self.value), mark=flat(self.mark), delta=flat(delta), notional=flat(notional),
            underlying_notional=flat(m * s), is_option=flat(opt), kinds=b.kinds * n)

    def spot_by_underlying(self) -> tuple[tuple[str, ...], FloatArray]:
        """The book's underlyings (sorted) and each one's price at each state, ``(N, U)``."""
        inp = self.inputs
        out = np.zeros((self.n, len(inp.underlyings)))
        uidx = inp.uidx[: len(self.book)]
        out[:, uidx] = self.spot
        return inp.underlyings, out

    def unrealized_pnl(self) -> FloatArray:
        """Futures, perpetuals and spot against their entry prices, ``(N,)``."""
        b = self.book
        linear, inverse = b.code == K.DELTA_ONE_LINEAR, b.code == K.DELTA_ONE_INVERSE
        pnl = np.zeros(self.n)
        if linear.any():
            pnl += (b.multiplier[linear] * (self.forward[:, linear] * b.q[linear] - b.qe[linear])).sum(axis=1)
        if inverse.any():
            c = inverse
            pnl += (b.multiplier[c] * (b.qe[c] - b.q[c] / self.forward[:, c]) * self.spot[:, c]).sum(axis=1)
        return pnl

    def option_values(self) -> tuple[FloatArray, FloatArray]:
        """The mark value of long options (>= 0) and of short ones (<= 0), ``(N,)`` each."""
        b = self.book
        v = np.where(b.is_option, self.value, 0.0)
        return v @ b.q_long, v @ b.q_short


def price_states(book: VenueBook, growth: FloatArray, day: int) -> States:
    """``book`` (its live columns) at states ``growth`` (``(N, U)``) on ``day``."""
    f, s = forwards(book, growth, day)
    opt = book.is_option
    years = np.where(book.expiry == NEVER, 0.0, np.maximum(book.expiry - day, 0) / 365.0)
    disc = np.where(opt, np.exp(-book.rate * years), 1.0)
    sd = np.broadcast_to(np.where(opt, np.maximum(book.sigma * np.sqrt(years), _SD_EXPIRY), 0.0), f.shape)
    premium = np.zeros_like(f)
    if opt.any():
        premium[:, opt] = _black76(f[:, opt], book.strike[opt], np.log(f[:, opt] / book.strike[opt]), sd[:, opt], book.cp[opt])
    value = np.where(opt, (disc * book.multiplier) * premium, book.multiplier * f)
    mark = np.where(opt, disc * premium, f)
    return States(book, day, f, s, years, np.ascontiguousarray(sd), disc, premium, value, mark)


def credited_collateral(case: Case, venue: str, prices: Mapping[str, FloatArray]) -> FloatArray:
    """The credited value of ``venue``'s posted collateral at each state (``prices``: each moved asset's
    price per state; others keep today's), after haircuts and concentration, as ``VenueBook.collateral``
    sums it."""
    v = case.venues[venue]
    n = len(next(iter(prices.values()))) if prices else 1
    after = []
    for a, qty in v.posted.items():
        p = prices.get(a, np.full(n, case.market.prices[a]))
        sched: HaircutSchedule = v.collateral[a]
        after.append(sched.values(np.asarray(qty * p, dtype=float)))
    if not after:
        return np.zeros(n)
    vals = np.column_stack(after)
    shares = np.array([v.concentration.get(a, 1.0) for a in v.posted])
    if not (shares < 1.0).any():
        return _sum_columns(vals)
    total = _largest_fixed_points(vals, shares)
    return _sum_columns(np.minimum(vals, shares * total[:, None]))


def _sum_columns(vals: FloatArray) -> FloatArray:
    """Row sums added left to right, as ``sum`` adds the collateral lines."""
    out = np.zeros(vals.shape[0])
    for k in range(vals.shape[1]):
        out = out + vals[:, k]
    return out


def _largest_fixed_points(v: FloatArray, s: FloatArray) -> FloatArray:
    """``collateral._largest_fixed_point`` for every row of ``v`` (``(N, A)``) at once."""
    n, a = v.shape
    kinks = np.sort(np.concatenate([np.zeros((n, 1)), v / s], axis=1), axis=1)  # repeated kinks change nothing
    f = np.minimum(v[:, None, :], s * kinks[:, :, None]).sum(axis=2)
    ok = f >= kinks * (1.0 - 1e-15)
    k = a - np.argmax(ok[:, ::-1], axis=1)  # the last kink where f(T) >= T
    rows = np.arange(n)
    at_end = k == a
    k_next = np.minimum(k + 1, a)
    lo, hi = kinks[rows, k], kinks[rows, k_next]
    below = s * (0.5 * (lo + hi))[:, None] < v
    aa = np.where(below, 0.0, v).sum(axis=1)
    bb = np.where(below, s, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(bb >= 1.0, hi, np.minimum(np.maximum(aa / (1.0 - bb), lo), hi))
    return np.where(at_end, f[rows, k], inner)
