"""Plain SQL for the statements every message takes, on the transaction's own driver cursor.

What it is for: at thousands of messages per second, SQLAlchemy's per-statement work (building
an execution context, processing each parameter and each result row) costs more than SQLite's
own insert does (docs/adr/0005). The hot transactions therefore run these statements, written
once, straight on the DBAPI cursor of the SQLAlchemy connection they are in: pysqlite's on
SQLite, SQLAlchemy's adapted asyncpg cursor (inside ``run_sync``) on PostgreSQL. The rest of
the store keeps SQLAlchemy Core.

Statements are written with ``?`` placeholders and numbered ``$1, $2 ...`` for asyncpg. Only
statements that both SQLite (3.35 or later) and PostgreSQL accept as written are kept here.
Every lookup by several keys is written so that an index serves it: SQLite does not use an
index for a row-value ``(a, b) IN (...)``, which would scan the whole table on each call.

What it must never do: build SQL from values. Values always travel as parameters; only
placeholders and the names below are put into statement text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Connection

# Keys per lookup statement: SQLite's parser nests an OR chain one level per term, and its
# expression depth limit is 1000; 100 terms of three comparisons stay far inside it, and one
# index search per term is what the query costs either way.
KEYS_PER_QUERY = 100
# Single-column lookups (``IN (...)``) take more values per statement: SQLite allows 32,766
# parameters, and 500 keeps each statement's text and plan small.
IDS_PER_QUERY = 500


@dataclass
class TrailTail:
    """The trail's size and its frontier (``treestore.frontier_keys(size)`` with hashes) as a
    transaction left it: the next append needs exactly these nodes and no others."""

    size: int
    frontier: dict[tuple[int, int], bytes] | None = None  # None: not read yet


class Raw:
    """A DBAPI cursor with the two calls the hot paths make."""

    __slots__ = ("cursor", "numbered")

    def __init__(self, conn: Connection, numbered: bool) -> None:
        self.cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        self.numbered = numbered

    def many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cursor.executemany(_dialect(statement, self.numbered), rows)

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(_dialect(statement, self.numbered), params)
        return list(self.cursor.fetchall())

    def value(self, statement: str, params: Sequence[Any] = ()) -> Any:
        self.cursor.execute(_dialect(statement, self.numbered), params)
        row = self.cursor.fetchone()
        return row[0] if row else None


class Tx(Raw):
    """One writing transaction: the SQLAlchemy connection, for Core statements off the hot
    path, and its raw cursor; ``tail`` follows the trail as this transaction appends to it."""

    __slots__ = ("conn", "tail")

    def __init__(self, conn: Connection, numbered: bool) -> None:
        super().__init__(conn, numbered)
        self.conn = conn
        self.tail: TrailTail | None = None


@lru_cache(maxsize=512)
def _dialect(statement: str, numbered: bool) -> str:
    if not numbered:
        return statement
    parts = statement.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        out.append(f"${n}{part}")
    return "".join(out)


def insert(table: str, columns: Sequence[str], suffix: str = "") -> str:
    marks = ", ".join("?" * len(columns))
    # names and placeholders only, from the store's own constants
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){suffix}"  # noqa: S608


@lru_cache(maxsize=256)
def any_of(condition: str, count: int) -> str:
    """``(condition) OR (condition) ...`` ``count`` times, e.g. for several composite keys."""
    return " OR ".join([f"({condition})"] * count)


@lru_cache(maxsize=256)
def marks(count: int) -> str:
    """``?, ?, ...`` for an IN list of ``count`` values."""
    return ", ".join("?" * count)


def chunks(items: Sequence[Any], size: int = KEYS_PER_QUERY) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
