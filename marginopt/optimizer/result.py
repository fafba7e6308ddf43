"""The result of an optimization: plan tables, margins, shadow prices, verification, solver report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from marginopt.models.enums import Objective
from marginopt.models.hedges import HedgeCandidate
from marginopt.optimizer.verify import Verification
from marginopt.solvers import SolveReport


@dataclass(frozen=True)
class OptimizationResult:
    """``status`` is ``optimal`` only for a plan that a solver found and verification passed.

    ``infeasible``: no plan exists; ``shortfalls`` says what is short and by how
    much. ``failed``: no solver produced a plan that passed verification.
    """

    status: str
    objective: Objective
    mode: str
    objective_value: float | None
    hedges: pd.DataFrame  # venue, instrument, quantity, cost
    allocation: pd.DataFrame  # venue, asset, quantity, value (gross market value), posted_before
    margins: pd.DataFrame  # venue, before, after, collateral_after, excess_after
    shadow_prices: dict[str, dict[str, float]]
    verification: Verification | None
    solver: SolveReport
    shortfalls: tuple[tuple[str, float], ...] = ()
    costs: dict[str, float] = field(default_factory=dict)
    candidates: tuple[HedgeCandidate, ...] = ()
    # Scenario generation: method, rounds, lower_bound, gap, scenarios_in_program (per venue).
    certificate: dict[str, Any] | None = None
    attribution_of: Callable[[], pd.DataFrame] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def attribution(self) -> pd.DataFrame | None:
        """Euler allocation of each venue's margin after the plan: venue, instrument, position,
        contribution (computed when first asked for)."""
        return self.attribution_of() if self.attribution_of is not None else None

    @property
    def succeeded(self) -> bool:
        return self.status == "optimal"

    def to_dict(self) -> dict[str, Any]:
        """Exactly the JSON of ``marginopt optimize --format json`` (CASE_FORMAT.md), plus
        ``infeasibility`` when no plan exists."""
        out: dict[str, Any] = {
            "status": self.status,
            "objective": self.objective.value,
            "objective_value": self.objective_value,
            "hedges": _records(self.hedges, ["venue", "instrument", "quantity", "cost"]),
            "allocation": _records(self.allocation, ["venue", "asset", "quantity", "value"]),
            "margins": _records(self.margins, ["venue", "before", "after"]),
            "shadow_prices": self.shadow_prices,
            "verification": self.verification.to_dict() if self.verification else {"passed": False, "max_violation": None},
            "solver": self.solver.to_dict(),
        }
        if self.certificate is not None:
            out["certificate"] = self.certificate
        if self.status == "infeasible":
            out["infeasibility"] = [{"constraint": name, "shortfall": amount} for name, amount in self.shortfalls]
        return out


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    return [{str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame[columns].to_dict("records")]
