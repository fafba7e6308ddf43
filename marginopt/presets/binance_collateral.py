"""Binance tiered collateral ratios (Cross Margin), BTC: the schedule of Binance's worked example.

Collateral only: each ratio applies to the slice of the asset's value between two tier
bounds (Binance's bracket method), which is the case format's ``tiers``. The case gives
``initial_margin`` (and any other collateral) beside ``preset``.
"""

from __future__ import annotations

from types import MappingProxyType

from marginopt.presets import Preset

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
