"""A loopback TCP proxy that puts network faults between a client and a server, for tests.

It moves bytes and nothing else. TLS passes through untouched, so a hub's gRPC client talking
mTLS through it still sees the partner's real certificate. Faults switch on and off while it
runs and apply to open connections as well as new ones:

    async with FaultProxy("127.0.0.1", partner_port) as proxy:
        proxy.cut_after("downstream", 0)   # the partner stores the message, its receipt is lost
        ...
        proxy.heal()

It must never buffer without bound: each connection holds at most one chunk per direction on
top of asyncio's own stream buffers, and every write is drained. It must never outlive stop():
its tasks and sockets all end there.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self, get_args

LOOPBACK = "127.0.0.1"

# One read per chunk; asyncio's default StreamReader limit, so a chunk is never larger than what
# the reader buffers before it pauses the socket anyway.
CHUNK_BYTES = 64 * 1024

# How long cut_after() waits for the last bytes of its budget to leave asyncio's write buffer
# before the reset. On loopback the kernel takes them at once; the bound only matters when the
# receiver has stopped reading, and then its bytes would not have arrived anyway.
CUT_FLUSH_SECONDS = 1.0

# SO_LINGER on, timeout 0: close() sends a TCP RST instead of a FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)

Direction = Literal["upstream", "downstream"]
"""upstream is client to target, downstream is target to client."""


@dataclass
class ProxyCounters:
    """What the proxy did, so a test can assert that the fault really happened."""

    bytes_upstream: int = 0  # client to target, handed to the target's socket
    bytes_downstream: int = 0  # target to client, handed to the client's socket
    bytes_dropped: int = 0  # target to client, thrown away by drop_downstream()
    connections_accepted: int = 0
    connections_refused: int = 0  # reset on arrival by refuse()
    connections_cut: int = 0  # reset by cut_all(), cut_after() or refuse()


@dataclass(eq=False)
class _Link:
    """One client connection and, once it has been opened, its connection to the target."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.upstream) if w is not None]

    def reset(self) -> None:
        for writer in self.writers():
            _reset(writer)

    def close(self) -> None:
        for writer in self.writers():
            writer.close()


