"""The Audit service over TLS on loopback: queries, proofs an auditor checks with only the
hub's verifier key, and tokens that must not get anything."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import jwt
import pytest

from hub.app.keys import load_audit_key, token_issuer, token_verifier
from hub.cli.main import main
from hub.core.auth import MESSAGES_READ, TRAIL_READ, TokenIssuer
from hub.core.envelope import sha256, verify_receipt
from hub.core.errors import REASON_KEY
from hub.pb.customs_hub.v1 import audit_pb2 as apb
from hub.pb.customs_hub.v1 import audit_pb2_grpc as agrpc
from hub.pb.customs_hub.v1 import envelope_pb2 as epb
from hub.pb.customs_hub.v1 import trail_pb2 as tpb
from hub.runtime import RunningHub
from hub.trail import checkpoint, merkle
from hub.trail import events as trail
from tests.conftest import Federation
from tests.test_delivery import aeo_requests, drained, submit_batch
from tests.test_exchange import eventually, nz_signing_key

HOUR = timedelta(hours=1)


@dataclass
class Audited:
    cn: RunningHub
    sent: list[str]
    issuer: TokenIssuer
    verifier: checkpoint.NoteKey
    channel: grpc.aio.Channel

    def stub(self) -> agrpc.AuditStub:
        return agrpc.AuditStub(self.channel)

    def token(self, *scopes: str, partners: list[str] | None = None) -> list[tuple[str, str]]:
        issued = self.issuer.issue("auditor", scopes or [TRAIL_READ], HOUR, partners)
        return [("authorization", f"Bearer {issued}")]


@pytest.fixture
async def audited(federation: Federation, pki: Path) -> AsyncIterator[Audited]:
    cn = await federation.start("CN")
    await federation.start("NZ")
    sent = await submit_batch(cn, aeo_requests(12))
    await eventually(lambda: drained(cn), timeout=60)
    assert await cn.hub.audit.checkpoint() is not None
    credentials = grpc.ssl_channel_credentials((pki / "CN" / "ca.pem").read_bytes())
    channel = grpc.aio.secure_channel(f"127.0.0.1:{cn.audit_port}", credentials)
    verifier = checkpoint.parse_verifier((pki / "CN" / "trail.vkey").read_text())
    try:
        yield Audited(cn, sent, token_issuer(cn.config), verifier, channel)
    finally:
        await channel.close()


async def test_queries_filter_and_page_in_either_order(audited: Audited) -> None:
    stub, auth = audited.stub(), audited.token()
    everything = await stub.Query(
        apb.QueryRequest(oldest_first=True, page_size=1000), metadata=auth
    )
    indexes = [e.index for e in everything.entries]
    assert indexes == list(range(len(indexes))) and not everything.next_page_token
    # newest first, in pages of 5, with nothing repeated or skipped
    seen: list[int] = []
    token = ""
    while True:
        page = await stub.Query(apb.QueryRequest(page_size=5, page_token=token), metadata=auth)
        seen += [e.index for e in page.entries]
        token = page.next_page_token
        if not token:
            break
    assert seen == indexes[::-1]
    # each message: queued then delivered, found by id
    one = audited.sent[3]
    found = await stub.Query(apb.QueryRequest(message_id=one, oldest_first=True), metadata=auth)
    assert [e.event.kind for e in found.entries] == ["queued", "delivered"]
    assert all(merkle.leaf_hash(e.leaf) for e in found.entries)
    # by business key, kind, party and type
    aeo = found.entries[0].event.keys[0]
    by_key = await stub.Query(
        apb.QueryRequest(business_key=tpb.BusinessKey(name=aeo.name, value=aeo.value)),
        metadata=auth,
    )
    # the message's queued and delivered entries, and how it came to be: routed
    assert sorted(e.event.kind for e in by_key.entries) == ["delivered", "queued", "routed"]
    assert {e.event.message_id for e in by_key.entries} == {one, ""}
    delivered = await stub.Query(
        apb.QueryRequest(kinds=["delivered"], party="NZ", body_type="AeoStatus", page_size=100),
        metadata=auth,
    )
    assert sorted(e.event.message_id for e in delivered.entries) == sorted(audited.sent)
    # by time: nothing before the trail began, everything before a minute from now
    later = datetime.now(UTC) + timedelta(minutes=1)
    request = apb.QueryRequest(page_size=1000)
    request.until.FromDatetime(later)
    assert len((await stub.Query(request, metadata=auth)).entries) == len(indexes)
    request = apb.QueryRequest()
    request.since.FromDatetime(later)
    assert not (await stub.Query(request, metadata=auth)).entries


async def test_an_entry_comes_with_a_proof_the_auditor_checks_alone(audited: Audited) -> None:
    stub, auth = audited.stub(), audited.token()
    found = await stub.Query(apb.QueryRequest(message_id=audited.sent[0]), metadata=auth)
    index = found.entries[-1].index
    answer = await stub.GetEntry(apb.GetEntryRequest(index=index), metadata=auth)
    # 1. the checkpoint is the hub's, signed with its trail key
    signed = checkpoint.open_note(answer.checkpoint.note, audited.verifier)
    assert signed.size == answer.checkpoint.size and signed.root == answer.checkpoint.root
    # 2. the leaf is in the tree that checkpoint names
    assert merkle.verify_inclusion(
        merkle.leaf_hash(answer.entry.leaf), index, signed.size, answer.inclusion_proof, signed.root
    )
    assert trail.decode(answer.entry.leaf).message_id == audited.sent[0]
    # 3. a later checkpoint extends that one
    await submit_batch(audited.cn, aeo_requests(3))
    await eventually(lambda: drained(audited.cn), timeout=60)
    newer = await audited.cn.hub.audit.checkpoint()
    assert newer is not None
    proof = await stub.GetConsistencyProof(
        apb.GetConsistencyProofRequest(old_size=signed.size), metadata=auth
    )
    latest = checkpoint.open_note(proof.new_checkpoint.note, audited.verifier)
    assert latest.size == newer.size > signed.size
    assert merkle.verify_consistency(
        signed.size, latest.size, signed.root, latest.root, proof.proof
    )
    assert (await stub.GetCheckpoint(apb.GetCheckpointRequest(), metadata=auth)).size == latest.size
    old = await stub.GetCheckpoint(apb.GetCheckpointRequest(tree_size=signed.size), metadata=auth)
    assert old.note == answer.checkpoint.note


async def test_message_bytes_need_messages_read(audited: Audited) -> None:
    stub = audited.stub()
    request = apb.GetMessageRequest(message_id=audited.sent[0])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetMessage(request, metadata=audited.token(TRAIL_READ))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert dict(caught.value.trailing_metadata() or ())[REASON_KEY] == "scope-missing"
    answer = await stub.GetMessage(request, metadata=audited.token(TRAIL_READ, MESSAGES_READ))
    [message] = answer.messages
    assert (message.direction, message.partner) == ("outbound", "NZ")
    # the exact envelope the trail's digest names
    assert sha256(message.envelope) == message.envelope_digest


def forged(audited: Audited, **claims: object) -> str:
    now = int(datetime.now(UTC).timestamp())
    base = {
        "iss": audited.issuer.issuer,
        "aud": audited.issuer.audience,
        "sub": "x",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": "j",
        "scope": TRAIL_READ,
    }
    base.update(claims)
    key = load_audit_key(audited.cn.config)
    return jwt.encode(base, key, algorithm="EdDSA")


async def test_a_partner_restricted_token_sees_only_its_partners(audited: Audited) -> None:
    stub = audited.stub()
    sg_only = audited.token(TRAIL_READ, MESSAGES_READ, partners=["SG"])
    assert not (await stub.Query(apb.QueryRequest(page_size=1000), metadata=sg_only)).entries
    nz = await stub.Query(apb.QueryRequest(page_size=1000), metadata=audited.token(partners=["NZ"]))
    assert nz.entries and all("NZ" in (e.event.sender, e.event.recipient) for e in nz.entries)
    for call in (
        stub.GetEntry(apb.GetEntryRequest(index=nz.entries[0].index), metadata=sg_only),
        stub.GetMessage(apb.GetMessageRequest(message_id=audited.sent[0]), metadata=sg_only),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert dict(caught.value.trailing_metadata() or ())[REASON_KEY] == "partner-not-allowed"


async def test_bad_requests_are_refused_with_reasons(audited: Audited) -> None:
    stub, auth = audited.stub(), audited.token()
    size = (await stub.GetCheckpoint(apb.GetCheckpointRequest(), metadata=auth)).size
    cases = [
        (stub.Query(apb.QueryRequest(page_size=1001), metadata=auth), "audit-request-invalid"),
        (stub.Query(apb.QueryRequest(page_token="a5"), metadata=auth), "page-token-invalid"),
        (stub.Query(apb.QueryRequest(kinds=["erased"]), metadata=auth), "audit-request-invalid"),
        (stub.Query(apb.QueryRequest(body_type="Pizza"), metadata=auth), "audit-request-invalid"),
        (stub.GetEntry(apb.GetEntryRequest(index=size), metadata=auth), "not-yet-checkpointed"),
        (
            stub.GetEntry(apb.GetEntryRequest(index=0, tree_size=size + 5), metadata=auth),
            "not-yet-checkpointed",
        ),
        (
            stub.GetConsistencyProof(
                apb.GetConsistencyProofRequest(old_size=size + 1), metadata=auth
            ),
            "audit-request-invalid",
        ),
    ]
    for call, reason in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert dict(caught.value.trailing_metadata() or ())[REASON_KEY] == reason


async def run_cli(*args: str) -> int:
    """The CLI runs its own event loop: run it off this test's loop."""
    return await asyncio.to_thread(main, list(args))


