"""A collateral-only executable plan built directly for HiGHS's MIP, for treasury-sized problems.

The LP of ``backends/direct_lp.py`` (value units ``g = price * units`` per venue and eligible asset,
tiers, concentration, coverage, inventory, transfer cost) with the case's collateral execution terms
(CASE_FORMAT.md, "Execution terms"), written on the same columns. ``p = price * posted`` is the value
posted now, ``U = price * inventory - p`` the most that can move in (inventory: the treasury's quantity
plus what every venue holds; the big-M is the case's, never guessed), ``M`` the venue's ``minimum_transfer``:

moves       ``g - p`` is 0 or worth at least ``M``: binaries ``u+``, ``u-`` (``u-`` only where something is
            posted) with ``u+ + u- <= 1``, ``g - U u+ + M u- <= p``, ``g - M u+ + p u- >= p``;
move caps   ``sum_a (u+ + u-) <= max_moves`` per venue, and over every venue (``execution.max_moves``);
rounding    ``g - price r k = p``, ``k`` integer within ``[-floor(posted / r), floor((inventory - posted) / r)]``
            (``treasury.<a>.rounding`` ``r`` is in units: a whole number of them is ``price r`` of value);
valid rows  (they cut off no plan, and lift the relaxation) ``sum_a u+ >= 1`` at a venue whose posted collateral
            does not cover its margin (credit grows with every asset's value); at a venue with nothing posted
            and a cap of one move, ``g >= max(M, c_a) u+`` with ``c_a`` the least value of asset ``a`` whose
            credit covers the margin alone (its schedule solved for the margin; an asset under a concentration
            limit below 1, or whose tiers cap below the margin, never moves in there).
one move    such a venue posts exactly one asset, worth at least ``c_a``: that plan keeps the venue's tier,
            concentration and coverage rows (its credit is the schedule's value, at least the margin), so
            they are dropped from the MIP and its other columns held at 0. What is left of the venue is a
            choice of one asset at a known value (``g`` between ``c_a`` and the big-M, a hair above): the
            relaxation is the assignment's, and the treasury with max_moves 1 and the cheapest asset short
            (30 venues of 200 assets) went from 20,510 rows and 5.3-8 s to 12,260 rows and under 1.5 s.

The binaries sit where ``backends/mip.py`` puts them (a venue with a minimum transfer or a cap, or every
venue under ``execution.max_moves``), so both formulations hold the same optimum; this one skips
cvxpy, which spends seconds canonicalizing the treasury (200 assets x 30 venues) before HiGHS starts.
The direct LP without the terms is solved first (milliseconds) and HiGHS started from a plan that keeps
to every term: the continuous optimum with its binaries and integers set to match, where it keeps to them
(the root then closes on it), else the best plan making only the continuous optimum's moves (a MIP of a few
binaries per venue). On the 200 x 30 treasury HiGHS's own heuristics spent most of the time finding a
first plan (2.4 of 3.8 s with binding minimum transfers; 2.2 of 2.7 s where nothing binds). A start
HiGHS misvalues (1.16 can price it in its presolved space below its cost, then return it as the plan of
that lower objective) is caught (the returned plan's cost above the reported objective) and the MIP
solved again without it. The big-M of a move in is also the least value of the asset that covers the
venue's margin by itself, where that is smaller than the inventory's: an asset under no concentration
limit and with no negative cost is never needed beyond it (cut any optimal plan's larger move down to it:
the venue stays covered by that asset alone, nothing costs more, no count changes), so some optimal plan
keeps within it.

HiGHS's branch and bound runs under ``time_limit`` and ``mip_rel_gap``; its ``mip_dual_bound`` is the best bound (the program has no constant); the incumbent is the cost of the
returned columns, the gap relative as HiGHS's. The plan is read with its
integers whole (``executability.whole_multiple``): a move whose binaries are both 0 is none, a rounded
move ``posted + r round(k)``, its continuous columns solved again with the integers fixed (``_polish``: a
binary held at 3e-7 under a big-M of millions leaves value posted); verification recomputes everything there. A MIP has no duals. A market
move changes the big-M bounds and the posted values in rows with binaries: the model is rebuilt at the
next solve (milliseconds).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar

import highspy
import numpy as np
import scipy.sparse as sp

from marginopt.models.collateral import pieces
from marginopt.optimizer.backends.base import DEFAULT_GAP, DEFAULT_TIME_LIMIT, Certificate, Solution, SolveRequest, highs_only
from marginopt.optimizer.backends.direct_lp import INF, DirectBackend, _Builder, _Structure
from marginopt.optimizer.description import Description, Venue
from marginopt.optimizer.executability import GAP_CLOSED, TIME_LIMIT, whole_multiple
from marginopt.optimizer.verify import Plan, Verification
from marginopt.solvers.highs import FEASIBLE_SOLUTION, Highs, quiet_highs
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus


@dataclass
class _Terms:
    """The execution terms' columns (global indices) and rows appended to the LP."""

    integer: list[int]  # columns that are integer (binaries included)
    moves: dict[str, list[tuple[int, int, int | None]]]  # venue -> (asset index, u+, u- or None)
    roundings: dict[str, list[tuple[int, float, int]]]  # venue -> (asset index, rounding in units, k)
    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    rows: sp.csr_matrix  # over every column, old and new
    row_lower: np.ndarray
    row_upper: np.ndarray
    implied: list[str]  # venues whose LP rows (tiers, concentration, coverage) the move rows imply


