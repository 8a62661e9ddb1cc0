"""Every key and certificate the hub reads from disk, read here and nowhere else: its own
TLS identity, its message-signing key and certificate, the trail key, the audit token key,
and each partner's trust anchor and signing certificates. What is read is checked to belong
together (one key, one purpose) before the hub uses it; a file that is missing or not what it
should be is a ConfigError naming it. Nothing here logs a private key or its bytes."""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes as PrivateKey

from hub.config import CARRY_ALWAYS, CARRY_OVERLAP, HubConfig
from hub.core.auth import TokenIssuer, TokenVerifier
from hub.core.errors import ConfigError, TrustError
from hub.core.revocation import (
    AnchorRevocation,
    Crl,
    Revocation,
    key_digest,
    parse_crl,
    parse_token_ids,
)
from hub.core.signing import Signer, VerificationKey, key_id_of
from hub.core.trust import (
    Anchors,
    PartnerTrust,
    TrustStore,
    check_issued_by,
    party_of,
    signing_profile_fault,
    verification_key_of,
)
from hub.trail import checkpoint
from hub.trail.checkpoint import trail_key_name
from hub.trail.handover import TrailKeys


def read_ed25519_key(path: Path, what: str) -> ed25519.Ed25519PrivateKey:
    """An unencrypted PEM Ed25519 private key (the trail key, the audit token key), or a
    ConfigError naming the file and what the key is for."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise ConfigError(f"{path}: cannot load the {what}", reason="config-invalid") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{path}: the {what} is not an Ed25519 key", reason="config-invalid")
    return key


def load_trail_key(config: HubConfig, signer: Signer) -> checkpoint.NoteKey:
    """The key that signs checkpoints: Ed25519, and not the message-signing key."""
    key = read_ed25519_key(config.trail_key, "trail key")
    if key.public_key() == signer.private_key.public_key():
        raise ConfigError("the trail key and the signing key must differ", reason="config-invalid")
    return checkpoint.NoteKey(trail_key_name(config.party), key.public_key(), key)


def load_trail_keys(config: HubConfig, signer: Signer) -> TrailKeys:
    """``trail.key`` and, during a rotation, ``trail.previous_key`` (the key that signed the
    newest checkpoint and hands over to trail.key): Ed25519, two different keys, neither the
    message-signing key."""
    current = load_trail_key(config, signer)
    if config.trail_previous_key is None:
        return TrailKeys(current)
    path = config.trail_previous_key
    key = read_ed25519_key(path, "previous trail key")
    if key.public_key() == current.public:
        raise ConfigError(
            f"{path}: trail.previous_key is the same key as trail.key; name the key that "
            "signed the newest checkpoint, or remove trail.previous_key",
            reason="config-invalid",
        )
    if key.public_key() == signer.private_key.public_key():
        raise ConfigError(
            "the previous trail key and the signing key must differ", reason="config-invalid"
        )
    previous = checkpoint.NoteKey(trail_key_name(config.party), key.public_key(), key)
    return TrailKeys(current, previous)


def load_trust(config: HubConfig, now: datetime) -> tuple[TrustStore, Signer]:
    """Read certificates and keys named by the config and check they belong together."""
    trust = TrustStore(local_party=config.party)
    for partner in config.partners.values():
        anchors = read_anchors(partner.trust_anchor, f"trust anchor of {partner.party}")
        certs = [
            _signing_certificate(p, f"signing certificate of {partner.party}")
            for p in partner.signing_certs
        ]
        trust.partners[partner.party] = PartnerTrust.build(partner.party, anchors, certs, now)
    own_anchors = read_anchors(config.trust_anchor, "trust anchor")
    signing_cert = _signing_certificate(config.signing_cert, "signing certificate")
    own = PartnerTrust.build(config.party, own_anchors, [signing_cert], now)
    trust.local_keys.update(_previous_keys(config, own_anchors))
    trust.local_keys.update(own.signing_keys)
    # the certificate travels with each signature while partners may not have it yet
    # (docs/adr/0010-key-rotation.md)
    carry = config.carry_certificate == CARRY_ALWAYS or (
        config.carry_certificate == CARRY_OVERLAP and bool(config.signing_previous)
    )
    try:
        signer = Signer.from_pem(
            _read(config.signing_key, "signing key"),
            signing_cert.public_bytes(serialization.Encoding.DER),
            carry,
        )
    except ValueError:
        raise ConfigError(
            f"{config.signing_key}: the signing key is not an unencrypted PEM private key",
            reason="config-invalid",
        ) from None
    if signer.key_id not in trust.local_keys:
        raise ConfigError(
            f"{config.signing_key} does not match the signing certificate {config.signing_cert}",
            reason="config-invalid",
        )
    tls_cert = _certificate(config.tls_cert, "TLS certificate")
    if party_of(tls_cert) != config.party:
        raise ConfigError(
            f"{config.tls_cert} does not name party {config.party}", reason="config-invalid"
        )
    if tls_cert.public_key() == signer.private_key.public_key():
        raise ConfigError("the TLS key and the signing key must differ", reason="config-invalid")
    return trust, signer


def _previous_keys(config: HubConfig, anchors: Anchors) -> dict[str, VerificationKey]:
    """The keys of ``signing.previous_certs``: this hub's signing certificates before the
    current one. Each must be one its own CA issued, naming this party and fitting the signing
    profile; one past its notAfter is kept (what it signed still verifies at its signing
    time, ``VerificationKey.check_use``), and it signs nothing new."""
    found: dict[str, VerificationKey] = {}
    for i, path in enumerate(config.signing_previous):
        what = f"signing.previous_certs[{i}]"
        cert = _signing_certificate(path, f"previous signing certificate ({what})")
        try:
            check_issued_by(cert, anchors, cert.not_valid_before_utc)  # its dates: at use
            named = party_of(cert)
        except TrustError as exc:
            raise ConfigError(f"{path}: {what}: {exc.message}", reason="config-invalid") from None
        if named != config.party:
            raise ConfigError(
                f"{path}: {what} names party {named}, not {config.party}", reason="config-invalid"
            )
        key = verification_key_of(cert, config.party)
        found[key.key_id] = key
    return found


def trail_verifier(config: HubConfig) -> checkpoint.NoteKey:
    """The public half of this hub's trail key: what verifies its checkpoints."""
    key = read_ed25519_key(config.trail_key, "trail key")
    return checkpoint.NoteKey(trail_key_name(config.party), key.public_key())


