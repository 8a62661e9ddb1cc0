"""Evidence bundles (issue 17, "Evidence kept"): `evidence export` writes one message's
envelope as received, its signer's certificate, its trail leaf, inclusion proof and signed
checkpoint into one file, and `evidence verify` checks it with nothing but the bundle, the
sender's trust anchor and the hub's trail verifier key; every piece tampered with fails,
naming the check."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.cli.crl import issue_crl
from hub.cli.demo import sample_declaration
from hub.core.envelope import build_envelope, sha256
from hub.core.signing import Signer
from hub.core.trust import party_uri
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import evidence_pb2 as epb
from hub.pb.customs_hub.v1 import trail_pb2 as tpb
from hub.store.db import Store
from hub.trail import checkpoint, evidence, merkle
from hub.trail import events as trail
from tests.conftest import Federation
from tests.test_evidence import DAY, NOW, SIGNING_USAGE, _ca, cli, exchanged, sql

Tamper = Callable[[epb.EvidenceBundle, Path], None]


async def export_cn_message(
    federation: Federation, folder: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, str]:
    """NZ's bundle of the message CN sent it, exported from NZ's stopped hub; its id."""
    _, nz = await exchanged(federation)
    [row] = await nz.hub.store.views.inbound()
    await federation.stop_all()  # a stopping hub signs a checkpoint of all it recorded
    out = folder / "cn-message.evidence"
    toml = str(federation.configs["NZ"].path)
    capsys.readouterr()
    code = await cli(
        ["evidence", "export", "--config", toml, "--message-id", row.message_id, "-o", str(out)]
    )
    assert code == 0, capsys.readouterr()
    assert f"wrote {out}: message {row.message_id} signed by CN" in capsys.readouterr().out
    return out, row.message_id


async def receipt_of_message_to(url: str, partner: str) -> tuple[str, bytes]:
    """The id of the one message the hub at ``url`` sent ``partner``, and its stored receipt."""
    store = Store(url)
    try:
        [(sent, receipt)] = [m for m in await store.views.outbound() if m[0].recipient == partner]
    finally:
        await store.close()
    assert receipt is not None
    return sent.message_id, receipt.signed_receipt


def auditor_folder(pki: Path, bundle: Path, folder: Path) -> Path:
    """What an auditor years later holds: the bundle, CN's anchor and NZ's trail key."""
    folder.mkdir()
    shutil.copy(bundle, folder / "bundle.evidence")
    shutil.copy(pki / "CN" / "ca.pem", folder / "cn-ca.pem")
    shutil.copy(pki / "NZ" / "trail.vkey", folder / "nz-trail.vkey")
    return folder


async def verify(
    folder: Path, capsys: pytest.CaptureFixture[str], *extra: str, bundle: str = "bundle.evidence"
) -> tuple[int, str]:
    args = ["--anchor", str(folder / "cn-ca.pem"), "--trail-vkey", str(folder / "nz-trail.vkey")]
    capsys.readouterr()
    code = await cli(["evidence", "verify", str(folder / bundle), *args, *extra])
    return code, capsys.readouterr().out


async def test_a_bundle_from_a_real_exchange_verifies_offline(
    federation: Federation, tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported, message_id = await export_cn_message(federation, tmp_path, capsys)
    folder = auditor_folder(pki, exported, tmp_path / "auditor")
    # the hubs' folders and stores are gone: the bundle stands alone
    shutil.rmtree(tmp_path / "NZ")
    shutil.rmtree(tmp_path / "CN")
    code, out = await verify(folder, capsys, "--body", str(folder / "body.bin"))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"OK: CN signed message {message_id}"
    assert f"{message_id} from CN to NZ, customs_hub.v1.GoodsDeclaration" in lines[1]
    assert "of the trail customs-hub/NZ" in out
    assert "signed by customs-hub-NZ" in out
    assert "not revoked by the CRL of" in out  # the dev config names each anchor's CRL
    # what was signed, as the sender signed it
    data = (folder / "bundle.evidence").read_bytes()
    envelope = pb.Envelope.FromString(epb.EvidenceBundle.FromString(data).envelope)
    assert (folder / "body.bin").read_bytes() == envelope.body

    code, out = await verify(folder, capsys, "--json")
    assert code == 0
    found = json.loads(out)
    assert (found["ok"], found["sender"], found["recipient"]) == (True, "CN", "NZ")
    assert found["message_id"] == message_id and found["origin"] == "customs-hub/NZ"
    bundle = epb.EvidenceBundle.FromString(data)
    assert (found["leaf_index"], found["tree_size"]) == (bundle.leaf_index, found["tree_size"])
    assert found["leaf_index"] < found["tree_size"]
    cert = x509.load_pem_x509_certificate((pki / "CN" / "signing.pem").read_bytes())
    assert found["serial"] == f"{cert.serial_number:x}"
    assert list(bundle.certificates) == [cert.public_bytes(Encoding.DER)]
    assert (bundle.format, bundle.version, bundle.kind) == (evidence.FORMAT, 1, "message")


# --- every piece tampered with: the check that fails, and what it says ----------------------


def _envelope(change: Callable[[pb.Envelope], None]) -> Tamper:
    def tamper(bundle: epb.EvidenceBundle, pki: Path) -> None:
        envelope = pb.Envelope.FromString(bundle.envelope)
        change(envelope)
        bundle.envelope = envelope.SerializeToString()

    return tamper


def _flip_body(envelope: pb.Envelope) -> None:
    body = bytearray(envelope.body)
    body[len(body) // 2] ^= 0x01
    envelope.body = bytes(body)


def _flip_signature(envelope: pb.Envelope) -> None:
    value = bytearray(envelope.signatures[0].value)
    value[0] ^= 0x01
    envelope.signatures[0].value = bytes(value)


def _certificate_of(path: Path) -> Tamper:
    def tamper(bundle: epb.EvidenceBundle, pki: Path) -> None:
        cert = x509.load_pem_x509_certificate((pki / path).read_bytes())
        bundle.certificates[0] = cert.public_bytes(Encoding.DER)

    return tamper


def _leaf(change: Callable[[tpb.TrailEvent], None]) -> Tamper:
    def tamper(bundle: epb.EvidenceBundle, pki: Path) -> None:
        event = tpb.TrailEvent.FromString(bundle.leaf)
        change(event)
        bundle.leaf = event.SerializeToString(deterministic=True)

    return tamper


def _digest(event: tpb.TrailEvent) -> None:
    event.envelope_digest = bytes(32)


def _time(event: tpb.TrailEvent) -> None:
    event.at.seconds -= 1


def _proof_hash(bundle: epb.EvidenceBundle, pki: Path) -> None:
    first = bytearray(bundle.inclusion_proof[0])
    first[0] ^= 0x01
    bundle.inclusion_proof[0] = bytes(first)


def _proof_short(bundle: epb.EvidenceBundle, pki: Path) -> None:
    del bundle.inclusion_proof[-1]


def _checkpoint_signature(bundle: epb.EvidenceBundle, pki: Path) -> None:
    body, _, signature = bundle.checkpoint.decode().rpartition(" ")
    flipped = ("B" if signature[10] == "A" else "A").join((signature[:10], signature[11:]))
    bundle.checkpoint = f"{body} {flipped}".encode()


def _checkpoint_size(bundle: epb.EvidenceBundle, pki: Path) -> None:
    lines = bundle.checkpoint.decode().split("\n")
    lines[1] = str(int(lines[1]) + 1)
    bundle.checkpoint = "\n".join(lines).encode()


def _version(bundle: epb.EvidenceBundle, pki: Path) -> None:
    bundle.version = 2


def _format(bundle: epb.EvidenceBundle, pki: Path) -> None:
    bundle.format = "customs-hub-trail-export/1"


def _kind(bundle: epb.EvidenceBundle, pki: Path) -> None:
    bundle.kind = "statement"


def _no_certificate(bundle: epb.EvidenceBundle, pki: Path) -> None:
    del bundle.certificates[:]


@dataclass
class Case:
    tamper: Tamper | None = None
    check: str = ""
    says: str = ""
    anchor: str = "CN"  # whose CA the auditor gives
    vkey: str = "NZ"  # whose trail key


CASES = {
    "a body byte": Case(_envelope(_flip_body), "envelope", "the envelope's body is not the body"),
    "the signature": Case(
        _envelope(_flip_signature), "signature", "no signature of the envelope verifies"
    ),
    "the certificate swapped for another party's": Case(
        _certificate_of(Path("SG/signing.pem")),
        "identity",
        "the signing certificate names party SG; the envelope's sender is CN",
    ),
    "the certificate swapped for a rogue CA's CN": Case(
        None,
        "chain",
        "anchor 'CN=CN customs CA,O=Customs administration CN (development)': "
        "it names that issuer, but its key did not sign it",
    ),
    "the chain given a wrong anchor": Case(
        None, "chain", "was not issued by the trust anchor 'CN=SG customs CA", anchor="SG"
    ),
    "the leaf's envelope digest": Case(_leaf(_digest), "leaf", "the leaf records envelope digest"),
    "the leaf's time": Case(_leaf(_time), "inclusion", "does not lead to the root"),
    "a proof hash": Case(_proof_hash, "inclusion", "does not lead to the root"),
    "the proof cut short": Case(_proof_short, "inclusion", "too few hashes"),
    "the checkpoint's signature": Case(
        _checkpoint_signature,
        "checkpoint",
        "does not verify with the trail key customs-hub-NZ: signature by customs-hub-NZ+",
    ),
    "the checkpoint's size": Case(
        _checkpoint_size,
        "checkpoint",
        "does not verify with the trail key customs-hub-NZ: signature by customs-hub-NZ+",
    ),
    "a wrong trail key": Case(
        None, "checkpoint", "note is not signed by customs-hub-CN", vkey="CN"
    ),
    "an unknown version": Case(_version, "bundle", "version 2; this customs-hub reads version 1"),
    "another format": Case(_format, "bundle", "not an evidence bundle: its format is"),
    "an unknown kind": Case(_kind, "bundle", "its kind is 'statement'"),
    "no certificate": Case(_no_certificate, "bundle", "no certificate"),
}


async def test_every_piece_tampered_with_fails_naming_its_check(
    federation: Federation,
    tmp_path: Path,
    pki: Path,
    rogue_pki: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exported, _ = await export_cn_message(federation, tmp_path, capsys)
    folder = auditor_folder(pki, exported, tmp_path / "auditor")
    for party in ("SG", "CN"):
        shutil.copy(pki / party / "ca.pem", folder / f"{party.lower()}-ca.pem")
        shutil.copy(pki / party / "trail.vkey", folder / f"{party.lower()}-trail.vkey")
    CASES["the certificate swapped for a rogue CA's CN"].tamper = _certificate_of(
        rogue_pki / "CN" / "signing.pem"
    )
    genuine = exported.read_bytes()
    said = {}
    for name, case in CASES.items():
        bundle = epb.EvidenceBundle.FromString(genuine)
        if case.tamper is not None:
            case.tamper(bundle, pki)
        (folder / "tampered.evidence").write_bytes(bundle.SerializeToString())
        capsys.readouterr()
        code = await cli(
            [
                "evidence",
                "verify",
                str(folder / "tampered.evidence"),
                "--anchor",
                str(folder / f"{case.anchor.lower()}-ca.pem"),
                "--trail-vkey",
                str(folder / f"{case.vkey.lower()}-trail.vkey"),
            ]
        )
        out = capsys.readouterr().out
        assert code == 1, (name, out)
        assert out.startswith(f"BAD ({case.check}): "), (name, out)
        assert case.says in out, (name, out)
        said[name] = out
    # the genuine bundle still verifies
    code, out = await verify(folder, capsys)
    assert code == 0, out
    # each fault is told apart, except where no signature can tell which of two signed
    # things changed: the leaf or its proof; the checkpoint's body or its signature
    alike = {tuple(n for n in said if said[n] == text) for text in said.values()} - {
        (n,) for n in said
    }
    assert alike == {
        ("the leaf's time", "a proof hash"),
        ("the checkpoint's signature", "the checkpoint's size"),
    }

    # an envelope edited in the store: export refuses to write a bundle that would not verify
    url = federation.configs["NZ"].store_url
    envelope = epb.EvidenceBundle.FromString(genuine).envelope
    await sql(url, "UPDATE inbound_message SET envelope = :e", e=envelope + b"\x1a\x00")
    refused = tmp_path / "refused.evidence"
    toml = str(federation.configs["NZ"].path)
    message_id = pb.Header.FromString(pb.Envelope.FromString(envelope).header).message_id
    export = ["evidence", "export", "--config", toml, "--message-id", message_id]
    assert await cli([*export, "-o", str(refused)]) == 2
    assert "no received leaf of the trail records message" in capsys.readouterr().err
    assert not refused.exists()
    # CN's receipt for NZ's message edited in the store: its signature no longer verifies,
    # and export says so rather than write the bundle
    sent_id, signed = await receipt_of_message_to(url, "CN")
    stored = pb.SignedReceipt.FromString(signed)
    stored.signature.value = bytes(64)
    await sql(url, "UPDATE receipt SET signed_receipt = :r", r=stored.SerializeToString())
    receipt = ["--message-id", sent_id, "--receipt", "-o", str(refused)]
    assert await cli([*export[:4], *receipt]) == 2
    assert (
        f"message {sent_id}: the bundle would not verify, so it is not written: signature: "
    ) in capsys.readouterr().err
    assert not refused.exists()


async def test_a_truncated_or_oversized_file_is_refused_as_such(
    tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "auditor"
    folder.mkdir()
    shutil.copy(pki / "CN" / "ca.pem", folder / "cn-ca.pem")
    shutil.copy(pki / "NZ" / "trail.vkey", folder / "nz-trail.vkey")
    genuine = epb.EvidenceBundle(
        format=evidence.FORMAT, version=1, kind="message", envelope=b"e" * 1000,
        certificates=[b"c" * 100],
    ).SerializeToString()  # fmt: skip
    (folder / "cut.evidence").write_bytes(genuine[: len(genuine) // 2])
    code, out = await verify(folder, capsys, bundle="cut.evidence")
    assert code == 1
    assert out.startswith("BAD (bundle): ") and "does not parse (cut short or damaged?)" in out
    with (folder / "large.evidence").open("wb") as f:  # sparse: nothing written
        f.truncate(evidence.MAX_BUNDLE_BYTES + 1)
    code, out = await verify(folder, capsys, bundle="large.evidence")
    assert code == 1
    assert f"at most {evidence.MAX_BUNDLE_BYTES} are read" in out
    # a missing bundle or anchor: a usage error naming the file
    args = ["--anchor", str(folder / "cn-ca.pem"), "--trail-vkey", str(folder / "nz-trail.vkey")]
    assert await cli(["evidence", "verify", str(folder / "missing.evidence"), *args]) == 2
    assert "missing.evidence: cannot read the bundle" in capsys.readouterr().err
    (folder / "cn-ca.pem").write_text("not a certificate")
    assert await cli(["evidence", "verify", str(folder / "cut.evidence"), *args]) == 2
    assert "cn-ca.pem: the trust anchor is not a PEM certificate" in capsys.readouterr().err


# --- revocation lists carried in the bundle --------------------------------------------------


async def test_a_certificate_revoked_before_the_message_was_recorded_fails(
    federation: Federation, tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CN's CA revoked its signing certificate: before NZ recorded the message, the bundle
    proves nothing; after, what was signed and recorded before stands, and the report says
    when it was revoked."""
    exported, _ = await export_cn_message(federation, tmp_path, capsys)
    folder = auditor_folder(pki, exported, tmp_path / "auditor")
    genuine = epb.EvidenceBundle.FromString(exported.read_bytes())
    recorded = tpb.TrailEvent.FromString(genuine.leaf).at.ToDatetime().astimezone()
    ca = x509.load_pem_x509_certificate((pki / "CN" / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "CN" / "ca.key").read_bytes(), None)
    signing = x509.load_pem_x509_certificate((pki / "CN" / "signing.pem").read_bytes())
    for when, expect in (
        (recorded - timedelta(hours=1), "BAD (revocation): "),
        (recorded + timedelta(hours=1), "OK: "),
    ):
        crl = issue_crl(ca, ca_key, [signing.serial_number], when)  # type: ignore[arg-type]
        bundle = epb.EvidenceBundle()
        bundle.CopyFrom(genuine)
        bundle.crls[:] = [crl.public_bytes(Encoding.DER)]
        (folder / "bundle.evidence").write_bytes(bundle.SerializeToString())
        code, out = await verify(folder, capsys)
        assert out.startswith(expect), out
        assert f"serial {signing.serial_number:x}" in out
        assert code == (1 if expect.startswith("BAD") else 0)
    assert "after the message was recorded" in out
    # a list another CA signed revokes nothing of CN's, and is refused
    sg_ca = x509.load_pem_x509_certificate((pki / "SG" / "ca.pem").read_bytes())
    sg_key = serialization.load_pem_private_key((pki / "SG" / "ca.key").read_bytes(), None)
    bundle.crls[:] = [issue_crl(sg_ca, sg_key, [], recorded).public_bytes(Encoding.DER)]  # type: ignore[arg-type]
    (folder / "bundle.evidence").write_bytes(bundle.SerializeToString())
    code, out = await verify(folder, capsys)
    assert code == 1 and out.startswith("BAD (revocation): ")
    assert "not by the trust anchor" in out


