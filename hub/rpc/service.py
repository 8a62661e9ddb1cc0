"""The gRPC shell: PartnerExchange on the mTLS partner port, Domestic on its own port.

Servicers only translate between gRPC and ``Hub``: find the peer's party in its certificate,
pass the exact bytes received, and turn a ``HubError`` into a status code with a
machine-readable reason in trailing metadata (``customs-hub-reason``) and, for partners, a
signed REJECTED receipt (``customs-hub-receipt-bin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hub.app import keys
from hub.app.delivery import OutboxWorker
from hub.app.hub import Clock, Hub, Slice, Submission, derived_messages, system_clock
from hub.config import HubConfig
from hub.connectors.dropfolder import DropFolder
from hub.core.admission import Admission
from hub.core.auth import TokenIssuer, TokenVerifier
from hub.core.envelope import sha256
from hub.core.errors import (
    REASON_KEY,
    ConfigError,
    EnvelopeError,
    HubError,
    LimitError,
    RequestError,
    SubmissionError,
    TranslationError,
    TrustError,
)
from hub.core.messages import body_class
from hub.pb.customs_hub.v1 import audit_pb2 as apb
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.rpc.audit import AUDIT_SERVICE, AuditService
from hub.rpc.channels import PartnerChannels, PartnerEndpoint
from hub.rpc.status import code_of
from hub.store.db import Store

log = logging.getLogger("customs_hub.service")

RECEIPT_KEY = "customs-hub-receipt-bin"
LINE_KEY = "customs-hub-line"
COLUMN_KEY = "customs-hub-column"
PATH_KEY = "customs-hub-path"
POINTER_KEY = "customs-hub-wco-pointer"
PARTNER_SERVICE = "customs_hub.v1.PartnerExchange"
DOMESTIC_SERVICE = "customs_hub.v1.Domestic"


async def abort(
    context: grpc.aio.ServicerContext, error: HubError, receipt: bytes | None = None
) -> None:
    metadata: list[tuple[str, str | bytes]] = [(REASON_KEY, error.reason)]
    details = error.message
    if receipt is not None:
        metadata.append((RECEIPT_KEY, receipt))
    if isinstance(error, TranslationError):
        # where in the document: machine-readable keys, and the same in the human sentence
        for key, value in (
            (LINE_KEY, error.line),
            (COLUMN_KEY, error.column),
            (PATH_KEY, error.path),
            (POINTER_KEY, error.pointer),
        ):
            if value:
                metadata.append((key, str(value)))
        if error.location():
            details = f"{details} [{error.location()}]"
    await context.abort(code_of(error), details, trailing_metadata=tuple(metadata))


class PartnerExchangeService:
    """Registered by hand so that Deliver sees the exact request bytes and Exchange decodes
    its frames itself (no deserialisers): a frame that does not decode is answered."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        limits = hub.config.limits
        self.admission = Admission(
            calls=limits.partner_calls,
            streams=limits.partner_streams,
            stream_bytes=limits.stream_buffer_bytes,
            partner_bytes=limits.partner_buffer_bytes,
        )

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            PARTNER_SERVICE,
            {
                "Deliver": grpc.unary_unary_rpc_method_handler(
                    self.deliver,
                    request_deserializer=None,
                    response_serializer=pb.SignedReceipt.SerializeToString,
                ),
                "Exchange": grpc.stream_stream_rpc_method_handler(
                    self.exchange,
                    request_deserializer=None,  # decoded in exchange, so a bad frame is answered
                    response_serializer=pb.ReceiptBatch.SerializeToString,
                ),
            },
        )

    async def _peer(self, context: grpc.aio.ServicerContext) -> str:
        certs = context.auth_context().get("x509_pem_cert") or []
        try:
            if not certs:
                raise TrustError(
                    "no client certificate on the connection", reason="no-peer-certificate"
                )
            return self.hub.trust.peer_party(certs[0])
        except TrustError as exc:
            # a peer nobody registered: recorded, but at most once a minute for each reason,
            # so refused connections cannot grow the trail at will
            await self.hub.record_refusal("unknown-peer", exc)
            await abort(context, exc)
            raise  # abort raises; this line is for type checkers

    async def _over_limit(
        self, peer: str, exc: LimitError, context: grpc.aio.ServicerContext
    ) -> None:
        await self.hub.record_refusal(peer, exc)
        await abort(context, exc)

    async def deliver(self, request: bytes, context: grpc.aio.ServicerContext) -> pb.SignedReceipt:
        peer = await self._peer(context)
        try:
            self.admission.enter_call(peer)
        except LimitError as exc:
            await self._over_limit(peer, exc, context)
            raise
        try:
            return await self.hub.receive(request, peer)
        except HubError as exc:
            # transient trouble on our side is not the message's fault: no REJECTED receipt,
            # just UNAVAILABLE, and the sender tries again
            receipt = None if exc.transient else self.hub.rejection_receipt(request, peer, exc)
            await abort(context, exc, receipt.SerializeToString() if receipt else None)
            raise
        finally:
            self.admission.exit_call(peer)

    async def exchange(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ReceiptBatch]:
        """Frames are verified and committed as they arrive, several at a time (the sender
        keeps a window of frames in flight), and answered strictly in order. A frame that is
        not an EnvelopeBatch ends the stream with INVALID_ARGUMENT ``batch-malformed``, after
        the answers to the frames before it."""
        peer = await self._peer(context)
        limits = self.hub.config.limits
        try:
            budget = self.admission.open_stream(peer)
        except LimitError as exc:
            await self._over_limit(peer, exc, context)
            raise
        # each entry: the frame's envelopes, size and receiving task, or the error that ends
        # the stream
        queue: asyncio.Queue[
            tuple[list[bytes], int, asyncio.Task[list[pb.SignedReceipt | HubError]]]
            | HubError
            | None
        ] = asyncio.Queue(maxsize=limits.delivery_window * 2)

        holding = False  # the reader has a frame it has not queued yet: the stream is not idle

        async def read() -> None:
            nonlocal holding
            previous: asyncio.Event | None = None  # set once the frame before is committing
            try:
                async for frame in requests:
                    holding = True
                    # past the stream's or the partner's budget of unanswered bytes, the next
                    # frame waits here, unread, until the sender takes answers
                    await budget.take(len(frame))
                    try:
                        envelopes = list(pb.EnvelopeBatch.FromString(frame).envelopes)
                    except DecodeError:
                        error = EnvelopeError(
                            "an Exchange frame must be an EnvelopeBatch; this one does not decode",
                            reason="batch-malformed",
                        )
                        await self.hub.record_rejection(
                            peer, None, error, document_digest=sha256(frame)
                        )
                        await queue.put(error)
                        return
                    if len(envelopes) > limits.max_batch_envelopes:
                        error = LimitError(
                            f"a batch may carry at most {limits.max_batch_envelopes} envelopes; "
                            f"this one has {len(envelopes)}"
                        )
                        await self.hub.record_rejection(peer, None, error)
                        await queue.put(error)
                        return
                    placed = asyncio.Event()
                    task = asyncio.create_task(
                        self.hub.receive_batch(envelopes, peer, after=previous, then=placed)
                    )
                    previous = placed
                    await queue.put((envelopes, len(frame), task))
                    holding = False
                await queue.put(None)
            except HubError as exc:
                await queue.put(exc)
            except (grpc.RpcError, asyncio.InvalidStateError):
                await queue.put(None)  # the sender went away; what was read is still answered
            except Exception as exc:  # noqa: BLE001 - a bug here must end the stream, not hang it
                # where and what, not the exception's text, which may quote trade data
                where = traceback.extract_tb(exc.__traceback__)[-1]
                log.error(
                    "reading an Exchange stream from %s failed: %s at %s:%s",
                    peer,
                    type(exc).__name__,
                    where.filename,
                    where.lineno,
                )
                await queue.put(HubError("the hub failed while reading this stream"))

        reader = asyncio.create_task(read())
        taken: list[asyncio.Task[list[pb.SignedReceipt | HubError]]] = []
        try:
            while True:
                try:
                    entry = await asyncio.wait_for(queue.get(), limits.stream_idle_seconds)
                except TimeoutError:
                    if holding:  # a frame waits for budget: busy, not idle
                        continue
                    # nothing sent, nothing in flight: end it, status OK
                    log.info("an idle Exchange stream from %s ended", peer)
                    return
                if entry is None:
                    return
                if isinstance(entry, HubError):
                    await abort(context, entry)
                    return
                envelopes, size, task = entry
                taken.append(task)
                try:
                    results = await task
                except HubError as exc:
                    # transient trouble on our side (the store, shutting down): end the
                    # stream; the sender resends, and what was accepted comes back with the
                    # receipt it got the first time
                    await abort(context, exc)
                    return
                taken.pop()
                yield pb.ReceiptBatch(
                    receipts=[
                        r
                        if isinstance(r, pb.SignedReceipt)
                        else self.hub.rejection_receipt(data, peer, r)
                        for data, r in zip(envelopes, results, strict=True)
                    ]
                )
                budget.give(size)  # answered: the sender may send that much more
        finally:
            reader.cancel()
            while not queue.empty():
                left = queue.get_nowait()
                if isinstance(left, tuple):
                    taken.append(left[2])
            for task in taken:
                task.cancel()
            self.admission.close_stream(peer, budget)


