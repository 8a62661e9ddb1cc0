"""Attacks on the connection (issue 14, family "tls"): certificates from a CA nobody trusts,
from a partner's CA naming another party, and peers that are not partners knocking on the
partner port (its health service included). None reaches PartnerExchange or Health; knocks
are recorded, but not one by one; partners are served as before."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from hub.core.envelope import verify_receipt
from hub.core.errors import REASON_KEY
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.rpc.partner import PARTNER_SERVICE
from tests.adversarial.conditions import still_serves_sg
from tests.conftest import Federation
from tests.test_exchange import (
    _assert_nothing_accepted,
    as_partner,
    forged_tls,
    nz_signing_key,
    refused,
    signed_envelope,
)


async def test_client_certificate_from_unknown_ca_is_refused(
    federation: Federation, pki: Path, rogue_pki: Path
) -> None:
    nz = await federation.start("NZ")
    data, _ = signed_envelope(rogue_pki, recipient="NZ")
    error = await refused(pki, nz, data, tls_from=rogue_pki)
    assert error.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake failed
    await _assert_nothing_accepted(nz)
    # control: the same client path with CN's real certificate reaches the same server
    good, _ = signed_envelope(pki)
    client = as_partner(pki, "CN", nz)
    try:
        receipt = await client.deliver("NZ", good, timeout=5)
    finally:
        await client.close()
    assert verify_receipt(receipt, "NZ", nz_signing_key(pki)).outcome == pb.RECEIPT_OUTCOME_ACCEPTED
    assert await nz.hub.store.views.rejections() == []  # the handshake failed: nothing to record


async def test_partner_ca_cannot_vouch_for_another_party(
    federation: Federation, pki: Path, tmp_path: Path
) -> None:
    """SG's CA is trusted for SG only: a certificate it issues naming CN is refused."""
    nz = await federation.start("NZ")
    forged_dir = forged_tls(pki, tmp_path)
    data, _ = signed_envelope(pki, recipient="NZ")
    error = await refused(pki, nz, data, tls_from=forged_dir)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert dict(error.trailing_metadata() or ())[REASON_KEY] == "untrusted-issuer"
    await _assert_nothing_accepted(nz)
    assert [r.reason for r in await nz.hub.store.views.rejections()] == ["untrusted-issuer"]
    await still_serves_sg(pki, nz)


async def test_health_on_the_partner_port_is_for_partners_and_knocks_are_not_each_recorded(
    federation: Federation, pki: Path, tmp_path: Path
) -> None:
    """A peer whose certificate chains to a partner's CA but is not that partner (SG's CA
    vouching for CN) gets no health answer; fifty such knocks leave one trail record; a
    partner gets its answer, and reflection is not offered on the partner port."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2_grpc

    nz = await federation.start("NZ")
    forged = forged_tls(pki, tmp_path)

    def channel(tls: Path) -> grpc.aio.Channel:
        creds = grpc.ssl_channel_credentials(
            (pki / "NZ" / "ca.pem").read_bytes(),
            (tls / "CN" / "tls.key").read_bytes(),
            (tls / "CN" / "tls.pem").read_bytes(),
        )
        return grpc.aio.secure_channel(f"127.0.0.1:{nz.partner_port}", creds)

    request = health_pb2.HealthCheckRequest(service=PARTNER_SERVICE)
    trail_before = await nz.hub.store.trail.size()
    async with channel(forged) as knocking:
        stub = health_pb2_grpc.HealthStub(knocking)
        for _ in range(50):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Check(request, timeout=5)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await nz.hub.store.trail.size() == trail_before + 1
    [record] = await nz.hub.store.views.rejections()
    assert record.reason == "untrusted-issuer" and record.source == "unknown-peer"
    async with channel(pki) as partner:
        answer = await health_pb2_grpc.HealthStub(partner).Check(request, timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        # nothing is written: the answer comes before any request is read, and a request
        # written meanwhile can fail on the client as INTERNAL instead (a gRPC race)
        stream = reflection_pb2_grpc.ServerReflectionStub(partner).ServerReflectionInfo(timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stream.read()
        assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED
