"""Documents in partner formats over PartnerExchange: a RawDocument body, signed like any
other, translated on ingress. Real hubs over mTLS, real stores (SQLite and PostgreSQL).

What is checked after each case: what the receiver stored and hands on (the translation),
what it kept (the exact signed body), what its trail says (the original document's digest),
and for every refusal that nothing was accepted or handed on and the rejection is recorded.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf import json_format

from adapters.wco.translator import WcoXml
from hub.cli.demo import sample_aeo_status, sample_control_result
from hub.config import load_config
from hub.core.envelope import sha256, verify_receipt
from hub.core.errors import REASON_KEY
from hub.core.messages import ControlResult, GoodsDeclaration
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.rpc.status import RECEIPT_KEY
from hub.runtime import RunningHub
from hub.store.schema import TrailQuery
from hub.trail import events as trail
from tests.conftest import Federation
from tests.test_exchange import (
    _assert_nothing_accepted,
    as_partner,
    handed_over,
    nz_signing_key,
    refused,
    signed_envelope,
)
from tests.test_wco_hub import DECLARATION


def allow_raw(federation: Federation, party: str, partner: str, formats: list[str]) -> None:
    """Let ``partner`` send ``party`` documents in ``formats`` (its hub.toml, reloaded)."""
    path = federation.root / party / "hub.toml"
    text = path.read_text()
    listed = ", ".join(f'"{f}"' for f in formats)
    text, found = re.subn(
        rf"(\[partners\.{partner}\]\n)", rf"\1raw_formats = [{listed}]\n", text, count=1
    )
    assert found == 1
    path.write_text(text)
    federation.configs[party] = load_config(path)


def raw_envelope(pki: Path, fmt: str, content: bytes, **kwargs: object) -> bytes:
    data, _ = signed_envelope(
        pki,
        document=spb.RawDocument(format=fmt, content=content),
        **kwargs,  # type: ignore[arg-type]
    )
    return data


async def deliver(pki: Path, target: RunningHub, data: bytes) -> pb.Receipt:
    client = as_partner(pki, "CN", target)
    try:
        signed = await client.deliver(target.config.party, data, timeout=10)
    finally:
        await client.close()
    return verify_receipt(signed, target.config.party, nz_signing_key(pki))


def proto_json(field: str, message: object) -> bytes:
    return json_format.MessageToJson(
        spb.SubmitRequest(**{field: message})  # type: ignore[arg-type]
    ).encode()


async def test_a_wco_declaration_sent_raw_is_translated_on_ingress(
    federation: Federation, pki: Path
) -> None:
    allow_raw(federation, "NZ", "CN", ["wco-xml"])
    nz = await federation.start("NZ")
    content = DECLARATION.read_bytes()
    data = raw_envelope(pki, "wco-xml", content)
    receipt = await deliver(pki, nz, data)
    assert receipt.outcome == pb.RECEIPT_OUTCOME_ACCEPTED
    # what is stored and handed on is the canonical message the document translates into
    [inbound] = await nz.hub.store.views.inbound()
    assert inbound.body_type == "customs_hub.v1.GoodsDeclaration"
    expected = WcoXml().decode(content)
    assert GoodsDeclaration.FromString(inbound.body) == expected
    assert await handed_over(nz) == [inbound.message_id]
    # the "received" leaf names the original document's digest and its format
    [(index, leaf)] = await nz.hub.store.trail.query(
        TrailQuery(message_id=inbound.message_id, kinds=("received",))
    )
    event = trail.decode(leaf)
    assert index == receipt.trail_index
    assert event.document_digest == sha256(content)
    assert event.body_type == "customs_hub.v1.GoodsDeclaration"
    assert event.detail == "translated from wco-xml"
    assert ("lrn", expected.functional_reference_id) in {(k.name, k.value) for k in event.keys}
    # what the partner signed is kept exactly: auditors read the original body
    [stored] = await nz.hub.store.views.stored_messages(inbound.message_id)
    header = pb.Header.FromString(stored.header)
    assert header.body_type == stored.body_type == "customs_hub.v1.RawDocument"
    assert sha256(stored.body) == header.body_digest
    assert spb.RawDocument.FromString(stored.body).content == content


async def test_a_raw_control_result_updates_state_like_a_protobuf_one(
    federation: Federation, pki: Path
) -> None:
    allow_raw(federation, "NZ", "CN", ["*"])
    nz = await federation.start("NZ")
    result = sample_control_result()
    result.revision = 3
    receipt = await deliver(
        pki, nz, raw_envelope(pki, "proto-json", proto_json("control_result", result))
    )
    assert receipt.outcome == pb.RECEIPT_OUTCOME_ACCEPTED
    older = ControlResult()
    older.CopyFrom(result)
    older.revision = 2
    await deliver(pki, nz, raw_envelope(pki, "proto-json", proto_json("control_result", older)))
    first, second = await nz.hub.store.views.inbound()
    assert ControlResult.FromString(first.body) == result and not first.superseded
    assert second.superseded  # an older revision is recorded but must not overwrite


# (case, formats allowed for CN, format sent, content, reason)
XML = DECLARATION.read_bytes()
REFUSALS = [
    ("no raw formats allowed", [], "wco-xml", XML, "format-not-allowed"),
    ("format not allowed", ["proto-json"], "wco-xml", XML, "format-not-allowed"),
    ("format not named", ["*"], "", XML, "format-not-allowed"),
    ("format unknown", ["*"], "cobol-copybook", b"01 DECL.", "unsupported-format"),
    ("not well formed", ["wco-xml"], "wco-xml", b"<Declaration><ID>", "not-well-formed"),
    (
        "doctype",
        ["wco-xml"],
        "wco-xml",
        b'<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><Declaration>&e;</Declaration>',
        "forbidden-doctype",
    ),
    (
        "AEO status of another issuer",
        ["proto-json"],
        "proto-json",
        proto_json("aeo_status", sample_aeo_status(issuer="SG")),
        "not-issuer",
    ),
    ("JSON of no business message", ["proto-json"], "proto-json", b"{}", "unsupported-document"),
    (
        "EDIFACT counting its segments in a digit int() refuses",
        ["edifact"],
        "edifact",
        "UNA:+.? 'UNB+UNOW:3+CN+NZ+240101:1200+1'UNH+1+CUSRES:D:96B:UN'BGM+962+X'"
        "UNT+\u00b2+1'UNZ+1+1'".encode(),
        "edifact-syntax",
    ),
]


@pytest.mark.parametrize(
    ("case", "allowed", "fmt", "content", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
async def test_refused_raw_documents(
    federation: Federation,
    pki: Path,
    case: str,
    allowed: list[str],
    fmt: str,
    content: bytes,
    reason: str,
) -> None:
    if allowed:
        allow_raw(federation, "NZ", "CN", allowed)
    nz = await federation.start("NZ")
    data = raw_envelope(pki, fmt, content)
    error = await refused(pki, nz, data)
    metadata = dict(error.trailing_metadata() or ())
    assert metadata[REASON_KEY] == reason, case
    rejected = verify_receipt(
        pb.SignedReceipt.FromString(metadata[RECEIPT_KEY]), "NZ", nz_signing_key(pki)
    )
    assert rejected.outcome == pb.RECEIPT_OUTCOME_REJECTED and rejected.reason == reason
    assert rejected.envelope_digest == sha256(data)
    await _assert_nothing_accepted(nz)
    [rejection] = await nz.hub.store.views.rejections()
    assert rejection.reason == reason and rejection.digest == sha256(data)
    leaves = await nz.hub.store.trail.query(TrailQuery(kinds=("rejected",)))
    assert [trail.decode(leaf).reason for _, leaf in leaves] == [reason]


async def test_a_raw_document_is_translated_only_after_its_signature_verifies(
    federation: Federation, pki: Path
) -> None:
    """A hostile document with a broken signature is refused for the signature: the
    translator never sees unauthenticated bytes."""
    allow_raw(federation, "NZ", "CN", ["wco-xml"])
    nz = await federation.start("NZ")
    data = raw_envelope(pki, "wco-xml", b"<Declaration><ID>")
    envelope = pb.Envelope.FromString(data)
    envelope.signatures[0].value = bytes(64)
    error = await refused(pki, nz, envelope.SerializeToString())
    assert dict(error.trailing_metadata() or ())[REASON_KEY] == "signature-invalid"
    await _assert_nothing_accepted(nz)


async def test_a_translator_that_crashes_gives_a_signed_rejection(
    federation: Federation, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a translator (ours or a plugin's) on hostile input is a refusal with a reason
    and a signed receipt, recorded, never an internal error."""
    allow_raw(federation, "NZ", "CN", ["wco-xml"])
    nz = await federation.start("NZ")

    class Broken:
        format_id, media_type, description = "wco-xml", "application/xml", "a buggy plugin"
        directions = frozenset({"decode"})

        def decode(self, data: bytes, source: str = "document") -> object:
            raise ValueError("a bug")

    monkeypatch.setitem(nz.hub.translators.formats, "wco-xml", Broken())
    data = raw_envelope(pki, "wco-xml", XML)
    error = await refused(pki, nz, data)
    metadata = dict(error.trailing_metadata() or ())
    assert metadata[REASON_KEY] == "translation-failed"
    assert "a bug" not in (error.details() or "")  # what it says stays ours
    await _assert_nothing_accepted(nz)
    assert [r.reason for r in await nz.hub.store.views.rejections()] == ["translation-failed"]


