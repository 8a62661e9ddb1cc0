"""The post-conditions every attack in tests/adversarial/ is held to, and the helpers to check
them: the attacker gets the status and reason code it should, with a signed REJECTED receipt
where the refusal of an envelope carries one; nothing is stored or handed to a domestic system
(NZ's per-partner state unchanged); the refusal is recorded once; and NZ still serves another
partner (SG) as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from hub.cli.demo import sample_aeo_status
from hub.core.envelope import build_envelope, sha256, verify_receipt
from hub.core.errors import REASON_KEY
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.rpc.status import RECEIPT_KEY
from hub.runtime import RunningHub
from tests.test_exchange import (
    _assert_nothing_accepted,
    as_partner,
    nz_signing_key,
    refused,
    signer_of,
)


def aeo_envelope(pki: Path, party: str, aeo_id: str, recipient: str = "NZ") -> bytes:
    """A new AEO status of ``party``'s, signed by it, for ``recipient``."""
    envelope, _ = build_envelope(
        signer_of(pki, party),
        sender=party,
        recipient=recipient,
        document=sample_aeo_status(party, aeo_id),
        created_at=datetime.now(UTC),
        ttl=timedelta(days=1),
    )
    return envelope


async def still_serves_sg(pki: Path, nz: RunningHub, *, only_sg: bool = True) -> None:
    """SG, another partner, delivers on a stream of its own and gets its receipt (and, with
    ``only_sg``, SG's is the only message NZ holds)."""
    envelope = aeo_envelope(pki, "SG", "SGAEO1")
    sg = as_partner(pki, "SG", nz)
    try:
        [receipt] = await sg.exchange("NZ", [envelope], timeout=5)
    finally:
        await sg.close()
    assert receipt.signature
    senders = [m.sender for m in await nz.hub.store.views.inbound()]
    assert senders == ["SG"] if only_sg else "SG" in senders


async def refused_with(
    pki: Path,
    nz: RunningHub,
    data: bytes,
    status: grpc.StatusCode,
    reason: str,
    *,
    tls_from: Path | None = None,
    receipt: bool = True,
) -> None:
    """CN delivers ``data`` to NZ (with CN's TLS files from ``tls_from``, if given) and every
    post-condition holds: ``status`` and ``reason``; a REJECTED receipt signed by NZ naming
    the reason and the envelope's digest (unless ``receipt`` is False: refusals before the
    envelope is looked at carry none); nothing accepted or handed over; the refusal recorded
    once; SG still served."""
    error = await refused(pki, nz, data, tls_from=tls_from)
    assert error.code() == status, error.details()
    metadata = dict(error.trailing_metadata() or ())
    assert metadata[REASON_KEY] == reason
    if receipt:
        rejected = verify_receipt(
            pb.SignedReceipt.FromString(metadata[RECEIPT_KEY]), "NZ", nz_signing_key(pki)
        )
        assert rejected.outcome == pb.RECEIPT_OUTCOME_REJECTED and rejected.reason == reason
        assert rejected.envelope_digest == sha256(data)
    await _assert_nothing_accepted(nz)
    assert [r.reason for r in await nz.hub.store.views.rejections()] == [reason]
    await still_serves_sg(pki, nz)
