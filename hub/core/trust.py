"""Who is who: party identities in certificates, and the keys bound to each party (pure core).

A party (an administration, e.g. "CN") is named in its certificates by a URI subject
alternative name ``urn:customs-hub:party:<ID>``. Each partner comes with its own trust anchor
(its administration's CA): a certificate counts for a party only when that party's anchor
issued it, so one partner's CA can never vouch for another partner. TLS keys and signing keys
are separate certificates of the same party.

This module parses certificates it is given; it never reads files or opens connections.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from hub.core.errors import TrustError
from hub.core.signing import VerificationKey, key_id_of

PARTY_URI_PREFIX = "urn:customs-hub:party:"
# Party ids are short codes (ISO 3166 alpha-2 for national administrations, or a union code
# such as "EU"); the pattern keeps them safe to use in file names, logs and metrics labels.
# The one pattern, wherever a party id is read: certificates, config, tokens, AEO lists.
PARTY_ID = re.compile(r"^[A-Z][A-Z0-9-]{1,15}$")


def party_uri(party: str) -> str:
    check_party_id(party)
    return PARTY_URI_PREFIX + party


def check_party_id(party: str) -> str:
    if not PARTY_ID.fullmatch(party):
        raise TrustError(
            f"party id must be 2-16 upper-case letters, digits or '-', starting with a letter; "
            f"found {party!r}",
            reason="party-id-invalid",
        )
    return party


def party_of(cert: x509.Certificate) -> str:
    """The one party a certificate names in its URI SANs."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise TrustError(
            "certificate has no subject alternative name naming a party", reason="no-party-identity"
        ) from None
    parties = [
        uri[len(PARTY_URI_PREFIX) :]
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
        if uri.startswith(PARTY_URI_PREFIX)
    ]
    if len(parties) != 1:
        raise TrustError(
            f"certificate must name exactly one party as {PARTY_URI_PREFIX}<ID>; "
            f"found {len(parties)}",
            reason="no-party-identity",
        )
    return check_party_id(parties[0])


Anchors = x509.Certificate | Sequence[x509.Certificate]


def as_anchors(anchors: Anchors) -> tuple[x509.Certificate, ...]:
    """A party's trust anchors: its CA certificate, or several while its CA rolls over (the
    old one and its successor, which may share a subject name)."""
    return (anchors,) if isinstance(anchors, x509.Certificate) else tuple(anchors)


def issuer_among(cert: x509.Certificate, anchors: Anchors) -> x509.Certificate | None:
    """The anchor that signed ``cert`` directly, if one did (by its key: an old CA and its
    successor may share a subject name)."""
    for anchor in as_anchors(anchors):
        if cert.issuer != anchor.subject:
            continue
        try:
            cert.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return anchor
    return None


def anchor_names(anchors: Anchors) -> str:
    return " or ".join(repr(a.subject.rfc4514_string()) for a in as_anchors(anchors))


def check_issued_by(cert: x509.Certificate, anchors: Anchors, now: datetime) -> None:
    """One of the anchors signed this certificate directly, and the certificate is within its
    validity."""
    if issuer_among(cert, anchors) is None:
        raise TrustError(
            f"certificate {cert.subject.rfc4514_string()!r} was not issued by the trust anchor "
            f"{anchor_names(anchors)}",
            reason="untrusted-issuer",
        )
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise TrustError(
            f"certificate {cert.subject.rfc4514_string()!r} is valid from "
            f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
            f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}; now is {now:%Y-%m-%dT%H:%M:%SZ}",
            reason="certificate-expired"
            if now > cert.not_valid_after_utc
            else "certificate-not-yet-valid",
        )


# id-kp-documentSigning (RFC 9336): the extended key usage of a certificate that signs
# documents, which is what an envelope is. The signing-certificate profile
# (docs/adr/0008-signing-certificate-profile.md) asks for it, or for no extended key usage.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
TLS_USAGES = frozenset({ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH})
_USAGE_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
}


