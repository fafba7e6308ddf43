"""``marginopt explain A B``: each venue's initial margin change between two runs (or case files), in pieces."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from marginopt.cli.keep import DB_HELP
from marginopt.cli.main import REPORT_OPTION, _write_html, cli

if TYPE_CHECKING:
    from rich.console import Console

    from marginopt.history import Run, Store
    from marginopt.models.document import CaseDocument
    from marginopt.models.explain import Explanation, Side, Split


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--db", default=None, help=DB_HELP + " Where RUN ids are looked up.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@REPORT_OPTION
def explain(a: str, b: str, db: str | None, fmt: str, report_file: Path | None) -> None:
    """Each venue's initial margin change from A to B, split into the valuation date, market moves (per
    underlying), other prices and the rate, the price history, positions, collateral posted, the venue model
    and haircuts: sequentially in that order, and by Shapley (every order averaged). A and B are run ids of
    the history (marginopt history) or case files; the pieces add up to the change."""
    from marginopt.models.explain import explain as explain_change

    opened: list[Store] = []  # the history, opened only when A or B is a run id

    def run(run_id: int) -> Run:
        from marginopt.history import open_store

        if not opened:
            opened.append(open_store(db))
        return opened[0].get(run_id)

    doc_a, side_a, stored_a = _side(a, run)
    doc_b, side_b, stored_b = _side(b, run)
    result = explain_change(doc_a, doc_b, side_a, side_b)
    notes = list(result.notes)
    for which, stored in (("A", stored_a), ("B", stored_b)):
        if stored is None:
            continue
        got = result.total["initial_margin"].a if which == "A" else result.total["initial_margin"].b
        if abs(got - stored) > 1e-9 * max(1.0, abs(stored)):
            notes.append(f"{which}'s stored total initial margin {stored:,.2f} differs from the margin recomputed now "
                         f"({got:,.2f}): the pieces explain the recomputed margins")
    result = dataclasses.replace(result, notes=tuple(notes))
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        from marginopt.cli import render

        explain_tables(result, render.stdout_console())
    if report_file is not None:
        from marginopt.reports.explain import explain_html

        _write_html(report_file, explain_html(result))


def _side(text: str, get_run: Callable[[int], Run]) -> tuple[CaseDocument, Side, float | None]:
    """A run id of the history, or a case file: its document, how it is named, its stored total IM."""
    from marginopt.models.explain import Side

    if text.isdigit() and not Path(text).exists():
        run = get_run(int(text))
        label = f"run {run.id} ({run.case.name}, {run.command} at {run.created_at.isoformat(sep=' ', timespec='seconds')} UTC)"
        return run.case.as_document(), Side(label, run.valuation_date.isoformat(), run.case.fingerprint, run.id), \
            run.total_initial_margin
    from marginopt.models.document import case_document

    doc = case_document(Path(text))
    return doc, Side(text, str(doc.data.get("valuation_date")), doc.fingerprint), None


def explain_tables(e: Explanation, console: Console) -> None:
    from rich.table import Table

    from marginopt.cli.render import money

    ccy = e.base_currency
    console.print(f"A: {e.a.label}, valuation date {e.a.valuation_date}")
    console.print(f"B: {e.b.label}, valuation date {e.b.valuation_date}")
    summary = Table(title=f"Initial margin, A to B ({ccy})", title_justify="left")
    for name in ("venue", "A", "B", "change", "order matters"):
        summary.add_column(name, justify="left" if name in ("venue", "order matters") else "right")
    for v in e.venues:
        s = v.initial_margin
        summary.add_row(v.venue, money(s.a), money(s.b), money(s.change), _matters(e, s))
    t = e.total["initial_margin"]
    summary.add_row("total", money(t.a), money(t.b), money(t.change), _matters(e, t), end_section=True)
    console.print(summary)
    if not e.factors:
        console.print("A and B agree on every factor: nothing to split")
        return
    for method in ("sequential", "shapley"):
        title = ("Sequential: each factor taken from B in this order" if method == "sequential"
                 else "Shapley: each factor's piece averaged over every order")
        table = Table(title=f"{title} ({ccy})", title_justify="left")
        table.add_column("factor")
        for v in e.venues:
            table.add_column(v.venue, justify="right")
        table.add_column("total", justify="right")
        splits = [v.initial_margin for v in e.venues] + [t]
        for f in e.factors:
            table.add_row(f.label, *(_piece(s, method, f.key) for s in splits))
        table.add_row("change", *(money(s.change) for s in splits), end_section=True)
        console.print(table)
    moved = [v for v in e.venues if v.collateral_value.change != 0.0]
    if moved:
        table = Table(title=f"Credited collateral value, A to B, sequential ({ccy})", title_justify="left")
        table.add_column("factor")
        for v in moved:
            table.add_column(v.venue, justify="right")
        for f in e.factors:
            table.add_row(f.label, *(money(v.collateral_value.sequential[f.key]) for v in moved))
        table.add_row("change", *(money(v.collateral_value.change) for v in moved), end_section=True)
        console.print(table)
    for v in e.venues:
        for note in v.notes:
            console.print(f"{v.venue}: {note}")
    for note in e.notes:
        console.print(f"note: {note}")
    console.print(f"pieces add up to each change within {1e-9:g} relative (largest gap "
                  f"{max(abs(s.residual) for s in [*(v.initial_margin for v in e.venues), t]):.3g} {ccy}); "
                  f"{e.states_evaluated} cases margined")


def _piece(s: Split, method: str, key: str) -> str:
    from marginopt.cli.render import money

    if method == "shapley":
        return "-" if s.shapley is None else money(s.shapley[key])
    return money(s.sequential[key])


def _matters(e: Explanation, s: Split) -> str:
    if s.shapley is None:
        return "not computed"
    return "yes" if s.order_matters(e.tolerance(s)) else "no"
