"""A user-supplied scenario-loss matrix (CSV or Parquet)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

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
        path, frame = read_frame(Node(self.node.file, self.node.path, str(self.file), self.node.line))
        return matrix_losses(path, frame, ctx)


def matrix_losses(path: Path, frame: pd.DataFrame, ctx: ScenarioContext) -> ScenarioLosses:
    if len(frame) == 0:
        raise CaseError(Location(path), "(rows)", "at least one scenario row", 0)
    for col in frame.columns:
        if col not in _SPECIAL and col not in ctx.all_instrument_ids:
            raise CaseError(Location(path, 1, "row"), col, "an instrument id of the case or scenario, weight, group", col)
    ids = ctx.inputs.ids
    for iid in ids:
        if iid not in frame.columns:
            raise CaseError(Location(path, 1, "row"), iid, "a column of losses for every instrument traded at the venue", "no such column")
    values = np.empty((len(frame), len(ids)))
    for j, iid in enumerate(ids):
        values[:, j] = _finite(path, frame, iid)
    weights = _finite(path, frame, "weight") if "weight" in frame.columns else np.ones(len(frame))
    bad = np.flatnonzero(weights <= 0)
    if bad.size:
        raise CaseError(Location(path, int(bad[0]) + 1, "row"), "weight", "a positive weight", frame["weight"].iloc[bad[0]])
    labels = frame["scenario"].astype(str).to_numpy() if "scenario" in frame.columns else np.char.add("row ", np.arange(1, len(frame) + 1).astype(str))
    if "group" not in frame.columns:
        return ScenarioLosses(labels.astype(str), weights, ids, np.ascontiguousarray(values), source=f"matrix: {path.name}")
    groups = frame["group"].astype(str).to_numpy()
    names = tuple(dict.fromkeys(groups))
    code = np.array([names.index(g) for g in groups])
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(len(names) + 1)).astype(np.int64)
    return ScenarioLosses(labels[order].astype(str), weights[order], ids, np.ascontiguousarray(values[order]),
                          names, bounds, source=f"matrix: {path.name}")


def _finite(path: Path, frame: pd.DataFrame, col: str) -> np.ndarray:
    vals = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(vals))
    if bad.size:
        i = int(bad[0])
        raise CaseError(Location(path, i + 1, "row"), col, "a finite number", frame[col].iloc[i])
    return vals


@register("matrix")
def parse_matrix(node: Node) -> MatrixSpec:
    parts = node.mapping(allowed=("kind", "file"), required=("file",))
    return MatrixSpec(resolve_path(parts["file"], (".csv", ".parquet", ".pq")), parts["file"])
