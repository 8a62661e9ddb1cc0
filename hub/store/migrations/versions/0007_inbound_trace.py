"""inbound trace

Every inbound message may keep the trace context of its ``receive`` span (a W3C traceparent,
55 characters), so that handing it to a domestic system later is traced under the same trace
(docs/telemetry.md). NULL when telemetry was off as it was received.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a nullable column without a default: SQLite adds it in place (ALTER TABLE ADD COLUMN),
    # PostgreSQL without rewriting the table; neither copies the inbound messages
    with op.batch_alter_table("inbound_message") as batch:
        batch.add_column(sa.Column("trace", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_message") as batch:
        batch.drop_column("trace")
