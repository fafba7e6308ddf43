"""Reading case input with its location, so every error names file, line or row, and field.

YAML is parsed with line numbers kept on every mapping key and list item; a
``Node`` is one value with its dotted field path and line. Tables (inline lists,
CSV or Parquet) are read into a ``Table`` that maps a row index back to where the
row came from.

A case can also arrive as data (a JSON document, a dict) rather than a file: its
root ``Node`` then has no lines, inline table rows are counted from 1, and with
``files_refused`` set every value that would name a file is refused with that
reason (the HTTP service reads no file a request names).

Start-up matters here (``marginopt margin`` reads a case and exits): YAML is parsed by
libyaml where PyYAML has it, and CSV by the ``csv`` module; pandas is imported only
when a Parquet file is read.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gc
import itertools
import math
import re
import sys
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from marginopt.errors import CaseError, Location
from marginopt.models.magnitude import MAX_MAGNITUDE, MIN_SCALE, Bound, describe, within

_MISSING = CaseError._MISSING


class _LineDict(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of each key (1-based)."""

    lines: dict[Any, int]
    line: int


class _LineList(list):  # type: ignore[type-arg]
    lines: list[int]
    line: int


def _construct_child(loader: Any, node: yaml.Node) -> Any:
    # Scalars straight through their tag's constructor: construct_object's bookkeeping (memo,
    # recursion guard) is for collections, and scalars are two nodes in three of a large case.
    try:
        if type(node) is yaml.ScalarNode:
            build = loader.yaml_constructors.get(node.tag)
            if build is not None:
                return build(loader, node)
        return loader.construct_object(node, deep=True)
    except (ValueError, TypeError, OverflowError) as exc:  # an explicit tag on text it cannot read: !!float abc, !!int 1.5
        raise CaseError(Location(loader.name, node.start_mark.line + 1, "line"), "(syntax)",
                        f"a value that its tag {node.tag} can read", str(exc)) from None


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> _LineDict:
    out = _LineDict()
    out.lines = {}
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = _construct_child(loader, key_node)
        line = key_node.start_mark.line + 1
        if not isinstance(key, Hashable):
            raise CaseError(Location(loader.name, line, "line"), "(key)", "a text or a number as a key", type(key).__name__)
        if key in out:
            raise CaseError(Location(loader.name, line, "line"), str(key), "each key once in a mapping", "a duplicate key")
        out[key] = _construct_child(loader, value_node)
        out.lines[key] = line
    return out


def _construct_sequence(loader: Any, node: yaml.SequenceNode) -> _LineList:
    out = _LineList([_construct_child(loader, child) for child in node.value])
    out.lines = [child.start_mark.line + 1 for child in node.value]
    out.line = node.start_mark.line + 1
    return out


# YAML 1.1 (PyYAML) reads 1e6 and 2.0e6 as text; case files (and CASE_FORMAT.md)
# write numbers that way, so resolve floats by the YAML 1.2 core schema.
_YAML12_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)


def _construct_timestamp(loader: Any, node: yaml.ScalarNode) -> Any:
    # An impossible date (2026-13-45, 2026-02-30, year 0, hour 25) matches YAML's timestamp
    # pattern and PyYAML's constructor raises ValueError mid-parse. Kept as its text, it is
    # refused by the field that wants a date (or taken as text where text is wanted), with its line.
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError):
        return loader.construct_scalar(node)


def _case_loader(base: type[Any]) -> type[Any]:
    """``base`` (PyYAML's safe loader, C or pure Python) with line-keeping collections and YAML 1.2 floats."""
    loader: type[Any] = type(f"Case{base.__name__}", (base,), {})
    loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))
    loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
    loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
    return loader


# libyaml parses a large case about 4x faster than the pure-Python parser and gives the same
# marks (lines); the pure-Python one is the fallback for a PyYAML built without libyaml.
PURE_LOADER = _case_loader(yaml.SafeLoader)
C_LOADER = _case_loader(yaml.CSafeLoader) if yaml.__with_libyaml__ else None
LOADER = C_LOADER or PURE_LOADER


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while a reader builds many objects and no reference cycle.

    Its passes over the whole heap, triggered by the allocations, cost more than the parse
    itself: the 200 x 30 treasury case (some 200,000 objects) loaded in 0.70 s with them and
    0.32 s without. It resumes when the reader returns.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@_collector_paused()
