"""A convex majorant of Derive's margin requirement, exact at the snapshot's book.

Derive's requirement is not convex in the positions in general (methodology.md 2.5-2.6):
the static discount of an expiry's scenario value X depends on its sign,
``d(X) X = min(lf X, sf X)`` when ``lf <= sf`` (concave), and a skew scenario charges
``|d(X) X - M|``. The optimizer needs a convex function it may trust, so this module gives
one never below the requirement and equal to it at the snapshot's positions ``q0``:

- a regular or tail scenario charges ``-d(X) X``: convex as it stands when ``lf <= sf``;
  otherwise (``d(X) X`` convex) it is bounded by the piece active at ``q0``;
- a skew scenario charges ``|g|`` with ``g = d(X) X - M``: ``max(g, -g)``, where the
  concave side is replaced by its piece active at ``q0`` (a concave function is below
  each of its pieces);
- the basis contingency and the perp, naked-short and haircut charges are convex;
- the oracle charge on options and the perp uses the portfolio confidence that holds
  when a perp is held, where the perp is a column (the exact charge uses the spot's
  alone when no perp is held, so that is never lower).

Minimizing the majorant from ``q0`` can only lower Derive's requirement: at the
optimum ``q*``, ``req(q*) <= bound(q*) <= bound(q0) = req(q0)``; the last equality fails
only through the oracle confidence above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marginopt.models.derive.model import DeriveModel
from marginopt.typing import FloatArray

if TYPE_CHECKING:  # imported where a cvxpy form is built, so margin alone never loads cvxpy
    import cvxpy as cp


def _conf_rate(model: DeriveModel, c: float) -> float:
    p = model.snap.p
    return (1.0 - c) * p("OtherContingency.CONF_MARGIN") if c < p("OtherContingency.CONF_THRESHOLD") else 0.0


@dataclass
class DeriveBound:
    """The majorant in the model's coordinates (options in the model's order, then the perp)."""

    model: DeriveModel
    maintenance: bool  # MM requirement, else IM
    perp_column: bool  # whether the perp may be traded (moves the oracle confidence, see above)

    def __post_init__(self) -> None:
        m, snap, p = self.model, self.model.snap, self.model.snap.p
        q0 = m.q0
        # The piece of each expiry's discounted value active at q0, per scenario.
        self.c0 = [np.where(m.values[:, e.cols] @ q0[e.cols] >= 0, e.long_factor, e.short_factor) for e in m.expiries]
        port = min(snap.spot_confidence, snap.perp_confidence) if (self.perp_column or q0[-1] != 0) else snap.spot_confidence
        f_mm, f_im = m.loss_factors()
        self.factor = f_mm if self.maintenance else f_im
        perp_pct = p("OtherContingency.MM_PERP_PERCENT") + (0.0 if self.maintenance else p("OtherContingency.IM_PERP_PERCENT"))
        opt_pct = p("OtherContingency.MM_OPTION_PERCENT") + (0.0 if self.maintenance else p("OtherContingency.IM_OPTION_PERCENT"))
        oracle = not self.maintenance
        self.perp_rate = snap.spot * (perp_pct + (_conf_rate(m, port) if oracle else 0.0))
        self.naked_rate = snap.spot * opt_pct
        self.expiry_rate = [snap.spot * _conf_rate(m, min(snap.feeds[e.seconds].confidence, port)) if oracle else 0.0
                            for e in m.expiries]
        values = m.collateral_values
        const = float(sum(v * (c.mm_haircut + (0.0 if self.maintenance else c.im_haircut))
                          for c, v in zip(snap.collateral, values, strict=True)))
        if oracle:
            const += float(sum(_conf_rate(m, min(c.confidence, snap.spot_confidence)) * v
                               for c, v in zip(snap.collateral, values, strict=True)))
        self.const = const
        # The perp's P&L and the risk-cancelling collateral's, per scenario: linear and constant.
        self.perp_loss = -m.weights * m.moves * snap.perp_price
        self.lin_const = -m.collateral_pnl

    # -- numpy -----------------------------------------------------------------------
    def evaluate(self, q: FloatArray) -> float:
        m = self.model
        loss = self.perp_loss * q[-1] + self.lin_const
        basis = 0.0
        for e, c0 in zip(m.expiries, self.c0):
            qe = q[e.cols]
            x = m.values[:, e.cols] @ qe
            base = float(m.base[e.cols] @ qe)
            lf, sf = e.long_factor, e.short_factor
            if lf <= sf:
                regular = np.maximum(-lf * x, -sf * x) + base
                skew = np.maximum(c0 * x - base, np.maximum(-lf * x, -sf * x) + base)
            else:
                regular = base - c0 * x
                skew = np.maximum(np.maximum(lf * x, sf * x) - base, base - c0 * x)
            loss += m.weights * np.where(m.skew, skew, regular)
            up, down = float(m.basis_up[e.cols] @ qe), float(m.basis_down[e.cols] @ qe)
            basis += e.basis_factor * max(base - up, base - down, 0.0)
        worst = max(float(loss.max()), basis)
        return self.factor * worst + self._charges(q)

    def _charges(self, q: FloatArray) -> float:
        m = self.model
        naked = sum(max(0.0, -float(q[g].sum())) for g in m.strike_groups)
        opt = sum(r * float(np.abs(q[e.cols]).sum()) for e, r in zip(m.expiries, self.expiry_rate))
        return self.perp_rate * abs(float(q[-1])) + self.naked_rate * naked + opt + self.const

    # -- cvxpy -----------------------------------------------------------------------
    def cvxpy(self, q: cp.Expression) -> cp.Expression:
        """The majorant of model positions ``q`` (an affine cvxpy expression).

        Each expiry's scenario, base and basis values enter as one parameter matrix: cvxpy
        (1.9) propagates bounds through a product with a constant matrix, where a zero entry
        times an unbounded variable gives NaN bounds that HiGHS reads as an infeasible
        problem, and through a parameter row-vector product it gets the shape wrong."""
        import cvxpy as cp

        m = self.model
        n_s = len(m.weights)

        pieces: list[cp.Expression] = []
        loss: cp.Expression = self.perp_loss * q[-1] + self.lin_const
        basis: list[cp.Expression] = []
        reg, sk = ~m.skew, m.skew
        for e, c0 in zip(m.expiries, self.c0):
            qe = q[e.cols]
            stacked = np.vstack([m.values[:, e.cols], m.base[e.cols], m.basis_up[e.cols], m.basis_down[e.cols]])
            y = cp.Parameter(stacked.shape, value=stacked) @ qe
            x, base, up, down = y[:n_s], y[n_s], y[n_s + 1], y[n_s + 2]
            lf, sf = e.long_factor, e.short_factor
            if lf <= sf:
                convex_side = cp.maximum(-lf * x, -sf * x) + base
                regular, skew = convex_side, cp.maximum(cp.multiply(c0, x) - base, convex_side)
            else:
                regular = base - cp.multiply(c0, x)
                skew = cp.maximum(cp.maximum(lf * x, sf * x) - base, regular)
            loss = loss + cp.multiply(m.weights * reg, regular) + cp.multiply(m.weights * sk, skew)
            basis.append(e.basis_factor * cp.maximum(base - up, base - down, 0))
        # A zero weight on the rows of the other kind keeps one vector; the rows still count
        # because the other term carries them.
        pieces.append(cp.max(loss))
        if basis:
            pieces.append(cp.sum(cp.hstack(basis)))
        worst = cp.maximum(*pieces) if len(pieces) > 1 else pieces[0]
        naked = cp.sum(cp.hstack([cp.pos(-cp.sum(q[g])) for g in m.strike_groups])) if m.strike_groups else 0
        opt = [r * cp.norm1(q[e.cols]) for e, r in zip(m.expiries, self.expiry_rate) if r > 0]
        charges = self.perp_rate * cp.abs(q[-1]) + self.naked_rate * naked + (cp.sum(cp.hstack(opt)) if opt else 0) + self.const
        return self.factor * worst + charges
