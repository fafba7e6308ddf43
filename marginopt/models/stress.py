"""Named stress sets (market moves) and the safety a plan keeps under one of them.

```yaml
stress:                    # optional: named sets of market moves (relative, per underlying)
  crash: [{BTC: -0.30, ETH: -0.35}, {BTC: -0.50}]
safety:                    # optional: every plan keeps each venue's margin balance at or above a level
  stress: crash            # under every move of this set (CASE_FORMAT.md, "Stress-safe plans")
  level: maintenance       # maintenance (default) or initial
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
class Safety:
    stress: StressSet
    level: SafetyLevel = SafetyLevel.MAINTENANCE


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


def parse_safety(node: Node | None, stress: Mapping[str, StressSet]) -> Safety | None:
    if node is None or node.value is None:
        return None
    parts = node.mapping(allowed=("stress", "level"), required=("stress",))
    name = parts["stress"].string()
    if name not in stress:
        raise parts["stress"].error(f"the name of a stress set under stress: ({', '.join(stress) or 'none given'})", name)
    level = SafetyLevel(parts["level"].string(choices=[v.value for v in SafetyLevel])) if "level" in parts else SafetyLevel.MAINTENANCE
    return Safety(stress[name], level)
