"""The registry (docs/adr/0012-mutual-recognition.md): every administration's AEO statuses and
control results, the newest revision of each and every revision received, written in the
transaction of the message that carried it and read by the keys officers look them up by.

Writing follows hub/core/revisions.py: every revision goes to the history; the current row
takes one only if its revision is higher than the one held (a late older revision never
overwrites a newer one; a revision 0, unnumbered, is never current, as in ``current_state``).
Writes are plain SQL on the transaction's cursor (hub/store/rawsql.py): they are on the path
of every AEO status and control result a partner sends.

Reads are one indexed range per key. On SQLite they run on a plain read-only sqlite3
connection of the registry's own (one per thread), on the event loop when they are small: an
indexed read of a few rows takes microseconds, far less than a hand-over to a thread would.
On PostgreSQL they run through the pool. Either way, database failures end as StoreError.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from hub.core.errors import StoreError
from hub.core.registry import AeoRecord, ControlRecord
from hub.core.revisions import StateKey, StateRef, newer_wins
from hub.store import rawsql
from hub.store.engine import BUSY_SECONDS, Database
from hub.store.rawsql import Raw, Tx
from hub.store.schema import AEO_REGISTRY, CONTROL_REGISTRY, MAX_INDEXED_KEY, Writer, as_utc

T = TypeVar("T")

# Requests up to this many keys are read on the event loop (SQLite); larger ones on a thread.
INLINE_KEYS = 256

# What control results are looked up by (control_registry_key.kind)
MRN, LRN, CONTAINER, TRANSPORT_DOCUMENT = "mrn", "lrn", "container", "transport-document"

AEO_WRITER = Writer(AEO_REGISTRY, AeoRecord)
AEO_COLUMNS = AEO_WRITER.columns  # in the table's order
CONTROL_COLUMNS = tuple(c.name for c in CONTROL_REGISTRY.columns)
# what reads select: the records' fields in their order, so a row is a record's arguments
AEO_FIELDS = tuple(f.name for f in fields(AeoRecord))
CONTROL_FIELDS = tuple(f.name for f in fields(ControlRecord))
_TIME_AT = AEO_FIELDS.index("received_at")
_CONTROL_TIME_AT = CONTROL_FIELDS.index("received_at")
_CONTAINERS_AT = CONTROL_FIELDS.index("container_ids")


def key_value(value: str) -> str:
    """A lookup key as the key table keeps it: without surrounding spaces, at most
    MAX_INDEXED_KEY characters (as the trail's key index keeps business keys)."""
    return value.strip()[:MAX_INDEXED_KEY]


def control_keys(record: ControlRecord) -> list[tuple[str, str]]:
    """(kind, value) pairs a control result is found by, each once."""
    named = [
        (MRN, record.declaration_id),
        (LRN, record.functional_reference_id),
        (TRANSPORT_DOCUMENT, record.transport_document_id),
        *((CONTAINER, c) for c in record.container_ids),
    ]
    return list(dict.fromkeys((kind, key_value(v)) for kind, v in named if v.strip()))


def _upsert(table: str, columns: Sequence[str], conflict: Sequence[str]) -> str:
    """An insert that replaces the row held only with a higher revision."""
    changed = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in conflict)
    return rawsql.insert(
        table,
        columns,
        f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {changed}"
        f" WHERE excluded.revision > {table}.revision",
    )


