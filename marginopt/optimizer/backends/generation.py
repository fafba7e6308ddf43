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
``solvers.scenario_lp`` (``backends/scenario_route.py``); this backend is the general one,
the cvxpy program (``backends/cvxpy_program.py``) with restricted measures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar

import cvxpy as cp
import numpy as np

from marginopt.models.margin import Measure
from marginopt.models.margin.columns import Folded, reduce_rows
from marginopt.models.margin.composite import Composite
from marginopt.models.margin.leaves import scenario_leaves
from marginopt.models.margin.scenario_max import ScenarioMax
from marginopt.models.margin.shortfall import ExpectedShortfall
from marginopt.models.scenarios import ScenarioLosses
from marginopt.optimizer.backends.base import Certificate, Solution, SolveRequest
from marginopt.optimizer.backends.cvxpy_program import CvxpyBackend
from marginopt.optimizer.backends.in_program import BAND, BAND_MAX, CutModel, Restricted, ShortfallCuts, take_cut
from marginopt.optimizer.description import Description, Venue
from marginopt.optimizer.verify import Verification
from marginopt.solvers.run import solve
from marginopt.solvers.scenario_lp import add_size, largest, seed_size, violated
from marginopt.solvers.scenario_start import minimize_second_moment, second_moment
from marginopt.solvers.status import Attempt, SolveStatus
from marginopt.typing import FloatArray

MAX_ROUNDS = 60
# A restricted program carries a dense block of scenarios x hedges, where HiGHS's interior point
# (with its crossover to a vertex, so duals stay exact) beat its dual simplex: marginopt case at
# 100,000 x 200 15.1 -> 7.9 s, the same at 20,000 x 100.
GENERATION_OPTIONS = {"HIGHS": {"highs_options": {"solver": "ipm"}}}
# A scenario is violated when its loss exceeds the level by more than this, relative to
# the largest loss: interior-point solvers return the level to about 1e-8.
VIOLATION_TOL = 1e-7
# An expected shortfall goes into the program as cuts (``ShortfallCuts``) where its tail is large and
# its columns (its venue's hedged columns and the held book's) few, else as a working set (``Restricted``).
# A working set grows by a whole tail a round: the 400,000-scenario demo's cme_es (4,000 scenarios a
# tail, 5 columns) held 39,719 scenarios after 10 rounds, 130 MiB above the warmed process, against 60
# MiB and 3x faster as 33 rounds of cuts. But a cutting plane closes in slowly: as cuts, 20,000 scenarios
# x 4 hedges (a tail of 200) took 58 rounds and x 8, 16 or 32 did not converge in 60, where their working
# sets take 1-2 rounds and 330 scenarios.
CUT_COLUMNS = 8
_BLOCK = 1 << 15  # scenarios of a max_loss set read at a time
CUT_TAIL = 1000  # scenarios in a tail (beta n); below it a working set stays small
# The safety net: a measure whose cuts still miss its ES after this many rounds goes to a working set,
# seeded with the tail at the last plan and the band's width of scenarios after it (every tail a cut saw
# was 43,137 scenarios, 146 MiB above the warmed process, on the 400,000-scenario demo); the rounds' limit
# is then MAX_ROUNDS more. With cuts alone the demo took 22 to 60 rounds at 100,000 and 400,000 scenarios
# (a cutting plane's last digits: the same case took 33 or 51 as the ES's sum was ordered one way or
# another); with the band (``in_program.Band``) 19 to 21.
CUT_ROUNDS = 60
# The cuts hold an ES when the full ES at the plan exceeds the largest cut there by no more than this,
# relative to the ES: below verification's 1e-8 (verify.REL_TOL). (A working set's tolerance, 1e-7 of
# the largest loss, left the demo's cme_es 9e-4 USD above its collateral, which verification refused.)
CUT_TOL = 1e-9
# A band (``in_program.Band``) moves to the plan, and the program is assembled again, once the model misses
# the ES there by no more than this (relative, as ``CUT_TOL``): before, the plans jump further than a band
# reaches, and cuts alone are loaded into the program as it is. The demo's optimize at 400,000 scenarios:
# 19-24 rounds at 1e-2, 1e-1 or 1 (with bands of 1,024 scenarios either side).
SETTLE = 1e-2


