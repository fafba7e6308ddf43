"""Stress-safe plans: each venue's margin balance stays at or above a level under every move of a stress set.

For a move ``s`` and a venue ``v``, at the stressed market (the whole case re-priced: ``MarketMoves``):

    credited_s(x_v) + held_s + e_s . h_v  >=  level_s(q_v + A_v h)

``credited_s`` is the collateral posted after the plan valued at the stressed prices (haircuts, tiers and
concentration as the venue applies them: concave in ``x``); ``held_s`` the held book's unrealized P&L
and option value there (``models.equity``); ``e_s`` each hedge's P&L per contract from today's mark to
the stressed market (a hedge is traded at today's mark); ``level_s`` the venue's initial or
maintenance margin measure on the stressed book (convex in the positions). A concave function at or
above a convex one: the constraint is convex for every convex measure, and the program stays convex.

A venue that does not credit long options (``credit_long_options: false``) and trades option hedges
is refused: a bought option's premium leaves its balance and its value does not come back, a
piecewise term this does not hold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from marginopt.errors import OptimizationError
from marginopt.health.report import health_report
from marginopt.health.state import venue_health
from marginopt.models.book import VenueBook
from marginopt.models.case import Case
from marginopt.models.equity import delta_one_pnl, venue_equity
from marginopt.models.margin import Measure, convex_form
from marginopt.models.moves import MarketMoves
from marginopt.models.positions import Positions
from marginopt.models.stress import SafetyLevel
from marginopt.models.venues import FractionOfInitial
from marginopt.optimizer.description import Description, Venue
from marginopt.typing import FloatArray

if TYPE_CHECKING:
    from marginopt.optimizer.verify import Plan


@dataclass(frozen=True)
class StressTerm:
    venue: int  # index into ``Description.venues``
    label: str  # the move, as text
    book: VenueBook  # the venue's book at the stressed market
    level: Measure  # the convex form of the level's measure there
    level_scale: float  # a maintenance margin set as a fraction of initial: the fraction (else 1)
    held: float  # the held book's unrealized P&L and option value there (collateral apart)
    hedge_rates: FloatArray  # P&L per contract of each of the venue's candidates, from today's mark

    @property
    def name(self) -> str:
        return f"{self.book.venue.name}: margin balance under {self.label}"


def stress_terms(d: Description) -> list[StressTerm]:
    """One term per move of the case's safety stress set and venue; none without ``safety``."""
    safety = d.case.safety
    if safety is None or safety.stress is None:
        return []
    moves = MarketMoves(d.case)
    out = []
    for k, move in enumerate(safety.stress.moves):
        case = moves.at(move)
        for i, venue in enumerate(d.venues):
            book = VenueBook(case, venue.name)
            level, scale = _level(book, safety.level)
            out.append(StressTerm(i, safety.stress.label(k), book, level, scale,
                                  venue_equity(book, 0.0).margin_balance, _hedge_rates(d, venue, book)))
    return out


@dataclass(frozen=True)
class PathTerm:
    """A budgeted venue on the call budget's horizon day of one projected path (``health.paths``): its book
    there (live positions and the hedge candidates), the convex form of its initial margin, the held book's
    P&L, option value and settled expiries there, and each candidate's P&L per contract from today's mark."""

    venue: int  # index into ``Description.venues``
    path: int
    book: VenueBook
    level: Measure
    held: float
    hedge_rates: FloatArray
    cand_columns: np.ndarray  # each of the venue's candidates' column in ``book``


def path_terms(d: Description) -> list[PathTerm]:
    """One term per path and budgeted venue of the case's call budget; none without one. A hedge candidate
    that expires within the horizon is refused (its settlement would depend on the plan)."""
    from marginopt.health.days import PathDays, live_on
    from marginopt.health.paths import draw_paths

    safety = d.case.safety
    if safety is None or safety.call_budget is None:
        return []
    cb = safety.call_budget
    for c in d.cands:
        inst = d.case.instruments[c.instrument]
        if not live_on(inst, d.case.valuation_date, cb.days):
            raise OptimizationError(f"hedge {c.venue}:{c.instrument} expires within the call budget's horizon of {cb.days} "
                                    "days: its settlement is not modelled in the budget; shorten days or drop it", argument="case")
    paths = draw_paths(d.case, cb.model, cb.paths, cb.days, cb.seed)
    timeline = PathDays(d.case)
    out = []
    for p in range(paths.n_paths):
        day = dataclasses.replace(timeline.case_on(timeline.growth_of(paths.growth[p], cb.days), cb.days), hedges=d.case.hedges)
        for i, venue in enumerate(d.venues):
            if venue.name not in cb.budget:
                continue
            book = VenueBook(day, venue.name)
            cols = np.array([book.column(c) for c in venue.cand_instruments], dtype=np.int64)
            settled = timeline.settled(paths.growth[p], cb.days, venue.name).value(day.market.prices)
            out.append(PathTerm(i, p, book, convex_form(book.initial),
                                venue_equity(book, 0.0).margin_balance + settled,
                                _hedge_rates(d, venue, book, cols), cols))
    return out


