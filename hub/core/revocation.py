"""Revocation: certificate revocation lists per trust anchor, and auditors' revoked tokens
(pure core).

A CRL counts for a party only when that party's trust anchor signed it (``parse_crl``), so one
partner's CA can never revoke, or un-revoke, another partner's certificates. What is revoked is
decided by serial number against the CRLs of the anchor that issued the certificate:

1. a certificate whose serial is on one of its anchor's CRLs is refused,
   ``certificate-revoked``;
2. otherwise, if one of those CRLs is past its nextUpdate, the anchor's certificates are
   refused, ``crl-stale`` (fail closed, the default), or accepted with a log line if the
   operator chose ``crl_stale = "open"`` for that anchor;
3. otherwise the certificate is not revoked.

An anchor with no CRL configured revokes nothing. A signing certificate is known here by its
key id (hub.core.signing.key_id_of), since envelopes and receipts name the key that signed them:
``usable_keys`` takes a party's verification keys and withholds those of revoked (or, failing
closed, stale) certificates, so they verify nothing.

This module parses what it is given; it reads no file (hub/app/keys.py does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from google.protobuf.message import DecodeError

from hub.core.errors import ConfigError, TrustError
from hub.core.signing import VerificationKey
from hub.core.trust import Anchors, as_anchors
from hub.pb.customs_hub.v1 import envelope_pb2 as pb

STALE_CLOSED, STALE_OPEN = "closed", "open"
STALE_POLICIES = (STALE_CLOSED, STALE_OPEN)
REVOKED = "certificate-revoked"
STALE = "crl-stale"
# A CRL of a customs administration lists the certificates it revoked in the validity of its
# CA; 1 MiB holds some 30,000 entries and bounds what is parsed from a file.
MAX_CRL_BYTES = 1024 * 1024
# A deny-list of auditors' token ids: one per line; 100,000 ids outlast many years of audits.
MAX_REVOKED_TOKENS = 100_000


@dataclass(frozen=True)
class Crl:
    """One CRL, checked against its anchor: where it came from, when it was issued, until when
    it is current, and the serials it revokes."""

    source: str  # the file it was read from, for log lines and errors
    this_update: datetime
    next_update: datetime
    serials: frozenset[int]
    number: int | None = None  # its CRLNumber extension (RFC 5280 5.2.3), if it has one
    # the SHA-256 (hex) of the public key of the anchor that signed it: while a party's CA
    # rolls over, its old and new CA may share a subject, and only the key tells them apart
    issuer_key: str = ""

    def stale(self, now: datetime) -> bool:
        return now > self.next_update


def parse_crl(data: bytes, anchors: Anchors, source: str) -> Crl:
    """A CRL (PEM or DER) that one of ``anchors`` (a party's CA, or its old and new CA while
    it rolls over) issued and signed, or a ConfigError naming ``source``.

    1. It is at most MAX_CRL_BYTES and parses as a CRL.
    2. Its issuer is an anchor's subject.
    3. Its signature verifies with that anchor's public key.
    4. It has a nextUpdate (RFC 5280 5.1.2.5 requires one; without it, it could never be
       stale).
    """

    def refuse(text: str) -> ConfigError:
        return ConfigError(f"{source}: {text}", reason="config-invalid")

    if len(data) > MAX_CRL_BYTES:
        raise refuse(f"a CRL is at most {MAX_CRL_BYTES} bytes; this is {len(data)}")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
    except ValueError:
        raise refuse("not a PEM or DER certificate revocation list") from None
    anchors = as_anchors(anchors)
    issuers = [a for a in anchors if a.subject == crl.issuer]
    if not issuers:
        names = " or ".join(repr(a.subject.rfc4514_string()) for a in anchors)
        raise refuse(
            f"the CRL is issued by {crl.issuer.rfc4514_string()!r}, not by the trust anchor {names}"
        )
    # an old CA and its successor may share a subject: the one whose key signed it issued it
    signer = next((anchor for anchor in issuers if _signed_by(crl, anchor)), None)
    if signer is None:
        raise refuse(
            "the CRL's signature does not verify with the trust anchor "
            f"{issuers[0].subject.rfc4514_string()!r}"
        )
    next_update = crl.next_update_utc
    if next_update is None:
        raise refuse("the CRL has no nextUpdate")
    try:
        number: int | None = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = None
    return Crl(
        source=source,
        this_update=crl.last_update_utc,
        next_update=next_update,
        serials=frozenset(entry.serial_number for entry in crl),
        number=number,
        issuer_key=key_digest(signer),
    )


def key_digest(cert: x509.Certificate) -> str:
    """The SHA-256 (hex) of a certificate's SubjectPublicKeyInfo: which CA, by its key."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return sha256(spki).hexdigest()


