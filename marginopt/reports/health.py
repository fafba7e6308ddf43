"""The health page: equity and margins per venue, distances to a call and to liquidation, and the chart of
each venue's margin balance, initial and maintenance margin against the market move; the forward
projection's section: per day quantiles and probabilities, and a fan chart."""

from __future__ import annotations

from html import escape

from marginopt.health.distance import Crossing
from marginopt.health.forward import ForwardReport
from marginopt.health.report import HealthReport
from marginopt.reports.charts import fan_panels, level_panels
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


def health_html(report: HealthReport, *, title: str = "", forward: ForwardReport | None = None) -> str:
    """The health page; with ``forward``, the forward projection's section after the distances."""
    head = f"Margin health{' - ' + title if title else ''}"
    body = health_sections(report) + (forward_sections(forward) if forward is not None else [])
    return _page(head, f"{report.base_currency}, valuation date {report.valuation_date}", body)


def forward_sections(report: ForwardReport) -> list[str]:
    """The forward projection: per venue and day, the side of each distribution that hurts (the initial margin
    and the call amount from the median up, the balance from the median down) and the probabilities of a call
    and of liquidation, and a fan chart of the initial margin and the balance with both probabilities."""
    ccy, p, qs = report.base_currency, report.paths, report.quantiles
    high = [k for k, x in enumerate(qs) if x >= 0.5]
    low = [k for k, x in enumerate(qs) if x <= 0.5]
    calls = [k for k in high if qs[k] > 0.5]
    out = ["<h2>Forward margin</h2>", f"<p>{p.n_paths:,} {p.model} paths of {p.days} days ({escape(p.source)}; seed "
           f"{p.seed}). Quantiles over paths per day; a call is a balance below the initial margin (IM), liquidation "
           "below the maintenance margin; probabilities in percent.</p>"]
    panels = []
    for v in report.venues:
        im, bal, call = (report.levels(v, x) for x in ("initial_margin", "margin_balance", "call_amount"))
        pc, pl = v.call_probability(), v.liquidation_probability()
        cols = ([("day", "int"), ("date", "text")] + [(f"IM {qs[k]:.0%}", "money") for k in high]
                + [(f"balance {qs[k]:.0%}", "money") for k in low] + [(f"call {qs[k]:.0%}", "money") for k in calls]
                + [("P(call) %", "rate"), ("P(liquidation) %", "rate")])
        rows = [[d, report.date(d).isoformat(), *(im[k, d] for k in high), *(bal[k, d] for k in low),
                 *(call[k, d] for k in calls), round(100.0 * float(pc[d]), 4), round(100.0 * float(pl[d]), 4)]
                for d in range(report.days + 1)]
        note = f" ({v.note})" if v.note else ""
        expiries = "; ".join(f"{i} settles on day {d}" for d, i in v.expiries)
        out.append(table(f"forward-{v.venue}", f"{v.venue}: forward margin ({ccy}){note}{'; ' + expiries if expiries else ''}",
                         cols, rows))
        panels.append((v.venue, {
            # a band for each pair of levels about the median, else only the side that hurts
            "initial margin": {qs[k]: im[k].tolist() for k in range(len(qs)) if qs[k] >= 0.5 or _paired(qs[k], qs)},
            "margin balance": {qs[k]: bal[k].tolist() for k in range(len(qs)) if qs[k] <= 0.5 or _paired(qs[k], qs)},
            "call probability": {0.5: pc.tolist()}, "liquidation probability": {0.5: pl.tolist()}}))
    if panels:
        out.append(_figure(fan_panels(panels, "Initial margin and margin balance by day (bands: quantiles over paths; "
                                      "dotted: probabilities, right axis)", ccy, "forward"), "forward"))
    return out


def _paired(level: float, levels: tuple[float, ...]) -> bool:
    return any(abs(level + other - 1.0) < 1e-12 for other in levels)


def forward_html(report: ForwardReport, *, title: str = "") -> str:
    head = f"Forward margin{' - ' + title if title else ''}"
    return _page(head, f"{report.base_currency}, valuation date {report.valuation_date}", forward_sections(report))
