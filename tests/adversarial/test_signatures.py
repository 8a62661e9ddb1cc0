"""Attacks on envelope signatures (issue 14, family "signatures"): envelopes with thousands of
signatures, a valid one hidden among bogus ones, oversized values, and signatures re-encoded
or made again over what was already accepted. Each case checks the status and reason, that
nothing was stored, and that the hub still serves SG; a re-signed copy of an accepted message
gets the first receipt, not a conflict."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from hub.cli.pki import issue, write_cert, write_key
from hub.core.envelope import MAX_SIGNATURES, sign_envelope
from hub.core.errors import REASON_KEY
from hub.core.signing import Algorithm
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.trail import events as trail
from tests.adversarial.conditions import refused_with, still_serves_sg
from tests.conftest import Federation
from tests.test_exchange import (
    _assert_nothing_accepted,
    as_partner,
    refused,
    signed_envelope,
    signer_of,
)

# the order of the P-256 group
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def with_signatures(data: bytes, signatures: list[pb.Signature]) -> bytes:
    envelope = pb.Envelope.FromString(data)
    del envelope.signatures[:]
    envelope.signatures.extend(signatures)
    return envelope.SerializeToString()


def bogus_like(signature: pb.Signature) -> pb.Signature:
    """A signature naming the same (known) key, with a value that does not verify."""
    return pb.Signature(
        key_id=signature.key_id,
        algorithm=signature.algorithm,
        value=bytes(len(signature.value)),
    )


def signature_of(data: bytes) -> pb.Signature:
    [signature] = pb.Envelope.FromString(data).signatures
    return signature


@pytest.mark.parametrize(
    ("case", "arrange", "status", "reason"),
    [
        (
            "28,000 signatures naming the partner's key",
            lambda s: [bogus_like(s)] * 28_000,
            grpc.StatusCode.INVALID_ARGUMENT,
            "too-many-signatures",
        ),
        (
            "a valid signature among bogus ones, over the cap",
            lambda s: [bogus_like(s)] * MAX_SIGNATURES + [s],
            grpc.StatusCode.INVALID_ARGUMENT,
            "too-many-signatures",
        ),
        (
            "a 4 KiB signature value",
            lambda s: [pb.Signature(key_id=s.key_id, algorithm=s.algorithm, value=bytes(4096))],
            grpc.StatusCode.INVALID_ARGUMENT,
            "envelope-malformed",
        ),
        (
            "a valid signature after a bogus one by the same key (each key is tried once)",
            lambda s: [bogus_like(s), s],
            grpc.StatusCode.UNAUTHENTICATED,
            "signature-invalid",
        ),
        (
            "signatures naming unknown keys only",
            lambda s: [
                pb.Signature(key_id=f"k{i}", algorithm=s.algorithm, value=s.value)
                for i in range(MAX_SIGNATURES)
            ],
            grpc.StatusCode.UNAUTHENTICATED,
            "signature-invalid",
        ),
        (
            "the right value under another algorithm",
            lambda s: [
                pb.Signature(key_id=s.key_id, algorithm=Algorithm.ECDSA_P256_SHA256, value=s.value)
            ],
            grpc.StatusCode.UNAUTHENTICATED,
            "signature-invalid",
        ),
        (
            "no signature",
            lambda s: [],
            grpc.StatusCode.UNAUTHENTICATED,
            "signature-missing",
        ),
    ],
)
async def test_signature_attacks_are_refused_before_costly_work(
    federation: Federation,
    pki: Path,
    case: str,
    arrange: object,
    status: grpc.StatusCode,
    reason: str,
) -> None:
    nz = await federation.start("NZ")
    good, _ = signed_envelope(pki)
    data = with_signatures(good, arrange(signature_of(good)))  # type: ignore[operator]
    error = await refused(pki, nz, data)
    assert error.code() == status, case
    assert dict(error.trailing_metadata() or ())[REASON_KEY] == reason, case
    await _assert_nothing_accepted(nz)
    assert [r.reason for r in await nz.hub.store.views.rejections()] == [reason]
    await still_serves_sg(pki, nz)


async def test_at_most_the_cap_a_valid_signature_is_found(
    federation: Federation, pki: Path
) -> None:
    """Up to MAX_SIGNATURES, signatures by keys NZ does not know are passed over (a sender
    rotating its keys signs with the old and the new)."""
    nz = await federation.start("NZ")
    good, _ = signed_envelope(pki)
    valid = signature_of(good)
    others = [
        pb.Signature(key_id=f"retired-{i}", algorithm=valid.algorithm, value=valid.value)
        for i in range(MAX_SIGNATURES - 1)
    ]
    cn = as_partner(pki, "CN", nz)
    try:
        receipt = await cn.deliver("NZ", with_signatures(good, [*others, valid]), timeout=5)
    finally:
        await cn.close()
    assert receipt.signature
    assert len(await nz.hub.store.views.inbound()) == 1


@pytest.fixture
def ecdsa_pki(pki: Path, tmp_path: Path) -> Path:
    """The test federation's PKI with CN signing with ECDSA P-256 instead of Ed25519."""
    copy = tmp_path / "pki-ecdsa"
    shutil.copytree(pki, copy)
    ca_cert = x509.load_pem_x509_certificate((copy / "CN" / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((copy / "CN" / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue(
        "CN", "hub message signing", key.public_key(), ca_cert, ca_key, datetime.now(UTC),
        tls=False,
    )  # type: ignore[arg-type]  # fmt: skip
    write_cert(copy / "CN" / "signing.pem", cert)
    write_key(copy / "CN" / "signing.key", key)
    return copy


async def test_a_resigned_or_reencoded_copy_gets_the_first_receipt(
    tmp_path: Path, ecdsa_pki: Path
) -> None:
    """What CN signed was accepted; the same header and body under other signature bytes (the
    ECDSA signature re-encoded as (r, n - s), or signed again, as ECDSA signatures differ
    each time) is a duplicate: the first receipt, a duplicate leaf, no rejection."""
    federation = Federation(tmp_path / "fed", ecdsa_pki)
    nz = await federation.start("NZ")
    try:
        first, header = signed_envelope(ecdsa_pki)
        signature = signature_of(first)
        assert signature.algorithm == Algorithm.ECDSA_P256_SHA256
        r, s = decode_dss_signature(signature.value)
        flipped = pb.Signature(
            key_id=signature.key_id,
            algorithm=signature.algorithm,
            value=encode_dss_signature(r, P256_N - s),
        )
        reencoded = with_signatures(first, [flipped])
        opened = pb.Envelope.FromString(first)
        resigned = sign_envelope(signer_of(ecdsa_pki, "CN"), opened.header, opened.body)
        # the same id over another header (another created_at): other content
        other, _ = signed_envelope(ecdsa_pki, message_id=header.message_id)
        assert len({first, reencoded, resigned, other}) == 4
        cn = as_partner(ecdsa_pki, "CN", nz)
        try:
            original = await cn.deliver("NZ", first, timeout=5)
            assert await cn.deliver("NZ", reencoded, timeout=5) == original
            assert await cn.deliver("NZ", resigned, timeout=5) == original
            with pytest.raises(grpc.aio.AioRpcError) as conflict:
                await cn.deliver("NZ", other, timeout=5)
            reason = dict(conflict.value.trailing_metadata() or ())[REASON_KEY]
            assert reason == "message-id-conflict"
        finally:
            await cn.close()
        assert len(await nz.hub.store.views.inbound()) == 1
        assert [r.reason for r in await nz.hub.store.views.rejections()] == ["message-id-conflict"]
        kinds = [trail.decode(leaf).kind for leaf in await nz.hub.store.trail.leaves()]
        assert kinds.count("duplicate") == 2 and kinds.count("received") == 1
    finally:
        await federation.stop_all()


def flipped(data: bytes, part: str) -> bytes:
    """The envelope with the last byte of its header or body changed."""
    envelope = pb.Envelope.FromString(data)
    changed = bytearray(getattr(envelope, part))
    changed[-1] ^= 0x01
    setattr(envelope, part, bytes(changed))
    return envelope.SerializeToString()


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("a flipped header byte", lambda pki: flipped(signed_envelope(pki)[0], "header")),
        ("a flipped body byte", lambda pki: flipped(signed_envelope(pki)[0], "body")),
        ("signed with SG's key", lambda pki: signed_envelope(pki, "SG")[0]),
    ],
)
async def test_tampered_or_misattributed_envelopes_are_refused(
    federation: Federation, pki: Path, case: str, make: object
) -> None:
    nz = await federation.start("NZ")
    data = make(pki)  # type: ignore[operator]
    await refused_with(pki, nz, data, grpc.StatusCode.UNAUTHENTICATED, "signature-invalid")
