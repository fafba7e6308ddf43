"""Deribit portfolio margin (S:PM), BTC, with the parameters of the ``private/pme/simulate`` example of 17 June 2024.

The risk matrix: 9 price moves of -16%..+16% x vol down / same / up, the vol shock scaled
by (30 / days to expiry) to the short-term power below 30 days and the long-term power
from 30 on, the vol-up shock floored at 50%; 8 extended moves under vol up. Plus the
roll shock, 1% of the gross size of futures and perpetuals. Maintenance margin is 0.8 of
the risk-matrix margin (``mm_factor``).

Margin is in the base currency: Deribit's BTC margin times today's BTC price. The grid is
coin-margined: every P&L counts in BTC at the scenario's price (inverse contracts do so by
themselves; a linear contract's is divided by the price move), converted at today's price,
so dividing by ``market.prices.BTC`` gives Deribit's BTC figures.
"""

from __future__ import annotations

from types import MappingProxyType

from marginopt.presets import Lot, Preset

PRICE_RANGE = 0.16
EXTENDED_MOVES = (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)


def extended_weight(move: float) -> float:
    """Deribit counts ``price_range / |move|`` of an extended move's USD P&L, converted to coin at the
    price of the same-side edge of the standard range (inferred: it reproduces the published extended
    entries of the example, each equal to the edge entry). A loss on the coin-margined grid is already
    in coin at the extended move's price, so the weight is that fraction times (1 + move) / (1 + edge)."""
    edge = PRICE_RANGE if move > 0 else -PRICE_RANGE
    return PRICE_RANGE / abs(move) * (1.0 + move) / (1.0 + edge)


_GRID = {
    "kind": "grid",
    "price_moves": [-0.16, -0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16],
    "vol_moves": [-0.25, 0.0, 0.5],  # volatility_range_down, same, volatility_range_up
    "vol_scaling": {"reference_days": 30, "power": 0.3, "long_power": 0.13, "floor_days": 1},
    "min_vol_up": 0.5,  # min_volatility_for_shock_up
    "extended": [{"price_move": m, "vol_move": 0.5, "weight": extended_weight(m)} for m in EXTENDED_MOVES],
    "underlyings": ["BTC"],
    "coin_margined": True,
}

LOTS = (
    Lot(product="BTC options", kind="option", underlying="BTC", contract_size=1.0, contract_unit="BTC", step=None,
        minimum=None,
        source=("https://www.deribit.com/pages/docs/options (\"A BTC call option is the right to buy 1 bitcoin\")",
                "https://www.deribit.com/docs/contract-specifications-options/ (\"Multiplier: 1 ... Each contract has "
                "as underlying only 1BTC\"; premium tick 0.0001 BTC)"),
        as_of="undated, read 2026-12-06",
        note="order step and minimum not found in a published page read here (issue 17 states 0.1 BTC; Deribit's "
             "API reports them per instrument). Searched again 2026-12-06: the only Deribit page giving 0.1 is the API "
             "reference's example response (https://docs.deribit.com/api-reference/market-data/public-get_instrument: "
             "BTC-13JAN23-16000-P on the test server, min_trade_amount 0.1, contract_size 1), an example payload, not "
             "a contract specification: left unconfirmed"),
    Lot(product="BTC futures and perpetual (inverse)", kind="future", underlying="BTC", contract_size=10.0,
        contract_unit="USD", step=1.0, minimum=1.0,
        source=("https://www.deribit.com/docs/contract-specifications/ (\"Contract size US $10\")",),
        as_of="undated, read 2026-12-06",
        note="whole contracts of USD 10; the order amount is in USD, a multiple of 10"),
    Lot(product="ETH options", kind="option", underlying="ETH", contract_size=None, contract_unit="ETH", step=None,
        minimum=None, source=("no Deribit page on ETH options read here",), as_of="read 2026-12-06",
        note="not found: the contract size, step and minimum of ETH options (searched again 2026-12-06)"),
)

PRESETS = (
    Preset(
        id="deribit-pm-2024-06",
        family="deribit-pm",
        title="Deribit portfolio margin (S:PM), BTC",
        models="risk matrix (9 price x 3 vol moves, vol shock scaled by days to expiry, 8 extended moves), "
               "roll shock 1% of gross futures and perpetual size; maintenance 0.8 x",
        source=(
            "https://docs.deribit.com/api-reference/account-management/private-simulate "
            "(response example, model_params timestamp 1718619740501 = 2024-06-17T10:22:20Z)",
            "https://support.deribit.com/hc/en-us/articles/25944756247837-Portfolio-Margin",
            "https://insights.deribit.com/exchange-updates/introducing-changes-to-deribit-portfolio-margin-model",
        ),
        as_of="2024-06-17",
        lots=LOTS,
        not_modelled=(
            "Only BTC: the 2024 price range of other currencies was not published, so an instrument on another "
            "underlying is refused.",
            "Each settlement currency is margined and collateralised on its own at Deribit; here the venue's "
            "collateral covers the whole requirement.",
            "The option repricing inside the scenarios is this library's Black-76; Deribit does not publish its own. "
            "The vol shock as a multiple of the vol and the 50% floor on the vol-up shock are read from parameter "
            "names, not from a formula Deribit states.",
            "The extended moves' P&L fraction is inferred from the published example; the extended dampener "
            "(extended_dampener, 100,000 for BTC) is not applied.",
            "The delta shock (m_inc, max_delta_shock, delta_total_liq_shock_threshold) and the roll shock's growth "
            "with time to expiry (annualised_move_risk) are not modelled: their formulas are not published; the roll "
            "shock is its minimum, min_annualised_move 1% of size.",
            "Gains are not scaled by pnl_offset (0 for BTC in 2024, which a scenario maximum already gives); Deribit "
            "rounds worst_case to 9 decimals, this does not.",
            "Open-order margin, market-maker-protection margin and spot margin (part of Deribit's initial margin) "
            "are not modelled: the initial margin here is the risk-matrix margin.",
            "Cross-collateral PM (X:PM): correlation contingency, haircuts, equity_side_impact, max_offsetable_pnl.",
        ),
        venue=MappingProxyType({
            "initial_margin": {"kind": "sum", "terms": [
                {"kind": "scenario_max", "name": "worst_case", "scenarios": _GRID},
                {"kind": "delta_requirement", "name": "roll_shock", "gross": 0.01, "applies_to": ["future", "perpetual"]},
            ]},
            "maintenance_margin": {"fraction_of_initial": 0.8},
            "collateral": {"BTC": {"haircut": 0.0}},
        }),
    ),
)
