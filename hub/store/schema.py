"""The store's tables, one SQLModel class each, and the plain values the store takes and gives.

The hot paths write and read the tables with plain SQL (hub/store/rawsql.py); their column
lists are derived from these classes (``columns``), so a column is declared once.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    Table,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from hub.core.envelope import signed_alike
from hub.core.limits import ERROR_CHARS, ID_CHARS, MESSAGE_ID_CHARS, REJECTION_CHARS
from hub.core.registry import AeoRecord, ControlRecord
from hub.core.revisions import StateRef

# the states of an outbox entry (outbox.state)
QUEUED, DEAD = "queued", "dead"

# business keys in the trail index are kept to this many characters (trail_key.value); longer
# ones are cut, and a search finds them by their first MAX_INDEXED_KEY characters
MAX_INDEXED_KEY = 512


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the store writes is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ts(nullable: bool = False) -> Any:
    column = Column(DateTime(timezone=True), nullable=nullable)
    return Field(default=None, sa_column=column) if nullable else Field(sa_column=column)


def _blob(nullable: bool = False) -> Any:
    return Field(
        default=None if nullable else b"", sa_column=Column(LargeBinary, nullable=nullable)
    )


# Trail indexes, sizes and node keys go past 2^31: 64 bits on PostgreSQL; on SQLite, the
# column must be spelled INTEGER to be the table's rowid (one b-tree, appended to in order).
TRAIL_INDEX = BigInteger().with_variant(Integer, "sqlite")


class OutboundMessage(SQLModel, table=True):
    """A message this hub signed for a partner. Never deleted; its status changes.

    Indexed only by what looks messages up (id, message id): every index is one more page
    written per message, and recipient, status and submission id are only ever read back
    with the row."""

    __tablename__ = "outbound_message"
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=36, unique=True)
    correlation_id: str = Field(default="", max_length=ID_CHARS)
    recipient: str = Field(max_length=16)
    body_type: str = Field(max_length=ID_CHARS)
    envelope: bytes = _blob()
    envelope_digest: bytes = _blob()
    document_digest: bytes | None = _blob(nullable=True)  # original domestic document, if any
    business_keys: str = Field(default="{}")  # JSON object: name -> list of values
    created_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    submission_id: str | None = Field(default=None, max_length=ID_CHARS)
    # queued -> delivered | rejected (by the partner) | dead (expired, dropped) | replaced
    # (an operator retried it as a new message)
    status: str = Field(default=QUEUED, max_length=16)


class OutboxEntry(SQLModel, table=True):
    """Work for the delivery worker: one row per outbound message not yet settled.

    ``state`` is "queued" (waiting, or retrying after ``attempts`` failures) or "dead": a dead
    letter that stays until an operator retries or drops it, with ``dead_reason``.
    """

    __tablename__ = "outbox"
    # ids are never reused (AUTOINCREMENT): a sender's cursor and a late settlement must not
    # meet a newer entry under an old id
    __table_args__ = (
        Index("ix_outbox_partner_state_id", "partner", "state", "id"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True)
    outbound_id: int = Field(foreign_key="outbound_message.id", unique=True)
    partner: str = Field(max_length=16)
    state: str = Field(default=QUEUED, max_length=8)
    next_attempt_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    attempts: int = 0
    last_error: str | None = None
    dead_reason: str | None = None


class PartnerBackoff(SQLModel, table=True):
    """A partner the outbox is backing off from as a whole (its stream failed), kept so that
    a restarted hub goes on waiting where the last one stopped, and so operators see when the
    next attempt is. No row: the last attempt succeeded (or none failed)."""

    __tablename__ = "partner_backoff"
    partner: str = Field(primary_key=True, max_length=16)
    failures: int = 0  # consecutive
    retry_at: datetime = _ts()  # not before then
    failed_at: datetime = _ts()
    last_error: str = Field(default="", max_length=ERROR_CHARS)


class ReceiptRecord(SQLModel, table=True):
    """A signed receipt a partner returned for one of our outbound messages."""

    __tablename__ = "receipt"
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=36, unique=True, foreign_key="outbound_message.message_id")
    receiver: str = Field(max_length=16)
    outcome: str = Field(max_length=16)
    reason: str = Field(default="", max_length=64)
    envelope_digest: bytes = _blob()
    signed_receipt: bytes = _blob()  # serialised SignedReceipt, exactly as received
    received_at: datetime = _ts()


class InboundMessage(SQLModel, table=True):
    """A message a partner delivered and this hub accepted. ``id`` is the subscriber cursor."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("sender", "message_id", name="uq_inbound_sender_message"),
        {"sqlite_autoincrement": True},  # cursors handed to subscribers are never reused
    )
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=36, index=True)
    sender: str = Field(max_length=16)
    correlation_id: str = Field(default="", max_length=ID_CHARS)
    body_type: str = Field(max_length=ID_CHARS)
    header: bytes = _blob()
    body: bytes = _blob()
    envelope_digest: bytes = _blob()
    business_keys: str = Field(default="{}")
    received_at: datetime = _ts()
    signed_receipt: bytes = _blob()  # what we answered, to answer duplicates with the same
    # a newer revision of the same state was already held when this arrived
    superseded: bool = False
    # the envelope exactly as received, signatures included: what the sender signed, kept as
    # evidence (``trail verify --messages``). NULL for messages stored before revision 0003.
    envelope: bytes | None = _blob(nullable=True)
    # the traceparent of its ``receive`` span, for the span of its hand-over (revision 0007);
    # NULL when telemetry was off as it was received
    trace: str | None = Field(default=None, max_length=55)


