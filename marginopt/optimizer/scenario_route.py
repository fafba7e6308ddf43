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

from dataclasses import dataclass

import numpy as np

from marginopt.models.enums import Objective
from marginopt.models.margin import Measure
from marginopt.models.margin.composite import SumMeasure
from marginopt.models.margin.scenario_max import ScenarioMax
from marginopt.models.margin.shortfall import ExpectedShortfall
from marginopt.optimizer.builder import MarginProblem
from marginopt.solvers.column_view import ColumnView
from marginopt.solvers.scenario_lp import LargeResult, ScenarioLP, ScenarioTerm

# A term below this at the unfloored optimum means its floor may bind: solve with floors.
NEGATIVE_TOL = 1e-9


def leaves(measure: Measure) -> list[ExpectedShortfall | ScenarioMax] | None:
    """The ES and scenario-maximum terms a margin sums, or None if it is anything else."""
    if isinstance(measure, (ExpectedShortfall, ScenarioMax)):
        return [measure]
    if isinstance(measure, SumMeasure):
        out: list[ExpectedShortfall | ScenarioMax] = []
        for t in measure.terms:
            sub = leaves(t)
            if sub is None:
                return None
            out += sub
        return out
    return None


def why_not(problem: MarginProblem) -> str | None:
    """Why the problem cannot go to the large-scenario solver, or None when it can."""
    if problem.elastic:
        return "the infeasibility diagnosis has a slack per constraint"
    if problem.objective is not Objective.MIN_MARGIN:
        return "the objective is not min_margin (collateral is a variable)"
    if not problem.cands:
        return "no hedge is traded"
    if any(c.impact > 0 for c in problem.cands):
        return "a hedge has a quadratic impact cost"
    if problem.case.limits.max_loss is not None:
        return "a max_loss limit is a scenario maximum over the whole book"
    for part in problem.parts:
        if part.cands and leaves(part.full_measure or part.measure) is None:
            return f"venue {part.name}'s margin is not expected shortfall or a scenario maximum (or a sum of them)"
    return None


def limit_rows(problem: MarginProblem, net_delta: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The case's linear limits (and net-delta limits, the held book's delta moving their bounds)
    as rows ``lower <= A h <= upper`` on the hedges."""
    cands, limits = problem.cands, problem.case.limits
    rows, lo, hi = [], [], []
    for lin in limits.linear:
        rows.append([lin.coefficients.get(c.instrument, 0.0) for c in cands])
        lo.append(-np.inf if lin.lower is None else lin.lower)
        hi.append(np.inf if lin.upper is None else lin.upper)
    for u, (low, high) in (limits.net_delta.items() if net_delta else ()):
        coef, held, touched = np.zeros(len(cands)), 0.0, False
        for part in problem.parts:
            inp = part.book.inputs
            if u not in inp.underlyings:
                continue
            touched = True
            delta = inp.delta_matrix()[inp.underlyings.index(u)]
            held += float(delta @ part.book.q)
            for i in part.cands:
                coef[i] += delta[part.book.column(cands[i].instrument)]
        if touched:
            rows.append(coef.tolist())
            lo.append(low - held)
            hi.append(high - held)
    if not rows:
        return None
    return np.array(rows, dtype=float), np.array(lo, dtype=float), np.array(hi, dtype=float)


@dataclass
class ScenarioRoute:
    """The problem's terms, bounds and rows for ``ScenarioLP``, rebuilt from the books at each
    solve (a market move replaces the books); the working sets carry over."""

    problem: MarginProblem
    lp: ScenarioLP | None = None
    floor: bool = False
    venues: list[str] | None = None  # the venue of each term of ``lp``

    def terms(self, floor: bool) -> list[ScenarioTerm]:
        cands = self.problem.cands
        out, self.venues = [], []
        for part in self.problem.parts:
            if not part.cands:
                continue
            book = part.book
            book_cols = np.array([book.column(cands[i].instrument) for i in part.cands])
            cols = np.array(part.cands)
            for leaf in leaves(part.full_measure or part.measure) or []:
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

    def solve(self) -> LargeResult:
        """Solve (again); with the floors on if a term is negative at the unfloored optimum."""
        result = self._solve(self.floor)
        if result.status == "optimal" and not self.floor and min(result.term_values, default=0.0) < -NEGATIVE_TOL:
            self.floor = True
            result = self._solve(True)
        return result

    def _solve(self, floor: bool) -> LargeResult:
        cands = self.problem.cands
        terms = self.terms(floor)
        lp = ScenarioLP(terms, np.array([-c.max_sell for c in cands]), np.array([c.max_buy for c in cands]),
                        np.array([c.cost_per_unit for c in cands]), limit_rows(self.problem))
        if self.lp is not None and len(self.lp.working) == len(terms):
            lp.working = self.lp.working  # a re-solve after a market move starts from the last working sets
        self.lp = lp
        return lp.solve()

    def sizes(self) -> dict[str, int]:
        """Scenarios in the final program, per venue."""
        out: dict[str, int] = {}
        if self.lp is not None and self.venues is not None:
            for venue, w in zip(self.venues, self.lp.working, strict=True):
                out[venue] = out.get(venue, 0) + len(w)
        return out
