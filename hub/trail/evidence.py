"""Evidence bundles: one file proving what a partner signed and that this hub recorded it
(pure core).

``customs-hub evidence export`` gathers, for one message, everything a later reader needs
(protos/customs_hub/v1/evidence.proto): the envelope exactly as received, signatures included;
the signer's certificate chain; the trail leaf recording it, its inclusion proof and the
signed checkpoint it proves against; and the revocation lists the hub held for the signer's
anchor. ``customs-hub evidence verify`` checks it with nothing else but the partner's trust
anchor and the hub's trail verifier key, in the numbered steps of ``verify_bundle``, which
docs/adr/0011-evidence-bundle.md lists with what each proves.

A bundle proves one of two things (its ``kind``):

- ``message``: a partner signed this envelope (its header and body), and this hub recorded
  receiving exactly these bytes at a time its trail key vouches for (the "received" leaf);
- ``receipt``: a partner signed a receipt for this envelope of ours, and this hub recorded
  taking it (the "delivered" or "dead-lettered" leaf): proof that the partner received it.

What it must never do: trust a byte of the bundle that a signature does not cover, let the
bundle choose an algorithm, a key or an anchor, re-serialise what was signed, or open a file
or a socket. Every failure is one ``EvidenceError`` naming the check that failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from google.protobuf.message import DecodeError

from hub.core.envelope import MAX_SIGNATURES, verify_receipt
from hub.core.errors import ConfigError, SignatureError, TrustError
from hub.core.revocation import MAX_CRL_BYTES, parse_crl
from hub.core.signing import ENVELOPE_DOMAIN, VerificationKey, pae
from hub.core.times import rfc3339
from hub.core.trust import Anchors, as_anchors, party_of, verification_key_of
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import evidence_pb2 as epb
from hub.pb.customs_hub.v1 import trail_pb2 as tpb
from hub.trail import checkpoint, merkle
from hub.trail import events as trail
from hub.trail.messages import MAX_FIELD_BYTES
from hub.trail.verify import MAX_LEAF_BYTES

FORMAT = "customs-hub-evidence-bundle"
VERSION = 1
MESSAGE, RECEIPT = "message", "receipt"
KINDS = (MESSAGE, RECEIPT)
# The leaf that records each kind: a partner's message received; a partner's receipt taken
# (delivered, or dead-lettered when the receipt rejected the message).
LEAF_KINDS = {MESSAGE: ("received",), RECEIPT: ("delivered", "dead-lettered")}

# Bounds on reading. An envelope is at most [limits] max_envelope_bytes (4 MiB by default,
# raised by few); a bundle may hold one as large as a trail export's message record may
# (MAX_FIELD_BYTES, 64 MiB), and the rest (certificates, CRLs, leaf, proof, note) fits in 4 MiB.
MAX_BUNDLE_BYTES = MAX_FIELD_BYTES + 4 * 1024 * 1024
# A signing certificate and its issuers: real chains have one to three intermediates.
MAX_CERTIFICATES = 8
# An X.509 certificate is 0.5 to 2 KB; 64 KiB leaves room for large extensions.
MAX_CERTIFICATE_BYTES = 64 * 1024
# One anchor's lists: a base CRL, perhaps a delta or a partitioned one.
MAX_CRLS = 8
# RFC 9162 proofs are at most 64 hashes (trees of at most 2^64 leaves).
MAX_PROOF_HASHES = 64

# Each step's name, in the order verify_bundle takes them: what an error names first.
CHECKS = (
    "bundle",
    "envelope",
    "identity",
    "chain",
    "validity",
    "signature",
    "receipt",
    "leaf",
    "checkpoint",
    "inclusion",
    "revocation",
)


class EvidenceError(ValueError):
    """The bundle does not prove what it claims: ``check`` names the step that failed (one of
    CHECKS), the message says what was expected and what was found."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check, self.message = check, message


@dataclass(frozen=True)
class Bundle:
    """A bundle's contents, as ``encode_bundle`` writes them and ``decode_bundle`` reads
    them (docs/adr/0011)."""

    kind: str
    envelope: bytes
    certificates: Sequence[bytes]  # DER, the signer's first, then its issuers
    leaf_index: int
    leaf: bytes
    inclusion_proof: Sequence[bytes]
    checkpoint: bytes
    crls: Sequence[bytes] = ()
    signed_receipt: bytes = b""
    exported_by: str = ""
    exported_at: datetime | None = None


