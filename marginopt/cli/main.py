"""The ``marginopt`` command line."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from marginopt import formats as outside
from marginopt.cli.keep import Keep, keep, store_options
from marginopt.errors import CaseError, InfeasibleError, MarginoptError, printable
from marginopt.optimizer.choice import SolverChoice
from marginopt.optimizer.objectives import objective_names

FORMATS = click.Choice(["table", "json", "csv"])
SOURCES = click.Choice(["case", *outside.format_names()])  # what CASE is: a case file, or a file of an outside format
SOURCE_HELP = "What CASE is: a marginopt case file, or a venue's snapshot: " + "; ".join(
    f"{f.name}, {f.description}" for f in outside.formats()) + "."


EXIT_USAGE = 2  # bad input, or a plan asked for that cannot be computed as asked (an unknown or unfit solver)
EXIT_INFEASIBLE = 3  # no plan exists: the case says what is short (InfeasibleError, or a plan's status)
EXIT_FAILED = 4  # no verified plan was found
EXIT_INTERNAL = 70  # a bug


class _Group(click.Group):
    """Turns marginopt errors into one clear line and an exit code, never a traceback: 3 for
    ``InfeasibleError``, 2 for every other (``CaseError``, ``OptimizationError``, ``SolverError``, ...)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MarginoptError as exc:
            click.echo(f"error: {printable(self._message(ctx, exc))}", err=True)  # one line, whatever the input's characters
            ctx.exit(EXIT_INFEASIBLE if isinstance(exc, InfeasibleError) else EXIT_USAGE)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug, not bad input: say so, keep the trace for --debug
            if ctx.params.get("debug"):
                traceback.print_exc()
            click.echo(f"internal error: {type(exc).__name__}: {exc} (please report it; --debug shows the trace)", err=True)
            ctx.exit(EXIT_INTERNAL)

    def _message(self, ctx: click.Context, exc: MarginoptError) -> str:
        """The library's message, which names the call's argument at fault (``argument``: ``solver``),
        and the option of the command that sets it, where the command has one."""
        argument = getattr(exc, "argument", None)
        command = self.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
        flags = [p.opts[0] for p in (command.params if command else ()) if p.name == argument and isinstance(p, click.Option)]
        return f"{exc} (option {flags[0]})" if flags else str(exc)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show the Python traceback of an internal error.")
@click.version_option(package_name="marginopt")
def cli(debug: bool) -> None:
    """Margin per venue, scenario matrices, and verified margin-minimizing plans for a case file."""


@contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr for work over many venues; invisible off a terminal."""
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(what, total=total)
        started = False

        def step(name: str) -> None:
            nonlocal started
            if started:
                bar.advance(task)
            started = True
            bar.update(task, description=f"{what}: {name}")

        yield step


def _check_report(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """--report FILE.html: checked before any work, so a mistyped folder does not cost a whole run."""
    if value is None:
        return None
    if not value.parent.is_dir():
        raise click.BadParameter(f"the folder {value.parent} does not exist", ctx, param)
    from marginopt.reports import require_plots

    require_plots()
    return value


REPORT_OPTION = click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                             callback=_check_report, help="Also write a self-contained HTML report (tables and charts) "
                             "to this file; needs the plots extra (matplotlib).")


def _write_html(report_file: Path, text: str) -> None:
    from marginopt.reports import write_report

    try:
        write_report(report_file, text)
    except CaseError as exc:
        raise exc.renamed("--report") from None
    click.echo(f"wrote the HTML report to {report_file}", err=True)


def _report(path: Path, fmt: str, title: str, report_file: Path | None = None, kept: Keep | None = None) -> None:
    from marginopt.cli import render
    from marginopt.models import load_case, margin_report

    case = load_case(path)
    with _progress(len(case.venues), "margin") as step:
        report = margin_report(case, on_venue=step)
    if kept is not None:
        kept.add(path, report, "margin")
    if fmt == "json":
        click.echo(render.margin_json(report))
    elif fmt == "csv":
        click.echo(render.margin_csv(report), nl=False)
        for note in report.notes:  # a CSV table has no place for them
            click.echo(f"note: {note}", err=True)
    else:
        render.margin_table(report, render.stdout_console(), title or case.description)
    if report_file is not None:
        from marginopt.reports import margin_html

        _write_html(report_file, margin_html(report, case, title=title))


@cli.command()
@click.argument("case", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--from", "source", type=SOURCES, default="case", show_default=True, help=SOURCE_HELP)
@REPORT_OPTION
@store_options
def margin(case: Path, fmt: str, source: str, report_file: Path | None, store: bool, db: str | None) -> None:
    """Initial and maintenance margin, components, collateral and excess per venue."""
    kept = keep(store, db, source)
    if source != "case":
        _snapshot_report(outside.get_format(source), case, fmt, report_file)
        return
    _report(case, fmt, "", report_file, kept)


def _snapshot_report(reader: outside.OutsideFormat, path: Path, fmt: str, report_file: Path | None = None) -> None:
    """A venue's snapshot priced as the venue does, by its format's reader."""
    import json

    from marginopt.cli import render

    result = reader.margin(path)
    if report_file is not None:
        from marginopt.reports import margin_html
        from marginopt.reports.data import largest

        worst = {venue: largest(labels, losses, 10) for venue, (labels, losses) in result.scenarios.items()}
        _write_html(report_file, margin_html(result.report, title=result.title, worst=worst))
    if fmt == "json":
        click.echo(json.dumps(result.document, indent=2))
    elif fmt == "csv":
        click.echo(render.margin_csv(result.report), nl=False)
    else:
        render.margin_table(result.report, render.stdout_console(), result.title)
        render.stdout_console().print(result.summary)


@cli.command()
@click.argument("case", type=click.Path(path_type=Path))
@click.option("--venue", required=True, help="Venue whose scenario matrix to export.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output .parquet or .csv file.")
@click.option("--set", "set_index", type=int, default=None, help="Which scenario set (1-based) when the venue has several.")
def scenarios(case: Path, venue: str, out: Path, set_index: int | None) -> None:
    """Export a venue's scenario-loss matrix: scenario, group, weight, then one column per instrument."""
    from marginopt.errors import Location
    from marginopt.models import VenueBook, load_case
    from marginopt.models.margin import scenario_specs

    loaded = load_case(case)
    if venue not in loaded.venues:
        raise CaseError(Location(case), "--venue", f"one of {', '.join(loaded.venues)}", venue)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise CaseError(None, "--out", "a file name ending in .parquet or .csv", str(out))
    book = VenueBook(loaded, venue)
    specs: list = []
    for measure in book.venue.measure_specs():
        specs += [s for s in scenario_specs(measure) if s not in specs]
    if not specs:
        raise CaseError(Location(case), f"venues.{venue}", "a margin measure that uses a scenario set", "none")
    if set_index is None and len(specs) > 1:
        listed = "; ".join(f"{i + 1}: {s.kind}" for i, s in enumerate(specs))
        raise CaseError(None, "--set", f"which scenario set to export ({listed})", None)
    k = (set_index or 1) - 1
    if not 0 <= k < len(specs):
        raise CaseError(None, "--set", f"a number from 1 to {len(specs)}", set_index)
    with _progress(1, "scenarios") as step:
        step(venue)
        losses = book.scenarios(specs[k])
    frame = losses.to_frame()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    n_s, n_j = losses.shape
    click.echo(f"wrote {n_s} scenarios x {n_j} instruments ({losses.source}) to {out}", err=True)


PLAN_FORMATS = click.Choice(["table", "json"])


def _plan(path: Path, mode: str, objective: str | None, solver: str | None, fmt: str, out: Path | None,
          report_file: Path | None = None, mip_gap: float | None = None, time_limit: float | None = None,
          kept: Keep | None = None, details: bool = False) -> None:
    from marginopt.cli import render
    from marginopt.models import load_case
    from marginopt.optimizer import optimize

    case = load_case(path)
    with _progress(1, mode) as step:
        step("building and solving")
        result = optimize(case, objective=objective, solver=solver, mode=mode, mip_gap=mip_gap, time_limit=time_limit)
    if fmt == "json":
        doc = result.to_dict(details)
        if render.unexplained(result):  # where to look: the case's largest amounts
            doc["largest_amounts"] = render.largest_amounts(case)
        click.echo(render.plan_json(doc))
    else:
        render.plan_table(result, case.base_currency, render.stdout_console())
        if render.unexplained(result):
            render.largest_amounts_table(case, render.stdout_console())
    if out is not None and result.succeeded:
        out.mkdir(parents=True, exist_ok=True)
        for name in ("hedges", "allocation", "margins"):
            result.table(name).to_csv(out / f"{name}.csv", index=False)
            result.table(name).to_parquet(out / f"{name}.parquet", index=False)
        if result.attribution is not None:
            result.attribution.to_csv(out / "attribution.csv", index=False)
        click.echo(f"wrote hedges, allocation, margins (.csv and .parquet) and attribution.csv to {out}", err=True)
    if report_file is not None:  # also for a plan that failed: the page says why, beside the book as it is
        from marginopt.reports import plan_html

        _write_html(report_file, plan_html(result, case))
    if kept is not None:  # a plan that failed is a run too: what was asked and why it failed
        from marginopt.models import margin_report

        kept.add(path, margin_report(case), mode, result.to_dict())
    if result.status == "infeasible":
        raise SystemExit(EXIT_INFEASIBLE)
    if not result.succeeded:  # a feasible plan (verified, not proven optimal) exits 0: its status says so
        raise SystemExit(EXIT_FAILED)


