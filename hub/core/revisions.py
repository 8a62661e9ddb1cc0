"""Revisioned state (pure core): which AEO status or control result a partner's message updates,
and the rule that decides which one is current.

An AEO status is keyed by its issuing administration and AEO id; a control result by the
declaration it concerns (MRN, else LRN) or its containers. A message carries a revision; the
highest revision received is the current state, whatever order messages arrive in, so a late
older one is kept but marked superseded and never overwrites a newer one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from google.protobuf.message import Message

from hub.core.errors import SenderMismatchError
from hub.core.messages import MAX_KEY_LENGTH, AeoStatus, ControlResult

StateKey = tuple[str, str, str]  # party, kind ("aeo", "control"), key


@dataclass(frozen=True, slots=True)
class StateRef:
    """Which piece of state a message carries, and its revision."""

    party: str
    kind: str
    key: str
    revision: int

    @property
    def state(self) -> StateKey:
        return (self.party, self.kind, self.key)


def newer_wins(held: dict[StateKey, int], ref: StateRef) -> bool:
    """Whether ``ref`` becomes the current state: its revision is higher than the one held
    (none held counts as 0). If it does, ``held`` now holds it, so of several messages for one
    state taken in any order, only a higher revision than every earlier one wins."""
    if ref.revision <= held.get(ref.state, 0):
        return False
    held[ref.state] = ref.revision
    return True


def state_of(document: Message, sender: str) -> StateRef | None:
    """Which revisioned state a partner's document updates, checking that the sender may."""
    if isinstance(document, AeoStatus):
        if document.issuing_administration != sender:
            raise SenderMismatchError(
                f"an AEO status from {sender} names issuing administration "
                f"{document.issuing_administration!r}",
                reason="not-issuer",
            )
        return StateRef(sender, "aeo", document.aeo_id.strip(), document.revision)
    if isinstance(document, ControlResult):
        return StateRef(sender, "control", control_key(document), document.revision)
    return None


def control_key(result: ControlResult) -> str:
    """What a control result is about: the declaration (MRN, else LRN), else its containers
    (their sorted list, or its SHA-256 where that is longer than a key may be). Values are
    taken without surrounding spaces, as business keys are, so " MRN1" is MRN1's state."""
    mrn, lrn = result.declaration_id.strip(), result.functional_reference_id.strip()
    if mrn:
        return f"mrn:{mrn}"
    if lrn:
        return f"lrn:{lrn}"
    containers = ",".join(sorted({c.strip() for c in result.container_ids} - {""}))
    if len(containers) <= MAX_KEY_LENGTH:
        return f"containers:{containers}"
    return f"containers-sha256:{hashlib.sha256(containers.encode()).hexdigest()}"
