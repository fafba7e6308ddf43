"""Grid scenarios: price moves x vol moves per underlying, plus dampened extended moves.

This is the portfolio-margin scan of CME SPAN and of crypto venues (Deribit, OKX,
Bybit, Paradex, Derive): every underlying is shocked on its own (one scenario
group per underlying, summed by the measure), or all together with
``per_underlying: false``. A vol move ``v`` shocks an option's vol to
``vol * (1 + v * (reference_days / max(floor_days, dte)) ** power)`` so short-dated
vols move more; ``min_vol`` floors the shocked vol.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from marginopt.errors import Location
from marginopt.models.reader import Node
from marginopt.models.scenarios.base import Moves, ScenarioContext, ScenarioLosses, losses_from_moves, register


@dataclass(frozen=True)
class VolScaling:
    reference_days: float
    power: float
    floor_days: float = 1.0

    def factor(self, days: np.ndarray) -> np.ndarray:
        return (self.reference_days / np.maximum(self.floor_days, days)) ** self.power


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
    where: Location = field(default=Location(), compare=False)
    field_path: str = field(default="vol_moves", compare=False)
    kind: str = "grid"

    def build(self, ctx: ScenarioContext) -> ScenarioLosses:
        unders = ctx.inputs.underlyings
        base = list(itertools.product(self.price_moves, self.vol_moves))
        moves = [(m, v, 1.0, f"{_pct(m)} vol {_pct(v)}") for m, v in base]
        moves += [(e.price_move, e.vol_move, e.weight, f"ext {_pct(e.price_move)} vol {_pct(e.vol_move)}") for e in self.extended]
        pm = np.array([m[0] for m in moves])
        vm = np.array([m[1] for m in moves])
        w = np.array([m[2] for m in moves])
        names = [m[3] for m in moves]
        n, n_u = len(moves), max(len(unders), 1)
        if self.per_underlying and len(unders) > 1:
            growth = np.ones((n * n_u, n_u))
            vol = np.zeros((n * n_u, n_u))
            for u in range(n_u):
                growth[u * n:(u + 1) * n, u] = 1.0 + pm
                vol[u * n:(u + 1) * n, u] = vm
            labels = np.array([f"{unders[u]} {name}" for u in range(n_u) for name in names])
            weights = np.tile(w, n_u)
            groups, bounds = tuple(unders), np.arange(0, n * n_u + 1, n, dtype=np.int64)
        else:
            growth = np.repeat((1.0 + pm)[:, None], n_u, axis=1)
            vol = np.repeat(vm[:, None], n_u, axis=1)
            prefix = f"{unders[0]} " if len(unders) == 1 else ""
            labels = np.array([prefix + name for name in names])
            weights, groups, bounds = w, (unders[0] if len(unders) == 1 else "all",), None
        scale = self.vol_scaling.factor(ctx.inputs.days) if self.vol_scaling is not None else None
        return losses_from_moves(
            ctx, Moves(growth, vol, labels, weights, groups, bounds), vol_scale=scale, min_vol=self.min_vol, where=(self.where, self.field_path),
            source=f"grid: {len(self.price_moves)} price x {len(self.vol_moves)} vol moves + {len(self.extended)} extended",
        )


def _pct(x: float) -> str:
    return f"{x * 100:+.4g}%"


_KEYS = ("kind", "price_moves", "vol_moves", "vol_scaling", "extended", "per_underlying", "min_vol")


@register("grid")
def parse_grid(node: Node) -> GridSpec:
    parts = node.mapping(allowed=_KEYS, required=("price_moves",))
    price_moves = tuple(p.number(lower=-1.0, lower_open=True) for p in parts["price_moves"].sequence())
    if not price_moves:
        raise parts["price_moves"].error("at least one price move", [])
    vol_moves = tuple(v.number(lower=-1.0) for v in parts["vol_moves"].sequence()) if "vol_moves" in parts else (0.0,)
    if not vol_moves:
        raise parts["vol_moves"].error("at least one vol move", [])
    scaling = None
    if "vol_scaling" in parts:
        sp = parts["vol_scaling"].mapping(allowed=("reference_days", "power", "floor_days"), required=("reference_days", "power"))
        scaling = VolScaling(
            sp["reference_days"].number(lower=0.0, lower_open=True),
            sp["power"].number(lower=0.0),
            sp["floor_days"].number(lower=0.0, lower_open=True) if "floor_days" in sp else 1.0,
        )
    extended = []
    if "extended" in parts:
        for e in parts["extended"].sequence():
            ep = e.mapping(allowed=("price_move", "vol_move", "weight"), required=("price_move", "weight"))
            extended.append(ExtendedMove(
                ep["price_move"].number(lower=-1.0, lower_open=True),
                ep["vol_move"].number(lower=-1.0) if "vol_move" in ep else 0.0,
                ep["weight"].number(lower=0.0, lower_open=True),
            ))
    return GridSpec(
        price_moves=price_moves,
        vol_moves=vol_moves,
        vol_scaling=scaling,
        extended=tuple(extended),
        per_underlying=parts["per_underlying"].boolean() if "per_underlying" in parts else True,
        min_vol=parts["min_vol"].number(lower=0.0) if "min_vol" in parts else 0.0,
        where=parts["vol_moves"].where if "vol_moves" in parts else node.where,
        field_path=parts["vol_moves"].path if "vol_moves" in parts else node.path,
    )
