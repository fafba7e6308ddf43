"""Scenario maximum: the SPAN scan risk and crypto portfolio-margin grids."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marginopt.models.margin.base import BindContext, CvxForm, Measure, measure_keys, optional_name, register
from marginopt.models.reader import Node
from marginopt.models.scenarios import ScenarioLosses, ScenarioSpec, parse_scenario_set
from marginopt.typing import FloatArray

if TYPE_CHECKING:  # imported where a cvxpy form is built, so margin alone never loads cvxpy
    import cvxpy as cp


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

    def with_losses(self, losses: ScenarioLosses) -> ScenarioMeasure | None:
        """The same measure over other scenario losses (None where a subclass cannot say)."""
        return None

    def on_columns(self, cols: np.ndarray, q0: FloatArray) -> Measure | None:
        # A function of L q alone: the rest of the book is one column of losses.
        return self.with_losses(self._losses_on(cols, q0))

    def _losses_on(self, cols: np.ndarray, q0: FloatArray) -> ScenarioLosses:
        """``losses.on_columns(cols, q0)``, the same object again while one asked for before is still
        held (weakly remembered): scenario generation asks each round for the same columns and book, and
        a new (S x C+1) matrix each time was a matrix's time and memory per round, two of them alive at
        once while a program was rebuilt (400,000 Monte Carlo scenarios: 0.05 s and 9 MiB a round)."""
        memo = self.__dict__.get("_columns_memo")
        if memo is not None:
            last_cols, last_q0, ref = memo
            losses = ref()
            if losses is not None and np.array_equal(last_cols, cols) and np.array_equal(last_q0, q0):
                return losses
        losses = self.losses.on_columns(cols, q0)
        self.__dict__["_columns_memo"] = (np.array(cols, copy=True), np.array(q0, copy=True), weakref.ref(losses))
        return losses

    def __getstate__(self) -> dict[str, object]:
        # A weak reference does not pickle or copy; the memo is only a shortcut.
        state = dict(self.__dict__)
        state.pop("_columns_memo", None)
        return state


class ScenarioMax(ScenarioMeasure):
    r"""Worst weighted scenario loss, floored at zero, per group:

    .. math:: m(q) = \sum_g \max\bigl(0, \max_{s \in g} w_s (Lq)_s\bigr)

    ``w_s`` dampens extended (tail) scenarios. Models CME SPAN scan risk and the
    portfolio-margin grids of Deribit, OKX, Bybit, Paradex and Derive.
    """

    def __init__(self, name: str, losses: ScenarioLosses) -> None:
        self.name, self.losses = name, losses

    def with_losses(self, losses: ScenarioLosses) -> ScenarioMax:
        return ScenarioMax(self.name, losses)

    def group_values(self, q: FloatArray) -> list[float]:
        weighted = self.losses.weights * self.losses.losses(q)
        return [max(0.0, float(weighted[g].max())) for g in self.losses.groups()]

    def gradient(self, q: FloatArray) -> FloatArray:
        weighted = self.losses.weights * self.losses.losses(q)
        grad = np.zeros(self.losses.shape[1])
        for g in self.losses.groups():
            s = g.start + int(np.argmax(weighted[g]))
            if weighted[s] > 0:
                grad += self.losses.weights[s] * self.losses.matrix[s]
        return grad

    def arrays(self) -> dict[str, FloatArray]:
        w, m = self.losses.weights, self.losses.matrix
        return {f"wl{k}": w[g, None] * m[g] for k, g in enumerate(self.losses.groups())}

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        terms = [cp.pos(cp.max(self.param(f"wl{k}") @ q)) for k in range(len(self.losses.group_names))]
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
