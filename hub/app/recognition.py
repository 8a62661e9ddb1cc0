"""Recognition lookups: partners' AEO statuses and control results from the registry
(hub/store/registry.py), judged against the agreements (hub/core/recognition.py), as the answers
the Recognition service, the annotation of inbound declarations and `customs-hub recognition`
give.

Each lookup reads the registry once per day asked (a batch of queries about today is one
read), and the verdicts are pure and in memory. Our own AEOs are in the registry too, under our
own party; they are what partners may query, not statuses we recognise, so lookups leave them
out.

What it must never do: write anything, or judge with a clock of its own (``today`` is given).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from hub.core.agreements import Agreements
from hub.core.errors import RequestError
from hub.core.messages import GoodsDeclaration
from hub.core.recognition import (
    MAX_ANNOTATION_STATUSES,
    MAX_CONTROLS,
    MAX_READ_ROWS,
    MAX_STATUSES,
    NOT_RECOGNISED,
    DeclarationKeys,
    Verdict,
    batch_size,
    declaration_keys,
    lookup_day,
    lookup_value,
    recognise,
    recognise_control,
)
from hub.core.registry import AeoRecord, ControlRecord
from hub.pb.customs_hub.v1 import recognition_pb2 as rpb

OPERATOR_KEYS = {"aeo_id": "AEO id", "tin": "TIN"}
CONTROL_KEYS = {
    "mrn": "MRN",
    "lrn": "LRN",
    "container": "container id",
    "transport_document": "transport document id",
}


class RegistryReader(Protocol):
    """What lookups read (hub/store/registry.py ``Registry``)."""

    async def operators(
        self,
        aeo_ids: Sequence[str] = (),
        tins: Sequence[str] = (),
        as_of: datetime.datetime | None = None,
        limit: int | None = None,
    ) -> list[AeoRecord]: ...

    async def controls(
        self,
        mrns: Sequence[str] = (),
        lrns: Sequence[str] = (),
        containers: Sequence[str] = (),
        transport_documents: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[ControlRecord]: ...


@dataclass(frozen=True)
class OperatorKey:
    """A checked operator query: which key, its value, the day."""

    kind: str  # "aeo_id" | "tin"
    value: str
    day: datetime.date


def operator_key(query: rpb.OperatorQuery, today: datetime.date) -> OperatorKey:
    """``query`` checked: ``lookup-invalid`` without a key, with an unusable one, or with an
    as_of that is not a date."""
    kind = query.WhichOneof("key")
    if kind is None:
        raise _invalid("the query gives neither an aeo_id nor a tin")
    return OperatorKey(
        kind,
        lookup_value(OPERATOR_KEYS[kind], getattr(query, kind)),
        lookup_day(query.as_of, today),
    )


def _invalid(message: str) -> RequestError:
    return RequestError(message, reason="lookup-invalid")


def verdict_view(verdict: Verdict) -> rpb.OperatorStatus:
    """The verdict's part of an OperatorStatus, merged into each status it applies to."""
    return rpb.OperatorStatus(
        recognised=verdict.recognised,
        reason=verdict.reason,
        reason_text=NOT_RECOGNISED.get(verdict.reason, ""),
        agreement_id=verdict.agreement,
        our_programme=verdict.programme,
        benefits=[rpb.Benefit(code=b.code, sentence=b.sentence) for b in verdict.benefits],
    )


def status_view(record: AeoRecord, verdict: rpb.OperatorStatus) -> rpb.OperatorStatus:
    status = rpb.OperatorStatus(
        party=record.party,
        aeo_id=record.aeo_id,
        tin=record.tin,
        name=record.name,
        programme=record.programme,
        status=record.status,
        valid_from=record.valid_from,
        valid_to=record.valid_to,
        revision=record.revision,
        country_code=record.country_code,
        trail_index=record.trail_index,
        message_id=record.message_id,
    )
    status.MergeFrom(verdict)
    return status


class Verdicts:
    """Verdicts on records, each worked out once per party, programme, standing, validity and
    day: a batch's many operators of one partner share a few (hub/core/recognition.py is pure,
    so the same inputs give the same verdict)."""

    def __init__(self, agreements: Agreements) -> None:
        self.agreements = agreements
        self._seen: dict[tuple[str, ...], rpb.OperatorStatus] = {}

    def of(self, record: AeoRecord, day: datetime.date) -> rpb.OperatorStatus:
        key = (
            record.party,
            record.programme,
            record.status,
            record.valid_from,
            record.valid_to,
            day.isoformat(),
        )
        view = self._seen.get(key)
        if view is None:
            view = self._seen[key] = verdict_view(recognise(record, self.agreements, day))
        return view