def _level(book: VenueBook, level: SafetyLevel) -> tuple[Measure, float]:
    im = convex_form(book.initial)
    if level is SafetyLevel.INITIAL:
        return im, 1.0
    mm = book.maintenance
    if mm is None:
        return im, 1.0
    if isinstance(mm, FractionOfInitial):
        return im, mm.fraction
    return convex_form(mm), 1.0


def _hedge_rates(d: Description, venue: Venue, stressed: VenueBook, then_cols: np.ndarray | None = None) -> FloatArray:
    """Each candidate's P&L per contract from today's mark to the stressed market, as equity counts it
    (``then_cols``: the candidates' columns in ``stressed`` where its book is laid out differently)."""
    if not venue.cands:
        return np.zeros(0)
    cols = venue.cand_columns
    tc = cols if then_cols is None else then_cols
    now, then = venue.book.inputs, stressed.inputs
    if now.is_option[cols].any() and not venue.book.venue.credit_long_options:
        raise OptimizationError(
            f"venue {venue.name} does not credit long options (credit_long_options: false) and trades option hedges: "
            "a stress-safe plan there is not modelled (a bought option's premium would leave the balance for "
            "good); drop the safety or the option candidates at that venue", argument="case")
    option = now.is_option[cols]
    pnl = delta_one_pnl(now.code[cols], now.multiplier[cols], now.mark[cols], then.mark[tc], then.spot[tc])
    return np.where(option, then.value[tc] - now.value[cols], pnl)


def case_after(d: Description, hedges: FloatArray, allocation: dict[str, dict[str, float]]) -> Case:
    """The case as it stands after a plan: each hedge traded at today's mark (a position row of account
    ``plan``, entered at today's mark), each venue's collateral as the plan posts it."""
    case = d.case
    pos = case.positions
    traded = [(c, float(q)) for c, q in zip(d.cands, hedges, strict=True) if q != 0.0]
    rows = Positions(pos.venue + tuple(c.venue for c, _ in traded), pos.account + ("plan",) * len(traded),
                     pos.instrument + tuple(c.instrument for c, _ in traded),
                     np.concatenate([pos.quantity, [q for _, q in traded]]), pos.notes,
                     np.concatenate([pos.entries(), np.full(len(traded), np.nan)]))
    venues = {name: v if name not in allocation else dataclasses.replace(v, posted=MappingProxyType(dict(allocation[name])))
              for name, v in case.venues.items()}
    return dataclasses.replace(case, positions=rows, venues=MappingProxyType(venues))


