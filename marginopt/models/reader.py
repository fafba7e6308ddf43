"""Reading case input with its location, so every error names file, line or row, and field.

YAML is parsed with line numbers kept on every mapping key and list item; a
``Node`` is one value with its dotted field path and line. Tables (inline lists,
CSV or Parquet) are read into a ``Table`` that maps a row index back to where the
row came from.

A case can also arrive as data (a JSON document, a dict) rather than a file: its
root ``Node`` then has no lines, inline table rows are counted from 1, and with
``files_refused`` set every value that would name a file is refused with that
reason (the HTTP service reads no file a request names).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from marginopt.errors import CaseError, Location

_MISSING = CaseError._MISSING


class _LineDict(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of each key (1-based)."""

    lines: dict[Any, int]
    line: int


class _LineList(list):  # type: ignore[type-arg]
    lines: list[int]
    line: int


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    out = _LineDict()
    out.lines = {}
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise CaseError(
                Location(loader.name, key_node.start_mark.line + 1, "line"),
                str(key),
                "each key once in a mapping",
                "a duplicate key",
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.lines = [child.start_mark.line + 1 for child in node.value]
    out.line = node.start_mark.line + 1
    return out


# YAML 1.1 (PyYAML) reads 1e6 and 2.0e6 as text; case files (and CASE_FORMAT.md)
# write numbers that way, so resolve floats by the YAML 1.2 core schema.
_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path) -> Node:
    """Parse a YAML file into a root ``Node``; a syntax error names the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaseError(Location(path), "file", "an existing case file", str(path)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise CaseError(Location(path), "file", "a readable UTF-8 YAML file", str(exc)) from None
    loader = _Loader(text)
    loader.name = str(path)
    try:
        value = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise CaseError(Location(path, line, "line"), "(syntax)", "valid YAML", str(exc.problem)) from None
    finally:
        loader.dispose()
    return Node(path, "", value, 1)


@dataclass(frozen=True)
class Node:
    """One value of a YAML document with the file, dotted field path and line it came from."""

    file: Path
    path: str
    value: Any
    line: int | None
    # Why this document may not name files (None: it may, relative to ``file``). Children inherit it.
    files_refused: str | None = None

    @property
    def where(self) -> Location:
        return Location(self.file, self.line, "line")

    def error(self, expected: str, got: Any = _MISSING) -> CaseError:
        return CaseError(self.where, self.path or "(top level)", expected, got)

    def _child(self, key: Any, value: Any, line: int | None) -> Node:
        if isinstance(value, Node):
            # A value from another document placed here (a case's value inside a venue preset):
            # it keeps its own file, line and field, so an error names where it was written.
            return value
        path = f"{self.path}.{key}" if self.path else str(key)
        return Node(self.file, path, value, line, self.files_refused)

    def refuse_file(self, expected: str) -> None:
        """Raise when this value names a file and its document may not read files."""
        if self.files_refused is not None and isinstance(self.value, str):
            raise self.error(f"{expected} ({self.files_refused})", self.value)

    # -- structure ---------------------------------------------------------
    def mapping(self, allowed: Iterable[str] | None = None, required: Iterable[str] = ()) -> dict[str, Node]:
        """The children of a mapping; unknown keys (when ``allowed`` is given) and missing required keys are errors."""
        if not isinstance(self.value, dict):
            raise self.error("a mapping", self.value)
        lines = getattr(self.value, "lines", {})
        out = {}
        for key, value in self.value.items():
            if not isinstance(key, str):
                key = str(key)
            out[key] = self._child(key, value, lines.get(key, self.line))
        if allowed is not None:
            allowed = tuple(allowed)
            for key, node in out.items():
                if key not in allowed:
                    raise CaseError(node.where, node.path, f"a known key (one of {', '.join(allowed)})", key)
        for key in required:
            if key not in out:
                raise CaseError(self.where, self._child(key, None, None).path, "this key to be present", "nothing")
        return out

    def sequence(self) -> list[Node]:
        if not isinstance(self.value, list):
            raise self.error("a list", self.value)
        lines = getattr(self.value, "lines", [self.line] * len(self.value))
        return [self._child(i, v, line) for i, (v, line) in enumerate(zip(self.value, lines))]

    # -- scalars -------------------------------------------------------------
    def number(
        self,
        *,
        lower: float | None = None,
        upper: float | None = None,
        lower_open: bool = False,
        upper_open: bool = False,
        integer: bool = False,
    ) -> float:
        """A finite number within the given bounds (closed unless ``*_open``)."""
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(_describe_range(lower, upper, lower_open, upper_open, integer), v)
        if not math.isfinite(v) or (integer and v != int(v)):
            raise self.error(_describe_range(lower, upper, lower_open, upper_open, integer), v)
        if lower is not None and (v < lower or (lower_open and v == lower)):
            raise self.error(_describe_range(lower, upper, lower_open, upper_open, integer), v)
        if upper is not None and (v > upper or (upper_open and v == upper)):
            raise self.error(_describe_range(lower, upper, lower_open, upper_open, integer), v)
        return int(v) if integer else float(v)

    def string(self, choices: Iterable[str] | None = None) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise self.error("a non-empty text", self.value)
        if choices is not None:
            choices = tuple(choices)
            if self.value not in choices:
                raise self.error(f"one of {', '.join(choices)}", self.value)
        return self.value

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error("true or false", self.value)
        return self.value

    def date(self) -> dt.date:
        v = self.value
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, dt.date):
            return v
        if isinstance(v, str):
            try:
                return dt.date.fromisoformat(v.strip())
            except ValueError:
                pass
        raise self.error("a date YYYY-MM-DD", v)


def _describe_range(lower: float | None, upper: float | None, lo_open: bool, up_open: bool, integer: bool) -> str:
    what = "an integer" if integer else "a finite number"
    if lower is not None and upper is not None:
        return f"{what} in {'(' if lo_open else '['}{lower:g}, {upper:g}{')' if up_open else ']'}"
    if lower is not None:
        return f"{what} {'>' if lo_open else '>='} {lower:g}"
    if upper is not None:
        return f"{what} {'<' if up_open else '<='} {upper:g}"
    return what


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A table of the case with the location of each row.

    ``frame`` holds the columns as read (objects for inline tables, typed for
    CSV/Parquet); ``row_lines`` gives the YAML line of each inline row, and is
    ``None`` for a table read from a file (rows are then counted from 1 after
    the header).
    """

    name: str
    frame: pd.DataFrame
    file: Path
    row_lines: tuple[int, ...] | None
    inline: bool = False  # rows given as data (no lines when the document was JSON, not YAML)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def is_inline(self) -> bool:
        return self.inline or self.row_lines is not None

    def where(self, i: int) -> Location:
        if self.row_lines is not None:
            return Location(self.file, self.row_lines[i], "line")
        return Location(self.file, i + 1, "row")

    def error(self, i: int, column: str, expected: str, got: Any = _MISSING) -> CaseError:
        return CaseError(self.where(i), f"{self.name}.{column}", expected, got)

    def check_columns(self, required: Iterable[str], optional: Iterable[str]) -> None:
        required, optional = tuple(required), tuple(optional)
        known = required + optional
        for col in self.frame.columns:
            if col not in known:
                first = int(np.argmax(~self._missing(col))) if len(self.frame) else 0
                where = self.where(first) if self.is_inline else Location(self.file, None)
                raise CaseError(where, f"{self.name}.{col}", f"a known column (one of {', '.join(known)})", col)
        if len(self.frame) == 0:
            return
        for col in required:
            if col not in self.frame.columns:
                raise self.error(0, col, "this column to be present", "nothing")

    def has(self, column: str) -> bool:
        return column in self.frame.columns

    def _missing(self, column: str) -> np.ndarray:
        """Empty cells: an absent key or blank text inline; an empty cell or null in a file."""
        if column not in self.frame.columns:
            return np.ones(len(self.frame), dtype=bool)
        values = self.frame[column].tolist()
        if self.is_inline:
            return np.array([v is None or (isinstance(v, str) and not v.strip()) for v in values], dtype=bool)
        return np.array([v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip())
                         for v in values], dtype=bool)

    def texts(self, column: str, *, required: bool = True, choices: Iterable[str] | None = None) -> list[str | None]:
        """The column as text; missing cells are an error when ``required``."""
        n = len(self.frame)
        if column not in self.frame.columns:
            if required and n:
                raise self.error(0, column, "a value", "nothing")
            return [None] * n
        miss = self._missing(column)
        choices = tuple(choices) if choices is not None else None
        out: list[str | None] = []
        for i, (v, m) in enumerate(zip(self.frame[column].tolist(), miss)):
            if m:
                if required:
                    raise self.error(i, column, "a value", None)
                out.append(None)
                continue
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, (dt.date, pd.Timestamp)):
                v = pd.Timestamp(v).date().isoformat()
            s = str(v).strip()
            if choices is not None and s not in choices:
                raise self.error(i, column, f"one of {', '.join(choices)}", v)
            out.append(s)
        return out

    def numbers(
        self,
        column: str,
        *,
        default: float | None = None,
        lower: float | None = None,
        upper: float | None = None,
        lower_open: bool = False,
        upper_open: bool = False,
    ) -> np.ndarray:
        """The column as finite float64; a missing cell takes ``default`` or is an error."""
        n = len(self.frame)
        expected = _describe_range(lower, upper, lower_open, upper_open, False)
        if column not in self.frame.columns:
            if default is None and n:
                raise self.error(0, column, expected, "nothing")
            return np.full(n, np.nan if default is None else default)
        raw = self.frame[column]
        miss = self._missing(column)
        vals = np.empty(n)
        for i, (v, m) in enumerate(zip(raw.tolist(), miss)):
            if m:
                if default is None:
                    raise self.error(i, column, expected, "an empty cell")
                vals[i] = default
                continue
            if isinstance(v, bool):
                raise self.error(i, column, expected, v)
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise self.error(i, column, expected, v) from None
            if not math.isfinite(f):
                raise self.error(i, column, expected, v)
            vals[i] = f
        bad = np.zeros(n, dtype=bool)
        if lower is not None:
            bad |= (vals < lower) | ((vals == lower) if lower_open else False)
        if upper is not None:
            bad |= (vals > upper) | ((vals == upper) if upper_open else False)
        if bad.any():
            i = int(np.argmax(bad))
            raise self.error(i, column, expected, raw.iloc[i])
        return vals

    def dates(self, column: str, *, required: bool) -> list[dt.date | None]:
        out: list[dt.date | None] = []
        for i, v in enumerate(self.texts(column, required=required)):
            if v is None:
                out.append(None)
                continue
            try:
                out.append(dt.date.fromisoformat(v))
            except ValueError:
                try:  # a timestamp at midnight, as spreadsheets and Parquet write dates
                    stamp = dt.datetime.fromisoformat(v)
                except ValueError:
                    stamp = None
                if stamp is None or stamp.time() != dt.time(0):
                    raise self.error(i, column, "a date YYYY-MM-DD", v) from None
                out.append(stamp.date())
        return out


