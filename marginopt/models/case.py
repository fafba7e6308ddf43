"""The case: everything a margin or optimization run needs, loaded and validated."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from marginopt.models.enums import Objective
from marginopt.models.hedges import HedgeCandidate, parse_hedges
from marginopt.models.instruments import InstrumentSet, parse_instruments
from marginopt.models.limits import Limits, parse_limits
from marginopt.models.margin import scenario_specs
from marginopt.models.market import MarketData, parse_market
from marginopt.models.positions import Positions, parse_positions
from marginopt.models.pricing import check_option_prices
from marginopt.models.reader import Node, load_yaml
from marginopt.models.scenarios import ScenarioSpec
from marginopt.models.stress import Safety, StressSet, parse_safety, parse_stress
from marginopt.models.treasury import TreasuryAsset, parse_treasury
from marginopt.models.venues import Venue, parse_venues

FORMAT = "marginopt/1"
_KEYS = ("format", "base_currency", "valuation_date", "market", "instruments", "positions", "venues",
         "treasury", "hedges", "limits", "objective", "description", "execution", "stress", "safety")


@dataclass(frozen=True)
class Execution:
    """Whole-plan execution caps (``execution:``): collateral moves over all venues, non-zero hedge lines."""

    max_moves: int | None = None
    max_tickets: int | None = None


def parse_execution(node: Node | None) -> Execution:
    if node is None or node.value is None:
        return Execution()
    parts = node.mapping(allowed=("max_moves", "max_tickets"))
    counts = {k: int(parts[k].number(lower=0.0, integer=True)) for k in parts}
    return Execution(counts.get("max_moves"), counts.get("max_tickets"))


@dataclass(frozen=True)
class Case:
    path: Path
    base_currency: str
    valuation_date: dt.date
    market: MarketData
    instruments: InstrumentSet
    positions: Positions
    venues: Mapping[str, Venue]
    treasury: Mapping[str, TreasuryAsset]
    hedges: tuple[HedgeCandidate, ...]
    limits: Limits
    objective: Objective
    description: str = ""
    execution: Execution = Execution()
    stress: Mapping[str, StressSet] = field(default_factory=lambda: MappingProxyType({}))
    safety: Safety | None = None  # plans keep each venue's balance at a level under a stress set


def _check_scenario_sets(venues: Mapping[str, Venue], limits: Limits, market: MarketData) -> None:
    """Run each scenario set's load-time checks (those that need the market, not the venue's book)."""
    specs: list[ScenarioSpec] = [limits.max_loss.scenarios] if limits.max_loss is not None else []
    for venue in venues.values():
        for measure in venue.measure_specs():
            specs += scenario_specs(measure)
    for spec in specs:
        check = getattr(spec, "check", None)
        if check is not None:
            check(market)


def load_case(path: str | Path) -> Case:
    """Read and validate a case file (CASE_FORMAT.md, version 1).

    Raises ``CaseError`` naming the file, line or row, field and what was
    expected for anything it cannot accept; nothing is dropped or clamped.
    """
    path = Path(path)
    return _parse_case(load_yaml(path), path)


def load_case_data(data: Any, source: str | Path = "<data>", *, files_refused: str | None = None) -> Case:
    """Validate a case given as data: the YAML file's keys as a mapping (parsed JSON, say).

    ``source`` names the case in error messages; table paths are relative to its
    folder. With ``files_refused`` set, every value that would name a file (a
    table path, a matrix scenario set, a Derive snapshot) is a ``CaseError`` giving
    that reason: tables must then be inline lists of row mappings.
    """
    path = Path(source)
    return _parse_case(Node(path, "", data, None, files_refused), path)


def _parse_case(root: Node, path: Path) -> Case:
    """The one parser behind ``load_case`` and ``load_case_data``."""
    parts = root.mapping(allowed=_KEYS, required=("format", "base_currency", "valuation_date", "market", "instruments", "venues"))
    fmt = parts["format"].value
    if fmt != FORMAT:
        raise parts["format"].error(f"'{FORMAT}'", fmt)
    base = parts["base_currency"].string()
    valuation_date = parts["valuation_date"].date()
    market = parse_market(parts["market"], base)
    instruments = parse_instruments(parts["instruments"], market, valuation_date)
    check_option_prices(instruments, market, valuation_date)
    venues = parse_venues(parts["venues"], market, instruments)
    positions = parse_positions(parts.get("positions"), venues, instruments, market)
    treasury = parse_treasury(parts.get("treasury"), market)
    hedges = parse_hedges(parts.get("hedges"), venues, instruments)
    limits = parse_limits(parts.get("limits"), market, hedges)
    _check_scenario_sets(venues, limits, market)
    objective = Objective(parts["objective"].string(choices=[o.value for o in Objective])) if "objective" in parts else Objective.MIN_COST
    description = parts["description"].string() if "description" in parts else ""
    execution = parse_execution(parts.get("execution"))
    stress = parse_stress(parts.get("stress"), {inst.underlying for inst in instruments})
    safety = parse_safety(parts.get("safety"), stress, tuple(venues))
    return Case(
        path=path,
        base_currency=base,
        valuation_date=valuation_date,
        market=market,
        instruments=instruments,
        positions=positions,
        venues=MappingProxyType(venues),
        treasury=MappingProxyType(treasury),
        hedges=hedges,
        limits=limits,
        objective=objective,
        description=description,
        execution=execution,
        stress=MappingProxyType(stress),
        safety=safety,
    )
