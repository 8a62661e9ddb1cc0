"""Hubs as real ``customs-hub serve`` processes, and the domestic systems around them, for the
crash and shutdown tests.

A ``HubProcess`` is made the way an operator makes one (``customs-hub pki init``, ``customs-hub
init``, limits edited in hub.toml), is started, SIGKILLed and SIGTERMed as a process, and logs
to a file that failure messages quote. ``LoadGenerator`` is a domestic system that submits
batches with idempotency keys and resubmits any batch that got no answer; ``Subscriber`` is a
domestic system that processes inbound messages, then acknowledges them, and checks that
nothing it acknowledged comes back. Neither ever reads a hub's database: they see what a
domestic system sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.cli.demo import sample_aeo_status
from hub.config import load_config
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.store.db import Store
from hub.store.schema import InboundMessage, OutboundMessage, OutboxEntry, ReceiptRecord
from tests.conftest import free_port

CLI = [sys.executable, "-m", "hub.cli.main"]
# How long a hub process may take to answer its health check after being started.
START_SECONDS = 30.0
# Short retry waits, so that outages and restarts cost seconds; a short shutdown grace, so
# that SIGTERM tests do not wait long.
TEST_LIMITS: Mapping[str, float] = {
    "retry_initial_seconds": 0.2,
    "retry_max_seconds": 1.0,
    "poll_seconds": 0.2,
    "partner_timeout_seconds": 2.0,
    "shutdown_grace_seconds": 2.0,
}
# gRPC codes a domestic client sees when the hub went away under it, or is not back yet: the
# call may or may not have been carried out, so it is repeated (with the same idempotency keys).
# Any other code is an answer, and for these tests a wrong one.
NO_ANSWER = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)
# What SIGTERM may take beyond shutdown_grace_seconds: interpreter exit, closing channels and
# the store, on a loaded two-core CI machine.
EXIT_SLACK_SECONDS = 5.0
# Client channels reconnect quickly to a restarted hub (gRPC's default backoff grows to 120 s).
CLIENT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"customs-hub {' '.join(args)}: {result.stderr}"
    return result


class HubProcess:
    """One ``customs-hub serve`` process that can be started again after it died."""

    def __init__(self, party: str, config: Path) -> None:
        self.party = party
        self.config_path = config
        self.config = load_config(config)
        self.log = config.parent / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.starts = 0
        # True from a health check answering SERVING until the test signals the process: a
        # client error while it is true is not explained by a kill or a shutdown
        self.up = False

    @property
    def domestic(self) -> str:
        return self.config.domestic_listen

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.party} is running"
        self._close_log()
        self._log_file = self.log.open("ab")
        self._log_file.write(f"--- start {self.starts + 1}\n".encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(self.config_path)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1

    async def ready(self) -> None:
        """Wait until the domestic port's health check answers SERVING (the hub sets it after
        both servers started and before its outbox worker runs)."""
        deadline = time.monotonic() + START_SECONDS
        request = health_pb2.HealthCheckRequest(service="")
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.party} exited with {self.proc.returncode}{self.tail()}"
                )
            async with grpc.aio.insecure_channel(self.domestic) as channel:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    answer = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        self.up = True
                        return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.party} did not become healthy{self.tail()}")

    async def restart(self) -> None:
        self.start()
        await self.ready()

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever was not committed is lost."""
        assert self.proc is not None
        self.up = False
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 30)

    async def terminate(self) -> tuple[int | None, float]:
        """SIGTERM; returns the exit code (None if still running after a generous bound) and
        the seconds the process took to exit."""
        assert self.proc is not None
        self.up = False
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        limit = self.config.limits.shutdown_grace_seconds + 30
        try:
            code: int | None = await asyncio.to_thread(self.proc.wait, limit)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - started

    async def stop_gracefully(self) -> float:
        """SIGTERM; the hub must exit 0 within its shutdown grace plus EXIT_SLACK_SECONDS.
        Returns the seconds it took."""
        code, seconds = await self.terminate()
        bound = self.config.limits.shutdown_grace_seconds + EXIT_SLACK_SECONDS
        assert code == 0, f"{self.party} exited with {code} after SIGTERM{self.tail()}"
        assert seconds <= bound, (
            f"{self.party} took {seconds:.1f} s (bound {bound:g} s){self.tail()}"
        )
        return seconds

    def stop_quietly(self) -> None:
        """For test teardown: make sure the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"\n--- {self.log} (last {lines} lines):\n" + "\n".join(text.splitlines()[-lines:])

    async def read(self) -> HubContents:
        """What the hub's store holds (read while the hub runs)."""
        store = Store(self.config.store_url)
        try:
            return HubContents(
                outbound=await store.views.outbound(),
                outbox=await store.views.outbox(),
                inbound=await store.views.inbound(),
            )
        finally:
            await store.close()


