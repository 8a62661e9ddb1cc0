"""Revocation in operation (docs/adr/0009), over real mTLS hubs on loopback: lists fetched from
a distribution point served by a real HTTP server on 127.0.0.1 (a newer list revokes a partner
at once; one signed by another CA, an older one, garbage, too many bytes or a server too slow
are kept out, with a log line, and the list in force stays); a partner whose signing or TLS
server certificate is revoked gets nothing, its messages kept queued and the stop shown by
`customs-hub status`, until a new certificate and a reload let delivery go on; the others are
served meanwhile.

Each test has a PKI of its own, whose certificates name the test's HTTP server as their CRL
distribution point (``pki init --crl-url``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from hub.app import keys
from hub.app.crlfetch import REJECTION_SOURCE, read_outcome
from hub.app.revocation import STOP_SOURCE
from hub.cli.crl import crl_path, issue_crl, revoke
from hub.cli.pki import init_federation, issue, make_ca, write_cert, write_key
from hub.config import load_config
from hub.core.errors import ConfigError
from hub.core.revocation import MAX_CRL_BYTES
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.runtime import RunningHub
from tests.conftest import PARTIES, Federation, free_port
from tests.test_delivery import aeo_requests, submit_batch
from tests.test_exchange import eventually, signed_envelope
from tests.test_revocation import ca_of, deliver_as, reason_of, revoked_in, serial_of
from tests.test_status import cli, status

QUICK = {
    "revocation_check_seconds": 0.1,
    "crl_fetch_seconds": 0.2,
    "crl_fetch_timeout_seconds": 0.5,
    "retry_initial_seconds": 0.2,
    "retry_max_seconds": 1.0,
    "poll_seconds": 0.2,
}


class CrlServer:
    """An HTTP server on 127.0.0.1 that answers every GET with ``body`` (after ``delay``
    seconds), counting the requests."""

    def __init__(self) -> None:
        self.body, self.delay, self.hits = b"", 0.0, 0
        self.trickle = False  # the body one byte at a time, each a fifth of a second apart
        self.closed = threading.Event()
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.hits += 1
                time.sleep(served.delay)
                body = served.body
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the hub gave up on a slow answer
                    if not served.trickle:
                        self.wfile.write(body)
                    for byte in body if served.trickle else b"":
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        if served.closed.wait(0.2):
                            break

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, party: str = "{party}") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{party}/crl.pem"

    def close(self) -> None:
        self.closed.set()  # a trickle ends, and the hub's fetch with it
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def crl_server() -> Iterator[CrlServer]:
    server = CrlServer()
    yield server
    server.close()


@pytest.fixture
def cdp_pki(tmp_path: Path, crl_server: CrlServer) -> Path:
    root = tmp_path / "pki"
    init_federation(root, list(PARTIES), crl_url=crl_server.url())
    return root


@pytest.fixture
async def fed(tmp_path: Path, cdp_pki: Path):  # type: ignore[no-untyped-def]
    federation = Federation(tmp_path / "hubs", cdp_pki)
    for party in PARTIES:
        edit(federation, party, "[limits]\n", "[limits]\n" + _lines(QUICK))
    yield federation
    await federation.stop_all()


def _lines(values: dict[str, float]) -> str:
    return "".join(f"{k} = {v}\n" for k, v in values.items())


def edit(fed: Federation, party: str, old: str, new: str) -> None:
    """Replace ``old`` (once in the file) in ``party``'s hub.toml, and read it again."""
    path = fed.configs[party].path
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    fed.configs[party] = load_config(path)


def crl_bytes(pki: Path, party: str, serials: list[int], number: int, **kw: object) -> bytes:
    cert, key = ca_of(pki, party)
    now = kw.pop("now", datetime.now(UTC))
    crl = issue_crl(cert, key, serials, now, number=number, **kw)  # type: ignore[arg-type]
    return crl.public_bytes(serialization.Encoding.PEM)


