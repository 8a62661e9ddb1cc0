"""The hub's metrics (OpenTelemetry), made on ``Telemetry.meter`` (docs/telemetry.md).

The procedures call the small methods here at the places things happen (a message accepted,
a receipt settled, a rejection recorded, a commit made). Each returns at once when metering
is off (``on``), so the hot path costs one attribute read.

Every label value comes from a closed set: partners' ids from the configuration, body types
from the business messages (hub/core/messages.py), reasons from the registry
(hub/core/reasons.py), formats the hub registered, and a few fixed words; anything else is
"other". A partner, or a domestic system, can make the hub count, never name a new series.

The gauges (outbox depth and age, checkpoint age, certificates' days to expiry) are read by
the exporter on its own thread (Prometheus's scrape): they report values ``refresh`` keeps,
every ``REFRESH_SECONDS`` on the event loop, and never touch the store themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509
from opentelemetry.metrics import CallbackOptions, Observation

from adapters.formats import Translators
from hub.app.telemetry import Telemetry, short_type
from hub.config import HubConfig
from hub.core.envelope import claimed_header
from hub.core.errors import HubError
from hub.core.messages import BODY_TYPES
from hub.core.reasons import REASONS
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.store.db import Store
from hub.store.schema import DueDelivery, Settlement, as_utc


class Certificates(Protocol):
    """What the metrics read of a hub's settings (hub/app/context.py Settings)."""

    @property
    def tls(self) -> tuple[bytes, bytes]: ...

    @property
    def certificates(self) -> Mapping[str, tuple[bytes, list[bytes]]]: ...


class MeteredHub(Protocol):
    """What the metrics read of their hub (a HubContext; named so, not imported, as the
    context makes the metrics)."""

    party: str
    store: Store
    translators: Translators

    @property
    def config(self) -> HubConfig: ...

    @property
    def settings(self) -> Certificates: ...

    def clock(self) -> datetime: ...


log = logging.getLogger("customs_hub.metrics")

OTHER = "other"
REFRESH_SECONDS = 5.0
DOMESTIC = "domestic"
# where rejections come from besides partners: the fixed sources the procedures record
# (hub/app/submission.py, crlfetch.py, revocation.py, reload.py, hub/rpc/recognition.py);
# every drop folder counts as "folder"
SOURCES = frozenset(
    {DOMESTIC, "outbox-retry", "crl-fetch", "revocation", "reload", "recognition", "folder"}
)
FOLDER_PREFIX = "folder:"
# outcomes (closed sets)
ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
DELIVERED, RETRY, FAILED = "delivered", "retry", "failed"
DECODE, ENCODE = "decode", "encode"
TLS, SIGNING, ANCHOR = "tls", "signing", "anchor"
SHORT_TYPES = frozenset(short_type(name) for name in BODY_TYPES)
# seconds: commits and translations take milliseconds, deliveries up to the backoff's minutes
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# attempts a message took: one (the usual), a few (a partner briefly away), many (an outage)
TRIES_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100)

# label names
PARTNER, TYPE, OUTCOME, REASON, SOURCE = "partner", "type", "outcome", "reason", "source"
LANE, FORMAT, DIRECTION, PARTY, USE = "lane", "format", "direction", "party", "use"


def body_type_label(body_type: str) -> str:
    """A body type's short name if it is a business message, else "other"."""
    return short_type(body_type) if body_type in BODY_TYPES else OTHER


def reason_label(reason: str) -> str:
    return reason if reason in REASONS else OTHER


def claimed_body_type(data: bytes) -> str:
    """The body type an envelope's header claims, read without trusting it, as a label."""
    header = claimed_header(data)
    return body_type_label(header.body_type) if header is not None else OTHER


