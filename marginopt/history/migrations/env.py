"""Alembic's environment for the run history: migrates the connection ``store.migrate`` hands over
(``config.attributes["connection"]``), or, run by the ``alembic`` command with an ini file, the
``sqlalchemy.url`` it names. SQLite alters tables by copy (batch mode)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from marginopt.history.schema import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()