def fetch_cn_list(fed: Federation, how: str, server: CrlServer, held: bytes) -> Path:
    """NZ fetches CN's list (``how``: crl_url, or crl_fetch and the distribution point CN's
    certificates name) into a file of its own, which holds ``held``; the server serves it."""
    mine = fed.configs["NZ"].path.parent / "cn-crl.pem"
    mine.write_bytes(held)
    server.body = held
    shared = f'crls = ["{crl_path(fed.pki, "CN")}"]'
    fetch = {
        "crl_url": f'crl_url = "{server.url("CN")}"',
        # the test's server is on 127.0.0.1, which a certificate's distribution point may
        # name only when the operator allows it
        "crl_fetch": "crl_fetch = true\ncrl_fetch_private = true",
        "crl_fetch, public only": "crl_fetch = true",
    }[how]
    edit(fed, "NZ", shared, f'crls = ["{mine}"]\n{fetch}')
    return mine


async def fetched(running: RunningHub, text: str) -> bool:
    found = read_outcome(keys.crl_sources(running.config)[0].target)
    return found is not None and text in found.text


@pytest.mark.parametrize("how", ["crl_url", "crl_fetch"])
async def test_a_newer_list_fetched_revokes_a_partner_at_once(
    fed: Federation, cdp_pki: Path, crl_server: CrlServer, how: str
) -> None:
    mine = fetch_cn_list(fed, how, crl_server, crl_bytes(cdp_pki, "CN", [], 2))
    nz = await fed.start("NZ")
    await eventually(lambda: fetched(nz, "unchanged"))
    data, _ = signed_envelope(cdp_pki, "CN")
    assert isinstance(await deliver_as(cdp_pki, "CN", nz, data), pb.SignedReceipt)

    # CN's CA publishes a list revoking CN's TLS certificate; NZ fetches it
    serial = serial_of(cdp_pki / "CN" / "tls.pem")
    newer = crl_bytes(cdp_pki, "CN", [serial], 3)
    crl_server.body = newer
    await eventually(lambda: revoked_in(nz, "CN", serial))
    assert mine.read_bytes() == newer  # written over the configured file: a restart keeps it
    refusal = await deliver_as(cdp_pki, "CN", nz, signed_envelope(cdp_pki, "CN")[0])
    assert isinstance(refusal, grpc.aio.AioRpcError)
    assert refusal.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(refusal) == "certificate-revoked"
    # status shows the fetch's outcome
    shown = await status(nz.config.path)
    [fetch] = shown["revocation_fetches"]
    assert fetch["ok"] is True and fetch["url"] == crl_server.url("CN")
    assert "CRL number 3 of" in fetch["outcome"]  # written, then found unchanged
    text = await asyncio.to_thread(cli, "status", "--config", str(nz.config.path))
    assert f"partners.CN: revocation list from {crl_server.url('CN')}: fetched " in text.stdout


BAD = ["another-ca", "rolled-over-ca", "older", "garbage", "oversize", "slow", "trickling"]


def roll_over(fed: Federation, pki: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """NZ's anchor file for CN holds CN's CA and a successor with the same subject (a CA
    rolling over), as a file of NZ's own; the successor and its key."""
    old, _ = ca_of(pki, "CN")
    new, key = make_ca("CN", datetime.now(UTC))
    assert new.subject == old.subject
    both = fed.configs["NZ"].path.parent / "cn-anchors.pem"
    both.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (old, new)))
    edit(fed, "NZ", f'trust_anchor = "{pki / "CN" / "ca.pem"}"', f'trust_anchor = "{both}"')
    # each CA of the anchor file has a list (else the configuration is refused): the fetched
    # one goes to the first file, the old CA's; the successor's is a file of its own
    fetched = fed.configs["NZ"].path.parent / "cn-crl.pem"
    own = fed.configs["NZ"].path.parent / "cn-new-crl.pem"
    first = issue_crl(new, key, [], datetime.now(UTC), number=1)
    own.write_bytes(first.public_bytes(serialization.Encoding.PEM))
    edit(fed, "NZ", f'crls = ["{fetched}"]', f'crls = ["{fetched}", "{own}"]')
    return new, key