def _signed_by(crl: x509.CertificateRevocationList, anchor: x509.Certificate) -> bool:
    public = anchor.public_key()
    return isinstance(
        public, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
    ) and crl.is_signature_valid(public)


def succession(fetched: Crl, held: Crl | None) -> str:
    """Whether a fetched CRL may take the place of the one held: "newer", "same" (nothing to
    do), or why not, as a sentence. A list served by a distribution point could be an old one
    replayed (by a cache, or by someone who would un-revoke a certificate), so it must be
    issued after the one held: a greater CRL number when both have one (RFC 5280 5.2.3: they
    only grow), and a thisUpdate not earlier in any case.

    CRL numbers and times only order the lists of one CA. While a party's CA rolls over, its
    anchor file holds the old CA and the new, and either could have signed what is fetched;
    the new CA's list (a greater number, revoking none of the old CA's certificates) must not
    take the place of the old CA's and so un-revoke them. So the fetched list must be signed
    by the key that signed the one held."""
    if held is None:
        return "newer"
    if fetched.issuer_key != held.issuer_key:
        return (
            f"it is signed by another CA of the party (key sha256:{fetched.issuer_key[:16]}) "
            f"than the one in use (key sha256:{held.issuer_key[:16]}), and would un-revoke "
            "what that one revokes; put the other CA's list in a file of its own"
        )
    if fetched.this_update < held.this_update:
        return (
            f"it was issued at {fetched.this_update:%Y-%m-%dT%H:%M:%SZ}, before the one in use "
            f"({held.this_update:%Y-%m-%dT%H:%M:%SZ})"
        )
    if fetched.number is not None and held.number is not None:
        if fetched.number < held.number:
            return f"its CRL number {fetched.number} is below the one in use ({held.number})"
        if fetched.number == held.number:
            return (
                "same"
                if fetched.serials == held.serials
                else (f"it has the CRL number of the one in use ({held.number}) but other entries")
            )
        return "newer"
    if held.number is not None:
        return f"it has no CRL number, and the one in use has {held.number}"
    return "newer" if fetched.this_update > held.this_update else "same"


@dataclass(frozen=True)
class AnchorRevocation:
    """The CRLs of one party's trust anchor, what to do when they are stale, and the serial
    of each of the party's signing certificates by key id."""

    party: str
    crls: tuple[Crl, ...]
    stale_policy: str = STALE_CLOSED
    signing_serials: Mapping[str, int] = field(default_factory=dict)  # key id -> serial

    def stale(self, now: datetime) -> Crl | None:
        """The first of the CRLs past its nextUpdate, if any."""
        return next((c for c in self.crls if c.stale(now)), None)

    def check(self, serial: int, what: str, now: datetime) -> None:
        """TrustError ``certificate-revoked`` or ``crl-stale`` (closed), or nothing."""
        for crl in self.crls:  # 1. revoked
            if serial in crl.serials:
                raise TrustError(
                    f"{self.party}'s {what} (serial {serial:x}) is revoked by {crl.source}",
                    reason=REVOKED,
                )
        stale = self.stale(now)  # 2. stale, failing closed
        if stale is not None and self.stale_policy == STALE_CLOSED:
            raise TrustError(
                f"{self.party}'s revocation list {stale.source} is stale since "
                f"{stale.next_update:%Y-%m-%dT%H:%M:%SZ} (crl_stale = closed): its "
                "certificates are refused until a current one is in place",
                reason=STALE,
            )


