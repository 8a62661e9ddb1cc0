"""Attacks on the partner port's resources (issue 14, family "resources"): each case checks the
status and reason the attacker gets, that nothing was stored or forwarded, and that the hub
still serves the other partners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from hub.demo import sample_aeo_status
from hub.envelope import build_envelope
from hub.errors import REASON_KEY
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.service import PARTNER_SERVICE, RunningHub
from hub.transport import PartnerChannels
from tests.conftest import Federation
from tests.test_exchange import _assert_nothing_accepted, as_partner, signer_of

# An Exchange frame that is not an EnvelopeBatch: its field 1 claims 2**63 bytes.
UNDECODABLE_FRAME = b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x7f"


async def still_serves_sg(pki: Path, nz: RunningHub) -> None:
    """SG, another partner, delivers on a stream of its own and gets its receipt."""
    envelope = aeo_envelope(pki, "SG", "SGAEO1")
    sg = as_partner(pki, "SG", nz)
    try:
        [receipt] = await sg.exchange("NZ", [envelope], timeout=5)
    finally:
        await sg.close()
    assert receipt.signature
    assert [m.sender for m in await nz.hub.store.inbound()] == ["SG"]


def aeo_envelope(pki: Path, party: str, aeo_id: str) -> bytes:
    envelope, _ = build_envelope(
        signer_of(pki, party),
        sender=party,
        recipient="NZ",
        document=sample_aeo_status(party, aeo_id),
        created_at=datetime.now(UTC),
        ttl=timedelta(days=1),
    )
    return envelope


async def test_an_undecodable_exchange_frame_is_refused_and_ends_the_stream(
    federation: Federation, pki: Path
) -> None:
    nz = await federation.start("NZ")
    cn = as_partner(pki, "CN", nz)
    try:
        call = raw_exchange(cn, timeout=10)
        started = asyncio.get_running_loop().time()
        await call.write(UNDECODABLE_FRAME)
        code = await call.code()
        assert code == grpc.StatusCode.INVALID_ARGUMENT, await call.details()
        assert asyncio.get_running_loop().time() - started < 5  # not the client's deadline
        assert dict(await call.trailing_metadata() or ())[REASON_KEY] == "batch-malformed"
    finally:
        await cn.close()
    await _assert_nothing_accepted(nz)
    [rejection] = await nz.hub.store.rejections()
    assert rejection.reason == "batch-malformed" and rejection.source == "CN"
    await still_serves_sg(pki, nz)


async def test_frames_before_an_undecodable_one_are_answered_first(
    federation: Federation, pki: Path
) -> None:
    nz = await federation.start("NZ")
    cn = as_partner(pki, "CN", nz)
    good = pb.EnvelopeBatch(envelopes=[aeo_envelope(pki, "CN", "CNAEO1")]).SerializeToString()
    try:
        call = raw_exchange(cn, timeout=10)
        await call.write(good)
        await call.write(UNDECODABLE_FRAME)
        answers = [batch async for batch in _until_error(call)]
        assert [len(batch.receipts) for batch in answers] == [1]
        assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await cn.close()
    assert [m.sender for m in await nz.hub.store.inbound()] == ["CN"]  # the good frame's
    assert [r.reason for r in await nz.hub.store.rejections()] == ["batch-malformed"]


async def test_a_fault_while_reading_a_stream_ends_it_instead_of_hanging_it(
    federation: Federation, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug of ours in the stream's reader (here: recording the rejection raises) is answered
    INTERNAL at once; before, the reader died and the stream hung until the deadline."""
    nz = await federation.start("NZ")

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(nz.hub, "record_rejection", broken)
    cn = as_partner(pki, "CN", nz)
    try:
        call = raw_exchange(cn, timeout=10)
        await call.write(UNDECODABLE_FRAME)
        assert await call.code() == grpc.StatusCode.INTERNAL
        assert dict(await call.trailing_metadata() or ())[REASON_KEY] == "internal"
    finally:
        await cn.close()
    monkeypatch.undo()
    await _assert_nothing_accepted(nz)
    await still_serves_sg(pki, nz)


def raw_exchange(client: PartnerChannels, timeout: float) -> grpc.aio.StreamStreamCall:
    """An Exchange call to NZ that sends frames as given bytes."""
    return client.channel("NZ").stream_stream(
        f"/{PARTNER_SERVICE}/Exchange",
        request_serializer=None,
        response_deserializer=pb.ReceiptBatch.FromString,
    )(timeout=timeout)


async def _until_error(call: grpc.aio.StreamStreamCall) -> AsyncIterator[pb.ReceiptBatch]:
    try:
        async for batch in call:
            yield batch
    except grpc.aio.AioRpcError:
        return


# An interchange of about 2 MiB: seconds of work for the EDIFACT reader.
HUGE_EDIFACT = (
    b"UNA:+.? '\nUNB+UNOC:3+NZ+NZ+261125:0320+1'\nUNH+1+CUSRES:D:96B:UN'\n"
    b"BGM+962+NZ-INSP-1+9'\n" + b"FTX+AAH++PHYSICAL:CTY:ZZZ'\n" * 80_000 + b"UNT+3+1'\nUNZ+1+1'\n"
)


@pytest.mark.slow
async def test_a_huge_domestic_document_is_translated_while_partners_are_served(
    federation: Federation, pki: Path
) -> None:
    """While NZ translates a huge document from its domestic system (in the translation
    process, not on the event loop), SG's delivery is answered; the document is then refused
    with its translator's reason, and nothing is queued."""
    nz = await federation.start("NZ")
    async with grpc.aio.insecure_channel(nz.config.domestic_listen) as channel:
        stub = sgrpc.DomesticStub(channel)
        request = spb.SubmitRequest(raw=spb.RawDocument(format="edifact", content=HUGE_EDIFACT))
        huge = asyncio.ensure_future(stub.Submit(request, timeout=120))
        deadline = asyncio.get_running_loop().time() + 30
        while nz.hub.translation.isolated == 0:  # handed to the translation process
            assert asyncio.get_running_loop().time() < deadline and not huge.done()
            await asyncio.sleep(0.01)
        await still_serves_sg(pki, nz)
        assert not huge.done(), "the huge document was answered before SG: nothing was shown"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await huge
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason = dict(refused.value.trailing_metadata() or ())[REASON_KEY]
    assert reason.startswith("edifact-")
    assert await nz.hub.store.outbound() == []
    assert [r.reason for r in await nz.hub.store.rejections()] == [reason]
