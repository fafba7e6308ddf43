"""An executable plan: the cvxpy program with the case's execution terms, solved by HiGHS's MIP.

The program of ``backends/cvxpy_program.py`` (hedges ``h``, collateral ``x``, coverage, inventory,
limits, costs) with, from the case (CASE_FORMAT.md, "Execution terms"):

lots          ``h_c = L_c n_c``, ``n_c`` integer (``lot_size``);
min trade     ``h_c = 0`` or ``|h_c| >= m_c``: binaries ``b+_c + b-_c <= 1`` and
              ``m_c b+_c - S_c b-_c <= h_c <= B_c b+_c - m_c b-_c`` with ``B_c = max_buy``,
              ``S_c = max_sell`` (the hedge's own bounds: the big-M is never guessed);
tickets       ``sum_c (b+_c + b-_c) <= max_tickets`` (every hedge then carries the binaries, m = 0);
moves         ``d = x[v][a] - posted[v][a]`` is 0 or worth at least ``minimum_transfer`` of gross
              value: the same pair of binaries with ``m = minimum_transfer / price_a``, the bounds
              ``posted[v][a]`` (down) and ``inventory_a - posted[v][a]`` (up), inventory being the
              treasury's quantity plus what every venue holds;
move caps     ``sum_a (u+ + u-) <= max_moves`` per venue, and over every venue (``execution.max_moves``);
rounding      ``d = r_a k``, ``k`` integer (``treasury.<a>.rounding``).

HiGHS's branch and bound runs under a time limit and a relative gap (``mip_rel_gap``); cvxpy's
interface hands back HiGHS's info as ``solver_stats.extra_stats``, whose ``mip_dual_bound`` is
the best bound (without cvxpy's constant offset, which is added back here) and ``mip_gap`` the
relative gap ``(incumbent - bound) / |incumbent|``. The plan is read at the incumbent with the
integer variables rounded (a lot is ``L round(n)``, a move under its binaries' zero is none), so
it is what a desk would execute; verification recomputes every margin and term there. A MIP has
no duals: the plan carries no shadow prices.

A program with a cone (a hedge's impact cost, a parametric VaR margin moving with the hedges)
cannot go to HiGHS's MIP, and ``why_not`` says so. A market move rebuilds the program (the
big-M bounds and ``minimum_transfer / price`` move with prices and inventory).
"""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any, ClassVar

import cvxpy as cp
import numpy as np

from marginopt.models.margin.leaves import largest_scenario_set
from marginopt.optimizer.backends.base import Certificate, Solution, SolveRequest
from marginopt.optimizer.backends.cvxpy_program import CvxpyBackend
from marginopt.optimizer.description import Description
from marginopt.optimizer.verify import Plan, Verification
from marginopt.solvers.quiet import guarded_stdout, ignored_warnings
from marginopt.solvers.run import map_status, solve
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus

DEFAULT_GAP = 1e-6  # relative gap at which HiGHS stops and calls the incumbent optimal
DEFAULT_TIME_LIMIT = 60.0  # seconds
# Whole programs from this many scenarios are left to a later slice of issue 17 (item 4): cvxpy
# alone takes minutes to compile them, before the time limit can act.
MAX_SCENARIOS = 20_000
_FEASIBLE = 2  # HiGHS's kSolutionStatusFeasible


