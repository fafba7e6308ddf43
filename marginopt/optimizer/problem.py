"""A case's plan problem on the backend chosen for it, built once and re-solvable after a market move.

    problem = MarginProblem(case, mode=Mode.ALLOCATE)   # described, backend chosen and built
    first = run(problem)
    problem.update(moved_case)                          # the backend keeps what it can
    again = run(problem, warm=True)
"""

from __future__ import annotations

from typing import Any

from marginopt.errors import OptimizationError, SolverError
from marginopt.models.case import Case
from marginopt.models.enums import Objective
from marginopt.optimizer.backends import backend_class, build_backend, choose_backend
from marginopt.optimizer.backends.base import Backend
from marginopt.optimizer.choice import SolverChoice
from marginopt.optimizer.description import Description, Mode, describe
from marginopt.optimizer.objectives import objective_kind


class MarginProblem:
    """``solver``: a solver or formulation as ``--solver`` takes it (``SolverChoice``); ``backend``:
    a backend by its registry name (``optimizer.backends.BACKENDS``), for callers that need one.
    ``mip_gap`` (relative) and ``time_limit`` (seconds) reach the mixed-integer backend, chosen
    when the case carries execution terms; a continuous plan has no gap, and takes neither."""

    def __init__(self, case: Case, objective: Objective | str | None = None, mode: Mode | str = Mode.OPTIMIZE,
                 solver: SolverChoice | str | None = None, backend: str | None = None, *, mip_gap: float | None = None,
                 time_limit: float | None = None, **options: Any) -> None:
        # The call's names first (OptimizationError, SolverError naming the argument), before any book is built.
        chosen = objective_kind(objective).objective if objective is not None else None
        asked = Mode.parse(mode)
        self.choice = SolverChoice.parse(solver)
        self.description: Description = describe(case, chosen, asked)
        name = backend or choose_backend(self.description, self.choice)
        if getattr(backend_class(name), "holds_execution_terms", False):  # the mip and integer backends
            options.update(mip_gap=mip_gap, time_limit=time_limit)
        elif mip_gap is not None or time_limit is not None:  # never taken and then silently left unused
            which = "mip_gap" if mip_gap is not None else "time_limit"
            raise OptimizationError(f"{which} applies to an executable plan (a case with lot sizes, minimum trades or "
                                    "transfers, move or ticket caps, or rounding); this one is continuous and solved "
                                    "exactly, with no gap to set", argument=which)
        try:
            self.backend: Backend = build_backend(name, self.description, **options)
        except OptimizationError as exc:
            if backend is None and self.choice is not None and self.choice.backend == name:  # the caller's formulation
                raise SolverError(f"solver {self.choice.value!r}: {exc}; name another or none to have one chosen",
                                  argument="solver") from None
            raise

    @property
    def solver(self) -> str | None:
        """The solver the caller forced, if any."""
        return self.choice.solver if self.choice is not None else None

    @property
    def case(self) -> Case:
        return self.description.case

    @property
    def parts(self) -> list[Any]:
        return self.description.venues

    @property
    def problem_class(self) -> Any:
        return self.backend.problem_class

    def update(self, case: Case) -> None:
        """Load a case of the same structure (new prices, vols, haircuts, limits)."""
        self.description = self.description.moved(case)
        self.backend.update(self.description)
