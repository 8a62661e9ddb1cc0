"""Schema migrations (hub/store/migrate.py): the chain builds the schema the code uses, a
database at an earlier revision is upgraded with its data and its trail still verifies, and
nothing but `db upgrade` (or a hub's first start on an empty database) changes a schema."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.command import downgrade
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from hub.cli.main import main
from hub.config import load_config, render_config
from hub.core.errors import SchemaError
from hub.store import migrate
from hub.store.db import Store
from tests.conftest import Federation
from tests.test_evidence import exchanged

RELEASES = Path(__file__).parent / "data" / "releases"


async def cli(argv: list[str]) -> int:
    """The command line, as an operator runs it (its own event loop, on a thread here)."""
    return await asyncio.to_thread(main, argv)


def _differences(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_the_chain_builds_the_schema_the_code_uses(store_url: str) -> None:
    store = Store(store_url)
    try:
        before, after = await store.db.upgrade()
        assert (before.status, after.status) == ("empty", "current")
        assert after.found == migrate.head()
        async with store.db.engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await store.close()


def test_the_revisions_form_one_line() -> None:
    history = migrate.history()
    assert [down for _, down, _ in history] == [None, *[rev for rev, _, _ in history[:-1]]]
    assert history[0][0] == migrate.BASELINE and history[-1][0] == migrate.head()


async def _revision(url: str) -> str | None:
    store = Store(url)
    try:
        return (await store.db.schema_state()).found
    finally:
        await store.close()


async def _downgrade_to_baseline(url: str) -> None:
    store = Store(url)
    try:
        async with store.db.engine.begin() as conn:
            await conn.run_sync(lambda c: downgrade(migrate._config(c), migrate.BASELINE))
    finally:
        await store.close()


async def test_a_baseline_database_with_data_is_upgraded_and_its_trail_verifies(
    federation: Federation, pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await exchanged(federation)  # CN and NZ each sent the other a message, receipts held
    await federation.stop_all()
    config = federation.configs["NZ"]
    # NZ's database, as the first revision of the chain made it, with its data
    await _downgrade_to_baseline(config.store_url)
    assert await _revision(config.store_url) == migrate.BASELINE
    toml = str(config.path)

    # the hub refuses it, saying what it found, what it needs and what to run
    with pytest.raises(SchemaError) as refused:
        await federation.start("NZ")
    assert refused.value.reason == "schema-mismatch"
    assert "revision 0001 (baseline)" in str(refused.value)
    assert f"needs {migrate.describe(migrate.head())}" in str(refused.value)
    assert f"customs-hub db upgrade --config {toml}" in str(refused.value)
    # so do the commands that read, and they leave the schema as it was
    capsys.readouterr()
    for command in (["messages"], ["outbox"], ["trail", "query"], ["trail", "export", "-o", "x"]):
        assert await cli([*command, "--config", toml]) == 2
        assert "schema-mismatch" in capsys.readouterr().err
    assert await _revision(config.store_url) == migrate.BASELINE

    assert await cli(["db", "current", "--config", toml]) == 1
    assert await cli(["db", "upgrade", "--config", toml]) == 0
    assert "upgraded from 0001 (baseline) to" in capsys.readouterr().out
    assert await _revision(config.store_url) == migrate.head()
    assert await cli(["db", "current", "--config", toml]) == 0
    capsys.readouterr()

    # the data is all there and the trail verifies against the checkpoints signed before
    assert await cli(["messages", "--config", toml, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((r["direction"], r["type"].rsplit(".", 1)[-1]) for r in rows) == [
        ("in", "GoodsDeclaration"),
        ("out", "AeoStatus"),
    ]
    export = tmp_path / "export"
    assert await cli(["trail", "export", "--config", toml, "-o", str(export)]) == 0
    capsys.readouterr()
    verify = ["trail", "verify", str(export), "--key", str(pki / "NZ" / "trail.vkey")]
    assert await cli([*verify, "--messages"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK") and "\nOK: 1 messages match their leaves" in out
    # the message received before revision 0003 kept no envelope: counted, not checked
    assert "1 received before envelopes were kept have no signed bytes to check" in out
    # and the hub serves on it again
    nz = await federation.start("NZ")
    assert [m.sender for m in await nz.hub.store.views.inbound()] == ["CN"]


def _config_for(tmp_path: Path, pki: Path, db: Path) -> Path:
    toml = tmp_path / "hub.toml"
    toml.write_text(
        render_config(
            party="NZ",
            listen="127.0.0.1:1",
            domestic_listen="127.0.0.1:2",
            pki=pki,
            partners={"CN": "127.0.0.1:3"},
            store=f"sqlite:///{db}",
        )
    )
    return toml


def test_the_store_of_the_last_release_without_migrations_is_adopted(
    tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hub.db"
    shutil.copy(RELEASES / "nz-653d5e1.db", db)
    toml = str(_config_for(tmp_path, pki, db))
    assert main(["messages", "--config", toml]) == 2
    assert "no schema revision (made before migrations)" in capsys.readouterr().err

    assert main(["db", "upgrade", "--config", toml]) == 0
    assert "upgraded from none to" in capsys.readouterr().out
    assert asyncio.run(_revision(load_config(toml).store_url)) == migrate.head()
    assert main(["messages", "--config", toml, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len([r for r in rows if r["direction"] == "in"]) == 3
    assert len([r for r in rows if r["direction"] == "out"]) == 3
    export = tmp_path / "export"
    assert main(["trail", "export", "--config", toml, "-o", str(export)]) == 0
    assert main(["trail", "verify", str(export), "--key", str(RELEASES / "nz-653d5e1.vkey")]) == 0
    assert "OK" in capsys.readouterr().out


def test_tables_of_no_known_revision_are_refused_naming_the_columns(
    tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A development database whose trail_node had other columns, as the issue found."""
    db = tmp_path / "hub.db"
    shutil.copy(RELEASES / "nz-653d5e1.db", db)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE trail_node RENAME COLUMN hash TO digest")
    toml = str(_config_for(tmp_path, pki, db))
    assert main(["db", "upgrade", "--config", toml]) == 2
    err = capsys.readouterr().err
    assert "missing trail_node.hash" in err and "not known: trail_node.digest" in err
    with sqlite3.connect(db) as conn:  # nothing was changed
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "alembic_version" not in tables and "partner_backoff" not in tables


