"""The fault-injection proxy does what each fault says, to a plain echo server and to gRPC.

Every test also checks the proxy's counters, so a test cannot pass because nothing was sent:
the fault has to show up there as well as in what the client saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from tests.faultproxy import Direction, FaultProxy, ProxyCounters

REPLY = 2.0  # seconds a reply that should come may take
SILENCE = 0.3  # seconds without a byte that count as "no reply"
DELAY = 0.2
# asyncio may fire a timer up to its clock resolution (1 ns on Linux) early; a millisecond is
# ample and far below anything a delay test measures.
CLOCK_SLACK = 0.001

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Connect = Callable[[], Awaitable[Streams]]


class EchoServer:
    """A plain asyncio echo server standing in for the partner; records what reached it."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.arrived = asyncio.Event()  # set whenever bytes reach the server
        self.connections = 0
        self.port = 0
        self.handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task rather than start_server's: Python 3.11 logs an error when that one is
        # cancelled, and stop() has to cancel handlers still waiting for bytes.
        self.connections += 1
        task = asyncio.get_running_loop().create_task(self._echo(reader, writer))
        self.handlers.add(task)
        task.add_done_callback(self.handlers.discard)

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                self.received += data
                self.arrived.set()
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # the proxy cut the connection: what most tests here are about
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def proxy(echo: EchoServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", echo.port) as running:
        yield running


@pytest.fixture
async def connect(proxy: FaultProxy) -> AsyncIterator[Connect]:
    """Opens client connections to the proxy and closes whatever is left of them afterwards."""
    writers: list[asyncio.StreamWriter] = []

    async def open_client() -> Streams:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writers.append(writer)
        return reader, writer

    yield open_client
    for writer in writers:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def roundtrip(streams: Streams, message: bytes) -> bytes:
    """Send ``message`` and read as many bytes back, writing and reading at the same time."""
    reader, writer = streams

    async def send() -> None:
        writer.write(message)
        await writer.drain()

    async with asyncio.timeout(REPLY):
        _, reply = await asyncio.gather(send(), reader.readexactly(len(message)))
    return reply


async def send(streams: Streams, message: bytes) -> None:
    streams[1].write(message)
    await streams[1].drain()


async def silent(streams: Streams) -> bool:
    """Nothing at all (not even an end of stream) arrives for SILENCE seconds."""
    try:
        await asyncio.wait_for(streams[0].read(1), SILENCE)
    except TimeoutError:
        return True
    return False


async def until_closed(streams: Streams) -> tuple[bytes, bool]:
    """What arrives before the connection ends, and whether it ended in a reset."""
    received = bytearray()
    try:
        async with asyncio.timeout(REPLY):
            while chunk := await streams[0].read(65536):
                received += chunk
    except ConnectionResetError:
        return bytes(received), True
    return bytes(received), False


async def eventually_received(echo: EchoServer, expected: bytes) -> None:
    """The echo server runs on the same loop; give it the iterations it needs to read."""
    async with asyncio.timeout(REPLY):
        while bytes(echo.received) != expected:
            echo.arrived.clear()
            await echo.arrived.wait()


# -- pass-through and delay -----------------------------------------------------------------------


async def test_pass_through_echoes_and_counts_every_byte(
    proxy: FaultProxy, echo: EchoServer, connect: Connect
) -> None:
    client = await connect()
    assert await roundtrip(client, b"declaration") == b"declaration"
    bulk = bytes(range(256)) * 4096  # 1 MiB: many chunks, so drain() back-pressure is exercised
    assert await roundtrip(client, bulk) == bulk

    total = len(b"declaration") + len(bulk)
    assert proxy.counters == ProxyCounters(
        bytes_upstream=total, bytes_downstream=total, connections_accepted=1
    )
    assert len(echo.received) == total
    assert proxy.address == f"127.0.0.1:{proxy.port}"


async def test_delay_holds_each_direction_of_an_open_connection_in_order(
    proxy: FaultProxy, connect: Connect
) -> None:
    client = await connect()
    assert await roundtrip(client, b"before") == b"before"

    proxy.delay(DELAY)  # switched on a connection that is already open
    started = time.monotonic()
    assert await roundtrip(client, b"aeo-status") == b"aeo-status"
    assert time.monotonic() - started >= 2 * DELAY - CLOCK_SLACK  # once up, once down

    proxy.delay(0.02)
    for part in (b"one,", b"two,", b"three"):
        await send(client, part)
        await asyncio.sleep(0.005)  # separate chunks, so order is really at stake
    assert await asyncio.wait_for(client[0].readexactly(13), REPLY) == b"one,two,three"

    proxy.heal()
    started = time.monotonic()
    assert await roundtrip(client, b"after") == b"after"
    assert time.monotonic() - started < DELAY


# -- a partner that hangs, is down, or loses what it sends ----------------------------------------


async def test_blackhole_forwards_nothing_until_heal(
    proxy: FaultProxy, echo: EchoServer, connect: Connect
) -> None:
    old = await connect()
    assert await roundtrip(old, b"before") == b"before"

    proxy.blackhole()
    await send(old, b"held")
    new = await connect()
    await send(new, b"new")
    assert all(await asyncio.gather(silent(old), silent(new)))
    assert bytes(echo.received) == b"before"
    assert echo.connections == 1  # the connection opened during the blackhole never got through
    assert proxy.counters.connections_accepted == 2
    assert proxy.counters.bytes_upstream == len(b"before")

    proxy.heal()
    assert await asyncio.wait_for(new[0].readexactly(3), REPLY) == b"new"
    assert await asyncio.wait_for(old[0].readexactly(4), REPLY) == b"held"  # held, not lost
    assert await roundtrip(await connect(), b"fresh") == b"fresh"


async def test_refuse_cuts_open_connections_and_resets_new_ones_until_heal(
    proxy: FaultProxy, echo: EchoServer, connect: Connect
) -> None:
    old = await connect()
    assert await roundtrip(old, b"before") == b"before"

    proxy.refuse()
    assert await until_closed(old) == (b"", True)
    assert await until_closed(await connect()) == (b"", True)
    assert proxy.counters.connections_cut == 1
    assert proxy.counters.connections_refused == 1
    assert proxy.counters.connections_accepted == 1
    assert echo.connections == 1

    proxy.heal()
    assert await roundtrip(await connect(), b"after") == b"after"
    assert echo.connections == 2


async def test_cut_all_resets_every_open_connection_but_not_later_ones(
    proxy: FaultProxy, connect: Connect
) -> None:
    clients = [await connect(), await connect()]
    for client in clients:
        assert await roundtrip(client, b"open") == b"open"

    proxy.cut_all()
    for client in clients:
        assert await until_closed(client) == (b"", True)
    assert proxy.counters.connections_cut == 2
    assert await roundtrip(await connect(), b"after") == b"after"  # a cut is not a mode


async def test_drop_downstream_delivers_to_the_partner_but_nothing_comes_back(
    proxy: FaultProxy, echo: EchoServer, connect: Connect
) -> None:
    client = await connect()
    assert await roundtrip(client, b"before") == b"before"

    proxy.drop_downstream()
    await send(client, b"declaration")
    assert await silent(client)
    assert bytes(echo.received) == b"beforedeclaration"
    assert proxy.counters.bytes_dropped == len(b"declaration")
    assert proxy.counters.bytes_downstream == len(b"before")

    proxy.heal()
    assert await roundtrip(client, b"after") == b"after"


# -- cut_after: the byte budget, then every connection goes ---------------------------------------

MESSAGE = b"declaration MRN 24NZ00000000000001"


@dataclasses.dataclass(frozen=True)
class CutCase:
    direction: Direction
    nbytes: int
    partner_gets: int  # bytes of MESSAGE the echo server receives
    client_gets: int  # bytes of the echo the client receives before the reset


CUT_CASES = {
    "upstream: the partner gets part of the message": CutCase("upstream", 10, 10, 0),
    "downstream: the sender gets part of the reply": CutCase("downstream", 5, len(MESSAGE), 5),
    "downstream 0: stored by the partner, the receipt lost": CutCase(
        "downstream", 0, len(MESSAGE), 0
    ),
}


@pytest.mark.parametrize("case", CUT_CASES.values(), ids=CUT_CASES.keys())
async def test_cut_after_resets_every_connection_once_the_budget_has_flowed(
    case: CutCase, proxy: FaultProxy, echo: EchoServer, connect: Connect
) -> None:
    bystander, client = await connect(), await connect()
    for streams in (bystander, client):
        assert await roundtrip(streams, b"open") == b"open"
    echo.received.clear()
    before = dataclasses.replace(proxy.counters)

    proxy.cut_after(case.direction, case.nbytes)
    await send(client, MESSAGE)
    assert await until_closed(client) == (MESSAGE[: case.client_gets], True)
    assert await until_closed(bystander) == (b"", True)  # every connection, not only the busy one
    await eventually_received(echo, MESSAGE[: case.partner_gets])

    after = proxy.counters
    assert after.bytes_upstream - before.bytes_upstream == case.partner_gets
    assert after.bytes_downstream - before.bytes_downstream == case.client_gets
    assert after.connections_cut == 2

    # One shot: the next connection carries the whole message and is not cut.
    assert await roundtrip(await connect(), MESSAGE) == MESSAGE
    assert proxy.counters.connections_cut == 2


# -- life cycle and arguments ---------------------------------------------------------------------


async def test_stop_ends_every_task_and_socket_whatever_the_connections_were_doing(
    echo: EchoServer,
) -> None:
    proxy = FaultProxy("127.0.0.1", echo.port)
    port = await proxy.start()
    delayed = await asyncio.open_connection("127.0.0.1", port)
    assert await roundtrip(delayed, b"open") == b"open"
    proxy.delay(60)
    await send(delayed, b"sleeping in a delay")
    proxy.blackhole()
    held = await asyncio.open_connection("127.0.0.1", port)
    await send(held, b"waiting at the gate")
    await asyncio.sleep(0.05)  # let the proxy accept and read both

    await proxy.stop()
    assert asyncio.all_tasks() - echo.handlers == {asyncio.current_task()}
    for streams in (delayed, held):
        assert await until_closed(streams) == (b"", True)
        streams[1].close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    await proxy.stop()  # a second stop is harmless


@pytest.mark.parametrize(
    ("fault", "complaint"),
    [
        (lambda p: p.delay(-1), "delay must be"),
        (lambda p: p.delay(float("nan")), "delay must be"),
        (lambda p: p.cut_after("sideways", 1), "direction must be"),
        (lambda p: p.cut_after("upstream", -1), "nbytes must be"),
    ],
    ids=["negative delay", "nan delay", "unknown direction", "negative budget"],
)
def test_nonsense_faults_are_refused(fault: Callable[[FaultProxy], None], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        fault(FaultProxy("127.0.0.1", 1))


def test_port_is_unknown_before_start() -> None:
    with pytest.raises(RuntimeError, match="not been started"):
        _ = FaultProxy("127.0.0.1", 1).address


# -- in front of a real gRPC server ---------------------------------------------------------------

ECHO_SERVICE = "customs_hub.test.FaultEcho"
ECHO_METHOD = f"/{ECHO_SERVICE}/Echo"
HANG = b"hang until the connection is cut"


class GrpcPartner:
    """A gRPC server with one unary echo method on raw bytes (no serializers)."""

    def __init__(self) -> None:
        self.port = 0
        self.in_flight = asyncio.Event()
        self.stored: list[bytes] = []
        self.after_store: Callable[[], None] = lambda: None

    async def echo(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if request == HANG:
            self.in_flight.set()
            await asyncio.Event().wait()  # until the cut makes gRPC cancel this handler
        self.stored.append(request)
        self.after_store()
        return request


@pytest.fixture
async def grpc_partner() -> AsyncIterator[GrpcPartner]:
    partner = GrpcPartner()
    handler = grpc.unary_unary_rpc_method_handler(partner.echo)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(ECHO_SERVICE, {"Echo": handler}),)
    )
    partner.port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield partner
    await server.stop(grace=None)


async def test_cut_all_fails_an_in_flight_grpc_call_with_unavailable(
    grpc_partner: GrpcPartner,
) -> None:
    async with (
        FaultProxy("127.0.0.1", grpc_partner.port) as proxy,
        grpc.aio.insecure_channel(proxy.address) as channel,
    ):
        echo = channel.unary_unary(ECHO_METHOD)
        call = echo(HANG, timeout=5 * REPLY)
        await asyncio.wait_for(grpc_partner.in_flight.wait(), REPLY)

        proxy.cut_all()
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await call
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
        assert proxy.counters.connections_cut == 1

        proxy.heal()
        # the channel may not have seen its connection die yet: a call made meanwhile fails
        # on the old connection (UNAVAILABLE, broken pipe) and the next goes through a new one
        failed: list[grpc.StatusCode] = []
        answer = b""
        while not answer and len(failed) < 3:
            try:
                answer = await echo(b"declaration", timeout=REPLY, wait_for_ready=True)
            except grpc.aio.AioRpcError as exc:
                failed.append(exc.code())
        assert answer == b"declaration"
        assert set(failed) <= {grpc.StatusCode.UNAVAILABLE}
        assert proxy.counters.connections_accepted == 2


async def test_cut_after_downstream_loses_the_receipt_of_a_stored_message(
    grpc_partner: GrpcPartner,
) -> None:
    """The case the proxy was written for: the partner stored it, the sender cannot know."""
    async with (
        FaultProxy("127.0.0.1", grpc_partner.port) as proxy,
        grpc.aio.insecure_channel(proxy.address) as channel,
    ):
        grpc_partner.after_store = lambda: proxy.cut_after("downstream", 0)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await channel.unary_unary(ECHO_METHOD)(b"declaration", timeout=REPLY)
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
        assert grpc_partner.stored == [b"declaration"]
        assert proxy.counters.connections_cut == 1
