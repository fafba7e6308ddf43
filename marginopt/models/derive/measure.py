"""Derive's margin as a marginopt measure: ``kind: derive_pmrm2`` at a venue.

The measure reads a Derive snapshot (the market: spot, perp, SVI feeds per expiry,
collateral, parameters) and takes the venue's positions from the case. The venue's
instruments are named as Derive's lines: ``C-<seconds to expiry>-<strike>``,
``P-<seconds to expiry>-<strike>`` and ``PERP`` (``marginopt margin --from derive-pm2``
and ``derive-case`` use the same names). A line the snapshot does not hold is added at
zero, so hedge candidates at other strikes of a listed expiry are priced on its SVI.

``evaluate`` is Derive's requirement exactly (IM or MM required: the worst scenario loss
times the loss factor plus the contingencies; Derive's reported IM and MM are equity less
these). It is not convex, so the optimizer works against ``convex_bound()``, the majorant
of ``bound.py``, equal to it at the snapshot's book.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from marginopt.errors import CaseError, Location
from marginopt.models.derive.bound import DeriveBound
from marginopt.models.derive.model import DeriveModel
from marginopt.models.derive.snapshot import DeriveSnapshot, OptionLine, load_snapshot
from marginopt.models.margin.base import BindContext, CvxForm, Measure, measure_keys, optional_name, register
from marginopt.models.reader import Node, resolve_path
from marginopt.typing import FloatArray

if TYPE_CHECKING:  # imported where a cvxpy form is built, so margin alone never loads cvxpy
    import cvxpy as cp

LINE_ID = re.compile(r"^([CP])-(\d+)-([0-9.eE+]+)$")
PERP_ID = "PERP"


def line_id(line: OptionLine) -> str:
    return f"{'C' if line.call else 'P'}-{line.expiry}-{line.strike:g}"


def extend(snap: DeriveSnapshot, ids: tuple[str, ...], where: Location) -> tuple[DeriveModel, np.ndarray]:
    """The snapshot's model with a zero line for every option id it lacks, and the map
    from each id to its model column (the perp is the last column)."""
    held = {line_id(o): o for o in snap.options}
    extra: list[OptionLine] = []
    for iid in ids:
        if iid == PERP_ID or iid in held:
            continue
        match = LINE_ID.match(iid)
        if match is None:
            raise CaseError(where, f"instrument {iid}", "a Derive line id: C-<seconds to expiry>-<strike>, "
                            "P-<seconds to expiry>-<strike> or PERP")
        seconds, strike = int(match.group(2)), float(match.group(3))
        if seconds not in snap.feeds:
            raise CaseError(where, f"instrument {iid}", f"an expiry with a feed in the snapshot "
                            f"({', '.join(map(str, snap.feeds))} seconds)", seconds)
        if not strike > 0:
            raise CaseError(where, f"instrument {iid}", "a positive strike", strike)
        line = OptionLine(seconds, strike, match.group(1) == "C", 0.0)
        held[line_id(line)] = line
        extra.append(line)
    model = DeriveModel.from_snapshot(dataclasses.replace(snap, options=snap.options + tuple(extra)))
    column = {iid: j for j, iid in enumerate(model.ids)}
    return model, np.array([column[i] for i in ids], dtype=np.int64)


def scatter(q: FloatArray, cols: np.ndarray, n: int) -> FloatArray:
    """Venue positions in the model's ``n`` columns (lines the venue does not hold at zero)."""
    out = np.zeros(n)
    out[cols] = q
    return out


