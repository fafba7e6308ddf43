"""Measures on contract notionals and deltas: fixed rate, short-option minimum, net-delta charge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marginopt.models.margin.base import BindContext, CvxForm, Measure, measure_keys, optional_name, register
from marginopt.models.pricing import PricingInputs
from marginopt.models.reader import Node
from marginopt.typing import FloatArray

if TYPE_CHECKING:  # imported where a cvxpy form is built, so margin alone never loads cvxpy
    import cvxpy as cp


class FixedRate(Measure):
    r"""``rate * sum_j |q_j n_j|``: isolated or standard margin on notional.

    ``n_j`` is the notional of one contract: ``multiplier * mark`` (for an option
    its premium, or ``multiplier * underlying price`` with ``notional:
    underlying``), and the face value for inverse futures and perpetuals.
    """

    def __init__(self, name: str, rate: float, notional: FloatArray) -> None:
        self.name, self.rate, self.notional = name, rate, notional

    def evaluate(self, q: FloatArray) -> float:
        return self.rate * float(np.abs(q * self.notional).sum())

    def gradient(self, q: FloatArray) -> FloatArray:
        return self.rate * np.abs(self.notional) * np.sign(q)

    def arrays(self) -> dict[str, FloatArray]:
        return {"notional": self.rate * np.abs(self.notional)}

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        return cp.norm1(cp.multiply(self.param("notional"), q)), []

    def on_columns(self, cols: np.ndarray, q0: FloatArray) -> Measure:
        from marginopt.models.margin.columns import Constant, at_columns, rest_mask
        from marginopt.models.margin.composite import SumMeasure

        rest = rest_mask(len(q0), cols)
        return SumMeasure(self.name, [FixedRate(self.name, self.rate, at_columns(self.notional, cols)),
                                      Constant(f"{self.name} (rest)", self.evaluate(np.where(rest, q0, 0.0)), len(cols) + 1)])


@dataclass(frozen=True)
class FixedRateSpec:
    rate: float
    notional: str = "mark"
    name: str | None = None
    kind: str = "fixed_rate"

    def bind(self, ctx: BindContext) -> Measure:
        inp = ctx.inputs
        n = inp.notional if self.notional == "mark" else np.where(inp.is_option, inp.underlying_notional, inp.notional)
        return FixedRate(self.name or self.kind, self.rate, n)


@register("fixed_rate")
def parse_fixed_rate(node: Node) -> FixedRateSpec:
    parts = measure_keys(node, "rate", "notional", required=("rate",))
    notional = parts["notional"].string(choices=("mark", "underlying")) if "notional" in parts else "mark"
    return FixedRateSpec(parts["rate"].number(lower=0.0), notional, optional_name(parts))


class ShortOptionMinimum(Measure):
    r"""``per_contract * sum_{options j} max(0, -q_j) * multiplier_j * S_j``.

    A floor charged per short option contract, as a fraction of the underlying's
    price (SPAN short option minimum, Deribit and Derive option minimums).
    """

    def __init__(self, name: str, per_contract: float, unit: FloatArray) -> None:
        self.name, self.per_contract, self.unit = name, per_contract, unit

    def evaluate(self, q: FloatArray) -> float:
        return self.per_contract * float(self.unit @ np.maximum(-q, 0.0))

    def gradient(self, q: FloatArray) -> FloatArray:
        return -self.per_contract * self.unit * (q < 0)

    def arrays(self) -> dict[str, FloatArray]:
        return {"unit": self.per_contract * self.unit}

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        return self.param("unit", nonneg=True) @ cp.neg(q), []

    def on_columns(self, cols: np.ndarray, q0: FloatArray) -> Measure:
        from marginopt.models.margin.columns import Constant, at_columns, rest_mask
        from marginopt.models.margin.composite import SumMeasure

        rest = rest_mask(len(q0), cols)
        return SumMeasure(self.name, [ShortOptionMinimum(self.name, self.per_contract, at_columns(self.unit, cols)),
                                      Constant(f"{self.name} (rest)", self.evaluate(np.where(rest, q0, 0.0)), len(cols) + 1)])


@dataclass(frozen=True)
class ShortOptionMinimumSpec:
    per_contract: float
    name: str | None = None
    kind: str = "short_option_minimum"

    def bind(self, ctx: BindContext) -> Measure:
        inp = ctx.inputs
        return ShortOptionMinimum(self.name or self.kind, self.per_contract, np.where(inp.is_option, inp.underlying_notional, 0.0))


@register("short_option_minimum")
def parse_short_option_minimum(node: Node) -> ShortOptionMinimumSpec:
    parts = measure_keys(node, "per_contract", required=("per_contract",))
    return ShortOptionMinimumSpec(parts["per_contract"].number(lower=0.0), optional_name(parts))


class PerUnderlyingCharge(Measure):
    """A measure summed over underlyings, one component each (when there are several)."""

    name: str
    underlyings: tuple[str, ...]

    def per_underlying(self, q: FloatArray) -> FloatArray:
        raise NotImplementedError

    def evaluate(self, q: FloatArray) -> float:
        return float(self.per_underlying(q).sum())

    def components(self, q: FloatArray) -> dict[str, float]:
        if len(self.underlyings) <= 1:
            return {self.name: self.evaluate(q)}
        return {f"{self.name}[{u}]": float(v) for u, v in zip(self.underlyings, self.per_underlying(q))}


def underlying_prices(inp: PricingInputs) -> FloatArray:
    """Spot of each of ``inp.underlyings``, in that order."""
    prices = np.zeros(len(inp.underlyings))
    prices[inp.uidx] = inp.spot
    return prices


class NetDeltaCharge(PerUnderlyingCharge):
    r"""``rate * sum_u S_u |sum_j delta_{uj} q_j|``: a charge on the net delta of each underlying.

    ``delta`` is in units of the underlying per contract (Black-76 delta for
    options, the face value over the price for inverse futures).
    """

    def __init__(self, name: str, rate: float, delta: FloatArray, prices: FloatArray, underlyings: tuple[str, ...]) -> None:
        self.name, self.rate, self.delta, self.prices, self.underlyings = name, rate, delta, prices, underlyings

    def per_underlying(self, q: FloatArray) -> FloatArray:
        return self.rate * self.prices * np.abs(self.delta @ q)

    def gradient(self, q: FloatArray) -> FloatArray:
        return self.rate * (self.prices * np.sign(self.delta @ q)) @ self.delta

    def arrays(self) -> dict[str, FloatArray]:
        # rate * S_u folded into the delta rows: a parameter times a parameter is not DPP.
        return {"charge": self.rate * self.prices[:, None] * self.delta}

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        return cp.sum(cp.abs(self.param("charge") @ q)), []

    def on_columns(self, cols: np.ndarray, q0: FloatArray) -> Measure:
        from marginopt.models.margin.columns import reduce_rows

        return NetDeltaCharge(self.name, self.rate, reduce_rows(self.delta, cols, q0), self.prices, self.underlyings)


@dataclass(frozen=True)
class NetDeltaChargeSpec:
    rate: float
    name: str | None = None
    kind: str = "net_delta_charge"

    def bind(self, ctx: BindContext) -> Measure:
        inp = ctx.inputs
        return NetDeltaCharge(self.name or self.kind, self.rate, inp.delta_matrix(), underlying_prices(inp), inp.underlyings)


@register("net_delta_charge")
def parse_net_delta_charge(node: Node) -> NetDeltaChargeSpec:
    parts = measure_keys(node, "rate", required=("rate",))
    return NetDeltaChargeSpec(parts["rate"].number(lower=0.0), optional_name(parts))