class PartnerHealth:
    """The health service on the partner port, answering registered partners only (a peer
    that is not one is refused like on PartnerExchange)."""

    def __init__(self, inner: health.aio.HealthServicer, exchange: PartnerExchangeService) -> None:
        self.inner, self.exchange = inner, exchange

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        await self.exchange._peer(context)
        return await self.inner.Check(request, context)

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> None:
        """A partner's watch lasts: it counts as one of that partner's calls."""
        peer = await self.exchange._peer(context)
        admission = self.exchange.admission
        try:
            admission.enter_call(peer)
        except LimitError as exc:
            await self.exchange._over_limit(peer, exc, context)
            raise
        try:
            await self.inner.Watch(request, context)  # writes its answers with context.write
        finally:
            admission.exit_call(peer)

    async def List(self, request: object, context: grpc.aio.ServicerContext) -> None:
        await self.exchange._peer(context)
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "List is not offered")


DOMESTIC = spb.DESCRIPTOR.services_by_name["Domestic"]
AUDIT = apb.DESCRIPTOR.services_by_name["Audit"]


def decoding_handler(service: ServiceDescriptor, servicer: object) -> grpc.GenericRpcHandler:
    """``servicer``'s methods for ``service``, each decoding its own request: a request that
    is not the message it should be is answered INVALID_ARGUMENT ``request-malformed``
    (gRPC's own deserialiser would answer UNKNOWN, which says nothing to the caller)."""
    handlers = {}
    for method in service.methods:
        if method.client_streaming:  # pragma: no cover - none of ours stream requests
            raise TypeError(f"{method.full_name}: client streaming is not handled here")
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        behaviour = getattr(servicer, method.name)
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _decoding_stream(behaviour, request_class),
                response_serializer=response_class.SerializeToString,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _decoding_unary(behaviour, request_class),
                response_serializer=response_class.SerializeToString,
            )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


