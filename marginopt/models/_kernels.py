"""Compiled kernels for the scenario-loss matrix.

The normal CDF is evaluated with W. J. Cody's rational Chebyshev approximations
of erfc (Math. Comp. 23, 1969, pp. 631-638: |x| < 0.46875, up to 4, above 4)
around an inlined polynomial exp. Neither uses a data-dependent call or
branch LLVM cannot turn into a select, so the loops vectorize (AVX2/AVX-512);
libm's erfc does not vectorize and costs about 16 ns a call here. Absolute error
against scipy.special.ndtr is below 3e-16 (tests/test_pricing.py).

``error_model='numpy'`` drops Python's ZeroDivisionError check, which would
otherwise stop vectorization; every division here has a non-zero denominator.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np
from numba import types
from numba.extending import intrinsic

from marginopt.models.kernel_codes import DELTA_ONE_INVERSE, DELTA_ONE_LINEAR, NO_PNL, OPTION_INVERSE

# Fast-math without 'nnan'/'ninf': inputs are validated finite, but LLVM must not
# assume it when folding comparisons.
_FLAGS = {"nsz", "arcp", "contract", "afn", "reassoc"}
_JIT: dict[str, Any] = dict(fastmath=_FLAGS, error_model="numpy", cache=True)

# erf on |x| < 0.46875: x * A(x^2) / B(x^2)
_A0, _A1, _A2, _A3, _A4 = 3.1611237438705656, 113.864154151050156, 377.485237685302021, 3209.37758913846947, 0.185777706184603153
_B0, _B1, _B2, _B3 = 23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062
# erfc on [0.46875, 4]: exp(-x^2) * C(x) / D(x)
_C = (0.564188496988670089, 8.88314979438837594, 66.1191906371416295, 298.635138197400131, 881.95222124176909,
      1712.04761263407058, 2051.07837782607147, 1230.33935479799725, 2.15311535474403846e-8)
_D = (15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019, 3290.79923573345963,
      4362.61909014324716, 3439.36767414372164, 1230.33935480374942)
# erfc above 4: exp(-x^2) / x * (1/sqrt(pi) + P(1/x^2) / (x^2 Q(1/x^2)))
_P = (0.305326634961232344, 0.360344899949804439, 0.125781726111229246, 0.0160837851487422766,
      6.58749161529837803e-4, 0.0163153871373020978)
_Q = (2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191, 0.00233520497626869185)
_INV_SQRT_PI = 0.5641895835477563
_INV_SQRT2 = 0.7071067811865476


@intrinsic
def _bits_to_f64(typingctx, v):  # type: ignore[no-untyped-def]
    """Reinterpret the bits of an int64 as a float64 (LLVM bitcast)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


@nb.njit(inline="always", **_JIT)
def exp_neg(x: float) -> float:
    """exp(x) for x <= 0 (relative error ~2e-16; 0 below -708)."""
    x = max(x, -708.0)
    k = math.floor(x * 1.4426950408889634 + 0.5)
    r = (x - k * 0.6931471803691238) - k * 1.9082149292705877e-10  # ln 2 split in two for exact reduction
    p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 + r * (
        1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800 + r * (1.0 / 39916800 + r / 479001600)))))))))))
    return p * _bits_to_f64((np.int64(k) + 1023) << 52)  # type: ignore[call-arg]  # numba passes typingctx


@nb.njit(inline="always", **_JIT)
def ncdf(x: float) -> float:
    """Standard normal CDF, absolute error < 3e-16."""
    y = min(abs(x) * _INV_SQRT2, 27.0)
    ysq = y * y
    small = 1.0 - y * ((((_A4 * ysq + _A0) * ysq + _A1) * ysq + _A2) * ysq + _A3) / (
        (((ysq + _B0) * ysq + _B1) * ysq + _B2) * ysq + _B3)
    num = _C[8] * y
    num = (num + _C[0]) * y
    num = (num + _C[1]) * y
    num = (num + _C[2]) * y
    num = (num + _C[3]) * y
    num = (num + _C[4]) * y
    num = (num + _C[5]) * y
    num = (num + _C[6]) * y
    den = (y + _D[0]) * y
    den = (den + _D[1]) * y
    den = (den + _D[2]) * y
    den = (den + _D[3]) * y
    den = (den + _D[4]) * y
    den = (den + _D[5]) * y
    den = (den + _D[6]) * y
    e = exp_neg(-ysq)
    mid = e * (num + _C[7]) / (den + _D[7])
    z = 1.0 / max(ysq, 1.0)
    pn = ((((_P[5] * z + _P[0]) * z + _P[1]) * z + _P[2]) * z + _P[3]) * z
    qd = ((((z + _Q[0]) * z + _Q[1]) * z + _Q[2]) * z + _Q[3]) * z
    big = e * (_INV_SQRT_PI - z * (pn + _P[4]) / (qd + _Q[4])) / max(y, 1.0)
    erfc_y = small if y < 0.46875 else (mid if y <= 4.0 else big)
    h = 0.5 * erfc_y
    return h if x < 0.0 else 1.0 - h