def control_view(
    record: ControlRecord, matched_by: str, value: str, verdict: Verdict
) -> rpb.ControlMatch:
    return rpb.ControlMatch(
        party=record.party,
        control_id=record.control_id,
        stage=record.stage,
        outcome=record.outcome,
        control_type=record.control_type,
        controlled_at=record.controlled_at,
        office_id=record.office_id,
        matched_by=matched_by,
        matched_value=value,
        declaration_id=record.declaration_id,
        functional_reference_id=record.functional_reference_id,
        transport_document_id=record.transport_document_id,
        container_ids=record.container_ids,
        revision=record.revision,
        trail_index=record.trail_index,
        message_id=record.message_id,
        recognised=verdict.recognised,
        reason=verdict.reason,
        reason_text=NOT_RECOGNISED.get(verdict.reason, ""),
        agreement_id=verdict.agreement,
    )


def _end_of(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.max, datetime.UTC)


def _match(record: ControlRecord, keys: DeclarationKeys) -> tuple[str, str]:
    """Which of a declaration's keys a control result names: its MRN, LRN, a container or a
    transport document, the first that applies."""
    if keys.mrn and record.declaration_id == keys.mrn:
        return "mrn", keys.mrn
    if keys.lrn and record.functional_reference_id == keys.lrn:
        return "lrn", keys.lrn
    for container in keys.containers:
        if container in record.container_ids:
            return "container", container
    return "transport_document", record.transport_document_id


