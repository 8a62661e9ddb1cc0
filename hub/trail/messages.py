"""Offline verification of the messages in a trail export (pure core).

``customs-hub trail export`` also writes every stored message (``messages.bin``) and the
certificates the hub trusted (``certificates/``); ``customs-hub trail verify --messages``
checks, after the trail itself verified, that each message is what its trail leaf recorded
and that its sender signed it. docs/trail.md describes the files and the steps.

``messages.bin`` is a sequence of records, one per message, each six fields in this order,
each ``uint32 length (big-endian) | bytes``::

    direction ("in" or "out") | party (sender, or recipient) | message id
    | envelope (as received, or as sent) | header | body (inbound: as stored)

Nothing in ``messages.bin`` is trusted: a message is evidence only through the digest its
leaf records, and the leaf only through the signed checkpoints (hub/trail/verify.py). The
certificates are trusted as far as the auditor trusts the trust anchors they chain to (the
report prints each anchor's fingerprint to compare with one obtained elsewhere).

What it must never do: re-serialise an envelope to check it, let a message choose the
algorithm its signature is checked with, or open a file or a socket.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from google.protobuf.message import DecodeError

from hub.core.errors import HubError, SignatureError
from hub.core.signing import ENVELOPE_DOMAIN, VerificationKey, pae
from hub.core.trust import Anchors, as_anchors, check_issued_by, party_of, verification_key_of
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.trail import events as trail
from hub.trail.verify import ExportError, Record

INBOUND, OUTBOUND = "in", "out"
# the leaf that records each direction's message, with the digest of its envelope
LEAF_KIND = {INBOUND: "received", OUTBOUND: "queued"}
FIELDS = ("direction", "party", "message_id", "envelope", "header", "body")
LENGTH = struct.Struct(">I")
# Envelopes are at most [limits] max_envelope_bytes (4 MiB by default, raised by few). 64 MiB
# bounds what a damaged or hostile export can make the verifier read into memory at once.
MAX_FIELD_BYTES = 64 * 1024 * 1024
# The report lists this many problems in full and counts the rest.
MAX_PROBLEMS = 100


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One exported message. ``envelope`` is empty for an inbound message stored before the
    hub kept envelopes (store revision 0003)."""

    direction: str
    party: str  # the sender of an inbound message, the recipient of an outbound one
    message_id: str
    envelope: bytes
    header: bytes = b""  # inbound: the header as stored (what subscribers were handed)
    body: bytes = b""  # inbound: the signed body as stored (a partner document's original)


def encode_message(record: MessageRecord) -> bytes:
    parts = [
        record.direction.encode(),
        record.party.encode(),
        record.message_id.encode(),
        record.envelope,
        record.header,
        record.body,
    ]
    if any(len(p) > MAX_FIELD_BYTES for p in parts):
        raise ExportError(f"message {record.message_id}: a field is out of bounds")
    return b"".join(LENGTH.pack(len(p)) + p for p in parts)


def read_messages(stream: BinaryIO) -> Iterator[MessageRecord]:
    """The records of a ``messages.bin`` stream; raises ExportError where it is cut short or
    a field is out of bounds."""
    position = 0
    while True:
        parts: list[bytes] = []
        for name in FIELDS:
            prefix = stream.read(LENGTH.size)
            if not prefix and not parts:
                return
            if len(prefix) != LENGTH.size:
                raise ExportError(f"messages.bin: cut short at byte {position}")
            (length,) = LENGTH.unpack(prefix)
            if length > MAX_FIELD_BYTES:
                raise ExportError(
                    f"messages.bin: the {name} at byte {position} claims {length} bytes "
                    f"(at most {MAX_FIELD_BYTES})"
                )
            value = stream.read(length)
            if len(value) != length:
                raise ExportError(f"messages.bin: the {name} at byte {position} is cut short")
            position += LENGTH.size + length
            parts.append(value)
        direction, party, message_id = (p.decode("utf-8", "replace") for p in parts[:3])
        yield MessageRecord(direction, party, message_id, *parts[3:])


@dataclass(frozen=True)
class PartyCertificates:
    """What the hub trusted for one party: its trust anchor and its signing certificates."""

    anchor: Anchors  # its CA, or several: a CA and its successors, over the years
    signing: Sequence[x509.Certificate]

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return as_anchors(self.anchor)


