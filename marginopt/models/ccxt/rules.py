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
- **Binance's options are ccxt's ``binance``** (the European options, eapi), not a class of their
  own: ccxt's ``binance`` is told to load spot and option markets only (``fetchMarkets.types``; not the
  margin pairs, ``fetchMargins``) and to
  read positions from eapi/v1/position (``fetchPositions.method`` option). Its ``fetch_balance`` has no
  options account (a ``type`` of option reads the spot account), so the balance is read from
  eapi/v1/marginAccount (``balance``: ``live.option_margin_account``); its option tickers (eapi/v1/ticker)
  carry no mark, which eapi/v1/mark gives (``fetch_mark_price``, ``option_marks``). A contract is ``unit`` of the
  underlying (ccxt's ``contractSize``), amounts in contracts; settled in USDT (linear). No preset is
  Binance's options margin: the venue is margined at ``--fallback-rate``.

An exchange not listed here is read by the unified fields as they stand (``checked`` False): the
import report says its contract units were not checked.

The preset named is the venue's margin model where it fits the account (README, "Venue presets").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExchangeRules:
    exchange: str
    preset: str | None = None
    amounts_in_size_unit: bool = False  # contracts, precision.amount and limits.amount.min in the contract size's unit
    contract_multiplier: str | None = None  # a key of the market's info multiplying ccxt's contractSize
    checked: bool = True
    client_options: Mapping[str, Any] = field(default_factory=dict)  # set on the ccxt exchange's options
    balance: str | None = None  # a reader of live.BALANCES instead of ccxt's fetch_balance
    option_marks: bool = False  # an option's ticker carries no mark: fetch_mark_price it (else the position's mark)


RULES = {
    "deribit": ExchangeRules("deribit", "deribit-pm", amounts_in_size_unit=True),
    "okx": ExchangeRules("okx", "okx-pm", contract_multiplier="ctMult"),
    "binanceusdm": ExchangeRules("binanceusdm", "binance-collateral"),
    "binancecoinm": ExchangeRules("binancecoinm", "binance-collateral"),
    "binance": ExchangeRules("binance", None, client_options={"fetchMarkets": {"types": ["spot", "option"]},
                                                              "fetchMargins": False,
                                                              "fetchPositions": {"method": "option"}},
                             balance="option_margin_account", option_marks=True),
}


def rules_for(exchange: str) -> ExchangeRules:
    return RULES.get(exchange, ExchangeRules(exchange, checked=False))
