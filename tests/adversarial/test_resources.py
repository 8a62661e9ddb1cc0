"""Attacks on the partner port's resources (issue 14, family "resources"): each case checks the
status and reason the attacker gets, that nothing was stored or forwarded, and that the hub
still serves the other partners."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from hub.demo import sample_aeo_status
from hub.envelope import build_envelope
from hub.errors import REASON_KEY
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.service import PARTNER_SERVICE, RunningHub
from tests.conftest import Federation
from tests.test_exchange import _assert_nothing_accepted, as_partner, signer_of

# An Exchange frame that is not an EnvelopeBatch: its field 1 claims 2**63 bytes.
UNDECODABLE_FRAME = b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x7f"


async def still_serves_sg(pki: Path, nz: RunningHub) -> None:
    """SG, another partner, delivers on a stream of its own and gets its receipt."""
    envelope, _ = build_envelope(
        signer_of(pki, "SG"),
        sender="SG",
        recipient="NZ",
        document=sample_aeo_status("SG", "SGAEO1"),
        created_at=datetime.now(UTC),
        ttl=timedelta(days=1),
    )
    sg = as_partner(pki, "SG", nz)
    try:
        [receipt] = await sg.exchange("NZ", [envelope], timeout=5)
    finally:
        await sg.close()
    assert receipt.signature
    assert [m.sender for m in await nz.hub.store.inbound()] == ["SG"]


async def test_an_undecodable_exchange_frame_is_refused_and_ends_the_stream(
    federation: Federation, pki: Path
) -> None:
    nz = await federation.start("NZ")
    cn = as_partner(pki, "CN", nz)
    try:
        call = cn.channel("NZ").stream_stream(
            f"/{PARTNER_SERVICE}/Exchange",
            request_serializer=None,
            response_deserializer=pb.ReceiptBatch.FromString,
        )(timeout=10)
        await call.write(UNDECODABLE_FRAME)
        code = await call.code()  # answered at once, not when the client's deadline runs out
        assert code == grpc.StatusCode.INVALID_ARGUMENT, await call.details()
        assert dict(await call.trailing_metadata() or ())[REASON_KEY] == "batch-malformed"
    finally:
        await cn.close()
    await _assert_nothing_accepted(nz)
    assert [r.reason for r in await nz.hub.store.rejections()] == ["batch-malformed"]
    await still_serves_sg(pki, nz)
