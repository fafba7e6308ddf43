"""Positions: signed contracts per venue, instrument and account.

Each (venue, account, instrument) is one row. A second row of the same is refused with both
row numbers (an account exported twice would otherwise double its margin without a word),
unless the case asks for such rows to be summed with the mapping form
``positions: {table: <rows or file>, aggregate: true}``; the margin report then says so.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from marginopt.models.enums import InstrumentKind, Settlement
from marginopt.models.instruments import InstrumentSet, ensure_known
from marginopt.models.magnitude import MAX_MAGNITUDE, Bound, describe, exposure_per_contract, gross_value_error
from marginopt.models.market import MarketData
from marginopt.models.reader import Node, Table, read_table

DEFAULT_ACCOUNT = "main"
Key = tuple[str, str, str]  # venue, account, instrument: what one row may hold


@dataclass(frozen=True)
class Positions:
    """Rows of (venue, account, instrument, quantity); may be empty."""

    venue: tuple[str, ...]
    account: tuple[str, ...]
    instrument: tuple[str, ...]
    quantity: np.ndarray
    notes: tuple[str, ...] = ()  # what was done to the rows as given (duplicates summed under aggregate: true)
    # Price each futures or perpetual row was entered at (per unit, as the instruments' ``price`` column);
    # NaN where not given: the row's P&L is then settled to today's mark (its unrealized P&L is 0 today).
    entry_price: np.ndarray | None = None

    def entries(self) -> np.ndarray:
        """``entry_price`` with NaN for every row when the table has none."""
        return np.full(len(self), np.nan) if self.entry_price is None else self.entry_price

    def rows(self, keep: np.ndarray) -> Positions:
        """The rows ``keep`` (indices) with their entry prices (not the notes, which speak of all rows)."""
        return Positions(tuple(self.venue[i] for i in keep), tuple(self.account[i] for i in keep),
                         tuple(self.instrument[i] for i in keep), self.quantity[keep], (),
                         None if self.entry_price is None else self.entry_price[keep])

    def __len__(self) -> int:
        return len(self.venue)

    def at_venue(self, venue: str) -> dict[str, float]:
        """Net quantity per instrument at a venue, all accounts together."""
        if not self.venue:
            return {}
        at = np.asarray(self.venue, dtype=object) == venue
        ids, inverse = np.unique(np.asarray(self.instrument, dtype=object)[at], return_inverse=True)
        sums = np.bincount(inverse, weights=self.quantity[at], minlength=len(ids))
        return dict(zip(ids.tolist(), sums.tolist(), strict=True))

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.account))


def parse_positions(node: Node | None, venues: Collection[str], instruments: InstrumentSet,
                    market: MarketData | None = None) -> Positions:
    """The positions table; with ``market``, each position's gross value is held to the magnitude bound
    (``magnitude.gross_value_error``), at its row (the first row of summed ones)."""
    if node is None:
        return Positions((), (), (), np.zeros(0))
    aggregate = False
    if isinstance(node.value, dict):  # the mapping form: {table: <rows or file>, aggregate: true}
        parts = node.mapping(allowed=("table", "aggregate"), required=("table",))
        aggregate = parts["aggregate"].boolean() if "aggregate" in parts else False
        node = parts["table"]
    table = read_table(node, "positions")
    table.check_columns(("venue", "instrument", "quantity"), ("account", "entry_price"))
    if len(table) == 0:
        return Positions((), (), (), np.zeros(0))
    venue = table.texts("venue", choices=sorted(venues))
    instrument = table.texts("instrument")
    ensure_known(table, "instrument", instrument, instruments)
    quantity = table.numbers("quantity")
    account = [a or DEFAULT_ACCOUNT for a in table.texts("account", required=False)]
    entry = _entry_prices(table, instrument, instruments) if table.has("entry_price") else None
    keys: list[Key] = list(zip(venue, account, instrument, strict=True))  # type: ignore[arg-type]
    first = _first_rows(table, keys, aggregate)
    if len(first) == len(keys):
        quantity.setflags(write=False)
        if entry is not None:
            entry.setflags(write=False)
        out = Positions(tuple(venue), tuple(account), tuple(instrument), quantity, (), entry)  # type: ignore[arg-type]
    else:
        out = _summed(table, keys, quantity, first, entry, instruments)
    if market is not None:
        per = {iid: exposure_per_contract(instruments[iid], market.prices) for iid in set(out.instrument)}
        gross = np.abs(out.quantity) * np.fromiter((per[iid] for iid in out.instrument), dtype=float, count=len(out))
        over = np.flatnonzero(gross > MAX_MAGNITUDE)
        if over.size:
            k = int(over[0])
            q, iid = float(out.quantity[k]), out.instrument[k]
            row = list(first.values())[k]  # the position's row (its first row when rows were summed)
            raise table.error(row, "quantity", str(gross_value_error(q, instruments[iid], market.prices, market.base_currency)), q)
    return out


def _entry_prices(table: Table, instrument: list[str | None], instruments: InstrumentSet) -> np.ndarray:
    """The ``entry_price`` column: positive where given, and not on an option's row."""
    entry = table.numbers("entry_price", default=float("nan"), lower=0.0, lower_open=True, bound=Bound.SCALE)
    for i in np.flatnonzero(~np.isnan(entry)):
        inst = instruments[instrument[i]]  # type: ignore[index]
        if inst.kind is InstrumentKind.OPTION:
            raise table.error(int(i), "entry_price", f"no entry price on an option ({inst.id}): options count at their mark "
                              "in a venue's equity (the premium paid has left the balance)", float(entry[i]))
    return entry


