"""What a plan problem is, independent of how it is solved.

A ``Description`` is built once from a case: each venue's book and the convex form
of its initial margin, the hedge candidates traded there, the eligible collateral
and what is posted, the limits as rows on the hedges, the cost rates and the
objective. Every backend reads it, verification reads it, and it holds no solver
state: a market move makes a new one (``moved``) that a backend loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

import numpy as np

from marginopt.errors import OptimizationError
from marginopt.models.book import VenueBook, whole_book_losses
from marginopt.models.case import Case
from marginopt.models.enums import Objective
from marginopt.models.hedges import HedgeCandidate
from marginopt.models.margin import Measure, convex_form
from marginopt.models.margin.composite import Composite
from marginopt.models.scenarios import ScenarioLosses
from marginopt.optimizer.objectives import ObjectiveKind, objective_kind
from marginopt.typing import FloatArray


class Mode(str, Enum):
    OPTIMIZE = "optimize"  # hedges and collateral
    HEDGE = "hedge"  # hedges only, collateral fixed as posted
    ALLOCATE = "allocate"  # collateral only, no hedges

    @classmethod
    def parse(cls, mode: Mode | str) -> Mode:
        try:
            return cls(mode)
        except ValueError:
            raise OptimizationError(f"mode {mode!r}: expected one of {', '.join(m.value for m in cls)}",
                                    argument="mode") from None


@dataclass
class Venue:
    """One venue's share of the problem: its book, the convex form of its initial margin, the
    hedge candidates traded there (indices into ``Description.cands``) and its collateral."""

    name: str
    book: VenueBook
    measure: Measure
    cands: list[int]
    assets: tuple[str, ...]  # eligible collateral
    posted: FloatArray  # units posted now, per asset
    cand_instruments: tuple[str, ...] = ()  # the instrument of each candidate in ``cands``

    @cached_property
    def cand_columns(self) -> np.ndarray:
        """The book's column of each hedge candidate traded here, in ``cands`` order."""
        return np.array([self.book.column(i) for i in self.cand_instruments], dtype=np.int64)

    @cached_property
    def hedged_columns(self) -> np.ndarray:
        """The book's columns the hedges trade, sorted, each once."""
        return np.unique(self.cand_columns)


@dataclass(frozen=True)
class LimitRow:
    """``lower <= coefficients @ h <= upper`` on the hedges (an infinite bound is absent);
    ``names`` say which side is short in an infeasibility diagnosis."""

    coefficients: FloatArray
    lower: float
    upper: float
    names: tuple[str, str]  # (below the lower bound, above the upper bound)
    limit: str = ""  # the limit's name in reports (``models.limit_use``), its duals' key


