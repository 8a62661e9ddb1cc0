"""Hostile XML (issue 14, family "xml") against the one hardened entry point, and through the
hub's doors to it: the domestic port and partners' documents in a partner format.

A loopback canary HTTP server stands where an attacker's server would be: it must receive
nothing. A local secret file stands for /etc/passwd: its content must appear nowhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.xmlsafe import parse_xml
from hub.core.envelope import build_envelope, verify_receipt
from hub.core.errors import REASON_KEY, TranslationError
from hub.core.limits import XmlLimits
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.rpc.status import RECEIPT_KEY
from tests.adversarial.conditions import still_serves_sg
from tests.conftest import Federation
from tests.test_exchange import _assert_nothing_accepted, as_partner, nz_signing_key, signer_of

LIMITS = XmlLimits()
SECRET = "TOP-SECRET-CANARY-7f3a"


class Canary:
    def __init__(self) -> None:
        self.requests: list[str] = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canary.requests.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'<!ENTITY leak "fetched">')

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.close()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    path.write_text(SECRET)
    return path


def hostile_documents(secret: Path, url: str) -> list[tuple[str, bytes, str]]:
    laughs = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    big_entity = "A" * 50_000
    return [
        (
            "XXE to a local file",
            f'<!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]><d>&x;</d>'.encode(),
            "forbidden-doctype",
        ),
        (
            "XXE to a loopback server",
            f'<!DOCTYPE d [<!ENTITY x SYSTEM "{url}/xxe">]><d>&x;</d>'.encode(),
            "forbidden-doctype",
        ),
        (
            "parameter entity to a loopback server",
            f'<!DOCTYPE d [<!ENTITY % p SYSTEM "{url}/param"> %p;]><d>&leak;</d>'.encode(),
            "forbidden-doctype",
        ),
        ("billion laughs", f"<!DOCTYPE d [{laughs}]><d>&lol9;</d>".encode(), "forbidden-doctype"),
        (
            "quadratic blow-up",
            f'<!DOCTYPE d [<!ENTITY a "{big_entity}">]><d>{"&a;" * 2000}</d>'.encode(),
            "forbidden-doctype",
        ),
        ("external DTD", f'<!DOCTYPE d SYSTEM "{url}/ext.dtd"><d/>'.encode(), "forbidden-doctype"),
        (
            "XInclude of a local file",
            (
                '<d xmlns:xi="http://www.w3.org/2001/XInclude">'
                f'<xi:include href="{secret}" parse="text"/></d>'
            ).encode(),
            "forbidden-xinclude",
        ),
        (
            "xsi:schemaLocation pointing elsewhere",
            (
                '<d xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="urn:x {url}/evil.xsd"/>'
            ).encode(),
            "forbidden-schema-location",
        ),
        (
            "XInclude namespace spelled with a character reference",
            (
                '<d xmlns:xi="http://www.w3.org/2001/&#x58;Include">'
                f'<xi:include href="{secret}" parse="text"/></d>'
            ).encode(),
            "forbidden-xinclude",
        ),
        (
            "XInclude in UTF-16",
            (
                '<?xml version="1.0" encoding="UTF-16"?>'
                '<d xmlns:xi="http://www.w3.org/2001/XInclude">'
                f'<xi:include href="{secret}" parse="text"/></d>'
            ).encode("utf-16"),
            "forbidden-xinclude",
        ),
        (
            "schemaLocation URL in UTF-16",
            (
                '<?xml version="1.0" encoding="UTF-16"?>'
                '<d xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="urn:x {url}/evil.xsd"/>'
            ).encode("utf-16"),
            "forbidden-schema-location",
        ),
        (
            "schemaLocation attribute name spelled with a character reference",
            (
                '<d xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="urn:x {url}/evil&#x2E;xsd"/>'
            ).encode(),
            "forbidden-schema-location",
        ),
        (
            "XInclude in UTF-16 with a BOM and no declaration",
            (
                '<d xmlns:xi="http://www.w3.org/2001/XInclude">'
                f'<xi:include href="{secret}" parse="text"/></d>'
            ).encode("utf-16"),
            "forbidden-xinclude",
        ),
        (
            "schemaLocation URL in UTF-16 with a BOM and no declaration",
            (
                '<d xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="urn:x {url}/evil.xsd"/>'
            ).encode("utf-16"),
            "forbidden-schema-location",
        ),
        (
            "schemaLocation as a network path",
            (
                '<d xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="urn:x {url.removeprefix("http:")}/evil.xsd"/>'
            ).encode(),
            "forbidden-schema-location",
        ),
        ("deep nesting", b"<d>" + b"<e>" * 100 + b"</e>" * 100 + b"</d>", "limit-exceeded"),
        ("very deep nesting", b"<d>" + b"<e>" * 5000 + b"</e>" * 5000 + b"</d>", "limit-exceeded"),
        (
            "oversized document",
            b"<d>" + b"<e>x</e>" * (LIMITS.max_bytes // 8) + b"</d>",
            "limit-exceeded",
        ),
        ("not well-formed", b"<d><e></d>", "not-well-formed"),
        (
            "trailing HTTP header after the root",
            b"<d/>\nContent-Type: text/xml\n",
            "not-well-formed",
        ),
    ]


def test_hostile_documents_are_refused_with_their_reason(canary: Canary, secret_file: Path) -> None:
    for case, data, reason in hostile_documents(secret_file, canary.url):
        with pytest.raises(TranslationError) as info:
            parse_xml(data, LIMITS)
        assert info.value.reason == reason, case
        assert SECRET not in str(info.value), case
    assert canary.requests == []


def test_too_many_elements() -> None:
    data = b"<d>" + b"<e/>" * 101 + b"</d>"
    with pytest.raises(TranslationError) as info:
        parse_xml(data, XmlLimits(max_elements=100))
    assert info.value.reason == "limit-exceeded"


def test_errors_carry_line_and_column() -> None:
    with pytest.raises(TranslationError) as info:
        parse_xml(b"<d>\n  <e>\n</d>", LIMITS)
    assert info.value.line == 3 and info.value.column is not None


def test_relative_schema_location_is_kept_as_data() -> None:
    root = parse_xml(
        b'<d xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xsi:schemaLocation="urn:wco:datamodel:WCO:DEC-DMS:2 ../WCO_DEC_DMS.xsd"/>',
        LIMITS,
    )
    assert root.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation").endswith(".xsd")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_translation_error(data: bytes) -> None:
    with contextlib.suppress(TranslationError):
        parse_xml(data, LIMITS)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="<>/=\"'&;!-[]?dexmlns: aAE", max_size=120))
def test_xml_like_text_parses_or_raises_translation_error(text: str) -> None:
    with contextlib.suppress(TranslationError):
        parse_xml(text.encode(), LIMITS)


def test_hostile_residue_from_a_partner_is_refused_on_the_way_out() -> None:
    """A partner's protobuf can carry any residue; writing it as XML applies the same policy."""
    from adapters.wco.translator import GoodsDeclaration, WcoXml
    from hub.pb.customs_hub.v1 import declaration_pb2

    def encode(message: GoodsDeclaration) -> str:
        with pytest.raises(TranslationError) as info:
            WcoXml().encode(message)
        return info.value.reason

    base = GoodsDeclaration(function_code="9", functional_reference_id="LRN1")
    remote = GoodsDeclaration()
    remote.CopyFrom(base)
    remote.residue.append(
        declaration_pb2.Residue(
            path="",
            attribute="{http://www.w3.org/2001/XMLSchema-instance}schemaLocation",
            value="urn:x http://127.0.0.1:9/evil.xsd",
        )
    )
    assert encode(remote) == "forbidden-schema-location"
    doctype = GoodsDeclaration()
    doctype.CopyFrom(base)
    doctype.residue.append(
        declaration_pb2.Residue(
            path="",
            index=0,
            xml=b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>',
        )
    )
    assert encode(doctype) == "forbidden-doctype"
    control = GoodsDeclaration(function_code="9\x01", functional_reference_id="LRN1")
    assert encode(control) == "invalid-content"
    bad_name = GoodsDeclaration()
    bad_name.CopyFrom(base)
    bad_name.residue.append(declaration_pb2.Residue(path="", attribute="1bad", value="x"))
    assert encode(bad_name) == "invalid-content"


