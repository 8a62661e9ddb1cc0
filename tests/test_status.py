"""``customs-hub status`` (issue 16): per partner the last successful delivery, the queue and its
oldest entry, retries and dead letters; the trail and its latest checkpoint; the store (its
password masked); certificates expiring within 30 days. Read from real hubs' stores after real
traffic, by the command as operators run it; it never writes to the store."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.cli.crl import crl_path, issue_crl, write_crl
from hub.cli.demo import sample_declaration
from hub.cli.pki import init_federation
from hub.config import HubConfig
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.store import migrate
from hub.store.db import Store
from hub.store.engine import masked_url
from tests.conftest import Federation
from tests.test_delivery import fast_retries, submit_batch
from tests.test_exchange import eventually

CLI = [sys.executable, "-m", "hub.cli.main"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


async def status(config: Path) -> dict[str, Any]:
    done = await asyncio.to_thread(cli, "status", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def declaration_to(partner: str) -> spb.SubmitRequest:
    return spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=[partner])


async def test_status_after_traffic_shows_the_last_success_and_an_empty_queue(
    federation: Federation,
) -> None:
    config = federation.configs["CN"]
    federation.configs["CN"] = dataclasses.replace(config, checkpoint_seconds=0.2)
    cn = await federation.start("CN")
    await federation.start("NZ")
    before = datetime.now(UTC)
    await submit_batch(cn, [declaration_to("NZ")])

    async def delivered() -> bool:
        return any(r is not None for _, r in await cn.hub.store.views.outbound())

    await eventually(delivered)
    await eventually(lambda: cn.hub.store.trail.checkpoint_at())  # one is signed
    config = cn.config.path
    found = await status(config)
    partners = {p["partner"]: p for p in found["partners"]}
    nz = partners["NZ"]
    assert datetime.fromisoformat(nz["last_success"]) >= before - timedelta(seconds=1)
    assert nz["last_success"].endswith("Z")
    assert (nz["queued"], nz["retrying"], nz["dead"], nz["oldest_queued_age_seconds"]) == (
        0,
        0,
        0,
        None,
    )
    assert partners["SG"]["last_success"] is None  # configured, never sent to
    assert found["party"] == "CN" and found["schema"] == migrate.describe(migrate.head())
    assert found["store"]["kind"] in ("sqlite", "postgresql")
    assert found["trail"]["size"] >= 3  # translated/routed or queued, delivered ...
    checkpoint = found["trail"]["checkpoint"]
    assert checkpoint["size"] >= 1 and checkpoint["age_seconds"] >= 0
    assert {c["key"] for c in found["certificates"]} >= {
        "tls.cert",
        "tls.trust_anchor",
        "signing.cert",
        "partners.NZ.trust_anchor",
        "partners.NZ.signing_certs[0]",
    }
    assert {c["state"] for c in found["certificates"]} == {"ok"}
    text = await asyncio.to_thread(cli, "status", "--config", str(config))
    assert text.returncode == 0, text.stderr
    assert "PARTNER" in text.stdout and "LAST SUCCESS" in text.stdout
    line = next(x for x in text.stdout.splitlines() if x.startswith("NZ "))
    assert nz["last_success"][:19] in line and "never" not in line
    assert "valid for more than 30 days" in text.stdout


async def test_status_with_a_partner_down_shows_the_queue_and_its_age(
    federation: Federation,
) -> None:
    fast_retries(federation, "CN")
    cn = await federation.start("CN")  # NZ never starts
    await submit_batch(cn, [declaration_to("NZ"), declaration_to("NZ")])

    async def tried() -> bool:
        return all(e.attempts >= 1 for e in await cn.hub.store.views.outbox())

    await eventually(tried)
    await asyncio.sleep(0.2)
    found = await status(cn.config.path)
    nz = next(p for p in found["partners"] if p["partner"] == "NZ")
    assert nz["queued"] == 2 and nz["last_success"] is None and nz["dead"] == 0
    assert nz["oldest_queued_age_seconds"] > 0
    assert 0 <= nz["retrying"] <= 2
    text = await asyncio.to_thread(cli, "status", "--config", str(cn.config.path))
    line = next(x for x in text.stdout.splitlines() if x.startswith("NZ "))
    assert line.split()[1:3] == ["never", "2"]


def _partner_certificates_expiring(config: Path, pki: Path, folder: Path) -> None:
    """NZ's signing certificates in CN's config: one ending in 10 days, one 2 days ago."""
    now = datetime.now(UTC)
    certificate(folder / "soon.pem", "NZ signing soon", now + timedelta(days=10))
    certificate(folder / "gone.pem", "NZ signing gone", now - timedelta(days=2))
    text = config.read_text()
    old = f'signing_certs = ["{pki / "NZ" / "signing.pem"}"]'
    assert old in text
    config.write_text(
        text.replace(old, f'signing_certs = ["{folder / "soon.pem"}", "{folder / "gone.pem"}"]')
    )


def certificate(path: Path, subject: str, not_after: datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=400))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


async def test_status_flags_certificates_expiring_within_30_days_and_expired_ones(
    federation: Federation, tmp_path: Path
) -> None:
    config = federation.configs["CN"].path
    await asyncio.to_thread(_partner_certificates_expiring, config, federation.pki, tmp_path)
    store = Store(federation.configs["CN"].store_url)
    try:
        await store.prepare(create=True)  # the store the hub would have made
    finally:
        await store.close()
    found = await status(config)
    states = {c["key"]: (c["state"], c["subject"]) for c in found["certificates"]}
    assert states["partners.NZ.signing_certs[0]"] == ("expiring", "CN=NZ signing soon")
    assert states["partners.NZ.signing_certs[1]"] == ("expired", "CN=NZ signing gone")
    assert states["tls.cert"][0] == "ok"
    shown = await asyncio.to_thread(cli, "status", "--config", str(config))
    lines = shown.stdout.splitlines()
    assert any("partners.NZ.signing_certs[0]" in x and "EXPIRING" in x for x in lines)
    assert any("partners.NZ.signing_certs[1]" in x and "EXPIRED" in x for x in lines)
    assert not any(x.startswith("tls.cert") for x in lines)  # only what needs attention


async def test_status_never_creates_or_alters_the_store(federation: Federation) -> None:
    """A store that is missing or has no tables is one line and exit code 2, and is left as
    it was."""
    await asyncio.to_thread(_read_only, federation.configs["CN"])


def _read_only(config: HubConfig) -> None:
    db = Path(config.store_url.split("///", 1)[1]) if "sqlite" in config.store_url else None
    if db is None:  # the PostgreSQL database is there, and empty
        done = cli("status", "--config", str(config.path))
        assert done.returncode == 2 and done.stderr.count("\n") == 1
        assert "no hub tables yet" in done.stderr and "Traceback" not in done.stderr
        return
    done = cli("status", "--config", str(config.path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "does not exist" in done.stderr and not db.exists()
    sqlite3.connect(db).close()  # an empty file: no tables
    done = cli("status", "--config", str(config.path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "no hub tables yet" in done.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


def test_a_store_url_is_shown_without_its_password() -> None:
    shown = masked_url("postgresql+asyncpg://hub:s3cret@db.example:5432/hub")
    assert "s3cret" not in shown and shown.endswith("@db.example:5432/hub")


async def test_status_shows_revocation_lists_current_and_stale(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    await asyncio.to_thread(init_federation, pki, ["CN", "NZ", "SG"])
    federation = Federation(tmp_path / "hubs", pki)
    config = federation.configs["CN"].path
    store = Store(federation.configs["CN"].store_url)
    try:
        await store.prepare(create=True)
    finally:
        await store.close()
    found = await status(config)
    assert {c["party"]: c["state"] for c in found["revocation_lists"]} == {
        "CN": "current",
        "NZ": "current",
        "SG": "current",
    }
    shown = await asyncio.to_thread(cli, "status", "--config", str(config))
    assert "revocation lists: all 3 current" in shown.stdout
    # NZ's CA let its list run out ten days ago, with one certificate on it
    ca = x509.load_pem_x509_certificate((pki / "NZ" / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / "NZ" / "ca.key").read_bytes(), None)
    then = datetime.now(UTC) - timedelta(days=10)
    crl = issue_crl(ca, key, [12345], then, validity=timedelta(days=1))  # type: ignore[arg-type]
    write_crl(crl_path(pki, "NZ"), crl)
    found = await status(config)
    [nz] = [c for c in found["revocation_lists"] if c["party"] == "NZ"]
    assert (nz["state"], nz["revoked"], nz["when_stale"]) == ("stale", 1, "closed")
    shown = await asyncio.to_thread(cli, "status", "--config", str(config))
    [row] = [line for line in shown.stdout.splitlines() if str(crl_path(pki, "NZ")) in line]
    assert " NZ " in row and " STALE " in row and row.rstrip().endswith("closed")
