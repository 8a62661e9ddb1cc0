"""Evidence kept (issue 17): every inbound envelope is stored exactly as received, signatures
included, and `trail verify --messages` checks, offline, that every exported message is the
one its trail leaf names and that its sender signed it."""

from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from hub.cli.demo import sample_aeo_status, sample_declaration
from hub.cli.main import main
from hub.core.envelope import build_envelope, sha256
from hub.core.signing import Signer
from hub.core.trust import party_uri
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.runtime import RunningHub
from hub.store.db import Store
from hub.trail import events as trail
from hub.trail.messages import (
    INBOUND,
    MessageRecord,
    PartyCertificates,
    encode_message,
    read_messages,
    verify_messages,
)
from hub.trail.verify import ExportError
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


async def cli(argv: list[str]) -> int:
    """The command line, as an operator runs it (its own event loop, on a thread here)."""
    return await asyncio.to_thread(main, argv)


async def sql(url: str, statement: str, **params: object) -> None:
    """Change the stored rows behind the hub's back, as someone with the database could."""
    store = Store(url)
    try:
        async with store.db.engine.begin() as conn:
            await conn.execute(text(statement), params)
    finally:
        await store.close()


async def export_and_verify(
    federation: Federation, party: str, folder: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """`trail export` then `trail verify --messages` of ``party``'s stopped hub."""
    toml = str(federation.configs[party].path)
    capsys.readouterr()
    assert await cli(["trail", "export", "--config", toml, "-o", str(folder)]) == 0
    assert "messages to" in capsys.readouterr().out
    vkey = str(federation.pki / party / "trail.vkey")
    code = await cli(["trail", "verify", str(folder), "--key", vkey, "--messages"])
    return code, capsys.readouterr().out


async def leaf_index(url: str, kind: str, message_id: str) -> int:
    store = Store(url)
    try:
        for i, leaf in enumerate(await store.trail.leaves()):
            event = trail.decode(leaf)
            if (event.kind, event.message_id) == (kind, message_id):
                return i
    finally:
        await store.close()
    raise AssertionError(f"no {kind} leaf for {message_id}")


async def test_exported_messages_verify_and_an_edited_body_is_named(
    federation: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cn, nz = await exchanged(federation)
    await submit(cn, spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["NZ"]))

    async def two() -> bool:
        return (
            len(await nz.hub.store.views.inbound()) == 2 and not await cn.hub.store.views.outbox()
        )

    await eventually(two)
    first, second = await nz.hub.store.views.inbound()
    await federation.stop_all()  # a stopping hub signs a checkpoint of all it recorded
    nz_url = federation.configs["NZ"].store_url

    # untouched: every message, in and out, matches its leaf and its sender's signature
    for party, count in (("NZ", 3), ("CN", 3)):
        code, out = await export_and_verify(federation, party, tmp_path / f"{party}-ok", capsys)
        assert code == 0, out
        assert f"OK: {count} messages match their leaves" in out
    exported = tmp_path / "NZ-ok"
    assert sorted(p.name for p in (exported / "certificates").iterdir()) == ["CN", "NZ", "SG"]

    # a body edited after the fact: the message and its leaf's index are named
    index = await leaf_index(nz_url, "received", first.message_id)
    edited = first.body.replace(b"GB", b"XX") if b"GB" in first.body else first.body + b"\x00"
    await sql(nz_url, "UPDATE inbound_message SET body = :b WHERE id = :i", b=edited, i=first.id)
    code, out = await export_and_verify(federation, "NZ", tmp_path / "NZ-body", capsys)
    assert code == 1
    assert (
        f"BAD message {first.message_id} from CN (index {index}): the stored body is not the "
        "body the sender signed"
    ) in out
    # the trail alone still verifies: it never held the body
    assert out.startswith("OK: ")
    await sql(
        nz_url, "UPDATE inbound_message SET body = :b WHERE id = :i", b=first.body, i=first.id
    )

    # the envelope replaced by other bytes (the same message signed again, say)
    assert first.envelope is not None
    await sql(
        nz_url,
        "UPDATE inbound_message SET envelope = :e WHERE id = :i",
        e=first.envelope + b"\x1a\x00",  # an empty signature appended: still an Envelope
        i=first.id,
    )
    code, out = await export_and_verify(federation, "NZ", tmp_path / "NZ-envelope", capsys)
    assert code == 1
    assert (
        f"BAD message {first.message_id} from CN (index {index}): its envelope does not hash" in out
    )

    # the envelope removed from a row after the first one kept, or the row itself
    await sql(
        nz_url,
        "UPDATE inbound_message SET envelope = :e WHERE id = :i",
        e=first.envelope,
        i=first.id,
    )
    later = await leaf_index(nz_url, "received", second.message_id)
    await sql(nz_url, "UPDATE inbound_message SET envelope = NULL WHERE id = :i", i=second.id)
    code, out = await export_and_verify(federation, "NZ", tmp_path / "NZ-null", capsys)
    assert code == 1
    assert (
        f"BAD message {second.message_id} from CN (index {later}): the export does not hold "
        "its envelope"
    ) in out
    await sql(nz_url, "DELETE FROM inbound_message WHERE id = :i", i=second.id)
    code, out = await export_and_verify(federation, "NZ", tmp_path / "NZ-deleted", capsys)
    assert code == 1
    assert f"BAD message {second.message_id} from CN (index {later})" in out


# --- the checks themselves, offline (hub/trail/messages.py) ----------------------------------

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _ca(party: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{party} customs CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 400 * DAY)
        .not_valid_after(NOW + 400 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _signing(
    party: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], start: datetime,
    end: datetime,
) -> tuple[x509.Certificate, Signer]:  # fmt: skip
    private = ed25519.Ed25519PrivateKey.generate()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{party} signing")]))
        .issuer_name(ca[0].subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(party_uri(party))]),
            critical=False,
        )
        .add_extension(SIGNING_USAGE, critical=True)  # the signing profile (ADR 0008)
        .sign(ca[1], hashes.SHA256())
    )
    return cert, Signer.from_private_key(private)