def trail_verifiers(config: HubConfig) -> list[checkpoint.NoteKey]:
    """The public halves of ``trail.key`` and, during a rotation, ``trail.previous_key``:
    what verifies a checkpoint this hub signed before or after the hand-over."""
    found = [trail_verifier(config)]
    if config.trail_previous_key is not None:
        key = read_ed25519_key(config.trail_previous_key, "previous trail key")
        found.append(checkpoint.NoteKey(trail_key_name(config.party), key.public_key()))
    return found


def load_audit_key(config: HubConfig) -> ed25519.Ed25519PrivateKey:
    """The Ed25519 key that signs auditors' tokens; refused if it is the trail key or the
    message-signing key (one key, one purpose)."""
    if config.audit_key is None:
        raise ConfigError(
            f"{config.path}: [audit] token_key is not set; auditors' tokens need it",
            reason="config-invalid",
        )
    key = read_ed25519_key(config.audit_key, "audit token key")
    others = [config.trail_key, config.signing_key, *filter(None, [config.trail_previous_key])]
    if config.audit_key.resolve() in {path.resolve() for path in others}:
        raise ConfigError(
            "the audit token key must differ from the trail and signing keys",
            reason="config-invalid",
        )
    return key


def tls_identity(config: HubConfig) -> tuple[bytes, bytes]:
    """This hub's TLS key and certificate, PEM, as gRPC takes them: (key, certificate), each
    read once and checked to be one pair (a renewal that rewrites the two files one after the
    other is not caught between them)."""
    key, cert = _read(config.tls_key, "TLS key"), _read(config.tls_cert, "TLS certificate")
    try:
        private = serialization.load_pem_private_key(key, password=None)
        public = x509.load_pem_x509_certificate(cert).public_key()
    except (ValueError, TypeError):
        raise ConfigError(
            f"{config.tls_key}, {config.tls_cert}: not a PEM private key and certificate",
            reason="config-invalid",
        ) from None
    if private.public_key() != public:
        raise ConfigError(
            f"tls.key does not match tls.cert ({config.tls_key}, {config.tls_cert})",
            reason="config-invalid",
        )
    return key, cert


