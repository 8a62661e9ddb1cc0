"""certificate history

Every trust anchor and signing certificate a configuration of this hub named, kept from the
first start or reload that used it, so that a trail export carries the certificates of
configurations long replaced (docs/rotation.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a new table: nothing existing is copied or rewritten; the next start fills it with what
    # the configuration names then
    op.create_table(
        "certificate_history",
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("certificate", sa.LargeBinary(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("party", "role", "digest"),
    )


def downgrade() -> None:
    op.drop_table("certificate_history")
