"""Revocation while the hub runs: the revocation lists and the auditors' token deny-list are
re-read when their files change, and partners' TLS certificates are checked against them.

Every ``revocation_check_seconds`` the watcher looks at the files' mtime and size (no reading);
when one changed it reads them all again (hub/app/keys.py, off the loop) and swaps the new set
into the hub's settings in one assignment, as a reload does (hub/app/reload.py), which reads
them too. A new set that is not valid (a CRL not signed by its anchor, a file gone) is refused
with a log line naming the file, and the one in use stays. A CRL past its nextUpdate is logged
once, saying whether its anchor's certificates are now refused (``crl_stale = "closed"``, the
default) or still accepted (``"open"``). Lists with a distribution point configured are fetched
when due (hub/app/crlfetch.py) by a task of their own, so that a slow distribution point never
holds up the re-reading of the files; a newer list fetched is re-read at once.

The watcher also says whether the outbox may deliver to a partner (``stop_of``): not when the
partner's TLS server certificate, as the last pre-flight handshake saw it (hub/rpc/channels.py),
or every signing certificate it could sign receipts with is revoked (or its CA's list is stale,
failing closed). That is derived from the lists in force each time it is asked, so a partner
stops within a check of a list revoking it and goes on once a reload gives it a certificate
the lists do not revoke.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from cryptography import x509

from hub.app import keys
from hub.app.audit import Audit
from hub.app.context import HubContext, Settings
from hub.app.crlfetch import CrlFetcher
from hub.app.tasks import cancel_and_wait
from hub.core.errors import HubError, TrustError
from hub.core.revocation import STALE_OPEN, Revocation

log = logging.getLogger("customs_hub.service")

# Parsed peer certificates' serials by PEM, at most this many (a handful of partners, a few
# rotations each); parsing one on every call would cost more than a small request.
PEER_CACHE = 1024
STOP_SOURCE = "revocation"  # the source of a stopped partner's record in the trail


class RevocationWatch:
    """Keeps ``hub.settings.revocation`` current with its files, and checks peers against it."""

    def __init__(self, hub: HubContext, audit: Audit) -> None:
        self.hub, self.audit = hub, audit
        self._tasks: list[asyncio.Task[None]] = []
        self._checking = asyncio.Lock()  # the watch and the fetcher's on_written, one at a time
        self._stale_logged: set[tuple[str, str]] = set()  # (party, CRL source) logged stale
        self._refused: dict[str, tuple[int, int]] = {}  # stamps of a set refused, not re-logged
        self._serials: dict[bytes, int] = {}
        self.fetcher = CrlFetcher(hub, audit, self.check)
        # each partner's TLS server certificate (serial) as the last pre-flight saw it, and
        # the settings it was seen under: a reload or a new list asks for a new handshake
        self._servers: dict[str, tuple[int, Settings]] = {}

    def start(self) -> None:
        party = self.hub.party
        self._tasks = [
            asyncio.create_task(self._run(self.check), name=f"revocation-{party}"),
            asyncio.create_task(self._run(self.fetcher.run_due), name=f"crl-fetch-{party}"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []

    async def _run(self, step: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(self.hub.config.limits.revocation_check_seconds)
            try:
                await step()
            except Exception:  # a fault of ours must not end the watch
                log.exception("checking the revocation lists failed")

    async def check(self) -> bool:
        """Re-read the revocation set if one of its files changed, and log CRLs gone stale;
        True if a new set was put in place."""
        async with self._checking:
            return await self._check()

    async def _check(self) -> bool:
        settings = self.hub.settings
        changed = False
        files = keys.revocation_files(settings.config)
        stamps = await self.hub.off_loop(_stamps, files)
        if stamps != dict(settings.revocation.stamps) and stamps != self._refused:
            try:
                fresh = await self.hub.off_loop(keys.read_revocation, settings.config)
            except HubError as exc:
                self._refused = stamps
                log.error("revocation lists changed but are refused; the ones in use stay: %s", exc)
            else:
                if self.hub.settings is settings:  # else a reload came between and read them
                    self.hub.settings = dataclasses.replace(settings, revocation=fresh)
                    self._refused = {}
                    changed = True
                    log.info("revocation lists re-read: %s", _summary(fresh))
                    # in the trail: a config-changed leaf whose digest covers the lists
                    await self.audit.record_config("revocation lists re-read for")
        self._log_stale(self.hub.revocation, self.hub.clock())
        return changed

    def _log_stale(self, revocation: Revocation, now: datetime) -> None:
        stale = {(a.party, crl.source): (a, crl) for a, crl in revocation.stale(now)}
        for key, (anchor, crl) in stale.items():
            if key in self._stale_logged:
                continue
            self._stale_logged.add(key)
            if anchor.stale_policy == STALE_OPEN:
                log.warning(
                    "revocation list %s of %s is stale since %s; its certificates are still "
                    "accepted (crl_stale = open)",
                    crl.source,
                    anchor.party,
                    f"{crl.next_update:%Y-%m-%dT%H:%M:%SZ}",
                )
            else:
                log.error(
                    "revocation list %s of %s is stale since %s; its certificates are refused "
                    "(crl-stale) until a current one is in place (crl_stale = closed)",
                    crl.source,
                    anchor.party,
                    f"{crl.next_update:%Y-%m-%dT%H:%M:%SZ}",
                )
        self._stale_logged &= set(stale)

    def server_seen(self, party: str, certificate: bytes) -> None:
        """What a pre-flight handshake to ``party`` found (its server certificate, DER)."""
        serial = x509.load_der_x509_certificate(certificate).serial_number
        self._servers[party] = (serial, self.hub.settings)

    def server_unknown(self, party: str) -> bool:
        """Whether ``party``'s server certificate is to be looked at (again) before a channel
        to it is used: never seen, or seen before a reload or a change of the lists."""
        seen = self._servers.get(party)
        return seen is None or seen[1] is not self.hub.settings

    def stop_of(self, party: str) -> TrustError | None:
        """Why the outbox may not deliver to ``party`` now (``certificate-revoked`` or
        ``crl-stale``), or None (hub/core/revocation.py ``delivery_stop``)."""
        seen = self._servers.get(party)
        return self.hub.revocation.delivery_stop(
            party,
            self.hub.keys_for(party),  # learned keys too: a rotated partner goes on
            seen[0] if seen else None,
            self.hub.clock(),
        )

    async def record_stop(self, party: str, stop: TrustError) -> None:
        """The trail's record of the outbox stopping delivery to ``party``: a rejection with
        source ``revocation`` and the stop's reason, naming the partner."""
        error = TrustError(
            f"delivery to {party} stopped, its messages kept queued: {stop.message}",
            reason=stop.reason,
        )
        try:
            await self.audit.record_rejection(STOP_SOURCE, None, error)
        except HubError as exc:
            log.error("the stop of delivery to %s could not be recorded: %s", party, exc)

    def check_peer(self, party: str, peer_cert_pem: bytes) -> None:
        """TrustError ``certificate-revoked`` (or ``crl-stale``) if ``party``'s TLS client
        certificate may not be used now. The chain and the party were checked before."""
        revocation = self.hub.revocation
        anchor = revocation.anchors.get(party)
        if anchor is None or not anchor.crls:
            return
        serial = self._serials.get(peer_cert_pem)
        if serial is None:
            try:
                serial = x509.load_pem_x509_certificate(peer_cert_pem).serial_number
            except ValueError:
                raise TrustError(
                    "peer certificate is not readable PEM", reason="no-peer-certificate"
                ) from None
            if len(self._serials) >= PEER_CACHE:
                self._serials.clear()
            self._serials[peer_cert_pem] = serial
        anchor.check(serial, "TLS certificate", self.hub.clock())


def _stamps(files: list[Path]) -> dict[str, tuple[int, int]]:
    return {str(path): keys.file_stamp(path) for path in files}


def _summary(revocation: Revocation) -> str:
    parts = [
        f"{party}: {sum(len(c.serials) for c in anchor.crls)} revoked"
        for party, anchor in sorted(revocation.anchors.items())
    ]
    parts.append(f"{len(revocation.tokens)} auditors' tokens revoked")
    return "; ".join(parts)