@dataclass(frozen=True)
class _Model:
    """The MIP as passed to HiGHS (to check a start against, and price a plan)."""

    matrix: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    cost: np.ndarray
    integer: list[int]

    def highs_lp(self, col_upper: np.ndarray | None = None) -> highspy.HighsLp:
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = len(self.cost), self.matrix.shape[0]
        lp.col_cost_, lp.col_lower_ = self.cost, self.col_lower
        lp.col_upper_ = self.col_upper if col_upper is None else col_upper
        lp.row_lower_, lp.row_upper_ = self.row_lower, self.row_upper
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = self.matrix.indptr
        lp.a_matrix_.index_ = self.matrix.indices
        lp.a_matrix_.value_ = self.matrix.data
        kinds = [highspy.HighsVarType.kContinuous] * len(self.cost)
        for c in self.integer:
            kinds[c] = highspy.HighsVarType.kInteger
        lp.integrality_ = kinds
        return lp

    def keeps(self, col: np.ndarray) -> bool:
        """``col`` within every row and column bound (HiGHS's tolerances, relative to the bound)."""
        act = self.matrix @ col
        return bool(np.all(act >= self.row_lower - 1e-7 * (1.0 + np.abs(self.row_lower)))
                    and np.all(act <= self.row_upper + 1e-7 * (1.0 + np.abs(self.row_upper)))
                    and np.all(col >= self.col_lower - 1e-9) and np.all(col <= self.col_upper + 1e-9)
                    and np.all(np.abs(col[self.integer] - np.round(col[self.integer])) <= 1e-9))