def uses_cuts(m: ExpectedShortfall, fold: Folded | None = None) -> bool:
    """Whether an ES goes into the program as cuts: on at most ``CUT_COLUMNS`` columns (the hedged
    columns and the rest of the book's, where ``fold``), with a group whose tail holds ``CUT_TAIL``
    scenarios or more."""
    tail = max((m.beta * (g.stop - g.start) for g in m.losses.groups()), default=0.0)
    columns = int(m.losses.matrix.shape[1]) if fold is None else len(fold.cols) + 1
    return columns <= CUT_COLUMNS and tail >= CUT_TAIL


@dataclass
class Generation:
    """Working sets per venue and scenario measure, and the cuts of each expected shortfall on few
    columns, kept across the rounds (a market move takes the cuts again: they are the old matrices')."""

    working: dict[tuple[str, int], list[np.ndarray]] = field(default_factory=dict)
    scales: dict[tuple[str, int], float] = field(default_factory=dict)  # each measure's ``loss_scale`` at its start
    restricted: dict[tuple[str, int], Restricted | ShortfallCuts] = field(default_factory=dict)
    cuts: dict[tuple[str, int], list[CutModel]] = field(default_factory=dict)  # per group: cuts and band
    cut_rounds: dict[tuple[str, int], int] = field(default_factory=dict)  # rounds each measure has been on cuts
    fell_back: set[tuple[str, int]] = field(default_factory=set)  # measures moved from cuts to working sets
    plans: dict[str, FloatArray] = field(default_factory=dict)  # venue -> positions at the last plan
    stale: bool = False  # the last ``refine`` changed what only compiling the program again can hold
    rounds: int = 0
    added: list[int] = field(default_factory=list)
    starts: dict[str, FloatArray] = field(default_factory=dict)  # venue -> positions the first sets are taken at
    # venue -> the map to the hedged columns its program holds (positions [q_C, 1]); absent: the whole book
    folds: dict[str, Folded] = field(default_factory=dict)
    max_loss: np.ndarray | None = None  # the max_loss limit's working set (scenarios of the whole book's set)

    def _at(self, venue: str, q: FloatArray) -> FloatArray:
        """A venue's positions as its program holds them."""
        return self.folds[venue].positions(q) if venue in self.folds else q

    def restrict(self, venue: str, measure: Measure, q: FloatArray, n_hedges: int, fold: Folded | None = None) -> Measure:
        """``measure`` with every ES and scenario-maximum leaf restricted; first working sets are the
        worst scenarios at the venue's start (``start_positions``), else at the book held now ``q``. With
        ``fold`` the program holds the venue on its hedged columns: ``measure``'s other leaves are on them
        already (``folded``), and the restricted leaves take their rows and cuts through it."""
        counter = [0]
        q = self.starts.get(venue, q)
        if fold is None:
            self.folds.pop(venue, None)
        else:
            self.folds[venue] = fold

        def walk(m: Measure) -> Measure:
            if isinstance(m, ExpectedShortfall) and uses_cuts(m, fold) and (venue, counter[0]) not in self.fell_back:
                key = (venue, counter[0])
                counter[0] += 1
                if key not in self.scales:
                    self.scales[key] = loss_scale(m, q)
                if key not in self.cuts:
                    # The start's cut, and after a market move the last plan's, with the band there.
                    at = [q] + ([self.plans[venue]] if venue in self.plans else [])
                    self.cuts[key] = []
                    for k in range(len(m.losses.groups())):
                        taken = [take_cut(m, k, p, fold) for p in at]
                        last = taken[-1]
                        self.cuts[key].append(CutModel([t.cut for t in taken], last.band(m, k, BAND, fold),
                                                       last.order))
                    self.cut_rounds[key] = 0
                self.restricted[key] = cut = ShortfallCuts(m, self.cuts[key], self.scales[key], fold)
                return cut
            if isinstance(m, (ExpectedShortfall, ScenarioMax)):
                key = (venue, counter[0])
                counter[0] += 1
                if key not in self.working:
                    self.working[key] = [_seed(m, g, q, n_hedges) for g in m.losses.groups()]
                if key not in self.scales:
                    self.scales[key] = loss_scale(m, q)
                self.restricted[key] = r = Restricted(m, self.working[key], self.scales[key], fold)
                return r
            if isinstance(m, Composite):
                return type(m)(m.name, [walk(t) for t in m.terms])
            return m

        return walk(measure)

    def refine(self, positions: dict[str, FloatArray], whole: tuple[ScenarioLosses, FloatArray] | None = None) -> int:
        """Add the scenarios violated at the plan (venue -> positions after it; ``whole``: the max_loss
        limit's losses and the whole book after it); how many. ``stale`` says whether the program must be
        assembled again (a working set grew, cuts outgrew their slots or went to a working set, a band
        moved), else the cuts added are in its parameters already."""
        total = 0
        self.stale = False
        if whole is not None and self.max_loss is not None:
            viol = worse_than_held(*whole, self.max_loss)
            if viol.size:
                self.max_loss = np.union1d(self.max_loss, viol)
                total += viol.size
                self.stale = True
        self.plans.update(positions)
        for key, r in self.restricted.items():
            venue = key[0]
            if venue not in positions:
                continue
            if isinstance(r, ShortfallCuts):
                added, moved = self._cut(key, r, positions[venue])
                total += added
                if moved or (added and not r.refresh()):
                    self.stale = True
                continue
            loss = r.full.losses.losses(positions[venue])
            kind, alpha = _kind(r.full)
            for k, g in enumerate(r.full.losses.groups()):
                lg = loss[g]
                if isinstance(r.full, ExpectedShortfall):
                    level = r.levels[k].value
                    if level is None:
                        # The margin is in no row and not in the objective (the elastic min_margin program
                        # weighs only the slacks): its working set cannot change the program's answer.
                        continue
                    excess = lg - float(np.asarray(level))
                else:
                    weighted = r.full.losses.weights[g] * lg
                    excess = weighted - float(np.max(weighted[r.working[k]]))
                in_program = np.zeros(len(lg), dtype=bool)
                in_program[r.working[k]] = True
                viol = violated(excess, lg, in_program, VIOLATION_TOL, add_size(kind, alpha, len(lg)))
                if viol.size:
                    r.working[k] = np.union1d(r.working[k], viol)
                    total += viol.size
                    self.stale = True
        self.rounds += 1
        self.added.append(total)
        return total

    def max_rounds(self) -> int:
        """The rounds' limit: ``MAX_ROUNDS``, and ``CUT_ROUNDS`` more where a measure is on cuts."""
        return MAX_ROUNDS + (CUT_ROUNDS if self.cut_rounds else 0)

    def _cut(self, key: tuple[str, int], r: ShortfallCuts, q: FloatArray) -> tuple[int, bool]:
        """Where the model (cuts and band) misses a group's ES at the plan (the book's positions after it:
        ``q``), add the cut there, and move the band there once the miss is within ``SETTLE``; how many
        cuts were added and whether a band moved. After ``CUT_ROUNDS`` rounds that still add cuts the
        measure goes to a working set: the tail at the last plan and the ``BAND`` scenarios after it (the
        rows it adds are counted, so the rounds go on)."""
        added, moved = 0, False
        at = self._at(key[0], q)
        for k, model in enumerate(r.models):
            if r.variables[k].value is None:
                continue  # in no row of the objective's reach (the elastic min_margin program): nothing to refine
            taken = take_cut(r.full, k, q, r.fold, below=model.width)
            model.seen = taken.order
            # The model's ES at the plan, not the program's level: below zero the floor leaves the level
            # free, and the level carries the solver's tolerance.
            miss, unit = taken.es - model.value(at), max(1.0, abs(taken.es), 1e-6 * taken.size)
            if miss > CUT_TOL * unit:
                model.cuts.append(taken.cut)
                added += 1
                if miss <= SETTLE * unit:
                    if model.placed and model.width < BAND_MAX:  # placed at a settled plan, the band did not reach this one
                        model.width *= 2
                        taken = take_cut(r.full, k, q, r.fold, below=model.width)
                    model.band, model.placed, moved = taken.band(r.full, k, model.width, r.fold), True, True
        if added:
            self.cut_rounds[key] += 1
            if self.cut_rounds[key] >= CUT_ROUNDS:
                self.fell_back.add(key)
                self.working[key] = [np.sort(model.seen).astype(np.intp) for model in r.models]
                return sum(len(w) for w in self.working[key]), True
        return added, moved

    def sizes(self) -> dict[str, int]:
        """Working-set scenarios in the last program, per venue (a venue on cuts alone: 0), and the
        max_loss limit's (``max_loss``) where it has one."""
        out: dict[str, int] = {}
        for (venue, _), r in self.restricted.items():
            out[venue] = out.get(venue, 0) + (sum(len(w) for w in r.working) if isinstance(r, Restricted) else 0)
        if self.max_loss is not None:
            out["max_loss"] = len(self.max_loss)
        return out

    def cut_sizes(self) -> dict[str, int]:
        """Expected shortfall's cuts in the last program, per venue that has any."""
        out: dict[str, int] = {}
        for (venue, _), r in self.restricted.items():
            if isinstance(r, ShortfallCuts):
                out[venue] = out.get(venue, 0) + sum(len(c) for c in r.cuts)
        return out


