"""The trail: leaf encoding, leaves written with the data they describe, and a tree that
recomputes from the stored leaves alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.config import load_config
from hub.core.envelope import verify_receipt
from hub.core.errors import StoreError
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.store.db import Store
from hub.store.schema import InboundRow, Incoming, Rejection, node_key
from hub.trail import checkpoint, merkle
from hub.trail import events as trail
from tests.conftest import Federation
from tests.test_delivery import aeo_requests, drained, submit_batch
from tests.test_exchange import eventually, nz_signing_key
from tests.test_store import accept, inbound, outbound

AT = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)


def test_a_leaf_is_the_event_serialised_once_and_parses_back() -> None:
    event = trail.Event(
        "received",
        AT,
        message_id="0193f0a8-6c1e-7cc0-8a1e-2b5c6d7e8f90",
        sender="CN",
        body_type="customs_hub.v1.AeoStatus",
        envelope_digest=b"\x01" * 32,
        keys={"tin": ["CN9"], "aeo": ["CNAEO1", "CNAEO2"]},
        revision=7,
    )
    leaf = trail.encode(event)
    assert leaf.hash == merkle.leaf_hash(leaf.data)
    assert trail.encode(event).data == leaf.data  # the same event, the same bytes
    parsed = trail.decode(leaf.data)
    assert (parsed.kind, parsed.sender, parsed.revision) == ("received", "CN", 7)
    assert parsed.at.ToDatetime(UTC) == AT
    # keys sorted by name, each name's values in their order
    assert [(k.name, k.value) for k in parsed.keys] == [
        ("aeo", "CNAEO1"),
        ("aeo", "CNAEO2"),
        ("tin", "CN9"),
    ]


def test_unknown_kinds_and_foreign_bytes_are_refused() -> None:
    with pytest.raises(trail.TrailError):
        trail.encode(trail.Event("deleted", AT))
    with pytest.raises(trail.TrailError):
        trail.decode(b"\xff\xff\xff")
    with pytest.raises(trail.TrailError):
        trail.decode(trail.encode(trail.Event("queued", AT)).data.replace(b"queued", b"qveued"))


async def recomputed(store: Store) -> tuple[int, bytes]:
    """The trail's size and root as the store serves it, checked against the root recomputed
    from nothing but the stored leaf bytes."""
    size = await store.trail.size()
    leaves = await store.trail.leaves()
    assert len(leaves) == size
    root = merkle.root([merkle.leaf_hash(leaf) for leaf in leaves])
    assert await store.trail.root(size) == root
    return size, root


async def test_every_stored_event_has_its_leaf_in_the_same_transaction(store_url: str) -> None:
    store = Store(store_url)
    try:
        await store.prepare(create=True)
        indexes: list[int] = []

        def sign(rows: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
            indexes.extend(row.trail_index for row in rows)
            return [b"r"] * len(rows)

        await accept(store, [inbound("m1"), inbound("m2")], sign)
        await accept(store, [inbound("m2"), inbound("m3")], sign)  # m2 again: a duplicate
        await store.outbox.enqueue([outbound("o1"), outbound("o2", "SG")])
        await store.inbound.record_rejections(
            [Rejection(at=AT, source="NZ", reason="signature-invalid", digest=b"d" * 32)]
        )
        kinds = [trail.decode(leaf) for leaf in await store.trail.leaves()]
        assert [(k.kind, k.message_id or k.reason) for k in kinds] == [
            ("received", "m1"),
            ("received", "m2"),
            ("received", "m3"),
            ("duplicate", "m2"),
            ("queued", "o1"),
            ("queued", "o2"),
            ("rejected", "signature-invalid"),
        ]
        # the index each receipt was signed with is its message's "received" leaf
        assert indexes == [0, 1, 2]
        size, root = await recomputed(store)
        for index, leaf in enumerate(await store.trail.leaves()):
            proof = await store.trail.inclusion(index, size)
            assert merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, proof, root)
        old_root = merkle.root([merkle.leaf_hash(x) for x in (await store.trail.leaves())[:3]])
        proof = await store.trail.consistency(3, size)
        assert merkle.verify_consistency(3, size, old_root, root, proof)
    finally:
        await store.close()


async def test_a_failed_transaction_leaves_no_leaf(tmp_path: Path) -> None:
    """A leaf is never written without what it describes, nor the other way round."""
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    try:
        await store.prepare(create=True)
        await accept(store, [inbound("m1")], lambda rows, head: [b"r"] * len(rows))

        def failing_signer(rows: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
            raise RuntimeError("the signer is down")

        with pytest.raises(RuntimeError):
            await store.inbound.accept([Incoming(inbound("m2"))], failing_signer)
        assert await store.trail.size() == 1
        assert [m.message_id for m in await store.views.inbound()] == ["m1"]
        await recomputed(store)
    finally:
        await store.close()


async def test_both_hubs_log_the_exchange_and_receipts_name_the_receivers_leaf(
    federation: Federation, pki: Path
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    sent = await submit_batch(cn, aeo_requests(40))
    await eventually(lambda: drained(cn), timeout=60)
    nz_leaves = [trail.decode(leaf) for leaf in await nz.hub.store.trail.leaves()]
    keys = nz_signing_key(pki)
    for message, record in await cn.hub.store.views.outbound():
        assert record is not None
        receipt = verify_receipt(pb.SignedReceipt.FromString(record.signed_receipt), "NZ", keys)
        logged = nz_leaves[receipt.trail_index]
        assert (logged.kind, logged.message_id) == ("received", message.message_id)
        assert logged.envelope_digest == message.envelope_digest
        assert logged.sender == "CN"
    cn_leaves = [trail.decode(leaf) for leaf in await cn.hub.store.trail.leaves()]
    for message_id in sent:
        kinds = [leaf.kind for leaf in cn_leaves if leaf.message_id == message_id]
        assert kinds == ["queued", "delivered"]
    await recomputed(cn.hub.store)
    await recomputed(nz.hub.store)
    # stopping signs a last checkpoint over everything, verifiable with the published key
    url = nz.config.store_url
    await federation.stop("NZ")
    store = Store(url)
    try:
        size, root = await recomputed(store)
        last = (await store.trail.checkpoints())[-1]
        verifier = checkpoint.parse_verifier((pki / "NZ" / "trail.vkey").read_text())
        assert checkpoint.open_note(last.note, verifier) == checkpoint.Checkpoint(
            "customs-hub/NZ", size, root
        )
    finally:
        await store.close()


async def test_failures_and_expiry_are_logged(store_url: str) -> None:
    store = Store(store_url)
    try:
        await store.prepare(create=True)
        message = outbound("o1")
        message.expires_at = datetime.now(UTC) + timedelta(days=1)
        await store.outbox.enqueue([message])
        [due] = await store.outbox.due(datetime.now(UTC) + timedelta(seconds=1), 10)
        await store.outbox.record_failure([due.entry_id], "UNAVAILABLE: connection refused", None)
        await store.outbox.expire(datetime.now(UTC) + timedelta(days=2))
        logged = [trail.decode(leaf) for leaf in await store.trail.leaves()]
        assert [(e.kind, e.message_id) for e in logged] == [
            ("queued", "o1"),
            ("delivery-failed", "o1"),
            ("dead-lettered", "o1"),
        ]
        assert logged[1].detail == "UNAVAILABLE: connection refused"
        assert logged[2].reason == "expired"
        await recomputed(store)
    finally:
        await store.close()


def queued(n: int, start: int = 0) -> list[trail.Event]:
    return [
        trail.Event("queued", AT, message_id=f"m{i}", recipient="NZ")
        for i in range(start, start + n)
    ]


async def test_checkpoints_are_signed_only_when_consistent_with_the_last(store_url: str) -> None:
    store = Store(store_url)
    private = ed25519.Ed25519PrivateKey.generate()
    key = checkpoint.NoteKey("customs-hub-CN", private.public_key(), private)
    verifier = checkpoint.parse_verifier(key.verifier())

    def sign(size: int, root: bytes) -> bytes:
        return checkpoint.sign(checkpoint.Checkpoint("customs-hub/CN", size, root), key)

    try:
        await store.prepare(create=True)
        await store.db.transaction(lambda c: store.trail.append_in(c, queued(4)))
        first = await store.trail.sign_checkpoint(sign)
        assert first is not None and first.size == 4
        assert checkpoint.open_note(first.note, verifier) == checkpoint.Checkpoint(
            "customs-hub/CN", 4, (await recomputed(store))[1]
        )
        assert await store.trail.sign_checkpoint(sign) is None  # nothing new, nothing signed
        await store.db.transaction(lambda c: store.trail.append_in(c, queued(3, 4)))
        second = await store.trail.sign_checkpoint(sign)
        assert second is not None and second.size == 7
        # someone rewrites history under the first checkpoint (the subtree of leaves 0-3) ...
        await store.db.transaction(
            lambda c: c.conn.exec_driver_sql(
                "UPDATE trail_node SET hash = ? WHERE key = ?"
                if store.db.is_sqlite
                else "UPDATE trail_node SET hash = $1 WHERE key = $2",
                (b"\x00" * 32, node_key(2, 0)),
            )
        )
        await store.db.transaction(lambda c: store.trail.append_in(c, queued(1, 7)))
        # ... and the hub refuses to sign a root that does not extend what it signed
        with pytest.raises(StoreError, match="not consistent"):
            await store.trail.sign_checkpoint(sign)
        assert [c.size for c in await store.trail.checkpoints()] == [4, 7]
    finally:
        await store.close()


async def test_acknowledged_messages_are_logged_as_handed_over_once(store_url: str) -> None:
    store = Store(store_url)
    try:
        await store.prepare(create=True)
        await accept(store, [inbound(f"m{i}") for i in range(4)], lambda r, head: [b"r"] * len(r))
        assert await store.inbound.acknowledge("customs-risk-engine", 2) == 2
        assert await store.inbound.acknowledge("customs-risk-engine", 1) == 2  # never back
        assert (
            await store.inbound.acknowledge("customs-risk-engine", 99) == 4
        )  # never past the newest
        assert await store.inbound.acknowledge("customs-risk-engine", 4) == 4  # again: nothing new
        handed = [
            (e.message_id, e.recipient, e.sender)
            for e in map(trail.decode, await store.trail.leaves())
            if e.kind == "handed-over"
        ]
        assert handed == [(f"m{i}", "customs-risk-engine", "CN") for i in range(4)]
        await recomputed(store)
    finally:
        await store.close()


async def test_a_start_with_another_configuration_is_logged(federation: Federation) -> None:
    async def changes() -> list[bytes]:
        store = Store(federation.configs["NZ"].store_url)
        try:
            leaves = map(trail.decode, await store.trail.leaves())
            return [e.config_digest for e in leaves if e.kind == "config-changed"]
        finally:
            await store.close()

    await federation.start("NZ")
    await federation.stop("NZ")
    await federation.start("NZ")  # the same configuration: nothing new
    await federation.stop("NZ")
    assert len(await changes()) == 1
    path = federation.configs["NZ"].path
    path.write_text(
        path.read_text().replace("checkpoint_entries = 1000", "checkpoint_entries = 500")
    )
    federation.configs["NZ"] = load_config(path)
    await federation.start("NZ")
    await federation.stop("NZ")
    first, second = await changes()
    assert first != second and len(second) == 32
