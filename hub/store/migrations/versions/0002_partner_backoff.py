"""partner backoff

The outbox's wait for a partner whose stream failed, kept across restarts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 15:48:43.192689
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_backoff",
        sa.Column("partner", sa.String(length=16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=False),
        sa.PrimaryKeyConstraint("partner"),
    )


def downgrade() -> None:
    op.drop_table("partner_backoff")
