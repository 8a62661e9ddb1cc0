"""``customs-hub evidence export`` and ``customs-hub evidence verify``: one message's evidence
bundle (docs/adr/0011-evidence-bundle.md), written from the hub's store or its Audit service,
and checked offline with nothing but the bundle, the signer's trust anchor and the hub's trail
verifier key.

A thin shell around hub/trail/evidence.py: this module reads and writes the files and asks
the store (or the Audit service) for the message, its leaf and its proof. Export checks the
bundle as ``verify`` will before writing it, so a bundle that would not verify is never
written (the error says which check failed).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from google.protobuf.message import DecodeError

from hub.app import keys, learning
from hub.cli import audit as auditcli
from hub.cli.trailfiles import read_certificates, read_key
from hub.config import load_config
from hub.core.envelope import sha256
from hub.core.errors import ConfigError, HubError
from hub.core.revocation import key_digest, parse_crl
from hub.core.trust import issuer_among
from hub.files import write_atomically
from hub.pb.customs_hub.v1 import audit_pb2 as apb
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.store.db import Store
from hub.trail import checkpoint
from hub.trail import evidence as bundles

EXIT_BAD = 1  # the bundle does not prove what it claims


class EvidenceCliError(HubError):
    default_reason = "evidence-invalid"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evidence = sub.add_parser(
        "evidence", help="one message's evidence bundle: export it, verify it offline"
    ).add_subparsers(dest="evidence_command", required=True)
    text = (
        "write a partner's message as received (or its receipt for one of ours), its signer's "
        "certificates, its trail leaf, the leaf's inclusion proof and the signed checkpoint "
        "into one file"
    )
    export = evidence.add_parser("export", help=text, description=text)
    where = export.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="this hub's config: read its store")
    where.add_argument("--hub", help="a remote hub's audit port, HOST:PORT (TLS)")
    export.add_argument("--ca", type=Path, help="with --hub: the CA that issued its certificate")
    export.add_argument(
        "--token-file",
        type=Path,
        help=f"with --hub: a token with scopes trail:read and messages:read "
        f"(default: ${auditcli.TOKEN_ENV})",
    )
    export.add_argument(
        "--certs",
        type=Path,
        help="with --hub: trust anchors and signing certificates (a trail export, or its "
        "certificates folder)",
    )
    export.add_argument(
        "--trail-vkey", help="with --hub: the hub's verifier key (trail.vkey), to check the bundle"
    )
    export.add_argument("--message-id", required=True, help="the message, as `messages` lists it")
    export.add_argument(
        "--partner",
        help="the partner that sent it (or received it, for a receipt) where the id is not unique",
    )
    export.add_argument(
        "--receipt",
        action="store_true",
        help="the partner's signed receipt for a message this hub sent, rather than a message "
        "it received",
    )
    export.add_argument("-o", "--out", type=Path, required=True, help="the bundle file to write")

    text = (
        "check a bundle offline: the signature with its certificate, the certificate's chain "
        "to the anchor, its party and signing profile, the trail leaf, its inclusion proof and "
        "the checkpoint's signature"
    )
    verify = evidence.add_parser("verify", help=text, description=text)
    verify.add_argument("bundle", type=Path, help="a file written by `evidence export`")
    verify.add_argument(
        "--anchor", type=Path, required=True, help="the signer's trust anchor (its CA), PEM"
    )
    verify.add_argument(
        "--trail-vkey",
        required=True,
        help="the hub's verifier key: a file such as trail.vkey, or the key string",
    )
    verify.add_argument("--json", action="store_true", help="the result as one JSON object")
    verify.add_argument(
        "--body", type=Path, help="also write the signed body here, once the bundle verified"
    )


def run(args: argparse.Namespace) -> int:
    if args.evidence_command == "export":
        return asyncio.run(export(args))
    return verify(args)


# --- verify ------------------------------------------------------------------------------


def read_bundle(path: Path) -> bytes:
    """The bundle's bytes, at most one more than MAX_BUNDLE_BYTES (a larger file is refused
    as such by the check), read without following a link."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise EvidenceCliError(f"{path}: cannot read the bundle: {exc.strerror}") from None
    with os.fdopen(descriptor, "rb") as f:
        return f.read(bundles.MAX_BUNDLE_BYTES + 1)


def verify(args: argparse.Namespace) -> int:
    anchors = keys.read_anchors(args.anchor, "trust anchor")
    trail_key = read_key(args.trail_vkey)
    data = read_bundle(args.bundle)
    try:
        proven = bundles.verify_bundle(data, anchors, trail_key)
    except bundles.EvidenceError as exc:
        if args.json:
            print(json.dumps({"ok": False, "check": exc.check, "problem": exc.message}))
        else:
            print(f"BAD ({exc.check}): {args.bundle}: {exc.message}")
        return EXIT_BAD
    if args.body:
        write_atomically(args.body, proven.body)
    if args.json:
        print(json.dumps(proven.as_json(), sort_keys=True))
    else:
        print("\n".join(proven.lines()))
    return 0


