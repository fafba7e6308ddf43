"""OKX portfolio margin (merged risk units), BTC and ETH, with the parameters of January 2025.

MMR = max[ max(MR1, MR6) + MR4 , MR7 ], IMR = 1.3 x MMR. MR1 is the spot shock (BTC and
ETH +-0, 4, 8, 12% from 6 January 2025), MR6 the extreme move (+-24%), both in one grid
per underlying so their maximum is taken per risk unit; MR4 the basis risk at the
annualised move risk of 5%; MR7 the minimum charge. The initial margin's terms carry the
1.3, so the maintenance margin is exactly IMR / 1.3.
"""

from __future__ import annotations

from types import MappingProxyType

from marginopt.presets import Lot, Param, Preset

IMR_FACTOR = 1.3
SPOT_SHOCKS = (0.04, 0.08, 0.12)
EXTREME_MOVE = 0.24
ANNUALISED_MOVE = 0.05

_GRID = {
    "kind": "grid",
    # Every move at weight 1.3 (IMR = 1.3 x MMR): the grid's own product carries weight 1, so it holds
    # only the unmoved scenario and the moves are written as extended moves.
    "price_moves": [0.0],
    "extended": [{"price_move": s * m, "weight": IMR_FACTOR} for m in (*SPOT_SHOCKS, EXTREME_MOVE) for s in (-1.0, 1.0)],
    "underlyings": ["BTC", "ETH"],
}

ADJUSTMENT_2024_04 = ("https://www.okx.com/help/okx-to-adjust-the-minimum-order-quantities-for-several-futures-24-04-19 "
                      "(published 2024-04-19, effective 2024-04-25; read at the mirror okx-proxy.tokenize-dev.com/it/help/"
                      "okx-to-adjust-the-minimum-order-quantities-for-several-futures-24-04-19): BTC/USDT perpetual and "
                      "expiry, minimum order and step 1 contract (0.01 BTC) before, 0.1 contract (0.001 BTC) after")
LOTS = (
    Lot(product="BTCUSDT perpetual (BTC-USDT-SWAP)", kind="perpetual", underlying="BTC", contract_size=0.01,
        contract_unit="BTC", step=0.1, minimum=0.1,
        source=("https://www.okx.com/help/7053456733325 (BTCUSDT perpetual: \"Contract Size 0.01BTC\")",
                ADJUSTMENT_2024_04),
        as_of="2024-04-25", note="0.001 BTC a step and at least 0.001 BTC an order"),
    Lot(product="BTCUSDT expiry futures", kind="future", underlying="BTC", contract_size=0.01, contract_unit="BTC",
        step=0.1, minimum=0.1,
        source=("https://www.okx.com/help/7053702553613 (BTCUSDT futures: \"Contract Size 0.01BTC\")",
                ADJUSTMENT_2024_04),
        as_of="2024-04-25", note="0.001 BTC a step and at least 0.001 BTC an order"),
    Lot(product="ETHUSDT perpetual (ETH-USDT-SWAP)", kind="perpetual", underlying="ETH", contract_size=0.1,
        contract_unit="ETH", step=0.1, minimum=1.0,
        source=("https://www.okx.com/help/okx-to-adjust-the-minimum-order-quantities-for-several-futures-241016 "
                "(published 2024-10-16; its worked example: ETHUSDT perpetual, contract 0.1 ETH, step 0.1 contract = "
                "0.01 ETH, minimum 1 contract = 0.1 ETH)",),
        as_of="2024-10-16", note="0.01 ETH a step, at least 0.1 ETH an order; the ETHUSDT expiry futures' figures "
                                 "not found (searched again 2026-12-06: OKX's expiry futures guide, "
                                 "https://hk.okx.com/help/i-future-contracts, updated 2024-05-31, gives BTCUSDT only)"),
)

PRESETS = (
    Preset(
        id="okx-pm-2025-01",
        family="okx-pm",
        title="OKX portfolio margin, BTC and ETH",
        models="MMR = max[max(MR1 spot shock +-4/8/12%, MR6 extreme move +-24%) + MR4 basis (5% annualised), "
               "MR7 minimum charge]; IMR = 1.3 x MMR",
        source=(
            "https://www.okx.com/help/okx-will-further-adjust-portfolio-margin-parameters (2025-01-02: MR1 and MR6 "
            "from 2025-01-06, MR4 immediately, MR7 from 2025-01-15)",
            "https://www.okx.com/help/okx-will-update-margin-calculation-rules-for-the-portfolio-margin-mode "
            "(2024-11-25: risk-unit merge, phased in 2024-12-30 to 2025-01-21)",
            "https://www.okx.com/help/vi-multi-currency-margin-mode-vs-portfolio-margin-mode (MMR and IMR formulas)",
            "https://www.okx.com/help/okx-to-enhance-new-features-in-portfolio-margin-mode (2024-05-31, the aggregation example)",
        ),
        as_of="2025-01-06",
        lots=LOTS,
        not_modelled=(
            "Only BTC and ETH: other underlyings have wider spot shocks and extreme moves; an instrument on another "
            "underlying is refused.",
            "MR1's implied-vol shocks: OKX's table by time to expiry was not published in full, so MR1 moves prices "
            "only.",
            "MR6's cover fraction, if any, is not published: the full loss of the +-24% move counts.",
            "MR4 is read as a parallel shift of every expiry's annualised basis by 5% (annualised move risk x years to "
            "expiry x delta x price, netted per underlying); OKX does not publish the formula, so spot and perpetuals "
            "carry no basis here.",
            "MR7: OKX does not publish how the raw minimum charge is built; it is a rate on each contract's notional "
            "that the case gives (minimum_charge_rate), and the tier multipliers on the raw charge are not applied.",
            "MR2 (theta decay), MR3 (vega term structure), MR5 (interest rate), MR8 (borrowing) and MR9 (stablecoin "
            "de-peg) are not modelled.",
            "The maximum of max(MR1, MR6) + MR4 and MR7 is taken over the venue's total, not per risk unit (the same "
            "for one underlying; never above OKX's sum of per-unit maxima otherwise).",
            "Collateral discount-rate tiers (adjusted equity) were not retrieved: the preset lists no collateral, "
            "so the case gives collateral beside preset.",
            "Spot in use, open orders, the liquidation process and 'mmr before volatility'.",
        ),
        venue=MappingProxyType({
            "initial_margin": {"kind": "max", "terms": [
                {"kind": "sum", "name": "MR1/MR6 + MR4", "terms": [
                    {"kind": "scenario_max", "name": "MR1/MR6", "scenarios": _GRID},
                    {"kind": "basis_shift", "name": "MR4", "annual_move": IMR_FACTOR * ANNUALISED_MOVE},
                ]},
                {"kind": "fixed_rate", "name": "MR7", "rate": Param("minimum_charge_rate", IMR_FACTOR), "notional": "underlying"},
            ]},
            "maintenance_margin": {"fraction_of_initial": 1.0 / IMR_FACTOR},
        }),
        parameters=MappingProxyType({
            "minimum_charge_rate": "MR7's raw minimum charge per unit of notional (a number >= 0: OKX does not publish it)",
        }),
    ),
)