def file_digests(config: HubConfig) -> dict[tuple[str, ...], bytes]:
    """SHA-256 of each certificate and key file a reload may change, by what it is: this
    hub's ("own", name) and each partner's (party, "anchor" or "signing", n). What a reload
    compares to say what changed; the files' bytes are not kept."""

    def digest(path: Path) -> bytes:
        try:
            return hashlib.sha256(path.read_bytes()).digest()
        except OSError:
            return b""  # gone: a change, which the reload's checks then refuse

    out: dict[tuple[str, ...], bytes] = {}
    for name in ("tls_cert", "tls_key", "trust_anchor", "signing_cert", "signing_key"):
        out[("own", name)] = digest(getattr(config, name))
    if config.audit_key is not None:
        out[("own", "audit_key")] = digest(config.audit_key)
    for n, path in enumerate(config.previous_audit_keys):
        out[("own", "previous_audit_key", str(n))] = digest(path)
    for n, path in enumerate(config.signing_previous):
        out[("own", "previous", str(n))] = digest(path)
    for party, partner in config.partners.items():
        out[(party, "anchor")] = digest(partner.trust_anchor)
        for n, path in enumerate(partner.signing_certs):
            out[(party, "signing", str(n))] = digest(path)
    return out


def trusted_certificates(config: HubConfig) -> dict[str, tuple[bytes, list[bytes]]]:
    """Every party's trust anchor and signing certificates the config names, PEM, by party:
    this hub's own and each partner's. What a trail export carries so that auditors can check
    the stored messages' signatures offline (hub/trail/messages.py)."""
    found = {
        config.party: (
            _read(config.trust_anchor, "trust anchor"),
            [
                _read(config.signing_cert, "signing certificate"),
                *(_read(p, "previous signing certificate") for p in config.signing_previous),
            ],
        )
    }
    for partner in config.partners.values():
        found[partner.party] = (
            _read(partner.trust_anchor, f"trust anchor of {partner.party}"),
            [_read(p, f"signing certificate of {partner.party}") for p in partner.signing_certs],
        )
    return found


def revocation_lists(config: HubConfig) -> dict[str, list[bytes]]:
    """The CRL files the config names for each party's trust anchor (this hub's own under
    ``tls.crls``), as read, by party: what an evidence bundle carries for its signer's anchor
    (hub/cli/evidence.py). Their signatures are checked where they are used."""
    found = {config.party: [_read(p, "CRL of tls") for p in config.crls]}
    for partner in config.partners.values():
        found[partner.party] = [_read(p, f"CRL of {partner.party}") for p in partner.crls]
    return found


def partner_anchors(config: HubConfig) -> dict[str, bytes]:
    """Each partner's trust anchor (its CA certificate), PEM, by party."""
    return {
        p.party: _read(p.trust_anchor, f"trust anchor of {p.party}")
        for p in config.partners.values()
    }


def config_digest(config: HubConfig) -> bytes:
    """SHA-256 over what decides this hub's behaviour and identity: the config file and the
    public parts it names (certificates, the trail key's public key); never a private key.
    The trail's "config-changed" leaves carry it. With agreements configured, their digest
    (the policy version the "queued" leaves name) is covered by name as well as by the file;
    with code lists configured, the lists as read (a list file's content too)."""
    digest = hashlib.sha256()
    for data in public_parts(config):
        digest.update(len(data).to_bytes(8, "big") + data)
    if config.agreements.configured:
        policy = b"agreements:" + config.agreements.digest.encode()
        digest.update(len(policy).to_bytes(8, "big") + policy)
    if config.code_lists:  # what list files hold, which the config file only names
        lists = b"code_lists:" + repr(config.code_lists.lists).encode()
        digest.update(len(lists).to_bytes(8, "big") + lists)
    trail_public = read_ed25519_key(config.trail_key, "trail key").public_key()
    digest.update(
        checkpoint.NoteKey(trail_key_name(config.party), trail_public).verifier().encode()
    )
    return digest.digest()


