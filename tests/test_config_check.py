"""hub.toml checked whole at load, and what its files hold checked before a start (issue 16):
unknown keys refused with the closest valid name, files named by key, key pairs that do not
match, no partners, the store URL's libpq options, a store that cannot be reached, and
`customs-hub config check`. Real files, real keys from `pki init`."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from hub.app import keys
from hub.config import load_config, render_config, store_settings, store_url
from hub.core.errors import ConfigError, StoreError
from hub.runtime import start_hub
from hub.store.db import Store
from hub.store.engine import engine_options
from tests.conftest import PG_ADMIN_DSN, free_port

PASSWORD = "s3cret-Pa55"  # a test's password, which no error may show


def write_config(
    folder: Path, pki: Path, *, partners: tuple[str, ...] = ("NZ", "SG"), store: str = ""
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hub.toml"
    path.write_text(
        render_config(
            party="CN",
            listen=f"127.0.0.1:{free_port()}",
            domestic_listen=f"127.0.0.1:{free_port()}",
            pki=pki,
            partners={p: f"127.0.0.1:{free_port()}" for p in partners},
            store=store or f"sqlite:///{folder / 'hub.db'}",
            audit_listen=f"127.0.0.1:{free_port()}",
        )
    )
    return path


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.reason == "config-invalid"
    return caught.value.message


@pytest.fixture
def config_path(tmp_path: Path, pki: Path) -> Path:
    return write_config(tmp_path / "cn", pki)


def test_a_rendered_config_loads_and_passes_every_check(config_path: Path) -> None:
    config = load_config(config_path)
    assert keys.check(config) == []
    assert config.store.is_sqlite and config.store.database == str(config_path.parent / "hub.db")


# --- unknown keys ---------------------------------------------------------------------------

UNKNOWN = [
    ('party = "CN"', 'party = "CN"\nparty_name = "China"', "party_name: unknown key"),
    ("[limits]", "[limitz]", "[limitz] is not a known table; did you mean [limits]?"),
    ("[tls]", "[tsl]", "[tsl] is not a known table; did you mean [tls]?"),
    (
        '[partners.NZ]\nendpoint = "',
        '[partners.NZ]\nendpiont = "',
        "partners.NZ.endpiont: unknown key; did you mean endpoint?",
    ),
    ("clock_skew_seconds = 300", "clock_skew = 300", "limits.clock_skew: unknown key; did you"),
    ("[trail]\n", "[trail]\norigine = 'x'\n", "trail.origine: unknown key; did you mean origin?"),
    ("[audit]\n", "[audit]\nlisten_on = 'x'\n", "audit.listen_on: unknown key; did you mean"),
]


@pytest.mark.parametrize(("old", "new", "complaint"), UNKNOWN)
def test_an_unknown_key_is_refused_with_the_closest_name(
    config_path: Path, old: str, new: str, complaint: str
) -> None:
    message = refusal(edit(config_path, old, new))
    assert f"{config_path}: {complaint}" in message


def test_every_problem_is_reported_each_on_its_line(config_path: Path) -> None:
    edit(config_path, "[limits]", "[limitz]")
    edit(config_path, '[partners.NZ]\nendpoint = "', '[partners.NZ]\nendpiont = "')
    lines = refusal(config_path).splitlines()
    assert all(line.startswith(f"{config_path}: ") for line in lines)
    assert any("[limitz]" in line for line in lines)
    assert any("partners.NZ.endpiont" in line for line in lines)


def test_a_value_of_the_wrong_type_is_refused_naming_the_key(config_path: Path) -> None:
    message = refusal(edit(config_path, "clock_skew_seconds = 300", 'clock_skew_seconds = "300"'))
    assert "limits.clock_skew_seconds must be a number; found '300'" in message


# --- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("tls.key", "tls.key"),
        ("tls.cert", "tls.pem"),
        ("tls.trust_anchor", "ca.pem"),
        ("signing.cert", "signing.pem"),
        ("signing.key", "signing.key"),
        ("trail.key", "trail.key"),
        ("audit.token_key", "audit.key"),
    ],
)
def test_a_missing_file_is_named_by_its_key(tmp_path: Path, pki: Path, key: str, name: str) -> None:
    own = tmp_path / "pki"
    shutil.copytree(pki, own)
    path = write_config(tmp_path / "cn", own)
    (own / "CN" / name).unlink()
    message = refusal(path)
    assert f"{path}: {key}: {own / 'CN' / name} does not exist" in message


def test_a_partners_missing_files_are_named_by_key(tmp_path: Path, pki: Path) -> None:
    own = tmp_path / "pki"
    shutil.copytree(pki, own)
    path = write_config(tmp_path / "cn", own)
    (own / "NZ" / "ca.pem").unlink()
    (own / "SG" / "signing.pem").unlink()
    message = refusal(path)
    assert f"partners.NZ.trust_anchor: {own / 'NZ' / 'ca.pem'} does not exist" in message
    assert f"partners.SG.signing_certs[0]: {own / 'SG' / 'signing.pem'} does not exist" in message


def test_a_sqlite_store_in_a_missing_folder_is_refused_at_load(tmp_path: Path, pki: Path) -> None:
    path = write_config(tmp_path / "cn", pki, store=f"sqlite:///{tmp_path / 'nowhere' / 'hub.db'}")
    assert f"store.url: folder {tmp_path / 'nowhere'} does not exist" in refusal(path)


# --- what the files hold --------------------------------------------------------------------


def test_a_tls_key_that_does_not_match_its_certificate_is_refused_before_a_start(
    config_path: Path, pki: Path
) -> None:
    edit(config_path, f'key = "{pki / "CN" / "tls.key"}"', f'key = "{pki / "NZ" / "tls.key"}"')
    config = load_config(config_path)
    assert any("tls.key does not match tls.cert" in p for p in keys.check(config))
    with pytest.raises(ConfigError, match=r"tls\.key does not match tls\.cert") as caught:
        asyncio_run(start_hub(config))
    assert "address in use" not in caught.value.message
    assert not (config_path.parent / "hub.db").exists()  # refused before the store is opened


def test_a_signing_key_that_does_not_match_its_certificate_is_refused(
    config_path: Path, pki: Path
) -> None:
    edit(
        config_path,
        f'key = "{pki / "CN" / "signing.key"}"',
        f'key = "{pki / "SG" / "signing.key"}"',
    )
    problems = keys.check(load_config(config_path))
    assert problems == [
        f"{config_path}: signing.key does not match signing.cert "
        + (f"({pki / 'SG' / 'signing.key'}, {pki / 'CN' / 'signing.pem'})")
    ]


def test_a_trail_key_that_is_not_ed25519_is_named(config_path: Path, pki: Path) -> None:
    edit(config_path, f'key = "{pki / "CN" / "trail.key"}"', f'key = "{pki / "CN" / "tls.key"}"')
    problems = keys.check(load_config(config_path))
    assert len(problems) == 1 and "trail.key is not an Ed25519 key" in problems[0]


def test_a_hub_without_partners_is_refused_at_start_with_a_clear_line(
    tmp_path: Path, pki: Path
) -> None:
    """Loading it is allowed (`init` without --partner writes one, and read-only commands use
    it); starting it is not: gRPC would fail with "Illegal to require client auth"."""
    path = write_config(tmp_path / "cn", pki, partners=())
    config = load_config(path)
    expected = f"{path}: no [partners.X] table: a hub needs at least one partner"
    assert keys.check(config) == [expected]
    with pytest.raises(ConfigError) as caught:
        asyncio_run(start_hub(config))
    assert caught.value.message == expected


def asyncio_run(coro: object) -> object:
    import asyncio

    return asyncio.run(coro)  # type: ignore[arg-type]


# --- the store URL --------------------------------------------------------------------------


def test_sslmode_require_gives_the_driver_a_tls_context(tmp_path: Path) -> None:
    url = store_url("postgresql://hub@db.example:5433/hub?sslmode=require&pool_size=7", tmp_path)
    settings = store_settings(url)
    assert (settings.host, settings.port, settings.database) == ("db.example", 5433, "hub")
    options = engine_options(settings)
    context = options["connect_args"]["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname  # as libpq
    assert options["pool_size"] == 7 and "?" not in settings.url


def test_verify_full_checks_the_chain_and_the_host_with_the_root_certificate(
    tmp_path: Path, pki: Path
) -> None:
    shutil.copy(pki / "CN" / "ca.pem", tmp_path / "db-ca.pem")
    url = store_url(
        "postgresql://hub@db:5432/hub?sslmode=verify-full&sslrootcert=db-ca.pem"
        "&passfile=/etc/hub/pgpass&max_overflow=0&connect_timeout=3",
        tmp_path,
    )
    settings = store_settings(url)
    assert settings.sslrootcert == str(tmp_path / "db-ca.pem")  # relative to the config
    options = engine_options(settings)
    context = options["connect_args"]["ssl"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert options["connect_args"]["passfile"] == "/etc/hub/pgpass"
    assert options["connect_args"]["timeout"] == 3.0 and options["max_overflow"] == 0


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("sslmod=require", "unknown option 'sslmod'; did you mean sslmode?"),
        ("application_name=hub", "unknown option 'application_name'"),
        ("sslmode=required", "sslmode must be one of disable, allow, prefer, require"),
        ("sslmode=verify-full", "sslmode=verify-full needs sslrootcert"),
        ("sslrootcert=ca.pem", "sslrootcert needs sslmode=require, verify-ca or verify-full"),
        ("pool_size=0", "pool_size must be a whole number of at least 1"),
        ("pool_size=many", "pool_size must be a whole number"),
        ("sslmode=require&sslmode=disable", "option sslmode given twice"),
    ],
)
def test_a_wrong_url_option_is_refused_by_name_and_never_shows_the_password(
    tmp_path: Path, pki: Path, query: str, complaint: str
) -> None:
    path = write_config(
        tmp_path / "cn", pki, store=f"postgresql://hub:{PASSWORD}@127.0.0.1/hub?{query}"
    )
    message = refusal(path)
    assert f"{path}: store.url: {complaint}" in message
    assert PASSWORD not in message


def test_a_missing_option_file_is_named(tmp_path: Path, pki: Path) -> None:
    store = "postgresql://hub@127.0.0.1/hub?sslmode=verify-ca&sslrootcert=db-ca.pem"
    path = write_config(tmp_path / "cn", pki, store=store)
    message = refusal(path)
    assert f"store.url: sslrootcert: {tmp_path / 'cn' / 'db-ca.pem'} does not exist" in message


def pg(database: str, query: str = "", port: int | None = None) -> str:
    """A store URL on the test server (trust authentication: any password is accepted)."""
    netloc = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    user, _, hostport = netloc.rpartition("@")
    host = hostport.rsplit(":", 1)[0] if port is not None else hostport
    where = f"{host}:{port}" if port is not None else hostport
    url = f"postgresql+asyncpg://{user or 'postgres'}:{PASSWORD}@{where}/{database}"
    return url + (f"?{query}" if query else "")


async def first_use(url: str) -> None:
    """Connect and read the schema's revision: nothing is written to the database."""
    store = Store(url)
    try:
        await store.db.schema_state()
    finally:
        await store.close()


