"""registry

The registry of AEO statuses and control results (docs/adr/0012-mutual-recognition.md): the
newest revision of each, its history, and what control results are looked up by, written in
the transaction of the message that carried each.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Trail indexes: 64 bits on PostgreSQL, INTEGER on SQLite (as in trail_entry)
_LEAF = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _aeo_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("aeo_id", sa.String(length=512), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("trail_index", _LEAF, autoincrement=False, nullable=False),
        sa.Column("tin", sa.String(length=512), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("programme", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("valid_from", sa.String(), nullable=False),
        sa.Column("valid_to", sa.String(), nullable=False),
        sa.Column("country_code", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
    ]


def _control_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("revision", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("trail_index", _LEAF, autoincrement=False, nullable=False),
        sa.Column("control_id", sa.String(), nullable=False),
        sa.Column("declaration_id", sa.String(), nullable=False),
        sa.Column("functional_reference_id", sa.String(), nullable=False),
        sa.Column("transport_document_id", sa.String(), nullable=False),
        sa.Column("container_ids", sa.String(), nullable=False),
        sa.Column("control_type", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("controlled_at", sa.String(), nullable=False),
        sa.Column("office_id", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
    ]


# The key columns come first, in their primary key's order, then the rest: SQLite 3.40's
# integrity_check (which every backup runs) reports the columns after a WITHOUT ROWID table's
# primary key as NULL when the key's columns are not its leading ones.


def upgrade() -> None:
    # new tables: nothing existing is copied or rewritten. What was received before is not
    # read into them: statuses and results already held enter the registry with their next
    # revision (ADR 0012)
    op.create_table(
        "aeo_registry",
        *_aeo_columns(),
        sa.PrimaryKeyConstraint("aeo_id", "party"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_aeo_registry_tin", "aeo_registry", ["tin"])
    op.create_index("ix_aeo_registry_party", "aeo_registry", ["party", "aeo_id", "revision"])
    op.create_table(
        "aeo_registry_history",
        *_aeo_columns(),
        sa.PrimaryKeyConstraint("aeo_id", "party", "revision", "trail_index"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_aeo_registry_history_tin", "aeo_registry_history", ["tin"])
    op.create_table(
        "control_registry",
        *_control_columns(),
        sa.PrimaryKeyConstraint("party", "key"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "control_registry_history",
        *_control_columns(),
        sa.PrimaryKeyConstraint("party", "key", "revision", "trail_index"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "control_registry_key",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", "party", "key"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_control_registry_key_control", "control_registry_key", ["party", "key"])


def downgrade() -> None:
    for table in (
        "control_registry_key",
        "control_registry_history",
        "control_registry",
        "aeo_registry_history",
        "aeo_registry",
    ):
        op.drop_table(table)
