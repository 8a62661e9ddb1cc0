"""Rotating the trail key on a real hub (SQLite and PostgreSQL): once at a restart and once by
reload, a chain of three keys that `trail verify`, `trail prove` and the Audit service follow
from the first verifier key; forged hand-overs in an export refused by `trail verify`; and a
hub given a trail key of anyone else's refuses to start or reload, writing nothing."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from hub.app.keys import token_issuer
from hub.cli.main import main
from hub.cli.pki import new_trail_key
from hub.cli.trailfiles import read_key, verify_folder
from hub.config import HubConfig, load_config
from hub.core.auth import TRAIL_READ
from hub.core.errors import ConfigError
from hub.pb.customs_hub.v1 import audit_pb2 as apb
from hub.pb.customs_hub.v1 import audit_pb2_grpc as agrpc
from hub.runtime import RunningHub
from hub.store.db import Store
from hub.trail import checkpoint, handover
from hub.trail import events as trail
from tests.conftest import Federation
from tests.test_delivery import aeo_requests, submit_batch

HOUR = timedelta(hours=1)


async def cli(*args: str) -> int:
    """The CLI runs its own event loop: run it off this test's loop."""
    return await asyncio.to_thread(main, list(args))


def set_trail_keys(fed: Federation, key: Path, previous: Path | None = None) -> HubConfig:
    """CN's hub.toml with ``[trail] key`` (and ``previous_key``) set, read back."""
    path = fed.configs["CN"].path
    text = re.sub(r"\nprevious_key = [^\n]*", "", path.read_text())
    lines = f'key = "{key}"\n' + (f'previous_key = "{previous}"\n' if previous else "")
    text = re.sub(r"(\[trail\]\n)key = [^\n]*\n", lambda m: m.group(1) + lines, text)
    path.write_text(text)
    fed.configs["CN"] = load_config(path)
    return fed.configs["CN"]


def trail_key(tmp_path: Path, name: str) -> tuple[Path, checkpoint.NoteKey]:
    """A new trail key for CN (``pki trail-key``'s function) and its verifier key."""
    path = tmp_path / f"{name}.key"
    vkey, _ = new_trail_key(path, "CN")
    return path, read_key(str(vkey))


async def grow(cn: RunningHub, n: int = 2) -> int:
    """Submit ``n`` messages to NZ (not running: they stay queued) and sign a checkpoint."""
    await submit_batch(cn, aeo_requests(n))
    made = await cn.hub.audit.checkpoint()
    assert made is not None
    return made.size


async def grow_quietly(cn: RunningHub) -> int:
    """Two leaves that leave nothing to do afterwards (refusals, not messages to deliver: a
    failed delivery attempt after the hand-over would add a leaf, and a stopping hub would
    then sign a checkpoint after it), and a checkpoint."""
    for n in range(2):
        error = ConfigError(f"a refusal to grow the trail ({n})", reason="config-invalid")
        await cn.hub.audit.record_rejection("test", None, error)
    made = await cn.hub.audit.checkpoint()
    assert made is not None
    return made.size


async def newest(cn: RunningHub) -> bytes:
    point = await cn.hub.store.trail.checkpoint_at()
    assert point is not None
    return point.note


async def assert_handed_over(
    cn: RunningHub, old: checkpoint.NoteKey, new: checkpoint.NoteKey
) -> int:
    """The newest checkpoint hands over from ``old`` to ``new``, and its last entry records
    it; returns its size."""
    note = await newest(cn)
    point = checkpoint.open_note(note, old)
    assert checkpoint.open_note(note, new) == point  # co-signed
    assert point.extensions == (f"key-rotation {new.verifier()}",)
    last = trail.decode(await cn.hub.store.trail.entry(point.size - 1) or b"")
    assert last.kind == "config-changed"
    assert last.config_digest == handover.key_digest(new)
    return point.size


