"""The composition root: start one hub (store, procedures, its gRPC servers, outbox worker, drop
folders and checkpoint loop) and stop it cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2_grpc

from hub.app import keys, learning
from hub.app.context import Clock, Settings, system_clock
from hub.app.delivery import OutboxWorker
from hub.app.health import StoreWatch
from hub.app.hub import Hub
from hub.app.registrysync import RegistrySync
from hub.app.reload import Change
from hub.app.tasks import cancel_and_wait
from hub.app.telemetry import Telemetry
from hub.config import HubConfig
from hub.connectors.dropfolder import DropFolder
from hub.core.errors import HubError
from hub.pb.customs_hub.v1 import audit_pb2 as apb
from hub.rpc.audit import AUDIT_SERVICE, AuditService
from hub.rpc.channels import PartnerChannels, PartnerEndpoint
from hub.rpc.domestic import DOMESTIC, DOMESTIC_SERVICE, DomesticService
from hub.rpc.partner import (
    PARTNER_KEEPALIVE,
    PARTNER_SERVICE,
    PartnerExchangeService,
    PartnerHealth,
)
from hub.rpc.recognition import RECOGNITION, RECOGNITION_SERVICE, RecognitionService
from hub.rpc.registry import PARTNER_REGISTRY, PARTNER_REGISTRY_SERVICE, PartnerRegistryService
from hub.rpc.server import (
    SERVER_OPTIONS,
    HubHealth,
    ServerTls,
    add_health_and_reflection,
    bind,
    connection_age,
    decoding_handler,
)
from hub.store.db import Store
from hub.store.lock import InstanceLock, LockLost

log = logging.getLogger("customs_hub.service")

AUDIT = apb.DESCRIPTOR.services_by_name["Audit"]


@dataclass
class RunningHub:
    """A hub with its two servers and its outbox worker, as one unit to start and stop."""

    config: HubConfig
    hub: Hub
    partner_server: grpc.aio.Server
    domestic_server: grpc.aio.Server
    worker: OutboxWorker
    channels: PartnerChannels
    partner_port: int
    domestic_port: int
    checkpoints: asyncio.Task[None]
    audit_server: grpc.aio.Server | None = None
    audit_port: int = 0
    folders: list[DropFolder] = field(default_factory=list)
    partner_exchange: PartnerExchangeService | None = None  # its per-partner allowances
    lock: InstanceLock | None = None  # held from start to stop
    # every port's health service, and the task that holds them to the store's state
    health: list[HubHealth] = field(default_factory=list)
    store_watch: asyncio.Task[None] | None = None
    # set when another process took the hub's lock while it ran (hub/store/lock.py): whoever
    # runs the hub stops it
    lock_lost: asyncio.Event = field(default_factory=asyncio.Event)
    # this hub asking partners about their AEOs (hub/app/registrysync.py)
    registry_sync: RegistrySync | None = None

    async def reload(self, path: Path | None = None) -> Change:
        """Read the configuration again and put it in place (hub/app/reload.py); a
        ConfigError, recorded in the trail, leaves the one in use."""
        change = await self.hub.reloader.reload(path)
        self.config = self.hub.config
        return change

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking new calls, finish or abandon what is in flight within ``grace`` seconds
        (the config's shutdown_grace_seconds by default), then release everything. Abandoned
        work is safe: nothing is answered before it is durable, and senders resend."""
        if grace is None:
            grace = self.config.limits.shutdown_grace_seconds
        # first of all, health checks and watches say NOT_SERVING, so that load balancers and
        # partners stop sending while calls in flight finish
        await cancel_and_wait(self.store_watch)
        for servicer in self.health:
            await servicer.enter_graceful_shutdown()
        for folder in self.folders:  # what a folder took is durable or still in its inbox
            await folder.stop()
        await asyncio.gather(
            self.worker.stop(grace),
            self.partner_server.stop(grace),
            self.domestic_server.stop(grace),
            *([self.audit_server.stop(grace)] if self.audit_server else []),
        )
        await cancel_and_wait(self.checkpoints)
        await self.hub.revocation_watch.stop()
        await self.hub.close()
        try:  # what was committed last is covered by a signed checkpoint
            await self.hub.audit.checkpoint()
        except HubError as exc:
            log.error("final trail checkpoint: %s", exc)
        await self.channels.close()
        if self.lock is not None:
            await self.lock.release()
        await self.hub.store.close()


