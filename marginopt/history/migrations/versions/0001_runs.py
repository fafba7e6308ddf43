"""The run history: cases, runs, per-venue margins and components, plan hedges and allocation, documents.

Revision ID: 0001
Revises:
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _child(name: str, *columns: sa.Column) -> None:  # type: ignore[type-arg]
    op.create_table(
        name,
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        *columns,
    )


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("first_stored", sa.DateTime, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("command_line", sa.Text, nullable=False),
        sa.Column("case_fingerprint", sa.String(64), sa.ForeignKey("cases.fingerprint"), nullable=False),
        sa.Column("case_name", sa.Text, nullable=False),
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
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_case_fingerprint", "runs", ["case_fingerprint"])
    op.create_index("ix_runs_case_name", "runs", ["case_name"])
    _child("run_margins",
           sa.Column("stage", sa.String(8), nullable=False),
           sa.Column("venue", sa.Text, nullable=False),
           sa.Column("initial_margin", sa.Double, nullable=False),
           sa.Column("maintenance_margin", sa.Double),
           sa.Column("collateral_value", sa.Double),
           sa.Column("excess", sa.Double),
           sa.Column("worst_scenario", sa.Text))
    _child("run_components",
           sa.Column("venue", sa.Text, nullable=False),
           sa.Column("component", sa.Text, nullable=False),
           sa.Column("amount", sa.Double, nullable=False))
    _child("run_hedges",
           sa.Column("venue", sa.Text, nullable=False),
           sa.Column("instrument", sa.Text, nullable=False),
           sa.Column("quantity", sa.Double, nullable=False),
           sa.Column("cost", sa.Double))
    _child("run_allocation",
           sa.Column("venue", sa.Text, nullable=False),
           sa.Column("asset", sa.Text, nullable=False),
           sa.Column("quantity", sa.Double, nullable=False),
           sa.Column("value", sa.Double))
    op.create_table(
        "run_documents",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("market", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in ("run_documents", "run_allocation", "run_hedges", "run_components", "run_margins", "runs", "cases"):
        op.drop_table(name)
