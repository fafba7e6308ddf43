"""Pricing: the normal CDF, Black-76, forwards, deltas, implied vols and inverse contracts."""

from __future__ import annotations

import datetime as dt
import math
from types import MappingProxyType

import numpy as np
import pytest
from scipy.special import ndtr

from marginopt.models import _kernels as K
from marginopt.models.enums import InstrumentKind, Right, Settlement
from marginopt.models.instruments import Instrument, InstrumentSet
from marginopt.models.market import MarketData
from marginopt.models.pricing import implied_vol, price_inputs

VAL = dt.date(2026, 11, 20)


def bs_reference(s: float, k: float, t: float, r: float, sigma: float, call: bool) -> float:
    """Black-Scholes with math.erf: an implementation independent of the kernel."""
    d1 = (math.log(s / k) + (r + 0.5 * sigma**2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    n = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # noqa: E731
    if call:
        return s * n(d1) - k * math.exp(-r * t) * n(d2)
    return k * math.exp(-r * t) * n(-d2) - s * n(-d1)


def test_ncdf_matches_scipy_to_machine_precision():
    x = np.concatenate([np.linspace(-40, 40, 200_001), np.random.default_rng(0).normal(0, 3, 200_000)])
    out = np.empty_like(x)
    K.ncdf_array(x, out)
    assert np.abs(out - ndtr(x)).max() < 3e-16
    tail = (x < -5) & (ndtr(x) > 1e-300)
    rel = np.abs(out[tail] - ndtr(x[tail])) / ndtr(x[tail])
    assert rel.max() < 1e-9


def test_black76_reproduces_hull_example():
    # Hull, Options, Futures and Other Derivatives, Example 15.6: S=42, K=40, r=10%,
    # sigma=20%, T=0.5: call 4.76, put 0.81. Black-76 on F = S e^{rT}, discounted.
    f, disc = 42 * math.exp(0.05), math.exp(-0.05)
    out = np.empty(2)
    sd = 0.2 * math.sqrt(0.5)
    K.black76_array(np.array([f, f]), np.array([40.0, 40.0]), np.array([sd, sd]), np.array([1.0, -1.0]), out)
    assert disc * out[0] == pytest.approx(4.76, abs=0.005)
    assert disc * out[1] == pytest.approx(0.81, abs=0.005)
    assert disc * out[0] == pytest.approx(bs_reference(42, 40, 0.5, 0.1, 0.2, True), rel=1e-13)


def test_black76_agrees_with_independent_formula_and_parity():
    rng = np.random.default_rng(1)
    n = 2000
    s, k = rng.uniform(50, 150, n), rng.uniform(40, 200, n)
    t, r, sig = rng.uniform(1 / 365, 2, n), rng.uniform(-0.01, 0.08, n), rng.uniform(0.05, 1.5, n)
    f, sd = s * np.exp(r * t), sig * np.sqrt(t)
    call, put = np.empty(n), np.empty(n)
    K.black76_array(f, k, sd, np.ones(n), call)
    K.black76_array(f, k, sd, -np.ones(n), put)
    disc = np.exp(-r * t)
    ref = np.array([bs_reference(*args, True) for args in zip(s, k, t, r, sig)])
    assert np.abs(disc * call - ref).max() < 1e-11
    assert np.abs(call - put - (f - k)).max() < 1e-10  # put-call parity on the forward


def _set(*items: Instrument) -> InstrumentSet:
    return InstrumentSet(tuple(items), MappingProxyType({x.id: i for i, x in enumerate(items)}))


MARKET = MarketData("USD", MappingProxyType({"BTC": 50000.0, "USD": 1.0}), MappingProxyType({"BTC": 0.5}), rate=0.05)


def test_forward_marks_and_deltas():
    exp = VAL + dt.timedelta(days=73)  # T = 0.2
    items = _set(
        Instrument("F", InstrumentKind.FUTURE, "BTC", expiry=exp, multiplier=2.0),
        Instrument("FP", InstrumentKind.FUTURE, "BTC", expiry=exp, price=51000.0),
        Instrument("P", InstrumentKind.PERPETUAL, "BTC"),
        Instrument("INV", InstrumentKind.PERPETUAL, "BTC", multiplier=100.0, settlement=Settlement.INVERSE),
        Instrument("C", InstrumentKind.OPTION, "BTC", expiry=exp, strike=50000.0, right=Right.CALL),
        Instrument("CF", InstrumentKind.OPTION, "BTC", expiry=exp, strike=50000.0, right=Right.CALL, future="FP"),
    )
    inp = price_inputs(list(items.index), items, MARKET, VAL)
    fwd = 50000 * math.exp(0.05 * 0.2)
    assert inp.forward[0] == pytest.approx(fwd, rel=1e-15)
    assert inp.forward[1] == 51000.0 and inp.forward[2] == 50000.0
    assert inp.forward[5] == 51000.0  # option on a future is priced off the future's price
    assert inp.value[4] == pytest.approx(bs_reference(50000, 50000, 0.2, 0.05, 0.5, True), rel=1e-12)
    # deltas in units of underlying: a future of multiplier 2 moves like 2 * F/S coins
    assert inp.delta[0] == pytest.approx(2 * fwd / 50000, rel=1e-14)
    assert inp.delta[3] == pytest.approx(100 / 50000, rel=1e-14)  # inverse: face / price
    d1 = (math.log(50000 / 50000) + (0.05 + 0.125) * 0.2) / (0.5 * math.sqrt(0.2))
    assert inp.delta[4] == pytest.approx(0.5 * (1 + math.erf(d1 / math.sqrt(2))), rel=1e-12)
    assert list(inp.notional[:4]) == pytest.approx([2 * fwd, 51000, 50000, 100])


def test_implied_vol_round_trip():
    exp = VAL + dt.timedelta(days=146)
    t = 146 / 365
    price = bs_reference(50000, 55000, t, 0.05, 0.73, False)
    inst = Instrument("X", InstrumentKind.OPTION, "BTC", expiry=exp, strike=55000.0, right=Right.PUT, price=price)
    assert implied_vol(inst, 50000 * math.exp(0.05 * t), t, 0.05) == pytest.approx(0.73, abs=1e-10)


def test_option_expiring_today_is_worth_intrinsic():
    items = _set(
        Instrument("C", InstrumentKind.OPTION, "BTC", expiry=VAL, strike=45000.0, right=Right.CALL),
        Instrument("P", InstrumentKind.OPTION, "BTC", expiry=VAL, strike=45000.0, right=Right.PUT),
    )
    inp = price_inputs(["C", "P"], items, MARKET, VAL)
    assert list(inp.value) == pytest.approx([5000.0, 0.0], abs=1e-9)


def test_inverse_perpetual_loss_by_hand(margin_of):
    # Face 100 USD, 1000 contracts long, BTC 50000. At -10%: P&L in coin =
    # 100 * 1000 * (1/50000 - 1/45000) = -0.222222 BTC; loss at today's price =
    # 0.222222 * 50000 = 11111.11. At +10%: 100000 * (1/50000 - 1/55000) = +0.181818 BTC.
    report = margin_of(
        market={"prices": {"BTC": 50000.0}},
        instruments=[{"id": "INV", "kind": "perpetual", "underlying": "BTC", "multiplier": 100, "settlement": "inverse"}],
        positions=[{"venue": "v", "instrument": "INV", "quantity": 1000}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {"kind": "grid", "price_moves": [-0.1, 0.1]}}}},
    )
    assert report["v"].initial_margin == pytest.approx(100000 * (1 / 45000 - 1 / 50000) * 50000, rel=1e-12)
    assert report["v"].initial_margin == pytest.approx(11111.111111, rel=1e-9)


