"""Issue 16: operators drop or re-route the queued messages of a partner removed from the
config (`outbox drop --partner`, `outbox reroute --partner OLD --to NEW`), with the hub stopped
or running; a configured partner's queued messages are left to delivery. Real hubs over mTLS;
NZ is down throughout and then leaves CN's config."""

from __future__ import annotations

import asyncio
import dataclasses
import tomllib
from collections.abc import Sequence

from hub.config import load_config, render_config
from hub.core.envelope import verify_receipt
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.runtime import RunningHub
from hub.store.schema import business_keys_of
from hub.trail import events as trail
from tests.conftest import PARTIES, Federation
from tests.test_delivery import aeo_requests, drained, fast_retries, submit_batch
from tests.test_exchange import eventually
from tests.test_outbox_backoff import run_cli


def remove_partner(federation: Federation, party: str, gone: str) -> None:
    """Rewrite ``party``'s hub.toml without [partners.<gone>] and without it in the routes,
    keeping the test's limits."""
    config = federation.configs[party]
    audit = f"127.0.0.1:{federation.audit_ports[party]}"
    config.path.write_text(
        render_config(
            party=party,
            listen=f"127.0.0.1:{federation.ports[party][0]}",
            domestic_listen=f"127.0.0.1:{federation.ports[party][1]}",
            pki=federation.pki,
            partners={
                p: f"127.0.0.1:{federation.ports[p][0]}" for p in PARTIES if p not in (party, gone)
            },
            store=tomllib.loads(config.path.read_text())["store"]["url"],
            audit_listen=audit,
        )
    )
    federation.configs[party] = dataclasses.replace(load_config(config.path), limits=config.limits)
    assert gone not in federation.configs[party].partners


async def attempted(running: RunningHub, partner: str, count: int) -> bool:
    entries = [e for e in await running.hub.store.views.outbox() if e.partner == partner]
    return len(entries) == count and all(e.attempts >= 1 for e in entries)


