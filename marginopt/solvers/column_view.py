"""Some columns of a scenario matrix, read without copying the matrix.

A venue's loss matrix has a column per instrument of its book; a hedge program needs only
the columns of the hedge candidates (and the book held, as one offset vector). Slicing
those columns out would copy the matrix, which the memory bound of the large-scenario
path forbids. ``ColumnView`` offers what ``solvers.scenario_lp`` reads from a term's
matrix: rows of the selected columns (copies of the working set only), row slices as
views, and products with a vector over the selected columns, all on the original array.
"""

from __future__ import annotations

import numpy as np

from marginopt.typing import FloatArray


class ColumnView:
    """Columns ``cols`` of ``base`` (in that order; a column may repeat)."""

    def __init__(self, base: FloatArray, cols: np.ndarray) -> None:
        self.base = base
        self.cols = np.asarray(cols, dtype=np.int64)
        if self.cols.ndim != 1 or (self.cols.size and (self.cols.min() < 0 or self.cols.max() >= base.shape[1])):
            # An invariant: the backends pass a book's own columns, so only a bug in marginopt reaches this.
            raise RuntimeError(f"columns must index the matrix's {base.shape[1]} columns")
        self.shape = (base.shape[0], len(self.cols))

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, rows: slice | np.ndarray) -> ColumnView | FloatArray:
        """A row slice stays a view; an index array gathers those rows (a copy of them only)."""
        if isinstance(rows, slice):
            return ColumnView(self.base[rows], self.cols)
        out: np.ndarray = self.base[rows][:, self.cols]
        return out

    def __matmul__(self, x: FloatArray) -> FloatArray:
        """``base[:, cols] @ x``, as one pass over ``base`` with ``x`` spread onto its columns."""
        full = np.zeros(self.base.shape[1])
        np.add.at(full, self.cols, np.asarray(x, dtype=float))
        return self.base @ full

    def __rmatmul__(self, y: FloatArray) -> FloatArray:
        """``y @ base[:, cols]``."""
        return (np.asarray(y, dtype=float) @ self.base)[self.cols]
