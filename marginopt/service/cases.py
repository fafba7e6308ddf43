"""Cases as the service takes them: JSON with the case file's keys, every table inline.

A request may not make the server read a file: tables (instruments, positions,
hedges, market.history) are lists of row objects, and anything that would name a
file (a table path, a ``matrix`` scenario set, a venue's snapshot) is refused as a
``CaseError`` naming the field, which the service answers 422. Nothing here
imports FastAPI, so it is tested and used without the extra.

JSON is typed, so nothing is converted from another type: the case reader already takes
a number, text or true/false outside tables only as such, but it reads a table cell as it
reads a CSV cell, where everything is text ("10" is the number 10, 7 the text "7"). Cells
of inline tables are therefore checked here against their column's type first.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from marginopt.errors import CaseError, Location
from marginopt.models.case import Case, load_case_data
from marginopt.models.reader import Table, load_yaml

SOURCE = Path("<request>")
UPLOAD = Path("<upload>")
NO_FILES = "the service reads no files"
TABLES = ("instruments", "positions", "hedges")
POSITION_COLUMNS = ("venue", "instrument", "quantity", "account")
MAX_SCENARIO_CELLS = 25_000_000  # 200 MB of float64 per scenario-loss matrix
# The columns of the inline tables (CASE_FORMAT.md) by JSON type; market.history: "date" is text, every
# other column (an asset's daily closes) a number. A column in neither list is left to the case reader,
# which refuses an unknown one.
NUMBER_COLUMNS = {"instruments": ("strike", "multiplier", "price", "vol"), "positions": ("quantity",),
                  "hedges": ("max_buy", "max_sell", "cost_per_unit", "impact", "lot_size", "min_trade")}
TEXT_COLUMNS = {"instruments": ("id", "kind", "underlying", "expiry", "right", "settlement"),
                "positions": ("venue", "instrument", "account"), "hedges": ("venue", "instrument")}


def case_from_json(data: Any, max_scenario_cells: int = MAX_SCENARIO_CELLS) -> Case:
    """Validate a case sent as JSON; a ``CaseError`` names the field (dotted, inside the case)."""
    _refuse_snapshot_presets(data)
    _check_cell_types(data)
    _check_scenario_sizes(data, max_scenario_cells)
    return load_case_data(data, SOURCE, files_refused=NO_FILES)


def _check_cell_types(data: Any) -> None:
    """Refuse a cell of an inline table that is not its column's JSON type: a number (or true) sent as
    text where a number belongs, a number or true/false where text belongs. ``null`` is an empty cell,
    which the case reader takes or refuses by column."""
    if not isinstance(data, Mapping):
        return  # the case parser names what is wrong
    tables: list[tuple[str, Any, tuple[str, ...] | None, tuple[str, ...]]] = [
        (name, data.get(name), NUMBER_COLUMNS[name], TEXT_COLUMNS[name]) for name in TABLES]
    market = data.get("market")
    if isinstance(market, Mapping):
        tables.append(("market.history", market.get("history"), None, ("date",)))
    for name, rows, numbers, texts in tables:
        if isinstance(rows, Mapping):  # the mapping form of a table: {table: <rows>, aggregate: true}
            rows = rows.get("table")
        if not isinstance(rows, list):
            continue  # absent, a path or not a table: the case parser says so
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                continue
            for column, cell in row.items():
                if cell is None:
                    continue
                if column in texts:
                    if not isinstance(cell, str):
                        raise CaseError(Location(SOURCE, i + 1), f"{name}.{column}", "text (a JSON string)", cell)
                elif numbers is None or column in numbers:
                    if isinstance(cell, bool) or not isinstance(cell, (int, float)):
                        raise CaseError(Location(SOURCE, i + 1), f"{name}.{column}", "a number (a JSON number, not text)", cell)


def _check_scenario_sizes(data: Any, max_cells: int) -> None:
    """Refuse a scenario set whose loss matrix would exceed ``max_cells`` (scenarios x instruments).

    The body limit bounds what a request holds, not what it asks for: ``monte_carlo`` with
    ``n: 1e9``, or a grid of two long move lists (their product is the scenario count), would
    be a few bytes of JSON and more memory than the server has.
    """
    if not isinstance(data, Mapping):
        return  # the case parser names what is wrong
    instruments = data.get("instruments")
    rows_of = instruments if isinstance(instruments, list) else []
    columns = max(len(rows_of), 1)
    underlyings = {str(r.get("underlying")) for r in rows_of if isinstance(r, Mapping)}
    for path, spec in _scenario_sets(data):
        kind = spec.get("kind")
        if kind == "monte_carlo":
            rows, key = spec.get("n"), "n"
        elif kind == "grid":
            moves = [spec.get(k) for k in ("price_moves", "vol_moves", "extended")]
            price, vol, extended = (len(m) if isinstance(m, list) else 1 for m in moves)
            rows, key = (price * vol + extended) * max(len(underlyings), 1), "price_moves"
        else:
            continue  # historical: bounded by the rows of market.history, which the body limit bounds
        if isinstance(rows, (int, float)) and not isinstance(rows, bool) and rows * columns > max_cells:
            raise CaseError(Location(SOURCE), f"{path}.{key}",
                            f"a scenario set of at most {max_cells:,} scenario x instrument cells here "
                            f"({columns} instruments: at most {max_cells // columns:,} scenarios; the service's --max-scenario-cells)",
                            spec.get(key))


def _scenario_sets(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every mapping under ``venues`` and ``limits`` whose ``kind`` is a generated scenario set, with its dotted path."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    stack: list[tuple[str, Any]] = [(k, data[k]) for k in ("venues", "limits") if k in data]
    while stack:
        where, node = stack.pop()
        if isinstance(node, Mapping):
            if node.get("kind") in ("monte_carlo", "grid"):
                found.append((where, node))
            stack.extend((f"{where}.{k}", v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{where}.{i}", v) for i, v in enumerate(node))
    return found


def _refuse_snapshot_presets(data: Any) -> None:
    """A preset whose family reads an outside format's file (``marginopt.formats``: a venue's
    snapshot gives its market and parameters) needs a file a request cannot name: say so up
    front rather than as a refused path inside the preset."""
    from marginopt.formats import format_of_family
    from marginopt.presets import get_preset

    venues = data.get("venues") if isinstance(data, Mapping) else None
    if not isinstance(venues, Mapping):
        return  # the case parser names what is wrong
    for name, venue in venues.items():
        preset_id = venue.get("preset") if isinstance(venue, Mapping) else None
        if not isinstance(preset_id, str):
            continue
        try:
            outside = format_of_family(get_preset(preset_id).family)
        except KeyError:
            continue  # an unknown preset: the case parser lists the known ones
        if outside is not None:
            raise CaseError(Location(SOURCE), f"venues.{name}.preset",
                            f"a preset without files: {preset_id} reads a snapshot file ({outside.description}) and "
                            f"{NO_FILES} (run `marginopt margin SNAPSHOT --from {outside.name}` instead)", preset_id)


@lru_cache(maxsize=1)
def _demo_json_text() -> str:
    from marginopt import demo_case_path

    path = demo_case_path()
    root = load_yaml(path).value  # the library's YAML reader: 4.0e6 is a number, as in the case file
    doc: dict[str, Any] = _plain(root)
    for key in TABLES:
        if isinstance(doc.get(key), str):
            doc[key] = _csv_rows(path.parent / doc[key])
    market = doc["market"]
    if isinstance(market.get("history"), str):
        market["history"] = _csv_rows(path.parent / market["history"])
    return json.dumps(doc)


def demo_case() -> dict[str, Any]:
    """The embedded demo case as JSON data, its tables inline (a fresh copy each call)."""
    result: dict[str, Any] = json.loads(_demo_json_text())
    return result


def _plain(value: Any) -> Any:
    """YAML values as JSON values: dates as ISO text, line-tracking containers as plain ones."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    """A demo CSV table as row objects; an empty cell is an absent key, as in an inline table.

    Typed as the case reader types a CSV file (``reader.read_table_file``), so each number is the same float and the
    inline demo is the file demo to the last bit (JSON carries a float exactly).
    """
    frame = pd.read_csv(path, skipinitialspace=True, keep_default_na=False, na_values=[""])
    rows = []
    for record in frame.to_dict("records"):
        row = {}
        for k, v in record.items():
            if isinstance(v, float) and math.isnan(v):
                continue
            row[str(k)] = v.item() if hasattr(v, "item") else v
        rows.append(row)
    return rows


def positions_from_csv(data: bytes) -> list[dict[str, Any]]:
    """Positions CSV (venue, instrument, quantity[, account]) -> inline rows for a case.

    Checked here with the case reader's table rules, so an error names the CSV's own row
    and column (row 1 is the first line after the header).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaseError(Location(UPLOAD), "positions", "a UTF-8 CSV file", str(exc)) from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise CaseError(Location(UPLOAD), "positions", "a header line: venue,instrument,quantity[,account]", "an empty file") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise CaseError(Location(UPLOAD), "positions", "a CSV table", str(exc).strip()) from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas made a row's extra cells an index
        raise CaseError(Location(UPLOAD, 1, "row"), "positions", "no more cells in a row than columns in the header", "extra cells")
    frame.columns = [str(c).strip() for c in frame.columns]
    table = Table("positions", frame, UPLOAD, None)
    table.check_columns(required=POSITION_COLUMNS[:3], optional=POSITION_COLUMNS[3:])
    venues = table.texts("venue")
    instruments = table.texts("instrument")
    quantities = table.numbers("quantity")
    accounts = table.texts("account", required=False)
    rows: list[dict[str, Any]] = []
    for venue, instrument, quantity, account in zip(venues, instruments, quantities, accounts):
        row: dict[str, Any] = {"venue": venue, "instrument": instrument, "quantity": float(quantity)}
        if account is not None:
            row["account"] = account
        rows.append(row)
    return rows
