"""``customs-hub config check``: every check a start makes of a hub.toml, without starting.

The file's shape and values (hub/config.py), the files it names, what those hold (key and
certificate pairs, Ed25519 keys, trust anchors: hub/app/keys.py), its code lists together
with the shipped and plugins' ones (adapters/edifact/codelists.py) and the store URL; with
``--store``, a connection to the store too. Nothing is written: a SQLite database that does
not exist yet is not made, and no table is created. Each problem is one line naming the file
and the key; passwords are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from adapters.formats import registry
from hub.app import keys
from hub.config import HubConfig, load_config
from hub.core.errors import ConfigError, StoreError
from hub.store.db import Store

EXIT_OK, EXIT_PROBLEMS = 0, 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", help="check a configuration file").add_subparsers(
        dest="config_command", required=True
    )
    check = config.add_parser(
        "check",
        help="run every check a start runs (schema, files, key pairs, store URL) without "
        "starting anything; exit 0 when fine, 2 when not",
    )
    check.add_argument("--config", type=Path, required=True, help="the hub.toml to check")
    check.add_argument(
        "--store",
        action="store_true",
        help="also connect to the store (default: the URL is checked, nothing is opened)",
    )


def run(args: argparse.Namespace) -> int:
    """Print ``FILE: OK (...)``, or each problem on a line of its own."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc.message)
        return EXIT_PROBLEMS
    problems = keys.check(config)
    try:  # the translators as a start makes them: a list may not replace a shipped one
        registry(config.limits.xml, config.code_lists)
    except ConfigError as exc:
        problems += [f"{config.path}: {line}" for line in exc.message.splitlines()]
    settings = config.store
    # a SQLite file not made yet is fine: the first start makes it
    if args.store and (not settings.is_sqlite or Path(settings.database).exists()):
        problems += asyncio.run(_reach(config))
    for line in problems:
        print(line)
    if problems:
        return EXIT_PROBLEMS
    count, lists = len(config.partners), len(config.code_lists)
    listed = f"{lists} code list{'s' * (lists != 1)}, " if lists else ""
    print(
        f"{config.path}: OK (party {config.party}, {count} partner{'s' * (count != 1)}, "
        f"{listed}store {config.store.shown})"
    )
    return EXIT_OK


async def _reach(config: HubConfig) -> list[str]:
    """A problem if the store cannot be connected to."""
    try:
        store = Store(config.store)
    except ConfigError as exc:
        return [f"{config.path}: {exc.message}"]
    try:

        async def probe() -> None:
            async with store.db.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")

        await store.db.run(probe)
    except StoreError as exc:
        return [f"{config.path}: store.url: {exc.message}"]
    finally:
        await store.close()
    return []