def public_parts(config: HubConfig) -> list[bytes]:
    """The configuration file and the public parts it names (certificates, never a private
    key), in a fixed order: what a digest of the hub's identity covers."""
    files = [config.path, config.tls_cert, config.trust_anchor, config.signing_cert]
    files += config.signing_previous
    for partner in sorted(config.partners.values(), key=lambda p: p.party):
        files += [partner.trust_anchor, *partner.signing_certs]
    # and what revokes: a new revocation list is a change of trust like any other
    files += revocation_files(config)
    return [_read(path, "file") for path in files]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the {what}: {exc.strerror}", reason="config-invalid"
        ) from None


def _certificate(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(path, what))
    except ValueError:
        raise ConfigError(
            f"{path}: the {what} is not a PEM certificate", reason="config-invalid"
        ) from None


# A party's trust anchor file holds its CA certificate, or, while the CA rolls over, the old
# one and its successor (and, rarely, a third during an overlap of overlaps).
MAX_ANCHORS = 4


def read_anchors(path: Path, what: str) -> tuple[x509.Certificate, ...]:
    """The CA certificates in a trust anchor file (PEM, one or more)."""
    try:
        found = tuple(x509.load_pem_x509_certificates(_read(path, what)))
    except ValueError:
        raise ConfigError(
            f"{path}: the {what} is not a PEM certificate", reason="config-invalid"
        ) from None
    if len(found) > MAX_ANCHORS:
        raise ConfigError(
            f"{path}: the {what} holds {len(found)} certificates; at most {MAX_ANCHORS} "
            "(a CA and its successors while it rolls over)",
            reason="config-invalid",
        )
    for n, cert in enumerate(found):  # each vouches for the party: each must be a CA
        fault = _not_a_ca(cert)
        if fault:
            raise ConfigError(
                f"{path}: certificate {n + 1} of the {what} "
                f"({cert.subject.rfc4514_string()!r}) is not a CA certificate: {fault}",
                reason="config-invalid",
            )
    return found


def _every_anchor_listed(
    key: str, anchors: Sequence[x509.Certificate], crls: Sequence[Crl]
) -> None:
    """With CRLs configured, each of a party's anchors (the old CA and the new while it rolls
    over) has one of them (by the key that signed it, ``Crl.issuer_key``): otherwise what the
    unlisted CA issued would be checked against nothing, and revoking it would change
    nothing."""
    signed_by = {crl.issuer_key for crl in crls}
    for n, anchor in enumerate(anchors):
        if key_digest(anchor) not in signed_by:
            raise ConfigError(
                f"{key}.crls: none of the revocation lists is issued by anchor {n + 1} "
                f"({anchor.subject.rfc4514_string()!r}) of the trust anchor file; while a CA "
                "rolls over, list each CA's CRL",
                reason="config-invalid",
            )


def _not_a_ca(cert: x509.Certificate) -> str:
    """Why ``cert`` may not be a trust anchor, or "": basicConstraints must say CA, and a
    keyUsage, if present, must allow keyCertSign (RFC 5280 4.2.1.3, 4.2.1.9)."""
    try:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "basicConstraints says it is not a CA"
    except x509.ExtensionNotFound:
        return "it has no basicConstraints"
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return ""
    return "" if usage.key_cert_sign else "its keyUsage does not allow keyCertSign"


def _signing_certificate(path: Path, what: str) -> x509.Certificate:
    """A certificate that fits the signing-certificate profile (docs/adr/0008): a TLS
    certificate, or one without digitalSignature, is refused here naming its file."""
    cert = _certificate(path, what)
    fault = signing_profile_fault(cert)
    if fault:
        raise ConfigError(
            f"{path}: the {what} may not sign messages: {fault}", reason="config-invalid"
        )
    return cert


