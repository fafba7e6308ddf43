"""What a margin measure is, and how measure kinds are parsed.

A measure *spec* is parsed and validated from the case file; binding it to a
venue's instruments (``bind``) gives a ``Measure`` holding the arrays it needs.
Every measure has a numpy ``evaluate(q)`` and a cvxpy form ``cvxpy(q) ->
(expression, constraints)``: minimizing the expression subject to the
constraints, with ``q`` fixed, gives ``evaluate(q)``.

A kind is registered by its module (``@register``) when that module is imported: the
modules of ``marginopt.models.margin`` on import of the package, a module that reads an
outside format's files (``marginopt.formats``, its ``measures``) when a case first names
its kind.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias, TypeVar

import numpy as np

from marginopt.errors import NonConvexMeasureError, OptimizationError
from marginopt.formats import measure_kinds as outside_kinds
from marginopt.formats import measure_module
from marginopt.models.pricing import PricingInputs
from marginopt.models.reader import Node
from marginopt.models.scenarios import ScenarioLosses, ScenarioSpec
from marginopt.typing import FloatArray

if TYPE_CHECKING:  # imported where a cvxpy form is built, so margin alone never loads cvxpy
    import cvxpy as cp

CvxForm: TypeAlias = "tuple[cp.Expression, list[Any]]"


@dataclass(frozen=True)
class BindContext:
    """A venue's instruments (``inputs.ids`` fixes the order of ``q``) and its scenario cache."""

    inputs: PricingInputs
    scenarios: Callable[[ScenarioSpec], ScenarioLosses]


class Measure(ABC):
    """A margin measure bound to a venue's instruments: positions in, base currency out.

    The arrays that move with the market (scenario losses, notionals, deltas)
    enter the cvxpy form as ``cp.Parameter`` (``self.param(name)``), so after a
    market move ``load(new_measure)`` updates them and a compiled problem is
    re-solved without being rebuilt.
    """

    convex: ClassVar[bool] = True
    bound_note: ClassVar[str] = ""  # what the optimizer does instead, for a measure that is not convex
    name: str

    @abstractmethod
    def evaluate(self, q: FloatArray) -> float:
        """Margin of positions ``q`` (contracts, in ``inputs.ids`` order), >= 0."""

    @abstractmethod
    def cvxpy(self, q: cp.Expression) -> CvxForm:
        """``(expr, constraints)`` whose minimum over auxiliary variables is ``evaluate(q)``."""

    def components(self, q: FloatArray) -> dict[str, float]:
        return {self.name: self.evaluate(q)}

    def worst_scenario(self, q: FloatArray) -> tuple[str, float] | None:
        """Label and weighted loss of the scenario that drives this measure, if any."""
        return None

    def on_columns(self, cols: np.ndarray, q0: FloatArray) -> Measure | None:
        """This measure on positions ``[q_C, 1]``: the columns ``cols`` (sorted, distinct) and the
        rest of ``q0`` folded into one column or a constant (``margin.columns``); None where a
        measure cannot (the optimizer then uses it at full width)."""
        return None

    def convex_bound(self) -> Measure:
        """A convex measure never below this one, for the optimizer (a measure with ``convex = False`` defines it)."""
        raise NonConvexMeasureError(f"{self.name}: not convex, and no convex bound to optimize against")

    @abstractmethod
    def gradient(self, q: FloatArray) -> FloatArray:
        """A subgradient at ``q``. The measures are positively homogeneous, so
        ``q * gradient(q)`` splits ``evaluate(q)`` over positions (Euler allocation)."""

    # -- market data as cvxpy parameters -------------------------------------
    def arrays(self) -> dict[str, FloatArray]:
        """The market-dependent data of the cvxpy form, by name."""
        return {}

    def param(self, name: str, nonneg: bool = False) -> cp.Parameter:
        """The parameter holding ``arrays()[name]``; ``nonneg`` where DCP needs the sign."""
        import cvxpy as cp

        params: dict[str, cp.Parameter] = self.__dict__.setdefault("_params", {})
        if name not in params:
            value = self.arrays()[name]
            params[name] = cp.Parameter(value.shape, value=value, name=f"{self.name}.{name}", nonneg=nonneg)
        return params[name]

    def parameters(self) -> dict[str, cp.Parameter]:
        return dict(self.__dict__.get("_params", {}))

    def load(self, other: Measure) -> None:
        """Give this measure's parameters the values of ``other`` (the same measure after a market move)."""
        new = other.arrays()
        for name, p in self.parameters().items():
            if new[name].shape != p.shape:  # e.g. a history of another length: the scenarios are not the same set
                raise OptimizationError(f"measure {self.name}: {name} has shape {new[name].shape} after the market move, "
                                        f"{p.shape} before: the moved case changes the measure's size (its scenarios or "
                                        "instruments), which a warm re-solve cannot take; build a new MarginProblem for it",
                                        argument="case")
            p.value = new[name]


class MeasureSpec(Protocol):
    """A parsed, hashable margin measure; ``bind`` ties it to a venue's instruments."""

    @property
    def kind(self) -> str: ...

    @property
    def name(self) -> str | None: ...

    def bind(self, ctx: BindContext) -> Measure: ...


MeasureParser = Callable[[Node], MeasureSpec]
_REGISTRY: dict[str, MeasureParser] = {}
_P = TypeVar("_P", bound=MeasureParser)


def register(kind: str) -> Callable[[_P], _P]:
    def deco(fn: _P) -> _P:
        _REGISTRY[kind] = fn
        return fn

    return deco


def measure_kinds() -> tuple[str, ...]:
    """Every kind a case may name: those registered, then those outside formats register on first use."""
    return tuple(dict.fromkeys([*_REGISTRY, *outside_kinds()]))


def parse_measure(node: Node) -> MeasureSpec:
    if not isinstance(node.value, dict) or "kind" not in node.value:
        raise node.error(f"a margin measure: a mapping with kind ({', '.join(measure_kinds())})", node.value)
    kind = node.mapping()["kind"].string(choices=measure_kinds())
    module = measure_module(kind)
    if kind not in _REGISTRY and module is not None:
        importlib.import_module(module)  # registers kind
    return _REGISTRY[kind](node)


def measure_keys(node: Node, *keys: str, required: Iterable[str] = ()) -> dict[str, Node]:
    """The measure's mapping, allowing ``kind``, ``name`` and ``keys``."""
    return node.mapping(allowed=("kind", "name", *keys), required=tuple(required))


def optional_name(parts: dict[str, Node]) -> str | None:
    return parts["name"].string() if "name" in parts else None


def unique_merge(target: dict[str, float], extra: dict[str, float]) -> None:
    """Add components, renaming repeated names ``name #2``, ``name #3``..."""
    for key, value in extra.items():
        name, k = key, 2
        while name in target:
            name, k = f"{key} #{k}", k + 1
        target[name] = value


def scenario_specs(spec: MeasureSpec) -> list[ScenarioSpec]:
    """Scenario sets a measure spec uses, in order of appearance, each once."""
    out: list[ScenarioSpec] = []
    stack = [spec]
    while stack:
        s = stack.pop(0)
        sc = getattr(s, "scenarios", None)
        if sc is not None and sc not in out:
            out.append(sc)
        stack[0:0] = list(getattr(s, "terms", ()))
    return out