class InboundOriginal(SQLModel, table=True):
    """The document a partner sent in a partner format (a RawDocument body), kept exactly as
    signed, beside its inbound message, whose body is the protobuf translated on ingress."""

    __tablename__ = "inbound_original"
    sender: str = Field(max_length=16, primary_key=True)
    message_id: str = Field(max_length=36, primary_key=True)
    format: str = Field(max_length=64)
    document_digest: bytes = _blob()  # SHA-256 of the document's bytes (RawDocument.content)
    body: bytes = _blob()  # the exact signed body: the serialised RawDocument


class CurrentState(SQLModel, table=True):
    """The newest revision of each piece of state that changes over time: an AEO status per
    issuing administration and AEO id, a control result per declaration or containers."""

    __tablename__ = "current_state"
    party: str = Field(primary_key=True, max_length=16)  # who issues this state
    kind: str = Field(primary_key=True, max_length=32)  # "aeo", "control"
    key: str = Field(primary_key=True, max_length=MAX_INDEXED_KEY)
    revision: int = Field(sa_column=Column(BigInteger, nullable=False))
    message_id: str = Field(max_length=36)
    updated_at: datetime = _ts()


class Submission(SQLModel, table=True):
    """A domestic submission's idempotency key and the answer it got."""

    __tablename__ = "submission"
    submission_id: str = Field(primary_key=True, max_length=ID_CHARS)
    response: bytes = _blob()
    created_at: datetime = _ts()


class Rejection(SQLModel, table=True):
    """Something this hub refused: from a partner or from a domestic system."""

    __tablename__ = "rejection"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    source: str = Field(max_length=64)  # partner party id, or "domestic"
    message_id: str = Field(default="", max_length=MESSAGE_ID_CHARS)
    reason: str = Field(max_length=64)
    detail: str = Field(default="", max_length=REJECTION_CHARS)
    # SHA-256 of what was refused: the envelope from a partner, the document from a domestic system
    digest: bytes | None = _blob(nullable=True)


class SubscriberCursor(SQLModel, table=True):
    """The last inbound cursor a domestic subscriber acknowledged."""

    __tablename__ = "subscriber_cursor"
    subscriber: str = Field(primary_key=True, max_length=ID_CHARS)
    acknowledged: int = 0
    updated_at: datetime = _ts()