SIGNING_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


@dataclass
class Case:
    """One message to check: how it is made, stored and recorded, and what the check says."""

    signed_from: timedelta = -DAY  # the signing certificate's validity, around NOW
    signed_until: timedelta = DAY
    other_anchor: bool = False  # the certificate is issued by another party's anchor
    stored_header: bytes | None = None  # what the row holds, if not the signed header
    leaf: bool = True  # a "received" leaf records it
    covered: bool = True  # a checkpoint covers that leaf
    expect: str = ""  # a problem's text; "" for OK


CASES = {
    "valid": Case(),
    "certificate expired before the message": Case(signed_from=-30 * DAY, signed_until=-DAY),
    "certificate not yet valid": Case(signed_from=DAY, signed_until=30 * DAY),
    "certificate of another anchor": Case(other_anchor=True, expect="no signing certificate"),
    "stored header edited": Case(stored_header=b"\x0a\x00", expect="the stored header is not"),
    "no leaf": Case(leaf=False, expect="no received leaf of the trail names it"),
    "leaf after the latest checkpoint": Case(covered=False),
}
CASES["certificate expired before the message"].expect = "valid at 2026-12-07T12:00:00Z"
CASES["certificate not yet valid"].expect = "valid at 2026-12-07T12:00:00Z"


