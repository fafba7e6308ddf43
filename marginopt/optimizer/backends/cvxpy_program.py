"""The whole problem as one cvxpy program, solved by the solver chain (``solvers.run``).

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

Objective (``optimizer.objectives`` says which terms): ``min_cost`` = yearly funding of
what is posted + transfer costs of what is moved in + hedge costs ``u |h| + k h^2`` (the
square as a cone, ``t >= z^2``); ``min_margin`` = total initial margin + hedge costs.

Hedges are variables in units of their bound and collateral in units of what could be
posted (scaling only: the optimum is the same), because interior-point solvers stall when
one column counts ten-dollar contracts in hundreds of thousands and another BTC futures in
tens. The held book is a constant: each hedged venue's measure is taken on the hedged
columns only, the rest of the book folded into one column (``Measure.on_columns``).

Each venue's margin enters through its measure's cvxpy form: nothing here special-cases
a venue. Everything that moves with the market (value rates ``r_k p_a``, costs, inventory,
the measures' scenario data, deltas, constant margins, limits) is a ``cp.Parameter``, so
``update`` after a market move re-solves the compiled program.

``elastic``: every coverage and limit constraint gets a non-negative slack and the
objective is their sum, so the program is always feasible and the slacks say which
constraint is short and by how much (the infeasibility diagnosis, ``shortfalls``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from marginopt.models.book import VenueBook
from marginopt.models.collateral import pieces
from marginopt.models.margin import Measure
from marginopt.models.margin.columns import reduce_rows
from marginopt.optimizer.backends.base import Solution, SolveRequest
from marginopt.optimizer.description import Description, LimitRow, Venue
from marginopt.optimizer.safety import path_terms, stress_terms
from marginopt.optimizer.verify import Plan, Verification
from marginopt.solvers.run import solve
from marginopt.solvers.status import SolveStatus

# Shortfalls below this (base currency or units) are solver round-off in the elastic program.
SHORTFALL_TOL = 1e-6


@dataclass
class VenueProgram:
    """One venue's cvxpy pieces."""

    venue: Venue
    measure: Measure  # the form in the program (on the hedged columns; restricted under generation)
    # The hedged columns when ``measure`` is on them alone: ``position`` is ``[q_C + A_C h, 1]``.
    columns: np.ndarray | None = None
    position: cp.Expression | None = None  # q + A h, None when the venue trades no hedge
    im: Any = None  # cvxpy expression or parameter
    im_const: cp.Parameter | None = None
    x: Any = None  # units posted after the plan (an expression of a scaled variable)
    credited: Any = None  # total credited collateral value (expression or parameter)
    credited_const: cp.Parameter | None = None
    coverage: Any = None  # the coverage constraint
    params: dict[str, cp.Parameter] = field(default_factory=dict)
    piece_asset: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def name(self) -> str:
        return self.venue.name


