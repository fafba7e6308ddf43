"""Solvers: the cvxpy solver chain, HiGHS, and the large-scenario LP and its dual.

``status`` (the outcome types every backend reports in) is imported at once; the
cvxpy chain on first use, so that code reading only statuses does not load cvxpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marginopt.lazy import lazy
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus

if TYPE_CHECKING:
    from marginopt.solvers.installed import installed_solvers
    from marginopt.solvers.run import map_status, solve, solver_chain

_LAZY = {"installed_solvers": "marginopt.solvers.installed", "map_status": "marginopt.solvers.run",
         "solve": "marginopt.solvers.run", "solver_chain": "marginopt.solvers.run"}


__getattr__, __dir__ = lazy(__name__, _LAZY)


__all__ = ["Attempt", "ProblemClass", "SolveReport", "SolveStatus", "installed_solvers", "map_status", "solve", "solver_chain"]
