"""The collateral-only LP built directly for HiGHS, for treasury-sized problems.

When no hedge is traded and the objective is ``min_cost``, every venue's margin is
a number and the problem is an LP over collateral only. cvxpy takes seconds to
canonicalize it at 200 assets x 30 venues; building the sparse matrices here
takes milliseconds.

The LP is written in value units, ``g = price * units``: then no coefficient and
no cost depends on prices, and a market move changes only row bounds (margins,
available value, posted value). A re-solve passes the new bounds to the HiGHS
instance in one call and dual simplex starts from the previous basis.

Columns, per venue v and eligible asset a:
    g[v,a] >= 0   gross value posted after the plan
    y[v,a]        value after haircut, only for tiered assets (flat: (1 - h) g)
    c[v,a] >= 0   credited value, only for assets under a concentration limit
    m[v,a] >= 0   value moved in (transfer cost), only where some is posted now
                  (where nothing is posted, everything posted is moved: m = g)
Rows:
    y - r_k g <= b_k                        each tier piece (hypograph of the concave schedule)
    c - value <= 0, c - s (free + sum c) <= 0   concentration (free = value of unlimited assets)
    credited total >= margin                coverage
    sum_v g[v,a] <= price_a * available_a   inventory
    m - g >= -price_a * posted[v,a]         moved value
Objective: sum cost_a g + transfer_a (m or g).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import highspy
import numpy as np
import scipy.sparse as sp

from marginopt.models.collateral import pieces
from marginopt.optimizer.backends.base import Solution, SolveRequest
from marginopt.optimizer.description import Description
from marginopt.optimizer.verify import Plan
from marginopt.solvers.highs import quiet_highs
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus

INF = highspy.kHighsInf


@dataclass
class _Structure:
    """The LP with price-free coefficients; only the row bounds listed in ``*_rows`` move."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    matrix: sp.csc_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    x_cols: dict[str, np.ndarray]  # per venue: column of g for each eligible asset
    coverage_rows: dict[str, int]
    inventory_rows: dict[str, int]
    moved_rows: list[tuple[int, str, float]]  # (row, asset, units posted)
    schedules: list[object]  # the collateral terms it was built for
    blocks: dict[str, tuple[range, range]]  # per venue: its rows and its columns (g, m, y, c), each contiguous


class _Builder:
    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.rlo: list[float] = []
        self.rhi: list[float] = []

    def col(self, cost: float, lo: float, hi: float) -> int:
        self.cost.append(cost)
        self.lo.append(lo)
        self.hi.append(hi)
        return len(self.cost) - 1

    def row(self, entries: list[tuple[int, float]], lo: float, hi: float) -> int:
        r = len(self.rlo)
        for c, v in entries:
            self.rows.append(r)
            self.cols.append(c)
            self.vals.append(v)
        self.rlo.append(lo)
        self.rhi.append(hi)
        return r


def _schedules(problem: Description) -> list[object]:
    """A key of the collateral terms the LP's structure depends on (tuples compare fast)."""
    treasury = problem.case.treasury
    return [(p.name, tuple((a, s.haircut, s.tiers) for a, s in p.book.venue.collateral.items()),
             tuple(p.book.venue.concentration.items()), tuple(p.book.venue.posted.items()),
             tuple((a, treasury[a].cost, treasury[a].transfer_cost) for a in p.assets if a in treasury))
            for p in problem.parts]