def folded(measure: Measure, cols: np.ndarray, q0: FloatArray) -> Measure | None:
    """``measure.on_columns(cols, q0)`` but for its ES and scenario-maximum leaves, which stay on the
    whole book (``Restricted`` and ``ShortfallCuts`` fold what they read); None where a leaf cannot be."""
    if isinstance(measure, (ExpectedShortfall, ScenarioMax)):
        return measure
    if isinstance(measure, Composite):
        terms = [folded(t, cols, q0) for t in measure.terms]
        return None if any(t is None for t in terms) else type(measure)(measure.name, terms)  # type: ignore[arg-type]
    return measure.on_columns(cols, q0)


def largest_weighted(losses: ScenarioLosses, q: FloatArray, k: int) -> np.ndarray:
    """The ``k`` scenarios with the largest weighted loss ``w_s (L q)_s`` (in index order), read block by block."""
    rows, values = np.empty(0, dtype=np.intp), np.empty(0)
    for lo in range(0, losses.shape[0], _BLOCK):
        block = losses.weights[lo:lo + _BLOCK] * (losses.matrix[lo:lo + _BLOCK] @ q)
        rows, values = np.concatenate([rows, np.arange(lo, lo + len(block))]), np.concatenate([values, block])
        if len(values) > k:
            keep = np.argpartition(-values, k - 1)[:k]
            rows, values = rows[keep], values[keep]
    return np.sort(rows)


