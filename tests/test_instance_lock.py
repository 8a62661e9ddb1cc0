"""One hub process per store (hub/store/lock.py): a second `serve`, or `db upgrade` under a
running hub, is refused naming the holder; the lock goes with the process however it ends."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.cli.main import main
from hub.config import load_config
from hub.core.errors import InstanceLocked, StoreError
from hub.runtime import start_hub
from hub.store.lock import ADVISORY_KEY
from tests.conftest import Federation, free_port
from tests.hubprocess import CLI, HubProcess
from tests.test_exchange import eventually


async def test_a_second_hub_on_the_same_store_is_refused(
    federation: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    cn = await federation.start("CN")
    config = federation.configs["CN"]
    # other ports, the same store: the lock, not a port, is what refuses it
    twin = dataclasses.replace(
        config, listen=f"127.0.0.1:{free_port()}", domestic_listen=f"127.0.0.1:{free_port()}"
    )
    with pytest.raises(InstanceLocked) as refused:
        await start_hub(twin)
    assert refused.value.reason == "hub-running"
    holder = str(refused.value)
    if cn.hub.store.db.is_sqlite:
        assert f"serve of CN, pid {os.getpid()}" in holder and "hub.db.lock" in holder
    else:
        assert "the lock of this PostgreSQL database (server process" in holder
        assert "(serve of CN, pid" in holder
    # the first hub goes on serving, and the schema cannot be changed under it
    assert await cn.hub.store.views.outbox() == []
    assert await asyncio.to_thread(main, ["db", "upgrade", "--config", str(config.path)]) == 2
    assert "hub-running" in capsys.readouterr().err
    await federation.stop("CN")
    again = await start_hub(twin)  # stopped: the lock is free
    await again.stop(grace=0.5)


async def test_a_second_serve_process_exits_naming_the_first(federation: Federation) -> None:
    await federation.start("CN")
    config = federation.configs["CN"]
    result = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "serve", "--config", str(config.path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "hub-running" in result.stderr and "stop it first" in result.stderr
    assert "Traceback" not in result.stderr


async def test_the_lock_goes_with_a_killed_process(tmp_path: Path, federation: Federation) -> None:
    config = federation.configs["CN"]
    process = HubProcess("CN", config.path)
    try:
        process.start()
        await process.ready()
        with pytest.raises(InstanceLocked):
            await start_hub(config)
        await process.kill()  # SIGKILL: nothing of the hub's own runs
        running = await start_hub(config)
        await running.stop(grace=0.5)
    finally:
        process.stop_quietly()


async def _terminate_lock_connection(url: str, party: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return len(
            await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE $1 AND datname = current_database()",
                f"serve of {party},%",
            )
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("federation", ["postgres"], indirect=True)
async def test_a_lock_the_postgresql_server_dropped_is_taken_again_or_reported_lost(
    federation: Federation,
) -> None:
    cn = await federation.start("CN")
    assert cn.lock is not None
    url = federation.configs["CN"].store_url.replace("+asyncpg", "")
    # the server drops the lock's connection (a restart, a cut): the hub takes it again
    assert await _terminate_lock_connection(url, "CN") == 1
    await cn.lock.keep()
    assert await _terminate_lock_connection(url, "CN") == 1  # held again, on a new connection
    # dropped, and another process takes it first: the hub says so, and is not serving
    rival = await asyncpg.connect(url)
    try:
        assert await rival.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_KEY)
        with pytest.raises(StoreError, match="this hub lost its lock"):
            await cn.lock.keep()

        async def not_serving() -> bool:
            async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
                answer = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=2
                )
            return bool(answer.status == health_pb2.HealthCheckResponse.NOT_SERVING)

        await eventually(not_serving, timeout=15)
        assert cn.lock_lost.is_set()  # and whoever runs the hub is told to stop it
    finally:
        await rival.close()


@pytest.mark.parametrize("federation", ["postgres"], indirect=True)
async def test_a_serve_process_whose_lock_another_takes_stops(federation: Federation) -> None:
    config = federation.configs["CN"]
    url = config.store_url.replace("+asyncpg", "")
    process = HubProcess("CN", config.path)
    rival = await asyncpg.connect(url)
    try:
        process.start()
        await process.ready()
        assert await _terminate_lock_connection(url, "CN") == 1
        assert await rival.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_KEY)
        assert process.proc is not None
        assert await asyncio.to_thread(process.proc.wait, 30) == 2
        assert "another process took its store's lock while it ran" in process.log.read_text()
    finally:
        await rival.close()
        process.stop_quietly()


@pytest.mark.parametrize("federation", ["postgres"], indirect=True)
async def test_the_lock_takes_no_place_in_the_pool(federation: Federation) -> None:
    """With a pool of one connection, the lock's own connection leaves it to the hub's work."""
    path = federation.configs["CN"].path
    url = federation.configs["CN"].store_url.replace("+asyncpg", "")
    path.write_text(path.read_text().replace(url, f"{url}?pool_size=1&max_overflow=0"))
    federation.configs["CN"] = load_config(path)
    cn = await federation.start("CN")
    await asyncio.wait_for(cn.hub.store.views.outbox(), 10)
    assert await cn.hub.store.trail.size() > 0
