"""Scenario generation inside the whole allocation problem (venues, collateral, limits).

A venue whose margin is expected shortfall or a scenario maximum over many scenarios
would put every scenario into the program (one variable and one row each, and cvxpy's
copy of the matrix). Here each such measure is **restricted** to a working set of
scenarios per group: dropping scenarios from an ES or a maximum can only lower it, so
the restricted problem is a relaxation and its optimum a lower bound. At its plan the
full measures are evaluated (one pass over each matrix); scenarios above the VaR level
(ES) or above the maximum join the working set and the problem is solved again. When
none does, the restricted margins equal the full ones at the plan, so the plan is
feasible for the full problem and optimal; the result carries the lower bound and gap.

The bare-hedge fast path for one ES or maximum over a large matrix is
``solvers.scenario_lp``; this module is the general one, built on the cvxpy builder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cvxpy as cp
import numpy as np

from marginopt.models.margin import Measure
from marginopt.models.margin.base import CvxForm
from marginopt.models.margin.columns import reduced_positions
from marginopt.models.margin.composite import Composite
from marginopt.models.margin.scenario_max import ScenarioMax
from marginopt.models.margin.shortfall import ExpectedShortfall
from marginopt.optimizer.scenario_route import limit_rows
from marginopt.optimizer.verify import positions_after
from marginopt.solvers.scenario_lp import add_size, largest, seed_size, violated
from marginopt.solvers.scenario_start import minimize_second_moment, second_moment
from marginopt.typing import FloatArray

if TYPE_CHECKING:
    from marginopt.optimizer.builder import MarginProblem
    from marginopt.optimizer.verify import Verification

# A measure with at least this many scenarios makes ``auto`` choose generation.
LARGE_SCENARIOS = 20_000
# A scenario is violated when its loss exceeds the level by more than this, relative to
# the largest loss: interior-point solvers return the level to about 1e-8.
VIOLATION_TOL = 1e-7


def scenario_leaves(measure: Measure) -> list[ExpectedShortfall | ScenarioMax]:
    if isinstance(measure, (ExpectedShortfall, ScenarioMax)):
        return [measure]
    if isinstance(measure, Composite):
        return [leaf for t in measure.terms for leaf in scenario_leaves(t)]
    return []


def largest_scenario_set(problem_measures: list[Measure]) -> int:
    return max((leaf.losses.shape[0] for m in problem_measures for leaf in scenario_leaves(m)), default=0)


class Restricted(Measure):
    """An ES or scenario-maximum measure whose cvxpy form uses only ``working[k]`` of group k.

    ``evaluate``, ``gradient`` and ``components`` are the full measure's: verification and
    reports never see the restriction."""

    def __init__(self, full: ExpectedShortfall | ScenarioMax, working: list[np.ndarray]) -> None:
        self.full, self.name, self.working = full, full.name, working
        self.levels: list[cp.Variable] = []  # ES: the VaR variable of each group
        self.values: list[cp.Expression] = []  # each group's restricted value

    def evaluate(self, q: FloatArray) -> float:
        return self.full.evaluate(q)

    def gradient(self, q: FloatArray) -> FloatArray:
        return self.full.gradient(q)

    def components(self, q: FloatArray) -> dict[str, float]:
        return self.full.components(q)

    def worst_scenario(self, q: FloatArray) -> tuple[str, float] | None:
        return self.full.worst_scenario(q)

    def arrays(self) -> dict[str, FloatArray]:
        losses = self.full.losses
        out = {}
        for k, (g, rows) in enumerate(zip(losses.groups(), self.working, strict=True)):
            block = losses.matrix[g][rows]  # the working set's rows only
            out[f"l{k}"] = block if isinstance(self.full, ExpectedShortfall) else losses.weights[g][rows, None] * block
        return out

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        # Constants, not parameters: the program is compiled again whenever a working set grows or
        # the market moves, so a parameter saves nothing, and cvxpy's parametric form of a (W x J)
        # matrix times the positions asked 6 GiB at 400,000 Monte Carlo scenarios.
        arrays = self.arrays()
        self.levels, self.values = [], []
        for k, rows in enumerate(self.working):
            if isinstance(self.full, ExpectedShortfall):
                c = cp.Variable(name=f"{self.name}.var{k}")
                self.levels.append(c)
                p = self.full.probs[k][rows]
                self.values.append(c + (p / self.full.beta) @ cp.pos(arrays[f"l{k}"] @ q - c))
            else:
                self.values.append(cp.max(arrays[f"l{k}"] @ q))
        terms = [cp.pos(v) for v in self.values]
        return cp.sum(cp.hstack(terms)) if len(terms) > 1 else terms[0], []


@dataclass
class Generation:
    """Working sets per venue and scenario measure, kept across the rounds (and a market move)."""

    working: dict[tuple[str, int], list[np.ndarray]] = field(default_factory=dict)
    restricted: dict[tuple[str, int], Restricted] = field(default_factory=dict)
    rounds: int = 0
    added: list[int] = field(default_factory=list)
    starts: dict[str, FloatArray] = field(default_factory=dict)  # venue -> positions the first sets are taken at
    # venue -> the hedged columns its measures are on (``Measure.on_columns``): positions are then [q_C, 1]
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def _at(self, venue: str, q: FloatArray) -> FloatArray:
        """A venue's positions as its restricted measures take them."""
        return reduced_positions(q, self.columns[venue]) if venue in self.columns else q

    def restrict(self, venue: str, measure: Measure, q: FloatArray, n_hedges: int) -> Measure:
        """``measure`` with every ES and scenario-maximum leaf restricted; first working sets are
        the worst scenarios at the venue's start (``start_positions``), else at the book held now."""
        counter = [0]
        q = self._at(venue, self.starts.get(venue, q))

        def walk(m: Measure) -> Measure:
            if isinstance(m, (ExpectedShortfall, ScenarioMax)):
                key = (venue, counter[0])
                counter[0] += 1
                if key not in self.working:
                    self.working[key] = [_seed(m, g, q, n_hedges) for g in m.losses.groups()]
                self.restricted[key] = r = Restricted(m, self.working[key])
                return r
            if isinstance(m, Composite):
                return type(m)(m.name, [walk(t) for t in m.terms])
            return m

        return walk(measure)

    def refine(self, positions: dict[str, FloatArray]) -> int:
        """Add the scenarios violated at the plan (venue -> positions after it); how many."""
        total = 0
        for (venue, _), r in self.restricted.items():
            if venue not in positions:
                continue
            loss = r.full.losses.losses(self._at(venue, positions[venue]))
            kind, alpha = _kind(r.full)
            for k, g in enumerate(r.full.losses.groups()):
                lg = loss[g]
                if isinstance(r.full, ExpectedShortfall):
                    excess = lg - float(np.asarray(r.levels[k].value))
                else:
                    weighted = r.full.losses.weights[g] * lg
                    excess = weighted - float(np.max(weighted[r.working[k]]))
                in_program = np.zeros(len(lg), dtype=bool)
                in_program[r.working[k]] = True
                viol = violated(excess, lg, in_program, VIOLATION_TOL, add_size(kind, alpha, len(lg)))
                if viol.size:
                    r.working[k] = np.union1d(r.working[k], viol)
                    total += viol.size
        self.rounds += 1
        self.added.append(total)
        return total

    def gap(self, problem: MarginProblem, check: Verification) -> float:
        """Full less restricted margin at the verified plan, summed where margins are in the objective."""
        from marginopt.models.enums import Objective

        if problem.objective is not Objective.MIN_MARGIN:
            return 0.0
        after = {o.venue: o.margin_after for o in check.venues}
        gap = sum(after[part.name] - float(np.asarray(part.im.value)) for part in problem.parts
                  if part.position is not None and part.im is not None)
        return max(gap, 0.0)

    def sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (venue, _), r in self.restricted.items():
            out[venue] = out.get(venue, 0) + sum(len(w) for w in r.working)
        return out