@dataclass
class Description:
    case: Case
    objective: Objective
    mode: Mode
    cands: list[HedgeCandidate]
    venues: list[Venue]
    all_ids: tuple[str, ...] = field(default=())  # every instrument held or hedged, in instrument-table order

    @property
    def kind(self) -> ObjectiveKind:
        return objective_kind(self.objective)

    @property
    def parts(self) -> list[Venue]:
        return self.venues

    @property
    def has_hedges(self) -> bool:
        return bool(self.cands)

    @property
    def collateral_free(self) -> bool:
        """Collateral is a variable: the objective moves it, and the mode lets it."""
        return self.mode is not Mode.HEDGE and self.kind.moves_collateral

    @property
    def coverage_required(self) -> bool:
        return self.kind.covers_margin

    @cached_property
    def execution_terms(self) -> tuple[str, ...]:
        """The case's execution terms that act on this problem (CASE_FORMAT.md, "Execution terms"):
        hedge terms where hedges are traded, collateral terms where collateral moves. Any of them
        makes the plan a mixed-integer program (``backends/mip.py``)."""
        case, out = self.case, []
        if any(c.lot_size is not None for c in self.cands):
            out.append("hedges.lot_size")
        if any(c.min_trade > 0.0 for c in self.cands):
            out.append("hedges.min_trade")
        if self.cands and case.execution.max_tickets is not None:
            out.append("execution.max_tickets")
        moving = [v for v in self.venues if v.assets] if self.collateral_free else []
        if any(case.venues[v.name].minimum_transfer > 0.0 for v in moving):
            out.append("venues.minimum_transfer")
        if any(case.venues[v.name].max_moves is not None for v in moving):
            out.append("venues.max_moves")
        if moving and case.execution.max_moves is not None:
            out.append("execution.max_moves")
        eligible = {a for v in moving for a in v.assets}
        if any(t.rounding is not None for a, t in case.treasury.items() if a in eligible):
            out.append("treasury.rounding")
        return tuple(out)

    @cached_property
    def max_loss_losses(self) -> ScenarioLosses | None:
        """The whole book's losses under the ``max_loss`` limit's scenarios (over ``all_ids``; None without
        the limit), built once: the backend's choice, the program and verification read the same set."""
        limit = self.case.limits.max_loss
        return None if limit is None else whole_book_losses(self.case, limit.scenarios, self.all_ids)

    def whole_book(self, hedges: FloatArray | None = None) -> FloatArray:
        """Every venue's positions summed over ``all_ids``, after ``hedges`` where given."""
        at = {iid: k for k, iid in enumerate(self.all_ids)}
        q = np.zeros(len(self.all_ids))
        after = self.positions_after(hedges) if hedges is not None else {v.name: v.book.q for v in self.venues}
        for v in self.venues:
            np.add.at(q, [at[iid] for iid in v.book.ids], after[v.name])
        return q

    @cached_property
    def h_scale(self) -> FloatArray:
        """Each hedge's own bound: solvers see hedges in these units (see the cvxpy backend)."""
        return np.array([max(c.max_buy, c.max_sell, 1.0) for c in self.cands])

    @property
    def lower(self) -> FloatArray:
        return np.array([-c.max_sell for c in self.cands])

    @property
    def upper(self) -> FloatArray:
        return np.array([c.max_buy for c in self.cands])

    @property
    def unit_costs(self) -> FloatArray:
        return np.array([c.cost_per_unit for c in self.cands])

    @property
    def impacts(self) -> FloatArray:
        return np.array([c.impact for c in self.cands])

    def positions_after(self, hedges: FloatArray) -> dict[str, FloatArray]:
        """Each venue's positions after trading ``hedges`` (in ``book.ids`` order)."""
        out = {}
        for v in self.venues:
            q = v.book.q.copy()
            if v.cands:
                np.add.at(q, v.cand_columns, np.asarray(hedges, dtype=float)[v.cands])
            out[v.name] = q
        return out

    def linear_rows(self) -> list[LimitRow]:
        """The case's linear limits on the hedges."""
        out = []
        for k, lin in enumerate(self.case.limits.linear):
            coef = np.array([lin.coefficients.get(c.instrument, 0.0) for c in self.cands])
            lo = -np.inf if lin.lower is None else lin.lower
            hi = np.inf if lin.upper is None else lin.upper
            out.append(LimitRow(coef, lo, hi, (f"linear limit {k + 1} below {lo:g}", f"linear limit {k + 1} above {hi:g}"),
                                f"linear limit {k + 1}"))
        return out

    def net_delta_rows(self) -> list[LimitRow]:
        """Net-delta limits as rows on the hedges: the held book's delta moves their bounds.
        A limit on an underlying no venue prices is no row (nothing can move it)."""
        out = []
        for u, (low, high) in self.case.limits.net_delta.items():
            coef, held, touched = np.zeros(len(self.cands)), 0.0, False
            for v in self.venues:
                inp = v.book.inputs
                if u not in inp.underlyings:
                    continue
                touched = True
                delta = inp.delta_matrix()[inp.underlyings.index(u)]
                held += float(delta @ v.book.q)
                if v.cands:
                    np.add.at(coef, v.cands, delta[v.cand_columns])
            if touched:
                out.append(LimitRow(coef, low - held, high - held, (f"net delta {u} below {low:g}", f"net delta {u} above {high:g}"),
                                    f"net delta {u}"))
        return out

    def limit_rows(self, net_delta: bool = True) -> tuple[FloatArray, FloatArray, FloatArray] | None:
        """The linear (and net-delta) limits as one block ``lower <= A h <= upper``, or None."""
        rows = self.linear_rows() + (self.net_delta_rows() if net_delta else [])
        if not rows:
            return None
        return (np.array([r.coefficients for r in rows], dtype=float), np.array([r.lower for r in rows], dtype=float),
                np.array([r.upper for r in rows], dtype=float))

    def cost_rates(self, venue: Venue) -> tuple[FloatArray, FloatArray]:
        """Yearly funding and one-off transfer cost per unit of each asset (rates on gross value)."""
        t, prices = self.case.treasury, self.case.market.prices
        cost = np.array([(t[a].cost if a in t else 0.0) * prices[a] for a in venue.assets])
        move = np.array([(t[a].transfer_cost if a in t else 0.0) * prices[a] for a in venue.assets])
        return cost, move

    def available(self, asset: str) -> float:
        """Units of ``asset`` the plan can place: the treasury's plus what every venue holds."""
        return self._available.get(asset, 0.0)

    @cached_property
    def _available(self) -> dict[str, float]:
        # Once per description: the MIP backends ask for every venue and asset (200 x 30 on the treasury,
        # each a sum over the venues: 0.2 s).
        case = self.case
        out = {a: t.quantity for a, t in case.treasury.items()}
        for v in case.venues.values():
            for a, q in v.posted.items():
                out[a] = out.get(a, 0.0) + q
        return out

    def hedged_measures(self) -> list[Measure]:
        return [v.measure for v in self.venues if v.cands]

    def moved(self, case: Case) -> Description:
        """The same problem at ``case``'s market (prices, vols, haircuts, limits); the structure is kept.
        A case of another structure (venues, their instruments or collateral, the hedge table) is an
        ``OptimizationError`` naming what differs: a new problem is built for it, not moved to."""
        def differs(what: str, before: object, after: object) -> OptimizationError:
            return OptimizationError(f"case {case.path}: {what}: {after}, where the problem has {before}; a market move "
                                     "keeps the structure (prices, vols, haircuts and limits may change): build a new "
                                     "MarginProblem for this case", argument="case")

        if tuple(case.venues) != tuple(v.name for v in self.venues):
            raise differs("venues", tuple(v.name for v in self.venues), tuple(case.venues))
        old = [(c.venue, c.instrument) for c in self.cands]
        new = [(c.venue, c.instrument) for c in case.hedges] if self.mode is not Mode.ALLOCATE else []
        if new != old:
            i = next((k for k, (a, b) in enumerate(zip(new, old)) if a != b), min(len(new), len(old)))
            raise differs(f"hedge candidate {i + 1} (venue, instrument)", old[i] if i < len(old) else "none",
                          new[i] if i < len(new) else "none")
        venues = []
        for v in self.venues:
            book = v.book.moved(case)
            if book.ids != v.book.ids:
                raise differs(f"venue {v.name}'s instruments", v.book.ids, book.ids)
            if tuple(book.venue.collateral) != v.assets:
                raise differs(f"venue {v.name}'s collateral", v.assets, tuple(book.venue.collateral))
            measure = convex_form(book.initial)
            if _kinds(measure) != _kinds(v.measure):
                raise differs(f"venue {v.name}'s initial margin", _kinds(v.measure), _kinds(measure))
            venues.append(Venue(v.name, book, measure, v.cands, v.assets, v.posted, v.cand_instruments))
        return Description(case, self.objective, self.mode, self.cands, venues, self.all_ids)


def _kinds(measure: Measure) -> str:
    """A measure's shape as a market move must keep it: its class, and its terms' (a sum of measures)."""
    name = type(measure).__name__
    if not isinstance(measure, Composite):
        return name
    return f"{name}({', '.join(str(_kinds(t)) for t in measure.terms)})"


def describe(case: Case, objective: Objective | None = None, mode: Mode = Mode.OPTIMIZE) -> Description:
    """The problem of ``case`` under ``objective`` (the case's by default) and ``mode``."""
    cands = list(case.hedges) if mode is not Mode.ALLOCATE else []
    venues = []
    for name in case.venues:
        book = VenueBook(case, name)
        venue = book.venue
        mine = [i for i, c in enumerate(cands) if c.venue == name]
        assets = tuple(venue.collateral)
        posted = np.array([venue.posted.get(a, 0.0) for a in assets])
        venues.append(Venue(name, book, convex_form(book.initial), mine, assets, posted,
                            tuple(cands[i].instrument for i in mine)))
    traded = {iid for v in venues for iid in v.book.ids}
    all_ids = tuple(i.id for i in case.instruments if i.id in traded)
    return Description(case, objective or case.objective, mode, cands, venues, all_ids)