def _row(table: Table, i: int) -> str:
    where = table.where(i)
    return f"{where.row_kind} {where.row}"


def _first_rows(table: Table, keys: list[Key], aggregate: bool) -> dict[Key, int]:
    """The first row of each (venue, account, instrument), in the order first seen; a second row is an error unless ``aggregate``."""
    first: dict[Key, int] = {}
    for i, key in enumerate(keys):
        j = first.setdefault(key, i)
        if j != i and not aggregate:
            raise table.error(i, "instrument", f"one row per venue, account and instrument ({_row(table, j)} holds "
                              f"{key[0]}, {key[1]}, {key[2]} too): merge the rows, or write positions as "
                              "{table: ..., aggregate: true} to have them summed", key[2])
    return first


def _summed(table: Table, keys: list[Key], quantity: np.ndarray, first: dict[Key, int], entry: np.ndarray | None,
            instruments: InstrumentSet) -> Positions:
    """One row per (venue, account, instrument), at its first row's place, holding the sum of its rows."""
    group = {key: g for g, key in enumerate(first)}
    index = np.fromiter((group[k] for k in keys), dtype=np.int64, count=len(keys))
    total = np.bincount(index, weights=quantity, minlength=len(first))
    summed_entry = None if entry is None else _summed_entries(table, keys, quantity, first, entry, index, total, instruments)
    over = np.flatnonzero(~(np.abs(total) <= MAX_MAGNITUDE))
    if over.size:  # each row within the guard, their sum not
        key = list(first)[int(over[0])]
        raise table.error(first[key], "quantity", f"rows of {', '.join(key)} that sum to {describe(Bound.MAGNITUDE)}",
                          float(total[over[0]]))
    repeats = [i for i, k in enumerate(keys) if first[k] != i]
    key = keys[repeats[0]]
    more = f" and {len(repeats) - 1} more" if len(repeats) > 1 else ""
    note = (f"{table.file.name}: {len(repeats)} duplicate position row(s) summed into the first row of the same venue, "
            f"account and instrument (aggregate: true): {_row(table, repeats[0])} into {_row(table, first[key])} "
            f"({', '.join(key)}){more}")
    total.setflags(write=False)
    return Positions(tuple(k[0] for k in first), tuple(k[1] for k in first), tuple(k[2] for k in first), total, (note,),
                     summed_entry)


def _summed_entries(table: Table, keys: list[Key], quantity: np.ndarray, first: dict[Key, int], entry: np.ndarray,
                    index: np.ndarray, total: np.ndarray, instruments: InstrumentSet) -> np.ndarray:
    """The entry price of each summed position: the one that gives the same unrealized P&L as its rows.

    P&L is linear in the entry price for a linear contract (sum q (F - e)) and in its inverse for an
    inverse one (sum q (1/e - 1/F)), so the summed row's entry is the quantity-weighted mean of e, or
    of 1/e. Rows of one position either all give an entry price or none does.
    """
    given = ~np.isnan(entry)
    out = np.full(len(first), np.nan)
    for g, (key, row) in enumerate(first.items()):
        rows = np.flatnonzero(index == g)
        if not given[rows].any():
            continue
        if not given[rows].all():
            missing = int(rows[~given[rows]][0])
            raise table.error(missing, "entry_price", f"an entry price on every row of {', '.join(key)} or on none "
                              f"({_row(table, row)} and the rows summed with it)", None)
        inverse = instruments[key[2]].settlement is Settlement.INVERSE
        q, e = quantity[rows], entry[rows]
        value = float("nan")
        if total[g] != 0.0:
            value = float(total[g] / (q / e).sum()) if inverse else float((q * e).sum() / total[g])
        if not (value > 0.0 and np.isfinite(value)):  # NaN fails too
            raise table.error(row, "entry_price", f"rows of {', '.join(key)} that sum to one position with a positive entry "
                              "price (these net to a closed position or a realized P&L: give it as one row)", float(e[0]))
        out[g] = value
    out.setflags(write=False)
    return out
