"""One administration's hub: the receiving and submitting procedures around the pure core.

``Hub`` wires config, trust, signing key, routing and store together. The gRPC servicers and
the outbox worker call it; it never touches gRPC itself. What it accepts is durable before it
answers: a partner's message is committed with its signed receipt before the receipt leaves,
and a domestic submission is in the outbox before the submitter hears "queued".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from google.protobuf.message import DecodeError, Message

from adapters.formats import Translators
from adapters.wco.controls import control_result_from
from hub.app import keys
from hub.app.notify import Notifier
from hub.app.translation import Translation
from hub.config import HubConfig
from hub.core.envelope import (
    CORRELATION_ID,
    UUID_TEXT,
    OpenedEnvelope,
    TimePolicy,
    build_envelope,
    check_time_window,
    make_receipt,
    open_envelope,
    sha256,
    sign_receipt,
    sign_receipts,
)
from hub.core.errors import (
    BusinessKeyError,
    DuplicateConflictError,
    HubError,
    SenderMismatchError,
    StoreDataError,
    SubmissionError,
    TimeWindowError,
    TranslationError,
)
from hub.core.messages import (
    MAX_KEY_LENGTH,
    AeoStatus,
    BusinessKeys,
    ControlResult,
    GoodsDeclaration,
    InvalidBusinessKey,
    Response,
    body_class,
    business_keys,
)
from hub.core.routing import RoutingTable
from hub.core.signing import VerificationKey
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.store.db import Store
from hub.store.groupcommit import GroupCommitter, Lane
from hub.store.rawsql import Tx
from hub.store.schema import (
    Accepted,
    DueDelivery,
    InboundRow,
    Incoming,
    NewOutbound,
    OutboundMessage,
    Rejection,
    StateRef,
    TrailCheckpoint,
    as_utc,
    signed_alike,
)
from hub.trail import checkpoint
from hub.trail import events as trail

log = logging.getLogger("customs_hub")

T = TypeVar("T")
# The hub's worker threads (Hub.off_loop): CPU-bound work holds the GIL, so more of them would
# not verify faster, but a thread waiting for the translation process holds nothing, and a
# few such waits must leave threads for every other partner's envelopes.
WORKERS = 4
# Work known to take well under a millisecond is done on the event loop itself: handing it to a
# worker thread makes the loop and the thread take turns at the GIL, which costs more than the
# work (bench/e2e.py lost a quarter of its declarations per second and a tenth of its AEO
# statuses). Envelopes up to this size are opened on the loop (at most 4 signatures, only known
# keys tried; 16 KiB of the costliest protobuf, thousands of empty goods items, takes some
# 5 ms), one with a partner-format document inside never is, and a run of such work gives the
# loop a turn every SLICE_SECONDS.
INLINE_ENVELOPE_BYTES = 16 * 1024
SLICE_SECONDS = 0.002
REFUSAL_WINDOW = 60.0  # seconds between trail records of one kind of knock (record_refusal)

Clock = Callable[[], datetime]
Checked = tuple[OpenedEnvelope, StateRef | None, BusinessKeys] | HubError
DUPLICATE = pb.RECEIPT_OUTCOME_DUPLICATE


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    recipient: str


class Hub:
    def __init__(self, config: HubConfig, store: Store, *, clock: Clock = system_clock) -> None:
        self.config = config
        self.party = config.party
        self.store = store
        self.clock = clock
        self.trust, self.signer = keys.load_trust(config, clock())
        self.routing = RoutingTable(
            local_party=config.party,
            partner_countries={p.party: p.countries for p in config.partners.values()},
            rules=config.routes,
            local_countries=config.countries,
        )
        self.policy = TimePolicy(config.limits.clock_skew, config.limits.max_lifetime)
        self.inbound_arrived = Notifier()
        self.outbox_changed = Notifier()
        # every write a message takes goes through one group commit: inbound messages, new
        # outbound ones and partners' receipts share transactions (hub/store/groupcommit.py)
        self.writes = GroupCommitter(store.db.write, name=f"writes-{self.party}")
        # inbound frames are answered after their commit: small commits keep that wait short
        self.inbound_commits: Lane[Incoming, Accepted] = self.writes.lane(
            "inbound", self._accept, max_items=128
        )
        self.outbound_commits: Lane[Outgoing, list[DueDelivery]] = self.writes.lane(
            "outbound", self._enqueue, committed=self._queued
        )
        # called with the outbox entries of every committed group of new messages, in id
        # order, so senders can take them without reading them back (hub/app/delivery.py)
        self.queued_listeners: list[Callable[[Sequence[DueDelivery]], None]] = []
        self._submitting: dict[str, asyncio.Future[list[QueuedMessage]]] = {}
        # (source, reason) -> when a refusal was last recorded, and how many since were not
        self._refusals: dict[tuple[str, str], tuple[float, int]] = {}
        self._last_revision = 0
        self.trail_key = keys.load_trail_key(config, self.signer)
        self.translators = Translators(config.limits.xml)
        self.translation = Translation(self.translators, config.limits.xml)
        # CPU-bound work on what others send (verifying, parsing and translating documents)
        # runs here, not on the event loop, so one large document does not stall every other
        # partner's call
        self.workers = ThreadPoolExecutor(WORKERS, thread_name_prefix=f"hub-{self.party}-work")

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the hub's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self.workers, fn, *args)

    async def translate(self, format_id: str, content: bytes) -> Message:
        """A document's business message: translated on the loop when its format says it is
        light, otherwise on a worker thread (and a large one in the translation process)."""
        if self.translation.light(format_id, content):
            return self.translation.decode(format_id, content)
        return await self.off_loop(self.translation.decode, format_id, content)

    # --- the trail's checkpoints -----------------------------------------------------------

    async def checkpoint(self) -> TrailCheckpoint | None:
        """Sign a checkpoint of the trail now, if it grew (hub/trail/checkpoint.py)."""

        def sign(size: int, root: bytes) -> bytes:
            return checkpoint.sign(
                checkpoint.Checkpoint(self.config.origin, size, root), self.trail_key
            )

        return await self.store.trail.sign_checkpoint(sign)

    def config_digest(self) -> bytes:
        """SHA-256 over what decides this hub's behaviour and identity: the config file and
        the public parts it names (certificates, the trail key's public key); never a
        private key."""
        digest = hashlib.sha256()
        for data in keys.public_parts(self.config):
            digest.update(len(data).to_bytes(8, "big") + data)
        digest.update(self.trail_key.verifier().encode())
        return digest.digest()

    async def record_config(self) -> bool:
        """Log a "config-changed" event when the hub starts with another configuration or
        other keys than the last time."""
        return await self.store.trail.record_config(
            self.config_digest(), self.clock(), f"started with {self.config.path.name}"
        )

    async def keep_checkpoints(self) -> None:
        """Sign a checkpoint whenever ``checkpoint_entries`` entries were added since the last
        one, or ``checkpoint_seconds`` passed and the trail grew. Runs until cancelled."""
        config = self.config
        signed = await self.store.trail.checkpoints()
        last_size = signed[-1].size if signed else 0
        last_time = time.monotonic()
        while True:
            await asyncio.sleep(min(1.0, config.checkpoint_seconds))
            try:
                size = await self.store.trail.size()
                due = size - last_size >= config.checkpoint_entries or (
                    size > last_size and time.monotonic() - last_time >= config.checkpoint_seconds
                )
                if not due:
                    continue
                made = await self.checkpoint()
                if made is not None:
                    last_size, last_time = made.size, time.monotonic()
            except HubError as exc:  # an inconsistent trail is logged loudly, never signed
                log.error("trail checkpoint: %s", exc)

    # --- from partners ---------------------------------------------------------------------

    async def receive(self, data: bytes, peer_party: str) -> pb.SignedReceipt:
        """Verify, deduplicate and persist one envelope from ``peer_party``.

        Returns the signed receipt (for a duplicate: the receipt the first delivery got) or
        raises a HubError after recording the rejection.
        """
        [result] = await self.receive_batch([data], peer_party)
        if isinstance(result, HubError):
            raise result
        return result

    async def receive_batch(
        self,
        envelopes: Sequence[bytes],
        peer_party: str,
        *,
        after: asyncio.Event | None = None,
        then: asyncio.Event | None = None,
    ) -> list[pb.SignedReceipt | HubError]:
        """Verify envelopes from ``peer_party`` and persist the good ones in one group commit.

        Returns, in order, each envelope's receipt or the error that refused it (recorded as a
        rejection). A transient failure of this hub (the store) raises instead: nothing of the
        batch may be answered as refused for a fault that is ours.

        Verifying runs on the worker threads, so batches received together may finish it in
        any order; a stream keeps its order with ``after`` (set once the batch before has
        taken its place in the commit) and ``then`` (set once this one has, or has failed).
        """
        then = then or asyncio.Event()
        try:
            return await self._receive(envelopes, peer_party, after, then)
        finally:
            then.set()  # on every way out: a batch that failed holds up no later one

    async def _receive(
        self,
        envelopes: Sequence[bytes],
        peer_party: str,
        after: asyncio.Event | None,
        then: asyncio.Event,
    ) -> list[pb.SignedReceipt | HubError]:
        now = self.clock()
        results: list[pb.SignedReceipt | HubError | None] = [None] * len(envelopes)
        refused: list[tuple[bytes, HubError]] = []
        pending: list[tuple[int, Incoming, OpenedEnvelope]] = []
        checked = await self._open_batch(envelopes, peer_party, now)
        if after is not None:
            await after.wait()
        now = self.clock()  # after the wait: the time the window is checked at and kept
        for i, (data, check) in enumerate(zip(envelopes, checked, strict=True)):
            if isinstance(check, HubError):
                first = await self._accepted_before(peer_party, data, check)
                results[i] = first or check
                if first is None:
                    refused.append((data, check))
                continue
            opened, state, named = check
            try:
                check_time_window(opened.header, now, self.policy)
            except TimeWindowError as exc:
                # A retry of a message accepted before it expired is still a duplicate, not a
                # rejection: its sender may only have lost our first receipt.
                earlier = await self.store.inbound.find(peer_party, opened.header.message_id)
                if earlier is not None and signed_alike(
                    (earlier.envelope_digest, earlier.header),
                    (opened.envelope_digest, opened.header_bytes),
                ):
                    results[i] = pb.SignedReceipt.FromString(earlier.signed_receipt)
                else:
                    results[i] = exc
                    refused.append((data, exc))
                continue
            header = opened.header
            row = InboundRow(
                message_id=header.message_id,
                sender=header.sender,
                correlation_id=header.correlation_id,
                body_type=header.body_type,
                header=opened.header_bytes,
                body=opened.body,
                envelope_digest=opened.envelope_digest,
                business_keys=json.dumps(named, sort_keys=True),
                received_at=now,
            )
            if opened.original_format:  # hand on the translation; keep what was signed
                row.body_type = opened.document.DESCRIPTOR.full_name
                row.body = opened.document.SerializeToString(deterministic=True)
                row.original_format, row.original_body = opened.original_format, opened.body
                row.document_digest = opened.document_digest
            pending.append((i, Incoming(row, state), opened))
        committed = self.inbound_commits.enqueue([p[1] for p in pending])
        then.set()  # in its place: the next batch may take its own
        try:
            outcomes: Sequence[Accepted | StoreDataError] = await committed
        except StoreDataError:  # one envelope's data the store refused: each alone, to know
            outcomes = [await self._accept_alone(incoming) for _, incoming, _ in pending]
        fresh = 0
        for (i, incoming, opened), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, StoreDataError):
                results[i] = outcome
                refused.append((envelopes[i], outcome))
                continue
            if outcome.row.signed_the_same(incoming.row):
                fresh += outcome.fresh
                results[i] = pb.SignedReceipt.FromString(outcome.row.signed_receipt)
                continue
            conflict = DuplicateConflictError(
                f"message id {opened.header.message_id} from {peer_party} was accepted before "
                "with different content"
            )
            results[i] = conflict
            refused.append((envelopes[i], conflict))
        if fresh:
            log.debug("accepted %d message(s) from %s", fresh, peer_party)
            self.inbound_arrived.notify()
        if refused:
            await self.record_rejections(peer_party, refused)
        return [r for r in results if r is not None]

    async def _accept_alone(self, incoming: Incoming) -> Accepted | StoreDataError:
        try:
            [accepted] = await self.inbound_commits.submit([incoming])
        except StoreDataError as exc:
            return exc
        return accepted

    async def _open_batch(
        self, envelopes: Sequence[bytes], peer_party: str, now: datetime
    ) -> list[Checked]:
        """Each envelope verified, parsed (a partner-format document translated) and its state
        and business keys read, or the error refusing it: the CPU-bound part of receiving.
        Small envelopes are opened on the loop, a slice at a time; the others together on a
        worker thread: larger ones, and those whose partner-format document the operator
        allows (verified on the loop, then again on the thread with the document translated;
        a partner's document is never translated on the loop). The time window is checked by
        the caller, after a duplicate lookup."""
        keys = self.trust.keys_for(peer_party)  # one set for the batch, wherever it is opened
        checked: list[Checked | None] = []
        heavy: list[int] = []
        turn = Slice()

        def on_thread(format_id: str, content: bytes) -> Message:
            self.allow_raw(peer_party, format_id)  # a refusal is as cheap here
            raise _Heavy

        for i, data in enumerate(envelopes):
            result: Checked | None = None
            if len(data) <= INLINE_ENVELOPE_BYTES:
                with contextlib.suppress(_Heavy):
                    result = self._open(data, peer_party, now, keys, on_thread)
            checked.append(result)
            if result is None:
                heavy.append(i)
            await turn.pause()
        if heavy:
            opened = await self.off_loop(
                self._open_all, [envelopes[i] for i in heavy], peer_party, now, keys
            )
            for i, result in zip(heavy, opened, strict=True):
                checked[i] = result
        return cast(list[Checked], checked)  # every place filled, on the loop or the thread

    def _open_all(
        self,
        envelopes: Sequence[bytes],
        peer_party: str,
        now: datetime,
        keys: Mapping[str, VerificationKey],
    ) -> list[Checked]:
        """``_open_batch`` for the envelopes it does not open on the loop, on a worker thread."""

        def read(format_id: str, content: bytes) -> Message:
            return self.read_raw(peer_party, format_id, content)

        return [self._open(data, peer_party, now, keys, read) for data in envelopes]

    def _open(
        self,
        data: bytes,
        peer_party: str,
        now: datetime,
        keys: Mapping[str, VerificationKey],
        read_raw: Callable[[str, bytes], Message],
    ) -> Checked:
        try:
            opened = open_envelope(
                data,
                peer_party=peer_party,
                local_party=self.party,
                peer_keys=keys,
                now=now,
                policy=None,
                max_bytes=self.config.limits.max_envelope_bytes,
                read_raw=read_raw,
            )
            return opened, state_of(opened.document, peer_party), keys_of(opened.document)
        except HubError as exc:
            return exc

    async def _accepted_before(
        self, partner: str, data: bytes, error: HubError
    ) -> pb.SignedReceipt | None:
        """The receipt an identical envelope got when it was accepted, for a resend refused now
        only because this hub's rules changed since (the operator narrowed ``raw_formats``, a
        translator was upgraded, a limit was tightened): the sender may only have lost our
        first receipt, and what we accepted then stays accepted. The very same bytes, so
        nothing unverified is trusted."""
        if error.transient:
            return None
        message_id = claimed_message_id(data)
        if not message_id:
            return None
        earlier = await self.store.inbound.find(partner, message_id)
        if earlier is None or earlier.envelope_digest != sha256(data):
            return None
        return pb.SignedReceipt.FromString(earlier.signed_receipt)

    def read_raw(self, partner: str, format_id: str, content: bytes) -> Message:
        """A partner's document in a partner format, translated into its business message;
        only formats the operator allowed for that partner (``raw_formats``)."""
        self.allow_raw(partner, format_id)
        document = self.translation.decode(format_id, content)  # on a worker thread
        if body_class(document.DESCRIPTOR.full_name) is None:
            raise TranslationError(
                f"format {format_id!r} gave a {document.DESCRIPTOR.full_name}, which is not a "
                "business message",
                reason="unsupported-document",
            )
        return document

    def allow_raw(self, partner: str, format_id: str) -> None:
        """Refuse a partner's document in a format the operator did not allow that partner
        (``raw_formats``), or in a format it does not name."""
        known = self.config.partners.get(partner)
        allowed = known.raw_formats if known is not None else ()
        if format_id not in allowed and "*" not in allowed:
            raise SubmissionError(
                f"{partner} may not send documents as {format_id or 'an unnamed format'!r}"
                + (f"; allowed: {', '.join(allowed)}" if allowed else "; only protobuf bodies"),
                reason="format-not-allowed",
            )
        if not format_id:  # a partner names its format: nothing is guessed across a border
            raise SubmissionError("the raw document names no format", reason="format-not-allowed")

    def _accept(self, tx: Tx, incoming: list[Incoming]) -> list[Accepted]:
        """Inbound messages in a group commit: rows, revisions and batch-signed receipts."""
        now = self.clock()

        def sign(rows: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
            receipts = [
                make_receipt(
                    message_id=row.message_id,
                    envelope_digest=row.envelope_digest,
                    outcome=pb.RECEIPT_OUTCOME_ACCEPTED,
                    receiver=self.party,
                    sender=row.sender,
                    received_at=now,
                    trail_index=row.trail_index,
                    trail_size=head[0],
                    trail_root=head[1],
                ).SerializeToString(deterministic=True)
                for row in rows
            ]
            return [
                signed.SerializeToString(deterministic=True)
                for signed in sign_receipts(self.signer, receipts)
            ]

        return self.store.inbound.accept_in(tx, incoming, sign)

    def _receipt(
        self,
        message_id: str,
        digest: bytes,
        sender: str,
        now: datetime,
        outcome: int,
        reason: str = "",
        detail: str = "",
    ) -> pb.SignedReceipt:
        receipt = make_receipt(
            message_id=message_id,
            envelope_digest=digest,
            outcome=outcome,
            receiver=self.party,
            sender=sender,
            received_at=now,
            reason=reason,
            detail=detail,
        )
        return sign_receipt(self.signer, receipt)

    def rejection_receipt(self, data: bytes, peer_party: str, error: HubError) -> pb.SignedReceipt:
        """A signed REJECTED receipt, so the sender holds proof of why we refused."""
        return self._receipt(
            claimed_message_id(data),
            sha256(data),
            peer_party,
            self.clock(),
            pb.RECEIPT_OUTCOME_REJECTED,
            error.reason,
            error.message,
        )

    async def record_rejections(
        self, source: str, refused: Sequence[tuple[bytes, HubError]]
    ) -> None:
        for _, error in refused:
            log.warning("rejected from %s: %s", source, error)
        await self.store.inbound.record_rejections(
            [
                Rejection(
                    at=self.clock(),
                    source=source,
                    message_id=claimed_message_id(data),
                    reason=error.reason,
                    detail=error.message[:1024],
                    digest=sha256(data),
                )
                for data, error in refused
            ]
        )

    async def record_refusal(self, source: str, error: HubError) -> None:
        """A refusal that costs the refused nothing to cause (a connection from a peer nobody
        registered, a call over a partner's allowance): recorded at most once every
        ``REFUSAL_WINDOW`` seconds per source and reason, the next record counting those left
        out, so nobody can grow the trail by knocking."""
        now = time.monotonic()
        key = (source, error.reason)
        since, left_out = self._refusals.get(key, (-REFUSAL_WINDOW, 0))
        if now - since < REFUSAL_WINDOW:
            self._refusals[key] = (since, left_out + 1)
            return
        if left_out:
            error = type(error)(
                f"{error.message} (and {left_out} more like it, not recorded one by one, in "
                f"the {REFUSAL_WINDOW:g} s before)",
                reason=error.reason,
            )
        self._refusals[key] = (now, 0)
        await self.record_rejection(source, None, error)

    async def record_rejection(
        self,
        source: str,
        data: bytes | None,
        error: HubError,
        document_digest: bytes | None = None,
    ) -> None:
        log.warning("rejected from %s: %s", source, error)
        await self.store.inbound.record_rejection(
            Rejection(
                at=self.clock(),
                source=source,
                message_id=claimed_message_id(data) if data else "",
                reason=error.reason,
                detail=error.message[:1024],
                digest=sha256(data) if data is not None else document_digest,
            )
        )

    # --- from domestic systems -------------------------------------------------------------

    async def submit(
        self,
        document: Message,
        recipients: Sequence[str] = (),
        correlation_id: str = "",
        document_digest: bytes | None = None,
        derived: Sequence[Message] = (),
        submission_id: str = "",
    ) -> list[QueuedMessage]:
        """Route, sign and queue a domestic document, and any messages derived from it (e.g.
        the control result a notification reports), all in one transaction: either all of
        them are queued or, with the reason recorded, none."""
        [result] = await self.submit_many(
            [
                Submission(
                    document, recipients, correlation_id, document_digest, derived, submission_id
                )
            ]
        )
        if isinstance(result, HubError):
            raise result
        return result

    async def submit_many(
        self, submissions: Sequence[Submission]
    ) -> list[list[QueuedMessage] | HubError]:
        """Queue many submissions in one group commit; each gets its queued messages or the
        error that refused it (recorded). A store failure raises: nothing was queued."""
        results: list[list[QueuedMessage] | HubError | None] = [None] * len(submissions)
        jobs: list[tuple[int, Outgoing]] = []
        waiting: list[tuple[int, asyncio.Future[list[QueuedMessage]]]] = []
        mine: dict[str, asyncio.Future[list[QueuedMessage]]] = {}
        earlier = await self.store.outbox.submissions(
            [s.submission_id for s in submissions if 0 < len(s.submission_id) <= 128]
        )
        for i, sub in enumerate(submissions):
            if sub.submission_id:
                if len(sub.submission_id) > 128:
                    results[i] = SubmissionError(
                        "submission_id is longer than 128 characters", reason="submission-invalid"
                    )
                    continue
                running = self._submitting.get(sub.submission_id)
                if running is not None:  # the same submission is being queued right now
                    waiting.append((i, running))
                    continue
                answer = earlier.get(sub.submission_id)
                if answer is not None:
                    results[i] = queued_from(answer)
                    continue
            try:
                outgoing = self._prepare(sub)
            except HubError as exc:
                await self.record_rejection(sub.source, None, exc, sub.document_digest)
                results[i] = exc
                continue
            jobs.append((i, outgoing))
            if sub.submission_id:
                future = asyncio.get_running_loop().create_future()
                self._submitting[sub.submission_id] = mine[sub.submission_id] = future
        try:
            await self.outbound_commits.submit([job for _, job in jobs])
        except BaseException as exc:
            for future in mine.values():
                future.set_exception(exc if isinstance(exc, Exception) else HubError("cancelled"))
                future.exception()  # retrieved: waiters see it, nobody is warned
            raise
        finally:
            for sid in mine:
                self._submitting.pop(sid, None)
        for i, job in jobs:
            queued = [QueuedMessage(r.message_id, r.recipient) for r in job.rows]
            results[i] = queued
            if job.submission_id:
                mine[job.submission_id].set_result(queued)
        for i, future in waiting:
            try:
                results[i] = await asyncio.shield(future)
            except HubError as exc:
                results[i] = exc
        if jobs:
            self.outbox_changed.notify()
        return [r if r is not None else HubError("not processed") for r in results]

    def _prepare(self, sub: Submission) -> Outgoing:
        """Check, route and sign one submission: its outbound rows, not yet stored."""
        if not CORRELATION_ID.fullmatch(sub.correlation_id):
            # what a partner would refuse is refused here, before it is signed and queued
            raise SubmissionError(
                "correlation_id must be at most 128 printable ASCII characters without spaces",
                reason="submission-invalid",
            )
        documents = [sub.document, *sub.derived]
        plan = []
        for doc in documents:
            check_submission(doc, self.party)
            if isinstance(doc, AeoStatus | ControlResult) and doc.revision == 0:
                doc.revision = self._next_revision()
            plan.append((doc, self.routing.recipients(doc, sub.recipients)))
        rows: list[NewOutbound] = []
        events: list[trail.Event] = []
        now = self.clock()
        keyed = [(doc, targets, keys_of(doc)) for doc, targets in plan]
        if sub.document_digest:
            events.append(
                trail.Event(
                    "translated",
                    now,
                    correlation_id=sub.correlation_id,
                    sender="domestic",
                    body_type=sub.document.DESCRIPTOR.full_name,
                    document_digest=sub.document_digest,
                    keys=keyed[0][2],  # the first document is the submitted one
                    detail="a domestic document translated into the canonical form"
                    + (f", with {len(sub.derived)} derived message(s)" if sub.derived else ""),
                )
            )
        for doc, targets, doc_keys in keyed:
            keys = json.dumps(doc_keys, sort_keys=True)
            how = "as the domestic system asked" if sub.recipients else "by the routing rules"
            events.append(
                trail.Event(
                    "routed",
                    now,
                    correlation_id=sub.correlation_id,
                    sender="domestic",
                    body_type=doc.DESCRIPTOR.full_name,
                    document_digest=sub.document_digest or b"",
                    keys=doc_keys,
                    detail=f"to {', '.join(targets)}, {how}"[:300],
                )
            )
            rows += [
                self._sealed(
                    doc,
                    recipient,
                    sub.correlation_id,
                    keys,
                    sub.document_digest,
                    sub.submission_id or None,
                )
                for recipient in targets
            ]
        answer = b""
        if sub.submission_id:
            answer = spb.SubmitResponse(
                queued=[spb.Queued(message_id=r.message_id, recipient=r.recipient) for r in rows],
                document_digest=sub.document_digest or b"",
            ).SerializeToString()
        return Outgoing(rows, sub.submission_id, answer, events)

    def _sealed(
        self,
        document: Message,
        recipient: str,
        correlation_id: str,
        keys: str,
        document_digest: bytes | None,
        submission_id: str | None = None,
    ) -> NewOutbound:
        """``document`` signed in a new envelope for ``recipient``, as an outbound row."""
        now = self.clock()
        ttl = self.config.limits.message_ttl
        data, header = build_envelope(
            self.signer,
            sender=self.party,
            recipient=recipient,
            document=document,
            created_at=now,
            ttl=ttl,
            correlation_id=correlation_id,
        )
        if len(data) > self.config.limits.max_envelope_bytes:
            # a partner refuses it (they accept what we do): refused now, not dead-lettered
            raise SubmissionError(
                f"the signed message would be {len(data)} bytes; partners accept envelopes "
                f"of at most {self.config.limits.max_envelope_bytes} bytes",
                reason="too-large",
            )
        return NewOutbound(
            message_id=header.message_id,
            correlation_id=correlation_id,
            recipient=recipient,
            body_type=header.body_type,
            envelope=data,
            envelope_digest=sha256(data),
            business_keys=keys,
            document_digest=document_digest,
            created_at=now,
            expires_at=now + ttl,
            submission_id=submission_id,
        )

    def _enqueue(self, tx: Tx, jobs: list[Outgoing]) -> list[list[DueDelivery]]:
        """Outbound messages in a group commit; each job's outbox entries, in id order."""
        entries = self.store.outbox.enqueue_in(
            tx,
            [row for job in jobs for row in job.rows],
            [(job.submission_id, job.answer) for job in jobs if job.submission_id],
            [event for job in jobs for event in job.events],
        )
        out: list[list[DueDelivery]] = []
        start = 0
        for job in jobs:
            out.append(entries[start : start + len(job.rows)])
            start += len(job.rows)
        return out

    def _queued(self, _jobs: list[Outgoing], entries: list[list[DueDelivery]]) -> None:
        """Hand the committed entries to the senders (in id order: jobs commit in order)."""
        flat = [entry for job in entries for entry in job]
        for listener in self.queued_listeners:
            listener(flat)

    async def retry_dead_letters(
        self, message_ids: Sequence[str] = (), partner: str | None = None
    ) -> list[tuple[str, str]]:
        """Queue dead letters again (by message id, or all of a partner's). One whose envelope
        is still valid goes again as it is; an expired one is signed afresh as a new message
        (new id and validity, same body and correlation id) that replaces it. Returns
        (dead letter id, id now queued) pairs."""
        letters: list[OutboundMessage] = []
        wanted: list[str | None] = list(message_ids) or [None]
        for message_id in wanted:
            letters += await self.store.outbox.dead_letters(message_id, partner)
        now = self.clock()
        margin = self.config.limits.clock_skew
        again = [m for m in letters if m.expires_at and as_utc(m.expires_at) > now + margin]
        stale = [m for m in letters if m not in again]
        replacements: list[NewOutbound] = []
        for old in stale:
            body_type = old.body_type
            cls = body_class(body_type)
            if cls is None:
                raise SubmissionError(f"{old.message_id}: unknown body type {body_type}")
            document = cls.FromString(pb.Envelope.FromString(old.envelope).body)
            replacements.append(
                self._sealed(
                    document,
                    old.recipient,
                    old.correlation_id,
                    old.business_keys,
                    old.document_digest,
                )
            )
        if again:
            await self.store.outbox.requeue([m.message_id for m in again], now)
        if stale:
            await self.store.outbox.replace([m.message_id for m in stale], replacements)
        self.outbox_changed.notify()
        return [(m.message_id, m.message_id) for m in again] + [
            (old.message_id, new.message_id) for old, new in zip(stale, replacements, strict=True)
        ]

    def _next_revision(self) -> int:
        """A revision for state the domestic system did not number: microseconds since the
        epoch, strictly increasing within this process (a hybrid logical clock), so a later
        change always carries a higher revision than an earlier one."""
        now = int(self.clock().timestamp() * 1_000_000)
        self._last_revision = max(now, self._last_revision + 1)
        return self._last_revision

    async def close(self) -> None:
        """Commit what is in flight; afterwards nothing more is accepted."""
        await self.writes.close()
        self.workers.shutdown(wait=False, cancel_futures=True)
        self.translation.close()


@dataclass(frozen=True)
class Submission:
    document: Message
    recipients: Sequence[str] = ()
    correlation_id: str = ""
    document_digest: bytes | None = None
    derived: Sequence[Message] = ()
    submission_id: str = ""
    source: str = "domestic"  # who submitted it, for a rejection's record: "folder:<name>"


def derived_messages(document: Message) -> list[Message]:
    """Messages a document implies besides itself: the control results its notifications
    report (a partner may recognise a control without reading RES-DMS)."""
    if not isinstance(document, Response):
        return []
    found = (control_result_from(r) for r in (document, *document.further_responses))
    return [result for result in found if result is not None]


@dataclass(frozen=True)
class Outgoing:
    rows: list[NewOutbound]
    submission_id: str
    answer: bytes  # the serialised SubmitResponse, stored for an idempotent resubmission
    events: list[trail.Event] = field(default_factory=list)  # translated, routed


def queued_from(answer: bytes) -> list[QueuedMessage]:
    response = spb.SubmitResponse.FromString(answer)
    return [QueuedMessage(q.message_id, q.recipient) for q in response.queued]


def state_of(document: Message, sender: str) -> StateRef | None:
    """Which revisioned state a partner's document updates, checking that the sender may."""
    if isinstance(document, AeoStatus):
        if document.issuing_administration != sender:
            raise SenderMismatchError(
                f"an AEO status from {sender} names issuing administration "
                f"{document.issuing_administration!r}",
                reason="not-issuer",
            )
        return StateRef(sender, "aeo", document.aeo_id, document.revision)
    if isinstance(document, ControlResult):
        return StateRef(sender, "control", control_key(document), document.revision)
    return None


def control_key(result: ControlResult) -> str:
    """What a control result is about: the declaration (MRN, else LRN), else its containers
    (their sorted list, or its SHA-256 where that is longer than a key may be)."""
    if result.declaration_id:
        return f"mrn:{result.declaration_id}"
    if result.functional_reference_id:
        return f"lrn:{result.functional_reference_id}"
    containers = ",".join(sorted(set(result.container_ids)))
    if len(containers) <= MAX_KEY_LENGTH:
        return f"containers:{containers}"
    return f"containers-sha256:{hashlib.sha256(containers.encode()).hexdigest()}"


def keys_of(document: Message) -> BusinessKeys:
    """``business_keys``, refused with ``business-key-invalid`` where one cannot be kept."""
    try:
        return business_keys(document)
    except InvalidBusinessKey as exc:
        raise BusinessKeyError(str(exc)) from None


def claimed_message_id(data: bytes | None) -> str:
    """The message id an envelope claims, read without trusting it (for rejection records)."""
    if not data:
        return ""
    try:
        claimed = pb.Header.FromString(pb.Envelope.FromString(data).header).message_id
    except DecodeError:
        return ""
    # Unverified input goes into the rejection record only in a shape the store can hold.
    return claimed if UUID_TEXT.fullmatch(claimed) else ""


def check_submission(document: Message, local_party: str) -> None:
    """The minimum a business message needs before it may be signed and sent."""
    if isinstance(document, GoodsDeclaration):
        if not (document.functional_reference_id.strip() or document.id.strip()):
            raise SubmissionError(
                "a goods declaration needs a functional reference (LRN, D026) or an id (MRN, D014)",
                reason="missing-business-key",
            )
    elif isinstance(document, AeoStatus):
        if not document.aeo_id.strip():
            raise SubmissionError("an AEO status needs aeo_id", reason="missing-business-key")
        if document.issuing_administration not in ("", local_party):
            raise SubmissionError(
                f"this hub shares AEO decisions of {local_party}; the status names issuing "
                f"administration {document.issuing_administration!r}",
                reason="not-issuer",
            )
        document.issuing_administration = local_party
    elif isinstance(document, ControlResult):
        concerns = (
            document.declaration_id or document.functional_reference_id or document.container_ids
        )
        if not (document.control_id.strip() and concerns):
            raise SubmissionError(
                "a control result needs control_id and the declaration (MRN or LRN) or "
                "containers it concerns",
                reason="missing-business-key",
            )


class Slice:
    """Inline work on the event loop, a unit at a time: ``await pause()`` after each unit gives
    the loop a turn once ``SLICE_SECONDS`` have gone by since the last."""

    __slots__ = ("began",)

    def __init__(self) -> None:
        self.began = time.perf_counter()

    async def pause(self) -> None:
        if time.perf_counter() - self.began >= SLICE_SECONDS:
            await asyncio.sleep(0)
            self.began = time.perf_counter()


class _Heavy(Exception):
    """An envelope's partner document is too costly to translate on the loop: open it on a
    worker thread instead (Hub._open_batch)."""
