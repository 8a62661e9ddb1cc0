"""One administration's hub: the receiving and submitting procedures around the pure core.

``Hub`` wires config, trust, signing key, routing and store together. The gRPC servicers and
the outbox worker call it; it never touches gRPC itself. What it accepts is durable before it
answers: a partner's message is committed with its signed receipt before the receipt leaves,
and a domestic submission is in the outbox before the submitter hears "queued".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from google.protobuf.message import DecodeError, Message

from hub.config import HubConfig
from hub.envelope import (
    UUID_TEXT,
    TimePolicy,
    build_envelope,
    check_time_window,
    make_receipt,
    open_envelope,
    sha256,
    sign_receipt,
)
from hub.errors import DuplicateConflictError, HubError, SubmissionError, TimeWindowError
from hub.messages import AeoStatus, ControlResult, GoodsDeclaration, business_keys
from hub.notify import Notifier
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.routing import RoutingTable
from hub.signing import Signer
from hub.store import InboundMessage, OutboundMessage, Rejection, Store
from hub.trust import PartnerTrust, TrustStore, party_of

log = logging.getLogger("customs_hub")

Clock = Callable[[], datetime]
DUPLICATE = pb.RECEIPT_OUTCOME_DUPLICATE


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    recipient: str


def load_trust(config: HubConfig, now: datetime) -> tuple[TrustStore, Signer]:
    """Read certificates and keys named by the config and check they belong together."""
    trust = TrustStore(local_party=config.party)
    for partner in config.partners.values():
        anchor = x509.load_pem_x509_certificate(partner.trust_anchor.read_bytes())
        certs = [x509.load_pem_x509_certificate(p.read_bytes()) for p in partner.signing_certs]
        trust.partners[partner.party] = PartnerTrust.build(partner.party, anchor, certs, now)
    own_anchor = x509.load_pem_x509_certificate(config.trust_anchor.read_bytes())
    own = PartnerTrust.build(
        config.party,
        own_anchor,
        [x509.load_pem_x509_certificate(config.signing_cert.read_bytes())],
        now,
    )
    trust.local_keys.update(own.signing_keys)
    signer = Signer.from_pem(config.signing_key.read_bytes())
    if signer.key_id not in trust.local_keys:
        raise HubError(
            f"{config.signing_key} does not match the signing certificate {config.signing_cert}",
            reason="config-invalid",
        )
    tls_cert = x509.load_pem_x509_certificate(config.tls_cert.read_bytes())
    if party_of(tls_cert) != config.party:
        raise HubError(
            f"{config.tls_cert} does not name party {config.party}", reason="config-invalid"
        )
    if tls_cert.public_key() == signer.private_key.public_key():
        raise HubError("the TLS key and the signing key must differ", reason="config-invalid")
    return trust, signer


class Hub:
    def __init__(self, config: HubConfig, store: Store, *, clock: Clock = system_clock) -> None:
        self.config = config
        self.party = config.party
        self.store = store
        self.clock = clock
        self.trust, self.signer = load_trust(config, clock())
        self.routing = RoutingTable(
            local_party=config.party,
            partner_countries={p.party: p.countries for p in config.partners.values()},
            rules=config.routes,
            local_countries=config.countries,
        )
        self.policy = TimePolicy(config.limits.clock_skew, config.limits.max_lifetime)
        self.inbound_arrived = Notifier()
        self.outbox_changed = Notifier()

    # --- from partners ---------------------------------------------------------------------

    async def receive(self, data: bytes, peer_party: str) -> pb.SignedReceipt:
        """Verify, deduplicate and persist one envelope from ``peer_party``.

        Returns the signed receipt (ACCEPTED or DUPLICATE) or raises a HubError after
        recording the rejection.
        """
        now = self.clock()
        try:
            opened = open_envelope(
                data,
                peer_party=peer_party,
                local_party=self.party,
                peer_keys=self.trust.keys_for(peer_party),
                now=now,
                policy=None,  # checked below, after a duplicate lookup
                max_bytes=self.config.limits.max_envelope_bytes,
            )
        except HubError as exc:
            await self.record_rejection(peer_party, data, exc)
            raise
        header = opened.header
        try:
            check_time_window(header, now, self.policy)
        except TimeWindowError as exc:
            # A retry of a message accepted before it expired is still a duplicate, not a
            # rejection: its sender may only have lost our first receipt.
            earlier = await self.store.find_inbound(peer_party, header.message_id)
            if earlier is not None and earlier.envelope_digest == opened.envelope_digest:
                return self._receipt(
                    header.message_id, opened.envelope_digest, peer_party, now, DUPLICATE
                )
            await self.record_rejection(peer_party, data, exc)
            raise
        row = InboundMessage(
            message_id=header.message_id,
            sender=header.sender,
            correlation_id=header.correlation_id,
            body_type=header.body_type,
            header=opened.header_bytes,
            body=opened.body,
            envelope_digest=opened.envelope_digest,
            business_keys=json.dumps(business_keys(opened.document), sort_keys=True),
            received_at=now,
        )

        def sign(_: InboundMessage) -> bytes:
            receipt = self._receipt(
                header.message_id,
                opened.envelope_digest,
                peer_party,
                now,
                pb.RECEIPT_OUTCOME_ACCEPTED,
            )
            return receipt.SerializeToString(deterministic=True)

        accepted, stored = await self.store.accept_inbound(row, sign)
        if accepted:
            log.info("accepted %s %s from %s", header.body_type, header.message_id, peer_party)
            self.inbound_arrived.notify()
            return pb.SignedReceipt.FromString(stored.signed_receipt)
        if stored.envelope_digest == opened.envelope_digest:
            return self._receipt(
                header.message_id, opened.envelope_digest, peer_party, now, DUPLICATE
            )
        conflict = DuplicateConflictError(
            f"message id {header.message_id} from {peer_party} was accepted before with "
            "different content"
        )
        await self.record_rejection(peer_party, data, conflict)
        raise conflict

    def _receipt(
        self,
        message_id: str,
        digest: bytes,
        sender: str,
        now: datetime,
        outcome: int,
        reason: str = "",
        detail: str = "",
    ) -> pb.SignedReceipt:
        receipt = make_receipt(
            message_id=message_id,
            envelope_digest=digest,
            outcome=outcome,
            receiver=self.party,
            sender=sender,
            received_at=now,
            reason=reason,
            detail=detail,
        )
        return sign_receipt(self.signer, receipt)

    def rejection_receipt(self, data: bytes, peer_party: str, error: HubError) -> pb.SignedReceipt:
        """A signed REJECTED receipt, so the sender holds proof of why we refused."""
        return self._receipt(
            claimed_message_id(data),
            sha256(data),
            peer_party,
            self.clock(),
            pb.RECEIPT_OUTCOME_REJECTED,
            error.reason,
            error.message,
        )

    async def record_rejection(
        self,
        source: str,
        data: bytes | None,
        error: HubError,
        document_digest: bytes | None = None,
    ) -> None:
        log.warning("rejected from %s: %s", source, error)
        await self.store.record_rejection(
            Rejection(
                at=self.clock(),
                source=source,
                message_id=claimed_message_id(data) if data else "",
                reason=error.reason,
                detail=error.message[:1024],
                digest=sha256(data) if data is not None else document_digest,
            )
        )

    # --- from domestic systems -------------------------------------------------------------

    async def submit(
        self,
        document: Message,
        recipients: Sequence[str] = (),
        correlation_id: str = "",
        document_digest: bytes | None = None,
        derived: Sequence[Message] = (),
    ) -> list[QueuedMessage]:
        """Route, sign and queue a domestic document, and any messages derived from it (e.g.
        the control result a notification reports), all in one transaction: either all of
        them are queued or, with the reason recorded, none."""
        documents = [document, *derived]
        try:
            plan = []
            for doc in documents:
                check_submission(doc, self.party)
                plan.append((doc, self.routing.recipients(doc, recipients)))
        except HubError as exc:
            await self.record_rejection("domestic", None, exc, document_digest=document_digest)
            raise
        now = self.clock()
        rows = []
        for doc, targets in plan:
            keys = json.dumps(business_keys(doc), sort_keys=True)
            for recipient in targets:
                data, header = build_envelope(
                    self.signer,
                    sender=self.party,
                    recipient=recipient,
                    document=doc,
                    created_at=now,
                    ttl=self.config.limits.message_ttl,
                    correlation_id=correlation_id,
                )
                rows.append(
                    OutboundMessage(
                        message_id=header.message_id,
                        correlation_id=correlation_id,
                        recipient=recipient,
                        body_type=header.body_type,
                        envelope=data,
                        envelope_digest=sha256(data),
                        business_keys=keys,
                        document_digest=document_digest,
                        created_at=now,
                    )
                )
        await self.store.enqueue(rows)
        self.outbox_changed.notify()
        return [QueuedMessage(r.message_id, r.recipient) for r in rows]


def claimed_message_id(data: bytes | None) -> str:
    """The message id an envelope claims, read without trusting it (for rejection records)."""
    if not data:
        return ""
    try:
        claimed = pb.Header.FromString(pb.Envelope.FromString(data).header).message_id
    except DecodeError:
        return ""
    # Unverified input goes into the rejection record only in a shape the store can hold.
    return claimed if UUID_TEXT.fullmatch(claimed) else ""


def check_submission(document: Message, local_party: str) -> None:
    """The minimum a business message needs before it may be signed and sent."""
    if isinstance(document, GoodsDeclaration):
        if not (document.functional_reference_id.strip() or document.id.strip()):
            raise SubmissionError(
                "a goods declaration needs a functional reference (LRN, D026) or an id (MRN, D014)",
                reason="missing-business-key",
            )
    elif isinstance(document, AeoStatus):
        if not document.aeo_id.strip():
            raise SubmissionError("an AEO status needs aeo_id", reason="missing-business-key")
        if document.issuing_administration not in ("", local_party):
            raise SubmissionError(
                f"this hub shares AEO decisions of {local_party}; the status names issuing "
                f"administration {document.issuing_administration!r}",
                reason="not-issuer",
            )
        document.issuing_administration = local_party
    elif isinstance(document, ControlResult):
        concerns = (
            document.declaration_id or document.functional_reference_id or document.container_ids
        )
        if not (document.control_id.strip() and concerns):
            raise SubmissionError(
                "a control result needs control_id and the declaration (MRN or LRN) or "
                "containers it concerns",
                reason="missing-business-key",
            )