class RegistrySql:
    """The registry's statements, as plain SQL: names and placeholders only."""

    def __init__(self, is_sqlite: bool) -> None:
        ins = rawsql.insert
        self.insert_aeo_history = ins("aeo_registry_history", AEO_COLUMNS)
        self.upsert_aeo = _upsert("aeo_registry", AEO_COLUMNS, ("aeo_id", "party"))
        self.insert_control_history = ins("control_registry_history", CONTROL_COLUMNS)
        self.upsert_control = _upsert("control_registry", CONTROL_COLUMNS, ("party", "key"))
        self.delete_keys = "DELETE FROM control_registry_key WHERE party = ? AND key = ?"
        self.insert_key = ins(
            "control_registry_key",
            ("kind", "value", "party", "key"),
            " ON CONFLICT DO NOTHING",
        )
        aeo = ", ".join(AEO_FIELDS)
        control = ", ".join(f"c.{c}" for c in CONTROL_FIELDS)
        # names and placeholders only
        self.aeo_by = {
            name: f"SELECT {aeo} FROM aeo_registry WHERE {name} IN "  # noqa: S608
            for name in ("aeo_id", "tin")
        }
        self.history_by = {
            # revision 0 (unnumbered) is never current, so never an answer as of a day either
            name: f"SELECT {aeo} FROM aeo_registry_history WHERE received_at <= ?"  # noqa: S608
            f" AND revision > 0 AND {name} IN "
            for name in ("aeo_id", "tin")
        }
        self.issued = f"SELECT {aeo} FROM aeo_registry WHERE party = ? AND aeo_id IN "  # noqa: S608
        self.controls_by = (
            f"SELECT {control} FROM control_registry_key k JOIN control_registry c"  # noqa: S608
            " ON c.party = k.party AND c.key = k.key WHERE k.kind = ? AND k.value IN "
        )
        # AEO ids compare by code point on both databases (PostgreSQL's default collation
        # may be a locale's), so that ranges mean the same on every hub
        ordered = "aeo_id" if is_sqlite else 'aeo_id COLLATE "C"'
        self.revisions = "SELECT aeo_id, revision FROM aeo_registry WHERE party = ?"
        self.from_id = f" AND {ordered} >= ?"
        self.to_id = f" AND {ordered} < ?"
        self.order = f" ORDER BY {ordered}"

    @staticmethod
    def held_controls(count: int) -> str:
        keyed = rawsql.any_of("party = ? AND key = ?", count)
        return f"SELECT party, key, revision FROM control_registry WHERE {keyed}"  # noqa: S608


class Reads(Protocol):
    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class _Plain:
    """``Raw``'s ``rows`` on a plain sqlite3 connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(statement, params).fetchall()


def _time(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite: as engine.sqlite_time wrote it, UTC
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return as_utc(value)


def _aeo(values: Sequence[Any]) -> AeoRecord:
    """A record from a row selected in AEO_FIELDS' order."""
    v = list(values)
    v[_TIME_AT] = _time(v[_TIME_AT])
    return AeoRecord(*v)


def _control(values: Sequence[Any]) -> ControlRecord:
    """A record from a row selected in CONTROL_FIELDS' order."""
    v = list(values)
    v[_CONTROL_TIME_AT] = _time(v[_CONTROL_TIME_AT])
    v[_CONTAINERS_AT] = tuple(json.loads(v[_CONTAINERS_AT]))
    return ControlRecord(*v)


def _in(statement: str, values: Sequence[Any], limit: int | None = None) -> str:
    rows = "" if limit is None else f" LIMIT {max(int(limit), 0)}"
    return f"{statement}({rawsql.marks(len(values))}){rows}"


def _left(limit: int | None, read: int) -> int | None:
    return None if limit is None else limit - read


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


