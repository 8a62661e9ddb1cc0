"""The drop-folder connector: files per second from inbox/ to processed/, and documents per
second through a hub.

    python bench/dropfolder.py [--files 5000] [--kind json|csv|xml] [--rows 100] [--runs 3]

Starts one hub in this process (``customs-hub pki init`` and ``init`` in a temporary folder,
SQLite, real mTLS servers; its partner stays down, so what is queued stays queued), stops its
folder's own loop, drops ``--files`` files into inbox/ and times ``DropFolder.run_pass``: one
listing, then batches of 64 files per group commit, each document translated, signed and
queued with its trail leaves, each file moved with one directory sync per batch.

Kinds: ``json`` one AEO status per file (protobuf JSON); ``csv`` an AEO list of ``--rows``
rows per file; ``xml`` a copy of one corpus declaration per file (TT_IM068a, 17 KB).
Each run uses fresh files in a fresh hub. Prints files/s and documents/s per run and the best.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from google.protobuf import json_format

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.cli.demo import sample_aeo_status  # noqa: E402
from hub.config import load_config  # noqa: E402
from hub.pb.customs_hub.v1 import service_pb2 as spb  # noqa: E402
from hub.runtime import start_hub  # noqa: E402

CLI = [sys.executable, "-m", "hub.cli.main"]
DECLARATION = (  # the copy of the CDS sample in tests/corpus (tests/SOURCES.md)
    ROOT
    / "tests/corpus/hmrc-customs-declarations/public/api/conf/3.0/examples"
    / "annotated_XML_samples/TT_IM068a/TT_IM068a.xml"
)
HEADER = "aeo_id,tin,name,programme,status,valid_from,revision,country\r\n"


def make_hub(folder: Path) -> Path:
    run = lambda *a: subprocess.run([*CLI, *a], check=True, capture_output=True)  # noqa: E731
    run("pki", "init", "--parties", "CN,NZ", "--out", str(folder / "pki"))
    run(
        "init", "--party", "CN", "--pki", str(folder / "pki"), "--out", str(folder / "CN"),
        "--listen", "127.0.0.1:0", "--domestic-listen", "127.0.0.1:0",
        "--partner", "NZ=127.0.0.1:9",
    )  # fmt: skip
    config = folder / "CN" / "hub.toml"
    exchange = folder / "CN" / "exchange"
    config.write_text(
        config.read_text()
        + f'\n[folders.bench]\npath = "{exchange}"\nsettle_seconds = 0\n'
        + 'inbox_formats = { aeo = "aeo-csv" }\n'
    )
    return config


def drop_files(inbox: Path, kind: str, files: int, rows: int, run: int) -> int:
    """Write the files; the number of documents they hold."""
    if kind == "xml":
        data = DECLARATION.read_bytes()
        for i in range(files):
            (inbox / f"d{run}-{i:06d}.xml").write_bytes(data)
        return files
    if kind == "csv":
        (inbox / "aeo").mkdir(exist_ok=True)
        for i in range(files):
            lines = "".join(
                f"CNB{run}F{i:05d}R{r:04d},CN9131{i:06d},Operator {i} {r},AEOF,valid,"
                "2025-01-01,1,CN\r\n"
                for r in range(rows)
            )
            (inbox / "aeo" / f"list{run}-{i:06d}.csv").write_bytes((HEADER + lines).encode())
        return files * rows
    for i in range(files):
        status = sample_aeo_status(issuer="CN", aeo_id=f"CNB{run}J{i:06d}")
        data = json_format.MessageToJson(spb.SubmitRequest(aeo_status=status)).encode()
        (inbox / f"s{run}-{i:06d}.json").write_bytes(data)
    return files


async def one_run(args: argparse.Namespace, run: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-dropfolder-") as tmp:
        config = load_config(make_hub(Path(tmp)))
        if args.kind == "xml":  # the corpus declaration's destination is not a partner
            config = load_config(_with_recipients(config.path))
        running = await start_hub(config)
        try:
            [folder] = running.folders
            await folder.stop()
            documents = drop_files(folder.root / "inbox", args.kind, args.files, args.rows, run)
            os.sync()
            started = time.perf_counter()
            handled = await folder.run_pass()
            seconds = time.perf_counter() - started
            assert handled == args.files, f"{handled} of {args.files} files handled"
            processed = sum(1 for p in (folder.root / "processed").rglob("*") if p.is_file())
            assert processed == args.files, f"{processed} of {args.files} files processed"
        finally:
            await running.stop(grace=1.0)
    return args.files / seconds, documents / seconds


def _with_recipients(path: Path) -> Path:
    path.write_text(
        path.read_text().replace(
            "settle_seconds = 0\n", 'settle_seconds = 0\nrecipients = ["NZ"]\n'
        )
    )
    return path


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the partner is down on purpose
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--kind", choices=("json", "csv", "xml"), default="json")
    parser.add_argument("--rows", type=int, default=100, help="rows per CSV file")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        files_per_s, docs_per_s = await one_run(args, run)
        results.append((files_per_s, docs_per_s))
        print(f"run {run + 1}: {files_per_s:,.0f} files/s, {docs_per_s:,.0f} documents/s")
    best = max(results)
    print(
        f"{args.kind}, {args.files:,} files"
        + (f" of {args.rows} rows" if args.kind == "csv" else "")
        + f": best {best[0]:,.0f} files/s, {best[1]:,.0f} documents/s"
        + " (one hub, SQLite, this machine)"
    )


if __name__ == "__main__":
    asyncio.run(main())
