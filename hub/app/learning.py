"""Partners' signing keys learned while they rotate (docs/adr/0010-key-rotation.md).

A partner rotating its message-signing key carries the new certificate with each signature
(envelope.proto ``Signature.certificate``). This hub accepts a key it was not configured with
only when that certificate passes hub/core/trust.py ``carried_signing_key`` (the partner's
own anchor, its party, the signing profile), is not revoked by that anchor's lists, and the
signature verifies with it at a time its certificate was valid (``VerificationKey.check_use``).
Then it keeps the certificate (hub/store/learned.py, with a "key-learned" leaf in the trail in
the same transaction) before the message or receipt that taught it is stored, and trusts the
key like a configured one from then on: after a reload, after a restart, until its
certificate ends or is revoked.

What it must never do: trust a key because a message says so without all of the above, or
keep a certificate whose signature did not verify.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hub.app import keys
from hub.app.context import HubContext
from hub.config import HubConfig
from hub.core.errors import TrustError
from hub.core.signing import VerificationKey
from hub.core.trust import LearnedKey, carried_signing_key, verification_key_of
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.store.certificates import ANCHOR
from hub.store.db import Store
from hub.store.learned import LearnedCertificate

log = logging.getLogger("customs_hub.service")


class Learner:
    """Reads the keys of certificates carried by one partner's signatures, for one batch
    (a ``KeyLearner``, hub/core/envelope.py), and remembers each, so that those whose
    signatures then verified can be kept (``learned``). Thread-safe enough for the worker
    threads a batch is opened on: each call writes one dict entry."""

    def __init__(self, hub: HubContext, party: str, now: datetime) -> None:
        self.party, self.now = party, now
        self.partner = hub.trust.partners.get(party)
        self.revocation = hub.revocation
        self.read: dict[str, LearnedKey] = {}

    def __call__(self, signature: pb.Signature) -> VerificationKey:
        if self.partner is None:
            raise TrustError(f"{self.party} is not a partner", reason="unknown-partner")
        found = self.read.get(signature.key_id)
        if found is None:
            found = carried_signing_key(signature.certificate, signature.key_id, self.partner)
        anchor = self.revocation.anchors.get(self.party)
        if anchor is not None and found.key.serial is not None:
            anchor.check(found.key.serial, "signing certificate", self.now)
        self.read[found.key.key_id] = found
        return found.key

    def learned(self, key_ids: Iterable[str]) -> list[LearnedKey]:
        """The keys read here that verified what ``key_ids`` name (each once)."""
        return list({k: self.read[k] for k in key_ids if k in self.read}.values())


async def remember(hub: HubContext, learned: list[LearnedKey], message_id: str = "") -> None:
    """Keep keys that verified a partner's signature: stored with their key-learned leaves
    (unless stored before), then trusted like configured keys. Before the message or receipt
    that taught them is stored, so the trail names a key before anything it verified."""
    if not learned:
        return
    now = hub.clock()
    rows = [_row(item, now, message_id) for item in learned]
    new = await hub.store.learned.learn(rows)
    hub.learned.add(learned)
    for row in new:
        log.info(
            "learned %s's signing key %s from the certificate its signature carried (%s), "
            "valid until %s",
            row.party,
            row.key_id[:16],
            row.subject,
            f"{row.not_after:%Y-%m-%dT%H:%M:%SZ}",
        )


def _row(item: LearnedKey, now: datetime, message_id: str) -> LearnedCertificate:
    cert = x509.load_der_x509_certificate(item.certificate)
    return LearnedCertificate(
        party=item.party,
        key_id=item.key.key_id,
        certificate=item.certificate,
        certificate_digest=item.digest,
        not_after=cert.not_valid_after_utc,
        learned_at=now,
        message_id=message_id,
        subject=cert.subject.rfc4514_string(),
    )


def restore(stored: Iterable[LearnedCertificate]) -> list[LearnedKey]:
    """The learned keys as kept in the store (at start). Each was checked when learned; what
    its partner's anchor, as configured now, still vouches for is decided at every use
    (hub/core/trust.py ``LearnedKeys``), and its dates and revocation too."""
    found = []
    for row in stored:
        try:
            cert = x509.load_der_x509_certificate(row.certificate)
            key = verification_key_of(cert, row.party)
        except (ValueError, TrustError) as exc:  # stored by this hub: a damaged row
            log.error("a learned certificate of %s cannot be read: %s", row.party, exc)
            continue
        found.append(LearnedKey(row.party, row.certificate, key))
    return found


async def load(hub: HubContext) -> None:
    """Trust the keys learned before this start."""
    hub.learned.add(restore(await hub.store.learned.all()))


async def trusted_certificates(
    config: HubConfig, store: Store
) -> dict[str, tuple[bytes, list[bytes]]]:
    """Every party's trust anchors and every signing certificate this hub knows, PEM, by
    party: those the config names (hub/app/keys.py ``trusted_certificates``, with this hub's
    ``signing.previous_certs``), those earlier configurations named (the store's certificate
    history, partners no longer configured too) and those learned from partners' signatures,
    ended ones too. What a trail export carries, so a message signed with a key rotated out
    long ago, under a CA replaced since, still verifies there. A party's anchors are one PEM
    bundle, the configured ones first."""
    anchors: dict[str, list[bytes]] = {}  # DER, in order, each once
    signing: dict[str, list[bytes]] = {}

    def add(into: dict[str, list[bytes]], party: str, der: bytes) -> None:
        known = into.setdefault(party, [])
        if der not in known:
            known.append(der)

    for party, (anchor_pem, signing_pems) in keys.trusted_certificates(config).items():
        for cert in x509.load_pem_x509_certificates(anchor_pem):
            add(anchors, party, cert.public_bytes(serialization.Encoding.DER))
        for one in signing_pems:
            der = x509.load_pem_x509_certificate(one).public_bytes(serialization.Encoding.DER)
            add(signing, party, der)
    for seen in await store.certificates.all():
        add(anchors if seen.role == ANCHOR else signing, seen.party, seen.certificate)
    for row in await store.learned.all():
        add(signing, row.party, row.certificate)

    def pem(der: bytes) -> bytes:
        return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)

    # a party with no anchor known has nothing to check its certificates with
    return {
        party: (b"".join(pem(d) for d in ders), [pem(d) for d in signing.get(party, [])])
        for party, ders in anchors.items()
    }
