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

Impact costs ``k_c h_c^2`` (a cone in the continuous program) enter as cuts on their epigraph
``t_c >= z_c^2`` (``z = h / s``, the hedge in units of its bound ``s``), each cut ``t_c >= (p + q) z_c - p q``
the line through ``(p, p^2)`` and ``(q, q^2)``, which never lies above the square at a feasible point:

lotted     ``z = L n / s`` with ``n`` whole, and the secant through consecutive lots ``p = L a / s``,
           ``q = L (a + 1) / s`` is below the square at every whole ``n`` (convexity), equal at ``a`` and
           ``a + 1``: the pair around ``n`` makes ``t`` exact there;
continuous the tangent at ``p = q = z0`` (outer approximation), below the square everywhere.

A few cuts per hedge are placed before the first MIP (``SEED_CUTS``, evenly over its range), the
rest generated lazily (``solve``): each MIP's plan is read, and where its ``t`` understates
``k h^2`` by more than verification's tolerance (``1e-6 + 1e-8 x k h^2``) the cuts at the plan are added
(the secant pair around its lot; the tangent at its quantity) and the MIP solved again, in the same
compiled program (the cuts are slots of ``cp.Parameter`` s, unused ones ``t >= 0``). Every round's
program is a relaxation of the executable problem (same feasible set, the cost under-estimated), so
each MIP's best bound is a lower bound on the executable optimum; when no ``t`` understates, the
incumbent is the executable optimum within the MIP's gap. The certificate counts the rounds
(``outer_rounds``) and reports the last MIP's bound against the plan's exact cost.

A parametric VaR margin moving with the hedges is a cone no cut generation here handles: ``why_not``
refuses it. A market move rebuilds the program (the big-M bounds and ``minimum_transfer / price``
move with prices and inventory).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import cvxpy as cp
import numpy as np

from marginopt.models.margin.leaves import largest_scenario_set
from marginopt.optimizer.backends.base import DEFAULT_GAP, DEFAULT_TIME_LIMIT, Certificate, Solution, SolveRequest, highs_only
from marginopt.optimizer.backends.cvxpy_program import CvxpyBackend
from marginopt.optimizer.description import Description
from marginopt.optimizer.executability import CUT_ROUNDS, GAP_CLOSED, TIME_LIMIT, whole_multiple
from marginopt.optimizer.objectives import cone_margin_venues
from marginopt.optimizer.verify import ABS_TOL, REL_TOL, Plan, Verification  # an impact cost understated by less is exact
from marginopt.solvers.highs import FEASIBLE_SOLUTION
from marginopt.solvers.quiet import guarded_stdout, ignored_warnings
from marginopt.solvers.run import map_status, solve
from marginopt.solvers.status import Attempt, ProblemClass, SolveReport, SolveStatus

# Whole programs from this many scenarios go to the integer route (backends/integer_route.py): cvxpy
# alone takes minutes to compile them, before the time limit can act.
MAX_SCENARIOS = 20_000
MAX_ROUNDS = 50  # MIPs solved while cutting impact costs in; past them the plan is not proven optimal
SEED_CUTS = 4  # cuts per impact hedge placed before the first MIP, evenly over its range: on the demo, 0 4 8 16 took 0.42 0.39 0.39 0.87 s
CUT_SLOTS = 8  # cuts per impact hedge the compiled program holds before it is rebuilt with twice as many


