"""``explain``: each venue's initial margin (and collateral value) change between two cases, in pieces.

The cases between A and B (``factors.Pair.state``) are margined by the margin report's own code
(``VenueBook``, ``venue_margin``); each piece is a difference of two such margins, so every piece is
a margin recomputed at a real case, never a sensitivity. Per venue:

- ``sequential``: the factors taken from B one at a time in ``factors``' fixed order (time, market by
  underlying, other prices and rate, price history, positions, collateral posted, venue model,
  haircuts); ``levels`` are the margins at each step, from A's to B's;
- ``shapley``: the average of the sequential pieces over every order (``split.shapley``), over the
  factors that can move the venue (a market of an underlying it neither holds nor takes as collateral
  is left out, at 0); skipped with a note past ``MAX_SHAPLEY`` factors (2^n margin evaluations).

Both add up to B's margin less A's. That is checked, not assumed: the margin at the state of no
factor must be A's, at all factors B's (the margin of each case loaded on its own), and each split's
pieces must sum to the change, each to ``REL_TOL`` of the larger margin; a failure is a
``ModelError`` naming the venue and the gap, never a split shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marginopt.errors import MarginoptError, ModelError
from marginopt.models.document import CaseDocument
from marginopt.models.explain.factors import Factor, Pair
from marginopt.models.explain.split import sequential, shapley

REL_TOL = 1e-9  # the pieces' sum against the change, and the end states against A and B, relative to the larger margin
MAX_SHAPLEY = 12  # factors at one venue beyond which the Shapley split (2^n margins) is not computed
QUANTITIES = ("initial_margin", "collateral_value")


@dataclass(frozen=True)
class Split:
    """One number's change at one venue (or in total), in pieces by factor key."""

    a: float
    b: float
    sequential: Mapping[str, float]
    levels: tuple[float, ...]  # the number at A, then after each factor in order (the last is B's)
    shapley: Mapping[str, float] | None

    @property
    def change(self) -> float:
        return self.b - self.a

    @property
    def residual(self) -> float:
        """The sequential pieces' sum less the change (rounding only; checked within REL_TOL)."""
        return sum(self.sequential.values()) - self.change

    @property
    def shapley_residual(self) -> float | None:
        return None if self.shapley is None else sum(self.shapley.values()) - self.change

    def order_matters(self, tol: float) -> bool:
        """Whether some factor's sequential piece differs from its Shapley piece (they interact)."""
        if self.shapley is None:
            return False
        return any(abs(self.sequential[k] - self.shapley[k]) > tol for k in self.sequential)

    def to_dict(self, tol: float) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "change": self.change, "sequential": dict(self.sequential),
                "levels": list(self.levels), "shapley": None if self.shapley is None else dict(self.shapley),
                "residual": self.residual, "order_matters": self.order_matters(tol)}


