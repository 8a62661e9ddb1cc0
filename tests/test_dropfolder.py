"""The drop-folder connector with real hubs over mTLS and real stores: files in, files out.

CN's domestic system drops files into CN's folder; what NZ receives from CN is written into
NZ's folder. Each case checks where every file ended up, what the error report beside a
rejected file says, what was queued (exactly once), and what the trail recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hub.cli.demo import sample_aeo_status
from hub.config import load_config
from hub.connectors.dropfolder import BATCH_FILES
from hub.core.errors import ConfigError
from hub.core.messages import AeoStatus, ControlResult, GoodsDeclaration
from hub.runtime import RunningHub
from tests.conftest import Federation
from tests.test_exchange import eventually
from tests.test_wco_hub import DECLARATION

DATA = Path(__file__).parent / "data"
CUSRES = DATA / "edifact" / "cusres_released.edi"
OPERATORS = DATA / "aeo-csv" / "operators.csv"


def add_folder(federation: Federation, party: str, text: str) -> Path:
    """Give ``party`` the folder ``[folders.main]`` described by ``text``; its path."""
    root = federation.root / party / "exchange"
    path = federation.root / party / "hub.toml"
    path.write_text(path.read_text() + f'\n[folders.main]\npath = "{root}"\n{text}\n')
    federation.configs[party] = load_config(path)
    return root


def drop(root: Path, name: str, data: bytes) -> Path:
    """Drop a file the way a domestic system should: written elsewhere, renamed into inbox/."""
    target = root / "inbox" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{name.replace('/', '_')}.writing"
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def files(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def aeo_json(aeo_id: str, revision: int = 1) -> bytes:
    status = sample_aeo_status(issuer="CN", aeo_id=aeo_id)
    status.revision = revision
    return (
        b'{"aeoStatus": {"issuingAdministration": "CN", "aeoId": "'
        + aeo_id.encode()
        + b'", "tin": "CN91310000MA1FL8XQ30", "name": "Shanghai Freight", '
        b'"programme": "AEO_PROGRAMME_FULL", "status": "AEO_STANDING_VALID", '
        b'"validFrom": "2025-01-01", "revision": "' + str(revision).encode() + b'", '
        b'"countryCode": "CN"}}'
    )


async def inbox_empty(root: Path) -> bool:
    return files(root / "inbox") == []


async def start_pair(
    federation: Federation, cn_text: str, nz_text: str
) -> tuple[RunningHub, RunningHub, Path, Path]:
    cn_root = add_folder(federation, "CN", cn_text)
    nz_root = add_folder(federation, "NZ", nz_text)
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    return cn, nz, cn_root, nz_root


async def test_files_in_every_format_are_submitted_and_partners_data_written_out(
    federation: Federation,
) -> None:
    cn, nz, cn_root, nz_root = await start_pair(
        federation,
        'settle_seconds = 0\nrecipients = ["NZ"]\n'
        'inbox_formats = { aeo = "aeo-csv", edi = "edifact" }',
        'outbox_format = "wco-xml"\nsettle_seconds = 0',
    )
    drop(cn_root, "declaration.xml", DECLARATION.read_bytes())
    drop(cn_root, "edi/released.edi", CUSRES.read_bytes())
    drop(cn_root, "aeo/operators.csv", OPERATORS.read_bytes())
    drop(cn_root, "status.json", aeo_json("CNAEO0001"))
    drop(cn_root, "broken.xml", b"<Declaration><ID>")
    drop(
        cn_root,
        "aeo/empty.csv",
        b"aeo_id,tin,name,programme,status,valid_from,revision,country\r\n",
    )
    drop(cn_root, "unknown.bin", b"\x00\x01 not a document")
    await eventually(lambda: inbox_empty(cn_root))
    assert files(cn_root / "processed") == [
        "declaration.xml",
        "edi/released.edi",
        "status.json",
    ]
    assert files(cn_root / "rejected") == [
        "aeo/empty.csv",
        "aeo/empty.csv.error.json",
        "aeo/operators.csv",
        "aeo/operators.csv.error.json",
        "broken.xml",
        "broken.xml.error.json",
        "unknown.bin",
        "unknown.bin.error.json",
    ]
    broken = json.loads((cn_root / "rejected/broken.xml.error.json").read_text())
    assert broken["file"] == "inbox/broken.xml" and broken["accepted"] == []
    [error] = broken["refused"]
    assert error["reason"] == "not-well-formed" and error["line"] == 1
    assert (
        json.loads((cn_root / "rejected/unknown.bin.error.json").read_text())["refused"][0][
            "reason"
        ]
        == "unsupported-format"
    )
    assert (
        json.loads((cn_root / "rejected/aeo/empty.csv.error.json").read_text())["refused"][0][
            "reason"
        ]
        == "no-document"
    )
    # the AEO list: its good rows are queued, its bad rows reported by line: 13 that are not
    # valid CSV rows, and 3 valid rows that the hub refused (they name NZ as their issuer)
    report = json.loads((cn_root / "rejected/aeo/operators.csv.error.json").read_text())
    assert report["format"] == "aeo-csv"
    reasons = [r["reason"] for r in report["refused"]]
    assert len(reasons) == 16 and reasons.count("not-issuer") == 3
    assert sum(r.startswith("csv-") for r in reasons) == 13
    bad_lines = [r["line"] for r in report["refused"]]
    good = [a["line"] for a in report["accepted"]]
    assert len(good) == 20 and not set(good) & set(bad_lines)
    assert all(
        len(a["queued"]) == 1 and a["queued"][0]["recipient"] == "NZ" for a in report["accepted"]
    )
    # the rejections are recorded with the folder as their source, once each
    rejections = await cn.hub.store.views.rejections()
    assert {r.source for r in rejections} == {"folder:main"}
    assert len(rejections) == 16 + 3
    # NZ wrote what CN sent into its outbox: declarations as WCO XML, AEO statuses (which
    # WCO DM cannot hold) and the control result as protobuf JSON, each once

    async def all_written() -> bool:
        return len(files(nz_root / "outbox")) == 1 + 20 + 1 + 1

    await eventually(all_written)
    written = files(nz_root / "outbox")
    assert [w for w in written if w.startswith("wco-xml/")] and all(
        w.endswith(".xml") for w in written if w.startswith("wco-xml/")
    )
    inbound = {m.message_id: m for m in await nz.hub.store.views.inbound()}
    assert len(inbound) == 23
    for name in written:
        message_id = Path(name).stem.split("-", 2)[2]
        row = inbound.pop(message_id)
        data = (nz_root / "outbox" / name).read_bytes()
        fmt = name.split("/")[0]
        translated = nz.hub.translators.reader(fmt).decode(data)
        if row.body_type == "customs_hub.v1.GoodsDeclaration":
            assert fmt == "wco-xml"
            assert translated == GoodsDeclaration.FromString(row.body)
        else:
            assert fmt == "proto-json"
            cls = AeoStatus if row.body_type.endswith("AeoStatus") else ControlResult
            assert translated == cls.FromString(row.body)
    assert inbound == {}
    assert files(nz_root / ".work") == [] and files(cn_root / ".work") == []
    # the folder acknowledges what it wrote (after writing): handed over, not written again
    newest = max(m.id or 0 for m in await nz.hub.store.views.inbound())

    async def acknowledged() -> bool:
        return await nz.hub.store.inbound.acknowledged("folder:main") == newest

    await eventually(acknowledged)


async def test_a_file_submitted_again_after_a_crash_is_queued_once(
    federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connector dies after the hub made the documents durable and before the file left
    inbox/: the next pass submits it again, gets the first answers and queues nothing."""
    add_folder(federation, "CN", "settle_seconds = 0")
    cn = await federation.start("CN")
    [folder] = cn.folders
    await folder.stop()  # driven by hand below
    drop(folder.root, "status.json", aeo_json("CNAEO0002"))

    def crash(_tree: object, _outcome: object) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(folder, "_settle", crash)
    with pytest.raises(SystemExit):
        await folder.run_pass()
    assert files(folder.root / "inbox") == ["status.json"]
    first = {m.message_id for m, _ in await cn.hub.store.views.outbound()}
    assert len(first) == 2  # AEO statuses go to every partner: NZ and SG
    monkeypatch.undo()
    assert await folder.run_pass() == 1
    assert files(folder.root / "processed") == ["status.json"]
    assert {m.message_id for m, _ in await cn.hub.store.views.outbound()} == first
    # the same bytes dropped again later are a new file: submitted anew
    drop(folder.root, "status.json", aeo_json("CNAEO0002"))
    assert await folder.run_pass() == 1
    assert files(folder.root / "processed") == ["status.json", "status.json.1"]
    assert len(await cn.hub.store.views.outbound()) == 4