class FaultProxy:
    """Forwards 127.0.0.1:<port> to a target; faults are switched with the methods below.

    Faults combine (a delay and drop_downstream() can both be on); heal() turns them all off.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.counters = ProxyCounters()
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._links: set[_Link] = set()
        self._delay = 0.0
        self._blackholed = False
        self._refusing = False
        self._dropping_downstream = False
        self._cut_budget: dict[Direction, int] = {}
        self._cutting = False  # cut_after() is flushing its last bytes: nothing else moves
        self._flowing = asyncio.Event()  # set while bytes may be forwarded
        self._flowing.set()

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen on a free loopback port and return it."""
        if self._server is not None:
            raise RuntimeError("FaultProxy is already running")
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def stop(self) -> None:
        """Close the listener, reset every connection and wait for every task to end."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        links, self._links = self._links, set()
        tasks = [link.task for link in links if link.task is not None]
        for link in links:
            link.reset()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
        # The aborted transports close their sockets in a callback on the next loop iteration.
        await asyncio.sleep(0)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FaultProxy has not been started")
        return self._port

    @property
    def address(self) -> str:
        """host:port, as a gRPC target or a hub's partner address."""
        return f"{LOOPBACK}:{self.port}"

    # -- faults -------------------------------------------------------------------------------

    def heal(self) -> None:
        """Back to pass-through: every fault off, an armed cut_after() disarmed."""
        self._delay = 0.0
        self._blackholed = False
        self._refusing = False
        self._dropping_downstream = False
        self._cut_budget.clear()
        self._update_gate()

    def delay(self, seconds: float) -> None:
        """Forward each chunk, in each direction, only after ``seconds``; 0 turns it off.

        A direction forwards one chunk (up to CHUNK_BYTES) at a time, so under bulk traffic this
        also caps throughput at one chunk per delay; bytes arriving meanwhile wait at most twice
        the delay.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"delay must be a finite number of seconds >= 0, got {seconds!r}")
        self._delay = seconds

    def blackhole(self) -> None:
        """A partner that hangs: connections are accepted and read, nothing is forwarded.

        Bytes are held, not thrown away (reading stops once the stream buffers are full), so a
        connection that lives through the blackhole carries on intact after heal(). New
        connections do not reach the target until then.
        """
        self._blackholed = True
        self._update_gate()

    def refuse(self) -> None:
        """A partner that is down: open connections are cut, new ones reset on arrival."""
        self._refusing = True
        self.cut_all()

    def drop_downstream(self) -> None:
        """Keep forwarding to the target but throw away everything it sends back."""
        self._dropping_downstream = True

    def cut_all(self) -> None:
        """Reset every open connection now, on both sides."""
        for link in list(self._links):
            self._cut(link)

    def cut_after(self, direction: Direction, nbytes: int) -> None:
        """One shot: once ``nbytes`` more bytes have gone ``direction``, reset every connection.

        Exactly ``nbytes`` are forwarded (summed over all connections); with 0, the next byte
        that would go that way is not forwarded and triggers the cut. ``cut_after("downstream",
        0)`` is the partner that stored a message whose receipt never reached the sender.
        """
        if direction not in get_args(Direction):
            raise ValueError(f"direction must be 'upstream' or 'downstream', got {direction!r}")
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        self._cut_budget[direction] = nbytes

    # -- forwarding ---------------------------------------------------------------------------

    def _accept(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        if self._server is None or self._refusing:
            # Arrived while refusing, or raced stop(): reset, as a host with nothing listening.
            if self._refusing:
                self.counters.connections_refused += 1
            _reset(client)
            return
        self.counters.connections_accepted += 1
        link = _Link(client)
        self._links.add(link)
        link.task = asyncio.get_running_loop().create_task(self._serve(link, client_reader))

    async def _serve(self, link: _Link, client_reader: asyncio.StreamReader) -> None:
        try:
            # A blackholed partner is never reached: the connection waits here until heal().
            await self._wait_flowing()
            target_reader, link.upstream = await asyncio.open_connection(
                self.target_host, self.target_port, limit=CHUNK_BYTES
            )
            async with asyncio.TaskGroup() as pumps:
                pumps.create_task(self._pump(link, client_reader, link.upstream, "upstream"))
                pumps.create_task(self._pump(link, target_reader, link.client, "downstream"))
        except OSError:
            link.reset()  # the target is unreachable: pass that on as a reset
        finally:
            self._links.discard(link)
            link.close()

    async def _pump(
        self,
        link: _Link,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        direction: Direction,
    ) -> None:
        try:
            while chunk := await source.read(CHUNK_BYTES):
                if self._delay:
                    await asyncio.sleep(self._delay)
                await self._wait_flowing()
                # No await from here to write(): the fault state checked is the state applied.
                if direction == "downstream" and self._dropping_downstream:
                    self.counters.bytes_dropped += len(chunk)
                    continue
                budget = self._cut_budget.get(direction)
                if budget is not None and len(chunk) >= budget:
                    await self._trip(sink, chunk[:budget], direction)
                    return
                if budget is not None:
                    self._cut_budget[direction] = budget - len(chunk)
                sink.write(chunk)
                self._count(direction, len(chunk))
                await sink.drain()
            if sink.can_write_eof():
                sink.write_eof()  # pass a half-close on; the other direction keeps flowing
        except OSError:
            # One side reset: the other must not wait for bytes that will never come.
            link.reset()

    async def _trip(self, sink: asyncio.StreamWriter, last: bytes, direction: Direction) -> None:
        """cut_after()'s shot: forward the budget's last bytes, then cut every connection."""
        del self._cut_budget[direction]
        self._cutting = True
        self._update_gate()
        try:
            if last:
                sink.write(last)
                self._count(direction, len(last))
                if sink.transport.get_write_buffer_size():
                    await _flush(sink)
        finally:
            self._cutting = False
            self._update_gate()
        self.cut_all()  # cancels this connection's tasks too, at their next await

    def _cut(self, link: _Link) -> None:
        self._links.discard(link)
        self.counters.connections_cut += 1
        link.reset()
        if link.task is not None:
            link.task.cancel()

    def _count(self, direction: Direction, nbytes: int) -> None:
        if direction == "upstream":
            self.counters.bytes_upstream += nbytes
        else:
            self.counters.bytes_downstream += nbytes

    def _update_gate(self) -> None:
        if self._blackholed or self._cutting:
            self._flowing.clear()
        else:
            self._flowing.set()

    async def _wait_flowing(self) -> None:
        # A loop, not one wait(): the gate may close again before this task runs.
        while not self._flowing.is_set():
            await self._flowing.wait()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with a TCP RST, not a FIN: the peer sees a dropped connection, not an orderly end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: abort() below is then a no-op
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


async def _flush(writer: asyncio.StreamWriter) -> None:
    """Wait until asyncio has handed every buffered byte to the kernel (drain() stops early)."""
    writer.transport.set_write_buffer_limits(high=0)
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(CUT_FLUSH_SECONDS):
            await writer.drain()
