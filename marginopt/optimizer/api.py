"""Running a plan problem: solve on its backend, verify, fall back, diagnose infeasibility, report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pandas as pd

from marginopt.errors import OptimizationError
from marginopt.models.book import VenueBook
from marginopt.models.case import Case
from marginopt.models.enums import Objective
from marginopt.models.limit_use import LimitUse, limit_uses, with_worth
from marginopt.optimizer.attribution import euler_allocation
from marginopt.optimizer.backends import build_backend, choose_backend, large
from marginopt.optimizer.backends.base import Backend, Solution, SolveRequest
from marginopt.optimizer.choice import SolverChoice
from marginopt.optimizer.description import Description, Mode
from marginopt.optimizer.executability import (
    Executability,
    continuous_description,
    executability,
)
from marginopt.optimizer.problem import MarginProblem
from marginopt.optimizer.result import OptimizationResult, plan_status
from marginopt.optimizer.safety import SafetyCost, balances_after, plan_safety, without_safety
from marginopt.optimizer.verify import Plan, VenueOutcome, Verification, verify
from marginopt.solvers.status import SolveReport, SolveStatus


def optimize(
    case: Case,
    objective: Objective | str | None = None,
    solver: SolverChoice | str | None = None,
    mode: Mode | str = Mode.OPTIMIZE,
    *,
    mip_gap: float | None = None,
    time_limit: float | None = None,
) -> OptimizationResult:
    """Margin-minimizing hedges and collateral allocation for a case, verified.

    ``objective``: ``min_cost`` (funding, transfer and hedge costs with every
    venue's initial margin covered) or ``min_margin`` (total initial margin plus
    hedge costs); defaults to the case's (``optimizer.objectives``). ``mode``: ``optimize``
    (hedges and collateral), ``hedge`` (collateral fixed as posted) or ``allocate`` (no
    hedges). ``solver``: a solver or a formulation (``SolverChoice``); None chooses. ``mip_gap``
    (relative) and ``time_limit`` (seconds) reach HiGHS's branch and bound when the case carries
    execution terms (lots, minimum trades and transfers, move and ticket caps, rounding).
    """
    problem = MarginProblem(case, objective, mode, solver=solver, mip_gap=mip_gap, time_limit=time_limit)
    return run(problem)


def run(problem: MarginProblem, solver: str | None = None, warm: bool = False) -> OptimizationResult:
    """Solve a built problem (again, after ``problem.update``), verify and report. ``solver``
    forces a solver of the cvxpy chain (the problem's own choice by default)."""
    d = problem.description
    forced = solver or problem.solver
    sol, backend = _solve(problem.backend, d, forced, warm)
    if sol.status is SolveStatus.OPTIMAL:
        assert sol.plan is not None
        check = sol.verification or verify(d, sol.plan)
        if check.passed:
            compared = _executability(d, check.objective_value, sol) if d.execution_terms else None
            safety = _safety_cost(d, check.objective_value, sol.plan) if d.case.safety is not None else None
            return _result(d, "optimal", sol.report, check, sol, executable=compared, safety=safety)
        return _result(d, "failed", sol.report, check, sol)
    if sol.status is SolveStatus.INFEASIBLE:
        # A solver's infeasibility that the elastic problem cannot confirm (nothing short) is a
        # solver failure, not an answer.
        shortfalls = diagnose(d, backend.name, forced)
        return _result(d, "infeasible" if shortfalls else "failed", sol.report, None, sol, shortfalls)
    return _result(d, "failed", sol.report, sol.verification, sol)


def _solve(backend: Backend, d: Description, forced: str | None, warm: bool) -> tuple[Solution, Backend]:
    """``backend``'s solution, each verified; on a failure the next backend in line solves from
    scratch, and the report keeps every attempt in order."""
    request = SolveRequest(forced, warm, lambda plan: verify(d, plan))
    sol = backend.solve(request)
    earlier: tuple[object, ...] = ()
    while sol.status not in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE) and backend.fallback is not None:
        earlier += sol.report.attempts
        backend = build_backend(backend.fallback, d)
        sol = backend.solve(SolveRequest(forced, False, request.check))
    if earlier:
        sol = replace(sol, report=replace(sol.report, attempts=(*earlier, *sol.report.attempts)))  # type: ignore[arg-type]
    return sol, backend


def _executability(d: Description, executable_value: float, sol: Solution) -> Executability:
    """The executable plan beside the continuous optimum and the naive rounding of that
    (``optimizer.executability``). Where the backend solved the continuous relaxation on its way (the
    integer route, with its naive rounding verified, and the direct MIP: ``sol.extra["relaxation"]``), that plan is the
    continuous optimum, verified against the case without its execution terms; otherwise that
    problem is solved on the backend chosen for it."""
    relaxed = sol.extra.get("relaxation")
    if isinstance(relaxed, Plan):
        check = verify(continuous_description(d), relaxed)
        if check.passed:
            return executability(d, executable_value, "optimal", check, relaxed, sol.extra.get("naive_rounding"))
    # The same venues and books (execution terms change no margin): nothing is priced or scenario set
    # built again, only the continuous backend.
    c = continuous_description(d)
    try:
        backend = build_backend(choose_backend(c), c)
    except OptimizationError:  # the continuous problem has no backend: no bound, the executable plan stands
        return executability(d, executable_value, "failed")
    sol, _ = _solve(backend, c, None, False)
    if sol.status is SolveStatus.OPTIMAL and sol.plan is not None:
        check = sol.verification or verify(c, sol.plan)
        if check.passed:
            return executability(d, executable_value, "optimal", check, sol.plan)
    return executability(d, executable_value, "infeasible" if sol.status is SolveStatus.INFEASIBLE else "failed")


