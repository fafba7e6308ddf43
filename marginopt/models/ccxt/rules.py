"""What the importer knows of an exchange beyond ccxt's unified fields.

ccxt's unified structures are the same for every exchange, but two things they leave to the
exchange were read here from ccxt's parsers and the exchanges' API references:

- **Deribit's amounts are in the contract size's unit**, not in contracts: a position's ``size``
  (ccxt's ``contracts``), ``min_trade_amount`` (``precision.amount`` and ``limits.amount.min``) are
  USD for inverse futures and perpetuals (a contract is ``contract_size`` = 10 USD) and coin for
  options (1 BTC a contract). A case quantity is in contracts: Deribit's amounts are divided by the
  contract size.
- **OKX's contract value is ``ctVal x ctMult``**; ccxt's ``contractSize`` is ``ctVal`` alone (1 for
  a BTC-USD option whose ``ctMult`` is 0.01: a contract of 0.01 BTC). The market's ``info.ctMult``
  multiplies it.

An exchange not listed here is read by the unified fields as they stand (``checked`` False): the
import report says its contract units were not checked.

The preset named is the venue's margin model where it fits the account (README, "Venue presets").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExchangeRules:
    exchange: str
    preset: str | None = None
    amounts_in_size_unit: bool = False  # contracts, precision.amount and limits.amount.min in the contract size's unit
    contract_multiplier: str | None = None  # a key of the market's info multiplying ccxt's contractSize
    checked: bool = True


RULES = {
    "deribit": ExchangeRules("deribit", "deribit-pm", amounts_in_size_unit=True),
    "okx": ExchangeRules("okx", "okx-pm", contract_multiplier="ctMult"),
    "binanceusdm": ExchangeRules("binanceusdm", "binance-collateral"),
    "binancecoinm": ExchangeRules("binancecoinm", "binance-collateral"),
}


def rules_for(exchange: str) -> ExchangeRules:
    return RULES.get(exchange, ExchangeRules(exchange, checked=False))
