"""Charges on each underlying's delta: a minimum delta requirement (net and gross) and a basis shift."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marginopt.models.enums import InstrumentKind
from marginopt.models.margin.base import BindContext, CvxForm, Measure, measure_keys, optional_name, register
from marginopt.models.margin.notional import NetDeltaCharge, PerUnderlyingCharge, underlying_prices
from marginopt.models.pricing import PricingInputs
from marginopt.models.reader import Node
from marginopt.typing import FloatArray

if TYPE_CHECKING:  # imported where a cvxpy form is built, so margin alone never loads cvxpy
    import cvxpy as cp


class DeltaRequirement(PerUnderlyingCharge):
    r"""A charge on each underlying's net and hedged delta:

    .. math:: m(q) = \sum_u S_u \Bigl(a |N_u| + h \frac{G_u - |N_u|}{2}\Bigr),
              \quad N_u = \sum_j \delta_{uj} q_j, \quad G_u = \sum_j |\delta_{uj} q_j|

    over the instruments it applies to, with ``a`` the unhedged and ``h`` the hedged
    factor; ``(G - |N|) / 2`` is the delta that offsets within the underlying. Paradex's
    Minimum Delta Requirement (a = 2%, h = 1% for BTC and ETH). Rewritten as
    ``(a - h/2)|N| + (h/2) G`` it is convex exactly when ``a >= h/2``, which parsing
    requires. ``gross: r`` is ``a = r, h = 2r``: ``r G_u S_u``, a rate on gross size
    (Deribit's roll shock on futures and perpetuals).
    """

    def __init__(self, name: str, unhedged: float, hedged: float, delta: FloatArray, prices: FloatArray,
                 underlyings: tuple[str, ...], gross: FloatArray | None = None) -> None:
        """``gross``: ``|delta|`` unless given (``on_columns`` gives the rest of the book's gross
        delta as a column of its own, which ``|delta|`` of the folded column would not be)."""
        self.name, self.unhedged, self.hedged = name, unhedged, hedged
        self.delta, self.prices, self.underlyings = delta, prices, underlyings
        self.gross = np.abs(delta) if gross is None else gross
        self.net_rate, self.gross_rate = unhedged - 0.5 * hedged, 0.5 * hedged

    def per_underlying(self, q: FloatArray) -> FloatArray:
        net = np.abs(self.delta @ q)
        gross = self.gross @ np.abs(q)
        return self.prices * (self.net_rate * net + self.gross_rate * gross)

    def gradient(self, q: FloatArray) -> FloatArray:
        net = self.net_rate * (self.prices * np.sign(self.delta @ q)) @ self.delta
        return net + self.gross_rate * (self.prices @ self.gross) * np.sign(q)

    def arrays(self) -> dict[str, FloatArray]:
        # The price folded into the deltas: a parameter times a parameter is not DPP.
        return {"net": self.net_rate * self.prices[:, None] * self.delta,
                "gross": self.gross_rate * (self.prices @ self.gross)}

    def on_columns(self, cols: np.ndarray, q0: FloatArray) -> Measure:
        from marginopt.models.margin.columns import reduce_rows

        # Net: a linear map, folded. Gross: a sum over positions, the rest's gross_uj |q0_j| as one
        # column (its position is 1, so |1| times it): reduce_rows of gross at |q0|, which also holds
        # for a measure already reduced (its gross is not |delta| there).
        gross = reduce_rows(self.gross, cols, np.abs(q0))
        return DeltaRequirement(self.name, self.unhedged, self.hedged, reduce_rows(self.delta, cols, q0), self.prices,
                                self.underlyings, gross)

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        terms = []
        if self.net_rate > 0.0:
            terms.append(cp.sum(cp.abs(self.param("net") @ q)))
        if self.gross_rate > 0.0:
            terms.append(cp.norm1(cp.multiply(self.param("gross", nonneg=True), q)))
        if not terms:
            return cp.Constant(0.0), []
        return terms[0] if len(terms) == 1 else terms[0] + terms[1], []


def _masked_delta(inp: PricingInputs, applies_to: tuple[str, ...] | None) -> FloatArray:
    """(U, J) deltas, zero for the instruments whose kind is not in ``applies_to``."""
    delta = inp.delta_matrix()
    if applies_to is not None:
        if len(inp.kinds) != len(inp.ids):  # an invariant: pricing.inputs gives every contract its kind
            raise RuntimeError("pricing inputs without instrument kinds: applies_to cannot be honoured")
        delta = delta * np.array([k in applies_to for k in inp.kinds], dtype=float)
    return delta


@dataclass(frozen=True)
class DeltaRequirementSpec:
    unhedged: float
    hedged: float
    applies_to: tuple[str, ...] | None = None
    name: str | None = None
    kind: str = "delta_requirement"

    def bind(self, ctx: BindContext) -> Measure:
        inp = ctx.inputs
        return DeltaRequirement(self.name or self.kind, self.unhedged, self.hedged, _masked_delta(inp, self.applies_to),
                                underlying_prices(inp), inp.underlyings)


def _applies_to(parts: dict[str, Node]) -> tuple[str, ...] | None:
    if "applies_to" not in parts:
        return None
    kinds = tuple(k.string(choices=[c.value for c in InstrumentKind]) for k in parts["applies_to"].sequence())
    if not kinds:
        raise parts["applies_to"].error("at least one instrument kind", [])
    return kinds


@register("delta_requirement")
def parse_delta_requirement(node: Node) -> DeltaRequirementSpec:
    parts = measure_keys(node, "unhedged", "hedged", "gross", "applies_to")
    if "gross" in parts:
        if "unhedged" in parts or "hedged" in parts:
            raise parts["gross"].error("either gross alone or unhedged and hedged", node.value)
        rate = parts["gross"].number(lower=0.0)
        return DeltaRequirementSpec(rate, 2.0 * rate, _applies_to(parts), optional_name(parts))
    for key in ("unhedged", "hedged"):
        if key not in parts:
            raise node.error(f"unhedged and hedged factors (or gross alone); {key} is missing", node.value)
    unhedged, hedged = parts["unhedged"].number(lower=0.0), parts["hedged"].number(lower=0.0)
    if unhedged < 0.5 * hedged:
        raise parts["unhedged"].error(
            f"unhedged >= hedged / 2 = {0.5 * hedged:g}: the requirement is (unhedged - hedged/2) |net| + hedged/2 gross, "
            "convex in positions only then", unhedged)
    return DeltaRequirementSpec(unhedged, hedged, _applies_to(parts), optional_name(parts))


@dataclass(frozen=True)
class BasisShiftSpec:
    r"""``annual_move * sum_u S_u |sum_j delta_uj T_j q_j|``: the loss when every forward of an
    underlying moves by ``annual_move * T`` (a parallel shift of the annualised basis, T in years).

    First order in the shift: ``F = S exp(b T)`` gives ``dV/db = delta S T``. Spot and
    perpetuals (T = 0) carry no basis here. A net-delta charge on time-weighted deltas.
    """

    annual_move: float
    name: str | None = None
    kind: str = "basis_shift"

    def bind(self, ctx: BindContext) -> Measure:
        inp = ctx.inputs
        weighted = inp.delta_matrix() * (inp.days / 365.0)
        return NetDeltaCharge(self.name or self.kind, self.annual_move, weighted, underlying_prices(inp), inp.underlyings)


@register("basis_shift")
def parse_basis_shift(node: Node) -> BasisShiftSpec:
    parts = measure_keys(node, "annual_move", required=("annual_move",))
    return BasisShiftSpec(parts["annual_move"].number(lower=0.0), optional_name(parts))
