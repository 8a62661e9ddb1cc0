"""Rotating every key and certificate of two real hubs while messages flow (issue 17).

CN and NZ exchange AEO statuses both ways all along, while, one after the other: each hub's
TLS certificate and key are renewed; CN's signing key is renewed with an overlap in which NZ
accepts both; CN's administration rolls over to a new CA (new anchor, TLS and signing
certificates, revocation list), NZ trusting both CAs meanwhile; each hub hands its trail key
over to a new one. Each change is a file written and a reload, no restart. Nothing is lost
and nothing arrives twice; both trails verify from the verifier keys auditors were first
given. The auditors' token key rotates too (its own test).

Connections opened before a reload keep the TLS they had until the partner port ends them
(``limits.connection_max_age_seconds``); a separate test shows that bound at work.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.app.keys import read_anchors, read_ed25519_key, read_revocation, token_issuer
from hub.cli.main import main
from hub.cli.pki import (
    PartyFiles,
    init_federation,
    init_party,
    issue,
    new_trail_key,
    write_cert,
    write_key,
)
from hub.config import load_config
from hub.core.auth import TRAIL_READ
from hub.core.errors import ConfigError, TrustError
from hub.core.revocation import parse_crl
from hub.core.trust import PartnerTrust, check_issued_by
from hub.pb.customs_hub.v1 import audit_pb2 as apb
from hub.pb.customs_hub.v1 import audit_pb2_grpc as agrpc
from hub.rpc.status import REASON_KEY
from hub.runtime import RunningHub
from tests.conftest import PARTIES, Federation
from tests.test_reload import aeo_to

FAST = """[limits]
retry_initial_seconds = 0.2
retry_max_seconds = 1.0
poll_seconds = 0.2
connection_max_age_seconds = 2
connection_drain_seconds = 1
"""


@pytest.fixture
async def fed(tmp_path: Path) -> AsyncIterator[Federation]:
    """A federation with a PKI of its own (this test rewrites it), fast retries and a
    two-second connection age, on SQLite."""
    pki = tmp_path / "pki"
    init_federation(pki, PARTIES)
    federation = Federation(tmp_path / "hubs", pki)
    for party, config in federation.configs.items():
        config.path.write_text(config.path.read_text().replace("[limits]\n", FAST))
        federation.configs[party] = load_config(config.path)
    yield federation
    await federation.stop_all()


def replace(path: Path, data: bytes) -> None:
    """Written whole or not at all, as an operator's deployment tool would."""
    staging = path.with_name(path.name + ".new")
    staging.write_bytes(data)
    os.replace(staging, path)


def served_certificate(address: str, files: PartyFiles, anchor: Path) -> x509.Certificate:
    """The certificate a new TLS connection to ``address`` is shown, connecting with
    ``files``' client certificate and trusting ``anchor``."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(anchor))
    context.load_cert_chain(files.tls_cert, files.tls_key)
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def renew(files: PartyFiles, *, tls: bool) -> x509.Certificate:
    """A new key and certificate from the party's own CA, written over the old ones."""
    ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if tls else ed25519.Ed25519PrivateKey.generate()
    )
    role = "hub TLS (renewed)" if tls else "hub message signing (renewed)"
    now = datetime.now(UTC)
    cert = issue(files.party, role, key.public_key(), ca_cert, ca_key, now, tls=tls)
    cert_path, key_path = (
        (files.tls_cert, files.tls_key) if tls else (files.signing_cert, files.signing_key)
    )
    staging = key_path.with_name(key_path.name + ".new")
    write_key(staging, key)
    os.replace(staging, key_path)
    staged_cert = cert_path.with_name(cert_path.name + ".new")
    write_cert(staged_cert, cert)
    os.replace(staged_cert, cert_path)
    return cert


class Traffic:
    """AEO statuses CN -> NZ and NZ -> CN, one pair every 50 ms, until stopped."""

    def __init__(self, cn: RunningHub, nz: RunningHub) -> None:
        self.hubs = {"CN": (cn, "NZ"), "NZ": (nz, "CN")}
        self.sent: dict[str, list[str]] = {"CN": [], "NZ": []}
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            for party, (running, partner) in self.hubs.items():
                self.sent[party].append(await aeo_to(running, partner, f"{party}AEO{n}"))
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.05)

    async def pause(self, seconds: float) -> None:
        """Let some traffic pass (and fail loudly if the pump died)."""
        await asyncio.sleep(seconds)
        if self._task.done():
            self._task.result()

    async def stop(self) -> None:
        self._stop.set()
        await self._task


