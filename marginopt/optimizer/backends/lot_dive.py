r"""A dive on the relaxation's working set: lots fixed a batch at a time, the rest re-optimized.

Rounding every hedge to its nearest lot at once leaves the errors uncompensated: on the
100,000 x 200 ES hedge at lots of 0.05 the naive rounding is 4.2e-3 above the continuous bound
and a search of one- and two-lot moves from it stopped at 1.1e-3. Here the lotted hedges
nearest a whole lot are fixed to it, the program is solved again over the others (which
take up what the fixed ones' rounding moved), and so on, in halving batches down to one
hedge at a time: the classic fractional dive of a MIP, on a small exact model of the terms.

The model (per term, at the relaxation's optimum ``h0``, ``c0`` the term's VaR there): the
``band`` scenarios nearest ``c0`` keep their rows; those above the band (``deep``) are in the
tail whatever the dive does to them, so their part of Rockafellar-Uryasev is linear,
``sum_D p_s (l0_s + L_s h - c) / beta``, folded into the term's definition row; those below
are dropped. For an ES term

    m >= c (1 - P_D / beta) + (sum_D p_s l0_s + g_D h) / beta + sum_B p_s u_s / beta,
    u_s >= l0_s + L_s h - c,  u_s >= 0   (s in the band)

and for a scenario maximum ``m >= w_s (l0_s + L_s h)`` over the band (the scenarios nearest the
maximum). Each replacement is a relaxation ((l - c) <= (l - c)+, a dropped row only loosens), so
the model is a lower bound on the terms at every ``h`` and exact where no deep scenario falls
below ``c`` and no dropped one rises above it. After a dive the losses over every scenario say
whether that held; where not (the model below the exact objective), the scenarios that broke it
join the band and the dive runs again (``ROUNDS`` in all), and the dive's plan of least exact
objective is returned.

It guarantees nothing by itself: the plan it returns is a start for ``integer_route``'s search,
whose objective is exact over every scenario and whose bound is the relaxation's. On the
100,000 x 200 hedge it takes the start from 4.2e-3 to 1.0e-3 of the bound at lots of 0.05 (a band of
501 scenarios, one round: 1.4-1.8 s on 2 shared cores, most of it HiGHS's cold solve; the 12 warm
re-solves of the dive about 0.3 s); at lots of 0.25 from 1.2e-1 to 1.1e-2.
Terms with a limit, or a row the rounding breaks (the LP infeasible), end the dive (None).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from marginopt.models.margin.shortfall import tail_mean
from marginopt.optimizer.description import Description
from marginopt.solvers.highs import quiet_highs
from marginopt.solvers.scenario_terms import ScenarioTerm
from marginopt.typing import FloatArray

INF = highspy.kHighsInf
# Band scenarios per term, in tails ((1 - alpha) S for ES; the same count for a maximum). On the 100,000 x 200
# hedge 0.25 measured 9.4e-4 and 1.2e-2 at lots of 0.05 and 0.25 (each LP faster, the model looser), 0.5
# 8.2e-4 and 9.5e-3, 1.0 as 0.5 at 0.05 with a cold LP of 4 s.
BAND = 0.5
MIN_BAND = 64
ROUNDS = 2  # dives in all: the first and one after the band grows
LAST_SINGLE = 12  # under this many free lotted hedges the dive fixes one at a time


@dataclass(frozen=True)
class Grid:
    """The lotted hedges' whole-lot counts: ``n`` in ``[n_lo, n_hi]``, 0 or at least ``min_n`` in size."""

    lots: FloatArray  # lot size, nan where the hedge has none
    n_lo: FloatArray
    n_hi: FloatArray
    min_n: FloatArray

    @classmethod
    def of(cls, d: Description) -> Grid:
        lots = np.array([c.lot_size if c.lot_size is not None else math.nan for c in d.cands])
        size = np.where(np.isfinite(lots), lots, 1.0)
        return cls(lots, np.ceil(d.lower / size - 1e-9), np.floor(d.upper / size + 1e-9),
                   np.ceil(np.array([c.min_trade for c in d.cands]) / size - 1e-9))

    @property
    def lotted(self) -> np.ndarray:
        return np.flatnonzero(np.isfinite(self.lots))

    def nearest(self, j: int, h: float) -> float:
        """Hedge ``j``'s nearest whole number of lots to ``h`` inside its box; under the minimum trade,
        0 or the minimum, whichever is nearer (and inside the box)."""
        n = float(np.clip(np.round(h / self.lots[j]), self.n_lo[j], self.n_hi[j]))
        if 0 < abs(n) < self.min_n[j]:
            far = math.copysign(self.min_n[j], n)
            n = far if abs(far * self.lots[j] - h) < abs(h) and self.n_lo[j] <= far <= self.n_hi[j] else 0.0
        return n


@dataclass
class _Band:
    """One term's scenarios in the model: the band's rows and the deep tail folded into its row."""

    band: np.ndarray  # scenario indices with a row
    deep: np.ndarray  # (ES) scenarios above the band, folded linearly


