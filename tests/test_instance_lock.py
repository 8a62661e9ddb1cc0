"""One hub process per store (hub/store/lock.py): a second `serve`, or `db upgrade` under a
running hub, is refused naming the holder; the lock goes with the process however it ends."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from hub.cli.main import main
from hub.core.errors import InstanceLocked
from hub.runtime import start_hub
from tests.conftest import Federation, free_port
from tests.hubprocess import CLI, HubProcess


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
        assert "the lock of hub CN on this PostgreSQL database (server process" in holder
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
