"""Each asset's price in the case's base currency.

In order: the base currency itself (1); a price given by hand (``--price A=V``, or the account file's
``prices``); else from the tickers: a spot ticker ``A/Q`` (its ``last``, else ``close``) or a
derivative's ``indexPrice`` with base ``A``, where its quote ``Q`` is the base currency or priced by
hand, times that price. Spot before index, the base currency as quote before another, the accounts in
the order given, then the symbol's order; the source of each price is kept for the import report.
An asset no rule prices is unknown (a located error, or skipped with ``--skip-unknown``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from marginopt.models.ccxt.payload import Account


@dataclass(frozen=True)
class Price:
    value: float
    source: str


class Prices:
    def __init__(self, base: str, given: Mapping[str, float], accounts: Sequence[Account]) -> None:
        self.base = base
        self._given = dict(given)
        for account in accounts:  # a price on the command line wins over a file's
            for asset, value in account.prices.items():
                self._given.setdefault(asset, value)
        self._given_source = {a: ("--price" if a in given else "the file's prices") for a in self._given}
        self._accounts = accounts
        self._cache: dict[str, Price | None] = {}

    def get(self, asset: str) -> Price | None:
        if asset not in self._cache:
            self._cache[asset] = self._find(asset)
        return self._cache[asset]

    def value(self, asset: str) -> float:
        price = self.get(asset)
        assert price is not None, asset  # callers ask for assets they have checked
        return price.value

    def _direct(self, asset: str) -> Price | None:
        if asset == self.base:
            return Price(1.0, "the base currency")
        if asset in self._given:
            return Price(self._given[asset], self._given_source[asset])
        return None

    def _find(self, asset: str) -> Price | None:
        found = self._direct(asset)
        if found is not None:
            return found
        candidates: list[tuple[tuple[int, int, int, str], Price]] = []
        for k, account in enumerate(self._accounts):
            for symbol, ticker in account.tickers.items():
                market = account.markets.get(symbol)
                if market is None or market.get("base") != asset:
                    continue
                quote = self._direct(str(market.get("quote")))
                if quote is None:
                    continue
                spot = market.get("type") == "spot"
                raw = (ticker.get("last") if ticker.get("last") is not None else ticker.get("close")) if spot \
                    else ticker.get("indexPrice")
                if isinstance(raw, str):
                    try:
                        raw = float(raw)
                    except ValueError:
                        continue
                if not isinstance(raw, (int, float)) or isinstance(raw, bool) or not (math.isfinite(raw) and raw > 0):
                    continue
                field = ("last" if ticker.get("last") is not None else "close") if spot else "indexPrice"
                rank = (0 if spot else 1, 0 if market.get("quote") == self.base else 1, k, symbol)
                source = f"{account.source}: tickers.{symbol}.{field}"
                if market.get("quote") != self.base:
                    source += f" x {market.get('quote')} {quote.value!r}"
                candidates.append((rank, Price(float(raw) * quote.value, source)))
        return min(candidates, key=lambda c: c[0])[1] if candidates else None
