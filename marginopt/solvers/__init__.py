"""Solver choice by problem class, explicit status mapping, fallbacks and timing."""

from marginopt.solvers.installed import installed_solvers
from marginopt.solvers.run import solve, solver_chain
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus, map_status

__all__ = ["Attempt", "ProblemClass", "SolveReport", "SolveStatus", "installed_solvers", "map_status", "solve", "solver_chain"]
