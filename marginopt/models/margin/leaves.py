"""The expected-shortfall and scenario-maximum terms a margin is made of.

Scenario generation restricts these terms to working sets wherever they sit in a
composite; the large-scenario solver takes a margin only when it is nothing but a
sum of them.
"""

from __future__ import annotations

from marginopt.models.margin.base import Measure
from marginopt.models.margin.composite import Composite, SumMeasure
from marginopt.models.margin.scenario_max import ScenarioMax
from marginopt.models.margin.shortfall import ExpectedShortfall

Leaf = ExpectedShortfall | ScenarioMax


def scenario_leaves(measure: Measure) -> list[Leaf]:
    """Every ES and scenario-maximum term of ``measure``, in any composite."""
    if isinstance(measure, (ExpectedShortfall, ScenarioMax)):
        return [measure]
    if isinstance(measure, Composite):
        return [leaf for t in measure.terms for leaf in scenario_leaves(t)]
    return []


def sum_of_leaves(measure: Measure) -> list[Leaf] | None:
    """The ES and scenario-maximum terms ``measure`` sums, or None if it is anything else."""
    if isinstance(measure, (ExpectedShortfall, ScenarioMax)):
        return [measure]
    if isinstance(measure, SumMeasure):
        out: list[Leaf] = []
        for t in measure.terms:
            sub = sum_of_leaves(t)
            if sub is None:
                return None
            out += sub
        return out
    return None


def largest_scenario_set(measures: list[Measure]) -> int:
    """Scenarios in the largest ES or scenario-maximum term of any of ``measures``."""
    return max((leaf.losses.shape[0] for m in measures for leaf in scenario_leaves(m)), default=0)
