"""WCO DM XML through the hub: domestic XML in, protobuf between hubs, XML out again."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from xml.etree.ElementTree import canonicalize

import grpc
import pytest

from adapters.wco.translator import GoodsDeclaration
from hub.core.envelope import sha256
from hub.core.errors import REASON_KEY
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.trail import events as trail
from tests.adversarial.test_xml import Canary, hostile_documents
from tests.conftest import Federation
from tests.test_exchange import eventually
from tests.testdata import CDS_SAMPLES

DECLARATION = CDS_SAMPLES / "TT_IM068a/TT_IM068a.xml"
CLI = [sys.executable, "-m", "hub.cli.main"]


def canonical(xml: bytes) -> str:
    return canonicalize(xml.decode(), strip_text=True, rewrite_prefixes=True)


async def test_wco_declaration_travels_as_protobuf_and_returns_as_xml(
    federation: Federation,
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    original = DECLARATION.read_bytes()
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        response = await sgrpc.DomesticStub(channel).Submit(
            spb.SubmitRequest(
                raw=spb.RawDocument(format="wco-xml", content=original), recipients=["NZ"]
            ),
            timeout=10,
        )
    assert response.document_digest == sha256(original)
    [(outbound, _)] = await cn.hub.store.views.outbound()
    assert outbound.document_digest == sha256(original)  # recorded with the message
    assert outbound.body_type == "customs_hub.v1.GoodsDeclaration"  # partners receive protobuf
    # the trail tells how it came to be sent: translated, routed, queued, in one transaction
    events = [trail.decode(leaf) for leaf in await cn.hub.store.trail.leaves()]
    story = [e for e in events if e.document_digest == sha256(original)]
    assert [e.kind for e in story] == ["translated", "routed", "queued"]
    assert story[1].detail == "to NZ, as the domestic system asked"
    assert story[2].message_id == outbound.message_id
    assert all(e.body_type == "customs_hub.v1.GoodsDeclaration" for e in story)
    assert all(("lrn", "U.7849431R66ZB") in [(k.name, k.value) for k in e.keys] for e in story)

    async def arrived():  # type: ignore[no-untyped-def]
        return await nz.hub.store.views.inbound()

    [inbound] = await eventually(arrived)
    declaration = GoodsDeclaration.FromString(inbound.body)
    assert declaration.functional_reference_id == "U.7849431R66ZB"
    async with grpc.aio.insecure_channel(nz.config.domestic_listen) as channel:
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber="cds", format="wco-xml")
        )
        handed = await stream.read()
        stream.cancel()
        # a format that cannot hold a declaration: the body whole, no document, and why
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber="aeo", format="aeo-csv")
        )
        as_csv = await stream.read()
        stream.cancel()
    assert handed.document_format == "wco-xml" and handed.document_refusal == ""
    assert canonical(handed.document) == canonical(original)
    assert as_csv.body == inbound.body and as_csv.document == b""
    assert as_csv.document_format == "" and as_csv.document_refusal == "unsupported-document"


async def test_hostile_xml_is_refused_and_nothing_is_queued(
    federation: Federation, tmp_path: Path
) -> None:
    cn = await federation.start("CN")
    secret = tmp_path / "passwd"
    secret.write_text("TOP-SECRET-CANARY-7f3a")
    canary = Canary()
    try:
        cases = hostile_documents(secret, canary.url)
        async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
            stub = sgrpc.DomesticStub(channel)
            for case, data, reason in cases:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.Submit(
                        spb.SubmitRequest(
                            raw=spb.RawDocument(format="wco-xml", content=data), recipients=["NZ"]
                        ),
                        timeout=10,
                    )
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
                assert dict(info.value.trailing_metadata() or ())[REASON_KEY] == reason, case
                assert "TOP-SECRET" not in (info.value.details() or ""), case
    finally:
        canary.close()
    assert canary.requests == []
    assert await cn.hub.store.views.outbound() == [] and await cn.hub.store.views.outbox() == []
    rejections = await cn.hub.store.views.rejections()
    assert [r.reason for r in rejections] == [c[2] for c in cases]
    assert [r.digest for r in rejections] == [sha256(c[1]) for c in cases]


async def run_cli(*args: str) -> tuple[int, str, str]:
    """The CLI as a child process, without blocking the loop the hubs in this test run on."""
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.slow
async def test_send_cli_accepts_wco_xml_and_reports_errors_with_line(
    federation: Federation, tmp_path: Path
) -> None:
    cn = await federation.start("CN")
    config = str(cn.config.path)
    code, out, err = await run_cli("send", "--config", config, "--to", "NZ", str(DECLARATION))
    assert code == 0, err
    assert out.startswith("queued ")
    invalid = tmp_path / "invalid.xml"
    invalid.write_bytes(
        DECLARATION.read_bytes().replace(
            b"<FunctionCode>9</FunctionCode>", b"<FunctionKode>9</FunctionKode>"
        )
    )
    code, _, err = await run_cli("send", "--config", config, "--to", "NZ", str(invalid))
    assert code == 2
    assert "invalid.xml:28: " in err and "schema-invalid" in err
    assert "/MetaData/Declaration/FunctionKode" in err
    assert len(await cn.hub.store.views.outbound()) == 1


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
def test_translate_cli_round_trip(tmp_path: Path) -> None:
    as_json = tmp_path / "declaration.json"
    back = tmp_path / "declaration.xml"
    first = cli("translate", str(DECLARATION), "--to", "proto-json", "-o", str(as_json))
    assert first.returncode == 0, first.stderr
    assert '"goodsDeclaration"' in as_json.read_text()
    second = cli("translate", str(as_json), "--to", "wco-xml", "-o", str(back))
    assert second.returncode == 0, second.stderr
    assert canonical(back.read_bytes()) == canonical(DECLARATION.read_bytes())
    broken = CDS_SAMPLES / "TT_EX002a/TT_EX002a.xml"
    refused = cli("translate", str(broken), "--to", "proto-json")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "TT_EX002a.xml:72:" in refused.stderr and "not-well-formed" in refused.stderr
