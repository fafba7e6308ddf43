"""Derive's portfolio margin (PMRM_2) on marginopt's scenario arrays.

From a snapshot, ``DeriveModel`` prices every option line of every expiry once per
scenario (spot x vol grid with the days-to-expiry vol scaling and the floor on shocked
vols, dampened tail moves, the LINEAR and ABS skew shocks) and at the two basis moves: a
scenario-value matrix like any of marginopt's scenario sets, with the columns grouped by
expiry. The margin is then a function of the positions ``q`` (options in the snapshot's
order, then the perp), computed by ``evaluate``:

    loss_s(q)   = -w_s q_p (x_s - 1) P_perp - sum_rc w_s V_j (x_s - 1)
                  + sum_e  w_s (M_e - d_e(X_es) X_es)      regular scenarios
                  + sum_e |w_s (d_e(X_es) X_es - M_e)|     skew scenarios
    worst(q)    = max(max_s loss_s, -basis contingency)
    IM required = f_IM' worst + Gamma_MM + Gamma_IM,   MM required = f_MM worst + Gamma_MM

with X_es, M_e the expiry's shocked and base values, d_e the static discount (one factor
for a positive expiry value, another for a negative one), Gamma the perp, naked-short,
collateral-haircut and oracle-confidence contingencies. Derive reports
``IM = equity - IM required`` and ``MM = equity - MM required`` with equity = option, perp
and collateral mark-to-market plus cash. Every formula is in
``docs/derive-pmrm2/methodology.md`` (section numbers below refer to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marginopt.errors import ModelError
from marginopt.models.derive.pricing import YEAR, black76, svi_vol
from marginopt.models.derive.snapshot import DeriveSnapshot
from marginopt.typing import FloatArray

MONTH = 30 * 86400
NEAR_EXPIRY = 1800  # seconds: below this the forward is partly fixed (section 2.1)
REGULAR_RANGE = 0.2  # a dampening of one and a move within +-20% is a regular scenario; others are tail


@dataclass
class Expiry:
    seconds: int
    cols: np.ndarray  # option columns of this expiry
    long_factor: float  # static discount of a positive expiry value
    short_factor: float  # ... of a negative one
    basis_factor: float  # basis add factor + mult factor * tau


@dataclass
class DeriveModel:
    """Scenario values and contingency data of a snapshot; ``q`` = option amounts, then the perp."""

    snap: DeriveSnapshot
    ids: tuple[str, ...]
    q0: FloatArray
    strikes: FloatArray
    calls: np.ndarray
    expiries: list[Expiry]
    base: FloatArray  # (n_opt,) value of one option now
    values: FloatArray  # (S, n_opt) value of one option in each scenario (undiscounted by static factors)
    basis_up: FloatArray  # (n_opt,) at the basis up and down moves
    basis_down: FloatArray
    weights: FloatArray
    moves: FloatArray  # spot multiplier - 1
    skew: np.ndarray  # (S,) bool
    collateral_pnl: FloatArray  # (S,) dampened P&L of risk-cancelling collateral
    strike_groups: list[np.ndarray] = field(default_factory=list)  # option columns sharing expiry and strike
    collateral_values: FloatArray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_options(self) -> int:
        return len(self.strikes)

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_snapshot(cls, snap: DeriveSnapshot) -> DeriveModel:
        p = snap.p
        if snap.stable_price <= 0:
            raise ModelError(f"{snap.source}: StablePrice must be positive to value collateral, got {snap.stable_price}")
        opts = snap.options
        n = len(opts)
        strikes = np.array([o.strike for o in opts])
        calls = np.array([o.call for o in opts], dtype=bool)
        q0 = np.array([o.amount for o in opts] + [snap.perp_amount])
        ids = tuple(f"{'C' if o.call else 'P'}-{o.expiry}-{o.strike:g}" for o in opts) + ("PERP",)
        sc = snap.scenarios
        x = np.array([s.spot_shock for s in sc])
        w = np.array([s.weight for s in sc])
        skew = np.array([s.skew for s in sc], dtype=bool)
        floor_seconds = math.floor(p("VolShock.DTE_FLOOR") * 86400)
        base, up, down = np.zeros(n), np.zeros(n), np.zeros(n)
        values = np.zeros((len(sc), n))
        expiries = []
        order = [e for e in snap.feeds if any(o.expiry == e for o in opts)]  # the feeds' order, as Derive reports
        for e in order:
            feed = snap.feeds[e]
            cols = np.array([i for i, o in enumerate(opts) if o.expiry == e])
            tau = e / YEAR
            rate = max(feed.rate, 0.0)  # Derive clips negative rates (section 2.1)
            disc = math.exp(-rate * tau)
            fixed, var = (feed.forward * (NEAR_EXPIRY - e) / NEAR_EXPIRY, feed.forward * e / NEAR_EXPIRY) if e < NEAR_EXPIRY \
                else (0.0, feed.forward)
            vol = svi_vol(strikes[cols], feed.svi)
            if max(e, floor_seconds) == 0:
                raise ModelError(f"{snap.source}: expiry 0 s with DTE_FLOOR 0 has no vol-shock scaling (Derive reverts)")
            g = (MONTH / max(e, floor_seconds)) ** (p("VolShock.SHORTTERMPOWER") if e <= MONTH else p("VolShock.LONGTERMPOWER"))
            up_mult = 1.0 + p("VolShock.VOLRANGEUP") * g
            down_mult = max(0.0, 1.0 - p("VolShock.VOLRANGEDOWN") * g)

            def price(fwd: Any, v: Any, cols: np.ndarray = cols, e: int = e, disc: float = disc) -> FloatArray:
                return black76(fwd, strikes[cols], v, e, disc, calls[cols])

            base[cols] = price(var + fixed, vol)
            up[cols] = price(var * p("BasisContingency.SCENARIO_SPOT_UP") + fixed, vol)
            down[cols] = price(var * p("BasisContingency.SCENARIO_SPOT_DOWN") + fixed, vol)
            for s, scen in enumerate(sc):
                if scen.skew:
                    mult = _skew_multiplier(snap, scen.direction, strikes[cols], var + fixed, tau, scen.spot_shock != 1.0)
                    values[s, cols] = price(var + fixed, vol * mult)
                else:
                    v = {"Up": np.maximum(p("VolShock.MIN_VOL_EVAL_SHOCKED"), vol * up_mult), "Down": vol * down_mult,
                         "None": vol}[scen.direction]
                    values[s, cols] = price(var * scen.spot_shock + fixed, v)
            long_factor = p("Margin.BASE_STATIC_DISCOUNT") * math.exp(-tau * (rate * p("Margin.LONG_RATE_MULTSCALE") + p("Margin.LONG_RATE_ADDSCALE")))
            short_factor = min(1.0 / disc, p("Margin.BASE_STATIC_DISCOUNT_NEG")
                               * math.exp(tau * (rate * p("Margin.SHORT_RATE_MULTSCALE") + p("Margin.SHORT_RATE_ADDSCALE"))))
            basis = p("BasisContingency.BASIS_CONT_ADD_FACTOR") + p("BasisContingency.BASIS_CONT_MULT_FACTOR") * tau
            expiries.append(Expiry(e, cols, long_factor, short_factor, basis))
        groups: dict[tuple[int, float], list[int]] = {}
        for i, o in enumerate(opts):
            groups.setdefault((o.expiry, o.strike), []).append(i)
        coll_values = np.array([c.amount * c.price / snap.stable_price for c in snap.collateral])
        rc = np.array([c.risk_cancelling for c in snap.collateral], dtype=bool)
        collateral_pnl = w * (x - 1.0) * float(coll_values[rc].sum()) if len(coll_values) else np.zeros(len(sc))
        return cls(snap, ids, q0, strikes, calls, expiries, base, values, up, down, w, x - 1.0, skew, collateral_pnl,
                   [np.array(g) for g in groups.values()], coll_values)

    # -- evaluation ----------------------------------------------------------------
    def scenario_losses(self, q: FloatArray) -> FloatArray:
        """Loss (positive = money lost, dampened) in each scenario: Derive's scenario P&L negated."""
        opt, perp = q[:self.n_options], q[self.n_options]
        snap = self.snap
        loss = -self.weights * self.moves * perp * snap.perp_price - self.collateral_pnl
        for e in self.expiries:
            x = self.values[:, e.cols] @ opt[e.cols]
            m = float(self.base[e.cols] @ opt[e.cols])
            change = self.weights * (np.where(x >= 0, e.long_factor, e.short_factor) * x - m)
            loss += np.where(self.skew, np.abs(change), -change)
        return loss

    def basis_contingency(self, q: FloatArray) -> float:
        """Derive's ForwardContingency (<= 0)."""
        opt = q[:self.n_options]
        total = 0.0
        for e in self.expiries:
            m = float(self.base[e.cols] @ opt[e.cols])
            up, down = float(self.basis_up[e.cols] @ opt[e.cols]), float(self.basis_down[e.cols] @ opt[e.cols])
            total += min(up - m, down - m, 0.0) * e.basis_factor
        return total

    def contingencies(self, q: FloatArray) -> dict[str, float]:
        """Derive's contingency fields, with its signs (negative = charged)."""
        snap, p = self.snap, self.snap.p
        opt, perp = q[:self.n_options], q[self.n_options]
        threshold, conf_margin = p("OtherContingency.CONF_THRESHOLD"), p("OtherContingency.CONF_MARGIN")

        def conf(c: float, notional: float) -> float:
            return (1.0 - c) * conf_margin * notional if c < threshold else 0.0

        port_conf = snap.spot_confidence if perp == 0 else min(snap.spot_confidence, snap.perp_confidence)
        perp_notional = abs(perp) * snap.spot
        oracle = conf(port_conf, perp_notional)
        # A call and a put at one strike net: only what stays short at a strike is naked.
        naked_notional = snap.spot * sum(max(0.0, -float(opt[g].sum())) for g in self.strike_groups)
        for e in self.expiries:
            feed_conf = snap.feeds[e.seconds].confidence
            oracle += conf(min(feed_conf, port_conf), float(np.abs(opt[e.cols]).sum()) * snap.spot)
        values = self.collateral_values
        for c, v in zip(snap.collateral, values, strict=True):
            oracle += conf(min(c.confidence, snap.spot_confidence), float(v))
        return {k: v + 0.0 for k, v in {  # + 0.0: no "-0" for a charge of nothing
            "MMPerpCont": -perp_notional * p("OtherContingency.MM_PERP_PERCENT"),
            "IMPerpCont": -perp_notional * p("OtherContingency.IM_PERP_PERCENT"),
            "MMOptionCont": -naked_notional * p("OtherContingency.MM_OPTION_PERCENT"),
            "IMOptionCont": -naked_notional * p("OtherContingency.IM_OPTION_PERCENT"),
            "MMBaseCont": -float(sum(v * c.mm_haircut for c, v in zip(snap.collateral, values, strict=True))),
            "IMBaseCont": -float(sum(v * c.im_haircut for c, v in zip(snap.collateral, values, strict=True))),
            "OracleCont": -oracle,
        }.items()}

    def loss_factors(self) -> tuple[float, float]:
        """(MM, IM) loss factors; the IM one with the stable-coin depeg add-on (section 2.10)."""
        p, u = self.snap.p, self.snap.stable_price
        im = p("Margin.IM_LOSS_FACTOR")
        if u < p("OtherContingency.PEG_LOSS_THRESHOLD"):
            im += (p("OtherContingency.PEG_LOSS_THRESHOLD") - u) * p("OtherContingency.PEG_LOSS_FACTOR")
        return p("Margin.MM_LOSS_FACTOR"), im

    def option_mtm(self, q: FloatArray) -> float:
        return float(self.base @ q[:self.n_options])

    def equity(self, q: FloatArray) -> float:
        """Option, perp and collateral mark-to-market plus cash: what Derive's IM and MM are net of."""
        return self.option_mtm(q) + self.snap.perp_value + float(self.collateral_values.sum()) + self.snap.cash

    def requirements(self, q: FloatArray) -> tuple[float, float, float]:
        """(IM required, MM required, worst loss) at positions ``q``."""
        worst = max(float(np.max(self.scenario_losses(q))), -self.basis_contingency(q))
        cont = self.contingencies(q)
        mm_cont = -(cont["MMPerpCont"] + cont["MMOptionCont"] + cont["MMBaseCont"])
        im_cont = -(cont["IMPerpCont"] + cont["IMOptionCont"] + cont["IMBaseCont"] + cont["OracleCont"])
        f_mm, f_im = self.loss_factors()
        return f_im * worst + mm_cont + im_cont, f_mm * worst + mm_cont, worst

    def scenario_kind(self, s: int) -> str:
        if self.skew[s]:
            return "skew"
        return "regular" if self.weights[s] == 1.0 and abs(self.moves[s]) <= REGULAR_RANGE else "tail"

    def scenario_label(self, s: int) -> str:
        scen = self.snap.scenarios[s]
        move = f"spot {scen.spot_shock - 1:+.1%}"
        if scen.skew:
            return scen.direction + ("" if scen.spot_shock == 1 else "_SPOT_SHOCK")
        return f"{move} vol {scen.direction}" + ("" if scen.weight == 1 else f" (dampening {scen.weight:g})")


