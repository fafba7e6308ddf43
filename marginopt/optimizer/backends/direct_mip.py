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
            (``treasury.<a>.rounding`` ``r`` is in units: a whole number of them is ``price r`` of value).

The binaries sit where ``backends/mip.py`` puts them (a venue with a minimum transfer or a cap, or every
venue under ``execution.max_moves``), so both formulations hold the same feasible set; this one skips
cvxpy, which spends seconds canonicalizing the treasury (200 assets x 30 venues) before HiGHS starts.
The direct LP without the terms is solved first (its basis is the relaxation's, milliseconds) and its
optimum, with binaries and integers set to match, handed to HiGHS as a start: where the terms do not
bind the root closes on it (the 200 x 30 treasury: 0.5 s, 2.9 s without the start, where HiGHS's
sub-MIP heuristics spend the rest finding that plan). HiGHS's branch and bound runs under ``time_limit`` and ``mip_rel_gap``; its ``mip_dual_bound`` is the
best bound (the program has no constant), ``mip_gap`` the relative gap. The plan is read with its
integers whole (``executability.whole_multiple``): a move whose binaries are both 0 is none, a rounded
move ``posted + r round(k)``; verification recomputes everything there. A MIP has no duals. A market
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

from marginopt.optimizer.backends.base import Certificate, Solution, SolveRequest
from marginopt.optimizer.backends.direct_lp import INF, DirectBackend, _Builder, _Structure
from marginopt.optimizer.description import Description
from marginopt.optimizer.executability import whole_multiple
from marginopt.optimizer.verify import Plan, Verification
from marginopt.solvers.highs import quiet_highs
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus

DEFAULT_GAP = 1e-6  # as backends/mip.py: the relative gap at which HiGHS calls the incumbent optimal
DEFAULT_TIME_LIMIT = 60.0  # seconds, as backends/mip.py
_FEASIBLE = 2  # HiGHS's kSolutionStatusFeasible


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
        for i, a in enumerate(part.assets):
            g, value = int(gcols[i]), prices[a] * float(part.posted[i])
            above = max(prices[a] * problem.available(a) - value, 0.0)
            up = col(0.0, 1.0)
            down = col(0.0, 1.0) if value > 0.0 else None
            if down is None:
                b.row([(g, 1.0), (up, -above)], -INF, 0.0)
                b.row([(g, 1.0), (up, -minimum)], 0.0, INF)
            else:
                b.row([(up, 1.0), (down, 1.0)], -INF, 1.0)
                b.row([(g, 1.0), (up, -above), (down, minimum)], -INF, value)
                b.row([(g, 1.0), (up, -minimum), (down, value)], value, INF)
            moves.setdefault(part.name, []).append((i, up, down))
            mine += [(up, 1.0)] + ([(down, 1.0)] if down is not None else [])
        if spec.max_moves is not None and mine:
            b.row(mine, -INF, float(spec.max_moves))
        all_moves += mine
    if counted and all_moves:
        b.row(all_moves, -INF, float(case.execution.max_moves))  # type: ignore[arg-type]
    n = n0 + len(b.cost)
    rows = sp.csr_matrix((b.vals, (b.rows, b.cols)), shape=(len(b.rlo), n))
    return _Terms(integer, moves, roundings, np.array(b.cost), np.array(b.lo), np.array(b.hi), rows,
                  np.array(b.rlo), np.array(b.rhi))


class DirectMipBackend(DirectBackend):
    """The direct LP plus the collateral execution terms, solved by HiGHS's branch and bound. Takes a
    collateral-only ``min_cost`` problem whose moves have a finite inventory to bound them
    (``why_not``); the cvxpy ``mip`` backend takes over when its plan fails verification."""

    name: ClassVar[str] = "direct_mip"
    fallback: ClassVar[str | None] = "mip"
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
        forced = request.solver
        if forced is not None and forced.upper() != "HIGHS":
            note = f"an executable plan (a mixed-integer program) is solved by HiGHS alone, not {forced}"
            attempt = Attempt(forced, SolveStatus.ERROR, 0.0, note)
            return Solution(SolveStatus.ERROR, SolveReport(None, SolveStatus.ERROR, self.problem_class, self.build_seconds, 0.0,
                                                           (attempt,)))
        t0 = time.perf_counter()
        relaxed = self.solve_lp()  # the continuous optimum: the MIP's start where it keeps to the terms
        st = self.structure
        assert st is not None
        lp_cols = np.asarray(self.highs.getSolution().col_value) if relaxed.status is SolveStatus.OPTIMAL else None
        terms = execution_terms(self.problem, st)
        self._load(st, terms)
        built = time.perf_counter() - t0 - relaxed.solve_seconds
        if lp_cols is not None:
            self._start(st, terms, lp_cols)
        self.highs.run()
        solved = time.perf_counter() - t0 - built
        build = self.build_seconds + built
        model = self.highs.getModelStatus()
        info = self.highs.getInfo()
        nodes = int(info.mip_node_count)
        found = int(info.primal_solution_status) == _FEASIBLE
        if model == highspy.HighsModelStatus.kOptimal:
            status, note = SolveStatus.OPTIMAL, "direct MIP"
        elif model in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kSolutionLimit,
                       highspy.HighsModelStatus.kIterationLimit, highspy.HighsModelStatus.kInterrupt) and found:
            status, note = SolveStatus.LIMIT, f"direct MIP: time limit {self.time_limit:g} s: the incumbent, not proven optimal"
        else:
            infeasible = model in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible)
            status = SolveStatus.INFEASIBLE if infeasible else (SolveStatus.LIMIT if model == highspy.HighsModelStatus.kTimeLimit
                                                                 else SolveStatus.ERROR)
            note = f"direct MIP: {self.highs.modelStatusToString(model)}"
            report = SolveReport("HIGHS", status, self.problem_class, build, solved, (Attempt("HIGHS", status, solved, note),), nodes,
                                 request.warm)
            return Solution(status, report)
        plan = self._plan(st, terms, np.asarray(self.highs.getSolution().col_value))
        check: Verification | None = request.check(plan) if request.check is not None else None
        if check is not None and not check.passed:
            status, note = SolveStatus.INACCURATE, note + "; verification: " + "; ".join(c.name for c in check.failures[:3])
        report = SolveReport("HIGHS", status, self.problem_class, build, solved, (Attempt("HIGHS", status, solved, note),), nodes,
                             request.warm)
        if status is SolveStatus.INACCURATE:
            return Solution(status, report, plan, check)
        incumbent = float(info.objective_function_value)
        bound = float(info.mip_dual_bound)
        proven = status is SolveStatus.OPTIMAL
        if not math.isfinite(bound):
            bound = incumbent if proven else -math.inf
        certificate = self._certificate(incumbent, min(bound, incumbent), proven, nodes)
        # An incumbent at the time limit is a plan (its gap says how good): the caller shows it as such.
        return Solution(SolveStatus.OPTIMAL, report, plan, check, certificate, extra={"mip": certificate.to_dict()})

    def _load(self, st: _Structure, terms: _Terms) -> None:
        """The LP (its market rows at this case's values) with the terms' columns and rows, into a fresh HiGHS."""
        idx, lo, hi = self._bounds(st)
        row_lower, row_upper = st.row_lower.copy(), st.row_upper.copy()
        row_lower[idx], row_upper[idx] = lo, hi
        n0, n = len(st.cost), len(st.cost) + len(terms.cost)
        matrix = sp.vstack([sp.hstack([st.matrix, sp.csc_matrix((st.matrix.shape[0], n - n0))]), terms.rows]).tocsc()
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, matrix.shape[0]
        lp.col_cost_ = np.concatenate([st.cost, terms.cost])
        lp.col_lower_ = np.concatenate([st.col_lower, terms.col_lower])
        lp.col_upper_ = np.concatenate([st.col_upper, terms.col_upper])
        lp.row_lower_ = np.concatenate([row_lower, terms.row_lower])
        lp.row_upper_ = np.concatenate([row_upper, terms.row_upper])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr
        lp.a_matrix_.index_ = matrix.indices
        lp.a_matrix_.value_ = matrix.data
        kinds = [highspy.HighsVarType.kContinuous] * n
        for c in terms.integer:
            kinds[c] = highspy.HighsVarType.kInteger
        lp.integrality_ = kinds
        self.highs = quiet_highs()  # a clean instance: no basis or incumbent of another model
        self.highs.setOptionValue("mip_rel_gap", self.mip_gap)
        self.highs.setOptionValue("time_limit", self.time_limit)
        self.highs.passModel(lp)
        self.loaded = False  # the LP's warm re-solve (row bounds only) does not apply to this model

    def _start(self, st: _Structure, terms: _Terms, lp_cols: np.ndarray) -> None:
        """The continuous optimum (the LP's columns) with the binaries and integers set to match, as HiGHS's
        first incumbent: where it keeps to every term, the root closes on it; where not, HiGHS repairs or drops it."""
        prices = self.problem.case.market.prices
        col = np.concatenate([lp_cols, np.zeros(len(terms.cost))])
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
        sol = highspy.HighsSolution()
        sol.col_value = col
        self.highs.setSolution(sol)

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

    def _certificate(self, incumbent: float, bound: float, proven: bool, nodes: int) -> Certificate:
        """As the ``mip`` backend's: the incumbent, HiGHS's best bound and the gap, relative as HiGHS's."""
        gap = max(incumbent - bound, 0.0)
        relative = 0.0 if gap == 0.0 else gap / abs(incumbent) if incumbent != 0.0 else math.inf
        return Certificate("direct_mip: HiGHS branch and bound on the direct collateral program", nodes, proven, bound, gap, {},
                           incumbent=incumbent, relative_gap=relative, proven_optimal=proven, requested_gap=self.mip_gap,
                           time_limit=self.time_limit, outer_rounds=1)
