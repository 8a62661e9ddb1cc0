"""Mutual recognition's verdicts (pure core): is a partner's AEO status recognised here, as of a
day, under which agreement and with which benefits, or the one reason why not; is a partner's
control result recognised; and what in a goods declaration to look up to answer both.

``recognise`` takes one registry record (hub/core/registry.py) and the agreements in force in
the configuration (hub/core/agreements.py), and checks in this order, giving the first reason
that applies, so that an officer reads the most useful one:

1. ``no-agreement``: no agreement with the issuing administration recognises any programme
   (or no ``[agreements]`` are configured at all). Nothing else matters then.
2. ``status-revoked``, ``status-suspended``, ``status-unclear``, ``status-expired``: what the
   issuer says of the operator. These come before anything about our agreements because they
   stay true whatever we agree: an officer told "agreement suspended" about a revoked operator
   would expect recognition back when the agreement resumes, and it would not come.
3. ``programme-not-covered``: no agreement with the issuer maps the status's programme to one
   of ours. A lasting fact about this operator under these agreements, so before the passing
   ones below.
4. ``agreement-not-in-force``: agreements map the programme, but none of them is in effect on
   the day (its dates).
5. ``agreement-suspended``: the one in effect is suspended.

Otherwise the status is recognised, under that agreement, as our programme it maps to, with the
agreement's benefits. An agreement's status and dates are read from the configuration as it is
now: a lookup as of a past day uses today's agreements with the status the registry held then.

What it must never do: read a clock (the day is given), or answer without a reason.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hub.core.agreements import BENEFITS, SUSPENDED, Agreement, Agreements
from hub.core.errors import RequestError
from hub.core.messages import MAX_KEY_LENGTH, GoodsDeclaration
from hub.core.registry import AeoRecord, ControlRecord
from hub.pb.customs_hub.v1 import declaration_pb2

# Why a status or a control result is not recognised: a closed list, each code with what it
# means for an officer (docs/recognition.md says the same at more length).
NOT_RECOGNISED: dict[str, str] = {
    "no-agreement": "no agreement with the issuing administration recognises its operators "
    "(or no agreements are configured)",
    "status-revoked": "the issuing administration has revoked the operator's AEO status",
    "status-suspended": "the issuing administration has suspended the operator's AEO status",
    "status-unclear": "the status names no standing (valid, suspended, revoked) or has "
    "validity dates that are not yyyy-mm-dd dates",
    "status-expired": "the status is not valid on the day asked: its valid_to has passed, or "
    "its valid_from is still to come",
    "programme-not-covered": "no agreement with the issuing administration recognises the "
    "status's AEO programme",
    "agreement-not-in-force": "the agreement that would recognise it is not in effect on the "
    "day asked (its effective dates)",
    "agreement-suspended": "the agreement that would recognise it is suspended",
    "control-results-not-granted": "no agreement with the controlling administration grants "
    "the recognition of control results",
}
CONTROL_RESULTS = "control-results"  # the benefit that makes a partner's control results count


@dataclass(frozen=True, slots=True)
class Benefit:
    code: str
    sentence: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """Recognised, or the reason why not (a NOT_RECOGNISED code). ``agreement`` names the
    agreement the verdict was reached under, when one was found (a suspended one too);
    ``programme`` is our programme the status maps to, when it maps to one; ``benefits`` are
    granted only when recognised."""

    recognised: bool
    reason: str = ""
    agreement: str = ""
    programme: str = ""
    benefits: tuple[Benefit, ...] = ()

    @staticmethod
    def refused(reason: str, agreement: str = "", programme: str = "") -> Verdict:
        if reason not in NOT_RECOGNISED:  # a programming error: the list is closed
            raise ValueError(f"unknown reason {reason!r}")
        return Verdict(False, reason, agreement, programme)


def benefits_of(agreement: Agreement) -> tuple[Benefit, ...]:
    return tuple(Benefit(code, BENEFITS.get(code, "")) for code in agreement.benefits)


def _day(text: str) -> datetime.date | None:
    return datetime.date.fromisoformat(text) if len(text) == 10 else None


def _standing(record: AeoRecord, day: datetime.date) -> str:
    """Step 2: what the issuer's status says of the operator on ``day`` ("" when valid)."""
    if record.status == "revoked":
        return "status-revoked"
    if record.status == "suspended":
        return "status-suspended"
    if record.status != "valid":
        return "status-unclear"
    try:
        valid_from = _day(record.valid_from) if record.valid_from else datetime.date.min
        valid_to = _day(record.valid_to) if record.valid_to else datetime.date.max
    except ValueError:
        return "status-unclear"
    if valid_from is None or valid_to is None:
        return "status-unclear"
    if not valid_from <= day <= valid_to:
        return "status-expired"
    return ""


def _latest(items: Sequence[Agreement], day: datetime.date) -> Agreement:
    """Of agreements none of which is in effect on ``day``, the one an officer would ask
    about: the last one to have begun by then, else the first to begin after."""
    begun = [a for a in items if a.effective_from <= day]
    return begun[-1] if begun else items[0]