def execution_terms(problem: Description, st: _Structure) -> _Terms:
    """The binaries, integers and rows of the module docstring, on the LP's columns ``st``."""
    case, prices = problem.case, problem.case.market.prices
    n0 = len(st.cost)
    b = _Builder()
    integer: list[int] = []

    def col(lo: float, hi: float) -> int:
        c = n0 + b.col(0.0, lo, hi)
        integer.append(c)
        return c

    counted = case.execution.max_moves is not None
    moves: dict[str, list[tuple[int, int, int | None]]] = {}
    roundings: dict[str, list[tuple[int, float, int]]] = {}
    all_moves: list[tuple[int, float]] = []
    implied: list[str] = []
    for part in problem.parts:
        spec, gcols = case.venues[part.name], st.x_cols[part.name]
        for i, a in enumerate(part.assets):
            r = case.treasury[a].rounding if a in case.treasury else None
            if r is None:
                continue
            units = float(part.posted[i])
            k = col(-math.floor(units / r + 1e-9), math.floor((problem.available(a) - units) / r + 1e-9))
            value = prices[a] * units
            b.row([(int(gcols[i]), 1.0), (k, -prices[a] * r)], value, value)
            roundings.setdefault(part.name, []).append((i, float(r), k))
        if not (spec.minimum_transfer > 0.0 or spec.max_moves is not None or counted):
            continue
        minimum, mine = spec.minimum_transfer, []
        margin = float(part.book.venue.required(part.book.initial.evaluate(part.book.q)))  # with its buffer
        caps = [c for c in (spec.max_moves, case.execution.max_moves) if c is not None]
        single = bool(caps) and min(caps) == 1 and not np.any(part.posted) and margin > 0.0
        for i, a in enumerate(part.assets):
            g, value = int(gcols[i]), prices[a] * float(part.posted[i])
            above = max(prices[a] * problem.available(a) - value, 0.0)
            alone = _covering(problem, part, a, margin)
            if alone is not None and _unlimited_at_cost(problem, part, a):
                r = case.treasury[a].rounding if a in case.treasury else None
                step = prices[a] * r if r is not None else 0.0
                more = max(minimum, alone * (1.0 + 1e-7) + 1e-6 - value)  # a hair above: never the binding row
                above = min(above, step * math.ceil(more / step - 1e-9) if step else more)
            # One move at a venue with nothing posted: the plan posts one asset there, which must cover the
            # margin alone, so a move in is worth at least the least value that does (valid for every plan; it
            # lifts the relaxation to the venue's choice of one asset). An asset that cannot cover alone (a
            # concentration limit, a tier schedule's cap) never moves in.
            least = minimum
            if single:
                least = max(minimum, alone) if alone is not None else math.inf
            up = col(0.0, 1.0 if math.isfinite(least) else 0.0)
            down = col(0.0, 1.0) if value > 0.0 else None
            if down is None:
                b.row([(g, 1.0), (up, -above)], -INF, 0.0)
                b.row([(g, 1.0), (up, -least if math.isfinite(least) else 0.0)], 0.0, INF)
            else:
                b.row([(up, 1.0), (down, 1.0)], -INF, 1.0)
                b.row([(g, 1.0), (up, -above), (down, minimum)], -INF, value)
                b.row([(g, 1.0), (up, -minimum), (down, value)], value, INF)
            moves.setdefault(part.name, []).append((i, up, down))
            mine += [(up, 1.0)] + ([(down, 1.0)] if down is not None else [])
        if spec.max_moves is not None and mine:
            b.row(mine, -INF, float(spec.max_moves))
        if mine and part.book.credited_total(dict(zip(part.assets, part.posted.tolist(), strict=True))) < margin - 1e-6:
            # What is posted does not cover the margin, and credit grows with every asset's value: some asset
            # must move in. Valid for every plan, and it lifts the relaxation where a minimum transfer above a
            # venue's need makes the integer plan post more than the LP (the treasury: root bound 0.75% higher).
            b.row([(up, 1.0) for _, up, _ in moves[part.name]], 1.0, INF)
            if single:
                # Exactly one asset moves in and its value covers the margin alone (the rows above): the
                # venue's tier, concentration and coverage rows hold at every such plan (the asset's credit is
                # its schedule's value; a limited one never moves in), so the MIP goes without them.
                implied.append(part.name)
        all_moves += mine
    if counted and all_moves:
        b.row(all_moves, -INF, float(case.execution.max_moves))  # type: ignore[arg-type]
    n = n0 + len(b.cost)
    rows = sp.csr_matrix((b.vals, (b.rows, b.cols)), shape=(len(b.rlo), n))
    return _Terms(integer, moves, roundings, np.array(b.cost), np.array(b.lo), np.array(b.hi), rows,
                  np.array(b.rlo), np.array(b.rhi), implied)


