"""One account fetched live through ccxt, with credentials from environment variables only.

The credentials ccxt's exchange class requires (``requiredCredentials``: apiKey, secret, and for
OKX a password) are read from ``MARGINOPT_<EXCHANGE>_<NAME>`` (``MARGINOPT_OKX_API_KEY``,
``MARGINOPT_OKX_SECRET``, ``MARGINOPT_OKX_PASSWORD``) and nowhere else: never from a file, never
written, and an error shows the variables' names, never their values (any credential in an
exchange's error text is replaced by ``***`` and URLs lose their query strings, where signatures go).

What is fetched: ``fetch_markets``, ``fetch_positions``, ``fetch_balance``, then the tickers of the
held markets and of spot pairs that price each underlying and currency in the base currency (with
``fetch_mark_price`` where the exchange has it, for marks and index prices). An exchange whose account
ccxt reads only with settings (``rules``: Binance's options) gets them on its ``options``, and one whose
balance ccxt's ``fetch_balance`` does not read is read by ``BALANCES``, through ccxt's request methods.
The payload keeps the markets it needs only, and is what a saved account holds (``payload``), so ``--save`` writes a file
``--from ccxt`` reads back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from marginopt.errors import CaseError
from marginopt.models.ccxt.rules import rules_for

PREFIX = "MARGINOPT"


def env_name(exchange: str, credential: str) -> str:
    """``MARGINOPT_OKX_API_KEY`` for ccxt's ``apiKey`` of ``okx``."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", credential).upper()
    return f"{PREFIX}_{exchange.upper()}_{snake}"


def credentials(exchange: str, required: Mapping[str, bool], environ: Mapping[str, str]) -> dict[str, str]:
    """The credentials the exchange requires, from the environment; a missing one names every variable needed."""
    names = {c: env_name(exchange, c) for c, needed in required.items() if needed}
    missing = [v for v in names.values() if not environ.get(v)]
    if missing:
        raise CaseError(None, "--exchange", f"the credentials of {exchange} in the environment variables "
                        f"{', '.join(names.values())} (unset: {', '.join(missing)})", exchange)
    return {c: environ[v] for c, v in names.items()}


def fetch_account(exchange: str, *, base_currency: str = "USD", environ: Mapping[str, str] | None = None,
                  client: Any = None) -> dict[str, Any]:
    """The account of ``exchange`` as a payload (``payload``'s layout). ``client``: a ccxt exchange built by
    the caller (tests give one whose HTTP layer replays recorded responses)."""
    from marginopt.models.ccxt.case import require_ccxt

    ccxt = require_ccxt()
    secrets: list[str] = []
    if client is None:
        if exchange not in ccxt.exchanges:
            raise CaseError(None, "--exchange", "a ccxt exchange id (ccxt.exchanges)", exchange)
        cls = getattr(ccxt, exchange)
        creds = credentials(exchange, cls().requiredCredentials, os.environ if environ is None else environ)
        secrets = list(creds.values())
        client = cls({**creds, "enableRateLimit": True, "timeout": 30000})
    rules = rules_for(exchange)
    client.options.update(rules.client_options)
    step = "fetch_markets"
    try:
        markets = client.fetch_markets()
        client.set_markets(markets)
        step = "fetch_positions"
        positions = client.fetch_positions()
        step = "fetch_balance"
        balance = BALANCES[rules.balance](client) if rules.balance else client.fetch_balance()
        held = sorted({p["symbol"] for p in positions if p.get("symbol") and p.get("contracts")})
        wanted = held + _pricing_pairs(client, held, balance, base_currency)
        step = "fetch_tickers"
        tickers = _tickers(client, wanted, rules.option_marks)
        step = "fetch_time"
        now = client.milliseconds()
    except ccxt.BaseError as exc:
        raise CaseError(None, f"--exchange {exchange} ({step})", "a reachable exchange that accepts the credentials; "
                        f"ccxt said {why(exc, secrets)}") from None
    keep = set(held) | set(tickers)
    return {"format": "ccxt", "exchange": exchange, "timestamp": now,
            "markets": [m for m in markets if m.get("symbol") in keep], "positions": positions, "balance": balance,
            "tickers": tickers}