def load_yaml(path: Path, *, loader: type[Any] | None = None) -> Node:
    """Parse a YAML file into a root ``Node``; a syntax error names the line.

    ``loader`` is one of ``C_LOADER`` and ``PURE_LOADER`` (default ``LOADER``: libyaml when present).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CaseError(Location(path), "file", "an existing case file", str(path)) from None
    except (OSError, ValueError) as exc:  # a folder, no permission, a name too long or with a NUL byte
        raise CaseError(Location(path), "file", "a readable UTF-8 YAML file", str(exc)) from None
    text = decode_utf8(raw, path, "(encoding)")
    parser = None
    try:
        parser = (loader or LOADER)(text)  # the pure-Python reader checks the characters here
        parser.name = str(path)
        value = parser.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise CaseError(Location(path, line, "line"), "(syntax)", "valid YAML", str(exc.problem)) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: its mark is an offset, not a line
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        at = text.find(char)
        raise CaseError(Location(path, text.count("\n", 0, at) + 1 if at >= 0 else None, "line"), "(syntax)",
                        "valid YAML", exc.reason) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # a tagged document root; nesting too deep
        raise CaseError(Location(path, 1, "line"), "(syntax)", "a YAML document marginopt can read",
                        f"{type(exc).__name__}: {exc}") from None
    finally:
        if parser is not None:
            parser.dispose()
    return Node(path, "", value, 1)


def decode_utf8(raw: bytes, path: Path, field: str, expected: str = "UTF-8 text") -> str:
    """``raw`` as UTF-8 text (a byte-order mark dropped); a byte that is not UTF-8 is an error naming its line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise CaseError(Location(path, line, "line"), field, expected,
                        f"byte 0x{raw[exc.start]:02x} at offset {exc.start}, not UTF-8") from None


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
        bound: Bound = Bound.MAGNITUDE,
    ) -> float:
        """A finite number within the given bounds (closed unless ``*_open``) and the magnitude guard's ``bound``."""
        v = self.value
        if (isinstance(v, bool) or not isinstance(v, (int, float))
                or (isinstance(v, int) and abs(v) > _FLOAT_MAX)  # past float range: math.isfinite would raise
                or not math.isfinite(v) or (integer and v != int(v)) or not within(v, bound)
                or (lower is not None and (v < lower or (lower_open and v == lower)))
                or (upper is not None and (v > upper or (upper_open and v == upper)))):
            raise self.error(_describe_range(lower, upper, lower_open, upper_open, integer, bound), v)
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


def _describe_range(lower: float | None, upper: float | None, lo_open: bool, up_open: bool, integer: bool,
                    bound: Bound = Bound.MAGNITUDE) -> str:
    what = "an integer" if integer else "a finite number"
    if lower is not None and upper is not None:
        text = f"{what} in {'(' if lo_open else '['}{lower:g}, {upper:g}{')' if up_open else ']'}"
    elif lower is not None:
        text = f"{what} {'>' if lo_open else '>='} {lower:g}"
    elif upper is not None:
        text = f"{what} {'<' if up_open else '<='} {upper:g}"
    else:
        text = what
    # The guard is named where it narrows the range (not for a haircut in [0, 1), say).
    inside = lower is not None and upper is not None and within(lower) and within(upper) and bound is not Bound.SCALE
    return text if inside or bound is Bound.NONE else f"{text}, {describe(bound)}"


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------


class ColumnSource(Protocol):
    """Columns by name, each an iterable of cells in row order: a dict of lists, or a pandas DataFrame."""

    def items(self) -> Iterable[tuple[Any, Iterable[Any]]]: ...


# What an inline (YAML or JSON) cell of the wrong type is told: its type is what was written.
INLINE_NUMBER = " (a number, not text or true/false: in YAML or JSON write 10, not \"10\")"
INLINE_TEXT = " (not a number or true/false: in YAML or JSON quote it, \"7\" not 7)"


