"""Mutual recognition agreements and the data-sharing policy they carry (pure core).

An agreement (``[agreements.<id>]`` in hub.toml, read by hub/config.py) names the partners it is
made with, its status and dates, which of a partner's AEO programmes we recognise as which of
ours, the benefits it grants (codes from ``BENEFITS``) and, per message type, what may go to
those partners and come from them, and which fields of it may leave (``Share``).

``Agreements.covering`` answers "may this type go to (or come from) this partner today, and
under which agreement?"; ``keep_fields`` makes the copy of a document that the policy lets
leave. The load checks that keep ``covering``'s answer unique (``conflicts``) and a policy
naming only fields its message has (``field_problems``) are here too, so that config and tests
share them. A hub with no agreements configured (``Agreements.configured`` false) applies no
policy at all: routes alone decide, as before agreements existed.

Dates are calendar days in UTC; ``effective_until`` is the last day in effect (inclusive), or
None for open-ended. Status ``suspended`` ends recognition, not exchange: ``covering`` ignores it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from hub.core.errors import AgreementError

# The benefits an agreement may grant: a closed list, each code with the sentence shown to
# officers and in `customs-hub agreements` (like hub/core/reasons.py's REASONS).
BENEFITS: dict[str, str] = {
    "reduced-inspections": "fewer physical and documentary inspections for recognised operators",
    "priority-treatment": "priority treatment when a recognised operator's goods are selected "
    "for control",
    "control-results": "recognition of the partner's control results, so goods it controlled "
    "are not controlled again without cause",
    "reduced-data": "reduced data requirements for recognised operators' declarations",
    "business-continuity": "priority clearance for recognised operators after a disruption of "
    "trade (joint business continuity and resumption)",
    "simplified-procedures": "access to simplified customs procedures for recognised operators",
    "joint-validation": "joint validation visits and mutual acceptance of validation findings",
}

AGREEMENT_STATUSES = ("in-force", "suspended")
IN_FORCE, SUSPENDED = AGREEMENT_STATUSES
DIRECTIONS = ("send", "receive")
SEND, RECEIVE = DIRECTIONS


@dataclass(frozen=True)
class Share:
    """What one agreement lets one message type do with its partners."""

    body_type: str  # full name, e.g. "customs_hub.v1.AeoStatus"
    send: bool  # may go to the partners
    receive: bool  # may come from them
    fields: tuple[str, ...] = ()  # top-level names or dotted paths "a.b" kept; () = whole

    def allows(self, direction: str) -> bool:
        if direction == SEND:
            return self.send
        if direction == RECEIVE:
            return self.receive
        raise ValueError(f"direction must be 'send' or 'receive', not {direction!r}")


@dataclass(frozen=True)
class Agreement:
    id: str
    partners: tuple[str, ...]
    status: str  # "in-force" | "suspended"
    effective_from: datetime.date
    effective_until: datetime.date | None  # None: open-ended; otherwise the last day in effect
    recognises: Mapping[str, str]  # partner's programme name -> our programme name
    benefits: tuple[str, ...]  # codes from BENEFITS
    shares: Mapping[str, Share]  # by body_type
    digest: str  # hex SHA-256 of canonical(): the "policy version"

    def in_effect(self, day: datetime.date) -> bool:
        """Whether ``day`` falls within the agreement's dates (its status is not considered)."""
        if day < self.effective_from:
            return False
        return self.effective_until is None or day <= self.effective_until

    def overlaps(self, other: Agreement) -> bool:
        """Whether the two agreements' dates have a day in common."""
        end = datetime.date.max
        return self.effective_from <= (other.effective_until or end) and (
            other.effective_from <= (self.effective_until or end)
        )

    def canonical(self) -> dict[str, Any]:
        """What the digest is made over: every value that decides anything, in a fixed order."""
        return canonical(
            self.id,
            self.partners,
            self.status,
            self.effective_from,
            self.effective_until,
            self.recognises,
            self.benefits,
            self.shares.values(),
        )


def canonical(
    id: str,
    partners: Iterable[str],
    status: str,
    effective_from: datetime.date,
    effective_until: datetime.date | None,
    recognises: Mapping[str, str],
    benefits: Iterable[str],
    shares: Iterable[Share],
) -> dict[str, Any]:
    return {
        "id": id,
        "partners": sorted(partners),
        "status": status,
        "effective_from": effective_from.isoformat(),
        "effective_until": effective_until.isoformat() if effective_until else "",
        "recognises": dict(sorted(recognises.items())),
        "benefits": sorted(benefits),
        "shares": {
            s.body_type: {"send": s.send, "receive": s.receive, "fields": list(s.fields)}
            for s in sorted(shares, key=lambda s: s.body_type)
        },
    }


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def agreement(
    id: str,
    partners: Sequence[str],
    *,
    status: str = IN_FORCE,
    effective_from: datetime.date,
    effective_until: datetime.date | None = None,
    recognises: Mapping[str, str] | None = None,
    benefits: Sequence[str] = (),
    shares: Iterable[Share] = (),
) -> Agreement:
    """An Agreement with its digest computed (what config and tests build them with)."""
    share_map = {s.body_type: s for s in shares}
    recognised = dict(recognises or {})
    digest = _digest(
        canonical(
            id,
            partners,
            status,
            effective_from,
            effective_until,
            recognised,
            benefits,
            share_map.values(),
        )
    )
    return Agreement(
        id=id,
        partners=tuple(partners),
        status=status,
        effective_from=effective_from,
        effective_until=effective_until,
        recognises=recognised,
        benefits=tuple(benefits),
        shares=share_map,
        digest=digest,
    )


