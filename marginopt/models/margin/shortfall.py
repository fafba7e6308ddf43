"""Expected shortfall and historical VaR over a scenario set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marginopt.errors import NonConvexMeasureError
from marginopt.models.margin.base import BindContext, CvxForm, Measure, measure_keys, optional_name, register
from marginopt.models.margin.scenario_max import ScenarioMeasure
from marginopt.models.reader import Node
from marginopt.models.scenarios import ScenarioLosses, ScenarioSpec, parse_scenario_set
from marginopt.models.scenarios.base import is_constant
from marginopt.typing import FloatArray

if TYPE_CHECKING:  # imported where a cvxpy form is built, so margin alone never loads cvxpy
    import cvxpy as cp


# From this many scenarios the tail is found by a partition, not a sort of them all.
_PARTITION_FROM = 1 << 16


def _tail(losses: FloatArray, prob: FloatArray, beta: float) -> tuple[np.ndarray, FloatArray]:
    """The scenarios of the worst ``beta`` mass, worst first (among equal losses, by index), and the
    mass each contributes; every other scenario contributes none.

    A large set sorts only its top: the scenarios at or above a partition's threshold (so equal
    losses stay together), as many as carry ``beta`` (from 1.25 tails under equal probabilities,
    doubling). Their order and masses are the full sort's, bit for bit: the others all come after
    them and start at a cumulative mass of at least ``beta``. At 400,000 scenarios that is 0.4 MB
    and a few milliseconds instead of five arrays of 3.2 MB and a sort."""
    n = len(losses)
    if n >= _PARTITION_FROM:
        k = min(n, int(np.ceil(1.25 * beta * n)) + 16)
        while 2 * k <= n:
            top = np.flatnonzero(losses >= np.partition(losses, n - k)[n - k])
            order = top[np.argsort(-losses[top], kind="stable")]
            p = prob[order]
            cum = np.cumsum(p)
            if cum[-1] >= beta:
                return order, np.clip(beta - (cum - p), 0.0, p)
            k *= 2
    order = np.argsort(-losses, kind="stable")
    p = prob[order]
    return order, np.clip(beta - (np.cumsum(p) - p), 0.0, p)


def tail_mean(losses: FloatArray, prob: FloatArray, beta: float) -> float:
    """Mean of the worst ``beta`` probability mass of a discrete loss distribution.

    The scenario straddling the boundary counts with the fraction of its mass
    inside the tail, so the result is exact for any ``beta`` (Rockafellar and
    Uryasev 2002, Proposition 8).
    """
    order, take = _tail(losses, prob, beta)
    return float(take @ losses[order] / beta)


def tail_weights(losses: FloatArray, prob: FloatArray, beta: float) -> FloatArray:
    """Weight of each scenario in the tail mean (sums to 1): the ES gradient's row weights."""
    order, take = _tail(losses, prob, beta)
    out = np.zeros(len(losses))
    out[order] = take / beta
    return out


# Rows of a scenario matrix read at a time where a tail is found without the loss vector (``matrix_tail``).
_TAIL_BLOCK = 1 << 14


def matrix_tail(matrix: FloatArray, q: FloatArray, prob: FloatArray, beta: float) -> tuple[np.ndarray, FloatArray, FloatArray, float]:
    """``_tail`` of the losses ``matrix @ q`` without them: the tail's scenarios (worst first, those
    with mass in it only), their masses and losses, and the largest ``|loss|`` of all.

    A large set is read block by block of rows, keeping every scenario at or above the ``k``-th largest
    loss seen so far (ties included, in index order): after the last block those are the top ``k`` of
    ``_tail``'s partition, so the order and masses are its bit for bit, and memory is a block and the
    top, not the loss vector and the partition's copy of it (at 400,000 scenarios 3 MiB each, half
    the loss matrix of four instruments)."""
    order, take, values, size = ranked(matrix, q, prob, beta)
    keep = take > 0
    return order[keep], take[keep], values[keep], size


def ranked(matrix: FloatArray, q: FloatArray, prob: FloatArray, beta: float, below: int = 0
           ) -> tuple[np.ndarray, FloatArray, FloatArray, float]:
    """The scenarios of ``matrix_tail``'s tail and at least ``below`` more after it (fewer where the set
    has no more), worst first, with their masses in the tail (0 past it) and losses, and the largest
    ``|loss|`` of all; read block by block of rows as ``matrix_tail`` says."""
    n = matrix.shape[0]
    if n >= _PARTITION_FROM:
        k = min(n, int(np.ceil(1.25 * beta * n)) + 16 + below)
        while 2 * k <= n:
            top, values, size = _top(matrix, q, k)
            sort = np.argsort(-values, kind="stable")
            order, values = top[sort], values[sort]
            p = prob[order]
            cum = np.cumsum(p)
            take = np.clip(beta - (cum - p), 0.0, p)
            last = np.count_nonzero(take) + below  # the masses are a prefix: the order is by loss
            if cum[-1] >= beta and last <= len(order):
                return order[:last], take[:last], values[:last], size
            k *= 2
    loss = matrix @ q
    order, take = _tail(loss, prob, beta)
    last = min(n, np.count_nonzero(take) + below)
    return order[:last], take[:last], loss[order[:last]], float(np.abs(loss).max(initial=0.0))