def encode_bundle(bundle: Bundle) -> bytes:
    message = epb.EvidenceBundle(
        format=FORMAT,
        version=VERSION,
        kind=bundle.kind,
        envelope=bundle.envelope,
        signed_receipt=bundle.signed_receipt,
        certificates=list(bundle.certificates),
        leaf_index=bundle.leaf_index,
        leaf=bundle.leaf,
        inclusion_proof=list(bundle.inclusion_proof),
        checkpoint=bundle.checkpoint,
        crls=list(bundle.crls),
        exported_by=bundle.exported_by,
    )
    if bundle.exported_at is not None:
        message.exported_at.FromDatetime(bundle.exported_at.astimezone(UTC).replace(tzinfo=None))
    data = message.SerializeToString(deterministic=True)
    _parse(data)  # what a reader would refuse is not written
    return data


def decode_bundle(data: bytes) -> Bundle:
    """Step 1: the bundle is one this reader knows, within every bound; EvidenceError
    ("bundle") otherwise."""
    message = _parse(data)
    exported_at = message.exported_at.ToDatetime(UTC) if message.HasField("exported_at") else None
    return Bundle(
        kind=message.kind,
        envelope=message.envelope,
        certificates=list(message.certificates),
        leaf_index=message.leaf_index,
        leaf=message.leaf,
        inclusion_proof=list(message.inclusion_proof),
        checkpoint=message.checkpoint,
        crls=list(message.crls),
        signed_receipt=message.signed_receipt,
        exported_by=message.exported_by,
        exported_at=exported_at,
    )


def _parse(data: bytes) -> epb.EvidenceBundle:
    def refuse(text: str) -> EvidenceError:
        return EvidenceError("bundle", text)

    if len(data) > MAX_BUNDLE_BYTES:
        raise refuse(f"the bundle is {len(data)} bytes; at most {MAX_BUNDLE_BYTES} are read")
    message = epb.EvidenceBundle()
    try:
        message.ParseFromString(data)
    except (DecodeError, ValueError):
        raise refuse("not an evidence bundle: it does not parse (cut short or damaged?)") from None
    if message.format != FORMAT:
        raise refuse(
            f"not an evidence bundle: its format is {message.format[:64]!r}, not {FORMAT!r}"
        )
    if message.version != VERSION:
        raise refuse(
            f"the bundle is version {message.version}; this customs-hub reads version {VERSION} "
            "(a newer customs-hub wrote it?)"
        )
    if message.kind not in KINDS:
        raise refuse(f"its kind is {message.kind[:64]!r}; expected one of {', '.join(KINDS)}")
    for what, count, most in (
        ("certificates", len(message.certificates), MAX_CERTIFICATES),
        ("revocation lists", len(message.crls), MAX_CRLS),
        ("inclusion proof hashes", len(message.inclusion_proof), MAX_PROOF_HASHES),
    ):
        if count > most:
            raise refuse(f"it holds {count} {what}; at most {most} are read")
    sizes = [
        ("envelope", len(message.envelope), MAX_FIELD_BYTES),
        ("signed receipt", len(message.signed_receipt), MAX_LEAF_BYTES),
        ("leaf", len(message.leaf), MAX_LEAF_BYTES),
        ("checkpoint", len(message.checkpoint), checkpoint.MAX_NOTE_BYTES),
    ]
    sizes += [("certificate", len(c), MAX_CERTIFICATE_BYTES) for c in message.certificates]
    sizes += [("revocation list", len(c), MAX_CRL_BYTES) for c in message.crls]
    for what, size, most in sizes:
        if size > most:
            raise refuse(f"its {what} is {size} bytes; at most {most} are read")
    if not message.envelope or not message.certificates:
        raise refuse("it holds no envelope or no certificate")
    if (message.kind == RECEIPT) != bool(message.signed_receipt):
        raise refuse("a receipt bundle, and only one, holds a signed receipt")
    return message


