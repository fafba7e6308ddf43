"""The backends a plan problem can be solved on, and the choice among them.

Each backend is one module implementing ``base.Backend``; ``BACKENDS`` names it (a new
backend is its module plus one line here, and a branch in ``choose_backend`` if ``auto``
should ever pick it). Modules are imported on first use: the scenario solver needs no cvxpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from marginopt.errors import OptimizationError, SolverError
from marginopt.models.margin.leaves import largest_scenario_set
from marginopt.optimizer.choice import SolverChoice

if TYPE_CHECKING:
    from marginopt.optimizer.backends.base import Backend
    from marginopt.optimizer.description import Description

# name -> (module, class)
BACKENDS: dict[str, tuple[str, str]] = {
    "cvxpy": ("marginopt.optimizer.backends.cvxpy_program", "CvxpyBackend"),
    "generate": ("marginopt.optimizer.backends.generation", "GenerationBackend"),
    "direct": ("marginopt.optimizer.backends.direct_lp", "DirectBackend"),
    "scenario": ("marginopt.optimizer.backends.scenario_route", "ScenarioBackend"),
    "mip": ("marginopt.optimizer.backends.mip", "MipBackend"),
    "direct_mip": ("marginopt.optimizer.backends.direct_mip", "DirectMipBackend"),
    "integer": ("marginopt.optimizer.backends.integer_route", "IntegerBackend"),
}

# From this many scenarios in a hedged venue's largest ES or scenario-maximum term, a program the
# scenario solver cannot hold is generated (working sets) rather than compiled whole: at 20,000
# scenarios x 100 hedges the whole program took 5-10x longer (benchmarks/large_scenarios.py).
LARGE_SCENARIOS = 20_000


def backend_class(name: str) -> Any:
    if name not in BACKENDS:
        raise OptimizationError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}", argument="backend")
    module, cls = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)


def build_backend(name: str, description: Description, **options: Any) -> Backend:
    """Backend ``name`` on ``description``; one that cannot hold it is refused with the reason
    (``OptimizationError``, its ``argument`` ``backend``: ``MarginProblem`` says which solver asked for it)."""
    cls = backend_class(name)
    reason = cls.why_not(description)
    if reason is None and description.execution_terms and not getattr(cls, "holds_execution_terms", False):
        # Never the continuous problem in place of the executable one.
        reason = f"it does not hold the case's execution terms ({', '.join(description.execution_terms)})"
    if reason is None and description.case.safety is not None and not getattr(cls, "holds_safety", False):
        reason = (f"it does not hold the case's stress-safe constraints (safety: "
                  f"{description.case.safety.name}); the cvxpy program does")
    if reason is not None:
        raise OptimizationError(f"the {name} backend cannot solve this problem: {reason}", argument="backend")
    backend: Backend = cls(description, **options)
    return backend


def large(description: Description) -> bool:
    """A hedged venue's ES or scenario maximum, or the max_loss limit where hedges are traded, holds
    ``LARGE_SCENARIOS`` scenarios or more."""
    if largest_scenario_set(description.hedged_measures()) >= LARGE_SCENARIOS:
        return True
    whole = description.max_loss_losses if description.has_hedges else None
    return whole is not None and whole.shape[0] >= LARGE_SCENARIOS


def choose_backend(description: Description, choice: SolverChoice | None = None) -> str:
    """The backend for ``description`` when the caller asked for ``choice`` (None: nothing).

    - A problem with execution terms (``Description.execution_terms``: lots, minimum trades and
      transfers, move and ticket caps, rounding) goes to a mixed-integer backend; a choice other
      than HiGHS is refused (``SolverError``), never answered by the continuous problem. A
      collateral-only ``min_cost`` one goes to the direct MIP (the direct LP's matrices plus the
      binaries and integers, built in milliseconds: the 200 x 30 treasury with binding minimum
      transfers and move caps, benchmarks/executable.py), anything else to the cvxpy ``mip``. From
      ``LARGE_SCENARIOS`` up, where the whole MIP is out of reach, a hedge program the scenario
      solver holds but for its lots, minimum trades and ticket cap goes to the integer backend
      (rounding and repair on its relaxation; with a ticket cap, a MIP over generated scenarios),
      which reports the gap to its bound; one it cannot hold is refused with its reason.

    - A formulation named (SCENARIO, GENERATE, FULL) is that backend; SCENARIO refuses a
      problem it cannot hold (``build_backend``), with the reason.
    - Otherwise a collateral-only ``min_cost`` problem goes to the direct LP (HiGHS on
      sparse matrices built in milliseconds, where cvxpy takes seconds at 200 assets x 30 venues);
    - a ``min_margin`` hedge over ES and scenario-maximum margins to the scenario solver at any
      size: from 1,000 scenarios up it is 1.7-30x faster than compiling the program in cvxpy
      (benchmarks/large_scenarios.py --route-table), and about twice as fast on an account's
      small program (benchmarks/batch.py);
    - anything else with ``LARGE_SCENARIOS`` or more (``large``: a hedged venue's ES or scenario maximum,
      or the max_loss limit's set) to scenario generation, and below that to the whole program in cvxpy.
    A solver forced by name (HIGHS, CLARABEL, ...) is honoured: the program goes through the
    cvxpy chain to that solver, except that a forced HiGHS still takes the direct LP and, from
    ``LARGE_SCENARIOS`` up, the scenario solver and generation (both solve with HiGHS).
    """
    if description.case.safety is not None:
        # Only the whole program holds the stressed books; build_backend says why another cannot.
        if description.execution_terms:
            raise OptimizationError(f"the case's safety ({description.case.safety.name}) and its "
                                    f"execution terms ({', '.join(description.execution_terms)}) together: a stress-safe "
                                    "executable plan is not built yet; drop one of them", argument="case")
        return choice.backend if choice is not None and choice.backend is not None else "cvxpy"
    if description.execution_terms:
        # Only the mixed-integer backend holds them; it refuses (build_backend) what it cannot hold.
        if choice is not None and choice is not SolverChoice.HIGHS:
            raise SolverError(f"solver {choice.value!r}: the case's execution terms ({', '.join(description.execution_terms)}) "
                              "make the plan a mixed-integer program, which HiGHS alone solves (the mip backend); "
                              "name HIGHS or none", argument="solver")
        if large(description):
            # The whole MIP refuses this size (mip.MAX_SCENARIOS): the integer route takes it, or
            # build_backend says why it cannot (a term it does not hold, a hedge without a big-M).
            return "integer"
        if backend_class("direct_mip").why_not(description) is None:
            return "direct_mip"
        return "mip"
    if choice is not None and choice.backend is not None:
        return choice.backend
    if choice is not None and choice is not SolverChoice.HIGHS:
        return "cvxpy"
    big = large(description)
    if backend_class("direct").why_not(description) is None:
        return "direct"
    if (choice is None or big) and backend_class("scenario").why_not(description) is None:
        return "scenario"
    return "generate" if big else "cvxpy"
