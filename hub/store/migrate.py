"""The store's schema revisions (Alembic): which one a database is at, and bringing it to the
code's (hub/store/migrations/versions, one file a revision).

Every function here takes a synchronous SQLAlchemy connection (``AsyncConnection.run_sync``
hands one over) and runs in the caller's transaction; ``Database`` in hub/store/engine.py
calls them. Only ``upgrade`` and ``adopt`` write, and only ``customs-hub db upgrade`` (or a
hub starting on an empty database) calls them: reading commands look, never change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic.command import upgrade as alembic_upgrade
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from hub.core.errors import SchemaError
from hub.store import schema as _schema  # noqa: F401 - registers the tables

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
BASELINE = "0001"  # what the releases before migrations made with create_all
REVISION = re.compile(r"[0-9]{4}")  # how this project numbers its revisions
# Alembic's table, read as it is: Alembic itself fails on a value it never wrote
READ_VERSIONS = text("SELECT version_num FROM alembic_version")


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    heads = scripts().get_heads()
    if len(heads) != 1:  # two revisions naming the same parent: a developer's merge to do
        raise SchemaError(f"the migrations have {len(heads)} heads: {', '.join(sorted(heads))}")
    return heads[0]


def describe(revision: str | None) -> str:
    """``0002 (outbox last attempt)``: a revision with the first line of its description."""
    if revision is None:
        return "none"
    if not REVISION.fullmatch(revision):
        return repr(revision)
    try:
        script = scripts().get_revision(revision)
    except CommandError:
        return f"{revision} (unknown to customs-hub)"
    title = (script.doc or "").strip().splitlines()[0].rstrip(".") if script.doc else ""
    return f"{revision} ({title})" if title else revision


def history() -> list[tuple[str, str | None, str]]:
    """Every revision, oldest first: (revision, the one it follows, its description)."""
    rows = []
    for script in scripts().walk_revisions():
        down = script.down_revision
        rows.append(
            (script.revision, down if isinstance(down, str) else None, describe(script.revision))
        )
    return rows[::-1]


@dataclass(frozen=True)
class SchemaState:
    """What a database holds: its revision (None: no version table) and the hub's tables."""

    found: str | None
    head: str
    tables: frozenset[str]

    @property
    def status(self) -> str:
        """``current``; ``empty`` (no tables: a new database); ``behind`` (an older revision,
        upgrade it); ``ahead`` (a revision this code does not know: a newer release wrote it);
        ``unversioned`` (tables without a revision: the last release before migrations);
        ``unknown`` (a value no release writes: several revisions, or an empty one)."""
        if self.found == self.head:
            return "current"
        if self.found is None:
            return "unversioned" if self.tables else "empty"
        if "," in self.found or not REVISION.fullmatch(self.found):
            return "unknown"
        try:
            known = scripts().get_revision(self.found) is not None
        except CommandError:
            known = False
        return "behind" if known else "ahead"


def _hub_tables() -> frozenset[str]:
    """The tables of this code's schema and of the baseline (a database with any is no
    longer empty)."""
    return frozenset(SQLModel.metadata.tables) | _baseline_tables()


def read_state(conn: Connection) -> SchemaState:
    present = set(inspect(conn).get_table_names())
    found = None
    if VERSION_TABLE in present:
        rows = conn.execute(READ_VERSIONS).scalars().all()
        found = ",".join(sorted(str(r) for r in rows)) if rows else None
    return SchemaState(found, head(), frozenset(present & _hub_tables()))


def upgrade(conn: Connection, target: str = "head") -> None:
    """Run every revision after the database's up to ``target``, in the caller's
    transaction (PostgreSQL and SQLite both change their schema transactionally)."""
    alembic_upgrade(_config(conn), target)


def stamp(conn: Connection, revision: str) -> None:
    MigrationContext.configure(conn).stamp(scripts(), revision)


def _shape(conn: Connection, tables: frozenset[str] | None = None) -> frozenset[str]:
    """What a database's tables are made of, as comparable lines: each column, each index
    (``unique`` or not) and each unique constraint by the columns it covers, whatever the
    dialect names them. ``tables``: only these (default: all but Alembic's)."""
    inspector = inspect(conn)
    shape: set[str] = set()
    for table in inspector.get_table_names():
        if table == VERSION_TABLE or (tables is not None and table not in tables):
            continue
        shape.update(f"{table}.{column['name']}" for column in inspector.get_columns(table))
        for index in inspector.get_indexes(table):
            kind = "unique" if index.get("unique") else "index"
            shape.add(f"{kind} on {table}({', '.join(map(str, index['column_names']))})")
        for unique in inspector.get_unique_constraints(table):
            shape.add(f"unique on {table}({', '.join(unique['column_names'])})")
    return frozenset(shape)


@cache
def _baseline_shape() -> frozenset[str]:
    """The baseline revision's tables (``_shape``), read back from a scratch in-memory SQLite
    database it was run on."""
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        upgrade(conn, BASELINE)
        shape = _shape(conn)
    engine.dispose()
    return shape


def _baseline_tables() -> frozenset[str]:
    return frozenset(line.split(".", 1)[0] for line in _baseline_shape() if "(" not in line)


def adopt(conn: Connection) -> None:
    """Record an unversioned database (made by create_all of the last release before
    migrations) as the baseline revision, once its tables are found to be exactly the
    baseline's (columns, indexes, unique constraints); otherwise refuse, naming what
    differs."""
    found = _shape(conn, _hub_tables())
    expected = _baseline_shape()
    if found != expected:
        missing, extra = sorted(expected - found), sorted(found - expected)
        parts = [f"missing {', '.join(missing[:6])}" if missing else ""]
        parts.append(f"not known: {', '.join(extra[:6])}" if extra else "")
        raise SchemaError(
            "the database has the hub's tables but no schema revision, and they are not the "
            f"baseline's ({'; '.join(p for p in parts if p)}): it was made by a development "
            "version; restore a backup or start a new database"
        )
    stamp(conn, BASELINE)