def check(config: HubConfig, now: datetime | None = None) -> list[str]:
    """Every problem with what the config's key and certificate files hold, one line each,
    naming the file and the key in the config; empty when the hub can start with them.

    1. At least one partner (a partner port with no client CA cannot require client
       certificates).
    2. The TLS key and certificate are one pair; so are the signing key and certificate.
    3. The trail key (and the previous one, during a rotation) and the audit token key are
       Ed25519 private keys.
    4. Then, if all that holds, what a start reads: the trust anchors and certificates of the
       hub and its partners, each key used for one purpose only, and the revocation lists
       (each signed by its anchor) and token deny-list.
    """
    problems: list[str] = []

    def problem(text: str) -> None:
        problems.append(f"{config.path}: {text}")

    if not config.partners:
        problem("no [partners.X] table: a hub needs at least one partner")
    for key_name, key_path, cert_name, cert_path in (
        ("tls.key", config.tls_key, "tls.cert", config.tls_cert),
        ("signing.key", config.signing_key, "signing.cert", config.signing_cert),
    ):
        try:
            private = _private_key(key_path, key_name)
            public = _certificate(cert_path, cert_name).public_key()
        except ConfigError as exc:
            problem(exc.message)
            continue
        if private.public_key() != public:
            problem(f"{key_name} does not match {cert_name} ({key_path}, {cert_path})")
    ed25519_keys = [("trail.key", config.trail_key)]
    if config.trail_previous_key is not None:
        ed25519_keys.append(("trail.previous_key", config.trail_previous_key))
    if config.audit_key is not None:
        ed25519_keys.append(("audit.token_key", config.audit_key))
    for name, path in ed25519_keys:
        try:
            read_ed25519_key(path, name)
        except ConfigError as exc:
            problem(exc.message)
    if problems:
        return problems
    try:
        _, signer = load_trust(config, now or datetime.now(UTC))
        load_trail_keys(config, signer)
        if config.audit_key is not None:
            load_audit_key(config)
        read_revocation(config)  # every CRL signed by its anchor; the deny-list readable
        for source in crl_sources(config):
            if not source.url:
                problem(
                    f"{source.key}.crl_fetch: none of its certificates names an http(s) CRL "
                    "distribution point; name one with crl_url"
                )
    except ConfigError as exc:
        problem(exc.message)
    return problems


def require_usable(config: HubConfig, now: datetime | None = None) -> None:
    """``check``, with its problems as one ConfigError (before a hub starts)."""
    problems = check(config, now)
    if problems:
        raise ConfigError("\n".join(problems), reason="config-invalid")


def _private_key(path: Path, what: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path, what), password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            f"{path}: the {what} is not an unencrypted PEM private key", reason="config-invalid"
        ) from None
    return key


def token_issuer(config: HubConfig) -> TokenIssuer:
    return TokenIssuer(load_audit_key(config), config.issuer, config.audience)


def token_keys(config: HubConfig) -> tuple[ed25519.Ed25519PublicKey, ...]:
    """The public keys whose auditors' tokens are accepted: the audit key's first, then
    those it replaced (``audit.previous_token_keys``, public or private PEM). None without an
    audit key."""
    if config.audit_key is None:
        return ()
    found = [load_audit_key(config).public_key()]
    for n, path in enumerate(config.previous_audit_keys):
        what = f"audit.previous_token_keys[{n}]"
        data = _read(path, what)
        try:
            key: object = serialization.load_pem_public_key(data)
        except ValueError:
            try:
                key = serialization.load_pem_private_key(data, password=None).public_key()
            except (ValueError, TypeError):
                raise ConfigError(
                    f"{path}: the {what} is not an unencrypted PEM key", reason="config-invalid"
                ) from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ConfigError(f"{path}: the {what} is not an Ed25519 key", reason="config-invalid")
        found.append(key)
    return tuple(found)


def token_verifier(
    config: HubConfig,
    revoked: Callable[[], Collection[str]] | None = None,
    accepted: Callable[[], Sequence[ed25519.Ed25519PublicKey]] | None = None,
) -> TokenVerifier:
    """What verifies auditors' tokens; ``revoked`` gives the token ids refused now, and
    ``accepted`` the keys accepted now (a running hub's settings; by default the config's)."""
    if accepted is None:
        fixed = token_keys(config)
        accepted = lambda: fixed  # noqa: E731
    return TokenVerifier(accepted, config.issuer, config.audience, revoked=revoked)


