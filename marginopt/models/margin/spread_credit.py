"""SPAN's inter-commodity spread credit: a negative term, subtracted from the scan risk."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marginopt.errors import NonConvexMeasureError
from marginopt.models.margin.base import BindContext, CvxForm, Measure, measure_keys, optional_name, register
from marginopt.models.reader import Node
from marginopt.models.scenarios import GridSpec, ScenarioLosses, ScenarioSpec, parse_scenario_set
from marginopt.typing import FloatArray

if TYPE_CHECKING:  # imported where a cvxpy form is built, so margin alone never loads cvxpy
    import cvxpy as cp

# Spreads are whole numbers: floor(|delta| / ratio) with this slack, so a delta that is a whole
# number of ratios up to rounding (2 * 5000 * F / F) forms them all.
_WHOLE = 1e-9


@dataclass(frozen=True)
class SpreadLeg:
    underlying: str
    ratio: float  # delta per spread, in units of the underlying (as instrument deltas are)
    side: str  # "A" or "B": A legs on one side, B legs on the other


@dataclass(frozen=True)
class InterSpread:
    rate: float
    legs: tuple[SpreadLeg, ...]


class ZeroMeasure(Measure):
    """Nothing: the convex bound of a credit (no credit is never below it)."""

    def __init__(self, name: str, n: int) -> None:
        self.name, self.n = name, n

    def evaluate(self, q: FloatArray) -> float:
        return 0.0

    def gradient(self, q: FloatArray) -> FloatArray:
        return np.zeros(self.n)

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        return cp.Constant(0.0), []

    def on_columns(self, cols: np.ndarray, q0: FloatArray) -> Measure:
        return ZeroMeasure(self.name, len(cols) + 1)


class SpreadCredit(Measure):
    r"""Minus SPAN's delta-based inter-commodity spread credit (the WPR method).

    Per combined commodity ``u`` (an underlying; its scan risk ``R_u`` is the weighted
    maximum loss of its scenario group, net delta ``N_u``) the weighted futures price
    risk is ``W_u = min(R_u / |N_u|, cap_u)``, ``cap_u`` the price scan range per unit
    of delta (``S_u`` times the underlying's range times the largest standard price move:
    CME's SCANRANGE_CAP). Spreads are formed in the order given: while the A legs' deltas
    have one sign and the B legs' the other, ``n = min_legs floor(|N_leg| / ratio_leg)``,
    each leg earns ``n ratio W rate`` and gives up ``n ratio`` of its delta. The value is
    minus the total credit.

    Whole spreads make the credit piecewise constant in positions, so the measure is not
    convex (``convex = False``): it is evaluated exactly, and the optimizer works against
    ``convex_bound()``, no credit, which is never below it.
    """

    convex = False
    bound_note = "spread credit: not convex (spreads are whole); the optimizer counts no credit (an upper bound)"

    def __init__(self, name: str, losses: ScenarioLosses, delta: FloatArray, caps: FloatArray,
                 legs_of: tuple[str, ...], spreads: tuple[InterSpread, ...]) -> None:
        # delta: (K, J) deltas of the K leg underlyings; caps (K,); rows of ``losses`` per underlying by group name.
        self.name, self.losses, self.delta, self.caps, self.spreads = name, losses, delta, caps, spreads
        self.index = {u: k for k, u in enumerate(legs_of)}
        groups = dict(zip(losses.group_names, losses.groups()))
        self.rows = [groups.get(u) for u in legs_of]

    def scan(self, q: FloatArray) -> FloatArray:
        weighted = self.losses.weights * self.losses.losses(q)
        return np.array([0.0 if g is None else max(0.0, float(weighted[g].max())) for g in self.rows])

    def credits(self, q: FloatArray) -> FloatArray:
        """The credit each leg underlying earns, over every spread."""
        net = self.delta @ q
        scan = self.scan(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            wfpr = np.where(net != 0.0, np.minimum(scan / np.abs(net), self.caps), 0.0)
        left = net.copy()
        out = np.zeros(len(net))
        for sp in self.spreads:
            ks = [self.index[leg.underlying] for leg in sp.legs]
            sign_a = next(np.sign(left[k]) for k, leg in zip(ks, sp.legs) if leg.side == "A")
            wanted = [sign_a if leg.side == "A" else -sign_a for leg in sp.legs]
            if sign_a == 0.0 or any(np.sign(left[k]) != s for k, s in zip(ks, wanted)):
                continue
            n = min(math.floor(abs(left[k]) / leg.ratio + _WHOLE) for k, leg in zip(ks, sp.legs))
            if n <= 0:
                continue
            for k, leg, s in zip(ks, sp.legs, wanted):
                out[k] += n * leg.ratio * wfpr[k] * sp.rate
                left[k] -= s * n * leg.ratio
        return out

    def evaluate(self, q: FloatArray) -> float:
        return 0.0 - float(self.credits(q).sum())  # 0.0 - : no credit is 0, not -0

    def gradient(self, q: FloatArray) -> FloatArray:
        """Each underlying's credit split over its positions by their share of its net delta, so
        ``q * gradient(q)`` sums to the value (the credit is not differentiable: spreads are whole)."""
        net = self.delta @ q
        share = np.divide(self.credits(q), net, out=np.zeros_like(net), where=net != 0.0)
        return -(share @ self.delta)

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        raise NonConvexMeasureError(
            f"{self.name}: a spread credit counts whole spreads and is not convex in positions; "
            "the optimizer uses its convex bound (no credit)"
        )

    def convex_bound(self) -> Measure:
        return ZeroMeasure(f"{self.name} (bound: no credit)", self.delta.shape[1])


@dataclass(frozen=True)
class SpreadCreditSpec:
    scenarios: ScenarioSpec
    spreads: tuple[InterSpread, ...]
    name: str | None = None
    kind: str = "spread_credit"

    def bind(self, ctx: BindContext) -> Measure:
        inp = ctx.inputs
        assert isinstance(self.scenarios, GridSpec)
        legs = tuple(dict.fromkeys(leg.underlying for sp in self.spreads for leg in sp.legs))
        delta = np.zeros((len(legs), len(inp)))
        caps = np.zeros(len(legs))
        largest = max(abs(m) for m in self.scenarios.price_moves)
        ranges = dict(self.scenarios.scan_ranges or ())
        for k, u in enumerate(legs):
            if u in inp.underlyings:
                ui = inp.underlyings.index(u)
                delta[k] = inp.delta_matrix()[ui]
                spot = float(inp.spot[int(np.flatnonzero(inp.uidx == ui)[0])])
                caps[k] = spot * ranges.get(u, 1.0) * largest
        return SpreadCredit(self.name or self.kind, ctx.scenarios(self.scenarios), delta, caps, legs, self.spreads)


def _parse_spread(node: Node) -> InterSpread:
    parts = node.mapping(allowed=("rate", "legs"), required=("rate", "legs"))
    legs: list[SpreadLeg] = []
    for leg_node in parts["legs"].sequence():
        lp = leg_node.mapping(allowed=("underlying", "ratio", "side"), required=("underlying", "ratio", "side"))
        leg = SpreadLeg(lp["underlying"].string(), lp["ratio"].number(lower=0.0, lower_open=True), lp["side"].string(("A", "B")))
        if any(other.underlying == leg.underlying for other in legs):
            raise lp["underlying"].error("each underlying once in a spread", leg.underlying)
        legs.append(leg)
    if not any(leg.side == "A" for leg in legs) or not any(leg.side == "B" for leg in legs):
        raise parts["legs"].error("legs on both sides: at least one A and one B", parts["legs"].value)
    return InterSpread(parts["rate"].number(lower=0.0, upper=1.0, lower_open=True), tuple(legs))


@register("spread_credit")
def parse_spread_credit(node: Node) -> SpreadCreditSpec:
    parts = measure_keys(node, "scenarios", "spreads", required=("scenarios", "spreads"))
    scenarios = parse_scenario_set(parts["scenarios"])
    if not isinstance(scenarios, GridSpec) or not scenarios.per_underlying:
        raise parts["scenarios"].error(
            "a grid scenario set with one group per underlying (the credit uses each combined commodity's scan risk)",
            parts["scenarios"].value)
    return SpreadCreditSpec(scenarios, tuple(_parse_spread(s) for s in parts["spreads"].sequence()), optional_name(parts))
