"""The outbox worker: sends queued envelopes to partners and stores their signed receipts.

A message leaves the outbox only in the same transaction that stores a verified receipt for
it. A failed send (partner down, timeout, a receipt that does not verify or names other bytes)
leaves the message queued with a later attempt time: it is never lost. Retry policy depth,
dead letters and streaming windows come with reliable delivery (issue 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from datetime import timedelta

import grpc

from hub.envelope import verify_receipt
from hub.errors import HubError
from hub.node import Hub
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.store import DueDelivery, ReceiptRecord
from hub.transport import PartnerChannels

log = logging.getLogger("customs_hub.delivery")

OUTCOMES = {
    pb.RECEIPT_OUTCOME_ACCEPTED: "accepted",
    pb.RECEIPT_OUTCOME_DUPLICATE: "duplicate",
    pb.RECEIPT_OUTCOME_REJECTED: "rejected",
}


# A REJECTED receipt is final, except where the reason says "not now": our clock ran ahead of
# the partner's beyond its skew allowance. Such a message stays queued and is retried.
RETRYABLE_REJECTIONS = frozenset({"not-yet-valid"})
# Room for the frame's own framing around the envelopes, per envelope.
FRAME_OVERHEAD = 16


def batches(items: list[DueDelivery], count: int, size: int) -> list[list[DueDelivery]]:
    """Split into frames of at most ``count`` envelopes and ``size`` bytes (a single envelope
    larger than ``size`` travels alone, and the partner's limit decides)."""
    out: list[list[DueDelivery]] = []
    current: list[DueDelivery] = []
    used = 0
    for item in items:
        cost = len(item.envelope) + FRAME_OVERHEAD
        if current and (len(current) >= count or used + cost > size):
            out.append(current)
            current, used = [], 0
        current.append(item)
        used += cost
    if current:
        out.append(current)
    return out


class OutboxWorker:
    def __init__(self, hub: Hub, channels: PartnerChannels) -> None:
        self.hub = hub
        self.channels = channels
        self.limits = hub.config.limits
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-{self.hub.party}")

    async def stop(self) -> None:
        self._stopping = True
        self.hub.outbox_changed.notify()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                sent = await self.run_once()
            except HubError as exc:  # store trouble: wait and try again, nothing is lost
                log.error("outbox pass failed: %s", exc)
                sent = 0
            except Exception:
                log.exception("outbox pass failed unexpectedly; retrying after a pause")
                sent = 0
            if not sent:
                await self.hub.outbox_changed.wait(self.limits.poll_seconds)

    async def run_once(self) -> int:
        """One pass: every due message, grouped by partner, partners in parallel."""
        due = await self.hub.store.due(self.hub.clock(), self.limits.delivery_batch * 8)
        by_partner: dict[str, list[DueDelivery]] = defaultdict(list)
        for item in due:
            by_partner[item.partner].append(item)
        await asyncio.gather(*(self._send_partner(p, items) for p, items in by_partner.items()))
        return len(due)

    async def _send_partner(self, partner: str, items: list[DueDelivery]) -> None:
        for batch in batches(items, self.limits.delivery_batch, self.limits.max_batch_bytes):
            await self._send_batch(partner, batch)

    async def _send_batch(self, partner: str, batch: list[DueDelivery]) -> None:
        try:
            receipts = await self.channels.exchange(
                partner, [d.envelope for d in batch], self.limits.partner_timeout_seconds
            )
        except grpc.aio.AioRpcError as exc:
            await self._failed(batch, f"{exc.code().name}: {exc.details()}")
            return
        except HubError as exc:
            await self._failed(batch, str(exc))
            return
        except Exception as exc:
            log.exception("sending to %s failed unexpectedly", partner)
            await self._failed(batch, f"unexpected error: {type(exc).__name__}")
            return
        if len(receipts) != len(batch):
            await self._failed(
                batch, f"partner answered {len(receipts)} receipts for {len(batch)} envelopes"
            )
            return
        settled: list[tuple[DueDelivery, ReceiptRecord]] = []
        failed: list[DueDelivery] = []
        for item, signed in zip(batch, receipts, strict=True):
            try:
                receipt = verify_receipt(signed, partner, self.hub.trust.keys_for(partner))
            except HubError as exc:
                log.error("receipt for %s from %s refused: %s", item.message_id, partner, exc)
                failed.append(item)
                continue
            if (
                receipt.message_id != item.message_id
                or receipt.envelope_digest != item.envelope_digest
            ):
                log.error("receipt from %s names other bytes than %s", partner, item.message_id)
                failed.append(item)
                continue
            outcome = OUTCOMES.get(receipt.outcome, "unknown")
            if outcome == "unknown":
                failed.append(item)
                continue
            if outcome == "rejected" and receipt.reason in RETRYABLE_REJECTIONS:
                log.warning("%s refused %s for now: %s", partner, item.message_id, receipt.reason)
                failed.append(item)
                continue
            if outcome == "rejected":
                log.warning("%s rejected %s: %s", partner, item.message_id, receipt.reason)
            settled.append(
                (
                    item,
                    ReceiptRecord(
                        message_id=item.message_id,
                        receiver=partner,
                        outcome=outcome,
                        reason=receipt.reason,
                        envelope_digest=receipt.envelope_digest,
                        signed_receipt=signed.SerializeToString(),
                        received_at=self.hub.clock(),
                    ),
                )
            )
        if settled:
            await self.hub.store.record_receipts(settled)
        if failed:
            await self._failed(failed, "receipt did not verify")

    async def _failed(self, items: list[DueDelivery], error: str) -> None:
        attempts = max(i.attempts for i in items)
        delay = min(self.limits.retry_max_seconds, self.limits.retry_initial_seconds * 2**attempts)
        delay *= random.uniform(0.5, 1.0)  # jitter: partners coming back are not stampeded
        log.warning(
            "delivery of %d message(s) to %s failed: %s", len(items), items[0].partner, error
        )
        await self.hub.store.record_failure(
            [i.entry_id for i in items], error, self.hub.clock() + timedelta(seconds=delay)
        )
