"""Positions: signed contracts per venue, instrument and account."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from marginopt.models.instruments import InstrumentSet, ensure_known
from marginopt.models.reader import Node, read_table

DEFAULT_ACCOUNT = "main"


@dataclass(frozen=True)
class Positions:
    """Rows of (venue, account, instrument, quantity); may be empty."""

    venue: tuple[str, ...]
    account: tuple[str, ...]
    instrument: tuple[str, ...]
    quantity: np.ndarray

    def __len__(self) -> int:
        return len(self.venue)

    def at_venue(self, venue: str) -> dict[str, float]:
        """Net quantity per instrument at a venue, all accounts together."""
        if not self.venue:
            return {}
        at = np.asarray(self.venue, dtype=object) == venue
        ids, inverse = np.unique(np.asarray(self.instrument, dtype=object)[at], return_inverse=True)
        sums = np.bincount(inverse, weights=self.quantity[at], minlength=len(ids))
        return dict(zip(ids.tolist(), sums.tolist(), strict=True))

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.account))


def parse_positions(node: Node | None, venues: Collection[str], instruments: InstrumentSet) -> Positions:
    if node is None:
        return Positions((), (), (), np.zeros(0))
    table = read_table(node, "positions")
    table.check_columns(("venue", "instrument", "quantity"), ("account",))
    if len(table) == 0:
        return Positions((), (), (), np.zeros(0))
    venue = table.texts("venue", choices=sorted(venues))
    instrument = table.texts("instrument")
    ensure_known(table, "instrument", instrument, instruments)
    quantity = table.numbers("quantity")
    account = [a or DEFAULT_ACCOUNT for a in table.texts("account", required=False)]
    quantity.setflags(write=False)
    return Positions(tuple(venue), tuple(account), tuple(instrument), quantity)  # type: ignore[arg-type]
