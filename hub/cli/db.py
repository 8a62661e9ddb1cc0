"""``customs-hub db``: the store's schema revision: ``upgrade``, ``current``, ``history``.

``upgrade`` takes the hub's lock first, so it never changes a schema under a running hub;
``current`` and ``history`` only read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from hub.config import load_config
from hub.core.errors import StoreError
from hub.store import migrate
from hub.store.db import Store
from hub.store.engine import schema_problem
from hub.store.lock import InstanceLock


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = sub.add_parser(
        "db", help="the store's schema: upgrade it to this release, show its revision"
    ).add_subparsers(dest="db_command", required=True)
    upgrade = db.add_parser(
        "upgrade",
        help="bring the store's schema to this release's revision (stop the hub first); "
        "a new database gets the whole schema",
    )
    upgrade.add_argument("--config", type=Path, required=True, help="the hub's hub.toml")
    current = db.add_parser("current", help="the store's schema revision and this release's")
    current.add_argument("--config", type=Path, required=True, help="the hub's hub.toml")
    current.add_argument("--json", action="store_true", help="one JSON object")
    db.add_parser("history", help="every schema revision this release knows, oldest first")


def run(args: argparse.Namespace) -> int:
    if args.db_command == "history":
        for revision, down, title in migrate.history():
            print(f"{revision}  after {down or '(none)':<6} {title.partition(' ')[2].strip('()')}")
        return 0
    return asyncio.run(_upgrade(args) if args.db_command == "upgrade" else _current(args))


async def _upgrade(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = Store(config.store_url)
    lock = InstanceLock(store.db, config.party)
    try:
        await lock.acquire("db upgrade")
        before, after = await store.db.upgrade()
    finally:
        await lock.release()
        await store.close()
    if before.found == after.found:
        print(f"already at {migrate.describe(after.found)}")
    else:
        print(f"upgraded from {migrate.describe(before.found)} to {migrate.describe(after.found)}")
    return 0


async def _current(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = Store(config.store_url)
    try:
        path = store.db.sqlite_file
        if path is not None and not path.exists():  # looking must not make the file
            raise StoreError(f"no hub database at {path}: start the hub, or run `db upgrade`")
        state = await store.db.schema_state()
    finally:
        await store.close()
    hint = f"customs-hub db upgrade --config {args.config}"
    if args.json:
        print(
            json.dumps(
                {"found": state.found, "needed": state.head, "status": state.status},
                sort_keys=True,
            )
        )
    else:
        found, needed = migrate.describe(state.found), migrate.describe(state.head)
        print(f"found {found}; this release needs {needed}")
        if state.status != "current":
            print(schema_problem(state, hint))
    return 0 if state.status == "current" else 1