class MipBackend(CvxpyBackend):
    """The cvxpy program plus the execution terms; HiGHS's branch and bound."""

    name: ClassVar[str] = "mip"
    fallback: ClassVar[str | None] = None
    holds_execution_terms: ClassVar[bool] = True

    def __init__(self, description: Description, elastic: bool = False, mip_gap: float | None = None,
                 time_limit: float | None = None) -> None:
        self.mip_gap = DEFAULT_GAP if mip_gap is None else float(mip_gap)
        self.time_limit = DEFAULT_TIME_LIMIT if time_limit is None else float(time_limit)
        super().__init__(description, elastic)

    @classmethod
    def why_not(cls, description: Description) -> str | None:
        d = description
        if d.kind.problem_class(d) is not ProblemClass.LP:
            return ("a hedge with an impact cost or a parametric VaR margin that moves with the hedges makes the "
                    "program a cone program, which HiGHS's mixed-integer solver cannot hold: drop impact from the "
                    "hedges table, or the execution terms")
        largest = largest_scenario_set(d.hedged_measures())
        if largest >= MAX_SCENARIOS:
            return (f"a hedged margin over {largest:,} scenarios (from {MAX_SCENARIOS:,} up, integer hedges over a "
                    "whole program are not built yet)")
        for c in d.cands:
            if not (math.isfinite(c.max_buy) and math.isfinite(c.max_sell)):
                return f"hedge {c.venue}:{c.instrument} has no finite bound to take a big-M from"
        if d.collateral_free:
            for v in d.venues:
                for a in v.assets:
                    if not math.isfinite(d.available(a)) or not d.case.market.prices[a] > 0.0:
                        return f"asset {a} at venue {v.name} has no finite inventory and positive price to bound its moves"
        return None

    # -- building ------------------------------------------------------------------
    def _assemble(self) -> None:
        super()._assemble()
        self.lots: tuple[np.ndarray, np.ndarray, Any] | None = None  # (candidates, lot sizes, n)
        self.active: tuple[np.ndarray, Any, Any] | None = None  # (candidates, b+, b-)
        self.moves: dict[str, tuple[Any, Any]] = {}  # venue -> (u+, u-) per eligible asset
        self.roundings: dict[str, tuple[np.ndarray, np.ndarray, Any]] = {}  # venue -> (assets, units, k)
        self._hedge_terms()
        self._collateral_terms()
        self.problem = cp.Problem(self.problem.objective, self.constraints)
        self.problem_class = ProblemClass.MILP

    def _hedge_terms(self) -> None:
        d = self.description
        if self.h is None:
            return
        cands, case = d.cands, d.case
        lotted = np.array([k for k, c in enumerate(cands) if c.lot_size is not None], dtype=np.int64)
        if len(lotted):
            sizes = np.array([cands[k].lot_size for k in lotted], dtype=float)
            n = cp.Variable(len(lotted), integer=True, name="lots")
            self.constraints.append(self.h[lotted] == cp.multiply(sizes, n))
            self.lots = (lotted, sizes, n)
        tickets = case.execution.max_tickets
        chosen = [k for k, c in enumerate(cands) if c.min_trade > 0.0 or tickets is not None]
        if not chosen:
            return
        idx = np.array(chosen, dtype=np.int64)
        up, down = cp.Variable(len(idx), boolean=True, name="buy"), cp.Variable(len(idx), boolean=True, name="sell")
        m = np.array([cands[k].min_trade for k in idx])
        self._semicontinuous(self.h[idx], up, down, m, d.upper[idx], -d.lower[idx])
        self.active = (idx, up, down)
        if tickets is not None:
            self.constraints.append(cp.sum(up) + cp.sum(down) <= tickets)

    def _semicontinuous(self, expr: Any, up: Any, down: Any, minimum: np.ndarray, above: np.ndarray, below: np.ndarray) -> None:
        """``expr = 0``, ``minimum <= expr <= above`` (up) or ``-below <= expr <= -minimum`` (down)."""
        self.constraints += [up + down <= 1,
                             expr <= cp.multiply(above, up) - cp.multiply(minimum, down),
                             expr >= cp.multiply(minimum, up) - cp.multiply(below, down)]

    def _collateral_terms(self) -> None:
        d = self.description
        if not d.collateral_free:
            return
        case, prices = d.case, d.case.market.prices
        counted = case.execution.max_moves is not None
        all_moves: list[Any] = []
        for vp in self.venues:
            if vp.x is None:
                continue
            venue, spec = vp.venue, case.venues[vp.name]
            delta = vp.x - venue.posted
            units = [case.treasury[a].rounding if a in case.treasury else None for a in venue.assets]
            rounded = np.array([i for i, r in enumerate(units) if r is not None], dtype=np.int64)
            if len(rounded):
                step = np.array([units[i] for i in rounded], dtype=float)
                k = cp.Variable(len(rounded), integer=True, name=f"{vp.name}.moves_in_units")
                self.constraints.append(delta[rounded] == cp.multiply(step, k))
                self.roundings[vp.name] = (rounded, step, k)
            if not (spec.minimum_transfer > 0.0 or spec.max_moves is not None or counted):
                continue
            n = len(venue.assets)
            up = cp.Variable(n, boolean=True, name=f"{vp.name}.move_in")
            down = cp.Variable(n, boolean=True, name=f"{vp.name}.move_out")
            minimum = np.array([spec.minimum_transfer / prices[a] for a in venue.assets])
            above = np.array([max(d.available(a) - p, 0.0) for a, p in zip(venue.assets, venue.posted, strict=True)])
            self._semicontinuous(delta, up, down, minimum, above, np.asarray(venue.posted, dtype=float))
            self.moves[vp.name] = (up, down)
            if spec.max_moves is not None:
                self.constraints.append(cp.sum(up) + cp.sum(down) <= spec.max_moves)
            all_moves += [cp.sum(up), cp.sum(down)]
        if counted and all_moves:
            self.constraints.append(cp.sum(cp.hstack(all_moves)) <= case.execution.max_moves)

    # -- the plan as executed --------------------------------------------------------
    def plan(self) -> Plan:
        """The incumbent with its integers whole: lots ``L round(n)``, moves ``r round(k)``, and a
        trade or move whose binaries are both 0 exactly none (HiGHS holds integers to 1e-6)."""
        raw = super().plan()
        h = raw.hedges.copy()
        if self.lots is not None:
            idx, sizes, n = self.lots
            h[idx] = [_multiple(0.0, size, w) for size, w in zip(sizes, np.round(np.asarray(n.value, dtype=float).reshape(-1)),
                                                                     strict=True)]
        if self.active is not None:
            idx, up, down = self.active
            off = (np.round(np.asarray(up.value, dtype=float)) + np.round(np.asarray(down.value, dtype=float))) == 0
            h[idx[off]] = 0.0
        allocation = {venue: dict(units) for venue, units in raw.allocation.items()}
        for vp in self.venues:
            if vp.name not in allocation:
                continue
            units, assets, posted = allocation[vp.name], vp.venue.assets, vp.venue.posted
            if vp.name in self.roundings:
                idx, step, k = self.roundings[vp.name]
                whole = np.round(np.asarray(k.value, dtype=float).reshape(-1))
                for i, s, w in zip(idx, step, whole, strict=True):
                    units[assets[i]] = _multiple(float(posted[i]), s, w)
            if vp.name in self.moves:
                up, down = self.moves[vp.name]
                idle = (np.round(np.asarray(up.value, dtype=float)) + np.round(np.asarray(down.value, dtype=float))) == 0
                for i in np.flatnonzero(idle):
                    units[assets[i]] = float(posted[i])
        return Plan(h, allocation)

    # -- solving -------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        return {"time_limit": self.time_limit, "mip_rel_gap": self.mip_gap}

    def solve(self, request: SolveRequest) -> Solution:
        forced = request.solver
        if forced is not None and forced.upper() != "HIGHS":
            note = f"an executable plan (a mixed-integer program) is solved by HiGHS alone, not {forced}"
            attempt = Attempt(forced, SolveStatus.ERROR, 0.0, note)
            return Solution(SolveStatus.ERROR, SolveReport(None, SolveStatus.ERROR, self.problem_class, self.build_seconds, 0.0,
                                                           (attempt,)))
        t0 = time.perf_counter()
        note = ""
        try:
            with ignored_warnings(), guarded_stdout():
                self.problem.solve(solver="HIGHS", verbose=False, **self._options())
            status = map_status(self.problem.status)
        except (cp.error.SolverError, ValueError) as exc:
            status, note = SolveStatus.ERROR, (str(exc).splitlines() or ["solver error"])[0]
        seconds = time.perf_counter() - t0
        compile_s = float(getattr(self.problem, "compilation_time", None) or 0.0)
        info = getattr(self.problem.solver_stats, "extra_stats", None) if status is not SolveStatus.ERROR else None
        found = info is not None and getattr(info, "primal_solution_status", 0) == _FEASIBLE and self.problem.value is not None
        proven = status is SolveStatus.OPTIMAL
        if status is SolveStatus.LIMIT and found:
            note = f"time limit {self.time_limit:g} s: the incumbent, not proven optimal"
        report = SolveReport("HIGHS", status, self.problem_class, self.build_seconds + compile_s, max(seconds - compile_s, 0.0),
                             (Attempt("HIGHS", status, seconds, note),),
                             int(getattr(info, "mip_node_count", 0)) if info is not None else None)
        if not (proven or (status is SolveStatus.LIMIT and found)):
            return Solution(status, report)
        certificate = self._certificate(info, proven)
        plan = self.plan()
        check: Verification | None = request.check(plan) if request.check is not None else None
        return Solution(SolveStatus.OPTIMAL, report, plan, check, certificate,
                        extra={"mip": certificate.to_dict()})

    def _certificate(self, info: Any, proven: bool) -> Certificate:
        """Incumbent, best bound and gap in the program's objective (cvxpy's constant offset added back)."""
        incumbent = float(self.problem.value)
        offset = incumbent - float(info.objective_function_value)
        bound = float(info.mip_dual_bound) + offset
        if not math.isfinite(bound):
            bound = incumbent if proven else -math.inf
        bound = min(bound, incumbent)
        relative = float(info.mip_gap) if math.isfinite(float(info.mip_gap)) else math.inf
        if incumbent - bound <= 0.0:
            relative = 0.0
        return Certificate("mip: HiGHS branch and bound", int(getattr(info, "mip_node_count", 0)), proven, bound,
                           incumbent - bound, {}, incumbent=incumbent, relative_gap=relative, proven_optimal=proven,
                           requested_gap=self.mip_gap, time_limit=self.time_limit)

    def shadow_prices(self) -> dict[str, dict[str, float]]:
        return {"assets": {}, "venues": {}}  # a MIP has no duals

    def shortfalls(self, solver: str | None) -> tuple[tuple[str, float], ...]:
        """What is short and by how much: the elastic MIP's slacks (the execution terms kept)."""
        if not self.slacks:
            return ()
        report = solve(self.problem, self.problem_class, forced="HIGHS", options={"HIGHS": self._options()})
        if report.status is not SolveStatus.OPTIMAL:
            return (("the elastic problem could not be solved", float("nan")),)
        return self._slack_values()

    def update(self, description: Description) -> None:
        """A market move moves the big-M bounds and minimum transfers in units: the program is rebuilt."""
        t0 = time.perf_counter()
        self.description = description
        self._assemble()
        self.build_seconds = time.perf_counter() - t0


def _multiple(base: float, step: float, count: float) -> float:
    """``base + count * step`` as the decimals read them: 3 lots of 0.1 are 0.3, not the binary
    product's 0.30000000000000004 (which the plan would print)."""
    return float(Decimal(repr(float(base))) + Decimal(repr(float(step))) * int(count))
