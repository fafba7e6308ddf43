"""Write marginopt/data/demo/history.csv: a synthetic daily BTC/ETH close history.

The demo needs a price history for its expected-shortfall venue and this
repository ships no market data, so the history is simulated: a GARCH(1,1)
volatility with Student-t (4 dof) shocks, BTC/ETH correlation 0.8, scaled to end
at the demo case's prices on the day before its valuation date. It has the fat
tails and volatility clustering of real crypto returns, not their actual path.

    python scripts/make_demo_history.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

DAYS = 760
END = dt.date(2026, 11, 19)
LAST = {"BTC": 91000.0, "ETH": 3100.0}
YEARLY_VOL = {"BTC": 0.55, "ETH": 0.70}
CORR = 0.8
DOF = 4.0


def simulate(seed: int = 20261120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(np.array([[1.0, CORR], [CORR, 1.0]]))
    target = np.array([YEARLY_VOL["BTC"], YEARLY_VOL["ETH"]]) / np.sqrt(365.0)
    omega, a, b = 0.06, 0.10, 0.84  # GARCH(1,1) on unit-variance shocks: long-run variance omega / (1 - a - b) = 1
    var = np.ones(2)
    rets = np.empty((DAYS, 2))
    for t in range(DAYS):
        z = chol @ rng.standard_normal(2) / np.sqrt(rng.chisquare(DOF) / DOF) * np.sqrt((DOF - 2) / DOF)
        shock = np.sqrt(var) * z
        rets[t] = target * shock
        var = omega + a * shock**2 + b * var
    levels = np.exp(np.cumsum(rets, axis=0))
    levels = levels / levels[-1] * np.array([LAST["BTC"], LAST["ETH"]])
    dates = [END - dt.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    return pd.DataFrame({"date": [d.isoformat() for d in dates], "BTC": levels[:, 0].round(2), "ETH": levels[:, 1].round(2)})


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "marginopt" / "data" / "demo" / "history.csv"
    simulate().to_csv(out, index=False)
    print(f"wrote {out}")