async def test_sslmode_disable_connects_to_the_local_server() -> None:
    await first_use(pg(PG_ADMIN_DSN.rsplit("/", 1)[1], "sslmode=disable"))


async def test_sslmode_require_against_a_server_without_tls_is_store_unavailable() -> None:
    """The local server has ssl = off: libpq's "require" must not fall back to plaintext."""
    database = PG_ADMIN_DSN.rsplit("/", 1)[1]
    with pytest.raises(StoreError) as caught:
        await first_use(pg(database, "sslmode=require"))
    assert caught.value.reason == "store-unavailable"
    assert f'database "{database}"' in caught.value.message
    assert PASSWORD not in str(caught.value)


async def test_a_server_that_is_down_is_named_by_host_port_and_database() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError) as caught:
        await first_use(pg("hub", port=port))
    assert caught.value.reason == "store-unavailable"
    assert caught.value.message == (
        f'PostgreSQL at 127.0.0.1:{port} database "hub": connection refused'
    )
    assert PASSWORD not in str(caught.value)


async def test_a_missing_database_is_named() -> None:
    with pytest.raises(StoreError) as caught:
        await first_use(pg("no_such_database_16"))
    assert caught.value.reason == "store-unavailable"
    assert caught.value.message.endswith('database "no_such_database_16": no such database')
    assert PASSWORD not in str(caught.value)