@dataclass(frozen=True)
class Agreements:
    items: Mapping[str, Agreement] = field(default_factory=dict)  # by id
    digest: str = ""  # over all of them; "" when there are none
    _by_partner: Mapping[str, tuple[Agreement, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        by_partner: dict[str, list[Agreement]] = {}
        for a in sorted(self.items.values(), key=lambda a: (a.effective_from, a.id)):
            for p in a.partners:
                by_partner.setdefault(p, []).append(a)
        object.__setattr__(self, "_by_partner", {p: tuple(v) for p, v in by_partner.items()})

    @property
    def configured(self) -> bool:
        """Whether hub.toml has any [agreements] at all (none: no policy applies)."""
        return bool(self.items)

    def of_partner(self, partner: str) -> list[Agreement]:
        """The agreements made with ``partner``, earliest first, whatever their dates or status."""
        return list(self._by_partner.get(partner, ()))

    def covering(
        self, partner: str, body_type: str, direction: str, day: datetime.date
    ) -> Agreement | None:
        """The agreement in effect on ``day`` whose share of ``body_type`` allows ``direction``
        ("send" or "receive") with ``partner``; None when none does. A suspended agreement
        still covers: suspension ends recognition, not exchange. Load refuses agreements that
        would both cover, so there is at most one."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'send' or 'receive', not {direction!r}")
        for a in self._by_partner.get(partner, ()):
            share = a.shares.get(body_type)
            if share is not None and share.allows(direction) and a.in_effect(day):
                return a
        return None

    def require(
        self, partner: str, body_type: str, direction: str, day: datetime.date
    ) -> Agreement | None:
        """``covering``'s agreement, None when no agreements are configured at all (no policy:
        everything goes whole, as routes say); AgreementError (not-covered-by-agreement) when
        agreements are configured and none covers."""
        if not self.configured:
            return None
        found = self.covering(partner, body_type, direction, day)
        if found is None:
            short = body_type.rpartition(".")[2]
            way = f"to {partner}" if direction == SEND else f"from {partner}"
            raise AgreementError(
                f"no agreement in effect on {day.isoformat()} lets {short} "
                f"{'go' if direction == SEND else 'come'} {way}"
            )
        return found


def agreements(items: Iterable[Agreement]) -> Agreements:
    """The set of agreements, with the digest over all of them ("" when there are none)."""
    by_id = {a.id: a for a in sorted(items, key=lambda a: a.id)}
    digest = _digest([[i, a.digest] for i, a in by_id.items()]) if by_id else ""
    return Agreements(items=by_id, digest=digest)


NO_AGREEMENTS = Agreements()


def conflicts(items: Sequence[Agreement]) -> list[tuple[str, str]]:
    """What makes a set of agreements ambiguous, as (agreement id, problem) pairs:

    - two agreements with dates in common that both recognise the same programme of the same
      partner (which would recognise a status twice, perhaps differently);
    - two agreements with dates in common that both share the same message type with the same
      partner in the same direction (``covering`` would have two answers).
    """
    found: list[tuple[str, str]] = []
    ordered = sorted(items, key=lambda a: a.id)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            common = [p for p in a.partners if p in b.partners]
            if not common or not a.overlaps(b):
                continue
            who = ", ".join(common)
            for programme in sorted(set(a.recognises) & set(b.recognises)):
                found.append(
                    (
                        b.id,
                        f"recognises {programme!r} of {who} on dates agreement {a.id} also "
                        "does; their dates must not overlap",
                    )
                )
            for body_type in sorted(set(a.shares) & set(b.shares)):
                sa, sb = a.shares[body_type], b.shares[body_type]
                for direction in DIRECTIONS:
                    if sa.allows(direction) and sb.allows(direction):
                        short = body_type.rpartition(".")[2]
                        found.append(
                            (
                                b.id,
                                f"share.{short}: {direction} with {who} on dates agreement "
                                f"{a.id} also covers; their dates must not overlap",
                            )
                        )
    return found


# --- The field filter --------------------------------------------------------------------------


# A field's descriptor, as the protobuf runtime makes it (upb's or the Python one: the stubs
# type them apart).
_Field = Any


def _is_message(f: _Field) -> bool:
    return bool(f.type == FieldDescriptor.TYPE_MESSAGE)


def _is_map(f: _Field) -> bool:
    return _is_message(f) and f.message_type.GetOptions().map_entry


def _is_repeated(f: _Field) -> bool:
    return bool(f.is_repeated)


def field_problems(message: Descriptor | type[Message], fields: Sequence[str]) -> list[str]:
    """Why each entry of ``fields`` does not name a field of ``message`` (empty: all do).

    An entry is a field name, or a dotted path "a.b" through message fields (singular or
    repeated; not maps, which are kept whole)."""
    descriptor = message if isinstance(message, Descriptor) else message.DESCRIPTOR
    problems: list[str] = []
    for path in fields:
        current: Any = descriptor
        parts = path.split(".")
        for depth, name in enumerate(parts):
            f = current.fields_by_name.get(name) if name else None
            where = ".".join(parts[:depth]) or current.name
            if f is None:
                known = ", ".join(sorted(current.fields_by_name))
                problems.append(f"{path!r}: {where} has no field {name!r} (it has: {known})")
                break
            if depth + 1 < len(parts):
                if not _is_message(f) or _is_map(f):
                    kind = "a map" if _is_map(f) else "not a message"
                    problems.append(f"{path!r}: {'.'.join(parts[: depth + 1])} is {kind}")
                    break
                current = f.message_type
    return problems


# What a partner's hub needs of a message to accept it at all (hub/core/revisions.py state_of,
# and the business keys it is found by): each group is one or more paths, one of which a
# policy's ``fields`` must keep (itself or a field it is under).
IDENTIFYING: dict[str, tuple[tuple[str, ...], ...]] = {
    "customs_hub.v1.AeoStatus": (("issuing_administration",), ("aeo_id",), ("revision",)),
    "customs_hub.v1.ControlResult": (
        ("control_id",),
        ("revision",),
        ("declaration_id", "functional_reference_id", "container_ids"),
    ),
    "customs_hub.v1.GoodsDeclaration": (("functional_reference_id", "id"),),
    "customs_hub.v1.MovementEvent": (
        ("document",),
        (
            "ucr_block",
            "master_ucr",
            "query_ucr",
            "control_ucr",
            "entry_number",
            "inventory_consignment_reference",
            "queried_ducr",
            "queried_mucr",
            "entry",
        ),
    ),
}


def identity_problems(body_type: str, fields: Sequence[str]) -> list[str]:
    """Why a policy keeping only ``fields`` of ``body_type`` would send messages no partner
    can accept (empty: it would not; an empty ``fields`` keeps everything)."""
    if not fields:
        return []
    kept = set(fields)

    def keeps(path: str) -> bool:
        parts = path.split(".")
        return any(".".join(parts[: n + 1]) in kept for n in range(len(parts)))

    return [
        f"must keep {' or '.join(group)}: a partner cannot accept the message without it"
        for group in IDENTIFYING.get(body_type, ())
        if not any(keeps(path) for path in group)
    ]


def _tree(fields: Sequence[str]) -> dict[str, Any]:
    """Paths as a tree: {"a": None} keeps a whole; {"a": {"b": None}} keeps a.b only."""
    tree: dict[str, Any] = {}
    for path in fields:
        node = tree
        parts = path.split(".")
        for name in parts[:-1]:
            if name in node and node[name] is None:
                break  # an ancestor is kept whole already
            node = node.setdefault(name, {})
        else:
            node[parts[-1]] = None
    return tree


def _copy(source: Message, target: Message, tree: Mapping[str, Any]) -> None:
    descriptor = source.DESCRIPTOR
    for name, below in tree.items():
        f: _Field = descriptor.fields_by_name.get(name)
        if f is None:
            raise ValueError(f"{descriptor.full_name} has no field {name!r}")
        value = getattr(source, name)
        if below is None:
            if _is_repeated(f):
                if _is_message(f):
                    getattr(target, name).MergeFrom(value)
                else:
                    getattr(target, name).extend(value)
            elif _is_message(f):
                if source.HasField(name):
                    getattr(target, name).CopyFrom(value)
            elif f.has_presence:
                if source.HasField(name):
                    setattr(target, name, value)
            else:
                setattr(target, name, value)
        elif _is_repeated(f):
            if _is_map(f):
                raise ValueError(f"{descriptor.full_name}.{name} is a map: keep it whole")
            out = getattr(target, name)
            for element in value:
                _copy(element, out.add(), below)
        elif _is_message(f):
            if source.HasField(name):
                sub = getattr(target, name)
                sub.SetInParent()
                _copy(value, sub, below)
        else:
            raise ValueError(f"{descriptor.full_name}.{name} is not a message")


def keep_fields(document: Message, fields: Sequence[str]) -> Message:
    """A copy of ``document`` with only ``fields`` (field names, or dotted paths "a.b" into its
    singular and repeated message fields); every field when ``fields`` is empty. The document
    itself is not changed. A path the message does not have raises ValueError (config checks
    paths with ``field_problems`` at load)."""
    result = type(document)()
    if not fields:
        result.CopyFrom(document)
        return result
    _copy(document, result, _tree(fields))
    return result