def certificates(config: HubConfig) -> list[tuple[str, str, datetime]]:
    """Every certificate the config names, as (config key, subject, not after): this hub's
    TLS certificate, trust anchor and signing certificate, and each partner's trust anchor and
    signing certificates. What ``customs-hub status`` checks for expiry."""
    named: list[tuple[str, Path, str]] = [
        ("tls.cert", config.tls_cert, "TLS certificate"),
        ("tls.trust_anchor", config.trust_anchor, "trust anchor"),
        ("signing.cert", config.signing_cert, "signing certificate"),
    ]
    named += [
        (f"signing.previous_certs[{i}]", path, "previous signing certificate")
        for i, path in enumerate(config.signing_previous)
    ]
    for partner in sorted(config.partners.values(), key=lambda p: p.party):
        key = f"partners.{partner.party}"
        named.append((f"{key}.trust_anchor", partner.trust_anchor, f"trust anchor of {key}"))
        named += [
            (f"{key}.signing_certs[{i}]", path, f"signing certificate of {key}")
            for i, path in enumerate(partner.signing_certs)
        ]
    found = []
    for key, path, what in named:
        # a trust anchor file may hold a CA and its successor: each ends on its own date
        anchor = key.endswith("trust_anchor")
        certs = read_anchors(path, what) if anchor else (_certificate(path, what),)
        for cert in certs:
            found.append((key, cert.subject.rfc4514_string(), cert.not_valid_after_utc))
    return found


def revocation_files(config: HubConfig) -> list[Path]:
    """The files a revocation set is read from: every CRL the config names, and the auditors'
    token deny-list."""
    files = [*config.crls]
    for partner in config.partners.values():
        files += partner.crls
    if config.revoked_tokens is not None:
        files.append(config.revoked_tokens)
    return files


def file_stamp(path: Path) -> tuple[int, int]:
    """(mtime in ns, size) of a file, (0, -1) if it cannot be looked at: what tells a watcher
    that a file changed without reading it."""
    try:
        info = os.stat(path)
    except OSError:
        return (0, -1)
    return (info.st_mtime_ns, info.st_size)


def read_revocation(config: HubConfig) -> Revocation:
    """What is revoked, read from the files the config names (hub/core/revocation.py): each
    anchor's CRLs, checked to be signed by that anchor, with the serials of the party's signing
    certificates; and the auditors' token deny-list. A ConfigError names the file that is not
    what it should be, or this hub's own certificate if its own CA revoked it."""
    stamps = {str(path): file_stamp(path) for path in revocation_files(config)}  # before reading
    anchors: dict[str, AnchorRevocation] = {}
    named = [
        (
            p.party,
            p.trust_anchor,
            p.signing_certs,
            p.crls,
            p.crl_stale,
            f"partners.{p.party}",
        )
        for p in config.partners.values()
    ]
    named.append(
        (
            config.party,
            config.trust_anchor,
            (config.signing_cert, *config.signing_previous),
            config.crls,
            config.crl_stale,
            "tls",
        )
    )
    for party, anchor_path, signing_paths, crl_paths, policy, key in named:
        if not crl_paths:
            continue
        issuers = read_anchors(anchor_path, f"trust anchor of {key}")
        crls = tuple(
            parse_crl(_read(path, f"CRL of {key}"), issuers, f"{key}.crls: {path}")
            for path in crl_paths
        )
        _every_anchor_listed(key, issuers, crls)
        serials: dict[str, int] = {}
        for path in signing_paths:
            cert = _certificate(path, f"signing certificate of {key}")
            public = cert.public_key()
            if isinstance(public, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
                serials[key_id_of(public)] = cert.serial_number
        anchors[party] = AnchorRevocation(party, crls, policy, serials)
    tokens: frozenset[str] = frozenset()
    if config.revoked_tokens is not None:
        path = config.revoked_tokens
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"audit.revoked_tokens: cannot read {path}: {getattr(exc, 'strerror', exc)}",
                reason="config-invalid",
            ) from None
        tokens = parse_token_ids(text, f"audit.revoked_tokens: {path}")
    revocation = Revocation(anchors, tokens, stamps)
    own = anchors.get(config.party)
    if own is not None:
        for what, path in (("TLS", config.tls_cert), ("signing", config.signing_cert)):
            cert = _certificate(path, f"{what} certificate")
            try:
                own.check(cert.serial_number, f"{what} certificate", datetime.now(UTC))
            except TrustError as exc:
                if exc.reason == "certificate-revoked":
                    raise ConfigError(f"{path}: {exc.message}", reason="config-invalid") from None
    return revocation


