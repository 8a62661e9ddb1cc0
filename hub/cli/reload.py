"""``customs-hub reload --config hub.toml``: have the running hub read its configuration again.

The command checks the file first (as ``config check`` does) and refuses it there if it is not
valid, without disturbing the hub. Then it finds the process serving that hub (the holder of
its one-instance lock, hub/store/lock.py), sends it SIGHUP, and waits for the outcome in the
store: a "config-changed" leaf with the new configuration's digest (reloaded), or a rejection
from source ``reload`` (refused, with the reason; the hub goes on with what it had).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path

from hub.app import keys
from hub.app.reload import REJECTION_SOURCE
from hub.config import load_config
from hub.core.errors import ConfigError, HubError, Status
from hub.store.db import Store
from hub.store.lock import InstanceLock, short_host

WAIT_SECONDS = 20.0  # for the hub's answer; a reload reads a few files and swaps


class ReloadError(HubError):
    """The running hub could not be asked, or refused the new configuration."""

    status = Status.FAILED_PRECONDITION
    default_reason = "reload-failed"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reload = sub.add_parser(
        "reload",
        help="have the running hub read its configuration and certificates again (SIGHUP); "
        "a configuration that is not valid is refused and the one in use stays",
    )
    reload.add_argument("--config", type=Path, required=True, help="the running hub's hub.toml")
    reload.add_argument(
        "--wait",
        type=float,
        default=WAIT_SECONDS,
        help="seconds to wait for the hub's answer",
    )


def serves(pid: int, config: Path) -> bool:
    """Whether process ``pid`` is a ``customs-hub serve`` whose ``--config`` is the file
    ``config`` names (read from /proc: its command line, and its working folder for a relative
    path)."""
    proc = Path("/proc") / str(pid)
    try:
        argv = (proc / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
        cwd = Path(os.readlink(proc / "cwd"))
    except OSError:
        return False
    if "serve" not in argv or "--config" not in argv[:-1]:
        return False
    given = Path(argv[argv.index("--config") + 1])
    try:
        return os.path.samefile(given if given.is_absolute() else cwd / given, config)
    except OSError:
        return False


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    problems = keys.check(config)
    if problems:
        raise ConfigError("\n".join(problems), reason="config-invalid")
    return asyncio.run(_reload(args.config, args.wait))


async def _reload(path: Path, wait: float) -> int:
    config = load_config(path)
    digest = keys.config_digest(config)
    store = await Store.existing(config.store_url)
    try:
        holder = await InstanceLock(store.db, config.party).holder()
        if holder is None or holder.purpose != "serve":
            raise ReloadError(f"no hub serves {config.party} on this store: nothing to reload")
        if holder.host != short_host():
            raise ReloadError(
                f"hub {config.party} runs on {holder.host} (pid {holder.pid}); reload it there"
            )
        # what the lock says is only a claim: signal the process only if it is what it
        # claims, a `customs-hub serve` of this very file
        if not serves(holder.pid, path):
            raise ReloadError(
                f"process {holder.pid}, which the lock names, is not `customs-hub serve "
                f"--config {path}`: no signal sent"
            )
        last = await store.trail.last_config()
        if last is not None and last[1] == digest:
            print(f"{config.party}: already running this configuration (trail entry {last[0]})")
            return 0
        seen = await store.views.rejections(REJECTION_SOURCE)
        after = seen[-1].id or 0 if seen else 0
        try:
            os.kill(holder.pid, signal.SIGHUP)
        except OSError as exc:  # gone meanwhile, or another user's
            raise ReloadError(f"cannot signal process {holder.pid}: {exc.strerror}") from None
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            last = await store.trail.last_config()
            if last is not None and last[1] == digest:
                print(f"{config.party}: reloaded {path} (pid {holder.pid}; trail entry {last[0]})")
                return 0
            refused = await store.views.rejections(REJECTION_SOURCE, after)
            if refused:
                raise ReloadError(
                    f"hub {config.party} (pid {holder.pid}) refused {path}: {refused[-1].detail}"
                )
        raise ReloadError(
            f"hub {config.party} (pid {holder.pid}) did not answer within {wait:g} s; see its log"
        )
    finally:
        await store.close()