def signing_profile_fault(cert: x509.Certificate) -> str:
    """Why a certificate may not sign messages, or "" when it may (docs/adr/0008):

    1. keyUsage is present and asserts digitalSignature or nonRepudiation (contentCommitment);
    2. extendedKeyUsage is absent, or lists id-kp-documentSigning (RFC 9336); one without it
       (above all a TLS certificate: serverAuth, clientAuth) is for something else.
    """
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return "it has no keyUsage extension (digitalSignature or nonRepudiation required)"
    if not (usage.digital_signature or usage.content_commitment):
        return "its keyUsage asserts neither digitalSignature nor nonRepudiation"
    try:
        extended = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return ""
    if DOCUMENT_SIGNING in extended:
        return ""
    found = ", ".join(sorted(_USAGE_NAMES.get(oid, oid.dotted_string) for oid in extended))
    if extended & TLS_USAGES:
        return (
            f"it is a TLS certificate (extendedKeyUsage {found}, without "
            f"id-kp-documentSigning {DOCUMENT_SIGNING.dotted_string})"
        )
    return (
        f"its extendedKeyUsage ({found}) lacks id-kp-documentSigning "
        f"{DOCUMENT_SIGNING.dotted_string}"
    )


def check_signing_profile(cert: x509.Certificate, party: str) -> None:
    fault = signing_profile_fault(cert)
    if fault:
        raise TrustError(
            f"signing certificate {cert.subject.rfc4514_string()!r} of {party} may not sign "
            f"messages: {fault}",
            reason="not-a-signing-certificate",
        )


def verification_key_of(cert: x509.Certificate, party: str) -> VerificationKey:
    """The certificate's key for ``party``, with the certificate's validity and its fit to the
    signing profile, which every use checks (``VerificationKey.check_use``)."""
    key = cert.public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise TrustError(
            f"signing certificate of {party} holds a {type(key).__name__}; "
            "expected Ed25519 or ECDSA P-256",
            reason="unsupported-key",
        )
    plain = VerificationKey.for_party(party, key)
    return dataclasses.replace(
        plain,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        profile_fault=signing_profile_fault(cert),
        serial=cert.serial_number,
    )


# A certificate carried with a signature (envelope.proto Signature.certificate) is parsed only
# up to this size: an Ed25519 signing certificate of the development PKI is about 600 bytes, a
# real one with policies and distribution points a few KB; 16 KiB leaves room for those and
# bounds what a partner's unverified bytes cost to parse.
MAX_CARRIED_CERTIFICATE_BYTES = 16 * 1024


@dataclass(frozen=True)
class LearnedKey:
    """A partner's signing key learned from the certificate carried with its signature
    (docs/adr/0010-key-rotation.md): the certificate's DER, as received, and its key."""

    party: str
    certificate: bytes  # DER
    key: VerificationKey

    @property
    def digest(self) -> bytes:
        """SHA-256 of the certificate's DER: what the trail's key-learned leaf records."""
        return hashlib.sha256(self.certificate).digest()


