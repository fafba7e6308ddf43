"""Margin measures: numpy ``evaluate`` and cvxpy forms, one module per family.

Importing this package registers every measure kind of its own; a kind that reads an
outside format's files (``marginopt.formats``) is registered by its module when a case
first names it.
"""

from marginopt.models.margin import (  # noqa: F401  (registration)
    composite,
    delta,
    notional,
    parametric,
    scenario_max,
    shortfall,
    spread_credit,
)
from marginopt.models.margin.base import BindContext, Measure, MeasureSpec, measure_kinds, parse_measure, scenario_specs
from marginopt.models.margin.composite import MaxMeasure, SumMeasure, convex_form
from marginopt.models.margin.delta import DeltaRequirement
from marginopt.models.margin.notional import FixedRate, NetDeltaCharge, ShortOptionMinimum
from marginopt.models.margin.parametric import ParametricVaR
from marginopt.models.margin.scenario_max import ScenarioMax
from marginopt.models.margin.shortfall import ExpectedShortfall, HistoricalVaR
from marginopt.models.margin.spread_credit import SpreadCredit, ZeroMeasure

__all__ = [
    "BindContext",
    "DeltaRequirement",
    "ExpectedShortfall",
    "FixedRate",
    "HistoricalVaR",
    "MaxMeasure",
    "Measure",
    "MeasureSpec",
    "NetDeltaCharge",
    "ParametricVaR",
    "ScenarioMax",
    "ShortOptionMinimum",
    "SpreadCredit",
    "convex_form",
    "SumMeasure",
    "measure_kinds",
    "parse_measure",
    "scenario_specs",
    "ZeroMeasure",
]