def _plan_command(mode: str, doc: str) -> None:
    @cli.command(name=mode, help=doc)
    @click.argument("case", type=click.Path(path_type=Path))
    @click.option("--objective", type=click.Choice(objective_names()), default=None,
                  help="Overrides the case's objective.")
    @click.option("--solver", type=click.Choice([c.value for c in SolverChoice], case_sensitive=False), default=None,
                  help="Force a solver (HIGHS, CLARABEL, ECOS, OSQP) or a formulation: SCENARIO (the large-scenario "
                  "solver, chosen by itself at any size when the problem is a min_margin hedge over ES or scenario "
                  "maximum margins), GENERATE (scenario generation in the whole problem, chosen by itself from 20,000 "
                  "scenarios otherwise) or FULL (every scenario in one program).")
    @click.option("--format", "fmt", type=PLAN_FORMATS, default="table", show_default=True)
    @click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder for the plan as CSV and Parquet tables.")
    @click.option("--from", "source", type=SOURCES, default="case", show_default=True,
                  help=SOURCE_HELP + " A snapshot runs as the case " + " or ".join(
                      f.case_command for f in outside.formats()) + " writes.")
    @REPORT_OPTION
    @click.option("--mip-gap", type=click.FloatRange(min=0.0, max=1.0), default=None,
                  help="Relative gap at which an executable plan (a case with lot sizes, minimum trades or transfers, "
                  "move or ticket caps, rounding) is called optimal (default 1e-6).")
    @click.option("--time-limit", type=click.FloatRange(min=0.0, min_open=True), default=None,
                  help="Seconds HiGHS's branch and bound may run for an executable plan (default 60); at the limit "
                  "the best plan found is shown with its gap and status feasible (verified, not proven optimal).")
    @click.option("--details", is_flag=True, help="JSON: add each limit's value, use and worth (limits) and the excess "
                  "after the plan, shortfalls and surpluses apart (excess); the table always shows them.")
    @store_options
    def command(case: Path, objective: str | None, solver: str | None, fmt: str, out: Path | None, source: str,
                report_file: Path | None, mip_gap: float | None, time_limit: float | None, details: bool, store: bool,
                db: str | None) -> None:
        kept = keep(store, db, source)
        if source != "case":
            import tempfile

            with tempfile.TemporaryDirectory(prefix=f"marginopt-{source}-") as folder:
                _plan(outside.get_format(source).write_case(case, Path(folder)), mode, objective, solver, fmt, out, report_file,
                      mip_gap, time_limit, details=details)
            return
        _plan(case, mode, objective, solver, fmt, out, report_file, mip_gap, time_limit, kept, details)


_plan_command("optimize", "Margin-minimizing hedges and collateral allocation across venues, verified. "
              "Exits 3 when no plan exists (saying what is short), 4 when no verified plan was found.")
_plan_command("hedge", "Hedges only: collateral stays as posted.")
_plan_command("allocate", "Collateral allocation only: no hedges.")


def _case_command(fmt: outside.OutsideFormat) -> None:
    """The command writing a case from a snapshot of format ``fmt``, its options the writer's."""

    def command(snapshot: Path, out: Path, **options: Any) -> None:
        path = fmt.write_case(snapshot, out, **options)
        click.echo(f"wrote {path} (instruments, positions and hedges beside it); run: marginopt hedge {path}", err=True)

    for option in reversed(fmt.case_options):  # click applies decorators bottom-up: keep the declared order
        flag = "--" + option.name.replace("_", "-")
        if isinstance(option.default, bool):
            command = click.option(flag, option.name, is_flag=True, default=option.default, help=option.help)(command)
        elif isinstance(option.default, float):
            command = click.option(flag, option.name, type=click.FloatRange(min=option.minimum), default=option.default,
                                   show_default=True, help=option.help)(command)
        else:
            command = click.option(flag, option.name, default=option.default, show_default=True, help=option.help)(command)
    command = click.option("--out", "out", required=True, type=click.Path(path_type=Path),
                           help="Folder for case.yaml, its tables and a copy of the snapshot.")(command)
    command = click.argument("snapshot", type=click.Path(path_type=Path))(command)
    cli.command(name=fmt.case_command, help=fmt.case_help)(command)


for _format in outside.formats():
    _case_command(_format)


@cli.command()
@click.argument("case", type=click.Path(path_type=Path))
@click.option("--trade", "trades", required=True, multiple=True,
              help="VENUE:INSTRUMENT:QTY, once per leg: all legs are traded together (a spread, a strategy). "
                   "With --route the route chooses the venue: write each leg :INSTRUMENT:QTY (a venue is refused).")
