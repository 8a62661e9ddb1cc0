"""What partners send: each envelope verified (hub/core/envelope.py), deduplicated, its
revisioned state and business keys read, and persisted with a signed receipt in one group commit
before the receipt leaves. A refusal is recorded and answered with a signed REJECTED receipt;
so is, with agreements configured, a message of a type no agreement in effect today lets come
from that partner (``not-covered-by-agreement``, hub/core/agreements.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import cast

from google.protobuf.message import Message
from opentelemetry.trace import SpanContext

from hub.app.audit import Audit
from hub.app.context import HubContext, Slice
from hub.app.learning import Learner, remember
from hub.app.telemetry import now_ns
from hub.app.traces import ReceiveTrace
from hub.core.agreements import RECEIVE
from hub.core.envelope import (
    OpenedEnvelope,
    SignedBeforeCertificate,
    check_time_window,
    claimed_message_id,
    make_receipt,
    open_envelope,
    sha256,
    sign_receipt,
    sign_receipts,
    signed_alike,
)
from hub.core.errors import (
    AgreementError,
    DuplicateConflictError,
    HubError,
    StoreDataError,
    SubmissionError,
    TimeWindowError,
    TranslationError,
    TrustError,
)
from hub.core.messages import (
    BusinessKeys,
    body_class,
    keys_of,
)
from hub.core.registry import record_of
from hub.core.revisions import StateRef, state_of
from hub.core.revocation import signature_key_ids, withheld_refusal
from hub.core.signing import VerificationKey
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.store.groupcommit import Lane
from hub.store.rawsql import Tx
from hub.store.schema import (
    Accepted,
    InboundRow,
    Incoming,
)

log = logging.getLogger("customs_hub")

# Work known to take well under a millisecond is done on the event loop itself: handing it to a
# worker thread makes the loop and the thread take turns at the GIL, which costs more than the
# work (bench/e2e.py lost a quarter of its declarations per second and a tenth of its AEO
# statuses). Envelopes up to this size are opened on the loop (at most 4 signatures, only known
# keys tried; 16 KiB of the costliest protobuf, thousands of empty goods items, takes some
# 5 ms), one with a partner-format document inside never is, and a run of such work gives the
# loop a turn every SLICE_SECONDS.
INLINE_ENVELOPE_BYTES = 16 * 1024
# Inbound frames are answered after their commit: commits of at most this many messages keep
# that wait short (a 64-envelope frame and part of the next).
INBOUND_COMMIT_ITEMS = 128

Checked = tuple[OpenedEnvelope, StateRef | None, BusinessKeys] | HubError

DUPLICATE = pb.RECEIPT_OUTCOME_DUPLICATE


class _Heavy(Exception):
    """An envelope's partner document is too costly to translate on the loop: open it on a
    worker thread instead (Ingress._open_batch)."""


class _Withheld(dict[str, VerificationKey]):
    """A partner's usable keys, knowing which were withheld by revocation and why."""

    def __init__(
        self, keys: Mapping[str, VerificationKey], withheld: Mapping[str, TrustError]
    ) -> None:
        super().__init__(keys)
        self.withheld = withheld


