"""Monte Carlo scenarios: correlated normal or Student-t log-returns, seeded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from marginopt.errors import CaseError, Location
from marginopt.models.enums import Distribution
from marginopt.models.magnitude import Bound
from marginopt.models.market import MarketData
from marginopt.models.reader import Node
from marginopt.models.scenarios.base import (
    Moves,
    NumberedLabels,
    ScenarioContext,
    ScenarioLosses,
    equal_weights,
    losses_from_moves,
    register,
)


@dataclass(frozen=True)
class MonteCarloSpec:
    """``n`` joint scenarios over ``horizon_days``: log-return of underlying u is
    ``vol_u sqrt(h/365) z_u - vol_u^2 h / 730`` with ``z`` unit-variance normal or
    multivariate Student-t (``dof`` > 2, scaled to unit variance), correlated by
    ``correlation`` (pairs not listed are uncorrelated). Vols are market.vols.
    Draws are made for the sorted union of correlated and needed underlyings, so
    the same seed gives the same moves at every venue.
    """

    n: int
    seed: int
    correlation: Mapping[tuple[str, str], float] = field(default_factory=dict)
    distribution: Distribution = Distribution.NORMAL
    dof: float | None = None
    horizon_days: float = 1.0
    where: Location = field(default=Location(), compare=False)
    pair_where: Mapping[tuple[str, str], tuple[Location, str]] = field(default_factory=dict, compare=False)
    kind: str = "monte_carlo"

    def __hash__(self) -> int:
        return hash((self.n, self.seed, tuple(sorted(self.correlation.items())), self.distribution, self.dof, self.horizon_days))

    def check(self, market: MarketData) -> None:
        """Load-time check: every correlated name is an asset of the market."""
        for pair in self.correlation:
            for a in pair:
                if a not in market.prices:
                    loc, path = self.pair_where.get(pair, (self.where, "correlation"))
                    raise CaseError(loc, path, f"underlyings with a price in market.prices ({', '.join(sorted(market.prices))})", a)

    def build(self, ctx: ScenarioContext) -> ScenarioLosses:
        try:
            return self._build(ctx)
        except MemoryError:  # n is bounded as a number, not by this machine's memory: say which n did not fit
            gib = self.n * (len(ctx.inputs) + 2 * len(ctx.inputs.underlyings)) * 8 / 2**30
            raise CaseError(self.where, "n", f"a number of draws whose scenario matrices fit in memory "
                            f"(about {gib:,.1f} GiB for {len(ctx.inputs)} instruments)", self.n) from None

    def _build(self, ctx: ScenarioContext) -> ScenarioLosses:
        growth = self.growth(ctx.market, ctx.inputs.underlyings)
        # Labels made when asked for (an array of them was 14 MB at 400,000 draws), one weight in the
        # memory of one, and no vol moves written (np.zeros leaves the pages to the kernel, which only reads them).
        moves = Moves(growth, np.zeros(growth.shape), NumberedLabels("mc ", self.n), equal_weights(self.n))
        return losses_from_moves(ctx, moves, source=f"monte carlo: {self.n} {self.distribution.value} draws, seed {self.seed}")

    def growth(self, market: MarketData, needed: tuple[str, ...]) -> np.ndarray:
        """The ``(n, len(needed))`` price ratios ``S1 / S0`` of the draws (the forward projection's daily
        steps are these with ``horizon_days`` 1)."""
        names = sorted(set(needed) | {a for pair in self.correlation for a in pair})
        vols = []
        for u in needed:
            if u not in market.vols:
                raise CaseError(self.where, f"market.vols.{u}", f"a vol for {u} to simulate its returns", None)
            vols.append(market.vols[u])
        corr = np.eye(len(names))
        for (a, b), rho in self.correlation.items():
            i, j = names.index(a), names.index(b)
            corr[i, j] = corr[j, i] = rho
        try:
            chol = np.linalg.cholesky(corr)
        except np.linalg.LinAlgError:
            raise CaseError(self.where, "correlation", "a positive definite correlation matrix", "an indefinite one") from None
        # In place where it can be, each (n, U) array at most twice at once: at 400,000 draws every
        # temporary is as large as a column of the loss matrix (the same numbers as the expression
        # form, operation for operation).
        rng = np.random.default_rng(self.seed)
        z = rng.standard_normal((self.n, len(names))) @ chol.T
        if self.distribution is Distribution.STUDENT_T:
            assert self.dof is not None
            w = rng.chisquare(self.dof, size=self.n) / self.dof
            z /= np.sqrt(w)[:, None]
            z *= np.sqrt((self.dof - 2.0) / self.dof)
        cols = [names.index(u) for u in needed]
        sig = np.array(vols) * np.sqrt(self.horizon_days / 365.0)
        growth = np.take(z, cols, axis=1)  # a C-ordered copy (z[:, cols] is Fortran-ordered: the kernel's call copied it again)
        del z
        growth *= sig
        growth -= 0.5 * sig**2
        np.exp(growth, out=growth)
        return growth


@register("monte_carlo")
def parse_monte_carlo(node: Node) -> MonteCarloSpec:
    parts = node.mapping(
        allowed=("kind", "n", "seed", "correlation", "distribution", "dof", "horizon_days"), required=("n", "seed")
    )
    corr: dict[tuple[str, str], float] = {}
    pair_where: dict[tuple[str, str], tuple[Location, str]] = {}
    if "correlation" in parts:
        for a, row in parts["correlation"].mapping().items():
            for b, rho in row.mapping().items():
                if a == b:
                    raise rho.error("a pair of two different underlyings", f"{a}/{b}")
                key = (min(a, b), max(a, b))
                value = rho.number(lower=-1.0, upper=1.0, lower_open=True, upper_open=True)
                if key in corr and corr[key] != value:
                    raise rho.error(f"the same correlation as given before for {key[0]}/{key[1]} ({corr[key]})", value)
                corr[key] = value
                pair_where[key] = (rho.where, rho.path)
    dist = Distribution(parts["distribution"].string(choices=[d.value for d in Distribution])) if "distribution" in parts else Distribution.NORMAL
    dof = None
    if dist is Distribution.STUDENT_T:
        if "dof" not in parts:
            raise node.error("dof (degrees of freedom > 2) for a student_t distribution", None)
        dof = parts["dof"].number(lower=2.0, lower_open=True)
    elif "dof" in parts:
        raise parts["dof"].error("no dof for a normal distribution", parts["dof"].value)
    return MonteCarloSpec(
        n=int(parts["n"].number(lower=1, integer=True)),
        seed=int(parts["seed"].number(lower=0, integer=True, bound=Bound.NONE)),  # an identifier, not an amount
        correlation=MappingProxyType(corr),
        pair_where=MappingProxyType(pair_where),
        distribution=dist,
        dof=dof,
        horizon_days=parts["horizon_days"].number(lower=0.0, lower_open=True) if "horizon_days" in parts else 1.0,
        where=node.where,
    )
