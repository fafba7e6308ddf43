"""``marginopt health``: equity, margins and the distance to a margin call and to liquidation per venue."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from marginopt.cli.keep import keep, store_options
from marginopt.cli.main import FORMATS, REPORT_OPTION, _write_html, cli

if TYPE_CHECKING:
    from rich.console import Console

    from marginopt.health.distance import Crossing
    from marginopt.health.report import HealthReport


@cli.command()
@click.argument("case", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--venue", "venues", multiple=True, help="Only this venue (repeatable); default: every venue.")
@click.option("--down", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.95, show_default=True,
              help="Largest fall searched, relative (0.95: to -95%).")
@click.option("--up", type=click.FloatRange(0.0, 100.0, min_open=True), default=2.0, show_default=True,
              help="Largest rise searched, relative (2: to +200%).")
@click.option("--step", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.01, show_default=True,
              help="Scan step of falls (rises step twice as far); a breach narrower than a step can be missed.")
@click.option("--tolerance", type=click.FloatRange(0.0, 1.0, min_open=True), default=1e-6, show_default=True,
              help="Each call and liquidation move is exact to this (relative move).")
@click.option("--curves", is_flag=True, help="JSON: add each venue's margin balance, IM and MM at every scanned move.")
@REPORT_OPTION
@store_options
def health(case: Path, fmt: str, venues: tuple[str, ...], down: float, up: float, step: float, tolerance: float,
           curves: bool, report_file: Path | None, store: bool, db: str | None) -> None:
    """Margin health per venue: margin balance (credited collateral, unrealized P&L, option value), initial and
    maintenance margin, margin ratio (MM / balance), excess over each, and the smallest move of each underlying
    down and up, and of all together, at which the balance falls to IM (a call) and to MM (liquidation), found
    by re-pricing and re-margining the whole case (CASE_FORMAT.md, Health)."""
    from marginopt.errors import ArgumentError, CaseError, Location
    from marginopt.health.distance import Scan
    from marginopt.health.report import health_report
    from marginopt.models import load_case

    kept = keep(store, db)
    loaded = load_case(case)
    for v in venues:
        if v not in loaded.venues:
            raise CaseError(Location(case), "--venue", f"a venue of the case ({', '.join(loaded.venues)})", v)
    try:
        scan = Scan(down=down, up=up, step_down=min(step, down), step_up=min(2 * step, up), tolerance=tolerance)
    except ArgumentError as exc:
        raise click.BadParameter(str(exc)) from None
    report = health_report(loaded, scan, venues or None)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(curves), indent=2, allow_nan=False))
    elif fmt == "csv":
        click.echo(health_csv(report), nl=False)
    else:
        from marginopt.cli.render import stdout_console

        health_table(report, stdout_console(), loaded.description)
    if kept is not None:
        from marginopt.models import margin_report

        kept.add(case, margin_report(loaded), "health", report.to_dict(curves))
    if report_file is not None:
        from marginopt.reports.health import health_html

        _write_html(report_file, health_html(report, title=loaded.description))


def _move(c: Crossing, one: bool) -> str:
    if c.move is None:
        return "none in the scan"
    if c.now:
        return "now"
    at = f" ({', '.join(f'{u} {p:,.2f}' for u, p in c.prices.items())})" if one else ""
    return f"{c.move:+.4%}{at}"


def health_table(report: HealthReport, console: Console, title: str = "") -> None:
    from rich.table import Table

    from marginopt.cli.render import money

    ccy = report.base_currency
    head = f"Margin health{' - ' + title if title else ''} ({ccy}, valuation date {report.valuation_date})"
    t = Table(title=head, title_justify="left", header_style="bold")
    for col, right in (("venue", False), ("margin balance", True), ("initial margin", True), ("maintenance", True),
                       ("margin ratio", True), ("excess over IM", True), ("excess over MM", True)):
        t.add_column(col, justify="right" if right else "left")
    for v in report.venues:
        ratio = "no balance" if v.margin_ratio is None else f"{v.margin_ratio:.2%}"
        t.add_row(v.venue, money(v.margin_balance), money(v.initial_margin), money(v.maintenance_margin), ratio,
                  money(v.excess_initial), money(v.excess_maintenance))
    console.print(t)
    e = Table(title="Margin balance", title_justify="left", header_style="bold")
    for col in ("venue", "collateral", "unrealized P&L", "option value", "long options", "short options"):
        e.add_column(col, justify="left" if col == "venue" else "right")
    for v in report.venues:
        q = v.equity
        long = money(q.long_options) + ("" if q.long_options_counted else " (not credited)")
        e.add_row(v.venue, money(q.collateral), money(q.unrealized_pnl), money(q.option_value), long, money(q.short_options))
    console.print(e)
    d = Table(title=f"Distance to a call and to liquidation (tolerance {report.scan.tolerance:g}; scan "
              f"-{report.scan.down:.0%} to +{report.scan.up:.0%})", title_justify="left", header_style="bold")
    for col in ("venue", "move", "margin call at", "liquidation at"):
        d.add_column(col)
    for v in report.venues:
        for x in report.distances_at(v.venue):
            one = len(x.direction.underlyings) == 1
            d.add_row(v.venue, x.direction.name, _move(x.call, one), _move(x.liquidation, one))
    console.print(d)


def health_csv(report: HealthReport) -> str:
    """One row per venue and direction: the venue's levels now and its call and liquidation moves."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["venue", "direction", "margin_balance", "initial_margin", "maintenance_margin", "call_move",
                "liquidation_move", "breached_now_initial", "breached_now_maintenance"])
    for v in report.venues:
        for x in report.distances_at(v.venue):
            w.writerow([v.venue, x.direction.name, v.margin_balance, v.initial_margin, v.maintenance_margin,
                        "" if x.call.move is None else x.call.move, "" if x.liquidation.move is None else x.liquidation.move,
                        x.call.now, x.liquidation.now])
    return out.getvalue()