@dataclass(frozen=True)
class VenueExplanation:
    venue: str
    initial_margin: Split
    collateral_value: Split
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Side:
    """What A or B is: a label (a run or a file), its valuation date and fingerprint."""

    label: str
    valuation_date: str
    fingerprint: str
    run: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "run": self.run, "valuation_date": self.valuation_date, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class Explanation:
    base_currency: str
    a: Side
    b: Side
    factors: tuple[Factor, ...]
    venues: tuple[VenueExplanation, ...]
    total: Mapping[str, Split]
    states_evaluated: int = 0
    notes: tuple[str, ...] = field(default=())

    def tolerance(self, split: Split) -> float:
        return REL_TOL * max(1.0, abs(split.a), abs(split.b))

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``marginopt explain --format json`` (CASE_FORMAT.md, Explain)."""
        return {
            "base_currency": self.base_currency,
            "a": self.a.to_dict(), "b": self.b.to_dict(),
            "method": {"order": [f.key for f in self.factors], "relative_tolerance": REL_TOL,
                       "states_evaluated": self.states_evaluated},
            "factors": [f.to_dict() for f in self.factors],
            "venues": [{"venue": v.venue, **{q: getattr(v, q).to_dict(self.tolerance(getattr(v, q))) for q in QUANTITIES},
                        "notes": list(v.notes)} for v in self.venues],
            "total": {q: self.total[q].to_dict(self.tolerance(self.total[q])) for q in QUANTITIES},
            "notes": list(self.notes),
        }


def explain(a: CaseDocument, b: CaseDocument, side_a: Side | None = None, side_b: Side | None = None) -> Explanation:
    """Each venue's initial margin and collateral value change from case A to case B, split by factor."""
    pair = Pair(a, b)
    factors = pair.factors
    keys = [f.key for f in factors]
    cache: dict[frozenset[str], dict[str, tuple[float, float]]] = {}

    def values(chosen: frozenset[str]) -> dict[str, tuple[float, float]]:
        if chosen not in cache:
            labels = [f.label for f in factors if f.key in chosen]
            cache[chosen] = _margins(pair.state(chosen), a, f"the case with {', '.join(labels) or 'nothing'} from B and the "
                                                            "rest from A")
        return cache[chosen]

    direct_a = _margins(dict(a.data), a, "case A")
    direct_b = _margins(dict(b.data), b, "case B")
    levels_all = [values(frozenset(keys[:k])) for k in range(len(keys) + 1)]
    venues = []
    for venue in pair.venues:
        relevant = [f.key for f in pair.relevant(venue)]
        notes: list[str] = []
        splits = {}
        for qi, quantity in enumerate(QUANTITIES):
            levels = tuple(level[venue][qi] for level in levels_all)
            pieces = dict(zip(keys, sequential(levels), strict=True))
            phi: dict[str, float] | None = None
            if len(relevant) <= MAX_SHAPLEY:
                def v(mask: int, _rel: list[str] = relevant, _q: int = qi, _venue: str = venue) -> float:
                    return values(frozenset(k for i, k in enumerate(_rel) if mask >> i & 1))[_venue][_q]

                shares = dict(zip(relevant, shapley(len(relevant), v), strict=True))
                phi = {k: shares.get(k, 0.0) for k in keys}
                _check(venue, quantity, "the Shapley split's full state", values(frozenset(relevant))[venue][qi], levels[-1])
            elif qi == 0:
                notes.append(f"Shapley split not computed: {len(relevant)} factors move this venue (at most {MAX_SHAPLEY})")
            split = Split(direct_a[venue][qi], direct_b[venue][qi], pieces, levels, phi)
            _check(venue, quantity, "A's margin recomputed at the state of no factor", levels[0], split.a)
            _check(venue, quantity, "B's margin recomputed at the state of every factor", levels[-1], split.b)
            _check(venue, quantity, "the sum of the sequential pieces", sum(pieces.values()), split.change, scale=split)
            if phi is not None:
                _check(venue, quantity, "the sum of the Shapley pieces", sum(phi.values()), split.change, scale=split)
            splits[quantity] = split
        venues.append(VenueExplanation(venue, splits["initial_margin"], splits["collateral_value"], tuple(notes)))
    total = {q: _sum([getattr(v, q) for v in venues], keys) for q in QUANTITIES}
    return Explanation(str(a.data.get("base_currency")), side_a or _side(a), side_b or _side(b), factors, tuple(venues), total,
                       len(cache))


def _margins(data: dict[str, Any], doc: CaseDocument, what: str) -> dict[str, tuple[float, float]]:
    """Each venue's (initial margin, credited collateral value) of a case document."""
    from marginopt.models.book import VenueBook
    from marginopt.models.case import load_case_data
    from marginopt.models.report import venue_margin

    try:
        case = load_case_data(data, doc.source)
        out = {}
        for name in case.venues:
            m = venue_margin(VenueBook(case, name))
            out[name] = (float(m.initial_margin), float(m.collateral_value))
        return out
    except MarginoptError as exc:
        raise ModelError(f"explain: {what} cannot be margined: {exc}") from None


def _check(venue: str, quantity: str, what: str, got: float, want: float, scale: Split | None = None) -> None:
    size = max(1.0, abs(want), abs(got)) if scale is None else max(1.0, abs(scale.a), abs(scale.b))
    if not abs(got - want) <= REL_TOL * size:
        raise ModelError(f"explain at {venue}: {what} ({quantity}) is {got!r}, expected {want!r} (off by {got - want:.6g}, "
                         f"more than {REL_TOL:g} relative): the pieces would not add up to the change")


def _sum(splits: list[Split], keys: list[str]) -> Split:
    phis = [s.shapley for s in splits]
    return Split(
        a=sum(s.a for s in splits), b=sum(s.b for s in splits),
        sequential={k: sum(s.sequential[k] for s in splits) for k in keys},
        levels=tuple(sum(level) for level in zip(*(s.levels for s in splits), strict=True)) if splits else (0.0,),
        shapley=None if any(p is None for p in phis) else {k: sum(p[k] for p in phis if p is not None) for k in keys},
    )


def _side(doc: CaseDocument) -> Side:
    date = doc.data.get("valuation_date")
    return Side(str(doc.source), date.isoformat() if isinstance(date, dt.date) else str(date), doc.fingerprint)