def test_inverse_option_loss_is_coin_pnl_at_todays_price(write_case):
    # Inverse call: value in coin V/S. Under +10%: loss = -(V1/S1 - V0/S0) * S0.
    import marginopt
    from marginopt.models import VenueBook

    path = write_case(
        market={"prices": {"BTC": 50000.0}, "vols": {"BTC": 0.6}},
        instruments=[{"id": "C", "kind": "option", "underlying": "BTC", "expiry": "2027-02-01", "strike": 55000,
                      "right": "call", "settlement": "inverse"}],
        positions=[{"venue": "v", "instrument": "C", "quantity": 1}],
        venues={"v": {"initial_margin": {"kind": "scenario_max", "scenarios": {"kind": "grid", "price_moves": [0.1]}}}},
    )
    book = VenueBook(marginopt.load_case(path), "v")
    t = (dt.date(2027, 2, 1) - VAL).days / 365
    v0, v1 = bs_reference(50000, 55000, t, 0.0, 0.6, True), bs_reference(55000, 55000, t, 0.0, 0.6, True)
    expected = -(v1 / 55000 - v0 / 50000) * 50000
    losses = book.scenarios(book.venue.initial_margin.scenarios)
    assert losses.matrix[0, 0] == pytest.approx(expected, rel=1e-12)