# --- customs-hub config check ---------------------------------------------------------------


def config_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli.main", "config", "check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_check_says_ok_and_exits_zero(config_path: Path) -> None:
    done = config_check("--config", str(config_path))
    assert done.returncode == 0, done.stdout + done.stderr
    store = f"sqlite:///{config_path.parent / 'hub.db'}"
    assert done.stdout == f"{config_path}: OK (party CN, 2 partners, store {store})\n"
    assert not (config_path.parent / "hub.db").exists()  # nothing made


def test_config_check_prints_each_problem_and_exits_two(config_path: Path, pki: Path) -> None:
    edit(config_path, "[limits]", "[limitz]")
    edit(config_path, '[partners.NZ]\nendpoint = "', '[partners.NZ]\nendpiont = "')
    done = config_check("--config", str(config_path))
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert f"{config_path}: [limitz] is not a known table; did you mean [limits]?" in lines
    assert f"{config_path}: partners.NZ.endpiont: unknown key; did you mean endpoint?" in lines
    assert "Traceback" not in done.stderr


def test_config_check_reports_what_the_files_hold(config_path: Path, pki: Path) -> None:
    edit(config_path, f'key = "{pki / "CN" / "tls.key"}"', f'key = "{pki / "NZ" / "tls.key"}"')
    done = config_check("--config", str(config_path))
    assert done.returncode == 2
    assert done.stdout.startswith(f"{config_path}: tls.key does not match tls.cert")


def test_config_check_with_store_reports_a_server_that_is_down(tmp_path: Path, pki: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://hub:{PASSWORD}@127.0.0.1:{port}/hub"
    path = write_config(tmp_path / "cn", pki, store=url)
    assert config_check("--config", str(path)).returncode == 0  # the URL alone is fine
    done = config_check("--config", str(path), "--store")
    assert done.returncode == 2
    assert done.stdout == (
        f'{path}: store.url: PostgreSQL at 127.0.0.1:{port} database "hub": connection refused\n'
    )
    ok = config_check("--config", str(path))
    assert f"store postgresql://hub:***@127.0.0.1:{port}/hub)" in ok.stdout
    assert PASSWORD not in done.stdout + done.stderr + ok.stdout + ok.stderr
