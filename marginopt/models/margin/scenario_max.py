"""Scenario maximum: the SPAN scan risk and crypto portfolio-margin grids."""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from marginopt.models.margin.base import BindContext, CvxForm, Measure, measure_keys, optional_name, register
from marginopt.models.reader import Node
from marginopt.models.scenarios import ScenarioLosses, ScenarioSpec, parse_scenario_set
from marginopt.typing import FloatArray


class ScenarioMeasure(Measure):
    """A measure computed from a scenario-loss matrix, group by group, summed over groups."""

    losses: ScenarioLosses

    def _group_names(self, base: str) -> list[str]:
        names = self.losses.group_names
        return [base] if len(names) == 1 else [f"{base}[{g}]" for g in names]

    def group_values(self, q: FloatArray) -> list[float]:
        raise NotImplementedError

    def evaluate(self, q: FloatArray) -> float:
        return float(sum(self.group_values(q)))

    def components(self, q: FloatArray) -> dict[str, float]:
        return dict(zip(self._group_names(self.name), self.group_values(q)))

    def worst_scenario(self, q: FloatArray) -> tuple[str, float]:
        weighted = self.losses.weights * self.losses.losses(q)
        s = int(np.argmax(weighted))
        return str(self.losses.labels[s]), float(weighted[s])


class ScenarioMax(ScenarioMeasure):
    r"""Worst weighted scenario loss, floored at zero, per group:

    .. math:: m(q) = \sum_g \max\bigl(0, \max_{s \in g} w_s (Lq)_s\bigr)

    ``w_s`` dampens extended (tail) scenarios. Models CME SPAN scan risk and the
    portfolio-margin grids of Deribit, OKX, Bybit, Paradex and Derive.
    """

    def __init__(self, name: str, losses: ScenarioLosses) -> None:
        self.name, self.losses = name, losses

    def group_values(self, q: FloatArray) -> list[float]:
        weighted = self.losses.weights * self.losses.losses(q)
        return [max(0.0, float(weighted[g].max())) for g in self.losses.groups()]

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        terms = []
        for g in self.losses.groups():
            wl = self.losses.weights[g, None] * self.losses.matrix[g]
            terms.append(cp.pos(cp.max(wl @ q)))
        return cp.sum(cp.hstack(terms)) if len(terms) > 1 else terms[0], []


@dataclass(frozen=True)
class ScenarioMaxSpec:
    scenarios: ScenarioSpec
    name: str | None = None
    kind: str = "scenario_max"

    def bind(self, ctx: BindContext) -> Measure:
        return ScenarioMax(self.name or self.kind, ctx.scenarios(self.scenarios))


@register("scenario_max")
def parse_scenario_max(node: Node) -> ScenarioMaxSpec:
    parts = measure_keys(node, "scenarios", required=("scenarios",))
    return ScenarioMaxSpec(parse_scenario_set(parts["scenarios"]), optional_name(parts))
