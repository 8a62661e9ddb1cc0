"""Auditors' commands: ``token issue``, ``trail query`` and ``trail prove``, against the hub's
own store (``--config``) or a remote hub's Audit service (``--hub`` with a token).
``trail prove`` starts from the verifier key it is given and follows the trail key's
hand-overs (hub/trail/handover.py) to the key that signs the checkpoints it is shown. With
``--certs``, ``trail prove`` also checks the message's stored bytes against its proven leaf and
its sender's signature (hub/trail/messages.py), as ``trail verify --messages`` does offline.

Tokens are read from ``--token-file`` or the CUSTOMS_HUB_TOKEN environment variable, never
from the command line, where other users of the machine could read them; ``token issue``
prints the new token and nothing else.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import grpc
from google.protobuf import json_format

from hub.app import keys
from hub.app.auditors import MAX_PAGE, AuditReader
from hub.app.keys import token_issuer
from hub.cli import revoke as revokecli
from hub.cli import tables
from hub.cli.trailfiles import read_certificates, read_key
from hub.config import load_config
from hub.core.auth import SCOPES, Grant
from hub.core.errors import REASON_KEY, HubError
from hub.core.times import rfc3339
from hub.pb.customs_hub.v1 import audit_pb2 as apb
from hub.pb.customs_hub.v1 import audit_pb2_grpc as agrpc
from hub.pb.customs_hub.v1 import trail_pb2 as tpb
from hub.store.db import Store
from hub.trail import checkpoint, handover, merkle
from hub.trail import messages as evidence
from hub.trail.verify import Record

TOKEN_ENV = "CUSTOMS_HUB_TOKEN"  # noqa: S105 - the variable's name, not a secret
_TTL = re.compile(r"([1-9][0-9]{0,5})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# What the hub's own operator may read through --config: everything.
OPERATOR = Grant("operator", SCOPES, None, "", datetime.max.replace(tzinfo=UTC))


class AuditCliError(HubError):
    default_reason = "audit-cli"


def ttl(text: str) -> timedelta:
    match = _TTL.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 30m, 8h or 7d; found {text!r}"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-12-01T00:00:00Z; found {text!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _key(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as mrn=24GB...; found {text!r}")
    return name, value


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="auditors' bearer tokens").add_subparsers(
        dest="token_command", required=True
    )
    issue = token.add_parser("issue", help="mint a token for the Audit service; printed alone")
    issue.add_argument("--config", type=Path, required=True, help="the hub's hub.toml")
    issue.add_argument("--subject", required=True, help="who the token is for")
    issue.add_argument(
        "--scope", action="append", required=True, choices=sorted(SCOPES), help="repeatable"
    )
    issue.add_argument("--ttl", type=ttl, default=timedelta(hours=8), help="e.g. 30m, 8h, 7d")
    issue.add_argument(
        "--partner",
        action="append",
        help="restrict to entries and messages involving this partner (repeatable)",
    )
    revokecli.add_token_parser(token)


def add_trail_parsers(trail_cmd: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, text in (
        ("query", "list trail entries matching filters, newest first"),
        ("prove", "fetch and check inclusion proofs for every entry about a message"),
    ):
        p = trail_cmd.add_parser(name, help=text)
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", type=Path, help="this hub's config: read its store")
        where.add_argument("--hub", help="a remote hub's audit port, HOST:PORT (TLS)")
        p.add_argument("--ca", type=Path, help="with --hub: the CA that issued its certificate")
        p.add_argument(
            "--token-file", type=Path, help=f"with --hub: the token (default: ${TOKEN_ENV})"
        )
        p.add_argument("--json", action="store_true", help="one JSON object per line")
        if name == "prove":
            p.add_argument("--message-id", required=True, help="the message whose entries to prove")
            p.add_argument(
                "--key", help="the hub's verifier key (trail.vkey); with --config, its own"
            )
            p.add_argument(
                "--certs",
                type=Path,
                help="trust anchors and signing certificates (a trail export, or its "
                "certificates folder): also fetch the message (scope messages:read) and check "
                "its bytes against its leaf and its sender's signature",
            )
            continue
        p.add_argument("--since", type=_when, help="ISO 8601, inclusive")
        p.add_argument("--until", type=_when, help="ISO 8601, exclusive")
        p.add_argument("--party", help="sender or recipient")
        p.add_argument("--type", dest="body_type", help="e.g. AeoStatus")
        p.add_argument("--message-id", help="entries about this message")
        p.add_argument("--correlation-id", help="entries with this correlation id")
        p.add_argument("--key", type=_key, help="business key NAME=VALUE, e.g. mrn=24GB...")
        p.add_argument("--kind", action="append", default=[], help="event kind (repeatable)")
        p.add_argument("--oldest-first", action="store_true", help="oldest entries first")
        p.add_argument("--limit", type=int, default=100, help="at most this many entries")


class TrailSource(Protocol):
    async def query(self, request: apb.QueryRequest) -> apb.QueryResponse: ...
    async def entry(self, request: apb.GetEntryRequest) -> apb.GetEntryResponse: ...
    async def message(self, request: apb.GetMessageRequest) -> apb.GetMessageResponse: ...
    async def handovers(self) -> apb.KeyHandovers: ...
    async def consistency(
        self, request: apb.GetConsistencyProofRequest
    ) -> apb.ConsistencyProof: ...
    async def close(self) -> None: ...


class LocalTrail:
    """The hub's own store, read as its operator."""

    def __init__(self, store: Store) -> None:
        self.store, self.reader = store, AuditReader(store)

    async def query(self, request: apb.QueryRequest) -> apb.QueryResponse:
        return await self.reader.query(request, OPERATOR)

    async def entry(self, request: apb.GetEntryRequest) -> apb.GetEntryResponse:
        return await self.reader.entry(request, OPERATOR)

    async def message(self, request: apb.GetMessageRequest) -> apb.GetMessageResponse:
        return await self.reader.message(request, OPERATOR)

    async def handovers(self) -> apb.KeyHandovers:
        return await self.reader.handovers()

    async def consistency(self, request: apb.GetConsistencyProofRequest) -> apb.ConsistencyProof:
        return await self.reader.consistency(request)

    async def close(self) -> None:
        await self.store.close()


