"""Health that means something (issue 16): every port says NOT_SERVING while the store does not
answer and during shutdown, SERVING again when the store is back; Health.List answers with the
port's services, without an ERROR log. Real hubs over real mTLS on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from hub.app import health as app_health
from hub.app.health import StoreWatch
from hub.core.errors import StoreError
from hub.runtime import RunningHub
from tests.conftest import PG_ADMIN_DSN, Federation
from tests.test_exchange import eventually

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
PARTNER = "customs_hub.v1.PartnerExchange"
DOMESTIC = "customs_hub.v1.Domestic"
RECOGNITION = "customs_hub.v1.Recognition"  # on the domestic port too


@pytest.fixture(autouse=True)
def quick_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_health, "PROBE_SECONDS", 0.1)
    monkeypatch.setattr(app_health, "PROBE_TIMEOUT_SECONDS", 2.0)


def partner_channel(pki: Path, running: RunningHub, party: str = "CN") -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(
        (pki / running.config.party / "ca.pem").read_bytes(),
        (pki / party / "tls.key").read_bytes(),
        (pki / party / "tls.pem").read_bytes(),
    )
    return grpc.aio.secure_channel(f"127.0.0.1:{running.partner_port}", creds)


async def statuses(pki: Path, running: RunningHub) -> dict[tuple[str, str], int]:
    """Every service's status on the partner port (as CN) and the domestic port."""
    found = {}
    async with partner_channel(pki, running) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", PARTNER):
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            found["partner", service] = answer.status
    async with grpc.aio.insecure_channel(running.config.domestic_listen) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", DOMESTIC, RECOGNITION):
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            found["domestic", service] = answer.status
    return found


def all_of(pki: Path, running: RunningHub, status: int) -> Callable[[], object]:
    async def check() -> bool:
        return set((await statuses(pki, running)).values()) == {status}

    return check


def _sqlite_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + end) for end in ("", "-wal", "-shm")]


def _put_aside(path: Path) -> None:
    for file in _sqlite_files(path):
        file.rename(file.with_name(file.name + ".aside"))
    path.write_bytes(b"this is not a SQLite database\n" * 200)


def _put_back(path: Path) -> None:
    path.unlink()
    for file in _sqlite_files(path):
        file.with_name(file.name + ".aside").rename(file)


@asynccontextmanager
async def store_unreachable(running: RunningHub) -> AsyncIterator[None]:
    """The hub's store stops answering new connections, and answers again on leaving.

    SQLite: the database file and its write-ahead log are moved aside and something that is
    not a database put in their place (the tests run as root, so permissions would not stop a
    read); the hub's open connections keep the moved files. PostgreSQL: the database refuses
    connections and the hub's are ended."""
    url = make_url(running.config.store_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        _put_aside(path)
        try:
            yield
        finally:
            _put_back(path)
        return
    name = url.database
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        try:
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


async def test_health_is_not_serving_while_the_store_is_unreachable(
    federation: Federation, pki: Path
) -> None:
    nz = await federation.start("NZ")
    assert set((await statuses(pki, nz)).values()) == {SERVING}
    async with store_unreachable(nz):
        await eventually(all_of(pki, nz, NOT_SERVING))
    await eventually(all_of(pki, nz, SERVING))


async def test_a_watch_sees_not_serving_when_the_hub_stops(
    federation: Federation, pki: Path
) -> None:
    nz = await federation.start("NZ")
    async with (
        partner_channel(pki, nz) as partner,
        grpc.aio.insecure_channel(nz.config.domestic_listen) as domestic,
    ):
        watches = [
            health_pb2_grpc.HealthStub(partner).Watch(
                health_pb2.HealthCheckRequest(service=PARTNER), timeout=20
            ),
            health_pb2_grpc.HealthStub(domestic).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=20
            ),
        ]
        for watch in watches:
            assert (await watch.read()).status == SERVING
        stopping = asyncio.create_task(federation.stop("NZ"))
        for watch in watches:
            assert (await asyncio.wait_for(watch.read(), 10)).status == NOT_SERVING
        await stopping


async def test_health_list_answers_with_the_ports_services_and_logs_no_error(
    federation: Federation, pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 16: List answered UNIMPLEMENTED with an ERROR traceback (grpcio-health-checking
    1.85's servicer has no List)."""
    nz = await federation.start("NZ")
    caplog.set_level(logging.INFO)
    async with partner_channel(pki, nz) as channel:
        listed = await health_pb2_grpc.HealthStub(channel).List(
            health_pb2.HealthListRequest(), timeout=5
        )
        assert {k: v.status for k, v in listed.statuses.items()} == {"": SERVING, PARTNER: SERVING}
    async with grpc.aio.insecure_channel(nz.config.domestic_listen) as channel:
        listed = await health_pb2_grpc.HealthStub(channel).List(
            health_pb2.HealthListRequest(), timeout=5
        )
        assert {k: v.status for k, v in listed.statuses.items()} == {
            "": SERVING,
            DOMESTIC: SERVING,
            RECOGNITION: SERVING,
            "customs_hub.v1.PartnerRegistry": SERVING,  # registry query|sync (mr.proto)
        }
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_the_store_watch_reports_each_change_once() -> None:
    answers = iter([None, StoreError("down"), StoreError("down"), None, None])
    seen: list[bool] = []

    async def probe() -> None:
        answer = next(answers)
        if answer is not None:
            raise answer

    async def changed(serving: bool) -> None:
        seen.append(serving)

    watch = StoreWatch(probe, changed, every=0, timeout=1)
    assert [await watch.check() for _ in range(5)] == [True, False, False, True, True]
    assert seen == [False, True]


async def test_a_probe_that_hangs_counts_as_unreachable() -> None:
    seen: list[bool] = []

    async def probe() -> None:
        await asyncio.sleep(10)

    async def changed(serving: bool) -> None:
        seen.append(serving)

    assert await StoreWatch(probe, changed, every=0, timeout=0.05).check() is False
    assert seen == [False]
