"""Sum and maximum of measures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marginopt.errors import NonConvexMeasureError
from marginopt.models.margin.base import (
    BindContext,
    CvxForm,
    Measure,
    MeasureSpec,
    measure_keys,
    optional_name,
    parse_measure,
    register,
    unique_merge,
)
from marginopt.models.reader import Node
from marginopt.typing import FloatArray

if TYPE_CHECKING:  # imported where a cvxpy form is built, so margin alone never loads cvxpy
    import cvxpy as cp


class Composite(Measure):
    def __init__(self, name: str, terms: list[Measure]) -> None:
        self.name, self.terms = name, terms
        self.convex = all(t.convex for t in terms)  # type: ignore[misc]

    def components(self, q: FloatArray) -> dict[str, float]:
        out: dict[str, float] = {}
        for t in self.terms:
            unique_merge(out, t.components(q))
        return out

    def worst_scenario(self, q: FloatArray) -> tuple[str, float] | None:
        """The worst scenario of the scenario term contributing most."""
        best: tuple[float, tuple[str, float]] | None = None
        for t in self.terms:
            w = t.worst_scenario(q)
            if w is not None and (best is None or t.evaluate(q) > best[0]):
                best = (t.evaluate(q), w)
        return None if best is None else best[1]

    def on_columns(self, cols: np.ndarray, q0: FloatArray) -> Measure | None:
        terms = [t.on_columns(cols, q0) for t in self.terms]
        if any(t is None for t in terms):
            return None
        return type(self)(self.name, terms)  # type: ignore[arg-type]

    def parameters(self) -> dict[str, cp.Parameter]:
        return {f"{i}.{k}": p for i, t in enumerate(self.terms) for k, p in t.parameters().items()}

    def load(self, other: Measure) -> None:
        assert isinstance(other, Composite) and len(other.terms) == len(self.terms)
        for mine, theirs in zip(self.terms, other.terms):
            mine.load(theirs)

    def _forms(self, q: cp.Expression) -> tuple[list[cp.Expression], list[object]]:
        if not self.convex:
            names = ", ".join(t.name for t in self.terms if not t.convex)
            raise NonConvexMeasureError(f"{self.name}: a term is not convex ({names}); optimize against convex_form(measure)")
        exprs, cons = [], []
        for t in self.terms:
            e, c = t.cvxpy(q)
            exprs.append(e)
            cons += c
        return exprs, cons


class SumMeasure(Composite):
    """Sum of the terms (for example scan risk plus a short-option minimum)."""

    def evaluate(self, q: FloatArray) -> float:
        return float(sum(t.evaluate(q) for t in self.terms))

    def gradient(self, q: FloatArray) -> FloatArray:
        return np.sum([t.gradient(q) for t in self.terms], axis=0)

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        exprs, cons = self._forms(q)
        return cp.sum(cp.hstack(exprs)) if len(exprs) > 1 else exprs[0], cons  # type: ignore[return-value]


class MaxMeasure(Composite):
    """Largest of the terms (for example scan risk, floored by a minimum charge)."""

    def evaluate(self, q: FloatArray) -> float:
        return float(max(t.evaluate(q) for t in self.terms))

    def gradient(self, q: FloatArray) -> FloatArray:
        return max(self.terms, key=lambda t: t.evaluate(q)).gradient(q)

    def worst_scenario(self, q: FloatArray) -> tuple[str, float] | None:
        binding = max(self.terms, key=lambda t: t.evaluate(q))
        return binding.worst_scenario(q) or super().worst_scenario(q)

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        exprs, cons = self._forms(q)
        return cp.maximum(*exprs) if len(exprs) > 1 else exprs[0], cons  # type: ignore[return-value]


@dataclass(frozen=True)
class CompositeSpec:
    terms: tuple[MeasureSpec, ...]
    name: str | None = None
    kind: str = "sum"

    def bind(self, ctx: BindContext) -> Measure:
        cls = SumMeasure if self.kind == "sum" else MaxMeasure
        return cls(self.name or self.kind, [t.bind(ctx) for t in self.terms])


def _parse(node: Node, kind: str) -> CompositeSpec:
    parts = measure_keys(node, "terms", required=("terms",))
    terms = tuple(parse_measure(t) for t in parts["terms"].sequence())
    if not terms:
        raise parts["terms"].error("at least one measure", [])
    return CompositeSpec(terms, optional_name(parts), kind)


@register("sum")
def parse_sum(node: Node) -> CompositeSpec:
    return _parse(node, "sum")


@register("max")
def parse_max(node: Node) -> CompositeSpec:
    return _parse(node, "max")


def bound_notes(measure: Measure) -> list[str]:
    """What the optimizer does instead of each non-convex term, once each."""
    if measure.convex:
        return []
    if isinstance(measure, Composite):
        return list(dict.fromkeys(n for t in measure.terms for n in bound_notes(t)))
    return [measure.bound_note or f"{measure.name}: not convex; the optimizer works against a convex bound never below it"]


def convex_form(measure: Measure) -> Measure:
    """The measure to optimize: itself when convex, else each non-convex term replaced by its
    convex bound (historical VaR by ES at the same alpha, for example)."""
    if measure.convex:
        return measure
    if isinstance(measure, Composite):
        return type(measure)(measure.name, [convex_form(t) for t in measure.terms])
    return measure.convex_bound()