def build_structure(problem: Description) -> _Structure:
    treasury = problem.case.treasury
    b = _Builder()
    x_cols: dict[str, np.ndarray] = {}
    coverage_rows: dict[str, int] = {}
    moved_rows: list[tuple[int, str, float]] = []
    by_asset: dict[str, list[int]] = {}
    blocks: dict[str, tuple[range, range]] = {}
    for part in problem.parts:
        first_row, first_col = len(b.rlo), len(b.cost)
        venue = part.book.venue
        values: dict[str, list[tuple[int, float]]] = {}
        cols = []
        for i, a in enumerate(part.assets):
            t = treasury.get(a)
            fund, move = (t.cost, t.transfer_cost) if t is not None else (0.0, 0.0)
            posted = float(part.posted[i])
            g = b.col(fund + (move if posted == 0.0 else 0.0), 0.0, INF)
            cols.append(g)
            by_asset.setdefault(a, []).append(g)
            if posted > 0.0 and move > 0.0:
                m = b.col(move, 0.0, INF)
                moved_rows.append((b.row([(m, 1.0), (g, -1.0)], 0.0, INF), a, posted))
            schedule = venue.collateral[a]
            if schedule.haircut is not None:
                values[a] = [(g, 1.0 - schedule.haircut)]
            else:
                intercept, rate = pieces(schedule)
                y = b.col(0.0, -INF, INF)
                for bk, rk in zip(intercept, rate, strict=True):
                    b.row([(y, 1.0), (g, -rk)], -INF, float(bk))
                values[a] = [(y, 1.0)]
        x_cols[part.name] = np.array(cols, dtype=np.int64)
        limited = dict(venue.concentration)
        free = [e for a, es in values.items() if a not in limited for e in es]
        cvars = {}
        for a in limited:
            c = b.col(0.0, 0.0, INF)
            cvars[a] = c
            b.row([(c, 1.0)] + [(col, -v) for col, v in values[a]], -INF, 0.0)
        for a, s in limited.items():
            entries = [(cvars[a], 1.0 - s)] + [(c, -s) for k, c in cvars.items() if k != a]
            b.row(entries + [(col, -s * v) for col, v in free], -INF, 0.0)
        coverage_rows[part.name] = b.row(free + [(c, 1.0) for c in cvars.values()], 0.0, INF)
        blocks[part.name] = (range(first_row, len(b.rlo)), range(first_col, len(b.cost)))
    inventory_rows = {a: b.row([(g, 1.0) for g in gs], -INF, 0.0) for a, gs in by_asset.items()}
    matrix = sp.csc_matrix((b.vals, (b.rows, b.cols)), shape=(len(b.rlo), len(b.cost)))
    return _Structure(np.array(b.cost), np.array(b.lo), np.array(b.hi), matrix, np.array(b.rlo), np.array(b.rhi),
                      x_cols, coverage_rows, inventory_rows, moved_rows, _schedules(problem), blocks)


@dataclass(frozen=True)
class DirectSolution:
    status: SolveStatus
    x: dict[str, np.ndarray]
    coverage_duals: dict[str, float]
    inventory_duals: dict[str, float]
    build_seconds: float
    solve_seconds: float
    iterations: int