@nb.njit(inline="always", **_JIT)
def black76(f: float, k: float, lnfk: float, sd: float, cp: float) -> float:
    """Undiscounted Black-76 value per unit: cp * (F N(cp d1) - K N(cp d2)); sd = sigma sqrt(T) > 0."""
    d1 = lnfk / sd + 0.5 * sd
    return cp * (f * ncdf(cp * d1) - k * ncdf(cp * (d1 - sd)))


@nb.njit(**_JIT)
def ncdf_array(x: np.ndarray, out: np.ndarray) -> None:
    for i in range(x.size):
        out[i] = ncdf(x[i])


@nb.njit(**_JIT)
def black76_array(f: np.ndarray, k: np.ndarray, sd: np.ndarray, cp: np.ndarray, out: np.ndarray) -> None:
    for i in range(f.size):
        out[i] = black76(f[i], k[i], math.log(f[i] / k[i]), sd[i], cp[i])


@nb.njit(parallel=True, **_JIT)
def loss_kernel(
    out: np.ndarray,  # (S, J) float64, written in full
    growth: np.ndarray,  # (S, U) 1 + relative price move
    log_growth: np.ndarray,  # (S, U)
    vol_move: np.ndarray,  # (S, U) relative vol move
    block_start: np.ndarray,  # (B + 1,) offsets into the block-ordered arrays
    block_code: np.ndarray,  # (B,)
    block_u: np.ndarray,  # (B,)
    cols: np.ndarray,  # (J,) output column of each block-ordered instrument
    a: np.ndarray,  # delta-one coefficient, or F0 for options
    strike: np.ndarray,
    lnfk: np.ndarray,
    sd: np.ndarray,  # sigma * sqrt(T)
    vscale: np.ndarray,  # vol move scaling per instrument
    sd_floor: np.ndarray,  # minimum shocked sigma * sqrt(T)
    disc_mult: np.ndarray,  # exp(-rT) * multiplier
    cp: np.ndarray,  # +1 call, -1 put
    v0: np.ndarray,  # value now per contract
) -> None:
    n_s = growth.shape[0]
    n_b = block_code.shape[0]
    n_j = cols.shape[0]
    for s in nb.prange(n_s):
        # Compute the row in block order into a contiguous buffer (contiguous
        # stores vectorize; stores through ``cols`` do not: 37 vs 5 ns/element),
        # then place it in instrument order.
        buf = np.empty(n_j)
        for b in range(n_b):
            u = block_u[b]
            g = growth[s, u]
            code = block_code[b]
            # Unsigned bounds: numba then skips negative-index wraparound, which
            # otherwise turns every load into a gather (6.6 vs 3.7 ns/element).
            lo = np.uint64(block_start[b])
            hi = np.uint64(block_start[b + 1])
            if code == DELTA_ONE_LINEAR:
                m = g - 1.0
                for k in range(lo, hi):
                    buf[k] = -a[k] * m
            elif code == DELTA_ONE_INVERSE:
                m = 1.0 - 1.0 / g
                for k in range(lo, hi):
                    buf[k] = -a[k] * m
            elif code == NO_PNL:
                for k in range(lo, hi):
                    buf[k] = 0.0
            else:
                lg = log_growth[s, u]
                vm = vol_move[s, u]
                if lg == 0.0 and vm == 0.0:
                    for k in range(lo, hi):  # nothing moved: exactly no loss
                        buf[k] = 0.0
                    continue
                inv = 1.0 / g if code == OPTION_INVERSE else 1.0
                for k in range(lo, hi):
                    sd1 = max(sd[k] * (1.0 + vm * vscale[k]), sd_floor[k])
                    v1 = disc_mult[k] * black76(a[k] * g, strike[k], lnfk[k] + lg, sd1, cp[k])
                    buf[k] = v0[k] - v1 * inv
        row = out[s]
        for k in range(n_j):
            row[cols[k]] = buf[k]


def warm_up() -> str:
    """Run ``loss_kernel`` once on a 2 x 1 option book and name numba's threading layer.

    Loads (or compiles) the kernel and starts its thread pool, so the first large book a
    worker prices pays neither; numba picks the layer on the first parallel launch only.
    """
    one = np.ones(1)
    growth = np.array([[1.0], [1.1]])
    loss_kernel(np.empty((2, 1)), growth, np.log(growth), np.zeros((2, 1)), np.array([0, 1], dtype=np.int64),
                np.array([OPTION_INVERSE], dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64),
                one, one, np.zeros(1), one * 0.5, one, np.zeros(1), one, one, one * 0.2)
    layer: str = nb.threading_layer()
    return layer
