"""A development federation PKI: one CA per administration, TLS and signing certificates.

For development, tests and demos only. Real deployments bring their own PKI; the hub needs
from it only what ``hub.core.trust`` checks (a URI SAN naming the party, issued by that party's
anchor). Keys are written with mode 0600 and are never logged.

Layout written by ``init_federation(out, ["CN", "NZ"])``::

    out/CN/ca.pem            CN's administration CA (trust anchor partners configure)
    out/CN/ca.key
    out/CN/tls.pem, tls.key  CN hub's TLS certificate (server and client auth), ECDSA P-256
    out/CN/signing.pem, signing.key   CN hub's message-signing certificate, Ed25519
                                      (keyUsage digitalSignature and nonRepudiation,
                                      extendedKeyUsage id-kp-documentSigning)
    out/CN/trail.key, trail.vkey      CN hub's checkpoint key, Ed25519, and its verifier key
    out/CN/audit.key                  CN hub's key for auditors' tokens, Ed25519
    out/CN/crl.pem                    CN CA's revocation list, empty (hub/cli/crl.py)

``new_trail_key`` (``customs-hub pki trail-key``) writes a further trail key and its verifier
key, for a rotation (docs/trail.md, "Rotating the trail key").
``issue_next_signing`` (``customs-hub pki next-signing``) adds a party's next message-signing
certificate and key beside them, ``out/CN/signing-2.pem`` and ``signing-2.key`` and so on, for
a rotation (docs/key-rotation.md).
With ``crl_url`` (``pki init --crl-url``), every leaf names its CA's CRL distribution point
(``{party}`` in the URL replaced by the party), for hubs configured with ``crl_fetch = true``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.cli.crl import crl_path, issue_crl, write_crl
from hub.core.errors import ConfigError
from hub.core.trust import DOCUMENT_SIGNING, check_party_id, party_uri
from hub.trail.checkpoint import NoteKey, trail_key_name

# Development certificates live a year: long enough for a demo federation to outlive its
# sessions, short enough that nobody mistakes them for production material.
DEV_VALIDITY = timedelta(days=365)
# Back-date slightly so a peer whose clock runs a little behind still accepts them.
BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class PartyFiles:
    party: str
    ca_cert: Path
    ca_key: Path
    tls_cert: Path
    tls_key: Path
    signing_cert: Path
    signing_key: Path
    trail_key: Path  # signs the trail's checkpoints (hub/trail/checkpoint.py); not a certificate
    trail_verifier: Path  # the verifier key string auditors are given
    audit_key: Path  # signs and verifies auditors' tokens (hub/core/auth.py)

    @classmethod
    def at(cls, root: Path, party: str) -> PartyFiles:
        d = root / party
        return cls(
            party,
            d / "ca.pem",
            d / "ca.key",
            d / "tls.pem",
            d / "tls.key",
            d / "signing.pem",
            d / "signing.key",
            d / "trail.key",
            d / "trail.vkey",
            d / "audit.key",
        )


def _name(party: str, role: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, f"Customs administration {party} (development)"
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{party} {role}"),
        ]
    )


def write_key(path: Path, key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> None:
    """A private key as unencrypted PKCS #8 PEM, readable by its owner only."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_ca(party: str, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(party, "customs CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + DEV_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(
    party: str,
    role: str,
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime,
    *,
    tls: bool,
    validity: timedelta = DEV_VALIDITY,
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
    crl_url: str = "",
) -> x509.Certificate:
    """A leaf certificate naming ``party`` as a URI SAN, for TLS or for message signing."""
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(party_uri(party))]
    if tls:
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(party, role))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=not tls,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    # TLS: server and client authentication; signing: id-kp-documentSigning (RFC 9336), the
    # signing-certificate profile's (docs/adr/0008), so neither can stand in for the other.
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = builder.add_extension(
        x509.ExtendedKeyUsage(usages if tls else [DOCUMENT_SIGNING]), critical=False
    )
    if crl_url:
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url)],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def new_trail_key(key_path: Path, party: str) -> tuple[Path, str]:
    """A new Ed25519 trail key for ``party`` at ``key_path`` and its verifier key string in
    the ``.vkey`` file beside it; returns that file and the string. Refuses to replace an
    existing file: a trail key overwritten is a history nobody can extend."""
    check_party_id(party)
    verifier_path = key_path.with_suffix(".vkey")
    if verifier_path == key_path:
        raise ValueError(f"{key_path}: name the private key's file, not a .vkey")
    for path in (key_path, verifier_path):
        if path.exists() or path.is_symlink():
            raise FileExistsError(f"{path}: exists; a trail key is never written over")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    verifier = NoteKey(trail_key_name(party), key.public_key()).verifier()
    fd = os.open(verifier_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(verifier + "\n")
    return verifier_path, verifier


def init_party(
    root: Path, party: str, now: datetime | None = None, *, crl_url: str = ""
) -> PartyFiles:
    check_party_id(party)
    crl_url = crl_url.replace("{party}", party)
    now = now or datetime.now(UTC)
    files = PartyFiles.at(root, party)
    files.ca_cert.parent.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca(party, now)
    tls_key = ec.generate_private_key(ec.SECP256R1())
    signing_key = ed25519.Ed25519PrivateKey.generate()
    write_cert(files.ca_cert, ca_cert)
    write_key(files.ca_key, ca_key)
    write_cert(
        files.tls_cert,
        issue(
            party, "hub TLS", tls_key.public_key(), ca_cert, ca_key, now, tls=True, crl_url=crl_url
        ),
    )
    write_key(files.tls_key, tls_key)
    write_cert(
        files.signing_cert,
        issue(
            party,
            "hub message signing",
            signing_key.public_key(),
            ca_cert,
            ca_key,
            now,
            tls=False,
            crl_url=crl_url,
        ),
    )
    write_key(files.signing_key, signing_key)
    trail_key = ed25519.Ed25519PrivateKey.generate()
    write_key(files.trail_key, trail_key)
    name = trail_key_name(party)
    files.trail_verifier.write_text(NoteKey(name, trail_key.public_key()).verifier() + "\n")
    write_key(files.audit_key, ed25519.Ed25519PrivateKey.generate())
    write_crl(crl_path(root, party), issue_crl(ca_cert, ca_key, [], now))
    return files


def init_federation(root: Path, parties: list[str], *, crl_url: str = "") -> list[PartyFiles]:
    root.mkdir(parents=True, exist_ok=True)
    return [init_party(root, p, crl_url=crl_url) for p in parties]


def _load_ca(root: Path, party: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    files = PartyFiles.at(root, party)
    try:  # the development CA's own files, which no hub configuration names
        cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        ca_pem = files.ca_key.read_bytes()
        key = serialization.load_pem_private_key(ca_pem, password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{files.ca_cert.parent}: cannot read {party}'s CA certificate and key ({exc}); "
            "run `customs-hub pki init` first",
            reason="config-invalid",
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{files.ca_key}: not the CA's ECDSA key", reason="config-invalid")
    return cert, key


def issue_next_signing(
    root: Path,
    party: str,
    now: datetime | None = None,
    validity: timedelta = DEV_VALIDITY,
) -> tuple[Path, Path]:
    """A new message-signing certificate and Ed25519 key for ``party``, issued by its CA in
    ``root``, written as the next free ``signing-N.pem`` / ``signing-N.key`` (N from 2): the
    key a hub rotates to. Returns (certificate, key). Nothing existing is overwritten."""
    check_party_id(party)
    now = now or datetime.now(UTC)
    ca_cert, ca_key = _load_ca(root, party)
    folder = root / party
    n = 2
    while (folder / f"signing-{n}.pem").exists() or (folder / f"signing-{n}.key").exists():
        n += 1
    cert_path, key_path = folder / f"signing-{n}.pem", folder / f"signing-{n}.key"
    key = ed25519.Ed25519PrivateKey.generate()
    cert = issue(
        party,
        f"hub message signing {n}",
        key.public_key(),
        ca_cert,
        ca_key,
        now,
        tls=False,
        validity=validity,
    )
    write_key(key_path, key)
    write_cert(cert_path, cert)
    return cert_path, key_path