class CvxpyBackend:
    """The program compiled once; ``update`` loads a market move into its parameters."""

    name: ClassVar[str] = "cvxpy"
    fallback: ClassVar[str | None] = None
    holds_safety: ClassVar[bool] = True  # the case's stress-safe constraints (``_safety``)

    def __init__(self, description: Description, elastic: bool = False) -> None:
        t0 = time.perf_counter()
        self.description = description
        self.elastic = elastic
        n = len(description.cands)
        self.z = cp.Variable(n, name="hedge") if n else None
        self.h = cp.multiply(description.h_scale, self.z) if self.z is not None else None
        self._assemble()
        self.build_seconds = time.perf_counter() - t0

    @classmethod
    def why_not(cls, description: Description) -> str | None:
        return None

    # -- building ------------------------------------------------------------------
    def _assemble(self) -> None:
        """The program from the description (again, in ``rebuild``)."""
        d = self.description
        self.slacks: dict[str, cp.Variable] = {}
        self.constraints: list[Any] = []
        self.limit_params: dict[str, cp.Parameter] = {}
        self.limit_cons: dict[str, list[Any]] = {}  # a limit's name (models.limit_use) -> its constraints, for duals
        self.inventory: dict[str, Any] = {}
        self.venues = [self._venue(v) for v in d.venues]
        self._safety()
        self._call_budget()
        self._inventory()
        self._limits()
        self.cost_terms = ({"shortfall": cp.sum(cp.hstack(list(self.slacks.values())))} if self.elastic and self.slacks
                           else self._objective_terms())
        self.problem = cp.Problem(cp.Minimize(sum(self.cost_terms.values())), self.constraints)
        self.problem_class = d.kind.problem_class(d)

    def measure_of(self, venue: Venue) -> tuple[Measure, np.ndarray | None]:
        """The venue's measure as the program holds it: on its hedged columns, the rest folded in."""
        cols = venue.hedged_columns
        reduced = venue.measure.on_columns(cols, venue.book.q)
        return (venue.measure, None) if reduced is None else (reduced, cols)

    def _venue(self, venue: Venue) -> VenueProgram:
        d = self.description
        book = venue.book
        if venue.cands and self.h is not None:
            measure, cols = self.measure_of(venue)
            vp = VenueProgram(venue, measure, cols)
            rows, cands = venue.cand_columns, venue.cands
            if cols is not None:
                select = sp.csr_matrix((np.ones(len(cands)), (np.searchsorted(cols, rows), cands)), shape=(len(cols), len(d.cands)))
                vp.position = cp.hstack([book.q[cols] + select @ self.h, np.ones(1)])
            else:
                select = sp.csr_matrix((np.ones(len(cands)), (rows, cands)), shape=(len(book.ids), len(d.cands)))
                vp.position = book.q + select @ self.h
            vp.im, cons = measure.cvxpy(vp.position)
            self.constraints += cons
        else:
            vp = VenueProgram(venue, venue.measure)
            vp.im_const = cp.Parameter(nonneg=True, value=book.initial.evaluate(book.q), name=f"{venue.name}.margin")
            vp.im = vp.im_const
        if d.collateral_free and venue.assets:
            self._collateral(vp)
        else:
            value = sum(c.credited_value for c in book.collateral())
            vp.credited_const = cp.Parameter(nonneg=True, value=float(value), name=f"{venue.name}.collateral")
            vp.credited = vp.credited_const
        if d.coverage_required:
            vp.coverage = book.venue.required(vp.im) <= vp.credited + self._slack(f"{venue.name}: initial margin not covered")
            self.constraints.append(vp.coverage)
        return vp

    def _safety(self) -> None:
        """The case's stress-safe constraints (``optimizer/safety.py``): each venue's margin balance at the
        stressed market at or above its level there, for every move of the safety's stress set."""
        self.safety: list[Any] = []
        for term in stress_terms(self.description):
            vp = self.venues[term.venue]
            balance = self._balance_at(vp, term.book, term.held, f"{vp.name}.stress{len(self.safety)}")
            if vp.position is not None:
                assert self.h is not None
                level = term.level if vp.columns is None else term.level.on_columns(vp.columns, term.book.q)
                assert level is not None
                margin: Any
                margin, cons = level.cvxpy(vp.position)
                self.constraints += cons
                balance = balance + term.hedge_rates @ self.h[vp.venue.cands]
            else:
                margin = term.level.evaluate(term.book.q)
            con = term.level_scale * margin <= balance + self._slack(term.name)
            self.safety.append(con)
            self.constraints.append(con)

    def _balance_at(self, vp: VenueProgram, book: VenueBook, held: float, tag: str) -> Any:
        """The venue's margin balance in another market (``book``'s), before the hedges' P&L: the collateral the
        plan posts valued at that market's prices (or what is posted, where collateral is fixed), plus ``held``."""
        if vp.x is not None:
            credited, _, _ = self._credited(vp.venue, vp.x, book.case.market.prices, tag)
        else:
            credited = sum(c.credited_value for c in book.collateral())
        return credited + held

    def _call_budget(self) -> None:
        """The case's call budget (``optimizer/safety.py``, ``path_terms``): at each budgeted venue, the expected
        shortfall of the margin-call amount ``c_p >= IM_p(q_p + A_p h) - balance_p(x, h)``, ``c_p >= 0``, over the
        projected paths at most the budget, in Rockafellar-Uryasev form: ``t + sum_p u_p / ((1 - alpha) P) <= budget``
        with ``u_p >= c_p - t``, ``u_p >= 0`` (convex: IM convex, the balance concave)."""
        safety = self.description.case.safety
        if safety is None or safety.call_budget is None:
            return
        cb = safety.call_budget
        calls: dict[int, list[Any]] = {}
        for term in path_terms(self.description):
            vp = self.venues[term.venue]
            balance = self._balance_at(vp, term.book, term.held, f"{vp.name}.path{term.path}")
            q = term.book.q
            if vp.venue.cands and self.h is not None:
                hedged = np.unique(term.cand_columns)
                level = term.level.on_columns(hedged, q)
                rows = np.searchsorted(hedged, term.cand_columns) if level is not None else term.cand_columns
                select = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))),
                                       shape=(len(hedged) if level is not None else len(q), len(rows)))
                h = self.h[vp.venue.cands]
                position = cp.hstack([q[hedged] + select @ h, np.ones(1)]) if level is not None else q + select @ h
                margin: Any
                margin, cons = (level or term.level).cvxpy(position)
                self.constraints += cons
                balance = balance + term.hedge_rates @ h
            else:
                margin = term.level.evaluate(q)
            call = cp.Variable(nonneg=True, name=f"{vp.name}.call{term.path}")
            self.constraints.append(call >= margin - balance)
            calls.setdefault(term.venue, []).append(call)
        for i, cs in calls.items():
            name = self.venues[i].name
            t = cp.Variable(name=f"{name}.call_var")
            u = cp.Variable(len(cs), nonneg=True, name=f"{name}.call_tail")
            self.constraints.append(u >= cp.hstack(cs) - t)
            con = t + cp.sum(u) / ((1.0 - cb.alpha) * len(cs)) <= cb.budget[name] + self._slack(
                f"{name}: expected shortfall of the margin-call amount over its budget")
            self.limit_cons[f"{name}: call budget"] = [con]
            self.constraints.append(con)

    def _slack(self, name: str) -> Any:
        if not self.elastic:
            return 0.0
        self.slacks[name] = cp.Variable(nonneg=True, name=name)
        return self.slacks[name]

    def _collateral(self, vp: VenueProgram) -> None:
        d, venue = self.description, vp.venue
        n = len(venue.assets)
        scale = self._collateral_scale(venue.assets)
        share = cp.Variable(n, nonneg=True, name=f"{venue.name}.collateral")
        vp.x = cp.multiply(scale, share)
        vp.credited, slope, vp.piece_asset = self._credited(venue, vp.x, d.case.market.prices, venue.name)
        vp.params["value_rate"] = slope

    def _credited(self, venue: Venue, x: Any, prices: Any, tag: str) -> tuple[Any, cp.Parameter, np.ndarray]:
        """The credited value of ``x`` units posted at ``venue``, at ``prices``: each asset's value after haircut
        ``y`` in the hypograph of its (tiered) schedule, capped by concentration limits; with the value rates
        (a parameter that a market move reloads) and the asset of each piece."""
        schedules = venue.book.venue
        n = len(venue.assets)
        y = cp.Variable(n, name=f"{tag}.value")
        piece_asset, intercept, rate = [], [], []
        for i, a in enumerate(venue.assets):
            b, r = pieces(schedules.collateral[a])
            piece_asset += [i] * len(b)
            intercept.append(b)
            rate.append(r)
        owner = np.array(piece_asset, dtype=np.int64)
        select = sp.csr_matrix((np.ones(len(piece_asset)), (np.arange(len(piece_asset)), piece_asset)), shape=(len(piece_asset), n))
        slope = cp.Parameter(len(piece_asset), nonneg=True, name=f"{tag}.value_rate")
        slope.value = np.concatenate(rate) * np.array([prices[venue.assets[i]] for i in piece_asset])
        self.constraints.append(select @ y <= np.concatenate(intercept) + cp.multiply(slope, select @ x))
        limited = [(i, schedules.concentration[a]) for i, a in enumerate(venue.assets) if a in schedules.concentration]
        if not limited:
            return cp.sum(y), slope, owner
        c = cp.Variable(n, nonneg=True, name=f"{tag}.credited")
        self.constraints.append(c <= y)
        idx = np.array([i for i, _ in limited])
        limit = np.array([s for _, s in limited])
        self.constraints.append(c[idx] <= limit * cp.sum(c))
        return cp.sum(c), slope, owner

    def _collateral_scale(self, assets: tuple[str, ...]) -> np.ndarray:
        """Units of each asset per unit of its variable (scaling only: the optimum is the same).

        BTC comes in tens and USDC in millions, so each asset is counted in a unit of its own: what
        could be posted, but no more than would cover every venue's margin twice over (and never
        less than is posted now). Scaled by inventory alone, a treasury of 1e12 USDC put the million
        the plan needs at a share of 1e-6, the solvers' tolerance: Clarabel gave up and ECOS stopped
        at a plan costing 16 times the optimum, feasible and so verified."""
        d = self.description
        prices = d.case.market.prices
        out = []
        for a in assets:
            posted = sum(v.posted.get(a, 0.0) for v in d.case.venues.values())
            need = self._need_value / prices[a] if prices[a] > 0 else np.inf
            out.append(max(min(d.available(a), max(need, posted)), 1.0))
        return np.array(out)

    @cached_property
    def _need_value(self) -> float:
        """Every venue's margin on the book held, twice over: the most collateral value a plan can need
        (a scale only, kept across rebuilds and market moves)."""
        return 2.0 * sum(v.book.initial.evaluate(v.book.q) for v in self.description.venues)

    def _inventory(self) -> None:
        """Units of each asset over all venues cannot exceed the treasury's plus what is posted."""
        if not self.description.collateral_free:
            return
        by_asset: dict[str, list[Any]] = {}
        for vp in self.venues:
            if vp.x is None:
                continue
            for i, a in enumerate(vp.venue.assets):
                by_asset.setdefault(a, []).append(vp.x[i])
        for a, xs in by_asset.items():
            avail = cp.Parameter(nonneg=True, value=self.description.available(a), name=f"{a}.available")
            self.limit_params[f"available:{a}"] = avail
            con = cp.sum(cp.hstack(xs)) <= avail
            self.inventory[a] = con
            self.constraints.append(con)

    # -- limits ------------------------------------------------------------------
    def _limits(self) -> None:
        d = self.description
        if self.h is None:
            return  # without hedges the book is fixed: limits are checked, not optimized
        for key, row in _rows(d):
            self._row(key, row)
        if d.case.limits.max_loss is not None:
            value = self._max_loss_losses()
            weighted = cp.Parameter(value.shape, value=value, name="max_loss.losses")
            self.limit_params["max_loss:losses"] = weighted
            limit = cp.Parameter(nonneg=True, value=d.case.limits.max_loss.limit, name="max_loss.limit")
            self.limit_params["max_loss:limit"] = limit
            con = cp.max(weighted @ self._whole_book()) - self._slack("worst scenario loss above max_loss") <= limit
            self.limit_cons["worst whole-book scenario loss"] = [con]
            self.constraints.append(con)
        assert self.z is not None
        self.constraints += [self.z >= d.lower / d.h_scale, self.z <= d.upper / d.h_scale]

    def _row(self, key: str, row: LimitRow) -> None:
        """``lower <= a @ h <= upper``, the coefficients and bounds parameters (deltas move with the market)."""
        assert self.h is not None
        coef = cp.Parameter(len(row.coefficients), value=row.coefficients, name=f"{key}.coefficients")
        self.limit_params[f"{key}:coefficients"] = coef
        expr = coef @ self.h
        cons = self.limit_cons.setdefault(row.limit or key, [])
        if np.isfinite(row.lower):
            self.limit_params[f"{key}:lower"] = lo = cp.Parameter(value=row.lower, name=f"{key}.lower")
            cons.append(expr + self._slack(row.names[0]) >= lo)
        if np.isfinite(row.upper):
            self.limit_params[f"{key}:upper"] = hi = cp.Parameter(value=row.upper, name=f"{key}.upper")
            cons.append(expr - self._slack(row.names[1]) <= hi)
        self.constraints += cons

    def _max_loss_losses(self) -> np.ndarray:
        """The weighted losses of the max_loss limit's scenarios on the hedged instruments, the rest of the
        whole book folded into one column (``reduce_rows``): every scenario (generation holds a working set)."""
        losses = self.description.max_loss_losses
        assert losses is not None
        q_all = self._whole_positions()
        return reduce_rows(losses.weights[:, None] * losses.matrix, self._whole_cols, q_all)

    def _whole_positions(self) -> np.ndarray:
        """The whole book held, over ``all_ids``; sets the hedges' rows and columns in it (``_whole_book``)."""
        d = self.description
        at = {iid: k for k, iid in enumerate(d.all_ids)}
        self._whole_rows = np.array([at[c.instrument] for c in d.cands])
        self._whole_q = d.whole_book()
        self._whole_cols = np.unique(self._whole_rows)
        return self._whole_q

    def _whole_book(self) -> Any:
        """The whole book's positions over every venue on the instruments the hedges trade, then 1
        (the rest of it, folded into the loss matrix by ``reduce_rows``)."""
        rows, cols = self._whole_rows, self._whole_cols
        select = sp.csr_matrix((np.ones(len(rows)), (np.searchsorted(cols, rows), np.arange(len(rows)))),
                               shape=(len(cols), len(rows)))
        return cp.hstack([self._whole_q[cols] + select @ self.h, np.ones(1)])

    # -- objective ---------------------------------------------------------------
    def _objective_terms(self) -> dict[str, Any]:
        d = self.description
        terms: dict[str, Any] = {}
        if self.h is not None and "hedge" in d.kind.terms:
            impact = d.impacts
            terms["hedge"] = d.unit_costs @ cp.abs(self.h)
            if impact.any():
                # Impact in epigraph form, t_c >= z_c^2 as a second-order cone: with the quadratic in
                # the objective (a QP), Clarabel stalled on the demo while the cone form solves.
                k = np.flatnonzero(impact)
                assert self.z is not None
                t = cp.Variable(len(k), nonneg=True, name="impact")
                self.constraints += self._impact_epigraph(k, t)
                terms["hedge"] = terms["hedge"] + (impact[k] * d.h_scale[k] ** 2) @ t
        if "margin" in d.kind.terms:
            terms["margin"] = cp.sum(cp.hstack([vp.im for vp in self.venues]))
        if "funding" in d.kind.terms:
            funding, transfer = [], []
            for vp in self.venues:
                if not vp.venue.assets or vp.x is None:
                    continue  # funding what stays posted is a constant: verification adds it to the reported cost
                cost, move = d.cost_rates(vp.venue)
                vp.params["funding_rate"] = cp.Parameter(len(cost), nonneg=True, value=cost, name=f"{vp.name}.funding_rate")
                vp.params["transfer_rate"] = cp.Parameter(len(move), nonneg=True, value=move, name=f"{vp.name}.transfer_rate")
                funding.append(vp.params["funding_rate"] @ vp.x)
                transfer.append(vp.params["transfer_rate"] @ cp.pos(vp.x - vp.venue.posted))
            if funding:
                terms["funding"] = cp.sum(cp.hstack(funding))
            if transfer:
                terms["transfer"] = cp.sum(cp.hstack(transfer))
        return terms

    def _impact_epigraph(self, k: np.ndarray, t: Any) -> list[Any]:
        """``t >= z[k]^2``, the impact costs' epigraph (the mixed-integer backend cuts it instead)."""
        assert self.z is not None
        return [cp.square(self.z[k]) <= t]

    # -- solving -------------------------------------------------------------------
    def plan(self) -> Plan:
        h = np.asarray(self.h.value, dtype=float).reshape(-1) if self.h is not None else np.zeros(0)
        allocation = {}
        for vp in self.venues:
            if vp.x is not None:
                allocation[vp.name] = dict(zip(vp.venue.assets, np.asarray(vp.x.value, dtype=float).reshape(-1).tolist(), strict=True))
        return Plan(h, allocation)

    def solve(self, request: SolveRequest) -> Solution:
        checked: dict[str, Verification] = {}

        def accept() -> str | None:
            if request.check is None:
                return None
            checked["last"] = request.check(self.plan())
            bad = checked["last"].failures
            return None if not bad else "; ".join(f"{c.name} by {c.violation:.6g}" for c in bad[:3])

        report = solve(self.problem, self.problem_class, forced=request.solver, accept=accept,
                       build_seconds=self.build_seconds, warm=request.warm)
        if report.status is not SolveStatus.OPTIMAL:
            return Solution(report.status, report, verification=checked.get("last"))
        return Solution(report.status, report, self.plan(), checked.get("last"), shadow=self.shadow_prices())

    def shadow_prices(self) -> dict[str, dict[str, float]]:
        """Objective change per unit of value of each treasury asset, and per unit of each venue's margin."""
        d = self.description
        prices = d.case.market.prices
        assets = {}
        for a, con in self.inventory.items():
            dual = con.dual_value
            assets[a] = -float(dual) / prices[a] if dual is not None else 0.0
        venues = {}
        for vp in self.venues:
            if d.kind.venue_weight is not None:
                venues[vp.name] = d.kind.venue_weight
            elif vp.coverage is not None and vp.coverage.dual_value is not None:
                venues[vp.name] = float(vp.coverage.dual_value)
        # Each limit's dual: the objective's saving per unit of its binding bound relaxed (cvxpy's duals of
        # <= and >= constraints are non-negative; at most one side of a limit binds).
        limits = {name: float(sum(float(np.asarray(c.dual_value).sum()) for c in cons if c.dual_value is not None))
                  for name, cons in self.limit_cons.items()}
        return {"assets": assets, "venues": venues, "limits": limits}

    def shortfalls(self, solver: str | None) -> tuple[tuple[str, float], ...]:
        """What is short and by how much (``elastic`` programs): the slacks at the optimum."""
        if not self.slacks:
            return ()
        report = solve(self.problem, self.problem_class, forced=solver)
        if report.status is not SolveStatus.OPTIMAL:
            return (("the elastic problem could not be solved", float("nan")),)
        return self._slack_values()

    def _slack_values(self) -> tuple[tuple[str, float], ...]:
        values = {name: float(np.asarray(v.value)) for name, v in self.slacks.items()}
        return tuple((name, amount) for name, amount in values.items() if amount > SHORTFALL_TOL)

    # -- a market move -------------------------------------------------------------
    def update(self, description: Description) -> None:
        """Load a description of the same structure (new prices, vols, haircuts, limits) into the
        parameters. The compiled program is reused: cvxpy maps parameters to solver data without
        canonicalizing again, and solvers that can warm-start do."""
        t0 = time.perf_counter()
        self.description = d = description
        if d.case.safety is not None:  # the stressed and projected books move with the market: built again
            self._assemble()
            self.build_seconds = time.perf_counter() - t0
            return
        prices = d.case.market.prices
        for vp, venue in zip(self.venues, d.venues, strict=True):
            vp.venue = venue
            book = venue.book
            if vp.position is not None:
                moved = venue.measure if vp.columns is None else venue.measure.on_columns(vp.columns, book.q)
                assert moved is not None  # the same measure kinds as when built
                vp.measure.load(moved)
            else:
                assert vp.im_const is not None
                vp.im_const.value = book.initial.evaluate(book.q)
            if vp.credited_const is not None:
                vp.credited_const.value = float(sum(c.credited_value for c in book.collateral()))
            if "value_rate" in vp.params:
                rates = np.concatenate([pieces(book.venue.collateral[a])[1] for a in venue.assets])
                vp.params["value_rate"].value = rates * np.array([prices[venue.assets[i]] for i in vp.piece_asset])
            if "funding_rate" in vp.params:
                cost, move = d.cost_rates(venue)
                vp.params["funding_rate"].value = cost
                vp.params["transfer_rate"].value = move
        for a in self.inventory:
            self.limit_params[f"available:{a}"].value = d.available(a)
        if self.h is not None:
            for key, row in _rows(d):
                self.limit_params[f"{key}:coefficients"].value = row.coefficients
                for side, bound in (("lower", row.lower), ("upper", row.upper)):
                    if f"{key}:{side}" in self.limit_params:
                        self.limit_params[f"{key}:{side}"].value = bound
        if "max_loss:losses" in self.limit_params and d.case.limits.max_loss is not None:
            self.limit_params["max_loss:losses"].value = self._max_loss_losses()
            self.limit_params["max_loss:limit"].value = d.case.limits.max_loss.limit
        self.build_seconds = time.perf_counter() - t0


def _rows(d: Description) -> list[tuple[str, LimitRow]]:
    """The limit rows with a key each that a market move keeps (bounds appear in the names)."""
    return ([(f"net_delta:{i}", r) for i, r in enumerate(d.net_delta_rows())]
            + [(f"linear:{i}", r) for i, r in enumerate(d.linear_rows())])
