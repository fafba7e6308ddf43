"""marginopt: convex margin-allocation optimizer.

    >>> import marginopt
    >>> case = marginopt.load_case(marginopt.demo_case_path())
    >>> report = marginopt.margin(case)
    >>> report.total_initial_margin > 0
    True
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from marginopt.errors import CaseError, MarginoptError, ModelError, NonConvexMeasureError
from marginopt.models import Case, MarginReport, ScenarioLosses, VenueBook, load_case
from marginopt.models import margin_report as margin
from marginopt.optimizer import OptimizationResult, attribution, optimize, route, what_if

__version__ = "0.1.0"


def demo_case_path() -> Path:
    """Path of the embedded demo case (a crypto desk on three venues)."""
    return Path(str(resources.files("marginopt") / "data" / "demo" / "case.yaml"))


__all__ = [
    "Case",
    "CaseError",
    "MarginReport",
    "MarginoptError",
    "ModelError",
    "NonConvexMeasureError",
    "ScenarioLosses",
    "VenueBook",
    "demo_case_path",
    "load_case",
    "margin",
    "OptimizationResult",
    "attribution",
    "optimize",
    "route",
    "what_if",
]