@dataclass(frozen=True)
class Revocation:
    """What is revoked, as a hub's settings hold it: the CRLs of each anchor by party (this
    hub's own under its own party), the ids of auditors' tokens revoked, and the files' stamps
    (path -> (mtime_ns, size)) when they were read, so a watcher sees a change cheaply."""

    anchors: Mapping[str, AnchorRevocation] = field(default_factory=dict)
    tokens: frozenset[str] = frozenset()
    stamps: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def usable_keys(
        self, party: str, keys: Mapping[str, VerificationKey], now: datetime
    ) -> tuple[Mapping[str, VerificationKey], dict[str, TrustError]]:
        """``party``'s keys that may verify at ``now``, and why each of the others may not
        (by key id). Keys of certificates not known here are left usable: this only takes
        away."""
        anchor = self.anchors.get(party)
        if anchor is None or not anchor.crls:
            return keys, {}
        withheld: dict[str, TrustError] = {}
        for key_id, key in keys.items():
            # a learned key (docs/adr/0010) is not in the config: its certificate's serial
            serial = anchor.signing_serials.get(key_id, key.serial)
            if serial is None:
                continue
            try:
                anchor.check(serial, "signing certificate", now)
            except TrustError as exc:
                withheld[key_id] = exc
        if not withheld:
            return keys, {}
        return {k: v for k, v in keys.items() if k not in withheld}, withheld

    def delivery_stop(
        self,
        party: str,
        keys: Mapping[str, VerificationKey],
        server_serial: int | None,
        now: datetime,
    ) -> TrustError | None:
        """Why nothing may be delivered to ``party`` now, or None. Its queued messages stop
        when its TLS server certificate (``server_serial``, as this hub last saw it) is
        refused, or when none of its signing certificates may verify a receipt any more: its
        receipts could then settle nothing, and what is sent would be sent again and again.
        A partner with one signing certificate of two revoked (a rotation) goes on: its
        receipts verify with the other."""
        anchor = self.anchors.get(party)
        if anchor is None or not anchor.crls:
            return None
        if server_serial is not None:
            try:
                anchor.check(server_serial, "TLS server certificate", now)
            except TrustError as exc:
                return exc
        usable, withheld = self.usable_keys(party, keys, now)
        if keys and not usable:
            return next(iter(withheld.values()))
        return None

    def stale(self, now: datetime) -> list[tuple[AnchorRevocation, Crl]]:
        """Each anchor with a CRL past its nextUpdate, and that CRL."""
        found = []
        for anchor in self.anchors.values():
            crl = anchor.stale(now)
            if crl is not None:
                found.append((anchor, crl))
        return found


# What the outbox notes in a partner's stored backoff while it does not deliver to it, so that
# `customs-hub status` (another process) can show the partner as stopped, and why.
STOPPED_PREFIX = "stopped: "


def stop_note(error: TrustError) -> str:
    """The stored note of a partner stopped for ``error``: ``stopped: <reason>: <sentence>``."""
    return f"{STOPPED_PREFIX}{error.reason}: {error.message}"


def stopped_reason(note: str) -> str | None:
    """The reason of a stop note (``certificate-revoked``), None for any other error text."""
    if not note.startswith(STOPPED_PREFIX):
        return None
    return note.removeprefix(STOPPED_PREFIX).split(":", 1)[0]


def withheld_refusal(
    key_ids: Iterable[str], withheld: Mapping[str, TrustError]
) -> TrustError | None:
    """The refusal of the first key named (by an envelope's or a receipt's signatures) that
    was withheld, if any: why nothing verified was the revocation, not the signature."""
    return next((withheld[k] for k in key_ids if k in withheld), None)


def signature_key_ids(envelope: bytes) -> list[str]:
    """The key ids an envelope's signatures name (none if it does not parse): what
    ``withheld_refusal`` looks up when no signature verified."""
    try:
        return [s.key_id for s in pb.Envelope.FromString(envelope).signatures]
    except DecodeError:
        return []


def parse_token_ids(text: str, source: str) -> frozenset[str]:
    """A deny-list of token ids: one ``jti`` per line; blank lines and lines starting with
    ``#`` are skipped, surrounding spaces ignored. A ConfigError names ``source`` when it holds
    more than MAX_REVOKED_TOKENS ids."""
    ids = frozenset(
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    if len(ids) > MAX_REVOKED_TOKENS:
        raise ConfigError(
            f"{source}: at most {MAX_REVOKED_TOKENS} revoked token ids; found {len(ids)}",
            reason="config-invalid",
        )
    return ids