def _endpoints(config: HubConfig, anchors: Mapping[str, bytes]) -> dict[str, PartnerEndpoint]:
    return {
        p.party: PartnerEndpoint(p.party, p.endpoint, anchors[p.party])
        for p in config.partners.values()
    }


def _on_reload(
    partner_tls: ServerTls,
    audit_tls: ServerTls | None,
    channels: PartnerChannels,
    worker: OutboxWorker,
    grace: float,
) -> Callable[[Settings, Settings], None]:
    """What a reload changes outside the procedures: the ports' TLS (new connections), the
    channels to partners (those changed are made anew), and a sender for each new partner."""
    closing: set[asyncio.Task[None]] = set()

    def reloaded(_old: Settings, new: Settings) -> None:
        key, cert = new.tls  # read with the rest of the settings: nothing is read here
        partner_tls.update(key, cert, b"".join(new.anchors.values()) or None)
        if audit_tls is not None:
            audit_tls.update(key, cert, None)
        for stale in channels.update(cert, key, _endpoints(new.config, new.anchors)):
            task = asyncio.create_task(stale.close(grace))  # calls on it end within grace
            closing.add(task)
            task.add_done_callback(closing.discard)
        worker.partners_changed()

    return reloaded


async def start_hub(
    config: HubConfig, *, clock: Clock = system_clock, telemetry: Telemetry | None = None
) -> RunningHub:
    """Start a hub; ``telemetry``: its tracer and meter (tests give in-memory exporters),
    else made from the config's [telemetry]."""
    # what the files hold, before anything is opened: a TLS key that does not match its
    # certificate would otherwise fail the bind with a misleading "address in use"
    keys.require_usable(config, clock())
    store = Store(config.store_url)
    lock = InstanceLock(store.db, config.party)
    try:
        await lock.acquire()  # one process serves a store: a second start stops here
        return await _start(config, store, lock, clock, telemetry)
    except BaseException:
        await lock.release()
        await store.close()
        raise