def worse_than_held(losses: ScenarioLosses, q: FloatArray, held: np.ndarray) -> np.ndarray:
    """Scenarios outside ``held`` whose weighted loss at ``q`` exceeds the largest of ``held``'s by more than
    ``VIOLATION_TOL`` of the largest loss, the worst ``add_size("max")`` of them; read block by block."""
    level = float(np.max(losses.weights[held] * (losses.matrix[held] @ q)))
    rows, values, size = np.empty(0, dtype=np.intp), np.empty(0), 0.0
    for lo in range(0, losses.shape[0], _BLOCK):
        block = losses.weights[lo:lo + _BLOCK] * (losses.matrix[lo:lo + _BLOCK] @ q)
        size = max(size, float(np.abs(block).max(initial=0.0)))
        above = np.flatnonzero(block > level)
        rows, values = np.concatenate([rows, above + lo]), np.concatenate([values, block[above]])
    out = ~np.isin(rows, held) & (values > level + VIOLATION_TOL * max(1.0, size))
    rows, values = rows[out], values[out]
    cap = add_size("max", 0.0, losses.shape[0])
    return np.sort(rows[np.argpartition(-values, cap - 1)[:cap]] if len(rows) > cap else rows)


def start_positions(problem: Description) -> dict[str, FloatArray]:
    """Each venue's positions after the hedge minimizing the second moment of its scenario losses
    (``solvers.scenario_start``) within the hedges' bounds and the linear limits: the first working
    sets are the worst scenarios there, far closer to the optimum's tail than at the book held now."""
    cands = problem.cands
    k = len(cands)
    if k == 0:
        return {}
    g, b = np.zeros((k, k)), np.zeros(k)
    used = False
    for part in problem.venues:
        if not part.cands:
            continue
        cols = np.array(part.cands)
        book_cols = part.cand_columns
        for leaf in scenario_leaves(part.measure):
            losses = leaf.losses
            for grp in losses.groups():
                n = grp.stop - grp.start
                probs = losses.weights[grp] if isinstance(leaf, ExpectedShortfall) else np.broadcast_to(1.0, (n,))
                gl, bl = second_moment(_rows_of(losses.matrix[grp], book_cols, part.book.q), n, probs, cols, k)
                g += gl
                b += bl
                used = True
    if not used:
        return {}
    linear = problem.limit_rows(net_delta=False)
    after = problem.positions_after(minimize_second_moment(g, b, problem.lower, problem.upper, linear))
    return {part.name: after[part.name] for part in problem.venues if part.cands}


