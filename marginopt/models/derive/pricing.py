"""Option values as Derive's PMRM_2 computes them (methodology.md sections 2.2-2.3), vectorized.

SVI gives each strike its vol, fixed per strike through every scenario (sticky strike);
Black-76 on the forward prices it, with Derive's conventions: the standardized call
floored at zero, the put from put-call parity on standardized prices, both capped at their
no-arbitrage bounds, total vol above 24 treated as infinite and zero as intrinsic.
Float64 throughout, with N(x) = erfc(-x / sqrt 2) / 2: Derive's expected values come from a
float64 reference, which fixed-point emulation would only move away from.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc

from marginopt.errors import ModelError
from marginopt.typing import FloatArray

YEAR = 365 * 86400  # seconds; Derive's only day count


def svi_vol(strike: FloatArray, svi: tuple[float, ...]) -> FloatArray:
    """Implied vol at each strike from raw SVI ``(a, b, rho, m, sigma, forward, tau)``."""
    a, b, rho, m, s, fwd, tau = svi
    strike = np.asarray(strike, dtype=float)
    if a + b * s < 0 or tau <= 0 or fwd <= 0:
        raise ModelError(f"SVI parameters {svi}: need a + b sigma >= 0, tau > 0 and a positive forward")
    bound = 4.0 * np.sqrt(a + b * s)  # log-moneyness is clipped to +-bound
    with np.errstate(divide="ignore"):
        k = np.clip(np.log(strike / fwd), -bound, bound)
    w = a + b * (np.sqrt((k - m) ** 2 + s * s) + rho * (k - m))
    if np.any(w < 0):
        raise ModelError(f"SVI parameters {svi} give a negative total variance")
    return np.where(strike == 0.0, 0.0, np.sqrt(np.minimum(w, 144.0) / tau))


def _ncdf(x: FloatArray) -> FloatArray:
    return 0.5 * erfc(-x / np.sqrt(2.0))


def black76(forward: FloatArray, strike: FloatArray, vol: FloatArray, seconds: int, discount: float,
            call: FloatArray) -> FloatArray:
    """Value of one option (``call`` a boolean array), all arguments broadcast together."""
    f, k, v, call = np.broadcast_arrays(np.asarray(forward, float), np.asarray(strike, float), np.asarray(vol, float),
                                        np.asarray(call, bool))
    total = v * np.sqrt(seconds / YEAR)
    total = np.where(total == 0.0, 1e-18, total)  # zero vol: intrinsic value
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = k / f
        d1 = (0.5 * total * total - np.log(mu)) / total
        c = np.maximum(_ncdf(d1) - mu * _ncdf(d1 - total), 0.0)
        c = np.where(total >= 24.0, 1.0, c)
        p = np.maximum(c + mu - 1.0, 0.0)
        value = np.where(call, np.minimum(c * f * discount, f * discount), np.minimum(p * f * discount, k * discount))
    value = np.where(k == 0.0, np.where(call, f * discount, 0.0), value)
    return np.where(f == 0.0, np.where(call, 0.0, k * discount), value)
