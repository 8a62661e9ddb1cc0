"""What every procedure of a hub shares: its configuration, store, clock, keys, routing, the
group commit its writes go through, and the places work runs (the event loop, a few worker
threads, the translation process). ``Hub`` (hub/app/hub.py) is this with the procedures on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf.message import Message

from adapters.formats import Translators
from hub.app import keys
from hub.app import telemetry as telemetry_of
from hub.app.metrics import Metrics
from hub.app.notify import Notifier
from hub.app.telemetry import Telemetry
from hub.app.translation import Translation
from hub.config import HubConfig
from hub.core.agreements import Agreements
from hub.core.envelope import OpenedEnvelope, TimePolicy, open_envelope
from hub.core.revocation import Revocation
from hub.core.routing import RoutingTable
from hub.core.signing import Signer, VerificationKey
from hub.core.trust import LearnedKeys, TrustStore
from hub.store.db import Store
from hub.store.groupcommit import GroupCommitter
from hub.store.schema import DueDelivery

T = TypeVar("T")
Clock = Callable[[], datetime]

# The hub's worker threads (``off_loop``): CPU-bound work holds the GIL, so more of them would
# not verify faster, but a thread waiting for the translation process holds nothing, and a
# few such waits must leave threads for every other partner's envelopes.
WORKERS = 4
# A run of work done on the event loop itself (small envelopes, light documents) gives the
# loop a turn this often (``Slice``), so other calls wait at most about this long.
SLICE_SECONDS = 0.002


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    """What a configuration decides, read and checked: the config itself, the trust in
    partners' keys, this hub's signer, the routing rules and the time policy. A hub holds one
    at a time and a reload replaces it whole (``HubContext.settings``), so every call sees
    either the old settings or the new, never a mixture."""

    config: HubConfig
    trust: TrustStore
    signer: Signer
    routing: RoutingTable
    policy: TimePolicy
    tls: tuple[bytes, bytes]  # this hub's TLS key and certificate, PEM (keys.tls_identity)
    anchors: Mapping[str, bytes]  # each partner's CA certificate, PEM, by party
    # what is revoked (CRLs, auditors' tokens); hub/app/revocation.py swaps in a new one when
    # its files change, a reload reads it anew
    revocation: Revocation = field(default_factory=Revocation)
    # the keys auditors' tokens may be signed with: the audit key, then those it replaced
    token_keys: tuple[ed25519.Ed25519PublicKey, ...] = ()
    # every trust anchor and signing certificate the config names, PEM, by party (what the
    # store's certificate history keeps: keys.trusted_certificates)
    certificates: Mapping[str, tuple[bytes, list[bytes]]] = field(default_factory=dict)

    @property
    def agreements(self) -> Agreements:
        """The agreements and sharing policy (hub.toml's [agreements]; none configured: no
        policy), swapped with the rest of the settings on reload."""
        return self.config.agreements

    @classmethod
    def read(cls, config: HubConfig, now: datetime) -> Settings:
        """The settings of ``config``: its keys and certificates read and checked (a
        ConfigError names what is wrong)."""
        tls = keys.tls_identity(config)
        anchors = keys.partner_anchors(config)
        trust, signer = keys.load_trust(config, now)
        routing = RoutingTable(
            local_party=config.party,
            partner_countries={p.party: p.countries for p in config.partners.values()},
            rules=config.routes,
            local_countries=config.countries,
        )
        policy = TimePolicy(config.limits.clock_skew, config.limits.max_lifetime)
        revocation = keys.read_revocation(config)
        token_keys = keys.token_keys(config)
        certificates = keys.trusted_certificates(config)
        return cls(
            config, trust, signer, routing, policy, tls, anchors, revocation, token_keys,
            certificates,
        )  # fmt: skip


class HubContext:
    def __init__(
        self,
        config: HubConfig,
        store: Store,
        *,
        clock: Clock = system_clock,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = Settings.read(config, clock())
        self.party = config.party
        # traces and metrics ([telemetry]; tests give their own, with in-memory exporters)
        self.telemetry = telemetry or telemetry_of.of_config(config.telemetry, config.party)
        self.metrics = Metrics(self.telemetry, self)
        self.store = store
        self.clock = clock
        # partners' signing keys learned from the certificates their signatures carried
        # (hub/app/learning.py); loaded from the store at start, kept across reloads
        self.learned = LearnedKeys()
        self.inbound_arrived = Notifier()
        self.outbox_changed = Notifier()
        # every write a message takes goes through one group commit: inbound messages, new
        # outbound ones and partners' receipts share transactions (hub/store/groupcommit.py)
        self.writes = GroupCommitter(
            store.db.write,
            name=f"writes-{self.party}",
            observe=self.metrics.committed if self.metrics.on else None,
        )
        # called with the outbox entries of every committed group of new messages, in id
        # order, so senders can take them without reading them back (hub/app/delivery.py)
        self.queued_listeners: list[Callable[[Sequence[DueDelivery]], None]] = []
        if self.metrics.on:
            self.queued_listeners.append(self.metrics.queued)
        # hub.toml's [code_lists] are given to the translators here; a reload that changes
        # them swaps the translators' formats (hub/app/reload.py)
        self.translators = Translators(config.limits.xml, config.code_lists)
        if self.metrics.on:
            self.translators.observe = self.metrics.translated
        self.translation = Translation(self.translators, config.limits.xml)
        # CPU-bound work on what others send (verifying, parsing and translating documents)
        # runs here, not on the event loop, so one large document does not stall every other
        # partner's call
        self.workers = ThreadPoolExecutor(WORKERS, thread_name_prefix=f"hub-{self.party}-work")

    # what the current settings hold; read afresh at each use, so a reload takes effect at once
    @property
    def config(self) -> HubConfig:
        return self.settings.config

    @property
    def trust(self) -> TrustStore:
        return self.settings.trust

    @property
    def signer(self) -> Signer:
        return self.settings.signer

    @property
    def routing(self) -> RoutingTable:
        return self.settings.routing

    @property
    def policy(self) -> TimePolicy:
        return self.settings.policy

    @property
    def revocation(self) -> Revocation:
        return self.settings.revocation

    @property
    def agreements(self) -> Agreements:
        return self.settings.agreements

    def keys_for(self, party: str) -> Mapping[str, VerificationKey]:
        """``party``'s signing keys trusted now: those the configuration names, and those
        learned from certificates its trust anchor issued (docs/adr/0010-key-rotation.md).
        Revocation is applied by the caller (``Revocation.usable_keys``)."""
        return self.learned.keys_for(self.settings.trust, party)

    def open_from(
        self,
        party: str,
        data: bytes,
        *,
        max_bytes: int,
        body_types: Mapping[str, type[Message]],
    ) -> OpenedEnvelope:
        """An envelope ``party`` signed for this hub, of one of ``body_types``, opened now with
        its keys that revocation leaves usable: what a partner's question or answer between
        hubs (not a business message, which Ingress opens in batches) is checked by."""
        now = self.clock()
        usable, _withheld = self.revocation.usable_keys(party, self.keys_for(party), now)
        return open_envelope(
            data,
            peer_party=party,
            local_party=self.party,
            peer_keys=usable,
            now=now,
            policy=self.policy,
            max_bytes=max_bytes,
            body_types=body_types,
        )

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the hub's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self.workers, fn, *args)

    async def translate(self, format_id: str, content: bytes) -> Message:
        """A document's business message: translated on the loop when its format says it is
        light, otherwise on a worker thread (and a large one in the translation process)."""
        if self.translation.light(format_id, content):
            return self.translation.decode(format_id, content)
        return await self.off_loop(self.translation.decode, format_id, content)

    async def close(self) -> None:
        """Commit what is in flight; afterwards nothing more is accepted."""
        await self.writes.close()
        self.workers.shutdown(wait=False, cancel_futures=True)
        self.translation.close()
        # the exporters' last export, on a thread: to a collector that is down it takes
        # seconds (the OTLP exporter's retries), which the event loop is not held for
        await asyncio.to_thread(self.telemetry.shutdown)


class Slice:
    """Inline work on the event loop, a unit at a time: ``await pause()`` after each unit gives
    the loop a turn once ``SLICE_SECONDS`` have gone by since the last."""

    __slots__ = ("began",)

    def __init__(self) -> None:
        self.began = time.perf_counter()

    async def pause(self) -> None:
        if time.perf_counter() - self.began >= SLICE_SECONDS:
            await asyncio.sleep(0)
            self.began = time.perf_counter()
