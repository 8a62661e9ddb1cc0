"""What must not happen when things go wrong: transient failures become final rejections, one
bad outbox row stops delivery, partner-controlled header values break a store, oversized
frames are read, a signing certificate authenticates a connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from hub.cli.demo import sample_aeo_status, sample_declaration
from hub.core.envelope import verify_receipt
from hub.core.errors import REASON_KEY, StoreError
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.store.schema import OutboundMessage
from tests.conftest import Federation
from tests.test_exchange import (
    as_partner,
    eventually,
    nz_signing_key,
    refused,
    signed_envelope,
    submit,
)


async def test_transient_store_failure_at_receiver_is_retried_not_rejected(
    federation: Federation,
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    real_accept = nz.hub.store.inbound.accept_in
    failures = []

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not failures:  # fault injection: the real store fails once, as a locked SQLite would
            failures.append(1)
            raise StoreError("database is locked")
        return real_accept(*args, **kwargs)

    nz.hub.store.inbound.accept_in = flaky  # type: ignore[method-assign]
    [queued] = await submit(cn, spb.SubmitRequest(goods_declaration=sample_declaration()))

    async def failed_once():  # type: ignore[no-untyped-def]
        rows = await cn.hub.store.views.outbox()
        return rows if rows and rows[0].attempts == 1 else None

    [entry] = await eventually(failed_once)
    assert "UNAVAILABLE" in (entry.last_error or "")
    await cn.hub.store.outbox.record_failure([entry.id or 0], "retry now", datetime.now(UTC))
    cn.hub.outbox_changed.notify()

    async def delivered():  # type: ignore[no-untyped-def]
        rows = await cn.hub.store.views.outbound()
        return rows if rows[0][1] is not None else None

    [(message, receipt)] = await eventually(delivered)
    assert receipt is not None and receipt.outcome == "accepted" and message.status == "delivered"
    assert [m.message_id for m in await nz.hub.store.views.inbound()] == [queued.message_id]


async def test_retry_after_expiry_of_an_accepted_message_gets_the_original_receipt(
    federation: Federation, pki: Path
) -> None:
    later = datetime.now(UTC) + timedelta(days=3)
    nz = await federation.start("NZ")
    data, _ = signed_envelope(pki)  # valid for one day
    client = as_partner(pki, "CN", nz)
    try:
        first = await client.deliver("NZ", data, timeout=5)
    finally:
        await client.close()
    await federation.stop("NZ")
    nz = await federation.start("NZ", clock=lambda: later)
    client = as_partner(pki, "CN", nz)
    try:
        again = await client.deliver("NZ", data, timeout=5)
    finally:
        await client.close()
    keys = nz_signing_key(pki)
    assert verify_receipt(first, "NZ", keys).outcome == pb.RECEIPT_OUTCOME_ACCEPTED
    assert again.SerializeToString() == first.SerializeToString()
    # a new message that old is still refused
    fresh, _ = signed_envelope(pki)
    error = await refused(pki, nz, fresh)
    assert dict(error.trailing_metadata() or ())[REASON_KEY] == "expired"


async def test_queued_message_for_a_removed_partner_does_not_stop_delivery(
    federation: Federation,
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    # as if AU had been a partner when this was queued, and was removed from hub.toml since
    await cn.hub.store.outbox.enqueue(
        [
            OutboundMessage(
                message_id="0190f000-0000-7000-8000-000000000001",
                recipient="AU",
                body_type="customs_hub.v1.AeoStatus",
                envelope=b"x",
                envelope_digest=b"d",
                created_at=datetime.now(UTC),
            )
        ]
    )
    [queued] = await submit(cn, spb.SubmitRequest(goods_declaration=sample_declaration()))

    async def delivered():  # type: ignore[no-untyped-def]
        return [m for m in await nz.hub.store.views.inbound() if m.message_id == queued.message_id]

    await eventually(delivered)

    async def au_attempted():  # type: ignore[no-untyped-def]
        rows = [e for e in await cn.hub.store.views.outbox() if e.partner == "AU"]
        return rows if rows and rows[0].attempts >= 1 else None

    [au] = await eventually(au_attempted)
    assert "unknown-partner" in (au.last_error or "")  # kept, with the reason, not lost


@pytest.mark.parametrize(
    ("message_id", "correlation_id"),
    [
        ("x" * 40, ""),  # longer than the column
        ("0190f000-0000-7000-8000-00000000000\x00", ""),  # NUL, which PostgreSQL refuses
        ("0190f000-0000-7000-8000-000000000002", "a b"),  # space in correlation id
        ("0190f000-0000-7000-8000-000000000003", "c" * 129),  # correlation id too long
    ],
)
async def test_malformed_header_values_are_rejected_on_every_store(
    federation: Federation, pki: Path, message_id: str, correlation_id: str
) -> None:
    nz = await federation.start("NZ")
    data, _ = signed_envelope(
        pki, document=sample_aeo_status("CN"), message_id=message_id, correlation_id=correlation_id
    )
    error = await refused(pki, nz, data)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(error.trailing_metadata() or ())[REASON_KEY] == "header-malformed"
    assert await nz.hub.store.views.inbound() == []
    [rejection] = await nz.hub.store.views.rejections()
    assert rejection.reason == "header-malformed" and "\x00" not in rejection.message_id


async def test_oversized_batches_are_refused(federation: Federation, pki: Path) -> None:
    nz = await federation.start("NZ")
    limit = nz.config.limits.max_batch_envelopes
    data, _ = signed_envelope(pki)
    client = as_partner(pki, "CN", nz)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as too_many:
            await client.exchange("NZ", [data] * (limit + 1), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as too_big:
            await client.exchange(
                "NZ", [b"\0" * (nz.config.limits.max_batch_bytes + 1)], timeout=10
            )
        # a batch within the limits still goes through on the same channel
        receipts = await client.exchange("NZ", [data], timeout=10)
    finally:
        await client.close()
    assert too_many.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (
        verify_receipt(receipts[0], "NZ", nz_signing_key(pki)).outcome
        == pb.RECEIPT_OUTCOME_ACCEPTED
    )
    assert len(await nz.hub.store.views.inbound()) == 1


async def test_signing_certificate_cannot_authenticate_a_connection(
    federation: Federation, pki: Path, tmp_path: Path
) -> None:
    nz = await federation.start("NZ")
    wrong = tmp_path / "wrong" / "CN"
    wrong.mkdir(parents=True)
    (wrong / "tls.pem").write_bytes((pki / "CN" / "signing.pem").read_bytes())
    (wrong / "tls.key").write_bytes((pki / "CN" / "signing.key").read_bytes())
    data, _ = signed_envelope(pki)
    error = await refused(pki, nz, data, tls_from=tmp_path / "wrong")
    # either the TLS stack or the hub refuses it; the hub must never accept it
    if error.code() == grpc.StatusCode.PERMISSION_DENIED:
        assert dict(error.trailing_metadata() or ())[REASON_KEY] == "not-a-tls-certificate"
    else:
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert await nz.hub.store.views.inbound() == []
