"""The outbound status machine (hub/core/outbox.py): the changes the hub makes are allowed, any
other raises, and the store holds to it (a late receipt settles what it names, consistently)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from hub.core.errors import Status
from hub.core.outbox import NEXT, Outbound, TransitionError, move, operable

SETTLED = {Outbound.DELIVERED, Outbound.REJECTED}
MADE = {  # every change the store makes, and why
    *((old, new) for old in Outbound for new in SETTLED),  # a receipt, however late
    (Outbound.QUEUED, Outbound.DEAD),  # expired undelivered, or dropped (partner removed)
    (Outbound.QUEUED, Outbound.REPLACED),  # re-routed (partner removed)
    (Outbound.DEAD, Outbound.QUEUED),  # requeue
    (Outbound.REJECTED, Outbound.QUEUED),
    (Outbound.DEAD, Outbound.REPLACED),  # re-signed
    (Outbound.REJECTED, Outbound.REPLACED),
    (Outbound.DEAD, Outbound.DEAD),  # dropped
    (Outbound.REJECTED, Outbound.DEAD),
}


def test_the_changes_the_hub_makes_are_exactly_those_allowed() -> None:
    allowed = {(old, new) for old, targets in NEXT.items() for new in targets}
    assert allowed == MADE
    for old, new in MADE:
        assert move(old.value, new) is new


@pytest.mark.parametrize(
    ("old", "new"),
    sorted(set(itertools.product(Outbound, Outbound)) - MADE),
    ids=lambda s: s.value,
)
def test_any_other_change_raises(old: Outbound, new: Outbound) -> None:
    with pytest.raises(TransitionError) as refused:
        move(old.value, new)
    assert refused.value.reason == "illegal-transition"
    assert refused.value.status == Status.INTERNAL
    assert old.value in refused.value.message and new.value in refused.value.message


def test_a_status_the_machine_does_not_know_cannot_move() -> None:
    with pytest.raises(TransitionError):
        move("retrying", Outbound.QUEUED)


def sources(new: Outbound) -> list[str]:
    return sorted(old.value for old, allowed in NEXT.items() if new in allowed)


def test_only_dead_letters_are_operated_on_and_queued_ones_of_removed_partners() -> None:
    assert sources(Outbound.QUEUED) == ["dead", "rejected"]
    assert sources(Outbound.REPLACED) == ["dead", "queued", "rejected"]
    assert sources(Outbound.DEAD) == ["dead", "queued", "rejected"]
    assert operable("dead", partner_configured=True)
    assert operable("rejected", partner_configured=True)
    assert not operable("queued", partner_configured=True)
    assert operable("queued", partner_configured=False)


async def test_a_receipt_after_a_replacement_settles_the_original_only(store_url: str) -> None:
    """m1 is refused for good (a dead letter), an operator re-signs it as m1b, and then a
    receipt accepting m1 arrives late (its first attempt had reached the partner after all):
    m1 is delivered, m1b stays queued, and no dead letter is left."""
    from hub.store.db import Store
    from hub.store.schema import NewOutbound, ReceiptRecord, Settlement
    from tests.test_store import NOW, outbound

    store = Store(store_url)
    try:
        await store.prepare(create=True)
        await store.outbox.enqueue([outbound("m1")])
        [m1] = await store.outbox.due(NOW + timedelta(seconds=1), 10)

        def receipt(outcome: str) -> ReceiptRecord:
            return ReceiptRecord(
                message_id="m1", receiver="NZ", outcome=outcome, signed_receipt=b"r",
                received_at=NOW,
            )  # fmt: skip

        await store.outbox.record_receipts([Settlement(m1, receipt("rejected"), "rejected by NZ")])
        assert [m.message_id for m in await store.outbox.dead_letters()] == ["m1"]
        again = outbound("m1b")
        await store.outbox.replace(["m1"], [NewOutbound(**{f: getattr(again, f) for f in FIELDS})])
        await store.outbox.record_receipts([Settlement(m1, receipt("accepted"))])  # late
        statuses = {m.message_id: m.status for m, _ in await store.views.outbound()}
        assert statuses == {"m1": Outbound.DELIVERED, "m1b": Outbound.QUEUED}
        assert [d.message_id for d in await store.outbox.due(NOW + timedelta(seconds=1), 10)] == [
            "m1b"
        ]
        assert await store.outbox.dead_letters() == []
        assert await store.outbox.requeue(["m1"], NOW) == 0  # delivered: nothing to put back
    finally:
        await store.close()


FIELDS = ("message_id", "recipient", "body_type", "envelope", "envelope_digest", "created_at")


async def test_a_failed_attempt_on_an_entry_expired_meanwhile_is_not_counted(
    store_url: str,
) -> None:
    """The expiry sweep makes m1 a dead letter while an attempt on it is still under way (a
    pre-flight handshake timing out): the attempt's failure, recorded after, leaves the dead
    letter as it is, and the trail has no failed try after its dead-lettered leaf."""
    from hub.store.db import Store
    from hub.trail import events as trail
    from tests.test_store import NOW, outbound

    store = Store(store_url)
    try:
        await store.prepare(create=True)
        messages = [outbound("m1"), outbound("m2")]
        for message in messages:
            message.expires_at = NOW + timedelta(hours=1)
        await store.outbox.enqueue(messages)
        m1, m2 = await store.outbox.due(NOW + timedelta(seconds=1), 10)
        assert await store.outbox.expire(NOW + timedelta(hours=2)) == 2
        await store.outbox.record_failure([m1.entry_id, m2.entry_id], "UNAVAILABLE: down", None)
        rows = await store.views.outbox()
        assert [(r.state, r.attempts, r.last_error) for r in rows] == [("dead", 0, None)] * 2
        kinds = [trail.decode(leaf).kind for leaf in await store.trail.leaves()]
        assert kinds[-2:] == ["dead-lettered", "dead-lettered"]
        assert "delivery-failed" not in kinds
    finally:
        await store.close()