def _rows_of(matrix: FloatArray, cols: np.ndarray, q: FloatArray) -> Callable[[np.ndarray], tuple[FloatArray, FloatArray]]:
    """Rows of ``matrix`` at columns ``cols`` and the losses of ``q`` there, gathered per call (never a
    column slice of it all, nor the loss vector over every scenario)."""
    def read(rows: np.ndarray) -> tuple[FloatArray, FloatArray]:
        block = matrix[rows]
        return block[:, cols], block @ q
    return read


def _release(problem: cp.Problem | None) -> None:
    """Drop the solver instance cvxpy keeps in ``problem`` for a warm start (never used here: each
    round's program is compiled anew), with its factorization; the solution stays on the variables."""
    cache = getattr(problem, "_solver_cache", None)
    if isinstance(cache, dict):
        cache.clear()


def _kind(m: ExpectedShortfall | ScenarioMax) -> tuple[str, float]:
    """The measure as ``solvers.scenario_lp`` names it: kind and alpha."""
    return ("es", m.alpha) if isinstance(m, ExpectedShortfall) else ("max", 0.0)


def loss_scale(m: ExpectedShortfall | ScenarioMax, q: FloatArray) -> float:
    """The largest scenario loss (in absolute value, base currency) at positions ``q``, at least 1:
    the unit a restricted ES is written in, so that its rows and variables are of order one.
    Taken once, at the first working set's positions, and kept (a scaling only: the optimum is the same)."""
    return max(1.0, m.losses.largest_loss(q))


def _seed(m: ExpectedShortfall | ScenarioMax, g: slice, q: FloatArray, n_hedges: int) -> np.ndarray:
    loss = m.losses.losses(q)[g]
    kind, alpha = _kind(m)
    key = loss if kind == "es" else m.losses.weights[g] * loss
    return largest(key, seed_size(kind, alpha, len(loss), n_hedges))