async def test_hostile_documents_from_domestic_systems_and_partners_are_refused(
    federation: Federation, pki: Path, canary: Canary, secret_file: Path
) -> None:
    """Every hostile document, submitted to NZ's domestic port and sent by CN as a document in
    a partner format (CN may send wco-xml), is refused with the reason the parser gives, with
    a signed REJECTED receipt for CN; nothing is queued or stored, the canary hears nothing,
    the secret appears in no refusal, and SG is served afterwards."""
    config = federation.configs["NZ"]
    cn = dataclasses.replace(config.partners["CN"], raw_formats=("wco-xml",))
    federation.configs["NZ"] = dataclasses.replace(config, partners={**config.partners, "CN": cn})
    nz = await federation.start("NZ")
    cases = hostile_documents(secret_file, canary.url)
    async with grpc.aio.insecure_channel(nz.config.domestic_listen) as channel:
        stub = sgrpc.DomesticStub(channel)
        for case, data, reason in cases:
            request = spb.SubmitRequest(raw=spb.RawDocument(format="wco-xml", content=data))
            with pytest.raises(grpc.aio.AioRpcError) as refused_here:
                await stub.Submit(request, timeout=10)
            assert refused_here.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
            assert dict(refused_here.value.trailing_metadata() or ())[REASON_KEY] == reason, case
            assert SECRET not in (refused_here.value.details() or ""), case
    client = as_partner(pki, "CN", nz)
    try:
        for case, data, reason in cases:
            envelope, _ = build_envelope(
                signer_of(pki, "CN"),
                sender="CN",
                recipient="NZ",
                document=spb.RawDocument(format="wco-xml", content=data),
                created_at=datetime.now(UTC),
                ttl=timedelta(days=1),
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused_there:
                await client.deliver("NZ", envelope, timeout=10)
            metadata = dict(refused_there.value.trailing_metadata() or ())
            if len(envelope) > nz.config.limits.max_envelope_bytes:
                reason = "too-large"  # refused for its size before any parser sees it
            assert metadata[REASON_KEY] == reason, case
            receipt = verify_receipt(
                pb.SignedReceipt.FromString(metadata[RECEIPT_KEY]), "NZ", nz_signing_key(pki)
            )
            assert receipt.outcome == pb.RECEIPT_OUTCOME_REJECTED, case
    finally:
        await client.close()
    assert canary.requests == []
    await _assert_nothing_accepted(nz)
    assert await nz.hub.store.views.outbound() == []
    rejections = await nz.hub.store.views.rejections()
    assert len(rejections) == 2 * len(cases)
    assert not any(SECRET in r.detail for r in rejections)
    await still_serves_sg(pki, nz)
