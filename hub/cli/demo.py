"""``customs-hub demo``: three administrations on loopback exchange real signed messages.

Makes a temporary development federation (CN, NZ, SG), starts the three hubs on free loopback
ports with SQLite stores, and sends through their domestic ports:

* CN -> NZ: an export declaration with a container and seal, routed by destination country;
* NZ -> CN and SG: an AEO status under their MRAs;
* SG -> CN: the result of a physical inspection of CN's container.

It waits for every signed receipt, prints what each hub received and the receipts, verifies
each receipt against the receiver's signing certificate. Then mutual recognition at CN, whose
configuration holds agreements with NZ (recognising NZ's AEOs, with benefits) and SG
(recognising SG's control results): CN's Recognition service says NZ's operator is recognised
under CN-NZ with its benefits; NZ suspends the status and CN's lookup says why it no longer is;
NZ sends CN a declaration naming that operator and the container SG inspected, and CN's risk
engine, subscribed on CN's domestic port, reads it annotated with both. Then it shuts
everything down.

With ``--trace`` every hub records its spans in memory (as ``[telemetry]`` would export them),
NZ's customs system takes the declaration from NZ's domestic port, and the demo prints the
declaration's way as one tree with timings: CN's trace from submit to NZ's receipt, and NZ's own
trace (verify, store, receipt, hand-over) joined to it by its link (hub/cli/tracetree.py).
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.app.telemetry import Telemetry
from hub.cli import tracetree
from hub.cli.pki import init_federation
from hub.cli.recognition import operator_text
from hub.config import load_config, render_config
from hub.core.envelope import verify_receipt
from hub.core.messages import AeoStatus, ControlResult, GoodsDeclaration
from hub.pb.customs_hub.v1 import aeo_pb2, control_pb2
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import recognition_pb2 as rpb
from hub.pb.customs_hub.v1 import recognition_pb2_grpc as rgrpc
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


# CN's agreements (hub.toml [agreements]): NZ's security and safety AEOs recognised as ours,
# with three benefits; SG's control results recognised. What each may send CN and receive
# from it is its share tables (docs/recognition.md).
CN_AGREEMENTS = """
[agreements.CN-NZ]
partners = ["NZ"]
status = "in-force"
effective_from = "2025-01-01"
recognises = { security-safety = "security-safety", full = "full" }
benefits = ["reduced-inspections", "priority-treatment", "control-results"]

[agreements.CN-NZ.share.AeoStatus]
receive = true

[agreements.CN-NZ.share.GoodsDeclaration]
send = true
receive = true

[agreements.CN-SG]
partners = ["SG"]
status = "in-force"
effective_from = "2025-01-01"
benefits = ["control-results"]