class GenerationBackend(CvxpyBackend):
    """The cvxpy program with every large ES and scenario-maximum measure on a working set or cuts (and a
    max_loss limit on a working set), assembled again each round a working set grows or a band moves, and
    after a market move; a round that only adds cuts loads them into the program as it is."""

    name: ClassVar[str] = "generate"
    fallback: ClassVar[str | None] = None
    holds_safety: ClassVar[bool] = False  # the stressed books' measures would be whole, not generated

    def __init__(self, description: Description, elastic: bool = False, generation: Generation | None = None) -> None:
        self.gen = generation or Generation()
        if not self.gen.working:
            self.gen.starts = start_positions(description)
        super().__init__(description, elastic)

    def measure_of(self, venue: Venue) -> tuple[Measure, np.ndarray | None]:
        """Restricted to working sets and cuts, on the hedged columns (the rest of the book folded in)
        where every other term can be (``Measure.on_columns``), else at full width."""
        cols = venue.hedged_columns
        fold: Folded | None = Folded(cols, venue.book.q)
        measure = folded(venue.measure, cols, venue.book.q)
        if measure is None:
            fold, measure = None, venue.measure
        return self.gen.restrict(venue.name, measure, venue.book.q, len(venue.cands), fold), (None if fold is None else cols)

    def _max_loss_losses(self) -> np.ndarray:
        """The max_loss limit on a working set: its scenario set is a maximum over the whole book, restricted
        as a scenario-maximum margin is (first the worst weighted losses at the book held, then what each
        plan's violate), so a large set never enters the program whole."""
        losses = self.description.max_loss_losses
        assert losses is not None
        q_all = self._whole_positions()
        if self.gen.max_loss is None:
            self.gen.max_loss = largest_weighted(losses, q_all, seed_size("max", 0.0, losses.shape[0], 0))
        rows = self.gen.max_loss
        return reduce_rows(losses.weights[rows, None] * losses.matrix[rows], self._whole_cols, q_all)

    def _whole(self, hedges: FloatArray) -> tuple[ScenarioLosses, FloatArray] | None:
        """The max_loss limit's losses and the whole book after ``hedges`` (None without the limit in the program)."""
        losses = self.description.max_loss_losses
        return None if losses is None or self.h is None else (losses, self.description.whole_book(hedges))

    def rebuild(self) -> None:
        """Compile again after the working sets grew (the books are kept).

        The last round's program goes first: cvxpy keeps the solver it called in the problem
        (``Problem._solver_cache``: Clarabel's KKT factorization, 58 MiB at 39,719 scenarios in the
        working set of the 400,000-scenario demo) and held it while the next program was compiled."""
        t0 = time.perf_counter()
        _release(self.problem)
        del self.problem, self.venues, self.constraints, self.cost_terms
        self._assemble()
        self.build_seconds = time.perf_counter() - t0

    def update(self, description: Description) -> None:
        """Restricted measures are compiled for their working sets: compile again with the moved
        matrices, starting from the working sets of the last solve."""
        self.description = description
        self.gen.cuts.clear()  # the old matrices' cuts and bands bound the old margins
        self.rebuild()

    def solve(self, request: SolveRequest) -> Solution:
        """Solve the restricted program, add the scenarios its plan violates, until none does; then
        verify against the full measures and report the bounds."""
        d = self.description
        build, solve_seconds, attempts = self.build_seconds, 0.0, []
        rounds = 0
        while True:
            rounds += 1
            report = solve(self.problem, self.problem_class, forced=request.solver, build_seconds=self.build_seconds,
                           warm=request.warm, options=GENERATION_OPTIONS, parametric=False)
            solve_seconds += report.solve_seconds
            attempts += list(report.attempts)
            if report.status is not SolveStatus.OPTIMAL:
                # Infeasible: the relaxation is, so the full problem is.
                report = replace(report, build_seconds=build, solve_seconds=solve_seconds, attempts=tuple(attempts))
                return Solution(report.status, report)
            lower = float(self.problem.value)
            plan = self.plan()
            # Only the positions are needed to find violated scenarios; the plan is verified once, at the end.
            if not self.gen.refine(d.positions_after(plan.hedges), self._whole(plan.hedges)) or rounds >= self.gen.max_rounds():
                break
            if self.gen.stale:
                self.rebuild()
                build += self.build_seconds
        assert request.check is not None
        # The program is not solved again (a market move compiles a new one): its solver's memory goes
        # before verification evaluates every full measure at the plan.
        _release(self.problem)
        check = request.check(plan)
        # The restricted optimum is a lower bound on the full one; at the plan the full margins exceed
        # the restricted ones by ``gap`` (zero up to solver round-off once nothing is violated).
        gap = self.gap(check)
        report = replace(report, build_seconds=build, solve_seconds=solve_seconds, attempts=tuple(attempts))
        converged = rounds < self.gen.max_rounds() or self.gen.added[-1] == 0
        certificate = Certificate("scenario generation", rounds, converged,
                                  check.objective_value - gap if check.passed else lower, gap, self.gen.sizes(),
                                  cuts_in_program=self.gen.cut_sizes() or None)
        status = SolveStatus.OPTIMAL if check.passed and converged else SolveStatus.INACCURATE
        if status is not SolveStatus.OPTIMAL:
            why = "verification failed" if not check.passed else f"not converged in {self.gen.max_rounds()} rounds"
            report = replace(report, status=status, attempts=(*report.attempts, Attempt("GENERATE", status, 0.0, why)))
        return Solution(status, report, plan, check, certificate, self.shadow_prices() if status is SolveStatus.OPTIMAL else None)

    def gap(self, check: Verification) -> float:
        """Full less restricted margin at the verified plan, summed where margins are in the objective."""
        if "margin" not in self.description.kind.terms:
            return 0.0
        after = {o.venue: o.margin_after for o in check.venues}
        gap = sum(after[vp.name] - float(np.asarray(vp.im.value)) for vp in self.venues
                  if vp.position is not None and vp.im is not None)
        return max(gap, 0.0)

    def shortfalls(self, solver: str | None) -> tuple[tuple[str, float], ...]:
        """The elastic program generated too, round by round: its restricted optimum understates the
        margins, so the shortfalls are exact only once no scenario is violated at its plan."""
        if not self.slacks:
            return ()
        rounds = 0
        while True:
            rounds += 1
            report = solve(self.problem, self.problem_class, forced=solver, parametric=False)
            if report.status is not SolveStatus.OPTIMAL:
                return (("the elastic problem could not be solved", float("nan")),)
            hedges = self.plan().hedges
            if not self.gen.refine(self.description.positions_after(hedges), self._whole(hedges)):
                break
            if rounds >= self.gen.max_rounds():
                return (("the elastic problem's scenario generation did not converge", float("nan")),)
            if self.gen.stale:
                self.rebuild()
        return self._slack_values()
