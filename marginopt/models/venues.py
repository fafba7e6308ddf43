"""Venues: their margin measures, eligible collateral, concentration limits and posted collateral.

A venue may start from a dated preset (``marginopt.presets``): ``{preset: <id>, ...}``, each
venue key given beside ``preset`` replacing the preset's.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from marginopt.errors import CaseError, NotFoundError
from marginopt.models.collateral import HaircutSchedule, parse_schedule
from marginopt.models.margin import MeasureSpec, parse_measure
from marginopt.models.market import MarketData
from marginopt.models.reader import Node
from marginopt.presets import Param, Preset, get_preset, known_ids


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
    preset: str | None = None  # id of the venue preset it was built from
    # Instruments the venue lists beyond those held or offered as hedges there (``lists:``); what-if
    # routing sends a trade only to a venue that lists it (``optimizer.attribution.listed_at``).
    lists: frozenset[str] = frozenset()
    # Execution terms (optional): a collateral move here (the change of one asset's quantity posted)
    # is 0 or worth at least ``minimum_transfer`` (base currency, gross value); at most ``max_moves`` moves.
    minimum_transfer: float = 0.0
    max_moves: int | None = None
    # Whether the mark value of long options counts in the venue's equity (short options always count,
    # as a liability): ``credit_long_options: false`` for a venue that lends nothing against them.
    credit_long_options: bool = True
    # Headroom every plan leaves over the initial margin (``buffer: {fraction: 0.2}`` of IM and/or
    # ``{amount: 50000}``, base currency): collateral covers (1 + fraction) IM + amount.
    buffer_fraction: float = 0.0
    buffer_amount: float = 0.0

    def required(self, margin: Any) -> Any:
        """What a plan's collateral covers at this venue for ``margin`` (a number or a program's expression)."""
        if self.buffer_fraction == 0.0 and self.buffer_amount == 0.0:
            return margin
        return (1.0 + self.buffer_fraction) * margin + self.buffer_amount

    def measure_specs(self) -> list[MeasureSpec]:
        """The initial margin measure, and the maintenance one when it is a measure."""
        mm = self.maintenance_margin
        return [self.initial_margin] + ([mm] if mm is not None and not isinstance(mm, FractionOfInitial) else [])


_VENUE_KEYS = ("initial_margin", "maintenance_margin", "collateral", "concentration", "posted", "lists", "description",
               "minimum_transfer", "max_moves", "credit_long_options", "buffer")


def parse_venues(node: Node, market: MarketData, instruments: Container[str] | None = None) -> dict[str, Venue]:
    """The case's venues; with ``instruments``, each id under a venue's ``lists:`` must be one of them."""
    venues: dict[str, Venue] = {}
    items = node.mapping()
    if not items:
        raise node.error("at least one venue", node.value)
    for name, vnode in items.items():
        venues[name] = _parse_venue(name, vnode, market, instruments)
    return venues


def _parse_lists(name: str, node: Node, instruments: Container[str] | None) -> frozenset[str]:
    """``lists: [instrument ids]``: what the venue lists beyond its positions and hedge candidates."""
    if node.value is None:
        return frozenset()
    ids: list[str] = []
    for item in node.sequence():
        iid = item.string()
        if instruments is not None and iid not in instruments:
            raise item.error(f"an instrument id of the case's instruments table (one venue {name} lists)", iid)
        ids.append(iid)
    return frozenset(ids)


def _parse_venue(name: str, node: Node, market: MarketData, instruments: Container[str] | None = None) -> Venue:
    preset: Preset | None = None
    from_preset: set[str] = set()
    if isinstance(node.value, dict) and "preset" in node.value:
        preset, parts, from_preset = _with_preset(node)
    else:
        parts = node.mapping(allowed=(*_VENUE_KEYS, "preset"), required=("initial_margin",))
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
    unpriced: list[str] = []  # a preset's collateral assets the case has no price for: not eligible here
    if "collateral" in parts and parts["collateral"].value is not None:
        for asset, cnode in parts["collateral"].mapping().items():
            if "collateral" in from_preset and asset not in market.prices:
                unpriced.append(asset)
                continue
            _check_asset(cnode, asset, market)
            collateral[asset] = parse_schedule(cnode)
    concentration: dict[str, float] = {}
    if "concentration" in parts and parts["concentration"].value is not None:
        for asset, cnode in parts["concentration"].mapping().items():
            if "concentration" in from_preset and asset in unpriced:
                continue
            if asset not in collateral:
                raise cnode.error(f"an asset eligible at venue {name} (listed under its collateral)", asset)
            concentration[asset] = cnode.number(lower=0.0, upper=1.0, lower_open=True)
    posted: dict[str, float] = {}
    if "posted" in parts and parts["posted"].value is not None:
        for asset, pnode in parts["posted"].mapping().items():
            if asset in unpriced:
                assert preset is not None
                raise pnode.error(
                    f"an asset with a price in market.prices: preset {preset.id} lists {asset} as collateral, "
                    f"and the case does not price it", asset)
            if asset not in collateral:
                raise pnode.error(
                    f"an asset eligible at venue {name} (listed under its collateral: {', '.join(collateral) or 'none'})", asset
                )
            posted[asset] = pnode.number(lower=0.0)
    lists = _parse_lists(name, parts["lists"], instruments) if "lists" in parts else frozenset()
    minimum_transfer = parts["minimum_transfer"].number(lower=0.0) if "minimum_transfer" in parts else 0.0
    max_moves = int(parts["max_moves"].number(lower=0.0, integer=True)) if "max_moves" in parts else None
    credit_long = parts["credit_long_options"].boolean() if "credit_long_options" in parts else True
    fraction, amount = 0.0, 0.0
    if "buffer" in parts and parts["buffer"].value is not None:
        bparts = parts["buffer"].mapping(allowed=("fraction", "amount"))
        if not bparts:
            raise parts["buffer"].error("fraction (of initial margin) and/or amount (base currency)", parts["buffer"].value)
        fraction = bparts["fraction"].number(lower=0.0, upper=10.0) if "fraction" in bparts else 0.0
        amount = bparts["amount"].number(lower=0.0) if "amount" in bparts else 0.0
    return Venue(name, im, mm, MappingProxyType(collateral), MappingProxyType(concentration), MappingProxyType(posted),
                 preset.id if preset is not None else None, lists, minimum_transfer, max_moves, credit_long, fraction, amount)


def _with_preset(node: Node) -> tuple[Preset, dict[str, Node], set[str]]:
    """The venue's keys: the preset's, each replaced by the same key given beside ``preset``.

    The preset's own values are read from a node whose file is ``preset <id>``, so an
    error in them names the preset; the case's values keep their file and line.
    Returns the preset, the keys and which of them came from the preset.
    """
    given = node.mapping()
    pnode = given.pop("preset")
    pid = pnode.string()
    try:
        preset = get_preset(pid)
    except NotFoundError:
        raise pnode.error(
            f"a venue preset id (one of {', '.join(known_ids())}); each venue key given beside preset "
            "replaces the preset's", pid) from None
    allowed = (*_VENUE_KEYS, *preset.parameters)
    for key, child in given.items():
        if key not in allowed:
            raise CaseError(child.where, child.path, f"a venue key or a parameter of preset {preset.id} (one of {', '.join(allowed)})",
                            key)
    params = {k: given.pop(k) for k in list(given) if k in preset.parameters}
    used: set[str] = set()

    def fill(p: Param) -> Any:
        if p.name not in params:
            raise CaseError(node.where, f"{node.path}.{p.name}",
                            f"{preset.parameters[p.name]}: a parameter preset {preset.id} needs, given beside preset", "nothing")
        used.add(p.name)
        user = params[p.name]
        if p.scale is None:
            return user
        return Node(user.file, user.path, user.number(lower=0.0) * p.scale, user.line, user.files_refused)

    values = preset.mapping(fill, skip=given)
    for key, child in params.items():
        if key not in used:
            raise CaseError(child.where, child.path,
                            f"no {key} here: it fills preset {preset.id}'s values that this venue replaces", key)
    root = Node(Path(f"preset {preset.id}"), node.path, values, None, node.files_refused)
    parts = root.mapping(allowed=_VENUE_KEYS)
    from_preset = set(parts)
    parts.update(given)
    if "initial_margin" not in parts:
        raise CaseError(node.where, f"{node.path}.initial_margin",
                        f"this key beside preset {preset.id}, which sets no margin measure ({preset.title})", "nothing")
    return preset, parts, from_preset


def _check_asset(node: Node, asset: str, market: MarketData) -> None:
    if asset not in market.prices:
        raise node.error(f"an asset with a price in market.prices ({', '.join(sorted(market.prices))})", asset)