class TrailEntry(SQLModel, table=True):
    """One leaf of the trail (docs/trail.md): ``leaf`` is the TrailEvent as appended; the
    other columns repeat some of its fields so auditors' queries can use indexes."""

    __tablename__ = "trail_entry"
    __table_args__ = (
        # most events have no correlation id: index only those that do
        Index(
            "ix_trail_entry_correlation",
            "correlation_id",
            sqlite_where=text("correlation_id != ''"),
            postgresql_where=text("correlation_id != ''"),
        ),
    )
    idx: int = Field(
        primary_key=True, sa_type=TRAIL_INDEX, sa_column_kwargs={"autoincrement": False}
    )
    kind: str = Field(max_length=32)
    at: datetime = _ts()
    message_id: str = Field(default="", max_length=MESSAGE_ID_CHARS, index=True)
    correlation_id: str = Field(default="", max_length=ID_CHARS)
    sender: str = Field(default="", max_length=ID_CHARS)
    recipient: str = Field(default="", max_length=ID_CHARS)
    body_type: str = Field(default="", max_length=ID_CHARS)
    leaf: bytes = _blob()
    leaf_hash: bytes = _blob()  # the tree's level-0 node (hub/trail/tree.py), kept in this row


class TrailKey(SQLModel, table=True):
    """A business key named by a trail entry (LRN, MRN, container id, AEO id ...)."""

    __tablename__ = "trail_key"
    __table_args__ = {"sqlite_with_rowid": False}  # the key is the row: one b-tree, not two
    name: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=MAX_INDEXED_KEY)
    idx: int = Field(
        primary_key=True, sa_type=TRAIL_INDEX, sa_column_kwargs={"autoincrement": False}
    )


class TrailNode(SQLModel, table=True):
    """The hash of a perfect subtree of the trail, level 1 and up (level 0, the leaf hashes,
    are in trail_entry). Written once, when the subtree is complete; proofs are read from
    these (hub/trail/tree.py).

    ``key`` is ``node_key(level, index)``: where the subtree ends, then its level. The nodes an
    append completes all end at or near the new size, so each commit's nodes are appended
    together at the end of one rowid b-tree, which SQLite grows by adding a page. Keyed by
    (level, index) they were one page per level, rewritten at every commit."""

    __tablename__ = "trail_node"
    key: int = Field(
        primary_key=True, sa_type=TRAIL_INDEX, sa_column_kwargs={"autoincrement": False}
    )
    hash: bytes = _blob()


# A trail node's key: the end of its leaf range (up to 2^57 leaves), then its level (< 64).
NODE_LEVEL_BITS = 6
MAX_STORED_TRAIL = 1 << (63 - NODE_LEVEL_BITS)


def node_key(level: int, index: int) -> int:
    return (((index + 1) << level) << NODE_LEVEL_BITS) | level


def node_of(key: int) -> tuple[int, int]:
    level = key & ((1 << NODE_LEVEL_BITS) - 1)
    return level, ((key >> NODE_LEVEL_BITS) >> level) - 1


class TrailCheckpoint(SQLModel, table=True):
    """A checkpoint the hub signed: the trail's size and root, and the signed note."""

    __tablename__ = "trail_checkpoint"
    size: int = Field(
        primary_key=True, sa_type=TRAIL_INDEX, sa_column_kwargs={"autoincrement": False}
    )
    root: bytes = _blob()
    note: bytes = _blob()
    signed_at: datetime = _ts()


class LearnedSigningKey(SQLModel, table=True):
    """A partner's signing certificate learned from a signature that carried it
    (docs/adr/0010-key-rotation.md): trusted like a configured one, across restarts and
    reloads, until it ends or is revoked. Never deleted: an ended one still verifies what was
    signed while it was valid, years later (``trail export``)."""

    __tablename__ = "learned_signing_key"
    party: str = Field(primary_key=True, max_length=16)
    key_id: str = Field(primary_key=True, max_length=64)  # hex SHA-256 of the key's SPKI
    certificate: bytes = _blob()  # DER, exactly as carried
    certificate_digest: bytes = _blob()  # SHA-256 of the DER: the key-learned leaf's
    not_after: datetime = _ts()  # the certificate's, for operators' listings
    learned_at: datetime = _ts()
    message_id: str = Field(default="", max_length=MESSAGE_ID_CHARS)  # what carried it