async def test_the_trail_key_rotates_twice_and_every_verifier_follows_from_the_first_key(
    federation: Federation, pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    k1_path, k1 = pki / "CN" / "trail.key", read_key(str(pki / "CN" / "trail.vkey"))
    k2_path, k2 = trail_key(tmp_path, "trail-2")
    k3_path, k3 = trail_key(tmp_path, "trail-3")
    cn = await federation.start("CN")
    first = await grow(cn)
    await federation.stop("CN")
    # 1. at a restart: trail.key = k2, trail.previous_key = k1
    set_trail_keys(federation, k2_path, k1_path)
    cn = await federation.start("CN")
    at_start = await assert_handed_over(cn, k1, k2)
    assert at_start > first
    after = await grow(cn)
    note = await newest(cn)
    assert checkpoint.open_note(note, k2).size == after
    assert not checkpoint.signed_by(note, k1)  # from the hand-over on, the new key alone
    # 2. by reload, without a restart: k3 after k2
    set_trail_keys(federation, k3_path, k2_path)
    change = await cn.reload()
    assert change.trail_key == handover.short(k3)
    assert f"trail key handed over to {handover.short(k3)}" in change.summary()
    by_reload = await assert_handed_over(cn, k2, k3)
    await grow(cn)
    assert checkpoint.signed_by(await newest(cn), k3)
    # a reload that changes nothing hands nothing over
    assert (await cn.reload()).trail_key == ""
    # 3. an auditor holding only k1, over the Audit service, restricted to another partner
    token = token_issuer(cn.config).issue("auditor", [TRAIL_READ], HOUR, ["SG"])
    credentials = grpc.ssl_channel_credentials((pki / "CN" / "ca.pem").read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{cn.audit_port}", credentials) as channel:
        answer = await agrpc.AuditStub(channel).GetKeyHandovers(
            apb.GetKeyHandoversRequest(), metadata=[("authorization", f"Bearer {token}")]
        )
    given = [
        handover.ProvenHandover(h.checkpoint.note, h.entry.index, h.entry.leaf, h.inclusion_proof)
        for h in answer.handovers
    ]
    chain, _ = handover.follow_proven(given, k1)
    assert [k.verifier() for k in chain.keys] == [k.verifier() for k in (k1, k2, k3)]
    assert [h.size for h in chain.handovers] == [at_start, by_reload]
    # ... and `trail prove` from k1 through the hub's Audit service
    token_file = tmp_path / "token"
    token_file.write_text(token_issuer(cn.config).issue("auditor", [TRAIL_READ], HOUR) + "\n")
    [message] = await submit_batch(cn, aeo_requests(1))
    await grow(cn, 1)
    remote = ["--hub", f"127.0.0.1:{cn.audit_port}", "--ca", str(pki / "CN" / "ca.pem")]
    prove = ["trail", "prove", *remote, "--token-file", str(token_file), "--message-id", message]
    capsys.readouterr()
    assert await cli(*prove, "--key", str(pki / "CN" / "trail.vkey")) == 0
    out = capsys.readouterr().out
    assert f"trail keys followed: {chain.describe()}" in out
    assert " OK included in checkpoint" in out
    # with a key the hub never handed over to, nothing verifies
    _, stranger = trail_key(tmp_path, "stranger")
    assert await cli(*prove, "--key", stranger.verifier()) == 1
    assert "BAD checkpoint does not verify" in capsys.readouterr().out
    await federation.stop("CN")
    # 4. offline: the export follows the same chain from k1
    config = str(federation.configs["CN"].path)
    export = tmp_path / "export"
    assert await cli("trail", "export", "--config", config, "-o", str(export)) == 0
    vkey = str(pki / "CN" / "trail.vkey")
    capsys.readouterr()
    assert await cli("trail", "verify", str(export), "--key", vkey) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and f"trail keys followed: {chain.describe()}" in out
    assert await cli("trail", "verify", str(export), "--key", vkey, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and [k["key"] for k in report["trail_keys"]] == [
        k.verifier() for k in (k1, k2, k3)
    ]
    assert [k["after"] for k in report["trail_keys"]] == [0, at_start, by_reload]
    # the newest key alone cannot vouch for what the first signed
    assert await cli("trail", "verify", str(export), "--key", str(tmp_path / "trail-3.vkey")) == 1
    assert f"not signed by {handover.short(k3)}" in capsys.readouterr().out


async def trail_size(config: HubConfig) -> int:
    store = await Store.existing(config.store_url, upgrade_hint="")
    try:
        return await store.trail.size()
    finally:
        await store.close()


async def test_a_hub_refuses_a_trail_key_nobody_handed_over_to(
    federation: Federation, pki: Path, tmp_path: Path
) -> None:
    """Anyone holding the store could start a new history under a key of their own: a start
    or reload with a trail key that did not sign the newest checkpoint, and no previous key
    that did, is refused with one line saying what to do, and nothing is written."""
    k1_path = pki / "CN" / "trail.key"
    k1 = read_key(str(pki / "CN" / "trail.vkey"))
    thief_path, thief = trail_key(tmp_path, "thief")
    other_path, _ = trail_key(tmp_path, "other")
    cn = await federation.start("CN")
    await grow(cn)
    # a reload with the thief's key is refused; the hub goes on signing with k1
    good = federation.configs["CN"]
    set_trail_keys(federation, thief_path)
    with pytest.raises(ConfigError) as refused:
        await cn.reload()
    assert "trail.previous_key" in refused.value.message
    assert f"signed by {handover.short(k1)}, not by the trail key" in refused.value.message
    assert "\n" not in refused.value.message
    [*_, rejection] = await cn.hub.store.views.rejections("reload")
    assert rejection.reason == "config-invalid" and "trail.previous_key" in rejection.detail
    await grow(cn)
    assert checkpoint.signed_by(await newest(cn), k1)
    assert cn.hub.config == good  # the configuration in use stays
    await federation.stop("CN")
    size = await trail_size(good)
    # at a start: the thief's key alone, or with a previous key that signed nothing here
    for previous in (None, other_path):
        set_trail_keys(federation, thief_path, previous)
        with pytest.raises(ConfigError) as refused:
            await federation.start("CN")
        message = refused.value.message
        assert message.count("\n") == 0 and "set trail.previous_key" in message
        assert handover.short(thief) in message and handover.short(k1) in message
        assert await trail_size(good) == size  # nothing written, nothing signed
    # the previous key named the same as the new one is refused by the config check too
    set_trail_keys(federation, k1_path, k1_path)
    with pytest.raises(ConfigError, match=r"trail\.previous_key is the same key as trail\.key"):
        await federation.start("CN")
    # with the right key back, the hub starts and continues its history
    set_trail_keys(federation, k1_path)
    cn = await federation.start("CN")
    await grow(cn)
    assert checkpoint.signed_by(await newest(cn), k1)


async def test_a_hub_rolled_back_to_the_old_trail_key_after_a_hand_over_is_refused(
    federation: Federation, pki: Path, tmp_path: Path
) -> None:
    """The hand-over carries the old key's signature too, but no verifier accepts the old key
    after it: a restart or reload with trail.key set back to it (a config rollback), with or
    without a previous key, is refused naming the key handed over to, and nothing is signed."""
    k1_path, k1 = pki / "CN" / "trail.key", read_key(str(pki / "CN" / "trail.vkey"))
    k2_path, k2 = trail_key(tmp_path, "trail-2")
    other_path, _ = trail_key(tmp_path, "other")
    cn = await federation.start("CN")
    await grow_quietly(cn)
    await federation.stop("CN")
    set_trail_keys(federation, k2_path, k1_path)
    cn = await federation.start("CN")
    await assert_handed_over(cn, k1, k2)
    handed = await newest(cn)
    await federation.stop("CN")
    good = federation.configs["CN"]
    size = await trail_size(good)

    def assert_refused(message: str) -> None:
        assert "\n" not in message
        assert f"handed the trail key over to {handover.short(k2)}" in message
        assert f"Set trail.key to the key {handover.short(k2)}" in message

    # at a restart: the old key alone, or with any previous key
    for previous in (None, k2_path, other_path):
        set_trail_keys(federation, k1_path, previous)
        with pytest.raises(ConfigError) as refused:
            await federation.start("CN")
        assert_refused(refused.value.message)
        assert await trail_size(good) == size  # nothing written, nothing signed
    # with the key handed over to, the hub starts and goes on
    set_trail_keys(federation, k2_path)
    cn = await federation.start("CN")
    assert await newest(cn) == handed
    # a reload back to the old key: refused, recorded as every refused reload is (queued
    # messages' failed tries may add leaves meanwhile), and the hub keeps the key handed over to
    set_trail_keys(federation, k1_path, k2_path)
    before = await cn.hub.store.trail.size()
    with pytest.raises(ConfigError) as refused:
        await cn.reload()
    assert_refused(refused.value.message)
    assert await newest(cn) == handed  # no checkpoint signed
    records = await cn.hub.store.trail.records(before, await cn.hub.store.trail.size())
    added = [trail.decode(leaf).kind for _, leaf, _ in records]
    assert "rejected" in added and "config-changed" not in added  # nothing put in place
    [*_, rejection] = await cn.hub.store.views.rejections("reload")
    assert rejection.reason == "config-invalid" and handover.short(k2) in rejection.detail
    after = await grow(cn)
    note = await newest(cn)
    assert checkpoint.open_note(note, k2).size == after and not checkpoint.signed_by(note, k1)
    await federation.stop("CN")
    export = tmp_path / "export"
    toml = str(federation.configs["CN"].path)
    assert await cli("trail", "export", "--config", toml, "-o", str(export)) == 0
    assert verify_folder(export, k1).ok


def forged_note(export: Path, size: int, note: bytes) -> None:
    (export / "checkpoints" / f"{size:020d}.note").write_bytes(note)
    latest = export / "checkpoint.note"
    if checkpoint.read_unverified(latest.read_bytes()).size == size:
        latest.write_bytes(note)


def resign(
    note: bytes, keys: Sequence[checkpoint.NoteKey], extensions: tuple[str, ...] = ()
) -> bytes:
    point = checkpoint.read_unverified(note)
    point = checkpoint.Checkpoint(point.origin, point.size, point.root, extensions)
    return checkpoint.sign(point, *keys)


def signing_key(path: Path) -> checkpoint.NoteKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    return checkpoint.NoteKey("customs-hub-CN", private.public_key(), private)


async def test_trail_verify_refuses_forged_hand_overs_in_an_export(
    federation: Federation, pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real hub's export after one rotation (k1 to k2), its notes replaced by forgeries
    signed with keys an attacker could hold: each refused, naming the rule it broke."""
    k1_path = pki / "CN" / "trail.key"
    k2_path, _ = trail_key(tmp_path, "trail-2")
    thief_path, _ = trail_key(tmp_path, "thief")
    k1, k2, thief = signing_key(k1_path), signing_key(k2_path), signing_key(thief_path)
    cn = await federation.start("CN")
    before = await grow(cn)
    set_trail_keys(federation, k2_path, k1_path)
    assert (await cn.reload()).trail_key == handover.short(k2)
    handed = await cn.hub.store.trail.checkpoint_at()
    assert handed is not None
    after = await grow(cn)
    await federation.stop("CN")
    honest = tmp_path / "honest"
    config = str(federation.configs["CN"].path)
    assert await cli("trail", "export", "--config", config, "-o", str(honest)) == 0
    vkey = read_key(str(pki / "CN" / "trail.vkey"))
    assert verify_folder(honest, vkey).ok
    notes = {
        size: (honest / "checkpoints" / f"{size:020d}.note").read_bytes()
        for size in (before, handed.size, after)
    }
    line = f"key-rotation {k2.verifier()}"
    thief_line = f"key-rotation {thief.verifier()}"
    forgeries = [
        (
            "a checkpoint by a new key with no hand-over",
            {handed.size: None},
            f"not signed by {handover.short(k1)}, the key in force; a checkpoint by another "
            "key counts only after a hand-over",
        ),
        (
            "a thief's own key at the latest size",
            {after: resign(notes[after], [thief])},
            f"not signed by {handover.short(k2)}, the key in force since the hand-over at "
            f"{handed.size}; a checkpoint by another key counts only after a hand-over",
        ),
        (
            "a hand-over signed only by the new key",
            {handed.size: resign(notes[handed.size], [k2], (line,))},
            f"a hand-over to {handover.short(k2)} not signed by {handover.short(k1)}, the "
            "key in force",
        ),
        (
            "a hand-over signed by the old key without the new key's co-signature",
            {handed.size: resign(notes[handed.size], [k1], (line,))},
            f"names the key {handover.short(k2)} but is not co-signed by it",
        ),
        (
            "a hand-over naming one key, co-signed by another",
            {handed.size: resign(notes[handed.size], [k1, thief], (line,))},
            f"names the key {handover.short(k2)} but is not co-signed by it",
        ),
        (
            "a forged extension line under the real signatures",
            {
                handed.size: notes[handed.size].replace(
                    k2.verifier().encode(), thief.verifier().encode()
                )
            },
            f"signature by {handover.short(k1)} does not verify",
        ),
        (
            "an extension line added to a checkpoint of the old key",
            {before: notes[before].replace(b"\n\n", f"\n{thief_line}\n\n".encode(), 1)},
            f"a hand-over to {handover.short(thief)} not signed by {handover.short(k1)}",
        ),
    ]
    for name, changes, problem in forgeries:
        export = tmp_path / name.replace(" ", "-").replace("'", "")
        shutil.copytree(honest, export)
        for size, note in changes.items():
            if note is None:
                (export / "checkpoints" / f"{size:020d}.note").unlink()
            else:
                forged_note(export, size, note)
        report = verify_folder(export, vkey)
        assert not report.ok, name
        assert problem in report.problem, (name, report.problem)
    # and on the command line: exit 1 and the reason
    capsys.readouterr()
    assert await cli("trail", "verify", str(export), "--key", vkey.verifier()) == 1
    assert "BAD: checkpoints/" in capsys.readouterr().out


def test_pki_trail_key_writes_a_new_key_and_never_over_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trail-2.key"
    assert main(["pki", "trail-key", "--party", "CN", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    vkey = read_key(str(tmp_path / "trail-2.vkey"))
    assert vkey.verifier() in printed and "previous_key" in printed
    assert signing_key(out).verifier() == vkey.verifier()
    assert out.stat().st_mode & 0o777 == 0o600
    before = out.read_bytes()
    assert main(["pki", "trail-key", "--party", "CN", "--out", str(out)]) == 2
    assert "exists; a trail key is never written over" in capsys.readouterr().err
    assert out.read_bytes() == before


async def test_a_backup_from_before_a_rotation_restores_and_hands_over_again(
    federation: Federation, pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The restored trail's newest checkpoint is the old key's: restored with the old key as
    trail.previous_key, the hub hands over again at its start; without it, the restore is
    refused, saying so."""
    k1_path, k1 = pki / "CN" / "trail.key", read_key(str(pki / "CN" / "trail.vkey"))
    k2_path, k2 = trail_key(tmp_path, "trail-2")
    cn = await federation.start("CN")
    await grow(cn)
    toml = str(federation.configs["CN"].path)
    backup = tmp_path / "cn.backup"
    assert await cli("backup", "--config", toml, "--out", str(backup)) == 0
    set_trail_keys(federation, k2_path, k1_path)
    assert (await cn.reload()).trail_key == handover.short(k2)
    await federation.stop("CN")
    set_trail_keys(federation, k2_path)
    capsys.readouterr()
    assert await cli("restore", "--config", toml, str(backup), "--force") == 2
    err = capsys.readouterr().err
    assert f"signed by {handover.short(k1)}" in err and "trail.previous_key" in err
    set_trail_keys(federation, k2_path, k1_path)
    assert await cli("restore", "--config", toml, str(backup), "--force") == 0
    cn = await federation.start("CN")
    await assert_handed_over(cn, k1, k2)
    await grow(cn)
    await federation.stop("CN")
    export = tmp_path / "export"
    assert await cli("trail", "export", "--config", toml, "-o", str(export)) == 0
    report = verify_folder(export, k1)
    assert report.ok and report.chain is not None and len(report.chain.handovers) == 1