async def test_a_resent_document_keeps_its_receipt_after_its_format_is_withdrawn(
    federation: Federation, pki: Path
) -> None:
    """What was accepted stays accepted: a sender that lost our receipt and resends the very
    same envelope gets the first receipt back, even after the operator withdrew the format;
    a new document in that format is refused."""
    allow_raw(federation, "NZ", "CN", ["wco-xml"])
    nz = await federation.start("NZ")
    data = raw_envelope(pki, "wco-xml", XML)
    client = as_partner(pki, "CN", nz)
    try:
        first = await client.deliver("NZ", data, timeout=10)
    finally:
        await client.close()
    await federation.stop("NZ")
    path = federation.root / "NZ" / "hub.toml"
    path.write_text(
        path.read_text().replace('raw_formats = ["wco-xml"]', 'raw_formats = ["edifact"]')
    )
    federation.configs["NZ"] = load_config(path)
    nz = await federation.start("NZ")
    client = as_partner(pki, "CN", nz)
    try:
        again = await client.deliver("NZ", data, timeout=10)
    finally:
        await client.close()
    assert again == first
    assert await nz.hub.store.views.rejections() == []
    error = await refused(pki, nz, raw_envelope(pki, "wco-xml", XML))
    assert dict(error.trailing_metadata() or ())[REASON_KEY] == "format-not-allowed"
    assert len(await nz.hub.store.views.inbound()) == 1