@dataclass(frozen=True)
class Proven:
    """What a bundle that verified proves (see ``lines``)."""

    kind: str
    message_id: str
    sender: str
    recipient: str
    body_type: str
    signed_at: datetime  # the envelope's created_at, or the receipt's received_at
    signer: str  # the party whose certificate signed: the sender, or the receipt's receiver
    certificate: str  # its subject
    serial: int
    key_id: str
    anchor: str  # the anchor's subject and SHA-256 fingerprint
    anchor_sha256: str
    recorded_at: datetime  # this hub's clock when it recorded the leaf
    leaf_index: int
    tree_size: int
    origin: str
    trail_key: str
    revocation: str  # what the bundle's CRLs say, or that it carries none
    outcome: str = ""  # a receipt's outcome
    body: bytes = field(default=b"", repr=False)  # what was signed

    def lines(self) -> list[str]:
        what = (
            f"{self.sender} signed message {self.message_id}"
            if self.kind == MESSAGE
            else f"{self.signer} signed a receipt ({self.outcome}) for message "
            f"{self.message_id} of {self.sender}"
        )
        return [
            f"OK: {what}",
            f"  message      {self.message_id} from {self.sender} to {self.recipient}, "
            f"{self.body_type}",
            f"  signed at    {rfc3339(self.signed_at, 'seconds')} (the signer's clock)",
            f"  signed by    {self.certificate!r} serial {self.serial:x}, key {self.key_id}",
            f"  anchor       {self.anchor!r} SHA-256 {self.anchor_sha256}",
            f"  recorded     {rfc3339(self.recorded_at, 'seconds')} at index {self.leaf_index} "
            f"of the trail {self.origin}",
            f"  checkpoint   {self.tree_size} entries, signed by {self.trail_key}",
            f"  revocation   {self.revocation}",
        ]

    def as_json(self) -> dict[str, object]:
        return {
            "ok": True,
            "kind": self.kind,
            "message_id": self.message_id,
            "sender": self.sender,
            "recipient": self.recipient,
            "body_type": self.body_type,
            "signed_at": rfc3339(self.signed_at),
            "signer": self.signer,
            "certificate": self.certificate,
            "serial": f"{self.serial:x}",
            "key_id": self.key_id,
            "anchor": self.anchor,
            "anchor_sha256": self.anchor_sha256,
            "recorded_at": rfc3339(self.recorded_at),
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "origin": self.origin,
            "trail_key": self.trail_key,
            "revocation": self.revocation,
            "outcome": self.outcome,
        }


def verify_bundle(data: bytes, anchors: Anchors, trail_key: checkpoint.NoteKey) -> Proven:
    """Check a bundle with the signer's trust anchor and this hub's ``trail_key``. While the
    signer's CA rolls over there are two anchors (the old CA and the new): the one the chain
    leads to is the one checked against; every other step is the same."""
    found = as_anchors(anchors)
    first: EvidenceError | None = None
    for anchor in found:
        try:
            return _verify_with(data, anchor, trail_key)
        except EvidenceError as exc:
            if exc.check != "chain":  # the chain led to this anchor; what failed is final
                raise
            first = first or exc
    if first is None:
        raise EvidenceError("chain", "no trust anchor was given to check the chain with")
    raise first


