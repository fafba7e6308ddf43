"""Grid scenarios: price moves x vol moves per underlying, plus dampened extended moves.

This is the portfolio-margin scan of CME SPAN and of crypto venues (Deribit, OKX,
Bybit, Paradex, Derive): every underlying is shocked on its own (one scenario
group per underlying, summed by the measure), or all together with
``per_underlying: false``. A vol move ``v`` shocks an option's vol to
``vol * (1 + v * (reference_days / max(floor_days, dte)) ** power)`` so short-dated
vols move more (``long_power`` replaces ``power`` from ``reference_days`` to
expiry on, as Deribit's and Paradex's short- and long-term vega powers do);
``min_vol`` floors the shocked vol, ``min_vol_up`` floors it in the scenarios
whose vol move is up only.

With ``scan_ranges: {UNDERLYING: r}`` price moves (and extended moves) are
multiples of each underlying's range: a move ``m`` takes the price to ``S (1 + m r)``
(SPAN's price scan range, ``m`` = 1/3, 2/3, 1, 2). ``underlyings`` names the
underlyings a grid's parameters were set for: an instrument on any other is refused
when the grid is built, rather than scanned with another asset's moves.

``coin_margined: true`` counts every loss in the underlying's coin at the scenario's price,
as a coin-margined account does (Deribit's BTC portfolio margin): a linear contract's loss
is divided by the underlying's growth ``S1 / S0``; inverse contracts count that way already.
Losses stay in base currency at today's price, so dividing a margin by today's price gives it in coin.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from marginopt.errors import CaseError, Location
from marginopt.models import kernel_codes as K
from marginopt.models.market import MarketData
from marginopt.models.reader import Node
from marginopt.models.scenarios.base import Moves, ScenarioContext, ScenarioLosses, losses_from_moves, register


@dataclass(frozen=True)
class VolScaling:
    reference_days: float
    power: float
    floor_days: float = 1.0
    long_power: float | None = None  # power from reference_days to expiry on; None: ``power`` throughout

    def factor(self, days: np.ndarray) -> np.ndarray:
        power = self.power if self.long_power is None else np.where(days >= self.reference_days, self.long_power, self.power)
        return (self.reference_days / np.maximum(self.floor_days, days)) ** power


@dataclass(frozen=True)
class ExtendedMove:
    price_move: float
    vol_move: float
    weight: float


@dataclass(frozen=True)
class GridSpec:
    price_moves: tuple[float, ...]
    vol_moves: tuple[float, ...] = (0.0,)
    vol_scaling: VolScaling | None = None
    extended: tuple[ExtendedMove, ...] = ()
    per_underlying: bool = True
    min_vol: float = 0.0
    min_vol_up: float = 0.0
    underlyings: tuple[str, ...] | None = None
    scan_ranges: tuple[tuple[str, float], ...] | None = None
    coin_margined: bool = False
    where: Location = field(default=Location(), compare=False)
    field_path: str = field(default="vol_moves", compare=False)
    cover_where: Location = field(default=Location(), compare=False)  # of underlyings / scan_ranges
    cover_path: str = field(default="underlyings", compare=False)
    kind: str = "grid"

    def ranges(self, underlyings: tuple[str, ...]) -> np.ndarray:
        """The scan range of each underlying (1 without ``scan_ranges``: moves are then relative)."""
        if self.scan_ranges is None:
            return np.ones(len(underlyings))
        r = dict(self.scan_ranges)
        return np.array([r[u] for u in underlyings])

    def check(self, market: MarketData) -> None:
        """Load-time check: every underlying with a scan range has a price (``underlyings`` only bounds
        what the grid covers: a case need not price them all)."""
        for u, _ in self.scan_ranges or ():
            if u not in market.prices:
                raise CaseError(self.cover_where, self.cover_path,
                                f"underlyings with a price in market.prices ({', '.join(sorted(market.prices))})", u)

    def _check_cover(self, ctx: ScenarioContext) -> None:
        inp = ctx.inputs
        covered = set(self.underlyings) if self.underlyings is not None else None
        if self.scan_ranges is not None:
            ranged = {u for u, _ in self.scan_ranges}
            covered = ranged if covered is None else covered & ranged
        if covered is None:
            return
        for j, u in enumerate(inp.underlyings[k] for k in inp.uidx):
            if u not in covered:
                what = "a scan range for every underlying of the venue's instruments" if self.scan_ranges is not None else (
                    f"instruments on {', '.join(sorted(covered))} only, the underlyings this grid's parameters are for "
                    "(give the venue your own initial_margin for others)")
                raise CaseError(self.cover_where, self.cover_path, f"{what}: instrument {inp.ids[j]} is on {u}", u)

    def build(self, ctx: ScenarioContext) -> ScenarioLosses:
        self._check_cover(ctx)
        unders = ctx.inputs.underlyings
        label = _multiple if self.scan_ranges is not None else _pct
        base = list(itertools.product(self.price_moves, self.vol_moves))
        moves = [(m, v, 1.0, f"{label(m)} vol {_pct(v)}") for m, v in base]
        moves += [(e.price_move, e.vol_move, e.weight, f"ext {label(e.price_move)} vol {_pct(e.vol_move)}") for e in self.extended]
        pm = np.array([m[0] for m in moves])
        vm = np.array([m[1] for m in moves])
        w = np.array([m[2] for m in moves])
        names = [m[3] for m in moves]
        n, n_u = len(moves), max(len(unders), 1)
        rng = self.ranges(unders) if unders else np.ones(1)
        if self.per_underlying and len(unders) > 1:
            growth = np.ones((n * n_u, n_u))
            vol = np.zeros((n * n_u, n_u))
            for u in range(n_u):
                growth[u * n:(u + 1) * n, u] = 1.0 + pm * rng[u]
                vol[u * n:(u + 1) * n, u] = vm
            labels = np.array([f"{unders[u]} {name}" for u in range(n_u) for name in names])
            weights = np.tile(w, n_u)
            groups, bounds = tuple(unders), np.arange(0, n * n_u + 1, n, dtype=np.int64)
        else:
            growth = 1.0 + pm[:, None] * rng[None, :]
            vol = np.repeat(vm[:, None], n_u, axis=1)
            prefix = f"{unders[0]} " if len(unders) == 1 else ""
            labels = np.array([prefix + name for name in names])
            weights, groups, bounds = w, (unders[0] if len(unders) == 1 else "all",), None
        scale = self.vol_scaling.factor(ctx.inputs.days) if self.vol_scaling is not None else None
        source = f"grid: {len(self.price_moves)} price x {len(self.vol_moves)} vol moves + {len(self.extended)} extended"
        all_moves = Moves(growth, vol, labels, weights, groups, bounds)
        out = losses_from_moves(ctx, all_moves, vol_scale=scale, min_vol=self.min_vol, where=(self.where, self.field_path),
                                source=source)
        up = (vol > 0.0).any(axis=1)
        if self.min_vol_up > self.min_vol and up.any() and ctx.inputs.is_option.any():
            # The scenarios with vol up again, with their own floor on the shocked vol.
            sub = losses_from_moves(ctx, Moves(growth[up], vol[up], labels[up], weights[up]), vol_scale=scale,
                                    min_vol=self.min_vol_up)
            matrix = out.matrix.copy()
            matrix[up] = sub.matrix
            out = ScenarioLosses(out.labels, out.weights, out.instrument_ids, matrix, out.group_names, out.group_bounds, source)
        linear = np.isin(ctx.inputs.code, (K.DELTA_ONE_LINEAR, K.OPTION_LINEAR))
        if self.coin_margined and linear.any():
            matrix = out.matrix.copy()
            matrix[:, linear] /= growth[:, ctx.inputs.uidx[linear]]
            out = ScenarioLosses(out.labels, out.weights, out.instrument_ids, matrix, out.group_names, out.group_bounds, source)
        return out


def _pct(x: float) -> str:
    return f"{x * 100:+.4g}%"


def _multiple(x: float) -> str:
    return f"{x:+.4g} range"


_KEYS = ("kind", "price_moves", "vol_moves", "vol_scaling", "extended", "per_underlying", "min_vol", "min_vol_up",
         "underlyings", "scan_ranges", "coin_margined")


@register("grid")
def parse_grid(node: Node) -> GridSpec:
    parts = node.mapping(allowed=_KEYS, required=("price_moves",))
    ranged = "scan_ranges" in parts
    # With scan ranges a move is a multiple of the range (SPAN's extreme move is 2): checked against the ranges below.
    lowest = None if ranged else -1.0
    price_moves = tuple(p.number(lower=lowest, lower_open=True) for p in parts["price_moves"].sequence())
    if not price_moves:
        raise parts["price_moves"].error("at least one price move", [])
    vol_moves = tuple(v.number(lower=-1.0) for v in parts["vol_moves"].sequence()) if "vol_moves" in parts else (0.0,)
    if not vol_moves:
        raise parts["vol_moves"].error("at least one vol move", [])
    scaling = None
    if "vol_scaling" in parts:
        sp = parts["vol_scaling"].mapping(allowed=("reference_days", "power", "floor_days", "long_power"),
                                          required=("reference_days", "power"))
        scaling = VolScaling(
            sp["reference_days"].number(lower=0.0, lower_open=True),
            sp["power"].number(lower=0.0),
            sp["floor_days"].number(lower=0.0, lower_open=True) if "floor_days" in sp else 1.0,
            sp["long_power"].number(lower=0.0) if "long_power" in sp else None,
        )
    extended = []
    if "extended" in parts:
        for e in parts["extended"].sequence():
            ep = e.mapping(allowed=("price_move", "vol_move", "weight"), required=("price_move", "weight"))
            extended.append(ExtendedMove(
                ep["price_move"].number(lower=lowest, lower_open=True),
                ep["vol_move"].number(lower=-1.0) if "vol_move" in ep else 0.0,
                ep["weight"].number(lower=0.0, lower_open=True),
            ))
    underlyings = None
    cover = parts.get("scan_ranges", parts.get("underlyings", node))
    if "underlyings" in parts:
        underlyings = tuple(u.string() for u in parts["underlyings"].sequence())
        if not underlyings:
            raise parts["underlyings"].error("at least one underlying", [])
    scan_ranges = None
    if ranged:
        moves = price_moves + tuple(e.price_move for e in extended)
        pairs = []
        for u, rnode in parts["scan_ranges"].mapping().items():
            r = rnode.number(lower=0.0, lower_open=True)
            if 1.0 + min(moves) * r <= 0.0:
                raise rnode.error(f"a range r with 1 + r * {min(moves):g} > 0 (the lowest price move must leave a positive price)", r)
            pairs.append((u, r))
        if not pairs:
            raise parts["scan_ranges"].error("a scan range for at least one underlying", {})
        scan_ranges = tuple(pairs)
    return GridSpec(
        price_moves=price_moves,
        vol_moves=vol_moves,
        vol_scaling=scaling,
        extended=tuple(extended),
        per_underlying=parts["per_underlying"].boolean() if "per_underlying" in parts else True,
        min_vol=parts["min_vol"].number(lower=0.0) if "min_vol" in parts else 0.0,
        min_vol_up=parts["min_vol_up"].number(lower=0.0) if "min_vol_up" in parts else 0.0,
        underlyings=underlyings,
        scan_ranges=scan_ranges,
        coin_margined=parts["coin_margined"].boolean() if "coin_margined" in parts else False,
        where=parts["vol_moves"].where if "vol_moves" in parts else node.where,
        field_path=parts["vol_moves"].path if "vol_moves" in parts else node.path,
        cover_where=cover.where,
        cover_path=cover.path,
    )