async def test_a_database_a_newer_release_wrote_is_refused(
    federation: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    await federation.start("CN")
    await federation.stop_all()
    config = federation.configs["CN"]
    store = Store(config.store_url)
    try:
        async with store.db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await store.close()
    with pytest.raises(SchemaError) as refused:
        await federation.start("CN")
    assert "revision 9999 (unknown to customs-hub), newer than this customs-hub knows" in str(
        refused.value
    )
    assert await cli(["db", "upgrade", "--config", str(config.path)]) == 2
    assert "newer than this customs-hub knows" in capsys.readouterr().err
    assert await _revision(config.store_url) == "9999"
    # values no release writes: an empty one, or two at once
    for statement in (
        "UPDATE alembic_version SET version_num = ''",
        "INSERT INTO alembic_version VALUES ('0001')",
    ):
        store = Store(config.store_url)
        try:
            async with store.db.engine.begin() as conn:
                await conn.execute(text(statement))
        finally:
            await store.close()
        with pytest.raises(SchemaError, match="which no release of customs-hub writes"):
            await federation.start("CN")
        assert await cli(["db", "upgrade", "--config", str(config.path)]) == 2
        assert "which no release of customs-hub writes" in capsys.readouterr().err


def test_reading_commands_never_make_a_database(
    tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hub.db"
    toml = str(_config_for(tmp_path, pki, db))
    for command in (["messages"], ["outbox"], ["trail", "query"], ["db", "current"]):
        assert main([*command, "--config", toml]) == 2
        assert f"no hub database at {db}" in capsys.readouterr().err
    assert not db.exists()
    assert main(["db", "upgrade", "--config", toml]) == 0
    assert "upgraded from none to" in capsys.readouterr().out
    assert main(["messages", "--config", toml]) == 0


SCRATCH_REVISION = '''"""scratch: a revision that copies a table others refer to"""

import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_message", recreate="always") as batch:
        batch.add_column(sa.Column("scratch", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_message", recreate="always") as batch:
        batch.drop_column("scratch")
'''


def test_a_revision_that_copies_a_referenced_table_runs_on_sqlite(
    tmp_path: Path, pki: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alembic's batch mode copies, drops and renames a table: with foreign keys enforced
    inside the migration's transaction, a table others refer to could never be changed."""
    db = tmp_path / "hub.db"
    shutil.copy(RELEASES / "nz-653d5e1.db", db)
    toml = str(_config_for(tmp_path, pki, db))
    assert main(["db", "upgrade", "--config", toml]) == 0
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0099_scratch.py").write_text(SCRATCH_REVISION.format(head=migrate.head()))
    original = migrate._config

    def with_scratch(connection: Connection | None = None) -> Config:
        config = original(connection)
        config.set_main_option("path_separator", "os")
        config.set_main_option(
            "version_locations",
            os.pathsep.join([str(migrate.MIGRATIONS / "versions"), str(versions)]),
        )
        return config

    monkeypatch.setattr(migrate, "_config", with_scratch)
    migrate.scripts.cache_clear()
    try:
        assert migrate.head() == "0099"
        capsys.readouterr()
        assert main(["db", "upgrade", "--config", toml]) == 0, capsys.readouterr().err
        assert "to 0099 (scratch" in capsys.readouterr().out
    finally:
        migrate.scripts.cache_clear()
    with sqlite3.connect(db) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(outbound_message)")]
        assert "scratch" in columns
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) FROM receipt").fetchone() == (3,)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0099",)


async def test_a_database_made_as_the_baseline_without_a_revision_is_adopted(
    store_url: str,
) -> None:
    """On both databases: the baseline's tables, made without Alembic's version table (as the
    last release's create_all made them), are recognised by their columns and indexes."""
    store = Store(store_url)
    try:
        async with store.db.engine.begin() as conn:
            await conn.run_sync(lambda c: migrate.upgrade(c, migrate.BASELINE))
            await conn.execute(text("DROP TABLE alembic_version"))
        before, after = await store.db.upgrade()
        assert (before.status, after.status) == ("unversioned", "current")
    finally:
        await store.close()


def test_a_missing_index_is_not_the_baseline(
    tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hub.db"
    shutil.copy(RELEASES / "nz-653d5e1.db", db)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX ix_trail_entry_message_id")
    assert main(["db", "upgrade", "--config", str(_config_for(tmp_path, pki, db))]) == 2
    assert "missing index on trail_entry(message_id)" in capsys.readouterr().err
