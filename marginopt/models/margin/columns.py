"""A measure on the hedged columns only: the rest of the book held is a constant.

A hedge program trades a few instruments of a venue's book; the others stay as held. Every
convex measure here is a function of linear maps of the positions (scenario losses ``L q``,
deltas ``D q``) or a sum over positions (notional, short-option minimums), so the held rest
folds into one extra column or one constant:

- a linear map ``M q`` becomes ``[M_C | M_R q0_R] [q_C; 1]``: the columns ``C`` hedged, and
  one column, "the rest of the book", whose position is always 1 (``reduce_rows``);
- a sum over positions keeps its terms at ``C`` (0 for the extra column) and adds the sum
  over the rest as a ``Constant``.

``measure.on_columns(cols, q0)`` is then a measure ``m'`` with ``m'([q_C, 1]) = m(q)``
wherever ``q`` equals ``q0`` outside ``cols``. A program over a book of 200,000 options
hedged with 20 candidates holds 21 columns, not 200,000 (cvxpy's canonicalization of
``L q`` at full width needed 53.8 GiB for 10,000 options).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from marginopt.models.margin.base import CvxForm, Measure
from marginopt.typing import FloatArray

if TYPE_CHECKING:
    import cvxpy as cp

# The extra column's name, where one is shown (a scenario matrix's instrument ids).
REST = "(rest of the book)"


# Rows gathered at a time by ``reduce_rows``: its temporaries stay this many rows, whatever the matrix.
_BLOCK_ROWS = 8192


def reduce_rows(m: FloatArray, cols: np.ndarray, q0: FloatArray) -> FloatArray:
    """``[M_C | M_R q0_R]`` for a map ``M`` (..., J): its columns ``cols``, then what the
    positions held outside them contribute.

    Written into the result block by block of rows: a scenario matrix of 400,000 rows takes
    the result and a block, not three more arrays its size (the columns, ``M q0`` and ``M_C q0_C``)."""
    cols = np.asarray(cols, dtype=np.intp)
    rest_q = np.array(q0, dtype=np.result_type(q0, np.float64))
    rest_q[cols] = 0.0  # M_R q0_R as one product, M (q0 outside cols), with no difference of two
    return _fold_rows(m, cols, rest_q)


def _fold_rows(m: FloatArray, cols: np.ndarray, rest_q: FloatArray) -> FloatArray:
    """``reduce_rows`` with the positions outside ``cols`` given (``rest_q``, 0 at ``cols``)."""
    flat = m.reshape(-1, m.shape[-1])
    out = np.empty((flat.shape[0], len(cols) + 1), dtype=np.result_type(m, rest_q))
    for lo in range(0, flat.shape[0], _BLOCK_ROWS):
        block = flat[lo:lo + _BLOCK_ROWS]
        out[lo:lo + _BLOCK_ROWS, :-1] = block[:, cols]
        out[lo:lo + _BLOCK_ROWS, -1] = block @ rest_q
    return out.reshape(*m.shape[:-1], len(cols) + 1)


def at_columns(v: FloatArray, cols: np.ndarray) -> FloatArray:
    """A per-position array at ``cols``, 0 for the extra column (its sum over the rest is a ``Constant``)."""
    return np.append(v[cols], 0.0)


def rest_mask(n: int, cols: np.ndarray) -> np.ndarray:
    rest = np.ones(n, dtype=bool)
    rest[cols] = False
    return rest


def reduced_positions(q: FloatArray, cols: np.ndarray) -> FloatArray:
    """The positions ``q`` as a measure on ``cols`` takes them: ``[q_C, 1]``."""
    return np.append(q[cols], 1.0)


class Folded:
    """The map between a book's positions ``q`` and a measure's on ``cols`` (``[q_C, t]``), for a
    measure held at full width and taken on the columns only where it is read: rows gathered from
    its matrix, one covector (a cut, a gradient), a position. ``on_columns`` makes the whole
    ``(S, C + 1)`` matrix instead; scenario generation reads a working set's rows and a cut a round,
    and the copy was 9 MiB of the 400,000-scenario demo's peak (three columns of 400,000 rows)."""

    def __init__(self, cols: np.ndarray, q0: FloatArray) -> None:
        self.cols = np.asarray(cols, dtype=np.intp)
        self.q0 = np.asarray(q0, dtype=np.float64)
        self.rest = self.q0.copy()
        self.rest[self.cols] = 0.0  # the book outside the columns: the extra column's content

    def rows(self, block: FloatArray) -> FloatArray:
        """``reduce_rows``: rows of a map on the book, as the measure on the columns reads them."""
        return _fold_rows(block, self.cols, self.rest)

    def covector(self, g: FloatArray) -> FloatArray:
        """A linear function of the book's positions (``g . q``) as one of ``[q_C, t]``: ``[g_C, g . rest]``."""
        return np.append(g[self.cols], g @ self.rest)

    def positions(self, q: FloatArray) -> FloatArray:
        """The book's positions ``q`` on the columns: ``[q_C, 1]`` (``q`` is ``q0`` outside them)."""
        return reduced_positions(q, self.cols)

    def book(self, x: FloatArray) -> FloatArray:
        """The book's positions at ``x = [q_C, t]``: ``q_C`` at the columns, ``t`` times the rest elsewhere."""
        q = self.rest * x[-1]
        q[self.cols] = x[:-1]
        return q


class Constant(Measure):
    """A fixed amount: what the positions outside the hedged columns add to a sum over positions."""

    def __init__(self, name: str, value: float, n: int) -> None:
        self.name, self.value, self.n = name, float(value), n

    def evaluate(self, q: FloatArray) -> float:
        return self.value

    def gradient(self, q: FloatArray) -> FloatArray:
        return np.zeros(self.n)

    def arrays(self) -> dict[str, FloatArray]:
        return {"value": np.array([self.value])}

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        return cp.sum(self.param("value", nonneg=True)), []
