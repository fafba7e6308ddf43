"""``--store`` and ``--db`` of the commands that keep a run (margin, optimize, hedge, allocate, health)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from marginopt.history import Store

DB_HELP = ("Run history: a file path (SQLite), sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DATABASE; default "
           "MARGINOPT_DB, else ~/.local/share/marginopt/history.db ($XDG_DATA_HOME/marginopt/history.db).")


@dataclass(frozen=True)
class Keep:
    """Where a command keeps its run, opened before the work so a bad --db costs nothing."""

    store: Store

    def add(self, case_path: Path, report: Any, command: str, result: Mapping[str, Any] | None = None) -> int:
        from marginopt.history import new_run
        from marginopt.models.document import case_document

        line = "marginopt " + shlex.join(sys.argv[1:])
        run_id = self.store.add(new_run(case_document(case_path), report, command, "cli", line, result))
        click.echo(f"stored as run {run_id} in {self.store.url}", err=True)
        return run_id


def keep(store: bool, db: str | None, source: str = "case") -> Keep | None:
    """The store --store (or --db) asks for, open; None when the run is not kept."""
    if not store and db is None:
        return None
    if source != "case":
        from marginopt.errors import CaseError

        raise CaseError(None, "--store", "a case file (--from case): a snapshot is kept once written as a case "
                        "(marginopt derive-case)", f"--from {source}")
    from marginopt.history import open_store

    return Keep(open_store(db))


def store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--db", default=None, help=DB_HELP + " Implies --store.")(command)
    return click.option("--store", is_flag=True, help="Keep this run in the run history (marginopt history).")(command)