@click.option("--route", is_flag=True, help="Trade every leg together at each venue that lists all their instruments "
              "(held there, a hedge candidate there, or under its lists:), least incremental margin first.")
@click.option("--format", "fmt", type=PLAN_FORMATS, default="table", show_default=True)
def whatif(case: Path, trades: tuple[str, ...], route: bool, fmt: str) -> None:
    """Initial and maintenance margin and excess per venue before and after a trade of one or more legs
    (or where to route it)."""
    import json

    from marginopt.cli import render
    from marginopt.errors import Location
    from marginopt.models import load_case
    from marginopt.models.magnitude import gross_value_error, require_finite, trade_quantity
    from marginopt.optimizer import Leg, route_legs, what_if_legs

    legs = []
    for trade in trades:
        parts = trade.split(":")
        if len(parts) != 3:
            raise CaseError(None, "--trade", "VENUE:INSTRUMENT:QTY with a number for QTY", trade)
        if route and parts[0]:  # a venue the route would overrule: refused, never silently dropped
            raise CaseError(None, "--trade", f"with --route a leg without a venue, :{parts[1]}:{parts[2]}: the route chooses "
                            f"the venue (leave out --route to price the trade at {parts[0]})", trade)
        if not route and not parts[0]:
            raise CaseError(None, "--trade", f"a venue for the leg in {parts[1]}, VENUE:{parts[1]}:{parts[2]}, or --route "
                            "to have the route choose one", trade)
        legs.append(Leg(parts[1], trade_quantity(parts[2], None, "--trade QTY"), parts[0] or None))
    loaded = load_case(case)
    for leg, trade in zip(legs, trades, strict=True):  # a trade's gross value obeys the bound a position's does
        if leg.instrument in loaded.instruments:
            too_big = gross_value_error(leg.quantity, loaded.instruments[leg.instrument], loaded.market.prices,
                                        loaded.market.base_currency)
            if too_big is not None:
                raise CaseError(None, "--trade QTY", "a trade " + too_big.removeprefix("a position "), trade)
    try:
        results = route_legs(loaded, legs) if route else [what_if_legs(loaded, legs)]
    except CaseError as exc:
        raise _trade_error(exc, trades) from None
    said = ", ".join(f"{leg.quantity:g} {leg.instrument}" for leg in legs)
    for w in results:  # never a non-finite margin on screen: the guard on QTY should make this unreachable
        for v in w.venues:
            for name, amount in (("margin before", v.initial_before), ("margin after", v.initial_after),
                                 ("maintenance margin after", v.maintenance_after), ("excess after", v.excess_after)):
                require_finite(amount, Location(case), f"--trade ({v.venue} {name})", f"the trade of {said}")
    if fmt == "json":
        click.echo(json.dumps([w.to_dict() for w in results], indent=2))
        return
    console = render.stdout_console()
    render.what_if_table(results, loaded.base_currency, console, routed=route)
    if route:
        console.print(f"route to {results[0].venue}: it adds the least margin ({render.money(results[0].incremental)} "
                      f"{loaded.base_currency})")


def _trade_error(exc: CaseError, trades: tuple[str, ...]) -> CaseError:
    """A what-if error about the call's ``legs`` (``legs.I.venue``) as the command line says it: the
    ``--trade`` as written, and which of its parts."""
    head, _, rest = exc.field.partition(".")
    if head != "legs":
        return exc
    index, _, part = rest.partition(".")
    if not index.isdigit() or int(index) >= len(trades):
        return exc.renamed("--trade")
    return exc.renamed(f"--trade {trades[int(index)]}" + (f" ({part})" if part else ""))


@cli.command()
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def demo(fmt: str) -> None:
    """The embedded demo (a crypto desk on three venues): its margin report, then the optimized plan."""
    from marginopt import demo_case_path

    path = demo_case_path()
    if fmt == "table":
        click.echo(f"demo case: {path}")
        _report(path, fmt, "")
        click.echo("")
        _plan(path, "optimize", None, None, "table", None)
    else:
        _report(path, fmt, "")


from marginopt.cli import batch as _batch  # noqa: E402, F401  (registers marginopt batch)
from marginopt.cli import explain as _explain  # noqa: E402, F401  (registers marginopt explain)
from marginopt.cli import forward as _forward  # noqa: E402, F401  (registers marginopt forward)
from marginopt.cli import health as _health  # noqa: E402, F401  (registers marginopt health)
from marginopt.cli import history as _history  # noqa: E402, F401  (registers marginopt history)
from marginopt.cli import imports as _imports  # noqa: E402, F401  (registers marginopt import)
from marginopt.cli import serve as _serve  # noqa: E402, F401  (registers marginopt serve)


def main() -> None:
    cli(prog_name="marginopt")


if __name__ == "__main__":
    main()
