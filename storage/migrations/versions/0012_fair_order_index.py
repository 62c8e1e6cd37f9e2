"""Runs: an index on (requested_by, started_at), so a free slot finds whose turn it is (each
user's last start, bot.services.fairness) without reading every run

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_user_started", "runs", ["requested_by", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_user_started", table_name="runs")
