"""The case reader: CSV tables read without pandas but typed as pandas typed them, and YAML
parsed by libyaml with the values and lines of the pure-Python parser.

Every expected value below is read off the file text each test writes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import marginopt
from marginopt.errors import CaseError
from marginopt.models import reader
from marginopt.models.reader import Node, Table, load_yaml, read_table

LOADERS = [pytest.param(reader.PURE_LOADER, id="pure-python"),
           pytest.param(reader.C_LOADER, id="libyaml",
                        marks=pytest.mark.skipif(reader.C_LOADER is None, reason="PyYAML built without libyaml"))]


def _csv(tmp_path: Path, text: str) -> Table:
    (tmp_path / "t.csv").write_text(text, encoding="utf-8")
    return read_table(Node(tmp_path / "case.yaml", "positions", "t.csv", 7), "positions")


def _refused(fn: Any) -> CaseError:
    with pytest.raises(CaseError) as info:
        fn()
    return info.value


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------


def test_csv_columns_are_typed_as_a_whole(tmp_path: Path) -> None:
    """A column is integers, numbers, true/false or text as a whole: pandas' rule, kept."""
    t = _csv(tmp_path, "id,qty,price,flag,label,mixed\n01,2,1.50,true,a,1.50\n2,-3,2e3,FALSE,b,abc\n")
    assert len(t) == 2 and not t.is_inline
    assert t.columns["id"] == (1, 2) and t.texts("id") == ["1", "2"]  # "01" is the integer 1
    assert t.columns["qty"] == (2, -3) and list(t.numbers("qty")) == [2.0, -3.0]
    assert t.columns["price"] == (1.5, 2000.0) and t.texts("price") == ["1.5", "2000"]
    assert t.columns["flag"] == (True, False)
    assert t.texts("label") == ["a", "b"]
    assert t.texts("mixed") == ["1.50", "abc"]  # a text column keeps the text as written
    err = _refused(lambda: t.numbers("mixed"))
    assert (err.where.row, err.where.row_kind, err.field, err.got) == (2, "row", "positions.mixed", "abc")
    assert Path(err.where.file).name == "t.csv"  # type: ignore[arg-type]


def test_csv_literal_nan_is_a_bad_value_only_an_empty_cell_is_missing(tmp_path: Path) -> None:
    t = _csv(tmp_path, "venue,quantity,price\npm,nan,\npm, 4,7\n")
    assert t.columns["quantity"] == ("nan", "4")  # the space after the comma skipped
    err = _refused(lambda: t.numbers("quantity"))
    assert (err.where.row, err.field, err.got) == (1, "positions.quantity", "nan")
    assert t.columns["price"] == (None, 7.0)  # integers with a gap: numbers, as pandas reads them
    assert list(t.numbers("price", default=0.0)) == [0.0, 7.0]
    assert t.texts("price", required=False) == [None, "7"]
    err = _refused(lambda: t.numbers("price"))
    assert (err.where.row, err.got) == (1, "an empty cell")


def test_csv_row_with_more_cells_than_the_header_is_named(tmp_path: Path) -> None:
    err = _refused(lambda: _csv(tmp_path, "venue,instrument,quantity\npm,A,1\npm,B,2,9\n"))
    assert (Path(err.where.file).name, err.where.row, err.where.row_kind) == ("t.csv", 2, "row")  # type: ignore[arg-type]
    assert "3 columns" in err.expected and err.got == "4 cells"
    # a trailing comma on every row (pandas took the first column for an index)
    err = _refused(lambda: _csv(tmp_path, "venue,instrument,quantity\npm,A,1,\npm,B,2,\n"))
    assert err.where.row == 1


def test_csv_quoted_comma_and_line_break_stay_in_the_cell(tmp_path: Path) -> None:
    t = _csv(tmp_path, 'note,quantity\n"one, two",1\n"line\nbreak",2\n  three,x\n')
    assert t.texts("note") == ["one, two", "line\nbreak", "three"]
    err = _refused(lambda: t.numbers("quantity"))
    assert (err.where.row, err.got) == (3, "x")  # rows count records, not lines


def test_csv_blank_lines_are_skipped_and_short_rows_padded(tmp_path: Path) -> None:
    t = _csv(tmp_path, "\na,b\n1,2\n\n   \n3\n,\n")
    assert len(t) == 3
    assert t.columns["a"] == (1.0, 3.0, None) and t.columns["b"] == (2.0, None, None)
    assert t.texts("a", required=False) == ["1", "3", None]


