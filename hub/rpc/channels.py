"""The client side of PartnerExchange: mTLS channels to partner hubs.

Envelopes go out as the exact bytes stored in the outbox (no re-serialisation), so the digest
a receipt names can be compared with what was sent. Each partner's channel trusts only that
partner's anchor: another administration's CA cannot impersonate it.

gRPC Python's client side does not show the server's certificate (no auth context on a client
call, no verify callback on channel credentials, grpcio 1.85), so it cannot be checked against
the revocation lists there. ``server_certificate`` is a pre-flight instead: a TLS 1.3
handshake of its own to the partner's address, with this hub's client certificate (the
partner sees a well-formed client, not a refused handshake) and the partner's anchor, that
gives the certificate the partner serves. The outbox makes one before it opens a stream,
after each reload or change of the lists (hub/app/delivery.py). What it cannot see: a
connection gRPC makes again by itself later, to a server that changed its certificate
meanwhile (docs/adr/0009).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from hub.app import keys
from hub.core.errors import REASON_KEY, DeliveryError, PartnerRefused
from hub.pb.customs_hub.v1 import envelope_pb2 as pb

SERVICE = "customs_hub.v1.PartnerExchange"
DELIVER = f"/{SERVICE}/Deliver"
EXCHANGE = f"/{SERVICE}/Exchange"
QUERY = f"/{SERVICE}/Query"
SNAPSHOT = f"/{SERVICE}/Snapshot"


# gRPC's own reconnect backoff grows to 120 s by default; the outbox has its own retry schedule,
# so the channel should be ready again within seconds of a partner's return.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5000),
    ("grpc.keepalive_time_ms", 30000),
]


# how long a pre-flight connection waits for the partner's close_notify
CLOSE_SECONDS = 0.1


def _identity(data: bytes) -> bytes:
    return data


@dataclass(frozen=True)
class PartnerEndpoint:
    party: str
    endpoint: str
    anchor_pem: bytes


class PartnerChannels:
    def __init__(
        self, tls_cert_pem: bytes, tls_key_pem: bytes, partners: Mapping[str, PartnerEndpoint]
    ) -> None:
        self._cert, self._key = tls_cert_pem, tls_key_pem
        self._partners = dict(partners)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def update(
        self, tls_cert_pem: bytes, tls_key_pem: bytes, partners: Mapping[str, PartnerEndpoint]
    ) -> list[grpc.aio.Channel]:
        """Take a reloaded configuration: the channels of partners removed or changed (or all,
        when this hub's own TLS identity changed) are given up, and made anew at their next
        use. Returns those channels, for the caller to close once their calls are done."""
        own_changed = (tls_cert_pem, tls_key_pem) != (self._cert, self._key)
        stale = [
            party
            for party in self._channels
            if own_changed or self._partners.get(party) != partners.get(party)
        ]
        self._cert, self._key = tls_cert_pem, tls_key_pem
        self._partners = dict(partners)
        return [self._channels.pop(party) for party in stale]

    def channel(self, party: str) -> grpc.aio.Channel:
        channel = self._channels.get(party)
        if channel is None:
            partner = self._partners.get(party)
            if partner is None:
                raise DeliveryError(
                    f"{party} is not a configured partner (any longer); its messages stay queued",
                    reason="unknown-partner",
                )
            credentials = grpc.ssl_channel_credentials(
                root_certificates=partner.anchor_pem,
                private_key=self._key,
                certificate_chain=self._cert,
            )
            channel = grpc.aio.secure_channel(
                partner.endpoint, credentials, options=CHANNEL_OPTIONS
            )
            self._channels[party] = channel
        return channel

    async def server_certificate(self, party: str, timeout: float) -> bytes:
        """The TLS server certificate (DER) ``party`` serves at its endpoint, from a handshake
        with the identity and trust its channel uses; empty if its endpoint is a gRPC target
        this cannot look at (``split_endpoint``). DeliveryError (``partner-unavailable``) if
        the partner cannot be reached, or its certificate does not verify with its anchor or
        name its address, within ``timeout`` seconds."""
        partner = self._partners.get(party)
        if partner is None:
            raise DeliveryError(
                f"{party} is not a configured partner (any longer); its messages stay queued",
                reason="unknown-partner",
            )
        address = split_endpoint(partner.endpoint)
        if address is None:
            return b""
        # the channel in use (none of its calls open: a pre-flight comes before a stream) is
        # given up, so that the next stream connects anew, to the server looked at here
        stale = self._channels.pop(party, None)
        if stale is not None:
            await stale.close()
        host, port = address
        context = keys.client_tls_context(self._key, self._cert, partner.anchor_pem)
        where = f"UNAVAILABLE: TLS pre-flight to {party} at {partner.endpoint}"
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=context, server_hostname=host), timeout
            )
        except ssl.SSLCertVerificationError as exc:
            raise _unavailable(
                f"{where}: its certificate does not verify: {exc.verify_message}"
            ) from None
        except TimeoutError:
            raise _unavailable(f"{where}: no handshake within {timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise _unavailable(f"{where}: {exc.strerror or type(exc).__name__}") from None
        try:
            tls = writer.get_extra_info("ssl_object")
            certificate = tls.getpeercert(binary_form=True) if tls is not None else None
        finally:
            # a close_notify, and a short wait for the partner's: a gRPC server does not
            # always answer one, so the connection is then simply dropped
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), CLOSE_SECONDS)
            writer.transport.abort()
        if not certificate:
            raise _unavailable(f"{where}: the partner showed no certificate")
        return bytes(certificate)

    async def deliver(self, party: str, envelope: bytes, timeout: float) -> pb.SignedReceipt:
        call = self.channel(party).unary_unary(
            DELIVER, request_serializer=_identity, response_deserializer=pb.SignedReceipt.FromString
        )
        receipt: pb.SignedReceipt = await call(envelope, timeout=timeout)
        return receipt

    async def query(self, party: str, envelope: bytes, timeout: float) -> bytes:
        """A signed AeoQuery out, the partner's signed answer back (hub/app/ports.py
        PartnerAsker)."""
        return await self._ask(party, QUERY, envelope, timeout)

    async def snapshot(self, party: str, envelope: bytes, timeout: float) -> bytes:
        return await self._ask(party, SNAPSHOT, envelope, timeout)

    async def _ask(self, party: str, method: str, envelope: bytes, timeout: float) -> bytes:
        call = self.channel(party).unary_unary(
            method, request_serializer=_identity, response_deserializer=_identity
        )
        try:
            answer: bytes = await call(envelope, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise _unavailable(f"{party}: {code.name}: {exc.details()}") from None
            reason = next((str(v) for k, v in exc.trailing_metadata() or () if k == REASON_KEY), "")
            raise PartnerRefused(
                f"{party} refused: {code.name} {reason or '(no reason)'}: {exc.details()}",
                partner_reason=reason,
            ) from None
        return answer

    def stream(self, party: str) -> GrpcStream:
        """An Exchange stream to ``party`` as delivery uses it (hub/app/ports.py)."""
        return GrpcStream(self.open_exchange(party))

    def open_exchange(self, party: str) -> grpc.aio.StreamStreamCall:
        """A long-lived Exchange stream (no deadline: the caller times out each frame)."""
        call = self.channel(party).stream_stream(
            EXCHANGE,
            request_serializer=pb.EnvelopeBatch.SerializeToString,
            response_deserializer=pb.ReceiptBatch.FromString,
        )
        return call()

    async def exchange(
        self, party: str, envelopes: Sequence[bytes], timeout: float
    ) -> list[pb.SignedReceipt]:
        """Send one batch on an Exchange stream and return its receipts, in order."""
        call = self.channel(party).stream_stream(
            EXCHANGE,
            request_serializer=pb.EnvelopeBatch.SerializeToString,
            response_deserializer=pb.ReceiptBatch.FromString,
        )
        stream = call(timeout=timeout)
        await stream.write(pb.EnvelopeBatch(envelopes=list(envelopes)))
        await stream.done_writing()
        receipts: list[pb.SignedReceipt] = []
        while (batch := await stream.read()) is not grpc.aio.EOF:
            receipts.extend(batch.receipts)
        return receipts

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


class GrpcStream:
    """A PartnerStream (hub/app/ports.py) over a gRPC Exchange call: gRPC's failures become
    DeliveryError, with the status and details the partner gave."""

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self.call = call

    async def write(self, envelopes: Sequence[bytes]) -> None:
        try:
            await self.call.write(pb.EnvelopeBatch(envelopes=list(envelopes)))
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(f"write failed: {exc.code().name}: {exc.details()}") from None
        except (asyncio.InvalidStateError, grpc.aio.UsageError) as exc:
            raise _unavailable(f"write failed: {type(exc).__name__}") from None

    async def read(self) -> list[pb.SignedReceipt] | None:
        try:
            response = await self.call.read()
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(f"{exc.code().name}: {exc.details()}") from None
        if response is grpc.aio.EOF:
            return None
        return list(response.receipts)

    def done(self) -> bool:
        return bool(self.call.done())

    def cancel(self) -> None:
        self.call.cancel()


def split_endpoint(endpoint: str) -> tuple[str, int] | None:
    """The host and port of a partner's endpoint (``host:port``, ``[v6]:port``, or either
    after ``dns:///``, ``ipv4:`` or ``ipv6:``); None for any other gRPC target (several
    addresses, a unix socket), which no pre-flight looks at."""
    for prefix in ("dns:///", "ipv4:", "ipv6:"):
        endpoint = endpoint.removeprefix(prefix)
    host, _, port = endpoint.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or any(c in host for c in "/,") or ":" in host[:1]:
        return None
    return host, int(port)


def _unavailable(message: str) -> DeliveryError:
    return DeliveryError(message, reason="partner-unavailable")