class DeriveMargin(Measure):
    """Derive's IM or MM requirement of the venue's positions, exactly (not convex)."""

    convex = False
    bound_note = "Derive's margin: not convex; the optimizer bounds it by a convex majorant equal to it at the snapshot's book"

    def __init__(self, name: str, model: DeriveModel, cols: np.ndarray, maintenance: bool) -> None:
        self.name, self.model, self.cols, self.maintenance = name, model, cols, maintenance

    def full(self, q: FloatArray) -> FloatArray:
        return scatter(q, self.cols, len(self.model.ids))

    def evaluate(self, q: FloatArray) -> float:
        im, mm, _ = self.model.requirements(self.full(q))
        return mm if self.maintenance else im

    def components(self, q: FloatArray) -> dict[str, float]:
        full = self.full(q)
        f_mm, f_im = self.model.loss_factors()
        _, _, worst = self.model.requirements(full)
        cont = self.model.contingencies(full)
        keys = ("MMPerpCont", "MMOptionCont", "MMBaseCont") if self.maintenance else \
            ("MMPerpCont", "IMPerpCont", "MMOptionCont", "IMOptionCont", "MMBaseCont", "IMBaseCont", "OracleCont")
        out = {"worst scenario x loss factor": (f_mm if self.maintenance else f_im) * worst}
        out.update({k: -cont[k] for k in keys})
        return out

    def worst_scenario(self, q: FloatArray) -> tuple[str, float]:
        full = self.full(q)
        losses = self.model.scenario_losses(full)
        s = int(np.argmax(losses))
        basis = -self.model.basis_contingency(full)
        if basis > losses[s]:
            return "basis contingency", basis
        return self.model.scenario_label(s), float(losses[s])

    def gradient(self, q: FloatArray) -> FloatArray:
        return self.convex_bound().gradient(q)

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        return self.convex_bound().cvxpy(q)

    def convex_bound(self) -> DeriveMarginBound:
        bound = self.__dict__.get("_bound")
        if bound is None:
            perp = bool(np.any(self.cols == len(self.model.ids) - 1))
            bound = self.__dict__["_bound"] = DeriveMarginBound(
                f"{self.name} (convex bound)", DeriveBound(self.model, self.maintenance, perp), self.cols)
        return bound


class DeriveMarginBound(Measure):
    """The convex majorant of Derive's requirement (``bound.py``), for the optimizer."""

    def __init__(self, name: str, bound: DeriveBound, cols: np.ndarray) -> None:
        self.name, self.bound, self.cols = name, bound, cols
        self.n = len(bound.model.ids)

    def evaluate(self, q: FloatArray) -> float:
        return self.bound.evaluate(scatter(q, self.cols, self.n))

    def gradient(self, q: FloatArray) -> FloatArray:
        """Central differences of the majorant (a subgradient where it is smooth)."""
        step = 1e-6 * max(1.0, float(np.abs(q).max(initial=0.0)))
        grad = np.empty(len(q))
        for j in range(len(q)):
            e = np.zeros(len(q))
            e[j] = step
            grad[j] = (self.evaluate(q + e) - self.evaluate(q - e)) / (2 * step)
        return grad

    def cvxpy(self, q: cp.Expression) -> CvxForm:
        # Model columns the venue does not hold stay at zero; sparse, so that cvxpy's bound
        # propagation never multiplies a zero by an unbounded variable (see DeriveBound.cvxpy).
        pick = sp.csr_matrix((np.ones(len(self.cols)), (self.cols, np.arange(len(self.cols)))), shape=(self.n, len(self.cols)))
        return self.bound.cvxpy(pick @ q), []


@dataclass(frozen=True)
class DeriveMarginSpec:
    snapshot: Path
    maintenance: bool = False
    name: str | None = None
    where: Location = dataclasses.field(default=Location(), compare=False)
    kind: str = "derive_pmrm2"

    def bind(self, ctx: BindContext) -> Measure:
        model, cols = extend(load_snapshot(self.snapshot), ctx.inputs.ids, self.where)
        default = "Derive MM" if self.maintenance else "Derive IM"
        return DeriveMargin(self.name or default, model, cols, self.maintenance)


@register("derive_pmrm2")
def parse_derive(node: Node) -> DeriveMarginSpec:
    parts = measure_keys(node, "snapshot", "margin", required=("snapshot",))
    path = resolve_path(parts["snapshot"], (".json",))
    load_snapshot(path)  # a bad snapshot is an error at load time, not at the first bind
    which = parts["margin"].string(choices=("initial", "maintenance")) if "margin" in parts else "initial"
    return DeriveMarginSpec(path, which == "maintenance", optional_name(parts), node.where)
