"""Trail events and their canonical leaf encoding (pure core).

Every event the hub records becomes one leaf of its trail, an append-only Merkle log with
RFC 6962 hashing (hub/trail/merkle.py, hub/trail/tree.py). A leaf is a ``TrailEvent``
serialised once, when it is appended; the bytes are stored and exported as they are, and its
leaf hash is SHA-256(0x00 || bytes). Verifiers parse those bytes and never re-serialise them,
as with envelopes. docs/trail.md documents the encoding and what each kind of event sets.

What it must never do: put a payload (a document body, an envelope) into an event, or open a
file, socket or database session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hub.pb.customs_hub.v1 import trail_pb2 as tpb
from hub.trail import merkle

# What happened; docs/trail.md says what each kind means and which fields it sets.
KINDS = frozenset(
    {
        "received",  # a partner's message accepted (its receipt carries this leaf's index)
        "duplicate",  # a partner's message delivered again; answered with the first receipt
        "rejected",  # refused, from a partner or a domestic system, with a reason code
        "translated",  # a domestic or partner document translated into the canonical form
        "routed",  # a domestic document routed to its recipients
        "queued",  # a signed message put in a partner's outbox
        "delivery-failed",  # an attempt to deliver failed; the message stays queued
        "delivered",  # the partner's verified receipt stored; the message left the outbox
        "dead-lettered",  # expired undelivered, or finally rejected by the partner
        "requeued",  # an operator put a dead letter back in the queue, re-signed or re-routed it
        "dropped",  # an operator removed a message from the outbox for good
        "handed-over",  # a domestic subscriber acknowledged a partner's message
        "config-changed",  # the hub started with another configuration or keys
        "key-learned",  # a partner's signing key learned from the certificate it carried
        "answered",  # a partner's Query or Snapshot answered: what was shared with whom
    }
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TrailError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Event:
    """One event to record. Fields not set stay empty in the leaf."""

    kind: str
    at: datetime
    message_id: str = ""
    correlation_id: str = ""
    sender: str = ""
    recipient: str = ""
    body_type: str = ""
    envelope_digest: bytes = b""
    document_digest: bytes = b""
    reason: str = ""
    detail: str = ""
    keys: Mapping[str, Sequence[str]] = field(default_factory=dict)
    outcome: str = ""
    revision: int = 0
    config_digest: bytes = b""
    agreement: str = ""  # queued: the agreement whose policy was applied, and its digest
    policy_digest: str = ""


@dataclass(frozen=True, slots=True)
class Leaf:
    """An encoded event: its bytes and leaf hash, and the fields the store indexes."""

    event: Event
    data: bytes
    hash: bytes


def encode(event: Event) -> Leaf:
    """The leaf for ``event``."""
    if event.kind not in KINDS:
        raise TrailError(f"unknown trail event kind {event.kind!r}")
    message = tpb.TrailEvent(
        kind=event.kind,
        message_id=event.message_id,
        correlation_id=event.correlation_id,
        sender=event.sender,
        recipient=event.recipient,
        body_type=event.body_type,
        envelope_digest=event.envelope_digest,
        document_digest=event.document_digest,
        reason=event.reason,
        detail=event.detail,
        keys=[
            tpb.BusinessKey(name=name, value=value)
            for name in sorted(event.keys)
            for value in event.keys[name]
        ],
        outcome=event.outcome,
        revision=event.revision,
        config_digest=event.config_digest,
        agreement=event.agreement,
        policy_digest=event.policy_digest,
    )
    since = as_utc(event.at) - EPOCH
    message.at.seconds = since.days * 86400 + since.seconds
    message.at.nanos = since.microseconds * 1000
    data = message.SerializeToString(deterministic=True)
    return Leaf(event, data, merkle.leaf_hash(data))


def decode(data: bytes) -> tpb.TrailEvent:
    """Parse a stored leaf (for verification and queries); raises TrailError if it is not a
    TrailEvent of a known kind."""
    message = tpb.TrailEvent()
    try:
        message.ParseFromString(data)
    except Exception as exc:
        raise TrailError("leaf is not a TrailEvent") from exc
    if message.kind not in KINDS:
        raise TrailError(f"leaf has unknown kind {message.kind!r}")
    return message


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
