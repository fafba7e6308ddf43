"""The parts of a case a change between two runs is split into, and the cases in between.

Two case documents A and B (``models/document.py``: the case as JSON, tables inline) differ in
some of these **factors**, in this fixed order (the order of the sequential explanation):

1. ``time``: the valuation date (days to expiry, the time value of options, scan vols scaled by days);
2. ``market:U`` for each underlying U (sorted): U's price and flat vol, and the marks (``price``,
   ``vol``) of every instrument priced off U (an option on a future counts its future's underlying),
   the price of U posted as collateral with it;
3. ``market:other``: the prices of assets no instrument is priced off (USDC, T-bills), their vols,
   and the rate;
4. ``history``: the price history (historical scenario sets);
5. ``positions``: the positions table (trades);
6. ``posted``: each venue's posted collateral;
7. ``model``: each venue's margin model (every venue key but ``posted``, ``collateral`` and
   ``concentration``: measures, preset and its parameters, lists, buffer);
8. ``haircuts``: each venue's collateral schedules and concentration limits.

A **state** takes the factors of a set from B and the rest from A (every other key, treasury,
hedges, limits: A's; they change neither margin nor collateral value). The instruments table is the
union of both: a row held by one side only keeps its terms, and its marks follow the state's market
for its underlying as a market move would move them (``models/moves.py``): a future's quoted price
scaled by the underlying's price ratio, a quoted option price replaced by the vol it implies.
Explaining two runs needs the same base currency, the same venues and, for an instrument in both,
the same terms (kind, underlying, expiry, strike, right, multiplier, settlement); anything else is an
``ArgumentError`` saying what differs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from marginopt.errors import ArgumentError
from marginopt.models.document import CaseDocument

MARKS = ("price", "vol")  # an instrument row's market fields; every other column is its terms
COLLATERAL_KEYS = ("collateral", "concentration")


@dataclass(frozen=True)
class Factor:
    key: str  # time, market:BTC, market:other, history, positions, posted, model, haircuts
    label: str  # as a person reads it: "market BTC"
    describes: str  # what it swaps

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "label": self.label, "describes": self.describes}


def _rows(value: Any) -> list[dict[str, Any]]:
    """A table's rows, whether given as a list or as ``{table: [...], ...}``."""
    if isinstance(value, Mapping):
        value = value.get("table")
    return [dict(r) for r in value] if isinstance(value, list) else []


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _venue_parts(entry: Any) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """A venue entry as (model keys, posted, collateral keys)."""
    entry = entry if isinstance(entry, Mapping) else {}
    model = {k: v for k, v in entry.items() if k != "posted" and k not in COLLATERAL_KEYS}
    return model, entry.get("posted"), {k: entry[k] for k in COLLATERAL_KEYS if k in entry}


