"""Hedge candidates: instruments the optimizer may trade at a venue, with bounds and costs."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from marginopt.models.instruments import InstrumentSet, ensure_known
from marginopt.models.reader import Node, read_table


@dataclass(frozen=True)
class HedgeCandidate:
    """Trade ``h`` contracts with ``-max_sell <= h <= max_buy`` at cost ``cost_per_unit*|h| + impact*h^2``."""

    venue: str
    instrument: str
    max_buy: float
    max_sell: float
    cost_per_unit: float
    impact: float = 0.0


def parse_hedges(node: Node | None, venues: Collection[str], instruments: InstrumentSet) -> tuple[HedgeCandidate, ...]:
    if node is None:
        return ()
    table = read_table(node, "hedges")
    table.check_columns(("venue", "instrument", "max_buy", "max_sell", "cost_per_unit"), ("impact",))
    if len(table) == 0:
        return ()
    venue = table.texts("venue", choices=sorted(venues))
    instrument = table.texts("instrument")
    ensure_known(table, "instrument", instrument, instruments)
    max_buy = table.numbers("max_buy", lower=0.0)
    max_sell = table.numbers("max_sell", lower=0.0)
    cost = table.numbers("cost_per_unit", lower=0.0)
    impact = table.numbers("impact", default=0.0, lower=0.0)
    seen: dict[tuple[str, str], int] = {}
    out = []
    for i in range(len(table)):
        key = (venue[i], instrument[i])
        if key in seen:
            raise table.error(i, "instrument", f"one row per venue and instrument (already in row {seen[key] + 1})", instrument[i])
        seen[key] = i  # type: ignore[index]
        out.append(HedgeCandidate(venue[i], instrument[i], max_buy[i], max_sell[i], cost[i], impact[i]))  # type: ignore[arg-type]
    return tuple(out)