@dataclass
class HubContents:
    outbound: list[tuple[OutboundMessage, ReceiptRecord | None]]
    outbox: list[OutboxEntry]
    inbound: list[InboundMessage]


def make_federation(
    root: Path,
    parties: tuple[str, str] = ("CN", "NZ"),
    stores: dict[str, str] | None = None,
    **limits: float,
) -> dict[str, HubProcess]:
    """A two-hub federation made with the CLI, ``TEST_LIMITS`` (and ``limits``) written into
    each hub.toml, and SQLite stores unless ``stores`` names a store URL per party. Returns
    the (not yet started) processes."""
    cli("pki", "init", "--parties", ",".join(parties), "--out", str(root / "pki"))
    ports = {p: (free_port(), free_port()) for p in parties}
    settings = {**TEST_LIMITS, **limits}
    procs = {}
    for party in parties:
        other = next(p for p in parties if p != party)
        hubdir = root / party
        cli(
            "init",
            "--party",
            party,
            "--pki",
            str(root / "pki"),
            "--out",
            str(hubdir),
            "--listen",
            f"127.0.0.1:{ports[party][0]}",
            "--domestic-listen",
            f"127.0.0.1:{ports[party][1]}",
            "--audit-listen",
            f"127.0.0.1:{free_port()}",  # each hub its own auditors' port
            "--partner",
            f"{other}=127.0.0.1:{ports[other][0]}",
            *(["--store", stores[party]] if stores else []),
        )
        config = hubdir / "hub.toml"
        text = config.read_text()
        lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
        assert "[limits]\n" in text
        config.write_text(text.replace("[limits]\n", "[limits]\n" + lines, 1))
        procs[party] = HubProcess(party, config)
    return procs


def point_partner(hub: HubProcess, partner: str, endpoint: str) -> None:
    """Rewrite ``partner``'s endpoint in the hub's config file (takes effect at its next start)."""
    text = hub.config_path.read_text()
    old = f'endpoint = "{hub.config.partners[partner].endpoint}"'
    assert text.count(old) == 1
    hub.config_path.write_text(text.replace(old, f'endpoint = "{endpoint}"'))
    hub.config = load_config(hub.config_path)


def submission_ids(batch: int, size: int) -> list[str]:
    """The submission ids of batch number ``batch``; each names one AEO status."""
    return [f"CN-NZ-{batch:04d}-{i:03d}" for i in range(size)]


def aeo_batches(count: int, size: int) -> list[list[str]]:
    return [submission_ids(b, size) for b in range(count)]


def aeo_request(submission_id: str) -> spb.SubmitRequest:
    """CN's AEO status for NZ, its AEO id made from the submission id (so none supersedes
    another)."""
    return spb.SubmitRequest(
        aeo_status=sample_aeo_status("CN", "AEO" + submission_id.replace("-", "")),
        recipients=["NZ"],
        submission_id=submission_id,
    )


@dataclass
class LoadGenerator:
    """A domestic system submitting batches through Domestic.SubmitBatch, each document with
    its own submission_id. A batch that got no answer is submitted again, with the same ids,
    until it gets one; the answers are kept per submission id."""

    hub: HubProcess
    pause: float = 0.0  # between batches
    answers: dict[str, list[str]] = field(default_factory=dict)  # submission id -> message ids
    unanswered: list[tuple[int, str]] = field(default_factory=list)  # (batch, gRPC code)
    batches_done: int = 0

    async def run(self, batches: list[list[str]], deadline: float = 120.0) -> None:
        """Submit ``batches`` in order, each until it is answered."""
        give_up = time.monotonic() + deadline
        for number, ids in enumerate(batches):
            await self._one(number, ids, give_up)

    async def run_until(self, stop: asyncio.Event, size: int, deadline: float = 120.0) -> None:
        """Submit batches of ``size`` until ``stop`` is set (the batch under way is finished)."""
        give_up = time.monotonic() + deadline
        number = 0
        while not stop.is_set():
            await self._one(number, submission_ids(number, size), give_up)
            number += 1

    async def _one(self, number: int, ids: list[str], give_up: float) -> None:
        response = await self.submit(number, batch_of(ids), give_up)
        assert len(response.results) == len(ids)
        for submission_id, result in zip(ids, response.results, strict=True):
            assert result.WhichOneof("result") == "queued", (submission_id, result)
            queued = [q.message_id for q in result.queued.queued]
            assert submission_id not in self.answers, f"{submission_id} answered twice"
            self.answers[submission_id] = queued
        self.batches_done += 1
        if self.pause:
            await asyncio.sleep(self.pause)

    async def submit(
        self, number: int, request: spb.SubmitBatchRequest, give_up: float
    ) -> spb.SubmitBatchResponse:
        while True:
            async with grpc.aio.insecure_channel(self.hub.domestic, options=CLIENT_OPTIONS) as ch:
                try:
                    response: spb.SubmitBatchResponse = await sgrpc.DomesticStub(ch).SubmitBatch(
                        request, timeout=10
                    )
                    return response
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in NO_ANSWER:
                        raise
                    self.unanswered.append((number, exc.code().name))
            assert time.monotonic() < give_up, f"batch {number} never got an answer"
            await asyncio.sleep(0.1)

    def queued(self) -> list[str]:
        return [m for ids in self.answers.values() for m in ids]


