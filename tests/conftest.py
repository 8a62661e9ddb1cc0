"""Shared fixtures: a development federation PKI, stores on SQLite and PostgreSQL, and real
hubs started on free loopback ports."""

from __future__ import annotations

import itertools
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from hub.cli.pki import init_federation, init_party
from hub.config import HubConfig, load_config, render_config
from hub.runtime import RunningHub, start_hub

PARTIES = ["CN", "NZ", "SG"]
PG_ADMIN_DSN = os.environ.get("CUSTOMS_HUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


# Ports for the servers the tests start. Port 0 would let the kernel choose, but a config names
# its partners' ports before any server starts, so ports are picked here. They come from below
# the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default), where no
# client socket is ever given one, and each xdist worker has its own block, so that two workers
# never pick the same port; a session starts at a random place in its block, so that two
# sessions on one machine seldom do. Hubs refuse to share a port (no SO_REUSEPORT), so a port
# some other process holds fails a start loudly; free_port checks with a bind first and moves on.
PORT_BASE, PORT_BLOCK = 20_000, 1_000
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _port_block() -> Iterator[int] | None:
    """This worker's ports, cycling from a random start; None where the block would reach the
    ephemeral range (many workers), and then the kernel chooses."""
    low = PORT_BASE + _WORKER * PORT_BLOCK
    if low + PORT_BLOCK > _ephemeral_start():
        return None
    start = random.randrange(PORT_BLOCK)
    return itertools.cycle([*range(low + start, low + PORT_BLOCK), *range(low, low + start)])


_next_ports = _port_block()


def free_port() -> int:
    for _ in range(PORT_BLOCK):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                s.bind(("127.0.0.1", next(_next_ports) if _next_ports else 0))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError(
        f"no free port in this worker's block from {PORT_BASE + _WORKER * PORT_BLOCK}"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests spread evenly through the run. ``make test``'s work stealing hands each
    worker a contiguous share of this list, and idle workers take from the ends of others'
    shares; together, the slow ones would all land on one worker."""
    slow = [item for item in items if item.get_closest_marker("slow")]
    if not slow:
        return
    quick = iter(item for item in items if not item.get_closest_marker("slow"))
    places = {len(items) * n // len(slow): item for n, item in enumerate(slow)}
    items[:] = [places[at] if at in places else next(quick) for at in range(len(items))]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    init_federation(root, PARTIES)
    return root


@pytest.fixture(scope="session")
def rogue_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA nobody trusts, issuing certificates that claim to be CN."""
    root = tmp_path_factory.mktemp("rogue")
    init_party(root, "CN")
    return root


class PgDatabases:
    """Empty PostgreSQL databases for the tests of one pytest process (one xdist worker).

    Creating a database costs 0.1-0.4 s here (PostgreSQL 15 copies the template through the
    write-ahead log and syncs it), and a federation test needs three. So a database a test is
    done with is emptied instead, in about 15 ms: its connections ended, schema ``public``
    dropped and made again as a new database has it. The next test gets it as if new: an empty
    ``public`` schema and nobody connected. Each process names its own databases, and drops them
    when its session ends (pytest_sessionfinish).
    """

    def __init__(self) -> None:
        self.prefix = f"chub_test_{uuid.uuid4().hex[:10]}"
        self.numbers = itertools.count()
        self.made: list[str] = []
        self.free: list[str] = []
        self.reachable: bool | None = None

    async def require(self) -> None:
        if self.reachable is None:
            try:
                conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
            except (OSError, asyncpg.PostgresError):
                self.reachable = False
            else:
                await conn.close()
                self.reachable = True
        if not self.reachable:
            if IN_CI:
                pytest.fail(f"PostgreSQL is required in CI and is not reachable at {PG_ADMIN_DSN}")
            pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN} (outside CI only)")

    async def take(self) -> str:
        """The name of an empty database, the caller's until it gives it back."""
        await self.require()
        if self.free:
            return self.free.pop()
        name = f"{self.prefix}_{next(self.numbers)}"
        await self._admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return name

    async def give_back(self, name: str) -> None:
        """End every connection to ``name`` and empty it for the next test; a database that
        cannot be emptied is dropped instead."""
        try:
            await self._admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            conn = await asyncpg.connect(url_of(name, driver=""))
            try:
                await conn.execute(
                    "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
                    "ALTER SCHEMA public OWNER TO pg_database_owner;"
                    "GRANT USAGE ON SCHEMA public TO PUBLIC;"
                )
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError):
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.made.remove(name)
            return
        self.free.append(name)

    async def drop_all(self) -> None:
        for name in self.made:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()
        self.free.clear()

    @staticmethod
    async def _admin(statement: str, *args: object) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(statement, *args)
        finally:
            await conn.close()


