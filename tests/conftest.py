"""Shared helpers: write small cases to a temporary folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import marginopt

BASE: dict[str, Any] = {
    "format": "marginopt/1",
    "base_currency": "USD",
    "valuation_date": "2026-11-20",
    "market": {"prices": {"BTC": 100000.0, "ETH": 3000.0, "USDC": 1.0}, "vols": {"BTC": 0.5, "ETH": 0.6}},
}


@pytest.fixture(scope="session", autouse=True)
def history_in_a_temporary_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The run history the service keeps (and --store without --db) goes to a file of this session, never
    to the user's own (~/.local/share/marginopt/history.db); subprocesses inherit it."""
    before = os.environ.get("MARGINOPT_DB")
    os.environ["MARGINOPT_DB"] = str(tmp_path_factory.mktemp("history") / "history.db")
    yield
    if before is None:
        os.environ.pop("MARGINOPT_DB", None)
    else:
        os.environ["MARGINOPT_DB"] = before


@pytest.fixture
def write_case(tmp_path: Path):
    """write_case(instruments=[...], positions=[...], venues={...}, **more) -> path of case.yaml."""

    def write(name: str = "case.yaml", **sections: Any) -> Path:
        doc = {**BASE, **sections}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return write


@pytest.fixture
def margin_of(write_case):
    """Margin report of a case written from sections."""

    def run(**sections: Any) -> marginopt.MarginReport:
        return marginopt.margin(marginopt.load_case(write_case(**sections)))

    return run
