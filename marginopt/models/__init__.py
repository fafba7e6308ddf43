"""Domain objects and the maths of margin: instruments, market data, pricing,
scenarios -> ScenarioLosses, margin measures, venues, collateral, limits.

The names below are imported on first use, so that a light module of this package (the
enums the CLI lists) does not load pricing, scenarios and numba."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marginopt.models.book import VenueBook
    from marginopt.models.case import Case, load_case, load_case_data
    from marginopt.models.report import MarginReport, VenueMargin, margin_report
    from marginopt.models.scenarios import ScenarioLosses

_LAZY = {"VenueBook": "book", "Case": "case", "load_case": "case", "load_case_data": "case", "MarginReport": "report",
         "VenueMargin": "report", "margin_report": "report", "ScenarioLosses": "scenarios"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'marginopt.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"marginopt.models.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


__all__ = ["Case", "MarginReport", "ScenarioLosses", "VenueBook", "VenueMargin", "load_case", "load_case_data", "margin_report"]