@pytest.mark.slow
async def test_thousands_of_files_take_one_listing(tmp_path: Path, pki: Path) -> None:
    """How often inbox/ is listed does not depend on the store: SQLite only."""
    federation = Federation(tmp_path, pki)
    add_folder(federation, "CN", "settle_seconds = 0")
    cn = await federation.start("CN")
    try:
        await _thousands(cn)
    finally:
        await federation.stop_all()


async def _thousands(cn: RunningHub) -> None:
    [folder] = cn.folders
    await folder.stop()
    count = 2000
    inbox = folder.root / "inbox"
    for i in range(count):
        (inbox / f"s{i:05d}.json").write_bytes(aeo_json(f"CNAEO{i:05d}"))
    assert await folder.run_pass() == count
    assert folder.scans == 1
    assert count > BATCH_FILES * 10  # many batches of one listing
    assert len(files(folder.root / "processed")) == count
    assert len(await cn.hub.store.views.outbound()) == count * 2  # to NZ and SG
    assert await folder.run_pass() == 0 and folder.scans == 2


async def test_unfinished_and_unsettled_files_are_left_alone(federation: Federation) -> None:
    root = add_folder(federation, "CN", "settle_seconds = 3600")
    cn = await federation.start("CN")
    [folder] = cn.folders
    await folder.stop()
    drop(root, "fresh.json", aeo_json("CNAEO0003"))  # written now: not settled for an hour
    (root / "inbox" / "half.json.part").write_bytes(b"{")
    (root / "inbox" / ".hidden.json").write_bytes(b"{")
    assert await folder.run_pass() == 0
    assert files(root / "inbox") == [".hidden.json", "fresh.json", "half.json.part"]
    old = root / "inbox" / "fresh.json"
    os.utime(old, (old.stat().st_atime - 7200, old.stat().st_mtime - 7200))
    assert await folder.run_pass() == 1
    assert files(root / "processed") == ["fresh.json"]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('inbox_formats = { aeo = "cobol" }', "inbox_formats.aeo: 'cobol' is not a registered"),
        (
            'outbox_format = "ncts-p6"',
            "outbox_format: 'ncts-p6' is not a registered format that can be written",
        ),
    ],
)
async def test_a_folder_with_unknown_formats_stops_the_start(
    federation: Federation, text: str, complaint: str
) -> None:
    add_folder(federation, "CN", text)
    with pytest.raises(ConfigError) as caught:
        await federation.start("CN")
    assert complaint in str(caught.value)


