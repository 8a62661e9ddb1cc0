"""Signing certificates held to their validity and usage where they are used (issue 17).

The signing-certificate profile (docs/adr/0008): keyUsage digitalSignature or nonRepudiation,
and an extendedKeyUsage that is absent or lists id-kp-documentSigning (RFC 9336), so a TLS
certificate never signs. A key's certificate must have been valid at the signing time the
envelope (created_at) or receipt (received_at) states, and be valid at the receiver's clock
within the clock skew. Certificates are made here, fresh per run, with hub/cli/pki.py's issuer
and the cryptography library.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.app import keys
from hub.cli.demo import sample_declaration
from hub.cli.pki import issue, make_ca, write_cert
from hub.config import load_config
from hub.core.envelope import (
    TimePolicy,
    build_envelope,
    make_receipt,
    open_envelope,
    sign_receipt,
    verify_receipt,
)
from hub.core.errors import REASON_KEY, ConfigError, HubError, TrustError
from hub.core.signing import Signer, VerificationKey
from hub.core.trust import (
    DOCUMENT_SIGNING,
    PartnerTrust,
    party_uri,
    signing_profile_fault,
    verification_key_of,
)
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from tests.conftest import Federation
from tests.test_exchange import as_partner, signer_of

T0 = datetime(2030, 1, 1, tzinfo=UTC)  # the test certificate's notBefore
DAY = timedelta(days=1)
SKEW = timedelta(minutes=5)
POLICY = TimePolicy(SKEW, timedelta(days=7))
CA, CA_KEY = make_ca("CN", T0 - DAY)
SIGNER = Signer.from_private_key(ed25519.Ed25519PrivateKey.generate())


def leaf(
    *,
    key_usage: dict[str, bool] | None = {"digital_signature": True},  # noqa: B006
    extended: list[x509.ObjectIdentifier] | None = None,
    not_before: datetime = T0,
    not_after: datetime = T0 + DAY,
    public_key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | None = None,
) -> x509.Certificate:
    """A certificate of CN issued by CN's CA, with exactly the usages given."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CN test leaf")]))
        .issuer_name(CA.subject)
        .public_key(public_key or SIGNER.private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(party_uri("CN"))]),
            critical=False,
        )
    )
    if key_usage is not None:
        flags = dict.fromkeys(
            (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        builder = builder.add_extension(x509.KeyUsage(**(flags | key_usage)), critical=True)
    if extended is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    return builder.sign(CA_KEY, hashes.SHA256())


SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH

# name: (keyUsage, extendedKeyUsage, what the fault says, or "" when the profile holds)
PROFILE_CASES = {
    "digitalSignature, no EKU": ({"digital_signature": True}, None, ""),
    "nonRepudiation only, documentSigning": (
        {"content_commitment": True},
        [DOCUMENT_SIGNING],
        "",
    ),
    "documentSigning among TLS usages": (
        {"digital_signature": True},
        [SERVER, CLIENT, DOCUMENT_SIGNING],
        "",
    ),
    "no keyUsage": (None, [DOCUMENT_SIGNING], "no keyUsage"),
    "keyEncipherment only": ({"key_encipherment": True}, None, "neither digitalSignature"),
    "serverAuth only": ({"digital_signature": True}, [SERVER], "TLS certificate"),
    "TLS client and server": ({"digital_signature": True}, [SERVER, CLIENT], "TLS certificate"),
    "codeSigning": (
        {"digital_signature": True},
        [ExtendedKeyUsageOID.CODE_SIGNING],
        "lacks id-kp-documentSigning",
    ),
}


@pytest.mark.parametrize("case", PROFILE_CASES)
def test_signing_profile(case: str) -> None:
    key_usage, extended, fault = PROFILE_CASES[case]
    cert = leaf(key_usage=key_usage, extended=extended)
    found = signing_profile_fault(cert)
    if fault:
        assert fault in found
        with pytest.raises(TrustError) as info:  # refused when the trust store is built
            PartnerTrust.build("CN", CA, [cert], T0 + timedelta(hours=1))
        assert info.value.reason == "not-a-signing-certificate"
    else:
        assert found == ""
        trust = PartnerTrust.build("CN", CA, [cert], T0 + timedelta(hours=1))
        [key] = trust.signing_keys.values()
        assert (key.not_before, key.not_after, key.profile_fault) == (T0, T0 + DAY, "")


def test_dev_pki_signing_and_tls_certificates(pki: Path) -> None:
    def load(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((pki / "NZ" / name).read_bytes())

    def usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
        return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)

    signing, tls = load("signing.pem"), load("tls.pem")
    assert usages(signing) == {DOCUMENT_SIGNING}
    assert signing_profile_fault(signing) == ""
    assert usages(tls) == {SERVER, CLIENT}
    assert "TLS certificate" in signing_profile_fault(tls)
    # the partner's own TLS certificate offered as its signing certificate
    with pytest.raises(TrustError) as info:
        PartnerTrust.build("NZ", load("ca.pem"), [tls], datetime.now(UTC))
    assert info.value.reason == "not-a-signing-certificate"


def envelope(created_at: datetime) -> bytes:
    data, _ = build_envelope(
        SIGNER,
        sender="CN",
        recipient="NZ",
        document=sample_declaration(),
        created_at=created_at,
        ttl=timedelta(hours=1),
    )
    return data


def open_at(key: VerificationKey, created_at: datetime, now: datetime) -> object:
    return open_envelope(
        envelope(created_at),
        peer_party="CN",
        local_party="NZ",
        peer_keys={key.key_id: key},
        now=now,
        policy=POLICY,
        max_bytes=1 << 20,
    )


END = T0 + DAY  # the test certificate's notAfter
MINUTE = timedelta(minutes=1)

# name: (created_at, receiver's clock, reason or "" when accepted). The signing time must lie
# within the validity; the receiver's clock within it widened by the skew each way.
VALIDITY_CASES = {
    "valid": (T0 + timedelta(hours=1), T0 + timedelta(hours=1), ""),
    "signed just before notAfter, received within the skew after": (
        END - MINUTE,
        END + SKEW - MINUTE,
        "",
    ),
    "signed just before notAfter, received past notAfter + skew": (
        END - MINUTE,
        END + SKEW + MINUTE,
        "certificate-expired",
    ),
    "signed after notAfter, received within the skew": (
        END + MINUTE,
        END + 2 * MINUTE,
        "certificate-expired",
    ),
    "expired long ago": (END + 10 * DAY, END + 10 * DAY, "certificate-expired"),
    "signed before notBefore": (T0 - MINUTE, T0 + MINUTE, "certificate-not-yet-valid"),
    "received before notBefore - skew": (
        T0 + MINUTE,
        T0 - SKEW - MINUTE,
        "certificate-not-yet-valid",
    ),
    "received within the skew before notBefore": (T0 + MINUTE, T0 - SKEW + MINUTE, ""),
}


@pytest.mark.parametrize("case", VALIDITY_CASES)
def test_envelope_signing_certificate_validity_at_use(case: str) -> None:
    created_at, now, reason = VALIDITY_CASES[case]
    key = verification_key_of(leaf(not_after=END), "CN")
    if not reason:
        assert open_at(key, created_at, now).key_id == key.key_id  # type: ignore[attr-defined]
        return
    with pytest.raises(HubError) as info:
        open_at(key, created_at, now)
    assert info.value.reason == reason
    assert info.value.status.name == "UNAUTHENTICATED"


def test_tls_certificate_key_is_refused_at_use() -> None:
    """A key whose certificate is a TLS one (serverAuth only), however it reached the trust
    store, verifies no envelope, though the signature itself is good."""
    key = verification_key_of(leaf(extended=[SERVER]), "CN")
    with pytest.raises(HubError) as info:
        open_at(key, T0 + MINUTE, T0 + MINUTE)
    assert info.value.reason == "not-a-signing-certificate"
    assert "TLS certificate" in info.value.message


def receipt_signed_at(received_at: datetime) -> pb.SignedReceipt:
    receipt = make_receipt(
        message_id="0190f0f0-0000-7000-8000-000000000000",
        envelope_digest=b"\x00" * 32,
        outcome=pb.RECEIPT_OUTCOME_ACCEPTED,
        receiver="CN",
        sender="NZ",
        received_at=received_at,
    )
    return sign_receipt(SIGNER, receipt)


def test_receipt_signing_certificate_validity() -> None:
    key = verification_key_of(leaf(not_after=END), "CN")
    keys_ = {key.key_id: key}
    good = receipt_signed_at(END - MINUTE)
    # taken as it arrives, within the skew: accepted; past it: refused
    assert verify_receipt(good, "CN", keys_, now=END + MINUTE, clock_skew=SKEW).receiver == "CN"
    with pytest.raises(HubError) as info:
        verify_receipt(good, "CN", keys_, now=END + SKEW + MINUTE, clock_skew=SKEW)
    assert info.value.reason == "certificate-expired"
    # a later look at an old receipt checks its signing time only
    assert verify_receipt(good, "CN", keys_).receiver == "CN"
    with pytest.raises(HubError) as info:
        verify_receipt(receipt_signed_at(END + MINUTE), "CN", keys_)
    assert info.value.reason == "certificate-expired"
    tls_key = verification_key_of(leaf(extended=[SERVER, CLIENT]), "CN")
    with pytest.raises(HubError) as info:
        verify_receipt(good, "CN", {tls_key.key_id: tls_key})
    assert info.value.reason == "not-a-signing-certificate"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def reissue_signing(pki: Path, party: str, validity: timedelta, now: datetime) -> Path:
    """``party``'s signing certificate in ``pki`` issued again for the same key, living
    ``validity`` from ``now`` (five minutes back-dated, as pki init does)."""
    folder = pki / party
    ca_cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    public = Signer.from_pem((folder / "signing.key").read_bytes()).private_key.public_key()
    cert = issue(
        party, "hub message signing", public, ca_cert, ca_key, now, tls=False, validity=validity
    )  # type: ignore[arg-type]  # fmt: skip
    write_cert(folder / "signing.pem", cert)
    return folder / "signing.pem"


async def test_signing_certificate_that_expires_while_the_hub_runs(
    pki: Path, tmp_path: Path
) -> None:
    """NZ runs (its clock injected) while CN's signing certificate, valid an hour, runs out:
    an envelope CN signs afterwards is refused with certificate-expired, nothing is stored,
    and the rejection is recorded; one CN signed before is accepted."""
    copy = tmp_path / "pki"
    shutil.copytree(pki, copy)
    start = datetime.now(UTC)
    reissue_signing(copy, "CN", timedelta(hours=1), start)
    clock = Clock(start)
    federation = Federation(tmp_path / "fed", copy)
    nz = await federation.start("NZ", clock=clock)
    cn = as_partner(copy, "CN", nz)

    def signed(at: datetime) -> bytes:
        data, _ = build_envelope(
            signer_of(copy, "CN"),
            sender="CN",
            recipient="NZ",
            document=sample_declaration(),
            created_at=at,
            ttl=timedelta(hours=1),
        )
        return data

    try:
        receipt = await cn.deliver("NZ", signed(start), timeout=5)
        assert receipt.signature.value
        clock.now = start + timedelta(hours=2)  # CN's signing certificate ran out an hour ago
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await cn.deliver("NZ", signed(clock.now), timeout=5)
        assert dict(info.value.trailing_metadata() or ())[REASON_KEY] == "certificate-expired"
    finally:
        await cn.close()
        await federation.stop_all()
    assert len(await nz.hub.store.views.inbound()) == 1
    assert [r.reason for r in await nz.hub.store.views.rejections()] == ["certificate-expired"]


def test_tls_certificate_as_partner_signing_certificate_is_refused_at_load(
    pki: Path, tmp_path: Path
) -> None:
    """NZ's config naming CN's TLS certificate as CN's signing certificate: the hub does not
    start, and the problem names the file."""
    federation = Federation(tmp_path / "fed", pki)
    path = federation.root / "NZ" / "hub.toml"
    signing = str(pki / "CN" / "signing.pem")
    text = path.read_text()
    assert signing in text
    path.write_text(text.replace(signing, str(pki / "CN" / "tls.pem")))
    config = load_config(path)
    [problem] = keys.check(config)
    assert str(pki / "CN" / "tls.pem") in problem
    assert "TLS certificate" in problem
    with pytest.raises(ConfigError) as info:
        keys.require_usable(config)
    assert info.value.reason == "config-invalid"


def test_wrong_eku_own_signing_certificate_is_refused_at_load(pki: Path, tmp_path: Path) -> None:
    """This hub's own signing certificate with serverAuth only: refused, naming the file."""
    copy = tmp_path / "pki"
    shutil.copytree(pki, copy)
    folder = copy / "NZ"
    ca_cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    public = Signer.from_pem((folder / "signing.key").read_bytes()).private_key.public_key()
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NZ wrong EKU")]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + DAY)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(party_uri("NZ"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([SERVER]), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_cert(folder / "signing.pem", cert)
    federation = Federation(tmp_path / "fed", copy)
    [problem] = keys.check(federation.configs["NZ"])
    assert str(folder / "signing.pem") in problem
    assert "may not sign messages" in problem and "serverAuth" in problem
