"""The accounts of a batch run, and one account's margin and plan.

An account is either a case file of its own (a folder of case files) or the rows of one
case's positions that carry its ``account`` name. A job names only a path and an account,
so it travels to a worker cheaply; the worker loads each case file once per process and
keeps it (``_cached``), then takes the account's rows.
"""

from __future__ import annotations

import dataclasses
import resource
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marginopt.errors import MarginoptError
from marginopt.models.case import Case, load_case

CASE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class AccountJob:
    account: str
    path: str  # the case file, absolute
    rows: bool  # True: the account is the rows of the case's positions named ``account``


def find_accounts(source: Path) -> list[AccountJob]:
    """A folder: one account per case file (named by the file's stem). A case file: one account
    per distinct ``account`` of its positions."""
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in CASE_SUFFIXES and p.is_file())
        if not files:
            raise MarginoptError(f"{source}: no case files (*.yaml, *.yml) in this folder")
        stems = [p.stem for p in files]
        if len(set(stems)) != len(stems):
            raise MarginoptError(f"{source}: two case files share a name ({', '.join(sorted({s for s in stems if stems.count(s) > 1}))})")
        return [AccountJob(p.stem, str(p.resolve()), False) for p in files]
    if not source.is_file():
        raise MarginoptError(f"{source}: expected a case file or a folder of case files, and there is neither")
    case = load_case(source)
    accounts = case.positions.accounts
    if not accounts:
        raise MarginoptError(f"{source}: the case has no positions, so no account to run")
    return [AccountJob(a, str(source.resolve()), True) for a in accounts]


@lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int) -> Case:
    return load_case(path)


@lru_cache(maxsize=8)
def _rows_by_account(path: str, mtime_ns: int) -> dict[str, np.ndarray]:
    """Row numbers of each account in the case's positions, in file order: found once per case
    file, not once per account (a scan of every row per account made 2,000 accounts of 50
    positions cost 23 ms each instead of 8)."""
    accounts = _cached(path, mtime_ns).positions.account
    rows: dict[str, list[int]] = {}
    for i, a in enumerate(accounts):
        rows.setdefault(a, []).append(i)
    return {a: np.array(r, dtype=np.intp) for a, r in rows.items()}


def account_case(job: AccountJob) -> Case:
    mtime_ns = Path(job.path).stat().st_mtime_ns
    case = _cached(job.path, mtime_ns)
    if not job.rows:
        return case
    keep = _rows_by_account(job.path, mtime_ns).get(job.account, np.zeros(0, dtype=np.intp))
    return dataclasses.replace(case, positions=case.positions.rows(keep))


@dataclass
class AccountResult:
    """One account's row of the summary and its tables (each with an ``account`` column)."""

    account: str
    status: str  # optimal | feasible | infeasible | failed (the optimizer's) | margin (mode margin) | error
    total_initial_margin: float | None = None
    total_initial_margin_after: float | None = None
    objective_value: float | None = None
    error: str | None = None
    # An executable plan (a case with execution terms): HiGHS's relative gap at the plan, whether it is
    # proven optimal within the gap asked for, and the continuous optimum (its lower bound); None otherwise.
    relative_gap: float | None = None
    proven_optimal: bool | None = None
    status_detail: str | None = None  # proven, or what stopped the search and the gap left (a feasible plan)
    continuous_objective_value: float | None = None
    seconds: float = 0.0
    worker_peak_mib: float = 0.0  # the worker process's peak resident memory when the account finished
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"account": self.account, "status": self.status, "total_initial_margin": self.total_initial_margin,
                "total_initial_margin_after": self.total_initial_margin_after, "objective_value": self.objective_value,
                "error": self.error, "relative_gap": self.relative_gap, "proven_optimal": self.proven_optimal,
                "status_detail": self.status_detail,
                "continuous_objective_value": self.continuous_objective_value, "seconds": self.seconds,
                "worker_peak_mib": self.worker_peak_mib}


