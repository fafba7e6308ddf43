"""Choosing a solver by problem class, solving, and falling back on failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import cvxpy as cp

from marginopt.errors import SolverError
from marginopt.solvers.installed import installed_solvers
from marginopt.solvers.quiet import guarded_stdout, ignored_warnings
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus

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
        raise SolverError(f"unknown solver status {status!r}: marginopt does not know whether to trust it") from None

# Preferred order per class. OSQP (ADMM) is for QPs only: on margin LPs, which have no
# quadratic term to make them strongly convex, it cycles until its iteration limit (13-18% of
# scenario LPs in tests/test_measures.py; reference LPs in tests/test_optimizer_reference.py
# under every scaling and rho setting tried). Impact costs are written in cone form (an SOCP),
# so the builder produces no QP today; the QP order stands for objectives that need one.
ORDER: dict[ProblemClass, tuple[str, ...]] = {
    ProblemClass.LP: ("HIGHS", "CLARABEL", "ECOS"),
    ProblemClass.QP: ("CLARABEL", "OSQP", "ECOS"),
    ProblemClass.SOCP: ("CLARABEL", "ECOS"),
    ProblemClass.MILP: ("HIGHS",),
}
CAN_SOLVE: dict[str, tuple[ProblemClass, ...]] = {
    "HIGHS": (ProblemClass.LP, ProblemClass.MILP),
    "OSQP": (ProblemClass.QP,),
    "CLARABEL": (ProblemClass.LP, ProblemClass.QP, ProblemClass.SOCP),
    "ECOS": (ProblemClass.LP, ProblemClass.QP, ProblemClass.SOCP),
}
# Tight tolerances: a margin figure is checked to the cent afterwards.
OPTIONS: dict[str, dict[str, Any]] = {
    "OSQP": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iter": 200_000, "polish": True, "scaling": 25},
    "ECOS": {"abstol": 1e-9, "reltol": 1e-9, "feastol": 1e-9, "max_iters": 500},
    "CLARABEL": {},
    "HIGHS": {},
}
# The Python package of each solver (all four are dependencies of marginopt; an environment may lack one).
PACKAGES: dict[str, str] = {"HIGHS": "highspy", "OSQP": "osqp", "CLARABEL": "clarabel", "ECOS": "ecos"}
# cvxpy's HiGHS interface constructs highspy.Highs() itself, which prints its banner before any
# option can reach it (solvers/quiet.py); the other solvers keep quiet with verbose=False.
PRINTS_REGARDLESS = frozenset({"HIGHS"})


def solver_chain(problem_class: ProblemClass, forced: str | None = None) -> tuple[str, ...]:
    """Solvers to try in order: the forced one alone, or the class's order among those installed.
    A forced solver that is unknown, not installed or not for ``problem_class`` is a ``SolverError``
    naming the solvers that would do (``argument`` ``solver``: the CLI adds its flag)."""
    installed = installed_solvers()
    if forced is not None:
        name = forced.upper()
        if name not in CAN_SOLVE:
            raise SolverError(f"solver {forced!r}: expected one of {', '.join(CAN_SOLVE)}", argument="solver")
        if name not in installed:
            raise SolverError(f"solver {forced!r}: not installed here; use one of {', '.join(installed) or 'none'}, or install "
                              f"it (pip install {PACKAGES[name]})", argument="solver")
        if problem_class not in CAN_SOLVE[name]:
            raise SolverError(f"solver {forced!r}: cannot solve this {problem_class.value}; use one of "
                              f"{', '.join(s for s in installed if problem_class in CAN_SOLVE[s])}, or leave the solver "
                              "unset to have one chosen", argument="solver")
        return (name,)
    chain = tuple(s for s in ORDER[problem_class] if s in installed)
    if not chain:
        raise SolverError(f"no installed solver handles a {problem_class.value} (installed: {', '.join(installed) or 'none'}); "
                          f"install one of {', '.join(PACKAGES[s] for s in ORDER[problem_class])}")
    return chain


def solve(
    problem: cp.Problem,
    problem_class: ProblemClass,
    *,
    forced: str | None = None,
    accept: Callable[[], str | None] | None = None,
    build_seconds: float = 0.0,
    warm: bool = False,
    options: dict[str, dict[str, Any]] | None = None,
    parametric: bool = True,
) -> SolveReport:
    """Solve with the first solver of the chain whose answer is optimal and accepted.
    ``options``: per solver, settings on top of ``OPTIONS``. ``parametric``: compile the program in
    cvxpy's parametric form (DPP), which a later solve with new parameter values reuses; False compiles
    it with the parameters' values as constants, each solve again, where the program changes anyway.

    ``accept`` checks a solution independently (verification) and returns why it
    is refused, or None. Infeasibility is an answer and ends the chain (the
    elastic problem then says what is short). Unboundedness is not: every margin
    problem is bounded below by construction, so a solver saying so has failed
    numerically (Clarabel did, on prices spanning four orders of magnitude).
    """
    attempts: list[Attempt] = []
    total = 0.0
    for name in solver_chain(problem_class, forced):
        t0 = time.perf_counter()
        note = ""
        try:
            with ignored_warnings(), (guarded_stdout() if name in PRINTS_REGARDLESS else nullcontext()):
                problem.solve(solver=name, warm_start=warm, verbose=False, ignore_dpp=not parametric,
                              **{**OPTIONS.get(name, {}), **(options or {}).get(name, {})})
            status = map_status(problem.status)
        except cp.error.SolverError as exc:
            status, note = SolveStatus.ERROR, str(exc).splitlines()[0] if str(exc) else "solver error"
        except ValueError as exc:  # cvxpy's HiGHS interface raises this on a status it cannot map (UNKNOWN)
            if not str(exc).startswith("Cannot unpack invalid solution"):
                raise
            status, note = SolveStatus.ERROR, "no solution returned (solver status unknown)"
        seconds = time.perf_counter() - t0
        total += seconds
        if status is SolveStatus.OPTIMAL and accept is not None:
            refused = accept()
            if refused:
                status, note = SolveStatus.INACCURATE, f"verification: {refused}"
        attempts.append(Attempt(name, status, seconds, note))
        if status in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE):
            stats = problem.solver_stats
            return SolveReport(name, status, problem_class, build_seconds + _compile_seconds(problem), _solve_seconds(problem, seconds),
                               tuple(attempts), getattr(stats, "num_iters", None), warm)
    return SolveReport(None, attempts[-1].status, problem_class, build_seconds, total, tuple(attempts), None, warm)


def _compile_seconds(problem: cp.Problem) -> float:
    return float(getattr(problem, "compilation_time", None) or 0.0)


def _solve_seconds(problem: cp.Problem, wall: float) -> float:
    """Wall time of the solve call less cvxpy's compilation."""
    return max(wall - _compile_seconds(problem), 0.0)
