"""The scenario-loss kernel in plain numpy, for work too small to pay for the compiled one.

Same arguments, formulas and results as ``_kernels.loss_kernel`` (to rounding: the normal CDF
here is scipy's ``ndtr``, the compiled kernel's own approximation agrees with it to 3e-16).
Importing numba and loading its cached machine code costs about 1.5 s of a process's start;
a desk's book of a few hundred options under a few hundred scenarios prices here in
milliseconds, so ``scenarios.base`` sends work here below ``SMALL_OPTION_CELLS`` option
cells (tests/test_pricing.py checks that both agree).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from marginopt.models.kernel_codes import DELTA_ONE_INVERSE, DELTA_ONE_LINEAR, NO_PNL, OPTION_INVERSE

# About 25 ms of numpy (roughly 100 ns an option cell), against 1.5 s to load numba once and
# about 1 ms in its kernel after that: small enough that a service or batch loses little.
SMALL_OPTION_CELLS = 250_000


def black76_array(f: np.ndarray, k: np.ndarray, sd: np.ndarray, cp: np.ndarray, out: np.ndarray) -> None:
    """Undiscounted Black-76 value per unit: cp * (F N(cp d1) - K N(cp d2)); sd = sigma sqrt(T) > 0."""
    out[:] = _black76(f, k, np.log(f / k), sd, cp)


def _black76(f: np.ndarray, k: np.ndarray, lnfk: np.ndarray, sd: np.ndarray, cp: np.ndarray) -> np.ndarray:
    d1 = lnfk / sd + 0.5 * sd
    return cp * (f * ndtr(cp * d1) - k * ndtr(cp * (d1 - sd)))


def loss_kernel(out: np.ndarray, growth: np.ndarray, log_growth: np.ndarray, vol_move: np.ndarray, block_start: np.ndarray,
                block_code: np.ndarray, block_u: np.ndarray, cols: np.ndarray, a: np.ndarray, strike: np.ndarray,
                lnfk: np.ndarray, sd: np.ndarray, vscale: np.ndarray, sd_floor: np.ndarray, disc_mult: np.ndarray,
                cp: np.ndarray, v0: np.ndarray) -> None:
    """``out[s, cols[k]]``: loss of instrument k (block order) under scenario s; see ``_kernels.loss_kernel``."""
    for b in range(len(block_code)):
        sl = slice(int(block_start[b]), int(block_start[b + 1]))
        u, code = int(block_u[b]), int(block_code[b])
        g = growth[:, u, None]
        if code == DELTA_ONE_LINEAR:
            vals = -a[sl] * (g - 1.0)
        elif code == DELTA_ONE_INVERSE:
            vals = -a[sl] * (1.0 - 1.0 / g)
        elif code == NO_PNL:
            vals = np.zeros((len(g), sl.stop - sl.start))
        else:
            lg, vm = log_growth[:, u, None], vol_move[:, u, None]
            sd1 = np.maximum(sd[sl] * (1.0 + vm * vscale[sl]), sd_floor[sl])
            v1 = disc_mult[sl] * _black76(a[sl] * g, strike[sl], lnfk[sl] + lg, sd1, cp[sl])
            vals = v0[sl] - (v1 / g if code == OPTION_INVERSE else v1)
            vals[(lg[:, 0] == 0.0) & (vm[:, 0] == 0.0)] = 0.0  # nothing moved: exactly no loss
        out[:, cols[sl]] = vals