@dataclass
class Lookups:
    """The lookups over one registry, with the agreements as they are at each call."""

    registry: RegistryReader
    agreements: Callable[[], Agreements]  # read at each call: a reload takes effect at once
    party: str  # ours
    today: Callable[[], datetime.date]  # the day in UTC

    async def _records(
        self, aeo_ids: Iterable[str], tins: Iterable[str], day: datetime.date
    ) -> tuple[list[AeoRecord], bool]:
        """Partners' records of those ids as of ``day``: the current rows for today or later,
        else the highest revision received by the end of that day. Ordered by party; at most
        MAX_READ_ROWS, and True when there were more."""
        as_of = None if day >= self.today() else _end_of(day)
        records = await self.registry.operators(
            list(dict.fromkeys(aeo_ids)), list(dict.fromkeys(tins)), as_of, MAX_READ_ROWS + 1
        )
        cut = len(records) > MAX_READ_ROWS
        return sorted(
            (r for r in records[:MAX_READ_ROWS] if r.party != self.party),
            key=lambda r: (r.party, r.aeo_id),
        ), cut

    def _answer(
        self,
        query: rpb.OperatorQuery,
        key: OperatorKey,
        found: Mapping[tuple[str, str], list[AeoRecord]],
        verdicts: Verdicts,
        cut: bool,
    ) -> rpb.OperatorAnswer:
        matched = found.get((key.kind, key.value), [])
        return rpb.OperatorAnswer(
            query=query,
            as_of=key.day.isoformat(),
            recognised=any(verdicts.of(r, key.day).recognised for r in matched),
            statuses=[status_view(r, verdicts.of(r, key.day)) for r in matched[:MAX_STATUSES]],
            truncated=cut or len(matched) > MAX_STATUSES,
        )

    async def operator(self, query: rpb.OperatorQuery) -> rpb.OperatorAnswer:
        [answer] = await self.operators([query])
        return answer

    async def operators(self, queries: Sequence[rpb.OperatorQuery]) -> list[rpb.OperatorAnswer]:
        """One answer per query, in order; RequestError (``lookup-invalid``,
        ``lookup-too-large``) for a batch with an unusable query, naming which."""
        batch_size(len(queries))
        today = self.today()
        keys: list[OperatorKey] = []
        for n, query in enumerate(queries):
            try:
                keys.append(operator_key(query, today))
            except RequestError as exc:
                if len(queries) == 1:
                    raise
                raise RequestError(f"query {n}: {exc.message}", reason=exc.reason) from None
        # each day's records by what they answer: ("aeo_id", id) and ("tin", tin)
        found: dict[datetime.date, dict[tuple[str, str], list[AeoRecord]]] = {}
        cut: dict[datetime.date, bool] = {}
        for day in dict.fromkeys(k.day for k in keys):
            asked = [k for k in keys if k.day == day]
            records, cut[day] = await self._records(
                (k.value for k in asked if k.kind == "aeo_id"),
                (k.value for k in asked if k.kind == "tin"),
                day,
            )
            by_key: dict[tuple[str, str], list[AeoRecord]] = {}
            for record in records:
                by_key.setdefault(("aeo_id", record.aeo_id), []).append(record)
                if record.tin:
                    by_key.setdefault(("tin", record.tin), []).append(record)
            found[day] = by_key
        verdicts = Verdicts(self.agreements())
        return [
            self._answer(q, k, found[k.day], verdicts, cut[k.day])
            for q, k in zip(queries, keys, strict=True)
        ]

    async def controls(self, query: rpb.ControlsQuery) -> rpb.LookupControlsResponse:
        """Partners' current control results matching one MRN, LRN, container or transport
        document (at most MAX_CONTROLS), each judged against the agreements as of the day
        asked: the results are today's, including any received after that day."""
        kind = query.WhichOneof("key")
        if kind is None:
            raise _invalid("the query gives no mrn, lrn, container or transport_document")
        value = lookup_value(CONTROL_KEYS[kind], getattr(query, kind))
        day = lookup_day(query.as_of, self.today())
        asked = {name: [value] if name == kind else [] for name in CONTROL_KEYS}
        records = await self.registry.controls(
            asked["mrn"],
            asked["lrn"],
            asked["container"],
            asked["transport_document"],
            MAX_CONTROLS + 1,
        )
        agreements = self.agreements()
        partners = sorted(
            (r for r in records[:MAX_CONTROLS] if r.party != self.party),
            key=lambda r: (r.party, r.control_id, r.key),
        )
        return rpb.LookupControlsResponse(
            as_of=day.isoformat(),
            controls=[
                control_view(r, kind, value, recognise_control(r, agreements, day))
                for r in partners
            ],
            truncated=len(records) > MAX_CONTROLS,
        )

    async def annotate(self, declaration: GoodsDeclaration) -> rpb.DeclarationRecognition:
        """What is known today of the parties and consignment ``declaration`` names: one read
        of the statuses of every party id (as AEO id and as TIN) and one of the control results
        of its MRN, LRN, containers and transport documents. Bounded whatever the registry
        holds: each read returns at most MAX_READ_ROWS (MAX_CONTROLS + 1) rows, a party lists
        at most MAX_STATUSES statuses and all parties MAX_ANNOTATION_STATUSES, the controls at
        most MAX_CONTROLS; ``truncated`` says when anything was left out."""
        keys = declaration_keys(declaration)
        day = self.today()
        agreements = self.agreements()
        ids = keys.party_ids
        records, truncated = await self._records(ids, ids, day) if ids else ([], False)
        truncated = truncated or keys.truncated
        # each id's records, in the order read, once (a party id may name many parties: one
        # per role and role code)
        by_id: dict[str, list[AeoRecord]] = {}
        for record in records:
            by_id.setdefault(record.aeo_id, []).append(record)
            if record.tin and record.tin != record.aeo_id:
                by_id.setdefault(record.tin, []).append(record)
        verdicts = Verdicts(agreements)
        recognised = {
            id_: any(verdicts.of(r, day).recognised for r in found) for id_, found in by_id.items()
        }
        budget = MAX_ANNOTATION_STATUSES
        parties = []
        for party in keys.parties:
            matched = by_id.get(party.id, [])
            shown = matched[: min(MAX_STATUSES, budget)]
            budget -= len(shown)
            truncated = truncated or len(shown) < len(matched)
            parties.append(
                rpb.PartyRecognition(
                    id=party.id,
                    role=party.role,
                    role_code=party.role_code,
                    recognised=recognised.get(party.id, False),
                    statuses=[status_view(r, verdicts.of(r, day)) for r in shown],
                )
            )
        controls: list[rpb.ControlMatch] = []
        if keys.mrn or keys.lrn or keys.containers or keys.transport_documents:
            found = await self.registry.controls(
                [keys.mrn] if keys.mrn else [],
                [keys.lrn] if keys.lrn else [],
                keys.containers,
                keys.transport_documents,
                MAX_CONTROLS + 1,
            )
            truncated = truncated or len(found) > MAX_CONTROLS
            for control in sorted(
                found[:MAX_CONTROLS], key=lambda r: (r.party, r.control_id, r.key)
            ):
                if control.party == self.party:
                    continue
                matched_by, value = _match(control, keys)
                verdict = recognise_control(control, agreements, day)
                controls.append(control_view(control, matched_by, value, verdict))
        return rpb.DeclarationRecognition(
            as_of=day.isoformat(), parties=parties, controls=controls, truncated=truncated
        )