def run_account(job: AccountJob, mode: str, objective: str | None, solver: str | None) -> AccountResult:
    """Margin, and unless ``mode`` is ``margin`` the verified plan, of one account. Any error is
    caught and reported in the result: one bad account must not stop the others."""
    from marginopt.models.book import VenueBook
    from marginopt.models.report import venue_margin

    t0 = time.perf_counter()
    out = AccountResult(job.account, "error")
    try:
        case = account_case(job)
        if mode == "margin":
            books = [VenueBook(case, v) for v in case.venues]
            out.status = "margin"
        else:
            result, books = _optimize(case, objective, solver, mode)
            out.status, out.objective_value = result.status, result.objective_value
            cert = result.certificate
            if cert is not None and "proven_optimal" in cert:  # an executable plan
                out.relative_gap, out.proven_optimal = float(cert["relative_gap"]), bool(cert["proven_optimal"])
                out.status_detail = result.status_detail
            if result.executability is not None:
                out.continuous_objective_value = result.executability.continuous_value
        venues = [venue_margin(b) for b in books]  # the books the plan was built on: scenarios priced once
        out.total_initial_margin = float(sum(v.initial_margin for v in venues))
        out.tables["margins"] = _tagged(pd.DataFrame({
            "venue": [v.venue for v in venues], "initial_margin": [v.initial_margin for v in venues],
            "maintenance_margin": [v.maintenance_margin for v in venues], "collateral_value": [v.collateral_value for v in venues],
            "excess": [v.excess for v in venues], "worst_scenario": [v.worst_scenario for v in venues],
            "worst_scenario_loss": [v.worst_scenario_loss for v in venues]}), job.account)
        if mode != "margin":
            if result.succeeded:
                out.total_initial_margin_after = float(result.margins["after"].sum())
                for name in ("hedges", "allocation"):
                    out.tables[name] = _tagged(result.table(name), job.account)  # as the plan shows them (snapped)
                out.tables["plan_margins"] = _tagged(result.margins, job.account)
            elif result.status == "infeasible":
                out.error = "; ".join(f"{name} short by {amount:,.6g}" for name, amount in result.shortfalls)
            else:
                out.error = "no verified plan: " + "; ".join(f"{a.solver} {a.status.value} {a.note}".strip()
                                                             for a in result.solver.attempts)
    except MarginoptError as exc:
        out.status, out.error = "error", str(exc)
    except Exception as exc:  # a bug, not bad input: reported per account with where it happened
        where = traceback.extract_tb(exc.__traceback__)[-1]
        out.status, out.error = "error", f"internal error {type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})"
    out.seconds = time.perf_counter() - t0
    out.worker_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return out


def _optimize(case: Case, objective: str | None, solver: str | None, mode: str) -> tuple[Any, list[Any]]:
    """The plan and the venue books it was built on. With no solver forced, the large-scenario
    solver where it applies: for an account's small hedge program it is about twice as fast
    as compiling it in cvxpy (benchmarks/batch.py), and its plan is verified like any other."""
    from marginopt.optimizer.api import run
    from marginopt.optimizer.problem import MarginProblem

    problem = MarginProblem(case, objective, mode, solver=solver)
    return run(problem), [part.book for part in problem.parts]


def run_chunk(jobs: list[AccountJob], mode: str, objective: str | None, solver: str | None) -> list[AccountResult]:
    """Several accounts in one task: the scheduler's cost per task is then shared. A worker is
    one process per core, so the pricing kernel runs on one thread: on an account's small
    matrix, starting threads cost more than they save."""
    import numba

    numba.set_num_threads(1)
    return [run_account(j, mode, objective, solver) for j in jobs]


def _tagged(frame: pd.DataFrame, account: str) -> pd.DataFrame:
    out = frame.copy()
    out.insert(0, "account", account)
    return out
