"""The whole problem on the large-scenario solver, when it is a hedge program at heart.

With ``min_margin`` the collateral stays as posted, so the problem is

    min  sum_v IM_v(q_v + A_v h) + u'|h|   over the hedges' box, linear and net-delta limits,

and when every venue that trades a hedge has a margin that is expected shortfall, a
scenario maximum or a sum of them, that is ``solvers.scenario_lp``'s program: one term per
measure and scenario group, ``L_v`` the venue's matrix at the hedged instruments (read
through ``ColumnView``, never copied) and ``l0 = L_v q_v`` the book held. Going through cvxpy
instead holds its own and HiGHS's copies of every restricted program: 1.75x the matrix
and 5-7 s at 100,000 x 200, against the bare solver's 1.0x and 0.4 s.

Venue margins are floored at zero per group. The dual method takes ES without the floor,
which is exact whenever no term is negative at the unfloored optimum (the floored objective
is never below the unfloored one, and the two agree there); otherwise the program is
solved again with the floors on the primal LP.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from marginopt.models.margin.leaves import sum_of_leaves
from marginopt.models.margin.shortfall import ExpectedShortfall
from marginopt.optimizer.backends.base import Certificate, Solution, SolveRequest
from marginopt.optimizer.description import Description
from marginopt.optimizer.verify import Plan
from marginopt.solvers.column_view import ColumnView
from marginopt.solvers.scenario_lp import LargeResult, ScenarioLP, ScenarioTerm
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus

# A term below this at the unfloored optimum means its floor may bind: solve with floors.
NEGATIVE_TOL = 1e-9


class ScenarioBackend:
    """The problem's terms, bounds and rows for ``ScenarioLP``, rebuilt from the books at each
    solve (a market move replaces the books); the working sets carry over. The cvxpy generation
    backend takes over when it fails or its plan does not verify."""

    name: ClassVar[str] = "scenario"
    fallback: ClassVar[str | None] = "generate"
    problem_class = ProblemClass.LP

    def __init__(self, problem: Description) -> None:
        t0 = time.perf_counter()
        self.problem = problem
        self.lp: ScenarioLP | None = None
        self.floor = False
        self.venues: list[str] = []  # the venue of each term of ``lp``
        self.build_seconds = time.perf_counter() - t0

    @classmethod
    def why_not(cls, problem: Description) -> str | None:
        """Why the problem cannot go to the large-scenario solver, or None when it can."""
        if "margin" not in problem.kind.terms or problem.collateral_free:
            return f"the objective is {problem.objective.value}: collateral is a variable (only min_margin hedges go here)"
        if not problem.cands:
            return "no hedge is traded"
        if problem.impacts.any():
            return "a hedge has a quadratic impact cost"
        if problem.case.limits.max_loss is not None:
            return "a max_loss limit is a scenario maximum over the whole book"
        for v in problem.venues:
            if v.cands and sum_of_leaves(v.measure) is None:
                return f"venue {v.name}'s margin is not expected shortfall or a scenario maximum (or a sum of them)"
        return None

    def update(self, problem: Description) -> None:
        t0 = time.perf_counter()
        self.problem = problem  # the books are read at each solve
        self.build_seconds = time.perf_counter() - t0

    def terms(self, floor: bool) -> list[ScenarioTerm]:
        out, self.venues = [], []
        for part in self.problem.venues:
            if not part.cands:
                continue
            book = part.book
            book_cols = part.cand_columns
            cols = np.array(part.cands)
            for leaf in sum_of_leaves(part.measure) or []:
                losses = leaf.losses
                held = losses.losses(book.q)
                for k, g in enumerate(losses.groups()):
                    view = ColumnView(losses.matrix[g], book_cols)
                    name = f"{part.name}:{leaf.name}:{losses.group_names[k]}"
                    if isinstance(leaf, ExpectedShortfall):
                        term = ScenarioTerm("es", view, cols, held[g], leaf.probs[k], leaf.alpha,  # type: ignore[arg-type]
                                            floor=floor, name=name)
                    else:
                        term = ScenarioTerm("max", view, cols, held[g], losses.weights[g], name=name)  # type: ignore[arg-type]
                    out.append(term)
                    self.venues.append(part.name)
        return out

    def relaxation(self) -> LargeResult:
        """The solver's result (again; with the floors on if a term is negative at the unfloored
        optimum): the plan, its exact objective over the terms and the lower bound. The terms
        solved are ``self.lp.terms``."""
        res = self._solve(self.floor)
        if res.status is SolveStatus.OPTIMAL and not self.floor and min(res.term_values, default=0.0) < -NEGATIVE_TOL:
            self.floor = True
            res = self._solve(True)
        return res

    def solve(self, request: SolveRequest) -> Solution:
        """Solve (``relaxation``) and verify."""
        res = self.relaxation()
        assert self.lp is not None
        seconds = res.seconds.get("total", 0.0)
        note = f"large-scenario solver ({self.lp.method} LP), {res.iterations} rounds"
        # Unbounded is a numerical failure here: every margin problem is bounded below.
        status: SolveStatus = res.status if res.status in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE) else SolveStatus.ERROR
        plan = check = certificate = None
        if status is SolveStatus.OPTIMAL:
            plan = Plan(res.h, {})
            check = request.check(plan) if request.check is not None else None
            if check is not None and not check.passed:
                status = SolveStatus.INACCURATE
                note += "; verification: " + "; ".join(c.name for c in check.failures[:3])
            elif check is not None:
                gap = max(res.gap, 0.0)
                certificate = Certificate(f"scenario generation on the {self.lp.method} LP", res.iterations, True,
                                          check.objective_value - gap, gap, self.sizes())
        attempt = Attempt("SCENARIO", status, seconds, note)
        report = SolveReport("SCENARIO", status, ProblemClass.LP, self.build_seconds, seconds, (attempt,), res.iterations, request.warm)
        # min_margin: each venue's margin is in the objective with weight one; collateral is as posted.
        shadow = {"assets": {}, "venues": {v.name: self.problem.kind.venue_weight or 1.0 for v in self.problem.venues}}
        return Solution(status, report, plan, check, certificate, shadow if status is SolveStatus.OPTIMAL else None)

    def _solve(self, floor: bool) -> LargeResult:
        p = self.problem
        terms = self.terms(floor)
        lp = ScenarioLP(terms, p.lower, p.upper, p.unit_costs, p.limit_rows())
        if self.lp is not None and len(self.lp.working) == len(terms):
            lp.working = self.lp.working  # a re-solve after a market move starts from the last working sets
        self.lp = lp
        return lp.solve()

    def sizes(self) -> dict[str, int]:
        """Scenarios in the final program, per venue."""
        out: dict[str, int] = {}
        if self.lp is not None:
            for venue, w in zip(self.venues, self.lp.working, strict=True):
                out[venue] = out.get(venue, 0) + len(w)
        return out
