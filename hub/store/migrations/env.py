"""Alembic's entry point: run the migrations on the connection hub/store/migrate.py hands over.

A developer writing a new revision runs Alembic itself against a scratch SQLite file::

    alembic -c hub/store/migrations/alembic.ini revision --autogenerate -m "what changes"

after ``alembic ... upgrade head`` on that file; ``sqlalchemy.url`` in alembic.ini names it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import hub.store.schema  # noqa: F401 - registers the tables on SQLModel.metadata


def run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=SQLModel.metadata,
        # SQLite changes a table by copying it (ALTER TABLE does little there); Alembic's
        # batch mode writes that copy, and runs plain ALTERs on PostgreSQL
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    # a developer's `alembic` command, on the URL of alembic.ini
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        run(conn)


if getattr(context, "config", None) is not None:  # run by Alembic, not imported by a test
    main()