class DirectBackend:
    """A HiGHS instance holding the collateral LP; ``solve`` warm-starts from the last basis.
    Takes a collateral-only ``min_cost`` problem (``why_not``); the cvxpy program takes over when
    its plan fails verification."""

    name: ClassVar[str] = "direct"
    fallback: ClassVar[str | None] = "cvxpy"
    problem_class = ProblemClass.LP

    def __init__(self, problem: Description) -> None:
        t0 = time.perf_counter()
        self.problem = problem
        self.highs = quiet_highs()
        self.structure: _Structure | None = None
        self._terms: tuple[object, object] | None = None  # the venues and treasury the structure was built for
        self.loaded = False  # the model is in HiGHS; later solves change row bounds only
        self.build_seconds = time.perf_counter() - t0

    @classmethod
    def why_not(cls, problem: Description) -> str | None:
        if problem.cands:
            return "hedges are traded (the direct LP holds collateral only)"
        if not problem.collateral_free:
            return "collateral is not a variable (the objective or the mode fixes it)"
        return None

    def update(self, problem: Description) -> None:
        """The LP is rebuilt from the books at the next solve, or only its row bounds changed."""
        t0 = time.perf_counter()
        self.problem = problem
        self.build_seconds = time.perf_counter() - t0

    def solve(self, request: SolveRequest) -> Solution:
        sol = self.solve_lp()
        build = self.build_seconds + sol.build_seconds
        note = "direct LP"
        if sol.status is SolveStatus.OPTIMAL:
            plan = Plan(np.zeros(0), {v.name: dict(zip(v.assets, sol.x[v.name].tolist(), strict=True)) for v in self.problem.venues})
            check = request.check(plan) if request.check is not None else None
            status = SolveStatus.OPTIMAL if check is None or check.passed else SolveStatus.INACCURATE
            if status is not SolveStatus.OPTIMAL:
                note += "; verification: " + "; ".join(c.name for c in check.failures[:3])  # type: ignore[union-attr]
            attempt = Attempt("HIGHS", status, sol.solve_seconds, note)
            report = SolveReport("HIGHS", status, ProblemClass.LP, build, sol.solve_seconds, (attempt,), sol.iterations, request.warm)
            # Inventory rows are in value units: their duals are already per unit of value.
            shadow = {"assets": dict(sol.inventory_duals), "venues": dict(sol.coverage_duals)}
            return Solution(status, report, plan, check, shadow=shadow if status is SolveStatus.OPTIMAL else None)
        attempt = Attempt("HIGHS", sol.status, sol.solve_seconds, note)
        report = SolveReport("HIGHS", sol.status, ProblemClass.LP, build, sol.solve_seconds, (attempt,), sol.iterations, request.warm)
        return Solution(sol.status, report)

    def _bounds(self, st: _Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices and values of the row bounds that move with the market."""
        case = self.problem.case
        prices = case.market.prices
        posted_total: dict[str, float] = {}
        for v in case.venues.values():
            for a, q in v.posted.items():
                posted_total[a] = posted_total.get(a, 0.0) + q
        idx, lo, hi = [], [], []
        for part in self.problem.parts:
            idx.append(st.coverage_rows[part.name])
            lo.append(part.book.venue.required(part.book.initial.evaluate(part.book.q)))  # the buffer on top
            hi.append(INF)
        for a, r in st.inventory_rows.items():
            units = (case.treasury[a].quantity if a in case.treasury else 0.0) + posted_total.get(a, 0.0)
            idx.append(r)
            lo.append(-INF)
            hi.append(prices[a] * units)
        for r, a, units in st.moved_rows:
            idx.append(r)
            lo.append(-prices[a] * units)
            hi.append(INF)
        return np.array(idx, dtype=np.int32), np.array(lo), np.array(hi)

    def solve_lp(self) -> DirectSolution:
        t0 = time.perf_counter()
        problem = self.problem
        case = problem.case
        same_terms = self._terms is not None and self._terms[0] is case.venues and self._terms[1] is case.treasury
        if self.structure is None or (not same_terms and self.structure.schedules != _schedules(problem)):
            self.structure, self.loaded = build_structure(problem), False
        self._terms = (case.venues, case.treasury)  # a market move keeps these objects: no key to compare
        st = self.structure
        idx, lo, hi = self._bounds(st)
        if not self.loaded:
            row_lower, row_upper = st.row_lower.copy(), st.row_upper.copy()
            row_lower[idx], row_upper[idx] = lo, hi
            lp = highspy.HighsLp()
            lp.num_col_, lp.num_row_ = len(st.cost), len(row_lower)
            lp.col_cost_, lp.col_lower_, lp.col_upper_ = st.cost, st.col_lower, st.col_upper
            lp.row_lower_, lp.row_upper_ = row_lower, row_upper
            lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
            lp.a_matrix_.start_ = st.matrix.indptr
            lp.a_matrix_.index_ = st.matrix.indices
            lp.a_matrix_.value_ = st.matrix.data
            self.highs.passModel(lp)
            self.loaded = True
        else:
            self.highs.changeRowsBounds(len(idx), idx, lo, hi)
        built = time.perf_counter() - t0
        self.highs.run()
        solved = time.perf_counter() - t0 - built
        status = self.highs.getModelStatus()
        info = self.highs.getInfo()
        if status == highspy.HighsModelStatus.kOptimal:
            sol = self.highs.getSolution()
            col, row_dual = np.asarray(sol.col_value), np.asarray(sol.row_dual)
            prices = problem.case.market.prices
            return DirectSolution(
                SolveStatus.OPTIMAL,
                {p.name: col[st.x_cols[p.name]] / np.array([prices[a] for a in p.assets]) for p in problem.parts},
                # HiGHS row duals are d(objective)/d(row bound): the margin is the coverage row's lower
                # bound, the available value (base currency) the inventory row's upper bound.
                {v: float(row_dual[r]) for v, r in st.coverage_rows.items()},
                {a: float(row_dual[r]) for a, r in st.inventory_rows.items()},
                built, solved, int(info.simplex_iteration_count),
            )
        self.loaded = False  # start the next solve from a clean model
        name = SolveStatus.INFEASIBLE if status == highspy.HighsModelStatus.kInfeasible else SolveStatus.ERROR
        return DirectSolution(name, {}, {}, {}, built, solved, int(info.simplex_iteration_count))
