"""Self-checks on each version, and draft versions whose checks never passed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_versions") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="ready"))
        batch.add_column(sa.Column("checks", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("check_results", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("replaced_checks", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("check_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_versions") as batch:
        for column in ("check_seconds", "replaced_checks", "check_results", "checks", "state"):
            batch.drop_column(column)
