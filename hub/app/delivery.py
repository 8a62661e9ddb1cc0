"""The outbox worker: sends queued envelopes to partners and stores their signed receipts.

Each partner has its own sender task, so a dead or slow partner never holds up the others.
A sender keeps one ``Exchange`` stream open and writes frames of up to ``delivery_batch``
envelopes, oldest first, with at most ``delivery_window`` frames awaiting their receipts; a
reader matches each ReceiptBatch to its frame (the receiver answers frames in order).

A message leaves the outbox only in the transaction that stores a verified receipt for it. A
failed send (partner down, timeout, a receipt that does not verify or names other bytes) leaves
it queued: when the stream fails, the partner backs off as a whole (exponential, with jitter)
and its messages keep their order; a message refused "for now" waits on its own. A final
rejection makes the message a dead letter with the partner's reason; so does expiry before
delivery. docs/adr/0005 has the reasoning.

A partner whose certificates are revoked is stopped (``RevocationWatch.stop_of``, docs/adr/0009):
nothing is written to it, its stream is given up, and its messages stay queued (nothing is
lost, nothing sent) until the revocation no longer applies, when delivery goes on by itself.
The stop is logged and recorded in the trail once, and noted in the partner's stored backoff
(``stopped: <reason>: ...``) for ``customs-hub status``. Before a stream is opened, the
partner's TLS server certificate is looked at (``preflight``, when the transport can) if it
was not seen since the last reload or change of the lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from hub.app.context import HubContext
from hub.app.learning import Learner, remember
from hub.app.ports import PartnerStream, PartnerTransport
from hub.app.revocation import RevocationWatch
from hub.app.tasks import cancel_and_wait
from hub.app.telemetry import now_ns, reason_code
from hub.app.traces import DeliveryTrace
from hub.config import Limits
from hub.core.envelope import verify_receipt
from hub.core.errors import DeliveryError, HubError, TrustError
from hub.core.revocation import STOPPED_PREFIX, stop_note, withheld_refusal
from hub.core.signing import VerificationKey
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.store.rawsql import Tx
from hub.store.schema import DueDelivery, PartnerBackoff, ReceiptRow, Settlement

log = logging.getLogger("customs_hub.delivery")

OUTCOMES = {
    pb.RECEIPT_OUTCOME_ACCEPTED: "accepted",
    pb.RECEIPT_OUTCOME_DUPLICATE: "duplicate",
    pb.RECEIPT_OUTCOME_REJECTED: "rejected",
}


# A REJECTED receipt is final, except where the reason says "not now": our clock ran ahead of
# the partner's beyond its skew allowance. Such a message stays queued and is retried.
# crl-stale: the partner's list of our CA's revoked certificates is out of date, which a
# current one mends; the message waits for it.
RETRYABLE_REJECTIONS = frozenset({"not-yet-valid", "crl-stale"})
UNAVAILABLE = "partner-unavailable"  # the reason code of an attempt the stream failed
# How often SQLite's write-ahead log is copied into the database (Database.copy_wal): at a
# few MB of log per second under load, each copy stays small.
WAL_COPY_SECONDS = 0.25
# Room for the frame's own framing around the envelopes, per envelope.
FRAME_OVERHEAD = 16
# A stopped partner whose server certificate could not be looked at again (it is down, say)
# is tried again after this long at most.
PREFLIGHT_RETRY_SECONDS = 30.0
# what gives a partner's TLS server certificate (DER) from a handshake (hub/rpc/channels.py)
Preflight = Callable[[str], Awaitable[bytes]]


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


def backoff(limits: Limits, failures: int) -> float:
    """Seconds to wait after the ``failures``-th consecutive failure: exponential from
    ``retry_initial_seconds`` by ``retry_multiplier`` up to ``retry_max_seconds``, less up to
    ``retry_jitter`` of it at random, so partners coming back are not stampeded."""
    exponent = max(0, failures - 1)
    delay = min(
        limits.retry_max_seconds,
        limits.retry_initial_seconds * limits.retry_multiplier ** min(exponent, 64),
    )
    return delay * (1 - random.uniform(0, limits.retry_jitter))


class StreamBroken(Exception):
    pass


@dataclass
class _Stream:
    call: PartnerStream
    in_flight: deque[tuple[list[DueDelivery], float]] = field(default_factory=deque)
    broken: str = ""
    sent: asyncio.Event = field(default_factory=asyncio.Event)  # a frame was written
    reader: asyncio.Task[None] | None = None
    answered: int = 0  # frames at the head of in_flight whose receipts arrived
    settling: set[asyncio.Task[None]] = field(default_factory=set)
    # the partner's receipt keys as trusted when the stream opened: a reload that removes the
    # partner (or rotates its keys) meanwhile does not turn the receipts of what was already
    # sent into refusals
    keys: Mapping[str, VerificationKey] = field(default_factory=dict)


class PartnerSender:
    """Delivery to one partner: its queue, its stream, its backoff."""

    def __init__(self, worker: OutboxWorker, partner: str) -> None:
        self.worker = worker
        self.hub = worker.hub
        self.partner = partner
        self.limits = worker.limits
        self.failures = 0  # consecutive stream failures
        self.backoff_until = 0.0  # monotonic
        self.cursor = 0  # outbox id of the newest entry written on the current stream
        self.stream: _Stream | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.delivered = 0
        # set by whatever may give the sender work: a new message, a settled frame, a broken
        # stream; cleared by the sender before it looks, so no wake-up is lost
        self.wake = asyncio.Event()
        self.hub.outbox_changed.listen(self.wake.set)
        # New entries for this partner, handed over by the hub as they are committed, so the
        # hot path does not read back what it has just written. While ``synced``, these are
        # all the due entries after the cursor; otherwise the store is read, and the sender
        # is synced again by a read that found everything due and began after the last time
        # ``fresh`` was cleared (``generation``).
        self.fresh: deque[DueDelivery] = deque()
        self.fresh_limit = 4 * self.limits.delivery_window * self.limits.delivery_batch
        self.synced = False
        self.generation = 0
        # when the store was last read (monotonic): an idle sender reads it again every
        # poll_seconds, for entries queued by another process (an operator's `outbox retry`)
        self.read_at = 0.0
        # when entries that failed on their own (a receipt refused, or "not now") are due
        # again, by entry id: they are not handed over, so the store is read for them; one
        # time per entry, so this holds no more than the partner's queue
        self.retries: dict[int, float] = {}
        self.hub.queued_listeners.append(self._queued)
        # the stop note (docs/adr/0009) while delivery to the partner is stopped, and when a
        # stopped partner's server certificate may be looked at again
        self.stopped: str | None = None
        self.preflight_after = 0.0
        # each message's outbox wait and delivery attempts (telemetry on)
        telemetry = self.hub.telemetry
        self.traces = DeliveryTrace(telemetry, partner) if telemetry.tracing else None

    def _queued(self, entries: Sequence[DueDelivery]) -> None:
        mine = [e for e in entries if e.partner == self.partner]
        if not mine:
            return
        if len(self.fresh) + len(mine) > self.fresh_limit:
            self._forget()  # a partner this far behind is served from the store
        else:
            self.fresh.extend(mine)
        self.wake.set()

    def _forget(self) -> None:
        self.fresh.clear()
        self.synced = False
        self.generation += 1

    def _take(self, limit: int) -> list[DueDelivery]:
        fresh = self.fresh
        while fresh and fresh[0].entry_id <= self.cursor:  # already read from the store
            fresh.popleft()
        return [fresh.popleft() for _ in range(min(limit, len(fresh)))]

    async def _due(self, limit: int) -> list[DueDelivery]:
        if self.synced:
            return self._take(limit)
        generation = self.generation
        self.read_at = time.monotonic()
        due = await self.hub.store.outbox.due(
            self.hub.clock(), limit, partner=self.partner, after=self.cursor
        )
        if len(due) < limit and generation == self.generation:
            self.synced = True
        return due

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"outbox-{self.hub.party}-{self.partner}")

    async def _resume(self) -> None:
        """Go on waiting where the last run stopped: a partner that failed as a whole before
        a restart is not tried before its stored ``retry_at``, and its failures count on."""
        try:
            stored = await self.hub.store.outbox.backoff(self.partner)
        except HubError as exc:
            log.error("reading the backoff of %s: %s", self.partner, exc)
            return
        if stored is None:
            return
        if stored.last_error.startswith(STOPPED_PREFIX):
            self.stopped = stored.last_error  # stopped before: not logged or recorded again
        self.failures = max(self.failures, stored.failures)
        wait = (stored.retry_at - self.hub.clock()).total_seconds()
        if wait > 0:
            # the stored wall-clock time as this process's monotonic one; a wait longer than
            # the schedule allows (a clock set back) is cut to the schedule's longest
            wait = min(wait, self.limits.retry_max_seconds)
            self.backoff_until = max(self.backoff_until, time.monotonic() + wait)
            log.info(
                "delivery to %s failed %d time(s) before (%s); next try in %.1f s",
                self.partner,
                self.failures,
                stored.last_error,
                wait,
            )

    async def _run(self) -> None:
        await self._resume()
        while not self.stopping:
            self.wake.clear()
            try:
                worked = await self._pass()
            except HubError as exc:  # store trouble: wait and try again, nothing is lost
                log.error("delivery to %s: %s", self.partner, exc)
                self._forget()
                worked = False
            except Exception:
                log.exception(
                    "delivery to %s failed unexpectedly; retrying after a pause", self.partner
                )
                self._forget()
                worked = False
            if not worked and not self.stopping:
                pause = self.backoff_until - time.monotonic()
                wait = pause if pause > 0 else self.limits.poll_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)

    async def _pass(self) -> bool:
        """Write what is due, as far as the window allows. True when it wrote something."""
        if await self._stop_check():  # before the backoff: a stop shows at once
            return False
        if time.monotonic() < self.backoff_until:
            return False
        stream = self.stream
        if stream is not None and not stream.broken and not stream.in_flight and stream.call.done():
            # the partner ended a stream that had nothing in flight (a hub ends idle streams
            # after limits.stream_idle_seconds): a new one is opened, and nothing failed
            await self._drop(stream)
            stream = None
        if stream is not None and stream.broken:
            await self._fail_stream(stream)
            return False
        window = self.limits.delivery_window
        batch = self.limits.delivery_batch
        if stream is not None and len(stream.in_flight) >= window:
            return False
        room = window - (len(stream.in_flight) if stream else 0)
        due = await self._due(room * batch)
        if not due:
            now = time.monotonic()
            retry = any(due_at <= now for due_at in self.retries.values())
            if (self.cursor or retry) and (stream is None or not stream.in_flight):
                # entries at or before the cursor that failed on their own (or that an
                # operator queued again) may be due again: look in the store from the start
                self.cursor = 0
                self.retries = {e: at for e, at in self.retries.items() if at > now}
                self._forget()
                return True
            idle = stream is None or not stream.in_flight
            if idle and now - self.read_at >= self.limits.poll_seconds:
                # nothing handed over, nothing in flight: what another process queued (an
                # operator's `outbox retry` or `outbox requeue` from the command line) is
                # only in the store, and this hub was not told
                self._forget()
                return True
            return False
        if stream is None:
            try:
                if await self._preflight():
                    return False  # its server certificate is revoked: stopped
                stream = self.stream = self._open()
            except HubError as exc:
                self.cursor = 0
                self._forget()
                if self.traces is not None:  # an attempt, failed before a frame was written
                    self.traces.taken(due)
                await self._failed_attempt(due, str(exc), exc.reason)
                return False
        for frame in batches(due, batch, self.limits.max_batch_bytes):
            if stream.broken:
                break
            timeout = self.limits.partner_timeout_seconds
            if self.traces is not None:
                self.traces.taken(frame)
            try:
                # a partner that hangs before the stream is up (in the TLS handshake, say)
                # counts as failed after the same timeout as one that does not answer a frame
                await asyncio.wait_for(stream.call.write([d.envelope for d in frame]), timeout)
            except DeliveryError as exc:
                error = exc.message
            except TimeoutError:
                error = f"write not taken within {timeout:g} s"
            else:
                error = ""
            if error:
                stream.broken = stream.broken or error
                await self._failed_attempt(frame, stream.broken)
                break
            stream.in_flight.append((frame, time.monotonic()))
            stream.sent.set()
            self.cursor = frame[-1].entry_id
        return True

    async def _preflight(self) -> bool:
        """Look at the partner's TLS server certificate before a stream is opened, if it was
        not seen since the last reload or change of the lists; True if the partner is now
        stopped. DeliveryError if the handshake fails (the attempt failed, as a stream's
        would)."""
        watch, preflight = self.worker.watch, self.worker.preflight
        if watch is None or preflight is None or not watch.server_unknown(self.partner):
            return False
        seen = await preflight(self.partner)
        if not seen:  # an endpoint no pre-flight can look at
            return False
        watch.server_seen(self.partner, seen)
        return await self._stop_check()

    async def _stop_check(self) -> bool:
        """Whether delivery to the partner is stopped now (docs/adr/0009); the stop and the
        resumption are put in effect here, each once."""
        watch = self.worker.watch
        if watch is None:
            return False
        stop = watch.stop_of(self.partner)
        if (
            stop is not None
            and self.worker.preflight is not None
            and watch.server_unknown(self.partner)
            and time.monotonic() >= self.preflight_after
        ):
            # a reload or a new list since its server certificate was seen: the partner may
            # have been given a certificate the lists do not revoke
            try:
                seen = await self.worker.preflight(self.partner)
                if seen:
                    watch.server_seen(self.partner, seen)
            except HubError as exc:
                self.preflight_after = time.monotonic() + min(
                    self.limits.retry_max_seconds, PREFLIGHT_RETRY_SECONDS
                )
                log.info("looking at %s's server certificate again: %s", self.partner, exc)
            stop = watch.stop_of(self.partner)
        if stop is None:
            if self.stopped is not None:
                await self._resume_delivery()
            return False
        note = stop_note(stop)
        if note != self.stopped:
            await self._stop(stop, note)
        return True

    async def _stop(self, stop: TrustError, note: str) -> None:
        """Stop delivering: the stream is given up (what was in flight stays queued), and the
        stop is logged, recorded in the trail and noted for `status`."""
        first = self.stopped is None
        self.stopped = note
        stream = self.stream
        if stream is not None:
            await self._drop(stream)
            if stream.settling:
                await asyncio.gather(*stream.settling, return_exceptions=True)
            if self.traces is not None:  # abandoned, not failed: they stay queued
                self.traces.forget([item for frame, _ in stream.in_flight for item in frame])
            stream.in_flight.clear()
        log.error(
            "delivery to %s stopped (%s): %s; its messages stay queued until the revocation no "
            "longer applies (a new certificate and a reload)",
            self.partner,
            stop.reason,
            stop.message,
        )
        now = self.hub.clock()
        await self.hub.store.outbox.record_stop(
            PartnerBackoff(
                partner=self.partner,
                failures=self.failures,
                retry_at=now,
                failed_at=now,
                last_error=note,
            )
        )
        watch = self.worker.watch
        if first and watch is not None:  # the trail records a stop once, not each rewording
            await watch.record_stop(self.partner, stop)

    async def _resume_delivery(self) -> None:
        log.warning(
            "delivery to %s resumes: its certificates are no longer revoked (%s before)",
            self.partner,
            self.stopped,
        )
        self.stopped = None
        self.failures = 0
        self.cursor = 0
        self._forget()
        await self.hub.store.outbox.clear_backoff(self.partner)

    def _open(self) -> _Stream:
        call = self.worker.transport.stream(self.partner)
        stream = _Stream(call, keys=self.hub.keys_for(self.partner))
        stream.reader = asyncio.create_task(
            self._read(stream), name=f"receipts-{self.hub.party}-{self.partner}"
        )
        return stream

    async def _read(self, stream: _Stream) -> None:
        timeout = self.limits.partner_timeout_seconds
        try:
            while True:
                while stream.answered >= len(stream.in_flight):
                    stream.sent.clear()
                    await stream.sent.wait()
                # answers come in frame order; frames already answered (settling) are a
                # prefix of in_flight, and stay in it until settled, so the sender never takes
                # their entries for due again
                response = await asyncio.wait_for(stream.call.read(), timeout)
                if response is None:
                    raise StreamBroken("partner closed the stream")
                if stream.answered >= len(stream.in_flight):
                    raise StreamBroken("partner answered a frame that was not sent")
                entry = stream.in_flight[stream.answered]
                stream.answered += 1
                task = asyncio.create_task(self._settle_frame(stream, entry, response))
                stream.settling.add(task)
                task.add_done_callback(stream.settling.discard)
        except TimeoutError:
            stream.broken = f"no receipts within {timeout:g} s"
        except DeliveryError as exc:
            stream.broken = exc.message
        except StreamBroken as exc:
            stream.broken = str(exc)
        except asyncio.CancelledError:
            stream.broken = stream.broken or "stopped"
            raise
        except Exception as exc:
            log.exception("reading receipts from %s failed", self.partner)
            stream.broken = f"unexpected error: {type(exc).__name__}"
        finally:
            self.wake.set()

    async def _settle_frame(
        self,
        stream: _Stream,
        entry: tuple[list[DueDelivery], float],
        receipts: list[pb.SignedReceipt],
    ) -> None:
        try:
            await self._settle(entry[0], receipts, stream.keys)
            if self.failures:  # back after failures: the stored backoff goes (once)
                self.failures = 0
                try:
                    await self.hub.store.outbox.clear_backoff(self.partner)
                except HubError as exc:  # the next failure replaces it; nothing is lost
                    log.error("clearing the backoff of %s: %s", self.partner, exc)
        except StreamBroken as exc:
            stream.broken = stream.broken or str(exc)
            self._unsettled(entry[0])
        except HubError as exc:
            log.error("settling receipts from %s failed: %s", self.partner, exc)
            stream.broken = stream.broken or f"settling failed: {exc}"
            self._unsettled(entry[0])
        finally:
            for i, held in enumerate(stream.in_flight):
                if held is entry:
                    del stream.in_flight[i]
                    stream.answered -= 1
                    break
            self.wake.set()

    def _log_ids(self, item: DueDelivery) -> dict[str, str] | None:
        """``extra=`` for a log line about ``item`` (its trace's ids, telemetry on)."""
        return self.traces.log_ids(item) if self.traces is not None else None

    def _unsettled(self, frame: list[DueDelivery]) -> None:
        """The frame's receipts came but could not be settled: its attempt failed (it stays
        queued, and the stream is given up without it)."""
        if self.traces is not None:
            self.traces.failed(frame, UNAVAILABLE)

    async def _drop(self, stream: _Stream) -> None:
        """Stop using a stream: cancel it and its reader."""
        self.stream = None
        self.cursor = 0
        self._forget()
        stream.call.cancel()
        if stream.reader is not None and stream.reader is not asyncio.current_task():
            stream.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream.reader

    async def _fail_stream(self, stream: _Stream) -> None:
        """Give up a broken stream: what was in flight stays queued, the partner backs off."""
        await self._drop(stream)
        if stream.settling:  # receipts already here are stored before the stream is given up
            await asyncio.gather(*stream.settling, return_exceptions=True)
        frames = [item for frame, _ in stream.in_flight for item in frame]
        self.hub.metrics.failed(self.partner, len(frames))
        stream.in_flight.clear()
        stream.answered = 0
        delay, waiting = self._back_off(stream.broken)
        log.warning(
            "delivery to %s failed (%s); %d message(s) stay queued, next try in %.1f s",
            self.partner,
            stream.broken,
            len(frames),
            delay,
        )
        if self.traces is not None:
            self.traces.failed(frames, UNAVAILABLE)
        await self.hub.store.outbox.record_failure(
            [d.entry_id for d in frames], stream.broken, None, waiting
        )

    async def _failed_attempt(
        self, items: list[DueDelivery], error: str, reason: str = UNAVAILABLE
    ) -> None:
        self.hub.metrics.failed(self.partner, len(items))
        delay, waiting = self._back_off(error)
        log.warning("delivery to %s failed: %s; next try in %.1f s", self.partner, error, delay)
        if self.traces is not None:
            self.traces.failed(items, reason)
        await self.hub.store.outbox.record_failure(
            [d.entry_id for d in items], error, None, waiting
        )

    def _back_off(self, error: str) -> tuple[float, PartnerBackoff]:
        """One more failure of the partner as a whole: the wait, kept here (monotonic, the
        check on every pass) and as the row to store (wall clock, for operators and for the
        next start)."""
        self.failures += 1
        delay = backoff(self.limits, self.failures)
        self.backoff_until = time.monotonic() + delay
        now = self.hub.clock()
        return delay, PartnerBackoff(
            partner=self.partner,
            failures=self.failures,
            retry_at=now + timedelta(seconds=delay),
            failed_at=now,
            last_error=error,
        )

    async def _settle(
        self,
        frame: list[DueDelivery],
        receipts: list[pb.SignedReceipt],
        keys: Mapping[str, VerificationKey],
    ) -> None:
        if len(receipts) != len(frame):
            raise StreamBroken(
                f"partner answered {len(receipts)} receipts for {len(frame)} envelopes"
            )
        verifying = now_ns() if self.traces is not None else 0
        settled: list[Settlement] = []
        # each with why (logged and stored), its reason code, and whether the attempt failed
        # (else the partner refused it for now)
        later: list[tuple[DueDelivery, str, str, bool]] = []
        verified: set[tuple[str, bytes, bytes]] = set()
        now = self.hub.clock()
        # and the keys learned since the stream opened (docs/adr/0010-key-rotation.md)
        keys = {**keys, **self.hub.keys_for(self.partner)}
        # the keys of certificates revoked since (or whose CA's list is stale) verify nothing
        usable, withheld = self.hub.revocation.usable_keys(self.partner, keys, now)
        # a key the partner rotated to, read from the certificate its signature carries
        learner = Learner(self.hub, self.partner, now)
        taught: dict[str, str] = {}  # key id read from a certificate -> the message it settled
        for item, signed in zip(frame, receipts, strict=True):
            try:
                try:
                    receipt = verify_receipt(
                        signed,
                        self.partner,
                        usable,
                        verified,
                        now=now,
                        clock_skew=self.limits.clock_skew,
                        learn=learner,
                    )
                except HubError as exc:
                    raise withheld_refusal([signed.signature.key_id], withheld) or exc from None
            except HubError as exc:
                log.error(
                    "receipt for %s from %s refused: %s",
                    item.message_id,
                    self.partner,
                    exc,
                    extra=self._log_ids(item),
                )
                later.append((item, f"receipt refused: {exc.reason}", exc.reason, True))
                continue
            if (
                receipt.message_id != item.message_id
                or receipt.envelope_digest != item.envelope_digest
            ):
                log.error(
                    "receipt from %s names other bytes than %s",
                    self.partner,
                    item.message_id,
                    extra=self._log_ids(item),
                )
                mismatch = DeliveryError("receipt names other bytes", reason="receipt-mismatch")
                later.append((item, mismatch.message, mismatch.reason, True))
                continue
            taught.setdefault(signed.signature.key_id, item.message_id)
            outcome = OUTCOMES.get(receipt.outcome, "unknown")
            if outcome == "unknown":
                later.append((item, "receipt has no known outcome", "receipt-malformed", True))
                continue
            if outcome == "rejected" and receipt.reason in RETRYABLE_REJECTIONS:
                log.warning(
                    "%s refused %s for now: %s",
                    self.partner,
                    item.message_id,
                    receipt.reason,
                    extra=self._log_ids(item),
                )
                later.append((item, f"refused for now: {receipt.reason}", receipt.reason, False))
                continue
            dead_reason = None
            if outcome == "rejected":
                dead_reason = f"rejected by {self.partner}: {receipt.reason}"
                # the reason's code only: the rest is the partner's free text (kept with the
                # dead letter), which may quote the document or name a trader
                log.warning(
                    "%s rejected %s: %s",
                    self.partner,
                    item.message_id,
                    reason_code(receipt.reason),
                    extra=self._log_ids(item),
                )
            settled.append(
                Settlement(
                    item,
                    ReceiptRow(
                        message_id=item.message_id,
                        receiver=self.partner,
                        outcome=outcome,
                        reason=receipt.reason,
                        envelope_digest=receipt.envelope_digest,
                        signed_receipt=signed.SerializeToString(),
                        received_at=now,
                    ),
                    dead_reason,
                )
            )
        verified_at = now_ns() if self.traces is not None else 0
        for key in learner.learned(taught):  # kept before the receipts it verified
            await remember(self.hub, [key], taught[key.key.key_id])
        if settled:
            await self.worker.settlements.submit(settled)
            self.delivered += len(settled)
        self.hub.metrics.settled(self.partner, settled, later, now)
        for item, error, _, _ in later:  # each waits on its own; the rest of the queue goes on
            delay = backoff(self.limits, item.attempts + 1)
            await self.hub.store.outbox.record_failure(
                [item.entry_id], error, now + timedelta(seconds=delay)
            )
            self.retries[item.entry_id] = time.monotonic() + delay
        if self.traces is not None:
            times = (verifying, verified_at)
            for s in settled:
                self.traces.settled(s.due, s.receipt.outcome, s.receipt.reason or "", times)
            for item, _, code, failed in later:
                outcome = "failed" if failed else "rejected"  # rejected for now: the answer
                self.traces.settled(item, outcome, code, times, refused=failed)

    async def stop(self, grace: float) -> None:
        """Write nothing more; wait up to ``grace`` seconds for the receipts of what is in
        flight, then abandon it (it stays queued, and the partner answers a resend with the
        receipt it gave the first time)."""
        self.stopping = True
        if self._queued in self.hub.queued_listeners:
            self.hub.queued_listeners.remove(self._queued)
        stream = self.stream
        deadline = time.monotonic() + grace
        while stream is not None and stream.in_flight and not stream.broken:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        await cancel_and_wait(self.task)
        if stream is not None:
            stream.call.cancel()
            await cancel_and_wait(stream.reader)
            await asyncio.gather(*stream.settling, return_exceptions=True)


class OutboxWorker:
    def __init__(
        self,
        hub: HubContext,
        transport: PartnerTransport,
        watch: RevocationWatch | None = None,
        preflight: Preflight | None = None,
    ) -> None:
        """``watch`` says which partners are stopped for revocation (none without it);
        ``preflight`` gives a partner's TLS server certificate from a handshake (the gRPC
        transport's; a transport without TLS has none)."""
        self.hub = hub
        self.transport = transport
        self.watch = watch
        self.preflight = preflight
        self.limits = hub.config.limits
        self.senders: dict[str, PartnerSender] = {}
        self.settlements = hub.writes.lane("receipts", self._record)
        self._task: asyncio.Task[None] | None = None
        self._wal_copies: asyncio.Task[None] | None = None

    def _record(self, tx: Tx, settlements: list[Settlement]) -> list[None]:
        self.hub.store.outbox.settle_in(tx, settlements)
        return [None] * len(settlements)

    def start(self) -> None:
        for partner in self.hub.config.partners:
            self._sender(partner)
        self._task = asyncio.create_task(self._housekeeping(), name=f"outbox-{self.hub.party}")
        if self.hub.store.db.is_sqlite:
            self._wal_copies = asyncio.create_task(
                self._copy_wal(), name=f"wal-copy-{self.hub.party}"
            )

    async def _copy_wal(self) -> None:
        """Keep SQLite's write-ahead log short (Database.copy_wal), a few times a second."""
        while True:
            await asyncio.sleep(WAL_COPY_SECONDS)
            try:
                await self.hub.store.db.copy_wal()
            except HubError as exc:
                log.error("copying the write-ahead log: %s", exc)

    def partners_changed(self) -> None:
        """After a reload: every partner now configured has a sender (one removed keeps its
        sender while it has queued messages; its channel is gone, so they wait, queued, for an
        operator's `outbox drop` or `outbox reroute`, or their expiry)."""
        if self._task is None:
            return
        for partner in self.hub.config.partners:
            self._sender(partner)

    def _sender(self, partner: str) -> PartnerSender:
        sender = self.senders.get(partner)
        if sender is None:
            sender = self.senders[partner] = PartnerSender(self, partner)
            sender.start()
        return sender

    async def _housekeeping(self) -> None:
        """Expire what can no longer be delivered; give every partner with queued messages
        (also one removed from the config since) a sender."""
        while True:
            try:
                expired = await self.hub.store.outbox.expire(self.hub.clock())
                if expired:
                    log.warning("%d undelivered message(s) expired into dead letters", expired)
                for partner in await self.hub.store.outbox.queued_partners():
                    self._sender(partner)
            except HubError as exc:
                log.error("outbox housekeeping: %s", exc)
            await asyncio.sleep(max(self.limits.poll_seconds, 1.0))

    async def stop(self, grace: float = 5.0) -> None:
        for task in (self._task, self._wal_copies):
            await cancel_and_wait(task)
        await asyncio.gather(*(s.stop(grace) for s in self.senders.values()))
