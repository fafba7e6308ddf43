"""The cost of executability (issue 17): an executable plan beside the continuous optimum and a
naive rounding of it.

For a case with execution terms (CASE_FORMAT.md, "Execution terms") three plans are compared:

continuous     the same case with every execution term dropped (``without_execution_terms``),
               solved by the continuous backends: a relaxation of the executable plan, so its
               optimum is a lower bound on the executable plan's cost;
executable     the mixed-integer plan (``backends/mip.py``);
naive rounding the continuous plan rounded as a desk would by hand (``naive_rounding``): each hedge
               to the nearest lot inside its box and, under its ``min_trade``, to no trade; each collateral move
               (the change of one asset's quantity at one venue) to the nearest multiple of the
               asset's ``rounding``, then dropped (the asset stays as posted) when worth less than
               the venue's ``minimum_transfer``. Move and ticket caps are not enforced by it.

The rounded plan is verified like any other (``optimizer.verify``, against the executable case): its
margins recomputed in numpy, its cost by the objective, every failed check named. Nothing here
solves; ``optimizer.api`` hands the continuous plan in: the integer route's own relaxation where the
plan came from it (``backends/integer_route.py``, which rounds it by ``naive_rounding`` too, so its
certificate and this comparison show one rounding), the continuous problem solved otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import numpy as np

from marginopt.models.case import Case, Execution
from marginopt.optimizer.description import Description
from marginopt.optimizer.verify import Plan, VenueOutcome, Verification, verify

# Why an executable plan's search ended, as its certificate's ``stopped`` says: the gap closed within the
# gap asked for (proven optimal), the time limit was reached, the integer route's lot search found no
# improving move, the mip backend's rounds of impact cuts ran out; another HiGHS limit is named as HiGHS names it.
GAP_CLOSED, TIME_LIMIT, LOCAL_OPTIMUM, CUT_ROUNDS = "gap closed", "time limit reached", "local optimum", "impact cut rounds"


def whole_multiple(base: float, step: float, count: float) -> float:
    """``base + count * step`` as the decimals read them: 3 lots of 0.1 are 0.3, not the binary
    product's 0.30000000000000004 (which a plan would print)."""
    return float(Decimal(repr(float(base))) + Decimal(repr(float(step))) * int(count))


def without_execution_terms(case: Case) -> Case:
    """``case`` with no lot sizes, minimum trades or transfers, move or ticket caps, or rounding:
    the continuous relaxation of its executable plan (every other field as it is)."""
    hedges = tuple(replace(c, lot_size=None, min_trade=0.0) for c in case.hedges)
    venues = {name: replace(v, minimum_transfer=0.0, max_moves=None) for name, v in case.venues.items()}
    treasury = {a: replace(t, rounding=None) for a, t in case.treasury.items()}
    return replace(case, hedges=hedges, venues=MappingProxyType(venues), treasury=MappingProxyType(treasury),
                   execution=Execution())


def continuous_description(description: Description) -> Description:
    """``description`` with its case's execution terms dropped (``without_execution_terms``): the
    problem the continuous optimum solves, with the same venues and books (execution terms change
    no margin), to verify a relaxation's plan against without building the problem again."""
    case = without_execution_terms(description.case)
    cands = [replace(c, lot_size=None, min_trade=0.0) for c in description.cands]
    return Description(case, description.objective, description.mode, cands, description.venues, description.all_ids)


def naive_rounding(description: Description, plan: Plan) -> Plan:
    """The continuous ``plan`` rounded by hand to ``description``'s execution terms (module
    docstring): a lotted hedge to its nearest whole lot inside its box, then any hedge under its
    minimum trade to 0; no repair. The one naive rounding: the comparison beside every executable
    plan and the integer route's certificate both use it."""
    h = np.asarray(plan.hedges, dtype=float).copy()
    for k, c in enumerate(description.cands):
        if c.lot_size is not None:
            lo, hi = math.ceil(-c.max_sell / c.lot_size - 1e-9), math.floor(c.max_buy / c.lot_size + 1e-9)
            n = round(h[k] / c.lot_size)
            h[k] = whole_multiple(0.0, c.lot_size, min(max(n, lo), hi) if lo <= hi else n)
        if abs(h[k]) < c.min_trade:
            h[k] = 0.0
    case = description.case
    prices = case.market.prices
    allocation: dict[str, dict[str, float]] = {}
    for venue, units in plan.allocation.items():
        spec, out = case.venues[venue], {}
        for a, after in units.items():
            before = spec.posted.get(a, 0.0)
            rounding = case.treasury[a].rounding if a in case.treasury else None
            if rounding is not None:
                after = whole_multiple(before, rounding, round((after - before) / rounding))
            if abs(after - before) * prices[a] < spec.minimum_transfer:
                after = before
            out[a] = float(after)
        allocation[venue] = out
    return Plan(h, allocation)


