"""learned signing key

Partners' signing certificates learned from the certificate a signature carried while the
partner rotated its key (docs/adr/0010-key-rotation.md), kept so that a restarted hub trusts
them as before and a trail export can verify what they signed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a new table: nothing existing is copied or rewritten
    op.create_table(
        "learned_signing_key",
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("certificate", sa.LargeBinary(), nullable=False),
        sa.Column("certificate_digest", sa.LargeBinary(), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("party", "key_id"),
    )


def downgrade() -> None:
    op.drop_table("learned_signing_key")
