"""Named stress sets (market moves) and the safety a plan keeps under one of them.

```yaml
stress:                    # optional: named sets of market moves (relative, per underlying)
  crash: [{BTC: -0.30, ETH: -0.35}, {BTC: -0.50}]
safety:                    # optional: every plan keeps each venue's margin balance at or above a level
  stress: crash            # under every move of this set (CASE_FORMAT.md, "Stress-safe plans")
  level: maintenance       # maintenance (default) or initial
  call_budget:             # and/or: the expected shortfall over projected paths of each named venue's
    budget: {okx_std: 50000}   # margin-call amount on the horizon's last day at most this
    alpha: 0.95
    days: 5
    paths: 200
    model: monte_carlo     # or historical (marginopt forward's paths)
    seed: 0
```
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from marginopt.models.reader import Node


class SafetyLevel(str, Enum):
    MAINTENANCE = "maintenance"  # out of liquidation
    INITIAL = "initial"  # out of a margin call


@dataclass(frozen=True)
class StressSet:
    name: str
    moves: tuple[Mapping[str, float], ...]

    def label(self, k: int) -> str:
        """The k-th move as text: ``crash[1] BTC -30%, ETH -35%``."""
        return f"{self.name}[{k + 1}] " + ", ".join(f"{u} {m:+.2%}" for u, m in self.moves[k].items())


@dataclass(frozen=True)
class CallBudget:
    """ES at ``alpha`` over ``paths`` projected paths of each venue's margin-call amount max(IM - balance, 0)
    on day ``days``, at most ``budget[venue]`` (base currency)."""

    budget: Mapping[str, float]
    alpha: float = 0.95
    days: int = 5
    paths: int = 200
    model: str = "monte_carlo"
    seed: int = 0


@dataclass(frozen=True)
class Safety:
    stress: StressSet | None
    level: SafetyLevel = SafetyLevel.MAINTENANCE
    call_budget: CallBudget | None = None

    @property
    def name(self) -> str:
        """What the safety holds, in words: ``stress set crash``, ``call budget`` or both."""
        parts = ([f"stress set {self.stress.name}"] if self.stress is not None else []) + (
            ["call budget"] if self.call_budget is not None else [])
        return " and ".join(parts)


def parse_stress(node: Node | None, underlyings: Collection[str]) -> dict[str, StressSet]:
    """``stress: {name: [{underlying: move, ...}, ...]}``; each key an underlying of the case, each move above -1."""
    if node is None or node.value is None:
        return {}
    out = {}
    for name, snode in node.mapping().items():
        items = snode.sequence()
        if not items:
            raise snode.error("at least one market move ({underlying: relative move, ...})", snode.value)
        moves = []
        for item in items:
            move: dict[str, float] = {}
            for u, mnode in item.mapping().items():
                if u not in underlyings:
                    raise mnode.error(f"an underlying of the case's instruments ({', '.join(sorted(underlyings))})", u)
                move[u] = mnode.number(lower=-1.0, lower_open=True, upper=100.0)
            if not move:
                raise item.error("a move of at least one underlying", item.value)
            moves.append(MappingProxyType(move))
        out[name] = StressSet(name, tuple(moves))
    return out


MAX_BUDGET_PATHS = 2000  # each path is a book and a measure in the program


def parse_safety(node: Node | None, stress: Mapping[str, StressSet], venues: Collection[str] = ()) -> Safety | None:
    if node is None or node.value is None:
        return None
    parts = node.mapping(allowed=("stress", "level", "call_budget"))
    if "stress" not in parts and "call_budget" not in parts:
        raise node.error("stress (a stress set's name) and/or call_budget", node.value)
    chosen = None
    if "stress" in parts:
        name = parts["stress"].string()
        if name not in stress:
            raise parts["stress"].error(f"the name of a stress set under stress: ({', '.join(stress) or 'none given'})", name)
        chosen = stress[name]
    level = SafetyLevel(parts["level"].string(choices=[v.value for v in SafetyLevel])) if "level" in parts else SafetyLevel.MAINTENANCE
    budget = _call_budget(parts["call_budget"], venues) if "call_budget" in parts else None
    return Safety(chosen, level, budget)


def _call_budget(node: Node, venues: Collection[str]) -> CallBudget:
    parts = node.mapping(allowed=("budget", "alpha", "days", "paths", "model", "seed"), required=("budget",))
    budget: dict[str, float] = {}
    for venue, bnode in parts["budget"].mapping().items():
        if venue not in venues:
            raise bnode.error(f"a venue of the case ({', '.join(venues)})", venue)
        budget[venue] = bnode.number(lower=0.0)
    if not budget:
        raise parts["budget"].error("a budget for at least one venue ({venue: amount})", parts["budget"].value)
    out = CallBudget(MappingProxyType(budget))
    return CallBudget(
        out.budget,
        parts["alpha"].number(lower=0.0, upper=1.0, lower_open=True, upper_open=True) if "alpha" in parts else out.alpha,
        int(parts["days"].number(lower=1.0, upper=365.0, integer=True)) if "days" in parts else out.days,
        int(parts["paths"].number(lower=1.0, upper=float(MAX_BUDGET_PATHS), integer=True)) if "paths" in parts else out.paths,
        parts["model"].string(choices=("monte_carlo", "historical")) if "model" in parts else out.model,
        int(parts["seed"].number(lower=0.0, integer=True)) if "seed" in parts else out.seed,
    )