def recognise(record: AeoRecord, agreements: Agreements, as_of: datetime.date) -> Verdict:
    """The verdict on ``record`` (a partner's AEO status) on the day ``as_of``, in the order the
    module's docstring gives."""
    # 1. an agreement with the issuer that recognises anything at all
    recognising = [a for a in agreements.of_partner(record.party) if a.recognises]
    if not recognising:
        return Verdict.refused("no-agreement")
    # 2. the issuer's own word on the operator
    standing = _standing(record, as_of)
    # 3. the agreements mapping the status's programme to one of ours (earliest first)
    mapping = [a for a in recognising if record.programme in a.recognises]
    if standing:
        in_effect = [a for a in mapping if a.in_effect(as_of)]
        found = in_effect[0] if in_effect else (_latest(mapping, as_of) if mapping else None)
        return Verdict.refused(
            standing,
            found.id if found else "",
            found.recognises[record.programme] if found else "",
        )
    if not mapping:
        in_effect = [a for a in recognising if a.in_effect(as_of)]
        found = in_effect[0] if in_effect else _latest(recognising, as_of)
        return Verdict.refused("programme-not-covered", found.id)
    # 4. in effect on the day (overlaps are refused at load: at most one)
    in_effect = [a for a in mapping if a.in_effect(as_of)]
    if not in_effect:
        found = _latest(mapping, as_of)
        return Verdict.refused(
            "agreement-not-in-force", found.id, found.recognises[record.programme]
        )
    agreement = in_effect[0]
    ours = agreement.recognises[record.programme]
    # 5. not suspended
    if agreement.status == SUSPENDED:
        return Verdict.refused("agreement-suspended", agreement.id, ours)
    return Verdict(True, "", agreement.id, ours, benefits_of(agreement))


def recognise_control(
    record: ControlRecord, agreements: Agreements, as_of: datetime.date
) -> Verdict:
    """Whether a partner's control result counts here on ``as_of``: an agreement with the
    controlling administration, granting ``control-results``, in effect and not suspended.
    Reasons, first that applies: ``no-agreement`` (none with that party at all),
    ``control-results-not-granted``, ``agreement-not-in-force``, ``agreement-suspended``."""
    made = agreements.of_partner(record.party)
    if not made:
        return Verdict.refused("no-agreement")
    granting = [a for a in made if CONTROL_RESULTS in a.benefits]
    if not granting:
        return Verdict.refused("control-results-not-granted")
    in_effect = [a for a in granting if a.in_effect(as_of)]
    if not in_effect:
        return Verdict.refused("agreement-not-in-force", _latest(granting, as_of).id)
    # agreements granting control results may overlap: the earliest in force counts, and only
    # when every one in effect is suspended is the result refused (naming the earliest)
    agreement = next((a for a in in_effect if a.status != SUSPENDED), in_effect[0])
    if agreement.status == SUSPENDED:
        return Verdict.refused("agreement-suspended", agreement.id)
    return Verdict(True, "", agreement.id, "", benefits_of(agreement))


# --- What a goods declaration names -------------------------------------------------------------

# The parties of a declaration whose AEO status matters to a risk engine, by role.
AEO_PARTY = "aeo-party"  # 16C AEOMutualRecognitionParty (R143 id, R005 role code)
EXPORTER = "exporter"  # 57A Exporter (R032)
CONSIGNOR = "consignor"  # 30A Consignor (R021)
# At most this many party ids, containers and documents are looked up for one declaration:
# the annotation is one batched lookup of bounded cost (a lookup batch holds as many).
MAX_LOOKUPS = 1000

# Transport documents: UN/EDIFACT 1001 codes 700-799 (bills of lading 704-716, rail 720, road
# 730, air waybills 740-741, post 750, multimodal 760-766, manifests 785-788). A previous document
# (CDS writes Z740 ...: category Z, type 740) is one by its type code alone; an additional
# document only in category N (N740), its other categories being certificates (C710: an INF).
_TRANSPORT_TYPES = frozenset(str(code) for code in range(700, 800))
_TRANSPORT_CATEGORY = "N"


@dataclass(frozen=True, slots=True)
class NamedParty:
    id: str
    role: str  # AEO_PARTY, EXPORTER or CONSIGNOR
    role_code: str = ""  # R005, for an AEO party (e.g. "FW" freight forwarder, "MF" maker)


@dataclass(frozen=True, slots=True)
class DeclarationKeys:
    """What to look up to annotate one declaration, each value once, in document order."""

    parties: tuple[NamedParty, ...]
    mrn: str
    lrn: str
    containers: tuple[str, ...]
    transport_documents: tuple[str, ...]
    truncated: bool  # more than MAX_LOOKUPS values were named; the first ones are kept

    @property
    def party_ids(self) -> list[str]:
        return list(dict.fromkeys(p.id for p in self.parties))


def _usable(value: str) -> bool:
    """Whether a value could be a stored key at all (hub.core.messages bounds them alike): one
    that could not is not looked up."""
    return 0 < len(value) <= MAX_KEY_LENGTH and value.isprintable()


