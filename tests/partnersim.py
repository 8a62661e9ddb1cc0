"""An in-memory partner for delivery protocol tests: a FAKE network, not a fake partner.

``PartnerSim`` implements hub/app/ports.py's PartnerTransport without a socket. Behind it is a real
``Hub`` of the partner's (its own store, trust store and signing key), which verifies each
frame and signs its receipts exactly as it would behind gRPC (Ingress.receive_batch, and a REJECTED
receipt for a refusal, as hub/rpc/partner.py answers). Switches make it misbehave on cue, the ways a
partner or the network between can: never answer, answer late, answer twice, answer with
garbage, end the stream mid-way (a restart), sign with a key that is not the partner's.

The mTLS end-to-end tests stay on real servers (tests/test_exchange.py and the others); this is
for what needs no socket: the sender's bookkeeping under every misbehaviour, in seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from hub.app.hub import Hub
from hub.core.envelope import sign_receipt
from hub.core.errors import DeliveryError, HubError
from hub.pb.customs_hub.v1 import envelope_pb2 as pb


@dataclass
class Misbehaviour:
    drop_receipts: bool = False  # take frames, never answer them
    delay: float = 0.0  # answer each frame this many seconds late
    duplicate: bool = False  # answer each frame twice
    garbage: bool = False  # answer with receipts whose bytes are not a receipt
    end_after: int | None = None  # end the stream after this many frames, as a restart would
    wrong_signer: Hub | None = None  # sign receipts with this hub's key, not the partner's


class SimStream:
    """One Exchange stream to the simulated partner (a PartnerStream)."""

    def __init__(self, sim: PartnerSim, partner: Hub) -> None:
        self.sim = sim
        self.partner = partner
        self.answers: asyncio.Queue[list[pb.SignedReceipt] | None] = asyncio.Queue()
        self.frames = 0
        self.ended = False
        self.cancelled = False
        self._work: set[asyncio.Task[None]] = set()
        self._previous: asyncio.Event | None = None

    async def write(self, envelopes: Sequence[bytes]) -> None:
        if self.ended:
            raise DeliveryError("write failed: the stream has ended", reason="partner-unavailable")
        self.frames += 1
        self.sim.frames_received += 1
        how = self.sim.behaviour
        if how.end_after is not None and self.frames > how.end_after:
            self._end()  # the partner restarted: this frame was never read
            return
        placed = asyncio.Event()
        task = asyncio.create_task(self._answer(list(envelopes), self._previous, placed))
        self._previous = placed
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _answer(
        self, envelopes: list[bytes], after: asyncio.Event | None, placed: asyncio.Event
    ) -> None:
        how = self.sim.behaviour
        partner = self.partner
        try:
            results = await partner.ingress.receive_batch(
                envelopes, self.sim.sender, after=after, then=placed
            )
        except HubError:  # transient trouble at the partner: it ends the stream
            self._end()
            return
        signer = how.wrong_signer or partner
        receipts = [
            r if isinstance(r, pb.SignedReceipt) and how.wrong_signer is None else
            _signed_by(signer, self.sim.sender, data, r)
            for data, r in zip(envelopes, results, strict=True)
        ]  # fmt: skip
        if how.garbage:
            receipts = [pb.SignedReceipt(receipt=b"\x00not a receipt", signature=b"x")] * len(
                receipts
            )
        if how.drop_receipts:
            return
        if how.delay:
            await asyncio.sleep(how.delay)
        for _ in range(2 if how.duplicate else 1):
            await self.answers.put(receipts)

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self.answers.put_nowait(None)

    async def read(self) -> list[pb.SignedReceipt] | None:
        if self.cancelled:
            raise DeliveryError("CANCELLED: the stream was cancelled", reason="partner-unavailable")
        answer = await self.answers.get()
        if answer is None:
            self.answers.put_nowait(None)  # ended stays ended
        return answer

    def done(self) -> bool:
        return self.ended or self.cancelled

    def cancel(self) -> None:
        self.cancelled = True
        for task in list(self._work):
            task.cancel()
        self._end()


def _signed_by(
    signer: Hub, sender: str, data: bytes, result: pb.SignedReceipt | HubError
) -> pb.SignedReceipt:
    """The receipt the partner gave (or, for a refusal, a REJECTED one), signed by ``signer``'s
    key instead of the partner's."""
    if isinstance(result, HubError):
        return signer.ingress.rejection_receipt(data, sender, result)
    return sign_receipt(signer.signer, pb.Receipt.FromString(result.receipt))


class PartnerSim:
    """A PartnerTransport to ``partners`` (real Hubs, no servers), each receiving as
    ``sender``. ``reachable`` False cuts them all off, ``down`` the parties it names."""

    def __init__(self, partners: Hub | Sequence[Hub], sender: str) -> None:
        hubs = [partners] if isinstance(partners, Hub) else list(partners)
        self.partners = {hub.party: hub for hub in hubs}
        self.partner = hubs[0]
        self.sender = sender
        self.behaviour = Misbehaviour()
        self.streams: list[SimStream] = []
        self.frames_received = 0
        self.reachable = True
        self.down: set[str] = set()

    def stream(self, party: str) -> SimStream:
        partner = self.partners.get(party)
        if partner is None or not self.reachable or party in self.down:
            raise DeliveryError(f"{party} cannot be reached", reason="partner-unavailable")
        stream = SimStream(self, partner)
        self.streams.append(stream)
        return stream

    async def close(self) -> None:
        for stream in self.streams:
            stream.cancel()