def test_folder_configuration_errors_name_the_key(tmp_path: Path) -> None:
    base = tmp_path / "hub.toml"
    cases = {
        "[folders.Main]\npath = 'x'": "folders.Main must be a folder name",
        "[folders.main]\npath = 'x'\nrecipients = ['AU']": "folders.main.recipients must be",
        "[folders.main]\npath = 'x'\nsettle = 1": "main.settle: unknown key; did you mean settle_",
        "[folders.main]\npath = 'x'\ninbox_formats = { '../up' = 'wco-xml' }": "a plain subfolder",
        "[folders.a]\npath = 'x'\n[folders.b]\npath = 'x'": "a path no other folder uses",
    }
    template = _minimal_config(tmp_path)
    for text, complaint in cases.items():
        base.write_text(template + "\n" + text + "\n")
        with pytest.raises(ConfigError) as caught:
            load_config(base)
        assert complaint in str(caught.value), text


def _minimal_config(tmp_path: Path) -> str:
    for name in ("tls.pem", "tls.key", "ca.pem", "signing.pem", "signing.key", "trail.key"):
        (tmp_path / name).write_text("")
    return (
        'party = "CN"\n[server]\nlisten = "127.0.0.1:1"\ndomestic_listen = "127.0.0.1:2"\n'
        '[tls]\ncert = "tls.pem"\nkey = "tls.key"\ntrust_anchor = "ca.pem"\n'
        '[signing]\ncert = "signing.pem"\nkey = "signing.key"\n[trail]\nkey = "trail.key"\n'
        '[store]\nurl = "sqlite:///hub.db"\n'
        '[partners.NZ]\nendpoint = "127.0.0.1:3"\ntrust_anchor = "ca.pem"\nsigning_certs = []\n'
    )


