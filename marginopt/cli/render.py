"""Rendering results for people (aligned tables) and programs (JSON, CSV)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from marginopt.models.report import MarginReport


def money(x: float | None) -> str:
    return "" if x is None else f"{x:,.2f}"


def margin_json(report: MarginReport) -> str:
    return json.dumps(report.to_dict(), indent=2)


def margin_csv(report: MarginReport) -> str:
    return report.to_frame().to_csv(index=False)


def margin_table(report: MarginReport, console: Console, title: str = "") -> None:
    ccy = report.base_currency
    head = f"Margin report{' - ' + title if title else ''} ({ccy}, valuation date {report.valuation_date})"
    summary = Table(title=head, title_justify="left", header_style="bold")
    summary.add_column("venue")
    for col in ("initial margin", "maintenance", "collateral value", "excess"):
        summary.add_column(col, justify="right")
    summary.add_column("worst scenario")
    for v in report.venues:
        style = "red" if v.excess < 0 else ""
        summary.add_row(
            v.venue, money(v.initial_margin), money(v.maintenance_margin), money(v.collateral_value),
            f"[{style}]{money(v.excess)}[/{style}]" if style else money(v.excess), v.worst_scenario or "-",
        )
    summary.add_section()
    summary.add_row("total", money(report.total_initial_margin), "", money(sum(v.collateral_value for v in report.venues)),
                    money(sum(v.excess for v in report.venues)), "")
    console.print(summary)
    short = [v for v in report.venues if v.excess < 0]
    for v in short:
        console.print(f"[red]{v.venue} is short of collateral by {money(-v.excess)} {ccy}[/red]")
    for v in report.venues:
        _venue_detail(v, ccy, console)


def _venue_detail(v: Any, ccy: str, console: Console) -> None:
    comp = Table(title=f"{v.venue}: initial margin", title_justify="left", header_style="bold")
    comp.add_column("component")
    comp.add_column(ccy, justify="right")
    for name, value in v.components.items():
        comp.add_row(name, money(value))
    console.print(comp)
    if v.worst_scenario is not None:
        console.print(f"worst scenario: {v.worst_scenario} (weighted loss {money(v.worst_scenario_loss)} {ccy})", soft_wrap=True)
    if not v.convex:
        console.print("includes historical VaR: not convex; the optimizer bounds it by expected shortfall", soft_wrap=True)
    if not v.collateral:
        console.print(f"{v.venue}: no collateral posted")
        return
    col = Table(title=f"{v.venue}: collateral posted", title_justify="left", header_style="bold")
    col.add_column("asset")
    for c in ("quantity", "gross value", "after haircut", "credited"):
        col.add_column(c, justify="right")
    for c in v.collateral:
        col.add_row(c.asset, f"{c.quantity:,.10g}", money(c.gross_value), money(c.value_after_haircut), money(c.credited_value))
    console.print(col)


def stdout_console() -> Console:
    # A fixed width off a terminal keeps piped output aligned and unwrapped.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120, soft_wrap=False)
