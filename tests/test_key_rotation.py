"""Rotation of a hub's own message-signing key with an overlap (docs/adr/0010-key-rotation.md),
over two real hubs on real mTLS: CN rotates by config and reload while messages flow both
ways; NZ, whose operator edits nothing, learns CN's new key from the certificate carried with
CN's envelopes and receipts, records it in its trail, keeps it across a restart, and both
trails' exported messages still verify. Queued envelopes signed with the old key are still
accepted, and a resend re-signed with the new key gets the first receipt.

Each test has a PKI of its own: issuing and revoking certificates in the session's would touch
every other test."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hub.cli.demo import sample_aeo_status
from hub.cli.main import main
from hub.cli.pki import init_federation, issue_next_signing
from hub.config import load_config
from hub.core.envelope import verify_receipt
from hub.core.signing import Signer, key_id_of
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.runtime import RunningHub
from hub.trail import events as trail
from tests.conftest import PARTIES, Federation, _new_pg_database
from tests.test_delivery import fast_retries
from tests.test_exchange import eventually, submit

FAST_LIMITS = "retry_initial_seconds = 0.2\nretry_max_seconds = 1.0\npoll_seconds = 0.2\n"


@pytest.fixture
def own_pki(tmp_path: Path) -> Path:
    root = tmp_path / "pki"
    init_federation(root, list(PARTIES))
    return root


@pytest.fixture(params=["sqlite", "postgres"])
async def fed(
    request: pytest.FixtureRequest, tmp_path: Path, own_pki: Path
) -> AsyncIterator[Federation]:
    postgres = None
    if request.param == "postgres":
        postgres = {p: await _new_pg_database(request, driver="") for p in PARTIES}
    federation = Federation(tmp_path / "hubs", own_pki, postgres)
    yield federation
    await federation.stop_all()


def with_fast_retries(federation: Federation, party: str) -> None:
    """Short retry waits written into the file itself, so that a reload (which refuses a
    change of limits) reads the same limits the hub started with."""
    path = federation.configs[party].path
    text = path.read_text().replace("[limits]\n", "[limits]\n" + FAST_LIMITS, 1)
    path.write_text(text)
    federation.configs[party] = load_config(path)


def write_signing(
    federation: Federation,
    party: str,
    cert: Path,
    key: Path,
    previous: list[Path],
    carry: str | None = None,
) -> None:
    """Replace the [signing] table of ``party``'s hub.toml: what an operator edits."""
    path = federation.configs[party].path
    text = path.read_text()
    start = text.index("[signing]\n")
    end = text.index("\n\n", start)
    lines = [
        "[signing]",
        f'cert = "{cert}"',
        f'key = "{key}"',
        "previous_certs = [" + ", ".join(f'"{p}"' for p in previous) + "]",
    ]
    if carry is not None:
        lines.append(f'carry_certificate = "{carry}"')
    path.write_text(text[:start] + "\n".join(lines) + text[end:])


def key_id_in(path: Path) -> str:
    public = x509.load_pem_x509_certificate(path.read_bytes()).public_key()
    return key_id_of(public)  # type: ignore[arg-type]


def der_of(path: Path) -> bytes:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


async def aeo(hub: RunningHub, to: str, aeo_id: str) -> str:
    request = spb.SubmitRequest(
        aeo_status=sample_aeo_status(hub.config.party, aeo_id), recipients=[to]
    )
    [queued] = await submit(hub, request)
    return queued.message_id


async def received_ids(hub: RunningHub) -> set[str]:
    return {m.message_id for m in await hub.hub.store.views.inbound()}


async def settled_ids(hub: RunningHub) -> set[str]:
    """Outbound messages whose receipt this hub verified and stored."""
    return {o.message_id for o, r in await hub.hub.store.views.outbound() if r is not None}


async def leaves(hub: RunningHub, kind: str) -> list[Any]:
    return [e for e in map(trail.decode, await hub.hub.store.trail.leaves()) if e.kind == kind]


def signature_of(envelope: bytes) -> pb.Signature:
    [signature] = pb.Envelope.FromString(envelope).signatures
    return signature