[agreements.CN-SG.share.ControlResult]
receive = true
"""


def sample_import_declaration() -> GoodsDeclaration:
    """NZ's export declaration to CN (EX A) of goods from Kiwi Fresh Exports, an NZ AEO, in
    the container SG inspected."""
    d = GoodsDeclaration(function_code="9", type_code="EXA", functional_reference_id="NZ26LRN0091")
    d.exporter.id = "NZ9429041234567"
    d.exporter.name = "Kiwi Fresh Exports Ltd"
    shipment = d.goods_shipment
    shipment.aeo_mutual_recognition_party.add(id="NZAEO10077", role_code="MF")
    shipment.destination.country_code = "CN"
    shipment.export_country.id = "NZ"
    shipment.consignment.transport_equipment.add(sequence_numeric="1", id="MSKU7081234")
    item = shipment.government_agency_goods_item.add(sequence_numeric="1")
    item.commodity.description = "Kiwifruit, fresh"
    item.commodity.classification.add(id="08105000", identification_type_code="TSP")
    return d


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


async def _lookup(cn: RunningHub, aeo_id: str) -> rpb.OperatorAnswer:
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        query = rpb.OperatorQuery(aeo_id=aeo_id)
        answer: rpb.OperatorAnswer = await rgrpc.RecognitionStub(channel).LookupOperator(
            query, timeout=10
        )
        return answer


async def _until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{what} did not happen within {WAIT_SECONDS:.0f} s")


async def _recognition(hubs: dict[str, RunningHub]) -> None:
    cn, nz = hubs["CN"], hubs["NZ"]
    aeo_id = sample_aeo_status().aeo_id
    print("== Mutual recognition at CN (agreements CN-NZ and CN-SG in CN's hub.toml)")
    print("CN asks its Recognition service about NZ's operator:")
    print(_indent(operator_text(await _lookup(cn, aeo_id))))
    suspension = sample_aeo_status()
    suspension.status = aeo_pb2.AEO_STANDING_SUSPENDED
    suspension.revision += 1
    suspension.reason = "validation findings under review"
    await _submit(nz, spb.SubmitRequest(aeo_status=suspension, recipients=["CN"]))
    print(f"NZ suspends {aeo_id} (revision {suspension.revision}); CN asks again:")

    async def suspended() -> bool:
        answer = await _lookup(cn, aeo_id)
        return any(s.revision == suspension.revision for s in answer.statuses)

    await _until("the suspension's arrival at CN", suspended)
    print(_indent(operator_text(await _lookup(cn, aeo_id))))
    [queued] = await _submit(
        nz, spb.SubmitRequest(goods_declaration=sample_import_declaration(), recipients=["CN"])
    )
    print("NZ sends CN a declaration naming that operator and the container SG inspected;")
    print("CN's risk engine reads it from CN's domestic port (Subscribe), annotated:")
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber="risk-engine"), timeout=WAIT_SECONDS
        )
        async for message in stream:
            if message.message_id == queued.message_id:
                print(_indent(annotation_text(message.recognition)))
                break
        stream.cancel()


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def annotation_text(recognition: rpb.DeclarationRecognition) -> str:
    """An inbound declaration's annotation, a line per party and per partner's control."""
    lines = []
    for party in recognition.parties:
        role = f"{party.role} {party.role_code}".strip()
        if not party.statuses:
            lines.append(f"{role} {party.id}: no partner's AEO status")
        for s in party.statuses:
            verdict = (
                f"recognised under {s.agreement_id}"
                if s.recognised
                else f"not recognised: {s.reason} ({s.reason_text})"
            )
            lines.append(f"{role} {party.id}: {s.party} AEO {s.aeo_id} {s.status}, {verdict}")
    for c in recognition.controls:
        verdict = (
            f"recognised under {c.agreement_id}" if c.recognised else f"not recognised: {c.reason}"
        )
        how = ", ".join(v for v in (c.control_type, c.stage) if v != "unspecified")
        lines.append(
            f"{c.matched_by} {c.matched_value}: controlled by {c.party}"
            f"{f' ({how})' if how else ''}, outcome {c.outcome}, {verdict}"
        )
    return "\n".join(lines)


async def _trace(
    hubs: dict[str, RunningHub], spans: dict[str, InMemorySpanExporter], message_id: str
) -> None:
    """NZ's customs system takes CN's declaration (its hand-over), then the declaration's
    trace across CN and NZ is printed."""
    nz = hubs["NZ"]
    async with grpc.aio.insecure_channel(nz.config.domestic_listen) as channel:
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber="nz-customs"), timeout=WAIT_SECONDS
        )
        async for message in stream:
            if message.message_id == message_id:
                stream.cancel()
                break
    tree: list[str] = []

    async def handed_over() -> bool:  # the hand-over's span ends as the message is yielded
        nonlocal tree
        tree = tracetree.message_tree(
            message_id,
            [tracetree.Spans(p, spans[p].get_finished_spans()) for p in ("CN", "NZ")],
        )
        return any("hand-over" in line for line in tree)

    await _until("the hand-over's span", handed_over)
    print(f"== The trace of CN's declaration {message_id} to NZ")
    print(_indent("\n".join(tree)))


async def run_demo(trace: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="customs-hub-demo-") as tmp:
        root = Path(tmp)
        print(f"Development federation in {root}: administrations {', '.join(PARTIES)}")
        init_federation(root / "pki", list(PARTIES))
        ports = {p: (_free_port(), _free_port()) for p in PARTIES}
        hubs: dict[str, RunningHub] = {}
        spans: dict[str, InMemorySpanExporter] = {}
        declaration = ""  # the message id of CN's declaration to NZ
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
                    + (CN_AGREEMENTS if party == "CN" else "")
                )
                config = load_config(hubdir / "hub.toml")
                telemetry = None
                if trace:
                    spans[party] = InMemorySpanExporter()
                    telemetry = Telemetry(config.telemetry, party, span_exporter=spans[party])
                hubs[party] = await start_hub(config, telemetry=telemetry)
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
                    if party == "CN" and queued.recipient == "NZ":
                        declaration = queued.message_id
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
            await _recognition(hubs)
            print()
            if trace:
                await _trace(hubs, spans, declaration)
                print()
        finally:
            for running in hubs.values():
                await running.stop(grace=1.0)
        print("All hubs stopped cleanly.")
    return 0
