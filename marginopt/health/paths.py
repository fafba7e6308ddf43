"""Price paths for the forward projection, drawn from the case's own scenario model.

A path moves every underlying of the case's instruments (``MarketMoves.underlyings``) day by day;
``growth[p, d, u]`` is ``S_u(d) / S_u(0)`` on path ``p`` (day 0 is today: 1).

- ``historical``: the daily returns of ``market.history`` (each row's close over the row before; rows
  are taken as consecutive days), all underlyings on the same day together. A path is blocks of
  ``block`` consecutive days (at most the horizon), each starting on a day drawn at random (uniformly,
  with replacement), cut to the horizon. ``block`` is the horizon by default: each path replays a window of history as
  it happened (at most ``returns - days + 1`` distinct paths); ``block`` 1 is an i.i.d. bootstrap of
  single days.
- ``monte_carlo``: lognormal daily steps, ``log g = vol sqrt(1/365) z - vol^2 / 730`` with
  ``market.vols``. Correlation and distribution are those of the case's first Monte Carlo scenario
  set (venues in order) where it has one; otherwise normal, correlated as the history's daily log
  returns where the case has a history, else independent.

Both are seeded: the same seed gives the same paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from marginopt.errors import ArgumentError, CaseError, Location
from marginopt.models.case import Case
from marginopt.models.margin import scenario_specs
from marginopt.models.moves import underlyings
from marginopt.models.scenarios import MonteCarloSpec
from marginopt.typing import FloatArray

MODELS = ("historical", "monte_carlo")


@dataclass(frozen=True, eq=False)
class Paths:
    model: str
    underlyings: tuple[str, ...]
    growth: FloatArray  # (paths, days + 1, underlyings); growth[:, 0] == 1
    seed: int
    source: str  # what the paths were drawn from, in words
    block: int | None = None  # historical: days per block

    @property
    def n_paths(self) -> int:
        return int(self.growth.shape[0])

    @property
    def days(self) -> int:
        return int(self.growth.shape[1]) - 1


def _check(paths: int, days: int, seed: int) -> None:
    if not (isinstance(paths, (int, np.integer)) and paths >= 1):
        raise ArgumentError(f"paths={paths!r}: expected a whole number of paths, at least 1")
    if not (isinstance(days, (int, np.integer)) and days >= 1):
        raise ArgumentError(f"days={days!r}: expected a horizon of at least 1 day (day 0 is today)")
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ArgumentError(f"seed={seed!r}: expected a whole number >= 0")


def draw_paths(case: Case, model: str, paths: int, days: int, seed: int = 0, block: int | None = None) -> Paths:
    """``paths`` paths of ``days`` days of the case's underlyings under ``model`` (``MODELS``)."""
    _check(paths, days, seed)
    if model == "historical":
        return historical_paths(case, paths, days, seed, block)
    if model == "monte_carlo":
        if block is not None:
            raise ArgumentError("block: only for the historical model (Monte Carlo days are independent draws)")
        return monte_carlo_paths(case, paths, days, seed)
    raise ArgumentError(f"model={model!r}: expected one of {', '.join(MODELS)}")


def _cumulative(daily: FloatArray) -> FloatArray:
    """``(P, D, U)`` daily price ratios -> ``(P, D + 1, U)`` ratios to today."""
    out = np.empty((daily.shape[0], daily.shape[1] + 1, daily.shape[2]))
    out[:, 0] = 1.0
    with np.errstate(over="ignore"):  # a path past floats is named by the projection, venue, day and path
        np.cumprod(daily, axis=1, out=out[:, 1:])
    return out


def historical_paths(case: Case, paths: int, days: int, seed: int = 0, block: int | None = None) -> Paths:
    """Paths of blocks of consecutive daily returns of ``market.history`` (the module's docstring)."""
    _check(paths, days, seed)
    hist = case.market.history
    if hist is None:
        raise CaseError(Location(case.path), "market.history",
                        "a price history for the historical path model (or the monte_carlo model)", None)
    if block is not None and not (isinstance(block, (int, np.integer)) and block >= 1):
        raise ArgumentError(f"block={block!r}: expected a whole number of days, at least 1")
    block = days if block is None else min(block, days)  # a block longer than the horizon is cut to it anyway
    unders = underlyings(case)
    cols = []
    for u in unders:
        if u not in hist.closes:
            raise CaseError(Location(hist.file, 1, "row"), u, f"a price column for underlying {u} (the paths move it)",
                            "no such column")
        p = hist.closes[u]
        cols.append(p[1:] / p[:-1])
    n_returns = len(hist.dates) - 1
    if n_returns < block:
        raise CaseError(Location(hist.file), "date",
                        f"at least {block + 1} rows of prices: {block} daily returns for a block of {block} consecutive days "
                        f"({'the horizon, --days' if block == days else '--block'} {block}; or a shorter block)", len(hist.dates))
    ratios = np.column_stack(cols) if cols else np.ones((n_returns, 0))
    rng = np.random.default_rng(seed)
    n_blocks = -(-days // block)
    starts = rng.integers(0, n_returns - block + 1, size=(paths, n_blocks))
    index = (starts[:, :, None] + np.arange(block)).reshape(paths, n_blocks * block)[:, :days]
    first, last = hist.dates[0], hist.dates[-1]
    kind = "the whole horizon" if block >= days else f"{block} day{'s' if block > 1 else ''}"
    return Paths("historical", unders, _cumulative(ratios[index]), int(seed),
                 f"{n_returns} daily returns of market.history ({first} to {last}) in blocks of {kind}, drawn with "
                 "replacement", int(block))


def monte_carlo_paths(case: Case, paths: int, days: int, seed: int = 0) -> Paths:
    """Lognormal daily steps at ``market.vols`` (the module's docstring says which correlation)."""
    _check(paths, days, seed)
    unders = underlyings(case)
    spec, source = _daily_spec(case, paths * days, seed)
    daily = spec.growth(case.market, unders).reshape(paths, days, len(unders))
    return Paths("monte_carlo", unders, _cumulative(daily), int(seed), source)


def _daily_spec(case: Case, n: int, seed: int) -> tuple[MonteCarloSpec, str]:
    for name, venue in case.venues.items():
        for measure in venue.measure_specs():
            for sc in scenario_specs(measure):
                if isinstance(sc, MonteCarloSpec):
                    return (MonteCarloSpec(n, seed, sc.correlation, sc.distribution, sc.dof, 1.0, sc.where, sc.pair_where),
                            f"daily {sc.distribution.value} steps at market.vols, correlated as venues.{name}'s Monte Carlo set")
    corr = _history_correlation(case)
    how = "as the history's daily log returns" if corr else "independently"
    return (MonteCarloSpec(n, seed, corr, where=Location(case.path)),
            f"daily normal steps at market.vols, correlated {how}")


def _history_correlation(case: Case) -> Mapping[tuple[str, str], float]:
    hist = case.market.history
    unders = [u for u in underlyings(case) if hist is not None and u in hist.closes]
    if hist is None or len(unders) < 2 or len(hist.dates) < 3:
        return MappingProxyType({})
    logs = np.column_stack([np.diff(np.log(hist.closes[u])) for u in unders])
    rho = np.corrcoef(logs, rowvar=False)
    return MappingProxyType({(unders[i], unders[j]): float(rho[i, j]) for i in range(len(unders))
                             for j in range(i + 1, len(unders)) if np.isfinite(rho[i, j])})