class Ingress:
    def __init__(self, hub: HubContext, audit: Audit) -> None:
        self.hub, self.audit = hub, audit
        self.commits: Lane[Incoming, Accepted] = hub.writes.lane(
            "inbound", self.accept_in, max_items=INBOUND_COMMIT_ITEMS
        )

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
        now = self.hub.clock()
        telemetry = self.hub.telemetry
        trace = ReceiveTrace(telemetry, peer_party) if telemetry.tracing else None
        results: list[pb.SignedReceipt | HubError | None] = [None] * len(envelopes)
        refused: list[tuple[bytes, HubError]] = []
        pending: list[tuple[int, Incoming, OpenedEnvelope]] = []
        checked = await self._open_batch(envelopes, peer_party, now)
        if trace is not None:
            trace.opened_all()
        if after is not None:
            await after.wait()
        now = self.hub.clock()  # after the wait: the time the window is checked at and kept
        agreements = self.hub.agreements  # one policy for the batch
        for i, (data, check) in enumerate(zip(envelopes, checked, strict=True)):
            if isinstance(check, HubError):
                first = await self._accepted_before(peer_party, data, check)
                results[i] = first or check
                if first is None:
                    refused.append((data, check))
                continue
            opened, state, named = check
            try:
                check_time_window(opened.header, now, self.hub.policy)
            except TimeWindowError as exc:
                # A retry of a message accepted before it expired is still a duplicate, not a
                # rejection: its sender may only have lost our first receipt.
                earlier = await self.hub.store.inbound.find(peer_party, opened.header.message_id)
                if earlier is not None and signed_alike(
                    (earlier.envelope_digest, earlier.header),
                    (opened.envelope_digest, opened.header_bytes),
                ):
                    results[i] = pb.SignedReceipt.FromString(earlier.signed_receipt)
                else:
                    results[i] = exc
                    refused.append((data, exc))
                continue
            try:
                agreements.require(
                    peer_party, opened.document.DESCRIPTOR.full_name, RECEIVE, now.date()
                )
            except AgreementError as exc:
                # the very envelope accepted before the agreements changed keeps its receipt
                first = await self._accepted_before(peer_party, data, exc)
                results[i] = first or exc
                if first is None:
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
                envelope=data,  # the bytes its digest and the trail leaf were taken of
            )
            if opened.original_format:  # hand on the translation; keep what was signed
                row.body_type = opened.document.DESCRIPTOR.full_name
                row.body = opened.document.SerializeToString(deterministic=True)
                row.original_format, row.original_body = opened.original_format, opened.body
                row.document_digest = opened.document_digest
            if trace is not None:  # its receive span, kept with it for the hand-over
                row.trace = trace.root(header)
            record = record_of(opened.document, peer_party, header.message_id, 0, now)
            pending.append((i, Incoming(row, state, record), opened))
        if trace is not None:
            trace.commit()
        committed = self.commits.enqueue([p[1] for p in pending])
        then.set()  # in its place: the next batch may take its own
        try:
            outcomes: Sequence[Accepted | StoreDataError] = await committed
        except StoreDataError:  # one envelope's data the store refused: each alone, to know
            outcomes = [await self._accept_alone(incoming) for _, incoming, _ in pending]
        except HubError as exc:
            if trace is not None:
                trace.abandoned(exc)
            raise
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
        # each refusal's span, by the error's identity, for its log line's trace ids
        spans_of: dict[int, SpanContext] = {}
        if trace is not None:
            contexts = trace.stored(
                [
                    self._traced(outcome, results[i], incoming)
                    for (i, incoming, _), outcome in zip(pending, outcomes, strict=True)
                ]
            )
            for (i, _, _), span in zip(pending, contexts, strict=True):
                spans_of[id(results[i])] = span
            held = {i for i, _, _ in pending}
            for i, result in enumerate(results):
                if i not in held and result is not None:  # refused, or a resend answered
                    check = checked[i]
                    read = check[0].header if isinstance(check, tuple) else None
                    error = result if isinstance(result, HubError) else None
                    spans_of[id(result)] = trace.answered(read, error)
        if fresh:
            log.debug("accepted %d message(s) from %s", fresh, peer_party)
            self.hub.inbound_arrived.notify()
        self.hub.metrics.received(peer_party, envelopes, results, pending, outcomes)
        if refused:
            spans = [spans_of.get(id(error)) for _, error in refused] if spans_of else ()
            await self.audit.record_rejections(peer_party, refused, spans)
        return [r for r in results if r is not None]

    @staticmethod
    def _traced(
        outcome: Accepted | StoreDataError,
        result: pb.SignedReceipt | HubError | None,
        incoming: Incoming,
    ) -> tuple[str, tuple[int, int]]:
        """What a stored envelope's receive span says: its outcome (a reason code if it was
        refused after all) and when its receipt was signed."""
        if isinstance(result, HubError):
            return result.reason, (0, 0)
        if isinstance(outcome, Accepted) and not outcome.fresh:
            return "duplicate", (0, 0)
        return "accepted", incoming.receipt_ns

    async def _accept_alone(self, incoming: Incoming) -> Accepted | StoreDataError:
        try:
            [accepted] = await self.commits.submit([incoming])
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
        keys = self.hub.keys_for(peer_party)  # one set for the batch, wherever it is opened
        # the keys of revoked signing certificates (or all, if their CA's list is stale and
        # fails closed) verify nothing
        keys, withheld = self.hub.revocation.usable_keys(peer_party, keys, now)
        if withheld:
            keys = _Withheld(keys, withheld)
        # a key the partner rotated to, read from the certificate its signature carries
        learner = Learner(self.hub, peer_party, now)
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
                    result = self._open(data, peer_party, now, keys, on_thread, learner)
            checked.append(result)
            if result is None:
                heavy.append(i)
            await turn.pause()
        if heavy:
            opened = await self.hub.off_loop(
                self._open_all, [envelopes[i] for i in heavy], peer_party, now, keys, learner
            )
            for i, result in zip(heavy, opened, strict=True):
                checked[i] = result
        done = cast(list[Checked], checked)  # every place filled, on the loop or the thread
        await self._keep_learned(learner, done)
        return done

    async def _keep_learned(self, learner: Learner, checked: Sequence[Checked]) -> None:
        """Keep the keys read from carried certificates that verified an envelope (also one
        refused afterwards for its window or as a conflict: the key was good), each with the
        id of the first message it verified, before any of those messages is stored."""
        if not learner.read:
            return
        first: dict[str, str] = {}
        for check in checked:
            if isinstance(check, SignedBeforeCertificate):
                opened = check.opened
            elif isinstance(check, tuple):
                opened = check[0]
            else:
                continue
            first.setdefault(opened.key_id, opened.header.message_id)
        for key in learner.learned(first):
            await remember(self.hub, [key], first[key.key.key_id])

    def _open_all(
        self,
        envelopes: Sequence[bytes],
        peer_party: str,
        now: datetime,
        keys: Mapping[str, VerificationKey],
        learner: Learner,
    ) -> list[Checked]:
        """``_open_batch`` for the envelopes it does not open on the loop, on a worker thread."""

        def read(format_id: str, content: bytes) -> Message:
            return self.read_raw(peer_party, format_id, content)

        return [self._open(data, peer_party, now, keys, read, learner) for data in envelopes]

    def _open(
        self,
        data: bytes,
        peer_party: str,
        now: datetime,
        keys: Mapping[str, VerificationKey],
        read_raw: Callable[[str, bytes], Message],
        learner: Learner,
    ) -> Checked:
        try:
            opened = open_envelope(
                data,
                peer_party=peer_party,
                local_party=self.hub.party,
                peer_keys=keys,
                now=now,
                policy=None,
                max_bytes=self.hub.config.limits.max_envelope_bytes,
                read_raw=read_raw,
                clock_skew=self.hub.policy.clock_skew,
                learn=learner,
            )
            return opened, state_of(opened.document, peer_party), keys_of(opened.document)
        except HubError as exc:
            if isinstance(keys, _Withheld) and exc.reason == "signature-invalid":
                return withheld_refusal(signature_key_ids(data), keys.withheld) or exc
            return exc

    async def _accepted_before(
        self, partner: str, data: bytes, error: HubError
    ) -> pb.SignedReceipt | None:
        """The receipt an identical envelope got when it was accepted, for a resend refused now
        only because this hub's rules changed since (the operator narrowed ``raw_formats``, a
        translator was upgraded, a limit was tightened): the sender may only have lost our
        first receipt, and what we accepted then stays accepted. The very same bytes, so
        nothing unverified is trusted. Or the same signed header under a signature by the
        sender's new key, whose certificate is valid now but began after the message was made
        (``SignedBeforeCertificate``): a resend after a key rotation, verified in every other
        step (docs/adr/0010-key-rotation.md)."""
        if error.transient:
            return None
        if isinstance(error, SignedBeforeCertificate):
            # signed again, with a key whose certificate began after the message was made:
            # a resend of a message accepted under the key before, whose signed header (and
            # so its body) this hub holds (docs/adr/0010-key-rotation.md)
            opened = error.opened
            earlier = await self.hub.store.inbound.find(partner, opened.header.message_id)
            if earlier is None or not signed_alike(
                (earlier.envelope_digest, earlier.header),
                (opened.envelope_digest, opened.header_bytes),
            ):
                return None
            return pb.SignedReceipt.FromString(earlier.signed_receipt)
        message_id = claimed_message_id(data)
        if not message_id:
            return None
        earlier = await self.hub.store.inbound.find(partner, message_id)
        if earlier is None or earlier.envelope_digest != sha256(data):
            return None
        return pb.SignedReceipt.FromString(earlier.signed_receipt)

    def read_raw(self, partner: str, format_id: str, content: bytes) -> Message:
        """A partner's document in a partner format, translated into its business message;
        only formats the operator allowed for that partner (``raw_formats``)."""
        self.allow_raw(partner, format_id)
        document = self.hub.translation.decode(format_id, content)  # on a worker thread
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
        known = self.hub.config.partners.get(partner)
        allowed = known.raw_formats if known is not None else ()
        if format_id not in allowed and "*" not in allowed:
            raise SubmissionError(
                f"{partner} may not send documents as {format_id or 'an unnamed format'!r}"
                + (f"; allowed: {', '.join(allowed)}" if allowed else "; only protobuf bodies"),
                reason="format-not-allowed",
            )
        if not format_id:  # a partner names its format: nothing is guessed across a border
            raise SubmissionError("the raw document names no format", reason="format-not-allowed")

    def accept_in(self, tx: Tx, incoming: list[Incoming]) -> list[Accepted]:
        """Inbound messages in a group commit: rows, revisions and batch-signed receipts."""
        now = self.hub.clock()

        def sign(rows: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
            receipts = [
                make_receipt(
                    message_id=row.message_id,
                    envelope_digest=row.envelope_digest,
                    outcome=pb.RECEIPT_OUTCOME_ACCEPTED,
                    receiver=self.hub.party,
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
                for signed in sign_receipts(self.hub.signer, receipts)
            ]

        if not self.hub.telemetry.tracing:
            return self.hub.store.inbound.accept_in(tx, incoming, sign)

        def timed(rows: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
            began = now_ns()
            receipts = sign(rows, head)
            signed = (began, now_ns())
            for item in incoming:
                item.receipt_ns = signed
            return receipts

        return self.hub.store.inbound.accept_in(tx, incoming, timed)

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
            receiver=self.hub.party,
            sender=sender,
            received_at=now,
            reason=reason,
            detail=detail,
        )
        return sign_receipt(self.hub.signer, receipt)

    def rejection_receipt(self, data: bytes, peer_party: str, error: HubError) -> pb.SignedReceipt:
        """A signed REJECTED receipt, so the sender holds proof of why we refused."""
        return self._receipt(
            claimed_message_id(data),
            sha256(data),
            peer_party,
            self.hub.clock(),
            pb.RECEIPT_OUTCOME_REJECTED,
            error.reason,
            error.message,
        )
