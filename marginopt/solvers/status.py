"""Solver outcomes: an explicit map from cvxpy's statuses, and the report of a solve."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import cvxpy as cp

from marginopt.errors import MarginoptError


class SolveStatus(str, Enum):
    OPTIMAL = "optimal"
    INACCURATE = "optimal_inaccurate"  # a solver's own warning: not accepted as a plan
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    LIMIT = "limit"  # iteration or time limit reached
    ERROR = "error"  # the solver failed or raised


STATUS_MAP: dict[str, SolveStatus] = {
    cp.OPTIMAL: SolveStatus.OPTIMAL,
    cp.OPTIMAL_INACCURATE: SolveStatus.INACCURATE,
    cp.INFEASIBLE: SolveStatus.INFEASIBLE,
    cp.INFEASIBLE_INACCURATE: SolveStatus.INFEASIBLE,
    cp.UNBOUNDED: SolveStatus.UNBOUNDED,
    cp.UNBOUNDED_INACCURATE: SolveStatus.UNBOUNDED,
    cp.USER_LIMIT: SolveStatus.LIMIT,
    cp.SOLVER_ERROR: SolveStatus.ERROR,
}


def map_status(status: str | None) -> SolveStatus:
    """Our status for cvxpy's; an unknown status is an error, never a guess."""
    if status is None:
        return SolveStatus.ERROR
    try:
        return STATUS_MAP[status]
    except KeyError:
        raise MarginoptError(f"unknown solver status {status!r}: marginopt does not know whether to trust it") from None


class ProblemClass(str, Enum):
    LP = "LP"
    QP = "QP"
    SOCP = "SOCP"


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