def test_csv_header_and_file_problems_are_located(tmp_path: Path) -> None:
    err = _refused(lambda: _csv(tmp_path, "a,b,a\n1,2,3\n"))
    assert (err.field, err.got) == ("positions", "a")
    err = _refused(lambda: _csv(tmp_path, "a,,b\n1,2,3\n"))
    assert err.got == "an empty name in column 2"
    err = _refused(lambda: _csv(tmp_path, ""))
    assert err.got == "an empty file"
    err = _refused(lambda: _csv(tmp_path, 'a,b\n1,2\n3,"open\n'))
    assert (err.where.row, err.expected) == (2, "a readable CSV table")
    (tmp_path / "t.csv").write_bytes(b"a,b\n1,\xff\n")
    err = _refused(lambda: read_table(Node(tmp_path / "case.yaml", "positions", "t.csv", 7), "positions"))
    assert err.expected == "a readable table file"


def test_csv_byte_order_mark_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("venue,quantity\npm,1\n", encoding="utf-8-sig")
    t = read_table(Node(tmp_path / "case.yaml", "positions", "t.csv", 7), "positions")
    assert list(t.columns) == ["venue", "quantity"]


def test_parquet_table_reads_as_the_csv_one(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pd.DataFrame({" id ": ["a", "b"], "qty": [1.5, None], "day": pd.to_datetime(["2026-11-20", "2026-12-01"])}
                 ).to_parquet(tmp_path / "t.parquet")
    t = read_table(Node(tmp_path / "case.yaml", "positions", "t.parquet", 7), "positions")
    assert list(t.columns) == ["id", "qty", "day"]
    assert t.texts("id") == ["a", "b"]
    assert list(t.numbers("qty", default=-1.0)) == [1.5, -1.0]
    assert t.dates("day", required=True) == [dt.date(2026, 11, 20), dt.date(2026, 12, 1)]


def test_inline_row_without_keys_is_a_row(tmp_path: Path) -> None:
    rows = [{"venue": "pm"}, {}]
    t = read_table(Node(tmp_path / "case.yaml", "positions", rows, None), "positions")
    assert len(t) == 2 and t.texts("venue", required=False) == ["pm", None]


def test_history_prices_refuse_true_false_and_dates_are_iso(write_case: Any, tmp_path: Path) -> None:
    case = {"instruments": [], "venues": {}}
    (tmp_path / "h.csv").write_text("date,BTC\n2026-11-18,100\n2026-11-19T00:00:00,true\n")
    err = _refused(lambda: marginopt.load_case(write_case(market={"prices": {"BTC": 1.0}, "history": "h.csv"}, **case)))
    assert (err.field, err.where.row, err.got) == ("BTC", 2, "true")  # a text column: 100 and true
    (tmp_path / "h.csv").write_text("date,BTC\n2026-11-18,100\n2026/11/19,101\n")
    err = _refused(lambda: marginopt.load_case(write_case(market={"prices": {"BTC": 1.0}, "history": "h.csv"}, **case)))
    assert (err.field, err.where.row, err.got) == ("date", 2, "2026/11/19")
    # inline rows: a date; an absent price is named as such; numeric text is text (refused, not read as its number)
    rows = [{"date": "2026-11-18", "BTC": 100}, {"date": "2026-11-19", "BTC": 101.5}, {"date": "2026-11-20"}]
    err = _refused(lambda: marginopt.load_case(write_case(market={"prices": {"BTC": 1.0}, "history": rows}, **case)))
    assert (err.field, err.got) == ("BTC", "an empty cell")
    rows = [{"date": "2026-11-18", "BTC": 100}, {"date": "2026-11-19", "BTC": "101.5"}]
    path = write_case(market={"prices": {"BTC": 1.0}, "history": rows}, **case)
    err = _refused(lambda: marginopt.load_case(path))
    row_line = 1 + path.read_text().splitlines().index("  - date: '2026-11-19'")  # the second row starts there
    assert (err.field, err.where.row, err.got) == ("BTC", row_line, "101.5") and "not text" in str(err)


# ---------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------

CASE_TEXT = """\
format: marginopt/1
market:
  prices: {BTC: 1.0e5, ETH: 3000}
tiers:
  - [5.0e6, 0.98]
  - [2.0e7, 0.95]
when: 2026-11-20
names: &n [a, b]
again: *n
"""


def _same(a: Any, b: Any) -> None:
    """Equal values of the same types, with the same lines on every mapping and list."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b) and a.lines == b.lines and a.line == b.line
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b) and a.lines == b.lines and a.line == b.line
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), (a, b)


@pytest.mark.parametrize("loader", LOADERS)
def test_yaml_values_and_lines(tmp_path: Path, loader: Any) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(CASE_TEXT)
    v = load_yaml(path, loader=loader).value
    assert v.lines == {"format": 1, "market": 2, "tiers": 4, "when": 7, "names": 8, "again": 9}
    assert v["market"].lines == {"prices": 3}
    assert v["market"]["prices"] == {"BTC": 100000.0, "ETH": 3000}  # 1.0e5 a number (YAML 1.2)
    assert v["tiers"] == [[5.0e6, 0.98], [2.0e7, 0.95]] and v["tiers"].lines == [5, 6]
    assert v["when"] == dt.date(2026, 11, 20)
    assert v["again"] == ["a", "b"] and v["again"].lines == [8, 8]


@pytest.mark.skipif(reader.C_LOADER is None, reason="PyYAML built without libyaml")
@pytest.mark.parametrize("text", [CASE_TEXT, "demo"])
def test_libyaml_and_pure_python_parse_alike(tmp_path: Path, text: str) -> None:
    path = marginopt.demo_case_path() if text == "demo" else tmp_path / "case.yaml"
    if text != "demo":
        path.write_text(text)
    _same(load_yaml(path, loader=reader.C_LOADER).value, load_yaml(path, loader=reader.PURE_LOADER).value)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(("text", "line", "field"), [
    ("a: 1\nb:\n  c: 2\n  c: 3\n", 4, "c"),  # a duplicate key: the second one's line
    ("a: 1\nb: 2\n  c: 3\n", 3, "(syntax)"),  # a mapping inside a plain scalar
    ("a: 1\nb: [1, 2\nc: 3\n", None, "(syntax)"),  # an unclosed flow list: line 2 or 3
    ("a: 1\nb: x\x07y\n", 2, "(syntax)"),  # a control character
    ("a: 1\n[x, y]: 2\n", 2, "(key)"),  # a list as a key
])
def test_yaml_errors_name_the_line(tmp_path: Path, loader: Any, text: str, line: int | None, field: str) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(text)
    err = _refused(lambda: load_yaml(path, loader=loader))
    assert err.field == field and err.where.row_kind == "line" and Path(err.where.file).name == "case.yaml"  # type: ignore[arg-type]
    assert err.where.row == line if line is not None else err.where.row in (2, 3)


def test_the_default_loader_is_libyaml_when_present() -> None:
    import yaml

    assert (reader.LOADER is reader.C_LOADER) == yaml.__with_libyaml__


# ---------------------------------------------------------------------------
# Start-up
# ---------------------------------------------------------------------------


def test_margin_on_the_demo_loads_neither_pandas_nor_pyarrow() -> None:
    """The demo's tables are CSV files: they are read without pandas (a Parquet file would load it)."""
    code = ("import json, sys\nimport marginopt.models as m\nfrom marginopt import demo_case_path\n"
            "r = m.margin_report(m.load_case(demo_case_path()))\nassert r.total_initial_margin > 0\n"
            "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert set(json.loads(out.stdout.splitlines()[-1])) & {"pandas", "pyarrow", "cvxpy"} == set()


def test_numbers_from_text_follow_the_csv_grammar() -> None:
    assert [reader.to_number(v) for v in ("1.5", " 2e3", "-.5", "inf", "1_000", "nan", "0x10", True, None, 3)] == [
        1.5, 2000.0, -0.5, math.inf, None, None, None, None, None, 3.0]
    assert np.array_equal(reader.to_numbers([1, None, 2.5]), [1.0, np.nan, 2.5], equal_nan=True)


def test_the_garbage_collector_runs_again_after_a_read(tmp_path: Path) -> None:
    import gc

    path = tmp_path / "case.yaml"
    path.write_text("a: [1\n")
    _refused(lambda: load_yaml(path))
    load_yaml(marginopt.demo_case_path())
    assert gc.isenabled()
