"""``customs-hub registry export``: a partner's current AEO statuses, as the registry holds
them, in a file format the hub reads and writes (``aeo-csv``, adapters/aeocsv.py's writer).

It reads the store directly, as ``messages`` does, and never changes it. The file is written
under a temporary name and renamed into place; without ``--output`` it goes to standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from adapters.formats import aeo_csv
from hub import files
from hub.config import load_config
from hub.core.messages import AeoStatus
from hub.store.db import Store

# the formats an export can be written in: those that hold a list of AEO statuses in one file
EXPORT_FORMATS = {"aeo-csv": aeo_csv}


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """``registry export``; returns the ``registry`` command's actions, for ``query`` and
    ``sync`` (hub/cli/registrysync.py)."""
    registry: argparse._SubParsersAction[argparse.ArgumentParser] = sub.add_parser(
        "registry",
        help="the registry of AEO statuses and control results; asking partners' hubs about theirs",
    ).add_subparsers(dest="registry_command", required=True)
    export = registry.add_parser(
        "export", help="a partner's current AEO statuses (or this hub's own) as a file"
    )
    export.add_argument("--config", type=Path, required=True, help="the hub's hub.toml")
    export.add_argument(
        "--partner", required=True, help="the issuing administration: a partner, or this hub"
    )
    export.add_argument(
        "--to", dest="to_format", required=True, choices=sorted(EXPORT_FORMATS), help="format"
    )
    export.add_argument("--output", type=Path, help="the file to write (default: stdout)")
    return registry


class ExportError(Exception):
    """A problem with the command's arguments, printed as one line."""


def run(args: argparse.Namespace, upgrade_hint: str) -> int:
    config = load_config(args.config)
    known = {config.party, *config.partners}
    if args.partner not in known:
        raise ExportError(
            f"--partner {args.partner!r} is neither this hub ({config.party}) nor a partner "
            f"configured in {args.config} ({', '.join(sorted(config.partners)) or 'none'})"
        )
    statuses = asyncio.run(_current(config.store_url, args.partner, upgrade_hint))
    data = EXPORT_FORMATS[args.to_format](config.limits.xml).encode_all(statuses)  # type: ignore[attr-defined]
    if args.output is None:
        sys.stdout.buffer.write(data)
        return 0
    files.write_atomically(args.output, data)
    print(
        f"{len(statuses)} AEO status(es) issued by {args.partner} written to {args.output}",
        file=sys.stderr,
    )
    return 0


async def _current(url: str, party: str, upgrade_hint: str) -> list[AeoStatus]:
    store = await Store.existing(url, upgrade_hint=upgrade_hint)
    try:
        registry = store.registry
        ids = [aeo_id for aeo_id, _ in await registry.revisions(party)]
        records = await registry.issued(party, ids)
    finally:
        await store.close()
    return [AeoStatus.FromString(r.document) for r in records]
