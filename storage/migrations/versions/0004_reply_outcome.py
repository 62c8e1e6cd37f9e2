"""Run messages: an update that ended for good (Slack's error), and the back-off of one that
failed for now, so neither is retried in a storm nor holds up other runs' updates

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("reply_error", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reply_retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("reply_attempts", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for column in ("reply_attempts", "reply_retry_at", "reply_error"):
            batch.drop_column(column)
