"""The run history: ``Store(url)`` opens it, ``add`` keeps a run, ``list`` and ``get`` read them back.

One layer for both databases (SQLAlchemy Core over ``schema``): the embedded SQLite file, which needs
nothing installed or started and migrates itself to the current schema on open, and PostgreSQL for a
team (``postgresql://...``), which is migrated on purpose (``marginopt history migrate --db URL``,
Alembic's ``upgrade head``) by whoever looks after the server; a server behind the schema is refused
with that command in the message. SQLite runs in WAL mode with a busy timeout, so the service's solver
threads and a command line can write one file at once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from marginopt.errors import NotFoundError, StoreError
from marginopt.history import schema as t
from marginopt.history.location import sqlite_file
from marginopt.history.records import (
    AllocationRow,
    ComponentRow,
    HedgeRow,
    Run,
    RunSummary,
    StoredCase,
    VenueMarginRow,
    dumps,
)

BUSY_TIMEOUT_MS = 10_000
_SUMMARY = (t.runs.c.id, t.runs.c.created_at, t.runs.c.command, t.runs.c.origin, t.runs.c.case_name, t.runs.c.case_fingerprint,
            t.runs.c.valuation_date, t.runs.c.status, t.runs.c.total_initial_margin, t.runs.c.total_initial_margin_after,
            t.runs.c.objective_value, t.runs.c.verification_passed)


class Store:
    """A run history at a SQLAlchemy URL (``location.resolve`` makes one of ``--db``)."""

    def __init__(self, url: str, *, migrate: bool | None = None) -> None:
        """Open the store; ``migrate``: bring the schema to the current one (default: SQLite yes, a server no)."""
        path = sqlite_file(url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{url}: cannot create the folder {path.parent} ({exc.strerror or exc}); "
                                 "give another file with --db or MARGINOPT_DB") from None
        try:
            self.engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000} if path else {})
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            raise StoreError(f"{url.split('://')[0]}: no driver for this database ({exc}); a PostgreSQL store needs "
                             "the history-server extra: pip install 'marginopt[history-server]'") from None
        except sa.exc.ArgumentError as exc:
            raise StoreError(f"--db: not a database URL ({exc})") from None
        self.url = self.engine.url.render_as_string(hide_password=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._ensure_schema(path is not None if migrate is None else migrate)

    # -- schema ------------------------------------------------------------------------------
    def revision(self) -> str | None:
        """The schema's Alembic revision, None for a database never migrated."""
        with self._connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
            return None if row is None else str(row[0])

    def migrate(self) -> str:
        """Bring the schema to ``schema.HEAD`` with Alembic (``upgrade head``); returns the revision."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", "marginopt.history:migrations")
        try:
            with self.engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.url}: the migration failed: {_reason(exc)}") from None
        return self.revision() or ""

    def _ensure_schema(self, migrate: bool) -> None:
        current = self.revision()
        if current == t.HEAD:
            return
        if current is not None and current > t.HEAD:
            raise StoreError(f"{self.url}: the history's schema is at revision {current}, newer than this marginopt's "
                             f"({t.HEAD}): upgrade marginopt")
        if migrate:
            self.migrate()
            return
        raise StoreError(f"{self.url}: the history's schema is at revision {current or 'none (never migrated)'}, this "
                         f"marginopt needs {t.HEAD}: run `marginopt history migrate --db URL` once")

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sa.Connection]:
        try:
            with (self.engine.begin() if write else self.engine.connect()) as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StoreError(f"{self.url}: {_reason(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()

    # -- writing -----------------------------------------------------------------------------
    def add(self, run: Run) -> int:
        """Store ``run`` (its case once per fingerprint); returns its id."""
        return self.add_many([run])[0]

    def add_many(self, runs: Iterable[Run]) -> list[int]:
        """Store several runs in one transaction; their ids in order."""
        ids = []
        with self._connect(write=True) as conn:
            for run in runs:
                ids.append(self._insert(conn, run))
        return ids

    def _insert(self, conn: sa.Connection, run: Run) -> int:
        case = run.case
        known = conn.execute(sa.select(t.cases.c.fingerprint).where(t.cases.c.fingerprint == case.fingerprint)).first()
        if known is None:  # a case is written once (its document is most of a run's bytes); a writer racing this one
            insert = _insert_ignoring_duplicates(conn)  # with the same case leaves its row, equal to this one
            conn.execute(insert(t.cases).values(fingerprint=case.fingerprint, name=case.name, source=case.source,
                                                document=dumps(case.document), files=dumps(dict(case.files)),
                                                first_stored=run.created_at))
        row = {c.name: getattr(run, c.name) for c in t.runs.columns if c.name not in ("id", "case_fingerprint", "case_name")}
        row.update(case_fingerprint=case.fingerprint, case_name=case.name)
        key = conn.execute(sa.insert(t.runs).values(**row)).inserted_primary_key
        assert key is not None
        run_id = int(key[0])
        for table, items in ((t.run_margins, run.margins), (t.run_components, run.components), (t.run_hedges, run.hedges),
                             (t.run_allocation, run.allocation)):
            if items:
                conn.execute(sa.insert(table), [{"run_id": run_id, "position": i, **vars(x)} for i, x in enumerate(items)])
        conn.execute(sa.insert(t.run_documents).values(run_id=run_id, market=dumps(run.market), result=dumps(run.result)))
        return run_id

    # -- reading -----------------------------------------------------------------------------
    def list(self, limit: int | None = 20, case: str | None = None) -> list[RunSummary]:
        """The latest runs first; ``case``: a fingerprint's first characters, a case name, or a case file."""
        query = sa.select(*_SUMMARY).order_by(t.runs.c.id.desc())
        if case is not None:
            query = query.where(_case_filter(case))
        if limit is not None:
            query = query.limit(limit)
        with self._connect() as conn:
            return [RunSummary(**row._asdict()) for row in conn.execute(query)]

    def get(self, run_id: int) -> Run:
        """The run ``run_id`` as stored; a ``NotFoundError`` for an id the history does not have."""
        with self._connect() as conn:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
            if row is None:
                last = conn.execute(sa.select(sa.func.max(t.runs.c.id))).scalar()
                raise NotFoundError(f"run {run_id}: not in the history at {self.url} "
                                    f"({'no runs yet' if last is None else f'its runs are numbered up to {last}'})")
            case = conn.execute(sa.select(t.cases).where(t.cases.c.fingerprint == row["case_fingerprint"])).mappings().one()
            docs = conn.execute(sa.select(t.run_documents).where(t.run_documents.c.run_id == run_id)).mappings().one()

            def children(table: sa.Table, kind: type) -> tuple[Any, ...]:
                rows = conn.execute(sa.select(table).where(table.c.run_id == run_id).order_by(table.c.position)).mappings()
                return tuple(kind(**{k: v for k, v in r.items() if k not in ("run_id", "position")}) for r in rows)

            fields = {k: v for k, v in row.items() if k not in ("case_fingerprint", "case_name")}
            return Run(**fields,
                       case=StoredCase(case["fingerprint"], case["name"], case["source"], json.loads(case["document"]),
                                       json.loads(case["files"])),
                       market=json.loads(docs["market"]), result=json.loads(docs["result"]),
                       margins=children(t.run_margins, VenueMarginRow), components=children(t.run_components, ComponentRow),
                       hedges=children(t.run_hedges, HedgeRow), allocation=children(t.run_allocation, AllocationRow))

    def latest(self, case_name: str | None = None, before: dt.datetime | None = None,
               since: dt.datetime | None = None) -> Run | None:
        """The newest run (of the case named ``case_name``) stored before ``before`` and at or after ``since``."""
        query = sa.select(t.runs.c.id).order_by(t.runs.c.id.desc()).limit(1)
        if case_name is not None:
            query = query.where(t.runs.c.case_name == case_name)
        if before is not None:
            query = query.where(t.runs.c.created_at < before)
        if since is not None:
            query = query.where(t.runs.c.created_at >= since)
        with self._connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else self.get(int(found))

    def count(self) -> int:
        with self._connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.runs)).scalar() or 0)


