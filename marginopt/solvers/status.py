"""Solver outcomes: one status enum for every backend, the problem class, and the report of a solve."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class SolveStatus(str, Enum):
    OPTIMAL = "optimal"
    INACCURATE = "optimal_inaccurate"  # a solver's own warning: not accepted as a plan
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    LIMIT = "limit"  # iteration or time limit reached
    ERROR = "error"  # the solver failed or raised


class ProblemClass(str, Enum):
    LP = "LP"
    QP = "QP"
    SOCP = "SOCP"
    MILP = "MILP"  # an LP with integer variables (executable plans: HiGHS's branch and bound)


@dataclass(frozen=True)
class Attempt:
    solver: str
    status: SolveStatus
    seconds: float
    note: str = ""


@dataclass(frozen=True)
class SolveReport:
    """What the solver layer did: the solver whose answer is used, and every attempt in order."""

    solver: str | None
    status: SolveStatus
    problem_class: ProblemClass
    build_seconds: float
    solve_seconds: float
    attempts: tuple[Attempt, ...]
    iterations: int | None = None
    warm: bool = False

    def to_dict(self) -> dict[str, object]:
        """The ``solver`` entry of the optimize JSON."""
        return {"name": self.solver, "build_seconds": self.build_seconds, "solve_seconds": self.solve_seconds}
