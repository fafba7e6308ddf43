"""Many accounts on Dask: each account's margin and plan, written as Parquet tables.

A local cluster (worker processes, one thread each: the solvers and the pricing kernel are
single-threaded per problem, so processes scale and threads would contend for the GIL) is
started and stopped here unless ``scheduler`` names a running one. Accounts go to the
workers in chunks so the scheduler's per-task cost is shared; each chunk returns its
accounts' results, and a worker lost mid-chunk marks those accounts failed, not the run.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from marginopt.batch.accounts import AccountJob, AccountResult, find_accounts, run_chunk
from marginopt.errors import MarginoptError, OptimizationError

TABLES = ("margins", "plan_margins", "hedges", "allocation")
MODES = ("optimize", "hedge", "allocate", "margin")


@dataclass(frozen=True)
class BatchRun:
    summary: pd.DataFrame  # one row per account, in input order
    seconds: float  # from the first task submitted to the last result (cluster start excluded)
    start_seconds: float  # starting (or connecting to) the cluster
    workers: int

    @property
    def accounts_per_second(self) -> float:
        return len(self.summary) / self.seconds if self.seconds > 0 else float("inf")


def _client(scheduler: str | None, workers: int | None) -> tuple[object, object | None]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MarginoptError("marginopt batch runs on Dask: install the distributed extra (pip install 'marginopt[distributed]')") from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError) as exc:
            raise MarginoptError(f"scheduler {scheduler!r}: could not connect ({exc}); expected the address of a running "
                                 "Dask scheduler (tcp://HOST:PORT), or none to start a local cluster") from None
    n = workers or os.cpu_count() or 1
    # Logs at CRITICAL only: an account's failure is in its result, and a worker's heartbeat
    # racing the shutdown prints a harmless CommClosedError otherwise.
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.CRITICAL)
    return Client(cluster), cluster


def run_batch(source: Path, out: Path, *, scheduler: str | None = None, workers: int | None = None, mode: str = "optimize",
              objective: str | None = None, solver: str | None = None, chunk: int | None = None,
              on_done: Callable[[int, int], None] | None = None) -> BatchRun:
    """Run every account of ``source`` (a folder of case files, or a case whose positions carry
    ``account``) and write ``out/summary.parquet`` and the tables of ``TABLES``.

    ``on_done(done, total)`` is called as accounts finish (a progress bar). A ``mode``, ``objective`` or
    ``solver`` that does not exist is refused here (``OptimizationError``, ``SolverError``), not once per account."""
    from marginopt.optimizer.choice import SolverChoice
    from marginopt.optimizer.objectives import objective_kind

    if mode not in MODES:
        raise OptimizationError(f"mode {mode!r}: expected one of {', '.join(MODES)}", argument="mode")
    if objective is not None:
        objective_kind(objective)
    SolverChoice.parse(solver)
    jobs = find_accounts(source)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    client, cluster = _client(scheduler, workers)
    try:
        n_workers = len(client.scheduler_info()["workers"])  # type: ignore[attr-defined]
        client.run(_warm)  # type: ignore[attr-defined]  # imports and the compiled kernel: counted as start, not per account
        started = time.perf_counter() - t0
        size = chunk or max(1, min(50, math.ceil(len(jobs) / (8 * max(n_workers, 1)))))
        chunks = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        t1 = time.perf_counter()
        results = _gather(client, chunks, mode, objective, solver, len(jobs), on_done)
        seconds = time.perf_counter() - t1
    finally:
        quiet = logging.getLogger("distributed")
        level, quiet.level = quiet.level, logging.CRITICAL  # the same race, on this side
        try:
            client.close()  # type: ignore[attr-defined]
            if cluster is not None:
                cluster.close()  # type: ignore[attr-defined]
        finally:
            quiet.setLevel(level)
    summary = _write(results, jobs, out)
    return BatchRun(summary, seconds, started, n_workers)


def _warm() -> None:
    import numba

    from marginopt.models import _kernels, load_case  # noqa: F401  (loads the kernel's compiled cache)
    from marginopt.optimizer import optimize  # noqa: F401

    numba.set_num_threads(1)


def _gather(client: object, chunks: list[list[AccountJob]], mode: str, objective: str | None, solver: str | None,
            total: int, on_done: Callable[[int, int], None] | None) -> dict[str, AccountResult]:
    from distributed import as_completed

    futures = {client.submit(run_chunk, c, mode, objective, solver, pure=False): c for c in chunks}  # type: ignore[attr-defined]
    results: dict[str, AccountResult] = {}
    for future in as_completed(futures):
        chunk = futures[future]
        try:
            for r in future.result():
                results[r.account] = r
        except Exception as exc:  # the worker died or the task could not run: its accounts fail, the run goes on
            for job in chunk:
                results[job.account] = AccountResult(job.account, "error", error=f"task failed on the cluster: {type(exc).__name__}: {exc}")
        if on_done is not None:
            on_done(len(results), total)
    return results


def _write(results: dict[str, AccountResult], jobs: list[AccountJob], out: Path) -> pd.DataFrame:
    ordered = [results[j.account] for j in jobs]
    summary = pd.DataFrame([r.summary() for r in ordered])
    summary.to_parquet(out / "summary.parquet", index=False)
    for name in TABLES:
        frames = [r.tables[name] for r in ordered if name in r.tables and not r.tables[name].empty]
        if frames:
            pd.concat(frames, ignore_index=True).to_parquet(out / f"{name}.parquet", index=False)
        elif (out / f"{name}.parquet").exists():
            (out / f"{name}.parquet").unlink()  # a stale table from an earlier run would be read as this run's
    return summary