@dataclass(frozen=True, init=False)
class Table:
    """A table of the case with the location of each row.

    ``columns`` holds each column's cells as read: Python objects for inline
    tables; for files numbers, text and ``None`` for an empty cell, typed per
    column as pandas types a CSV (``_read_csv``). ``row_lines`` gives the YAML
    line of each inline row, and is ``None`` for a table read from a file (rows
    are then counted from 1 after the header).

    An inline cell (YAML or JSON) is typed: a number column takes a number only
    (``"10"``, quoted, is text and refused, as is ``true``), a text column text
    only (``7`` is refused; a date column also takes a YAML date). A cell of a
    file is text to begin with and is read as a number where one is expected.
    """

    name: str
    columns: Mapping[str, tuple[Any, ...]]
    file: Path
    row_lines: tuple[int, ...] | None
    inline: bool  # rows given as data (no lines when the document was JSON, not YAML)
    n_rows: int

    def __init__(self, name: str, columns: ColumnSource, file: Path, row_lines: tuple[int, ...] | None,
                 inline: bool = False, n_rows: int | None = None) -> None:
        cells = {str(k): tuple(v) for k, v in columns.items()}
        if n_rows is None:  # an inline row without keys still counts: give n_rows for those
            n_rows = len(next(iter(cells.values()))) if cells else 0
        if any(len(c) != n_rows for c in cells.values()):  # an invariant: every reader builds whole rows
            raise RuntimeError(f"table {name}: columns of unequal length (a bug in the reader, not in the input)")
        for key, value in (("name", name), ("columns", cells), ("file", file), ("row_lines", row_lines),
                           ("inline", inline), ("n_rows", n_rows)):
            object.__setattr__(self, key, value)

    def __len__(self) -> int:
        return self.n_rows

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
        for col in self.columns:
            if col not in known:
                first = int(np.argmax(~self._missing(col))) if self.n_rows else 0
                where = self.where(first) if self.is_inline else Location(self.file, None)
                raise CaseError(where, f"{self.name}.{col}", f"a known column (one of {', '.join(known)})", col)
        if self.n_rows == 0:
            return
        for col in required:
            if col not in self.columns:
                raise self.error(0, col, "this column to be present", "nothing")

    def has(self, column: str) -> bool:
        return column in self.columns

    def _missing(self, column: str) -> np.ndarray:
        """Empty cells: an absent key or blank text inline; an empty cell or null in a file."""
        if column not in self.columns:
            return np.ones(self.n_rows, dtype=bool)
        values = self.columns[column]
        if self.is_inline:
            return np.array([v is None or (isinstance(v, str) and not v.strip()) for v in values], dtype=bool)
        return np.array([v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip())
                         for v in values], dtype=bool)

    def texts(self, column: str, *, required: bool = True, choices: Iterable[str] | None = None,
              dates: bool = False) -> list[str | None]:
        """The column as text; missing cells are an error when ``required``. An inline cell must be text
        (or, with ``dates``, a YAML date), not a number or true/false."""
        n = self.n_rows
        if column not in self.columns:
            if required and n:
                raise self.error(0, column, "a value", "nothing")
            return [None] * n
        miss = self._missing(column)
        choices = tuple(choices) if choices is not None else None
        out: list[str | None] = []
        for i, (v, m) in enumerate(zip(self.columns[column], miss)):
            if m:
                if required:
                    raise self.error(i, column, "a value", None)
                out.append(None)
                continue
            if self.is_inline and not (isinstance(v, str) or (dates and isinstance(v, dt.date))):
                raise self.error(i, column, "a date YYYY-MM-DD" if dates else "text" + INLINE_TEXT, v)
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, dt.datetime):  # a pandas Timestamp too (Parquet): its date, as for a YAML date
                v = v.date()
            if isinstance(v, dt.date):
                v = v.isoformat()
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
        bound: Bound = Bound.MAGNITUDE,
    ) -> np.ndarray:
        """The column as finite float64 within the magnitude guard's ``bound``; a missing cell takes ``default`` or is an error."""
        n = self.n_rows
        expected = _describe_range(lower, upper, lower_open, upper_open, False, bound)
        if column not in self.columns:
            if default is None and n:
                raise self.error(0, column, expected, "nothing")
            return np.full(n, np.nan if default is None else default)
        raw = self.columns[column]
        miss = self._missing(column)
        vals = np.empty(n)
        for i, (v, m) in enumerate(zip(raw, miss)):
            if m:
                if default is None:
                    raise self.error(i, column, expected, "an empty cell")
                vals[i] = default
                continue
            if isinstance(v, bool) or (self.is_inline and isinstance(v, str)):
                raise self.error(i, column, expected + (INLINE_NUMBER if self.is_inline else ""), v)
            try:
                f = float(v)
            except (TypeError, ValueError, OverflowError):
                raise self.error(i, column, expected, v) from None
            if not math.isfinite(f):
                raise self.error(i, column, expected, v)
            vals[i] = f
        bad = np.zeros(n, dtype=bool)
        if bound is not Bound.NONE:  # the magnitude guard, for the whole column at once (a NaN default passes)
            size = np.abs(vals)
            bad |= (size > MAX_MAGNITUDE) | ((size < MIN_SCALE) if bound is Bound.SCALE else False)
        if lower is not None:
            bad |= (vals < lower) | ((vals == lower) if lower_open else False)
        if upper is not None:
            bad |= (vals > upper) | ((vals == upper) if upper_open else False)
        if bad.any():
            i = int(np.argmax(bad))
            raise self.error(i, column, expected, raw[i])
        return vals

    def dates(self, column: str, *, required: bool) -> list[dt.date | None]:
        out: list[dt.date | None] = []
        for i, v in enumerate(self.texts(column, required=required, dates=True)):
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
        return Table(name, {}, node.file, ())
    node.refuse_file("inline rows")
    if isinstance(value, str):
        return read_table_file(node, name)
    if not isinstance(value, list):
        raise node.error("a list of rows or a path to a .csv or .parquet file", value)
    rows = node.sequence()
    records = []
    for row in rows:
        if not isinstance(row.value, dict):
            raise row.error("a row as a mapping of column: value", row.value)
        records.append({str(k): v for k, v in row.value.items()})
    # None for an absent key, so an explicit .nan stays a (bad) value.
    names = dict.fromkeys(k for r in records for k in r)
    columns = {c: [r.get(c) for r in records] for c in names}
    if node.line is None:  # data without lines (JSON): errors name the row, counted from 1
        return Table(name, columns, node.file, None, inline=True, n_rows=len(records))
    lines = tuple(r.line or node.line or 0 for r in rows)
    return Table(name, columns, node.file, lines, n_rows=len(records))


