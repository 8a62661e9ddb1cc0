"""The registry (hub/store/registry.py): AEO statuses and control results written with the
message that carried each, newest revision current, every revision in the history; looked up
by AEO id, TIN, MRN, LRN, container and transport document, now or as of a past time; our
own AEO statuses written when a domestic system submits them. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.app.hub import Hub
from hub.cli.demo import sample_aeo_status, sample_control_result
from hub.config import load_config, render_config
from hub.core.errors import StoreDataError
from hub.core.messages import AeoStatus, ControlResult
from hub.core.registry import AeoRecord, aeo_record, control_record
from hub.core.revisions import StateRef, control_key
from hub.pb.customs_hub.v1 import aeo_pb2, control_pb2
from hub.store.db import Store
from hub.store.schema import (
    AEO_REGISTRY,
    AEO_REGISTRY_HISTORY,
    CONTROL_REGISTRY_HISTORY,
    INBOUND,
    TRAIL,
    InboundRow,
    Incoming,
)
from tests.conftest import Federation

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def status(aeo_id: str, revision: int, *, tin: str = "NZ9429041234567", issuer: str = "NZ") -> Any:
    document = sample_aeo_status(issuer, aeo_id)
    document.revision = revision
    document.tin = tin
    return document


def incoming(document: Any, sender: str, message_id: str, at: datetime) -> Incoming:
    row = InboundRow(
        message_id=message_id,
        sender=sender,
        body_type=document.DESCRIPTOR.full_name,
        body=document.SerializeToString(),
        envelope_digest=message_id.encode().ljust(32, b"-"),
        received_at=at,
    )
    if isinstance(document, AeoStatus):
        state = StateRef(sender, "aeo", document.aeo_id, document.revision)
        return Incoming(row, state, aeo_record(document, message_id, 0, at))
    assert isinstance(document, ControlResult)
    state = StateRef(sender, "control", control_key(document), document.revision)
    return Incoming(row, state, control_record(document, sender, message_id, 0, at))


def signer(rows: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
    return [b"receipt-" + r.message_id.encode() for r in rows]


async def new_store(url: str) -> Store:
    store = Store(url)
    await store.prepare(create=True)
    return store


async def count(store: Store, table: Any) -> int:
    async with store.db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar() or 0)


async def integrity_holds(store: Store) -> None:
    """SQLite's integrity check, as every backup runs it, finds nothing (its 3.40 misread
    WITHOUT ROWID tables whose key columns were not their leading ones)."""
    path = store.db.sqlite_file
    if path is not None:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


async def leaf_kind(store: Store, index: int) -> tuple[str, str]:
    async with store.db.engine.connect() as conn:
        row = (
            await conn.execute(select(TRAIL.c.kind, TRAIL.c.message_id).where(TRAIL.c.idx == index))
        ).one()
    return row.kind, row.message_id


async def test_the_newest_revision_is_current_and_a_late_older_one_goes_to_history(
    store_url: str,
) -> None:
    store = await new_store(store_url)
    try:
        await store.inbound.accept([incoming(status("A1", 2), "NZ", "m2", T0)], signer)
        # revision 1 comes late, alone, then 1 and 3 in one commit, 3 first
        late = incoming(status("A1", 1), "NZ", "m1", T0 + timedelta(minutes=1))
        await store.inbound.accept([late], signer)
        [now] = await store.registry.operators(aeo_ids=["A1"])
        assert (now.revision, now.message_id) == (2, "m2")
        await store.inbound.accept(
            [
                incoming(status("A1", 3), "NZ", "m3", T0 + timedelta(minutes=2)),
                incoming(status("A1", 1), "NZ", "m1b", T0 + timedelta(minutes=2)),
            ],
            signer,
        )
        [now] = await store.registry.operators(aeo_ids=["A1"])
        assert (now.revision, now.message_id) == (3, "m3")
        assert now.party == "NZ" and now.programme == "security-safety" and now.status == "valid"
        assert AeoStatus.FromString(now.document).revision == 3
        # the record names the "received" leaf of its message
        assert await leaf_kind(store, now.trail_index) == ("received", "m3")
        assert await count(store, AEO_REGISTRY_HISTORY) == 4
        assert await count(store, AEO_REGISTRY) == 1
        assert await store.registry.revisions("NZ") == [("A1", 3)]
        await integrity_holds(store)
    finally:
        await store.close()


async def test_as_of_answers_the_highest_revision_received_by_then(store_url: str) -> None:
    store = await new_store(store_url)
    try:
        first = status("A1", 1, tin="TIN-OLD")
        second = status("A1", 2, tin="TIN-NEW")
        second.status = aeo_pb2.AEO_STANDING_SUSPENDED
        await store.inbound.accept([incoming(first, "NZ", "m1", T0)], signer)
        await store.inbound.accept([incoming(second, "NZ", "m2", T0 + timedelta(days=2))], signer)
        # revision 1 received again later (a resend under another id) changes nothing
        again = incoming(status("A1", 1, tin="TIN-OLD"), "NZ", "m1x", T0 + timedelta(days=3))
        await store.inbound.accept([again], signer)
        reg = store.registry
        assert await reg.operators(aeo_ids=["A1"], as_of=T0 - timedelta(seconds=1)) == []
        [then] = await reg.operators(aeo_ids=["A1"], as_of=T0 + timedelta(days=1))
        assert (then.revision, then.status, then.tin) == (1, "valid", "TIN-OLD")
        assert then.received_at == T0
        [later] = await reg.operators(aeo_ids=["A1"], as_of=T0 + timedelta(days=4))
        assert (later.revision, later.status) == (2, "suspended")
        # by TIN: the old one found it then, not now; the new one now, not then
        assert [r.revision for r in await reg.operators(tins=["TIN-OLD"], as_of=T0)] == [1]
        assert await reg.operators(tins=["TIN-OLD"]) == []
        assert await reg.operators(tins=["TIN-OLD"], as_of=T0 + timedelta(days=4)) == []
        assert [r.revision for r in await reg.operators(tins=["TIN-NEW"])] == [2]
        assert await reg.operators(tins=["TIN-NEW"], as_of=T0 + timedelta(days=1)) == []
    finally:
        await store.close()


async def test_operators_are_found_by_id_and_tin_across_parties(store_url: str) -> None:
    store = await new_store(store_url)
    try:
        batch = [
            incoming(status("NZ-1", 1, tin="T1"), "NZ", "n1", T0),
            incoming(status("NZ-2", 5, tin="T2"), "NZ", "n2", T0),
            incoming(status("SG-1", 7, tin="T1", issuer="SG"), "SG", "s1", T0),
            incoming(status("SHARED", 1, tin="T9"), "NZ", "n3", T0),
            incoming(status("SHARED", 2, tin="T9", issuer="SG"), "SG", "s2", T0),
        ]
        await store.inbound.accept(batch, signer)
        reg = store.registry
        by_tin = await reg.operators(tins=["T1"])
        assert [(r.party, r.aeo_id) for r in by_tin] == [("NZ", "NZ-1"), ("SG", "SG-1")]
        shared = await reg.operators(aeo_ids=["SHARED", "nobody"])
        assert [(r.party, r.revision) for r in shared] == [("NZ", 1), ("SG", 2)]
        both = await reg.operators(aeo_ids=["NZ-2"], tins=["T1", "T2"])
        assert [r.aeo_id for r in both] == ["NZ-1", "NZ-2", "SG-1"]
        # a batch larger than one statement's IN list
        many = [f"X{i}" for i in range(1200)] + ["NZ-1"]
        assert [r.aeo_id for r in await reg.operators(aeo_ids=many)] == ["NZ-1"]
        assert [r.aeo_id for r in await reg.issued("NZ", ["SHARED", "SG-1", "NZ-2"])] == [
            "NZ-2",
            "SHARED",
        ]
        assert await reg.revisions("NZ") == [("NZ-1", 1), ("NZ-2", 5), ("SHARED", 1)]
        assert await reg.revisions("NZ", "NZ-2") == [("NZ-2", 5), ("SHARED", 1)]
        assert await reg.revisions("NZ", "NZ-1", "NZ-2") == [("NZ-1", 1)]
        assert await reg.revisions("NZ", to_id="NZ-2") == [("NZ-1", 1)]
        assert await reg.revisions("CN") == []
    finally:
        await store.close()


def control(revision: int, containers: list[str], **fields: str) -> ControlResult:
    result: ControlResult = sample_control_result()
    result.revision = revision
    del result.container_ids[:]
    result.container_ids.extend(containers)
    for name, value in fields.items():
        setattr(result, name, value)
    return result


async def test_control_results_are_found_by_mrn_lrn_container_and_transport_document(
    store_url: str,
) -> None:
    store = await new_store(store_url)
    try:
        first = control(1, ["MSKU1", "MSKU2"], declaration_id="MRN1", transport_document_id="BL1")
        await store.inbound.accept([incoming(first, "SG", "c1", T0)], signer)
        reg = store.registry
        [found] = await reg.controls(mrns=["MRN1"])
        key = f"control:{first.control_id}"
        assert (found.party, found.key, found.revision) == ("SG", key, 1)
        assert found.container_ids == ("MSKU1", "MSKU2")
        assert (found.control_type, found.outcome, found.stage) == (
            "physical",
            "no-findings",
            "unspecified",
        )
        assert await leaf_kind(store, found.trail_index) == ("received", "c1")
        assert [r.key for r in await reg.controls(lrns=["CN2026LRN000417"])] == [key]
        assert [r.key for r in await reg.controls(containers=["MSKU2"])] == [key]
        assert [r.key for r in await reg.controls(transport_documents=[" BL1 "])] == [key]
        assert await reg.controls(containers=["BL1"]) == []  # kinds are not mixed
        # revision 2 drops a container and finds a discrepancy; a late revision 1 changes nothing
        second = control(2, ["MSKU1"], declaration_id="MRN1", transport_document_id="BL1")
        second.outcome = control_pb2.CONTROL_OUTCOME_DISCREPANCY
        await store.inbound.accept(
            [incoming(second, "SG", "c2", T0), incoming(first, "SG", "c1-again", T0)], signer
        )
        assert await reg.controls(containers=["MSKU2"]) == []
        [now] = await reg.controls(containers=["MSKU1"], mrns=["MRN1"])
        assert (now.revision, now.outcome, now.message_id) == (2, "discrepancy", "c2")
        assert await count(store, CONTROL_REGISTRY_HISTORY) == 3
        # another party's result on the same container is found beside it
        other = control(
            1, ["MSKU1"], declaration_id="", functional_reference_id="LRN-X", control_id=""
        )
        await store.inbound.accept([incoming(other, "NZ", "n1", T0)], signer)
        both = await reg.controls(containers=["MSKU1"])
        assert [(r.party, r.key) for r in both] == [("NZ", "lrn:LRN-X"), ("SG", key)]
        await integrity_holds(store)
    finally:
        await store.close()


async def test_each_control_of_a_declaration_is_current_with_its_own_latest_revision(
    store_url: str,
) -> None:
    store = await new_store(store_url)
    try:
        reg = store.registry
        # a documentary check at revision 5, then a physical one at revision 2 that seizes:
        # one declaration, two controls, each current
        documentary = control(5, ["MSKU1"], declaration_id="MRN1", control_id="C-DOCUMENTARY")
        documentary.control_type = control_pb2.CONTROL_TYPE_DOCUMENTARY
        physical = control(2, ["MSKU9"], declaration_id="MRN1", control_id="C-PHYSICAL")
        physical.outcome = control_pb2.CONTROL_OUTCOME_SEIZURE
        await store.inbound.accept([incoming(documentary, "SG", "d5", T0)], signer)
        await store.inbound.accept([incoming(physical, "SG", "p2", T0)], signer)
        found = await reg.controls(mrns=["MRN1"])
        assert [(r.control_id, r.revision) for r in found] == [
            ("C-DOCUMENTARY", 5),
            ("C-PHYSICAL", 2),
        ]
        [seized] = await reg.controls(containers=["MSKU9"])
        assert (seized.control_id, seized.outcome) == ("C-PHYSICAL", "seizure")
        # a control first known by its containers, whose next revision names the MRN: the
        # next revision replaces it, found by both, and the old one is current no more
        early = control(
            1, ["MSKU3"], declaration_id="", functional_reference_id="", control_id="C-X"
        )
        await store.inbound.accept([incoming(early, "SG", "x1", T0)], signer)
        later = control(2, ["MSKU3"], declaration_id="MRN3", control_id="C-X")
        await store.inbound.accept([incoming(later, "SG", "x2", T0)], signer)
        [by_container] = await reg.controls(containers=["MSKU3"])
        [by_mrn] = await reg.controls(mrns=["MRN3"])
        assert by_container == by_mrn and (by_mrn.revision, by_mrn.message_id) == (2, "x2")
        # and a late revision 1 changes nothing
        await store.inbound.accept([incoming(early, "SG", "x1-again", T0)], signer)
        assert [r.message_id for r in await reg.controls(containers=["MSKU3"])] == ["x2"]
        await integrity_holds(store)
    finally:
        await store.close()


async def test_ids_and_references_are_kept_without_their_padding(store_url: str) -> None:
    """Values are stored as business keys and lookups take them: a TIN padded past what its
    column holds is kept stripped, not refused by the store. (How far an AEO id or MRN may be
    padded is bounded by current_state, which keys on them as sent: see the next test.)"""
    store = await new_store(store_url)
    try:
        tin = "NZ" + "7" * 118
        padded = status(" " * 200 + "NZ-PAD" + " " * 200, 1, tin=" " * 500 + tin + " ")
        await store.inbound.accept([incoming(padded, "NZ", "m1", T0)], signer)
        [record] = await store.registry.operators(tins=[tin])
        assert (record.aeo_id, record.tin) == ("NZ-PAD", tin)
        assert await store.registry.operators(aeo_ids=["NZ-PAD"]) == [record]
        result = control(
            1,
            [" MSKU5 ", "MSKU5", "  "],
            declaration_id=" " * 400 + "MRN5",
            functional_reference_id="",
            control_id=" " * 600 + "C-5 ",
            transport_document_id=" BL5",
        )
        await store.inbound.accept([incoming(result, "SG", "c1", T0)], signer)
        [found] = await store.registry.controls(mrns=["MRN5"])
        assert (found.key, found.control_id, found.declaration_id) == ("control:C-5", "C-5", "MRN5")
        assert (found.container_ids, found.transport_document_id) == (("MSKU5",), "BL5")
    finally:
        await store.close()


async def test_a_value_the_database_refuses_is_the_datas_fault_not_the_stores(
    store_url: str,
) -> None:
    """PostgreSQL refuses a value longer than its column (through SQLAlchemy's asyncpg
    adapter's own Error, wrapping asyncpg's StringDataRightTruncationError): that is the
    data's fault (StoreDataError, the message refused alone), not the store being away.
    SQLite keeps it (its lengths are not enforced)."""
    store = await new_store(store_url)
    try:
        long = aeo_record(status("A1", 1, tin="T" * 600), "m1", 0, T0)
        write = store.db.write(lambda tx: store.registry.write_in(tx, [long]))
        if store.db.is_sqlite:
            await write
            assert [r.tin for r in await store.registry.operators(aeo_ids=["A1"])] == ["T" * 600]
        else:
            with pytest.raises(StoreDataError):
                await write
            assert await count(store, AEO_REGISTRY_HISTORY) == 0
    finally:
        await store.close()


async def test_a_message_and_its_registry_rows_are_committed_together_or_not_at_all(
    store_url: str,
) -> None:
    store = await new_store(store_url)
    try:

        def failing(rows: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
            raise RuntimeError("signing failed")

        # a failure after the registry's rows were written: none of them stays
        with pytest.raises(RuntimeError):
            await store.inbound.accept([incoming(status("A1", 1), "NZ", "m1", T0)], failing)
        assert await store.registry.operators(aeo_ids=["A1"]) == []
        assert await count(store, AEO_REGISTRY_HISTORY) == 0
        assert await count(store, INBOUND) == 0
        # the store refusing a registry row (its history already holds that revision at the
        # leaf the message would take): the message is not stored either
        size = await store.trail.size()
        clash = incoming(status("A2", 1), "NZ", "m2", T0)
        planted = aeo_record(status("A2", 1), "planted", size, T0)
        await store.db.write(lambda tx: store.registry.write_in(tx, [planted]))
        with pytest.raises(StoreDataError):
            await store.inbound.accept([clash], signer)
        assert await count(store, INBOUND) == 0
        assert [r.message_id for r in await store.registry.operators(aeo_ids=["A2"])] == ["planted"]
        assert await store.trail.size() == size
    finally:
        await store.close()


def hub_config(tmp_path: Path, pki: Path, store_url: str, routes: str | None = None) -> Path:
    url = store_url.replace("+aiosqlite", "").replace("+asyncpg", "")
    text = render_config(
        party="CN",
        listen="127.0.0.1:0",
        domestic_listen="127.0.0.1:0",
        pki=pki,
        partners={"NZ": "127.0.0.1:1", "SG": "127.0.0.1:1"},
        store=url,
    )
    if routes is not None:
        text = re.sub(r"(?m)^AeoStatus = .*$", f"AeoStatus = {routes}", text)
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("routes", [None, "[]"], ids=["routed", "routed-nowhere"])
async def test_our_own_aeo_status_is_written_when_a_domestic_system_submits_it(
    store_url: str, pki: Path, tmp_path: Path, routes: str | None
) -> None:
    config = load_config(hub_config(tmp_path, pki, store_url, routes))
    store = await new_store(store_url)
    hub = Hub(config, store)
    try:
        document = sample_aeo_status("", "CNAEO1")  # the hub names itself the issuer
        document.revision = 0  # numbered by the hub
        queued = await hub.submission.submit(document)
        assert len(queued) == (2 if routes is None else 0)
        [own] = await store.registry.operators(aeo_ids=["CNAEO1"])
        assert own.party == "CN" and own.revision > 0
        assert own.message_id == (queued[0].message_id if queued else "")
        kind, _ = await leaf_kind(store, own.trail_index)
        assert kind == "routed"
        assert await store.registry.issued("CN", ["CNAEO1"]) == [own]
        # a newer submission replaces it; two in one call keep the higher revision
        newer, older = sample_aeo_status("CN", "CNAEO1"), sample_aeo_status("CN", "CNAEO1")
        newer.revision, older.revision = own.revision + 10, own.revision + 5
        newer.status = aeo_pb2.AEO_STANDING_REVOKED
        from hub.app.submission import Submission

        results = await hub.submission.submit_many([Submission(newer), Submission(older)])
        assert all(isinstance(r, list) for r in results)
        [now] = await store.registry.operators(aeo_ids=["CNAEO1"])
        assert (now.revision, now.status) == (own.revision + 10, "revoked")
        assert (await leaf_kind(store, now.trail_index))[0] == "routed"
        assert await count(store, AEO_REGISTRY_HISTORY) == 3
        # another administration's status is refused, as before, and not registered
        with pytest.raises(Exception, match="issuing administration"):
            await hub.submission.submit(sample_aeo_status("NZ", "NZAEO1"))
        assert await store.registry.operators(aeo_ids=["NZAEO1"]) == []
    finally:
        await hub.close()
        await store.close()


async def test_a_partners_aeo_status_lands_in_the_receivers_registry_with_its_received_leaf(
    federation: Federation,
) -> None:
    from hub.cli.demo import _submit
    from hub.pb.customs_hub.v1 import service_pb2 as spb

    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    document = sample_aeo_status("CN", "CNAEO77")
    document.revision = 9
    [queued] = await _submit(cn, spb.SubmitRequest(aeo_status=document, recipients=["NZ"]))
    deadline = time.monotonic() + 20
    found: list[AeoRecord] = []
    while time.monotonic() < deadline and not found:
        found = await nz.hub.store.registry.operators(aeo_ids=["CNAEO77"])
        await asyncio.sleep(0.05)
    [record] = found
    assert (record.party, record.revision, record.message_id) == ("CN", 9, queued.message_id)
    assert await leaf_kind(nz.hub.store, record.trail_index) == ("received", queued.message_id)
    message = await nz.hub.store.inbound.find("CN", queued.message_id)
    assert message is not None and record.document == AeoStatus.FromString(
        message.body
    ).SerializeToString(deterministic=True)
    # the sender keeps it as its own, with its routed leaf
    [own] = await cn.hub.store.registry.operators(aeo_ids=["CNAEO77"])
    assert own.party == "CN" and own.message_id == queued.message_id
    assert (await leaf_kind(cn.hub.store, own.trail_index))[0] == "routed"


async def test_registry_export_writes_a_partners_current_statuses_as_aeo_csv(
    store_url: str, pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.aeocsv import AeoCsv
    from hub.cli.main import main

    store = await new_store(store_url)
    try:
        first = status("NZ-1", 1, tin="T1")
        revoked = status("NZ-2", 3, tin="T2")
        revoked.status, revoked.reason = aeo_pb2.AEO_STANDING_REVOKED, "no longer compliant"
        batch = [
            incoming(first, "NZ", "n1", T0),
            incoming(status("NZ-1", 2, tin="T1"), "NZ", "n2", T0),
            incoming(revoked, "NZ", "n3", T0),
            incoming(status("SG-1", 1, issuer="SG"), "SG", "s1", T0),
        ]
        await store.inbound.accept(batch, signer)
    finally:
        await store.close()
    config = hub_config(tmp_path, pki, store_url)
    out = tmp_path / "nz.csv"
    argv = ["registry", "export", "--config", str(config), "--partner", "NZ"]
    assert await asyncio.to_thread(main, [*argv, "--to", "aeo-csv", "--output", str(out)]) == 0
    assert "2 AEO status(es) issued by NZ" in capsys.readouterr().err
    items = AeoCsv().decode_all(out.read_bytes())
    read = [item.message for item in items]
    assert [(s.aeo_id, s.revision, s.issuing_administration) for s in read] == [
        ("NZ-1", 2, "NZ"),
        ("NZ-2", 3, "NZ"),
    ]
    assert read[1] == revoked
    # a party that is neither this hub nor a partner is refused, naming the configuration
    bad = ["registry", "export", "--config", str(config), "--partner", "XX", "--to", "aeo-csv"]
    assert await asyncio.to_thread(main, bad) == 2
    assert "neither this hub (CN) nor a partner" in capsys.readouterr().err


async def test_a_partners_padded_ids_do_not_take_another_partners_message_with_them(
    federation: Federation, pki: Path
) -> None:
    """NZ's AEO statuses with padded ids, sent while SG sends a control result: NZ's are kept
    stripped, or (an AEO id padded past what current_state keys hold, on PostgreSQL) refused
    alone with a signed REJECTED receipt; SG's is accepted either way, never UNAVAILABLE."""
    import grpc
    from cryptography import x509

    from hub.core.envelope import verify_receipt
    from hub.core.errors import REASON_KEY
    from hub.core.trust import verification_key_of
    from hub.pb.customs_hub.v1 import envelope_pb2 as pb
    from hub.rpc.status import RECEIPT_KEY
    from tests.test_exchange import as_partner, signed_envelope

    cn = await federation.start("CN")
    cert = x509.load_pem_x509_certificate((pki / "CN" / "signing.pem").read_bytes())
    cn_key = verification_key_of(cert, "CN")
    tin = "NZ" + "7" * 118
    stripped = status(" " * 200 + "NZ-PAD", 3, tin=" " * 500 + tin)
    overlong = status(" " * 600 + "NZ-LONG", 1, tin=" " * 500 + tin)
    result = control(4, ["MSKU8"], declaration_id="MRN8", control_id="C-8")

    async def send(party: str, document: Any) -> tuple[pb.Receipt, str]:
        data, header = signed_envelope(pki, party, sender=party, recipient="CN", document=document)
        client = as_partner(pki, party, cn)
        refusal: grpc.aio.AioRpcError | None = None
        try:
            signed = await client.deliver("CN", data, timeout=10)
        except grpc.aio.AioRpcError as error:
            refusal = error
        finally:
            await client.close()
        if refusal is not None:  # refused for its data, with a receipt; never UNAVAILABLE
            metadata = dict(refusal.trailing_metadata() or ())
            assert refusal.code() != grpc.StatusCode.UNAVAILABLE, refusal.details()
            assert metadata[REASON_KEY] == "store-data-refused"
            signed = pb.SignedReceipt.FromString(metadata[RECEIPT_KEY])
        return verify_receipt(signed, "CN", {cn_key.key_id: cn_key}), header.message_id

    (kept, _), (long, long_id), (sg, sg_id) = await asyncio.gather(
        send("NZ", stripped), send("NZ", overlong), send("SG", result)
    )
    assert kept.outcome == sg.outcome == pb.RECEIPT_OUTCOME_ACCEPTED
    registry = cn.hub.store.registry
    [record] = await registry.operators(aeo_ids=["NZ-PAD"])
    assert record in await registry.operators(tins=[tin])
    assert (record.party, record.aeo_id, record.tin, record.revision) == ("NZ", "NZ-PAD", tin, 3)
    [found] = await registry.controls(mrns=["MRN8"])
    assert (found.party, found.message_id) == ("SG", sg_id)
    held = [r.message_id for r in await registry.operators(aeo_ids=["NZ-LONG"])]
    if cn.hub.store.db.is_sqlite:  # SQLite keeps the padded current_state key as sent
        assert long.outcome == pb.RECEIPT_OUTCOME_ACCEPTED and held == [long_id]
    else:  # PostgreSQL refuses it: this message alone, nothing of it stored
        assert long.outcome == pb.RECEIPT_OUTCOME_REJECTED
        assert long.reason == "store-data-refused" and held == []
        assert await cn.hub.store.inbound.find("NZ", long_id) is None
