"""Rotation of a hub's own message-signing key with an overlap (docs/adr/0010-key-rotation.md),
over two real hubs on real mTLS: CN rotates by config and reload while messages flow both
ways; NZ, whose operator edits nothing, learns CN's new key from the certificate carried with
CN's envelopes and receipts, records it in its trail, keeps it across a restart, and both
trails' exported messages still verify. Queued envelopes signed with the old key are still
accepted, and a resend re-signed with the new key gets the first receipt.

Each test has a PKI of its own: issuing and revoking certificates in the session's would touch
every other test."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from hub.app import keys
from hub.cli.crl import revoke
from hub.cli.demo import sample_aeo_status, sample_declaration
from hub.cli.main import main
from hub.cli.pki import init_party, issue, issue_next_signing
from hub.config import load_config
from hub.core.envelope import (
    build_envelope,
    make_receipt,
    sign_envelope,
    sign_receipt,
    verify_receipt,
)
from hub.core.errors import ConfigError, HubError
from hub.core.signing import Signer, key_id_of
from hub.core.trust import MAX_CARRIED_CERTIFICATE_BYTES, PartnerTrust, carried_signing_key
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.runtime import RunningHub
from hub.trail import events as trail
from tests.conftest import PARTIES, Federation, _new_pg_database
from tests.test_delivery import fast_retries
from tests.test_exchange import eventually, signed_envelope, submit
from tests.test_revocation import deliver_as, reason_of

FAST_LIMITS = "retry_initial_seconds = 0.2\nretry_max_seconds = 1.0\npoll_seconds = 0.2\n"


@pytest.fixture
def own_pki(tmp_path: Path) -> Path:
    """A federation made a day ago: its first signing certificates began before the
    messages the tests date back."""
    root = tmp_path / "pki"
    for party in PARTIES:
        init_party(root, party, datetime.now(UTC) - timedelta(days=1))
    return root


@pytest.fixture(params=["sqlite", "postgres"])
async def fed(
    request: pytest.FixtureRequest, tmp_path: Path, own_pki: Path
) -> AsyncIterator[Federation]:
    postgres = None
    if request.param == "postgres":
        postgres = {p: await _new_pg_database(request, driver="") for p in PARTIES}
    federation = Federation(tmp_path / "hubs", own_pki, postgres)
    yield federation
    await federation.stop_all()


def with_fast_retries(federation: Federation, party: str) -> None:
    """Short retry waits written into the file itself, so that a reload (which refuses a
    change of limits) reads the same limits the hub started with."""
    path = federation.configs[party].path
    text = path.read_text().replace("[limits]\n", "[limits]\n" + FAST_LIMITS, 1)
    path.write_text(text)
    federation.configs[party] = load_config(path)


def write_signing(
    federation: Federation,
    party: str,
    cert: Path,
    key: Path,
    previous: list[Path],
    carry: str | None = None,
) -> None:
    """Replace the [signing] table of ``party``'s hub.toml: what an operator edits."""
    path = federation.configs[party].path
    text = path.read_text()
    start = text.index("[signing]\n")
    end = text.index("\n\n", start)
    lines = [
        "[signing]",
        f'cert = "{cert}"',
        f'key = "{key}"',
        "previous_certs = [" + ", ".join(f'"{p}"' for p in previous) + "]",
    ]
    if carry is not None:
        lines.append(f'carry_certificate = "{carry}"')
    path.write_text(text[:start] + "\n".join(lines) + text[end:])


def key_id_in(path: Path) -> str:
    public = x509.load_pem_x509_certificate(path.read_bytes()).public_key()
    return key_id_of(public)  # type: ignore[arg-type]


def der_of(path: Path) -> bytes:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


async def aeo(hub: RunningHub, to: str, aeo_id: str) -> str:
    request = spb.SubmitRequest(
        aeo_status=sample_aeo_status(hub.config.party, aeo_id), recipients=[to]
    )
    [queued] = await submit(hub, request)
    return queued.message_id


async def received_ids(hub: RunningHub) -> set[str]:
    return {m.message_id for m in await hub.hub.store.views.inbound()}


async def settled_ids(hub: RunningHub) -> set[str]:
    """Outbound messages whose receipt this hub verified and stored."""
    return {o.message_id for o, r in await hub.hub.store.views.outbound() if r is not None}


async def leaves(hub: RunningHub, kind: str) -> list[Any]:
    return [e for e in map(trail.decode, await hub.hub.store.trail.leaves()) if e.kind == kind]


