"""What each partner may hold of this hub at once: calls, streams, and bytes of frames it sent
that are not answered yet.

gRPC's own limit (``maximum_concurrent_rpcs``) counts every caller together, so one partner
that opens streams and leaves them idle takes every slot and the others are refused; a partner
that writes frames and never reads the answers makes the receiver hold them all. Here each
partner has its own allowance: calls and streams above it are refused with
RESOURCE_EXHAUSTED ``partner-limit`` (that partner's alone), and a stream whose unanswered
frames fill its byte budget, or its partner's, is not read from until answers are taken, so
the sender is held back by HTTP/2 flow control and the receiver's memory stays bounded.

What it must never do: let one partner's use of the hub count against another's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hub.core.errors import LimitError


class Budget:
    """An amount in use against a limit. ``take`` waits while the amount would go over it;
    one item larger than the whole limit is let through alone, so nothing waits forever."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._freed = asyncio.Event()

    async def take(self, amount: int) -> None:
        while self.used and self.used + amount > self.limit:
            self._freed.clear()
            await self._freed.wait()  # every waiter wakes on a give, and looks again
        self.used += amount

    def give(self, amount: int) -> None:
        self.used -= amount
        self._freed.set()


@dataclass
class _Partner:
    buffered: Budget  # bytes of unanswered frames on all its streams
    calls: int = 0
    streams: int = 0


class Admission:
    """Per-partner allowances on the partner port."""

    def __init__(self, *, calls: int, streams: int, stream_bytes: int, partner_bytes: int) -> None:
        self.max_calls, self.max_streams = calls, streams
        self.stream_bytes, self.partner_bytes = stream_bytes, partner_bytes
        self._partners: dict[str, _Partner] = {}

    def _of(self, party: str) -> _Partner:
        found = self._partners.get(party)
        if found is None:
            found = self._partners[party] = _Partner(buffered=Budget(self.partner_bytes))
        return found

    def enter_call(self, party: str) -> None:
        """One more unary call of ``party``'s (``exit_call`` when it ends); LimitError
        ``partner-limit`` above its allowance."""
        partner = self._of(party)
        if partner.calls >= self.max_calls:
            raise LimitError(
                f"{party} has {partner.calls} calls in progress; at most {self.max_calls} are "
                "taken at once from one partner",
                reason="partner-limit",
            )
        partner.calls += 1

    def exit_call(self, party: str) -> None:
        self._of(party).calls -= 1

    def open_stream(self, party: str) -> StreamBudget:
        """One more Exchange stream of ``party``'s, with its byte budget (``close_stream``
        when it ends); LimitError ``partner-limit`` above its allowance of streams."""
        partner = self._of(party)
        if partner.streams >= self.max_streams:
            raise LimitError(
                f"{party} has {partner.streams} Exchange streams open; at most "
                f"{self.max_streams} are kept at once for one partner",
                reason="partner-limit",
            )
        partner.streams += 1
        return StreamBudget(Budget(self.stream_bytes), partner.buffered)

    def close_stream(self, party: str, budget: StreamBudget) -> None:
        """The stream ended: what it still held is given back."""
        self._of(party).streams -= 1
        budget.release()

    def in_use(self, party: str) -> tuple[int, int, int]:
        """Calls, streams and buffered bytes of ``party`` now (tests, telemetry)."""
        partner = self._of(party)
        return partner.calls, partner.streams, partner.buffered.used


class StreamBudget:
    """The bytes of one stream's unanswered frames, counted against the stream's budget and
    its partner's."""

    def __init__(self, stream: Budget, partner: Budget) -> None:
        self._stream, self._partner = stream, partner
        self.held = 0

    async def take(self, amount: int) -> None:
        await self._stream.take(amount)
        try:
            await self._partner.take(amount)
        except BaseException:
            self._stream.give(amount)
            raise
        self.held += amount

    def give(self, amount: int) -> None:
        self.held -= amount
        self._partner.give(amount)
        self._stream.give(amount)

    def release(self) -> None:
        """Give back what is still held (the stream ended)."""
        if self.held:
            self.give(self.held)
