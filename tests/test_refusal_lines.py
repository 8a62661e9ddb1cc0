"""Every refusal names a line, whole-document refusals (``unsupported-document``) included: in
the translator's error, in ``customs-hub translate``'s ``FILE:LINE:`` and over gRPC."""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
import pytest

from adapters.aeocsv import AeoCsv
from adapters.edifact import Edifact
from adapters.protojson import ProtoJson
from hub.cli.demo import sample_aeo_status
from hub.core.errors import REASON_KEY, TranslationError
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.rpc.status import LINE_KEY
from tests.conftest import Federation
from tests.test_wco_hub import run_cli
from tests.testdata import DATA

CLI = [sys.executable, "-m", "hub.cli.main"]
# A JSON object naming no business message, after two blank lines: refused as a whole, on the
# line its value starts.
NOT_A_MESSAGE = b'\n\n{"invoice": {"total": 1}}\n'


def test_protojson_refusal_of_the_whole_document_names_its_first_line() -> None:
    with pytest.raises(TranslationError) as info:
        ProtoJson(max_bytes=1 << 20).decode(NOT_A_MESSAGE, source="x.json")
    assert info.value.reason == "unsupported-document" and info.value.line == 3
    with pytest.raises(TranslationError) as info:
        ProtoJson(max_bytes=1 << 20).decode(b"\xef\xbb\xbf[1, 2]", source="x.json")
    assert info.value.line == 1


def test_aeocsv_as_one_document_names_the_row_that_makes_it_many() -> None:
    translator = AeoCsv(max_bytes=1 << 20)
    second = sample_aeo_status()
    second.aeo_id += "2"
    data = translator.encode_all([sample_aeo_status(), second])
    with pytest.raises(TranslationError) as info:
        translator.decode(data, source="operators.csv")
    assert info.value.reason == "unsupported-document" and info.value.line == 3


def test_edifact_decode_of_an_interchange_of_several_names_the_second_message() -> None:
    data = (DATA / "edifact" / "cusres_multi.edi").read_bytes()
    second = Edifact(max_bytes=1 << 20).decode_all(data)[1].line
    with pytest.raises(TranslationError) as info:
        Edifact(max_bytes=1 << 20).decode(data, source="multi.edi")
    assert info.value.reason == "unsupported-document"
    assert info.value.line == second and second is not None and second > 3


async def test_translate_and_grpc_name_the_line_of_a_refused_document(
    federation: Federation, tmp_path: Path
) -> None:
    document = tmp_path / "invoice.json"
    document.write_bytes(NOT_A_MESSAGE)
    code, _, err = await run_cli("translate", str(document), "--from", "proto-json", "--to",
                                 "wco-xml")  # fmt: skip
    assert code == 2
    assert f"{document}:3: unsupported-document: " in err
    cn = await federation.start("CN")
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await sgrpc.DomesticStub(channel).Submit(
                spb.SubmitRequest(
                    raw=spb.RawDocument(format="proto-json", content=NOT_A_MESSAGE),
                    recipients=["NZ"],
                ),
                timeout=10,
            )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    metadata = dict(info.value.trailing_metadata() or ())
    assert metadata[REASON_KEY] == "unsupported-document" and metadata[LINE_KEY] == "3"
    assert "line 3" in (info.value.details() or "")
    assert await cn.hub.store.views.outbox() == []
    [rejection] = await cn.hub.store.views.rejections()
    assert rejection.reason == "unsupported-document"
