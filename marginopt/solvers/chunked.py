"""A scenario matrix held as a chunked Dask array, read as the large-scenario solver reads one.

``solvers.scenario_lp`` needs three things from a term's matrix: a product with the hedge
vector (one pass over every row), the rows of its working set (a gather of a few thousand),
and row slices (a subsample start). ``ChunkedRows`` gives each of them from a Dask array by
computing over its row chunks, so a matrix with more rows than memory (on disk as Zarr or
Parquet, or generated chunk by chunk) is solved holding one chunk per worker thread plus
the S-vectors of losses and offsets; nothing here calls ``compute`` on the whole matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marginopt.errors import ArgumentError
from marginopt.typing import FloatArray


class ChunkedRows:
    """An (S x k) Dask array of losses per unit of hedge, for ``ScenarioTerm.matrix``."""

    __array_ufunc__ = None  # ``y @ rows`` with a numpy ``y`` comes to ``__rmatmul__``, not numpy's element loop

    def __init__(self, array: Any) -> None:
        if getattr(array, "ndim", None) != 2 or not hasattr(array, "chunks"):
            raise ArgumentError(f"ChunkedRows array: expected a 2-D Dask array (scenarios x hedges; dask.array.from_array "
                                f"makes one), got {type(array).__name__}")
        if len(array.chunks[1]) != 1:
            array = array.rechunk({1: -1})  # whole rows per chunk: a pass then reads each row once
        self.array = array.astype(np.float64)
        self.shape = (int(array.shape[0]), int(array.shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice | np.ndarray) -> ChunkedRows | FloatArray:
        """A row slice stays chunked; an index array gathers those rows into memory (in their order)."""
        if isinstance(rows, slice):
            return ChunkedRows(self.array[rows])
        idx = np.asarray(rows, dtype=np.int64)
        order = np.argsort(idx, kind="stable")  # read chunks in order, then put the rows back as asked
        out = np.empty((len(idx), self.shape[1]))
        out[order] = np.asarray(self.array[idx[order]].compute())
        return out

    def __matmul__(self, x: FloatArray) -> FloatArray:
        """One pass over the row chunks."""
        return np.asarray((self.array @ np.asarray(x, dtype=float)).compute())

    def __rmatmul__(self, y: FloatArray) -> FloatArray:
        import dask.array as da

        yy = da.from_array(np.asarray(y, dtype=float), chunks=(self.array.chunks[0],))
        return np.asarray((yy @ self.array).compute())
