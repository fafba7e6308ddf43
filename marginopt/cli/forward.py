"""``marginopt forward``: each venue's margins, margin balance and margin calls day by day along drawn paths."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from marginopt.cli.main import FORMATS, REPORT_OPTION, _write_html, cli

if TYPE_CHECKING:
    from rich.console import Console

    from marginopt.health.forward import ForwardReport


def _levels(value: str) -> tuple[float, ...]:
    try:
        out = tuple(float(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected levels between 0 and 1 separated by commas (0.05,0.5,0.95)") from None
    if not out or not all(0.0 <= x <= 1.0 for x in out):
        raise click.BadParameter(f"{value!r}: expected levels between 0 and 1 separated by commas (0.05,0.5,0.95)")
    return tuple(sorted(set(out)))


@cli.command()
@click.argument("case", type=click.Path(path_type=Path))
@click.option("--days", type=click.IntRange(min=1), default=10, show_default=True,
              help="Horizon in calendar days (day 0, today, is reported too).")
@click.option("--paths", type=click.IntRange(min=1), default=10_000, show_default=True, help="Price paths drawn.")
@click.option("--model", type=click.Choice(["historical", "monte_carlo"]), default=None,
              help="Where the paths come from: market.history's daily returns, bootstrapped in blocks, or lognormal "
              "daily steps at market.vols [default: historical where the case has a history, else monte_carlo].")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the draws.")
@click.option("--block", type=click.IntRange(min=1), default=None,
              help="historical: consecutive days per block [default: the horizon, each path one window of history; "
              "1: single days].")
@click.option("--quantiles", "levels", default="0.05,0.5,0.95,0.99", show_default=True,
              help="Quantile levels reported, comma-separated.")
@click.option("--venue", "venues", multiple=True, help="Only this venue (repeatable); default: every venue.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@REPORT_OPTION
def forward(case: Path, days: int, paths: int, model: str | None, seed: int, block: int | None, levels: str,
            venues: tuple[str, ...], fmt: str, report_file: Path | None) -> None:
    """Forward margin (dynamic IM): on paths drawn from the case's historical or Monte Carlo model, the book
    re-priced day by day (options decay, futures converge, expiries settle into the balance) and re-margined
    at every venue; per day the quantiles of initial margin, margin balance and margin-call amount, and the
    probability of a call and of liquidation (CASE_FORMAT.md, Forward margin)."""
    from marginopt.errors import ArgumentError, CaseError, Location
    from marginopt.health.forward import forward_report
    from marginopt.models import load_case

    quantiles = _levels(levels)
    if model == "monte_carlo" and block is not None:
        raise click.BadParameter("only with --model historical", param_hint="--block")
    loaded = load_case(case)
    for v in venues:
        if v not in loaded.venues:
            raise CaseError(Location(case), "--venue", f"a venue of the case ({', '.join(loaded.venues)})", v)
    try:
        report = forward_report(loaded, model=model, paths=paths, days=days, seed=seed, block=block, quantiles=quantiles,
                                venues=venues or None)
    except ArgumentError as exc:
        raise click.BadParameter(str(exc)) from None
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    elif fmt == "csv":
        click.echo(forward_csv(report), nl=False)
    else:
        from marginopt.cli.render import stdout_console

        forward_table(report, stdout_console(), loaded.description)
    if report_file is not None:
        from marginopt.reports.health import forward_html

        _write_html(report_file, forward_html(report, title=loaded.description))


def _tag(level: float) -> str:
    return f"p{100 * level:g}"


def forward_table(report: ForwardReport, console: Console, title: str = "") -> None:
    """Per venue, per day: the side of each distribution that hurts (IM and the call amount from the median
    up, the balance from the median down) and the probabilities; JSON and CSV give every quantile."""
    from rich.table import Table

    p = report.paths
    head = (f"Forward margin{' - ' + title if title else ''} ({report.base_currency}; {p.n_paths:,} {p.model} paths of "
            f"{p.days} days from {report.valuation_date}, seed {p.seed})")
    console.print(head)
    console.print(f"paths: {p.source}; {report.states:,} market states re-margined per venue in {report.seconds:.2f} s")
    qs = report.quantiles
    high = [k for k, x in enumerate(qs) if x >= 0.5]
    low = [k for k, x in enumerate(qs) if x <= 0.5]
    for v in report.venues:
        t = Table(title=f"{v.venue}" + (f" ({v.note})" if v.note else ""), title_justify="left", header_style="bold")
        cols = (["day", "date"] + [f"IM {_tag(qs[k])}" for k in high] + [f"balance {_tag(qs[k])}" for k in low]
                + [f"call {_tag(qs[k])}" for k in high if qs[k] > 0.5] + ["P(call)", "P(liq.)"])
        for c in cols:
            t.add_column(c, justify="left" if c in ("day", "date") else "right")
        im, bal, call = (report.levels(v, x) for x in ("initial_margin", "margin_balance", "call_amount"))
        pc, pl = v.call_probability(), v.liquidation_probability()
        for d in range(report.days + 1):
            t.add_row(str(d), report.date(d).strftime("%m-%d"), *(f"{im[k, d]:,.0f}" for k in high),
                      *(f"{bal[k, d]:,.0f}" for k in low), *(f"{call[k, d]:,.0f}" for k in high if qs[k] > 0.5),
                      f"{pc[d]:.2%}", f"{pl[d]:.2%}")
        console.print(t)
        for d, instrument in v.expiries:
            console.print(f"  {instrument} settles on day {d} ({report.date(d)}) and leaves the book")


def forward_csv(report: ForwardReport) -> str:
    """One row per venue and day: every quantile of each level, then the probabilities."""
    from marginopt.health.forward import LEVELS

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["venue", "day", "date", *(f"{level}_{_tag(x)}" for level in LEVELS for x in report.quantiles),
                "call_probability", "liquidation_probability"])
    for v in report.venues:
        q = {level: report.levels(v, level) for level in LEVELS}
        pc, pl = v.call_probability(), v.liquidation_probability()
        for d in range(report.days + 1):
            w.writerow([v.venue, d, report.date(d).isoformat(), *(float(q[level][k, d]) for level in LEVELS
                                                                  for k in range(len(report.quantiles))),
                        float(pc[d]), float(pl[d])])
    return out.getvalue()
