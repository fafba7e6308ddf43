"""The run history's tables, in SQLAlchemy Core: one schema for the SQLite file and PostgreSQL.

- ``cases``: each distinct case once, by fingerprint: its document (the case as JSON, tables inline:
  enough to re-run it), the files a measure reads with their digests, where it was read from.
- ``runs``: one row per run: when (UTC), which command from where (``cli`` or ``service``) and its
  command line, the case's fingerprint, name and valuation date, the status, totals, objective, solver
  and verification. What ``marginopt history`` lists comes from this table alone.
- ``run_margins``: per venue, the margin report of the case as it is (``stage`` ``now``: IM, MM,
  collateral value, excess, worst scenario) and, for a plan, IM after it (``after``).
- ``run_components``: per venue, each initial margin component (``now``).
- ``run_hedges``, ``run_allocation``: a plan's hedges and collateral allocation.
- ``run_documents``: the market (prices, vols, rate) and the command's whole JSON answer.

JSON is kept as text written by ``json.dumps``, not as a JSON column type: the document reads back
byte for byte the same from either database (PostgreSQL's ``jsonb`` reorders keys, and a case's venue
order is its report's order). Times are naive UTC. ``HEAD`` is the Alembic revision this schema is;
``tests/test_history.py`` checks it is the migrations' head and that they build exactly these tables.
"""

from __future__ import annotations

import sqlalchemy as sa

HEAD = "0001"  # the migration (migrations/versions/) that builds this schema

metadata = sa.MetaData()

cases = sa.Table(
    "cases", metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("files", sa.Text, nullable=False),
    sa.Column("first_stored", sa.DateTime, nullable=False),
)

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("command_line", sa.Text, nullable=False),
    sa.Column("case_fingerprint", sa.String(64), sa.ForeignKey("cases.fingerprint"), nullable=False, index=True),
    sa.Column("case_name", sa.Text, nullable=False, index=True),
    sa.Column("valuation_date", sa.Date, nullable=False),
    sa.Column("base_currency", sa.String(16), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("total_initial_margin", sa.Double, nullable=False),
    sa.Column("total_initial_margin_after", sa.Double),
    sa.Column("objective", sa.String(32)),
    sa.Column("objective_value", sa.Double),
    sa.Column("solver", sa.Text),
    sa.Column("build_seconds", sa.Double),
    sa.Column("solve_seconds", sa.Double),
    sa.Column("verification_passed", sa.Boolean),
    sa.Column("max_violation", sa.Double),
    sa.Column("version", sa.String(32), nullable=False),
)


def _child(name: str, *columns: sa.Column) -> sa.Table:  # type: ignore[type-arg]
    return sa.Table(
        name, metadata,
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),  # the row's order in the run
        *columns,
    )


run_margins = _child(
    "run_margins",
    sa.Column("stage", sa.String(8), nullable=False),  # now | after
    sa.Column("venue", sa.Text, nullable=False),
    sa.Column("initial_margin", sa.Double, nullable=False),
    sa.Column("maintenance_margin", sa.Double),
    sa.Column("collateral_value", sa.Double),
    sa.Column("excess", sa.Double),
    sa.Column("worst_scenario", sa.Text),
)
run_components = _child(
    "run_components",
    sa.Column("venue", sa.Text, nullable=False),
    sa.Column("component", sa.Text, nullable=False),
    sa.Column("amount", sa.Double, nullable=False),
)
run_hedges = _child(
    "run_hedges",
    sa.Column("venue", sa.Text, nullable=False),
    sa.Column("instrument", sa.Text, nullable=False),
    sa.Column("quantity", sa.Double, nullable=False),
    sa.Column("cost", sa.Double),
)
run_allocation = _child(
    "run_allocation",
    sa.Column("venue", sa.Text, nullable=False),
    sa.Column("asset", sa.Text, nullable=False),
    sa.Column("quantity", sa.Double, nullable=False),
    sa.Column("value", sa.Double),
)
run_documents = sa.Table(
    "run_documents", metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("market", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
)