_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(node: Node, name: str) -> Table:
    """A table given inline (a list of mappings) or as a path to a CSV or Parquet file."""
    value = node.value
    if value is None:
        return Table(name, pd.DataFrame(), node.file, ())
    node.refuse_file("inline rows")
    if isinstance(value, str):
        return _read_table_file(node, name)
    if not isinstance(value, list):
        raise node.error("a list of rows or a path to a .csv or .parquet file", value)
    rows = node.sequence()
    records = []
    for row in rows:
        if not isinstance(row.value, dict):
            raise row.error("a row as a mapping of column: value", row.value)
        records.append({str(k): v for k, v in row.value.items()})
    # Object columns with None for an absent key, so an explicit .nan stays a (bad) value.
    columns = list(dict.fromkeys(k for r in records for k in r))
    frame = pd.DataFrame({c: pd.Series([r.get(c) for r in records], dtype=object) for c in columns})
    if node.line is None:  # data without lines (JSON): errors name the row, counted from 1
        return Table(name, frame, node.file, None, inline=True)
    lines = tuple(r.line or node.line or 0 for r in rows)
    return Table(name, frame, node.file, lines)


def resolve_path(node: Node, suffixes: Iterable[str]) -> Path:
    suffixes = tuple(suffixes)
    node.refuse_file("data given inline, not a file path")
    rel = node.string()
    path = (node.file.parent / rel).resolve()
    if path.suffix.lower() not in suffixes:
        raise node.error(f"a path ending in {' or '.join(suffixes)}", rel)
    if not path.is_file():
        raise node.error(f"an existing file (relative to {node.file.parent})", rel)
    return path


def read_frame(node: Node) -> tuple[Path, pd.DataFrame]:
    """Read the CSV or Parquet file a node names."""
    path = resolve_path(node, _TABLE_SUFFIXES)
    try:
        if path.suffix.lower() == ".csv":
            # Only an empty cell is missing: a literal "nan" must be refused, not read as empty.
            frame = pd.read_csv(path, skipinitialspace=True, keep_default_na=False, na_values=[""])
        else:
            frame = pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a malformed file
        raise CaseError(Location(path), node.path, "a readable table file", f"{type(exc).__name__}: {exc}") from None
    if not isinstance(frame.index, pd.RangeIndex):
        if path.suffix.lower() == ".csv":  # pandas made the extra cells of every row an index
            raise CaseError(Location(path, 1, "row"), node.path, "no more cells in a row than columns in the header", "extra cells")
        frame = frame.reset_index()  # a Parquet index is data (a scenario label, say)
    frame.columns = [str(c).strip() for c in frame.columns]
    return path, frame


def _read_table_file(node: Node, name: str) -> Table:
    path, frame = read_frame(node)
    return Table(name, frame, path, None)