def signature_of(envelope: bytes) -> pb.Signature:
    [signature] = pb.Envelope.FromString(envelope).signatures
    return signature


async def cli(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


async def test_a_hub_rotates_its_signing_key_and_its_partner_learns_it_without_an_edit(
    fed: Federation, own_pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_fast_retries(fed, "CN")
    fast_retries(fed, "NZ")
    old_cert, old_key_id = own_pki / "CN" / "signing.pem", key_id_in(own_pki / "CN" / "signing.pem")
    cn = await fed.start("CN")
    nz = await fed.start("NZ")
    assert cn.hub.signer.key_id == old_key_id and not cn.hub.signer.carry

    # before: one message each way, signed with CN's only key, no certificate carried
    before_cn = await aeo(cn, "NZ", "CNAEO1")
    before_nz = await aeo(nz, "CN", "NZAEO1")
    await eventually(lambda: _has(nz, before_cn, cn, before_nz))

    # NZ goes away; CN queues a message, signed now with the key it is about to retire
    await fed.stop("NZ")
    queued_old = await aeo(cn, "NZ", "CNAEO2")

    # CN's operator: a next certificate from CN's CA, configured, the old one kept; reload
    new_cert, new_key = issue_next_signing(own_pki, "CN")
    new_key_id = key_id_in(new_cert)
    write_signing(fed, "CN", new_cert, new_key, [old_cert])
    change = await cn.reload()
    assert change.own_keys and change.recorded
    signer = cn.hub.signer
    assert signer.key_id == new_key_id != old_key_id  # the reload switched the signer
    assert signer.carry and signer.certificate == der_of(new_cert)  # "overlap": carried
    # CN still verifies what its old key signed (its receipts, its queued envelopes)
    assert set(cn.hub.keys_for("CN")) == {old_key_id, new_key_id}
    queued_new = await aeo(cn, "NZ", "CNAEO3")

    # NZ back, its config untouched: it sends too, and CN answers with a receipt signed by
    # the new key, its certificate carried
    nz = await fed.start("NZ")
    assert new_key_id not in nz.hub.keys_for("CN")
    after_nz = await aeo(nz, "CN", "NZAEO2")
    await eventually(lambda: _has(nz, queued_new, cn, after_nz), timeout=30)
    await eventually(lambda: _has(nz, queued_old, cn, before_nz), timeout=30)

    # the envelopes as sent: the queued one under the old key without a certificate, the
    # new one under the new key with it
    sent = {o.message_id: o for o, _ in await cn.hub.store.views.outbound()}
    assert signature_of(sent[queued_old].envelope).key_id == old_key_id
    assert signature_of(sent[queued_old].envelope).certificate == b""
    carried = signature_of(sent[queued_new].envelope)
    assert carried.key_id == new_key_id and carried.certificate == der_of(new_cert)
    # NZ learned the key once, in its trail with the certificate's digest, and in its store
    [learned] = await leaves(nz, "key-learned")
    assert learned.sender == "CN" and learned.message_id in (queued_new, after_nz)
    assert [(k.name, k.value) for k in learned.keys] == [("signing-key", new_key_id)]
    assert learned.config_digest == hashlib.sha256(der_of(new_cert)).digest()
    [row] = await nz.hub.store.learned.all()
    assert (row.party, row.key_id, row.certificate) == ("CN", new_key_id, der_of(new_cert))
    assert set(nz.hub.keys_for("CN")) == {old_key_id, new_key_id}
    # the key-learned leaf comes before whatever it verified
    order = [(e.kind, e.message_id) for e in map(trail.decode, await nz.hub.store.trail.leaves())]
    first_use = min(
        i
        for i, (kind, mid) in enumerate(order)
        if (kind, mid) in {("received", queued_new), ("delivered", after_nz)}
    )
    assert order.index(("key-learned", learned.message_id)) < first_use

    # CN stops carrying the certificate; NZ restarted knows the key from its store
    write_signing(fed, "CN", new_cert, new_key, [old_cert], carry="never")
    await cn.reload()
    assert not cn.hub.signer.carry
    await fed.stop("NZ")
    nz = await fed.start("NZ")
    assert new_key_id in nz.hub.keys_for("CN")
    bare = await aeo(cn, "NZ", "CNAEO4")
    last_nz = await aeo(nz, "CN", "NZAEO3")
    await eventually(lambda: _has(nz, bare, cn, last_nz), timeout=30)
    assert signature_of(sent_envelope := (await _sent(cn, bare))).certificate == b""
    assert signature_of(sent_envelope).key_id == new_key_id
    assert len(await leaves(nz, "key-learned")) == 1  # nothing learned twice

    # nothing lost, nothing refused
    assert await received_ids(nz) == {before_cn, queued_old, queued_new, bare}
    assert await received_ids(cn) == {before_nz, after_nz, last_nz}
    assert await settled_ids(cn) == {before_cn, queued_old, queued_new, bare}
    assert await settled_ids(nz) == {before_nz, after_nz, last_nz}
    assert await nz.hub.store.views.rejections() == []
    assert await cn.hub.store.views.rejections() == []
    # CN's receipts as NZ holds them, from before and after, verify with what NZ trusts
    # for CN now; CN's own receipts with CN's own keys, old and new
    signers = set()
    for _, record in await nz.hub.store.views.outbound():
        assert record is not None
        signed = pb.SignedReceipt.FromString(record.signed_receipt)
        assert verify_receipt(signed, "CN", nz.hub.keys_for("CN")).outcome == 1
        signers.add(signed.signature.key_id)
    assert signers == {old_key_id, new_key_id}
    for message in await cn.hub.store.views.inbound():
        signed = pb.SignedReceipt.FromString(message.signed_receipt)
        verify_receipt(signed, "CN", cn.hub.keys_for("CN"))

    # years later: both trails' exports verify every message, under either key
    await fed.stop_all()  # a stopping hub signs a checkpoint of all it recorded
    for party in ("CN", "NZ"):
        folder = tmp_path / f"export-{party}"
        toml = str(fed.configs[party].path)
        assert await cli(["trail", "export", "--config", toml, "-o", str(folder)]) == 0
        vkey = str(own_pki / party / "trail.vkey")
        capsys.readouterr()
        code = await cli(["trail", "verify", str(folder), "--key", vkey, "--messages"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "OK: 7 messages match their leaves and their senders' signatures" in out, out
        exported = {p.name for p in (folder / "certificates" / "CN").glob("signing-*.pem")}
        assert len(exported) == 2  # CN's old and new certificates, configured or learned


async def _sent(hub: RunningHub, message_id: str) -> bytes:
    return {o.message_id: o.envelope for o, _ in await hub.hub.store.views.outbound()}[message_id]


async def _has(nz: RunningHub, at_nz: str, cn: RunningHub, at_cn: str) -> bool:
    """NZ received ``at_nz`` and CN received ``at_cn``, and both senders hold the receipts."""
    return (
        at_nz in await received_ids(nz)
        and at_cn in await received_ids(cn)
        and at_nz in await settled_ids(cn)
        and at_cn in await settled_ids(nz)
    )


# --- what a carried certificate must be: attacks on a running hub --------------------------

CA = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def ca_of(pki: Path, party: str) -> CA:
    cert = x509.load_pem_x509_certificate((pki / party / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / party / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def carrying(
    pki: Path,
    *,
    ca: str = "CN",
    party: str = "CN",
    tls: bool = False,
    start: timedelta = timedelta(0),
    validity: timedelta = timedelta(days=30),
) -> tuple[Signer, x509.Certificate]:
    """A new Ed25519 key with a certificate from ``ca``'s CA naming ``party``, carried with
    every signature: what a partner rotating its key sends (or an attacker's variation)."""
    key = ed25519.Ed25519PrivateKey.generate()
    cert = issue(
        party,
        "next signing",
        key.public_key(),
        *ca_of(pki, ca),
        datetime.now(UTC) + start,
        tls=tls,
        validity=validity,
    )
    return Signer.from_private_key(key, cert.public_bytes(serialization.Encoding.DER), True), cert


def with_certificate(signer: Signer, der: bytes) -> Signer:
    return dataclasses.replace(signer, certificate=der)


def envelope_by(signer: Signer, created: timedelta = timedelta(0)) -> bytes:
    data, _ = build_envelope(
        signer,
        sender="CN",
        recipient="NZ",
        document=sample_declaration(),
        created_at=datetime.now(UTC) + created,
        ttl=timedelta(days=1),
    )
    return data


@pytest.fixture
async def nz_alone(tmp_path: Path, own_pki: Path) -> AsyncIterator[tuple[Federation, RunningHub]]:
    federation = Federation(tmp_path / "hubs", own_pki)
    nz = await federation.start("NZ")
    yield federation, nz
    await federation.stop_all()


ATTACKS = {
    # name: (how the carried certificate is made, status, reason)
    "another-partners-anchor": (
        lambda pki: carrying(pki, ca="SG"),
        grpc.StatusCode.PERMISSION_DENIED,
        "untrusted-issuer",
    ),
    "san-names-another-party": (
        lambda pki: carrying(pki, party="SG"),
        grpc.StatusCode.PERMISSION_DENIED,
        "party-mismatch",
    ),
    "tls-only-certificate": (
        lambda pki: carrying(pki, tls=True),
        grpc.StatusCode.PERMISSION_DENIED,
        "not-a-signing-certificate",
    ),
    "expired": (
        lambda pki: carrying(pki, start=-timedelta(days=60), validity=timedelta(days=30)),
        grpc.StatusCode.UNAUTHENTICATED,
        "certificate-expired",
    ),
    "not-yet-valid": (
        lambda pki: carrying(pki, start=timedelta(days=2)),
        grpc.StatusCode.UNAUTHENTICATED,
        "certificate-not-yet-valid",
    ),
    "revoked": (
        lambda pki: carrying(pki),  # revoked by CN's CA before it is sent
        grpc.StatusCode.PERMISSION_DENIED,
        "certificate-revoked",
    ),
    "garbage-der": (
        lambda pki: (with_certificate(carrying(pki)[0], b"\x30\x82\x01\x00garbage"), None),
        grpc.StatusCode.PERMISSION_DENIED,
        "certificate-malformed",
    ),
    "oversize": (
        lambda pki: (
            with_certificate(carrying(pki)[0], b"\x30" * (MAX_CARRIED_CERTIFICATE_BYTES + 1)),
            None,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "certificate-malformed",
    ),
    "another-keys-certificate": (
        lambda pki: (
            with_certificate(carrying(pki)[0], carrying(pki)[0].certificate),
            None,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "certificate-malformed",
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_carried_certificate_that_does_not_vouch_is_refused_and_changes_nothing(
    nz_alone: tuple[Federation, RunningHub], own_pki: Path, attack: str
) -> None:
    _, nz = nz_alone
    make, status, reason = ATTACKS[attack]
    signer, cert = make(own_pki)
    if attack == "revoked":
        assert cert is not None
        revoke(own_pki, "CN", [cert.serial_number])
        await nz.reload()  # reads the revocation lists anew
    keys_before = dict(nz.hub.keys_for("CN"))
    leaves_before = len(await nz.hub.store.trail.leaves())

    refusal = await deliver_as(own_pki, "CN", nz, envelope_by(signer))
    assert isinstance(refusal, grpc.aio.AioRpcError), refusal
    assert (refusal.code(), reason_of(refusal)) == (status, reason)

    # nothing stored or learned; CN's keys as they were; only the rejection recorded
    assert await nz.hub.store.views.inbound() == []
    assert await nz.hub.store.learned.all() == []
    assert dict(nz.hub.keys_for("CN")) == keys_before
    events = [trail.decode(leaf) for leaf in await nz.hub.store.trail.leaves()]
    assert [e.kind for e in events[leaves_before:]] == ["rejected"]
    assert [r.reason for r in await nz.hub.store.views.rejections(source="CN")] == [reason]
    # CN with its configured key, and SG, are served as before
    good, _ = signed_envelope(own_pki, "CN")
    assert isinstance(await deliver_as(own_pki, "CN", nz, good), pb.SignedReceipt)
    from_sg, _ = signed_envelope(own_pki, "SG", sender="SG")
    assert isinstance(await deliver_as(own_pki, "SG", nz, from_sg), pb.SignedReceipt)


async def test_a_resend_signed_again_with_the_new_key_gets_the_first_receipt(
    nz_alone: tuple[Federation, RunningHub], own_pki: Path
) -> None:
    """A partner that rotated resends a message accepted under its old key, signed again with
    its new key, whose certificate began after the message was created: the first receipt,
    not certificate-not-yet-valid. A new message dated before the certificate is refused."""
    _, nz = nz_alone
    earlier = timedelta(minutes=-20)  # before the new certificate's notBefore (now - 5 min)
    first, header = signed_envelope(own_pki, "CN", offset=earlier)
    receipt = await deliver_as(own_pki, "CN", nz, first)
    assert isinstance(receipt, pb.SignedReceipt)

    new_signer, _ = carrying(own_pki)
    envelope = pb.Envelope.FromString(first)
    resent = sign_envelope(new_signer, envelope.header, envelope.body)
    again = await deliver_as(own_pki, "CN", nz, resent)
    assert isinstance(again, pb.SignedReceipt)
    assert again.SerializeToString() == receipt.SerializeToString()  # the first receipt
    assert [m.message_id for m in await nz.hub.store.views.inbound()] == [header.message_id]

    # a message of the same id with another body, re-signed: not the message accepted
    other = pb.Header.FromString(envelope.header)
    body = sample_declaration()
    body.functional_reference_id = "CN2026LRN999999"
    other.body_digest = hashlib.sha256(body.SerializeToString(deterministic=True)).digest()
    forged = sign_envelope(
        new_signer,
        other.SerializeToString(deterministic=True),
        body.SerializeToString(deterministic=True),
    )
    # and a new message dated before the new certificate began
    fresh = envelope_by(new_signer, created=earlier)
    for data in (forged, fresh):
        refusal = await deliver_as(own_pki, "CN", nz, data)
        assert isinstance(refusal, grpc.aio.AioRpcError)
        assert (refusal.code(), reason_of(refusal)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "certificate-not-yet-valid",
        )
    assert [m.message_id for m in await nz.hub.store.views.inbound()] == [header.message_id]
    reasons = [r.reason for r in await nz.hub.store.views.rejections(source="CN")]
    assert reasons == ["certificate-not-yet-valid"] * 2


async def test_a_learned_key_whose_certificate_is_revoked_verifies_nothing_more(
    nz_alone: tuple[Federation, RunningHub], own_pki: Path
) -> None:
    _, nz = nz_alone
    signer, cert = carrying(own_pki)
    assert isinstance(await deliver_as(own_pki, "CN", nz, envelope_by(signer)), pb.SignedReceipt)
    assert signer.key_id in nz.hub.keys_for("CN")  # learned
    revoke(own_pki, "CN", [cert.serial_number])
    await nz.reload()
    bare = dataclasses.replace(signer, carry=False)  # the learned key, nothing carried
    for data in (envelope_by(bare), envelope_by(signer)):
        refusal = await deliver_as(own_pki, "CN", nz, data)
        assert isinstance(refusal, grpc.aio.AioRpcError)
        assert (refusal.code(), reason_of(refusal)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "certificate-revoked",
        )
    assert len(await nz.hub.store.views.inbound()) == 1


# --- the pure parts: receipts, the configuration ---------------------------------------------


def test_a_receipt_signed_with_a_new_key_verifies_through_its_carried_certificate(
    own_pki: Path,
) -> None:
    anchor, _ = ca_of(own_pki, "CN")
    old = x509.load_pem_x509_certificate((own_pki / "CN" / "signing.pem").read_bytes())
    partner = PartnerTrust.build("CN", anchor, [old], datetime.now(UTC))
    read: list[str] = []

    def learn(signature: pb.Signature):  # type: ignore[no-untyped-def]
        read.append(signature.key_id)
        return carried_signing_key(signature.certificate, signature.key_id, partner).key

    def receipt_by(signer: Signer) -> pb.SignedReceipt:
        return sign_receipt(
            signer,
            make_receipt(
                message_id="018f2a3c-0000-7000-8000-000000000001",
                envelope_digest=b"\x01" * 32,
                outcome=pb.RECEIPT_OUTCOME_ACCEPTED,
                receiver="CN",
                sender="NZ",
                received_at=datetime.now(UTC),
            ),
        )

    signer, _ = carrying(own_pki)
    signed = receipt_by(signer)
    assert signed.signature.certificate == signer.certificate
    with pytest.raises(HubError) as unknown:  # without learning: a key nobody configured
        verify_receipt(signed, "CN", partner.signing_keys)
    assert unknown.value.reason == "receipt-untrusted"
    assert verify_receipt(signed, "CN", partner.signing_keys, learn=learn).receiver == "CN"
    assert read == [signer.key_id]
    # carried, but from SG's CA: refused for what the certificate is
    rogue, _ = carrying(own_pki, ca="SG")
    with pytest.raises(HubError) as refused:
        verify_receipt(receipt_by(rogue), "CN", partner.signing_keys, learn=learn)
    assert refused.value.reason == "untrusted-issuer"
    # the signer carries nothing unless told
    assert receipt_by(dataclasses.replace(signer, carry=False)).signature.certificate == b""


def test_previous_signing_certificates_are_checked_and_carrying_is_a_choice(
    tmp_path: Path, own_pki: Path
) -> None:
    fed = Federation(tmp_path / "hubs", own_pki)
    config = fed.configs["CN"]
    # another party's signing certificate as CN's previous one: named in the problem
    wrong = own_pki / "SG" / "signing.pem"
    write_signing(fed, "CN", config.signing_cert, config.signing_key, [wrong])
    problems = keys.check(load_config(config.path))
    assert len(problems) == 1 and f"{wrong}: signing.previous_certs[0]" in problems[0], problems
    # a TLS certificate as a previous signing certificate: refused by the signing profile
    tls = own_pki / "CN" / "tls.pem"
    write_signing(fed, "CN", config.signing_cert, config.signing_key, [tls])
    [problem] = keys.check(load_config(config.path))
    assert str(tls) in problem and "may not sign messages" in problem
    # carrying: "overlap" only with previous certificates, "always", "never"
    old = own_pki / "CN" / "signing.pem"
    new_cert, new_key = issue_next_signing(own_pki, "CN")
    cases = [
        ([], None, False),
        ([old], None, True),
        ([old], "never", False),
        ([], "always", True),
    ]
    for previous, carry, carried in cases:
        write_signing(fed, "CN", new_cert, new_key, previous, carry)
        _, signer = keys.load_trust(load_config(config.path), datetime.now(UTC))
        assert signer.carried == (der_of(new_cert) if carried else b""), (previous, carry)
    write_signing(fed, "CN", new_cert, new_key, [old], "sometimes")
    with pytest.raises(ConfigError) as refused:
        load_config(config.path)
    assert "signing.carry_certificate" in refused.value.message


def test_pki_next_signing_issues_the_next_certificate_from_the_partys_ca(
    own_pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor, _ = ca_of(own_pki, "CN")
    for n in (2, 3):
        assert main(["pki", "next-signing", "--pki", str(own_pki), "--party", "CN"]) == 0
        assert f"signing-{n}.pem" in capsys.readouterr().out
        cert = x509.load_pem_x509_certificate((own_pki / "CN" / f"signing-{n}.pem").read_bytes())
        partner = PartnerTrust.build("CN", anchor, [cert], datetime.now(UTC))  # the profile too
        key = serialization.load_pem_private_key(
            (own_pki / "CN" / f"signing-{n}.key").read_bytes(), None
        )
        assert key_id_of(key.public_key()) in partner.signing_keys  # type: ignore[arg-type]
    # no CA there: refused, naming the folder
    assert main(["pki", "next-signing", "--pki", str(tmp_path / "none"), "--party", "CN"]) == 2
    assert str(tmp_path / "none" / "CN") in capsys.readouterr().err


async def test_a_partner_that_rotated_is_not_stopped_when_its_old_certificate_is_revoked(
    nz_alone: tuple[Federation, RunningHub], own_pki: Path
) -> None:
    """CN rotated and NZ learned its new key; CN's CA then revokes the old, configured
    certificate (a compromise after the rotation). Delivery to CN does not stop: its receipts
    verify with the learned key. Only with that one revoked too does it stop."""
    _, nz = nz_alone
    signer, cert = carrying(own_pki)
    assert isinstance(await deliver_as(own_pki, "CN", nz, envelope_by(signer)), pb.SignedReceipt)
    old = x509.load_pem_x509_certificate((own_pki / "CN" / "signing.pem").read_bytes())
    revoke(own_pki, "CN", [old.serial_number])
    await nz.reload()
    watch = nz.hub.revocation_watch
    assert set(nz.hub.keys_for("CN")) == {key_id_of(old.public_key()), signer.key_id}
    assert watch.stop_of("CN") is None
    revoke(own_pki, "CN", [old.serial_number, cert.serial_number])
    await nz.reload()
    stop = watch.stop_of("CN")
    assert stop is not None and stop.reason == "certificate-revoked"


def test_a_key_learned_again_from_another_certificate_keeps_the_first() -> None:
    """The store keeps the first certificate a key was learned from (keyed by party and key
    id); the running hub does the same, so a restart changes nothing it trusts."""
    from hub.core.trust import LearnedKey, LearnedKeys

    key = Signer.from_private_key(ed25519.Ed25519PrivateKey.generate()).verification_key("CN")
    first, second = LearnedKey("CN", b"first", key), LearnedKey("CN", b"second", key)
    learned = LearnedKeys()
    learned.add([first])
    learned.add([second])
    assert learned.of("CN") == [first]