def _verify_with(data: bytes, anchor: x509.Certificate, trail_key: checkpoint.NoteKey) -> Proven:
    """Every step below, in order, raising EvidenceError naming the first that fails."""
    # 1. bundle: a known format and version, every part within its bound.
    bundle = decode_bundle(data)
    # 2. envelope: it parses, its header names a message, and its body is the one the header's
    #    signed digest names.
    envelope, header = _open_envelope(bundle.envelope)
    signer_party = header.sender if bundle.kind == MESSAGE else header.recipient
    # 3. identity: the signer's certificate names, as its one party, the party that signed
    #    (the envelope's sender; a receipt's signer is the envelope's recipient).
    chain = [_certificate(der, n) for n, der in enumerate(bundle.certificates)]
    signer = chain[0]
    try:
        named = party_of(signer)
    except TrustError as exc:
        raise EvidenceError("identity", f"the signing certificate: {exc.message}") from None
    if named != signer_party:
        whose = (
            "the envelope's sender is"
            if bundle.kind == MESSAGE
            else "the receipt is for the envelope's recipient to sign,"
        )
        raise EvidenceError(
            "identity", f"the signing certificate names party {named}; {whose} {signer_party}"
        )
    # 4. chain: each certificate was issued by the next, and the last by the anchor given.
    issuers = _check_chain(chain, anchor)
    try:
        key = verification_key_of(signer, signer_party)
    except TrustError as exc:
        raise EvidenceError("validity", exc.message) from None
    if bundle.kind == MESSAGE:
        # 5. validity: the certificate fits the signing profile (ADR 0008) and it and its
        #    issuers were valid when the message says it was made.
        signed_at = _created_at(header)
        _check_use(key, issuers, signed_at, "the message")
        # 6. signature: one of the envelope's signatures verifies with the certificate's key,
        #    with the key's algorithm, over exactly the header and body carried.
        _check_signature(envelope, key)
        outcome = ""
    else:
        # 5-7. validity, signature, receipt: the receipt verifies with the certificate's key,
        #    was valid when the receiver says it signed, and is for exactly this envelope.
        receipt = _check_receipt(bundle, key, header)
        signed_at = receipt.received_at.ToDatetime(UTC)
        _check_use(key, issuers, signed_at, "the receipt")
        outcome = pb.ReceiptOutcome.Name(receipt.outcome).removeprefix("RECEIPT_OUTCOME_").lower()
    # 8. leaf: the trail leaf records this message (or receipt) and these exact bytes.
    event = _check_leaf(bundle, header)
    # 9. checkpoint: signed by the trail key given.
    try:
        signed = checkpoint.open_note(bundle.checkpoint, trail_key)
    except checkpoint.CheckpointError as exc:
        raise EvidenceError(
            "checkpoint",
            f"the checkpoint does not verify with the trail key {trail_key.name}: {exc}",
        ) from None
    # 10. inclusion: the proof leads from the leaf at its index to the checkpoint's root.
    _check_inclusion(bundle, signed)
    recorded_at = event.at.ToDatetime(UTC)
    # 11. revocation: no CRL of the anchor in the bundle revoked the signer's certificate
    #     before this hub recorded the message (a time the trail key vouches for).
    revocation = _check_revocation(bundle.crls, anchor, chain, recorded_at)
    anchor_der = anchor.public_bytes(Encoding.DER)
    return Proven(
        kind=bundle.kind,
        message_id=header.message_id,
        sender=header.sender,
        recipient=header.recipient,
        body_type=header.body_type,
        signed_at=signed_at,
        signer=signer_party,
        certificate=signer.subject.rfc4514_string(),
        serial=signer.serial_number,
        key_id=key.key_id,
        anchor=anchor.subject.rfc4514_string(),
        anchor_sha256=hashlib.sha256(anchor_der).hexdigest(),
        recorded_at=recorded_at,
        leaf_index=bundle.leaf_index,
        tree_size=signed.size,
        origin=signed.origin,
        trail_key=trail_key.name,
        revocation=revocation,
        outcome=outcome,
        body=envelope.body,
    )


def _open_envelope(data: bytes) -> tuple[pb.Envelope, pb.Header]:
    envelope, header = pb.Envelope(), pb.Header()
    try:
        envelope.ParseFromString(data)
        header.ParseFromString(envelope.header)
    except DecodeError:
        raise EvidenceError("envelope", "the envelope or its header does not parse") from None
    if not header.message_id or not header.sender or not header.recipient:
        raise EvidenceError("envelope", "the envelope's header names no message id or no party")
    if header.body_digest != hashlib.sha256(envelope.body).digest():
        raise EvidenceError(
            "envelope", "the envelope's body is not the body whose digest its header holds"
        )
    return envelope, header


def _created_at(header: pb.Header) -> datetime:
    if not header.HasField("created_at"):
        raise EvidenceError("envelope", "the envelope's header carries no creation time")
    return header.created_at.ToDatetime(UTC)


