"""What every gRPC server of the hub shares: requests decoded by the servicer (so a malformed one
is answered), health and reflection, and ports bound without sharing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hub.core.errors import ConfigError, RequestError
from hub.rpc.status import abort

# gRPC sets SO_REUSEPORT on its listening sockets by default, so a second server on a port
# that is in use would start without an error and take a share of the first one's calls. A hub
# must own its ports: without the option, a port in use fails the start (listen-failed).
SERVER_OPTIONS: list[tuple[str, int]] = [("grpc.so_reuseport", 0)]


def connection_age(max_age_seconds: float, drain_seconds: float) -> list[tuple[str, int]]:
    """Options that end every connection after ``max_age_seconds`` (GOAWAY; clients
    reconnect) with ``drain_seconds`` for its calls to finish: what a reload changed in the
    port's TLS (certificate, client CAs) then reaches connections opened before it."""
    return [
        ("grpc.max_connection_age_ms", int(max_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", int(drain_seconds * 1000)),
    ]


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


class HubHealth(health.aio.HealthServicer):  # type: ignore[misc]
    """gRPC's health service for one port's services and the server as a whole (""), all
    serving or all not, with ``List`` (grpcio-health-checking 1.85's servicer lacks it: the
    base class answered UNIMPLEMENTED and logged a NotImplementedError traceback)."""

    def __init__(self, services: list[str]) -> None:
        super().__init__()
        self.services = ["", *services]

    async def set_serving(self, serving: bool) -> None:
        """Every service of the port SERVING or NOT_SERVING; ignored once shutting down
        (``enter_graceful_shutdown`` holds them NOT_SERVING)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self.services:
            await self.set(name, status)

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        statuses = {}
        for name in self.services:
            check = health_pb2.HealthCheckRequest(service=name)
            statuses[name] = await self.Check(check, context)
        return health_pb2.HealthListResponse(statuses=statuses)


def add_health_and_reflection(server: grpc.aio.Server, services: list[str]) -> HubHealth:
    health_servicer = HubHealth(services)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*services, health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    return health_servicer


class ServerTls:
    """A port's TLS identity (and, on the partner port, the CAs its clients may come from)
    that a reload can replace: gRPC asks ``_fetch`` at each new connection's handshake, and
    gets the new configuration once after ``update``, None (unchanged) otherwise. Connections
    already open keep theirs."""

    def __init__(self, key: bytes, cert: bytes, roots: bytes | None, client_auth: bool) -> None:
        self._initial = self._configuration(key, cert, roots)
        self._pending: grpc.ServerCertificateConfiguration | None = None
        self._client_auth = client_auth

    @staticmethod
    def _configuration(
        key: bytes, cert: bytes, roots: bytes | None
    ) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=roots)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._initial, self._fetch, require_client_authentication=self._client_auth
        )

    def update(self, key: bytes, cert: bytes, roots: bytes | None) -> None:
        self._pending = self._configuration(key, cert, roots)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # called on gRPC's threads: one attribute swap, which the GIL keeps whole
        pending, self._pending = self._pending, None
        return pending


def bind(
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