def balances_after(d: Description, hedges: FloatArray, allocation: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each venue's margin balance after a plan (collateral as posted by it, the held book's P&L and option
    value, the hedges at today's mark): what the venue counts against its margin, beside the collateral
    that the plan makes cover it."""
    after = case_after(d, hedges, allocation)
    out = {}
    for v in d.venues:
        book = VenueBook(after, v.name)
        credited = sum(c.credited_value for c in book.collateral())
        out[v.name] = venue_equity(book, credited).margin_balance
    return out


def equal_weight_es(values: FloatArray, alpha: float) -> float:
    """Expected shortfall at ``alpha`` of equally likely ``values``: the mean of the worst (1 - alpha) of them,
    the boundary value counted in part (what the program's Rockafellar-Uryasev form equals at its optimum)."""
    v = np.sort(np.asarray(values, dtype=float))[::-1]
    k = (1.0 - alpha) * len(v)
    whole = int(np.floor(k + 1e-12))
    total = float(v[:whole].sum()) + (k - whole) * (float(v[whole]) if whole < len(v) else 0.0)
    return total / k


def call_outcomes(d: Description, hedges: FloatArray, allocation: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each budgeted venue's ES of its margin-call amount over the call budget's paths, the whole case after
    the plan taken to the horizon day of each path and re-margined with the venue's own measures
    (``health.days``; the plan's hedges are positions there, entered at today's mark)."""
    from marginopt.health.days import PathDays
    from marginopt.health.paths import draw_paths

    safety = d.case.safety
    if safety is None or safety.call_budget is None:
        return {}
    cb = safety.call_budget
    after = case_after(d, hedges, allocation)
    paths = draw_paths(after, cb.model, cb.paths, cb.days, cb.seed)  # the same draws: they depend on the market only
    timeline = PathDays(after)
    calls: dict[str, list[float]] = {v: [] for v in cb.budget}
    for p in range(paths.n_paths):
        day = timeline.case_on(timeline.growth_of(paths.growth[p], cb.days), cb.days)
        for v in cb.budget:
            h = venue_health(day, v)
            settled = timeline.settled(paths.growth[p], cb.days, v).value(day.market.prices)
            calls[v].append(max(h.initial_margin - (h.margin_balance + settled), 0.0))
    return {v: equal_weight_es(np.array(c), cb.alpha) for v, c in calls.items()}


def safety_outcomes(d: Description, hedges: FloatArray, allocation: dict[str, dict[str, float]]) -> list[tuple[str, str, float, float]]:
    """At every move of the safety's stress set and every venue: (move, venue, margin balance, level), the whole
    case after the plan re-priced and re-margined there with the venue's own measures (``health.state``):
    independent of the program's form of the constraint."""
    safety = d.case.safety
    if safety is None or safety.stress is None:
        return []
    moves = MarketMoves(case_after(d, hedges, allocation))
    out = []
    for k, move in enumerate(safety.stress.moves):
        moved = moves.at(move)
        for v in d.venues:
            h = venue_health(moved, v.name)
            level = h.initial_margin if safety.level is SafetyLevel.INITIAL else h.maintenance_margin
            out.append((safety.stress.label(k), v.name, h.margin_balance, level))
    return out


@dataclass(frozen=True)
class PlanSafety:
    """One plan under the stress set and in the market at large."""

    objective_value: float | None  # None: no plan (status says why)
    status: str
    stressed: tuple[tuple[str, str, float, float], ...]  # (move, venue, margin balance, level) after the plan
    liquidation: dict[str, tuple[str, float] | None]  # venue -> nearest liquidation (direction, move), None: none in the scan
    calls: dict[str, float] = dataclasses.field(default_factory=dict)  # budgeted venue -> ES of its call amount

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "objective_value": self.objective_value,
                "stressed": [{"move": m, "venue": v, "margin_balance": b, "level": lv} for m, v, b, lv in self.stressed],
                "nearest_liquidation": {v: None if x is None else {"direction": x[0], "move": x[1]}
                                        for v, x in self.liquidation.items()},
                "call_shortfall": dict(self.calls)}


@dataclass(frozen=True)
class SafetyCost:
    """What safety costs: the safe plan beside the cheapest plan without the constraint (CASE_FORMAT.md)."""

    stress: str
    level: str
    safe: PlanSafety
    unconstrained: PlanSafety

    @property
    def over_unconstrained(self) -> float | None:
        a, b = self.safe.objective_value, self.unconstrained.objective_value
        return None if a is None or b is None else a - b

    def to_dict(self) -> dict[str, Any]:
        return {"stress": self.stress, "level": self.level, "safe": self.safe.to_dict(),
                "unconstrained": self.unconstrained.to_dict(), "over_unconstrained": self.over_unconstrained}


def without_safety(d: Description) -> Description:
    """The same problem (its books and scenario sets) without the safety constraint."""
    return dataclasses.replace(d, case=dataclasses.replace(d.case, safety=None))


def plan_safety(d: Description, status: str, value: float | None, plan: Plan | None) -> PlanSafety:
    """A plan's stressed balances and each venue's nearest liquidation (``health``, the default scan)."""
    if plan is None:
        return PlanSafety(value, status, (), {})
    allocation = plan.allocation if d.collateral_free else {}
    stressed = tuple(safety_outcomes(d, plan.hedges, allocation))
    after = dataclasses.replace(case_after(d, plan.hedges, allocation), safety=None)
    report = health_report(after)
    nearest = {}
    for v in d.venues:
        best = report.nearest(v.name, "maintenance")
        nearest[v.name] = None if best is None else (best.direction.name, float(best.liquidation.move or 0.0))
    return PlanSafety(value, status, stressed, nearest, call_outcomes(d, plan.hedges, allocation))