@pytest.mark.parametrize("bad", BAD)
async def test_a_fetched_list_that_may_not_be_used_leaves_the_one_in_force(
    fed: Federation,
    cdp_pki: Path,
    crl_server: CrlServer,
    caplog: pytest.LogCaptureFixture,
    bad: str,
) -> None:
    sg_serial = serial_of(cdp_pki / "SG" / "tls.pem")
    held = crl_bytes(cdp_pki, "CN", [sg_serial], 5)  # revokes a serial, so "in force" shows
    mine = fetch_cn_list(fed, "crl_url", crl_server, held)
    edit(fed, "NZ", "crl_fetch_seconds = 0.2", "crl_fetch_seconds = 3600")  # fetched here
    successor = roll_over(fed, cdp_pki) if bad == "rolled-over-ca" else None
    nz = await fed.start("NZ")
    await eventually(lambda: fetched(nz, "unchanged"))
    before = nz.hub.revocation
    cn_tls = serial_of(cdp_pki / "CN" / "tls.pem")
    cn_ca, _ = ca_of(cdp_pki, "CN")
    _, sg_key = ca_of(cdp_pki, "SG")
    served, says, refused = {
        "another-ca": (  # in CN's CA's name, signed by SG's CA
            issue_crl(cn_ca, sg_key, [cn_tls], datetime.now(UTC), number=9).public_bytes(
                serialization.Encoding.PEM
            ),
            "signature does not verify",
            True,
        ),
        # CN's new CA (same subject, in NZ's anchor file) publishes its first list, numbered
        # above the old CA's and revoking nothing: taking it would un-revoke SG's serial
        "rolled-over-ca": (
            issue_crl(
                *(successor or (cn_ca, sg_key)), [], datetime.now(UTC), number=9
            ).public_bytes(serialization.Encoding.PEM),
            "signed by another CA of the party",
            True,
        ),
        "older": (  # an earlier list that did not revoke SG's certificate yet
            crl_bytes(cdp_pki, "CN", [], 4),
            "CRL number 4 is below the one in use (5)",
            True,
        ),
        "garbage": (b"<html>not found</html>", "not a PEM or DER", True),
        "oversize": (b"\0" * (MAX_CRL_BYTES + 1), f"a CRL is at most {MAX_CRL_BYTES}", False),
        "slow": (crl_bytes(cdp_pki, "CN", [cn_tls], 6), "within 0.5 s", False),
        # a byte every 0.2 s: each read gets something, and the whole would take minutes
        "trickling": (crl_bytes(cdp_pki, "CN", [cn_tls], 6), "within 0.5 s", False),
    }[bad]
    crl_server.body = served
    crl_server.delay = 2.0 if bad == "slow" else 0.0
    crl_server.trickle = bad == "trickling"
    [source] = keys.crl_sources(nz.config)
    began = time.monotonic()
    outcome = await nz.hub.revocation_watch.fetcher.fetch(source)
    # given up at the deadline of the whole fetch (0.5 s), with room for a loaded machine
    assert time.monotonic() - began < 0.5 + 3.0
    assert not outcome.ok and says in outcome.text, outcome.text
    assert "the list in use stays" in caplog.text and says in caplog.text
    # the list in force is the one held: file and revocation set alike
    assert mine.read_bytes() == held
    await nz.hub.revocation_watch.check()
    assert nz.hub.revocation is before
    assert await revoked_in(nz, "CN", sg_serial) and not await revoked_in(nz, "CN", cn_tls)
    data, _ = signed_envelope(cdp_pki, "CN")
    assert isinstance(await deliver_as(cdp_pki, "CN", nz, data), pb.SignedReceipt)
    # a list that came and was refused is in the trail; a server that failed is only logged
    rejections = await nz.hub.store.views.rejections(source=REJECTION_SOURCE)
    assert [r.reason for r in rejections] == (["crl-refused"] if refused else [])
    shown = await status(nz.config.path)
    assert shown["revocation_fetches"][0]["ok"] is False
    assert says in shown["revocation_fetches"][0]["outcome"]