def _safety_cost(d: Description, safe_value: float, plan: Plan) -> SafetyCost:
    """The safe plan beside the cheapest plan without the safety constraint, each under the stress set
    and with its distance to liquidation (``optimizer.safety``): what safety costs."""
    assert d.case.safety is not None
    free = without_safety(d)
    sol, _ = _solve(build_backend(choose_backend(free), free), free, None, False)
    other = plan_safety(free, sol.status.value, None, None)
    if sol.status is SolveStatus.OPTIMAL and sol.plan is not None:
        check = sol.verification or verify(free, sol.plan)
        if check.passed:
            other = plan_safety(d, "optimal", check.objective_value, sol.plan)
    return SafetyCost(d.case.safety.name, d.case.safety.level.value, plan_safety(d, "optimal", safe_value, plan), other)


def diagnose(description: Description, backend: str, solver: str | None) -> tuple[tuple[str, float], ...]:
    """What is short and by how much, from the elastic problem (every constraint with a slack):
    generated where the problem was (or is large), whole in cvxpy otherwise; with the execution
    terms kept (the elastic mixed-integer program) where the case has them."""
    if backend == "integer":
        name = "integer"
    elif description.execution_terms:
        name = "mip"
    else:
        name = "generate" if backend == "generate" or large(description) else "cvxpy"
    elastic = build_backend(name, description, elastic=True)
    return elastic.shortfalls(solver)  # type: ignore[attr-defined, no-any-return]


def _result(d: Description, status: str, report: SolveReport, check: Verification | None, sol: Solution,
            shortfalls: tuple[tuple[str, float], ...] = (), executable: Executability | None = None,
            safety: SafetyCost | None = None) -> OptimizationResult:
    ok = status == "optimal" and check is not None
    certificate = sol.certificate.to_dict() if sol.certificate is not None else None
    if ok:
        status = plan_status(certificate)  # an executable plan its search did not prove optimal: feasible
    hedges = pd.DataFrame(columns=["venue", "instrument", "quantity", "cost"])
    allocation = pd.DataFrame(columns=["venue", "asset", "quantity", "value", "posted_before"])
    margins = pd.DataFrame(columns=["venue", "before", "after", "collateral_after", "excess_after", "balance_after"])
    attribution: Callable[[], pd.DataFrame] | None = None
    limits: list[LimitUse] = []
    if ok:
        plan: Plan = sol.plan  # type: ignore[assignment]
        assert check is not None
        hedges = pd.DataFrame([
            {"venue": c.venue, "instrument": c.instrument, "quantity": float(x), "cost": c.cost_per_unit * abs(x) + c.impact * x * x}
            for c, x in zip(d.cands, plan.hedges, strict=True)
        ], columns=hedges.columns)
        prices = d.case.market.prices
        rows = []
        for v in d.venues:
            units = plan.allocation.get(v.name, dict(v.book.venue.posted))
            for a, qty in units.items():
                before = v.book.venue.posted.get(a, 0.0)
                if abs(qty) > 1e-12 or before:
                    rows.append({"venue": v.name, "asset": a, "quantity": qty, "value": qty * prices[a], "posted_before": before})
        allocation = pd.DataFrame(rows, columns=allocation.columns)
        balances = balances_after(d, plan.hedges, plan.allocation if d.collateral_free else {})
        margins = pd.DataFrame([
            {"venue": o.venue, "before": o.margin_before, "after": o.margin_after, "collateral_after": o.collateral_after,
             "excess_after": o.collateral_after - o.margin_after, "balance_after": balances[o.venue]} for o in check.venues
        ], columns=margins.columns)
        outcomes = check.venues
        books = [v.book for v in d.venues]
        traded: dict[str, float] = {}
        for c, x in zip(d.cands, plan.hedges, strict=True):
            traded[c.instrument] = traded.get(c.instrument, 0.0) + float(x)
        posted = {v.name: plan.allocation.get(v.name, dict(v.book.venue.posted)) for v in d.venues}
        duals = (sol.shadow or {}).get("limits", {}) if not d.execution_terms else {}  # a MIP has no duals
        limits = with_worth(limit_uses(d.case, books, {o.venue: o.positions_after for o in outcomes}, posted, traded,
                                      (d.all_ids, d.max_loss_losses)), duals)
        attribution = lambda: _attribution(books, outcomes)  # noqa: E731  (computed on demand)
    return OptimizationResult(
        status=status,
        objective=d.objective,
        mode=d.mode.value,
        objective_value=check.objective_value if ok and check is not None else None,
        hedges=hedges,
        allocation=allocation,
        margins=margins,
        shadow_prices=({k: v for k, v in (sol.shadow or {"assets": {}, "venues": {}}).items() if k != "limits"} if ok
                       else {"assets": {}, "venues": {}}),
        limits=tuple(limits),
        verification=check,
        solver=report,
        shortfalls=shortfalls,
        costs=check.costs if ok and check is not None else {},
        attribution_of=attribution,
        candidates=tuple(d.cands),
        certificate=certificate,
        executability=executable,
        safety=safety,
    )


def _attribution(books: list[VenueBook], outcomes: tuple[VenueOutcome, ...]) -> pd.DataFrame:
    """Euler allocation of each venue's margin after the plan, one table for all venues."""
    frames = [euler_allocation(b, o.positions_after) for b, o in zip(books, outcomes, strict=True)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["venue", "instrument", "position", "contribution"])
