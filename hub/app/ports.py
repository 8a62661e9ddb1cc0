"""What the hub's delivery needs from the network, named as protocols: a partner's Exchange
stream and the transport that opens one. hub/rpc/channels.py implements them over gRPC and mTLS;
tests/partnersim.py implements them in memory, a partner simulator that can misbehave on cue.
Every failure of either is the hub's own DeliveryError, never a gRPC exception, so delivery
(hub/app/delivery.py) knows nothing of gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hub.pb.customs_hub.v1 import envelope_pb2 as pb


class PartnerStream(Protocol):
    """One Exchange stream to a partner: frames of envelopes out, frames of receipts back, in
    the order the frames were written."""

    async def write(self, envelopes: Sequence[bytes]) -> None:
        """Write one frame; DeliveryError if the stream cannot take it."""
        ...

    async def read(self) -> list[pb.SignedReceipt] | None:
        """The receipts answering the oldest unanswered frame, or None when the partner ended
        the stream; DeliveryError if the stream failed."""
        ...

    def done(self) -> bool:
        """Whether the stream has ended, either way."""
        ...

    def cancel(self) -> None:
        """End the stream from this side."""
        ...


class PartnerTransport(Protocol):
    def stream(self, party: str) -> PartnerStream:
        """A new Exchange stream to ``party`` (no deadline: the caller times out each frame);
        DeliveryError if ``party`` cannot be reached this way."""
        ...

    async def close(self) -> None: ...


class PartnerAsker(Protocol):
    """A partner's Query and Snapshot (hub/app/registrysync.py): a signed request out, the
    partner's signed answer back, as exact bytes. DeliveryError when the partner cannot be
    reached; PartnerRefused (hub/core/errors.py) when it refuses, with its reason."""

    async def query(self, party: str, envelope: bytes, timeout: float) -> bytes: ...

    async def snapshot(self, party: str, envelope: bytes, timeout: float) -> bytes: ...
