"""Risk limits on the whole book after hedges."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from marginopt.models.hedges import HedgeCandidate
from marginopt.models.market import MarketData
from marginopt.models.reader import Node
from marginopt.models.scenarios import ScenarioSpec, parse_scenario_set


@dataclass(frozen=True)
class MaxLoss:
    scenarios: ScenarioSpec
    limit: float


@dataclass(frozen=True)
class LinearLimit:
    """``lower <= sum_i coefficients[i] * h_i <= upper`` over hedge quantities (by instrument id)."""

    coefficients: Mapping[str, float]
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class Limits:
    net_delta: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    max_loss: MaxLoss | None = None
    linear: tuple[LinearLimit, ...] = ()


def parse_limits(node: Node | None, market: MarketData, hedges: tuple[HedgeCandidate, ...]) -> Limits:
    if node is None or node.value is None:
        return Limits()
    parts = node.mapping(allowed=("net_delta", "max_loss", "linear"))
    net_delta: dict[str, tuple[float, float]] = {}
    if "net_delta" in parts:
        for asset, bnode in parts["net_delta"].mapping().items():
            if asset not in market.prices:
                raise bnode.error("an underlying in market.prices", asset)
            pair = bnode.sequence()
            if len(pair) != 2:
                raise bnode.error("[lower, upper] in units of the underlying", bnode.value)
            lo, hi = pair[0].number(), pair[1].number()
            if lo > hi:
                raise bnode.error("lower <= upper", bnode.value)
            net_delta[asset] = (lo, hi)
    max_loss = None
    if "max_loss" in parts:
        mparts = parts["max_loss"].mapping(allowed=("scenarios", "limit"), required=("scenarios", "limit"))
        max_loss = MaxLoss(parse_scenario_set(mparts["scenarios"]), mparts["limit"].number(lower=0.0))
    linear = []
    hedge_ids = {h.instrument for h in hedges}
    if "linear" in parts:
        for lnode in parts["linear"].sequence():
            lp = lnode.mapping(allowed=("coefficients", "lower", "upper"), required=("coefficients",))
            coefs: dict[str, float] = {}
            for iid, cnode in lp["coefficients"].mapping().items():
                if iid not in hedge_ids:
                    raise cnode.error(f"the instrument id of a hedge candidate ({', '.join(sorted(hedge_ids)) or 'none'})", iid)
                coefs[iid] = cnode.number()
            lower = lp["lower"].number() if "lower" in lp else None
            upper = lp["upper"].number() if "upper" in lp else None
            if lower is None and upper is None:
                raise lnode.error("a lower or an upper bound", lnode.value)
            if lower is not None and upper is not None and lower > upper:
                raise lnode.error("lower <= upper", lnode.value)
            linear.append(LinearLimit(MappingProxyType(coefs), lower, upper))
    return Limits(MappingProxyType(net_delta), max_loss, tuple(linear))