@pytest.mark.parametrize("name", CASES)
def test_a_message_is_checked_against_its_leaf_and_its_certificate(name: str) -> None:
    case = CASES[name]
    anchors = {"CN": _ca("CN"), "SG": _ca("SG")}
    issuer = anchors["SG" if case.other_anchor else "CN"]
    cert, signer = _signing("CN", issuer, NOW + case.signed_from, NOW + case.signed_until)
    envelope, header = build_envelope(
        signer,
        sender="CN",
        recipient="NZ",
        document=sample_declaration(),
        created_at=NOW,
        ttl=DAY,
    )
    opened = pb.Envelope.FromString(envelope)
    record = MessageRecord(
        INBOUND,
        "CN",
        header.message_id,
        envelope,
        case.stored_header if case.stored_header is not None else opened.header,
        opened.body,
    )
    leaves = {(INBOUND, "CN", header.message_id): [(3, sha256(envelope))]} if case.leaf else {}
    certificates = {"CN": PartyCertificates(anchors["CN"][0], [cert])}
    report = verify_messages([record], leaves, 4 if case.covered else 3, certificates)
    if not case.expect:
        assert report.ok, report.summary()
        assert (report.checked, report.uncovered) == ((1, 0) if case.covered else (0, 1))
        return
    assert not report.ok
    [problem] = report.problems
    assert case.expect in problem.problem
    assert problem.message_id == header.message_id
    assert problem.index == (3 if case.leaf else None)
    assert report.summary().splitlines()[-1].startswith("BAD: 1 messages failed")


def test_messages_stored_before_envelopes_were_kept_are_counted_not_failed() -> None:
    """Rows from before store revision 0003 have no envelope: nothing signed to check. After
    the first message kept, a missing envelope is a fault."""
    ca = _ca("CN")
    cert, signer = _signing("CN", ca, NOW - DAY, NOW + DAY)
    made = [
        build_envelope(
            signer,
            sender="CN",
            recipient="NZ",
            document=sample_declaration(),
            created_at=NOW,
            ttl=DAY,
        )
        for _ in range(4)
    ]
    leaves = {
        (INBOUND, "CN", header.message_id): [(i, sha256(envelope))]
        for i, (envelope, header) in enumerate(made)
    }

    def stored(i: int, kept: bool) -> MessageRecord:
        envelope, header = made[i]
        opened = pb.Envelope.FromString(envelope)
        return MessageRecord(
            INBOUND, "CN", header.message_id, envelope if kept else b"", opened.header,
            opened.body,
        )  # fmt: skip

    certificates = {"CN": PartyCertificates(ca[0], [cert])}
    rows = [stored(0, False), stored(1, False), stored(2, True), stored(3, True)]
    report = verify_messages(rows, leaves, 4, certificates)
    assert report.ok and (report.checked, report.not_kept) == (2, 2)
    assert "2 received before envelopes were kept" in report.summary()
    rows[3] = stored(3, False)
    report = verify_messages(rows, leaves, 4, certificates)
    assert not report.ok
    assert [(p.index, p.message_id) for p in report.problems] == [(3, made[3][1].message_id)]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=512))
def test_any_bytes_as_messages_parse_or_raise_export_error(data: bytes) -> None:
    good = encode_message(MessageRecord(INBOUND, "CN", "m", b"envelope", b"h", b"b"))
    for blob in (data, good + data, good[: len(data) % len(good)]):
        with contextlib.suppress(ExportError):  # anything else fails the test
            list(read_messages(io.BytesIO(blob)))


async def test_an_auditor_proves_a_message_and_checks_its_bytes_and_signature(
    federation: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`trail prove --certs`: the entries proven, then the stored message (GetMessage, which
    now gives inbound envelopes too) checked against them."""
    _, nz = await exchanged(federation)
    [row] = await nz.hub.store.views.inbound()
    [stored] = await nz.hub.store.views.stored_messages(row.message_id)
    assert stored.envelope == row.envelope  # what auditors reading messages get
    await federation.stop_all()
    toml = str(federation.configs["NZ"].path)
    export = tmp_path / "export"
    assert await cli(["trail", "export", "--config", toml, "-o", str(export)]) == 0
    prove = ["trail", "prove", "--config", toml, "--message-id", row.message_id]
    capsys.readouterr()
    assert await cli([*prove, "--certs", str(export)]) == 0
    out = capsys.readouterr().out
    assert "OK: 1 messages match their leaves" in out
    await sql(
        federation.configs["NZ"].store_url,
        "UPDATE inbound_message SET body = :b WHERE id = :i",
        b=row.body + b"\x00",
        i=row.id,
    )
    assert await cli([*prove, "--certs", str(export / "certificates")]) == 1
    assert "the stored body is not the body the sender signed" in capsys.readouterr().out
    assert await cli(prove) == 0  # the trail alone cannot tell
