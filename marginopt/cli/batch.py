"""``marginopt batch``: many accounts' margins and plans on Dask."""

from __future__ import annotations

from pathlib import Path

import click

from marginopt.cli.main import _progress, cli
from marginopt.optimizer.objectives import objective_names


@cli.command()
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for summary.parquet and the tables.")
@click.option("--scheduler", default=None, help="A running Dask scheduler (tcp://HOST:PORT); default: a local cluster started here.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes of the local cluster (default: one per core).")
@click.option("--mode", type=click.Choice(["optimize", "hedge", "allocate", "margin"]), default="optimize", show_default=True,
              help="What to run per account: a plan as the commands of the same name, or margin only.")
@click.option("--objective", type=click.Choice(objective_names()), default=None, help="Overrides each case's objective.")
@click.option("--solver", default=None, help="Force a solver or formulation, as for optimize.")
@click.option("--chunk", type=click.IntRange(min=1), default=None, help="Accounts per task (default: about 8 tasks per worker, at most 50).")
def batch(source: Path, out: Path, scheduler: str | None, workers: int | None, mode: str, objective: str | None,
          solver: str | None, chunk: int | None) -> None:
    """Margin and a verified plan for every account of INPUT: a folder of case files (one account
    each) or a case whose positions carry an account column. Writes OUT/summary.parquet (account,
    status, total_initial_margin, objective_value, error, and for an executable plan its relative gap,
    whether it is proven optimal and the continuous optimum, ...) and margins, plan_margins, hedges
    and allocation tables; an account that fails is reported there and the others go on."""
    from marginopt.batch import find_accounts, run_batch

    total = len(find_accounts(source))  # bad input is refused here, before a cluster starts
    with _progress(total, "batch") as step:
        step("starting the cluster")
        last = [0]

        def done(n: int, total: int) -> None:
            for _ in range(n - last[0]):  # the bar advances once per account
                step(f"{n}/{total} accounts")
            last[0] = n

        run = run_batch(source, out, scheduler=scheduler, workers=workers, mode=mode, objective=objective, solver=solver,
                        chunk=chunk, on_done=done)
    s = run.summary
    counts = ", ".join(f"{k} {v}" for k, v in s.status.value_counts().items())
    click.echo(f"{len(s)} accounts on {run.workers} worker{'s' if run.workers != 1 else ''}: {counts}; "
               f"{run.accounts_per_second:.1f} accounts/s ({run.seconds:.1f} s, cluster start {run.start_seconds:.1f} s); "
               f"wrote {out / 'summary.parquet'}")
    executable = s[s.proven_optimal.notna()]
    if len(executable):
        unproven = executable[executable.proven_optimal != True]  # noqa: E712  (a column of objects)
        click.echo(f"{len(executable)} executable plan{'s' if len(executable) != 1 else ''}: "
                   f"{len(executable) - len(unproven)} proven optimal, largest relative gap {executable.relative_gap.max():.3g}"
                   + (f"; not proven optimal: {', '.join(map(str, unproven.account))}" if len(unproven) else ""))
    if (s.status == "error").any():
        first = s[s.status == "error"].iloc[0]
        click.echo(f"first error: account {first.account}: {first.error}", err=True)