class CertificateSeen(SQLModel, table=True):
    """A trust anchor or signing certificate a configuration of this hub named, this hub's
    own or a partner's, kept from the first start or reload that used it, for ever: a trail
    export carries it, so what a certificate long taken out of the configuration signed still
    verifies there (``trail verify --messages``), years later."""

    __tablename__ = "certificate_history"
    party: str = Field(primary_key=True, max_length=16)
    role: str = Field(primary_key=True, max_length=8)  # "anchor" or "signing"
    digest: str = Field(primary_key=True, max_length=64)  # hex SHA-256 of the DER
    certificate: bytes = _blob()  # DER
    first_seen: datetime = _ts()


# The registry (docs/adr/0012-mutual-recognition.md): AEO statuses and control results, written
# in the transaction of the message that carried each. Keys come first in each primary key, so
# that a lookup by AEO id, or by an MRN, LRN, container or transport document, is one range of
# one b-tree; on SQLite the tables are their primary key (no rowid b-tree beside it).
REGISTRY_KEY = MAX_INDEXED_KEY


def _key(primary: bool = False) -> Any:
    return Field(primary_key=primary, max_length=REGISTRY_KEY)


def _revision(primary: bool = False) -> Any:
    return Field(primary_key=primary, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})


def _leaf(primary: bool = False) -> Any:
    return Field(
        primary_key=primary, sa_type=TRAIL_INDEX, sa_column_kwargs={"autoincrement": False}
    )


# columns declared once for a current table and its history: as types, not Column objects,
# which belong to one table each
_TIME = DateTime(timezone=True)


class _AeoColumns(SQLModel):
    """An AEO status as the registry keeps it (hub.core.registry.AeoRecord). The key columns
    come first, in their primary key's order (migration 0006 says why)."""

    aeo_id: str = _key(primary=True)
    party: str = Field(primary_key=True, max_length=16)  # the issuing administration
    revision: int = _revision()
    trail_index: int = _leaf()
    tin: str = _key()
    name: str = ""
    programme: str = Field(max_length=32)
    status: str = Field(max_length=32)
    valid_from: str = ""
    valid_to: str = ""
    country_code: str = ""
    message_id: str = Field(default="", max_length=MESSAGE_ID_CHARS)
    received_at: datetime = Field(sa_type=_TIME)
    document: bytes = Field(default=b"", sa_type=LargeBinary)


class AeoRegistry(_AeoColumns, table=True):
    """The newest revision of each AEO status, per AEO id and issuing administration."""

    __tablename__ = "aeo_registry"
    __table_args__ = (
        Index("ix_aeo_registry_tin", "tin"),
        # a party's statuses in AEO id order, with their revisions (``Registry.revisions``)
        Index("ix_aeo_registry_party", "party", "aeo_id", "revision"),
        {"sqlite_with_rowid": False},
    )


class AeoRegistryHistory(_AeoColumns, table=True):
    """Every revision of every AEO status received, each with its message and leaf: what
    ``as_of`` lookups read."""

    __tablename__ = "aeo_registry_history"
    __table_args__ = (
        Index("ix_aeo_registry_history_tin", "tin"),
        {"sqlite_with_rowid": False},
    )
    revision: int = _revision(primary=True)
    trail_index: int = _leaf(primary=True)


