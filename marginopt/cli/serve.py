"""``marginopt serve``: the HTTP service and its desk page (needs the ``service`` extra)."""

from __future__ import annotations

import copy
import os

import click

from marginopt.cli.keep import DB_HELP
from marginopt.cli.main import cli


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; the default takes connections from this machine only.")
@click.option("--max-body-mb", type=click.FloatRange(min=0.001), default=8.0, show_default=True,
              help="Largest request body, in MiB; larger is refused with 413.")
@click.option("--read-timeout", type=click.FloatRange(min=0.001), default=30.0, show_default=True,
              help="Seconds a request's body may take to arrive after its headers; then 408 and the connection is closed.")
@click.option("--solve-timeout", type=click.FloatRange(min=0.001), default=30.0, show_default=True,
              help="Seconds a request's solve may take (queueing included); then 504 (or 503 if it never started).")
@click.option("--solve-threads", type=click.IntRange(min=1), default=min(4, os.cpu_count() or 1), show_default=True,
              help="Solves run at once, each on its own thread.")
@click.option("--max-pending", type=click.IntRange(min=1), default=512, show_default=True,
              help="Requests queued or solving at once; more are refused with 503.")
@click.option("--max-scenario-cells", type=click.IntRange(min=1), default=25_000_000, show_default=True,
              help="Largest scenario-loss matrix a request may ask for (scenarios x instruments, 8 bytes each); more is 422.")
@click.option("--db", default=None, help=DB_HELP + " Every margin, health and plan request is stored there.")
@click.option("--no-store", is_flag=True, help="Keep no run in the history (the desk page's history tables stay empty).")
def serve(port: int, host: str, max_body_mb: float, read_timeout: float, solve_timeout: float, solve_threads: int,
          max_pending: int, max_scenario_cells: int, db: str | None, no_store: bool) -> None:
    """Serve the HTTP API (POST /v1/margin, /v1/health, /v1/optimize, /v1/hedge, /v1/whatif, /v1/route; GET /health,
    /v1/history, /openapi.json) and the desk page at /. Every margin, health and plan request is kept in the run
    history (--db)."""
    try:
        import uvicorn

        from marginopt.service.app import Settings, create_app
    except ImportError as exc:
        raise click.ClickException(f"marginopt serve needs the service extra ({exc.name} is missing): "
                                   "pip install 'marginopt[service]'") from None
    settings = Settings(max_body_bytes=int(max_body_mb * 2**20), read_timeout_s=read_timeout, solve_timeout_s=solve_timeout,
                        solve_threads=solve_threads, max_pending=max_pending, max_scenario_cells=max_scenario_cells,
                        db=db, store_runs=not no_store)
    # Access lines go to stderr like the rest of the log: a solver silences stdout (file descriptor 1)
    # while it runs, which would drop them.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    app = create_app(settings)
    kept = f"; runs kept in {app.state.store.url}" if app.state.store is not None else "; no run kept"
    click.echo(f"marginopt service: the desk page at /, the API spec at /openapi.json{kept}", err=True)
    uvicorn.run(app, host=host, port=port, log_config=log_config)