# --- export ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trusted:
    """What the exporter knows of one party: its anchor, its signing certificates (PEM or
    DER) and its anchor's CRLs (as the config names them)."""

    anchors: tuple[x509.Certificate, ...]  # its CA, or the old and the new while it rolls over
    signing: list[bytes]
    crls: list[bytes]


async def _local_trust(
    config_path: Path, store: Store
) -> tuple[dict[str, Trusted], checkpoint.NoteKey, str]:
    """What the config names and what earlier configurations and partners' signatures taught
    the store (hub/app/learning.py): a message signed with a key long rotated out, under a CA
    replaced since, is exported as well as today's."""
    config = load_config(config_path)
    crls = keys.revocation_lists(config)
    known = await learning.trusted_certificates(config, store)
    trusted = {
        party: Trusted(tuple(x509.load_pem_x509_certificates(anchor)), signing, crls.get(party, []))
        for party, (anchor, signing) in known.items()
    }
    return trusted, keys.trail_verifier(config), config.origin


def _remote_trust(args: argparse.Namespace) -> tuple[dict[str, Trusted], checkpoint.NoteKey]:
    if not args.certs or not args.trail_vkey:
        raise EvidenceCliError(
            "--hub needs --certs (the partners' anchors and signing certificates, as a trail "
            "export holds them) and --trail-vkey (the hub's verifier key)"
        )
    trusted = {
        party: Trusted(certs.anchors, [c.public_bytes(Encoding.DER) for c in certs.signing], [])
        for party, certs in read_certificates(args.certs).items()
    }
    return trusted, read_key(args.trail_vkey)


async def export(args: argparse.Namespace) -> int:
    source = await auditcli.open_source(args)
    try:
        if isinstance(source, auditcli.LocalTrail):
            trusted, trail_key, origin = await _local_trust(args.config, source.store)
        else:
            trusted, trail_key = _remote_trust(args)
            origin = args.hub
        bundle, party = await gather(source, args.message_id, args.partner, args.receipt)
    finally:
        await source.close()
    signer = trusted.get(party)
    if signer is None:
        raise EvidenceCliError(f"no trust anchor of {party} is known here to check the bundle with")
    key_id = _signing_key_id(bundle)
    certificate = signing_certificate(key_id, party, bundle, signer)
    if certificate is None:
        raise EvidenceCliError(
            f"no signing certificate of {party} with key {key_id[:16]} is known here: "
            f"{'the config' if args.config else args.certs} holds none"
        )
    bundle = dataclasses.replace(
        bundle,
        certificates=[certificate],
        crls=_crls_of_issuer(certificate, signer),
        exported_by=origin,
        exported_at=datetime.now(UTC),
    )
    data = bundles.encode_bundle(bundle)
    try:
        proven = bundles.verify_bundle(data, signer.anchors, trail_key)
    except bundles.EvidenceError as exc:
        raise EvidenceCliError(
            f"message {args.message_id}: the bundle would not verify, so it is not written: {exc}",
        ) from None
    write_atomically(args.out, data)
    print(
        f"wrote {args.out}: {proven.kind} {proven.message_id} signed by {proven.signer}, "
        f"leaf {proven.leaf_index} in the checkpoint of {proven.tree_size} entries"
    )
    return 0


