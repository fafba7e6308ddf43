"""The margin report of a Derive snapshot: marginopt's margin JSON with Derive's own fields.

``initial_margin`` and ``maintenance_margin`` are what Derive requires (worst loss times the
loss factor plus contingencies), ``collateral_value`` the account's equity as Derive counts
it (option, perp and collateral mark-to-market plus cash), so ``excess`` is Derive's ``IM``
and ``maintenance_excess`` its ``MM``. Components carry the names (and signs: negative is
charged) of Derive's result fields, and the per-scenario P&L lists are in its layout.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from marginopt.errors import Location
from marginopt.formats import SnapshotMargin
from marginopt.models.derive.model import DeriveModel
from marginopt.models.derive.snapshot import load_snapshot
from marginopt.models.magnitude import require_finite
from marginopt.models.report import MarginReport, VenueMargin

VENUE = "derive"
_VOL_CODE = {"Down": -1, "None": 0, "Up": 1}


def derive_report(model: DeriveModel) -> tuple[MarginReport, dict[str, Any]]:
    """The standard report at the snapshot's positions, and Derive's extra fields."""
    q = model.q0
    snap = model.snap
    im_req, mm_req, worst = model.requirements(q)
    pnl = -model.scenario_losses(q)
    basis = model.basis_contingency(q)
    kinds = [model.scenario_kind(s) for s in range(len(pnl))]
    blocks: dict[str, list[Any]] = {"regular": [], "tail": [], "skew": []}
    for s, (scen, kind) in enumerate(zip(snap.scenarios, kinds, strict=True)):
        if kind == "skew":
            blocks["skew"].append([model.scenario_label(s), str(pnl[s])])
        else:
            blocks[kind].append([str(scen.spot_shock - 1.0), _VOL_CODE[scen.direction], str(pnl[s])])
    s_worst = int(np.argmax(-pnl))
    basis_worst = -basis > -pnl[s_worst]
    f_mm, f_im = model.loss_factors()
    cont = model.contingencies(q)
    option_mtm = model.option_mtm(q)
    collateral_mtm = float(model.collateral_values.sum())
    equity = model.equity(q)
    components = {
        "ForwardContingency": basis,
        **cont,
        "IMPerpContNormal": cont["MMPerpCont"] + cont["IMPerpCont"],
        "IMOptionContNormal": cont["MMOptionCont"] + cont["IMOptionCont"],
        "IMBaseContNormal": cont["MMBaseCont"] + cont["IMBaseCont"],
        "MMLossFactor": f_mm,
        "IMLossFactor": f_im,
        "OptionMTM": option_mtm,
        "CollateralMTM": collateral_mtm,
        "PerpMTM": snap.unrealised_pnl,
        "UnrealisedFunding": snap.unrealised_funding,
        "Cash": snap.cash,
        "PortfolioMTM": equity,
    }
    for kind, name in (("regular", "worst_reg_loss"), ("tail", "worst_tail_loss"), ("skew", "worst_skew_loss")):
        values = [pnl[s] for s in range(len(pnl)) if kinds[s] == kind]
        if values:
            components[name] = float(min(values))
    venue = VenueMargin(
        venue=VENUE,
        initial_margin=im_req,
        maintenance_margin=mm_req,
        collateral_value=equity,
        worst_scenario="forward (basis) contingency" if basis_worst else model.scenario_label(s_worst),
        worst_scenario_loss=worst,
        components=components,
        collateral=(),
        convex=True,
    )
    # The snapshot's numbers are within the magnitude guard, so these are finite; if not, no number is shown.
    for name, amount in (("initial_margin", im_req), ("maintenance_margin", mm_req), ("equity", equity), *components.items()):
        require_finite(float(amount), Location(snap.source), f"Scenario ({name})", "the snapshot's amounts (Amount, Cash, prices)")
    when = snap.valuation.date() if snap.valuation is not None else dt.date(1970, 1, 1)
    extra = {
        "maintenance_excess": venue.maintenance_excess,
        "worst_all_scenarios": "fwd_contingency" if basis_worst else kinds[s_worst],
        "reg_losses": blocks["regular"],
        "tail_losses": blocks["tail"],
        "skew_losses": blocks["skew"],
        "source": snap.source,
    }
    return MarginReport("USD", when, (venue,)), extra


def derive_json(model: DeriveModel) -> dict[str, Any]:
    """``marginopt margin FILE --from derive-pm2 --format json``."""
    report, extra = derive_report(model)
    out = report.to_dict()
    out["venues"][0].update(extra)
    return out


def snapshot_margin(path: Path) -> SnapshotMargin:
    """``marginopt margin SNAPSHOT --from derive-pm2``: the snapshot's margin as Derive computes it
    (the reader of the outside format ``derive-pm2``, ``marginopt/formats/derive.py``)."""
    model = DeriveModel.from_snapshot(load_snapshot(path))
    report, extra = derive_report(model)
    document = report.to_dict()
    document["venues"][0].update(extra)
    losses = model.scenario_losses(model.q0)
    labels = [model.scenario_label(s) for s in range(len(losses))]
    # derive_report checked every amount finite, so each prints as a number
    summary = (f"Derive IM {report.venues[0].excess:,.2f}, MM {extra['maintenance_excess']:,.2f} "
               "(equity less what each requires)")
    return SnapshotMargin(f"Derive PMRM_2 snapshot {path.name}", report, document, summary, {VENUE: (labels, losses)})
