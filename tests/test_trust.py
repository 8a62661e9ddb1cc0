"""Party identities in certificates and per-partner anchors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.cli.pki import issue, make_ca
from hub.core.errors import TrustError
from hub.core.trust import PartnerTrust, TrustStore, party_of

NOW = datetime.now(UTC)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_party_is_read_from_the_uri_san(pki: Path) -> None:
    assert party_of(load(pki / "NZ" / "tls.pem")) == "NZ"
    assert party_of(load(pki / "NZ" / "signing.pem")) == "NZ"
    with pytest.raises(TrustError):
        party_of(load(pki / "NZ" / "ca.pem"))  # a CA names no party


def test_tls_and_signing_keys_differ(pki: Path) -> None:
    assert (
        load(pki / "CN" / "tls.pem").public_key() != load(pki / "CN" / "signing.pem").public_key()
    )


def test_partner_trust_needs_certificates_from_its_own_anchor(pki: Path) -> None:
    trust = PartnerTrust.build(
        "NZ", load(pki / "NZ" / "ca.pem"), [load(pki / "NZ" / "signing.pem")], NOW
    )
    assert len(trust.signing_keys) == 1
    with pytest.raises(TrustError) as info:  # SG's signing cert offered as NZ's
        PartnerTrust.build(
            "NZ", load(pki / "NZ" / "ca.pem"), [load(pki / "SG" / "signing.pem")], NOW
        )
    assert info.value.reason == "untrusted-issuer"


def test_signing_certificate_must_name_the_partner() -> None:
    ca, ca_key = make_ca("NZ", NOW)
    other = issue(
        "SG",
        "signing",
        ed25519.Ed25519PrivateKey.generate().public_key(),
        ca,
        ca_key,
        NOW,
        tls=False,
    )
    with pytest.raises(TrustError) as info:
        PartnerTrust.build("NZ", ca, [other], NOW)
    assert info.value.reason == "party-mismatch"


def test_expired_certificate_is_refused() -> None:
    ca, ca_key = make_ca("NZ", NOW - timedelta(days=10))
    old = issue(
        "NZ",
        "signing",
        ed25519.Ed25519PrivateKey.generate().public_key(),
        ca,
        ca_key,
        NOW - timedelta(days=10),
        tls=False,
        validity=timedelta(days=1),
    )
    with pytest.raises(TrustError) as info:
        PartnerTrust.build("NZ", ca, [old], NOW)
    assert info.value.reason == "certificate-expired"


def test_peer_party_binds_certificate_to_its_partners_anchor(pki: Path) -> None:
    store = TrustStore(local_party="CN")
    for party in ("NZ", "SG"):
        store.partners[party] = PartnerTrust.build(
            party, load(pki / party / "ca.pem"), [load(pki / party / "signing.pem")], NOW
        )
    assert store.peer_party((pki / "NZ" / "tls.pem").read_bytes()) == "NZ"
    with pytest.raises(TrustError) as info:
        store.peer_party((pki / "CN" / "tls.pem").read_bytes())  # not a partner of CN
    assert info.value.reason == "unknown-partner"
