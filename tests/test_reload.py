"""Reloading a running hub's configuration (hub/app/reload.py): partners added are reachable
both ways, partners removed are refused on their next call and get nothing more, new routes are
used; a configuration that is not valid, or that changes what only a restart applies, is refused
with the reason and the one in use stays. SIGHUP and `customs-hub reload` do it for a running
`serve` process."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
from pathlib import Path

import grpc
import pytest

from hub.cli.demo import sample_aeo_status
from hub.config import load_config, render_config
from hub.core.errors import ConfigError
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.runtime import RunningHub
from hub.store.db import Store
from hub.store.lock import short_host
from hub.trail import events as trail
from tests.conftest import Federation
from tests.faultproxy import FaultProxy
from tests.hubprocess import CLI, HubProcess
from tests.test_delivery import fast_retries
from tests.test_exchange import as_partner, eventually, signed_envelope, submit


def write_config(fed: Federation, party: str, partners: list[str], **changes: str) -> Path:
    """``party``'s hub.toml with only ``partners`` (same ports, store and keys)."""
    config = fed.configs[party]
    path = config.path
    text = render_config(
        party=party,
        listen=config.listen,
        domestic_listen=config.domestic_listen,
        pki=fed.pki,
        partners={p: f"127.0.0.1:{fed.ports[p][0]}" for p in partners},
        store=config.store_url.replace("+aiosqlite", "").replace("+asyncpg", ""),
        audit_listen=config.audit_listen,
    )
    for old, new in changes.items():
        text = text.replace(old, new)
    path.write_text(text)
    return path


async def aeo_to(hub: RunningHub, partner: str, aeo_id: str) -> str:
    [queued] = await submit(
        hub,
        spb.SubmitRequest(
            aeo_status=sample_aeo_status(hub.config.party, aeo_id), recipients=[partner]
        ),
    )
    return queued.message_id


