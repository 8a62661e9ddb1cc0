"""The spans of a message's way through the hub (docs/telemetry.md), made only when
``Telemetry.tracing``: the procedures take ``now_ns()`` at the boundaries of a batch's phases
and each message gets spans with its batch's times.

Sender: one trace per envelope, its root ``submit`` (from the domestic call or the drop
folder's pickup to queued) with ``translate``, ``policy``, ``sign`` and ``store``; the root's
context travels in the signed header (``traceparent``), so ``outbox wait``, each ``deliver``
attempt and its ``receipt`` join the trace later, read back from the stored envelope.
Receiver: a trace of its own per envelope, its root ``receive`` linked to the sender's
context (never its child), with ``verify``, ``store`` and ``receipt``; the root's context is
kept with the inbound row, for the ``hand-over`` to a domestic system.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from opentelemetry.trace import Span, SpanContext, SpanKind

from hub.app.telemetry import (
    ATTEMPT,
    BODY_TYPE,
    FORMAT,
    MESSAGE_ID,
    OUTCOME,
    PARTNER,
    REASON,
    Telemetry,
    finish,
    log_ids,
    now_ns,
    reason_code,
    short_type,
    span_context,
    traceparent,
)
from hub.core.envelope import claimed_header
from hub.core.errors import HubError
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.store.schema import DueDelivery, InboundMessage

# the spans' names, in one place for docs/telemetry.md and the tests
SUBMIT = "submit"
DERIVED = "derived"
TRANSLATE = "translate"
POLICY = "policy"
SIGN = "sign"
STORE = "store"
OUTBOX_WAIT = "outbox wait"
DELIVER = "deliver"
RECEIPT = "receipt"
RECEIVE = "receive"
VERIFY = "verify"
HAND_OVER = "hand-over"
# the format of a translated document whose format the submitter left to be detected
DETECTED = "detected"


@dataclass(frozen=True)
class Pickup:
    """When a domestic document was taken in (the call, or the drop folder's read), and when
    and from what format it was translated: ns since the epoch."""

    start: int
    translated: tuple[int, int, str] | None = None  # start, end, format


class SubmitTrace:
    """One submission's spans: each envelope's ``submit`` root (``derived`` for a message
    derived from the document, in the document's trace) opened before the envelope is signed,
    so its header names it, and ended with its children once the group commit holds it."""

    def __init__(self, telemetry: Telemetry, pickup: Pickup | None) -> None:
        self.telemetry = telemetry
        self.checking = now_ns()
        self.start = pickup.start if pickup is not None else self.checking
        self.translated = pickup.translated if pickup is not None else None
        self.sealing = self.sealed = self.checking
        self.opened: list[tuple[Span, bool]] = []  # each envelope's span; whether a root
        self.roots: dict[str, SpanContext] = {}  # the submitted document's, by recipient

    def checked(self) -> None:
        """Routing and agreements were checked: signing begins."""
        self.sealing = now_ns()

    def open(self, recipient: str, body_type: str, derived: bool) -> Span:
        """The span of the envelope about to be signed for ``recipient``."""
        attributes = {BODY_TYPE: short_type(body_type), PARTNER: recipient}
        parent = self.roots.get(recipient) or next(iter(self.roots.values()), None)
        if derived and parent is not None:
            span = self.telemetry.begin(DERIVED, self.sealing, parent=parent, attributes=attributes)
        else:
            span = self.telemetry.begin(
                SUBMIT, self.start, attributes=attributes, kind=SpanKind.SERVER
            )
            if not derived:
                self.roots.setdefault(recipient, span.get_span_context())
        self.opened.append((span, not derived or parent is None))
        return span

    def done(self) -> None:
        """Every envelope is signed: what is left is the commit."""
        self.sealed = now_ns()

    def queued(self, committing: int, end: int) -> None:
        """Held by the commit that began at ``committing``: each envelope's spans, ended."""
        telemetry = self.telemetry
        for span, root in self.opened:
            context = span.get_span_context()
            if root and self.translated is not None:
                start, stop, format_id = self.translated
                attributes = {FORMAT: format_id[:64]}
                telemetry.span(TRANSLATE, start, stop, parent=context, attributes=attributes)
            telemetry.span(POLICY, self.checking, self.sealing, parent=context)
            telemetry.span(SIGN, self.sealing, self.sealed, parent=context)
            telemetry.span(STORE, committing, end, parent=context)
            finish(span, end)

    def failed(self, error: HubError) -> SpanContext:
        """Refused (or the commit failed): the envelopes' spans end with its reason; with
        none signed yet, a ``submit`` root says so alone. The first span's context (for the
        log line of the refusal)."""
        end = now_ns()
        attributes = {REASON: error.reason}
        if not self.opened:
            return refused_submit(self.telemetry, self.start, error, end)
        first = self.opened[0][0].get_span_context()
        for span, _ in self.opened:
            span.set_attributes(attributes)
            finish(span, end, error.reason)
        self.opened = []
        return first


def refused_submit(telemetry: Telemetry, start: int, error: HubError, end: int = 0) -> SpanContext:
    """A submission refused before anything was signed: a failed ``submit`` root alone."""
    return telemetry.span(
        SUBMIT,
        start,
        end or now_ns(),
        attributes={REASON: error.reason},
        kind=SpanKind.SERVER,
        error=error.reason,
    )


class DeliveryTrace:
    """A partner sender's spans: ``outbox wait`` as a frame takes a message, then one
    ``deliver`` per attempt (with the ``receipt`` verification under it), each parented by
    the trace context in the message's signed header. What is in flight is held here by
    outbox entry, at most a sender's window of frames."""

    def __init__(self, telemetry: Telemetry, partner: str) -> None:
        self.telemetry = telemetry
        self.partner = partner
        # entry id -> (the message's span, its id, type, when written, attempt number)
        self.sent: dict[int, tuple[SpanContext, str, str, int, int]] = {}

    def taken(self, frame: Sequence[DueDelivery]) -> None:
        """The frame is about to be written (an attempt begins): a message's first wait in
        the outbox ends (a retry's wait is the backoff, between its attempts' spans)."""
        now = now_ns()
        for item in frame:
            header = claimed_header(item.envelope)
            parent = span_context(header.traceparent) if header is not None else None
            if header is None or parent is None:  # signed while telemetry was off
                continue
            if not item.attempts:
                attributes = {MESSAGE_ID: item.message_id, PARTNER: self.partner}
                created = min(header.created_at.ToNanoseconds(), now)
                self.telemetry.span(OUTBOX_WAIT, created, now, parent=parent, attributes=attributes)
            kind = short_type(item.body_type)
            self.sent[item.entry_id] = (parent, item.message_id, kind, now, item.attempts + 1)

    def _deliver(self, item: DueDelivery, outcome: str, reason: str, error: str) -> SpanContext:
        held = self.sent.pop(item.entry_id, None)
        if held is None:
            return SpanContext(0, 0, False)
        parent, message_id, kind, start, attempt = held
        attributes: dict[str, str | int] = {
            MESSAGE_ID: message_id,
            BODY_TYPE: kind,
            PARTNER: self.partner,
            ATTEMPT: attempt,
            OUTCOME: outcome,
        }
        if reason:  # a partner's receipt's reason can be any text: only codes we know
            attributes[REASON] = reason_code(reason)
        error = reason_code(error) if error else ""
        return self.telemetry.span(
            DELIVER,
            start,
            now_ns(),
            parent=parent,
            attributes=attributes,
            kind=SpanKind.CLIENT,
            error=error,
        )

    def failed(self, items: Sequence[DueDelivery], reason: str) -> None:
        """The attempt failed for these (the stream, a write, a receipt that did not verify):
        they stay queued."""
        for item in items:
            self._deliver(item, "failed", reason, reason or "failed")

    def settled(
        self,
        item: DueDelivery,
        outcome: str,
        reason: str,
        verifying: tuple[int, int],
        refused: bool = False,
    ) -> None:
        """The partner's receipt for ``item`` was verified over ``verifying`` (a refused one:
        the attempt failed) and gave ``outcome``."""
        error = reason if refused else ""
        context = self._deliver(item, "failed" if refused else outcome, reason, error)
        if context.is_valid:
            self.telemetry.span(
                RECEIPT, *verifying, parent=context, attributes={MESSAGE_ID: item.message_id}
            )

    def log_ids(self, item: DueDelivery) -> dict[str, str]:
        """``extra=`` for a log line about ``item``'s attempt in flight: its trace's ids."""
        held = self.sent.get(item.entry_id)
        return log_ids(held[0]) if held is not None else {}

    def forget(self, items: Sequence[DueDelivery]) -> None:
        """Abandoned in flight, not failed (delivery stopped): no span."""
        for item in items:
            self.sent.pop(item.entry_id, None)


class ReceiveTrace:
    """A received batch's spans: for each envelope accepted a ``receive`` root linked to the
    sender's context in its header (never parented by it: a partner neither joins nor
    samples our traces), opened before its row is stored so the row keeps it; ``verify``,
    ``store`` and ``receipt`` under it. A refusal: a ``receive`` root that failed, with the
    reason."""

    def __init__(self, telemetry: Telemetry, partner: str) -> None:
        self.telemetry = telemetry
        self.partner = partner
        self.start = now_ns()
        self.verified = self.committing = self.start
        self.opened: list[Span] = []
        self.signing: tuple[int, int] | None = None

    def opened_all(self) -> None:
        self.verified = now_ns()

    def root(self, header: pb.Header) -> str:
        """The ``receive`` span of an envelope about to be stored; its traceparent."""
        span = self.telemetry.begin(
            RECEIVE,
            self.start,
            link=span_context(header.traceparent),
            attributes={
                MESSAGE_ID: header.message_id,
                BODY_TYPE: short_type(header.body_type),
                PARTNER: self.partner,
            },
            kind=SpanKind.SERVER,
        )
        self.opened.append(span)
        return traceparent(span.get_span_context())

    def commit(self) -> None:
        self.committing = now_ns()

    def stored(self, outcomes: Sequence[tuple[str, tuple[int, int]]]) -> list[SpanContext]:
        """The commit is over: each opened span's outcome (accepted, duplicate, or the reason
        code of one refused after all) and when its receipt was signed (none: zeros); their
        contexts, in order."""
        end = now_ns()
        contexts = [span.get_span_context() for span in self.opened]
        for span, (outcome, signing) in zip(self.opened, outcomes, strict=True):
            context = span.get_span_context()
            self.telemetry.span(VERIFY, self.start, self.verified, parent=context)
            self.telemetry.span(STORE, self.committing, end, parent=context)
            if signing[0]:
                self.telemetry.span(RECEIPT, *signing, parent=context)
            if outcome in ("accepted", "duplicate"):
                span.set_attribute(OUTCOME, outcome)
                finish(span, end)
            else:
                span.set_attributes({OUTCOME: "rejected", REASON: outcome})
                finish(span, end, outcome)
        self.opened = []
        return contexts

    def abandoned(self, error: HubError) -> None:
        """The commit failed (this hub's fault): the opened spans end with its reason."""
        self.stored([(error.reason, (0, 0))] * len(self.opened))

    def answered(self, header: pb.Header | None, error: HubError | None) -> SpanContext:
        """An envelope answered without being stored: refused (``error``), or a resend
        answered with the receipt it got before (a duplicate); ``header`` if it was read. Its
        span's context (for the log line about it)."""
        attributes: dict[str, str | int] = {PARTNER: self.partner}
        if header is not None:
            attributes[MESSAGE_ID] = header.message_id
        attributes[OUTCOME] = "rejected" if error is not None else "duplicate"
        if error is not None:
            attributes[REASON] = error.reason
        return self.telemetry.span(
            RECEIVE,
            self.start,
            now_ns(),
            link=span_context(header.traceparent) if header is not None else None,
            attributes=attributes,
            kind=SpanKind.SERVER,
            error=error.reason if error is not None else "",
        )


def hand_over(telemetry: Telemetry, start: int, row: InboundMessage) -> None:
    """A ``hand-over`` span (to a domestic system, from ``start``) under the message's
    ``receive`` span; for one received while telemetry was off, a root of its own linked to
    the sender's trace."""
    parent = span_context(row.trace) if row.trace else None
    link = None
    if parent is None:
        try:
            link = span_context(pb.Header.FromString(row.header).traceparent)
        except DecodeError:  # a stored header always parses
            link = None
    attributes = {
        MESSAGE_ID: row.message_id,
        BODY_TYPE: short_type(row.body_type),
        PARTNER: row.sender,
    }
    telemetry.span(HAND_OVER, start, now_ns(), parent=parent, link=link, attributes=attributes)