class Pair:
    """Cases A and B: which factors differ, and the case document of any state between them."""

    def __init__(self, a: CaseDocument, b: CaseDocument) -> None:
        self.a, self.b = a, b
        da, db = a.data, b.data
        if da.get("base_currency") != db.get("base_currency"):
            raise ArgumentError(f"explain compares cases in one base currency: A is in {da.get('base_currency')!r}, "
                                f"B in {db.get('base_currency')!r}")
        va, vb = list(_mapping(da.get("venues"))), list(_mapping(db.get("venues")))
        if set(va) != set(vb):
            only = sorted(set(va) ^ set(vb))
            raise ArgumentError(f"explain compares the same venues: {', '.join(only)} in one case only "
                                f"(A: {', '.join(va)}; B: {', '.join(vb)})")
        self.venues = tuple(va)
        self.rows_a = {r.get("id"): r for r in _rows(da.get("instruments"))}
        self.rows_b = {r.get("id"): r for r in _rows(db.get("instruments"))}
        for iid in self.rows_a.keys() & self.rows_b.keys():
            terms_a = {k: v for k, v in self.rows_a[iid].items() if k not in MARKS}
            terms_b = {k: v for k, v in self.rows_b[iid].items() if k not in MARKS}
            if not _same(terms_a, terms_b):
                changed = sorted(k for k in terms_a.keys() | terms_b.keys() if terms_a.get(k) != terms_b.get(k))
                raise ArgumentError(f"explain needs one definition of each instrument: {iid}'s {', '.join(changed)} "
                                    f"differ ({', '.join(f'{k}: {terms_a.get(k)!r} -> {terms_b.get(k)!r}' for k in changed)})")
        self.ids = tuple(dict.fromkeys([*self.rows_a, *self.rows_b]))
        rows = {**self.rows_b, **self.rows_a}
        futures = {iid: r.get("underlying") for iid, r in rows.items() if r.get("kind") == "future"}
        self.root = {iid: futures.get(r.get("underlying"), r.get("underlying")) for iid, r in rows.items()}
        self.underlyings = tuple(sorted({str(u) for u in self.root.values()}))
        self.factors = tuple(f for f in self._all_factors() if self._differs(f.key))

    # -- which factors differ ------------------------------------------------------------------
    def _all_factors(self) -> list[Factor]:
        out = [Factor("time", "valuation date", "the valuation date")]
        out += [Factor(f"market:{u}", f"market {u}", f"{u}'s price and vol, the marks of instruments priced off {u}")
                for u in self.underlyings]
        out += [Factor("market:other", "other prices and rate", "prices of assets no instrument is priced off, the rate"),
                Factor("history", "price history", "the price history (historical scenarios)"),
                Factor("positions", "positions", "the positions table"),
                Factor("posted", "collateral posted", "each venue's posted collateral"),
                Factor("model", "venue model", "each venue's margin model and terms (measures, preset, parameters)"),
                Factor("haircuts", "haircuts", "each venue's collateral haircuts, tiers and concentration limits")]
        return out

    def _market_key(self, asset: str) -> str:
        return f"market:{asset}" if asset in self.underlyings else "market:other"

    def _differs(self, key: str) -> bool:
        return not _same(self._part(self.a.data, self.rows_a, key), self._part(self.b.data, self.rows_b, key))

    def _part(self, data: Mapping[str, Any], rows: Mapping[Any, dict[str, Any]], key: str) -> Any:
        market = _mapping(data.get("market"))
        venues = _mapping(data.get("venues"))
        if key == "time":
            return data.get("valuation_date")
        if key.startswith("market:"):
            prices = {k: v for k, v in _mapping(market.get("prices")).items() if self._market_key(k) == key}
            vols = {k: v for k, v in _mapping(market.get("vols")).items() if self._market_key(k) == key}
            if key == "market:other":
                return prices, vols, market.get("rate")
            common = self.rows_a.keys() & self.rows_b.keys()
            marks = {iid: [rows[iid].get(m) for m in MARKS] for iid in sorted(common, key=str)
                     if f"market:{self.root[iid]}" == key}
            return prices, vols, marks
        if key == "history":
            return market.get("history")
        if key == "positions":
            return data.get("positions")
        index = {"model": 0, "posted": 1, "haircuts": 2}[key]
        return {v: _venue_parts(venues.get(v))[index] for v in self.venues}

    # -- which factors can move a venue's numbers ----------------------------------------------------
    def relevant(self, venue: str) -> tuple[Factor, ...]:
        """The differing factors that can change ``venue``'s margin or collateral value: all but the
        markets of underlyings the venue neither holds (in A or B) nor takes as collateral."""
        touched: set[str] = set()
        for data in (self.a.data, self.b.data):
            for row in _rows(data.get("positions")):
                if row.get("venue") == venue and row.get("instrument") in self.root:
                    touched.add(str(self.root[row["instrument"]]))
            entry = _mapping(_mapping(data.get("venues")).get(venue))
            for part in ("posted", "collateral"):
                touched |= {str(k) for k in _mapping(entry.get(part))}
            if "preset" in entry:  # a preset's collateral is not in the document: every market may count
                touched |= set(self.underlyings)
        return tuple(f for f in self.factors if not f.key.startswith("market:") or f.key == "market:other"
                     or f.key.removeprefix("market:") in touched)

    # -- the case between A and B ----------------------------------------------------------------
    def state(self, chosen: Iterable[str]) -> dict[str, Any]:
        """The case document taking the factors in ``chosen`` from B and everything else from A."""
        picked = set(chosen)
        differing = {f.key for f in self.factors}

        def side(key: str) -> Mapping[str, Any]:
            return self.b.data if key in picked else self.a.data

        out: dict[str, Any] = copy.deepcopy(dict(self.a.data))
        out["valuation_date"] = side("time").get("valuation_date")
        market = dict(_mapping(self.a.data.get("market")))
        for part in ("prices", "vols"):
            merged: dict[str, Any] = {}
            names = dict.fromkeys([*_mapping(_mapping(self.a.data.get("market")).get(part)),
                                   *_mapping(_mapping(self.b.data.get("market")).get(part))])
            for asset in names:
                source = _mapping(_mapping(side(self._market_key(asset)).get("market")).get(part))
                if asset in source:
                    merged[asset] = source[asset]
            if merged or part in market:
                market[part] = merged
        for key, name in (("market:other", "rate"), ("history", "history")):
            source = _mapping(side(key).get("market"))
            market.pop(name, None)
            if name in source:
                market[name] = copy.deepcopy(source[name])
        out["market"] = market
        out["instruments"] = [self._row(iid, picked, differing) for iid in self.ids]
        positions = side("positions").get("positions")
        out.pop("positions", None)
        if positions is not None:
            out["positions"] = copy.deepcopy(positions)
        venues: dict[str, Any] = {}
        for v in self.venues:
            model = _venue_parts(_mapping(side("model").get("venues")).get(v))[0]
            posted = _venue_parts(_mapping(side("posted").get("venues")).get(v))[1]
            terms = _venue_parts(_mapping(side("haircuts").get("venues")).get(v))[2]
            entry = copy.deepcopy(model)
            entry.update(copy.deepcopy(terms))
            if posted is not None:
                entry["posted"] = copy.deepcopy(posted)
            venues[v] = entry
        out["venues"] = venues
        return out

    def _row(self, iid: Any, picked: set[str], differing: set[str]) -> dict[str, Any]:
        key = f"market:{self.root[iid]}"
        want_b = key in picked
        own = self.rows_b if want_b else self.rows_a
        if iid in own:
            return dict(own[iid])
        # Held by the other side only: its marks moved to this state's market where that market differs.
        other_is_b = not want_b
        row = dict((self.rows_b if other_is_b else self.rows_a)[iid])
        if key not in differing:
            return row
        return self._moved(row, other_is_b)

    def _moved(self, row: dict[str, Any], from_b: bool) -> dict[str, Any]:
        """A row of one side at the other side's market of its underlying (models/moves.py's rules)."""
        source, target = (self.b, self.a) if from_b else (self.a, self.b)
        root = str(self.root[row.get("id")])
        if row.get("kind") == "option":
            if row.get("price") is not None and row.get("vol") is None:
                row = {k: v for k, v in row.items() if k != "price"}
                row["vol"] = self._implied_vols(from_b)[row["id"]]
            return row
        if row.get("price") is not None:
            p_from = _mapping(_mapping(source.data.get("market")).get("prices")).get(root)
            p_to = _mapping(_mapping(target.data.get("market")).get("prices")).get(root)
            if isinstance(p_from, (int, float)) and isinstance(p_to, (int, float)) and p_from > 0:
                row = {**row, "price": row["price"] * (p_to / p_from)}
        return row

    def _implied_vols(self, of_b: bool) -> dict[Any, float]:
        return self._vols_b if of_b else self._vols_a

    @cached_property
    def _vols_a(self) -> dict[Any, float]:
        return _quoted_vols(self.a)

    @cached_property
    def _vols_b(self) -> dict[Any, float]:
        return _quoted_vols(self.b)


def _quoted_vols(doc: CaseDocument) -> dict[Any, float]:
    """The vol each option quoted by price implies, in its own case (as a market move keeps it)."""
    from marginopt.models.case import load_case_data
    from marginopt.models.moves import anchored

    case = anchored(load_case_data(dict(doc.data), doc.source))
    return {inst.id: float(inst.vol) for inst in case.instruments if inst.is_option and inst.vol is not None}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