def _top(matrix: FloatArray, q: FloatArray, k: int) -> tuple[np.ndarray, FloatArray, float]:
    """The scenarios whose loss ``matrix @ q`` is at or above the ``k``-th largest (in index order) and
    their losses, and the largest ``|loss|``; read ``_TAIL_BLOCK`` rows at a time. A scenario below the
    ``k``-th largest of those seen so far is below the ``k``-th largest of all, so dropping it is safe."""
    index, value = np.empty(0, dtype=np.intp), np.empty(0)
    threshold, size = -np.inf, 0.0
    for lo in range(0, matrix.shape[0], _TAIL_BLOCK):
        block = matrix[lo:lo + _TAIL_BLOCK] @ q
        size = max(size, float(np.abs(block).max(initial=0.0)))
        keep = np.flatnonzero(block >= threshold)
        index, value = np.concatenate([index, keep + lo]), np.concatenate([value, block[keep]])
        if len(value) >= 2 * k:
            threshold = np.partition(value, len(value) - k)[len(value) - k]
            kept = value >= threshold
            index, value = index[kept], value[kept]
    if len(value) > k:
        threshold = np.partition(value, len(value) - k)[len(value) - k]
        kept = value >= threshold
        index, value = index[kept], value[kept]
    return index, value, size


def rows_product(w: FloatArray, matrix: FloatArray, rows: np.ndarray) -> FloatArray:
    """``w @ matrix[rows]`` gathering at most ``_TAIL_BLOCK`` entries of the matrix at a time (a tail of
    10,000 scenarios of a wide book's matrix would be a copy of 10,000 of its rows)."""
    step = max(1, _TAIL_BLOCK // max(1, matrix.shape[1]))
    out = np.zeros(matrix.shape[1])
    for lo in range(0, len(rows), step):
        out += w[lo:lo + step] @ matrix[rows[lo:lo + step]]
    return out


def quantile(losses: FloatArray, prob: FloatArray, alpha: float) -> float:
    """Smallest loss ``l`` with ``P(loss <= l) >= alpha`` (1e-12 tolerance on the sum)."""
    order = np.argsort(losses, kind="stable")
    cum = np.cumsum(prob[order])
    k = int(np.searchsorted(cum, alpha - 1e-12, side="left"))
    return float(losses[order][min(k, len(cum) - 1)])


def _probabilities(losses: ScenarioLosses) -> list[FloatArray]:
    """Each group's scenario weights as probabilities (summing to 1 in the group); equal weights as
    one value broadcast (``scenarios.base.equal_weights``), not an array of them."""
    if is_constant(losses.weights):
        return [np.broadcast_to(1.0 / (g.stop - g.start), (g.stop - g.start,)) for g in losses.groups()]
    return [losses.weights[g] / losses.weights[g].sum() for g in losses.groups()]


def _same_scenarios(a: ScenarioLosses, b: ScenarioLosses) -> bool:
    """The same weights in the same groups (the same arrays: as ``ScenarioLosses.on_columns`` passes them on)."""
    return a.weights is b.weights and a.group_bounds is b.group_bounds


class ExpectedShortfall(ScenarioMeasure):
    r"""Expected shortfall at level ``alpha``, floored at zero, per group:

    .. math:: \mathrm{ES}_\alpha = \min_c \; c + \frac{1}{1-\alpha} \sum_s p_s \max(0, (Lq)_s - c)

    with ``p_s = w_s / \sum_{s \in g} w_s``: the mean of the worst ``1 - alpha``
    probability mass (an LP, Rockafellar-Uryasev). Models Eurex Prisma, LCH PAIRS,
    OCC STANS and the VaR part of CME SPAN 2.
    """

    def __init__(self, name: str, losses: ScenarioLosses, alpha: float, probs: list[FloatArray] | None = None) -> None:
        """``probs``: the groups' probabilities where the caller has them for these weights (``with_losses``)."""
        self.name, self.losses, self.alpha = name, losses, alpha
        self.beta = 1.0 - alpha
        self.probs = probs if probs is not None else _probabilities(losses)

    def with_losses(self, losses: ScenarioLosses) -> ExpectedShortfall:
        # The same scenarios on other columns (``on_columns``) keep their weights: one copy of the probabilities.
        return ExpectedShortfall(self.name, losses, self.alpha, self.probs if _same_scenarios(losses, self.losses) else None)

    def group_values(self, q: FloatArray) -> list[float]:
        return [max(0.0, self.tail(k, q)[3]) for k in range(len(self.probs))]

    def tail(self, k: int, q: FloatArray) -> tuple[np.ndarray, FloatArray, FloatArray, float, float]:
        """Group ``k``'s tail at ``q`` (``matrix_tail``): its scenarios (indices in the group), their weights
        in the tail mean, the group's losses at them, its ES (unfloored) and the largest ``|loss|`` in it."""
        g = self.losses.groups()[k]
        rows, take, values, size = matrix_tail(self.losses.matrix[g], q, self.probs[k], self.beta)
        return rows, take / self.beta, values, float(take @ values / self.beta), size

    def gradient(self, q: FloatArray) -> FloatArray:
        grad = np.zeros(self.losses.shape[1])
        for k, g in enumerate(self.losses.groups()):
            rows, weights, _, es, _ = self.tail(k, q)
            if es > 0:
                grad += rows_product(weights, self.losses.matrix[g], rows)
        return grad

    def arrays(self) -> dict[str, FloatArray]:
        return {f"l{k}": self.losses.matrix[g] for k, g in enumerate(self.losses.groups())}

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        import cvxpy as cp

        terms = []
        for k, p in enumerate(self.probs):
            c = cp.Variable(name=f"{self.name}.var{k}")
            terms.append(cp.pos(c + (p / self.beta) @ cp.pos(self.param(f"l{k}") @ q - c)))
        return cp.sum(cp.hstack(terms)) if len(terms) > 1 else terms[0], []


class HistoricalVaR(ScenarioMeasure):
    r"""Historical value at risk: the ``alpha`` quantile of scenario losses, floored at zero, per group.

    A quantile is **not convex** in positions, so this measure is for evaluation
    only; ``cvxpy`` raises. The optimizer works against ``convex_bound()``,
    expected shortfall at the same ``alpha``, which is never below it.
    """

    convex = False
    bound_note = "historical VaR: not convex; the optimizer bounds it by expected shortfall"

    def __init__(self, name: str, losses: ScenarioLosses, alpha: float) -> None:
        self.name, self.losses, self.alpha = name, losses, alpha
        self.probs = _probabilities(losses)

    def group_values(self, q: FloatArray) -> list[float]:
        loss = self.losses.losses(q)
        return [max(0.0, quantile(loss[g], p, self.alpha)) for g, p in zip(self.losses.groups(), self.probs)]

    def gradient(self, q: FloatArray) -> FloatArray:
        """The loss row of the scenario at the quantile, per group where it is positive."""
        loss = self.losses.losses(q)
        grad = np.zeros(self.losses.shape[1])
        for g, p in zip(self.losses.groups(), self.probs):
            var = quantile(loss[g], p, self.alpha)
            if var > 0:
                s = g.start + int(np.flatnonzero(loss[g] == var)[0])
                grad += self.losses.matrix[s]
        return grad

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        raise NonConvexMeasureError(
            f"{self.name}: historical VaR is a quantile and not convex in positions; "
            f"optimize against expected_shortfall at alpha {self.alpha} (an upper bound) instead"
        )

    def convex_bound(self) -> ExpectedShortfall:
        return ExpectedShortfall(f"{self.name} (ES bound)", self.losses, self.alpha, self.probs)


@dataclass(frozen=True)
class ShortfallSpec:
    scenarios: ScenarioSpec
    alpha: float
    name: str | None = None
    kind: str = "expected_shortfall"

    def bind(self, ctx: BindContext) -> Measure:
        cls = ExpectedShortfall if self.kind == "expected_shortfall" else HistoricalVaR
        return cls(self.name or self.kind, ctx.scenarios(self.scenarios), self.alpha)


def _parse(node: Node, kind: str) -> ShortfallSpec:
    parts = measure_keys(node, "scenarios", "alpha", required=("scenarios", "alpha"))
    alpha = parts["alpha"].number(lower=0.0, upper=1.0, lower_open=True, upper_open=True)
    return ShortfallSpec(parse_scenario_set(parts["scenarios"]), alpha, optional_name(parts), kind)


@register("expected_shortfall")
def parse_expected_shortfall(node: Node) -> ShortfallSpec:
    return _parse(node, "expected_shortfall")


@register("historical_var")
def parse_historical_var(node: Node) -> ShortfallSpec:
    return _parse(node, "historical_var")
