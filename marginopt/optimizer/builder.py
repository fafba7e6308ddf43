"""The problem builder: hedges and collateral across venues as one convex program.

Variables
    ``h[c]``      contracts traded of hedge candidate c, ``-max_sell <= h <= max_buy``;
    ``x[v][a]``   units of asset a posted at venue v after the plan (eligible assets only);
    ``y[v][a]``   value of them after haircut: ``y <= b_k + r_k p_a x`` for every tier k,
                  the hypograph of the concave piecewise-linear tier schedule (flat = one piece);
    ``c[v][a]``   value credited under concentration limits: ``c <= y``, ``c_a <= s_a sum(c)``.

Constraints
    coverage      ``IM_v(q_v + A_v h) <= sum_a c[v][a]`` for every venue (min_cost);
    inventory     ``sum_v x[v][a] <= treasury_a + sum_v posted[v][a]``;
    limits        net delta per underlying, worst whole-book scenario loss, linear bounds on h.

Objective: ``min_cost`` = yearly funding of what is posted + transfer costs of what
is moved in + hedge costs ``u |h| + k h^2`` (the square as a cone, ``t >= z^2``);
``min_margin`` = total initial margin + hedge costs, collateral as posted.

Hedges are variables in units of their bound and collateral in units of what
could be posted (scaling only: the optimum is the same), because interior-point
solvers stall when one column counts ten-dollar contracts in hundreds of
thousands and another BTC futures in tens. A problem without hedges and with
``min_cost`` goes to ``optimizer.direct`` instead (an LP built for HiGHS).

Each venue's margin enters through its measure's cvxpy form: the builder never
special-cases a venue. Everything that moves with the market (value rates
``r_k p_a``, costs, inventory, the measures' scenario data, deltas, constant
margins, limits) is a ``cp.Parameter``, so ``update(case)`` after a market move
re-solves the compiled problem.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from marginopt.errors import MarginoptError
from marginopt.models.book import VenueBook, whole_book_losses
from marginopt.models.case import Case
from marginopt.models.collateral import HaircutSchedule
from marginopt.models.enums import Objective
from marginopt.models.margin import Measure, ParametricVaR, convex_form
from marginopt.models.margin.columns import reduce_rows
from marginopt.models.margin.composite import Composite
from marginopt.solvers import ProblemClass

if TYPE_CHECKING:
    from marginopt.optimizer.direct import DirectLP
    from marginopt.optimizer.generation import Generation
    from marginopt.optimizer.scenario_route import ScenarioRoute


class Mode(str, Enum):
    OPTIMIZE = "optimize"  # hedges and collateral
    HEDGE = "hedge"  # hedges only, collateral fixed as posted
    ALLOCATE = "allocate"  # collateral only, no hedges


@lru_cache(maxsize=4096)
def pieces(schedule: HaircutSchedule) -> tuple[np.ndarray, np.ndarray]:
    """(intercepts, rates) with ``value(g) = min_k intercept_k + rate_k g`` for ``g >= 0``."""
    if schedule.haircut is not None:
        return np.zeros(1), np.array([1.0 - schedule.haircut])
    assert schedule.tiers is not None
    bounds = np.array([b for b, _ in schedule.tiers])
    rates = np.array([r for _, r in schedule.tiers])
    lower = np.concatenate(([0.0], bounds[:-1]))
    value_at_lower = np.concatenate(([0.0], np.cumsum(rates * (bounds - lower))[:-1]))
    cap = float(np.sum(rates * (bounds - lower)))  # value above the last bound counts zero
    return np.append(value_at_lower - rates * lower, cap), np.append(rates, 0.0)


@dataclass
class VenuePart:
    """One venue's share of the problem."""

    name: str
    book: VenueBook
    measure: Measure  # the convex form of the initial margin
    cands: list[int]  # hedge candidates traded here
    assets: tuple[str, ...]  # eligible collateral
    posted: np.ndarray  # units posted now, per asset
    position: cp.Expression | None = None  # q + A h, None when constant
    im: Any = None  # cvxpy expression or parameter
    im_const: cp.Parameter | None = None
    x: Any = None  # units posted after the plan (an expression of a scaled variable)
    x_scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    credited: Any = None  # total credited collateral value (expression or parameter)
    credited_const: cp.Parameter | None = None
    coverage: Any = None  # the coverage constraint
    params: dict[str, cp.Parameter] = field(default_factory=dict)
    piece_asset: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    piece_rate: np.ndarray = field(default_factory=lambda: np.zeros(0))
    full_measure: Measure | None = None  # the convex form before any restriction to working sets
    # The book's columns the hedges trade, when ``measure`` is on them alone (``Measure.on_columns``):
    # ``position`` is then ``[q_C + A_C h, 1]``, the rest of the book held folded into the last entry.
    columns: np.ndarray | None = None


