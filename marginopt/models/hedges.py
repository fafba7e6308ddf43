"""Hedge candidates: instruments the optimizer may trade at a venue, with bounds and costs."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from marginopt.models.instruments import InstrumentSet, ensure_known
from marginopt.models.reader import Node, read_table


@dataclass(frozen=True)
class HedgeCandidate:
    """Trade ``h`` contracts with ``-max_sell <= h <= max_buy`` at cost ``cost_per_unit*|h| + impact*h^2``.

    Execution terms (optional): ``lot_size`` L, ``h = L n`` with n a whole number; ``min_trade`` m,
    ``h = 0`` or ``|h| >= m`` (m = 0: no minimum)."""

    venue: str
    instrument: str
    max_buy: float
    max_sell: float
    cost_per_unit: float
    impact: float = 0.0
    lot_size: float | None = None
    min_trade: float = 0.0

    @property
    def executable_terms(self) -> bool:
        """Whether the hedge carries a lot size or a minimum trade (an integer plan's terms)."""
        return self.lot_size is not None or self.min_trade > 0.0


def parse_hedges(node: Node | None, venues: Collection[str], instruments: InstrumentSet) -> tuple[HedgeCandidate, ...]:
    if node is None:
        return ()
    table = read_table(node, "hedges")
    table.check_columns(("venue", "instrument", "max_buy", "max_sell", "cost_per_unit"), ("impact", "lot_size", "min_trade"))
    if len(table) == 0:
        return ()
    venue = table.texts("venue", choices=sorted(venues))
    instrument = table.texts("instrument")
    ensure_known(table, "instrument", instrument, instruments)
    max_buy = table.numbers("max_buy", lower=0.0)
    max_sell = table.numbers("max_sell", lower=0.0)
    cost = table.numbers("cost_per_unit", lower=0.0)
    impact = table.numbers("impact", default=0.0, lower=0.0)
    lot = table.numbers("lot_size", default=math.nan, lower=0.0, lower_open=True)  # an empty cell: no lot size
    min_trade = table.numbers("min_trade", default=0.0, lower=0.0)
    seen: dict[tuple[str, str], int] = {}
    out = []
    for i in range(len(table)):
        key = (venue[i], instrument[i])
        if key in seen:
            raise table.error(i, "instrument", f"one row per venue and instrument (already in row {seen[key] + 1})", instrument[i])
        seen[key] = i  # type: ignore[index]
        if min_trade[i] > max(max_buy[i], max_sell[i]):
            raise table.error(i, "min_trade", f"a minimum trade no larger than the row's larger bound "
                              f"(max_buy {max_buy[i]:g}, max_sell {max_sell[i]:g}): no trade could meet it", min_trade[i])
        out.append(HedgeCandidate(venue[i], instrument[i], max_buy[i], max_sell[i], cost[i], impact[i],  # type: ignore[arg-type]
                                  None if math.isnan(lot[i]) else float(lot[i]), float(min_trade[i])))
    return tuple(out)
