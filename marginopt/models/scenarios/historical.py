"""Historical scenarios: overlapping horizon returns from the case's price history."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from marginopt.errors import CaseError, Location
from marginopt.models.market import MarketData
from marginopt.models.reader import Node
from marginopt.models.scenarios.base import Moves, ScenarioContext, ScenarioLosses, losses_from_moves, register


@dataclass(frozen=True)
class HistoricalSpec:
    """The last ``window`` overlapping ``horizon_days`` returns, all underlyings jointly, equal weights.

    Scenario ``t`` moves every underlying by ``P[t + h] / P[t] - 1``; vols do not
    move (the history holds prices only). Labels are the end date of each window.
    """

    window: int
    horizon_days: int = 1
    where: Location = field(default=Location(), compare=False)
    kind: str = "historical"

    def check(self, market: MarketData) -> None:
        """Load-time check: the case has a price history."""
        if market.history is None:
            raise CaseError(self.where, "market.history", "a price history for a historical scenario set", None)

    def build(self, ctx: ScenarioContext) -> ScenarioLosses:
        self.check(ctx.market)
        hist = ctx.market.history
        assert hist is not None
        need = self.window + self.horizon_days
        if len(hist.dates) < need:
            raise CaseError(
                Location(hist.file), "date",
                f"at least {need} rows of prices (window {self.window} + horizon {self.horizon_days})", len(hist.dates),
            )
        cols = []
        for u in ctx.inputs.underlyings:
            if u not in hist.closes:
                raise CaseError(Location(hist.file, 1, "row"), u, f"a price column for underlying {u}", "no such column")
            cols.append(hist.returns(u, self.horizon_days)[-self.window:])
        growth = 1.0 + np.column_stack(cols) if cols else np.ones((self.window, 0))
        ends = np.array(hist.dates[-self.window:], dtype="datetime64[D]").astype(str)
        labels = np.char.add(ends, f" ({self.horizon_days}d)")
        moves = Moves(growth, np.zeros_like(growth), labels, np.ones(self.window))
        return losses_from_moves(ctx, moves, source=f"historical: {self.window} x {self.horizon_days}-day returns")


@register("historical")
def parse_historical(node: Node) -> HistoricalSpec:
    parts = node.mapping(allowed=("kind", "window", "horizon_days"), required=("window",))
    return HistoricalSpec(
        window=int(parts["window"].number(lower=1, integer=True)),
        horizon_days=int(parts["horizon_days"].number(lower=1, integer=True)) if "horizon_days" in parts else 1,
        where=node.where,
    )
