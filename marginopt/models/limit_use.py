"""Each risk limit's use against its bound: net delta per underlying, the worst whole-book scenario loss,
linear limits on the hedges, and each concentration limit's share of a venue's credited collateral.

The margin report shows them for the book as it is, a plan for the book and collateral after it (with,
for a continuous plan, what one more unit of each bound is worth: ``worth``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from marginopt.models.book import VenueBook, whole_book_losses
from marginopt.models.case import Case
from marginopt.models.scenarios import ScenarioLosses

# A limit binds when its value is within this of a bound (absolute + relative to the bound).
BINDING_ABS, BINDING_REL = 1e-6, 1e-7


@dataclass(frozen=True)
class LimitUse:
    name: str
    value: float
    lower: float | None
    upper: float | None
    unit: str  # the unit of value and bounds: an underlying, the base currency, or "share"
    kind: str  # net_delta, max_loss, linear, concentration
    worth: float | None = None  # a plan's objective saving per unit of the binding bound relaxed (its dual)

    @property
    def binding(self) -> str | None:
        """``lower`` or ``upper`` when the value sits on that bound, else None."""
        for side, bound in (("upper", self.upper), ("lower", self.lower)):
            if bound is not None and abs(self.value - bound) <= BINDING_ABS + BINDING_REL * abs(bound):
                return side
        return None

    @property
    def violation(self) -> float:
        """How far outside its bounds the value is (<= 0 inside)."""
        over = self.value - self.upper if self.upper is not None else -np.inf
        under = self.lower - self.value if self.lower is not None else -np.inf
        return float(max(over, under))

    @property
    def use(self) -> float | None:
        """The share of the bound on the value's side used: value / upper above 0, value / lower below."""
        bound = self.upper if self.value >= 0.0 else self.lower
        return None if bound is None or bound == 0.0 or bound * self.value < 0.0 else self.value / bound

    def to_dict(self) -> dict[str, Any]:
        return {"limit": self.name, "value": self.value, "lower": self.lower, "upper": self.upper, "unit": self.unit,
                "use": self.use, "binding": self.binding, "worth": self.worth}


def limit_uses(case: Case, books: Sequence[VenueBook], positions: Mapping[str, np.ndarray],
               posted: Mapping[str, Mapping[str, float]], hedges: Mapping[str, float],
               max_loss: tuple[tuple[str, ...], ScenarioLosses | None] | None = None) -> list[LimitUse]:
    """Every limit of the case at ``positions`` (per venue, in each book's ``ids`` order), ``posted`` (units per
    venue and asset) and ``hedges`` (traded quantity per instrument id, summed over venues); ``max_loss``: the
    whole book's ids and its losses under the max_loss set where the caller has built them already."""
    limits, out = case.limits, []
    for u, (lo, hi) in limits.net_delta.items():
        total = 0.0
        for b in books:
            if u in b.inputs.underlyings:
                total += float(b.inputs.delta_matrix()[b.inputs.underlyings.index(u)] @ positions[b.venue.name])
        out.append(LimitUse(f"net delta {u}", total, lo, hi, u, "net_delta"))
    if limits.max_loss is not None:
        if max_loss is not None and max_loss[1] is not None:
            ids, losses = max_loss[0], max_loss[1]
        else:
            ids = tuple(i.id for i in case.instruments if any(i.id in b.ids for b in books))
            losses = whole_book_losses(case, limits.max_loss.scenarios, ids)
        at = {iid: k for k, iid in enumerate(ids)}
        q_all = np.zeros(len(ids))
        for b in books:
            np.add.at(q_all, [at[iid] for iid in b.ids], positions[b.venue.name])
        worst = losses.worst_loss(q_all)  # block by block: no vector over every scenario
        out.append(LimitUse("worst whole-book scenario loss", worst, None, limits.max_loss.limit, case.base_currency,
                            "max_loss"))
    for k, lin in enumerate(limits.linear):
        value = sum(c * hedges.get(iid, 0.0) for iid, c in lin.coefficients.items())
        out.append(LimitUse(f"linear limit {k + 1}", float(value), lin.lower, lin.upper, "hedge units", "linear"))
    for b in books:
        if not b.venue.concentration:
            continue
        lines = {c.asset: c for c in b.collateral(dict(posted.get(b.venue.name, b.venue.posted)))}
        total = sum(c.credited_value for c in lines.values())
        for a, share in b.venue.concentration.items():
            credited = lines[a].credited_value if a in lines else 0.0
            out.append(LimitUse(f"{b.venue.name}: concentration of {a}", credited / total if total > 0.0 else 0.0,
                                None, share, "share of credited collateral", "concentration"))
    return out


def with_worth(uses: list[LimitUse], duals: Mapping[str, float]) -> list[LimitUse]:
    """The uses with a plan's duals (objective saving per unit of each bound relaxed), by limit name."""
    return [replace(u, worth=duals[u.name]) if u.name in duals else u for u in uses]
