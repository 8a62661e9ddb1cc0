"""The hub's own records in its trail: signed checkpoints (on a schedule and at shutdown), the
trail key's hand-over when it rotates, the configuration it started with, and every refusal,
knocks counted rather than logged one by one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from opentelemetry.trace import SpanContext

from hub.app import keys
from hub.app.context import HubContext, Settings
from hub.app.telemetry import log_ids
from hub.config import HubConfig
from hub.core.envelope import (
    claimed_message_id,
    sha256,
)
from hub.core.errors import (
    ConfigError,
    HubError,
)
from hub.core.limits import REJECTION_CHARS
from hub.store.certificates import ANCHOR, SIGNING, SeenCertificate
from hub.store.schema import (
    Rejection,
    TrailCheckpoint,
)
from hub.trail import checkpoint, handover
from hub.trail import events as trail
from hub.trail.handover import HandedOverError, Plan, TrailKeyError, TrailKeys

log = logging.getLogger("customs_hub")

REFUSAL_WINDOW = 60.0  # seconds between trail records of one kind of knock (record_refusal)


def loggable(error: HubError, data: bytes | None = None) -> str:
    """What a log line says of a refusal: its reason, where in the input (line and column),
    and the message id the input claims. Not the error's message: a translator's or parser's
    message may quote the refused document (the tag or value it stopped at), and logs never
    hold trade data. The whole message is in the trail's rejection and the caller's answer."""
    text = error.reason
    line, column = getattr(error, "line", None), getattr(error, "column", None)
    if isinstance(line, int):
        text += f" at line {line}" + (f", column {column}" if isinstance(column, int) else "")
    claimed = claimed_message_id(data) if data else ""
    if claimed:
        text += f", message {claimed}"
    return text + " (the detail is in the trail)"


class Audit:
    def __init__(self, hub: HubContext) -> None:
        self.hub = hub
        # the keys checkpoints are signed with; a reload puts new ones in place (after
        # check_trail_keys) and the next checkpoint hands over if they say so
        self.trail_keys = keys.load_trail_keys(hub.config, hub.signer)
        # (source, reason) -> when a refusal was last recorded, and how many since were not
        self._refusals: dict[tuple[str, str], tuple[float, int]] = {}

    async def checkpoint(self) -> TrailCheckpoint | None:
        """Sign a checkpoint of the trail now, if it grew (hub/trail/checkpoint.py); if the
        newest checkpoint is the previous trail key's, this is the hand-over to the current
        one, and the trail grows by its leaf (hub/trail/handover.py). Which it is, is decided
        in the signing transaction, from the newest checkpoint signed."""
        trail_keys, config, clock = self.trail_keys, self.hub.config, self.hub.clock
        decided: list[Plan] = []

        def prepare(newest: bytes | None) -> list[trail.Event]:
            try:
                decided.append(trail_keys.plan(newest))
            except TrailKeyError as exc:
                raise _refused(config, exc) from None
            return decided[-1].leaves(clock())

        def sign(size: int, root: bytes) -> bytes:
            return decided[-1].sign(config.origin, size, root)

        made = await self.hub.store.trail.sign_checkpoint(sign, prepare)
        if made is not None and decided and decided[-1].successor is not None:
            log.info(
                "trail key handed over: checkpoint %d signed by %s names and is co-signed by %s",
                made.size,
                handover.short(decided[-1].signer),
                handover.short(decided[-1].successor),
            )
        return made

    async def check_trail_keys(self, trail_keys: TrailKeys, config: HubConfig) -> bool:
        """Whether ``trail_keys`` can continue this trail's history (before a start or reload
        puts them in place): a ConfigError saying what to do if not; True if the next
        checkpoint hands over to a new key."""
        newest = await self.hub.store.trail.checkpoint_at()
        try:
            plan = trail_keys.plan(newest.note if newest is not None else None)
        except TrailKeyError as exc:
            raise _refused(config, exc) from None
        return plan.successor is not None

    def config_digest(self) -> bytes:
        return keys.config_digest(self.hub.config)

    async def record_config(self, how: str = "started with") -> bool:
        """Log a "config-changed" event when the hub starts (or reloads) with another
        configuration or other keys than the last one logged, and keep every certificate it
        names in the store's certificate history."""
        now = self.hub.clock()
        await self.hub.store.certificates.remember(seen_certificates(self.hub.settings), now)
        return await self.hub.store.trail.record_config(
            self.config_digest(), now, f"{how} {self.hub.config.path.name}"
        )

    async def keep_checkpoints(self) -> None:
        """Sign a checkpoint whenever ``checkpoint_entries`` entries were added since the last
        one, or ``checkpoint_seconds`` passed and the trail grew. Runs until cancelled."""
        config = self.hub.config
        signed = await self.hub.store.trail.checkpoints()
        last_size = signed[-1].size if signed else 0
        last_time = time.monotonic()
        while True:
            await asyncio.sleep(min(1.0, config.checkpoint_seconds))
            try:
                size = await self.hub.store.trail.size()
                due = size - last_size >= config.checkpoint_entries or (
                    size > last_size and time.monotonic() - last_time >= config.checkpoint_seconds
                )
                if not due:
                    continue
                made = await self.checkpoint()
                if made is not None:
                    last_size, last_time = made.size, time.monotonic()
            except HubError as exc:  # an inconsistent trail is logged loudly, never signed
                log.error("trail checkpoint: %s", exc)

    async def hand_over(self) -> str:
        """The hand-over checkpoint, now, where the newest checkpoint is the previous
        key's: the new key's ``name+hash``, or "" if there was nothing to hand over (a
        failure to sign is logged; the next checkpoint tries again)."""
        try:
            made = await self.checkpoint()
        except HubError as exc:
            log.error("trail key hand-over: %s", exc)
            return ""
        if made is None:
            return ""
        named = handover.named_key(checkpoint.read_unverified(made.note))
        return "" if named is None else handover.short(named)

    async def record_rejections(
        self,
        source: str,
        refused: Sequence[tuple[bytes, HubError]],
        spans: Sequence[SpanContext | None] = (),
    ) -> None:
        """``spans``: with telemetry on, each refusal's span (its log line names it)."""
        for k, (data, error) in enumerate(refused):
            extra = log_ids(spans[k]) if spans else None
            log.warning("rejected from %s: %s", source, loggable(error, data), extra=extra)
        self.hub.metrics.rejected(source, [error.reason for _, error in refused])
        await self.hub.store.inbound.record_rejections(
            [
                Rejection(
                    at=self.hub.clock(),
                    source=source,
                    message_id=claimed_message_id(data),
                    reason=error.reason,
                    detail=error.message[:REJECTION_CHARS],
                    digest=sha256(data),
                )
                for data, error in refused
            ]
        )

    async def record_refusal(self, source: str, error: HubError) -> None:
        """A refusal that costs the refused nothing to cause (a connection from a peer nobody
        registered, a call over a partner's allowance): recorded at most once every
        ``REFUSAL_WINDOW`` seconds per source and reason, the next record counting those left
        out, so nobody can grow the trail by knocking."""
        now = time.monotonic()
        key = (source, error.reason)
        since, left_out = self._refusals.get(key, (-REFUSAL_WINDOW, 0))
        if now - since < REFUSAL_WINDOW:
            self._refusals[key] = (since, left_out + 1)
            self.hub.metrics.rejected(source, [error.reason])  # counted, though not recorded
            return
        if left_out:
            error = type(error)(
                f"{error.message} (and {left_out} more like it, not recorded one by one, in "
                f"the {REFUSAL_WINDOW:g} s before)",
                reason=error.reason,
            )
        self._refusals[key] = (now, 0)
        await self.record_rejection(source, None, error)

    async def record_rejection(
        self,
        source: str,
        data: bytes | None,
        error: HubError,
        document_digest: bytes | None = None,
    ) -> None:
        log.warning("rejected from %s: %s", source, loggable(error, data))
        self.hub.metrics.rejected(source, [error.reason])
        await self.hub.store.inbound.record_rejection(
            Rejection(
                at=self.hub.clock(),
                source=source,
                message_id=claimed_message_id(data) if data else "",
                reason=error.reason,
                detail=error.message[:REJECTION_CHARS],
                digest=sha256(data) if data is not None else document_digest,
            )
        )


