"""Parametric (delta-normal) VaR with the covariance estimated from a scenario set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marginopt.models.margin.base import BindContext, CvxForm, Measure, measure_keys, optional_name, register
from marginopt.models.margin.scenario_max import ScenarioMeasure
from marginopt.models.reader import Node
from marginopt.models.scenarios import ScenarioLosses, ScenarioSpec, parse_scenario_set
from marginopt.typing import FloatArray

if TYPE_CHECKING:  # imported where a cvxpy form is built, so margin alone never loads cvxpy
    import cvxpy as cp


class ParametricVaR(ScenarioMeasure):
    r"""``z * sqrt(q' C q)`` per group, summed over groups, an SOCP.

    ``C`` is the probability-weighted covariance of the scenario losses of the
    group (``p_s = w_s / sum w``). The cvxpy form uses ``z * ||R q||`` with
    ``R' R = C`` from an eigendecomposition.
    """

    def __init__(self, name: str, losses: ScenarioLosses, z: float) -> None:
        self.name, self.losses, self.z = name, losses, z
        self.factors: list[np.ndarray] = []
        for g in losses.groups():
            p = losses.weights[g] / losses.weights[g].sum()
            centred = losses.matrix[g] - p @ losses.matrix[g]
            cov = (centred * p[:, None]).T @ centred
            cov = 0.5 * (cov + cov.T)
            lam, vec = np.linalg.eigh(cov)
            # Eigenvalues below rounding of a PSD matrix are zero in exact arithmetic.
            self.factors.append(np.sqrt(np.maximum(lam, 0.0))[:, None] * vec.T)

    def with_losses(self, losses: ScenarioLosses) -> ParametricVaR:
        return ParametricVaR(self.name, losses, self.z)

    def group_values(self, q: FloatArray) -> list[float]:
        return [self.z * float(np.linalg.norm(r @ q)) for r in self.factors]

    def gradient(self, q: FloatArray) -> FloatArray:
        grad = np.zeros(len(q))
        for r in self.factors:
            rq = r @ q
            norm = float(np.linalg.norm(rq))
            if norm > 0:
                grad += self.z * (r.T @ rq) / norm
        return grad

    def arrays(self) -> dict[str, FloatArray]:
        return {f"r{k}": r for k, r in enumerate(self.factors)}

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        terms = [self.z * cp.norm(self.param(f"r{k}") @ q, 2) for k in range(len(self.factors))]
        return cp.sum(cp.hstack(terms)) if len(terms) > 1 else terms[0], []


@dataclass(frozen=True)
class ParametricVaRSpec:
    scenarios: ScenarioSpec
    z: float
    name: str | None = None
    kind: str = "parametric_var"

    def bind(self, ctx: BindContext) -> Measure:
        return ParametricVaR(self.name or self.kind, ctx.scenarios(self.scenarios), self.z)


@register("parametric_var")
def parse_parametric_var(node: Node) -> ParametricVaRSpec:
    parts = measure_keys(node, "scenarios", "z", required=("scenarios", "z"))
    return ParametricVaRSpec(parse_scenario_set(parts["scenarios"]), parts["z"].number(lower=0.0, lower_open=True), optional_name(parts))
