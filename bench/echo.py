"""Baseline for the end-to-end benchmark: a bare grpc.aio mTLS bidirectional-streaming echo.

    python bench/echo.py [--sizes 300,17000] [--messages 20000] [--json FILE]

Measures what gRPC, TLS and asyncio cost with no hub logic at all (no envelope, no signature,
no store, no trail), so that the hub's own end-to-end figures can be read against it. For each
payload size, one client streams ``--messages`` random payloads, one per stream write with at
most ``WINDOW`` in flight, to an echo server in a separate process (so client and server each
get a core, as two hubs would), and reports:

- messages per second: ``messages`` / wall time until the last echo came back;
- client and server CPU in microseconds per message (``time.process_time``, all threads of the
  process, including gRPC's own). One message is one write and one echo read on each side.

The mTLS set-up mirrors two hubs: a development PKI from ``hub.cli.pki.init_federation`` in a
temporary directory, NZ serving with ``require_client_auth=True`` and trusting only CN's CA, CN
connecting with the hub's channel options and trusting only NZ's CA.

Another benchmark can run the baseline in the same run with ``echo_rate``. Run as
``python bench/e2e.py``, that script has ``bench/`` first on ``sys.path``, so
``from echo import echo_rate`` works; run as ``python -m bench.e2e`` from the repository root,
``from bench.echo import echo_rate`` works.

The server process is internal (``--serve``): it ignores Ctrl-C and exits when its stdin
closes, so it ends with the client whether the client finishes, fails, is interrupted or is
killed. This module must never be imported by ``hub/`` or ``adapters/``: it is measurement only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

from hub.cli.pki import PartyFiles, init_federation
from hub.rpc.channels import CHANNEL_OPTIONS

# The server process runs this file by path, so it works however this module was imported.
SCRIPT = Path(__file__).resolve()
SERVER_PARTY, CLIENT_PARTY = "NZ", "CN"
STREAM = "/bench.Echo/Stream"
CPU = "/bench.Echo/Cpu"

# 300 bytes is an AEO status envelope, 17,000 a median declaration envelope.
DEFAULT_SIZES = (300, 17_000)
# Enough for about 2 s per size at a few thousand messages per second: the default run stays
# under ~30 s on a 2-core machine, PKI and server start included.
DEFAULT_MESSAGES = 20_000
# Messages in flight on the one stream: deep enough that neither side waits on the other's
# round trip, shallow enough that 256 x 17 kB stays well inside HTTP/2 flow-control windows.
WINDOW = 256
# Warm-up messages per size, on a stream of their own, before measuring: lets HTTP/2's BDP
# probe grow the flow-control window and takes first-call costs out of the figures.
WARMUP = 1_000
# Distinct random payloads cycled through per size: TLS sees no repetition worth anything,
# and the client does not spend its measured CPU on os.urandom.
PAYLOAD_POOL = 64
# Room for gRPC framing above the largest payload in the message-size limits.
FRAMING_MARGIN = 1024
# Generous bounds so a stuck server fails the run instead of hanging it.
SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 5.0
STREAM_TIMEOUT = 600.0


@dataclass(frozen=True)
class EchoResult:
    payload_bytes: int
    messages: int
    seconds: float
    per_second: float
    client_cpu_us_per_msg: float
    server_cpu_us_per_msg: float


# --- server process --------------------------------------------------------------------------


async def _echo(
    requests: AsyncIterator[bytes], _context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


async def _cpu(_request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    return f"{time.process_time():.9f}".encode()


async def _serve(certs: Path, max_message_bytes: int) -> None:
    """Serve the echo on a free loopback port, print the port, stop when stdin closes."""
    own = PartyFiles.at(certs, SERVER_PARTY)
    peer = PartyFiles.at(certs, CLIENT_PARTY)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
    )
    # None (de)serialisers are gRPC's identity: the handlers see and return the raw bytes.
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "bench.Echo",
                {
                    "Stream": grpc.stream_stream_rpc_method_handler(_echo),
                    "Cpu": grpc.unary_unary_rpc_method_handler(_cpu),
                },
            )
        ]
    )
    credentials = grpc.ssl_server_credentials(
        [(own.tls_key.read_bytes(), own.tls_cert.read_bytes())],
        root_certificates=peer.ca_cert.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()

    def wait_for_eof() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stdin_closed.set)

    # A daemon thread, not asyncio.to_thread: a blocked read must never hold up exit.
    threading.Thread(target=wait_for_eof, daemon=True).start()
    print(port, flush=True)
    try:
        await stdin_closed.wait()
    finally:
        await server.stop(None)


# --- client ----------------------------------------------------------------------------------


class _EchoServer:
    """The echo server subprocess; ``stop`` is safe to call in any state, more than once."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process, self.port = process, port

    @classmethod
    async def start(cls, certs: Path, max_message_bytes: int) -> _EchoServer:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--serve",
            "--certs",
            str(certs),
            "--max-message-bytes",
            str(max_message_bytes),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        server = cls(process, 0)
        try:
            stdout = process.stdout
            if stdout is None:
                raise RuntimeError("echo server started without a stdout pipe")
            line = await asyncio.wait_for(stdout.readline(), SERVER_START_TIMEOUT)
            if not line.strip().isdigit():
                code = await asyncio.wait_for(process.wait(), SERVER_STOP_TIMEOUT)
                raise RuntimeError(f"echo server exited with status {code} before listening")
            server.port = int(line)
        except BaseException:
            await server.stop()
            raise
        return server

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), SERVER_STOP_TIMEOUT)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        except asyncio.CancelledError:
            self.process.kill()
            raise