class RemoteTrail:
    """A hub's Audit service over TLS, with a bearer token."""

    def __init__(self, address: str, ca: bytes, token: str) -> None:
        credentials = grpc.ssl_channel_credentials(ca)
        self.channel = grpc.aio.secure_channel(address, credentials)
        self.stub = agrpc.AuditStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.address = address

    async def _call(self, method: str, request: object) -> object:
        try:
            return await getattr(self.stub, method)(request, metadata=self.metadata, timeout=30)
        except grpc.aio.AioRpcError as exc:
            reason = dict(exc.trailing_metadata() or ()).get(REASON_KEY, exc.code().name.lower())
            raise AuditCliError(
                f"{self.address}: {method} refused ({reason}): {exc.details()}", reason=str(reason)
            ) from None

    async def query(self, request: apb.QueryRequest) -> apb.QueryResponse:
        answer = await self._call("Query", request)
        assert isinstance(answer, apb.QueryResponse)  # noqa: S101 - the stub's type
        return answer

    async def entry(self, request: apb.GetEntryRequest) -> apb.GetEntryResponse:
        answer = await self._call("GetEntry", request)
        assert isinstance(answer, apb.GetEntryResponse)  # noqa: S101
        return answer

    async def message(self, request: apb.GetMessageRequest) -> apb.GetMessageResponse:
        answer = await self._call("GetMessage", request)
        assert isinstance(answer, apb.GetMessageResponse)  # noqa: S101
        return answer

    async def handovers(self) -> apb.KeyHandovers:
        answer = await self._call("GetKeyHandovers", apb.GetKeyHandoversRequest())
        assert isinstance(answer, apb.KeyHandovers)  # noqa: S101
        return answer

    async def consistency(self, request: apb.GetConsistencyProofRequest) -> apb.ConsistencyProof:
        answer = await self._call("GetConsistencyProof", request)
        assert isinstance(answer, apb.ConsistencyProof)  # noqa: S101
        return answer

    async def close(self) -> None:
        await self.channel.close()


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AuditCliError(f"{path}: cannot read the {what}: {exc.strerror}") from None


