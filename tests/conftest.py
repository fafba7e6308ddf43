"""Shared helpers: write small cases to a temporary folder."""

from __future__ import annotations

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
