"""Venues: their margin measures, eligible collateral, concentration limits and posted collateral."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from marginopt.models.collateral import HaircutSchedule, parse_schedule
from marginopt.models.margin import MeasureSpec, parse_measure
from marginopt.models.market import MarketData
from marginopt.models.reader import Node


@dataclass(frozen=True)
class FractionOfInitial:
    """Maintenance margin as a fixed fraction of initial margin."""

    fraction: float


@dataclass(frozen=True)
class Venue:
    name: str
    initial_margin: MeasureSpec
    maintenance_margin: MeasureSpec | FractionOfInitial | None = None
    collateral: Mapping[str, HaircutSchedule] = field(default_factory=dict)
    concentration: Mapping[str, float] = field(default_factory=dict)
    posted: Mapping[str, float] = field(default_factory=dict)

    def measure_specs(self) -> list[MeasureSpec]:
        """The initial margin measure, and the maintenance one when it is a measure."""
        mm = self.maintenance_margin
        return [self.initial_margin] + ([mm] if mm is not None and not isinstance(mm, FractionOfInitial) else [])


_VENUE_KEYS = ("initial_margin", "maintenance_margin", "collateral", "concentration", "posted", "description")


def parse_venues(node: Node, market: MarketData) -> dict[str, Venue]:
    venues: dict[str, Venue] = {}
    items = node.mapping()
    if not items:
        raise node.error("at least one venue", node.value)
    for name, vnode in items.items():
        venues[name] = _parse_venue(name, vnode, market)
    return venues


def _parse_venue(name: str, node: Node, market: MarketData) -> Venue:
    parts = node.mapping(allowed=_VENUE_KEYS, required=("initial_margin",))
    im = parse_measure(parts["initial_margin"])
    mm: MeasureSpec | FractionOfInitial | None = None
    if "maintenance_margin" in parts:
        mnode = parts["maintenance_margin"]
        if isinstance(mnode.value, dict) and "fraction_of_initial" in mnode.value:
            frac = mnode.mapping(allowed=("fraction_of_initial",))["fraction_of_initial"]
            mm = FractionOfInitial(frac.number(lower=0.0, upper=1.0, lower_open=True))
        else:
            mm = parse_measure(mnode)
    collateral: dict[str, HaircutSchedule] = {}
    if "collateral" in parts and parts["collateral"].value is not None:
        for asset, cnode in parts["collateral"].mapping().items():
            _check_asset(cnode, asset, market)
            collateral[asset] = parse_schedule(cnode)
    concentration: dict[str, float] = {}
    if "concentration" in parts and parts["concentration"].value is not None:
        for asset, cnode in parts["concentration"].mapping().items():
            if asset not in collateral:
                raise cnode.error(f"an asset eligible at venue {name} (listed under its collateral)", asset)
            concentration[asset] = cnode.number(lower=0.0, upper=1.0, lower_open=True)
    posted: dict[str, float] = {}
    if "posted" in parts and parts["posted"].value is not None:
        for asset, pnode in parts["posted"].mapping().items():
            if asset not in collateral:
                raise pnode.error(
                    f"an asset eligible at venue {name} (listed under its collateral: {', '.join(collateral) or 'none'})", asset
                )
            posted[asset] = pnode.number(lower=0.0)
    return Venue(name, im, mm, MappingProxyType(collateral), MappingProxyType(concentration), MappingProxyType(posted))


def _check_asset(node: Node, asset: str, market: MarketData) -> None:
    if asset not in market.prices:
        raise node.error(f"an asset with a price in market.prices ({', '.join(sorted(market.prices))})", asset)
