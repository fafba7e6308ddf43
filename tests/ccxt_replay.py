"""Replays recorded exchange responses through ccxt's own HTTP layer: a ccxt exchange whose ``fetch``
(the one method that goes to the network) answers from a fixture, so ccxt's request building, signing and
parsing all run offline. A fixture (tests/data/ccxt/<name>.json) maps ``"METHOD /path?query"`` to the
exchange's JSON response; the query keeps the parameters that select data (not timestamps or signatures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DATA = Path(__file__).resolve().parent / "data" / "ccxt"
VOLATILE = {"timestamp", "signature", "recvWindow", "nonce"}


def request_key(method: str, url: str) -> str:
    parts = urlsplit(url)
    query = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(parts.query)) if k not in VOLATILE)
    return f"{method} {parts.path}" + (f"?{query}" if query else "")


class Replay:
    def __init__(self, responses: dict[str, Any]) -> None:
        self.responses = responses
        self.asked: list[str] = []

    def __call__(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        key = request_key(method, url)
        self.asked.append(key)
        if key not in self.responses:
            raise KeyError(f"no recorded response for {key!r}")
        return json.loads(json.dumps(self.responses[key]))  # a fresh copy: ccxt may change what it parses


def fixture(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def client(name: str, **config: Any) -> tuple[Any, Replay]:
    """A ccxt exchange for fixture ``name`` (its ``exchange`` id), dummy credentials, replaying its responses."""
    import ccxt

    data = fixture(name)
    exchange = getattr(ccxt, data["exchange"])({"apiKey": "test-key", "secret": "test-secret", "password": "test-pass",
                                                 **config})
    replay = Replay(data["responses"])
    exchange.fetch = replay
    exchange.milliseconds = lambda: data["now"]  # the recording's clock: timestamps in payloads are its
    return exchange, replay