async def _decoded(
    data: bytes, request_class: type[Message], context: grpc.aio.ServicerContext
) -> Message:
    try:
        return request_class.FromString(data)
    except DecodeError:
        error = RequestError(f"the request is not a valid {request_class.DESCRIPTOR.full_name}")
        await abort(context, error)
        raise  # abort raises; this line is for type checkers


def _decoding_unary(
    behaviour: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Message]],
    request_class: type[Message],
) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[Message]]:
    async def handle(data: bytes, context: grpc.aio.ServicerContext) -> Message:
        return await behaviour(await _decoded(data, request_class, context), context)

    return handle


def _decoding_stream(
    behaviour: Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Message]],
    request_class: type[Message],
) -> Callable[[bytes, grpc.aio.ServicerContext], AsyncIterator[Message]]:
    async def handle(data: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Message]:
        async for answer in behaviour(await _decoded(data, request_class, context), context):
            yield answer

    return handle


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

    async def _document_of(self, request: spb.SubmitRequest) -> tuple[Message, bytes | None]:
        """The business message a request carries (translated from a raw document) and the
        raw document's digest; a refusal is recorded before it is raised."""
        which = request.WhichOneof("document")
        digest: bytes | None = None
        try:
            if which is None:
                raise SubmissionError("the request carries no document", reason="no-document")
            if which == "raw":
                digest = sha256(request.raw.content)
                # a large document is translated off the loop: it stalls no other call
                document = await self.hub.translate(request.raw.format, request.raw.content)
                return document, digest
            return getattr(request, which), None
        except HubError as exc:
            await self.hub.record_rejection("domestic", None, exc, document_digest=digest)
            raise

    async def Submit(
        self, request: spb.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> spb.SubmitResponse:
        try:
            document, digest = await self._document_of(request)
        except HubError as exc:
            await abort(context, exc)
            raise
        try:  # Hub.submit records its own rejections
            queued = await self.hub.submit(
                document,
                list(request.recipients),
                request.correlation_id,
                digest,
                derived=derived_messages(document),
                submission_id=request.submission_id,
            )
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
        for i, sub in enumerate(request.requests):
            try:
                document, digest = await self._document_of(sub)
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
                    ),
                )
            )
        try:
            outcomes = await self.hub.submit_many([s for _, s in submissions])
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
            cursor = request.after_cursor or await store.acknowledged(request.subscriber)
        except HubError as exc:
            await abort(context, exc)
            raise
        while True:
            try:
                rows = await store.inbound_after(cursor, limits.subscribe_batch)
            except HubError as exc:
                await abort(context, exc)
                raise
            for row in rows:
                cursor = row.id or cursor
                document = (
                    await self.hub.off_loop(self._document, request.format, row.body_type, row.body)
                    if request.format
                    else None
                )
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
                    superseded=row.superseded,
                )
            if not rows:
                await self.hub.inbound_arrived.wait(limits.poll_seconds)

    def _document(self, format_id: str, body_type: str, body: bytes) -> bytes | None:
        cls = body_class(body_type) if format_id else None
        return None if cls is None else self.translators.encode(format_id, cls.FromString(body))

    async def Acknowledge(
        self, request: spb.AcknowledgeRequest, context: grpc.aio.ServicerContext
    ) -> spb.AcknowledgeResponse:
        if not request.subscriber:
            await abort(
                context, SubmissionError("subscriber name is required", reason="no-subscriber")
            )
        try:
            stored = await self.hub.store.acknowledge(request.subscriber, request.cursor)
        except HubError as exc:  # the store is unavailable: UNAVAILABLE, and the caller retries
            await abort(context, exc)
            raise
        return spb.AcknowledgeResponse(acknowledged_cursor=stored)


