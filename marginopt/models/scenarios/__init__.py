"""Scenario sets and the scenario-loss matrix they build."""

from marginopt.models.scenarios.base import (
    Moves,
    ScenarioContext,
    ScenarioLosses,
    ScenarioSpec,
    losses_from_moves,
    parse_scenario_set,
)
from marginopt.models.scenarios.grid import GridSpec
from marginopt.models.scenarios.historical import HistoricalSpec
from marginopt.models.scenarios.matrix import MatrixSpec
from marginopt.models.scenarios.monte_carlo import MonteCarloSpec

__all__ = [
    "GridSpec",
    "HistoricalSpec",
    "MatrixSpec",
    "MonteCarloSpec",
    "Moves",
    "ScenarioContext",
    "ScenarioLosses",
    "ScenarioSpec",
    "losses_from_moves",
    "parse_scenario_set",
]
