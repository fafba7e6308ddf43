"""The objectives a plan can minimize, each with everything that depends on it.

An objective says which costs it adds up (and recomputes them for verification, in
numpy, from the plan alone), whether collateral is a variable, whether every venue's
margin must be covered, what problem class it makes, and what a venue's shadow price
means under it. The CLI, batch and the service list the objectives from ``OBJECTIVES``.

A new objective is one ``ObjectiveKind`` here plus its terms in the backends that can
hold it (``backends/cvxpy_program.py`` names each term it builds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from marginopt.errors import OptimizationError
from marginopt.models.enums import Objective
from marginopt.solvers.status import ProblemClass

if TYPE_CHECKING:
    from marginopt.optimizer.description import Description
    from marginopt.optimizer.verify import Plan


@dataclass(frozen=True)
class ObjectiveKind:
    objective: Objective
    summary: str
    terms: tuple[str, ...]  # the cost terms it adds up ("hedge" only where hedges are traded)
    moves_collateral: bool  # collateral is a variable (unless the mode fixes it)
    covers_margin: bool  # every venue's initial margin must be covered by its collateral
    # A venue's shadow price when it is a weight of the objective (each margin counts once), not a dual.
    venue_weight: float | None

    @property
    def name(self) -> str:
        return self.objective.value

    def problem_class(self, description: Description) -> ProblemClass:
        """LP, unless a margin with a cone (parametric VaR) moves with the hedges, or a hedge
        has an impact cost (a cone too: see the cvxpy backend's hedge term)."""
        if cone_margin_venues(description):
            return ProblemClass.SOCP
        if description.has_hedges and bool(description.impacts.any()):
            return ProblemClass.SOCP
        return ProblemClass.LP

    def costs(self, description: Description, plan: Plan, margins_after: dict[str, float]) -> dict[str, float]:
        """Every cost term recomputed at ``plan`` (verification's figures, in base currency)."""
        import numpy as np  # here: the CLI lists OBJECTIVES at start-up, where numpy is not loaded

        out: dict[str, float] = {}
        if description.cands:
            h = plan.hedges
            out["hedge"] = float(description.unit_costs @ np.abs(h) + description.impacts @ (h * h))
        if "funding" in self.terms:
            out["funding"], out["transfer"] = _collateral_costs(description, plan)
        if "margin" in self.terms:
            out["margin"] = float(sum(margins_after.values()))
        return out


def _collateral_costs(description: Description, plan: Plan) -> tuple[float, float]:
    import numpy as np

    prices = description.case.market.prices
    funding = transfer = 0.0
    for v in description.venues:
        units = plan.allocation.get(v.name, dict(v.book.venue.posted))
        assets, rate, move, before = v.book.cost_terms
        if not assets:
            continue
        qty = np.array([units.get(a, 0.0) for a in assets])
        value = np.array([prices[a] for a in assets])
        funding += float(rate * value @ qty)
        transfer += float(move * value @ np.maximum(qty - before, 0.0))
    return funding, transfer


def cone_margin_venues(description: Description) -> list[str]:
    """The venues whose margin is a cone (a parametric VaR) that moves with the hedges."""
    # Imported here: the CLI lists OBJECTIVES at start-up, before any measure is needed.
    from marginopt.models.margin import ParametricVaR

    return [v.name for v in description.venues if v.cands and _has(v.measure, ParametricVaR)]


def _has(measure: object, kind: type) -> bool:
    from marginopt.models.margin.composite import Composite

    if isinstance(measure, kind):
        return True
    return isinstance(measure, Composite) and any(_has(t, kind) for t in measure.terms)


OBJECTIVES: dict[Objective, ObjectiveKind] = {
    Objective.MIN_COST: ObjectiveKind(
        Objective.MIN_COST, "funding, transfer and hedge costs, with every venue's initial margin covered",
        ("hedge", "funding", "transfer"), moves_collateral=True, covers_margin=True, venue_weight=None),
    Objective.MIN_MARGIN: ObjectiveKind(
        Objective.MIN_MARGIN, "total initial margin plus hedge costs, collateral as posted",
        ("hedge", "margin"), moves_collateral=False, covers_margin=False, venue_weight=1.0),
}


def objective_names() -> list[str]:
    return [o.value for o in OBJECTIVES]


def objective_kind(objective: Objective | str) -> ObjectiveKind:
    try:
        return OBJECTIVES[Objective(objective)]
    except ValueError:
        raise OptimizationError(f"objective {objective!r}: expected one of {', '.join(objective_names())}, or none for "
                                "the case's own", argument="objective") from None
