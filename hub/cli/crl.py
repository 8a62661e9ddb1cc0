"""Certificate revocation lists for a development PKI (``customs-hub pki init`` writes an empty
one per CA; ``customs-hub trust revoke`` adds a certificate to it).

For development, tests and demos only, like hub/cli/pki.py: a real administration's CA
publishes its own CRLs, and the hub needs from them only what hub/core/revocation.py checks
(issued and signed by the party's trust anchor, current). Each CRL written here is re-signed
with a new thisUpdate, nextUpdate and CRL number, and replaces the old one by a rename, so a
hub that reads it meanwhile sees the old list or the new, never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

# A development CRL is current for 90 days: a demo federation does not go stale over a few
# sessions, and `trust revoke` issues a new one. Real CAs issue daily or weekly.
DEV_CRL_VALIDITY = timedelta(days=90)
# Back-dated like the certificates (hub/cli/pki.py), for a peer whose clock runs behind.
BACKDATE = timedelta(minutes=5)
CRL_FILE = "crl.pem"


def crl_path(root: Path, party: str) -> Path:
    return root / party / CRL_FILE


def issue_crl(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    serials: Iterable[int],
    now: datetime,
    *,
    number: int = 1,
    validity: timedelta = DEV_CRL_VALIDITY,
) -> x509.CertificateRevocationList:
    """A CRL of ``ca_cert`` revoking ``serials``, signed by ``ca_key``."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - BACKDATE)
        .next_update(now + validity)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    for serial in sorted(set(serials)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - BACKDATE)
            .build()
        )
    return builder.sign(ca_key, hashes.SHA256())


def write_crl(path: Path, crl: x509.CertificateRevocationList) -> None:
    """Written to a temporary name and renamed into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(temporary, path)


def revoke(
    root: Path,
    party: str,
    serials: Iterable[int],
    now: datetime | None = None,
    *,
    validity: timedelta = DEV_CRL_VALIDITY,
) -> x509.CertificateRevocationList:
    """Add ``serials`` to ``party``'s CRL in the development PKI at ``root`` (made if missing):
    re-signed by its CA with a new thisUpdate, nextUpdate and CRL number. Revoking nothing
    re-issues the CRL as it is (a fresh nextUpdate)."""
    ca_cert = x509.load_pem_x509_certificate((root / party / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key(
        (root / party / "ca.key").read_bytes(), password=None
    )
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{root / party / 'ca.key'}: not the ECDSA key of a development CA")
    path = crl_path(root, party)
    known: set[int] = set(serials)
    number = 1
    if path.exists():
        old = x509.load_pem_x509_crl(path.read_bytes())
        known |= {entry.serial_number for entry in old}
        try:
            number = old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
        except x509.ExtensionNotFound:
            number = 1
    crl = issue_crl(
        ca_cert, ca_key, known, now or datetime.now(UTC), number=number, validity=validity
    )
    write_crl(path, crl)
    return crl
