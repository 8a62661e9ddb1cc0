"""Signing and verification over a pre-authentication encoding (pure core).

The algorithm is pinned to the key: a ``VerificationKey`` knows which algorithm it verifies,
and a signature's declared algorithm must agree with it or the signature is ignored. Only
Ed25519 (default) and ECDSA P-256 with SHA-256 exist here; anything else is refused when the
key is loaded, not when a message arrives.

This module never opens files or sockets; it takes keys and bytes.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from hub.core.errors import SignatureError, TrustError

# Domain tags keep a signature made for one purpose from being accepted for another.
ENVELOPE_DOMAIN = b"customs-hub/envelope/v1"
RECEIPT_DOMAIN = b"customs-hub/receipt/v1"
RECEIPT_BATCH_DOMAIN = b"customs-hub/receipt-batch/v1"
_PAE_PREFIX = b"CHPAEv1"


class Algorithm(enum.IntEnum):
    """Values equal the protobuf SignatureAlgorithm enum numbers."""

    ED25519 = 1
    ECDSA_P256_SHA256 = 2


PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def pae(domain: bytes, *parts: bytes) -> bytes:
    """Pre-authentication encoding, DSSE style, extended to several parts.

    ``"CHPAEv1" (SP LEN SP item)*`` with LEN the ASCII decimal byte length, over the domain
    tag followed by each part. Lengths make the encoding unambiguous: no choice of header and
    body bytes can collide with another split of the same bytes.
    """
    out = bytearray(_PAE_PREFIX)
    for item in (domain, *parts):
        out += b" %d " % len(item)
        out += item
    return bytes(out)


def key_id_of(public_key: PublicKey) -> str:
    """Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def algorithm_for(key: PublicKey | PrivateKey) -> Algorithm:
    """The one algorithm a key may be used with; anything else is refused."""
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return Algorithm.ED25519
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return Algorithm.ECDSA_P256_SHA256
        raise TrustError(
            f"ECDSA keys must be on P-256; found {key.curve.name}", reason="unsupported-key"
        )
    raise TrustError(
        f"signing keys must be Ed25519 or ECDSA P-256; found {type(key).__name__}",
        reason="unsupported-key",
    )


@dataclass(frozen=True)
class VerificationKey:
    """A public key bound to one party and pinned to one algorithm.

    A key read from a certificate (hub/core/trust.py ``verification_key_of``) carries the
    certificate's validity and whether it fits the signing-certificate profile
    (docs/adr/0008-signing-certificate-profile.md); ``check_use`` holds every use to them. A
    key made without a certificate (a Signer's own half, a test's) has no dates to check.
    """

    party: str
    public_key: PublicKey
    algorithm: Algorithm
    key_id: str
    not_before: datetime | None = None
    not_after: datetime | None = None
    profile_fault: str = ""  # why the certificate may not sign messages; "" when it may
    # the certificate's serial number, by which its anchor's revocation lists name it
    # (hub/core/revocation.py); None for a key made without a certificate
    serial: int | None = None

    def check_use(
        self, signed_at: datetime, now: datetime | None, skew: timedelta, what: str
    ) -> None:
        """This key may vouch for ``what``, signed at ``signed_at`` (as the signer states it)
        and checked at ``now`` (this hub's clock; None for a later look at an old signature).

        1. The certificate fits the signing profile, else ``not-a-signing-certificate``.
        2. ``signed_at`` lies within the certificate's validity, exactly: the signer states
           the time on its own clock, by which its certificate must have been valid.
        3. ``now`` lies within the validity widened by ``skew`` each way (limits.clock_skew):
           two administrations' clocks differ, and a certificate that ran out more than the
           skew ago vouches for nothing new, whatever time the signer claims.
        Each date refusal is ``certificate-expired`` or ``certificate-not-yet-valid``.
        """
        if self.profile_fault:
            raise SignatureError(
                f"{what} is signed by {self.party}'s key {self.key_id[:16]}, whose certificate "
                f"may not sign messages: {self.profile_fault}",
                reason="not-a-signing-certificate",
            )
        start, end = self.not_before, self.not_after
        for moment, slack, whose in ((signed_at, timedelta(0), "signed"), (now, skew, "checked")):
            if moment is None:
                continue
            allowed = f" (allowing a clock skew of {slack})" if slack else ""
            if start is not None and moment < start - slack:
                raise SignatureError(
                    f"{what} by {self.party}: {whose} at {moment:%Y-%m-%dT%H:%M:%SZ}, before its "
                    f"signing certificate's notBefore {start:%Y-%m-%dT%H:%M:%SZ}{allowed}",
                    reason="certificate-not-yet-valid",
                )
            if end is not None and moment > end + slack:
                raise SignatureError(
                    f"{what} by {self.party}: {whose} at {moment:%Y-%m-%dT%H:%M:%SZ}, after its "
                    f"signing certificate's notAfter {end:%Y-%m-%dT%H:%M:%SZ}{allowed}",
                    reason="certificate-expired",
                )

    @classmethod
    def for_party(cls, party: str, public_key: PublicKey) -> VerificationKey:
        return cls(party, public_key, algorithm_for(public_key), key_id_of(public_key))

    def verify(self, signature: bytes, data: bytes) -> bool:
        # The key's own type decides the algorithm (for_party pinned it); nothing in the message
        # can switch it.
        key = self.public_key
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, data)
            else:
                key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private signing key (never the TLS key) with its pinned algorithm and key id, and the
    DER of its certificate.

    ``carry`` says whether the certificate travels with each signature (envelope.proto
    ``Signature.certificate``): while this hub rotates its signing key, partners that do not
    have the new certificate in their configuration learn it from there
    (docs/adr/0010-key-rotation.md)."""

    private_key: PrivateKey
    algorithm: Algorithm
    key_id: str
    certificate: bytes = b""  # DER; empty for a key made without one (a test's)
    carry: bool = False

    @classmethod
    def from_private_key(
        cls, private_key: PrivateKey, certificate: bytes = b"", carry: bool = False
    ) -> Signer:
        return cls(
            private_key,
            algorithm_for(private_key),
            key_id_of(private_key.public_key()),
            certificate,
            carry,
        )

    @classmethod
    def from_pem(cls, pem: bytes, certificate: bytes = b"", carry: bool = False) -> Signer:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise TrustError(
                f"signing key must be Ed25519 or ECDSA P-256; found {type(key).__name__}",
                reason="unsupported-key",
            )
        return cls.from_private_key(key, certificate, carry)

    @property
    def carried(self) -> bytes:
        """The certificate DER to put beside each signature: the certificate while it is
        carried, else nothing."""
        return self.certificate if self.carry else b""

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return self.private_key.sign(data)
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    def verification_key(self, party: str) -> VerificationKey:
        return VerificationKey.for_party(party, self.private_key.public_key())
