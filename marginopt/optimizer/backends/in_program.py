"""The forms scenario generation holds a large ES or scenario maximum in, inside a cvxpy program.

- ``Restricted``: the measure over a working set of scenarios per group (dropping scenarios
  lowers an ES or a maximum: a relaxation).
- ``ShortfallCuts``: an expected shortfall on few columns as cuts (linear minorants, one row
  each) and a band: the tail at the last plan with its deep scenarios as one covector and
  the scenarios either side of its VaR row by row (``Band``), exact around that plan.

Each answers ``evaluate``, ``gradient``, ``components`` and the worst scenario from the full
measure (``InProgram``): verification and reports never see the form. The rounds (what
joins, when to stop) are ``backends/generation.py``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from marginopt.models.margin import Measure
from marginopt.models.margin.base import CvxForm
from marginopt.models.margin.columns import Folded
from marginopt.models.margin.scenario_max import ScenarioMax
from marginopt.models.margin.shortfall import ExpectedShortfall, ranked, rows_product, tail_mean
from marginopt.typing import FloatArray

CUT_SLOTS = 16  # the fewest cut rows per group a program is assembled with (``ShortfallCuts``)
# Scenarios either side of the VaR a band holds row by row (``Band``) at first, and at most: a band placed
# at a settled plan that misses the next one doubles, up to BAND_MAX. Its rows cost about 2.5 KiB each in
# cvxpy and Clarabel (a row and a variable a scenario). The demo's optimize at 400,000 Monte Carlo
# scenarios (a tail of 10,000, the plans nearly a perfect hedge, where a move of 1e-4 contracts reorders
# the tail) closed at 2,048: with a fixed 256 it fell back to a working set after 60 rounds, 512 and
# 1,024 took 24 and 19 rounds, 4,096 13.
BAND = 256
BAND_MAX = 4096


class InProgram(Measure):
    """A full measure held in the program in another form (``Restricted``, ``ShortfallCuts``):
    ``evaluate``, ``gradient``, ``components`` and the worst scenario are the full measure's, so
    verification and reports never see the form.

    ``fold``: where the program holds the venue on its hedged columns (``[q_C, 1]``, ``margin.columns``),
    the map to them. The full measure stays on the whole book, its matrix uncopied: the rows a working
    set holds and each cut are taken on the columns as they are made (``Folded``)."""

    full: ExpectedShortfall | ScenarioMax
    fold: Folded | None

    def _book(self, q: FloatArray) -> FloatArray:
        return q if self.fold is None else self.fold.book(q)

    def evaluate(self, q: FloatArray) -> float:
        return self.full.evaluate(self._book(q))

    def gradient(self, q: FloatArray) -> FloatArray:
        g = self.full.gradient(self._book(q))
        return g if self.fold is None else self.fold.covector(g)

    def components(self, q: FloatArray) -> dict[str, float]:
        return self.full.components(self._book(q))

    def worst_scenario(self, q: FloatArray) -> tuple[str, float] | None:
        return self.full.worst_scenario(self._book(q))


class Restricted(InProgram):
    """An ES or scenario-maximum measure whose cvxpy form uses only ``working[k]`` of group k.

    ``evaluate``, ``gradient`` and ``components`` are the full measure's: verification and
    reports never see the restriction."""

    def __init__(self, full: ExpectedShortfall | ScenarioMax, working: list[np.ndarray], scale: float = 1.0,
                 fold: Folded | None = None) -> None:
        """``scale``: the losses' size (base currency), the unit an ES's rows are written in (``loss_scale``)."""
        self.full, self.name, self.working, self.scale, self.fold = full, full.name, working, scale, fold
        self.levels: list[cp.Expression] = []  # ES: the VaR level of each group (base currency)
        self.values: list[cp.Expression] = []  # each group's restricted value

    def arrays(self) -> dict[str, FloatArray]:
        losses = self.full.losses
        out = {}
        for k, (g, rows) in enumerate(zip(losses.groups(), self.working, strict=True)):
            block = losses.matrix[g][rows]  # the working set's rows only
            if self.fold is not None:
                block = self.fold.rows(block)
            out[f"l{k}"] = block if isinstance(self.full, ExpectedShortfall) else losses.weights[g][rows, None] * block
        return out

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        # Constants, not parameters: the program is compiled again whenever a working set grows or
        # the market moves, so a parameter saves nothing, and cvxpy's parametric form of a (W x J)
        # matrix times the positions asked 6 GiB at 400,000 Monte Carlo scenarios.
        #
        # An ES is written in units of ``scale``: s c' + sum_i (s p_i / beta) max(0, (L_i / s) q - c'), the
        # same value. Written in base currency, each scenario's row had hedge coefficients of 1e5-1e6
        # (losses per contract times the hedge's bound) against 1 on its excess, whose weight in the
        # margin is p_i / beta = 1 / (beta n), 1e-3 at 100,000 scenarios: a range that Clarabel's
        # equilibration (1e-4 to 1e4) does not close. It stalled on the 100,000-scenario demo
        # (optimal_inaccurate; ECOS failed), and where it stopped "optimal" its value was off by up
        # to 8e-4 relative (at 50,000), a lower bound that was not one.
        # s goes into the constants, not in front of the sum: cvxpy 1.9's bound propagation gives the
        # sum NaN bounds and a constant times NaN bounds [0, 0], so the variable of the pos() around it
        # was fixed at 0 for HiGHS (which takes variable bounds) and the LP came out infeasible.
        arrays = self.arrays()
        self.levels, self.values = [], []
        s = self.scale
        for k, rows in enumerate(self.working):
            if isinstance(self.full, ExpectedShortfall):
                c = cp.Variable(name=f"{self.name}.var{k}")  # the VaR level in units of s
                self.levels.append(s * c)
                p = self.full.probs[k][rows]
                self.values.append(s * c + (s / self.full.beta * p) @ cp.pos((arrays[f"l{k}"] / s) @ q - c))
            else:
                self.values.append(cp.max(arrays[f"l{k}"] @ q))
        terms = [cp.pos(v) for v in self.values]
        return cp.sum(cp.hstack(terms)) if len(terms) > 1 else terms[0], []


@dataclass(frozen=True)
class Band:
    r"""An ES group near a plan: with the tail there ordered worst first, ``D`` its scenarios but the last
    ``BAND`` and ``B`` the ``2 BAND`` (at most) around its VaR,

    .. math:: \mathrm{ES}(q) \ge \frac{1}{\beta}\Bigl(\sum_{i \in D} p_i L_i q
              + \max_{0 \le u_i \le p_i,\ \sum_B u_i = \beta - p_D} \sum_{i \in B} u_i L_i q\Bigr)

    everywhere: the maximum ES takes over tail weights ``w``, ``0 <= w_i <= p_i / beta``, ``sum w = 1``,
    here over those with ``w = p / beta`` on ``D`` and 0 outside ``D`` and ``B``. It is equal wherever
    ``D`` stays in the tail and the tail in ``D`` and ``B``: around the plan, where a cut is exact at
    the plan alone. The program holds it as ``deep . q + min_v (rest s v + sum_B w_i s pos(L_i q / s - v))``
    (LP duality; ``s`` the losses' size, so ``v``, the VaR in its units, and the rows are of order one)."""

    deep: FloatArray  # (C,) sum over D of p_i L_i / beta, on the program's positions
    rows: FloatArray  # (|B|, C) L_i over B, on the program's positions
    weights: FloatArray  # (|B|,) p_i / beta over B
    rest: float  # (beta - p_D) / beta: the tail's mass B shares

    def value(self, x: FloatArray) -> float:
        """The bound at the program's positions ``x``."""
        return float(self.deep @ x) + self.rest * tail_mean(self.rows @ x, self.weights, self.rest)


@dataclass
class CutModel:
    """One ES group's form in the program: the cuts taken so far, and a band (placed at a plan once the
    plans settle, ``generation.SETTLE``; ``width`` scenarios either side of the VaR, doubled each time a
    band placed so misses the next plan, which is then further from it than the band reaches)."""

    cuts: list[FloatArray]
    band: Band
    seen: np.ndarray  # the tail at the last plan and the ``width`` scenarios after it: the fallback's working set
    width: int = BAND
    placed: bool = False  # the band was placed at a settled plan (not the start's)

    def value(self, x: FloatArray) -> float:
        """The model's ES at the program's positions ``x``: the largest of its bounds (each below the ES)."""
        return max(float(np.max(np.array(self.cuts) @ x)), self.band.value(x))


@dataclass(frozen=True)
class Taken:
    """An ES group at a plan (``take_cut``): what a cut and a band are made from."""

    cut: FloatArray  # the tail weights times the matrix, on the program's positions
    es: float  # the ES there (unfloored)
    size: float  # the largest |loss| there
    order: np.ndarray  # the tail's scenarios and ``below`` more, worst first (indices in the group)
    take: FloatArray  # their masses in the tail (0 past it)
    tail: int  # the tail's scenarios: the first ``tail`` of ``order``

    def band(self, m: ExpectedShortfall, k: int, width: int, fold: Folded | None) -> Band:
        """The band of ``width`` scenarios either side of the VaR (as far as ``order`` reaches)."""
        matrix, prob = m.losses.matrix[m.losses.groups()[k]], m.probs[k]
        deep_rows, band_rows = self.order[:max(0, self.tail - width)], self.order[max(0, self.tail - width):self.tail + width]
        deep = rows_product(prob[deep_rows] / m.beta, matrix, deep_rows)
        rows = matrix[band_rows]
        rest = (m.beta - float(np.sum(prob[deep_rows]))) / m.beta
        if fold is not None:
            deep, rows = fold.covector(deep), fold.rows(rows)
        return Band(deep, rows, prob[band_rows] / m.beta, rest)


def take_cut(m: ExpectedShortfall, k: int, q: FloatArray, fold: Folded | None = None, below: int = BAND) -> Taken:
    """Group ``k`` at the book's positions ``q``: its tail and the ``below`` scenarios after it, the cut
    and the ES there. The losses are read block by block (``shortfall.ranked``): no vector over every
    scenario."""
    g = m.losses.groups()[k]
    matrix = m.losses.matrix[g]
    order, take, values, size = ranked(matrix, q, m.probs[k], m.beta, below=below)
    tail = int(np.count_nonzero(take))
    cut = rows_product(take[:tail] / m.beta, matrix, order[:tail])
    return Taken(cut if fold is None else fold.covector(cut), float(take[:tail] @ values[:tail] / m.beta), size,
                 order, take, tail)


class ShortfallCuts(InProgram):
    """An expected shortfall in the program as cuts ``c_k >= g . q``, one row per cut and group, and a
    band (``Band``, ``CutModel``) per group taken at the last plan.

    ES is sublinear in the positions: with ``g = w L`` for the tail weights ``w`` at any plan,
    ``g . q <= ES(q)`` everywhere, with equality at that plan. The largest cut is a lower bound, so
    the program stays a relaxation, and the cut at its plan closes it there. The program holds as
    many rows as cuts, not a working set of scenarios, and a round costs one pass over the matrix.
    Written in base currency, unlike ``Restricted``: a cut has no ``p / beta`` weight to balance, and
    in units of the losses' size (1e5 and more) the demo's cme_es ES at the optimum, 2.9 USD, was a
    level of 3e-6 that Clarabel returned to 1e-6 relative, so the cuts never closed to ``CUT_TOL``.

    Cuts alone close in as a cutting plane does, slowly: the demo's optimize at 400,000 Monte Carlo
    scenarios took 33 to 60 rounds, its last ones within the solver's tolerance of the plan (the ES
    moved by 0.05 USD between plans 4e-5 contracts apart), and one ordering of the sums did not close
    in 60. The band is exact around its plan, so once the plans settle the next one is where the band
    says, and the model equals the ES there.

    The cuts sit in parameter slots (``CUT_SLOTS``, or four times the cuts held when assembled, the
    unused ones a repeated cut): a round that only adds cuts loads them (``refresh``) into the program as
    it is; the band is constants, and a band that moves has the program assembled again. Generation
    compiles each round's program without cvxpy's parametric form (``solvers.run.solve(parametric=False)``):
    that form's memory grows with the product of the program's rows and parameters, and a band of 2,048
    rows in parameters took 280 MiB (with the band constant, the parametric compile took 20 MiB more than
    the plain one).

    ``evaluate``, ``gradient`` and ``components`` are the full measure's."""

    full: ExpectedShortfall

    def __init__(self, full: ExpectedShortfall, models: list[CutModel], scale: float, fold: Folded | None = None) -> None:
        """``models``: per group, the cuts and band on the program's positions (on the hedged columns where
        ``fold``); ``scale``: the losses' size (base currency), the unit of a band's rows and VaR (``loss_scale``)."""
        self.full, self.name, self.models, self.scale, self.fold = full, full.name, models, scale, fold
        self.levels: list[cp.Expression] = []  # each group's ES in the program (base currency)
        self.variables: list[cp.Variable] = []
        self.slots: list[cp.Parameter] = []

    @property
    def cuts(self) -> list[list[FloatArray]]:
        return [model.cuts for model in self.models]

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        self.levels, self.variables, self.slots, cons = [], [], [], []
        for k, model in enumerate(self.models):
            c = cp.Variable(name=f"{self.name}.es{k}")  # the group's ES in the program
            v = cp.Variable(name=f"{self.name}.var{k}")  # the band's VaR, in units of ``scale``
            self.variables.append(c)
            self.levels.append(c)
            band, s = model.band, self.scale
            slot = cp.Parameter((max(CUT_SLOTS, 4 * len(model.cuts)), len(band.deep)), name=f"{self.name}.cuts{k}")
            self.slots.append(slot)
            cons.append(slot @ q <= c)
            cons.append(band.deep @ q + band.rest * s * v + (band.weights * s) @ cp.pos(band.rows / s @ q - v) <= c)
            self._load(k)
        terms = [cp.pos(c) for c in self.variables]
        return cp.sum(cp.hstack(terms)) if len(terms) > 1 else terms[0], cons

    def _load(self, k: int) -> None:
        cuts, slot = self.models[k].cuts, self.slots[k]
        value = np.empty(slot.shape)
        value[:len(cuts)] = cuts
        value[len(cuts):] = cuts[-1]  # a repeated row leaves the program as it is
        slot.value = value

    def refresh(self) -> bool:
        """Load the cuts into the program as assembled; False where they no longer fit its slots (assemble again)."""
        if any(len(model.cuts) > slot.shape[0] for model, slot in zip(self.models, self.slots, strict=True)):
            return False
        for k in range(len(self.models)):
            self._load(k)
        return True