def _unlimited_at_cost(problem: Description, part: Venue, asset: str) -> bool:
    """``asset`` is under no concentration limit at ``part`` (its credit alone is then a lower bound on the
    venue's credited total) and costs nothing negative: more of it than covers the margin alone is never
    needed."""
    t = problem.case.treasury.get(asset)
    return asset not in part.book.venue.concentration and not (t is not None and (t.cost < 0.0 or t.transfer_cost < 0.0))


def _covering(problem: Description, part: Venue, asset: str, margin: float) -> float | None:
    """The least value of ``asset`` whose credit covers venue ``part``'s ``margin`` by itself, or None where
    no value does: a tier schedule's cap below the margin, or a concentration limit under 1 (alone, the
    asset is all of the credited total, so its credit is at most the share of itself)."""
    spec = part.book.venue
    if spec.concentration.get(asset, 1.0) < 1.0 and margin > 0.0:
        return None
    intercept, rate = pieces(spec.collateral[asset])
    need = 0.0
    for b, r in zip(intercept, rate, strict=True):
        if r > 0.0:
            need = max(need, (margin - float(b)) / float(r))
        elif b < margin:
            return None
    return need


class DirectMipBackend(DirectBackend):
    """The direct LP plus the collateral execution terms, solved by HiGHS's branch and bound. Takes a
    collateral-only ``min_cost`` problem whose moves have a finite inventory to bound them
    (``why_not``). No fallback, as the ``mip`` backend has none: the caller's backends are built without its
    ``time_limit``, and a plan short of time would become a 60 s cvxpy solve; a plan failing verification
    is reported failed, with the checks it fails."""

    name: ClassVar[str] = "direct_mip"
    fallback: ClassVar[str | None] = None
    holds_execution_terms: ClassVar[bool] = True
    problem_class = ProblemClass.MILP

    def __init__(self, problem: Description, mip_gap: float | None = None, time_limit: float | None = None) -> None:
        self.mip_gap = DEFAULT_GAP if mip_gap is None else float(mip_gap)
        self.time_limit = DEFAULT_TIME_LIMIT if time_limit is None else float(time_limit)
        super().__init__(problem)

    @classmethod
    def why_not(cls, problem: Description) -> str | None:
        reason = DirectBackend.why_not(problem)
        if reason is not None:
            return reason
        prices = problem.case.market.prices
        for v in problem.venues:
            for a in v.assets:
                if not math.isfinite(problem.available(a)) or not prices[a] > 0.0:
                    return f"asset {a} at venue {v.name} has no finite inventory and positive price to bound its moves"
        return None

    def solve(self, request: SolveRequest) -> Solution:
        refused = highs_only(request, self.problem_class, self.build_seconds)
        if refused is not None:
            return refused
        t0 = time.perf_counter()
        relaxed = self.solve_lp()  # the continuous optimum: the MIP's start where it keeps to the terms
        st = self.structure
        assert st is not None
        lp_cols = np.asarray(self.highs.getSolution().col_value) if relaxed.status is SolveStatus.OPTIMAL else None
        terms = execution_terms(self.problem, st)
        self._load(st, terms)
        built = time.perf_counter() - t0 - relaxed.solve_seconds
        started = lp_cols is not None and self._start(st, terms, lp_cols)
        self.highs.setOptionValue("time_limit", self._left(t0))  # the limit is the whole solve's
        self.highs.run()
        info = self.highs.getInfo()
        nodes = int(info.mip_node_count)
        if started and self._misread(info):
            # HiGHS 1.16 can value a start in its presolved space below its own cost, then return the start
            # as the plan of that lower objective (tests/test_direct_mip.py, seed 2): solved again without it.
            self.highs = self._highs(self._left(t0))
            self.highs.passModel(self._model.highs_lp())
            self.highs.run()
            info = self.highs.getInfo()
            nodes += int(info.mip_node_count)
        solved = time.perf_counter() - t0 - built
        build = self.build_seconds + built
        model = self.highs.getModelStatus()
        found = int(info.primal_solution_status) == FEASIBLE_SOLUTION
        stopped = GAP_CLOSED
        if model == highspy.HighsModelStatus.kOptimal:
            status, note = SolveStatus.OPTIMAL, "direct MIP"
        elif model in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kSolutionLimit,
                       highspy.HighsModelStatus.kIterationLimit, highspy.HighsModelStatus.kInterrupt) and found:
            timed = model == highspy.HighsModelStatus.kTimeLimit
            stopped = TIME_LIMIT if timed else f"HiGHS: {self.highs.modelStatusToString(model)}"
            status = SolveStatus.LIMIT
            note = (f"direct MIP: time limit {self.time_limit:g} s: the incumbent, not proven optimal" if timed
                    else f"direct MIP: {stopped}: the incumbent, not proven optimal")
        else:
            infeasible = model in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible)
            status = SolveStatus.INFEASIBLE if infeasible else (SolveStatus.LIMIT if model == highspy.HighsModelStatus.kTimeLimit
                                                                 else SolveStatus.ERROR)
            note = f"direct MIP: {self.highs.modelStatusToString(model)}"
            report = SolveReport("HIGHS", status, self.problem_class, build, solved, (Attempt("HIGHS", status, solved, note),), nodes,
                                 request.warm)
            return Solution(status, report)
        cols = self._polish(np.asarray(self.highs.getSolution().col_value), t0)
        plan = self._plan(st, terms, cols)
        check: Verification | None = request.check(plan) if request.check is not None else None
        if check is not None and not check.passed:
            status, note = SolveStatus.INACCURATE, note + "; verification: " + "; ".join(c.name for c in check.failures[:3])
        report = SolveReport("HIGHS", status, self.problem_class, build, solved, (Attempt("HIGHS", status, solved, note),), nodes,
                             request.warm)
        if status is SolveStatus.INACCURATE:
            return Solution(status, report, plan, check)
        # The incumbent is the cost of the columns the plan is read from (never only HiGHS's word for it).
        incumbent = float(self._model.cost @ cols)
        bound = float(info.mip_dual_bound)
        proven = status is SolveStatus.OPTIMAL and incumbent - bound <= self.mip_gap * abs(incumbent) + 1e-9
        if not math.isfinite(bound):
            bound = incumbent if proven else -math.inf
        certificate = self._certificate(incumbent, min(bound, incumbent), proven, nodes, stopped)
        extra: dict[str, object] = {"mip": certificate.to_dict()}
        if relaxed.status is SolveStatus.OPTIMAL:
            # The LP solved first is the continuous optimum: the comparison beside the plan verifies it
            # against the case without its terms instead of solving it again (0.3 s on the treasury).
            extra["relaxation"] = Plan(np.zeros(0), {p.name: dict(zip(p.assets, relaxed.x[p.name].tolist(), strict=True))
                                                     for p in self.problem.parts})
        # An incumbent at the time limit is a plan (its gap says how good): the caller shows it as such.
        return Solution(SolveStatus.OPTIMAL, report, plan, check, certificate, extra=extra)

    def _load(self, st: _Structure, terms: _Terms) -> None:
        """The LP (its market rows at this case's values) with the terms' columns and rows, into a fresh HiGHS."""
        idx, lo, hi = self._bounds(st)
        row_lower, row_upper = st.row_lower.copy(), st.row_upper.copy()
        row_lower[idx], row_upper[idx] = lo, hi
        n0, n = len(st.cost), len(st.cost) + len(terms.cost)
        matrix = sp.vstack([sp.hstack([st.matrix, sp.csc_matrix((st.matrix.shape[0], n - n0))]), terms.rows]).tocsr()
        cost, col_lower = np.concatenate([st.cost, terms.cost]), np.concatenate([st.col_lower, terms.col_lower])
        col_upper = np.concatenate([st.col_upper, terms.col_upper])
        row_lower, row_upper = np.concatenate([row_lower, terms.row_lower]), np.concatenate([row_upper, terms.row_upper])
        keep = np.ones(len(row_lower), dtype=bool)
        for name in terms.implied:  # their rows dropped; their columns other than g held at 0 (indices kept)
            rows, cols = st.blocks[name]
            keep[rows.start:rows.stop] = False
            idle = np.setdiff1d(np.arange(cols.start, cols.stop), st.x_cols[name])
            col_lower[idle] = col_upper[idle] = 0.0
        matrix, row_lower, row_upper = matrix[keep].tocsc(), row_lower[keep], row_upper[keep]
        self._model = _Model(matrix, row_lower, row_upper, col_lower, col_upper, cost, terms.integer)
        self.highs = self._highs(self.time_limit)
        self.highs.passModel(self._model.highs_lp())
        self.loaded = False  # the LP's warm re-solve (row bounds only) does not apply to this model

    def _highs(self, time_limit: float) -> Highs:
        """A clean HiGHS (no basis or incumbent of another model) with the gap and time limit. HiGHS's
        presolve is on: it was off while the model carried every venue's rows (on the treasury with binding
        terms it took 8.3 of 18 s then); with the implied venues' rows dropped it shrinks what is left (the
        pinned moves), and measured on the benchmark's treasury cases (process CPU time, 2 shared cores)
        max_moves 1 with the inventory at 0.9: 1.6-2.0 s -> 0.8-0.9 s, at 0.8: 1.9 -> 0.8-0.9 s, max_moves 1
        without a minimum transfer 1.8-1.9 -> 0.9-1.0 s, max_moves 2 at 0.9 (no venue implied) 14-19 s ->
        8 s wall; max_moves 3 with a minimum transfer of 500,000 or 50,000 unchanged (1.2-1.6 s)."""
        highs = quiet_highs()
        highs.setOptionValue("mip_rel_gap", self.mip_gap)
        highs.setOptionValue("time_limit", time_limit)
        return highs

    def _left(self, t0: float) -> float:
        """What remains of the time limit since ``t0`` (the start of the solve), at least a millisecond."""
        return max(self.time_limit - (time.perf_counter() - t0), 1e-3)

    def _polish(self, cols: np.ndarray, t0: float) -> np.ndarray:
        """The incumbent's continuous columns again with its integers fixed whole: a binary HiGHS holds at
        3e-7 lets a big-M of 1.5 million leave 0.45 of value posted, which the plan (the move read as none)
        drops, short of the margin by as much (the treasury with max_moves 1). An LP, about 0.1 s there;
        the incumbent unchanged where it fails."""
        whole = np.round(cols[self._model.integer])
        lower, upper = self._model.col_lower.copy(), self._model.col_upper.copy()
        lower[self._model.integer] = upper[self._model.integer] = whole
        lp = self._model.highs_lp(upper)
        lp.col_lower_ = lower
        highs = self._highs(self._left(t0))
        highs.passModel(lp)
        highs.run()
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return cols
        out = np.asarray(highs.getSolution().col_value, dtype=float)
        out[self._model.integer] = whole
        return out

    def _misread(self, info: highspy.HighsInfo) -> bool:
        """The plan HiGHS returns costs more than the objective it reports for it."""
        if int(info.primal_solution_status) != FEASIBLE_SOLUTION:
            return False
        cost = float(self._model.cost @ np.asarray(self.highs.getSolution().col_value))
        reported = float(info.objective_function_value)
        return cost > reported + 1e-9 * (1.0 + abs(reported))

    def _start(self, st: _Structure, terms: _Terms, lp_cols: np.ndarray) -> bool:
        """HiGHS's first incumbent: the continuous optimum (the LP's columns) with the binaries and integers set
        to match where it keeps to every term (the root then closes on it), else the best plan making only
        its moves (``_neighbourhood``); False where neither is found (HiGHS starts from nothing)."""
        prices = self.problem.case.market.prices
        col = np.concatenate([lp_cols, np.zeros(len(terms.cost))])
        col = np.clip(col, self._model.col_lower, self._model.col_upper)  # the implied venues' idle columns at 0
        for part in self.problem.parts:
            value = col[st.x_cols[part.name]]
            posted = part.posted * np.array([prices[a] for a in part.assets])
            for i, r, k in terms.roundings.get(part.name, []):
                col[k] = round((value[i] - posted[i]) / (prices[part.assets[i]] * r))
            for i, up, down in terms.moves.get(part.name, []):
                moved = abs(value[i] - posted[i]) > 1e-6 + 1e-8 * abs(posted[i])
                col[up] = float(moved and value[i] > posted[i])
                if down is not None:
                    col[down] = float(moved and value[i] < posted[i])
        # Only a start that keeps to every row: HiGHS 1.16, handed one it must repair, has returned a plan
        # other than the incumbent whose objective it reports (tests/test_direct_mip.py, seed 2).
        if not self._model.keeps(col):
            found = self._neighbourhood(col, [c for moves in terms.moves.values() for _, up, down in moves
                                              for c in (up, down) if c is not None])
            if found is None:
                return False
            col = found
        sol = highspy.HighsSolution()
        sol.col_value = col
        self.highs.setSolution(sol)
        return True

    def _neighbourhood(self, col: np.ndarray, binaries: list[int]) -> np.ndarray | None:
        """The best plan that makes only the continuous optimum's moves (each move binary it leaves at 0
        held there: a MIP of a few binaries per venue), or None: a start that keeps to every term
        (with binding terms HiGHS's own heuristics took 2.4 of the 3.8 s to the treasury's optimum)."""
        upper = self._model.col_upper.copy()
        held = [c for c in binaries if col[c] < 0.5]
        upper[held] = 0.0
        highs = self._highs(self.time_limit / 4)
        highs.passModel(self._model.highs_lp(upper))
        highs.run()
        if int(highs.getInfo().primal_solution_status) != FEASIBLE_SOLUTION:
            return None
        found = np.asarray(highs.getSolution().col_value, dtype=float)
        found[self._model.integer] = np.round(found[self._model.integer])
        return found if self._model.keeps(found) else None

    def _plan(self, st: _Structure, terms: _Terms, col: np.ndarray) -> Plan:
        """The incumbent in units with its integers whole: a move whose binaries are both 0 is none, a
        rounded move ``posted + r round(k)`` (HiGHS holds integers to 1e-6)."""
        prices = self.problem.case.market.prices
        allocation: dict[str, dict[str, float]] = {}
        for part in self.problem.parts:
            units = {a: float(col[g]) / prices[a] for a, g in zip(part.assets, st.x_cols[part.name], strict=True)}
            for i, r, k in terms.roundings.get(part.name, []):
                units[part.assets[i]] = whole_multiple(float(part.posted[i]), r, round(float(col[k])))
            for i, up, down in terms.moves.get(part.name, []):
                if round(float(col[up])) == 0 and (down is None or round(float(col[down])) == 0):
                    units[part.assets[i]] = float(part.posted[i])
            allocation[part.name] = units
        return Plan(np.zeros(0), allocation)

    def _certificate(self, incumbent: float, bound: float, proven: bool, nodes: int, stopped: str) -> Certificate:
        """As the ``mip`` backend's: the incumbent, HiGHS's best bound and the gap, relative as HiGHS's."""
        gap = max(incumbent - bound, 0.0)
        relative = 0.0 if gap == 0.0 else gap / abs(incumbent) if incumbent != 0.0 else math.inf
        return Certificate("direct_mip: HiGHS branch and bound on the direct collateral program", nodes, proven, bound, gap, {},
                           incumbent=incumbent, relative_gap=relative, proven_optimal=proven, requested_gap=self.mip_gap,
                           time_limit=self.time_limit, outer_rounds=1, stopped=stopped)
