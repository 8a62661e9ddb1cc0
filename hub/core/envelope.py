"""Build and open signed envelopes (pure core).

``open_envelope`` is the receiving procedure, written as numbered steps that mirror
docs/adr/0001-envelope-format.md. It takes the exact bytes received and returns what it
verified, or raises one ``EnvelopeError`` with its reason. It never re-serialises what it
received and never opens a socket or a database.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, MutableSet, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError, Message

from hub.core.errors import (
    EnvelopeError,
    RecipientError,
    SenderMismatchError,
    SignatureError,
    TimeWindowError,
)
from hub.core.limits import ID_CHARS
from hub.core.messages import body_class
from hub.core.signing import (
    ENVELOPE_DOMAIN,
    RECEIPT_BATCH_DOMAIN,
    RECEIPT_DOMAIN,
    Signer,
    VerificationKey,
    pae,
)
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.trail import merkle

SCHEMA_VERSION = "customs_hub.v1"
# A body that is a document in a partner format (EDIFACT, NCTS XML, ...), translated on ingress
RAW_BODY_TYPE = spb.RawDocument.DESCRIPTOR.full_name

# Translates a partner-format document (format id, bytes) into a business message, or raises
# a HubError saying why not (the receiver's registry and the partner's allowed formats).
RawReader = Callable[[str, bytes], Message]
# The key of a signature naming a key id the receiver does not know, read from the certificate
# the signature carries (hub/core/trust.py carried_signing_key, and the revocation lists), or a
# HubError saying why that certificate vouches for nothing (docs/adr/0010-key-rotation.md).
KeyLearner = Callable[[pb.Signature], VerificationKey]


def uuid7(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version, 74 random bits."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64  # 12 bits rand_a
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # 62 bits rand_b
    return str(uuid.UUID(int=value))


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class TimePolicy:
    clock_skew: timedelta
    max_lifetime: timedelta


@dataclass(frozen=True)
class OpenedEnvelope:
    """An envelope whose signature, addressing and time window were verified."""

    header: pb.Header
    header_bytes: bytes
    body: bytes
    document: Message  # the parsed business message (translated, for a RawDocument body)
    envelope_digest: bytes
    key_id: str
    original_format: str = ""  # a RawDocument body: its format ...
    document_digest: bytes = b""  # ... and the SHA-256 of its document bytes


def build_envelope(
    signer: Signer,
    *,
    sender: str,
    recipient: str,
    document: Message,
    created_at: datetime,
    ttl: timedelta,
    message_id: str | None = None,
    correlation_id: str = "",
    traceparent: str = "",
) -> tuple[bytes, pb.Header]:
    """Serialise, sign and return (envelope bytes, header). ``traceparent`` is the sender's
    W3C trace context when it traces (signed with the header), else empty."""
    body = document.SerializeToString(deterministic=True)
    header = pb.Header(
        message_id=message_id or uuid7(),
        correlation_id=correlation_id,
        sender=sender,
        recipient=recipient,
        body_type=document.DESCRIPTOR.full_name,
        body_digest=sha256(body),
        schema_version=SCHEMA_VERSION,
        traceparent=traceparent,
    )
    header.created_at.FromDatetime(created_at)
    header.expires_at.FromDatetime(created_at + ttl)
    return sign_envelope(signer, header.SerializeToString(deterministic=True), body), header


def sign_envelope(signer: Signer, header_bytes: bytes, body: bytes) -> bytes:
    signature = _signature(signer, pae(ENVELOPE_DOMAIN, header_bytes, body))
    envelope = pb.Envelope(header=header_bytes, body=body, signatures=[signature])
    return envelope.SerializeToString(deterministic=True)


def open_envelope(
    data: bytes,
    *,
    peer_party: str,
    local_party: str,
    peer_keys: Mapping[str, VerificationKey],
    now: datetime,
    policy: TimePolicy | None,
    max_bytes: int,
    read_raw: RawReader | None = None,
    clock_skew: timedelta | None = None,
    learn: KeyLearner | None = None,
    body_types: Mapping[str, type[Message]] | None = None,
) -> OpenedEnvelope:
    """Verify an envelope received from ``peer_party`` (the party its mTLS certificate names).

    With ``read_raw``, a body of type RawDocument (a document in a partner format) is accepted
    and translated by it; without, such a body is an unsupported body type. The signing key's
    certificate is checked with ``clock_skew`` (by default the policy's; a caller that checks
    the window itself, with policy=None, passes it). With ``learn``, a signature by a key not
    in ``peer_keys`` that carries its certificate is tried with the key ``learn`` reads from
    that certificate (docs/adr/0010-key-rotation.md); its dates are checked here like any
    key's. ``body_types`` names the body types accepted, instead of the business messages: a
    partner's query (hub/app/answers.py) is an envelope too, and a business message is no
    query, nor a query a business message."""
    if clock_skew is None:
        clock_skew = policy.clock_skew if policy is not None else timedelta(0)
    # 1. Bound the work before parsing anything.
    if len(data) > max_bytes:
        raise EnvelopeError(
            f"envelope is {len(data)} bytes; the limit is {max_bytes}", reason="too-large"
        )
    digest = sha256(data)
    # 2. Parse the outer structure only; header and body stay opaque bytes until verified.
    envelope = pb.Envelope()
    try:
        envelope.ParseFromString(data)
    except DecodeError:
        raise EnvelopeError(
            "envelope is not a valid Envelope message", reason="envelope-malformed"
        ) from None
    # 3. At least one signature verifies over PAE(domain, header, body) with a key that the
    #    trust store binds to the peer's party, using the algorithm pinned to that key; failing
    #    that, with a key read from a certificate a signature carries, if ``learn`` vouches
    #    for it.
    key = _verify_signatures(envelope, peer_party, peer_keys, learn)
    key_id = key.key_id
    # 4. Only now parse the header the peer signed.
    header = pb.Header()
    try:
        header.ParseFromString(envelope.header)
    except DecodeError:
        raise EnvelopeError(
            "signed header is not a valid Header message", reason="header-malformed"
        ) from None
    check_header_fields(header)
    #    The key that verified was fit to sign: its certificate fits the signing profile, was
    #    valid at created_at (the signing time) and is valid now, within the clock skew. One
    #    valid now but not yet at created_at may be a resend, signed again with a new key, of
    #    a message accepted under the old one: it is verified to the end and refused as
    #    ``SignedBeforeCertificate``, which the caller may answer with the first receipt.
    if not header.HasField("created_at"):
        raise TimeWindowError("header must carry created_at", reason="header-malformed")
    created = header.created_at.ToDatetime(UTC)
    resigned: SignatureError | None = None
    try:
        key.check_use(created, now, clock_skew, "the envelope")
    except SignatureError as exc:
        if exc.reason != "certificate-not-yet-valid" or key.not_before is None:
            raise
        if created >= key.not_before:  # it is now that is before notBefore
            raise
        key.check_use(now, now, clock_skew, "the envelope")  # valid now, exactly
        resigned = exc
    # 5. The sender named in the header is the party the TLS certificate proved.
    if header.sender != peer_party:
        raise SenderMismatchError(
            f"envelope names sender {header.sender!r} but the connection's certificate is "
            f"{peer_party!r}"
        )
    # 6. Addressed to this hub.
    if header.recipient != local_party:
        raise RecipientError(
            f"envelope is addressed to {header.recipient!r}; this hub is {local_party!r}"
        )
    # 7. A contract version this hub speaks.
    if header.schema_version != SCHEMA_VERSION:
        raise EnvelopeError(
            f"schema version {header.schema_version!r} is not supported; "
            f"expected {SCHEMA_VERSION!r}",
            reason="unsupported-schema-version",
        )
    # 8. The body is the one the header describes.
    if header.body_digest != sha256(envelope.body):
        raise SignatureError(
            "body digest in the header does not match the body", reason="body-digest-mismatch"
        )
    # 9. Inside the time window, allowing for clock skew between administrations. (A caller
    #    that passes policy=None checks the window itself, e.g. after a duplicate lookup.)
    if policy is not None:
        check_time_window(header, now, policy)
    # 10. A body type this hub knows, and a body that parses as that type. A document in a
    #     partner format is translated only now, after its signature and addressing verified.
    if header.body_type == RAW_BODY_TYPE and read_raw is not None and body_types is None:
        raw = spb.RawDocument()
        try:
            raw.ParseFromString(envelope.body)
        except DecodeError:
            raise EnvelopeError(
                f"body is not a valid {RAW_BODY_TYPE}", reason="body-malformed"
            ) from None
        translated = read_raw(raw.format, raw.content)
        return _opened(
            OpenedEnvelope(
                header,
                envelope.header,
                envelope.body,
                translated,
                digest,
                key_id,
                original_format=raw.format,
                document_digest=sha256(raw.content),
            ),
            resigned,
        )
    cls = body_class(header.body_type) if body_types is None else body_types.get(header.body_type)
    if cls is None:
        raise EnvelopeError(
            f"body type {header.body_type!r} is not supported", reason="unsupported-body-type"
        )
    document = cls()
    try:
        document.ParseFromString(envelope.body)
    except DecodeError:
        raise EnvelopeError(
            f"body is not a valid {header.body_type}", reason="body-malformed"
        ) from None
    return _opened(
        OpenedEnvelope(header, envelope.header, envelope.body, document, digest, key_id), resigned
    )


class SignedBeforeCertificate(SignatureError):
    """An envelope that verified in every step but one: its signing key's certificate is valid
    now, but was not yet at the header's created_at. Refused as ``certificate-not-yet-valid``,
    unless the receiver accepted a message with this very header before (a resend signed again
    with the sender's new key, docs/adr/0010-key-rotation.md), which it answers with the first
    receipt. ``opened`` is what was verified."""

    def __init__(self, error: SignatureError, opened: OpenedEnvelope) -> None:
        super().__init__(error.message, reason=error.reason)
        self.opened = opened


def _opened(opened: OpenedEnvelope, resigned: SignatureError | None) -> OpenedEnvelope:
    if resigned is not None:
        raise SignedBeforeCertificate(resigned, opened)
    return opened


UUID_TEXT = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# Correlation ids are the sender's free choice, stored and shown to auditors: printable ASCII,
# and short enough for an index (ID_CHARS: what the store's column holds).
CORRELATION_ID = re.compile(rf"^[\x21-\x7e]{{0,{ID_CHARS}}}$")
MAX_BODY_TYPE = ID_CHARS
# A W3C trace context "traceparent" (https://www.w3.org/TR/trace-context/#traceparent-header):
# version, trace id, parent span id and flags in lower-case hex, ids not all zero. Version 00
# is exactly those four fields; a later version (any but ff) may add fields after a dash, which
# are ignored, as W3C asks of a version-00 reader, so a partner whose tracer is newer does not
# get its messages refused. At most TRACEPARENT_CHARS, printable ASCII.
TRACEPARENT_CHARS = 256
_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[\x21-\x7e]*)?"
)


def traceparent_fields(value: str) -> tuple[int, int, int] | None:
    """The trace id, parent span id and flags a traceparent value names; None when it is not
    one (empty, too long, version ff, version 00 with more, ids all zero)."""
    if len(value) > TRACEPARENT_CHARS:
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, trace_id, span_id, flags, more = match.groups()
    if version == "ff" or (version == "00" and more is not None):
        return None
    trace, span = int(trace_id, 16), int(span_id, 16)
    if not trace or not span:
        return None
    return trace, span, int(flags, 16)


def check_header_fields(header: pb.Header) -> None:
    """Header values the hub stores and indexes must be well-formed before anything else."""
    if not UUID_TEXT.fullmatch(header.message_id):
        raise EnvelopeError(
            "message_id must be a UUID in its 36-character text form", reason="header-malformed"
        )
    if not CORRELATION_ID.fullmatch(header.correlation_id):
        raise EnvelopeError(
            f"correlation_id must be at most {ID_CHARS} printable ASCII characters without spaces",
            reason="header-malformed",
        )
    if not header.body_type or len(header.body_type) > MAX_BODY_TYPE:
        raise EnvelopeError(
            f"body_type must be 1 to {MAX_BODY_TYPE} characters", reason="header-malformed"
        )
    if header.traceparent and traceparent_fields(header.traceparent) is None:
        raise EnvelopeError(
            "traceparent must be empty or a W3C trace context (00-<32 hex>-<16 hex>-<2 hex>, "
            f"ids not all zero; a later version may add fields, {TRACEPARENT_CHARS} characters "
            "at most)",
            reason="header-malformed",
        )


# An envelope is signed by one key; while a sender rotates keys, by two. More is refused before
# any is verified, so the work an envelope can cause is bounded.
MAX_SIGNATURES = 4
MAX_SIGNATURE_BYTES = 1024  # a P-256 ECDSA signature is at most 72 bytes, Ed25519 64
MAX_KEY_ID = ID_CHARS


def _verify_signatures(
    envelope: pb.Envelope,
    party: str,
    keys: Mapping[str, VerificationKey],
    learn: KeyLearner | None = None,
) -> VerificationKey:
    """The key of a signature that verifies with a key trusted for ``party``. Only
    signatures naming a known key id with its pinned algorithm are verified, each key once.
    Then, if none did, signatures by other keys that carry a certificate, with the key
    ``learn`` reads from it (a certificate it refuses refuses the envelope, with its reason:
    the sender asked to be trusted by it)."""
    signatures = envelope.signatures
    if not signatures:
        raise SignatureError("envelope carries no signature", reason="signature-missing")
    if len(signatures) > MAX_SIGNATURES:
        raise EnvelopeError(
            f"envelope carries {len(signatures)} signatures; at most {MAX_SIGNATURES} are read",
            reason="too-many-signatures",
        )
    for signature in signatures:
        if len(signature.value) > MAX_SIGNATURE_BYTES or len(signature.key_id) > MAX_KEY_ID:
            raise EnvelopeError(
                f"a signature value is at most {MAX_SIGNATURE_BYTES} bytes and its key id "
                f"at most {MAX_KEY_ID} characters",
                reason="envelope-malformed",
            )
    signed = pae(ENVELOPE_DOMAIN, envelope.header, envelope.body)
    tried: set[str] = set()
    for signature in signatures:
        key = keys.get(signature.key_id)
        if key is None or int(key.algorithm) != signature.algorithm or key.key_id in tried:
            continue
        tried.add(key.key_id)
        if key.verify(signature.value, signed):
            return key
    if learn is not None:
        for signature in signatures:
            if not signature.certificate or signature.key_id in keys:
                continue
            key = learn(signature)
            if int(key.algorithm) != signature.algorithm or key.key_id in tried:
                continue
            tried.add(key.key_id)
            if key.verify(signature.value, signed):
                return key
    raise SignatureError(
        f"no signature verifies with a signing key trusted for {party}", reason="signature-invalid"
    )


def check_time_window(header: pb.Header, now: datetime, policy: TimePolicy) -> None:
    if not header.HasField("created_at") or not header.HasField("expires_at"):
        raise TimeWindowError(
            "header must carry created_at and expires_at", reason="header-malformed"
        )
    created = header.created_at.ToDatetime(UTC)
    expires = header.expires_at.ToDatetime(UTC)
    if created > now + policy.clock_skew:
        raise TimeWindowError(
            f"message is dated {created:%Y-%m-%dT%H:%M:%SZ}, later than now "
            f"({now:%Y-%m-%dT%H:%M:%SZ}) plus the allowed skew of {policy.clock_skew}",
            reason="not-yet-valid",
        )
    if expires < now - policy.clock_skew:
        raise TimeWindowError(
            f"message expired at {expires:%Y-%m-%dT%H:%M:%SZ}; now is {now:%Y-%m-%dT%H:%M:%SZ}",
            reason="expired",
        )
    if expires <= created or expires - created > policy.max_lifetime:
        raise TimeWindowError(
            f"message lifetime must be positive and at most {policy.max_lifetime}; "
            f"found {expires - created}",
            reason="lifetime-invalid",
        )


# --- receipts -------------------------------------------------------------------------------


def _signature(signer: Signer, data: bytes) -> pb.Signature:
    return pb.Signature(
        key_id=signer.key_id,
        algorithm=int(signer.algorithm),  # type: ignore[arg-type]
        value=signer.sign(data),
        certificate=signer.carried,  # empty unless the signer is rotating (ADR 0010)
    )


def sign_receipt(signer: Signer, receipt: pb.Receipt) -> pb.SignedReceipt:
    data = receipt.SerializeToString(deterministic=True)
    return pb.SignedReceipt(receipt=data, signature=_signature(signer, pae(RECEIPT_DOMAIN, data)))


def batch_signed_data(size: int, root: bytes) -> bytes:
    """What a batch receipt signature covers: the batch size (RFC 9162 proofs do not bind it)
    and the Merkle root."""
    return pae(RECEIPT_BATCH_DOMAIN, size.to_bytes(8, "big"), root)


def sign_receipts(signer: Signer, receipts: Sequence[bytes]) -> list[pb.SignedReceipt]:
    """Sign serialised receipts with one signature over their Merkle root (RFC 6962), each
    returned with the inclusion proof that makes it verifiable on its own. One receipt is
    signed directly."""
    if len(receipts) == 1:
        data = receipts[0]
        return [
            pb.SignedReceipt(receipt=data, signature=_signature(signer, pae(RECEIPT_DOMAIN, data)))
        ]
    leaves = [merkle.leaf_hash(r) for r in receipts]
    size = len(receipts)
    signature = _signature(signer, batch_signed_data(size, merkle.root(leaves)))
    return [
        pb.SignedReceipt(
            receipt=data,
            signature=signature,
            batch=pb.BatchProof(index=index, size=size, path=path),
        )
        for index, (data, path) in enumerate(
            zip(receipts, merkle.inclusion_proofs(leaves), strict=True)
        )
    ]


def verify_receipt(
    signed: pb.SignedReceipt,
    receiver: str,
    keys: Mapping[str, VerificationKey],
    verified: MutableSet[tuple[str, bytes, bytes]] | None = None,
    *,
    now: datetime | None = None,
    clock_skew: timedelta = timedelta(0),
    learn: KeyLearner | None = None,
) -> pb.Receipt:
    """Verify a receipt signed by ``receiver`` and return it.

    ``verified`` remembers batch signatures already checked (key id, root, signature), so that
    the receipts of one batch cost one signature check in all; pass a set per batch. The
    signing key's certificate must fit the signing profile and have been valid at the
    receipt's received_at (its signing time); with ``now`` (a sender taking the receipt as it
    arrives), also now, within ``clock_skew``. Without, a later look at an old receipt. With
    ``learn``, a key not in ``keys`` is read from the certificate the signature carries, as
    for envelopes (``open_envelope``).
    """
    key = keys.get(signed.signature.key_id)
    if key is None and learn is not None and signed.signature.certificate:
        key = learn(signed.signature)
    if key is None or int(key.algorithm) != signed.signature.algorithm:
        raise SignatureError(
            f"receipt is not signed by a key trusted for {receiver}", reason="receipt-untrusted"
        )
    if signed.HasField("batch"):
        proof = signed.batch
        try:
            root = merkle.root_from_inclusion_proof(
                merkle.leaf_hash(signed.receipt), proof.index, proof.size, proof.path
            )
        except merkle.MerkleError:
            raise SignatureError(
                "receipt's batch proof is malformed", reason="receipt-signature-invalid"
            ) from None
        seen = (key.key_id, root + proof.size.to_bytes(8, "big"), signed.signature.value)
        if verified is None or seen not in verified:
            if not key.verify(signed.signature.value, batch_signed_data(proof.size, root)):
                raise SignatureError(
                    "receipt batch signature does not verify", reason="receipt-signature-invalid"
                )
            if verified is not None:
                verified.add(seen)
    elif not key.verify(signed.signature.value, pae(RECEIPT_DOMAIN, signed.receipt)):
        raise SignatureError(
            "receipt signature does not verify", reason="receipt-signature-invalid"
        )
    receipt = pb.Receipt()
    try:
        receipt.ParseFromString(signed.receipt)
    except DecodeError:
        raise SignatureError(
            "receipt is not a valid Receipt message", reason="receipt-malformed"
        ) from None
    if receipt.receiver != receiver:
        raise SignatureError(
            f"receipt names receiver {receipt.receiver!r}; expected {receiver!r}",
            reason="receipt-untrusted",
        )
    if not receipt.HasField("received_at"):
        raise SignatureError("receipt carries no received_at", reason="receipt-malformed")
    key.check_use(receipt.received_at.ToDatetime(UTC), now, clock_skew, "the receipt")
    return receipt


def make_receipt(
    *,
    message_id: str,
    envelope_digest: bytes,
    outcome: int,
    receiver: str,
    sender: str,
    received_at: datetime,
    reason: str = "",
    detail: str = "",
    trail_index: int = 0,
    trail_size: int = 0,
    trail_root: bytes = b"",
) -> pb.Receipt:
    receipt = pb.Receipt(
        trail_index=trail_index,
        trail_size=trail_size,
        trail_root=trail_root,
        message_id=message_id,
        envelope_digest=envelope_digest,
        outcome=outcome,  # type: ignore[arg-type]
        receiver=receiver,
        sender=sender,
        reason=reason,
        detail=detail,
    )
    receipt.received_at.FromDatetime(received_at)
    return receipt


def claimed_header(data: bytes | None) -> pb.Header | None:
    """The header an envelope carries, read without verifying anything (None when the bytes
    are not an envelope): for rejection records, metrics labels and the trace context of an
    envelope this hub stored. Whatever it holds is the sender's claim."""
    if not data:
        return None
    try:
        return pb.Header.FromString(pb.Envelope.FromString(data).header)
    except DecodeError:
        return None


def claimed_message_id(data: bytes | None) -> str:
    """The message id an envelope claims, read without trusting it (for rejection records)."""
    header = claimed_header(data)
    claimed = header.message_id if header is not None else ""
    # Unverified input goes into the rejection record only in a shape the store can hold.
    return claimed if UUID_TEXT.fullmatch(claimed) else ""


def signed_alike(a: tuple[bytes, bytes], b: tuple[bytes, bytes]) -> bool:
    """Whether two verified envelopes, each as (envelope digest, signed header bytes), carry
    what one sender signed once: the same envelope, or the same signed header under other
    signature bytes (a partner that signs again when it resends, or an ECDSA signature
    re-encoded as (r, n - s)). The header names the body's digest, and both bodies were
    checked against it, so the same header is the same body."""
    return a[0] == b[0] or (bool(a[1]) and a[1] == b[1])
