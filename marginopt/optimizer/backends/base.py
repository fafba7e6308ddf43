"""The protocol every backend implements, and the one result type they all return.

A backend is built from a ``Description`` (``Backend(description)``), solves it
(``solve(request) -> Solution``) and takes a market move (``update(description)``)
keeping whatever it can reuse (a compiled program, a basis, working sets). It never
decides that a plan is good: the caller verifies every plan (``optimizer.verify``),
and a backend that verifies inside its loop (the cvxpy chain tries the next solver
when a plan fails) does so through ``request.check`` and hands the verification back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus

if TYPE_CHECKING:
    from marginopt.optimizer.description import Description
    from marginopt.optimizer.verify import Plan, Verification


# An executable plan's defaults, for every backend that holds execution terms.
DEFAULT_GAP = 1e-6  # relative gap at which HiGHS (or the integer route's search) calls the incumbent optimal
DEFAULT_TIME_LIMIT = 60.0  # seconds


@dataclass(frozen=True)
class SolveRequest:
    solver: str | None = None  # a solver of the cvxpy chain forced by the caller
    warm: bool = False  # a re-solve after ``update``
    check: Callable[[Plan], Verification] | None = None  # independent verification of a plan


@dataclass(frozen=True)
class Certificate:
    """What a backend that restricts the scenarios, or a branch and bound, proves about its plan.

    A mixed-integer plan (``backends/mip.py``) adds the incumbent (the program's objective at the
    plan), the relative gap, whether it is proven optimal (within ``requested_gap``) and the limits;
    ``rounds`` is then the branch-and-bound node count (over every MIP solved), and
    ``outer_rounds`` the MIPs solved where impact costs are cut in lazily (1 where there are none)."""

    method: str
    rounds: int
    converged: bool
    lower_bound: float  # on the full problem's optimum
    gap: float  # the plan's objective less the lower bound
    scenarios_in_program: dict[str, int]  # per venue, in the last program solved
    # Scenario generation: per venue, expected shortfall's cuts in the last program (where any are)
    cuts_in_program: dict[str, int] | None = None
    incumbent: float | None = None
    relative_gap: float | None = None
    proven_optimal: bool | None = None
    requested_gap: float | None = None
    time_limit: float | None = None
    outer_rounds: int | None = None
    # Why the search for an executable plan ended (``executability.GAP_CLOSED`` and the others): the gap
    # closed, or what stopped it first.
    stopped: str | None = None
    # Rounding and repair on a relaxation (``backends/integer_route.py``): the continuous optimum,
    # a naive rounding's objective and feasibility, the moves made and what the method guarantees.
    rounding: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "rounds": self.rounds, "converged": self.converged,
                               "lower_bound": self.lower_bound, "gap": self.gap,
                               "scenarios_in_program": dict(self.scenarios_in_program)}
        if self.incumbent is not None:
            out.update(incumbent=self.incumbent, bound=self.lower_bound, relative_gap=self.relative_gap,
                       proven_optimal=self.proven_optimal, requested_gap=self.requested_gap, time_limit=self.time_limit,
                       outer_rounds=self.outer_rounds, stopped=self.stopped)
        if self.cuts_in_program is not None:
            out["cuts_in_program"] = dict(self.cuts_in_program)
        if self.rounding is not None:
            out["rounding"] = dict(self.rounding)
        return out


@dataclass(frozen=True)
class Solution:
    """One solve's outcome. ``plan`` is set when ``status`` is OPTIMAL (and may be for others);
    ``verification`` when the backend verified ``plan`` already; ``shadow`` where the backend
    has duals (asset -> per unit of value, venue -> per unit of margin)."""

    status: SolveStatus
    report: SolveReport
    plan: Plan | None = None
    verification: Verification | None = None
    certificate: Certificate | None = None
    shadow: dict[str, dict[str, float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    name: ClassVar[str]
    # The backend that takes over when this one fails to produce a verified plan (None: none).
    fallback: ClassVar[str | None]
    problem_class: ProblemClass
    build_seconds: float

    @classmethod
    def why_not(cls, description: Description) -> str | None:
        """Why this backend cannot hold ``description`` (said to the caller who named it), or None."""
        ...

    def solve(self, request: SolveRequest) -> Solution: ...

    def update(self, description: Description) -> None: ...


def highs_only(request: SolveRequest, problem_class: ProblemClass, build_seconds: float) -> Solution | None:
    """The refusal of a solver forced on an executable plan, which HiGHS's branch and bound alone
    solves (None when none, or HiGHS, is forced)."""
    forced = request.solver
    if forced is None or forced.upper() == "HIGHS":
        return None
    note = f"an executable plan (a mixed-integer program) is solved by HiGHS alone, not {forced}"
    attempt = Attempt(forced, SolveStatus.ERROR, 0.0, note)
    return Solution(SolveStatus.ERROR, SolveReport(None, SolveStatus.ERROR, problem_class, build_seconds, 0.0, (attempt,)))
