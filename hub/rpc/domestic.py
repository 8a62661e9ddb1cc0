"""The Domestic service: domestic systems submit documents and subscribe to what partners sent."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
from google.protobuf.message import DecodeError, Message

from hub.app.context import Slice
from hub.app.hub import Hub
from hub.app.submission import Submission, derived_messages
from hub.app.telemetry import log_ids, now_ns, span_context
from hub.app.traces import DETECTED, Pickup, hand_over, refused_submit
from hub.core.envelope import sha256
from hub.core.errors import HubError, LimitError, SubmissionError, TranslationError
from hub.core.messages import GoodsDeclaration, body_class
from hub.core.recognition import MAX_ANNOTATION_BYTES
from hub.pb.customs_hub.v1 import recognition_pb2 as rpb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.rpc.recognition import lookups_of
from hub.rpc.status import abort

log = logging.getLogger("customs_hub.service")

DOMESTIC = spb.DESCRIPTOR.services_by_name["Domestic"]
DOMESTIC_SERVICE = "customs_hub.v1.Domestic"
DECLARATION = GoodsDeclaration.DESCRIPTOR.full_name
# A declaration's body up to this size is opened on the event loop to annotate it (a 17 KB CDS
# declaration parses in well under a millisecond); a larger one on a worker thread.
INLINE_PARSE_BYTES = 64 * 1024


def submit_error(error: HubError) -> spb.SubmitError:
    out = spb.SubmitError(reason=error.reason, detail=error.message)
    if isinstance(error, TranslationError):
        out.line, out.column = error.line or 0, error.column or 0
        out.path, out.wco_pointer = error.path or "", error.pointer or ""
    return out


class DomesticService(sgrpc.DomesticServicer):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.translators = hub.translators
        self.lookups = lookups_of(hub)

    async def _document_of(
        self, request: spb.SubmitRequest, start: int = 0
    ) -> tuple[Message, bytes | None, Pickup | None]:
        """The business message a request carries (translated from a raw document), the raw
        document's digest, and when it came and was translated (``start``: with telemetry on,
        when the call came); a refusal is recorded before it is raised."""
        which = request.WhichOneof("document")
        digest: bytes | None = None
        try:
            if which is None:
                raise SubmissionError("the request carries no document", reason="no-document")
            if which == "raw":
                digest = sha256(request.raw.content)
                began = now_ns() if start else 0
                # a large document is translated off the loop: it stalls no other call
                document = await self.hub.translate(request.raw.format, request.raw.content)
                # the format named, or "detected" (the translator found it from the content)
                named = request.raw.format or DETECTED
                translated = (began, now_ns(), named) if start else None
                return document, digest, Pickup(start, translated) if start else None
            return getattr(request, which), None, Pickup(start) if start else None
        except HubError as exc:
            span = refused_submit(self.hub.telemetry, start, exc) if start else None
            await self.hub.audit.record_rejection(
                "domestic", None, exc, document_digest=digest, trace=span
            )
            raise

    async def Submit(
        self, request: spb.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> spb.SubmitResponse:
        start = now_ns() if self.hub.telemetry.tracing else 0
        try:
            document, digest, pickup = await self._document_of(request, start)
        except HubError as exc:
            await abort(context, exc)
            raise
        submission = Submission(
            document,
            list(request.recipients),
            request.correlation_id,
            digest,
            derived_messages(document),
            request.submission_id,
            pickup=pickup,
        )
        try:  # Submissions.submit_many records its own rejections
            [queued] = await self.hub.submission.submit_many([submission])
            if isinstance(queued, HubError):
                raise queued
        except HubError as exc:
            await abort(context, exc)
            raise
        return spb.SubmitResponse(
            queued=[spb.Queued(message_id=q.message_id, recipient=q.recipient) for q in queued],
            document_digest=digest or b"",
        )

    async def SubmitBatch(
        self, request: spb.SubmitBatchRequest, context: grpc.aio.ServicerContext
    ) -> spb.SubmitBatchResponse:
        limit = self.hub.config.limits.max_batch_envelopes
        if len(request.requests) > limit:
            await abort(
                context,
                LimitError(
                    f"a batch may carry at most {limit} documents; this one has "
                    f"{len(request.requests)}"
                ),
            )
        results: list[spb.SubmitResult | None] = [None] * len(request.requests)
        submissions: list[tuple[int, Submission]] = []
        turn = Slice()  # documents translated on the loop give it a turn every 2 ms
        start = now_ns() if self.hub.telemetry.tracing else 0
        for i, sub in enumerate(request.requests):
            try:
                document, digest, pickup = await self._document_of(sub, start)
            except HubError as exc:
                results[i] = spb.SubmitResult(error=submit_error(exc))
                continue
            finally:
                await turn.pause()
            submissions.append(
                (
                    i,
                    Submission(
                        document,
                        list(sub.recipients),
                        sub.correlation_id,
                        digest,
                        derived_messages(document),
                        sub.submission_id,
                        pickup=pickup,
                    ),
                )
            )
        try:
            outcomes = await self.hub.submission.submit_many([s for _, s in submissions])
        except HubError as exc:  # nothing of this batch was queued
            await abort(context, exc)
            raise
        for (i, submission), outcome in zip(submissions, outcomes, strict=True):
            if isinstance(outcome, HubError):
                results[i] = spb.SubmitResult(error=submit_error(outcome))
                continue
            results[i] = spb.SubmitResult(
                queued=spb.SubmitResponse(
                    queued=[
                        spb.Queued(message_id=q.message_id, recipient=q.recipient) for q in outcome
                    ],
                    document_digest=submission.document_digest or b"",
                )
            )
        return spb.SubmitBatchResponse(results=[r for r in results if r is not None])

    async def Subscribe(
        self, request: spb.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[spb.InboundMessage]:
        if not request.subscriber:
            await abort(
                context, SubmissionError("subscriber name is required", reason="no-subscriber")
            )
        if request.format and request.format not in self.translators.formats:
            await abort(
                context,
                SubmissionError(
                    f"format {request.format!r} is not registered", reason="unsupported-format"
                ),
            )
        store, limits = self.hub.store, self.hub.config.limits
        try:
            cursor = request.after_cursor or await store.inbound.acknowledged(request.subscriber)
        except HubError as exc:
            await abort(context, exc)
            raise
        while True:
            try:
                rows = await store.inbound.after(cursor, limits.subscribe_batch)
            except HubError as exc:
                await abort(context, exc)
                raise
            tracing = self.hub.telemetry.tracing
            for row in rows:
                began = now_ns() if tracing else 0
                cursor = row.id or cursor
                document, refusal = (
                    await self.hub.off_loop(self._document, request.format, row.body_type, row.body)
                    if request.format
                    else (None, "")
                )
                if refusal:  # the body is handed on whole; only the document is missing
                    log.warning(
                        "inbound %s handed on without a %s document: %s",
                        row.message_id,
                        request.format,
                        refusal,
                        extra=log_ids(span_context(row.trace or "")),  # its receive trace
                    )
                try:
                    recognition = await self._recognition(row.body_type, row.body)
                except HubError as exc:
                    await abort(context, exc)
                    raise
                omitted = recognition is not None and recognition.ByteSize() > MAX_ANNOTATION_BYTES
                if omitted:  # handed on without it rather than failing the stream
                    log.warning(
                        "annotation of inbound %s left out: %d bytes",
                        row.message_id,
                        recognition.ByteSize() if recognition is not None else 0,
                    )
                    recognition = None
                if tracing:
                    hand_over(self.hub.telemetry, began, row)
                yield spb.InboundMessage(
                    cursor=cursor,
                    message_id=row.message_id,
                    correlation_id=row.correlation_id,
                    sender=row.sender,
                    body_type=row.body_type,
                    body=row.body,
                    envelope_digest=row.envelope_digest,
                    document=document or b"",
                    document_format=request.format if document else "",
                    document_refusal=refusal,
                    superseded=row.superseded,
                    recognition=recognition,
                    recognition_omitted=omitted,
                )
            if not rows:
                await self.hub.inbound_arrived.wait(limits.poll_seconds)

    async def _recognition(self, body_type: str, body: bytes) -> rpb.DeclarationRecognition | None:
        """A partner's declaration annotated as of now (hub/app/recognition.py: one read of
        the registry for its parties, one for controls); None for any other message."""
        if body_type != DECLARATION:
            return None
        try:
            declaration = (
                GoodsDeclaration.FromString(body)
                if len(body) <= INLINE_PARSE_BYTES
                else await self.hub.off_loop(GoodsDeclaration.FromString, body)
            )
        except DecodeError:  # verified and parsed at receipt: not expected
            return None
        return await self.lookups.annotate(declaration)

    def _document(self, format_id: str, body_type: str, body: bytes) -> tuple[bytes | None, str]:
        """The body as a document in ``format_id`` (none asked: none), or why not."""
        cls = body_class(body_type) if format_id else None
        if cls is None:
            return None, "unsupported-document" if format_id else ""
        return self.translators.try_encode(format_id, cls.FromString(body))

    async def Acknowledge(
        self, request: spb.AcknowledgeRequest, context: grpc.aio.ServicerContext
    ) -> spb.AcknowledgeResponse:
        if not request.subscriber:
            await abort(
                context, SubmissionError("subscriber name is required", reason="no-subscriber")
            )
        try:
            stored = await self.hub.store.inbound.acknowledge(request.subscriber, request.cursor)
        except HubError as exc:  # the store is unavailable: UNAVAILABLE, and the caller retries
            await abort(context, exc)
            raise
        return spb.AcknowledgeResponse(acknowledged_cursor=stored)