def _certificate(der: bytes, n: int) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise EvidenceError(
            "chain" if n else "identity", f"certificate {n} of the bundle is not a DER certificate"
        ) from None


def _name(cert: x509.Certificate) -> str:
    return repr(cert.subject.rfc4514_string())


def _check_chain(
    chain: Sequence[x509.Certificate], anchor: x509.Certificate
) -> list[x509.Certificate]:
    """The intermediates between the signer and the anchor (the anchor itself, if the bundle
    ends with it, is dropped: the verifier's copy is the one trusted)."""
    links = list(chain)
    anchor_der = anchor.public_bytes(Encoding.DER)
    if len(links) > 1 and links[-1].public_bytes(Encoding.DER) == anchor_der:
        links.pop()
    for child, parent in zip(links, [*links[1:], anchor], strict=True):
        if parent is not anchor and not _is_ca(parent):
            raise EvidenceError(
                "chain", f"certificate {_name(parent)} issued another but is not a CA certificate"
            )
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            impostor = child.issuer == parent.subject  # the name, not the key
            raise EvidenceError(
                "chain",
                f"certificate {_name(child)} was not issued by "
                f"{'the trust anchor ' if parent is anchor else ''}{_name(parent)}"
                + (": it names that issuer, but its key did not sign it" if impostor else ""),
            ) from None
    return links[1:]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_use(
    key: VerificationKey, issuers: Iterable[x509.Certificate], signed_at: datetime, what: str
) -> None:
    try:
        key.check_use(signed_at, None, timedelta(0), what)
    except SignatureError as exc:
        raise EvidenceError("validity", exc.message) from None
    for issuer in issuers:
        if not issuer.not_valid_before_utc <= signed_at <= issuer.not_valid_after_utc:
            raise EvidenceError(
                "validity",
                f"issuing certificate {_name(issuer)} was not valid at "
                f"{rfc3339(signed_at, 'seconds')}, when {what} was signed",
            )


def _check_signature(envelope: pb.Envelope, key: VerificationKey) -> None:
    signed = pae(ENVELOPE_DOMAIN, envelope.header, envelope.body)
    for signature in envelope.signatures[:MAX_SIGNATURES]:
        if (
            signature.key_id == key.key_id
            and signature.algorithm == int(key.algorithm)
            and key.verify(signature.value, signed)
        ):
            return
    raise EvidenceError(
        "signature",
        f"no signature of the envelope verifies with the signing certificate's key "
        f"{key.key_id[:16]}",
    )


def _check_receipt(bundle: Bundle, key: VerificationKey, header: pb.Header) -> pb.Receipt:
    signed = pb.SignedReceipt()
    try:
        signed.ParseFromString(bundle.signed_receipt)
    except DecodeError:
        raise EvidenceError("receipt", "the signed receipt does not parse") from None
    try:
        # the validity of the key is asked separately (step 5), with the issuers'
        receipt = verify_receipt(signed, header.recipient, {key.key_id: key})
    except SignatureError as exc:
        check = "validity" if exc.reason.startswith(("certificate-", "not-a-")) else "signature"
        raise EvidenceError(check, exc.message) from None
    digest = hashlib.sha256(bundle.envelope).digest()
    if receipt.envelope_digest != digest or receipt.message_id != header.message_id:
        raise EvidenceError(
            "receipt", "the receipt is for another envelope than the one the bundle holds"
        )
    if receipt.sender != header.sender:
        raise EvidenceError(
            "receipt", f"the receipt attributes the message to {receipt.sender or 'nobody'}"
        )
    return receipt


def _check_leaf(bundle: Bundle, header: pb.Header) -> tpb.TrailEvent:
    try:
        event = trail.decode(bundle.leaf)
    except trail.TrailError as exc:
        raise EvidenceError("leaf", f"the leaf is not a trail event: {exc}") from None
    expected = LEAF_KINDS[bundle.kind]
    if event.kind not in expected:
        raise EvidenceError(
            "leaf", f"the leaf records a {event.kind!r} event; expected {' or '.join(expected)}"
        )
    party = (
        (event.sender, header.sender)
        if bundle.kind == MESSAGE
        else (event.recipient, header.recipient)
    )
    if event.message_id != header.message_id or party[0] != party[1]:
        raise EvidenceError(
            "leaf",
            f"the leaf records message {event.message_id[:64]} of {party[0] or 'nobody'}; the "
            f"envelope is message {header.message_id} of {party[1]}",
        )
    digest = hashlib.sha256(bundle.envelope).digest()
    if event.envelope_digest != digest:
        raise EvidenceError(
            "leaf",
            f"the leaf records envelope digest {event.envelope_digest.hex()[:16]}; the "
            f"envelope's is {digest.hex()[:16]}",
        )
    return event


