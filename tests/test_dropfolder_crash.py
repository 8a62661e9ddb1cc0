"""The drop folders under SIGKILL: real ``customs-hub serve`` processes killed at random moments.

CN's domestic system drops files of AEO statuses (one per JSON file, several per CSV file)
into CN's inbox while CN and NZ are killed (SIGKILL: no shutdown code runs) and restarted at
moments drawn from a seeded random generator. NZ writes what it receives into its outbox.

Afterwards every file is in CN's processed/ exactly once (none lost, none left, none twice),
every AEO status was queued exactly once, and NZ's outbox holds each message exactly once,
whole. The folder protocol does not depend on the store, so this runs on SQLite only; the
stores' own crash safety is tests/test_crash.py's, on both.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from hub.cli.demo import sample_aeo_status
from hub.core.messages import AeoStatus
from hub.pb.customs_hub.v1 import service_pb2 as spb
from tests.hubprocess import HubProcess, make_federation, processes, until

SEED = int(os.environ.get("CUSTOMS_HUB_CRASH_SEED", "20261202"))
JSON_FILES, CSV_FILES, CSV_ROWS = 600, 20, 10
DROP_CHUNK, DROP_PAUSE = 20, 0.3  # files per burst, and seconds between: ~10 s of drops
KILLS = 5
BETWEEN_KILLS = (0.3, 1.0)
DOWNTIME = (0.0, 0.3)
DRAIN_SECONDS = 90.0
CSV_HEADER = "aeo_id,tin,name,programme,status,valid_from,revision,country\r\n"


def status_json(aeo_id: str) -> bytes:
    from google.protobuf import json_format

    status = sample_aeo_status(issuer="CN", aeo_id=aeo_id)
    return json_format.MessageToJson(spb.SubmitRequest(aeo_status=status)).encode()


def documents() -> dict[str, tuple[bytes, list[str]]]:
    """File name -> (content, the AEO ids it holds)."""
    out: dict[str, tuple[bytes, list[str]]] = {}
    for i in range(JSON_FILES):
        aeo_id = f"CNJ{i:05d}"
        out[f"s{i:05d}.json"] = (status_json(aeo_id), [aeo_id])
    for i in range(CSV_FILES):
        ids = [f"CNC{i:03d}R{r:02d}" for r in range(CSV_ROWS)]
        rows = "".join(
            f"{a},CN913100{i:03d}{r:02d},Operator {a},AEOF,valid,2025-01-01,1,CN\r\n"
            for r, a in enumerate(ids)
        )
        out[f"aeo/list{i:03d}.csv"] = ((CSV_HEADER + rows).encode(), ids)
    return out


def add_folder(hub: HubProcess, text: str) -> HubProcess:
    root = hub.config_path.parent / "exchange"
    hub.config_path.write_text(
        hub.config_path.read_text() + f'\n[folders.main]\npath = "{root}"\n{text}\n'
    )
    return HubProcess(hub.party, hub.config_path)


def listed(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


async def dropper(root: Path, files: dict[str, tuple[bytes, list[str]]]) -> None:
    """A domestic system: writes each file beside the inbox, then renames it in."""
    staging = root / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    names = list(files)
    for start in range(0, len(names), DROP_CHUNK):
        for name in names[start : start + DROP_CHUNK]:
            tmp = staging / name.replace("/", "_")
            tmp.write_bytes(files[name][0])
            target = root / "inbox" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        await asyncio.sleep(DROP_PAUSE)


@pytest.mark.slow
async def test_sigkill_neither_loses_a_file_nor_submits_one_twice(tmp_path: Path) -> None:
    made = make_federation(tmp_path)
    hubs = {
        "CN": add_folder(made["CN"], 'settle_seconds = 0\ninbox_formats = { aeo = "aeo-csv" }'),
        "NZ": add_folder(made["NZ"], 'outbox_format = "proto-json"\nsettle_seconds = 0'),
    }
    cn, nz = hubs["CN"], hubs["NZ"]
    cn_root = cn.config_path.parent / "exchange"
    nz_root = nz.config_path.parent / "exchange"
    files = documents()
    expected_ids = sorted(a for _, ids in files.values() for a in ids)
    rng = random.Random(SEED)
    log: list[str] = []
    with processes(hubs):
        for hub in hubs.values():
            hub.start()
        await asyncio.gather(cn.ready(), nz.ready())

        async def chaos() -> None:
            victims = ["CN", "NZ"] + [rng.choice(["CN", "NZ"]) for _ in range(KILLS - 2)]
            rng.shuffle(victims)
            for victim in victims:
                await asyncio.sleep(rng.uniform(*BETWEEN_KILLS))
                await hubs[victim].kill()
                log.append(
                    f"{time.monotonic():.2f} killed {victim}: "
                    f"{len(listed(cn_root / 'processed'))} processed"
                )
                await asyncio.sleep(rng.uniform(*DOWNTIME))
                await hubs[victim].restart()

        await asyncio.gather(dropper(cn_root, files), chaos())
        context = f"seed {SEED}; {log}"

        async def cn_done() -> bool:
            return listed(cn_root / "inbox") == []

        await until(cn_done, DRAIN_SECONDS, f"CN's inbox never emptied; {context}")

        async def nz_done() -> bool:
            return len(listed(nz_root / "outbox")) >= len(expected_ids)

        await until(nz_done, DRAIN_SECONDS, f"NZ's outbox never filled; {context}{nz.tail()}")
        await asyncio.sleep(1.0)  # nothing more may arrive
        for hub in (cn, nz):
            await hub.stop_gracefully()

    # every file processed once: nothing lost, nothing left, no file twice, none refused
    assert listed(cn_root / "processed") == sorted(files), context
    assert listed(cn_root / "rejected") == [], context
    # every AEO status queued exactly once
    contents = await cn.read()
    queued = Counter(
        AeoStatus.FromString(_body_of(m.envelope)).aeo_id for m, _ in contents.outbound
    )
    assert sorted(queued) == expected_ids, context
    assert [a for a, n in queued.items() if n > 1] == [], context
    # NZ's outbox holds each message once, whole, under its message id
    written = listed(nz_root / "outbox")
    assert all(w.startswith("proto-json/") and w.endswith(".json") for w in written), written[:5]
    ids = Counter(
        json.loads((nz_root / "outbox" / w).read_text())["aeoStatus"]["aeoId"] for w in written
    )
    assert sorted(ids) == expected_ids and max(ids.values()) == 1, context
    assert {Path(w).stem.split("-", 2)[2] for w in written} == {
        m.message_id for m in (await nz.read()).inbound
    }
    print(f"drop-folder chaos, seed {SEED}: {log}")


def _body_of(envelope: bytes) -> bytes:
    from hub.pb.customs_hub.v1 import envelope_pb2 as pb

    return pb.Envelope.FromString(envelope).body