async def test_a_hanging_fetch_does_not_hold_up_the_local_lists(
    fed: Federation, cdp_pki: Path, crl_server: CrlServer
) -> None:
    """CN's distribution point trickles its list, under a long time limit: while NZ's fetch
    hangs on it, SG's CA revokes SG's certificate in its local file, and NZ takes the change
    within its checks as ever."""
    crl_server.trickle = True
    mine = fetch_cn_list(fed, "crl_url", crl_server, crl_bytes(cdp_pki, "CN", [], 2))
    edit(fed, "NZ", "crl_fetch_timeout_seconds = 0.5", "crl_fetch_timeout_seconds = 600")
    nz = await fed.start("NZ")
    await eventually(lambda: crl_server.hits > 0)  # the fetch has begun, and hangs
    serial = serial_of(cdp_pki / "SG" / "tls.pem")
    revoke(cdp_pki, "SG", [serial])
    await eventually(lambda: revoked_in(nz, "SG", serial))
    assert read_outcome(mine) is None  # the fetch is still under way
    assert crl_server.hits == 1
    crl_server.closed.set()  # the server stops halfway: the fetch ends, and keeps nothing
    outcome = await eventually(lambda: read_outcome(mine))
    assert not outcome.ok and "bytes short of its length" in outcome.text, outcome.text
    assert not await revoked_in(nz, "CN", serial_of(cdp_pki / "CN" / "tls.pem"))


