"""marginopt: convex margin-allocation optimizer.

    >>> import marginopt
    >>> case = marginopt.load_case(marginopt.demo_case_path())
    >>> report = marginopt.margin(case)
    >>> report.total_initial_margin > 0
    True

The names below are imported on first use: ``import marginopt`` (and every ``marginopt``
command, ``--help`` and ``--version`` included) pays only for what it touches, not for cvxpy,
numba and pandas up front.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from marginopt.errors import (
    ArgumentError,
    CaseError,
    InfeasibleError,
    MarginoptError,
    ModelError,
    NonConvexMeasureError,
    NotFoundError,
    OptimizationError,
    SolverError,
)
from marginopt.lazy import lazy

if TYPE_CHECKING:
    from marginopt.models import Case, MarginReport, ScenarioLosses, VenueBook, load_case
    from marginopt.models import margin_report as margin
    from marginopt.optimizer import (
        Leg,
        MarginProblem,
        Mode,
        OptimizationResult,
        attribution,
        optimize,
        route,
        route_legs,
        run,
        what_if,
        what_if_legs,
    )

    __version__: str

# public name -> (module, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "Case": ("marginopt.models", "Case"),
    "MarginReport": ("marginopt.models", "MarginReport"),
    "ScenarioLosses": ("marginopt.models", "ScenarioLosses"),
    "VenueBook": ("marginopt.models", "VenueBook"),
    "load_case": ("marginopt.models", "load_case"),
    "margin": ("marginopt.models", "margin_report"),
    "OptimizationResult": ("marginopt.optimizer", "OptimizationResult"),
    # From its module: the package's attribute of that name is the submodule once anything imported it.
    "attribution": ("marginopt.optimizer.attribution", "attribution"),
    "optimize": ("marginopt.optimizer", "optimize"),
    "route": ("marginopt.optimizer", "route"),
    "what_if": ("marginopt.optimizer", "what_if"),
    "Leg": ("marginopt.optimizer", "Leg"),
    "what_if_legs": ("marginopt.optimizer", "what_if_legs"),
    "route_legs": ("marginopt.optimizer", "route_legs"),
    # The warm re-solve: problem = MarginProblem(case); run(problem); problem.update(moved); run(problem, warm=True)
    "MarginProblem": ("marginopt.optimizer", "MarginProblem"),
    "Mode": ("marginopt.optimizer", "Mode"),
    "run": ("marginopt.optimizer", "run"),
}


def _version(name: str) -> str:
    if name != "__version__":
        raise AttributeError(f"module 'marginopt' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version  # the installed package's, from pyproject.toml

    try:
        value: str = version("marginopt")
    except PackageNotFoundError:  # a checkout on sys.path, not installed: no version to read
        raise AttributeError("module 'marginopt' has no attribute '__version__' (the package is not installed)") from None
    globals()[name] = value
    return value


__getattr__, _dir = lazy(__name__, _LAZY, extra=_version)


def __dir__() -> list[str]:
    return sorted({*_dir(), "__version__"})


def demo_case_path() -> Path:
    """Path of the embedded demo case (a crypto desk on three venues)."""
    return Path(str(resources.files("marginopt") / "data" / "demo" / "case.yaml"))


__all__ = [
    "ArgumentError",
    "Case",
    "CaseError",
    "InfeasibleError",
    "MarginReport",
    "MarginoptError",
    "ModelError",
    "NonConvexMeasureError",
    "NotFoundError",
    "OptimizationError",
    "SolverError",
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
    "Leg",
    "what_if_legs",
    "route_legs",
    "MarginProblem",
    "Mode",
    "run",
]