# a message's leaf: (direction, party, message id) -> (index, envelope digest) of each leaf
LeafIndex = dict[tuple[str, str, str], list[tuple[int, bytes]]]


def message_leaves(records: Iterable[Record]) -> LeafIndex:
    """Every ``received`` and ``queued`` leaf, by the message it names. Call it on records the
    trail verification accepted; it skips leaves that do not parse."""
    found: LeafIndex = {}
    for record in records:
        try:
            event = trail.decode(record.leaf)
        except trail.TrailError:
            continue
        if event.kind == "received":
            key = (INBOUND, event.sender, event.message_id)
        elif event.kind == "queued":
            key = (OUTBOUND, event.recipient, event.message_id)
        else:
            continue
        found.setdefault(key, []).append((record.index, event.envelope_digest))
    return found


@dataclass(frozen=True)
class Problem:
    index: int | None  # the message's leaf, where one names it
    direction: str
    party: str
    message_id: str
    problem: str

    def line(self) -> str:
        if not self.message_id:  # about the export, not one message
            return f"BAD: {self.problem}"
        where = f"index {self.index}" if self.index is not None else "no index"
        arrow = "from" if self.direction == INBOUND else "to"
        return f"BAD message {self.message_id} {arrow} {self.party} ({where}): {self.problem}"


@dataclass
class MessagesReport:
    """What message verification found: ``ok`` only if every message covered by a signed
    checkpoint matched its leaf and its signature, and none is missing."""

    checked: int = 0  # verified: leaf digest and signature
    uncovered: int = 0  # their leaf is after the latest checkpoint: nothing vouches yet
    not_kept: int = 0  # received before envelopes were kept (store revision 0003)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    anchors: dict[str, str] = field(default_factory=dict)  # party -> SHA-256 of the anchor

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def summary(self) -> str:
        counts = f"{self.checked} messages match their leaves and their senders' signatures"
        if self.not_kept:
            counts += (
                f"; {self.not_kept} received before envelopes were kept have no signed bytes "
                "to check"
            )
        if self.uncovered:
            counts += f"; {self.uncovered} later ones are not covered by a checkpoint yet"
        if self.ok:
            return f"OK: {counts}"
        lines = [p.line() for p in self.problems]
        if self.problem_count > len(self.problems):
            lines.append(f"... and {self.problem_count - len(self.problems)} more")
        return "\n".join([*lines, f"BAD: {self.problem_count} messages failed; {counts}"])


class _Signers:
    """Each party's signing keys, from certificates issued by its anchor and naming it."""

    def __init__(self, certificates: Mapping[str, PartyCertificates]) -> None:
        self.certificates = certificates
        self._keys: dict[str, list[tuple[x509.Certificate, VerificationKey]]] = {}

    def keys(self, party: str) -> list[tuple[x509.Certificate, VerificationKey]]:
        if party not in self._keys:
            self._keys[party] = self._load(party)
        return self._keys[party]

    def _load(self, party: str) -> list[tuple[x509.Certificate, VerificationKey]]:
        trusted = self.certificates.get(party)
        if trusted is None:
            return []
        keys = []
        for cert in trusted.signing:
            try:  # issued by the anchor (whether it was valid is asked per message)
                check_issued_by(cert, trusted.anchors, cert.not_valid_before_utc)
                if party_of(cert) == party:
                    keys.append((cert, verification_key_of(cert, party)))
            except HubError:
                continue
        return keys