class _ControlColumns(SQLModel):
    """A control result as the registry keeps it (hub.core.registry.ControlRecord)."""

    party: str = Field(primary_key=True, max_length=16)  # the controlling administration
    key: str = _key(primary=True)  # hub.core.revisions.control_key
    revision: int = _revision()
    trail_index: int = _leaf()
    control_id: str = ""
    declaration_id: str = ""
    functional_reference_id: str = ""
    transport_document_id: str = ""
    container_ids: str = "[]"  # JSON list
    control_type: str = Field(max_length=32)
    stage: str = Field(max_length=32)
    outcome: str = Field(max_length=32)
    controlled_at: str = ""
    office_id: str = ""
    message_id: str = Field(default="", max_length=MESSAGE_ID_CHARS)
    received_at: datetime = Field(sa_type=_TIME)
    document: bytes = Field(default=b"", sa_type=LargeBinary)


class ControlRegistry(_ControlColumns, table=True):
    """The newest revision of each control result, per controlling administration and key."""

    __tablename__ = "control_registry"
    __table_args__ = {"sqlite_with_rowid": False}


class ControlRegistryHistory(_ControlColumns, table=True):
    """Every revision of every control result received."""

    __tablename__ = "control_registry_history"
    __table_args__ = {"sqlite_with_rowid": False}
    revision: int = _revision(primary=True)
    trail_index: int = _leaf(primary=True)


class ControlRegistryKey(SQLModel, table=True):
    """What each current control result can be looked up by: ``kind`` is "mrn", "lrn",
    "container" or "transport-document", ``value`` its first MAX_INDEXED_KEY characters."""

    __tablename__ = "control_registry_key"
    __table_args__ = (
        Index("ix_control_registry_key_control", "party", "key"),
        {"sqlite_with_rowid": False},
    )
    kind: str = Field(primary_key=True, max_length=32)
    value: str = _key(primary=True)
    party: str = Field(primary_key=True, max_length=16)
    key: str = _key(primary=True)


def table_named(name: str) -> Table:
    return SQLModel.metadata.tables[name]


OUTBOUND = table_named("outbound_message")
OUTBOX = table_named("outbox")
PARTNER_BACKOFF = table_named("partner_backoff")
RECEIPT = table_named("receipt")
INBOUND = table_named("inbound_message")
ORIGINAL = table_named("inbound_original")
STATE = table_named("current_state")
SUBMISSION = table_named("submission")
TRAIL = table_named("trail_entry")
TRAIL_KEY = table_named("trail_key")
TRAIL_NODE = table_named("trail_node")
CHECKPOINT = table_named("trail_checkpoint")
LEARNED_KEY = table_named("learned_signing_key")
CERTIFICATE_HISTORY = table_named("certificate_history")
AEO_REGISTRY = table_named("aeo_registry")
AEO_REGISTRY_HISTORY = table_named("aeo_registry_history")
CONTROL_REGISTRY = table_named("control_registry")
CONTROL_REGISTRY_HISTORY = table_named("control_registry_history")
CONTROL_REGISTRY_KEY = table_named("control_registry_key")


def _columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.name != "id")


REJECTION = table_named("rejection")
REJECTION_COLUMNS = _columns(REJECTION)


def values_of(obj: object, columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: getattr(obj, c) for c in columns}


class Writer:
    """How a hot path writes a table with plain SQL: the columns of its INSERT, in the table's
    own order, and each row's values read by name from its row type, so a column is named once,
    in the table's class. A row type that lacks a column fails at import, not at the first
    message."""

    def __init__(self, table: Table, row_type: type, *, without: tuple[str, ...] = ()) -> None:
        columns = [c for c in table.columns if c.name not in without]
        self.columns = tuple(c.name for c in columns)
        missing = set(self.columns) - {f.name for f in fields(row_type)}
        if missing:
            raise TypeError(f"{row_type.__name__} lacks {sorted(missing)} of {table.name}")
        self._read = operator.attrgetter(*self.columns)
        self._times = tuple(i for i, c in enumerate(columns) if isinstance(c.type, DateTime))

    def values(self, row: object, time: Callable[[datetime], Any]) -> list[Any]:
        """``row``'s values in column order, its times as the driver takes them (``time``)."""
        values = list(self._read(row))
        for i in self._times:
            if values[i] is not None:
                values[i] = time(values[i])
        return values


