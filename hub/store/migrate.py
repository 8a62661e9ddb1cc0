"""The store's schema revisions (Alembic): which one a database is at, and bringing it to the
code's (hub/store/migrations/versions, one file a revision).

Every function here takes a synchronous SQLAlchemy connection (``AsyncConnection.run_sync``
hands one over) and runs in the caller's transaction; ``Database`` in hub/store/engine.py
calls them. Only ``upgrade`` and ``adopt`` write, and only ``customs-hub db upgrade`` (or a
hub starting on an empty database) calls them: reading commands look, never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic.command import upgrade as alembic_upgrade
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import MetaData, create_engine, inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from hub.core.errors import SchemaError
from hub.store import schema as _schema  # noqa: F401 - registers the tables

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
BASELINE = "0001"  # what the releases before migrations made with create_all


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
        ``unversioned`` (tables without a revision: the last release before migrations)."""
        if self.found == self.head:
            return "current"
        if self.found is None:
            return "unversioned" if self.tables else "empty"
        try:
            known = scripts().get_revision(self.found) is not None
        except CommandError:
            known = False
        return "behind" if known else "ahead"


def _hub_tables() -> frozenset[str]:
    """The tables of this code's schema and of the baseline (a database with any is no
    longer empty)."""
    return frozenset(SQLModel.metadata.tables) | {t for _, t, _ in _baseline_columns()}


def read_state(conn: Connection) -> SchemaState:
    context = MigrationContext.configure(conn)
    heads = context.get_current_heads()
    present = set(inspect(conn).get_table_names())
    found = heads[0] if heads else None
    if len(heads) > 1:
        found = ",".join(sorted(heads))
    return SchemaState(found, head(), frozenset(present & _hub_tables()))


def upgrade(conn: Connection, target: str = "head") -> None:
    """Run every revision after the database's up to ``target``, in the caller's
    transaction (PostgreSQL and SQLite both change their schema transactionally)."""
    alembic_upgrade(_config(conn), target)


def stamp(conn: Connection, revision: str) -> None:
    MigrationContext.configure(conn).stamp(scripts(), revision)


@cache
def _baseline_columns() -> frozenset[tuple[str, str, str]]:
    """(kind, table, column) of every table the baseline revision makes, read back from a
    scratch in-memory SQLite database it was run on."""
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        upgrade(conn, BASELINE)
        metadata = MetaData()
        metadata.reflect(conn)
    engine.dispose()
    return frozenset(
        ("column", table.name, column.name)
        for table in metadata.tables.values()
        if table.name != VERSION_TABLE
        for column in table.columns
    )


def adopt(conn: Connection) -> None:
    """Record an unversioned database (made by create_all of the last release before
    migrations) as the baseline revision, once its tables and columns are found to be exactly
    the baseline's; otherwise refuse, naming what differs."""
    metadata = MetaData()
    metadata.reflect(conn)
    found = frozenset(
        ("column", table.name, column.name)
        for table in metadata.tables.values()
        if table.name in _hub_tables()
        for column in table.columns
    )
    expected = _baseline_columns()
    if found != expected:
        missing = sorted(f"{t}.{c}" for _, t, c in expected - found)
        extra = sorted(f"{t}.{c}" for _, t, c in found - expected)
        parts = [f"missing {', '.join(missing[:6])}" if missing else ""]
        parts.append(f"not known: {', '.join(extra[:6])}" if extra else "")
        raise SchemaError(
            "the database has the hub's tables but no schema revision, and they are not the "
            f"baseline's ({'; '.join(p for p in parts if p)}): it was made by a development "
            "version; restore a backup or start a new database"
        )
    stamp(conn, BASELINE)
