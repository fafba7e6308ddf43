"""Collateral haircut schedules (flat or tiered) and concentration limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from marginopt.errors import ArgumentError
from marginopt.models.reader import Node


@dataclass(frozen=True)
class HaircutSchedule:
    """Value after haircut of a gross base-currency amount of one asset.

    Flat: ``value = gross * (1 - haircut)``. Tiered: ``tiers = ((b_1, r_1), ...,
    (b_n, r_n))`` with ascending bounds; rate ``r_k`` applies to the slice of gross
    value between ``b_{k-1}`` and ``b_k`` (``b_0 = 0``) and value above ``b_n``
    counts zero. Rates never increase, so the value is a concave piecewise-linear
    function of gross value, which the optimizer relies on.
    """

    haircut: float | None = None
    tiers: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        if (self.haircut is None) == (self.tiers is None):
            raise ArgumentError(f"HaircutSchedule(haircut={self.haircut!r}, tiers={self.tiers!r}): expected either "
                                "haircut (a flat schedule) or tiers (a tiered one), not both or neither")

    def value(self, gross: float) -> float:
        # Plain Python: called once per posted asset, where numpy's per-call cost dominates.
        if self.haircut is not None:
            return gross * (1.0 - self.haircut)
        assert self.tiers is not None
        total, lower = 0.0, 0.0
        for bound, rate in self.tiers:
            if gross <= lower:
                break
            total += rate * (min(gross, bound) - lower)
            lower = bound
        return total

    def values(self, gross: np.ndarray) -> np.ndarray:
        if self.haircut is not None:
            return gross * (1.0 - self.haircut)
        assert self.tiers is not None
        bounds = np.array([b for b, _ in self.tiers])
        rates = np.array([r for _, r in self.tiers])
        lower = np.concatenate(([0.0], bounds[:-1]))
        slices = np.clip(gross[..., None] - lower, 0.0, bounds - lower)
        return slices @ rates

    @property
    def marginal_rate_at_zero(self) -> float:
        return 1.0 - self.haircut if self.haircut is not None else self.tiers[0][1]  # type: ignore[index]


@lru_cache(maxsize=4096)
def pieces(schedule: HaircutSchedule) -> tuple[np.ndarray, np.ndarray]:
    """(intercepts, rates) with ``value(g) = min_k intercept_k + rate_k g`` for ``g >= 0``: the
    schedule as the minimum of lines, which an LP holds as its hypograph (the schedule is concave)."""
    if schedule.haircut is not None:
        return np.zeros(1), np.array([1.0 - schedule.haircut])
    assert schedule.tiers is not None
    bounds = np.array([b for b, _ in schedule.tiers])
    rates = np.array([r for _, r in schedule.tiers])
    lower = np.concatenate(([0.0], bounds[:-1]))
    value_at_lower = np.concatenate(([0.0], np.cumsum(rates * (bounds - lower))[:-1]))
    cap = float(np.sum(rates * (bounds - lower)))  # value above the last bound counts zero
    return np.append(value_at_lower - rates * lower, cap), np.append(rates, 0.0)


def parse_schedule(node: Node) -> HaircutSchedule:
    parts = node.mapping(allowed=("haircut", "tiers"))
    if ("haircut" in parts) == ("tiers" in parts):
        raise node.error("exactly one of haircut or tiers", node.value)
    if "haircut" in parts:
        return HaircutSchedule(haircut=parts["haircut"].number(lower=0.0, upper=1.0, upper_open=True))
    tiers_node = parts["tiers"]
    rows = tiers_node.sequence()
    if not rows:
        raise tiers_node.error("at least one tier [bound, rate]", tiers_node.value)
    tiers: list[tuple[float, float]] = []
    for row in rows:
        pair = row.sequence()
        if len(pair) != 2:
            raise row.error("a tier as [upper bound of gross value, rate]", row.value)
        bound = pair[0].number(lower=0.0, lower_open=True)
        rate = pair[1].number(lower=0.0, upper=1.0, lower_open=True)
        if tiers and bound <= tiers[-1][0]:
            raise pair[0].error(f"tier bounds strictly ascending (previous bound {tiers[-1][0]:g})", bound)
        if tiers and rate > tiers[-1][1]:
            raise pair[1].error(f"tier rates that do not increase (previous rate {tiers[-1][1]:g})", rate)
        tiers.append((bound, rate))
    return HaircutSchedule(tiers=tuple(tiers))


@dataclass(frozen=True)
class CollateralLine:
    """One posted asset at a venue, valued step by step."""

    asset: str
    quantity: float
    gross_value: float
    value_after_haircut: float
    credited_value: float  # after concentration limits


def credited_values(values: Mapping[str, float], shares: Mapping[str, float]) -> dict[str, float]:
    """Collateral value credited per asset under concentration limits.

    Finds the largest total ``T`` of credited values ``c_a`` with
    ``0 <= c_a <= v_a`` and ``c_a <= share_a * T`` (the limit counts the asset
    itself in the total). ``T`` is the largest fixed point of the concave map
    ``f(T) = sum_a min(v_a, share_a * T)``; then ``c_a = min(v_a, share_a * T)``.
    """
    assets = list(values)
    v = np.array([values[a] for a in assets], dtype=float)
    s = np.array([shares.get(a, 1.0) for a in assets], dtype=float)
    if not assets or not (s < 1.0).any():
        return dict(values)
    total = _largest_fixed_point(v, s)
    c = np.minimum(v, s * total)
    return {a: float(x) for a, x in zip(assets, c)}


def _largest_fixed_point(v: np.ndarray, s: np.ndarray) -> float:
    # f is concave, piecewise linear with kinks at v/s, f(0) = 0: {T: f(T) >= T} = [0, T*].
    kinks = np.unique(np.concatenate(([0.0], v / s)))
    f = np.minimum(v[None, :], s[None, :] * kinks[:, None]).sum(axis=1)
    ok = np.flatnonzero(f >= kinks * (1.0 - 1e-15))
    k = int(ok[-1])
    if k == len(kinks) - 1:
        return float(f[k])  # past the last kink f is flat at sum(v), and sum(v) >= that kink
    # On (kinks[k], kinks[k+1]) f(T) = A + B T; solve A + B T = T.
    t_mid = 0.5 * (kinks[k] + kinks[k + 1])
    below = s * t_mid < v
    a = v[~below].sum()
    b = s[below].sum()
    if b >= 1.0:
        return float(kinks[k + 1])
    return float(min(max(a / (1.0 - b), kinks[k]), kinks[k + 1]))
