"""Independent verification of a plan: every margin and constraint recomputed in numpy.

Nothing here reads the solver's auxiliary variables or the cvxpy expressions:
margins come from each measure's numpy ``evaluate`` (the venue's real measure,
historical VaR included), collateral from the closed-form valuation with tiers
and concentration, limits from the case. A plan is shown as a success only if
every check holds within its tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from marginopt.models.limit_use import limit_uses
from marginopt.optimizer.safety import call_outcomes, safety_outcomes

if TYPE_CHECKING:
    from marginopt.optimizer.description import Description

# A violation counts when it exceeds ABS + REL * (size of the quantities compared):
# well below a cent on margins of millions, well above solver round-off.
ABS_TOL = 1e-6
REL_TOL = 1e-8
# A hedge is a whole number of lots, and a move a whole number of rounding units, within this
# fraction of one (HiGHS holds integers to 1e-6; the MIP backend's plan is rounded to whole ones).
INTEGRALITY_TOL = 1e-6


@dataclass(frozen=True)
class Check:
    name: str
    violation: float  # > 0 means the constraint is broken by that much (in its own units)
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.violation <= self.tolerance


@dataclass(frozen=True)
class Plan:
    """A proposed plan: hedge quantities per candidate, units posted per venue and asset."""

    hedges: np.ndarray
    allocation: dict[str, dict[str, float]]


@dataclass(frozen=True)
class VenueOutcome:
    venue: str
    margin_before: float
    margin_after: float
    collateral_after: float
    positions_after: np.ndarray


@dataclass(frozen=True)
class Verification:
    checks: tuple[Check, ...]
    venues: tuple[VenueOutcome, ...]
    objective_value: float  # recomputed from the plan
    costs: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def max_violation(self) -> float:
        return max((max(c.violation, 0.0) for c in self.checks), default=0.0)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, object]:
        return {"passed": self.passed, "max_violation": self.max_violation}


def _check(name: str, violation: float, scale: float) -> Check:
    return Check(name, float(violation), ABS_TOL + REL_TOL * abs(scale))


def verify(problem: Description, plan: Plan) -> Verification:
    """Every check of ``plan`` against the problem it was made for; the costs recomputed by its objective."""
    case = problem.case
    checks: list[Check] = []
    outcomes = []
    h = plan.hedges
    for k, c in enumerate(problem.cands):
        checks.append(_check(f"hedge {c.venue}:{c.instrument} within [-{c.max_sell:g}, {c.max_buy:g}]",
                             max(h[k] - c.max_buy, -c.max_sell - h[k]), max(c.max_buy, c.max_sell)))
    used: dict[str, float] = {}
    after_plan = problem.positions_after(h)
    for part in problem.parts:
        book = part.book
        q_after = after_plan[part.name]
        before = book.initial.evaluate(book.q)
        after = before if not part.cands else book.initial.evaluate(q_after)
        units = plan.allocation.get(part.name, dict(book.venue.posted))
        if units:
            lowest = min(units, key=lambda a: units[a])
            checks.append(_check(f"{part.name}: {lowest} posted >= 0 (the lowest quantity)", -units[lowest], 1.0))
        for a, qty in units.items():
            used[a] = used.get(a, 0.0) + qty
        credited = book.credited_total({a: max(q, 0.0) for a, q in units.items()})
        if problem.coverage_required:
            need = book.venue.required(after)
            what = "initial margin" if need == after else "initial margin and its buffer"
            checks.append(_check(f"{part.name}: {what} covered by collateral", need - credited, max(need, credited)))
        outcomes.append(VenueOutcome(part.name, before, after, credited, q_after))
    if problem.collateral_free:
        posted_total: dict[str, float] = {}
        for v in case.venues.values():
            for a, q in v.posted.items():
                posted_total[a] = posted_total.get(a, 0.0) + q
        for a, total in used.items():
            avail = (case.treasury[a].quantity if a in case.treasury else 0.0) + posted_total.get(a, 0.0)
            checks.append(_check(f"inventory of {a}", total - avail, avail))
    if problem.has_hedges:
        checks += _limit_checks(problem, outcomes)
    checks += _execution_checks(problem, plan)
    checks += _safety_checks(problem, plan)
    costs = problem.kind.costs(problem, plan, {o.venue: o.margin_after for o in outcomes})
    return Verification(tuple(checks), tuple(outcomes), float(sum(costs.values())), costs)


def _limit_checks(problem: Description, outcomes: list[VenueOutcome]) -> list[Check]:
    """Net delta, the worst whole-book loss and the linear limits at the positions after the plan
    (``models.limit_use``); the hedges read back from those positions (an independent path)."""
    hedges: dict[str, float] = {}
    for c, q in zip(problem.cands, _hedges(problem, outcomes), strict=True):
        hedges[c.instrument] = hedges.get(c.instrument, 0.0) + q
    uses = limit_uses(problem.case, [p.book for p in problem.parts], {o.venue: o.positions_after for o in outcomes}, {}, hedges,
                      (problem.all_ids, problem.max_loss_losses))
    out = []
    for u in uses:
        if u.kind == "net_delta":
            assert u.lower is not None and u.upper is not None
            out.append(_check(f"{u.name} in [{u.lower:g}, {u.upper:g}]", u.violation, max(abs(u.lower), abs(u.upper))))
        elif u.kind == "max_loss":
            assert u.upper is not None
            out.append(_check("worst whole-book scenario loss <= max_loss", u.value - u.upper, u.upper))
        elif u.kind == "linear":
            if u.lower is not None:
                out.append(_check(f"{u.name} >= {u.lower:g}", u.lower - u.value, abs(u.lower)))
            if u.upper is not None:
                out.append(_check(f"{u.name} <= {u.upper:g}", u.value - u.upper, abs(u.upper)))
    return out


def _safety_checks(problem: Description, plan: Plan) -> list[Check]:
    """The case's safety at the plan: every venue's margin balance at or above its level under every move
    of the stress set, recomputed on the whole case after the plan (``safety.safety_outcomes``)."""
    safety = problem.case.safety
    if safety is None:
        return []
    allocation = plan.allocation if problem.collateral_free else {}
    level = safety.level.value
    out = [_check(f"{venue}: margin balance under {label} >= {level} margin", margin - balance, max(abs(balance), margin))
           for label, venue, balance, margin in safety_outcomes(problem, plan.hedges, allocation)]
    if safety.call_budget is not None:
        cb = safety.call_budget
        for venue, es in call_outcomes(problem, plan.hedges, allocation).items():
            out.append(_check(f"{venue}: expected shortfall ({cb.alpha:g}) of the margin-call amount on day {cb.days} over "
                              f"{cb.paths} paths <= budget {cb.budget[venue]:,.2f}", es - cb.budget[venue], max(es, cb.budget[venue])))
    return out


def _moved(before: float, after: float) -> bool:
    return abs(after - before) > ABS_TOL + REL_TOL * max(abs(before), abs(after))


def _execution_checks(problem: Description, plan: Plan) -> list[Check]:
    """The case's execution terms at the plan (CASE_FORMAT.md, "Execution terms"): lots, minimum
    trades, tickets; minimum transfers, rounding and move counts of the collateral moves (the
    change of one asset's quantity at one venue). Counts allow no tolerance."""
    case, out = problem.case, []
    h = plan.hedges
    tickets = 0
    for k, c in enumerate(problem.cands):
        size = abs(float(h[k]))
        traded = size > ABS_TOL + REL_TOL * max(c.max_buy, c.max_sell)
        tickets += traded
        if c.lot_size is not None:
            lots = float(h[k]) / c.lot_size
            out.append(Check(f"hedge {c.venue}:{c.instrument} a whole number of lots of {c.lot_size:g}",
                             abs(lots - round(lots)), INTEGRALITY_TOL))
        if c.min_trade > 0.0 and traded:
            out.append(_check(f"hedge {c.venue}:{c.instrument} 0 or at least min_trade {c.min_trade:g}", c.min_trade - size, c.min_trade))
    if problem.cands and case.execution.max_tickets is not None:
        out.append(Check(f"non-zero hedge lines <= max_tickets {case.execution.max_tickets}",
                         tickets - case.execution.max_tickets, 0.0))
    if not problem.collateral_free:
        return out
    prices, total = case.market.prices, 0
    for part in problem.parts:
        spec = case.venues[part.name]
        units = plan.allocation.get(part.name, {})
        moves = 0
        for a, after in units.items():
            before = spec.posted.get(a, 0.0)
            if not _moved(before, after):
                continue
            moves += 1
            value = abs(after - before) * prices[a]
            if spec.minimum_transfer > 0.0:
                out.append(_check(f"{part.name}: move of {a} worth at least minimum_transfer {spec.minimum_transfer:g}",
                                  spec.minimum_transfer - value, spec.minimum_transfer))
            rounding = case.treasury[a].rounding if a in case.treasury else None
            if rounding is not None:
                steps = (after - before) / rounding
                out.append(Check(f"{part.name}: move of {a} a whole multiple of rounding {rounding:g}",
                                 abs(steps - round(steps)), INTEGRALITY_TOL))
        if spec.max_moves is not None:
            out.append(Check(f"{part.name}: collateral moves <= max_moves {spec.max_moves}", moves - spec.max_moves, 0.0))
        total += moves
    if case.execution.max_moves is not None:
        out.append(Check(f"collateral moves <= execution.max_moves {case.execution.max_moves}",
                         total - case.execution.max_moves, 0.0))
    return out


def _hedges(problem: Description, outcomes: list[VenueOutcome]) -> list[float]:
    """Hedge quantities read back from the positions after the plan (an independent path)."""
    by_venue = {o.venue: o for o in outcomes}
    out = []
    for c in problem.cands:
        part = next(p for p in problem.parts if p.name == c.venue)
        j = part.book.column(c.instrument)
        out.append(float(by_venue[c.venue].positions_after[j] - part.book.q[j]))
    return out
