"""Paradex portfolio margin, BTC and ETH, as its documentation stood on 13 July 2026.

SCAN risk: the worst of 24 weighted scenarios per underlying, 16 standard (spot +-16,
+-12, +-8, +-4, 0% with vol +40%; and vol -22% except at +-16%) at weight 1 and 8 tail
moves at vol +40% with the weights of 6 April 2026 on. Vol shocks scale by (30 /
max(1, days to expiry)) to the power 0.30 below 30 days and 0.13 from 30 on; the
shocked-up vol is floored at 40%. Net portfolio IMR = max(SCAN, minimum delta
requirement); MMR = 50% of it.
"""

from __future__ import annotations

from types import MappingProxyType

from marginopt.presets import Preset

TAILS = ((-0.66, 0.18), (-0.33, 0.36), (0.5, 0.24), (1.0, 0.12), (2.0, 0.06), (3.0, 0.04), (4.0, 0.03), (5.0, 0.024))
VOL_UP, VOL_DOWN = 0.40, -0.22

_GRID = {
    "kind": "grid",
    # The product of these 7 price moves and 2 vol moves is 14 of the 16 standard scenarios;
    # +-16% (vol up only) are the other two, written as extended moves at weight 1.
    "price_moves": [-0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12],
    "vol_moves": [VOL_DOWN, VOL_UP],
    "extended": [{"price_move": m, "vol_move": VOL_UP, "weight": 1.0} for m in (-0.16, 0.16)]
    + [{"price_move": m, "vol_move": VOL_UP, "weight": w} for m, w in TAILS],
    "vol_scaling": {"reference_days": 30, "power": 0.30, "long_power": 0.13, "floor_days": 1},
    "min_vol_up": 0.40,
    "underlyings": ["BTC", "ETH"],
}

PRESETS = (
    Preset(
        id="paradex-pm-2026-07",
        family="paradex-pm",
        title="Paradex portfolio margin, BTC and ETH",
        models="SCAN: 16 standard + 8 weighted tail scenarios, vol shocks scaled by days to expiry; "
               "IMR = max(SCAN, minimum delta requirement 2% unhedged / 1% hedged); MMR 50%",
        source=(
            "https://docs.paradex.trade/risk/portfolio-margin (tradeparadex/paradex-docs, "
            "fern/pages/risk-system/portfolio-margin.mdx at d703fb6727fa46afbb8c74f6e49668aba1219a49, 2026-07-13)",
            "https://docs.paradex.trade/trading/dated-options/mark-price (Black-76 on a synthetic forward)",
        ),
        as_of="2026-07-13",
        not_modelled=(
            "Only BTC and ETH: HYPE and CL have their own grid (+-28% moves, vol +64% / -35.2%), tail weights and "
            "delta factors (3% / 1.5%); an instrument on another underlying is refused.",
            "Funding Provision (expected funding over the next 8 hours) and Fee Provision (not defined by Paradex) "
            "are not added to IMR or MMR.",
            "Min Vol Shock Up is read as a floor on the shocked-up implied vol; the docs also allow reading it as a "
            "floor on the scaled shock.",
            "SCAN is computed per underlying and summed, and max(SCAN, minimum delta) is taken over the total; "
            "Paradex does not say whether either is per underlying.",
            "Options are repriced with this library's Black-76 on its forward (the case's rate), not on Paradex's "
            "synthetic forward calibrated to Deribit; days to expiry are whole calendar days.",
            "Open orders, price bands and the liquidation process.",
        ),
        venue=MappingProxyType({
            "initial_margin": {"kind": "max", "terms": [
                {"kind": "scenario_max", "name": "scan", "scenarios": _GRID},
                {"kind": "delta_requirement", "name": "min_delta", "unhedged": 0.02, "hedged": 0.01},
            ]},
            "maintenance_margin": {"fraction_of_initial": 0.5},
            "collateral": {"USDC": {"haircut": 0.0}},
        }),
    ),
)
