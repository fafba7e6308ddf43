"""A marginopt case from a Derive snapshot: the account at one venue margined by ``derive_pmrm2``.

The case holds the snapshot's lines and perp, and offers as hedges a call and a put at
every strike the snapshot holds in each of its expiries, plus strikes around each
expiry's forward (the snapshot lists only what is held, not the exchange's strikes), and
the perp where the snapshot prices it; the held lines themselves only when asked
(``unwind``: closing a position always lowers margin and says nothing new). Hedge costs are an assumption the user should
replace: ``cost_bp`` basis points of spot per contract, no impact.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from marginopt.errors import ModelError
from marginopt.models.derive.measure import PERP_ID, line_id
from marginopt.models.derive.pricing import svi_vol
from marginopt.models.derive.snapshot import DeriveSnapshot, OptionLine, load_snapshot

MONEYNESS = (0.8, 0.9, 1.0, 1.1, 1.2)  # strikes offered around each forward


def strike_tick(forward: float) -> float:
    """A listing tick like an exchange's: 50 at a forward of 3,000, 5,000 at 100,000."""
    return 10.0 ** math.floor(math.log10(forward)) / 20.0


def candidate_lines(snap: DeriveSnapshot, unwind: bool = False) -> list[OptionLine]:
    """Calls and puts at the held strikes and around the forward, for every expiry with a feed;
    the held lines themselves only with ``unwind`` (closing a position is not a hedge)."""
    held = {line_id(o) for o in snap.options}
    out: dict[str, OptionLine] = {}
    for seconds, feed in snap.feeds.items():
        tick = strike_tick(feed.forward)
        strikes = {o.strike for o in snap.options if o.expiry == seconds}
        strikes |= {round(feed.forward * k / tick) * tick for k in MONEYNESS}
        for strike in sorted(strikes):
            for call in (True, False):
                line = OptionLine(seconds, strike, call, 0.0)
                if unwind or line_id(line) not in held:
                    out[line_id(line)] = line
    return list(out.values())


def perp_tradable(snap: DeriveSnapshot) -> bool:
    """The perp is offered when held or when its feed is trusted (a perp priced at zero
    confidence would charge the oracle contingency on the whole book)."""
    return snap.perp_amount != 0 or snap.perp_confidence >= snap.p("OtherContingency.CONF_THRESHOLD")


def write_case(snapshot: Path, out: Path, *, underlying: str = "UNDERLYING", cost_bp: float = 3.0,
               unwind: bool = False, valuation: dt.datetime | None = None) -> Path:
    """Write ``out/case.yaml`` with its tables and a copy of the snapshot; return the YAML's path."""
    snap = load_snapshot(snapshot)
    when = snap.valuation or valuation or dt.datetime.now(dt.UTC)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(snapshot, out / "snapshot.json")
    lines = {line_id(o): o for o in snap.options}
    candidates = candidate_lines(snap, unwind)
    for c in candidates:
        lines.setdefault(line_id(c), c)
    rows = []
    for iid, o in lines.items():
        vol = float(svi_vol(np.array([o.strike]), snap.feeds[o.expiry].svi)[0])
        expiry = (when + dt.timedelta(seconds=o.expiry)).date()
        rows.append({"id": iid, "kind": "option", "underlying": underlying, "expiry": expiry.isoformat(), "strike": o.strike,
                     "right": "call" if o.call else "put", "vol": vol})
    trade_perp = perp_tradable(snap)
    if not rows and not trade_perp:
        raise ModelError(f"{snapshot}: the snapshot holds no option or perp and has no option feed or trusted perp "
                         "to trade: a case needs at least one instrument")
    if trade_perp:
        rows.append({"id": PERP_ID, "kind": "perpetual", "underlying": underlying})
    pd.DataFrame(rows).to_csv(out / "instruments.csv", index=False)
    held = [(line_id(o), o.amount) for o in snap.options if o.amount != 0]
    if snap.perp_amount != 0:
        held.append((PERP_ID, snap.perp_amount))
    pd.DataFrame(held, columns=["instrument", "quantity"]).assign(venue="derive").to_csv(out / "positions.csv", index=False)
    size = max([1.0] + [abs(a) for _, a in held])
    cost = cost_bp * 1e-4 * snap.spot
    hedged = [line_id(c) for c in candidates] + ([PERP_ID] if trade_perp else [])
    pd.DataFrame({"venue": "derive", "instrument": hedged, "max_buy": size, "max_sell": size,
                  "cost_per_unit": cost}).to_csv(out / "hedges.csv", index=False)
    yaml = f"""# Written by marginopt from the Derive snapshot {snapshot.name}: its account at one venue,
# margined as Derive's PMRM_2 (the preset's derive_pmrm2 measures read the copy beside this file).
# Hedges: calls and puts at the held strikes{" (the held lines too)" if unwind else ""} and around each forward{", and the perp" if trade_perp else ""},
# at most {size:g} contract{"s" if size != 1 else ""} each way, at an assumed cost of {cost_bp:g} bp of spot per contract: edit hedges.csv.
format: marginopt/1
description: Derive snapshot {snapshot.name}
base_currency: USD
valuation_date: {when.date().isoformat()}
market:
  prices: {{{underlying}: {snap.spot!r}}}
  rate: 0.0
instruments: instruments.csv
positions: positions.csv
hedges: hedges.csv
venues:
  derive:
    preset: derive-pmrm2
    snapshot: snapshot.json
objective: min_margin
"""
    (out / "case.yaml").write_text(yaml)
    return out / "case.yaml"
