"""Domain objects and the maths of margin: instruments, market data, pricing,
scenarios -> ScenarioLosses, margin measures, venues, collateral, limits."""

from marginopt.models.book import VenueBook
from marginopt.models.case import Case, load_case, load_case_data
from marginopt.models.report import MarginReport, VenueMargin, margin_report
from marginopt.models.scenarios import ScenarioLosses

__all__ = ["Case", "MarginReport", "ScenarioLosses", "VenueBook", "VenueMargin", "load_case", "load_case_data", "margin_report"]
