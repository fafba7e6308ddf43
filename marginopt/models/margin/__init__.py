"""Margin measures: numpy ``evaluate`` and cvxpy forms, one module per family.

Importing this package registers every measure kind.
"""

from marginopt.models.margin import composite, notional, parametric, scenario_max, shortfall  # noqa: F401  (registration)
from marginopt.models.margin.base import BindContext, Measure, MeasureSpec, measure_kinds, parse_measure, scenario_specs
from marginopt.models.margin.composite import MaxMeasure, SumMeasure, convex_form
from marginopt.models.margin.notional import FixedRate, NetDeltaCharge, ShortOptionMinimum
from marginopt.models.margin.parametric import ParametricVaR
from marginopt.models.margin.scenario_max import ScenarioMax
from marginopt.models.margin.shortfall import ExpectedShortfall, HistoricalVaR

from marginopt.models.derive import measure as _derive  # noqa: E402, F401  (registers derive_pmrm2; imports margin.base)

__all__ = [
    "BindContext",
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
    "convex_form",
    "SumMeasure",
    "measure_kinds",
    "parse_measure",
    "scenario_specs",
]