def test_numpy_kernel_equals_compiled_kernel_on_every_instrument_code():
    """The plain-numpy loss kernel (small books, no numba start-up) gives the compiled kernel's matrix."""
    from marginopt.models import _kernels_numpy as KN
    from marginopt.models import kernel_codes as codes

    rng = np.random.default_rng(7)
    n_s, per_block = 400, 6
    blocks = [(codes.DELTA_ONE_LINEAR, 0), (codes.DELTA_ONE_INVERSE, 1), (codes.NO_PNL, 1),
              (codes.OPTION_LINEAR, 0), (codes.OPTION_LINEAR, 1), (codes.OPTION_INVERSE, 1)]
    n_j = per_block * len(blocks)
    growth = np.exp(rng.normal(0.0, 0.2, (n_s, 2)))
    vol_move = rng.uniform(-0.5, 0.8, (n_s, 2))
    growth[:5], vol_move[:5] = 1.0, 0.0  # nothing moved: exactly no loss, both ways
    block_start = np.arange(len(blocks) + 1, dtype=np.int64) * per_block
    block_code = np.array([c for c, _ in blocks], dtype=np.int64)
    block_u = np.array([u for _, u in blocks], dtype=np.int64)
    cols = rng.permutation(n_j).astype(np.int64)
    f0 = rng.uniform(50, 150, n_j)
    strike = f0 * rng.uniform(0.7, 1.3, n_j)
    args = (block_start, block_code, block_u, cols, f0, strike, np.log(f0 / strike), rng.uniform(0.05, 0.8, n_j),
            rng.uniform(0.5, 1.5, n_j), rng.uniform(0.0, 0.02, n_j), rng.uniform(0.9, 1.0, n_j),
            rng.choice([-1.0, 1.0], n_j), rng.uniform(1, 20, n_j))
    compiled, plain = np.empty((n_s, n_j)), np.empty((n_s, n_j))
    K.loss_kernel(compiled, growth, np.log(growth), vol_move, *args)
    KN.loss_kernel(plain, growth, np.log(growth), vol_move, *args)
    assert np.abs(plain - compiled).max() < 1e-11 * np.abs(compiled).max()
    assert not plain[:5].any() and not compiled[:5].any()
    assert not plain[:, cols[2 * per_block:3 * per_block]].any()  # a coin held in its own coin
    out_c, out_p = np.empty(n_j), np.empty(n_j)
    K.black76_array(f0, strike, args[7], args[11], out_c)
    KN.black76_array(f0, strike, args[7], args[11], out_p)
    assert np.abs(out_p - out_c).max() < 1e-12 * f0.max()