def carried_signing_key(der: bytes, key_id: str, partner: PartnerTrust) -> LearnedKey:
    """The signing key a partner's signature names but this hub was not configured with, read
    from the certificate carried with the signature. Its steps (docs/adr/0010):

    1. The certificate is at most MAX_CARRIED_CERTIFICATE_BYTES and parses as DER X.509,
       else ``certificate-malformed``.
    2. It holds the key the signature names (``key_id``), else ``certificate-malformed``.
    3. The partner's own trust anchor issued it (the anchor that vouches for its TLS
       identity, ADR 0003), else ``untrusted-issuer``: one partner's CA never vouches for
       another partner's key.
    4. It names the partner, and only it, as a URI SAN, the way a TLS identity does
       (``no-party-identity``, ``party-mismatch``).
    5. It fits the signing profile (ADR 0008), else ``not-a-signing-certificate``.

    Its dates are checked where the key is used (``VerificationKey.check_use``, at the
    signing time and now), and its revocation by the caller, which holds the lists.
    """
    party = partner.party
    if len(der) > MAX_CARRIED_CERTIFICATE_BYTES:  # 1.
        raise TrustError(
            f"the certificate carried with {party}'s signature is {len(der)} bytes; at most "
            f"{MAX_CARRIED_CERTIFICATE_BYTES} are read",
            reason="certificate-malformed",
        )
    try:
        cert = x509.load_der_x509_certificate(der)
        public = cert.public_key()
        _ = cert.extensions  # parsed now: a malformed extension is refused here, as such
    except (ValueError, TypeError):
        raise TrustError(
            f"the certificate carried with {party}'s signature is not a DER X.509 certificate",
            reason="certificate-malformed",
        ) from None
    if not isinstance(public, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):  # 2.
        raise TrustError(
            f"the certificate carried with {party}'s signature holds a "
            f"{type(public).__name__}; expected Ed25519 or ECDSA P-256",
            reason="unsupported-key",
        )
    found = key_id_of(public)
    if found != key_id:
        raise TrustError(
            f"the certificate carried with {party}'s signature holds key {found[:16]}, not "
            f"the key {key_id[:16]} the signature names",
            reason="certificate-malformed",
        )
    if issuer_among(cert, partner.anchors) is None:  # 3.
        raise TrustError(
            f"the certificate carried with {party}'s signature "
            f"({cert.subject.rfc4514_string()!r}) was not issued by {party}'s trust anchor "
            f"{anchor_names(partner.anchors)}",
            reason="untrusted-issuer",
        )
    named = party_of(cert)  # 4.
    if named != party:
        raise TrustError(
            f"the certificate carried with {party}'s signature names party {named}",
            reason="party-mismatch",
        )
    check_signing_profile(cert, party)  # 5.
    return LearnedKey(party, der, verification_key_of(cert, party))


def learned_keys_for(
    partner: PartnerTrust, learned: Iterable[LearnedKey]
) -> dict[str, VerificationKey]:
    """The learned keys of ``partner`` that its trust anchor, as configured now, still vouches
    for (an anchor replaced by a reload takes the keys its predecessor issued with it)."""
    keys: dict[str, VerificationKey] = {}
    for item in learned:
        if item.party != partner.party:
            continue
        try:
            cert = x509.load_der_x509_certificate(item.certificate)
        except ValueError:
            continue
        if issuer_among(cert, partner.anchors) is None:
            continue
        keys[item.key.key_id] = item.key
    return keys