# --- the bundle format itself (hub/trail/evidence.py) ----------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=512))
def test_any_bytes_as_a_bundle_decode_or_raise_evidence_error(data: bytes) -> None:
    header = epb.EvidenceBundle(format=evidence.FORMAT, version=1).SerializeToString()
    for blob in (data, header + data):
        with contextlib.suppress(evidence.EvidenceError):  # anything else fails the test
            evidence.decode_bundle(blob)


def test_each_bound_is_enforced_on_reading() -> None:
    def bundle(**fields: object) -> bytes:
        base: dict[str, object] = {
            "format": evidence.FORMAT,
            "version": 1,
            "kind": "message",
            "envelope": b"e",
            "certificates": [b"c"],
        }
        return epb.EvidenceBundle(**(base | fields)).SerializeToString()  # type: ignore[arg-type]

    evidence.decode_bundle(bundle())  # within every bound
    for fields, says in (
        ({"certificates": [b"c"] * 9}, "9 certificates; at most 8"),
        ({"crls": [b"l"] * 9}, "9 revocation lists; at most 8"),
        ({"inclusion_proof": [b"h" * 32] * 65}, "65 inclusion proof hashes; at most 64"),
        ({"certificates": [b"c" * (64 * 1024 + 1)]}, "certificate is 65537 bytes"),
        ({"leaf": b"l" * (1024 * 1024 + 1)}, "leaf is 1048577 bytes"),
        ({"checkpoint": b"n" * (16 * 1024 + 1)}, "checkpoint is 16385 bytes"),
        ({"signed_receipt": b"r"}, "a receipt bundle, and only one, holds a signed receipt"),
    ):
        with pytest.raises(evidence.EvidenceError) as caught:
            evidence.decode_bundle(bundle(**fields))
        assert caught.value.check == "bundle"
        assert says in caught.value.message