async def test_a_distribution_point_on_a_private_address_is_not_fetched_unless_allowed(
    fed: Federation,
    cdp_pki: Path,
    crl_server: CrlServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CN's certificates name a distribution point on 127.0.0.1: with crl_fetch alone NZ
    refuses to fetch it (a partner could so make NZ call into NZ's own network), saying so in
    its log and status; with crl_fetch_private = true it fetches, and through no proxy, though
    the environment names one."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    mine = fetch_cn_list(fed, "crl_fetch, public only", crl_server, crl_bytes(cdp_pki, "CN", [], 2))
    nz = await fed.start("NZ")
    await eventually(lambda: read_outcome(mine))
    says = "refused: 127.0.0.1 resolves to 127.0.0.1, not a public address"
    outcome = read_outcome(mine)
    assert outcome is not None and not outcome.ok and says in outcome.text, outcome
    assert crl_server.hits == 0  # nothing was asked of the server
    assert says in caplog.text and "crl_fetch_private = true allows" in caplog.text
    text = (await asyncio.to_thread(cli, "status", "--config", str(nz.config.path))).stdout
    assert f"partners.CN: revocation list from {crl_server.url('CN')}: FETCH FAILED" in text
    assert says in text
    assert await nz.hub.store.views.rejections(source=REJECTION_SOURCE) == []

    edit(fed, "NZ", "crl_fetch = true", "crl_fetch = true\ncrl_fetch_private = true")
    await nz.reload()
    await eventually(lambda: fetched(nz, "unchanged"))
    assert crl_server.hits >= 1


def test_a_fetched_list_needs_a_file_and_an_http_url(fed: Federation) -> None:
    cases = {
        'crl_url = "ftp://example.org/crl"': "partners.CN.crl_url must be an http:// or https://",
        'crl_url = "http://x/crl"\ncrl_fetch = true': "exclude each other",
        'crl_url = "http://x/crl"\ncrl_fetch_private = true': "goes with crl_fetch = true",
    }
    shared = f'crls = ["{crl_path(fed.pki, "CN")}"]'
    path = fed.configs["NZ"].path
    original = path.read_text()
    for setting, says in cases.items():
        path.write_text(original.replace(shared, f"{shared}\n{setting}"))
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert says in caught.value.message, caught.value.message
    path.write_text(original.replace(shared, "crls = []\ncrl_fetch = true"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "partners.CN: crl_url or crl_fetch needs a file in partners.CN.crls" in (
        caught.value.message
    )


# --- a revoked partner's queue stops --------------------------------------------------------


async def queued_for(running: RunningHub, partner: str) -> list[str]:
    rows = await running.hub.store.views.outbox_rows(datetime.now(UTC))
    return [r.message_id for r in rows if r.partner == partner and r.state != "dead"]


async def inbound_ids(running: RunningHub) -> list[str]:
    return [m.message_id for m in await running.hub.store.views.inbound()]


async def stops(running: RunningHub) -> list[str]:
    return [r.detail for r in await running.hub.store.views.rejections(source=STOP_SOURCE)]


def new_certificate(pki: Path, party: str, *, tls: bool) -> tuple[Path, Path]:
    """Another TLS (ECDSA) or signing (Ed25519) certificate of ``party`` from its CA, and its
    key, as ``pki init`` writes them."""
    ca_cert, ca_key = ca_of(pki, party)
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if tls else ed25519.Ed25519PrivateKey.generate()
    )
    role = "hub TLS 2" if tls else "hub signing 2"
    cert = issue(party, role, key.public_key(), ca_cert, ca_key, datetime.now(UTC), tls=tls)
    name = "tls2" if tls else "signing2"
    write_cert(pki / party / f"{name}.pem", cert)
    write_key(pki / party / f"{name}.key", key)
    return pki / party / f"{name}.pem", pki / party / f"{name}.key"


async def test_a_partner_whose_signing_certificate_is_revoked_gets_nothing_until_a_new_one(
    fed: Federation, cdp_pki: Path
) -> None:
    cn, nz, sg = [await fed.start(p) for p in ("CN", "NZ", "SG")]
    serial = serial_of(cdp_pki / "NZ" / "signing.pem")
    revoke(cdp_pki, "NZ", [serial])  # NZ's CA revokes NZ's only signing certificate
    await eventually(lambda: revoked_in(cn, "NZ", serial))
    [to_nz] = await submit_batch(cn, aeo_requests(1, to="NZ"))
    [to_sg] = await submit_batch(cn, aeo_requests(1, to="SG"))

    # SG is served; NZ gets nothing, its message stays queued, and the stop is shown once
    await eventually(lambda: inbound_ids(sg))
    assert await inbound_ids(sg) == [to_sg]
    await eventually(lambda: stops(cn))
    await asyncio.sleep(1.0)  # several passes of NZ's sender
    [stop] = await stops(cn)
    assert stop.startswith("delivery to NZ stopped") and "signing certificate" in stop
    assert await queued_for(cn, "NZ") == [to_nz]
    assert await inbound_ids(nz) == []
    shown = {p["partner"]: p for p in (await status(cn.config.path))["partners"]}
    assert shown["NZ"]["stopped"] == "certificate-revoked" and shown["NZ"]["queued"] == 1
    assert "is revoked by" in shown["NZ"]["stop_detail"]
    assert shown["SG"]["stopped"] is None
    text = (await asyncio.to_thread(cli, "status", "--config", str(cn.config.path))).stdout
    assert "STOPPED (certificate-revoked)" in text
    assert "NZ: delivery stopped, 1 message(s) kept queued: NZ's signing certificate" in text

    # NZ gets a new signing certificate; both hubs reload; the message goes
    cert, key = new_certificate(cdp_pki, "NZ", tls=False)
    own = cdp_pki / "NZ" / "signing"
    edit(fed, "NZ", f'cert = "{own}.pem"\nkey = "{own}.key"', f'cert = "{cert}"\nkey = "{key}"')
    edit(fed, "CN", f'signing_certs = ["{own}.pem"]', f'signing_certs = ["{cert}"]')
    await nz.reload()
    await cn.reload()
    await eventually(lambda: inbound_ids(nz))
    assert await inbound_ids(nz) == [to_nz]
    await eventually(lambda: not_stopped(cn, "NZ"))
    assert len(await stops(cn)) == 1


async def not_stopped(running: RunningHub, partner: str) -> bool:
    shown = {p["partner"]: p for p in (await status(running.config.path))["partners"]}
    return shown[partner]["stopped"] is None and shown[partner]["queued"] == 0


async def test_a_partner_whose_server_certificate_is_revoked_gets_nothing(
    fed: Federation, cdp_pki: Path
) -> None:
    """Caught by the pre-flight handshake, before any gRPC connection: NZ's TLS certificate
    is revoked on its CA's list (its signing certificate is not)."""
    own_list = fed.configs["NZ"].path.parent / "own-crl.pem"  # NZ's own list, not revoking
    own_list.write_bytes(crl_path(cdp_pki, "NZ").read_bytes())
    edit(fed, "NZ", f'crls = ["{crl_path(cdp_pki, "NZ")}"]   #', f'crls = ["{own_list}"]   #')
    revoke(cdp_pki, "NZ", [serial_of(cdp_pki / "NZ" / "tls.pem")])
    cn, nz = await fed.start("CN"), await fed.start("NZ")
    [to_nz] = await submit_batch(cn, aeo_requests(1, to="NZ"))
    await eventually(lambda: stops(cn))
    [stop] = await stops(cn)
    assert "NZ's TLS server certificate" in stop and "is revoked by" in stop
    assert await inbound_ids(nz) == [] and await queued_for(cn, "NZ") == [to_nz]
    shown = {p["partner"]: p for p in (await status(cn.config.path))["partners"]}
    assert shown["NZ"]["stopped"] == "certificate-revoked"
    assert "TLS server certificate" in shown["NZ"]["stop_detail"]

    # NZ serves a new certificate; once CN reloads, its pre-flight sees it and delivery goes on
    cert, key = new_certificate(cdp_pki, "NZ", tls=True)
    own = cdp_pki / "NZ" / "tls"
    edit(fed, "NZ", f'cert = "{own}.pem"\nkey = "{own}.key"', f'cert = "{cert}"\nkey = "{key}"')
    await nz.reload()
    await cn.reload()
    await eventually(lambda: inbound_ids(nz))
    assert await inbound_ids(nz) == [to_nz]
    await eventually(lambda: not_stopped(cn, "NZ"))


async def test_a_server_certificate_revoked_while_delivering_stops_the_queue(
    fed: Federation, cdp_pki: Path
) -> None:
    """The certificate the last pre-flight saw is checked against each new list: NZ is
    stopped without a new handshake, and SG goes on."""
    cn, nz, sg = [await fed.start(p) for p in ("CN", "NZ", "SG")]
    [first] = await submit_batch(cn, aeo_requests(1, to="NZ"))
    await eventually(lambda: inbound_ids(nz))
    serial = serial_of(cdp_pki / "NZ" / "tls.pem")
    revoke(cdp_pki, "NZ", [serial])
    await eventually(lambda: revoked_in(cn, "NZ", serial))
    [second] = await submit_batch(cn, aeo_requests(1, to="NZ"))
    [to_sg] = await submit_batch(cn, aeo_requests(1, to="SG"))
    await eventually(lambda: stops(cn))
    await eventually(lambda: inbound_ids(sg))
    assert await inbound_ids(sg) == [to_sg]
    assert await inbound_ids(nz) == [first]
    assert await queued_for(cn, "NZ") == [second]


async def test_receipts_signed_with_a_revoked_certificate_settle_nothing(
    fed: Federation, cdp_pki: Path
) -> None:
    """NZ is rotating: CN trusts its old signing certificate and a new one. NZ's CA revokes
    the old one, with which NZ (refusing the list that revokes its own key, and logging it)
    still signs receipts. CN goes on delivering (NZ could sign with the new key), but those
    receipts settle nothing: the message stays queued, not delivered."""
    cert, _ = new_certificate(cdp_pki, "NZ", tls=False)
    old = cdp_pki / "NZ" / "signing.pem"
    edit(fed, "CN", f'signing_certs = ["{old}"]', f'signing_certs = ["{old}", "{cert}"]')
    cn, nz = await fed.start("CN"), await fed.start("NZ")
    serial = serial_of(old)
    revoke(cdp_pki, "NZ", [serial])
    await eventually(lambda: revoked_in(cn, "NZ", serial))
    [message_id] = await submit_batch(cn, aeo_requests(1))

    async def refused_receipt() -> bool:
        rows = await cn.hub.store.views.outbox_rows(datetime.now(UTC))
        return any(
            r.message_id == message_id and "certificate-revoked" in r.last_error for r in rows
        )

    await eventually(refused_receipt)
    assert await inbound_ids(nz) == [message_id]
    assert await queued_for(cn, "NZ") == [message_id]
    assert await stops(cn) == []  # not stopped: one of its signing certificates is good