async def _start(
    config: HubConfig,
    store: Store,
    lock: InstanceLock,
    clock: Clock,
    telemetry: Telemetry | None = None,
) -> RunningHub:
    # a new database gets the schema; one at another revision is refused (`db upgrade`)
    await store.prepare(create=True, upgrade_hint=f"customs-hub db upgrade --config {config.path}")
    hub = Hub(config, store, clock=clock, telemetry=telemetry)
    # the trail key continues the history its newest checkpoint began, or hands over from
    # trail.previous_key; a key of anyone else's is refused before anything is written
    handing_over = await hub.audit.check_trail_keys(hub.audit.trail_keys, config)
    await learning.load(hub)  # partners' keys learned before, trusted again (ADR 0010)
    await hub.audit.record_config()
    if handing_over:
        await hub.audit.hand_over()
    limits = config.limits
    # every partner's own allowance fits in the server's limit, with room for health checks
    allowances = len(config.partners) * (limits.partner_calls + limits.partner_streams + 2)
    partner_server = grpc.aio.server(
        options=[
            *SERVER_OPTIONS,
            *PARTNER_KEEPALIVE,
            *connection_age(limits.connection_max_age_seconds, limits.connection_drain_seconds),
            ("grpc.max_receive_message_length", limits.max_batch_bytes),
        ],
        maximum_concurrent_rpcs=max(limits.max_concurrent_rpcs, allowances + 16),
    )
    exchange = PartnerExchangeService(hub)
    partner_server.add_generic_rpc_handlers([exchange.handler()])
    # health for registered partners only, and no reflection: partners have the contract
    partner_health = HubHealth([PARTNER_SERVICE])
    health_pb2_grpc.add_HealthServicer_to_server(
        PartnerHealth(partner_health, exchange), partner_server
    )
    tls, anchors = hub.settings.tls, hub.settings.anchors
    # TLS that a reload can change: partners' CAs, this hub's certificate
    partner_tls = ServerTls(*tls, b"".join(anchors.values()) or None, client_auth=True)
    partner_port = bind(partner_server, config.listen, partner_tls.credentials(), "server.listen")

    domestic_server = grpc.aio.server(
        options=[
            *SERVER_OPTIONS,
            ("grpc.max_receive_message_length", limits.xml_max_bytes + 64 * 1024),
        ],
    )
    channels = PartnerChannels(tls[1], tls[0], _endpoints(config, anchors))
    registry_sync = RegistrySync(hub, hub.ingress, channels)
    domestic_server.add_generic_rpc_handlers(
        [
            decoding_handler(DOMESTIC, DomesticService(hub)),
            decoding_handler(RECOGNITION, RecognitionService(hub)),
            decoding_handler(PARTNER_REGISTRY, PartnerRegistryService(registry_sync)),
        ]
    )
    domestic_health = add_health_and_reflection(
        domestic_server, [DOMESTIC_SERVICE, RECOGNITION_SERVICE, PARTNER_REGISTRY_SERVICE]
    )
    domestic_port = bind(domestic_server, config.domestic_listen, None, "server.domestic_listen")
    if not config.domestic_listen.startswith(("127.", "localhost", "[::1]")):
        log.warning("domestic port %s is not loopback and has no TLS yet", config.domestic_listen)

    audit_server, audit_port, audit_tls = None, 0, None
    if config.audit_listen:
        audit_server = grpc.aio.server(
            options=[
                *SERVER_OPTIONS,
                *connection_age(limits.connection_max_age_seconds, limits.connection_drain_seconds),
            ],
            maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
        )
        audit = AuditService(
            store,
            keys.token_verifier(
                config,
                revoked=lambda: hub.revocation.tokens,
                accepted=lambda: hub.settings.token_keys,  # a reload rotates the audit key
            ),
        )
        audit_server.add_generic_rpc_handlers([decoding_handler(AUDIT, audit)])
        audit_health = add_health_and_reflection(audit_server, [AUDIT_SERVICE])
        # TLS with the hub's certificate; auditors authenticate with tokens, not certificates
        audit_tls = ServerTls(*tls, None, client_auth=False)
        audit_port = bind(
            audit_server, config.audit_listen, audit_tls.credentials(), "audit.listen"
        )

    preflight_timeout = limits.preflight_timeout_seconds

    async def preflight(party: str) -> bytes:  # a partner's TLS server certificate
        return await channels.server_certificate(party, preflight_timeout)

    worker = OutboxWorker(hub, channels, hub.revocation_watch, preflight)
    hub.reloader.listeners.append(
        _on_reload(partner_tls, audit_tls, channels, worker, limits.shutdown_grace_seconds)
    )
    folders = [DropFolder(folder, hub) for folder in config.folders.values()]
    for folder in folders:
        folder.prepare()
    await partner_server.start()
    await domestic_server.start()
    health = [partner_health, domestic_health]
    if audit_server is not None:
        await audit_server.start()
        health.append(audit_health)

    async def store_changed(serving: bool) -> None:
        for servicer in health:
            await servicer.set_serving(serving)

    await store_changed(True)

    # NOT_SERVING on every port while the store does not answer, SERVING again once it does
    lost = asyncio.Event()  # set if another process took this hub's lock: it must stop

    async def probe() -> None:  # the store answers, and this hub still holds its lock
        await store.probe()
        try:
            await lock.keep()
        except LockLost:
            lost.set()
            raise

    store_watch = asyncio.create_task(
        StoreWatch(probe, store_changed).run(), name=f"store-watch-{config.party}"
    )
    worker.start()
    for folder in folders:
        folder.start()
    checkpoints = asyncio.create_task(hub.audit.keep_checkpoints(), name=f"checkpoints-{hub.party}")
    hub.revocation_watch.start()
    log.info(
        "hub %s serving partners on %s, domestic systems on %s",
        config.party,
        partner_port,
        domestic_port,
    )
    return RunningHub(
        config,
        hub,
        partner_server,
        domestic_server,
        worker,
        channels,
        partner_port,
        domestic_port,
        checkpoints,
        audit_server,
        audit_port,
        folders,
        exchange,
        lock,
        health,
        store_watch,
        lost,
        registry_sync,
    )