class Registry:
    """The registry's tables: written in other parts' transactions (``write_in``), read by
    lookups (``operators``, ``controls``) and by partners' queries (``issued``,
    ``revisions``). Reachable as ``store.registry``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sql = RegistrySql(db.is_sqlite)
        self._file: Path | None = db.sqlite_file
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------

    def write_in(
        self,
        tx: Tx,
        aeo: Sequence[AeoRecord] = (),
        controls: Sequence[ControlRecord] = (),
    ) -> None:
        """Write records in a transaction of the caller's: each to its history, and to the
        current rows where it is newer than the one held."""
        time = self.db.time
        if aeo:
            values = [AEO_WRITER.values(r, time) for r in aeo]
            tx.many(self.sql.insert_aeo_history, values)
            # the upsert keeps the higher revision whatever order the rows come in
            numbered = [v for v, r in zip(values, aeo, strict=True) if r.revision > 0]
            tx.many(self.sql.upsert_aeo, numbered)
        if controls:
            self._write_controls(tx, controls)

    def _write_controls(self, tx: Tx, controls: Sequence[ControlRecord]) -> None:
        time = self.db.time
        values = [
            [
                time(r.received_at)
                if c == "received_at"
                else json.dumps(list(r.container_ids))
                if c == "container_ids"
                else getattr(r, c)
                for c in CONTROL_COLUMNS
            ]
            for r in controls
        ]
        tx.many(self.sql.insert_control_history, values)
        wanted = _unique_pairs((r.party, r.key) for r in controls if r.revision > 0)
        held: dict[StateKey, int] = {}
        for part in rawsql.chunks(wanted):
            params = [value for pair in part for value in pair]
            for party, key, revision in tx.rows(self.sql.held_controls(len(part)), params):
                held[(party, "control", key)] = int(revision)
        newest: dict[tuple[str, str], tuple[ControlRecord, list[Any]]] = {}
        for record, row in zip(controls, values, strict=True):
            if newer_wins(held, StateRef(record.party, "control", record.key, record.revision)):
                newest[(record.party, record.key)] = (record, row)
        if not newest:
            return
        tx.many(self.sql.upsert_control, [row for _, row in newest.values()])
        tx.many(self.sql.delete_keys, list(newest))
        tx.many(
            self.sql.insert_key,
            [
                (kind, value, r.party, r.key)
                for r, _ in newest.values()
                for kind, value in control_keys(r)
            ],
        )

    # -- reading -------------------------------------------------------------------------

    async def operators(
        self,
        aeo_ids: Sequence[str] = (),
        tins: Sequence[str] = (),
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> list[AeoRecord]:
        """Every administration's record for any of those AEO ids or TINs, by AEO id then
        party: the current row, or with ``as_of`` the highest revision received at or before
        then (from the history). With ``limit``, at most that many (current rows: at most that
        many are read)."""
        return await self._read(
            len(aeo_ids) + len(tins), lambda r: self._operators(r, aeo_ids, tins, as_of, limit)
        )

    async def controls(
        self,
        mrns: Sequence[str] = (),
        lrns: Sequence[str] = (),
        containers: Sequence[str] = (),
        transport_documents: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[ControlRecord]:
        """Every administration's current control result that matches any of those, by party
        then key; with ``limit``, at most that many rows are read."""
        wanted: list[tuple[str, Sequence[str]]] = [
            (MRN, mrns),
            (LRN, lrns),
            (CONTAINER, containers),
            (TRANSPORT_DOCUMENT, transport_documents),
        ]
        count = sum(len(values) for _, values in wanted)
        return await self._read(count, lambda r: self._controls(r, wanted, limit))

    async def issued(self, party: str, aeo_ids: Sequence[str]) -> list[AeoRecord]:
        """One administration's current rows for those AEO ids, by AEO id."""
        return await self._read(len(aeo_ids), lambda r: self._issued(r, party, aeo_ids))

    async def revisions(
        self, party: str, from_id: str = "", to_id: str = ""
    ) -> list[tuple[str, int]]:
        """(AEO id, revision) of one administration's current rows with ``from_id <= id <
        to_id`` ("" leaves that end open), by AEO id (code point order)."""
        return await self._read(
            INLINE_KEYS + 1, lambda r: self._revisions(r, party, from_id, to_id)
        )

    # the same, synchronously, for callers on the event loop that cannot await (SQLite
    # files only: ``fast``)
    @property
    def fast(self) -> bool:
        return self._file is not None

    def operators_now(
        self,
        aeo_ids: Sequence[str] = (),
        tins: Sequence[str] = (),
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> list[AeoRecord]:
        return self._now(lambda r: self._operators(r, aeo_ids, tins, as_of, limit))

    def _operators(
        self,
        reads: Reads,
        aeo_ids: Sequence[str],
        tins: Sequence[str],
        as_of: datetime | None,
        limit: int | None = None,
    ) -> list[AeoRecord]:
        found: dict[tuple[str, str], AeoRecord] = {}
        if as_of is None:
            # each read at most ``limit`` rows: if more than ``limit`` match, at least
            # ``limit`` are found (an id may be found by both)
            for name, values in (("aeo_id", aeo_ids), ("tin", tins)):
                for record in self._select(reads, self.sql.aeo_by[name], (), values, limit):
                    found[(record.aeo_id, record.party)] = record
            return [found[k] for k in sorted(found)][:limit]
        at = self.db.time(as_of)
        ids = _unique(aeo_ids)
        wanted_tins = set(tins)
        if tins:  # the AEO ids those TINs had then; kept below only if their record still does
            named = self._select(reads, self.sql.history_by["tin"], (at,), _unique(tins))
            ids = _unique([*ids, *(r.aeo_id for r in named)])
        for record in self._select(reads, self.sql.history_by["aeo_id"], (at,), ids):
            key = (record.aeo_id, record.party)
            held = found.get(key)
            if held is None or (record.revision, record.trail_index) > (
                held.revision,
                held.trail_index,
            ):
                found[key] = record
        asked = set(aeo_ids)
        return [
            found[k]
            for k in sorted(found)
            if found[k].aeo_id in asked or found[k].tin in wanted_tins
        ][:limit]

    def _controls(
        self,
        reads: Reads,
        wanted: Sequence[tuple[str, Sequence[str]]],
        limit: int | None = None,
    ) -> list[ControlRecord]:
        found: dict[tuple[str, str], ControlRecord] = {}
        read = 0
        for kind, values in wanted:
            keys = _unique(key_value(v) for v in values if v.strip())
            for part in rawsql.chunks(keys, rawsql.IDS_PER_QUERY):
                if limit is not None and read >= limit:
                    return [found[k] for k in sorted(found)]
                rows = reads.rows(
                    _in(self.sql.controls_by, part, _left(limit, read)), [kind, *part]
                )
                read += len(rows)
                for row in rows:
                    record = _control(row)
                    found[(record.party, record.key)] = record
        return [found[k] for k in sorted(found)]

    def _issued(self, reads: Reads, party: str, aeo_ids: Sequence[str]) -> list[AeoRecord]:
        records = self._select(reads, self.sql.issued, (party,), _unique(aeo_ids))
        return sorted(records, key=lambda r: r.aeo_id)

    def _revisions(
        self, reads: Reads, party: str, from_id: str, to_id: str
    ) -> list[tuple[str, int]]:
        statement, params = self.sql.revisions, [party]
        if from_id:
            statement, params = statement + self.sql.from_id, [*params, from_id]
        if to_id:
            statement, params = statement + self.sql.to_id, [*params, to_id]
        rows = reads.rows(statement + self.sql.order, params)
        return sorted((aeo_id, int(revision)) for aeo_id, revision in rows)

    @staticmethod
    def _select(
        reads: Reads,
        statement: str,
        before: Sequence[Any],
        values: Sequence[str],
        limit: int | None = None,
    ) -> list[AeoRecord]:
        out: list[AeoRecord] = []
        for part in rawsql.chunks(_unique(values), rawsql.IDS_PER_QUERY):
            if limit is not None and len(out) >= limit:
                break
            rows = reads.rows(_in(statement, part, _left(limit, len(out))), [*before, *part])
            out += [_aeo(row) for row in rows]
        return out

    # -- where reads run -----------------------------------------------------------------

    async def _read(self, count: int, work: Callable[[Reads], T]) -> T:
        if self._file is not None:
            if count <= INLINE_KEYS:
                return self._now(work)
            return await asyncio.to_thread(self._now, work)

        async def pooled() -> T:
            async with self.db.engine.connect() as conn:
                return await conn.run_sync(lambda c: work(Raw(c, self.db.numbered)))

        return await self.db.run(pooled)

    def _now(self, work: Callable[[Reads], T]) -> T:
        try:
            return work(_Plain(self._connection()))
        except sqlite3.Error as exc:
            raise StoreError(f"reading the registry failed: {type(exc).__name__}") from exc

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._file is None:
                raise StoreError("the registry's synchronous reads need a SQLite file")
            conn = sqlite3.connect(
                f"file:{quote(str(self._file))}?mode=rw",  # never made here
                uri=True,
                timeout=BUSY_SECONDS,
                check_same_thread=False,
            )
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def close(self) -> None:
        """Close the registry's own reading connections (``Store.close``)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()


def _unique_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(pairs))
