"""The hub's error family.

Every failure the hub reports to a caller is one of these: a machine-readable ``reason`` code
(kebab-case, stable, documented in docs/adr/0002-status-codes.md), its ``status`` (the name of
the gRPC status code it is answered with, as a plain value: this module imports no grpc, so the
pure core does not either; hub/rpc/status.py maps it), and a human sentence saying what was
expected and what was found. Messages never echo secrets or payload content.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

# The trailing metadata key every service puts a failure's reason code in.
REASON_KEY = "customs-hub-reason"


class Status(Enum):
    """The statuses the hub answers failures with, named as gRPC names its status codes."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"


class HubError(Exception):
    """Base of every error the hub raises on purpose."""

    status: Status = Status.INTERNAL
    default_reason = "internal"
    # A transient failure says nothing about the message: the sender must try again later.
    # It is never answered with a signed REJECTED receipt, which senders treat as final.
    transient = False

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or self.default_reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # whole, with reason and location: errors come back from the translation process
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[HubError], message: str, state: dict[str, Any]) -> HubError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class EnvelopeError(HubError):
    """The envelope is malformed or its header fails a check (INVALID_ARGUMENT)."""

    status = Status.INVALID_ARGUMENT
    default_reason = "envelope-malformed"


class SignatureError(EnvelopeError):
    """No signature verifies with a key the trust store binds to the sender."""

    status = Status.UNAUTHENTICATED
    default_reason = "signature-invalid"


class SenderMismatchError(EnvelopeError):
    """The envelope names a sender other than the party of the mTLS peer certificate."""

    status = Status.PERMISSION_DENIED
    default_reason = "sender-mismatch"


class RecipientError(EnvelopeError):
    """The envelope is addressed to another hub."""

    status = Status.FAILED_PRECONDITION
    default_reason = "wrong-recipient"


class TimeWindowError(EnvelopeError):
    """The message is expired or dated in the future beyond the allowed clock skew."""

    status = Status.FAILED_PRECONDITION
    default_reason = "expired"


class LimitError(EnvelopeError):
    """A request exceeds a configured limit (RESOURCE_EXHAUSTED)."""

    status = Status.RESOURCE_EXHAUSTED
    default_reason = "limit-exceeded"


class DuplicateConflictError(HubError):
    """The same message id arrived before with different bytes."""

    status = Status.ALREADY_EXISTS
    default_reason = "message-id-conflict"


class TrustError(HubError):
    """A certificate or key is not trusted for the party it claims (PERMISSION_DENIED)."""

    status = Status.PERMISSION_DENIED
    default_reason = "untrusted-peer"


class ConfigError(HubError):
    """The configuration is invalid; raised at start-up, never on the hot path."""

    status = Status.FAILED_PRECONDITION
    default_reason = "config-invalid"


class SchemaError(HubError):
    """The database's schema is not the one this code needs (behind, ahead, or unknown), or
    another hub holds it: an operator's step is needed, so trying again does not help."""

    status = Status.FAILED_PRECONDITION
    default_reason = "schema-mismatch"


class InstanceLocked(HubError):
    """Another process holds this hub's store: one instance serves a configuration."""

    status = Status.FAILED_PRECONDITION
    default_reason = "hub-running"


class RoutingError(HubError):
    """No partner can be chosen for a submitted message."""

    status = Status.FAILED_PRECONDITION
    default_reason = "no-route"


class AgreementError(HubError):
    """No agreement covers a message type with a partner in that direction today
    (hub/core/agreements.py): a domestic submission is not signed, a partner's envelope is
    refused with a signed REJECTED receipt."""

    status = Status.FAILED_PRECONDITION
    default_reason = "not-covered-by-agreement"


class SubmissionError(HubError):
    """A domestic submission is unusable as sent."""

    status = Status.INVALID_ARGUMENT
    default_reason = "submission-invalid"


class BusinessKeyError(HubError):
    """A business key (LRN, MRN, container id, AEO id ...) the hub cannot keep: too long, not
    printable, or too many (hub/core/messages.py)."""

    status = Status.INVALID_ARGUMENT
    default_reason = "business-key-invalid"


class RequestError(HubError):
    """A request on the domestic or audit port that is not the message its method takes."""

    status = Status.INVALID_ARGUMENT
    default_reason = "request-malformed"


class StoreError(HubError):
    """The store failed; the operation was not applied."""

    status = Status.UNAVAILABLE
    default_reason = "store-unavailable"
    transient = True


class StoreDataError(StoreError):
    """The store refused one transaction's data (a constraint, a value its column cannot
    hold): a fault in what was written, not in the store, so trying again gets the same. The
    edge's checks are meant to make this unreachable; where it happens, the group commit
    writes each caller's data alone, so it fails only the caller whose data it is."""

    status = Status.INTERNAL
    default_reason = "store-data-refused"
    transient = False


class ShuttingDownError(HubError):
    """The hub is stopping and takes nothing more; the sender tries again later."""

    status = Status.UNAVAILABLE
    default_reason = "shutting-down"
    transient = True


class DeliveryError(HubError):
    """A partner could not be reached or did not return a usable receipt."""

    status = Status.UNAVAILABLE
    default_reason = "partner-unavailable"
    transient = True


class PartnerRefused(HubError):
    """A partner's hub refused what this hub asked it (a Query or Snapshot): its status and
    reason are in the message."""

    status = Status.FAILED_PRECONDITION
    default_reason = "partner-refused"

    def __init__(self, message: str, *, partner_reason: str = "") -> None:
        super().__init__(message)
        self.partner_reason = partner_reason


class TranslationError(HubError):
    """A document could not be read or written in a format (INVALID_ARGUMENT).

    Carries where the problem is, as far as it is known: line and column in the input, the
    element path (namespace-free local names, e.g. /MetaData/Declaration/GoodsShipment), and
    the WCO class-id chain (e.g. 42A/67A/68A) when the element belongs to the WCO Data Model.
    """

    status = Status.INVALID_ARGUMENT
    default_reason = "translation-failed"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
        pointer: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.line, self.column, self.path, self.pointer = line, column, path, pointer

    def location(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}" + (f", column {self.column}" if self.column else ""))
        if self.path:
            parts.append(f"at {self.path}")
        if self.pointer:
            parts.append(f"(WCO {self.pointer})")
        return " ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        return f"{self.reason}: {self.message}" + (f" [{where}]" if where else "")