async def cli(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


async def test_a_hub_rotates_its_signing_key_and_its_partner_learns_it_without_an_edit(
    fed: Federation, own_pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_fast_retries(fed, "CN")
    fast_retries(fed, "NZ")
    old_cert, old_key_id = own_pki / "CN" / "signing.pem", key_id_in(own_pki / "CN" / "signing.pem")
    cn = await fed.start("CN")
    nz = await fed.start("NZ")
    assert cn.hub.signer.key_id == old_key_id and not cn.hub.signer.carry

    # before: one message each way, signed with CN's only key, no certificate carried
    before_cn = await aeo(cn, "NZ", "CNAEO1")
    before_nz = await aeo(nz, "CN", "NZAEO1")
    await eventually(lambda: _has(nz, before_cn, cn, before_nz))

    # NZ goes away; CN queues a message, signed now with the key it is about to retire
    await fed.stop("NZ")
    queued_old = await aeo(cn, "NZ", "CNAEO2")

    # CN's operator: a next certificate from CN's CA, configured, the old one kept; reload
    new_cert, new_key = issue_next_signing(own_pki, "CN")
    new_key_id = key_id_in(new_cert)
    write_signing(fed, "CN", new_cert, new_key, [old_cert])
    change = await cn.reload()
    assert change.own_keys and change.recorded
    signer = cn.hub.signer
    assert signer.key_id == new_key_id != old_key_id  # the reload switched the signer
    assert signer.carry and signer.certificate == der_of(new_cert)  # "overlap": carried
    # CN still verifies what its old key signed (its receipts, its queued envelopes)
    assert set(cn.hub.keys_for("CN")) == {old_key_id, new_key_id}
    queued_new = await aeo(cn, "NZ", "CNAEO3")

    # NZ back, its config untouched: it sends too, and CN answers with a receipt signed by
    # the new key, its certificate carried
    nz = await fed.start("NZ")
    assert new_key_id not in nz.hub.keys_for("CN")
    after_nz = await aeo(nz, "CN", "NZAEO2")
    await eventually(lambda: _has(nz, queued_new, cn, after_nz), timeout=30)
    await eventually(lambda: _has(nz, queued_old, cn, before_nz), timeout=30)

    # the envelopes as sent: the queued one under the old key without a certificate, the
    # new one under the new key with it
    sent = {o.message_id: o for o, _ in await cn.hub.store.views.outbound()}
    assert signature_of(sent[queued_old].envelope).key_id == old_key_id
    assert signature_of(sent[queued_old].envelope).certificate == b""
    carried = signature_of(sent[queued_new].envelope)
    assert carried.key_id == new_key_id and carried.certificate == der_of(new_cert)
    # NZ learned the key once, in its trail with the certificate's digest, and in its store
    [learned] = await leaves(nz, "key-learned")
    assert learned.sender == "CN" and learned.message_id in (queued_new, after_nz)
    assert [(k.name, k.value) for k in learned.keys] == [("signing-key", new_key_id)]
    assert learned.config_digest == hashlib.sha256(der_of(new_cert)).digest()
    [row] = await nz.hub.store.learned.all()
    assert (row.party, row.key_id, row.certificate) == ("CN", new_key_id, der_of(new_cert))
    assert set(nz.hub.keys_for("CN")) == {old_key_id, new_key_id}
    # the key-learned leaf comes before whatever it verified
    order = [(e.kind, e.message_id) for e in map(trail.decode, await nz.hub.store.trail.leaves())]
    first_use = min(
        i for i, (kind, mid) in enumerate(order) if (kind, mid) in {
            ("received", queued_new), ("delivered", after_nz)
        }
    )
    assert order.index(("key-learned", learned.message_id)) < first_use

    # CN stops carrying the certificate; NZ restarted knows the key from its store
    write_signing(fed, "CN", new_cert, new_key, [old_cert], carry="never")
    await cn.reload()
    assert not cn.hub.signer.carry
    await fed.stop("NZ")
    nz = await fed.start("NZ")
    assert new_key_id in nz.hub.keys_for("CN")
    bare = await aeo(cn, "NZ", "CNAEO4")
    last_nz = await aeo(nz, "CN", "NZAEO3")
    await eventually(lambda: _has(nz, bare, cn, last_nz), timeout=30)
    assert signature_of(sent_envelope := (await _sent(cn, bare))).certificate == b""
    assert signature_of(sent_envelope).key_id == new_key_id
    assert len(await leaves(nz, "key-learned")) == 1  # nothing learned twice

    # nothing lost, nothing refused
    assert await received_ids(nz) == {before_cn, queued_old, queued_new, bare}
    assert await received_ids(cn) == {before_nz, after_nz, last_nz}
    assert await settled_ids(cn) == {before_cn, queued_old, queued_new, bare}
    assert await settled_ids(nz) == {before_nz, after_nz, last_nz}
    assert await nz.hub.store.views.rejections() == []
    assert await cn.hub.store.views.rejections() == []
    # CN's receipts as NZ holds them, from before and after, verify with what NZ trusts
    # for CN now; CN's own receipts with CN's own keys, old and new
    signers = set()
    for _, record in await nz.hub.store.views.outbound():
        assert record is not None
        signed = pb.SignedReceipt.FromString(record.signed_receipt)
        assert verify_receipt(signed, "CN", nz.hub.keys_for("CN")).outcome == 1
        signers.add(signed.signature.key_id)
    assert signers == {old_key_id, new_key_id}
    for message in await cn.hub.store.views.inbound():
        signed = pb.SignedReceipt.FromString(message.signed_receipt)
        verify_receipt(signed, "CN", cn.hub.keys_for("CN"))

    # years later: both trails' exports verify every message, under either key
    await fed.stop_all()  # a stopping hub signs a checkpoint of all it recorded
    for party in ("CN", "NZ"):
        folder = tmp_path / f"export-{party}"
        toml = str(fed.configs[party].path)
        assert await cli(["trail", "export", "--config", toml, "-o", str(folder)]) == 0
        vkey = str(own_pki / party / "trail.vkey")
        capsys.readouterr()
        code = await cli(["trail", "verify", str(folder), "--key", vkey, "--messages"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "OK: 7 messages match their leaves and their senders' signatures" in out, out
        exported = {p.name for p in (folder / "certificates" / "CN").glob("signing-*.pem")}
        assert len(exported) == 2  # CN's old and new certificates, configured or learned


async def _sent(hub: RunningHub, message_id: str) -> bytes:
    return {o.message_id: o.envelope for o, _ in await hub.hub.store.views.outbound()}[message_id]


async def _has(nz: RunningHub, at_nz: str, cn: RunningHub, at_cn: str) -> bool:
    """NZ received ``at_nz`` and CN received ``at_cn``, and both senders hold the receipts."""
    return (
        at_nz in await received_ids(nz)
        and at_cn in await received_ids(cn)
        and at_nz in await settled_ids(cn)
        and at_cn in await settled_ids(nz)
    )