async def _server_cpu(channel: grpc.aio.Channel) -> float:
    return float(await channel.unary_unary(CPU)(b"", timeout=SERVER_START_TIMEOUT))


async def _stream(channel: grpc.aio.Channel, payloads: Sequence[bytes], messages: int) -> None:
    """Send ``messages`` payloads on one stream, at most WINDOW unanswered, and read the echoes."""
    call = channel.stream_stream(STREAM)(timeout=STREAM_TIMEOUT)
    window = asyncio.Semaphore(WINDOW)

    async def write() -> None:
        for i in range(messages):
            await window.acquire()
            await call.write(payloads[i % len(payloads)])
        await call.done_writing()

    async def read() -> None:
        for i in range(messages):
            echo = await call.read()
            if echo != payloads[i % len(payloads)]:
                raise RuntimeError(f"echo {i} differs from what was sent ({len(echo)} bytes)")
            window.release()
        if await call.read() is not grpc.aio.EOF:
            raise RuntimeError(f"server sent more than the {messages} echoes expected")

    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(write())
            tasks.create_task(read())
    finally:
        call.cancel()


async def _measure(channel: grpc.aio.Channel, size: int, messages: int) -> EchoResult:
    payloads = [os.urandom(size) for _ in range(PAYLOAD_POOL)]
    await _stream(channel, payloads, min(WARMUP, messages))
    server_before = await _server_cpu(channel)
    client_before, wall_before = time.process_time(), time.perf_counter()
    await _stream(channel, payloads, messages)
    wall_after, client_after = time.perf_counter(), time.process_time()
    server_after = await _server_cpu(channel)
    seconds = wall_after - wall_before
    return EchoResult(
        payload_bytes=size,
        messages=messages,
        seconds=seconds,
        per_second=messages / seconds,
        client_cpu_us_per_msg=(client_after - client_before) / messages * 1e6,
        server_cpu_us_per_msg=(server_after - server_before) / messages * 1e6,
    )


async def echo_rate(payload_sizes: Sequence[int], messages: int) -> list[EchoResult]:
    """Echo ``messages`` payloads of each size over mTLS to a server process; one result each."""
    if messages < 1 or not payload_sizes or min(payload_sizes) < 0:
        raise ValueError(
            f"expected messages >= 1 and payload sizes >= 0; found {messages}, {payload_sizes}"
        )
    max_message_bytes = max(payload_sizes) + FRAMING_MARGIN
    with tempfile.TemporaryDirectory(prefix="bench-echo-") as tmp:
        certs = Path(tmp)
        init_federation(certs, [CLIENT_PARTY, SERVER_PARTY])
        own = PartyFiles.at(certs, CLIENT_PARTY)
        peer = PartyFiles.at(certs, SERVER_PARTY)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=peer.ca_cert.read_bytes(),
            private_key=own.tls_key.read_bytes(),
            certificate_chain=own.tls_cert.read_bytes(),
        )
        options = [
            *CHANNEL_OPTIONS,
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        server = await _EchoServer.start(certs, max_message_bytes)
        try:
            async with grpc.aio.secure_channel(
                f"127.0.0.1:{server.port}", credentials, options=options
            ) as channel:
                return [await _measure(channel, size, messages) for size in payload_sizes]
        finally:
            await server.stop()


# --- command line ----------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 300,17000; found {text!r}") from None
    if not sizes or min(sizes) < 0:
        raise argparse.ArgumentTypeError(f"expected sizes >= 0; found {text!r}")
    return sizes


def _write_json(path: Path, results: list[EchoResult]) -> None:
    report = {
        "benchmark": "grpc.aio mTLS bidirectional-streaming echo (no hub logic)",
        "python": platform.python_version(),
        "grpc": grpc.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "window": WINDOW,
        "results": [asdict(result) for result in results],
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)


async def _run(sizes: Sequence[int], messages: int) -> list[EchoResult]:
    # SIGTERM cancels the run like Ctrl-C does, so the server process is stopped and the
    # temporary directory, which holds private keys, is removed.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await echo_rate(sizes, messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES), help="bytes, a,b,c")
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES, help="per size")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--certs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--max-message-bytes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        # The client owns this process's lifetime through its stdin; Ctrl-C in the terminal
        # reaches the client, which then closes it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        asyncio.run(_serve(args.certs, args.max_message_bytes))
        return

    if args.messages < 1:
        parser.error(f"expected --messages >= 1; found {args.messages}")
    print(
        f"grpc.aio mTLS echo, one stream, window {WINDOW}; Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}, {platform.machine()}, {os.cpu_count()} CPUs"
    )
    try:
        results = asyncio.run(_run(args.sizes, args.messages))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except asyncio.CancelledError:
        print("terminated", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    print(
        f"{'bytes':>7} {'messages':>9} {'seconds':>8} {'msg/s':>9} "
        f"{'client CPU us/msg':>18} {'server CPU us/msg':>18}"
    )
    for r in results:
        print(
            f"{r.payload_bytes:>7} {r.messages:>9} {r.seconds:>8.2f} {r.per_second:>9,.0f} "
            f"{r.client_cpu_us_per_msg:>18.1f} {r.server_cpu_us_per_msg:>18.1f}"
        )
    if args.json:
        _write_json(args.json, results)
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
