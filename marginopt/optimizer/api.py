"""Running an allocation problem: solve, verify, read duals, diagnose infeasibility."""

from __future__ import annotations

import numpy as np
import pandas as pd

from marginopt.models.case import Case
from marginopt.models.enums import Objective
from marginopt.optimizer.attribution import euler_allocation
from marginopt.optimizer.builder import MarginProblem, Mode
from marginopt.optimizer.result import OptimizationResult
from marginopt.optimizer.verify import Plan, Verification, verify
from marginopt.solvers import SolveReport, SolveStatus, solve

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
    problem = MarginProblem(case, obj, Mode(mode))
    return run(problem, solver)


def run(problem: MarginProblem, solver: str | None = None, warm: bool = False) -> OptimizationResult:
    """Solve a built problem (again, after ``problem.update``), verify and report."""
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
        return _result(problem, "infeasible", report, None, diagnose(problem.case, problem, solver))
    return _result(problem, "failed", report, checked.get("last"))


def plan_of(problem: MarginProblem) -> Plan:
    h = np.asarray(problem.h.value, dtype=float).reshape(-1) if problem.h is not None else np.zeros(0)
    allocation = {}
    for part in problem.parts:
        if part.x is not None:
            allocation[part.name] = dict(zip(part.assets, np.asarray(part.x.value, dtype=float).reshape(-1).tolist(), strict=True))
    return Plan(h, allocation)


def diagnose(case: Case, problem: MarginProblem, solver: str | None) -> tuple[tuple[str, float], ...]:
    """What is short and by how much, from the elastic problem (every constraint with a slack)."""
    elastic = MarginProblem(case, problem.objective, problem.mode, elastic=True)
    if not elastic.slacks:
        return ()
    report = solve(elastic.problem, elastic.problem_class, forced=solver)
    if report.status is not SolveStatus.OPTIMAL:
        return (("the elastic problem could not be solved", float("nan")),)
    values = {name: float(np.asarray(v.value)) for name, v in elastic.slacks.items()}
    return tuple((name, amount) for name, amount in values.items() if amount > _SHORTFALL_TOL)


def _result(problem: MarginProblem, status: str, report: SolveReport, check: Verification | None,
            shortfalls: tuple[tuple[str, float], ...] = ()) -> OptimizationResult:
    ok = status == "optimal" and check is not None
    plan = plan_of(problem) if ok else None
    hedges = pd.DataFrame(columns=["venue", "instrument", "quantity", "cost"])
    allocation = pd.DataFrame(columns=["venue", "asset", "quantity", "value", "posted_before"])
    margins = pd.DataFrame(columns=["venue", "before", "after", "collateral_after", "excess_after"])
    attribution = None
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
        frames = [euler_allocation(part.book, o.positions_after) for part, o in zip(problem.parts, check.venues, strict=True)]
        attribution = pd.concat(frames, ignore_index=True) if frames else None
    return OptimizationResult(
        status=status,
        objective=problem.objective,
        mode=problem.mode.value,
        objective_value=check.objective_value if ok and check is not None else None,
        hedges=hedges,
        allocation=allocation,
        margins=margins,
        shadow_prices=_shadow_prices(problem) if ok else {"assets": {}, "venues": {}},
        verification=check,
        solver=report,
        shortfalls=shortfalls,
        costs=check.costs if ok and check is not None else {},
        attribution=attribution,
        candidates=tuple(problem.cands),
    )


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