def _add_health_and_reflection(
    server: grpc.aio.Server, services: list[str]
) -> health.aio.HealthServicer:
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*services, health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    return health_servicer


def token_issuer(config: HubConfig) -> TokenIssuer:
    return TokenIssuer(keys.load_audit_key(config), config.issuer, config.audience)


def token_verifier(config: HubConfig) -> TokenVerifier:
    return TokenVerifier(keys.load_audit_key(config).public_key(), config.issuer, config.audience)


# gRPC sets SO_REUSEPORT on its listening sockets by default, so a second server on a port
# that is in use would start without an error and take a share of the first one's calls. A hub
# must own its ports: without the option, a port in use fails the start (listen-failed).
SERVER_OPTIONS: list[tuple[str, int]] = [("grpc.so_reuseport", 0)]
# Connections on the partner port that are dead, idle or abusive are dropped: the server pings
# a connection that has been quiet for a minute and closes it when no answer comes in 20 s; a
# client may ping at most every 20 s (hubs ping every 30 s, hub/rpc/channels.py) or is sent
# GOAWAY after two more; a connection without calls for 15 minutes is closed. gRPC reads at
# most 4 MiB ahead of the handler on a stream: with its BDP probe on, the window grew without
# bound under a sender that writes faster than the hub answers (bench/unread.py: +1 GiB),
# and 4 MiB still fills a 200 ms intercontinental link at 20 MB/s.
PARTNER_KEEPALIVE: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.max_connection_idle_ms", 15 * 60_000),
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 4 * 1024 * 1024),
]


def _bind(
    server: grpc.aio.Server,
    address: str,
    credentials: grpc.ServerCredentials | None,
    key: str,
) -> int:
    try:
        if credentials is None:
            return int(server.add_insecure_port(address))
        return int(server.add_secure_port(address, credentials))
    except RuntimeError:
        raise ConfigError(
            f"{key}: cannot listen on {address}: the address is in use or not available here",
            reason="listen-failed",
        ) from None