@dataclass(frozen=True)
class CrlSource:
    """Where one anchor's revocation list is fetched from (``crl_url``, or ``crl_fetch`` and
    the distribution point its certificates name) and where it goes (the first of its
    ``crls``), with the anchor that must have signed it."""

    party: str
    key: str  # "partners.CN" or "tls": the config table, for log lines
    url: str  # "" when crl_fetch found no http(s) distribution point
    target: Path
    anchor: Anchors  # its CA, or the old and the new while it rolls over
    # serials of this hub's own TLS and signing certificates, when the anchor is its own CA:
    # a list that revokes them is not written (a restart would then refuse to start)
    own_serials: frozenset[int] = frozenset()
    # whether the URL may lead to a loopback, private or link-local address: an operator's
    # crl_url may; a distribution point read from a certificate (crl_fetch), which the
    # certificate's owner chose, only with crl_fetch_private = true
    private_ok: bool = True


def crl_sources(config: HubConfig) -> list[CrlSource]:
    """Each anchor whose revocation list is fetched, read from the files the config names."""
    found = []
    named: list[tuple[str, str, Path, tuple[Path, ...], tuple[Path, ...], str, bool, bool]] = [
        (
            p.party,
            f"partners.{p.party}",
            p.trust_anchor,
            p.signing_certs,
            p.crls,
            p.crl_url,
            p.crl_fetch,
            p.crl_fetch_private,
        )
        for p in config.partners.values()
    ]
    own = (config.tls_cert, config.signing_cert)
    url, fetch, private = config.crl_url, config.crl_fetch, config.crl_fetch_private
    named.append((config.party, "tls", config.trust_anchor, own, config.crls, url, fetch, private))
    for party, key, anchor_path, cert_paths, crls, url, fetch, private in named:
        if not crls or not (url or fetch):
            continue
        anchors = read_anchors(anchor_path, f"trust anchor of {key}")
        certs = [_certificate(p, f"certificate of {key}") for p in cert_paths]
        if fetch:
            url = distribution_point([*certs, *anchors])
        own_serials = frozenset(c.serial_number for c in certs) if key == "tls" else frozenset()
        found.append(
            CrlSource(party, key, url, crls[0], anchors, own_serials, not fetch or private)
        )
    return found


def distribution_point(certs: list[x509.Certificate]) -> str:
    """The first http(s) URL of a CRL distribution point (RFC 5280 4.2.1.13) the certificates
    name, in their order; "" if none does (LDAP and other schemes are not fetched)."""
    for cert in certs:
        try:
            points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        except x509.ExtensionNotFound:
            continue
        for point in points:
            for name in point.full_name or ():
                if isinstance(name, x509.UniformResourceIdentifier) and name.value.startswith(
                    ("http://", "https://")
                ):
                    return str(name.value)
    return ""


def client_tls_context(key_pem: bytes, cert_pem: bytes, anchor_pem: bytes) -> ssl.SSLContext:
    """A TLS 1.3 client context with this hub's TLS key and certificate (the bytes read once
    by ``tls_identity``, never the files again) trusting only ``anchor_pem``: what the pre-flight
    handshake to a partner (hub/rpc/channels.py) uses, with the identity its gRPC channel has.

    Python's ssl takes a client key only from a file, so the key is handed over through an
    anonymous memory file (memfd, Linux) that no other process can open by name and that is
    gone once closed; elsewhere through a file in a private temporary folder, removed at once."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cadata=anchor_pem.decode("ascii", "replace"))
    context.set_alpn_protocols(["h2"])  # as a gRPC client offers; its server requires it
    pair = cert_pem.rstrip(b"\n") + b"\n" + key_pem
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("customs-hub-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, pair)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return context
    with tempfile.TemporaryDirectory(prefix="customs-hub-") as folder:  # 0700
        path = Path(folder) / "tls.pem"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pair)
        context.load_cert_chain(str(path))
    return context
