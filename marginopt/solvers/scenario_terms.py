"""What the scenario solvers take and give: ES / scenario-maximum terms and the result.

``scenario_lp`` (primal rows) and ``scenario_dual`` (dual columns) solve the same program
over the same terms; both evaluate the exact objective the same way (the upper bound) and
report in one result type, so these live below both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from marginopt.models.margin.shortfall import tail_mean
from marginopt.solvers.status import SolveStatus


@dataclass
class ScenarioTerm:
    """One ES or scenario-maximum term over hedge variables.

    ``matrix`` (S x k, any float64 array with rows readable cheaply, e.g. a row slice
    of a ScenarioLosses matrix) gives the loss per unit of the hedges ``cols`` (indices
    into h); ``offset`` (S) is the loss of the book already held. ``probs`` are
    scenario probabilities (ES) or dampening weights (maximum).
    """

    kind: str  # "es" | "max"
    matrix: np.ndarray
    cols: np.ndarray
    offset: np.ndarray
    probs: np.ndarray
    alpha: float = 0.0
    weight: float = 1.0  # coefficient in the objective
    floor: bool = True  # margin is max(0, measure)
    name: str = ""
    limit: float | None = None  # the measure may not exceed this (a risk limit; primal method)

    def losses(self, h: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.offset + self.matrix @ h[self.cols]
        return out

    def value(self, h: np.ndarray) -> float:
        loss = self.losses(h)
        v = tail_mean(loss, self.probs, 1.0 - self.alpha) if self.kind == "es" else float(np.max(self.probs * loss))
        return max(v, 0.0) if self.floor else v


@dataclass
class LargeResult:
    status: SolveStatus  # OPTIMAL, INFEASIBLE, UNBOUNDED or ERROR
    h: np.ndarray
    objective: float  # exact objective at h (upper bound)
    lower_bound: float  # restricted LP optimum
    iterations: int
    working_set: list[np.ndarray]  # per term: scenarios in the LP at the end
    term_values: list[float]
    linear_duals: np.ndarray  # d(objective)/d(bound) of each linear row on h
    scenario_duals: list[tuple[np.ndarray, np.ndarray]]  # per term: (scenario index, dual)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        return self.objective - self.lower_bound


def exact_objective(terms: Sequence[ScenarioTerm], h: np.ndarray, cost: np.ndarray) -> tuple[float, list[float]]:
    """The objective at ``h`` computed from the full matrices (the upper bound), and each term's value."""
    values = [term.value(h) for term in terms]
    return float(sum(term.weight * v for term, v in zip(terms, values, strict=True)) + cost @ np.abs(h)), values
