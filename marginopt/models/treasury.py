"""Treasury inventory: collateral held but not posted, with funding and transfer costs."""

from __future__ import annotations

from dataclasses import dataclass

from marginopt.models.market import MarketData
from marginopt.models.reader import Node


@dataclass(frozen=True)
class TreasuryAsset:
    """``cost``: yearly rate on gross value posted; ``transfer_cost``: one-off rate on gross value moved;
    ``rounding``: a move of this asset at a venue is a whole multiple of this many units (None: any)."""

    asset: str
    quantity: float
    cost: float = 0.0
    transfer_cost: float = 0.0
    rounding: float | None = None


def parse_treasury(node: Node | None, market: MarketData) -> dict[str, TreasuryAsset]:
    if node is None or node.value is None:
        return {}
    out: dict[str, TreasuryAsset] = {}
    for asset, anode in node.mapping().items():
        if asset not in market.prices:
            raise anode.error(f"an asset with a price in market.prices ({', '.join(sorted(market.prices))})", asset)
        parts = anode.mapping(allowed=("quantity", "cost", "transfer_cost", "rounding"), required=("quantity",))
        out[asset] = TreasuryAsset(
            asset,
            parts["quantity"].number(lower=0.0),
            parts["cost"].number(lower=-1.0, upper=1.0) if "cost" in parts else 0.0,
            parts["transfer_cost"].number(lower=0.0, upper=1.0) if "transfer_cost" in parts else 0.0,
            parts["rounding"].number(lower=0.0, lower_open=True) if "rounding" in parts else None,
        )
    return out