@dataclass(slots=True)
class NewOutbound:
    """An outbound message to queue (the columns of ``OutboundMessage``, and what only its
    ``queued`` trail leaf keeps: the agreement whose sharing policy was applied and that
    agreement's digest, empty without agreements)."""

    message_id: str
    recipient: str
    body_type: str
    envelope: bytes
    envelope_digest: bytes
    created_at: datetime
    expires_at: datetime | None = None
    correlation_id: str = ""
    document_digest: bytes | None = None
    business_keys: str = "{}"
    submission_id: str | None = None
    status: str = QUEUED
    id: int | None = None
    agreement: str = ""
    policy_digest: str = ""


@dataclass(slots=True)
class InboundRow:
    """An inbound message to accept (the columns of ``InboundMessage``)."""

    message_id: str
    sender: str
    body_type: str
    envelope_digest: bytes
    received_at: datetime
    correlation_id: str = ""
    header: bytes = b""
    body: bytes = b""
    business_keys: str = "{}"
    signed_receipt: bytes = b""
    superseded: bool = False
    envelope: bytes = b""  # the bytes received, as they came off the wire: never re-serialised
    id: int | None = None
    trail_index: int = 0  # its "received" leaf, set when it is accepted (not a column)
    # A document in a partner format (a RawDocument body): ``body`` is its translation and
    # these keep what was signed (stored in inbound_original)
    original_format: str = ""
    original_body: bytes = b""
    document_digest: bytes = b""
    trace: str | None = None  # the traceparent of its ``receive`` span (telemetry on)

    # what ``stored`` reads of a message accepted before, in this order
    STORED: ClassVar[tuple[str, ...]] = (
        "id",
        "sender",
        "message_id",
        "envelope_digest",
        "signed_receipt",
        "body_type",
        "header",
    )

    @classmethod
    def stored(cls, values: Sequence[Any], received_at: datetime) -> InboundRow:
        """A message accepted before, from its columns read in ``STORED`` order: what a
        resend is compared with."""
        read = dict(zip(cls.STORED, values, strict=True))
        return cls(
            id=read["id"],
            sender=read["sender"],
            message_id=read["message_id"],
            envelope_digest=bytes(read["envelope_digest"]),
            signed_receipt=bytes(read["signed_receipt"]),
            body_type=read["body_type"],
            header=bytes(read["header"]),
            received_at=received_at,
        )

    def signed_the_same(self, other: InboundRow) -> bool:
        """Whether ``other`` carries what this row's sender signed (``signed_alike``)."""
        return signed_alike(
            (self.envelope_digest, self.header), (other.envelope_digest, other.header)
        )


@dataclass(slots=True)
class ReceiptRow:
    """A partner's receipt to store (the columns of ``ReceiptRecord``)."""

    message_id: str
    receiver: str
    outcome: str
    signed_receipt: bytes
    received_at: datetime
    reason: str = ""
    envelope_digest: bytes = b""


@dataclass(frozen=True)
class DueDelivery:
    entry_id: int
    outbound_id: int
    message_id: str
    partner: str
    envelope: bytes
    envelope_digest: bytes
    attempts: int
    expires_at: datetime | None = None
    # repeated in the trail's delivered / dead-lettered entry, so auditors find it by them
    correlation_id: str = ""
    body_type: str = ""
    business_keys: str = "{}"
    created_at: datetime | None = None  # when its message was queued (delivery latency)

    # what ``of`` reads, by name: the entry (outbox) and its message (outbound_message)
    COLUMNS: ClassVar[tuple[Any, ...]] = (
        OUTBOX.c.id.label("entry_id"),
        OUTBOX.c.outbound_id,
        OUTBOUND.c.message_id,
        OUTBOX.c.partner,
        OUTBOUND.c.envelope,
        OUTBOUND.c.envelope_digest,
        OUTBOX.c.attempts,
        OUTBOX.c.expires_at,
        OUTBOUND.c.correlation_id,
        OUTBOUND.c.body_type,
        OUTBOUND.c.business_keys,
        OUTBOUND.c.created_at,
    )

    @classmethod
    def of(cls, row: Any) -> DueDelivery:
        """A row selected with ``COLUMNS``, unpacked in their order (a senders' hot path: by
        name, SQLAlchemy's rows cost a lookup per column)."""
        (entry_id, outbound_id, message_id, partner, envelope, digest, attempts, expires_at,
         correlation_id, body_type, keys, created_at) = row  # fmt: skip
        return cls(
            entry_id,
            outbound_id,
            message_id,
            partner,
            bytes(envelope),
            bytes(digest),
            attempts,
            as_utc(expires_at) if expires_at else None,
            correlation_id,
            body_type,
            keys,
            as_utc(created_at),
        )


