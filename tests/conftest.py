"""Shared fixtures: a development federation PKI, stores on SQLite and PostgreSQL, and real
hubs started on free loopback ports."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from hub.config import HubConfig, load_config, render_config
from hub.pki import init_federation, init_party
from hub.service import RunningHub, start_hub

PARTIES = ["CN", "NZ", "SG"]
PG_ADMIN_DSN = os.environ.get("CUSTOMS_HUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


async def _pg_available() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty store per test: a SQLite file, or a PostgreSQL database made and dropped."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    yield await _new_pg_database(request)


async def _new_pg_database(request: pytest.FixtureRequest) -> str:
    if not await _pg_available():
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and is not reachable at {PG_ADMIN_DSN}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN} (outside CI only)")
    name = f"chub_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    request.addfinalizer(lambda: _run_sync(drop()))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql+asyncpg://{base}/{name}"


def _run_sync(coro: object) -> None:
    import asyncio

    asyncio.run(coro)  # type: ignore[arg-type]


class Federation:
    """Configs for CN, NZ and SG on free loopback ports, sharing one kind of store."""

    def __init__(self, root: Path, pki: Path, store_kind: str, store_url: str) -> None:
        self.root, self.pki = root, pki
        self.ports = {p: (free_port(), free_port()) for p in PARTIES}
        self.audit_ports = {p: free_port() for p in PARTIES}
        self.running: dict[str, RunningHub] = {}
        self.configs: dict[str, HubConfig] = {}
        for party in PARTIES:
            hubdir = root / party
            hubdir.mkdir(parents=True, exist_ok=True)
            if store_kind == "sqlite":
                url = f"sqlite:///{hubdir / 'hub.db'}"
            else:  # one PostgreSQL database per test, one schema-less database per hub
                url = (
                    store_url.replace("postgresql+asyncpg://", "postgresql://")
                    + f"_{party.lower()}"
                )
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
    kind = request.param
    extra: list[str] = []
    base_url = ""
    if kind == "postgres":
        base_url = await _new_pg_database(request)
        # each hub gets its own database, named after the test database
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            name = base_url.rsplit("/", 1)[1]
            for party in PARTIES:
                db = f"{name}_{party.lower()}"
                await conn.execute(f'CREATE DATABASE "{db}"')
                extra.append(db)
        finally:
            await conn.close()
    fed = Federation(tmp_path, pki, kind, base_url)
    yield fed
    await fed.stop_all()
    if extra:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            for db in extra:
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()
