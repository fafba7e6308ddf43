"""Where the run history is: ``--db``, else ``MARGINOPT_DB``, else a SQLite file in the user's data folder.

The default file is ``$XDG_DATA_HOME/marginopt/history.db`` (``~/.local/share/marginopt/history.db``
where ``XDG_DATA_HOME`` is not set), per user rather than per folder, so runs from anywhere land in one
history. ``--db`` (and ``MARGINOPT_DB``) take a file path (SQLite), ``sqlite:///PATH``, or
``postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` (a PostgreSQL server, through psycopg 3).
"""

from __future__ import annotations

import os
from pathlib import Path

from marginopt.errors import ArgumentError

ENV = "MARGINOPT_DB"
SCHEMES = ("sqlite", "postgresql")


def default_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "marginopt" / "history.db"


def resolve(db: str | None) -> str:
    """The SQLAlchemy URL of ``db``, of ``MARGINOPT_DB`` when ``db`` is None, else of the default file."""
    text = db if db is not None else os.environ.get(ENV) or None
    if text is None:
        return f"sqlite:///{default_path()}"
    text = text.strip()
    if not text:
        raise ArgumentError("db: expected a file path, sqlite:///PATH or postgresql://USER@HOST/DATABASE, got an empty text")
    scheme, sep, rest = text.partition("://")
    if not sep:  # a plain file path
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    base = scheme.split("+", 1)[0].lower()
    if base in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if base == "sqlite":
        return text
    raise ArgumentError(f"db: expected a file path, sqlite:///PATH or postgresql://USER@HOST/DATABASE, got the scheme {scheme}://")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or SQLite in memory)."""
    if not url.startswith("sqlite"):
        return None
    path = url.partition(":///")[2]
    return Path(path) if path and path != ":memory:" else None