async def test_cli_issues_tokens_and_queries_and_proves_remotely_and_locally(
    audited: Audited, pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(audited.cn.config.path)
    assert (
        await run_cli(
            "token",
            "issue",
            "--config",
            config,
            "--subject",
            "nao",
            "--scope",
            "trail:read",
            "--ttl",
            "30m",
            "--partner",
            "NZ",
        )
        == 0
    )
    token = capsys.readouterr().out.strip()
    grant = token_verifier(audited.cn.config).verify(token)
    assert (grant.subject, grant.partners) == ("nao", {"NZ"})
    assert timedelta(minutes=29) < grant.expires_at - datetime.now(UTC) <= timedelta(minutes=30)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    remote = [
        "--hub",
        f"127.0.0.1:{audited.cn.audit_port}",
        "--ca",
        str(pki / "CN" / "ca.pem"),
        "--token-file",
        str(token_file),
    ]
    one = audited.sent[5]
    assert await run_cli("trail", "query", *remote, "--message-id", one, "--json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["kind"] for line in lines] == ["delivered", "queued"]  # newest first
    assert all(line["message_id"] == one and line["recipient"] == "NZ" for line in lines)
    vkey = str(pki / "CN" / "trail.vkey")
    assert await run_cli("trail", "prove", *remote, "--message-id", one, "--key", vkey) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(" OK included in checkpoint" in line for line in out)
    # on the hub's own machine, with its config: the same, without a token
    assert await run_cli("trail", "prove", "--config", config, "--message-id", one) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert await run_cli("trail", "query", "--config", config, "--kind", "queued") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["INDEX", "AT", "KIND", "MESSAGE"]
    assert len(table) == 1 + len(audited.sent)
    # a proof checked against another hub's key fails, and says so
    other = str(pki / "NZ" / "trail.vkey")
    assert await run_cli("trail", "prove", *remote, "--message-id", one, "--key", other) == 1
    assert "BAD checkpoint does not verify" in capsys.readouterr().out
    # no token: refused before any call
    no_token = remote[:4]
    assert await run_cli("trail", "query", *no_token) == 2
    assert "needs a token" in capsys.readouterr().err


async def test_a_sender_proves_what_the_partner_logged_from_its_receipt_alone(
    audited: Audited, federation: Federation, pki: Path
) -> None:
    """CN holds NZ's signed receipt naming NZ's trail entry, size and root. Asking NZ's Audit
    service, CN checks that the entry is in that tree, and that NZ's latest checkpoint extends
    it: NZ logged exactly what it received and has not rewritten its trail since."""
    nz = federation.running["NZ"]
    await submit_batch(audited.cn, aeo_requests(2))  # grow NZ's trail past the receipts
    await eventually(lambda: drained(audited.cn), timeout=60)
    assert await nz.hub.audit.checkpoint() is not None
    nz_key = checkpoint.parse_verifier((pki / "NZ" / "trail.vkey").read_text())
    credentials = grpc.ssl_channel_credentials((pki / "NZ" / "ca.pem").read_bytes())
    token = token_issuer(nz.config).issue("CN-audit", [TRAIL_READ], HOUR, ["CN"])
    auth = [("authorization", f"Bearer {token}")]
    outbound = [(m, r) for m, r in await audited.cn.hub.store.views.outbound() if r is not None]
    assert outbound
    async with grpc.aio.secure_channel(f"127.0.0.1:{nz.audit_port}", credentials) as channel:
        stub = agrpc.AuditStub(channel)
        latest = checkpoint.open_note(
            (await stub.GetCheckpoint(apb.GetCheckpointRequest(), metadata=auth)).note, nz_key
        )
        for message, record in outbound:
            signed = epb.SignedReceipt.FromString(record.signed_receipt)
            receipt = verify_receipt(signed, "NZ", nz_signing_key(pki))
            assert receipt.trail_index < receipt.trail_size <= latest.size
            assert len(receipt.trail_root) == 32
            answer = await stub.GetEntry(
                apb.GetEntryRequest(index=receipt.trail_index, tree_size=receipt.trail_size),
                metadata=auth,
            )
            if answer.HasField("checkpoint"):  # NZ happened to sign one at that size
                assert answer.checkpoint.root == receipt.trail_root
            event = trail.decode(answer.entry.leaf)
            assert (event.kind, event.message_id, event.sender) == (
                "received",
                message.message_id,
                "CN",
            )
            assert event.envelope_digest == message.envelope_digest
            assert merkle.verify_inclusion(
                merkle.leaf_hash(answer.entry.leaf),
                receipt.trail_index,
                receipt.trail_size,
                answer.inclusion_proof,
                receipt.trail_root,
            )
            proof = await stub.GetConsistencyProof(
                apb.GetConsistencyProofRequest(old_size=receipt.trail_size), metadata=auth
            )
            assert proof.new_checkpoint.size == latest.size
            assert merkle.verify_consistency(
                receipt.trail_size, latest.size, receipt.trail_root, latest.root, proof.proof
            )
