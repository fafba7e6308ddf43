"""A user-supplied scenario-loss matrix (CSV or Parquet)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from marginopt.errors import CaseError, Location
from marginopt.models.magnitude import MAX_MAGNITUDE, Bound, describe
from marginopt.models.reader import Node, read_table_file, resolve_path, to_numbers
from marginopt.models.scenarios.base import ScenarioContext, ScenarioLosses, register

_SPECIAL = ("scenario", "weight", "group")
Cells = Sequence[Any] | np.ndarray  # one column: a CSV table's cells, or a Parquet column as an array


@dataclass(frozen=True)
class MatrixSpec:
    """Rows are scenarios, columns instrument ids with the loss per +1 contract in
    base currency; optional columns ``scenario`` (label), ``weight`` (> 0) and
    ``group`` (scenarios measured separately and summed, as per-underlying grids)."""

    file: Path
    node: Node = field(compare=False, repr=False)
    kind: str = "matrix"

    def build(self, ctx: ScenarioContext) -> ScenarioLosses:
        node = Node(self.node.file, self.node.path, str(self.file), self.node.line, self.node.files_refused)
        path = resolve_path(node, (".csv", ".parquet", ".pq"))
        columns = _parquet_columns(path) if path.suffix.lower() != ".csv" else None
        if columns is None:
            table = read_table_file(node, node.path)
            return matrix_losses(table.file, list(table.columns), len(table), table.columns.__getitem__, ctx)
        # A Parquet file is read into the matrix in blocks of rows (numeric loss columns) or one
        # column at a time: reading it whole made an Arrow table and a DataFrame beside the
        # matrix (2.3x its size at 100,000 x 201).
        names, n_rows, read, blocks = columns
        return matrix_losses(path, names, n_rows, read, ctx, blocks)


# A Parquet row group up to this size (as floats) is read whole, its columns then interleaved
# into the matrix's rows in cache; a larger one a column at a time, so reading adds at most
# this much (or one column of one group) to the matrix's own memory.
_GROUP_BYTES = 64 << 20
# Fills ``out`` (rows x len(ids), C order) with the named columns, or returns False when one of
# them is not stored as numbers (the column reader then handles, or refuses, its cells).
BlockReader = Callable[[Sequence[str], np.ndarray], bool]


def _parquet_columns(path: Path) -> tuple[list[str], int, Callable[[str], np.ndarray], BlockReader] | None:
    """Column names, row count, a one-column reader and a block reader of a Parquet file; None
    when the file carries a pandas index (read whole, so the index becomes data as everywhere
    else) or cannot be opened here (``read_table_file`` then reports it)."""
    import pyarrow.parquet as pq  # only for a Parquet file: pyarrow is slow to import

    try:
        pf = pq.ParquetFile(path)
    except Exception:  # pyarrow raises many types for a malformed file
        return None
    meta = pf.schema_arrow.pandas_metadata or {}
    if any(not isinstance(i, dict) for i in meta.get("index_columns", [])):
        return None
    raw = {str(c).strip(): c for c in pf.schema_arrow.names}

    def read(name: str) -> np.ndarray:
        # numbers as a numeric array, text as objects; with a null, objects (the null as None, so
        # an error says "an empty cell" rather than "nan")
        col = pf.read(columns=[raw[name]]).column(0)
        return np.array(col.to_pylist(), dtype=object) if col.null_count else col.to_numpy(zero_copy_only=False)

    def blocks(names: Sequence[str], out: np.ndarray) -> bool:
        # By row groups: a column at a time over the whole file wrote each column across the whole
        # C-order matrix (a strided pass over all of it per column: 1.7 s of 2.9 s at 1,000,000 x
        # 100). pyarrow's iter_batches is not used: it buffers the whole file (2.2x the matrix).
        import pyarrow as pa

        fields = [pf.schema_arrow.field(raw[n]).type for n in names]
        if not all(pa.types.is_floating(t) or pa.types.is_integer(t) for t in fields):
            return False
        cols = [raw[n] for n in names]
        lo = 0
        for g in range(pf.num_row_groups):
            rows = pf.metadata.row_group(g).num_rows
            block = out[lo:lo + rows]
            if rows * len(cols) * 8 <= _GROUP_BYTES:
                for j, col in enumerate(pf.read_row_group(g, columns=cols).columns):
                    block[:, j] = col.to_numpy(zero_copy_only=False)  # a null reads NaN, refused below
            else:
                for j, name in enumerate(cols):
                    block[:, j] = pf.read_row_group(g, columns=[name]).column(0).to_numpy(zero_copy_only=False)
            lo += rows
        return True

    return list(raw), pf.metadata.num_rows, read, blocks


def matrix_losses(path: Path, columns: list[str], n_rows: int, column: Callable[[str], Cells],
                  ctx: ScenarioContext, blocks: BlockReader | None = None) -> ScenarioLosses:
    """The losses of the instruments traded at the venue from a table's ``columns`` (names),
    read by rows through ``blocks`` where it can, else one column at a time through ``column``."""
    if n_rows == 0:
        raise CaseError(Location(path), "(rows)", "at least one scenario row", 0)
    for col in columns:
        if col not in _SPECIAL and col not in ctx.all_instrument_ids:
            raise CaseError(Location(path, 1, "row"), col, "an instrument id of the case or scenario, weight, group", col)
    ids = ctx.inputs.ids
    for iid in ids:
        if iid not in columns:
            raise CaseError(Location(path, 1, "row"), iid, "a column of losses for every instrument traded at the venue", "no such column")
    values = np.empty((n_rows, len(ids)))
    if blocks is not None and blocks(ids, values):
        step = max(1, _GROUP_BYTES // (8 * max(1, len(ids))))
        for lo in range(0, n_rows, step):
            ok = np.abs(values[lo:lo + step]) <= MAX_MAGNITUDE  # False for NaN and infinity too
            if not ok.all():
                j = int(np.flatnonzero(~ok.all(axis=0))[0])
                _finite(path, column(ids[j]), ids[j])  # raises, naming the row and what it holds
    else:
        for j, iid in enumerate(ids):
            values[:, j] = _finite(path, column(iid), iid)
    if "weight" in columns:
        raw_weights = column("weight")
        weights = _finite(path, raw_weights, "weight")
        bad = np.flatnonzero(weights <= 0)
        if bad.size:
            raise CaseError(Location(path, int(bad[0]) + 1, "row"), "weight", "a positive weight", raw_weights[bad[0]])
    else:
        weights = np.ones(n_rows)
    labels = _texts(column("scenario")) if "scenario" in columns else _row_labels(n_rows)
    if "group" not in columns:
        return ScenarioLosses(labels.astype(str), weights, ids, np.ascontiguousarray(values), source=f"matrix: {path.name}")
    groups = _texts(column("group"))
    names = tuple(dict.fromkeys(groups))
    code = np.array([names.index(g) for g in groups])
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(len(names) + 1)).astype(np.int64)
    return ScenarioLosses(labels[order].astype(str), weights[order], ids, np.ascontiguousarray(values[order]),
                          names, bounds, source=f"matrix: {path.name}")


def _row_labels(n: int) -> np.ndarray:
    """"row 1" .. "row n", built at their final width (a plain ``astype(str)`` of the numbers
    is 21 characters wide: 0.1x of a 100-column matrix, briefly)."""
    return np.char.add("row ", np.arange(1, n + 1).astype(f"U{len(str(n))}"))


def _texts(cells: Cells) -> np.ndarray:
    """Labels as text; a missing one reads "nan", as pandas' ``astype(str)`` wrote it."""
    return np.array(["nan" if v is None else v for v in cells], dtype=object).astype(str)


def _finite(path: Path, cells: Cells, col: str) -> np.ndarray:
    vals = to_numbers(cells)  # numeric text counts; anything else (true/false too) is refused
    bad = np.flatnonzero(~(np.abs(vals) <= MAX_MAGNITUDE))  # NaN fails the comparison too
    if bad.size:
        i = int(bad[0])
        raise CaseError(Location(path, i + 1, "row"), col, f"a finite number, {describe(Bound.MAGNITUDE)}",
                        "an empty cell" if cells[i] is None else cells[i])
    return vals


@register("matrix")
def parse_matrix(node: Node) -> MatrixSpec:
    parts = node.mapping(allowed=("kind", "file"), required=("file",))
    return MatrixSpec(resolve_path(parts["file"], (".csv", ".parquet", ".pq")), parts["file"])
