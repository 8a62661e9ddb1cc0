"""inbound envelope

Every inbound message keeps its envelope exactly as received, signatures included, so what a
partner signed can be verified later (`customs-hub trail verify --messages`). Messages stored
before this revision have none (NULL): their signatures were never kept.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 17:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a nullable column without a default: SQLite adds it in place (ALTER TABLE ADD COLUMN),
    # PostgreSQL without rewriting the table; neither copies the inbound messages
    with op.batch_alter_table("inbound_message") as batch:
        batch.add_column(sa.Column("envelope", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_message") as batch:
        batch.drop_column("envelope")
