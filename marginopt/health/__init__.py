"""Margin health: each venue's margin balance against its margins now, the market moves that would breach them,
and their projection over the next days along drawn price paths (forward margin)."""

from marginopt.health.distance import Scan
from marginopt.health.forward import ForwardReport, VenueProjection, forward_report
from marginopt.health.report import HealthReport, health_report
from marginopt.health.state import VenueHealth, venue_health

__all__ = ["ForwardReport", "HealthReport", "Scan", "VenueHealth", "VenueProjection", "forward_report", "health_report",
           "venue_health"]