class MipBackend(CvxpyBackend):
    """The cvxpy program plus the execution terms; HiGHS's branch and bound."""

    name: ClassVar[str] = "mip"
    fallback: ClassVar[str | None] = None
    holds_execution_terms: ClassVar[bool] = True
    holds_safety: ClassVar[bool] = False  # routed away with a reason (backends.choose_backend)

    def __init__(self, description: Description, elastic: bool = False, mip_gap: float | None = None,
                 time_limit: float | None = None) -> None:
        self.mip_gap = DEFAULT_GAP if mip_gap is None else float(mip_gap)
        self.time_limit = DEFAULT_TIME_LIMIT if time_limit is None else float(time_limit)
        super().__init__(description, elastic)

    @classmethod
    def why_not(cls, description: Description) -> str | None:
        d = description
        cones = cone_margin_venues(d)
        if cones:
            return (f"a parametric VaR margin that moves with the hedges (venue {', '.join(cones)}) makes the program a "
                    "cone program, which HiGHS's mixed-integer solver cannot hold: give that venue a scenario margin, "
                    "hedge at another venue, or drop the execution terms")
        largest = largest_scenario_set(d.hedged_measures())
        if largest >= MAX_SCENARIOS:
            return (f"a hedged margin over {largest:,} scenarios (from {MAX_SCENARIOS:,} up a whole program is out of "
                    "reach: the integer backend takes integer hedges)")
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
        self.impact: _ImpactCuts | None = None
        super()._assemble()
        self.lots: tuple[np.ndarray, np.ndarray, Any] | None = None  # (candidates, lot sizes, n)
        self.active: tuple[np.ndarray, Any, Any] | None = None  # (candidates, b+, b-)
        self.moves: dict[str, tuple[Any, Any]] = {}  # venue -> (u+, u-) per eligible asset
        self.roundings: dict[str, tuple[np.ndarray, np.ndarray, Any]] = {}  # venue -> (assets, units, k)
        self._hedge_terms()
        self._collateral_terms()
        self.problem = cp.Problem(self.problem.objective, self.constraints)
        self.problem_class = ProblemClass.MILP

    def _impact_epigraph(self, k: np.ndarray, t: Any) -> list[Any]:
        """No cone: the epigraph ``t >= z[k]^2`` is cut in by ``solve`` (slots of parameters, ``t >= 0`` unused)."""
        d = self.description
        assert self.z is not None
        lots = np.array([d.cands[c].lot_size or 0.0 for c in k], dtype=float)
        self.impact = _ImpactCuts(k, t, self.z[k], lots / d.h_scale[k], d.impacts[k] * d.h_scale[k] ** 2)
        self.impact.seed(SEED_CUTS, d.lower[k] / d.h_scale[k], d.upper[k] / d.h_scale[k])
        return self.impact.constraints(max(CUT_SLOTS, 2 * SEED_CUTS))

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
            h[idx] = [whole_multiple(0.0, size, w) for size, w in zip(sizes, np.round(np.asarray(n.value, dtype=float).reshape(-1)),
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
                    units[assets[i]] = whole_multiple(float(posted[i]), s, w)
            if vp.name in self.moves:
                up, down = self.moves[vp.name]
                idle = (np.round(np.asarray(up.value, dtype=float)) + np.round(np.asarray(down.value, dtype=float))) == 0
                for i in np.flatnonzero(idle):
                    units[assets[i]] = float(posted[i])
        return Plan(h, allocation)

    # -- solving -------------------------------------------------------------------
    def _options(self, time_limit: float | None = None) -> dict[str, Any]:
        return {"time_limit": self.time_limit if time_limit is None else time_limit, "mip_rel_gap": self.mip_gap}

    def solve(self, request: SolveRequest) -> Solution:
        """HiGHS's branch and bound, again with the impact cuts at each plan until none understates
        its cost (at most ``MAX_ROUNDS`` MIPs, all within ``time_limit``)."""
        refused = highs_only(request, self.problem_class, self.build_seconds)
        if refused is not None:
            return refused
        t0 = time.perf_counter()
        rounds = nodes = 0
        compile_s = 0.0
        best_bound = -math.inf
        last: _Round | None = None
        converged = self.impact is None
        while True:
            left = self.time_limit - (time.perf_counter() - t0)
            if rounds and left <= 0.0:
                break
            rounds += 1
            status, info, note, seconds = self._solve_once(left if rounds > 1 else None)
            compile_s += seconds
            nodes += int(getattr(info, "mip_node_count", 0)) if info is not None else 0
            found = info is not None and getattr(info, "primal_solution_status", 0) == FEASIBLE_SOLUTION and self.problem.value is not None
            if not (status is SolveStatus.OPTIMAL or (status is SolveStatus.LIMIT and found)):
                break
            plan = self.plan()
            incumbent = float(self.problem.value)
            bound = self._bound(info, status is SolveStatus.OPTIMAL, incumbent)
            best_bound = max(best_bound, bound)
            added = 0
            if self.impact is not None:
                z, t = plan.hedges[self.impact.cands] / self.description.h_scale[self.impact.cands], self.impact.t_value()
                incumbent += self.impact.understated(z, t)
                added = self.impact.add(z, t)
            last = _Round(status, plan, incumbent, added)
            if status is not SolveStatus.OPTIMAL or not added:
                converged = converged or not added
                break
            if rounds >= MAX_ROUNDS:
                break
            self._load_cuts()
        seconds = time.perf_counter() - t0
        status = last.status if last is not None else status
        proven = last is not None and last.status is SolveStatus.OPTIMAL and converged
        note = note if last is None else ""
        if last is not None and not proven:
            note = (f"time limit {self.time_limit:g} s: the incumbent, not proven optimal" if last.status is SolveStatus.LIMIT
                    or time.perf_counter() - t0 >= self.time_limit else
                    f"{rounds} rounds of impact cuts: the incumbent's impact cost still understated, not proven optimal")
            status = SolveStatus.LIMIT
        if rounds > 1:
            note = (note + "; " if note else "") + f"{rounds} MIPs, impact costs cut in at each plan"
        report = SolveReport("HIGHS", status, self.problem_class, self.build_seconds + compile_s, max(seconds - compile_s, 0.0),
                             (Attempt("HIGHS", status, seconds, note),), nodes if rounds else None)
        if last is None:
            return Solution(status, report)
        check: Verification | None = request.check(last.plan) if request.check is not None else None
        incumbent = last.incumbent
        if check is not None and check.passed:
            # The plan's exact objective, recomputed. A MIP stopped by its time limit can leave the
            # epigraph variables (expected shortfall's threshold and tail excesses, a maximum's
            # level) above the margin they bound, so its objective overstates the plan's cost.
            incumbent = check.objective_value
        timed = last.status is SolveStatus.LIMIT or time.perf_counter() - t0 >= self.time_limit
        stopped = GAP_CLOSED if proven else TIME_LIMIT if timed else CUT_ROUNDS
        certificate = self._certificate(incumbent, min(best_bound, incumbent), proven, nodes, rounds, stopped)
        return Solution(SolveStatus.OPTIMAL, report, last.plan, check, certificate, extra={"mip": certificate.to_dict()})

    def _solve_once(self, time_limit: float | None) -> tuple[SolveStatus, Any, str, float]:
        """One MIP: its status, HiGHS's info (None on an error), a note, and cvxpy's compile seconds."""
        note = ""
        try:
            with ignored_warnings(), guarded_stdout():
                self.problem.solve(solver="HIGHS", verbose=False, **self._options(time_limit))
            status = map_status(self.problem.status)
        except (cp.error.SolverError, ValueError) as exc:
            status, note = SolveStatus.ERROR, (str(exc).splitlines() or ["solver error"])[0]
        info = getattr(self.problem.solver_stats, "extra_stats", None) if status is not SolveStatus.ERROR else None
        return status, info, note, float(getattr(self.problem, "compilation_time", None) or 0.0)

    def _load_cuts(self) -> None:
        """The cuts into their parameters; a program whose slots are full is rebuilt with twice as many."""
        assert self.impact is not None
        if self.impact.fits():
            self.impact.load()
            return
        old = {id(c) for c in self.impact.slots}
        self.constraints = [c for c in self.constraints if id(c) not in old]
        self.constraints += self.impact.constraints(2 * self.impact.capacity())
        self.problem = cp.Problem(self.problem.objective, self.constraints)

    def _bound(self, info: Any, proven: bool, incumbent: float) -> float:
        """HiGHS's best bound in the program's objective (cvxpy's constant offset added back)."""
        offset = incumbent - float(info.objective_function_value)
        bound = float(info.mip_dual_bound) + offset
        if not math.isfinite(bound):
            bound = incumbent if proven else -math.inf
        return min(bound, incumbent)

    def _certificate(self, incumbent: float, bound: float, proven: bool, nodes: int, rounds: int, stopped: str) -> Certificate:
        """The plan's exact objective (impact at its quantities), the best bound of the MIPs (each a
        relaxation of the executable problem) and the gap between them, relative as HiGHS's."""
        gap = max(incumbent - bound, 0.0)
        relative = 0.0 if gap == 0.0 else gap / abs(incumbent) if incumbent != 0.0 else math.inf
        method = "mip: HiGHS branch and bound" + (", impact costs cut in lazily" if self.impact is not None else "")
        return Certificate(method, nodes, proven, bound, gap, {}, incumbent=incumbent, relative_gap=relative, proven_optimal=proven,
                           requested_gap=self.mip_gap, time_limit=self.time_limit, outer_rounds=rounds, stopped=stopped)

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


@dataclass(frozen=True)
class _Round:
    """One MIP's plan, and its objective with the impact costs exact."""

    status: SolveStatus
    plan: Plan
    incumbent: float
    cuts_added: int


class _ImpactCuts:
    """Cuts on the impact epigraph ``t >= z^2`` of the hedges ``cands``: per hedge a list of lines
    through ``(p, p^2)``, ``(q, q^2)`` (``p = q``: a tangent), held in slots of parameters
    ``w t >= w (slope_r z + offset_r)`` (slope ``p + q``, offset ``-p q``, ``w`` the weight; an unused
    slot is ``t >= 0``)."""

    def __init__(self, cands: np.ndarray, t: Any, z: Any, unit: np.ndarray, weight: np.ndarray) -> None:
        self.cands, self.t, self.z = cands, t, z
        self.unit = unit  # the lot in units of the hedge's bound, 0 for a continuous hedge
        self.weight = weight  # cost per unit of t: impact x bound^2
        self.points: list[list[tuple[float, float]]] = [[] for _ in cands]
        self.slots: list[Any] = []
        self.slopes: list[cp.Parameter] = []
        self.offsets: list[cp.Parameter] = []

    def seed(self, count: int, lower: np.ndarray, upper: np.ndarray) -> None:
        """``count`` cuts per hedge spread evenly over ``[lower, upper]`` (units of its bound): secants
        between consecutive lots for a lotted hedge, tangents for a continuous one."""
        if count <= 0:
            return
        for j, (lo, hi, u) in enumerate(zip(lower, upper, self.unit, strict=True)):
            if u > 0.0:
                first, last = -math.floor(-lo / u + 1e-9), math.floor(hi / u + 1e-9)
                for a in sorted({round(a) for a in np.linspace(first, max(last - 1, first), count)}):
                    self.points[j].append((u * a, u * (a + 1)))
            else:
                self.points[j] += [(float(p), float(p)) for p in np.linspace(lo, hi, count)]

    def constraints(self, slots: int) -> list[Any]:
        n = len(self.cands)
        self.slopes = [cp.Parameter(n, name=f"impact_cut{r}.slope") for r in range(slots)]
        self.offsets = [cp.Parameter(n, name=f"impact_cut{r}.offset") for r in range(slots)]
        # Rows in base currency (each side times the weight): the solver's feasibility tolerance then
        # leaves t understating the cost by about 1e-6 of currency, not 1e-6 of t (100 times that at a
        # bound of 10 contracts, which verification's tolerance would not accept as exact).
        weighted = cp.multiply(self.weight, self.t)
        self.slots = [weighted >= cp.multiply(a, self.z) + b for a, b in zip(self.slopes, self.offsets, strict=True)]
        self.load()
        return list(self.slots)

    def capacity(self) -> int:
        return len(self.slots)

    def fits(self) -> bool:
        return max(len(p) for p in self.points) <= self.capacity()

    def load(self) -> None:
        slope, offset = np.zeros((self.capacity(), len(self.cands))), np.zeros((self.capacity(), len(self.cands)))
        for j, cuts in enumerate(self.points):
            for r, (p, q) in enumerate(cuts):
                slope[r, j], offset[r, j] = p + q, -p * q
        for r in range(self.capacity()):
            self.slopes[r].value, self.offsets[r].value = self.weight * slope[r], self.weight * offset[r]

    def t_value(self) -> np.ndarray:
        return np.asarray(self.t.value, dtype=float).reshape(-1)

    def understated(self, z: np.ndarray, t: np.ndarray) -> float:
        """How far below the plan's impact cost ``weight z^2`` the program's ``weight t`` is, in total."""
        return float(self.weight @ np.maximum(z * z - t, 0.0))

    def add(self, z: np.ndarray, t: np.ndarray) -> int:
        """The cuts at the plan ``z`` for each hedge whose ``t`` understates its cost by more than
        verification's tolerance (the secant pair around a lot, the tangent at a quantity); the number
        of new ones (a cut already held is not added again: what it leaves is the solver's tolerance)."""
        added = 0
        for j, (zj, tj) in enumerate(zip(z, t, strict=True)):
            cost = self.weight[j] * zj * zj
            if cost - self.weight[j] * tj <= ABS_TOL + REL_TOL * cost:
                continue
            u = self.unit[j]
            if u > 0.0:
                n = round(zj / u)
                new = [(u * (n - 1), u * n), (u * n, u * (n + 1))]
            else:
                new = [(float(zj), float(zj))]
            for pair in new:
                if not any(abs(pair[0] - p) <= 1e-12 and abs(pair[1] - q) <= 1e-12 for p, q in self.points[j]):
                    self.points[j].append(pair)
                    added += 1
        return added