async def gather(
    source: auditcli.TrailSource, message_id: str, partner: str | None, receipt: bool
) -> tuple[bundles.Bundle, str]:
    """The bundle's parts the hub holds: the envelope (and the receipt), the leaf recording
    it, the leaf's proof and the checkpoint; and the party whose certificate signed. Raises
    EvidenceCliError naming what is missing."""
    direction = "outbound" if receipt else "inbound"
    stored = await source.message(apb.GetMessageRequest(message_id=message_id))
    found = [
        m
        for m in stored.messages
        if m.direction == direction and (partner is None or m.partner == partner)
    ]
    what = "sent to" if receipt else "received from"
    if not found:
        others = sorted({m.direction for m in stored.messages})
        hint = ""
        if "outbound" in others and not receipt:
            hint = "; this hub sent it: its evidence is the partner's receipt (--receipt)"
        elif "inbound" in others and receipt:
            hint = "; this hub received it: export it without --receipt"
        raise EvidenceCliError(
            f"no message {message_id} {what} {partner or 'a partner'} is stored{hint}",
        )
    if len(found) > 1:
        parties = ", ".join(sorted(m.partner for m in found))
        raise EvidenceCliError(
            f"message {message_id} was {what} {parties}: choose one with --partner"
        )
    [message] = found
    if not message.envelope:
        raise EvidenceCliError(
            f"message {message_id} was stored before the hub kept envelopes (store revision "
            "0003): nothing signed to export"
        )
    signed_receipt = b""
    if receipt:
        signed_receipt = _receipt_of(message)
    kinds = bundles.LEAF_KINDS[bundles.RECEIPT if receipt else bundles.MESSAGE]
    entries = await auditcli._all(
        source, apb.QueryRequest(message_id=message_id, kinds=list(kinds)), 1000
    )
    digest = sha256(message.envelope)
    leaves = [
        e
        for e in entries
        if e.event.envelope_digest == digest
        and (e.event.recipient if receipt else e.event.sender) == message.partner
    ]
    if not leaves:
        raise EvidenceCliError(
            f"no {' or '.join(kinds)} leaf of the trail records message {message_id} "
            f"{what} {message.partner}"
        )
    index = min(e.index for e in leaves)
    try:
        answer = await source.entry(apb.GetEntryRequest(index=index))
    except HubError as exc:
        if exc.reason == "not-yet-checkpointed":
            raise EvidenceCliError(
                f"message {message_id}: its leaf {index} is not in a signed checkpoint yet; "
                "export again after the next checkpoint",
            ) from None
        raise
    bundle = bundles.Bundle(
        kind=bundles.RECEIPT if receipt else bundles.MESSAGE,
        envelope=message.envelope,
        signed_receipt=signed_receipt,
        certificates=[],
        leaf_index=answer.entry.index,
        leaf=answer.entry.leaf,
        inclusion_proof=list(answer.inclusion_proof),
        checkpoint=answer.checkpoint.note,
    )
    return bundle, message.partner


def _receipt_of(message: apb.StoredMessage) -> bytes:
    signed = message.signed_receipt
    if not signed:
        raise EvidenceCliError(
            f"message {message.message_id} to {message.partner} has no stored receipt (not "
            "delivered yet?)"
        )
    return bytes(signed)


def _signing_key_id(bundle: bundles.Bundle) -> str:
    """The key id that signed what the bundle proves: the receipt's, or the envelope's first
    signature's (the hub verified one signature per envelope; a partner signs with one key)."""
    try:
        if bundle.kind == bundles.RECEIPT:
            return pb.SignedReceipt.FromString(bundle.signed_receipt).signature.key_id
        envelope = pb.Envelope.FromString(bundle.envelope)
    except DecodeError:
        raise EvidenceCliError(f"the stored {bundle.kind} does not parse") from None
    return envelope.signatures[0].key_id if envelope.signatures else ""


def signing_certificate(
    key_id: str, party: str, bundle: bundles.Bundle, trusted: Trusted
) -> bytes | None:
    """The certificate of ``party`` whose key is ``key_id``, DER: one the envelope carries
    with its signature, if any, else one this hub trusts for the party. The one lookup of a
    signer's certificate: a history of learned and previous signing certificates is one more
    source of candidates here."""
    return bundles.certificate_for(
        key_id, party, [*carried_certificates(bundle.envelope), *trusted.signing]
    )


def carried_certificates(envelope: bytes) -> Iterable[bytes]:
    """The certificates an envelope's signatures carry (``Signature.certificate``, where the
    envelope format has that field; ADR 0010), read without naming the field, so that
    envelopes of either format work."""
    try:
        signatures = pb.Envelope.FromString(envelope).signatures
    except DecodeError:
        return
    for signature in signatures:
        for described, value in signature.ListFields():
            if described.name == "certificate" and isinstance(value, bytes) and value:
                yield value


def _crls_of_issuer(certificate: bytes, signer: Trusted) -> list[bytes]:
    """The CRLs, as DER, of the anchor that issued the signer's certificate (by the key that
    signed them): while the partner's CA rolls over (or after), the other CA's lists say
    nothing about it."""
    issuer = issuer_among(x509.load_der_x509_certificate(certificate), signer.anchors)
    if issuer is None:
        return []
    found = []
    for data in signer.crls:
        der = _der_crl(data)
        try:
            parsed = parse_crl(der, signer.anchors, "crl")
        except ConfigError:
            continue
        if parsed.issuer_key == key_digest(issuer):
            found.append(der)
    return found


def _der_crl(data: bytes) -> bytes:
    """A CRL as DER (the bundle's form), from the PEM or DER file the config names."""
    if not data.lstrip().startswith(b"-----BEGIN"):
        return data
    try:
        return x509.load_pem_x509_crl(data).public_bytes(Encoding.DER)
    except ValueError:
        raise EvidenceCliError("a CRL the config names is not PEM") from None