class Metrics:
    """A hub's instruments, and the values its gauges report."""

    def __init__(self, telemetry: Telemetry, hub: MeteredHub) -> None:
        self.on = telemetry.metering
        self.hub = hub
        # the gauges' values, each replaced whole by ``refresh`` (read on the exporter's thread)
        self._outbox: dict[str, tuple[int, float]] = {}
        self._checkpoint_age: float | None = None
        self._expiry: dict[tuple[str, str], float] = {}
        self._expiry_after: dict[tuple[str, str], datetime] = {}
        self._certificates_of: object = None  # the settings ``_expiry`` was read from
        if not self.on:
            return
        meter = telemetry.meter
        self.received_total = meter.create_counter(
            "customs_hub.messages.received",
            unit="{message}",
            description="Envelopes partners sent, by partner, type and outcome",
        )
        self.queued_total = meter.create_counter(
            "customs_hub.messages.queued",
            unit="{message}",
            description="Outbound messages queued for a partner, by partner and type",
        )
        self.sent_total = meter.create_counter(
            "customs_hub.messages.sent",
            unit="{message}",
            description="Outbound messages a partner's receipt settled, by partner, type and "
            "the receipt's outcome",
        )
        self.rejections_total = meter.create_counter(
            "customs_hub.rejections",
            unit="{rejection}",
            description="Refusals, by reason code and source (a partner, domestic, ...)",
        )
        self.attempts_total = meter.create_counter(
            "customs_hub.delivery.attempts",
            unit="{message}",
            description="Messages sent to a partner, by partner and what came of it",
        )
        self.latency = meter.create_histogram(
            "customs_hub.delivery.latency",
            unit="s",
            description="Seconds from a message's queueing to the receipt that settled it",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self.tries = meter.create_histogram(
            "customs_hub.delivery.attempts_per_message",
            unit="{attempt}",
            description="Attempts a message took until a partner's receipt settled it",
            explicit_bucket_boundaries_advisory=TRIES_BUCKETS,
        )
        self.commit_time = meter.create_histogram(
            "customs_hub.store.commit.duration",
            unit="s",
            description="Seconds a group commit's transaction took, by lane",
            explicit_bucket_boundaries_advisory=FAST_BUCKETS,
        )
        self.translation_time = meter.create_histogram(
            "customs_hub.translation.duration",
            unit="s",
            description="Seconds a document took to translate, by format and direction",
            explicit_bucket_boundaries_advisory=FAST_BUCKETS,
        )
        meter.create_observable_gauge(
            "customs_hub.outbox.depth",
            [self._observe_depth],
            unit="{message}",
            description="Messages queued for a partner",
        )
        meter.create_observable_gauge(
            "customs_hub.outbox.oldest_age",
            [self._observe_oldest],
            unit="s",
            description="Seconds the oldest message queued for a partner has waited",
        )
        meter.create_observable_gauge(
            "customs_hub.checkpoint.age",
            [self._observe_checkpoint],
            unit="s",
            description="Seconds since the newest signed trail checkpoint",
        )
        meter.create_observable_gauge(
            "customs_hub.certificate.days_to_expiry",
            [self._observe_expiry],
            unit="d",
            description="Days until a certificate the hub uses expires, by party and use",
        )

    # --- labels ----------------------------------------------------------------------------

    def partner(self, party: str) -> str:
        """A partner's id as the configuration names it; anyone else is "other"."""
        return party if party in self.hub.config.partners else OTHER

    def source(self, source: str) -> str:
        if source in self.hub.config.partners or source in SOURCES:
            return source
        return "folder" if source.startswith(FOLDER_PREFIX) else OTHER

    def format(self, format_id: str) -> str:
        return format_id if format_id in self.hub.translators.formats else OTHER

    # --- what the procedures call ----------------------------------------------------------

    def received(
        self,
        partner: str,
        envelopes: Sequence[bytes],
        results: Sequence[object],
        pending: Sequence[tuple[int, Any, Any]],
        outcomes: Sequence[object],
    ) -> None:
        """A batch of envelopes from ``partner`` answered (hub/app/ingress.py): each counted
        as accepted (new), duplicate or rejected, by its type (read from the stored row, or
        as its header claims for those not stored)."""
        if not self.on:
            return
        label = self.partner(partner)
        stored: dict[int, tuple[str, str]] = {}
        for (i, incoming, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, HubError) or not isinstance(results[i], pb.SignedReceipt):
                continue
            kind = ACCEPTED if getattr(outcome, "fresh", False) else DUPLICATE
            stored[i] = (body_type_label(incoming.row.body_type), kind)
        counted: Counter[tuple[str, str]] = Counter()  # one add per label set of the batch
        for i, result in enumerate(results):
            found = stored.get(i)
            if found is None:
                kind = REJECTED if isinstance(result, HubError) else DUPLICATE
                found = (claimed_body_type(envelopes[i]), kind)
            counted[found] += 1
        for (kind, outcome), count in counted.items():
            self.received_total.add(count, {PARTNER: label, TYPE: kind, OUTCOME: outcome})

    def queued(self, entries: Sequence[DueDelivery]) -> None:
        """Outbox entries committed (a ``HubContext.queued_listeners`` listener)."""
        counted = Counter((entry.partner, entry.body_type) for entry in entries)
        for (partner, body_type), count in counted.items():
            labels = {PARTNER: self.partner(partner), TYPE: body_type_label(body_type)}
            self.queued_total.add(count, labels)

    def settled(
        self,
        partner: str,
        settled: Sequence[Settlement],
        later: Sequence[object],
        now: datetime,
    ) -> None:
        """A frame's receipts stored (hub/app/delivery.py): the settled messages counted as
        sent, with their latency from queueing; those ``later`` as attempts to retry."""
        if not self.on:
            return
        label = self.partner(partner)
        # counted per label set, one add each for the frame: an add costs microseconds
        sent: Counter[tuple[str, str]] = Counter()
        attempts: Counter[str] = Counter()
        by_partner = {PARTNER: label}
        for done in settled:
            due, outcome = done.due, done.receipt.outcome
            outcome = outcome if outcome in (ACCEPTED, DUPLICATE, REJECTED) else OTHER
            sent[(body_type_label(due.body_type), outcome)] += 1
            attempts[REJECTED if done.dead_reason is not None else DELIVERED] += 1
            self.tries.record(due.attempts + 1, by_partner)
            if due.created_at is not None:
                self.latency.record(max(0.0, (now - due.created_at).total_seconds()), by_partner)
        for (kind, outcome), count in sent.items():
            self.sent_total.add(count, {PARTNER: label, TYPE: kind, OUTCOME: outcome})
        for attempt, count in attempts.items():
            self.attempts_total.add(count, {PARTNER: label, OUTCOME: attempt})
        if later:
            self.attempts_total.add(len(later), {PARTNER: label, OUTCOME: RETRY})

    def failed(self, partner: str, count: int) -> None:
        """``count`` messages whose delivery failed (a stream or call that broke)."""
        if self.on and count:
            self.attempts_total.add(count, {PARTNER: self.partner(partner), OUTCOME: FAILED})

    def rejected(self, source: str, reasons: Iterable[str]) -> None:
        """Rejections recorded (hub/app/audit.py), or refusals counted but not recorded."""
        if not self.on:
            return
        label = self.source(source)
        for reason in reasons:
            self.rejections_total.add(1, {REASON: reason_label(reason), SOURCE: label})

    def committed(self, lane: str, seconds: float) -> None:
        """A group commit's transaction (``GroupCommitter.observe``); lanes are the hub's own
        names (inbound, outbound, receipts)."""
        self.commit_time.record(seconds, {LANE: lane})

    def translated(self, format_id: str, direction: str, seconds: float) -> None:
        """A document translated (``Translators.observe``; on any thread)."""
        labels = {FORMAT: self.format(format_id), DIRECTION: direction}
        self.translation_time.record(seconds, labels)

    # --- the gauges ------------------------------------------------------------------------

    async def keep_fresh(self) -> None:
        """``refresh`` every ``REFRESH_SECONDS`` until cancelled (hub/runtime.py runs it while
        the hub runs, when metering)."""
        while True:
            await self.refresh_logged()
            await asyncio.sleep(REFRESH_SECONDS)

    async def refresh_logged(self) -> None:
        """``refresh``, with a failure logged rather than raised."""
        try:
            await self.refresh()
        except HubError as exc:  # the store did not answer: the gauges keep their values
            log.warning("metrics: %s", exc)
        except Exception:  # a bug here must not end the gauges for good
            log.exception("metrics: refreshing the gauges failed")

    async def refresh(self) -> None:
        """Read the gauges' values anew: the outbox and newest checkpoint from the store, the
        certificates from the settings (parsed again only after a reload)."""
        store, now = self.hub.store, self.hub.clock()
        outbox: dict[str, tuple[int, float]] = dict.fromkeys(self.hub.config.partners, (0, 0.0))
        for party, (count, oldest) in (await store.outbox.queued_by_partner()).items():
            label = self.partner(party)
            had, age = outbox.get(label, (0, 0.0))
            outbox[label] = (had + count, max(age, (now - oldest).total_seconds()))
        self._outbox = outbox
        newest = await store.trail.checkpoint_at()
        self._checkpoint_age = (
            None if newest is None else max(0.0, (now - as_utc(newest.signed_at)).total_seconds())
        )
        settings = self.hub.settings
        if settings is not self._certificates_of:
            self._expiry_after = self._expiries(settings.tls[1], settings.certificates)
            self._certificates_of = settings
        self._expiry = {
            key: (after - now).total_seconds() / 86400 for key, after in self._expiry_after.items()
        }

    def _expiries(
        self, tls: bytes, certificates: Mapping[str, tuple[bytes, list[bytes]]]
    ) -> dict[tuple[str, str], datetime]:
        """When each (party, use)'s certificate expires: this hub's TLS certificate, each
        party's trust anchor and signing certificates. Where a file holds several (a CA and
        its successor, signing keys in rotation), the latest: the one the party goes on with."""
        found: dict[tuple[str, str], datetime] = {}

        def add(party: str, use: str, pem: bytes) -> None:
            for cert in x509.load_pem_x509_certificates(pem):
                after = cert.not_valid_after_utc
                key = (party if party == self.hub.party else self.partner(party), use)
                found[key] = max(found.get(key, after), after)

        add(self.hub.party, TLS, tls)
        for party, (anchor, signing) in certificates.items():
            add(party, ANCHOR, anchor)
            for pem in signing:
                add(party, SIGNING, pem)
        return found

    def _observe_depth(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, {PARTNER: p}) for p, (count, _) in self._outbox.items()]

    def _observe_oldest(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(age, {PARTNER: p}) for p, (_, age) in self._outbox.items()]

    def _observe_checkpoint(self, _options: CallbackOptions) -> Iterable[Observation]:
        age = self._checkpoint_age
        return [] if age is None else [Observation(age)]

    def _observe_expiry(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(days, {PARTY: party, USE: use})
            for (party, use), days in self._expiry.items()
        ]