def start_positions(problem: MarginProblem) -> dict[str, FloatArray]:
    """Each venue's positions after the hedge minimizing the second moment of its scenario losses
    (``solvers.scenario_start``) within the hedges' bounds and the linear limits: the first working
    sets are the worst scenarios there, far closer to the optimum's tail than at the book held now."""
    cands = problem.cands
    k = len(cands)
    if k == 0:
        return {}
    g, b = np.zeros((k, k)), np.zeros(k)
    used = False
    for part in problem.parts:
        if not part.cands:
            continue
        measure = part.full_measure or part.measure
        cols = np.array(part.cands)
        book_cols = np.array([part.book.column(cands[i].instrument) for i in part.cands])
        for leaf in scenario_leaves(measure):
            losses = leaf.losses
            held = losses.losses(part.book.q)
            for grp in losses.groups():
                matrix = losses.matrix[grp]
                probs = losses.weights[grp] if isinstance(leaf, ExpectedShortfall) else np.ones(grp.stop - grp.start)
                gl, bl = second_moment(_rows_of(matrix, book_cols), held[grp], probs, cols, k)
                g += gl
                b += bl
                used = True
    if not used:
        return {}
    lb = np.array([-c.max_sell for c in cands])
    ub = np.array([c.max_buy for c in cands])
    linear = limit_rows(problem, net_delta=False)
    after = positions_after(problem, minimize_second_moment(g, b, lb, ub, linear))
    return {part.name: after[part.name] for part in problem.parts if part.cands}


def _rows_of(matrix: FloatArray, cols: np.ndarray) -> Callable[[np.ndarray], FloatArray]:
    """Rows of ``matrix`` at columns ``cols``, gathered per call (never a column slice of it all)."""
    return lambda rows: matrix[rows][:, cols]


def _kind(m: ExpectedShortfall | ScenarioMax) -> tuple[str, float]:
    """The measure as ``solvers.scenario_lp`` names it: kind and alpha."""
    return ("es", m.alpha) if isinstance(m, ExpectedShortfall) else ("max", 0.0)


def _seed(m: ExpectedShortfall | ScenarioMax, g: slice, q: FloatArray, n_hedges: int) -> np.ndarray:
    loss = m.losses.losses(q)[g]
    kind, alpha = _kind(m)
    key = loss if kind == "es" else m.losses.weights[g] * loss
    return largest(key, seed_size(kind, alpha, len(loss), n_hedges))
