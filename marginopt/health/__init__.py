"""Margin health: each venue's margin balance against its margins now, and the market moves that would breach them."""

from marginopt.health.distance import Scan
from marginopt.health.report import HealthReport, health_report
from marginopt.health.state import VenueHealth, venue_health

__all__ = ["HealthReport", "Scan", "VenueHealth", "health_report", "venue_health"]