PG = PgDatabases()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if PG.made:
        _run_sync(PG.drop_all())


def url_of(name: str, driver: str = "+asyncpg") -> str:
    """The URL of database ``name`` on the test server: ``postgresql+asyncpg://`` for Store,
    ``postgresql://`` (driver "") for hub.toml and asyncpg."""
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql{driver}://{base}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty store per test: a SQLite file, or an empty PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    yield await _new_pg_database(request)


async def _new_pg_database(request: pytest.FixtureRequest, driver: str = "+asyncpg") -> str:
    """An empty PostgreSQL database for this test alone; its URL as url_of gives it."""
    name = await PG.take()
    request.addfinalizer(lambda: _run_sync(PG.give_back(name)))
    return url_of(name, driver)


def _run_sync(coro: object) -> None:
    import asyncio

    asyncio.run(coro)  # type: ignore[arg-type]


class Federation:
    """Configs for CN, NZ and SG on free loopback ports, sharing one kind of store."""

    def __init__(self, root: Path, pki: Path, postgres: dict[str, str] | None = None) -> None:
        """SQLite files in each hub's folder, or the PostgreSQL database URL ``postgres``
        gives each party."""
        self.root, self.pki = root, pki
        self.ports = {p: (free_port(), free_port()) for p in PARTIES}
        self.audit_ports = {p: free_port() for p in PARTIES}
        self.running: dict[str, RunningHub] = {}
        self.configs: dict[str, HubConfig] = {}
        for party in PARTIES:
            hubdir = root / party
            hubdir.mkdir(parents=True, exist_ok=True)
            url = postgres[party] if postgres else f"sqlite:///{hubdir / 'hub.db'}"
            (hubdir / "hub.toml").write_text(
                render_config(
                    party=party,
                    listen=f"127.0.0.1:{self.ports[party][0]}",
                    domestic_listen=f"127.0.0.1:{self.ports[party][1]}",
                    pki=pki,
                    partners={p: f"127.0.0.1:{self.ports[p][0]}" for p in PARTIES if p != party},
                    store=url,
                    audit_listen=f"127.0.0.1:{self.audit_ports[party]}",
                )
            )
            self.configs[party] = load_config(hubdir / "hub.toml")

    async def start(self, party: str, **kwargs: object) -> RunningHub:
        running = await start_hub(self.configs[party], **kwargs)  # type: ignore[arg-type]
        self.running[party] = running
        return running

    async def stop(self, party: str) -> None:
        running = self.running.pop(party, None)
        if running:
            await running.stop(grace=1.0)

    async def stop_all(self) -> None:
        for party in list(self.running):
            await self.stop(party)


@pytest.fixture(params=["sqlite", "postgres"])
async def federation(
    request: pytest.FixtureRequest, tmp_path: Path, pki: Path
) -> AsyncIterator[Federation]:
    postgres = None
    if request.param == "postgres":  # each hub its own database
        postgres = {party: await _new_pg_database(request, driver="") for party in PARTIES}
    fed = Federation(tmp_path, pki, postgres)
    yield fed
    await fed.stop_all()
