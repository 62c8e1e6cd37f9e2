"""Cost of every version and run, and the usage ledger budgets are checked against

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_versions") as batch:
        batch.add_column(sa.Column("check_cpu_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
        batch.add_column(sa.Column("response_mode", sa.String(16), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cpu_seconds", sa.Float(), nullable=True))
    op.create_table(
        "usage_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("task_id", sa.String(36), nullable=True),
        sa.Column("version_number", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("model", sa.String(100), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("model_requests", sa.Integer(), nullable=False),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint("run_id", name=op.f("uq_usage_events_run_id")),
    )
    op.create_index("ix_usage_events_team_at", "usage_events", ["team_id", "at"])
    op.create_index("ix_usage_events_team_user_at", "usage_events", ["team_id", "user_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_usage_events_team_user_at", table_name="usage_events")
    op.drop_index("ix_usage_events_team_at", table_name="usage_events")
    op.drop_table("usage_events")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cpu_seconds")
    with op.batch_alter_table("task_versions") as batch:
        for column in ("response_mode", "cost_usd", "check_cpu_seconds"):
            batch.drop_column(column)
