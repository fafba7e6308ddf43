"""The largest few losses of every state, compiled: the tail an expected shortfall or VaR over equal
probabilities needs (a handful of a historical set's hundreds of scenarios).

numpy's ``partition`` along the scenarios (axis 0 of a ``(S, N)`` C-ordered array) copies each state's
column out and back; this streams the rows once, in order, keeping each state's ``m`` largest in a
small sorted buffer (``m`` x ``N``, in cache): 0.09 s against about 0.01 s for 500 x 20,000 here.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _largest(loss: np.ndarray, m: int, out: np.ndarray) -> None:
    s_n, n_n = loss.shape
    step = 512
    for b in nb.prange((n_n + step - 1) // step):
        lo = b * step
        hi = min(lo + step, n_n)
        width = hi - lo
        buf = np.full((width, m), -np.inf)  # each state's m largest, largest first
        low = np.full(width, -np.inf)  # the smallest of them: most rows are below it and only compared
        for s in range(s_n):
            row = loss[s]
            for k in range(width):
                x = row[lo + k]
                if x > low[k]:
                    i = m - 1
                    while i > 0 and buf[k, i - 1] < x:
                        buf[k, i] = buf[k, i - 1]
                        i -= 1
                    buf[k, i] = x
                    low[k] = buf[k, m - 1]
        for k in range(width):
            for i in range(m):
                out[i, lo + k] = buf[k, i]


def largest(loss: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` largest entries of each column of ``loss`` (``(S, N)``, finite), largest first, ``(m, N)``."""
    out = np.empty((m, loss.shape[1]))
    _largest(np.ascontiguousarray(loss, dtype=np.float64), int(m), out)
    return out