async def open_source(args: argparse.Namespace) -> TrailSource:
    if args.config:
        hint = f"customs-hub db upgrade --config {args.config}"
        return LocalTrail(
            await Store.existing(load_config(args.config).store_url, upgrade_hint=hint)
        )
    if not args.ca:
        raise AuditCliError("--hub needs --ca, the CA that issued the hub's TLS certificate")
    token = (
        _read_file(args.token_file, "token").decode("ascii", "replace").strip()
        if args.token_file
        else os.environ.get(TOKEN_ENV, "")
    )
    if not token:
        raise AuditCliError(f"--hub needs a token: --token-file FILE or ${TOKEN_ENV}")
    return RemoteTrail(args.hub, _read_file(args.ca, "CA certificate"), token)


def issue_token(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        token = token_issuer(config).issue(args.subject, args.scope, args.ttl, args.partner)
    except ValueError as exc:
        raise AuditCliError(str(exc)) from None
    print(token)
    return 0


def _event_json(entry: apb.TrailEntryView) -> dict[str, object]:
    out: dict[str, object] = {"index": entry.index, "leaf_hash": merkle.leaf_hash(entry.leaf).hex()}
    out.update(json_format.MessageToDict(entry.event, preserving_proto_field_name=True))
    return out


def _row(entry: apb.TrailEntryView) -> tuple[str, ...]:
    e = entry.event
    keys = " ".join(f"{k.name}={k.value}" for k in e.keys)
    note = " ".join(x for x in (e.reason, e.outcome, keys, e.detail) if x)
    return (
        str(entry.index),
        rfc3339(e.at.ToDatetime(UTC), "seconds"),
        e.kind,
        e.message_id,
        e.body_type.rsplit(".", 1)[-1],
        e.sender or "-",
        e.recipient or "-",
        note,
    )


def table(entries: Sequence[apb.TrailEntryView]) -> str:
    header = ("INDEX", "AT", "KIND", "MESSAGE ID", "TYPE", "FROM", "TO", "DETAIL")
    return tables.render(header, (_row(e) for e in entries))


async def query(args: argparse.Namespace) -> int:
    if not 0 < args.limit <= 100_000:
        raise AuditCliError(f"--limit must be from 1 to 100000; found {args.limit}")
    request = apb.QueryRequest(
        party=args.party or "",
        body_type=args.body_type or "",
        message_id=args.message_id or "",
        correlation_id=args.correlation_id or "",
        kinds=args.kind,
        oldest_first=args.oldest_first,
    )
    if args.since:
        request.since.FromDatetime(args.since.astimezone(UTC))
    if args.until:
        request.until.FromDatetime(args.until.astimezone(UTC))
    if args.key:
        request.business_key.CopyFrom(tpb.BusinessKey(name=args.key[0], value=args.key[1]))
    source = await open_source(args)
    try:
        entries = await _all(source, request, args.limit)
    finally:
        await source.close()
    if args.json:
        for entry in entries:
            print(json.dumps(_event_json(entry), sort_keys=True))
    else:
        print(table(entries))
    return 0


async def _all(
    source: TrailSource, request: apb.QueryRequest, limit: int
) -> list[apb.TrailEntryView]:
    entries: list[apb.TrailEntryView] = []
    while len(entries) < limit:
        request.page_size = min(MAX_PAGE, limit - len(entries))
        page = await source.query(request)
        entries.extend(page.entries)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    return entries


def _own_verifier(args: argparse.Namespace) -> checkpoint.NoteKey:
    return keys.trail_verifier(load_config(args.config))


async def prove(args: argparse.Namespace) -> int:
    """Every entry about the message, each with its proof checked here: the checkpoint's
    signature with the trail key in force at its size (the verifier key given, then each key
    a hand-over named), then the leaf's inclusion under the signed root."""
    if args.key:
        key = read_key(args.key)
    elif args.config:
        key = _own_verifier(args)
    else:
        raise AuditCliError("--hub needs --key, the hub's verifier key (its trail.vkey)")
    source = await open_source(args)
    results: list[dict[str, object]] = []
    try:
        keys = await TrailKeys.fetch(source, key)
        request = apb.QueryRequest(message_id=args.message_id, oldest_first=True)
        entries = await _all(source, request, 100_000)
        if not entries:
            raise AuditCliError(f"no trail entries name message {args.message_id}")
        for entry in entries:
            results.append(await _prove_one(source, entry, keys))
        checked = None
        if args.certs:
            certificates = read_certificates(args.certs)
            stored = await source.message(apb.GetMessageRequest(message_id=args.message_id))
            checked = _check_messages(entries, results, stored, certificates)
    finally:
        await source.close()
    if args.json and (keys.problem or keys.chain.handovers):
        print(json.dumps({"trail_keys": keys.verifiers(), "problem": keys.problem}, sort_keys=True))
    elif args.json:
        pass
    elif keys.problem:
        print(f"trail keys: BAD {keys.problem}")
    elif keys.chain.handovers:
        print(f"trail keys followed: {keys.chain.describe()}")
    for result in results:
        if args.json:
            print(json.dumps(result, sort_keys=True))
        else:
            print(result["line"])
    if checked is not None:
        if args.json:
            problems = [p.line() for p in checked.problems]
            print(json.dumps({"messages": checked.ok, "problems": problems}, sort_keys=True))
        else:
            print(checked.summary())
    ok = (
        not keys.problem
        and all(r["status"] != "bad" for r in results)
        and (checked is None or checked.ok)
    )
    return 0 if ok else 1


class TrailKeys:
    """The trail keys an auditor follows from the verifier key it holds: the hub's
    hand-overs, each checked (hub/trail/handover.py follow_proven), each consistent with the
    next, and the last with every later checkpoint a proof is given in."""

    def __init__(
        self,
        source: TrailSource,
        chain: handover.KeyChain,
        points: dict[int, checkpoint.Checkpoint],
        problem: str = "",
    ) -> None:
        self.source, self.chain, self.points, self.problem = source, chain, points, problem
        self.extends: dict[int, bool] = {}  # checkpoint size -> consistent with the last hand-over

    @classmethod
    async def fetch(cls, source: TrailSource, key: checkpoint.NoteKey) -> TrailKeys:
        answer = await source.handovers()
        given = [
            handover.ProvenHandover(
                h.checkpoint.note, h.entry.index, h.entry.leaf, h.inclusion_proof
            )
            for h in answer.handovers
        ]
        try:
            chain, points = handover.follow_proven(given, key)
        except checkpoint.CheckpointError as exc:
            return cls(source, handover.KeyChain(key), {}, str(exc))
        keys = cls(source, chain, points)
        steps = chain.handovers
        for old, new in itertools.pairwise(steps):
            if not await keys._consistent(points[old.size], points[new.size]):
                keys.problem = f"the hand-over at {new.size} does not extend the one at {old.size}"
        return keys

    def verifiers(self) -> list[dict[str, object]]:
        return [{"key": self.chain.first.verifier(), "after": 0}] + [
            {"key": h.new.verifier(), "after": h.size} for h in self.chain.handovers
        ]

    async def _consistent(self, old: checkpoint.Checkpoint, new: checkpoint.Checkpoint) -> bool:
        if old.size == new.size:
            return old.root == new.root
        answer = await self.source.consistency(
            apb.GetConsistencyProofRequest(old_size=old.size, new_size=new.size)
        )
        try:
            return merkle.verify_consistency(
                old.size, new.size, old.root, new.root, list(answer.proof)
            )
        except merkle.MerkleError:
            return False

    async def open(self, note: bytes) -> checkpoint.Checkpoint:
        """A checkpoint a proof is given in, verified with the key in force at its size; one
        after the last hand-over must also extend it (CheckpointError if not)."""
        if self.problem:
            raise checkpoint.CheckpointError(
                f"the trail keys could not be followed: {self.problem}"
            )
        size = checkpoint.read_unverified(note).size
        key = self.chain.key_for(size)
        signed = checkpoint.open_note(note, key)
        steps = self.chain.handovers
        if steps and signed.size > steps[-1].size:
            if signed.size not in self.extends:
                last = self.points[steps[-1].size]
                self.extends[signed.size] = await self._consistent(last, signed)
            if not self.extends[signed.size]:
                raise checkpoint.CheckpointError(
                    f"the checkpoint at {signed.size} does not extend the hand-over at "
                    f"{steps[-1].size}"
                )
        return signed


def _check_messages(
    entries: Sequence[apb.TrailEntryView],
    results: Sequence[dict[str, object]],
    stored: apb.GetMessageResponse,
    certificates: dict[str, evidence.PartyCertificates],
) -> evidence.MessagesReport:
    """The stored messages checked against the entries just proven: their leaves' digests and
    their senders' signatures. An entry not yet in a checkpoint covers nothing yet."""
    proven = [e for e, r in zip(entries, results, strict=True) if r["status"] == "ok"]
    pending = [e.index for e, r in zip(entries, results, strict=True) if r["status"] != "ok"]
    leaves = evidence.message_leaves(Record(e.index, e.leaf, b"") for e in proven)
    covered = min(pending, default=max((e.index for e in entries), default=-1) + 1)
    records = [
        evidence.MessageRecord(
            evidence.INBOUND if m.direction == "inbound" else evidence.OUTBOUND,
            m.partner,
            m.message_id,
            m.envelope,
            m.header,
            m.body,
        )
        for m in stored.messages
    ]
    return evidence.verify_messages(records, leaves, covered, certificates)


async def _prove_one(
    source: TrailSource, entry: apb.TrailEntryView, keys: TrailKeys
) -> dict[str, object]:
    head = f"{entry.index:>8}  {entry.event.kind:<16}"
    try:
        answer = await source.entry(apb.GetEntryRequest(index=entry.index))
    except HubError as exc:
        if exc.reason == "not-yet-checkpointed":
            return {
                "index": entry.index,
                "kind": entry.event.kind,
                "status": "pending",
                "line": f"{head}  not yet in a signed checkpoint; try again later",
            }
        raise
    status, detail = "ok", ""
    try:
        signed = await keys.open(answer.checkpoint.note)
    except checkpoint.CheckpointError as exc:
        status, detail = "bad", f"checkpoint does not verify: {exc}"
    else:
        if answer.entry.leaf != entry.leaf:
            status, detail = "bad", "the entry differs from the one the query returned"
        elif not _included(answer, signed):
            status, detail = "bad", "the inclusion proof does not verify"
        else:
            detail = f"included in checkpoint {signed.size} of {signed.origin}, signature OK"
    return {
        "index": entry.index,
        "kind": entry.event.kind,
        "status": status,
        "checkpoint": answer.checkpoint.size,
        "line": f"{head}  {'OK' if status == 'ok' else 'BAD'} {detail}",
    }


def _included(answer: apb.GetEntryResponse, signed: checkpoint.Checkpoint) -> bool:
    try:
        return merkle.verify_inclusion(
            merkle.leaf_hash(answer.entry.leaf),
            answer.entry.index,
            signed.size,
            list(answer.inclusion_proof),
            signed.root,
        )
    except merkle.MerkleError:
        return False