def _pricing_pairs(client: Any, held: list[str], balance: Mapping[str, Any], base: str) -> list[str]:
    """Spot pairs ``A/base`` (else ``A/USDT``, ``A/USDC``) listed by the exchange for each asset the case prices."""
    assets = set((balance.get("total") or {}).keys())
    for symbol in held:
        market = client.markets[symbol]
        assets |= {market.get("base"), market.get("quote"), market.get("settle")}
    pairs = []
    for asset in sorted(a for a in assets if a and a != base):
        for quote in (base, "USDT", "USDC"):
            symbol = f"{asset}/{quote}"
            if symbol in client.markets and client.markets[symbol].get("type") == "spot":
                pairs.append(symbol)
                break
    return pairs


def _tickers(client: Any, symbols: list[str], option_marks: bool = False) -> dict[str, Any]:
    """Each symbol's ticker (``fetch_ticker``: the fullest, marks and index prices where the exchange gives them),
    with ``markPrice`` and ``indexPrice`` filled from ``fetch_mark_price`` for futures and perpetuals where the
    exchange has it (Binance's and OKX's tickers carry no mark), and for options with ``option_marks`` (Binance's
    eapi/v1/mark; elsewhere an option without a ticker mark is marked at its position's ``markPrice``)."""
    marked = ("swap", "future", "option") if option_marks else ("swap", "future")
    out: dict[str, Any] = {}
    for symbol in symbols:
        ticker = dict(client.fetch_ticker(symbol))
        market = client.markets[symbol]
        if market.get("type") in marked and client.has.get("fetchMarkPrice") and (
                ticker.get("markPrice") is None or ticker.get("indexPrice") is None):
            mark = client.fetch_mark_price(symbol)
            for key in ("markPrice", "indexPrice"):
                if mark.get(key) is not None and ticker.get(key) is None:
                    ticker[key] = mark[key]
        out[symbol] = ticker
    return out


def option_margin_account(client: Any) -> dict[str, Any]:
    """Binance's options account (GET eapi/v1/marginAccount) in ccxt's balance structure: per asset ``total`` its
    ``equity`` (``marginBalance`` plus ``unrealizedPNL``: cash plus the option positions at their mark), ``free`` its
    ``available``. ccxt's ``fetch_balance`` has no options account (ccxt 4.5: type option reads the spot account)."""
    response = client.eapiPrivateGetMarginAccount()
    result: dict[str, Any] = {"info": response}
    for entry in response.get("asset") or []:
        code = client.safe_currency_code(client.safe_string(entry, "asset"))
        if code is not None:
            result[code] = {"free": client.safe_string(entry, "available"), "used": None,
                            "total": client.safe_string(entry, "equity")}
    return dict(client.safe_balance(result))


BALANCES = {"option_margin_account": option_margin_account}


def why(exc: BaseException, secrets: list[str]) -> str:
    """ccxt's error and the first error of its chain (the network's: ccxt's own text names only the request)."""
    text = f"{type(exc).__name__}: {exc}"
    root: BaseException | None = exc
    seen = []
    while root is not None and root not in seen:
        seen.append(root)
        root = root.__cause__ or root.__context__
    if len(seen) > 1:
        first = str(seen[-1]).splitlines()[0] if str(seen[-1]) else ""
        text += f" (under it {type(seen[-1]).__name__}: {first})"
    return redact(text, secrets)


def redact(text: str, secrets: list[str]) -> str:
    """An exchange's error text without credentials: each secret replaced, URLs cut at their query string."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = re.sub(r"(https?://[^\s?]+)\?\S*", r"\1?...", text)
    return text if len(text) <= 300 else text[:297] + "..."