# --- through the auditors' service, and a partner's receipt ----------------------------------


def certificates_folder(pki: Path, folder: Path) -> Path:
    """Anchors and signing certificates as a trail export lays them out (what --certs reads)."""
    for party in ("CN", "NZ", "SG"):
        where = folder / party
        where.mkdir(parents=True)
        shutil.copy(pki / party / "ca.pem", where / "trust-anchor.pem")
        shutil.copy(pki / party / "signing.pem", where / "signing-0.pem")
    return folder


async def test_an_auditor_exports_a_message_and_a_partners_receipt_through_the_audit_service(
    federation: Federation, tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a token (trail:read, messages:read), an auditor exports from CN's Audit service:
    NZ's message to CN (signed by NZ), and NZ's receipt for CN's message to NZ (proof that NZ
    received it); each verifies offline with NZ's anchor and CN's trail key."""
    cn, _ = await exchanged(federation)
    await cn.hub.audit.checkpoint()  # what the hub signs every few seconds, now
    [(sent, _)] = [m for m in await cn.hub.store.views.outbound() if m[0].recipient == "NZ"]
    [received] = await cn.hub.store.views.inbound()
    config = str(federation.configs["CN"].path)
    capsys.readouterr()
    token = tmp_path / "token"
    for name, scopes in (("reader", ["trail:read", "messages:read"]), ("blind", ["trail:read"])):
        scope_args = [arg for s in scopes for arg in ("--scope", s)]
        assert (
            await cli(["token", "issue", "--config", config, "--subject", "nao", *scope_args]) == 0
        )
        (tmp_path / name).write_text(capsys.readouterr().out)
    remote = [
        "--hub",
        f"127.0.0.1:{federation.audit_ports['CN']}",
        "--ca",
        str(pki / "CN" / "ca.pem"),
        "--certs",
        str(certificates_folder(pki, tmp_path / "certs")),
        "--trail-vkey",
        str(pki / "CN" / "trail.vkey"),
    ]
    token = tmp_path / "reader"
    message = ["--message-id", received.message_id, "-o", str(tmp_path / "message.evidence")]
    assert await cli(["evidence", "export", *remote, "--token-file", str(token), *message]) == 0
    receipt = [
        "--message-id",
        sent.message_id,
        "--receipt",
        "-o",
        str(tmp_path / "receipt.evidence"),
    ]
    assert await cli(["evidence", "export", *remote, "--token-file", str(token), *receipt]) == 0
    out = capsys.readouterr().out
    assert f"receipt {sent.message_id} signed by NZ" in out
    # the wrong direction is named, with what to ask instead
    wrong = ["--message-id", sent.message_id, "-o", str(tmp_path / "wrong.evidence")]
    assert await cli(["evidence", "export", *remote, "--token-file", str(token), *wrong]) == 2
    assert "this hub sent it: its evidence is the partner's receipt (--receipt)" in (
        capsys.readouterr().err
    )
    # a token without messages:read gets no envelope
    blind = str(tmp_path / "blind")
    assert await cli(["evidence", "export", *remote, "--token-file", blind, *message[:2], "-o",
                      str(tmp_path / "blind.evidence")]) == 2  # fmt: skip
    assert "GetMessage refused (scope-missing): this call needs scope messages:read" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "blind.evidence").exists()

    await federation.stop_all()
    offline = [
        "--anchor",
        str(pki / "NZ" / "ca.pem"),
        "--trail-vkey",
        str(pki / "CN" / "trail.vkey"),
    ]
    assert await cli(["evidence", "verify", str(tmp_path / "message.evidence"), *offline]) == 0
    assert capsys.readouterr().out.startswith(f"OK: NZ signed message {received.message_id}")
    assert await cli(["evidence", "verify", str(tmp_path / "receipt.evidence"), *offline]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: NZ signed a receipt (accepted) for message {sent.message_id} of CN")
    assert f"{sent.message_id} from CN to NZ" in out
    # the receipt bundle's envelope swapped for another of CN's: the receipt is not for it
    bundle = epb.EvidenceBundle.FromString((tmp_path / "receipt.evidence").read_bytes())
    other = epb.EvidenceBundle.FromString((tmp_path / "message.evidence").read_bytes())
    bundle.envelope = other.envelope
    (tmp_path / "swapped.evidence").write_bytes(bundle.SerializeToString())
    assert await cli(["evidence", "verify", str(tmp_path / "swapped.evidence"), *offline]) == 1
    assert "BAD (identity): " in (out := capsys.readouterr().out)
    assert "names party NZ; the receipt is for the envelope's recipient to sign, CN" in out
    # our envelope's bytes changed (its signature re-made, say): not what NZ signed for
    bundle = epb.EvidenceBundle.FromString((tmp_path / "receipt.evidence").read_bytes())
    _envelope(_flip_signature)(bundle, pki)
    (tmp_path / "resigned.evidence").write_bytes(bundle.SerializeToString())
    assert await cli(["evidence", "verify", str(tmp_path / "resigned.evidence"), *offline]) == 1
    out = capsys.readouterr().out
    assert "BAD (receipt): " in out and "the receipt is for another envelope" in out
    # the receipt's signature
    bundle = epb.EvidenceBundle.FromString((tmp_path / "receipt.evidence").read_bytes())
    signed = pb.SignedReceipt.FromString(bundle.signed_receipt)
    signed.signature.value = bytes([signed.signature.value[0] ^ 1]) + signed.signature.value[1:]
    bundle.signed_receipt = signed.SerializeToString()
    (tmp_path / "forged.evidence").write_bytes(bundle.SerializeToString())
    assert await cli(["evidence", "verify", str(tmp_path / "forged.evidence"), *offline]) == 1
    assert "BAD (signature): " in capsys.readouterr().out


# --- a chain through an intermediate CA, made here (hub/trail/evidence.py alone) -------------


def _issue(
    subject: str,
    public: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    ca: bool,
    until: datetime = NOW + 30 * DAY,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer[0].subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 30 * DAY)
        .not_valid_after(until)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(party_uri("CN"))]), False
        ).add_extension(SIGNING_USAGE, critical=True)
    return builder.sign(issuer[1], hashes.SHA256())


def _made_bundle(
    *, intermediate_is_ca: bool = True, intermediate_until: datetime = NOW + 30 * DAY
) -> tuple[bytes, x509.Certificate, checkpoint.NoteKey]:
    """CN's message to NZ, signed with a certificate CN's anchor issued through an
    intermediate, recorded at leaf 3 of NZ's five-leaf trail and checkpointed."""
    anchor = _ca("CN")
    middle_key = ec.generate_private_key(ec.SECP256R1())
    middle = _issue(
        "CN issuing CA", middle_key.public_key(), anchor, ca=intermediate_is_ca,
        until=intermediate_until,
    )  # fmt: skip
    signing_key = ed25519.Ed25519PrivateKey.generate()
    signer = _issue("CN signing", signing_key.public_key(), (middle, middle_key), ca=False)
    envelope, header = build_envelope(
        Signer.from_private_key(signing_key),
        sender="CN",
        recipient="NZ",
        document=sample_declaration(),
        created_at=NOW,
        ttl=DAY,
    )
    leaf = trail.encode(
        trail.Event(
            "received", NOW, message_id=header.message_id, sender="CN",
            envelope_digest=sha256(envelope),
        )
    )  # fmt: skip
    hashes_ = [merkle.leaf_hash(b"%d" % i) for i in range(5)]
    hashes_[3] = leaf.hash
    private = ed25519.Ed25519PrivateKey.generate()
    key = checkpoint.NoteKey("customs-hub-NZ", private.public_key(), private)
    note = checkpoint.sign(checkpoint.Checkpoint("customs-hub/NZ", 5, merkle.root(hashes_)), key)
    bundle = evidence.Bundle(
        kind="message",
        envelope=envelope,
        certificates=[c.public_bytes(Encoding.DER) for c in (signer, middle)],
        leaf_index=3,
        leaf=leaf.data,
        inclusion_proof=merkle.inclusion_proof(hashes_, 3),
        checkpoint=note,
    )
    return evidence.encode_bundle(bundle), anchor[0], key