@dataclass(frozen=True)
class Settlement:
    """What a partner's receipt means for one outbound message."""

    due: DueDelivery
    receipt: ReceiptRow | ReceiptRecord
    # a final rejection becomes a dead letter with this reason; None settles the message
    dead_reason: str | None = None


@dataclass
class Incoming:
    """An inbound message to accept, with the state it updates (if any) and what the registry
    keeps of it (its ``trail_index`` is the "received" leaf's, set when it is accepted)."""

    row: InboundRow
    state: StateRef | None = None
    record: AeoRecord | ControlRecord | None = None
    # when its receipt was signed (ns since the epoch), for its trace: telemetry on, accepted
    receipt_ns: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Accepted:
    """The outcome of accepting one inbound message: ``fresh`` is False when the same sender's
    message id was accepted before; ``row`` is then the earlier one."""

    fresh: bool
    row: InboundRow


@dataclass(frozen=True)
class TrailQuery:
    """An auditor's filters on the trail: every one given must match. ``visible`` restricts
    to entries whose sender or recipient is one of those parties (a token's restriction)."""

    since: datetime | None = None
    until: datetime | None = None
    party: str = ""
    body_type: str = ""
    message_id: str = ""
    correlation_id: str = ""
    key: tuple[str, str] | None = None
    kinds: tuple[str, ...] = ()
    visible: frozenset[str] | None = None
    oldest_first: bool = False
    after: int | None = None  # the last index of the previous page
    limit: int = 100


@dataclass(frozen=True)
class StoredMessage:
    """A message's exact signed bytes, for auditors allowed to read them."""

    message_id: str
    direction: str
    partner: str
    body_type: str
    envelope_digest: bytes
    envelope: bytes = b""  # as sent, or as received (none for inbound ones before 0003)
    header: bytes = b""  # inbound
    body: bytes = b""
    signed_receipt: bytes = b""  # outbound: the partner's receipt as received, once settled


@dataclass(frozen=True)
class MessageRow:
    """One line of ``customs-hub messages``."""

    direction: str
    message_id: str
    body_type: str
    partner: str
    status: str
    receipt: str
    business_keys: dict[str, list[str]]
    at: datetime


@dataclass(frozen=True)
class OutboxRow:
    """One line of ``customs-hub outbox``."""

    message_id: str
    partner: str
    body_type: str
    state: str  # queued, retrying, dead
    attempts: int
    reason: str  # a dead letter's reason, else the last error
    created_at: datetime
    # not before then: the later of the entry's own time and its partner's backoff
    next_attempt_at: datetime
    last_error: str = ""


def business_keys_of(text: str) -> dict[str, list[str]]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): [str(v) for v in vs] for k, vs in value.items() if isinstance(vs, list)}


# the tables the hot paths write row by row, each from its row type
OUTBOUND_WRITER = Writer(OUTBOUND, NewOutbound)
INBOUND_WRITER = Writer(INBOUND, InboundRow, without=("id",))
RECEIPT_WRITER = Writer(RECEIPT, ReceiptRow, without=("id",))
