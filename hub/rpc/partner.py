"""PartnerExchange and its health service on the mTLS partner port.

The servicer only translates between gRPC and ``Hub``: it finds the peer's party in its
certificate, holds each partner to its allowance (hub/core/admission.py), passes the exact bytes
received, and answers a refusal with a status, a machine-readable reason and, where the message
was read, a signed REJECTED receipt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2

from hub.app.hub import Hub
from hub.core.admission import Admission
from hub.core.envelope import sha256
from hub.core.errors import EnvelopeError, HubError, LimitError, TrustError
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.rpc.server import HubHealth
from hub.rpc.status import abort

log = logging.getLogger("customs_hub.service")

PARTNER_SERVICE = "customs_hub.v1.PartnerExchange"

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
                # a partner's questions about this hub's AEOs: signed envelopes both ways,
                # passed and answered as exact bytes (hub/app/answers.py)
                "Query": grpc.unary_unary_rpc_method_handler(
                    self.query, request_deserializer=None, response_serializer=None
                ),
                "Snapshot": grpc.unary_unary_rpc_method_handler(
                    self.snapshot, request_deserializer=None, response_serializer=None
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
            party = self.hub.trust.peer_party(certs[0])
        except TrustError as exc:
            # a peer nobody registered: recorded, but at most once a minute for each reason,
            # so refused connections cannot grow the trail at will
            await self.hub.audit.record_refusal("unknown-peer", exc)
            await abort(context, exc)
            raise  # abort raises; this line is for type checkers
        await self._not_revoked(party, certs[0], context)
        return party

    async def _not_revoked(
        self, party: str, cert_pem: bytes, context: grpc.aio.ServicerContext
    ) -> None:
        """A partner whose TLS certificate its CA revoked (or whose CA's revocation list is
        stale, failing closed) is refused, and recorded as other refusals are."""
        try:
            self.hub.revocation_watch.check_peer(party, cert_pem)
        except TrustError as exc:
            await self.hub.audit.record_refusal(party, exc)
            await abort(context, exc)
            raise

    async def _over_limit(
        self, peer: str, exc: LimitError, context: grpc.aio.ServicerContext
    ) -> None:
        await self.hub.audit.record_refusal(peer, exc)
        await abort(context, exc)

    @contextlib.asynccontextmanager
    async def one_call(self, peer: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        """Hold one of ``peer``'s calls for the body; over its allowance, the call is refused
        (recorded, RESOURCE_EXHAUSTED) before the body runs."""
        try:
            self.admission.enter_call(peer)
        except LimitError as exc:
            await self._over_limit(peer, exc, context)
            raise
        try:
            yield
        finally:
            self.admission.exit_call(peer)

    async def deliver(self, request: bytes, context: grpc.aio.ServicerContext) -> pb.SignedReceipt:
        peer = await self._peer(context)
        async with self.one_call(peer, context):
            try:
                return await self.hub.ingress.receive(request, peer)
            except HubError as exc:
                # transient trouble on our side is not the message's fault: no REJECTED
                # receipt, just UNAVAILABLE, and the sender tries again
                receipt = (
                    None
                    if exc.transient
                    else self.hub.ingress.rejection_receipt(request, peer, exc)
                )
                await abort(context, exc, receipt.SerializeToString() if receipt else None)
                raise

    async def query(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._answer(self.hub.answers.query, request, context)

    async def snapshot(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._answer(self.hub.answers.snapshot, request, context)

    async def _answer(
        self,
        answer: Callable[[bytes, str], Awaitable[bytes]],
        request: bytes,
        context: grpc.aio.ServicerContext,
    ) -> bytes:
        """A question counts as one of the partner's calls, like a Deliver; a refusal is
        answered with its status and reason (recorded by ``answer``)."""
        peer = await self._peer(context)
        async with self.one_call(peer, context):
            try:
                return await answer(request, peer)
            except HubError as exc:
                await abort(context, exc)
                raise

    async def exchange(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ReceiptBatch]:
        """Frames are verified and committed as they arrive, several at a time (the sender
        keeps a window of frames in flight), and answered strictly in order. A frame that is
        not an EnvelopeBatch ends the stream with INVALID_ARGUMENT ``batch-malformed``, after
        the answers to the frames before it."""
        peer = await self._peer(context)
        peer_pem = (context.auth_context().get("x509_pem_cert") or [b""])[0]
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
                        await self.hub.audit.record_rejection(
                            peer, None, error, document_digest=sha256(frame)
                        )
                        await queue.put(error)
                        return
                    if len(envelopes) > limits.max_batch_envelopes:
                        error = LimitError(
                            f"a batch may carry at most {limits.max_batch_envelopes} envelopes; "
                            f"this one has {len(envelopes)}"
                        )
                        await self.hub.audit.record_rejection(peer, None, error)
                        await queue.put(error)
                        return
                    if peer not in self.hub.trust.partners:  # removed by a reload since
                        removed = TrustError(
                            f"{peer} is no longer a partner of this hub",
                            reason="unknown-partner",
                        )
                        await self.hub.audit.record_refusal(peer, removed)
                        await queue.put(removed)
                        return
                    try:  # revoked since the stream opened: no more of its frames
                        self.hub.revocation_watch.check_peer(peer, peer_pem)
                    except TrustError as revoked:
                        await self.hub.audit.record_refusal(peer, revoked)
                        await queue.put(revoked)
                        return
                    placed = asyncio.Event()
                    task = asyncio.create_task(
                        self.hub.ingress.receive_batch(envelopes, peer, after=previous, then=placed)
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
                        else self.hub.ingress.rejection_receipt(data, peer, r)
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

    def __init__(self, inner: HubHealth, exchange: PartnerExchangeService) -> None:
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
        async with self.exchange.one_call(peer, context):
            await self.inner.Watch(request, context)  # writes its answers with context.write

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        await self.exchange._peer(context)
        return await self.inner.List(request, context)
