"""The run history: every margin report and plan a command or the service was asked to keep.

``open_store(db)`` opens it (``location``: ``--db``, ``MARGINOPT_DB`` or the default SQLite file);
``records.new_run`` builds a run from what a command computed; ``Store.add`` / ``list`` / ``get``.
SQLite rather than DuckDB for the embedded file: it ships with Python (nothing to install), keeps a
run in one small transaction (the workload is one run written, a few read, not scans over columns),
lets several processes write one file (the service and a command line; DuckDB opens a file for
writing in one process only), and is SQLAlchemy's and Alembic's own dialect.
"""

from __future__ import annotations

from marginopt.history.location import default_path, resolve
from marginopt.history.records import Run, RunSummary, new_run
from marginopt.history.store import Store


def open_store(db: str | None = None) -> Store:
    """The history at ``db`` (a path or URL), else at ``MARGINOPT_DB``, else at the default file."""
    return Store(resolve(db))


__all__ = ["Run", "RunSummary", "Store", "default_path", "new_run", "open_store", "resolve"]