async def test_hostile_files_neither_stop_the_folder_nor_lose_anything(
    tmp_path: Path, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Odd names, names too long for a report, a file named like a report, a link, a file
    swapped while it is submitted, and a translator that crashes: each ends up somewhere
    sensible, and the files after them are still taken. (File handling does not depend on
    the store: SQLite only.)"""
    federation = Federation(tmp_path, pki)
    root = add_folder(federation, "CN", "settle_seconds = 0")
    cn = await federation.start("CN")
    try:
        [folder] = cn.folders
        await folder.stop()
        inbox = root / "inbox"
        latin1 = os.fsdecode(b"caf\xe9.json")  # not UTF-8: a surrogate in the str
        (inbox / latin1).write_bytes(aeo_json("CNAEO1001"))
        long_name = "x" * 250 + ".xml"  # its report's name would be too long
        (inbox / long_name).write_bytes(b"<Declaration><ID>")
        (inbox / "a.error.json").write_bytes(b"{not json")
        (inbox / "link.json").symlink_to("/etc/hostname")
        assert await folder.run_pass() == 3  # the link is not a file: not even listed
        (inbox / "a").write_bytes(b"neither")
        assert await folder.run_pass() == 1
        rejected = files(root / "rejected")
        assert "a.error.json" in rejected and "a.error.json.error.json" in rejected
        assert (root / "rejected" / "a.error.json").read_bytes() == b"{not json"  # kept
        assert "a.1" in rejected and "a.1.error.json" in rejected
        quarantined = [r for r in rejected if len(r) == 16]
        assert len(quarantined) == 1  # the long name, under a short one, with its report
        report = json.loads((root / "rejected" / (quarantined[0] + ".error.json")).read_text())
        assert report["file"] == f"inbox/{long_name}"
        assert report["refused"][0]["reason"] == "not-well-formed"
        assert os.fsencode(files(root / "processed")[0]) == b"caf\xe9.json"
        assert files(inbox) == ["link.json"]

        # swapped while submitted: what was read is queued; the new file waits for a pass
        (inbox / "s.json").write_bytes(aeo_json("CNAEO1002"))
        submit_many = cn.hub.submission.submit_many

        async def swapping(submissions):  # type: ignore[no-untyped-def]
            staged = root / "s.json.writing"
            staged.write_bytes(aeo_json("CNAEO1003"))
            os.replace(staged, inbox / "s.json")
            return await submit_many(submissions)

        monkeypatch.setattr(cn.hub.submission, "submit_many", swapping)
        assert await folder.run_pass() == 1
        monkeypatch.undo()
        assert "s.json" in files(inbox)
        assert await folder.run_pass() == 1
        assert "s.json" in files(root / "processed") and "s.json" not in files(inbox)
        ids = [
            aeo
            for m, _ in await cn.hub.store.views.outbound()
            for aeo in json.loads(m.business_keys)["aeo"]
        ]
        assert sorted(ids) == sorted(["CNAEO1001"] * 2 + ["CNAEO1002"] * 2 + ["CNAEO1003"] * 2)

        # a translator that crashes: the file is refused with a reason, the next one is taken
        class Broken:
            format_id, media_type, description = "proto-json", "application/json", "buggy"
            directions = frozenset({"decode"})

            def decode(self, data: bytes, source: str = "document") -> object:
                raise ValueError("a bug")

        monkeypatch.setitem(cn.hub.translators.formats, "proto-json", Broken())
        (inbox / "crash.json").write_bytes(aeo_json("CNAEO1004"))
        assert await folder.run_pass() == 1
        crash = json.loads((root / "rejected" / "crash.json.error.json").read_text())
        assert crash["refused"][0]["reason"] == "translation-failed"
    finally:
        await federation.stop_all()