def _refused(config: HubConfig, error: TrailKeyError) -> ConfigError:
    """A trail key that cannot continue the history, as the operator is told: one line,
    with what to do."""
    if isinstance(error, HandedOverError):  # a rollback to the old key, or another key
        return ConfigError(
            f"{config.path}: trail.key {config.trail_key}: {error}. Set trail.key to the key "
            f"{handover.short(error.successor)} (its .vkey file holds this name+hash); "
            "trail.previous_key cannot bring back a key that handed over (docs/trail.md, "
            "'Rotating the trail key')",
            reason="config-invalid",
        )
    return ConfigError(
        f"{config.path}: trail.key {config.trail_key}: {error}. To rotate the trail key, set "
        "trail.previous_key to the key that signed the newest checkpoint (docs/trail.md, "
        "'Rotating the trail key'); otherwise set trail.key back to it",
        reason="config-invalid",
    )


def seen_certificates(settings: Settings) -> list[SeenCertificate]:
    """The anchors and signing certificates of ``settings``, DER, as the history keeps them
    (an anchor file may hold a CA and its successor: each is one)."""
    seen = []
    for party, (anchors, signing) in settings.certificates.items():
        for role, pems in ((ANCHOR, [anchors]), (SIGNING, signing)):
            for pem in pems:
                for cert in x509.load_pem_x509_certificates(pem):
                    seen.append(SeenCertificate(party, role, cert.public_bytes(Encoding.DER)))
    return seen