def _check_inclusion(bundle: Bundle, signed: checkpoint.Checkpoint) -> None:
    index = bundle.leaf_index
    try:
        root = merkle.root_from_inclusion_proof(
            merkle.leaf_hash(bundle.leaf), index, signed.size, bundle.inclusion_proof
        )
    except merkle.MerkleError as exc:
        raise EvidenceError(
            "inclusion", f"leaf {index} in the checkpoint of {signed.size} entries: {exc}"
        ) from None
    if root != signed.root:
        raise EvidenceError(
            "inclusion",
            f"the inclusion proof of leaf {index} does not lead to the root of the checkpoint "
            f"of {signed.size} entries",
        )


def _check_revocation(
    crls: Sequence[bytes],
    anchor: x509.Certificate,
    chain: Sequence[x509.Certificate],
    recorded_at: datetime,
) -> str:
    """What the anchor's CRLs in the bundle say about the certificates the anchor issued,
    or EvidenceError if one was revoked (or invalid, by the entry's invalidity date) at or
    before ``recorded_at``. A revocation after it does not undo what was signed and recorded
    before: the sentence returned says so."""
    if not crls:
        return "not checked: the bundle carries no revocation list"
    issued = [c for c in chain if c.issuer == anchor.subject]
    notes = []
    for n, data in enumerate(crls):
        where = f"revocation list {n} of the bundle"
        try:
            parsed = parse_crl(data, anchor, where)
            crl = x509.load_der_x509_crl(data)
        except (ConfigError, ValueError) as exc:
            text = exc.message if isinstance(exc, ConfigError) else f"{where}: not a DER CRL"
            raise EvidenceError("revocation", text) from None
        for cert in issued:
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is None:
                continue
            since = _revoked_since(entry)
            if since <= recorded_at:
                raise EvidenceError(
                    "revocation",
                    f"certificate {_name(cert)} (serial {cert.serial_number:x}) was revoked "
                    f"as of {rfc3339(since, 'seconds')} by {where}, before this hub recorded "
                    f"the message at {rfc3339(recorded_at, 'seconds')}",
                )
            notes.append(
                f"certificate serial {cert.serial_number:x} revoked as of "
                f"{rfc3339(since, 'seconds')}, after the message was recorded"
            )
        notes.append(f"not revoked by the CRL of {rfc3339(parsed.this_update, 'seconds')}")
    return "; ".join(dict.fromkeys(notes))


def _revoked_since(entry: x509.RevokedCertificate) -> datetime:
    """When the certificate stopped vouching: its invalidity date (RFC 5280 5.3.2: the key
    was known or suspected compromised then) if the entry gives one, else its revocation
    date."""
    try:
        invalid = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
    except x509.ExtensionNotFound:
        return entry.revocation_date_utc
    invalid_utc = invalid.invalidity_date_utc
    return min(invalid_utc, entry.revocation_date_utc)


def certificate_for(key_id: str, party: str, candidates: Iterable[bytes]) -> bytes | None:
    """The DER of the certificate among ``candidates`` (DER or PEM) whose key is ``key_id``
    and which names ``party``: what an export puts first in the bundle. The one place that
    answers "which certificate signed with key X", whatever the candidates' source (the
    config, the envelope's own, a history of learned and previous certificates)."""
    for data in candidates:
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                cert = x509.load_pem_x509_certificate(data)
            else:
                cert = x509.load_der_x509_certificate(data)
            key = verification_key_of(cert, party)
            if key.key_id == key_id and party_of(cert) == party:
                return cert.public_bytes(Encoding.DER)
        except (ValueError, TrustError):
            continue
    return None