async def test_partner_documents_are_translated_off_the_loop_and_answered_in_order(
    federation: Federation, pki: Path
) -> None:
    """A frame mixing protobuf bodies, an allowed partner document and one in a format CN may
    not use: each answered in its place; the document translated on a worker thread (a
    partner's document is never the event loop's work), the refusal without translating."""
    from tests.adversarial.conditions import aeo_envelope
    from tests.test_translation import translated_where

    allow_raw(federation, "NZ", "CN", ["wco-xml"])
    nz = await federation.start("NZ")
    where = translated_where(nz.hub.translation)
    frame = [
        aeo_envelope(pki, "CN", "CNAEO1"),
        raw_envelope(pki, "wco-xml", DECLARATION.read_bytes()),
        raw_envelope(pki, "aeo-csv", b"id\n"),
        aeo_envelope(pki, "CN", "CNAEO2"),
    ]
    client = as_partner(pki, "CN", nz)
    try:
        receipts = await client.exchange("NZ", frame, timeout=10)
    finally:
        await client.close()
    outcomes = [verify_receipt(r, "NZ", nz_signing_key(pki)).outcome for r in receipts]
    accepted, rejected = pb.RECEIPT_OUTCOME_ACCEPTED, pb.RECEIPT_OUTCOME_REJECTED
    assert outcomes == [accepted, accepted, rejected, accepted]
    assert [(f, name.startswith("hub-NZ-work")) for f, name in where] == [("wco-xml", True)]
    kinds = [m.body_type for m in await nz.hub.store.views.inbound()]
    assert sorted(kinds) == sorted(
        ["customs_hub.v1.AeoStatus"] * 2 + ["customs_hub.v1.GoodsDeclaration"]
    )
    assert [r.reason for r in await nz.hub.store.views.rejections()] == ["format-not-allowed"]
