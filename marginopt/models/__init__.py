"""Domain objects and the maths of margin: instruments, market data, pricing,
scenarios -> ScenarioLosses, margin measures, venues, collateral, limits.

The names below are imported on first use, so that a light module of this package (the
enums the CLI lists) does not load pricing, scenarios and numba."""

from __future__ import annotations

from typing import TYPE_CHECKING

from marginopt.lazy import lazy

if TYPE_CHECKING:
    from marginopt.models.book import VenueBook
    from marginopt.models.case import Case, load_case, load_case_data
    from marginopt.models.report import MarginReport, VenueMargin, margin_report
    from marginopt.models.scenarios import ScenarioLosses

_LAZY = {"VenueBook": "book", "Case": "case", "load_case": "case", "load_case_data": "case", "MarginReport": "report",
         "VenueMargin": "report", "margin_report": "report", "ScenarioLosses": "scenarios"}


__getattr__, __dir__ = lazy(__name__, {name: f"marginopt.models.{module}" for name, module in _LAZY.items()})


__all__ = ["Case", "MarginReport", "ScenarioLosses", "VenueBook", "VenueMargin", "load_case", "load_case_data", "margin_report"]
