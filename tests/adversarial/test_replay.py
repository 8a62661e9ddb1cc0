"""Attacks with time and repetition (issue 14, family "replay"): envelopes outside their time
window, lifetimes longer than a receiver remembers ids for, the same message id over other
content, and copies of accepted messages. Refusals hold every post-condition
(tests/adversarial/conditions.py); a copy of what was accepted gets the first receipt back,
never a second acceptance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hub.cli.demo import sample_aeo_status
from hub.cli.pki import issue, write_cert
from hub.config import load_config
from hub.core.envelope import verify_receipt
from hub.core.signing import Signer
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from tests.adversarial.conditions import refused_with, still_serves_sg
from tests.conftest import Federation
from tests.test_exchange import as_partner, handed_over, nz_signing_key, signed_envelope

CASES = [
    (
        "expired",
        {"offset": -timedelta(days=8), "ttl": timedelta(days=7)},
        grpc.StatusCode.FAILED_PRECONDITION,
        "expired",
    ),
    (
        "dated two hours ahead",
        {"offset": timedelta(hours=2)},
        grpc.StatusCode.FAILED_PRECONDITION,
        "not-yet-valid",
    ),
    (
        "a lifetime of 60 days (receivers remember ids for 30)",
        {"ttl": timedelta(days=60)},
        grpc.StatusCode.FAILED_PRECONDITION,
        "lifetime-invalid",
    ),
]


@pytest.mark.parametrize(("case", "how", "status", "reason"), CASES, ids=[c[0] for c in CASES])
async def test_envelopes_outside_their_window_are_refused(
    federation: Federation,
    pki: Path,
    case: str,
    how: dict[str, object],
    status: grpc.StatusCode,
    reason: str,
    tmp_path: Path,
) -> None:
    if case == "expired":  # dated before the test PKI's certificates: NZ trusts an older one
        backdated(federation, pki, tmp_path)
    nz = await federation.start("NZ")
    data, _ = signed_envelope(pki, **how)  # type: ignore[arg-type]
    await refused_with(pki, nz, data, status, reason)


def backdated(federation: Federation, pki: Path, tmp_path: Path) -> None:
    """NZ configured with CN's signing certificate issued again for the same key 30 days
    back, so an envelope dated 8 days ago was signed within its validity and is refused for
    its window, not for its certificate (docs/adr/0008)."""
    folder = pki / "CN"
    ca_cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    public = Signer.from_pem((folder / "signing.key").read_bytes()).private_key.public_key()
    cert = issue(
        "CN", "hub message signing", public, ca_cert, ca_key,
        datetime.now(UTC) - timedelta(days=30), tls=False, validity=timedelta(days=60),
    )  # type: ignore[arg-type]  # fmt: skip
    write_cert(tmp_path / "cn-signing.pem", cert)
    path = federation.configs["NZ"].path
    text = path.read_text()
    assert str(folder / "signing.pem") in text
    path.write_text(text.replace(str(folder / "signing.pem"), str(tmp_path / "cn-signing.pem")))
    federation.configs["NZ"] = load_config(path)


async def test_a_copy_gets_the_first_receipt_and_other_content_is_a_conflict(
    federation: Federation, pki: Path
) -> None:
    nz = await federation.start("NZ")
    data, header = signed_envelope(pki)
    client = as_partner(pki, "CN", nz)
    try:
        original = await client.deliver("NZ", data, timeout=5)
        again = await client.deliver("NZ", data, timeout=5)
        [batch] = [await client.exchange("NZ", [data], timeout=5)]
        first = verify_receipt(original, "NZ", nz_signing_key(pki))
        # same id, other content: refused, not stored
        other, _ = signed_envelope(
            pki, document=sample_aeo_status("CN"), message_id=header.message_id
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.deliver("NZ", other, timeout=5)
    finally:
        await client.close()
    assert first.outcome == pb.RECEIPT_OUTCOME_ACCEPTED and first.message_id == header.message_id
    # the sender may have lost the first receipt: every resend gets exactly that one back
    assert again.SerializeToString() == original.SerializeToString()
    assert batch[0].SerializeToString() == original.SerializeToString()
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert len(await nz.hub.store.views.inbound()) == 1
    assert [r.reason for r in await nz.hub.store.views.rejections()] == ["message-id-conflict"]
    assert await handed_over(nz, seconds=1) == [header.message_id]


async def test_an_accepted_message_replayed_to_another_hub_is_refused(
    federation: Federation, pki: Path
) -> None:
    """What CN signed for NZ, replayed by anyone to SG, is addressed to NZ: refused."""
    nz = await federation.start("NZ")
    sg = await federation.start("SG")
    data, _ = signed_envelope(pki, recipient="NZ")
    cn = as_partner(pki, "CN", nz)
    try:
        await cn.deliver("NZ", data, timeout=5)
    finally:
        await cn.close()
    to_sg = as_partner(pki, "CN", sg)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await to_sg.deliver("SG", data, timeout=5)
    finally:
        await to_sg.close()
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await sg.hub.store.views.inbound() == []
    assert len(await nz.hub.store.views.inbound()) == 1


async def test_a_second_hub_on_the_same_ports_does_not_start(
    federation: Federation, pki: Path, tmp_path: Path
) -> None:
    """A second NZ with a store of its own, started on NZ's ports, would receive a share of
    partners' calls (gRPC's default SO_REUSEPORT) and accept again what NZ already accepted.
    It fails to start; every delivery and every resend reaches NZ alone."""
    from dataclasses import replace

    from hub.core.errors import ConfigError
    from hub.runtime import start_hub

    nz = await federation.start("NZ")
    data, header = signed_envelope(pki)
    cn = as_partner(pki, "CN", nz)
    try:
        original = await cn.deliver("NZ", data, timeout=5)
        twin_store = f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
        twin = replace(federation.configs["NZ"], store_url=twin_store)
        with pytest.raises(ConfigError) as info:
            await start_hub(twin)
        assert info.value.reason == "listen-failed"
        # one channel, several connections' worth of calls: all of them reach NZ
        again = [await cn.deliver("NZ", data, timeout=5) for _ in range(10)]
    finally:
        await cn.close()
    assert all(r.SerializeToString() == original.SerializeToString() for r in again)
    assert len(await nz.hub.store.views.inbound()) == 1
    assert not (tmp_path / "twin.db").exists() or await _empty(tmp_path / "twin.db")
    assert await handed_over(nz, seconds=1) == [header.message_id]
    await still_serves_sg(pki, nz, only_sg=False)


async def _empty(path: Path) -> bool:
    import sqlite3

    with sqlite3.connect(path) as db:
        tables = {n for (n,) in db.execute("select name from sqlite_master where type='table'")}
        return "inbound" not in tables or db.execute("select count(*) from inbound").fetchone() == (
            0,
        )
