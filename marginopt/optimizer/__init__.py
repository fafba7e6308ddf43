"""The problem builder, objectives, constraints, results, verification and attribution."""

from marginopt.optimizer.api import optimize, run
from marginopt.optimizer.attribution import (
    Leg,
    LegsWhatIf,
    VenueChange,
    WhatIf,
    attribution,
    euler_allocation,
    listed_at,
    route,
    route_legs,
    what_if,
    what_if_legs,
)
from marginopt.optimizer.builder import MarginProblem, Mode
from marginopt.optimizer.result import OptimizationResult
from marginopt.optimizer.verify import Plan, Verification, verify

__all__ = [
    "Leg",
    "LegsWhatIf",
    "MarginProblem",
    "Mode",
    "OptimizationResult",
    "Plan",
    "VenueChange",
    "Verification",
    "WhatIf",
    "attribution",
    "euler_allocation",
    "listed_at",
    "optimize",
    "route",
    "route_legs",
    "run",
    "verify",
    "what_if",
    "what_if_legs",
]