async def cli(*args: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(run_cli, *args)


async def trail_of(running: RunningHub, message_ids: Sequence[str]) -> dict[str, list[tuple]]:
    events = [trail.decode(leaf) for leaf in await running.hub.store.trail.leaves()]
    return {m: [(e.kind, e.detail) for e in events if e.message_id == m] for m in message_ids}


async def test_queued_messages_of_a_removed_partner_are_dropped_and_a_partners_are_not(
    federation: Federation,
) -> None:
    fast_retries(federation, "CN")
    cn = await federation.start("CN")  # NZ and SG down
    to_nz = await submit_batch(cn, aeo_requests(3, to="NZ"))
    to_sg = await submit_batch(cn, aeo_requests(2, to="SG"))
    await eventually(lambda: attempted(cn, "NZ", 3))
    await federation.stop("CN")
    remove_partner(federation, "CN", "NZ")
    cn = await federation.start("CN")  # runs without NZ, whose messages still wait
    config = str(federation.configs["CN"].path)

    # SG is configured: its queued messages are being delivered, and stay
    code, out, err = await cli("outbox", "drop", "--config", config, "--partner", "SG")
    assert code == 2 and out == ""
    assert "SG is a partner in" in err and "only its dead letters can be dropped" in err
    code, out, err = await cli("outbox", "drop", "--config", config, "--message-id", to_sg[0])
    assert code == 2 and "only its dead letters" in err

    # NZ is not: its queued messages are dropped, while the hub runs
    code, out, err = await cli("outbox", "drop", "--config", config, "--partner", "NZ")
    assert code == 0, err
    assert out.splitlines() == [f"dropped {m}" for m in to_nz]
    rows = await cn.hub.store.views.outbox()
    assert sorted(e.partner for e in rows) == ["SG", "SG"]
    statuses = {m.message_id: m.status for m, _ in await cn.hub.store.views.outbound()}
    assert [statuses[m] for m in to_nz] == ["dead"] * 3
    assert [statuses[m] for m in to_sg] == ["queued"] * 2
    about = await trail_of(cn, to_nz)
    for message_id in to_nz:
        assert about[message_id][-1] == (
            "dropped",
            "dropped by an operator: NZ is no longer a partner",
        )
    assert await cn.hub.store.outbox.backoff("NZ") is None  # nothing of NZ's to wait for
    code, out, err = await cli("outbox", "--config", config, "--json")
    assert code == 0 and len(out.splitlines()) == 2
    # nothing is left to drop; the running hub goes on without them
    code, out, err = await cli("outbox", "drop", "--config", config, "--partner", "NZ")
    assert code == 2 and "no matching dead letters" in err
    await asyncio.sleep(0.5)
    assert sorted(e.partner for e in await cn.hub.store.views.outbox()) == ["SG", "SG"]
    sg = await federation.start("SG")
    await eventually(lambda: drained(cn))
    assert [m.message_id for m in await sg.hub.store.views.inbound()] == to_sg


async def test_a_removed_partners_messages_are_rerouted_signed_afresh(
    federation: Federation,
) -> None:
    fast_retries(federation, "CN")
    cn = await federation.start("CN")  # NZ is down
    sg = await federation.start("SG")
    requests = aeo_requests(3, to="NZ")
    for request in requests:
        request.correlation_id = "case-42"
    to_nz = await submit_batch(cn, requests)
    await eventually(lambda: attempted(cn, "NZ", 3))
    before = {m.message_id: m for m, _ in await cn.hub.store.views.outbound()}
    await federation.stop("CN")
    remove_partner(federation, "CN", "NZ")
    config = str(federation.configs["CN"].path)

    # refused: a NEW that is not a partner, or the partner they are for already
    for to, why in (("XX", "is not a partner in"), ("NZ", "is the partner they are for")):
        code, out, err = await cli("outbox", "reroute", "--config", config, "--partner", "NZ",
                                   "--to", to)  # fmt: skip
        assert code == 2 and why in err and out == ""
    assert len([e for e in await _outbox(federation) if e.partner == "NZ"]) == 3

    # one while the hub is stopped, the rest while it runs
    code, out, err = await cli("outbox", "reroute", "--config", config, "--partner", "NZ",
                               "--to", "SG", "--message-id", to_nz[0])  # fmt: skip
    assert code == 0, err
    cn = await federation.start("CN")
    code, more, err = await cli("outbox", "reroute", "--config", config, "--partner", "NZ",
                                "--to", "SG")  # fmt: skip
    assert code == 0, err
    lines = [line.split() for line in (out + more).splitlines()]
    assert [(w[0], w[1], w[3], w[4]) for w in lines] == [
        ("re-routed", m, "SG", "as") for m in to_nz
    ]
    new_ids = [w[5] for w in lines]
    assert not set(new_ids) & set(to_nz)

    await eventually(lambda: drained(cn))
    received = await sg.hub.store.views.inbound()
    assert [m.message_id for m in received] == new_ids
    rows = {m.message_id: (m, r) for m, r in await cn.hub.store.views.outbound()}
    keys = cn.hub.trust.keys_for("SG")
    for old_id, new_id, got in zip(to_nz, new_ids, received, strict=True):
        old = before[old_id]
        assert rows[old_id][0].status == "replaced"
        new, record = rows[new_id]
        assert new.status == "delivered" and new.recipient == "SG"
        assert new.correlation_id == old.correlation_id == "case-42"
        assert business_keys_of(new.business_keys) == business_keys_of(old.business_keys)
        # the same body, signed afresh for SG
        assert (
            pb.Envelope.FromString(new.envelope).body == pb.Envelope.FromString(old.envelope).body
        )
        assert got.correlation_id == "case-42"
        assert record is not None and record.outcome == "accepted"
        receipt = verify_receipt(pb.SignedReceipt.FromString(record.signed_receipt), "SG", keys)
        assert receipt.message_id == new_id and receipt.envelope_digest == new.envelope_digest
    about = await trail_of(cn, [*to_nz, *new_ids])
    for old_id, new_id in zip(to_nz, new_ids, strict=True):
        assert about[old_id][-1] == ("requeued", f"an operator re-routed it to SG as {new_id}")
        kinds = [k for k, _ in about[new_id]]
        assert (kinds[0], kinds[-1]) == ("queued", "delivered")
    code, out, err = await cli("outbox", "--config", config, "--json")
    assert code == 0 and out == ""
    assert await cn.hub.store.outbox.backoff("NZ") is None


async def _outbox(federation: Federation) -> list:
    from hub.store.db import Store

    store = Store(federation.configs["CN"].store_url)
    try:
        return await store.views.outbox()
    finally:
        await store.close()
