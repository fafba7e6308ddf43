"""A venue's margin measures at many market states at once: the forward projection's re-margining.

Each measure kind below is evaluated for ``N`` states of one book with the same arithmetic as its own
``evaluate`` for one (``models.margin``), from the states' pricing arrays (``health.states``):

- scenario measures (scenario maximum, expected shortfall, historical VaR, parametric VaR) from the
  scenario-loss matrix of all states side by side, priced by the scenario set itself in one call of
  the loss kernel, times the book: the ``(S, N)`` portfolio losses of every scenario at every state;
- notional and delta measures (fixed rate, short-option minimum, net-delta charge, basis shift, delta
  requirement) from the measure bound to the states' book, each state's columns with its own prices;
- SPAN's inter-commodity spread credit, from both: each leg's scan risk and net delta per state, the
  spreads formed in order with every state's counts at once;
- sum and max of these.

Any other kind (Derive's model, a user-supplied loss matrix, whose losses do not move with the
market) is not vectorized: ``unsupported`` names it, and the projection re-margins
that venue state by state on the full case (``health.days``), exact and slower.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from marginopt.errors import ModelError
from marginopt.health.states import States
from marginopt.models.margin import BindContext, MeasureSpec
from marginopt.models.margin.delta import DeltaRequirement
from marginopt.models.margin.notional import FixedRate, NetDeltaCharge, ShortOptionMinimum
from marginopt.models.margin.shortfall import _probabilities
from marginopt.models.margin.spread_credit import _WHOLE
from marginopt.models.market import MarketData
from marginopt.models.scenarios import ScenarioContext, ScenarioLosses, ScenarioSpec
from marginopt.typing import FloatArray

# Scenario sets priced from the market (a matrix of given losses does not move with it).
_SCENARIO_KINDS = frozenset({"grid", "historical", "monte_carlo"})
_BOUND_KINDS = frozenset({"fixed_rate", "short_option_minimum", "net_delta_charge", "basis_shift", "delta_requirement"})
_SCENARIO_MEASURES = frozenset({"scenario_max", "expected_shortfall", "historical_var", "parametric_var", "spread_credit"})
# From this many losses (scenarios x states) with a tail of at most ``_FEW`` scenarios, the tail is found
# by the compiled ``_tails.largest`` (numba loads once, 0.3 s); below, by numpy's partition.
COMPILED_FROM = 250_000
_FEW = 32


def unsupported(spec: MeasureSpec) -> str | None:
    """What in ``spec`` is not vectorized (a measure kind, or a scenario set's), or None."""
    if spec.kind in ("sum", "max"):
        for term in getattr(spec, "terms", ()):
            found = unsupported(term)
            if found is not None:
                return found
        return None
    if spec.kind in _BOUND_KINDS:
        return None
    if spec.kind in _SCENARIO_MEASURES:
        sc: ScenarioSpec = spec.scenarios  # type: ignore[attr-defined]
        return None if sc.kind in _SCENARIO_KINDS else f"{spec.kind} on a {sc.kind} scenario set"
    return spec.kind


class Batch:
    """``N`` states of one day of a venue's live book, and the portfolio losses of each scenario set there."""

    def __init__(self, states: States, market: MarketData, all_ids: frozenset[str]) -> None:
        self.states = states
        self.q = states.book.q
        self.ctx = ScenarioContext(states.inputs, market, states.book.start, all_ids)
        self._losses: dict[ScenarioSpec, tuple[ScenarioLosses, FloatArray]] = {}

    @property
    def n(self) -> int:
        return self.states.n

    def losses(self, spec: ScenarioSpec) -> tuple[ScenarioLosses, FloatArray]:
        """The scenario set (its weights and groups) and the ``(S, N)`` loss of the book in each scenario
        at each state; the matrix of every contract is let go once multiplied out."""
        if spec not in self._losses:
            built = spec.build(self.ctx)
            s, j = built.shape[0], len(self.q)
            portfolio = built.matrix.reshape(s, self.n, j) @ self.q
            meta = ScenarioLosses(built.labels, built.weights, (), np.zeros((s, 0)), built.group_names, built.group_bounds,
                                  built.source)
            self._losses[spec] = (meta, portfolio)
        return self._losses[spec]

    def scenario_rows(self) -> int:
        """Scenarios priced so far (the size of a chunk of states is chosen from it)."""
        return sum(meta.shape[0] for meta, _ in self._losses.values())

    def bound(self, spec: MeasureSpec) -> Any:
        """``spec`` bound to the states' book (a notional or delta measure: no scenario set)."""
        def no_scenarios(s: ScenarioSpec) -> ScenarioLosses:
            raise ModelError(f"{spec.kind}: a scenario set where none was expected")

        return spec.bind(BindContext(self.states.inputs, no_scenarios))


def margin(spec: MeasureSpec, batch: Batch) -> FloatArray:
    """``spec``'s margin at each state of ``batch``, ``(N,)``."""
    if spec.kind in ("sum", "max"):
        terms = [margin(t, batch) for t in spec.terms]  # type: ignore[attr-defined]
        out = terms[0].copy()
        for t in terms[1:]:
            out = out + t if spec.kind == "sum" else np.maximum(out, t)
        return out
    if spec.kind == "spread_credit":
        return _spread_credit(spec, batch)
    if spec.kind in _SCENARIO_MEASURES:
        meta, loss = batch.losses(spec.scenarios)  # type: ignore[attr-defined]
        return _SCENARIO[spec.kind](spec, meta, loss)
    m = batch.bound(spec)
    n, q = batch.n, batch.q
    if isinstance(m, FixedRate):
        return m.rate * np.abs(q * m.notional.reshape(n, -1)).sum(axis=1)
    if isinstance(m, ShortOptionMinimum):
        return m.per_contract * (m.unit.reshape(n, -1) @ np.maximum(-q, 0.0))
    _, prices = batch.states.spot_by_underlying()  # (N, U): each state's own prices
    if isinstance(m, NetDeltaCharge):
        net = m.delta.reshape(len(m.underlyings), n, -1) @ q  # (U, N)
        return (m.rate * prices.T * np.abs(net)).sum(axis=0)
    if isinstance(m, DeltaRequirement):
        u = len(m.underlyings)
        net = np.abs(m.delta.reshape(u, n, -1) @ q)
        gross = m.gross.reshape(u, n, -1) @ np.abs(q)
        return (prices.T * (m.net_rate * net + m.gross_rate * gross)).sum(axis=0)
    raise ModelError(f"{spec.kind}: no vectorized evaluation (health.measures.unsupported should have named it)")


def _scenario_max(spec: Any, meta: ScenarioLosses, loss: FloatArray) -> FloatArray:
    weighted = meta.weights[:, None] * loss
    return _per_group(meta, lambda k, g: np.maximum(weighted[g].max(axis=0), 0.0))


def _shortfall(spec: Any, meta: ScenarioLosses, loss: FloatArray) -> FloatArray:
    probs = _probabilities(meta)
    return _per_group(meta, lambda k, g: np.maximum(tail_means(loss[g], np.asarray(probs[k]), 1.0 - spec.alpha), 0.0))


def _var(spec: Any, meta: ScenarioLosses, loss: FloatArray) -> FloatArray:
    probs = _probabilities(meta)
    return _per_group(meta, lambda k, g: np.maximum(quantiles(loss[g], np.asarray(probs[k]), spec.alpha), 0.0))


def _parametric(spec: Any, meta: ScenarioLosses, loss: FloatArray) -> FloatArray:
    """``z`` times the standard deviation of the book's loss: ``z sqrt(q' C q)`` with ``C`` the scenarios'
    probability-weighted covariance, as ``ParametricVaR`` has it (there through a factor of ``C``)."""
    def group(k: int, g: slice) -> FloatArray:
        p = meta.weights[g] / meta.weights[g].sum()
        centred = loss[g] - p @ loss[g]
        return spec.z * np.sqrt(np.maximum(p @ (centred * centred), 0.0))

    return _per_group(meta, group)


_SCENARIO: dict[str, Callable[[Any, ScenarioLosses, FloatArray], FloatArray]] = {
    "scenario_max": _scenario_max, "expected_shortfall": _shortfall, "historical_var": _var, "parametric_var": _parametric}


def _spread_credit(spec: Any, batch: Batch) -> FloatArray:
    """Minus ``SpreadCredit.credits`` summed, at every state: per leg underlying its scan risk (its group's
    weighted maximum loss, floored at 0), net delta and cap (that state's price x the scan range x the
    largest standard move), then the spreads in order, each state forming its own whole number of them."""
    meta, loss = batch.losses(spec.scenarios)
    n = batch.n
    inp = batch.states.inputs
    names, prices = batch.states.spot_by_underlying()
    delta = inp.delta_matrix().reshape(len(inp.underlyings), n, -1) @ batch.q  # (U, N)
    groups = dict(zip(meta.group_names, meta.groups(), strict=True))
    weighted = meta.weights[:, None] * loss
    largest = max(abs(m) for m in spec.scenarios.price_moves)
    ranges = dict(spec.scenarios.scan_ranges or ())
    legs = tuple(dict.fromkeys(leg.underlying for sp in spec.spreads for leg in sp.legs))
    net, scan, cap = (np.zeros((len(legs), n)) for _ in range(3))
    for k, u in enumerate(legs):
        if u in names:
            net[k] = delta[names.index(u)]
            cap[k] = prices[:, names.index(u)] * ranges.get(u, 1.0) * largest
        if u in groups:
            scan[k] = np.maximum(weighted[groups[u]].max(axis=0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        wfpr = np.where(net != 0.0, np.minimum(scan / np.abs(net), cap), 0.0)
    index = {u: k for k, u in enumerate(legs)}
    left, credit = net.copy(), np.zeros((len(legs), n))
    for sp in spec.spreads:
        ks = [index[leg.underlying] for leg in sp.legs]
        sign_a = np.sign(left[next(k for k, leg in zip(ks, sp.legs, strict=True) if leg.side == "A")])
        wanted = [sign_a if leg.side == "A" else -sign_a for leg in sp.legs]
        ok = sign_a != 0.0
        for k, w in zip(ks, wanted, strict=True):
            ok &= np.sign(left[k]) == w
        count = np.min([np.floor(np.abs(left[k]) / leg.ratio + _WHOLE) for k, leg in zip(ks, sp.legs, strict=True)], axis=0)
        count = np.where(ok & (count > 0), count, 0.0)
        for k, leg, w in zip(ks, sp.legs, wanted, strict=True):
            credit[k] += count * leg.ratio * wfpr[k] * sp.rate
            left[k] -= w * count * leg.ratio
    return 0.0 - credit.sum(axis=0)


def _per_group(meta: ScenarioLosses, value: Callable[[int, slice], FloatArray]) -> FloatArray:
    """The measure summed over the scenario set's groups (each underlying of a per-underlying grid)."""
    total: FloatArray | None = None
    for k, g in enumerate(meta.groups()):
        v = value(k, g)
        total = v if total is None else total + v
    assert total is not None
    return total


def _largest(loss: FloatArray, m: int) -> FloatArray:
    """The ``m`` largest losses of each column, largest first, ``(m, N)``."""
    s = loss.shape[0]
    if m <= _FEW and loss.size >= COMPILED_FROM:
        from marginopt.health._tails import largest

        return largest(loss, m)
    top = loss if m == s else np.partition(loss, s - m, axis=0)[s - m:]
    return -np.sort(-top, axis=0)


def tail_means(loss: FloatArray, prob: FloatArray, beta: float) -> FloatArray:
    """``shortfall.tail_mean`` of each column of ``loss`` (``(S, N)``): the mean of its worst ``beta``
    probability mass, the scenario straddling the boundary counted with the part of its mass inside.

    Under equal probabilities every column's tail takes the same masses in the same order, so only
    its largest few losses are needed."""
    s = loss.shape[0]
    if np.all(prob == prob[0]):
        p = np.full(s, prob[0])
        take = np.clip(beta - (np.cumsum(p) - p), 0.0, p)
        m = int(np.flatnonzero(take > 0.0)[-1]) + 1
        return (take[:m] @ _largest(loss, m)) / beta
    order = np.argsort(-loss, axis=0, kind="stable")
    ordered = np.take_along_axis(loss, order, axis=0)
    p = prob[order]
    take = np.clip(beta - (np.cumsum(p, axis=0) - p), 0.0, p)
    return (take * ordered).sum(axis=0) / beta


def quantiles(loss: FloatArray, prob: FloatArray, alpha: float) -> FloatArray:
    """``shortfall.quantile`` of each column: the smallest loss ``l`` with ``P(loss <= l) >= alpha``."""
    s = loss.shape[0]
    if np.all(prob == prob[0]):
        k = min(int(np.searchsorted(np.cumsum(np.full(s, prob[0])), alpha - 1e-12, side="left")), s - 1)
        return _largest(loss, s - k)[s - k - 1] if s - k <= _FEW else np.partition(loss, k, axis=0)[k]
    order = np.argsort(loss, axis=0, kind="stable")
    cum = np.cumsum(prob[order], axis=0)
    hit = cum >= alpha - 1e-12
    k = np.where(hit.any(axis=0), np.argmax(hit, axis=0), s - 1)
    return np.take_along_axis(loss, order, axis=0)[k, np.arange(loss.shape[1])]