@dataclass(frozen=True)
class CallError:
    call: str  # the RPC that failed
    code: grpc.StatusCode
    details: str
    hub_up: bool  # the hub had not been signalled since it was last healthy


@dataclass
class Delivery:
    cursor: int
    message_id: str
    acknowledged_before: int  # the highest cursor NZ had confirmed as acknowledged by then


@dataclass
class Subscriber:
    """A domestic system: Domestic.Subscribe from its acknowledged cursor, process each
    message (record it), then Domestic.Acknowledge it. Its record of what it processed and
    what NZ confirmed survives its restarts, as a real system's database would."""

    hub: HubProcess
    name: str = "risk-engine"
    deliveries: list[Delivery] = field(default_factory=list)
    confirmed: int = 0  # the highest cursor NZ answered an Acknowledge with
    errors: list[CallError] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"subscriber-{self.name}")

    async def stop(self) -> None:
        """The domestic system dies (perhaps between processing and acknowledging)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def restart(self) -> None:
        await self.stop()
        self.start()

    async def _run(self) -> None:
        while True:
            async with grpc.aio.insecure_channel(self.hub.domestic, options=CLIENT_OPTIONS) as ch:
                stub = sgrpc.DomesticStub(ch)
                call = "Subscribe"
                try:
                    stream = stub.Subscribe(spb.SubscribeRequest(subscriber=self.name))
                    async for message in stream:
                        self.deliveries.append(
                            Delivery(message.cursor, message.message_id, self.confirmed)
                        )
                        call = "Acknowledge"
                        answer = await stub.Acknowledge(
                            spb.AcknowledgeRequest(subscriber=self.name, cursor=message.cursor),
                            timeout=10,
                        )
                        call = "Subscribe"
                        self.confirmed = max(self.confirmed, answer.acknowledged_cursor)
                except grpc.aio.AioRpcError as exc:
                    # whatever went wrong, a domestic system carries on: it subscribes again
                    # from its acknowledged cursor; the test judges the errors afterwards
                    self.errors.append(
                        CallError(call, exc.code(), exc.details() or "", hub_up=self.hub.up)
                    )
            await asyncio.sleep(0.1)

    def processed(self) -> set[str]:
        return {d.message_id for d in self.deliveries}

    def acknowledged_again(self) -> list[Delivery]:
        """Deliveries of a message at or before a cursor NZ had already confirmed as
        acknowledged: each is a message handed over again after it was acknowledged."""
        return [d for d in self.deliveries if d.cursor <= d.acknowledged_before]

    def redelivered(self) -> list[Delivery]:
        """Second and later deliveries of a message."""
        seen: set[str] = set()
        again = []
        for d in self.deliveries:
            if d.message_id in seen:
                again.append(d)
            seen.add(d.message_id)
        return again


def unexplained(errors: list[CallError]) -> list[str]:
    """Errors of calls to a hub that was up all along: no kill or shutdown explains them."""
    return [f"{e.call}: {e.code.name}: {e.details}" for e in errors if e.hub_up]


def assert_delivered_once(at_cn: HubContents, at_nz: HubContents, queued: list[str]) -> None:
    """docs/adr/0005's promise, read from both stores: CN queued exactly ``queued`` (what it
    answered as queued), NZ holds each exactly once and nothing else, and CN holds for each
    the receipt NZ stored, byte for byte, with nothing left in its outbox."""
    assert len(queued) == len(set(queued))
    assert sorted(m.message_id for m, _ in at_cn.outbound) == sorted(queued)
    assert at_cn.outbox == []
    received = Counter(m.message_id for m in at_nz.inbound)
    assert set(received) == set(queued)
    assert max(received.values()) == 1
    stored = {m.message_id: m.signed_receipt for m in at_nz.inbound}
    for message, receipt in at_cn.outbound:
        assert receipt is not None, f"CN holds no receipt for {message.message_id}"
        assert message.status == "delivered" and receipt.outcome == "accepted"
        assert receipt.signed_receipt == stored[message.message_id], message.message_id


def batch_of(ids: list[str]) -> spb.SubmitBatchRequest:
    return spb.SubmitBatchRequest(requests=[aeo_request(s) for s in ids])


@contextlib.contextmanager
def processes(hubs: Mapping[str, HubProcess]) -> Iterator[None]:
    """Make sure no hub process outlives the test."""
    try:
        yield
    finally:
        for hub in hubs.values():
            hub.stop_quietly()
