"""The health page: equity and margins per venue, distances to a call and to liquidation, and the chart of
each venue's margin balance, initial and maintenance margin against the market move."""

from __future__ import annotations

from marginopt.health.distance import Crossing
from marginopt.health.report import HealthReport
from marginopt.reports.charts import level_panels
from marginopt.reports.html import _figure, _page, table


def _move(c: Crossing) -> float | None:
    return c.move


def health_sections(report: HealthReport) -> list[str]:
    ccy = report.base_currency
    rows = [[v.venue, v.margin_balance, v.equity.collateral, v.equity.unrealized_pnl, v.equity.option_value,
             v.initial_margin, v.maintenance_margin, v.margin_ratio, v.excess_initial, v.excess_maintenance]
            for v in report.venues]
    out = ["<h2>Margin health</h2>", table("health", f"Margin balance against margins ({ccy}); margin ratio = MM / balance", [
        ("venue", "text"), ("margin balance", "money"), ("collateral", "money"), ("unrealized P&L", "money"),
        ("option value", "money"), ("initial margin", "money"), ("maintenance", "money"), ("margin ratio", "rate"),
        ("excess over IM", "money"), ("excess over MM", "money")], rows)]
    dist = [[d.venue, d.direction.name, "now" if d.call.now else "", _move(d.call), "now" if d.liquidation.now else "",
             _move(d.liquidation)] for d in report.distances]
    out += ["<h2>Distance to a call and to liquidation</h2>", table(
        "distance", f"Smallest relative move at which the balance falls to IM (call) and MM (liquidation); exact to "
        f"{report.scan.tolerance:g}, scanned from -{report.scan.down:.0%} to +{report.scan.up:.0%} (empty: not in the scan)",
        [("venue", "text"), ("move", "text"), ("call", "text"), ("call move", "rate"), ("liquidation", "text"),
         ("liquidation move", "rate")], dist)]
    for v in report.venues:
        panels = []
        names = sorted({name for (venue, name) in report.curves if venue == v.venue}, key=lambda n: n.rsplit(" ", 1)[0])
        for base in dict.fromkeys(n.rsplit(" ", 1)[0] for n in names):
            down, up = report.curves.get((v.venue, f"{base} down"), []), report.curves.get((v.venue, f"{base} up"), [])
            pts = [*reversed(down), *up]
            if not pts:
                continue
            moves = [p.move for p in pts]
            panels.append((f"{base} moves", {
                "margin balance": (moves, [p.margin_balance for p in pts]),
                "initial margin": (moves, [p.initial_margin for p in pts]),
                "maintenance margin": (moves, [p.maintenance_margin for p in pts])}))
        if panels:
            out.append(_figure(level_panels(panels, f"{v.venue}: margin balance, IM and MM against the move", ccy,
                                            f"health-{v.venue}"), "health"))
    return out


def health_html(report: HealthReport, *, title: str = "") -> str:
    head = f"Margin health{' - ' + title if title else ''}"
    return _page(head, f"{report.base_currency}, valuation date {report.valuation_date}", health_sections(report))
