"""The problem builder, objectives, constraints, results, verification and attribution."""

from marginopt.optimizer.api import optimize, run
from marginopt.optimizer.attribution import WhatIf, attribution, euler_allocation, route, what_if
from marginopt.optimizer.builder import MarginProblem, Mode
from marginopt.optimizer.result import OptimizationResult
from marginopt.optimizer.verify import Plan, Verification, verify

__all__ = [
    "MarginProblem",
    "Mode",
    "OptimizationResult",
    "Plan",
    "Verification",
    "WhatIf",
    "attribution",
    "euler_allocation",
    "optimize",
    "route",
    "run",
    "verify",
    "what_if",
]
