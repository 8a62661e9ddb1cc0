"""``customs-hub demo``: three administrations on loopback exchange real signed messages.

Makes a temporary development federation (CN, NZ, SG), starts the three hubs on free loopback
ports with SQLite stores, and sends through their domestic ports:

* CN -> NZ: an export declaration with a container and seal, routed by destination country;
* NZ -> CN and SG: an AEO status under their MRAs;
* SG -> CN: the result of a physical inspection of CN's container.

It waits for every signed receipt, prints what each hub received and the receipts, verifies
each receipt against the receiver's signing certificate, and shuts everything down.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from pathlib import Path

import grpc

from hub.cli.pki import init_federation
from hub.config import load_config, render_config
from hub.core.envelope import verify_receipt
from hub.core.messages import AeoStatus, ControlResult, GoodsDeclaration
from hub.pb.customs_hub.v1 import aeo_pb2, control_pb2
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.runtime import RunningHub, start_hub

PARTIES = ("CN", "NZ", "SG")
WAIT_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_declaration() -> GoodsDeclaration:
    """An export declaration (EX A) from Shanghai to Auckland, shaped like the CDS samples."""
    d = GoodsDeclaration(
        function_code="9", type_code="EXA", functional_reference_id="CN2026LRN000417"
    )
    d.declaration_office_id = "CN000310"
    d.declarant.id = "CN9112000071"
    d.declarant.name = "Shanghai Harbour Forwarding Co."
    d.exporter.id = "CN9133010060"
    d.exporter.name = "Hangzhou Tea Exporters Ltd"
    shipment = d.goods_shipment
    shipment.destination.country_code = "NZ"
    shipment.export_country.id = "CN"
    shipment.ucr.id = "6CN913301006020261125"
    equipment = shipment.consignment.transport_equipment.add(sequence_numeric="1", id="MSKU7081234")
    equipment.seal.add(sequence_numeric="1", id="CNSEAL0042731")
    item = shipment.government_agency_goods_item.add(sequence_numeric="1")
    item.commodity.description = "Green tea, in immediate packings of 3 kg or less"
    item.commodity.classification.add(id="09021000", identification_type_code="TSP")
    item.origin.add(country_code="CN", type_code="1")
    return d


def sample_aeo_status(issuer: str = "NZ", aeo_id: str = "NZAEO10077") -> AeoStatus:
    return AeoStatus(
        issuing_administration=issuer,
        aeo_id=aeo_id,
        tin="NZ9429041234567",
        name="Kiwi Fresh Exports Ltd",
        programme=aeo_pb2.AEO_PROGRAMME_SECURITY_AND_SAFETY,
        status=aeo_pb2.AEO_STANDING_VALID,
        valid_from="2025-03-01",
        revision=4,
        country_code="NZ",
    )


def sample_control_result() -> ControlResult:
    return ControlResult(
        control_id="SG-INSP-2026-11-00191",
        functional_reference_id="CN2026LRN000417",
        container_ids=["MSKU7081234"],
        control_type=control_pb2.CONTROL_TYPE_PHYSICAL,
        outcome=control_pb2.CONTROL_OUTCOME_NO_FINDINGS,
        seals_applied=["SGSEAL900117"],
        office_id="SGPSA01",
        controlled_at="2026-11-25T03:14:00Z",
        revision=1,
    )


async def _submit(running: RunningHub, request: spb.SubmitRequest) -> list[spb.Queued]:
    async with grpc.aio.insecure_channel(running.config.domestic_listen) as channel:
        response = await sgrpc.DomesticStub(channel).Submit(request, timeout=10)
    return list(response.queued)


async def _wait_for_receipts(hubs: dict[str, RunningHub], expected: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        settled = 0
        for running in hubs.values():
            settled += sum(1 for _, r in await running.hub.store.views.outbound() if r is not None)
        if settled >= expected:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not every receipt arrived within {WAIT_SECONDS:.0f} s")


def _keys(raw: str) -> str:
    import json

    return ", ".join(f"{k} {'/'.join(v)}" for k, v in sorted(json.loads(raw).items()))


async def run_demo() -> int:
    with tempfile.TemporaryDirectory(prefix="customs-hub-demo-") as tmp:
        root = Path(tmp)
        print(f"Development federation in {root}: administrations {', '.join(PARTIES)}")
        init_federation(root / "pki", list(PARTIES))
        ports = {p: (_free_port(), _free_port()) for p in PARTIES}
        hubs: dict[str, RunningHub] = {}
        try:
            for party in PARTIES:
                hubdir = root / party
                hubdir.mkdir()
                (hubdir / "hub.toml").write_text(
                    render_config(
                        party=party,
                        listen=f"127.0.0.1:{ports[party][0]}",
                        domestic_listen=f"127.0.0.1:{ports[party][1]}",
                        pki=root / "pki",
                        partners={p: f"127.0.0.1:{ports[p][0]}" for p in PARTIES if p != party},
                    )
                )
                hubs[party] = await start_hub(load_config(hubdir / "hub.toml"))
                print(
                    f"  {party} hub: partners on 127.0.0.1:{ports[party][0]} (mTLS), "
                    f"domestic on 127.0.0.1:{ports[party][1]}"
                )
            print()
            sends = [
                (
                    "CN",
                    spb.SubmitRequest(
                        goods_declaration=sample_declaration(), correlation_id="demo-1"
                    ),
                ),
                ("NZ", spb.SubmitRequest(aeo_status=sample_aeo_status(), correlation_id="demo-2")),
                (
                    "SG",
                    spb.SubmitRequest(
                        control_result=sample_control_result(),
                        recipients=["CN"],
                        correlation_id="demo-1",
                    ),
                ),
            ]
            expected = 0
            for party, request in sends:
                for queued in await _submit(hubs[party], request):
                    expected += 1
                    kind = request.WhichOneof("document")
                    print(f"{party} queued {kind} {queued.message_id} for {queued.recipient}")
            await _wait_for_receipts(hubs, expected)
            print()
            for party, running in hubs.items():
                print(f"== {party} received")
                for row in await running.hub.store.views.inbound():
                    print(
                        f"  from {row.sender}: {row.body_type.rsplit('.', 1)[-1]} {row.message_id} "
                        f"({_keys(row.business_keys)})"
                    )
                print(f"== {party} receipts for what it sent")
                for message, record in await running.hub.store.views.outbound():
                    if record is None:  # waited for above; anything else is a bug
                        raise RuntimeError(f"receipt for {message.message_id} disappeared")
                    signed = pb.SignedReceipt.FromString(record.signed_receipt)
                    receipt = verify_receipt(
                        signed, message.recipient, running.hub.keys_for(message.recipient)
                    )
                    same = receipt.envelope_digest == message.envelope_digest
                    print(
                        f"  {message.recipient} {record.outcome.upper()} {message.message_id}: "
                        f"signature verified with {message.recipient}'s signing key "
                        f"{signed.signature.key_id[:16]}..., "
                        f"digest {receipt.envelope_digest.hex()[:16]}... "
                        f"{'matches' if same else 'DOES NOT MATCH'} the envelope sent"
                    )
            print()
        finally:
            for running in hubs.values():
                await running.stop(grace=1.0)
        print("All hubs stopped cleanly.")
    return 0
