"""The life of a message this hub signed for a partner (``outbound_message.status``), as a
state machine: the changes the hub makes, and an error for any other.

    any -> delivered | rejected             the partner's receipt (accepted or duplicate; a
                                            final refusal, which leaves a dead letter); the
                                            partner has the last word on delivery, so a
                                            receipt arriving late (after the message expired,
                                            was dropped or replaced) still settles it
    queued -> dead                          its lifetime ended undelivered, or an operator
                                            dropped it (its partner left the config)
    dead | rejected -> queued               an operator put it back in the queue
    dead | rejected -> replaced             an operator re-signed it as a new message
    queued -> replaced                      an operator re-routed it to another partner (its
                                            partner left the config)
    dead | rejected -> dead                 an operator dropped it from the outbox

Operators drop or re-route dead letters; queued messages only of a partner no longer in the
config (``operable``): a configured partner's are still being delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from hub.core.errors import HubError, Status


class Outbound(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    DEAD = "dead"
    REPLACED = "replaced"


_SETTLED = frozenset({Outbound.DELIVERED, Outbound.REJECTED})
_OPERATED = frozenset({Outbound.QUEUED, Outbound.REPLACED, Outbound.DEAD})
NEXT: Mapping[Outbound, frozenset[Outbound]] = {
    Outbound.QUEUED: _SETTLED | {Outbound.DEAD, Outbound.REPLACED},
    Outbound.DEAD: _SETTLED | _OPERATED,
    Outbound.REJECTED: _SETTLED | _OPERATED,
    Outbound.DELIVERED: _SETTLED,
    Outbound.REPLACED: _SETTLED,
}


class TransitionError(HubError):
    """A change of an outbound message's status the state machine does not allow: a fault of
    the hub's own (INTERNAL), and the transaction making it is not committed."""

    status = Status.INTERNAL
    default_reason = "illegal-transition"


def move(old: str, new: Outbound) -> Outbound:
    """``new``, if a message in status ``old`` may go there; TransitionError if not."""
    try:
        allowed = new in NEXT[Outbound(old)]
    except ValueError:
        allowed = False
    if not allowed:
        raise TransitionError(f"an outbound message cannot go from {old!r} to {new.value!r}")
    return new


def operable(status: str, partner_configured: bool) -> bool:
    """Whether an operator may drop or re-route a message in ``status`` that is still in the
    outbox: a dead letter always, a queued message only when its partner is no longer in the
    config (otherwise the hub is delivering it, and a drop would race the delivery)."""
    return status != Outbound.QUEUED or not partner_configured