async def not_a_partner(hub: RunningHub, partner: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await aeo_to(hub, partner, "AEO0")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def received(hub: RunningHub, message_id: str) -> bool:
    return any(m.message_id == message_id for m in await hub.hub.store.views.inbound())


async def config_leaves(hub: RunningHub) -> list[trail.Event]:
    leaves = await hub.hub.store.trail.leaves()
    events = [trail.decode(leaf) for leaf in leaves]
    return [e for e in events if e.kind == "config-changed"]


async def test_a_reload_adds_and_removes_partners(federation: Federation) -> None:
    federation.configs["CN"] = load_config(write_config(federation, "CN", ["NZ"]))
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    fast_retries(federation, "SG")  # its backoff stays short while CN refuses it
    sg = await federation.start("SG")

    # SG is not CN's partner yet: its message to CN waits in SG's outbox
    early = await aeo_to(sg, "CN", "SGAEO1")
    await asyncio.sleep(1.0)
    assert not await received(cn, early)
    await not_a_partner(cn, "SG")  # and CN cannot address SG

    write_config(federation, "CN", ["NZ", "SG"])
    change = await cn.reload()
    assert change.added == ("SG",) and change.removed == () and change.recorded
    assert "SG" in cn.hub.config.partners
    # SG's queued message gets through (CN's port trusts SG's CA for new connections), and
    # CN reaches SG (a channel, a sender and a route it did not have)
    await eventually(lambda: received(cn, early), timeout=30)
    to_sg = await aeo_to(cn, "SG", "CNAEO1")
    await eventually(lambda: received(sg, to_sg), timeout=30)
    [*_, leaf] = await config_leaves(cn)
    assert leaf.detail == "reloaded hub.toml"

    # NZ removed: its next call is refused, and CN's messages for it stay queued
    before = await aeo_to(nz, "CN", "NZAEO1")
    await eventually(lambda: received(cn, before))
    write_config(federation, "CN", ["SG"])
    change = await cn.reload()
    assert change.removed == ("NZ",)
    client = as_partner(federation.pki, "NZ", cn)
    data, _ = signed_envelope(federation.pki, "NZ", sender="NZ", recipient="CN")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.deliver("CN", data, timeout=5)
    finally:
        await client.close()
    # a new connection: CN's port no longer trusts NZ's CA
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # NZ's stream, open from before: its next frame is refused as from no partner
    after = await aeo_to(nz, "CN", "NZAEO2")

    async def refused_on_the_open_stream() -> bool:
        errors = [e.last_error or "" for e in await nz.hub.store.views.outbox()]
        return any("no longer a partner of this hub" in e for e in errors)

    await eventually(refused_on_the_open_stream)
    assert not await received(cn, after)
    await not_a_partner(cn, "NZ")  # CN no longer addresses NZ
    # SG, unchanged, is served as before
    again = await aeo_to(sg, "CN", "SGAEO2")
    await eventually(lambda: received(cn, again), timeout=30)


async def test_a_configuration_that_is_not_valid_is_refused_and_the_old_one_stays(
    federation: Federation,
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    leaves = len(await config_leaves(cn))
    path = federation.configs["CN"].path
    good = path.read_text()
    for text, why in (
        (good.replace("[limits]", "[limitz]"), "did you mean [limits]"),
        (good.replace("tls.pem", "missing.pem", 1), "does not exist"),
        (good.replace(federation.configs["CN"].listen, "127.0.0.1:1"), "listen changed"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError) as refused:
            await cn.reload()
        assert why in str(refused.value)
        [*_, rejection] = await cn.hub.store.views.rejections("reload")
        assert rejection.reason == "config-invalid" and why in rejection.detail
    path.write_text(good)
    assert len(await config_leaves(cn)) == leaves  # nothing reloaded
    # the hub goes on with what it had
    message = await aeo_to(cn, "NZ", "CNAEO9")
    await eventually(lambda: received(nz, message))


async def test_sighup_and_the_reload_command_reload_a_serve_process(
    federation: Federation,
) -> None:
    config = write_config(federation, "CN", ["NZ"])
    process = HubProcess("CN", config)
    try:
        process.start()
        await process.ready()
        fast_retries(federation, "SG")  # its backoff stays short while CN refuses it
        sg = await federation.start("SG")
        early = await aeo_to(sg, "CN", "SGAEO1")

        # a configuration that is not valid is refused before the hub hears of it
        good = config.read_text()
        config.write_text(good.replace("[limits]", "[limitz]"))
        done = await asyncio.to_thread(run_cli, "reload", "--config", str(config))
        assert done.returncode == 2 and "did you mean [limits]" in done.stderr
        # one the hub refuses (only a restart applies it) comes back with its reason
        config.write_text(good.replace("checkpoint_seconds = 10", "checkpoint_seconds = 5"))
        done = await asyncio.to_thread(run_cli, "reload", "--config", str(config))
        assert done.returncode == 2, done.stdout
        assert "reload-failed" in done.stderr and "checkpoint_seconds changed" in done.stderr

        write_config(federation, "CN", ["NZ", "SG"])
        done = await asyncio.to_thread(run_cli, "reload", "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert f"pid {process.proc.pid}" in done.stdout and "reloaded" in done.stdout  # type: ignore[union-attr]
        cn_store = federation.configs["CN"]

        async def arrived() -> bool:
            store = Store(cn_store.store_url)
            try:
                return any(m.message_id == early for m in await store.views.inbound())
            finally:
                await store.close()

        await eventually(arrived, timeout=30)
        done = await asyncio.to_thread(run_cli, "reload", "--config", str(config))
        assert done.returncode == 0 and "already running this configuration" in done.stdout

        # a bare SIGHUP reloads too, and no longer kills the hub
        assert process.proc is not None
        process.proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(1.0)
        assert process.proc.poll() is None
        await process.ready()
        assert "reloaded: nothing changed" in process.log.read_text()
        # SIGHUP during a shutdown (SG's stream keeps it waiting for its grace) is ignored,
        # not the default action that would end the process there and then
        process.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert process.proc.poll() is None, "the shutdown was too quick to test this"
        process.proc.send_signal(signal.SIGHUP)
        assert await asyncio.to_thread(process.proc.wait, 30) == 0
        assert "reload ignored: the hub is stopping" in process.log.read_text()
    finally:
        process.stop_quietly()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


async def test_a_reload_that_cannot_be_put_in_place_leaves_everything_as_it_was(
    federation: Federation,
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    old = cn.hub.settings
    calls: list[tuple[str, ...]] = []

    def fails_once(before: object, after: object) -> None:
        calls.append(tuple(sorted(after.config.partners)))  # type: ignore[attr-defined]
        if len(calls) == 1:
            raise RuntimeError("a fault of the hub's own")

    cn.hub.reloader.listeners.append(fails_once)
    write_config(federation, "CN", ["NZ"])
    with pytest.raises(ConfigError, match="putting it in place failed"):
        await cn.reload()
    assert cn.hub.settings is old
    assert calls == [("NZ",), ("NZ", "SG")]  # told the new, then the old again
    [*_, rejection] = await cn.hub.store.views.rejections("reload")
    assert "putting it in place failed" in rejection.detail
    message = await aeo_to(cn, "NZ", "CNAEO7")
    await eventually(lambda: received(nz, message))


@pytest.mark.parametrize("federation", ["sqlite"], indirect=True)
def test_reload_signals_only_the_serve_process_of_that_config(
    federation: Federation, tmp_path: Path
) -> None:
    """Whoever can write the lock file could name any process in it: the process is checked
    to be `customs-hub serve` of this config before it is signalled."""
    config = federation.configs["CN"]
    asyncio.run(_make_store(config.store_url))
    bystander = subprocess.Popen(["sleep", "60"])
    lock = Path(f"{config.store_url.split('///', 1)[1]}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"serve of CN, pid {bystander.pid} on {short_host()}, since now\n".encode())
        done = run_cli("reload", "--config", str(config.path))
        assert done.returncode == 2
        assert f"process {bystander.pid}, which the lock names, is not" in done.stderr
        assert bystander.poll() is None  # not signalled
    finally:
        os.close(fd)
        bystander.kill()
        bystander.wait()


async def _make_store(url: str) -> None:
    store = Store(url)
    try:
        await store.prepare(create=True)
    finally:
        await store.close()


async def test_receipts_of_what_was_sent_before_a_partner_was_removed_still_settle(
    federation: Federation,
) -> None:
    """The receipts are checked with the keys trusted when the stream opened: a reload that
    removes the partner meanwhile does not refuse the signed proof of what it took."""
    nz = await federation.start("NZ")
    async with FaultProxy("127.0.0.1", nz.partner_port) as proxy:
        path = write_config(federation, "CN", ["NZ", "SG"])
        path.write_text(
            path.read_text().replace(f"127.0.0.1:{federation.ports['NZ'][0]}", proxy.address)
        )
        federation.configs["CN"] = load_config(path)
        cn = await federation.start("CN")
        proxy.delay(1.5)  # each way: the receipt is on its way for a while
        message = await aeo_to(cn, "NZ", "CNAEO5")
        await eventually(lambda: received(nz, message), timeout=30)
        write_config(federation, "CN", ["SG"])
        change = await cn.reload()
        assert change.removed == ("NZ",)

        async def settled() -> bool:
            rows = await cn.hub.store.views.outbound()
            return any(m.message_id == message and r is not None for m, r in rows)

        await eventually(settled, timeout=30)
        [(outbound, receipt)] = [
            (m, r) for m, r in await cn.hub.store.views.outbound() if m.message_id == message
        ]
        assert receipt is not None and receipt.outcome == "accepted"
        assert outbound.status == "delivered"