def resolve_path(node: Node, suffixes: Iterable[str]) -> Path:
    suffixes = tuple(suffixes)
    node.refuse_file("data given inline, not a file path")
    rel = node.string()
    try:
        path = (node.file.parent / rel).resolve()
        if path.suffix.lower() not in suffixes:
            raise node.error(f"a path ending in {' or '.join(suffixes)}", rel)
        if not path.is_file():
            raise node.error(f"an existing file (relative to {node.file.parent})", rel)
    except (OSError, ValueError):  # a NUL byte in the name, a name too long for the system
        raise node.error(f"a file path ending in {' or '.join(suffixes)} that this system can open", rel) from None
    return path


def read_table_file(node: Node, name: str) -> Table:
    """Read the CSV or Parquet file a node names; rows are counted from 1 after the header."""
    path = resolve_path(node, _TABLE_SUFFIXES)
    if path.suffix.lower() == ".csv":
        columns, n_rows = _read_csv(path, node.path)
        return Table(name, columns, path, None, n_rows=n_rows)
    return Table(name, _read_parquet(path, node.path), path, None)


@_collector_paused()
def _read_csv(path: Path, field: str) -> tuple[dict[str, list[Any]], int]:
    """A CSV file's columns, typed as pandas types them (``pd.read_csv(path, skipinitialspace=True,
    keep_default_na=False, na_values=[""])``, which this reader replaced) with ``None`` for an empty
    cell: only an empty cell is missing, so a literal ``nan`` stays a (bad) value."""
    rows: list[list[str]] = []
    names: list[str] | None = None
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            # strict: an unclosed quote is an error, not a field running to the end of the file
            reader = csv.reader(f, skipinitialspace=True, strict=True)
            for cells in reader:
                if len(cells) <= 1 and not any(cells):  # a blank line (spaces at most): skipped, as pandas does
                    continue
                if names is None:
                    names = [c.strip() for c in cells]
                    continue
                if len(cells) > len(names):
                    raise CaseError(Location(path, len(rows) + 1, "row"), field,
                                    f"no more cells in a row than the {len(names)} columns of the header", f"{len(cells)} cells")
                rows.append(cells)
    except csv.Error as exc:
        raise CaseError(Location(path, len(rows) + 1 if names is not None else None, "row"), field,
                        "a readable CSV table", str(exc)) from None
    except UnicodeDecodeError:
        decode_utf8(path.read_bytes(), path, field, "a readable table file")  # raises, naming the line of the bad byte
        raise
    except OSError as exc:
        raise CaseError(Location(path), field, "a readable table file", f"{type(exc).__name__}: {exc}") from None
    if names is None:
        raise CaseError(Location(path), field, "a table file with a header line", "an empty file")
    _check_header(path, field, names)
    # Transposed, short rows padded with empty (missing) cells.
    cells_by_column = list(itertools.zip_longest(*rows, fillvalue="")) if rows else []
    columns = {name: _typed(cells_by_column[j] if j < len(cells_by_column) else ("",) * len(rows))
               for j, name in enumerate(names)}
    return columns, len(rows)