async def inbound_ids(running: RunningHub) -> list[str]:
    return [m.message_id for m in await running.hub.store.views.inbound()]


async def everything_arrived(traffic: Traffic, cn: RunningHub, nz: RunningHub) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        at_nz, at_cn = await inbound_ids(nz), await inbound_ids(cn)
        if set(traffic.sent["CN"]) <= set(at_nz) and set(traffic.sent["NZ"]) <= set(at_cn):
            break
        if asyncio.get_running_loop().time() > deadline:
            missing = len(set(traffic.sent["CN"]) - set(at_nz)) + len(
                set(traffic.sent["NZ"]) - set(at_cn)
            )
            states = [
                (e.state, e.last_error, e.dead_reason)
                for running in (cn, nz)
                for e in await running.hub.store.views.outbox()
            ]
            raise AssertionError(f"{missing} messages not delivered within 60 s: {states}")
        await asyncio.sleep(0.2)
    # each exactly once: what arrived is what was sent, no more
    assert sorted(at_nz) == sorted(traffic.sent["CN"])
    assert sorted(at_cn) == sorted(traffic.sent["NZ"])
    for running in (cn, nz):
        assert not [e for e in await running.hub.store.views.outbox() if e.state == "queued"]


async def trail_verifies(federation: Federation, party: str, tmp_path: Path) -> str:
    """What `trail verify` of the party's export said (it said OK)."""
    toml = str(federation.configs[party].path)
    folder = tmp_path / f"export-{party}"
    assert (
        await asyncio.to_thread(main, ["trail", "export", "--config", toml, "-o", str(folder)]) == 0
    )
    vkey = str(federation.pki / party / "trail.vkey")
    argv = ["trail", "verify", str(folder), "--key", vkey, "--messages"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = await asyncio.to_thread(main, argv)
    assert code == 0, out.getvalue()
    return out.getvalue()


async def test_every_certificate_and_key_rotates_while_messages_flow(
    fed: Federation, tmp_path: Path
) -> None:
    cn, nz = await fed.start("CN"), await fed.start("NZ")
    files = {p: PartyFiles.at(fed.pki, p) for p in ("CN", "NZ")}
    traffic = Traffic(cn, nz)
    await traffic.pause(1.0)

    # 1. Each hub's TLS certificate and key, renewed from its CA: new connections see it
    for party, running in (("CN", cn), ("NZ", nz)):
        old = served_certificate(
            running.config.listen, files["NZ" if party == "CN" else "CN"], files[party].ca_cert
        )
        new = renew(files[party], tls=True)
        change = await running.reload()
        assert change.recorded
        seen = served_certificate(
            running.config.listen, files["NZ" if party == "CN" else "CN"], files[party].ca_cert
        )
        assert seen.serial_number == new.serial_number != old.serial_number
        await traffic.pause(1.0)

    # 2. CN's signing key, with an overlap: NZ accepts the old and the new certificate, CN
    # switches, and once CN's queue holds nothing signed with the old key NZ lets it go
    old_signing = fed.pki / "CN" / "signing-old.pem"
    old_signing.write_bytes(files["CN"].signing_cert.read_bytes())
    nz_toml = fed.configs["NZ"].path
    listed = f'signing_certs = ["{files["CN"].signing_cert}"]'
    assert listed in nz_toml.read_text()
    nz_toml.write_text(
        nz_toml.read_text().replace(
            listed, f'signing_certs = ["{old_signing}", "{files["CN"].signing_cert}"]'
        )
    )
    renew(files["CN"], tls=False)
    assert (await nz.reload()).recorded
    assert (await cn.reload()).recorded
    await traffic.pause(1.0)
    nz_toml.write_text(nz_toml.read_text().replace(f'"{old_signing}", ', ""))
    await everything_arrived_so_far(traffic, cn, nz)
    assert (await nz.reload()).recorded
    await traffic.pause(1.0)

    # 3. CN's administration rolls over to a new CA: anchor, TLS and signing certificates and
    # revocation list. NZ first trusts both CAs (one anchor file holding the two), both
    # signing certificates and both lists; CN switches to everything new; once what was sent
    # under the old CA has settled both ways, NZ lets the old CA go.
    cn_dir, staging = fed.pki / "CN", tmp_path / "new-ca"
    init_party(staging, "CN")
    kept = {name: (cn_dir / name).read_bytes() for name in ("ca.pem", "signing.pem", "crl.pem")}
    (cn_dir / "old-ca.pem").write_bytes(kept["ca.pem"])
    (cn_dir / "old-signing.pem").write_bytes(kept["signing.pem"])
    (cn_dir / "old-crl.pem").write_bytes(kept["crl.pem"])
    (cn_dir / "both-ca.pem").write_bytes(kept["ca.pem"] + (staging / "CN" / "ca.pem").read_bytes())
    single = nz_toml.read_text()
    paths = {name: f'"{cn_dir / name}"' for name in ("ca.pem", "signing.pem", "crl.pem")}
    overlap = (
        single.replace(
            f"trust_anchor = {paths['ca.pem']}", f'trust_anchor = "{cn_dir / "both-ca.pem"}"'
        )
        .replace(
            f"signing_certs = [{paths['signing.pem']}]",
            f'signing_certs = ["{cn_dir / "old-signing.pem"}", {paths["signing.pem"]}]',
        )
        .replace(
            f"crls = [{paths['crl.pem']}]",
            f'crls = ["{cn_dir / "old-crl.pem"}", {paths["crl.pem"]}]',
        )
    )
    assert overlap.count("both-ca.pem") == 1 and overlap.count("old-") == 2
    # the new files go in place for CN (NZ reads its overlap from the copies)
    for name in ("ca.pem", "ca.key", "tls.pem", "tls.key", "signing.pem", "signing.key", "crl.pem"):
        replace(cn_dir / name, (staging / "CN" / name).read_bytes())
    nz_toml.write_text(overlap)
    assert (await nz.reload()).recorded
    await traffic.pause(1.0)
    assert (await cn.reload()).recorded
    new_ca = x509.load_pem_x509_certificate((cn_dir / "ca.pem").read_bytes())
    seen = served_certificate(cn.config.listen, files["NZ"], cn_dir / "ca.pem")
    assert seen.issuer == new_ca.subject
    await traffic.pause(2.0)
    await everything_arrived_so_far(traffic, cn, nz)
    nz_toml.write_text(single)  # the old CA, its list and CN's old signing certificate go
    assert (await nz.reload()).recorded
    await traffic.pause(2.0)

    # 4. Each hub's trail key, handed over: the old key signs a checkpoint naming the new one,
    # which co-signs it; auditors' old verifier keys go on verifying (checked below)
    for party, running in (("CN", cn), ("NZ", nz)):
        toml = fed.configs[party].path
        old_key = fed.pki / party / "trail.key"
        new_key = fed.pki / party / "trail-2.key"
        new_trail_key(new_key, party)
        named = f'key = "{old_key}"'
        assert named in toml.read_text()
        toml.write_text(
            toml.read_text().replace(named, f'key = "{new_key}"\nprevious_key = "{old_key}"')
        )
        assert (await running.reload()).recorded
        await traffic.pause(1.0)

    await traffic.stop()
    await everything_arrived(traffic, cn, nz)
    assert len(traffic.sent["CN"]) > 50  # messages did flow all along
    for party in ("CN", "NZ"):  # from the verifier key auditors were first given
        assert "trail keys followed" in await trail_verifies(fed, party, tmp_path)
    # the first message CN sent, signed under the CA and key both since replaced, is still
    # evidence: NZ exports it from what its store remembers, and it verifies offline
    first = traffic.sent["CN"][0]
    bundle = tmp_path / "first.evidence"
    nz_config = str(fed.configs["NZ"].path)
    export = ["evidence", "export", "--config", nz_config, "--message-id", first, "-o", str(bundle)]
    assert await asyncio.to_thread(main, export) == 0
    check = [
        "evidence", "verify", str(bundle), "--anchor", str(cn_dir / "old-ca.pem"),
        "--trail-vkey", str(fed.pki / "NZ" / "trail.vkey"),
    ]  # fmt: skip
    assert await asyncio.to_thread(main, check) == 0


async def everything_arrived_so_far(traffic: Traffic, cn: RunningHub, nz: RunningHub) -> None:
    """What was sent before now has arrived (traffic goes on)."""
    sent = {p: list(ids) for p, ids in traffic.sent.items()}
    deadline = asyncio.get_running_loop().time() + 30
    while not (
        set(sent["CN"]) <= set(await inbound_ids(nz))
        and set(sent["NZ"]) <= set(await inbound_ids(cn))
    ):
        assert asyncio.get_running_loop().time() < deadline, "not delivered within 30 s"
        await asyncio.sleep(0.2)


async def test_connections_opened_before_a_reload_are_ended_within_the_bound(
    fed: Federation,
) -> None:
    """A partner's connection does not keep the old TLS for ever: the partner port ends it
    after ``connection_max_age_seconds`` plus the drain time, and the client's next call
    connects anew and is shown the renewed certificate."""
    cn = await fed.start("CN")
    files = PartyFiles.at(fed.pki, "NZ")
    credentials = grpc.ssl_channel_credentials(
        (fed.pki / "CN" / "ca.pem").read_bytes(),
        files.tls_key.read_bytes(),
        files.tls_cert.read_bytes(),
    )
    async with grpc.aio.secure_channel(cn.config.listen, credentials) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert channel.get_state() == grpc.ChannelConnectivity.READY
        renew(PartyFiles.at(fed.pki, "CN"), tls=True)
        await cn.reload()
        # age 2 s, drain 1 s: by 5 s the connection from before the reload is gone
        deadline = asyncio.get_running_loop().time() + 5
        while channel.get_state() == grpc.ChannelConnectivity.READY:
            assert asyncio.get_running_loop().time() < deadline, "connection outlived its age"
            await asyncio.sleep(0.1)
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_trust_anchor_file_may_hold_a_ca_and_its_successor(tmp_path: Path) -> None:
    """During a CA rollover a partner's anchor file holds the old CA and the new one (which
    share a subject name): certificates and revocation lists of either are accepted, those of
    any other CA with the same name are not, and more than four anchors are refused."""
    old, new, rogue = (init_party(tmp_path / name, "CN") for name in ("old", "new", "rogue"))
    now = datetime.now(UTC)

    def cert(path: Path) -> x509.Certificate:
        return x509.load_pem_x509_certificate(path.read_bytes())

    assert cert(old.ca_cert).subject == cert(new.ca_cert).subject == cert(rogue.ca_cert).subject
    bundle = tmp_path / "both.pem"
    bundle.write_bytes(old.ca_cert.read_bytes() + new.ca_cert.read_bytes())
    anchors = read_anchors(bundle, "trust anchor of CN")
    trust = PartnerTrust.build("CN", anchors, [cert(old.signing_cert), cert(new.signing_cert)], now)
    assert len(trust.signing_keys) == 2
    for files in (old, new):
        check_issued_by(cert(files.tls_cert), trust.anchors, now)
        parse_crl((files.ca_cert.parent / "crl.pem").read_bytes(), anchors, "crl")
    with pytest.raises(TrustError) as refused:
        check_issued_by(cert(rogue.tls_cert), trust.anchors, now)
    assert refused.value.reason == "untrusted-issuer"
    with pytest.raises(ConfigError, match="does not verify with the trust anchor"):
        parse_crl((rogue.ca_cert.parent / "crl.pem").read_bytes(), anchors, "crl")
    bundle.write_bytes(old.ca_cert.read_bytes() * 5)
    with pytest.raises(ConfigError, match="holds 5 certificates; at most 4"):
        read_anchors(bundle, "trust anchor of CN")


async def test_the_audit_token_key_rotates_with_an_overlap(fed: Federation) -> None:
    """A new audit key and the old one under ``audit.previous_token_keys``: after a reload
    tokens of either are accepted; with the old one taken out, its tokens are refused as
    signed by no key of this hub, and the new key's still work."""
    cn = await fed.start("CN")
    toml = fed.configs["CN"].path
    old_key = fed.pki / "CN" / "audit.key"
    old_token = token_issuer(load_config(toml)).issue("auditor", [TRAIL_READ], timedelta(hours=1))
    kept = fed.pki / "CN" / "audit-old.pub"
    kept.write_bytes(
        read_ed25519_key(old_key, "audit key")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    write_key(fed.pki / "CN" / "audit-new.key", ed25519.Ed25519PrivateKey.generate())
    single = toml.read_text()
    named = f'token_key = "{old_key}"'
    assert named in single
    rotated = single.replace(
        named, f'token_key = "{fed.pki / "CN" / "audit-new.key"}"\nprevious_token_keys = ["{kept}"]'
    )
    credentials = grpc.ssl_channel_credentials((fed.pki / "CN" / "ca.pem").read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{cn.audit_port}", credentials) as channel:
        stub = agrpc.AuditStub(channel)

        async def asks(token: str) -> str:
            """ "in" when the token got the caller past authentication, else why not."""
            auth = [("authorization", f"Bearer {token}")]
            call = stub.GetCheckpoint(apb.GetCheckpointRequest(), metadata=auth, timeout=5)
            # NOT_FOUND while no checkpoint is signed yet: the token was accepted
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call
            if await call.code() != grpc.StatusCode.UNAUTHENTICATED:
                return "in"
            return str(dict(await call.trailing_metadata() or ())[REASON_KEY])

        assert await asks(old_token) == "in"
        toml.write_text(rotated)
        change = await cn.reload()
        assert change.own_keys and change.recorded
        new_token = token_issuer(load_config(toml)).issue(
            "auditor", [TRAIL_READ], timedelta(hours=1)
        )
        assert new_token != old_token
        assert await asks(old_token) == "in"  # the overlap
        assert await asks(new_token) == "in"
        toml.write_text(rotated.replace(f'\nprevious_token_keys = ["{kept}"]', ""))
        await cn.reload()
        assert await asks(old_token) == "token-signature"
        assert await asks(new_token) == "in"


def test_a_trust_anchor_file_holds_ca_certificates_only(tmp_path: Path) -> None:
    """A leaf pasted into an anchor file (or a certificate that may not issue) would vouch
    for the party like its CA: the file is refused, naming the certificate."""
    files = init_party(tmp_path / "pki", "CN")
    bundle = tmp_path / "anchors.pem"
    bundle.write_bytes(files.ca_cert.read_bytes() + files.tls_cert.read_bytes())
    with pytest.raises(ConfigError, match=r"certificate 2 of the trust anchor .* is not a CA"):
        read_anchors(bundle, "trust anchor")
    bundle.write_bytes(files.ca_cert.read_bytes())
    assert len(read_anchors(bundle, "trust anchor")) == 1


def test_while_a_ca_rolls_over_each_of_its_cas_needs_its_revocation_list(fed: Federation) -> None:
    """An anchor file with two CAs and CRLs for only one: the other CA's certificates would be
    checked against nothing, so the configuration is refused, naming the CA without a list."""
    cn_dir = fed.pki / "CN"
    new = init_party(fed.root / "new-ca", "CN")
    (cn_dir / "both-ca.pem").write_bytes(
        (cn_dir / "ca.pem").read_bytes() + new.ca_cert.read_bytes()
    )
    new_crl = fed.root / "new-ca" / "CN" / "crl.pem"
    toml = fed.configs["NZ"].path
    single = toml.read_text()
    both = single.replace(
        f'trust_anchor = "{cn_dir / "ca.pem"}"', f'trust_anchor = "{cn_dir / "both-ca.pem"}"'
    )
    assert both != single
    toml.write_text(both)
    with pytest.raises(ConfigError, match="none of the revocation lists is issued by anchor 2"):
        read_revocation(load_config(toml))
    listed = f'crls = ["{cn_dir / "crl.pem"}"]'
    assert listed in both
    toml.write_text(both.replace(listed, f'crls = ["{cn_dir / "crl.pem"}", "{new_crl}"]'))
    assert "CN" in read_revocation(load_config(toml)).anchors