def _case_filter(case: str) -> sa.ColumnElement[bool]:
    from pathlib import Path

    sources = [case]
    try:
        if Path(case).exists():
            sources.append(str(Path(case).resolve()))
    except OSError:
        pass
    by_source = t.runs.c.case_fingerprint.in_(sa.select(t.cases.c.fingerprint).where(t.cases.c.source.in_(sources)))
    clauses: list[sa.ColumnElement[bool]] = [t.runs.c.case_name == case, by_source]
    if len(case) >= 4 and all(c in "0123456789abcdef" for c in case.lower()):
        clauses.append(t.runs.c.case_fingerprint.startswith(case.lower()))
    return sa.or_(*clauses)


def _insert_ignoring_duplicates(conn: sa.Connection) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the connection's dialect: a case already stored stays."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return lambda table: pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return lambda table: sqlite_insert(table).on_conflict_do_nothing()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers and one writer at once: the service and a command line
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL's safe setting: a power cut may lose the last runs, never the file
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _reason(exc: sa.exc.SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def venues_of(runs: Sequence[Run | None], stage: str = "now") -> list[str]:
    """The venues of ``runs`` in order of first appearance."""
    return list(dict.fromkeys(m.venue for r in runs if r is not None for m in r.margins if m.stage == stage))
