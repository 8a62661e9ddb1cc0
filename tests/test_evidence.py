"""Evidence kept (issue 17): every inbound envelope is stored exactly as received, signatures
included, and `trail verify --messages` checks, offline, that every exported message is the
one its trail leaf names and that its sender signed it."""

from __future__ import annotations

from hub.cli.demo import sample_aeo_status, sample_declaration
from hub.core.envelope import sha256
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.runtime import RunningHub
from hub.trail import events as trail
from tests.conftest import Federation
from tests.test_exchange import eventually, submit


async def exchanged(federation: Federation) -> tuple[RunningHub, RunningHub]:
    """CN and NZ, each having sent the other a message and holding its receipt."""
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    await submit(cn, spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["NZ"]))
    await submit(nz, spb.SubmitRequest(aeo_status=sample_aeo_status("NZ"), recipients=["CN"]))

    async def settled() -> bool:
        return not await cn.hub.store.views.outbox() and not await nz.hub.store.views.outbox()

    await eventually(settled)
    return cn, nz


async def test_an_inbound_envelope_is_stored_exactly_as_sent(federation: Federation) -> None:
    cn, nz = await exchanged(federation)
    [(sent, _)] = [m for m in await cn.hub.store.views.outbound() if m[0].recipient == "NZ"]
    [row] = await nz.hub.store.views.inbound()
    assert row.envelope == sent.envelope  # the sender's bytes, signatures and all
    assert row.envelope is not None and sha256(row.envelope) == row.envelope_digest
    envelope = pb.Envelope.FromString(row.envelope)
    assert (envelope.header, envelope.body) == (row.header, row.body)
    assert len(envelope.signatures) == 1
    # the "received" leaf binds those bytes
    leaves = [trail.decode(leaf) for leaf in await nz.hub.store.trail.leaves()]
    [received] = [e for e in leaves if e.kind == "received"]
    assert received.message_id == row.message_id
    assert received.envelope_digest == sha256(row.envelope)
