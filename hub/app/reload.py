"""Reloading a running hub's configuration (SIGHUP, ``customs-hub reload``).

A new configuration is read and checked whole (its keys and certificates too) before anything
changes; then the hub's settings are replaced in one step (``HubContext.settings``), so a call
sees the old settings or the new, never a mixture. Partners added are reachable, partners
removed are refused on their next call, new routes, agreements and certificates are used
(messages queued already go as they were signed); a new trail key with ``trail.previous_key``
is handed over to at once (hub/trail/handover.py), and one that cannot continue the trail's
history is refused; changed code lists are given to the translators (a list that cannot be
used refuses the reload). What only a restart can change (ports, store, trail origin, limits,
drop folders) is refused with the keys named, and the old configuration stays. Either
way the trail records it: a "config-changed" leaf for a reload, a rejection (source
``reload``) for a refusal.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hub.app import keys
from hub.app.audit import Audit
from hub.app.context import HubContext, Settings
from hub.app.keys import load_trail_keys
from hub.config import HubConfig, load_config
from hub.core.errors import ConfigError, HubError

log = logging.getLogger("customs_hub.service")

# What a running hub took at start and keeps until it stops: a change to any of these takes a
# restart, so a reload that changes one is refused.
RESTART_ONLY = (
    "party",
    "listen",
    "domestic_listen",
    "audit_listen",
    "token_issuer",
    "token_audience",
    "trail_origin",
    "store_url",
    "limits",
    "folders",
    "checkpoint_entries",
    "checkpoint_seconds",
    "log_format",
    "telemetry",
)
REJECTION_SOURCE = "reload"  # the source of a refused reload's record in the trail


@dataclass(frozen=True)
class Change:
    """What a reload changed, for the log and the operator."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # partners whose endpoint, trust or signing certs changed
    routes: bool = False
    agreements: bool = False  # an agreement or its sharing policy changed (its digest)
    code_lists: bool = False  # hub.toml's [code_lists] or a list file they name changed
    own_keys: bool = False  # this hub's TLS or signing certificate or key
    recorded: bool = False  # a config-changed leaf was appended (False: nothing had changed)
    trail_key: str = ""  # the trail key handed over to (name+hash), if it was

    def summary(self) -> str:
        parts = [
            f"partners added: {', '.join(self.added)}" if self.added else "",
            f"removed: {', '.join(self.removed)}" if self.removed else "",
            f"changed: {', '.join(self.changed)}" if self.changed else "",
            "routes changed" if self.routes else "",
            "agreements changed" if self.agreements else "",
            "code lists changed" if self.code_lists else "",
            "own certificates or keys changed" if self.own_keys else "",
            f"trail key handed over to {self.trail_key}" if self.trail_key else "",
        ]
        return "; ".join(p for p in parts if p) or "nothing changed"


def restart_only_changes(old: HubConfig, new: HubConfig) -> list[str]:
    return [name for name in RESTART_ONLY if getattr(old, name) != getattr(new, name)]


class Reloader:
    """Swaps a hub's settings for a new configuration's; ``listeners`` (the servers' TLS
    credentials, the partner channels, the outbox worker) are told of each swap."""

    def __init__(self, hub: HubContext, audit: Audit) -> None:
        self.hub, self.audit = hub, audit
        self.listeners: list[Callable[[Settings, Settings], None]] = []
        self._files = keys.file_digests(hub.config)

    async def reload(self, path: Path | None = None) -> Change:
        """Read the configuration again (from ``path``, or the file the hub started with) and
        put it in place; a ConfigError (the old configuration stays) if it cannot be."""
        hub = self.hub
        old = hub.settings
        try:
            config = await hub.off_loop(load_config, path or old.config.path)
            too_late = restart_only_changes(old.config, config)
            if too_late:
                raise ConfigError(
                    f"{config.path}: {', '.join(too_late)} changed, which only a restart "
                    "applies; nothing was reloaded",
                    reason="config-invalid",
                )
            problems = await hub.off_loop(keys.check, config, hub.clock())
            if problems:
                raise ConfigError("; ".join(problems), reason="config-invalid")
            # every file read here, once: the new settings and everything the listeners put
            # in place (ports' TLS, channels) come from these same bytes
            settings = await hub.off_loop(Settings.read, config, hub.clock())
            trail_keys = await hub.off_loop(load_trail_keys, config, settings.signer)
            handing_over = await self.audit.check_trail_keys(trail_keys, config)
            files = await hub.off_loop(keys.file_digests, config)
            formats = None
            if config.code_lists != old.config.code_lists:
                formats = await hub.off_loop(hub.translators.made_with, config.code_lists)
        except HubError as exc:
            await self._refused(exc)
            raise
        change = self._change(old.config, config, files)
        old_keys = self.audit.trail_keys
        old_formats = hub.translators.formats
        hub.settings = settings  # one assignment: every call from here on sees the new
        self.audit.trail_keys = trail_keys
        if formats is not None:
            hub.translators.use(config.code_lists, formats)
        try:
            for listener in self.listeners:
                listener(old, settings)
        except Exception as exc:  # a fault of ours: back to the old settings, everywhere
            log.exception("putting the reloaded configuration in place failed")
            hub.settings = old
            self.audit.trail_keys = old_keys
            hub.translators.use(old.config.code_lists, old_formats)
            for listener in self.listeners:
                listener(settings, old)
            error = ConfigError(
                f"{config.path}: putting it in place failed ({type(exc).__name__}); the "
                "configuration in use stays",
                reason="config-invalid",
            )
            await self._refused(error)
            raise error from None
        self._files = files
        try:
            recorded = await self.audit.record_config("reloaded")
        except HubError as exc:
            log.error(
                "configuration reloaded from %s (%s), but its trail entry could not be written: %s",
                config.path,
                change.summary(),
                exc,
            )
            raise
        # after the reload's own leaf, so the hand-over checkpoint covers both
        handed = await self.audit.hand_over() if handing_over else ""
        change = dataclasses.replace(change, recorded=recorded, trail_key=handed)
        log.info("configuration reloaded from %s: %s", config.path, change.summary())
        return change

    async def _refused(self, error: HubError) -> None:
        log.error("reload refused, the configuration in use stays: %s", error)
        try:
            await self.audit.record_rejection(REJECTION_SOURCE, None, error)
        except HubError as exc:
            log.error("the refused reload could not be recorded in the trail: %s", exc)

    def _change(
        self,
        old: HubConfig,
        new: HubConfig,
        files: dict[tuple[str, ...], bytes],  # digests
    ) -> Change:
        before, after = set(old.partners), set(new.partners)
        changed = [
            p
            for p in sorted(before & after)
            if old.partners[p] != new.partners[p]
            or {k: v for k, v in self._files.items() if k[0] == p}
            != {k: v for k, v in files.items() if k[0] == p}
        ]
        own = {k: v for k, v in self._files.items() if k[0] == "own"} != {
            k: v for k, v in files.items() if k[0] == "own"
        } or any(
            getattr(old, n) != getattr(new, n)
            for n in ("tls_cert", "tls_key", "trust_anchor", "signing_cert", "signing_key")
        )
        return Change(
            added=tuple(sorted(after - before)),
            removed=tuple(sorted(before - after)),
            changed=tuple(changed),
            routes=old.routes != new.routes or old.countries != new.countries,
            agreements=old.agreements.digest != new.agreements.digest,
            code_lists=old.code_lists != new.code_lists,
            own_keys=own,
        )
