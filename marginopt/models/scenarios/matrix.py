"""A user-supplied scenario-loss matrix (CSV or Parquet)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from marginopt.errors import CaseError, Location
from marginopt.models.reader import Node, read_frame, resolve_path
from marginopt.models.scenarios.base import ScenarioContext, ScenarioLosses, register

_SPECIAL = ("scenario", "weight", "group")


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
            path, frame = read_frame(node)
            return matrix_losses(path, list(frame.columns), len(frame), frame.__getitem__, ctx)
        # A Parquet file is read one column at a time into the matrix: reading it whole made an
        # Arrow table and a DataFrame beside the matrix (2.3x its size at 100,000 x 201).
        names, n_rows, read = columns
        return matrix_losses(path, names, n_rows, read, ctx)


def _parquet_columns(path: Path) -> tuple[list[str], int, Callable[[str], pd.Series]] | None:
    """Column names, row count and a one-column reader of a Parquet file; None when the file
    carries a pandas index (read whole, so the index becomes data as everywhere else) or
    cannot be opened here (``read_frame`` then reports it)."""
    try:
        pf = pq.ParquetFile(path)
    except Exception:  # pyarrow raises many types for a malformed file
        return None
    meta = pf.schema_arrow.pandas_metadata or {}
    if any(not isinstance(i, dict) for i in meta.get("index_columns", [])):
        return None
    raw = {str(c).strip(): c for c in pf.schema_arrow.names}

    def read(name: str) -> pd.Series:
        return pf.read(columns=[raw[name]]).column(0).to_pandas()

    return list(raw), pf.metadata.num_rows, read


def matrix_losses(path: Path, columns: list[str], n_rows: int, column: Callable[[str], pd.Series],
                  ctx: ScenarioContext) -> ScenarioLosses:
    """The losses of the instruments traded at the venue from a table's ``columns`` (names),
    read one at a time through ``column``."""
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
    for j, iid in enumerate(ids):
        values[:, j] = _finite(path, column(iid), iid)
    if "weight" in columns:
        raw_weights = column("weight")
        weights = _finite(path, raw_weights, "weight")
        bad = np.flatnonzero(weights <= 0)
        if bad.size:
            raise CaseError(Location(path, int(bad[0]) + 1, "row"), "weight", "a positive weight", raw_weights.iloc[bad[0]])
    else:
        weights = np.ones(n_rows)
    labels = column("scenario").astype(str).to_numpy() if "scenario" in columns else _row_labels(n_rows)
    if "group" not in columns:
        return ScenarioLosses(labels.astype(str), weights, ids, np.ascontiguousarray(values), source=f"matrix: {path.name}")
    groups = column("group").astype(str).to_numpy()
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


def _finite(path: Path, series: pd.Series, col: str) -> np.ndarray:
    vals = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(vals))
    if bad.size:
        i = int(bad[0])
        raise CaseError(Location(path, i + 1, "row"), col, "a finite number", series.iloc[i])
    return vals


@register("matrix")
def parse_matrix(node: Node) -> MatrixSpec:
    parts = node.mapping(allowed=("kind", "file"), required=("file",))
    return MatrixSpec(resolve_path(parts["file"], (".csv", ".parquet", ".pq")), parts["file"])