def verify_messages(
    messages: Iterable[MessageRecord],
    leaves: LeafIndex,
    verified_size: int,
    certificates: Mapping[str, PartyCertificates],
) -> MessagesReport:
    """Check each exported message against its leaf and its sender's certificates (the steps
    below), then that every message a covered leaf records was exported."""
    report = MessagesReport(
        anchors={
            party: " ".join(
                hashlib.sha256(a.public_bytes(Encoding.DER)).hexdigest() for a in c.anchors
            )
            for party, c in sorted(certificates.items())
        }
    )
    signers = _Signers(certificates)
    kept: set[tuple[str, str, str]] = set()
    first_kept: dict[str, int] = {}  # per direction: the first leaf whose envelope was kept
    for message in messages:
        key = (message.direction, message.party, message.message_id)
        # 1. A leaf of the trail records this message: "received" for one a partner sent,
        #    "queued" for one this hub signed; covered by a signed checkpoint.
        named = leaves.get(key, [])
        if not named:
            kind = LEAF_KIND.get(message.direction, "received or queued")
            report.add(_problem(message, None, f"no {kind} leaf of the trail names it"))
            continue
        index = named[0][0]
        if index >= verified_size:
            report.uncovered += 1
            continue
        # 2. Its envelope was kept (an inbound message stored before revision 0003 has none;
        #    step 7 decides whether that is allowed).
        if not message.envelope:
            continue
        kept.add(key)
        first_kept[message.direction] = min(first_kept.get(message.direction, index), index)
        # 3. The envelope's bytes hash to the digest the leaf recorded.
        digest = hashlib.sha256(message.envelope).digest()
        if all(recorded != digest for _, recorded in named):
            fault = "its envelope does not hash to the digest its leaf records"
        else:
            fault = _check_envelope(message, signers)
        if fault:
            report.add(_problem(message, index, fault))
        else:
            report.checked += 1
    # 7. Every message a covered leaf records is in the export with its envelope; inbound
    #    ones from the first whose envelope was kept on. Those before were stored before the
    #    hub kept envelopes: counted, as nothing signed can be checked for them.
    for (direction, party, message_id), named in leaves.items():
        index = named[0][0]
        if index >= verified_size or (direction, party, message_id) in kept:
            continue
        first = first_kept.get(direction)
        if direction == INBOUND and (first is None or index < first):
            report.not_kept += 1
            continue
        report.add(
            Problem(
                index,
                direction,
                party,
                message_id,
                "the export does not hold its envelope (the stored message or its envelope "
                "is gone)",
            )
        )
    return report


def _problem(message: MessageRecord, index: int | None, text: str) -> Problem:
    return Problem(index, message.direction, message.party, message.message_id, text)


def _check_envelope(message: MessageRecord, signers: _Signers) -> str:
    """Steps 4 to 6 for one message whose envelope hashed to its leaf's digest: what is wrong,
    or the empty string."""
    # 4. The envelope and its signed header parse, and the header names this message, its
    #    parties and the body it carries.
    envelope, header = pb.Envelope(), pb.Header()
    try:
        envelope.ParseFromString(message.envelope)
        header.ParseFromString(envelope.header)
    except DecodeError:
        return "its envelope or the header in it does not parse"
    party = header.sender if message.direction == INBOUND else header.recipient
    if header.message_id != message.message_id or party != message.party:
        return (
            f"its envelope names message {header.message_id} of {header.sender} to "
            f"{header.recipient}"
        )
    if header.body_digest != hashlib.sha256(envelope.body).digest():
        return "its envelope's body does not match the body digest its header signs"
    # 5. What the hub stored and handed on is what was signed: the header and the body.
    if message.direction == INBOUND:
        if message.header != envelope.header:
            return "the stored header is not the header the sender signed"
        if message.body != envelope.body:
            return "the stored body is not the body the sender signed"
    # 6. A signature verifies with a signing certificate of the sender, issued by its trust
    #    anchor and valid when the message was created; the algorithm is the key's.
    if not header.HasField("created_at"):
        return "its header carries no creation time"
    created = header.created_at.ToDatetime(UTC)
    keys = signers.keys(header.sender)
    if not keys:
        return f"the export holds no signing certificate of {header.sender}"
    valid = {key.key_id: key for _, key in keys if _usable(key, created)}
    signed = pae(ENVELOPE_DOMAIN, envelope.header, envelope.body)
    for signature in envelope.signatures:
        key = valid.get(signature.key_id)
        pinned = key is not None and int(key.algorithm) == signature.algorithm
        if pinned and key is not None and key.verify(signature.value, signed):
            return ""
    return (
        f"no signature verifies with a signing certificate of {header.sender} valid at "
        f"{_time(created)}"
    )


def _usable(key: VerificationKey, created: datetime) -> bool:
    """Whether ``key`` could sign a message created at ``created``: its certificate fits the
    signing profile (ADR 0008) and was valid then (a later look: no receiver's clock)."""
    try:
        key.check_use(created, None, timedelta(0), "the message")
    except SignatureError:
        return False
    return True


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
