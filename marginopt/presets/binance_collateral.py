"""Binance tiered collateral ratios (Cross Margin), BTC: the schedule of Binance's worked example.

Collateral only: each ratio applies to the slice of the asset's value between two tier
bounds (Binance's bracket method), which is the case format's ``tiers``. The case gives
``initial_margin`` (and any other collateral) beside ``preset``.
"""

from __future__ import annotations

from types import MappingProxyType

from marginopt.presets import Lot, Preset

LOTS = (
    Lot(product="BTCUSDT USDⓈ-M perpetual", kind="perpetual", underlying="BTC", contract_size=1.0, contract_unit="BTC",
        step=None, minimum=None,
        source=("https://www.binance.com/en/support/faq/usd%E2%93%A2-margined-futures-contract-specifications-360033161972 "
                "(\"BTC/USDT ... futures contracts represent only one unit of its respective base asset\"; minimum "
                "order notional 5 USDT)",
                "https://www.binance.com/ru/support/announcement/1d762daf60dd417f9d8a05d44b06a25c (2021-02-23: the "
                "5 USDT minimum notional from 2021-02-24)"),
        as_of="2021-02-24",
        note="quantity step and minimum quantity not found in a published page (0.001 BTC appears there only as an "
             "example order; Binance refers to its API, exchangeInfo's LOT_SIZE filter, for them; searched again "
             "2026-12-06, still only the example)",
        min_notional=5.0, notional_unit="USDT"),
)

PRESETS = (
    Preset(
        id="binance-collateral-2023-01",
        family="binance-collateral",
        title="Binance tiered collateral ratios (Cross Margin), BTC",
        models="BTC collateral value by tiers of its USD(T) value: 100% to 100M, 97.5% to 120M, 95% to 150M, "
               "90% to 180M, 85% to 200M",
        source=(
            "https://www.binance.com/en-BH/support/faq/binance-cross-margin-collateral-haircuts-4bec9126c021472285b20874f9380dfb "
            "(Example 1; collateral haircuts in force from 2023-01-12)",
        ),
        as_of="2023-01-12",
        lots=LOTS,
        not_modelled=(
            "No margin measure: the case gives initial_margin beside preset.",
            "The tiers are those of Binance's worked example, which Binance calls an example; live schedules "
            "(Portfolio Margin Pro ranks, other assets) are served by its API.",
            "The example's table ends at 200M USDT: value above it counts zero here.",
            "Tiers are applied to the venue's holding in the base currency (Binance: the account-wide value in USDT "
            "or USD).",
            "Negative balances, uniMMR and its open-loss term, liability (borrowing) tiers.",
        ),
        venue=MappingProxyType({
            "collateral": {"BTC": {"tiers": [[100e6, 1.0], [120e6, 0.975], [150e6, 0.95], [180e6, 0.90], [200e6, 0.85]]}},
        }),
    ),
)
