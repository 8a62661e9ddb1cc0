"""Whether the hub can do its work: a watch on the store that says when it stops answering and
when it answers again. What a change means to callers (health statuses on the gRPC ports) is
the caller's; this module knows no gRPC and never writes to the store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hub.core.errors import StoreError

log = logging.getLogger("customs_hub.health")

# How often the store is probed, and how long one probe may take before the store counts as
# unreachable. A probe is one read (hub/store/engine.py, Database.probe), so every 2 s costs
# nothing; a load balancer or orchestrator polling health every 5-10 s (Kubernetes' default
# period is 10 s) then sees a store failure within one of its own periods.
PROBE_SECONDS = 2.0
PROBE_TIMEOUT_SECONDS = 5.0


class StoreWatch:
    """Runs ``probe`` every ``every`` seconds and calls ``changed(healthy)`` each time the
    answer differs from the one before (the store is taken as healthy at the start: the hub
    has just used it). A probe that raises StoreError or outlasts ``timeout`` is unhealthy."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[None]],
        changed: Callable[[bool], Awaitable[None]],
        *,
        every: float | None = None,
        timeout: float | None = None,
    ) -> None:
        self.probe, self.changed = probe, changed
        self.every = PROBE_SECONDS if every is None else every
        self.timeout = PROBE_TIMEOUT_SECONDS if timeout is None else timeout
        self.healthy = True

    async def check(self) -> bool:
        """Probe once, report a change, and return whether the store answered."""
        try:
            await asyncio.wait_for(self.probe(), self.timeout)
            healthy, why = True, ""
        except StoreError as exc:
            healthy, why = False, str(exc)
        except TimeoutError:
            healthy, why = False, f"no answer within {self.timeout:g} s"
        if healthy != self.healthy:
            self.healthy = healthy
            if healthy:
                log.warning("the store answers again: serving")
            else:
                log.error("the store is unreachable (%s): not serving", why)
            await self.changed(healthy)
        return healthy

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            await asyncio.sleep(self.every)
            await self.check()
