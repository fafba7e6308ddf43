"""Splitting a change into pieces that add up to it: sequential re-evaluation and the Shapley split.

For players (factors) ``p_1..p_n`` in a fixed order and a value ``v(S)`` for every set ``S`` of
them taken from B (``v(empty)`` is A, ``v(all)`` is B):

- **sequential**: piece ``k`` is ``v({p_1..p_k}) - v({p_1..p_{k-1}})``. The pieces telescope to
  ``v(all) - v(empty)``, but a factor's piece depends on where it stands in the order when
  factors interact (a trade is worth more margin after a price rise than before it).
- **Shapley**: each factor's piece is its sequential piece averaged over every order,
  ``phi_i = sum over S not holding i of |S|! (n - |S| - 1)! / n! (v(S + i) - v(S))``, which needs
  ``v`` at all ``2^n`` sets. The pieces add up to ``v(all) - v(empty)`` (efficiency), a factor
  that changes nothing gets 0, and no order is preferred.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def sequential(levels: Sequence[float]) -> list[float]:
    """The pieces between consecutive levels ``v(S_0), v(S_1), ..., v(S_n)``."""
    return [levels[k] - levels[k - 1] for k in range(1, len(levels))]


def shapley(n: int, value: Callable[[int], float]) -> list[float]:
    """Each player's Shapley value; ``value(mask)`` is v of the players whose bits are set in ``mask``."""
    if n == 0:
        return []
    v = [value(mask) for mask in range(1 << n)]
    weight = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    out = []
    for i in range(n):
        bit = 1 << i
        total = 0.0
        for mask in range(1 << n):
            if not mask & bit:
                total += weight[mask.bit_count()] * (v[mask | bit] - v[mask])
        out.append(total)
    return out
