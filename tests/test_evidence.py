"""Evidence kept (issue 17): every inbound envelope is stored exactly as received, signatures
included, and `trail verify --messages` checks, offline, that every exported message is the
one its trail leaf names and that its sender signed it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.cli.demo import sample_aeo_status, sample_declaration
from hub.cli.main import main
from hub.core.envelope import sha256
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.runtime import RunningHub
from hub.store.db import Store
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
