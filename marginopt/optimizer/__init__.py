"""The plan problem (description, objectives, backends), verification, results and attribution.

Names are imported on first use, so that reading the objectives (the CLI's choices) or a
status does not load pandas or a solver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marginopt.lazy import lazy

if TYPE_CHECKING:
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
    from marginopt.optimizer.choice import SolverChoice
    from marginopt.optimizer.description import Description, Mode, describe
    from marginopt.optimizer.objectives import OBJECTIVES
    from marginopt.optimizer.problem import MarginProblem
    from marginopt.optimizer.result import OptimizationResult
    from marginopt.optimizer.verify import Plan, Verification, verify

_MODULES: dict[str, str] = {
    "optimize": "api", "run": "api",
    "Leg": "attribution", "LegsWhatIf": "attribution", "VenueChange": "attribution", "WhatIf": "attribution",
    "attribution": "attribution", "euler_allocation": "attribution", "listed_at": "attribution", "route": "attribution",
    "route_legs": "attribution", "what_if": "attribution", "what_if_legs": "attribution",
    "SolverChoice": "choice", "Description": "description", "Mode": "description", "describe": "description",
    "OBJECTIVES": "objectives", "MarginProblem": "problem", "OptimizationResult": "result",
    "Plan": "verify", "Verification": "verify", "verify": "verify",
}


__getattr__, __dir__ = lazy(__name__, {name: f"marginopt.optimizer.{module}" for name, module in _MODULES.items()})


__all__ = [
    "Description",
    "Leg",
    "LegsWhatIf",
    "MarginProblem",
    "Mode",
    "OBJECTIVES",
    "OptimizationResult",
    "Plan",
    "SolverChoice",
    "VenueChange",
    "Verification",
    "WhatIf",
    "attribution",
    "describe",
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