@dataclass
class RunningHub:
    """A hub with its two servers and its outbox worker, as one unit to start and stop."""

    config: HubConfig
    hub: Hub
    partner_server: grpc.aio.Server
    domestic_server: grpc.aio.Server
    worker: OutboxWorker
    channels: PartnerChannels
    partner_port: int
    domestic_port: int
    checkpoints: asyncio.Task[None]
    audit_server: grpc.aio.Server | None = None
    audit_port: int = 0
    folders: list[DropFolder] = field(default_factory=list)
    partner_exchange: PartnerExchangeService | None = None  # its per-partner allowances

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking new calls, finish or abandon what is in flight within ``grace`` seconds
        (the config's shutdown_grace_seconds by default), then release everything. Abandoned
        work is safe: nothing is answered before it is durable, and senders resend."""
        if grace is None:
            grace = self.config.limits.shutdown_grace_seconds
        for folder in self.folders:  # what a folder took is durable or still in its inbox
            await folder.stop()
        await asyncio.gather(
            self.worker.stop(grace),
            self.partner_server.stop(grace),
            self.domestic_server.stop(grace),
            *([self.audit_server.stop(grace)] if self.audit_server else []),
        )
        self.checkpoints.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.checkpoints
        await self.hub.close()
        try:  # what was committed last is covered by a signed checkpoint
            await self.hub.checkpoint()
        except HubError as exc:
            log.error("final trail checkpoint: %s", exc)
        await self.channels.close()
        await self.hub.store.close()


async def start_hub(config: HubConfig, *, clock: Clock = system_clock) -> RunningHub:
    store = Store(config.store_url)
    try:
        return await _start(config, store, clock)
    except BaseException:
        await store.close()
        raise


async def _start(config: HubConfig, store: Store, clock: Clock) -> RunningHub:
    await store.create_all()
    hub = Hub(config, store, clock=clock)
    await hub.record_config()
    limits = config.limits
    # every partner's own allowance fits in the server's limit, with room for health checks
    allowances = len(config.partners) * (limits.partner_calls + limits.partner_streams + 2)
    partner_server = grpc.aio.server(
        options=[
            *SERVER_OPTIONS,
            *PARTNER_KEEPALIVE,
            ("grpc.max_receive_message_length", limits.max_batch_bytes),
        ],
        maximum_concurrent_rpcs=max(limits.max_concurrent_rpcs, allowances + 16),
    )
    exchange = PartnerExchangeService(hub)
    partner_server.add_generic_rpc_handlers([exchange.handler()])
    # health for registered partners only, and no reflection: partners have the contract
    partner_health = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(
        PartnerHealth(partner_health, exchange), partner_server
    )
    tls = keys.tls_identity(config)
    anchors = keys.partner_anchors(config)
    credentials = grpc.ssl_server_credentials(
        [tls],
        root_certificates=b"".join(anchors.values()) or None,
        require_client_auth=True,
    )
    partner_port = _bind(partner_server, config.listen, credentials, "server.listen")

    domestic_server = grpc.aio.server(
        options=[
            *SERVER_OPTIONS,
            ("grpc.max_receive_message_length", limits.xml_max_bytes + 64 * 1024),
        ],
    )
    domestic_server.add_generic_rpc_handlers([decoding_handler(DOMESTIC, DomesticService(hub))])
    domestic_health = _add_health_and_reflection(domestic_server, [DOMESTIC_SERVICE])
    domestic_port = _bind(domestic_server, config.domestic_listen, None, "server.domestic_listen")
    if not config.domestic_listen.startswith(("127.", "localhost", "[::1]")):
        log.warning("domestic port %s is not loopback and has no TLS yet", config.domestic_listen)

    audit_server, audit_port = None, 0
    if config.audit_listen:
        audit_server = grpc.aio.server(
            options=SERVER_OPTIONS, maximum_concurrent_rpcs=limits.max_concurrent_rpcs
        )
        audit = AuditService(store, token_verifier(config))
        audit_server.add_generic_rpc_handlers([decoding_handler(AUDIT, audit)])
        audit_health = _add_health_and_reflection(audit_server, [AUDIT_SERVICE])
        # TLS with the hub's certificate; auditors authenticate with tokens, not certificates
        audit_credentials = grpc.ssl_server_credentials([tls])
        audit_port = _bind(audit_server, config.audit_listen, audit_credentials, "audit.listen")

    channels = PartnerChannels(
        tls[1],
        tls[0],
        {
            p.party: PartnerEndpoint(p.party, p.endpoint, anchors[p.party])
            for p in config.partners.values()
        },
    )
    worker = OutboxWorker(hub, channels)
    folders = [DropFolder(folder, hub) for folder in config.folders.values()]
    for folder in folders:
        folder.prepare()
    await partner_server.start()
    await domestic_server.start()
    if audit_server is not None:
        await audit_server.start()
        await audit_health.set(AUDIT_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await audit_health.set("", health_pb2.HealthCheckResponse.SERVING)
    for h, name in ((partner_health, PARTNER_SERVICE), (domestic_health, DOMESTIC_SERVICE)):
        await h.set(name, health_pb2.HealthCheckResponse.SERVING)
        await h.set("", health_pb2.HealthCheckResponse.SERVING)
    worker.start()
    for folder in folders:
        folder.start()
    checkpoints = asyncio.create_task(hub.keep_checkpoints(), name=f"checkpoints-{hub.party}")
    log.info(
        "hub %s serving partners on %s, domestic systems on %s",
        config.party,
        partner_port,
        domestic_port,
    )
    return RunningHub(
        config,
        hub,
        partner_server,
        domestic_server,
        worker,
        channels,
        partner_port,
        domestic_port,
        checkpoints,
        audit_server,
        audit_port,
        folders,
        exchange,
    )