@dataclass(frozen=True)
class Executability:
    """The three plans' costs side by side (module docstring). ``continuous_status`` is the
    continuous problem's (``optimal``, ``infeasible``, ``failed``); without a continuous plan
    there is no lower bound and no rounding (``continuous`` and ``rounded`` None)."""

    executable_value: float
    continuous_status: str
    continuous: Verification | None = None  # the continuous optimum, verified against its own case
    rounded_plan: Plan | None = None
    rounded: Verification | None = None  # the naive rounding, verified against the executable case
    cands: tuple[tuple[str, str], ...] = field(default=())  # (venue, instrument) of each hedge
    posted: dict[str, dict[str, float]] = field(default_factory=dict)  # units posted before the plan

    @property
    def continuous_value(self) -> float | None:
        return self.continuous.objective_value if self.continuous is not None else None

    @property
    def cost_of_executability(self) -> float | None:
        """The executable plan's cost over the continuous optimum (>= 0 up to the solvers' tolerances)."""
        low = self.continuous_value
        return None if low is None else self.executable_value - low

    @property
    def rounded_feasible(self) -> bool | None:
        return None if self.rounded is None else self.rounded.passed

    def to_dict(self) -> dict[str, Any]:
        """The JSON's ``executability`` (CASE_FORMAT.md, "Execution terms")."""
        continuous: dict[str, Any] = {"status": self.continuous_status, "objective_value": self.continuous_value}
        if self.continuous is not None:
            continuous["margins"] = _margins(self.continuous.venues)
        out: dict[str, Any] = {
            "continuous": continuous,
            "executable": {"objective_value": self.executable_value, "over_continuous": self.cost_of_executability},
            "naive_rounding": None,
        }
        if self.rounded is not None and self.rounded_plan is not None:
            moves = [{"venue": v, "asset": a, "quantity": q, "posted_before": self.posted.get(v, {}).get(a, 0.0)}
                     for v, units in self.rounded_plan.allocation.items() for a, q in units.items()
                     if q != 0.0 or self.posted.get(v, {}).get(a, 0.0) != 0.0]
            out["naive_rounding"] = {
                "objective_value": self.rounded.objective_value,
                "feasible": self.rounded.passed,
                "failed_checks": [{"check": c.name, "violation": c.violation} for c in self.rounded.failures],
                "hedges": [{"venue": v, "instrument": i, "quantity": float(q)}
                           for (v, i), q in zip(self.cands, self.rounded_plan.hedges, strict=True)],
                "allocation": moves,
                "margins": _margins(self.rounded.venues),
            }
        return out


def _margins(venues: tuple[VenueOutcome, ...]) -> list[dict[str, Any]]:
    return [{"venue": o.venue, "after": o.margin_after, "collateral_after": o.collateral_after} for o in venues]


def executability(description: Description, executable_value: float, continuous_status: str,
                  continuous: Verification | None = None, plan: Plan | None = None,
                  rounded: tuple[Plan, Verification] | None = None) -> Executability:
    """The comparison for an executable plan of cost ``executable_value`` on ``description``, given
    the continuous problem's status, its optimal ``plan`` and that plan's verification against the
    continuous case (``continuous``; both None when it has no plan: ``continuous_status`` says why).
    ``rounded``: ``naive_rounding(description, plan)`` and its verification where the caller has
    them already (the integer route's), computed here otherwise."""
    cands = tuple((c.venue, c.instrument) for c in description.cands)
    posted = {name: dict(v.posted) for name, v in description.case.venues.items()}
    if plan is None or continuous is None:
        return Executability(executable_value, continuous_status, cands=cands, posted=posted)
    if rounded is None:
        naive = naive_rounding(description, plan)
        rounded = naive, verify(description, naive)
    return Executability(executable_value, continuous_status, continuous, rounded[0], rounded[1], cands, posted)