def check_tls_client(cert: x509.Certificate, partner: PartnerTrust) -> None:
    """A TLS client certificate, not one of the party's message-signing certificates.

    TLS and signing keys are kept apart: a signing key that also authenticated connections
    would make one stolen key worth both.
    """
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is None or ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise TrustError(
            f"certificate {cert.subject.rfc4514_string()!r} is not for TLS client authentication "
            "(extended key usage clientAuth missing)",
            reason="not-a-tls-certificate",
        )
    public_key = cert.public_key()
    signing = isinstance(public_key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
    if signing and key_id_of(public_key) in partner.signing_keys:  # type: ignore[arg-type]
        raise TrustError(
            f"{partner.party}'s TLS certificate uses its message-signing key",
            reason="not-a-tls-certificate",
        )


@dataclass(frozen=True)
class PartnerTrust:
    """What this hub trusts about one partner administration."""

    party: str
    # the party's CA certificates: one, or two while its CA rolls over (old and new)
    anchors: tuple[x509.Certificate, ...]
    signing_keys: Mapping[str, VerificationKey]  # by key id

    @classmethod
    def build(
        cls,
        party: str,
        anchors: Anchors,
        signing_certs: Iterable[x509.Certificate],
        now: datetime,
    ) -> PartnerTrust:
        check_party_id(party)
        keys: dict[str, VerificationKey] = {}
        for cert in signing_certs:
            check_issued_by(cert, anchors, now)
            check_signing_profile(cert, party)
            named = party_of(cert)
            if named != party:
                raise TrustError(
                    f"signing certificate configured for {party} names party {named}",
                    reason="party-mismatch",
                )
            key = verification_key_of(cert, party)
            keys[key.key_id] = key
        if not keys:
            raise TrustError(f"partner {party} has no signing certificate", reason="no-signing-key")
        return cls(party, as_anchors(anchors), keys)


@dataclass
class TrustStore:
    """Per-partner anchors and signing keys, plus this hub's own signing keys."""

    local_party: str
    partners: dict[str, PartnerTrust] = field(default_factory=dict)
    local_keys: dict[str, VerificationKey] = field(default_factory=dict)
    # PEM -> (party, not valid after): parsing and checking a certificate on every call would
    # cost more than the rest of a small request.
    _peer_cache: dict[bytes, tuple[str, datetime]] = field(default_factory=dict, repr=False)

    def keys_for(self, party: str) -> Mapping[str, VerificationKey]:
        if party == self.local_party:
            return self.local_keys
        partner = self.partners.get(party)
        return partner.signing_keys if partner else {}

    def peer_party(self, peer_cert_pem: bytes, now: datetime | None = None) -> str:
        """The party an mTLS client certificate proves, checked against that party's anchor.

        gRPC has already checked the chain against the union of all partner anchors; this
        binds the certificate to the anchor of the one party it names.
        """
        now = now or datetime.now(UTC)
        cached = self._peer_cache.get(peer_cert_pem)
        if cached is not None and now <= cached[1]:
            return cached[0]
        try:
            cert = x509.load_pem_x509_certificate(peer_cert_pem)
        except ValueError:
            raise TrustError(
                "peer certificate is not readable PEM", reason="no-peer-certificate"
            ) from None
        party = party_of(cert)
        partner = self.partners.get(party)
        if partner is None:
            raise TrustError(
                f"peer certificate names {party}, which is not a partner", reason="unknown-partner"
            )
        check_issued_by(cert, partner.anchors, now)
        check_tls_client(cert, partner)
        if len(self._peer_cache) > 1024:  # bounded: a handful of partners, a few rotations each
            self._peer_cache.clear()
        self._peer_cache[peer_cert_pem] = (party, cert.not_valid_after_utc)
        return party


class LearnedKeys:
    """Partners' learned signing keys (``LearnedKey``), as a hub holds them while it runs:
    loaded from its store at start, added to as it learns, and kept across reloads, which
    replace the configured trust but not what was learned.

    ``keys_for`` gives a partner's configured keys and the learned ones its configured anchor
    vouches for, worked out once per partner trust and set of learned keys (checking an
    anchor's signature on every envelope would cost more than the envelope)."""

    def __init__(self) -> None:
        self._learned: dict[str, dict[str, LearnedKey]] = {}  # party -> key id -> key
        self._merged: dict[str, tuple[PartnerTrust, int, Mapping[str, VerificationKey]]] = {}
        self._version = 0

    def add(self, learned: Iterable[LearnedKey]) -> None:
        """Keys learned; a key already known keeps the certificate it was first learned from,
        as the store does (``learned_signing_key`` is keyed by party and key id), so what a
        running hub trusts is what it trusts again after a restart."""
        for item in learned:
            self._learned.setdefault(item.party, {}).setdefault(item.key.key_id, item)
        self._version += 1

    def of(self, party: str) -> list[LearnedKey]:
        return list(self._learned.get(party, {}).values())

    def knows(self, party: str, key_id: str) -> bool:
        return key_id in self._learned.get(party, {})

    def keys_for(self, trust: TrustStore, party: str) -> Mapping[str, VerificationKey]:
        partner = trust.partners.get(party)
        if partner is None or party not in self._learned:
            return trust.keys_for(party)
        cached = self._merged.get(party)
        if cached is not None and cached[0] is partner and cached[1] == self._version:
            return cached[2]
        learned = learned_keys_for(partner, self._learned[party].values())
        merged = {**learned, **partner.signing_keys}  # a configured key is the configured one
        self._merged[party] = (partner, self._version, merged)
        return merged