def _skew_multiplier(snap: DeriveSnapshot, direction: str, strikes: FloatArray, forward: float, tau: float,
                     spot_moved: bool) -> FloatArray:
    """Vol multiplier of each strike in a LINEAR or ABS skew scenario (section 2.6), floored at 0.

    Derive's contract refuses a skew scenario with a spot move. Its published reference
    results (case 67, labelled LINEAR_SPOT_SHOCK) value one as the LINEAR shape with the ABS
    cap; that is reproduced here, and rests on that one case (methodology.md section 4)."""
    p = snap.p
    root = math.sqrt(tau)
    prefix = "SkewShock.LINEAR" if direction == "LINEAR" and not spot_moved else "SkewShock.ABS"
    cap = p(f"{prefix}_CBASE") * root + p(f"{prefix}_SCALE_CAP")
    k_star = max(p("SkewShock.MIN_K_STAR"),
                 root * p("SkewShock.MIN_WIDTH_SCALE") * (p("SkewShock.VOL_PARAM_STATIC") + root * p("SkewShock.VOL_PARAM_SCALE")))
    if k_star == 0:
        raise ModelError(f"{snap.source}: the skew shock's k* is 0 (Derive divides by it and reverts)")
    k = np.log(strikes / forward)
    if direction == "ABS":
        k = np.abs(k)
    mult = np.where(k >= 0, 1.0 + np.minimum(cap, k * cap / k_star), 1.0 + np.maximum(-cap, k * cap / k_star))
    return np.maximum(mult, 0.0)
