"""Revocation while hubs run (hub/core/revocation.py, hub/app/revocation.py), over real mTLS on
loopback: a partner whose TLS certificate its CA revokes is refused on its next call and the
others are still served; an envelope signed with a revoked signing certificate is refused and
nothing is stored; a CRL its anchor did not sign is refused at load (and, while running, keeps
the lists in use); a stale CRL fails closed by default and open when configured; an auditor's
token on the deny-list is refused once the file changes, while another token works.

Each test has a PKI of its own (revoking in the session's would touch every other test)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub.app import keys
from hub.app.keys import token_issuer
from hub.cli.crl import crl_path, issue_crl, revoke, write_crl
from hub.cli.main import main
from hub.cli.pki import init_federation
from hub.config import load_config
from hub.core.auth import TRAIL_READ
from hub.core.envelope import verify_receipt
from hub.core.errors import REASON_KEY, ConfigError, TrustError
from hub.core.revocation import AnchorRevocation, parse_crl, parse_token_ids
from hub.pb.customs_hub.v1 import audit_pb2 as apb
from hub.pb.customs_hub.v1 import audit_pb2_grpc as agrpc
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.runtime import RunningHub
from hub.trail import events as trail
from tests.conftest import PARTIES, Federation
from tests.test_exchange import (
    as_partner,
    eventually,
    handed_over,
    nz_signing_key,
    signed_envelope,
)

CHECK_SECONDS = 0.1  # how often the hubs look at their revocation files here


@pytest.fixture
def own_pki(tmp_path: Path) -> Path:
    root = tmp_path / "pki"
    init_federation(root, list(PARTIES))
    return root


@pytest.fixture
async def fed(tmp_path: Path, own_pki: Path):  # type: ignore[no-untyped-def]
    federation = Federation(tmp_path / "hubs", own_pki)
    for party in PARTIES:
        quick(federation, party)
    yield federation
    await federation.stop_all()


def quick(federation: Federation, party: str) -> None:
    config = federation.configs[party]
    federation.configs[party] = dataclasses.replace(
        config,
        limits=dataclasses.replace(config.limits, revocation_check_seconds=CHECK_SECONDS),
    )


def serial_of(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def ca_of(pki: Path, party: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((pki / party / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / party / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


async def deliver_as(
    pki: Path, party: str, target: RunningHub, data: bytes
) -> pb.SignedReceipt | grpc.aio.AioRpcError:
    """Deliver ``data`` with ``party``'s TLS certificate: the receipt, or the refusal."""
    client = as_partner(pki, party, target)
    try:
        return await client.deliver(target.config.party, data, timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc
    finally:
        await client.close()


def reason_of(error: grpc.aio.AioRpcError) -> str:
    return dict(error.trailing_metadata() or ()).get(REASON_KEY, "")


async def revoked_in(running: RunningHub, party: str, serial: int) -> bool:
    anchor = running.hub.revocation.anchors.get(party)
    return anchor is not None and any(serial in crl.serials for crl in anchor.crls)


async def test_a_partner_revoked_while_the_hub_runs_is_refused_on_its_next_call(
    fed: Federation, own_pki: Path
) -> None:
    nz = await fed.start("NZ")
    first, _ = signed_envelope(own_pki, "CN")
    assert isinstance(await deliver_as(own_pki, "CN", nz, first), pb.SignedReceipt)

    # CN's CA revokes CN's TLS certificate with the CLI; NZ's hub is not told, it looks
    serial = serial_of(own_pki / "CN" / "tls.pem")
    assert (
        main(["trust", "revoke", "--pki", str(own_pki), "--party", "CN", "--serial", hex(serial)])
        == 0
    )
    await eventually(lambda: revoked_in(nz, "CN", serial))

    second, _ = signed_envelope(own_pki, "CN")
    refusal = await deliver_as(own_pki, "CN", nz, second)
    assert isinstance(refusal, grpc.aio.AioRpcError)
    assert refusal.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(refusal) == "certificate-revoked"
    # others are still served
    from_sg, _ = signed_envelope(own_pki, "SG", sender="SG")
    assert isinstance(await deliver_as(own_pki, "SG", nz, from_sg), pb.SignedReceipt)
    # the refusal is recorded, and nothing of CN's second envelope is stored
    rejections = await nz.hub.store.views.rejections(source="CN")
    assert [r.reason for r in rejections] == ["certificate-revoked"]
    assert sorted(m.sender for m in await nz.hub.store.views.inbound()) == ["CN", "SG"]
    # the new list is a change of trust, in the trail with the digest of what NZ trusts now
    changes = [
        e
        for e in map(trail.decode, await nz.hub.store.trail.leaves())
        if e.kind == "config-changed"
    ]
    assert changes[-1].detail == "revocation lists re-read for hub.toml"
    assert changes[-1].config_digest == nz.hub.audit.config_digest() != changes[0].config_digest


async def test_an_envelope_signed_with_a_revoked_signing_certificate_is_refused(
    fed: Federation, own_pki: Path
) -> None:
    nz = await fed.start("NZ")
    serial = serial_of(own_pki / "CN" / "signing.pem")
    revoke(own_pki, "CN", [serial])
    await eventually(lambda: revoked_in(nz, "CN", serial))

    data, header = signed_envelope(own_pki, "CN")
    refusal = await deliver_as(own_pki, "CN", nz, data)  # CN's TLS certificate is still good
    assert isinstance(refusal, grpc.aio.AioRpcError)
    assert refusal.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(refusal) == "certificate-revoked"
    # the same over an Exchange stream: a REJECTED receipt saying why, signed by NZ
    client = as_partner(own_pki, "CN", nz)
    try:
        [receipt] = await client.exchange("NZ", [signed_envelope(own_pki, "CN")[0]], timeout=5)
    finally:
        await client.close()
    answered = verify_receipt(receipt, "NZ", nz_signing_key(own_pki))
    assert answered.outcome == pb.RECEIPT_OUTCOME_REJECTED
    assert answered.reason == "certificate-revoked"
    # nothing stored or handed on; both refusals recorded with the reason
    assert await nz.hub.store.views.inbound() == []
    assert await handed_over(nz) == []
    rejections = await nz.hub.store.views.rejections(source="CN")
    assert [r.reason for r in rejections] == ["certificate-revoked"] * 2
    assert rejections[0].message_id == header.message_id


def forged_crl(pki: Path, party: str, by: str, serials: list[int], *, named: bool) -> bytes:
    """A CRL revoking ``serials`` signed by ``by``'s CA key: issued in ``party``'s CA's name
    (``named``) or in ``by``'s own."""
    cert, _ = ca_of(pki, party if named else by)
    _, key = ca_of(pki, by)
    crl = issue_crl(cert, key, serials, datetime.now(UTC))
    return crl.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("named", [True, False], ids=["in-its-name", "another-issuer"])
async def test_a_crl_its_anchor_did_not_sign_is_refused_at_load_and_while_running(
    fed: Federation, own_pki: Path, named: bool
) -> None:
    tls_serial = serial_of(own_pki / "CN" / "tls.pem")
    path = crl_path(own_pki, "CN")
    good = path.read_bytes()
    path.write_bytes(forged_crl(own_pki, "CN", "SG", [tls_serial], named=named))
    # at load: the config check and a start refuse it, naming the file
    problems = keys.check(fed.configs["NZ"])
    assert len(problems) == 1 and f"partners.CN.crls: {path}" in problems[0], problems
    with pytest.raises(ConfigError) as refused:
        await fed.start("NZ")
    assert str(path) in refused.value.message
    anchor, _ = ca_of(own_pki, "CN")
    with pytest.raises(ConfigError):
        parse_crl(path.read_bytes(), anchor, str(path))

    # while running: a forged list replacing a good one is refused, the good one stays
    path.write_bytes(good)
    nz = await fed.start("NZ")
    stamps = dict(nz.hub.revocation.stamps)
    path.write_bytes(forged_crl(own_pki, "CN", "SG", [tls_serial], named=named))
    await eventually(lambda: nz.hub.revocation_watch._refused)
    assert dict(nz.hub.revocation.stamps) == stamps
    data, _ = signed_envelope(own_pki, "CN")
    assert isinstance(await deliver_as(own_pki, "CN", nz, data), pb.SignedReceipt)


def stale_crl(pki: Path, party: str) -> None:
    """``party``'s CRL, empty, issued ten days ago and current for one."""
    cert, key = ca_of(pki, party)
    then = datetime.now(UTC) - timedelta(days=10)
    write_crl(crl_path(pki, party), issue_crl(cert, key, [], then, validity=timedelta(days=1)))


async def test_a_stale_crl_fails_closed_by_default(
    fed: Federation, own_pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stale_crl(own_pki, "CN")
    nz = await fed.start("NZ")  # a stale list does not stop the hub: it refuses CN
    data, _ = signed_envelope(own_pki, "CN")
    refusal = await deliver_as(own_pki, "CN", nz, data)
    assert isinstance(refusal, grpc.aio.AioRpcError)
    assert refusal.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(refusal) == "crl-stale"
    assert await nz.hub.store.views.inbound() == []
    await eventually(lambda: "is stale since" in caplog.text)
    assert "crl_stale = closed" in caplog.text
    # a current list mends it, without a restart
    revoke(own_pki, "CN", [])
    await eventually(lambda: not nz.hub.revocation.stale(datetime.now(UTC)))
    assert isinstance(await deliver_as(own_pki, "CN", nz, data), pb.SignedReceipt)


async def test_a_stale_crl_fails_open_when_configured(
    fed: Federation, own_pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stale_crl(own_pki, "CN")
    path = fed.configs["NZ"].path
    cn_crl = f'crls = ["{crl_path(own_pki, "CN")}"]'
    text = path.read_text()
    assert text.count(cn_crl) == 1
    path.write_text(text.replace(cn_crl, cn_crl + '\ncrl_stale = "open"'))
    fed.configs["NZ"] = load_config(path)
    quick(fed, "NZ")
    assert fed.configs["NZ"].partners["CN"].crl_stale == "open"
    nz = await fed.start("NZ")
    data, _ = signed_envelope(own_pki, "CN")
    assert isinstance(await deliver_as(own_pki, "CN", nz, data), pb.SignedReceipt)
    await eventually(lambda: "still accepted (crl_stale = open)" in caplog.text)
    # open is about staleness only: a revoked certificate is still refused
    revoke(own_pki, "CN", [serial_of(own_pki / "CN" / "signing.pem")])
    serial = serial_of(own_pki / "CN" / "signing.pem")
    await eventually(lambda: revoked_in(nz, "CN", serial))
    refusal = await deliver_as(own_pki, "CN", nz, signed_envelope(own_pki, "CN")[0])
    assert isinstance(refusal, grpc.aio.AioRpcError)
    assert reason_of(refusal) == "certificate-revoked"


async def test_a_revoked_token_is_refused_once_the_deny_list_changes(
    fed: Federation, own_pki: Path
) -> None:
    path = fed.configs["CN"].path
    deny = path.parent / "revoked-tokens.txt"
    deny.write_text("# revoked auditors' tokens, one jti a line\n")
    text = path.read_text()
    path.write_text(text.replace("[audit]\n", f'[audit]\nrevoked_tokens = "{deny.name}"\n', 1))
    fed.configs["CN"] = load_config(path)
    quick(fed, "CN")
    cn = await fed.start("CN")
    issuer = token_issuer(cn.config)
    kept, lost = (issuer.issue(who, [TRAIL_READ], timedelta(hours=1)) for who in ("a", "b"))
    credentials = grpc.ssl_channel_credentials((own_pki / "CN" / "ca.pem").read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{cn.audit_port}", credentials) as channel:
        stub = agrpc.AuditStub(channel)

        async def query(token: str) -> grpc.aio.AioRpcError | None:
            try:
                await stub.Query(
                    apb.QueryRequest(), metadata=[("authorization", f"Bearer {token}")]
                )
            except grpc.aio.AioRpcError as exc:
                return exc
            return None

        assert await query(kept) is None and await query(lost) is None
        jti = jwt.decode(lost, options={"verify_signature": False})["jti"]
        assert main(["token", "revoke", "--config", str(path), "--jti", jti]) == 0
        assert jti in deny.read_text().splitlines()
        refusal = await eventually(lambda: query(lost))
        assert refusal.code() == grpc.StatusCode.UNAUTHENTICATED
        assert reason_of(refusal) == "token-revoked"
        assert await query(kept) is None


async def test_an_open_exchange_stream_takes_no_frame_after_its_certificate_is_revoked(
    fed: Federation, own_pki: Path
) -> None:
    nz = await fed.start("NZ")
    client = as_partner(own_pki, "CN", nz)
    try:
        call = client.open_exchange("NZ")
        await call.write(pb.EnvelopeBatch(envelopes=[signed_envelope(own_pki, "CN")[0]]))
        first = await call.read()
        [receipt] = first.receipts
        accepted = verify_receipt(receipt, "NZ", nz_signing_key(own_pki))
        assert accepted.outcome == pb.RECEIPT_OUTCOME_ACCEPTED
        serial = serial_of(own_pki / "CN" / "tls.pem")
        revoke(own_pki, "CN", [serial])
        await eventually(lambda: revoked_in(nz, "CN", serial))
        await call.write(pb.EnvelopeBatch(envelopes=[signed_envelope(own_pki, "CN")[0]]))
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await call.read()
        assert ended.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert reason_of(ended.value) == "certificate-revoked"
    finally:
        await client.close()
    assert len(await nz.hub.store.views.inbound()) == 1  # the frame before, only


# --- the pure core, data-driven ------------------------------------------------------------


def test_parse_crl_takes_pem_and_der_and_refuses_what_is_not_its_anchors(own_pki: Path) -> None:
    cn_ca, cn_key = ca_of(own_pki, "CN")
    crl = issue_crl(cn_ca, cn_key, [7, 9], datetime.now(UTC))
    for encoding in (serialization.Encoding.PEM, serialization.Encoding.DER):
        parsed = parse_crl(crl.public_bytes(encoding), cn_ca, "crl")
        assert parsed.serials == {7, 9}
    sg_ca, _ = ca_of(own_pki, "SG")
    refused = {
        "not a CRL": (b"-----BEGIN X509 CRL-----\nnope\n", cn_ca),
        "another anchor": (crl.public_bytes(serialization.Encoding.PEM), sg_ca),
        "too large": (b"\0" * (2 * 1024 * 1024), cn_ca),
    }
    for what, (data, anchor) in refused.items():
        with pytest.raises(ConfigError) as caught:
            parse_crl(data, anchor, "the-file.pem")
        assert caught.value.message.startswith("the-file.pem: "), what


def test_revoked_wins_over_stale_and_open_only_forgives_staleness(own_pki: Path) -> None:
    cn_ca, cn_key = ca_of(own_pki, "CN")
    then = datetime.now(UTC) - timedelta(days=10)
    stale = parse_crl(
        issue_crl(cn_ca, cn_key, [5], then, validity=timedelta(days=1)).public_bytes(
            serialization.Encoding.PEM
        ),
        cn_ca,
        "crl",
    )
    now = datetime.now(UTC)
    cases = [  # policy, serial, reason refused with ("" = usable)
        ("closed", 5, "certificate-revoked"),
        ("closed", 6, "crl-stale"),
        ("open", 5, "certificate-revoked"),
        ("open", 6, ""),
    ]
    for policy, serial, reason in cases:
        anchor = AnchorRevocation("CN", (stale,), policy)
        try:
            anchor.check(serial, "certificate", now)
            found = ""
        except TrustError as exc:
            found = exc.reason
        assert found == reason, (policy, serial)


def test_the_token_deny_list_is_one_id_a_line() -> None:
    text = "# revoked\n\n  abc  \ndef\n#ghi\n"
    assert parse_token_ids(text, "f") == {"abc", "def"}


def test_an_unknown_stale_policy_is_refused(fed: Federation) -> None:
    path = fed.configs["NZ"].path
    path.write_text(path.read_text().replace("[tls]\n", '[tls]\ncrl_stale = "maybe"\n', 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "tls.crl_stale" in caught.value.message