def test_a_chain_through_an_intermediate_ca_verifies() -> None:
    data, anchor, key = _made_bundle()
    proven = evidence.verify_bundle(data, anchor, key)
    assert (proven.sender, proven.recipient, proven.leaf_index, proven.tree_size) == (
        "CN", "NZ", 3, 5,
    )  # fmt: skip
    assert proven.revocation == "not checked: the bundle carries no revocation list"
    # the anchor's own copy at the end of the chain changes nothing
    bundle = epb.EvidenceBundle.FromString(data)
    bundle.certificates.append(anchor.public_bytes(Encoding.DER))
    assert evidence.verify_bundle(bundle.SerializeToString(), anchor, key).leaf_index == 3
    # the intermediate left out: the signer was not issued by the anchor
    del bundle.certificates[1:]
    with pytest.raises(evidence.EvidenceError) as caught:
        evidence.verify_bundle(bundle.SerializeToString(), anchor, key)
    assert caught.value.check == "chain"


@pytest.mark.parametrize(
    ("made", "check", "says"),
    [
        ({"intermediate_is_ca": False}, "chain", "issued another but is not a CA certificate"),
        (
            {"intermediate_until": NOW - DAY},
            "validity",
            "issuing certificate 'CN=CN issuing CA' was not valid at 2026-12-07T12:00:00Z",
        ),
    ],
)
def test_an_intermediate_that_may_not_issue_fails(
    made: dict[str, object], check: str, says: str
) -> None:
    data, anchor, key = _made_bundle(**made)  # type: ignore[arg-type]
    with pytest.raises(evidence.EvidenceError) as caught:
        evidence.verify_bundle(data, anchor, key)
    assert (caught.value.check, says in caught.value.message) == (check, True)


def test_an_anchor_file_holding_the_old_and_the_new_ca_verifies_either() -> None:
    """While the signer's CA rolls over the auditor may hold both CAs: the bundle verifies
    against the one its chain leads to, and a chain that leads to neither still fails."""
    data, anchor, key = _made_bundle()
    other = _ca("CN")[0]  # a CA of the same name whose key signed nothing here
    assert other.subject == anchor.subject
    for anchors in ([other, anchor], [anchor, other]):
        assert evidence.verify_bundle(data, anchors, key).leaf_index == 3
    with pytest.raises(evidence.EvidenceError) as caught:
        evidence.verify_bundle(data, [other, _ca("CN")[0]], key)
    assert caught.value.check == "chain"
    # a failure past the chain is the bundle's, whichever anchor comes first
    bundle = epb.EvidenceBundle.FromString(data)
    bundle.leaf_index = 2
    with pytest.raises(evidence.EvidenceError) as caught:
        evidence.verify_bundle(bundle.SerializeToString(), [other, anchor], key)
    assert caught.value.check == "inclusion"
