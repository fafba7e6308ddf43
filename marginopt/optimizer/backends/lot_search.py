"""The integer route's search on lots (``backends/integer_route.py``, steps 2-4 of its docstring):
rounding, repair and a local search of one- and two-lot moves, each valued over every scenario."""

from __future__ import annotations

import math
import time

import numpy as np

from marginopt.models.margin.shortfall import tail_mean, tail_weights
from marginopt.optimizer.backends.lot_dive import Grid
from marginopt.optimizer.description import Description
from marginopt.optimizer.verify import ABS_TOL, REL_TOL
from marginopt.solvers.column_view import ColumnView
from marginopt.solvers.scenario_terms import ScenarioTerm
from marginopt.typing import FloatArray

PAIR_TRIALS = 400  # two-lot moves tried per round once no single move improves


class LotSearch:
    """Lot counts of the hedges and the exact objective over the terms, updated move by move.

    Each term's losses over every scenario are kept and moved by a column of its matrix per
    move, so a move costs a column read and a tail (ES) or a maximum, not a product with the
    matrix. Terms are valued floored at zero, as the venues' margins are."""

    def __init__(self, terms: list[ScenarioTerm], d: Description, relaxed: FloatArray) -> None:
        self.terms = terms
        self.cost = d.unit_costs
        k = len(d.cands)
        self.grid = Grid.of(d)  # its own arrays: pin() narrows this search's bounds only
        self.lots, self.lotted = self.grid.lots, self.grid.lotted
        self.n_lo, self.n_hi, self.min_n = self.grid.n_lo, self.grid.n_hi, self.grid.min_n
        # Where hedge j enters each term: (term, positions in its columns).
        self.where: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(k)]
        for t, term in enumerate(terms):
            for j in np.unique(term.cols):
                self.where[int(j)].append((t, np.flatnonzero(term.cols == j)))
        rows = d.limit_rows()
        self.a = np.zeros((0, k)) if rows is None else rows[0]
        self.row_lo = np.zeros(0) if rows is None else rows[1]
        self.row_hi = np.zeros(0) if rows is None else rows[2]
        finite = np.where(np.isfinite(self.row_lo), np.abs(self.row_lo), 0.0)
        finite = np.maximum(finite, np.where(np.isfinite(self.row_hi), np.abs(self.row_hi), 0.0))
        self.row_tol = 0.1 * (ABS_TOL + REL_TOL * finite)  # well inside verification's tolerance
        self.h = self._rounded(np.asarray(relaxed, dtype=float), [c.min_trade for c in d.cands])
        self.losses = [term.losses(self.h) for term in terms]
        self.values = [self._value(term, loss) for term, loss in zip(terms, self.losses, strict=True)]
        self.obj = self._total(self.values, self.h)
        self.ah = self.a @ self.h
        self.moves = self.repairs = self.trials = 0

    def pin(self, lines: np.ndarray) -> None:
        """Hold ``lines`` (at zero) where they are: no move reaches them (the lines a ticket cap leaves out)."""
        assert not np.any(self.h[lines]), "only lines at zero are pinned"
        self.n_lo[lines] = 0.0
        self.n_hi[lines] = 0.0

    # -- values ---------------------------------------------------------------------
    def _rounded(self, h: FloatArray, minimum: list[float]) -> FloatArray:
        """Nearest lots inside the box; under the minimum trade, 0 or the minimum, the nearer."""
        out = h.copy()
        for j in range(len(h)):
            if math.isfinite(self.lots[j]):
                out[j] = self.grid.nearest(j, float(h[j])) * self.lots[j]
            elif 0.0 < abs(h[j]) < minimum[j]:
                out[j] = math.copysign(minimum[j], h[j]) if abs(h[j]) >= minimum[j] / 2 else 0.0
        return out

    @staticmethod
    def _value(term: ScenarioTerm, loss: FloatArray) -> float:
        v = tail_mean(loss, term.probs, 1.0 - term.alpha) if term.kind == "es" else float(np.max(term.probs * loss))
        return max(v, 0.0)

    def _total(self, values: list[float], h: FloatArray) -> float:
        return float(sum(t.weight * v for t, v in zip(self.terms, values, strict=True)) + self.cost @ np.abs(h))

    def subgradient(self) -> FloatArray:
        """A subgradient of the objective's margin terms at ``h`` (the cost's is taken move by move)."""
        g = np.zeros(len(self.h))
        for term, loss, value in zip(self.terms, self.losses, self.values, strict=True):
            if value <= 0.0 and self._raw(term, loss) < 0.0:
                continue  # the floor holds: zero is a subgradient
            if term.kind == "es":
                w = tail_weights(loss, term.probs, 1.0 - term.alpha)
                rows = np.flatnonzero(w)
                gt = w[rows] @ term.matrix[rows]
            else:
                s = int(np.argmax(term.probs * loss))
                gt = term.probs[s] * term.matrix[np.array([s])][0]
            np.add.at(g, term.cols, term.weight * np.asarray(gt, dtype=float))
        return g

    @staticmethod
    def _raw(term: ScenarioTerm, loss: FloatArray) -> float:
        return tail_mean(loss, term.probs, 1.0 - term.alpha) if term.kind == "es" else float(np.max(term.probs * loss))

    def _column(self, t: int, positions: np.ndarray) -> FloatArray:
        matrix = self.terms[t].matrix
        base, cols = (matrix.base, matrix.cols) if isinstance(matrix, ColumnView) else (matrix, np.arange(matrix.shape[1]))
        out: FloatArray = np.asarray(base[:, cols[positions[0]]], dtype=float)
        for p in positions[1:]:
            out = out + base[:, cols[p]]
        return out

    def trial(self, change: dict[int, float]) -> tuple[float, dict[int, tuple[FloatArray, float]]]:
        """The objective with hedge ``j`` moved by ``change[j]``, and each moved term's losses and value."""
        self.trials += 1
        moved: dict[int, FloatArray] = {}
        for j, dh in change.items():
            for t, positions in self.where[j]:
                moved[t] = (moved[t] if t in moved else self.losses[t]) + dh * self._column(t, positions)
        values = list(self.values)
        out = {}
        for t, loss in moved.items():
            values[t] = self._value(self.terms[t], loss)
            out[t] = (loss, values[t])
        h = self.h.copy()
        for j, dh in change.items():
            h[j] += dh
        return self._total(values, h), out

    def accept(self, change: dict[int, float], obj: float, terms: dict[int, tuple[FloatArray, float]]) -> None:
        for j, dh in change.items():
            n = round((self.h[j] + dh) / self.lots[j])
            self.h[j] = n * self.lots[j]
            self.ah = self.ah + self.a[:, j] * dh
        for t, (loss, value) in terms.items():
            self.losses[t], self.values[t] = loss, value
        self.obj = obj

    # -- moves ----------------------------------------------------------------------
    def step(self, j: int, direction: int) -> float | None:
        """The change of hedge ``j`` one lot in ``direction`` (through the minimum trade), or None at its box."""
        n = round(self.h[j] / self.lots[j])
        m = n + direction
        if 0 < abs(m) < self.min_n[j]:
            m = 0 if n != 0 else int(direction * self.min_n[j])
        if not self.n_lo[j] <= m <= self.n_hi[j]:
            return None
        return float(m * self.lots[j] - self.h[j])

    def violation(self, ah: FloatArray | None = None) -> float:
        ah = self.ah if ah is None else ah
        over = np.maximum(ah - self.row_hi - self.row_tol, 0.0) + np.maximum(self.row_lo - ah - self.row_tol, 0.0)
        return float(over.sum())

    def _predicted(self, g: FloatArray, j: int, dh: float) -> float:
        return float(g[j] * dh + self.cost[j] * (abs(self.h[j] + dh) - abs(self.h[j])))

    def _singles(self, g: FloatArray) -> list[tuple[float, int, float]]:
        out = []
        for j in self.lotted:
            for direction in (1, -1):
                dh = self.step(int(j), direction)
                if dh is not None:
                    out.append((self._predicted(g, int(j), dh), int(j), dh))
        return out

    def run(self, lower: float, gap: float, deadline: float) -> None:
        """Repair, then improve until a local optimum, the relative ``gap`` to ``lower`` or ``deadline``."""
        self._repair(deadline)
        if self.violation() > 0.0:
            return
        while time.perf_counter() < deadline and self.obj - lower > gap * abs(self.obj):
            g = self.subgradient()
            singles = self._singles(g)
            tol = 1e-12 * max(1.0, abs(self.obj))
            hopeful = sorted(s for s in singles if s[0] < -tol)
            if self._first_improvement([({j: dh}, p) for p, j, dh in hopeful], deadline):
                continue
            pairs = [({j1: d1, j2: d2}, p1 + p2) for p1, j1, d1 in hopeful for p2, j2, d2 in singles
                     if j2 != j1 and p1 + p2 < -tol]
            pairs.sort(key=lambda c: c[1])
            if not self._first_improvement(pairs[:PAIR_TRIALS], deadline):
                return

    def _first_improvement(self, moves: list[tuple[dict[int, float], float]], deadline: float) -> bool:
        tol = 1e-12 * max(1.0, abs(self.obj))
        for change, _ in moves:
            if time.perf_counter() >= deadline:
                return False
            if len(self.a) and self.violation(self.ah + sum(self.a[:, j] * dh for j, dh in change.items())) > 0.0:
                continue
            obj, terms = self.trial(change)
            if obj < self.obj - tol:
                self.accept(change, obj, terms)
                self.moves += 1
                return True
        return False

    def _repair(self, deadline: float) -> None:
        """One-lot moves that cut the limits' total violation, the cheapest per unit cut first."""
        limit = 10 * len(self.h) + 100
        while self.violation() > 0.0 and self.repairs < limit and time.perf_counter() < deadline:
            now, g = self.violation(), self.subgradient()
            best: tuple[float, int, float] | None = None
            for _, j, dh in self._singles(g):
                cut = now - self.violation(self.ah + self.a[:, j] * dh)
                if cut > 1e-12 * max(1.0, now):
                    score = max(self._predicted(g, j, dh), 0.0) / cut
                    if best is None or score < best[0]:
                        best = (score, j, dh)
            if best is None:
                return
            obj, terms = self.trial({best[1]: best[2]})
            self.accept({best[1]: best[2]}, obj, terms)
            self.repairs += 1
