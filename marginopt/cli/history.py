"""``marginopt history``: the stored runs (list, ``show ID``, ``migrate``), and ``--store`` / ``--db`` for the
commands that keep a run (margin, optimize, hedge, allocate, health)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, TextIO

import click

from marginopt.cli.keep import DB_HELP
from marginopt.cli.main import cli
from marginopt.errors import printable

if TYPE_CHECKING:
    from rich.console import Console

    from marginopt.history import Run, RunSummary

HISTORY_FORMATS = click.Choice(["table", "json"])


@cli.group(invoke_without_command=True)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs, latest first.")
@click.option("--case", "case", default=None,
              help="Only runs of this case: the first characters of its fingerprint, its name (description) or its file.")
@click.option("--db", default=None, help=DB_HELP)
@click.option("--format", "fmt", type=HISTORY_FORMATS, default="table", show_default=True)
@click.pass_context
def history(ctx: click.Context, limit: int, case: str | None, db: str | None, fmt: str) -> None:
    """The stored runs, latest first (`history show ID` prints one; `history migrate` updates a server's schema)."""
    ctx.obj = {"db": db}
    if ctx.invoked_subcommand is not None:
        return
    from marginopt.history import open_store

    store = open_store(db)
    runs = store.list(limit, case)
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in runs], indent=2, allow_nan=False))
        return
    _runs_table(runs, store.url, sys.stdout)


def _runs_table(runs: list[RunSummary], url: str, out: TextIO) -> None:
    """The listing as plain aligned text: a terminal table of 10,000 runs drawn by rich takes seconds, this
    takes milliseconds. The fingerprint, origin and objective are left to `history show` and --format json."""

    def money(x: float) -> str:  # as render.money (a stored amount is finite), without importing the renderers
        return f"{x:,.2f}"

    columns = (("id", True), ("time (UTC)", False), ("command", False), ("case", False), ("valuation", False),
               ("status", False), ("initial margin", True), ("after plan", True), ("verified", False))
    rows = [(str(r.id), r.created_at.strftime("%Y-%m-%d %H:%M:%S"), r.command, printable(r.case_name),
             r.valuation_date.isoformat(), r.status, money(r.total_initial_margin),
             "" if r.total_initial_margin_after is None else money(r.total_initial_margin_after),
             "" if r.verification_passed is None else "yes" if r.verification_passed else "no") for r in runs]
    widths = [max([len(name), *(len(row[k]) for row in rows)]) for k, (name, _) in enumerate(columns)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if right else c.ljust(w) for c, w, (_, right) in zip(cells, widths, columns)).rstrip()

    out.write(f"Runs in {url}\n")
    out.write(line(tuple(name for name, _ in columns)) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    out.write("".join(line(row) + "\n" for row in rows))
    if not runs:
        out.write("no runs stored yet: add --store to margin, optimize, hedge, allocate or health\n")


@history.command("show")
@click.argument("run_id", type=int)
@click.option("--db", default=None, help=DB_HELP)
@click.option("--format", "fmt", type=HISTORY_FORMATS, default="table", show_default=True)
@click.pass_context
def show(ctx: click.Context, run_id: int, db: str | None, fmt: str) -> None:
    """One stored run: its case, market, margins per venue and component, the plan, solver and verification."""
    from marginopt.history import open_store

    run = open_store(db if db is not None else (ctx.obj or {}).get("db")).get(run_id)
    if fmt == "json":
        click.echo(json.dumps(run.to_dict(), indent=2, allow_nan=False))
        return
    from marginopt.cli import render

    _run_tables(run, render.stdout_console())


def _run_tables(run: Run, console: Console) -> None:
    from rich.table import Table

    from marginopt.cli.render import money

    ccy = run.base_currency
    console.print(f"Run {run.id}: {run.command} ({run.origin}) at {run.created_at.isoformat(sep=' ')} UTC, marginopt {run.version}")
    console.print(f"command: {run.command_line}")
    console.print(f"case: {run.case.name} ({run.case.source}), fingerprint {run.case.fingerprint}, "
                  f"valuation date {run.valuation_date.isoformat()}, {ccy}")
    prices = ", ".join(f"{a} {p:,.6g}" for a, p in dict(run.market.get("prices") or {}).items())
    console.print(f"market: {prices}" + (f"; rate {run.market['rate']}" if "rate" in run.market else ""))
    margins = Table(title=f"Margin per venue ({ccy})", title_justify="left")
    for name in ("venue", "initial margin", "maintenance", "collateral value", "excess", "worst scenario"):
        margins.add_column(name, justify="left" if name in ("venue", "worst scenario") else "right")
    for m in run.margins:
        if m.stage == "now":
            margins.add_row(m.venue, money(m.initial_margin), money(m.maintenance_margin), money(m.collateral_value),
                            money(m.excess), m.worst_scenario or "-")
    console.print(margins)
    components = Table(title="Initial margin components", title_justify="left")
    for name in ("venue", "component", ccy):
        components.add_column(name, justify="right" if name == ccy else "left")
    for c in run.components:
        components.add_row(c.venue, c.component, money(c.amount))
    console.print(components)
    if run.objective is None and run.command == "margin" or run.command == "health":
        return
    console.print(f"plan: {run.status}, objective {run.objective} "
                  f"{'' if run.objective_value is None else money(run.objective_value)} {ccy}; "
                  f"solver {run.solver or '-'}; verification "
                  f"{'-' if run.verification_passed is None else 'passed' if run.verification_passed else 'failed'}"
                  f"{'' if run.max_violation is None else f' (largest violation {run.max_violation:.3g})'}")
    if run.hedges:
        hedges = Table(title="Hedges", title_justify="left")
        for name in ("venue", "instrument", "quantity", f"cost {ccy}"):
            hedges.add_column(name, justify="right" if name in ("quantity", f"cost {ccy}") else "left")
        for h in run.hedges:
            hedges.add_row(h.venue, h.instrument, f"{h.quantity:,.4f}", money(h.cost))
        console.print(hedges)
    if run.allocation:
        alloc = Table(title="Collateral after the plan", title_justify="left")
        for name in ("venue", "asset", "quantity", f"value {ccy}"):
            alloc.add_column(name, justify="right" if name in ("quantity", f"value {ccy}") else "left")
        for a in run.allocation:
            alloc.add_row(a.venue, a.asset, f"{a.quantity:,.4f}", money(a.value))
        console.print(alloc)
    after = run.margins_at("after")
    if after:
        im = Table(title=f"Initial margin before and after ({ccy})", title_justify="left")
        for name in ("venue", "before", "after"):
            im.add_column(name, justify="left" if name == "venue" else "right")
        for venue, m in run.margins_at("now").items():
            im.add_row(venue, money(m.initial_margin), money(after[venue].initial_margin) if venue in after else "-")
        console.print(im)


@history.command("migrate")
@click.option("--db", default=None, help=DB_HELP)
@click.pass_context
def migrate(ctx: click.Context, db: str | None) -> None:
    """Bring the history's schema to this marginopt's (Alembic upgrade head): once for a PostgreSQL server,
    after an upgrade of marginopt; a SQLite file does it itself when opened."""
    from marginopt.history import Store, resolve

    store = Store(resolve(db if db is not None else (ctx.obj or {}).get("db")), migrate=True)
    click.echo(f"{store.url}: schema at revision {store.revision()}")