class MarginProblem:
    """The allocation problem of a case, built once and re-solvable after a market move."""

    def __init__(self, case: Case, objective: Objective | None = None, mode: Mode = Mode.OPTIMIZE,
                 elastic: bool = False, backend: str = "auto", generation: Generation | None = None) -> None:
        """``elastic``: every coverage and limit constraint gets a non-negative slack and
        the objective is their sum, so the problem is always feasible and the slacks
        say which constraint is short and by how much (infeasibility diagnosis).

        ``backend``: ``auto`` builds a collateral-only ``min_cost`` problem (no hedge
        traded) directly for HiGHS (``optimizer.direct``) and everything else in cvxpy;
        ``cvxpy`` always uses cvxpy with every scenario in the program; ``generate`` restricts
        expected-shortfall and scenario-maximum measures to working sets of scenarios
        (``optimizer.generation``), which ``auto`` also chooses for a venue with hedges and
        at least ``LARGE_SCENARIOS`` scenarios; ``scenario`` hands a ``min_margin`` hedge program
        over ES and scenario-maximum margins to ``solvers.scenario_lp`` (``optimizer.scenario_route``),
        which ``auto`` takes wherever it applies, at any size: from 1,000 scenarios up it is
        1.7-30x faster than compiling the program in cvxpy (benchmarks/large_scenarios.py
        --route-table), and on an account's small program about twice as fast
        (benchmarks/batch.py). ``highs`` is ``auto`` for a forced HiGHS: the direct LP, and
        the route only from ``LARGE_SCENARIOS`` up (below it the program goes to HiGHS through
        cvxpy, as asked). ``route_first`` is ``auto`` (kept for callers that name it).
        ``generation`` carries working sets over."""
        t0 = time.perf_counter()
        route_first = backend in ("auto", "route_first")
        backend = "auto" if backend in ("route_first", "highs") else backend
        self.case = case
        self.elastic = elastic
        self.slacks: dict[str, cp.Variable] = {}
        self.objective = objective or case.objective
        self.mode = mode
        self.cands = list(case.hedges) if mode is not Mode.ALLOCATE else []
        # Each hedge in units of its own bound (h = bound * z): candidates range from 100 futures
        # to 500,000 ten-dollar inverse contracts, and interior-point solvers stall on that spread.
        self.h_scale = np.array([max(c.max_buy, c.max_sell, 1.0) for c in self.cands])
        self.z = cp.Variable(len(self.cands), name="hedge") if self.cands else None
        self.h = cp.multiply(self.h_scale, self.z) if self.z is not None else None
        self.collateral_free = mode is not Mode.HEDGE and self.objective is Objective.MIN_COST
        self.coverage_required = self.objective is Objective.MIN_COST
        self.constraints: list[Any] = []
        self.limit_params: dict[str, cp.Parameter] = {}
        self.inventory: dict[str, Any] = {}
        self.parts = [self._part(name) for name in case.venues]
        self.direct: DirectLP | None = None
        self.generation: Generation | None = None
        self.route: ScenarioRoute | None = None
        if backend == "auto" and self.h is None and self.collateral_free and not elastic:
            from marginopt.optimizer.direct import DirectLP

            self.direct = DirectLP(self)
            self.problem_class = ProblemClass.LP
            self.build_seconds = time.perf_counter() - t0
            return
        if backend == "scenario" or (backend == "auto" and not elastic and (route_first or self._large())):
            from marginopt.optimizer.scenario_route import ScenarioRoute, why_not

            reason = why_not(self)
            if reason is None:
                self.route = ScenarioRoute(self)
                self.problem_class = ProblemClass.LP
                self.build_seconds = time.perf_counter() - t0
                return
            if backend == "scenario":
                raise MarginoptError(f"--solver SCENARIO: {reason}; use GENERATE or FULL")
        if backend == "generate" or (backend == "auto" and self._large()):
            from marginopt.optimizer.generation import Generation, start_positions

            self.generation = generation or Generation()
            if not self.generation.working:
                self.generation.starts = start_positions(self)
        self._assemble()
        self.build_seconds = time.perf_counter() - t0

    def _large(self) -> bool:
        from marginopt.optimizer.generation import LARGE_SCENARIOS, largest_scenario_set

        return largest_scenario_set([p.measure for p in self.parts if p.cands]) >= LARGE_SCENARIOS

    def _assemble(self) -> None:
        """The cvxpy program from the parts (again, with larger working sets, in ``rebuild``)."""
        for part in self.parts:
            part.columns = None
            if self.generation is not None and part.cands:
                # On the hedged columns first (the rest of the book folded in), then to working sets of scenarios.
                full = part.full_measure or part.measure
                cols = self._hedged_columns(part)
                reduced = full.on_columns(cols, part.book.q)
                if reduced is not None:
                    part.columns = self.generation.columns[part.name] = cols
                else:
                    self.generation.columns.pop(part.name, None)
                part.measure = self.generation.restrict(part.name, reduced or full, part.book.q, len(part.cands))
            self._formulate(part)
        self._inventory()
        self._limits()
        self.cost_terms = ({"shortfall": cp.sum(cp.hstack(list(self.slacks.values())))} if self.elastic and self.slacks
                           else self._objective_terms())
        self.problem = cp.Problem(cp.Minimize(sum(self.cost_terms.values())), self.constraints)
        self.problem_class = self._class()

    def rebuild(self) -> None:
        """Compile again after the generation's working sets grew (the books are kept)."""
        t0 = time.perf_counter()
        self.slacks, self.constraints, self.limit_params, self.inventory = {}, [], {}, {}
        self._assemble()
        self.build_seconds = time.perf_counter() - t0

    # -- venues ----------------------------------------------------------------
    def _part(self, name: str) -> VenuePart:
        book = VenueBook(self.case, name)
        venue = book.venue
        cands = [i for i, c in enumerate(self.cands) if c.venue == name]
        assets = tuple(venue.collateral)
        posted = np.array([venue.posted.get(a, 0.0) for a in assets])
        measure = convex_form(book.initial)
        return VenuePart(name, book, measure, cands, assets, posted, full_measure=measure)

    def _formulate(self, part: VenuePart) -> None:
        name, book, cands, assets = part.name, part.book, part.cands, part.assets
        if cands and self.h is not None:
            rows = np.array([book.column(self.cands[i].instrument) for i in cands])
            # The held book is a constant: the measure on the hedged columns only, the rest folded in
            # (with generation, _assemble has done so before restricting the scenarios).
            if self.generation is None:
                cols = np.unique(rows)
                reduced = (part.full_measure or part.measure).on_columns(cols, book.q)
                if reduced is not None:
                    part.columns, part.measure = cols, reduced
            if part.columns is not None:
                cols = part.columns
                select = sp.csr_matrix((np.ones(len(cands)), (np.searchsorted(cols, rows), cands)), shape=(len(cols), len(self.cands)))
                part.position = cp.hstack([book.q[cols] + select @ self.h, np.ones(1)])
            else:
                select = sp.csr_matrix((np.ones(len(cands)), (rows, cands)), shape=(len(book.ids), len(self.cands)))
                part.position = book.q + select @ self.h
            part.im, cons = part.measure.cvxpy(part.position)
            self.constraints += cons
        else:
            part.im_const = cp.Parameter(nonneg=True, value=book.initial.evaluate(book.q), name=f"{name}.margin")
            part.im = part.im_const
        if self.collateral_free and assets:
            self._collateral(part)
        else:
            value = sum(c.credited_value for c in book.collateral())
            part.credited_const = cp.Parameter(nonneg=True, value=float(value), name=f"{name}.collateral")
            part.credited = part.credited_const
        if self.coverage_required:
            part.coverage = part.im <= part.credited + self._slack(f"{name}: initial margin not covered")
            self.constraints.append(part.coverage)

    def _hedged_columns(self, part: VenuePart) -> np.ndarray:
        """The venue book's columns its hedge candidates trade, sorted, each once."""
        return np.unique([part.book.column(self.cands[i].instrument) for i in part.cands])

    def _slack(self, name: str) -> Any:
        if not self.elastic:
            return 0.0
        self.slacks[name] = cp.Variable(nonneg=True, name=name)
        return self.slacks[name]

    def _collateral(self, part: VenuePart) -> None:
        venue, prices = part.book.venue, self.case.market.prices
        n = len(part.assets)
        # Units of each asset as a share of what could be posted (BTC comes in tens, USDC in millions).
        treasury = self.case.treasury
        part.x_scale = np.maximum(np.array([(treasury[a].quantity if a in treasury else 0.0) for a in part.assets])
                                  + np.array([sum(v.posted.get(a, 0.0) for v in self.case.venues.values()) for a in part.assets]), 1.0)
        share = cp.Variable(n, nonneg=True, name=f"{part.name}.collateral")
        part.x = cp.multiply(part.x_scale, share)
        y = cp.Variable(n, name=f"{part.name}.value")
        piece_asset, intercept, rate = [], [], []
        for i, a in enumerate(part.assets):
            b, r = pieces(venue.collateral[a])
            piece_asset += [i] * len(b)
            intercept.append(b)
            rate.append(r)
        part.piece_asset = np.array(piece_asset, dtype=np.int64)
        part.piece_rate = np.concatenate(rate)
        select = sp.csr_matrix((np.ones(len(piece_asset)), (np.arange(len(piece_asset)), piece_asset)), shape=(len(piece_asset), n))
        slope = cp.Parameter(len(piece_asset), nonneg=True, name=f"{part.name}.value_rate")
        slope.value = part.piece_rate * np.array([prices[part.assets[i]] for i in piece_asset])
        part.params["value_rate"] = slope
        self.constraints.append(select @ y <= np.concatenate(intercept) + cp.multiply(slope, select @ part.x))
        limited = [(i, venue.concentration[a]) for i, a in enumerate(part.assets) if a in venue.concentration]
        if limited:
            c = cp.Variable(n, nonneg=True, name=f"{part.name}.credited")
            self.constraints.append(c <= y)
            idx = np.array([i for i, _ in limited])
            limit = np.array([s for _, s in limited])
            self.constraints.append(c[idx] <= limit * cp.sum(c))
            part.credited = cp.sum(c)
        else:
            part.credited = cp.sum(y)

    def _inventory(self) -> None:
        """Units of each asset over all venues cannot exceed the treasury's plus what is posted."""
        if not self.collateral_free:
            return
        treasury = self.case.treasury
        by_asset: dict[str, list[Any]] = {}
        posted: dict[str, float] = {}
        for part in self.parts:
            if part.x is None:
                continue
            for i, a in enumerate(part.assets):
                by_asset.setdefault(a, []).append(part.x[i])
                posted[a] = posted.get(a, 0.0) + float(part.posted[i])
        for a, xs in by_asset.items():
            units = (treasury[a].quantity if a in treasury else 0.0) + posted[a]
            avail = cp.Parameter(nonneg=True, value=units, name=f"{a}.available")
            self.limit_params[f"available:{a}"] = avail
            con = cp.sum(cp.hstack(xs)) <= avail
            self.inventory[a] = con
            self.constraints.append(con)

    # -- limits ------------------------------------------------------------------
    def _limits(self) -> None:
        limits = self.case.limits
        if self.h is None:
            return  # without hedges the book is fixed: limits are checked, not optimized
        for u, (lo, hi) in limits.net_delta.items():
            total = self._net_delta(u)
            if total is None:
                continue
            lo_p = cp.Parameter(value=lo, name=f"net_delta.{u}.lower")
            hi_p = cp.Parameter(value=hi, name=f"net_delta.{u}.upper")
            self.limit_params[f"net_delta:{u}:lower"], self.limit_params[f"net_delta:{u}:upper"] = lo_p, hi_p
            self.constraints += [total + self._slack(f"net delta {u} below {lo:g}") >= lo_p,
                                 total - self._slack(f"net delta {u} above {hi:g}") <= hi_p]
        if limits.max_loss is not None:
            traded = {iid for p in self.parts for iid in p.book.ids}
            self.all_ids = tuple(i.id for i in self.case.instruments if i.id in traded)
            losses = whole_book_losses(self.case, limits.max_loss.scenarios, self.all_ids)
            position = self._whole_book()
            value = reduce_rows(losses.weights[:, None] * losses.matrix, self._whole_cols, self._whole_q)
            weighted = cp.Parameter(value.shape, value=value, name="max_loss.losses")
            self.limit_params["max_loss:losses"] = weighted
            limit = cp.Parameter(nonneg=True, value=limits.max_loss.limit, name="max_loss.limit")
            self.limit_params["max_loss:limit"] = limit
            self.constraints.append(cp.max(weighted @ position) - self._slack("worst scenario loss above max_loss") <= limit)
        for k, lin in enumerate(limits.linear):
            coef = np.array([lin.coefficients.get(c.instrument, 0.0) for c in self.cands])
            expr = coef @ self.h
            if lin.lower is not None:
                self.limit_params[f"linear:{k}:lower"] = lo_p = cp.Parameter(value=lin.lower)
                self.constraints.append(expr + self._slack(f"linear limit {k + 1} below {lin.lower:g}") >= lo_p)
            if lin.upper is not None:
                self.limit_params[f"linear:{k}:upper"] = hi_p = cp.Parameter(value=lin.upper)
                self.constraints.append(expr - self._slack(f"linear limit {k + 1} above {lin.upper:g}") <= hi_p)
        bounds = np.array([[c.max_sell, c.max_buy] for c in self.cands])
        assert self.z is not None
        self.constraints += [self.z >= -bounds[:, 0] / self.h_scale, self.z <= bounds[:, 1] / self.h_scale]

    def _net_delta(self, u: str) -> Any:
        terms = []
        for part in self.parts:
            inp = part.book.inputs
            if u not in inp.underlyings:
                continue
            row = self._delta_row(part, u)
            p = cp.Parameter(len(row), value=row, name=f"{part.name}.delta.{u}")
            part.params[f"delta:{u}"] = p
            terms.append(p @ (part.position if part.position is not None else part.book.q))
        return cp.sum(cp.hstack(terms)) if terms else None

    def _delta_row(self, part: VenuePart, u: str) -> np.ndarray:
        """The venue's deltas in ``u``, on its hedged columns when its measure is (``part.columns``)."""
        inp = part.book.inputs
        row = inp.delta_matrix()[inp.underlyings.index(u)]
        return row if part.columns is None else reduce_rows(row, part.columns, part.book.q)

    def _whole_book(self) -> Any:
        """The whole book's positions over every venue on the instruments the hedges trade, then 1
        (the rest of it, folded into the loss matrix by ``reduce_rows``)."""
        at = {iid: k for k, iid in enumerate(self.all_ids)}
        q_all = np.zeros(len(self.all_ids))
        for part in self.parts:
            np.add.at(q_all, [at[iid] for iid in part.book.ids], part.book.q)
        rows = np.array([at[c.instrument] for c in self.cands])
        self._whole_cols, self._whole_q = np.unique(rows), q_all
        select = sp.csr_matrix((np.ones(len(rows)), (np.searchsorted(self._whole_cols, rows), np.arange(len(rows)))),
                               shape=(len(self._whole_cols), len(self.cands)))
        return cp.hstack([q_all[self._whole_cols] + select @ self.h, np.ones(1)])

    # -- objective ---------------------------------------------------------------
    def _objective_terms(self) -> dict[str, Any]:
        terms: dict[str, Any] = {}
        if self.h is not None:
            unit = np.array([c.cost_per_unit for c in self.cands])
            impact = np.array([c.impact for c in self.cands])
            terms["hedge"] = unit @ cp.abs(self.h)
            if impact.any():
                # Impact in epigraph form, t_c >= z_c^2 as a second-order cone: with the quadratic in
                # the objective (a QP), Clarabel stalled on the demo while the cone form solves.
                k = np.flatnonzero(impact)
                assert self.z is not None
                t = cp.Variable(len(k), nonneg=True, name="impact")
                self.constraints.append(cp.square(self.z[k]) <= t)
                terms["hedge"] = terms["hedge"] + (impact[k] * self.h_scale[k] ** 2) @ t
        if self.objective is Objective.MIN_MARGIN:
            terms["margin"] = cp.sum(cp.hstack([p.im for p in self.parts]))
            return terms
        funding, transfer = [], []
        for part in self.parts:
            if not part.assets:
                continue
            cost, move = self._cost_rates(part)
            if part.x is None:
                continue  # funding what stays posted is a constant: verification adds it to the reported cost
            part.params["funding_rate"] = cp.Parameter(len(cost), nonneg=True, value=cost, name=f"{part.name}.funding_rate")
            part.params["transfer_rate"] = cp.Parameter(len(move), nonneg=True, value=move, name=f"{part.name}.transfer_rate")
            funding.append(part.params["funding_rate"] @ part.x)
            transfer.append(part.params["transfer_rate"] @ cp.pos(part.x - part.posted))
        if funding:
            terms["funding"] = cp.sum(cp.hstack(funding))
        if transfer:
            terms["transfer"] = cp.sum(cp.hstack(transfer))
        return terms

    def _cost_rates(self, part: VenuePart) -> tuple[np.ndarray, np.ndarray]:
        """Yearly funding and one-off transfer cost per unit of each asset (rates on gross value)."""
        t, prices = self.case.treasury, self.case.market.prices
        cost = np.array([(t[a].cost if a in t else 0.0) * prices[a] for a in part.assets])
        move = np.array([(t[a].transfer_cost if a in t else 0.0) * prices[a] for a in part.assets])
        return cost, move

    def _class(self) -> ProblemClass:
        if any(_has(p.measure, ParametricVaR) for p in self.parts if p.position is not None):
            return ProblemClass.SOCP
        if self.h is not None and any(c.impact > 0 for c in self.cands):
            return ProblemClass.SOCP  # impact costs in cone form (see _objective_terms)
        return ProblemClass.LP

    # -- a market move -------------------------------------------------------------
    def update(self, case: Case) -> None:
        """Load a case of the same structure (new prices, vols, haircuts, limits) into the parameters.

        The compiled problem is reused: cvxpy maps parameters to solver data
        without canonicalizing again, and solvers that can warm-start do.
        """
        t0 = time.perf_counter()
        self.case = case
        if self.route is not None:
            # The route reads the books at each solve.
            for part in self.parts:
                part.book = part.book.moved(case)
                part.full_measure = part.measure = convex_form(part.book.initial)
            self.build_seconds = time.perf_counter() - t0
            return
        if self.generation is not None:
            # Restricted measures are compiled for their working sets: compile again with the moved
            # matrices, starting from the working sets of the last solve.
            for part in self.parts:
                part.book = part.book.moved(case)
                part.full_measure = part.measure = convex_form(part.book.initial)
            self.rebuild()
            self.build_seconds = time.perf_counter() - t0
            return
        for part in self.parts:
            part.book = part.book.moved(case)
            if self.direct is not None:
                continue  # the direct LP is rebuilt from the books at the next solve
            if part.position is not None:
                moved = convex_form(part.book.initial)
                reduced = moved if part.columns is None else moved.on_columns(part.columns, part.book.q)
                assert reduced is not None  # the same measure kinds as when built
                part.measure.load(reduced)
            else:
                assert part.im_const is not None
                part.im_const.value = part.book.initial.evaluate(part.book.q)
            if part.credited_const is not None:
                part.credited_const.value = float(sum(c.credited_value for c in part.book.collateral()))
            if "value_rate" in part.params:
                prices = case.market.prices
                rates = np.concatenate([pieces(part.book.venue.collateral[a])[1] for a in part.assets])
                part.params["value_rate"].value = rates * np.array([prices[part.assets[i]] for i in part.piece_asset])
            if "funding_rate" in part.params:
                cost, move = self._cost_rates(part)
                part.params["funding_rate"].value = cost
                part.params["transfer_rate"].value = move
            for key, p in part.params.items():
                if key.startswith("delta:"):
                    p.value = self._delta_row(part, key[6:])
        if self.direct is not None:
            self.build_seconds = time.perf_counter() - t0
            return
        for a in self.inventory:
            self.limit_params[f"available:{a}"].value = (case.treasury[a].quantity if a in case.treasury else 0.0) + sum(
                v.posted.get(a, 0.0) for v in case.venues.values())
        limits = case.limits
        for u, (lo, hi) in limits.net_delta.items():
            if f"net_delta:{u}:lower" in self.limit_params:
                self.limit_params[f"net_delta:{u}:lower"].value = lo
                self.limit_params[f"net_delta:{u}:upper"].value = hi
        if "max_loss:losses" in self.limit_params and limits.max_loss is not None:
            losses = whole_book_losses(case, limits.max_loss.scenarios, self.all_ids)
            self.limit_params["max_loss:losses"].value = reduce_rows(losses.weights[:, None] * losses.matrix, self._whole_cols,
                                                                     self._whole_q)
            self.limit_params["max_loss:limit"].value = limits.max_loss.limit
        self.build_seconds = time.perf_counter() - t0


def _has(measure: Measure, kind: type) -> bool:
    if isinstance(measure, kind):
        return True
    return isinstance(measure, Composite) and any(_has(t, kind) for t in measure.terms)