def _on_hedges(block: np.ndarray, cols: np.ndarray, k: int) -> np.ndarray:
    """A term's matrix rows written on all ``k`` hedges (a hedge the term does not hold: 0)."""
    out = np.zeros((block.shape[0], k))
    for p, j in enumerate(cols):
        out[:, int(j)] += block[:, p]
    return out


def _var(loss: FloatArray, probs: FloatArray, beta: float) -> float:
    """The loss at which the worst scenarios' probability reaches ``beta`` (R-U's ``c`` at its optimum)."""
    order = np.argsort(-loss)
    reached = int(np.searchsorted(np.cumsum(probs[order]), beta * (1.0 - 1e-12)))
    return float(loss[order[min(reached, len(order) - 1)]])


class LotDive:
    """The model above for ``terms`` at ``h0`` and the dive on it (``run``)."""

    def __init__(self, terms: list[ScenarioTerm], d: Description, h0: FloatArray) -> None:
        self.terms, self.d, self.h0 = terms, d, np.asarray(h0, dtype=float)
        self.grid = Grid.of(d)
        self.k = len(d.cands)
        self.cost = d.unit_costs
        self.bands = [self._first_band(t) for t in terms]
        self.rounds = 0

    @staticmethod
    def tail_size(term: ScenarioTerm) -> int:
        return max(1, math.ceil((1.0 - term.alpha) * len(term.offset))) if term.kind == "es" else 1

    def _first_band(self, term: ScenarioTerm) -> _Band:
        loss = term.losses(self.h0)
        size = min(len(loss), max(MIN_BAND, math.ceil(BAND * self.tail_size(term))))
        if term.kind == "es":
            c0 = _var(loss, term.probs, 1.0 - term.alpha)
            band = np.sort(np.argpartition(np.abs(loss - c0), size - 1)[:size]) if size < len(loss) else np.arange(len(loss))
            inside = np.zeros(len(loss), dtype=bool)
            inside[band] = True
            return _Band(band, np.flatnonzero((loss > c0) & ~inside))
        key = term.probs * loss
        band = np.sort(np.argpartition(-key, size - 1)[:size]) if size < len(loss) else np.arange(len(loss))
        return _Band(band, np.zeros(0, dtype=np.int64))

    # -- the LP ---------------------------------------------------------------------
    def _model(self) -> tuple[highspy.HighsLp, list[int]]:
        """Columns h+ (k), h- (k), then per term m, (ES) c and the band's u; the terms' rows, then
        the limit rows. Returns the LP and each term's c column (-1 for a maximum)."""
        k, d = self.k, self.d
        costs = [np.concatenate([self.cost, self.cost])]
        lo = [np.zeros(2 * k)]
        hi = [np.concatenate([np.maximum(d.upper, 0.0), np.maximum(-d.lower, 0.0)])]
        parts: list[tuple[int, np.ndarray, sp.spmatrix, FloatArray]] = []  # (first own column, rows on h, on own, lower)
        c_cols: list[int] = []
        n = 2 * k
        for term, band in zip(self.terms, self.bands, strict=True):
            on_h = _on_hedges(np.asarray(term.matrix[band.band], dtype=float), term.cols, k)
            nb = len(band.band)
            if term.kind == "es":
                beta = 1.0 - term.alpha
                folded = term.probs[band.deep] / beta
                g_deep = (_on_hedges(np.asarray(term.matrix[band.deep], dtype=float), term.cols, k).T @ folded
                          if len(band.deep) else np.zeros(k))
                # own columns m, c, u; m - c (1 - P_D / beta) - g_D h - sum_B p_s u_s / beta >= sum_D p_s l0_s / beta,
                # then u_s + c - L_s h >= l0_s for the band
                costs.append(np.concatenate([[term.weight], np.zeros(1 + nb)]))
                lo.append(np.concatenate([[0.0 if term.floor else -INF, -INF], np.zeros(nb)]))
                hi.append(np.full(2 + nb, INF))
                top = np.concatenate([[1.0, -(1.0 - float(folded.sum()))], -term.probs[band.band] / beta])
                own = sp.vstack([sp.csr_matrix(top[None, :]),
                                 sp.hstack([sp.csr_matrix(np.column_stack([np.zeros(nb), np.ones(nb)])), sp.eye(nb)])])
                rows_h = np.vstack([-g_deep[None, :], -on_h])
                low = np.concatenate([[float(folded @ term.offset[band.deep])], term.offset[band.band]])
                c_cols.append(n + 1)
            else:
                # own column m: m - w_s L_s h >= w_s l0_s for the band
                w = term.probs[band.band]
                costs.append(np.array([term.weight]))
                lo.append(np.array([0.0 if term.floor else -INF]))
                hi.append(np.array([INF]))
                own, rows_h, low = sp.csr_matrix(np.ones((nb, 1))), -w[:, None] * on_h, w * term.offset[band.band]
                c_cols.append(-1)
            parts.append((n, rows_h, own, low))
            n += own.shape[1]
        blocks, rlo, rhi = [], [], []
        for first, rows_h, own, low in parts:
            r = rows_h.shape[0]
            blocks.append(sp.hstack([sp.csr_matrix(np.hstack([rows_h, -rows_h])), sp.csr_matrix((r, first - 2 * k)), own,
                                     sp.csr_matrix((r, n - first - own.shape[1]))]))
            rlo.append(low)
            rhi.append(np.full(r, INF))
        limits = d.limit_rows()
        if limits is not None:
            a, low, high = limits
            blocks.append(sp.hstack([sp.csr_matrix(np.hstack([a, -a])), sp.csr_matrix((a.shape[0], n - 2 * k))]))
            rlo.append(np.where(np.isfinite(low), low, -INF))
            rhi.append(np.where(np.isfinite(high), high, INF))
        matrix = sp.vstack(blocks).tocsc()
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, matrix.shape[0]
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.concatenate(costs), np.concatenate(lo), np.concatenate(hi)
        lp.row_lower_, lp.row_upper_ = np.concatenate(rlo), np.concatenate(rhi)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = matrix.indptr, matrix.indices, matrix.data
        return lp, c_cols

    # -- the dive -------------------------------------------------------------------
    def run(self, deadline: float) -> FloatArray | None:
        """The dive's plan of least exact objective (lotted hedges whole lots, the others as the LP left
        them), or None where no dive finished (a term with a limit, an infeasible or failed LP, time)."""
        if any(t.limit is not None for t in self.terms) or not len(self.grid.lotted):
            return None
        best: tuple[float, FloatArray] | None = None
        for _ in range(ROUNDS):
            if time.perf_counter() >= deadline:
                break
            found = self._dive(deadline)
            if found is None:
                break
            self.rounds += 1
            h, model, c = found
            exact = self.exact(h)
            if best is None or exact < best[0]:
                best = (exact, h)
            if exact <= model + 1e-9 * max(1.0, abs(exact)) or not self._grow(h, c):
                break
        return None if best is None else best[1]

    def exact(self, h: FloatArray) -> float:
        """The objective over every scenario, terms floored at zero (as ``LotSearch`` values them)."""
        total = float(self.cost @ np.abs(h))
        for term in self.terms:
            loss = term.losses(h)
            v = tail_mean(loss, term.probs, 1.0 - term.alpha) if term.kind == "es" else float(np.max(term.probs * loss))
            total += term.weight * max(v, 0.0)
        return total

    def _dive(self, deadline: float) -> tuple[FloatArray, float, list[float]] | None:
        lp, c_cols = self._model()
        hs = quiet_highs()
        hs.setOptionValue("time_limit", max(deadline - time.perf_counter(), 1e-3))
        hs.passModel(lp)
        free = np.zeros(self.k, dtype=bool)
        free[self.grid.lotted] = True
        k = self.k
        while True:
            hs.setOptionValue("time_limit", max(deadline - time.perf_counter(), 1e-3))
            hs.run()
            if hs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            col = np.asarray(hs.getSolution().col_value)
            h = col[:k] - col[k:2 * k]
            if not free.any():
                c = [float(col[c]) if c >= 0 else math.nan for c in c_cols]
                return h, float(hs.getInfo().objective_function_value), c
            # the free lotted hedges nearest a whole lot first, in halving batches
            idx = np.flatnonzero(free)
            lots = self.grid.lots[idx]
            frac = np.abs(h[idx] / lots - np.round(h[idx] / lots))
            batch = 1 if len(idx) <= LAST_SINGLE else len(idx) // 2
            pick = idx[np.argsort(frac, kind="stable")[:batch]]
            v = np.array([self.grid.nearest(int(j), float(h[j])) for j in pick]) * self.grid.lots[pick]
            up, down = np.maximum(v, 0.0), np.maximum(-v, 0.0)
            hs.changeColsBounds(len(pick), pick.astype(np.int32), up, up)
            hs.changeColsBounds(len(pick), (pick + k).astype(np.int32), down, down)
            free[pick] = False

    def _grow(self, h: FloatArray, c: list[float]) -> bool:
        """The scenarios that break the model at ``h`` join the band (at most a band's worth per term, the
        worst first); False where none does."""
        grew = False
        for t, (term, band) in enumerate(zip(self.terms, self.bands, strict=True)):
            loss = term.losses(h)
            inside = np.zeros(len(loss), dtype=bool)
            inside[band.band] = True
            if term.kind == "es":
                deep = np.zeros(len(loss), dtype=bool)
                deep[band.deep] = True
                level = c[t]
                # dropped ones above c, deep ones below it
                excess = np.where(deep, level - loss, np.where(inside, -np.inf, loss - level))
            else:
                key = term.probs * loss
                excess = np.where(inside, -np.inf, key - float(np.max(key[band.band])))
            broken = np.flatnonzero(excess > 1e-9 * max(1.0, float(np.abs(loss).max(initial=0.0))))
            if not broken.size:
                continue
            cap = max(MIN_BAND, len(band.band))
            if broken.size > cap:
                broken = broken[np.argpartition(-excess[broken], cap - 1)[:cap]]
            band.band = np.union1d(band.band, broken)
            band.deep = np.setdiff1d(band.deep, broken)
            grew = True
        return grew
