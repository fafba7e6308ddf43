"""A case as one JSON document: the inputs a run is stored with, and what its fingerprint hashes.

A case file is YAML with tables in CSV or Parquet files beside it; the service takes the same
keys as JSON with every table inline (``service/cases.py``). ``case_document`` turns a case file
into that JSON form: each table file read by the case reader's own CSV and Parquet readers (so a
cell is the number, text or true/false the file load would see, and loading the document gives the
same case to the last bit), an empty cell left out as an inline row leaves it out. What cannot be
inlined, a file a venue's measure reads (a ``matrix`` scenario set's ``file``, a Derive
``snapshot``), is kept as an absolute path and its SHA-256 goes into the fingerprint: the document
re-runs on the machine that has the file, and a changed file is a different case.

The **fingerprint** is the SHA-256 of the document's canonical JSON (keys sorted, no spaces, every
number as a float, so ``10`` and ``10.0`` are one input) and of those files' digests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marginopt.errors import CaseError, Location
from marginopt.models.reader import _read_csv, _read_parquet, load_yaml

TABLES = ("instruments", "positions", "hedges")
FILE_KEYS = ("file", "snapshot")  # keys under venues and limits whose text names a file a measure reads


@dataclass(frozen=True)
class CaseDocument:
    """A case's inputs as JSON data; ``source`` is where relative names resolve (the case file)."""

    data: Mapping[str, Any]
    source: Path
    files: Mapping[str, str] = field(default_factory=dict)  # absolute path -> SHA-256 of each file a measure reads

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.data, self.files)

    @property
    def name(self) -> str:
        """How a person names the case: its description, else its file's name."""
        text = self.data.get("description")
        return text if isinstance(text, str) and text else self.source.name


def case_document(path: str | Path) -> CaseDocument:
    """The case file at ``path`` as a document, its tables inline (CaseError for a file it cannot read)."""
    path = Path(path).resolve()
    data = _plain(load_yaml(path).value)
    if not isinstance(data, dict):
        raise CaseError(Location(path), "(root)", "a mapping of the case's keys", type(data).__name__)
    for key in TABLES:
        _inline(data, key, path)
    market = data.get("market")
    if isinstance(market, dict):
        _inline(market, "history", path, "market.history")
    files: dict[str, str] = {}
    for key in ("venues", "limits"):
        if key in data:
            data[key] = _absolute_files(data[key], path.parent, files, key)
    return CaseDocument(data, path, files)


def data_document(data: Mapping[str, Any], source: str | Path) -> CaseDocument:
    """A case already given as JSON data (the service's request: JSON types only), every table inline."""
    return CaseDocument(data, Path(source))


def _inline(holder: dict[str, Any], key: str, case_path: Path, field_name: str | None = None) -> None:
    """Replace a table path (or the ``{table: path, ...}`` form) under ``holder[key]`` by its rows."""
    value = holder.get(key)
    if isinstance(value, dict) and isinstance(value.get("table"), str):
        value["table"] = _rows(case_path, value["table"], field_name or key)
    elif isinstance(value, str):
        holder[key] = _rows(case_path, value, field_name or key)


def _rows(case_path: Path, name: str, field_name: str) -> list[dict[str, Any]]:
    path = (case_path.parent / name).resolve()
    if not path.is_file():
        raise CaseError(Location(case_path), field_name, f"an existing file (relative to {case_path.parent})", name)
    if path.suffix.lower() == ".csv":
        columns, n = _read_csv(path, field_name)
    else:
        columns = _read_parquet(path, field_name)
        n = len(next(iter(columns.values()), []))
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for column, cells in columns.items():
        for row, cell in zip(rows, cells):
            cell = _plain(cell)
            if cell is None or (isinstance(cell, float) and math.isnan(cell)):
                continue  # an empty cell: absent, as in an inline row
            row[column] = cell
    return rows


def _absolute_files(value: Any, folder: Path, files: dict[str, str], where: str) -> Any:
    """``value`` with each file a measure names made absolute, its digest recorded in ``files``."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in FILE_KEYS and isinstance(v, str):
                path = (folder / v).resolve()
                if path.is_file():  # a name that is no file is left for the case reader to refuse, with its line
                    files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
                    v = str(path)
            out[k] = _absolute_files(v, folder, files, f"{where}.{k}")
        return out
    if isinstance(value, list):
        return [_absolute_files(v, folder, files, f"{where}.{i}") for i, v in enumerate(value)]
    return value


def _plain(value: Any) -> Any:
    """YAML, CSV and Parquet values as JSON values: dates as ISO text, numpy scalars as Python ones,
    line-keeping containers as plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # a numpy scalar
        return value.item()
    return value


def canonical_json(data: Any) -> str:
    """The document as the fingerprint reads it: keys sorted, no spaces, every number a float.

    Integers become floats by a round trip through the C JSON codec (``parse_int=float``): a third of the
    time of a walk in Python over a case of 70,000 values (the service fingerprints every request's case).
    """
    floats = json.loads(json.dumps(data, allow_nan=False), parse_int=float)
    return json.dumps(floats, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def fingerprint(data: Any, files: Mapping[str, str] | None = None) -> str:
    """SHA-256 (hex) of the canonical document and of the digest of each file it names."""
    h = hashlib.sha256(canonical_json(data).encode("utf-8"))
    for path, digest in sorted((files or {}).items()):
        h.update(f"\n{path}\0{digest}".encode())
    return h.hexdigest()