def _parties(declaration: GoodsDeclaration) -> Iterable[NamedParty]:
    shipment = declaration.goods_shipment
    items = shipment.government_agency_goods_item
    aeo_parties = [
        *shipment.aeo_mutual_recognition_party,
        *(p for item in items for p in item.aeo_mutual_recognition_party),
    ]
    for party in aeo_parties:
        yield NamedParty(party.id.strip(), AEO_PARTY, party.role_code.strip())
    yield NamedParty(declaration.exporter.id.strip(), EXPORTER)
    consignors: list[declaration_pb2.Party] = [
        declaration.consignment.consignor,
        *(c.consignor for c in declaration.consignment.consignment_item),
        shipment.consignor,
        shipment.consignment.consignor,
        *(item.consignor for item in items),
    ]
    for consignor in consignors:
        yield NamedParty(consignor.id.strip(), CONSIGNOR)


def _containers(declaration: GoodsDeclaration) -> Iterable[str]:
    shipment = declaration.goods_shipment
    for consignment in (declaration.consignment, shipment.consignment):
        for equipment in consignment.transport_equipment:
            yield equipment.id.strip()
    for item in shipment.government_agency_goods_item:
        for equipment in item.commodity.transport_equipment:
            yield equipment.id.strip()


def _transport_documents(declaration: GoodsDeclaration) -> Iterable[str]:
    shipment = declaration.goods_shipment
    items = shipment.government_agency_goods_item
    for previous in (*shipment.previous_document, *(d for i in items for d in i.previous_document)):
        if previous.type_code.strip() in _TRANSPORT_TYPES:
            yield previous.id.strip()
    additional = (
        *declaration.additional_document,
        *(d for i in items for d in i.additional_document),
    )
    for document in additional:
        if (
            document.category_code.strip() == _TRANSPORT_CATEGORY
            and document.type_code.strip() in _TRANSPORT_TYPES
        ):
            yield document.id.strip()


def declaration_keys(declaration: GoodsDeclaration) -> DeclarationKeys:
    """The AEO parties, exporter and consignors (with their roles), MRN, LRN, containers and
    transport documents ``declaration`` names. Values a store could not hold (empty, longer
    than MAX_KEY_LENGTH, not printable) are left out; of the rest, at most MAX_LOOKUPS."""
    budget = MAX_LOOKUPS
    truncated = False

    def take(values: Iterable[str]) -> list[str]:
        nonlocal budget, truncated
        kept: list[str] = []
        for value in dict.fromkeys(v for v in values if _usable(v)):
            if budget == 0:
                truncated = True
                break
            kept.append(value)
            budget -= 1
        return kept

    parties: list[NamedParty] = []
    seen: set[NamedParty] = set()
    for party in _parties(declaration):
        if not _usable(party.id) or party in seen:
            continue
        if budget == 0:
            truncated = True
            break
        seen.add(party)
        parties.append(party)
        budget -= 1
    containers = take(_containers(declaration))
    documents = take(_transport_documents(declaration))
    mrn, lrn = declaration.id.strip(), declaration.functional_reference_id.strip()
    return DeclarationKeys(
        parties=tuple(parties),
        mrn=mrn if _usable(mrn) else "",
        lrn=lrn if _usable(lrn) else "",
        containers=tuple(containers),
        transport_documents=tuple(documents),
        truncated=truncated,
    )


# --- Lookups' queries ---------------------------------------------------------------------------

# Queries in one batched lookup: a risk engine's batch of a day's declarations' parties, read
# with one query per day asked; as many as a partner's AeoQuery may carry (ADR 0012).
MAX_QUERIES = 1000


def lookup_value(what: str, value: str) -> str:
    """A looked-up id (AEO id, TIN, MRN, LRN, container, transport document) without the
    spaces around it; ``lookup-invalid`` when it is empty or could not be a stored key (over
    MAX_KEY_LENGTH characters, or not printable)."""
    value = value.strip()
    if not value:
        raise RequestError(f"the query gives no {what}", reason="lookup-invalid")
    if len(value) > MAX_KEY_LENGTH:
        raise RequestError(
            f"the {what} is {len(value)} characters long; at most {MAX_KEY_LENGTH} are kept",
            reason="lookup-invalid",
        )
    if not value.isprintable():
        raise RequestError(f"the {what} holds a control character", reason="lookup-invalid")
    return value


def lookup_day(text: str, today: datetime.date) -> datetime.date:
    """The day a query asks about: ``text`` as yyyy-mm-dd, or ``today`` when it is empty;
    ``lookup-invalid`` for anything else."""
    if not text:
        return today
    try:
        if len(text) != 10:
            raise ValueError
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise RequestError(
            f"as_of must be a date as yyyy-mm-dd; found {len(text)} characters that are not one",
            reason="lookup-invalid",
        ) from None


def batch_size(count: int) -> None:
    """``lookup-too-large`` for a batch of more than MAX_QUERIES queries, ``lookup-invalid``
    for one of none."""
    if count > MAX_QUERIES:
        raise RequestError(
            f"a batch may carry at most {MAX_QUERIES} queries; this one has {count}",
            reason="lookup-too-large",
        )
    if count == 0:
        raise RequestError("the batch carries no query", reason="lookup-invalid")