def _check_header(path: Path, field: str, names: Sequence[str]) -> None:
    for j, name in enumerate(names):
        if not name:
            raise CaseError(Location(path), field, "a name for every column of the header", f"an empty name in column {j + 1}")
        if name in names[:j]:
            raise CaseError(Location(path), field, "each column name once in the header", name)


# pandas' C parser's number and boolean grammar: surrounding spaces or tabs, no "_" or "nan"
# (a literal nan is text, so it is refused where a number is expected, not read as missing).
_INT_CHARS = b"0123456789+- \t\n"
_DECIMAL_CHARS = _INT_CHARS + b".eE"
_FLOAT = r"[ \t]*[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
_FLOAT_COLUMN = re.compile(f"{_FLOAT}(?:\n{_FLOAT})*")
_BOOL_COLUMN = re.compile(r"(?:true|false)(?:\n(?:true|false))*", re.IGNORECASE)
_NUMBER = re.compile(_FLOAT)
_INT64 = 2**63
_FLOAT_MAX = int(sys.float_info.max)


def _only(text: bytes, allowed: bytes) -> bool:
    """Whether ``text`` has no byte but ``allowed`` (bytes.translate: a pass at C speed)."""
    return not text.translate(None, allowed)


def _typed(cells: Sequence[str]) -> list[Any]:
    """One CSV column as pandas types it: all integers, all numbers, all true/false, else text."""
    complete = "" not in cells
    present = cells if complete else [c for c in cells if c]
    if not present:
        return [None] * len(cells)
    joined = "\n".join(present)  # one check per column, not one per cell
    if joined.count("\n") != len(present) - 1:  # a quoted cell with a line break is text
        return [c if c else None for c in cells]
    # Made of digits, signs, points, exponent marks and blanks only, a cell is a number to
    # Python's int() / float() exactly when it is one to pandas' grammar above.
    ascii_text = joined.encode("ascii", errors="replace")  # "?" for the rest: no number has one
    if _only(ascii_text, _INT_CHARS):
        try:
            ints = list(map(int, cells)) if complete else [int(c) if c else None for c in cells]
        except ValueError:
            pass
        else:
            if not complete and all(-_INT64 <= i < _INT64 for i in ints if i is not None):
                return [None if i is None else float(i) for i in ints]  # pandas: int64 with a gap is float64
            return ints
    if _only(ascii_text, _DECIMAL_CHARS) or _FLOAT_COLUMN.fullmatch(joined):  # the grammar for inf, infinity
        try:
            return list(map(float, cells)) if complete else [float(c) if c else None for c in cells]
        except ValueError:
            pass
    if _BOOL_COLUMN.fullmatch(joined):
        return [c.lower() == "true" if c else None for c in cells]
    return [c if c else None for c in cells]


def _read_parquet(path: Path, field: str) -> dict[str, list[Any]]:
    # Only here: pandas and pyarrow cost a second of start-up that YAML and CSV cases never pay.
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a malformed file
        raise CaseError(Location(path), field, "a readable table file", f"{type(exc).__name__}: {exc}") from None
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()  # a Parquet index is data (a scenario label, say)
    names = [str(c).strip() for c in frame.columns]
    _check_header(path, field, names)
    # tolist: Python numbers, and NaN (or None) for a null, as _missing expects of a file
    return {name: frame.iloc[:, j].tolist() for j, name in enumerate(names)}


def to_number(value: Any) -> float | None:
    """A cell as a float where it is a number: an int or float, or text written as a number
    (pandas' grammar, as for CSV cells); ``None`` otherwise (true/false, empty, a date, other text)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, (int, float, np.integer, np.floating)):
            return float(value)
        if isinstance(value, str) and _NUMBER.fullmatch(value):
            return float(value)
    except OverflowError:  # an integer past float range
        return None
    return None


def to_numbers(cells: Sequence[Any] | np.ndarray) -> np.ndarray:
    """``to_number`` of each cell as float64, NaN where a cell is no number."""
    if isinstance(cells, np.ndarray) and cells.dtype.kind in "fiu":
        return cells.astype(float)
    if set(map(type, cells)) <= {float, int, type(None)}:  # a numeric CSV column: at C speed (None -> NaN)
        try:
            return np.array(cells, dtype=float)
        except OverflowError:  # an integer past float range: cell by cell below
            pass
    return np.array([math.nan if (x := to_number(v)) is None else x for v in cells], dtype=float)

