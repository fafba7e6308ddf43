"""Running an allocation problem: solve, verify, read duals, diagnose infeasibility."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from marginopt.models.book import VenueBook
from marginopt.models.case import Case
from marginopt.models.enums import Objective
from marginopt.optimizer.builder import MarginProblem, Mode
from marginopt.optimizer.result import OptimizationResult
from marginopt.optimizer.verify import Plan, VenueOutcome, Verification, positions_after, verify
from marginopt.solvers import Attempt, ProblemClass, SolveReport, SolveStatus, solve

# Shortfalls below this (base currency or units) are solver round-off in the elastic problem.
_SHORTFALL_TOL = 1e-6


def optimize(
    case: Case,
    objective: Objective | str | None = None,
    solver: str | None = None,
    mode: Mode | str = Mode.OPTIMIZE,
) -> OptimizationResult:
    """Margin-minimizing hedges and collateral allocation for a case, verified.

    ``objective``: ``min_cost`` (funding, transfer and hedge costs with every
    venue's initial margin covered) or ``min_margin`` (total initial margin plus
    hedge costs); defaults to the case's. ``mode``: ``optimize`` (hedges and
    collateral), ``hedge`` (collateral fixed as posted) or ``allocate`` (no hedges).
    """
    obj = Objective(objective) if objective is not None else None
    backend, solver = formulation(solver)
    problem = MarginProblem(case, obj, Mode(mode), backend=backend)
    return run(problem, solver)


FORMULATIONS = {"SCENARIO": "scenario", "GENERATE": "generate", "FULL": "cvxpy"}


def formulation(solver: str | None) -> tuple[str, str | None]:
    """``--solver`` to (builder backend, forced solver): ``SCENARIO`` is the large-scenario solver
    (``optimizer.scenario_route``), ``GENERATE`` scenario generation in cvxpy
    (``optimizer.generation``), ``FULL`` every scenario in one program, a solver name forces
    that solver (through cvxpy unless HiGHS, ``highs``), and nothing picks the path (``auto``)."""
    if solver is None:
        return "auto", None
    name = solver.upper()
    if name in FORMULATIONS:
        return FORMULATIONS[name], None
    return ("highs" if name == "HIGHS" else "cvxpy"), solver


def run(problem: MarginProblem, solver: str | None = None, warm: bool = False) -> OptimizationResult:
    """Solve a built problem (again, after ``problem.update``), verify and report."""
    if problem.direct is not None:
        return _run_direct(problem, solver, warm)
    if problem.route is not None:
        return _run_route(problem, solver, warm)
    if problem.generation is not None:
        return _run_generation(problem, solver, warm)
    checked: dict[str, Verification] = {}

    def accept() -> str | None:
        checked["last"] = verify(problem, plan_of(problem))
        bad = checked["last"].failures
        return None if not bad else "; ".join(f"{c.name} by {c.violation:.6g}" for c in bad[:3])

    report = solve(problem.problem, problem.problem_class, forced=solver, accept=accept,
                   build_seconds=problem.build_seconds, warm=warm)
    if report.status is SolveStatus.OPTIMAL:
        return _result(problem, "optimal", report, checked["last"])
    if report.status is SolveStatus.INFEASIBLE:
        return _infeasible(problem, report, solver)
    return _result(problem, "failed", report, checked.get("last"))


def _run_generation(problem: MarginProblem, solver: str | None, warm: bool) -> OptimizationResult:
    """Scenario generation: solve the restricted problem, add the scenarios its plan violates,
    until none does; then verify against the full measures and report the bounds."""
    gen = problem.generation
    assert gen is not None
    build, solve_seconds, attempts = problem.build_seconds, 0.0, []
    rounds = 0
    while True:
        rounds += 1
        report = solve(problem.problem, problem.problem_class, forced=solver, build_seconds=problem.build_seconds,
                       warm=warm, options=GENERATION_OPTIONS)
        solve_seconds += report.solve_seconds
        attempts += list(report.attempts)
        if report.status is not SolveStatus.OPTIMAL:
            report = replace(report, build_seconds=build, solve_seconds=solve_seconds, attempts=tuple(attempts))
            if report.status is SolveStatus.INFEASIBLE:
                return _infeasible(problem, report, solver)  # the relaxation is, so the full problem is
            return _result(problem, "failed", report, None)
        lower = float(problem.problem.value)
        plan = plan_of(problem)
        # Only the positions are needed to find violated scenarios; the plan is verified once, at the end.
        if not gen.refine(positions_after(problem, plan.hedges)) or rounds >= MAX_ROUNDS:
            break
        problem.rebuild()
        build += problem.build_seconds
    check = verify(problem, plan)
    # The restricted optimum is a lower bound on the full one; at the plan the full margins exceed
    # the restricted ones by ``gap`` (zero up to solver round-off once nothing is violated).
    gap = gen.gap(problem, check)
    report = replace(report, build_seconds=build, solve_seconds=solve_seconds, attempts=tuple(attempts))
    certificate = {
        "method": "scenario generation",
        "rounds": rounds,
        "converged": rounds < MAX_ROUNDS or gen.added[-1] == 0,
        "lower_bound": check.objective_value - gap if check.passed else lower,
        "gap": gap,
        "scenarios_in_program": gen.sizes(),
    }
    status = "optimal" if check.passed and certificate["converged"] else "failed"
    return _result(problem, status, report, check, certificate=certificate)


MAX_ROUNDS = 60
# A restricted program carries a dense block of scenarios x hedges, where HiGHS's interior point
# (with its crossover to a vertex, so duals stay exact) beat its dual simplex: marginopt case at
# 100,000 x 200 15.1 -> 7.9 s, the same at 20,000 x 100.
GENERATION_OPTIONS = {"HIGHS": {"highs_options": {"solver": "ipm"}}}


def _infeasible(problem: MarginProblem, report: SolveReport, solver: str | None) -> OptimizationResult:
    """Infeasible with what is short; a solver's infeasibility that the elastic problem cannot
    confirm (nothing short) is a solver failure, not an answer."""
    shortfalls = diagnose(problem.case, problem, solver)
    return _result(problem, "infeasible" if shortfalls else "failed", report, None, shortfalls)


def _run_direct(problem: MarginProblem, solver: str | None, warm: bool) -> OptimizationResult:
    """The collateral-only LP on HiGHS directly; the cvxpy chain if that fails verification."""
    assert problem.direct is not None
    sol = problem.direct.solve()
    build = problem.build_seconds + sol.build_seconds
    if sol.status == "optimal":
        plan = Plan(np.zeros(0), {part.name: dict(zip(part.assets, sol.x[part.name].tolist(), strict=True))
                                  for part in problem.parts})
        check = verify(problem, plan)
        attempt = Attempt("HIGHS", SolveStatus.OPTIMAL if check.passed else SolveStatus.INACCURATE, sol.solve_seconds,
                          "direct LP" if check.passed else "direct LP; verification: " + "; ".join(c.name for c in check.failures[:3]))
        if check.passed:
            report = SolveReport("HIGHS", SolveStatus.OPTIMAL, ProblemClass.LP, build, sol.solve_seconds, (attempt,), sol.iterations, warm)
            # Inventory rows are in value units: their duals are already per unit of value.
            shadow = {"assets": dict(sol.inventory_duals), "venues": dict(sol.coverage_duals)}
            return _result(problem, "optimal", report, check, plan=plan, shadow=shadow)
    elif sol.status == "infeasible":
        attempt = Attempt("HIGHS", SolveStatus.INFEASIBLE, sol.solve_seconds, "direct LP")
        report = SolveReport("HIGHS", SolveStatus.INFEASIBLE, ProblemClass.LP, build, sol.solve_seconds, (attempt,), sol.iterations, warm)
        return _infeasible(problem, report, solver)
    else:
        attempt = Attempt("HIGHS", SolveStatus.ERROR, sol.solve_seconds, "direct LP")
    fallback = run(MarginProblem(problem.case, problem.objective, problem.mode, backend="cvxpy"), solver)
    report = fallback.solver
    return replace(fallback, solver=replace(report, attempts=(attempt, *report.attempts)))


def _run_route(problem: MarginProblem, solver: str | None, warm: bool) -> OptimizationResult:
    """The hedge program on ``solvers.scenario_lp``, verified against the venues' own measures;
    the cvxpy generation route if it fails or its plan does not verify."""
    route = problem.route
    assert route is not None
    res = route.solve()
    assert route.lp is not None
    seconds = res.seconds.get("total", 0.0)
    note = f"large-scenario solver ({route.lp.method} LP), {res.iterations} rounds"
    status = {"optimal": SolveStatus.OPTIMAL, "infeasible": SolveStatus.INFEASIBLE}.get(res.status, SolveStatus.ERROR)
    if res.status == "optimal":
        plan = Plan(res.h, {})
        check = verify(problem, plan)
        if not check.passed:
            status = SolveStatus.INACCURATE
            note += "; verification: " + "; ".join(c.name for c in check.failures[:3])
    attempt = Attempt("SCENARIO", status, seconds, note)
    report = SolveReport("SCENARIO", status, ProblemClass.LP, problem.build_seconds, seconds, (attempt,), res.iterations, warm)
    if status is SolveStatus.OPTIMAL:
        gap = max(res.gap, 0.0)
        certificate = {
            "method": f"scenario generation on the {route.lp.method} LP",
            "rounds": res.iterations,
            "converged": True,
            "lower_bound": check.objective_value - gap,
            "gap": gap,
            "scenarios_in_program": route.sizes(),
        }
        # min_margin: each venue's margin is in the objective with weight one; collateral is as posted.
        shadow: dict[str, dict[str, float]] = {"assets": {}, "venues": {p.name: 1.0 for p in problem.parts}}
        return _result(problem, "optimal", report, check, plan=plan, shadow=shadow, certificate=certificate)
    if status is SolveStatus.INFEASIBLE:
        return _infeasible(problem, report, solver)
    fallback = run(MarginProblem(problem.case, problem.objective, problem.mode, backend="generate"), solver)
    return replace(fallback, solver=replace(fallback.solver, attempts=(attempt, *fallback.solver.attempts)))


def plan_of(problem: MarginProblem) -> Plan:
    h = np.asarray(problem.h.value, dtype=float).reshape(-1) if problem.h is not None else np.zeros(0)
    allocation = {}
    for part in problem.parts:
        if part.x is not None:
            allocation[part.name] = dict(zip(part.assets, np.asarray(part.x.value, dtype=float).reshape(-1).tolist(), strict=True))
    return Plan(h, allocation)


def diagnose(case: Case, problem: MarginProblem, solver: str | None) -> tuple[tuple[str, float], ...]:
    """What is short and by how much, from the elastic problem (every constraint with a slack).

    Under scenario generation the elastic problem is generated too, round by round: its
    restricted optimum understates the margins, so the shortfalls are exact only once no
    scenario is violated at its plan."""
    backend = "generate" if problem.generation is not None else "auto"
    elastic = MarginProblem(case, problem.objective, problem.mode, elastic=True, backend=backend)
    if not elastic.slacks:
        return ()
    for rounds in range(1, MAX_ROUNDS + 1):
        report = solve(elastic.problem, elastic.problem_class, forced=solver)
        if report.status is not SolveStatus.OPTIMAL:
            return (("the elastic problem could not be solved", float("nan")),)
        gen = elastic.generation
        if gen is None or not gen.refine(positions_after(elastic, plan_of(elastic).hedges)):
            break
        if rounds == MAX_ROUNDS:
            return (("the elastic problem's scenario generation did not converge", float("nan")),)
        elastic.rebuild()
    values = {name: float(np.asarray(v.value)) for name, v in elastic.slacks.items()}
    return tuple((name, amount) for name, amount in values.items() if amount > _SHORTFALL_TOL)


def _result(problem: MarginProblem, status: str, report: SolveReport, check: Verification | None,
            shortfalls: tuple[tuple[str, float], ...] = (), plan: Plan | None = None,
            shadow: dict[str, dict[str, float]] | None = None,
            certificate: dict[str, Any] | None = None) -> OptimizationResult:
    ok = status == "optimal" and check is not None
    if ok and plan is None:
        plan = plan_of(problem)
    hedges = pd.DataFrame(columns=["venue", "instrument", "quantity", "cost"])
    allocation = pd.DataFrame(columns=["venue", "asset", "quantity", "value", "posted_before"])
    margins = pd.DataFrame(columns=["venue", "before", "after", "collateral_after", "excess_after"])
    attribution: Callable[[], pd.DataFrame] | None = None
    if ok:
        assert plan is not None and check is not None
        hedges = pd.DataFrame([
            {"venue": c.venue, "instrument": c.instrument, "quantity": float(x), "cost": c.cost_per_unit * abs(x) + c.impact * x * x}
            for c, x in zip(problem.cands, plan.hedges, strict=True)
        ], columns=hedges.columns)
        prices = problem.case.market.prices
        rows = []
        for part in problem.parts:
            units = plan.allocation.get(part.name, dict(part.book.venue.posted))
            for a, qty in units.items():
                before = part.book.venue.posted.get(a, 0.0)
                if abs(qty) > 1e-12 or before:
                    rows.append({"venue": part.name, "asset": a, "quantity": qty, "value": qty * prices[a], "posted_before": before})
        allocation = pd.DataFrame(rows, columns=allocation.columns)
        margins = pd.DataFrame([
            {"venue": o.venue, "before": o.margin_before, "after": o.margin_after, "collateral_after": o.collateral_after,
             "excess_after": o.collateral_after - o.margin_after} for o in check.venues
        ], columns=margins.columns)
        venues = check.venues
        books = [part.book for part in problem.parts]
        attribution = lambda: euler_allocation_table(books, venues)  # noqa: E731  (computed on demand)
    return OptimizationResult(
        status=status,
        objective=problem.objective,
        mode=problem.mode.value,
        objective_value=check.objective_value if ok and check is not None else None,
        hedges=hedges,
        allocation=allocation,
        margins=margins,
        shadow_prices=(shadow or _shadow_prices(problem)) if ok else {"assets": {}, "venues": {}},
        verification=check,
        solver=report,
        shortfalls=shortfalls,
        costs=check.costs if ok and check is not None else {},
        attribution_of=attribution,
        candidates=tuple(problem.cands),
        certificate=certificate,
    )


def euler_allocation_table(books: list[VenueBook], outcomes: tuple[VenueOutcome, ...]) -> pd.DataFrame:
    """Euler allocation of each venue's margin after the plan, one table for all venues."""
    venue, instrument, position, contribution = [], [], [], []
    for book, outcome in zip(books, outcomes, strict=True):
        q = outcome.positions_after
        venue += [book.venue.name] * len(q)
        instrument += list(book.ids)
        position += q.tolist()
        contribution += (q * book.initial.gradient(q)).tolist()
    return pd.DataFrame({"venue": venue, "instrument": instrument, "position": position, "contribution": contribution})


def _shadow_prices(problem: MarginProblem) -> dict[str, dict[str, float]]:
    """Objective change per unit of value of each treasury asset, and per unit of each venue's margin."""
    prices = problem.case.market.prices
    assets = {}
    for a, con in problem.inventory.items():
        dual = con.dual_value
        assets[a] = -float(dual) / prices[a] if dual is not None else 0.0
    venues = {}
    for part in problem.parts:
        if problem.objective is Objective.MIN_MARGIN:
            venues[part.name] = 1.0  # the margin is in the objective with weight one
        elif part.coverage is not None and part.coverage.dual_value is not None:
            venues[part.name] = float(part.coverage.dual_value)
    return {"assets": assets, "venues": venues}
