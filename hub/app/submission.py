"""What domestic systems submit: each document checked, routed (hub/core/routing.py), signed in
an envelope per recipient and queued in the outbox with its trail events in one group commit,
before the submitter hears "queued"; and dead letters queued again or re-signed, and a
partner's messages re-routed to another.

With agreements configured (hub/core/agreements.py), every envelope signed here for a partner
(``_sealed``: submissions, drop folders, re-signed dead letters, re-routed messages) carries
only what the agreement covering that type to that partner today lets leave, and its
``queued`` leaf names the agreement and its digest; a message no agreement covers is refused
with ``not-covered-by-agreement`` before anything is signed or queued. Without agreements,
documents go whole, as routes say.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from google.protobuf.message import Message

from adapters.wco.controls import control_result_from
from hub.app.audit import Audit
from hub.app.context import HubContext
from hub.app.telemetry import MESSAGE_ID, now_ns, traceparent
from hub.app.traces import Pickup, SubmitTrace
from hub.core.agreements import SEND, Agreements, keep_fields
from hub.core.envelope import (
    CORRELATION_ID,
    build_envelope,
    sha256,
)
from hub.core.errors import (
    AgreementError,
    HubError,
    SubmissionError,
)
from hub.core.limits import DETAIL_CHARS, ID_CHARS
from hub.core.messages import (
    AeoStatus,
    ControlResult,
    GoodsDeclaration,
    MovementEvent,
    Response,
    body_class,
    keys_of,
)
from hub.core.registry import AeoRecord, aeo_record
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import movement_pb2
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.store.groupcommit import Lane
from hub.store.rawsql import Tx
from hub.store.schema import (
    DEAD,
    QUEUED,
    DueDelivery,
    NewOutbound,
    OutboundMessage,
    TrailQuery,
    as_utc,
)
from hub.trail import events as trail

# The source of the record of a dead letter `outbox retry` kept, no agreement covering it now
RETRY_SOURCE = "outbox-retry"


@dataclass(frozen=True)
class Retried:
    """What ``retry_dead_letters`` did: (dead letter id, id now queued) pairs, the same id
    when requeued as it was; and (message id, why) of those kept as dead letters."""

    queued: list[tuple[str, str]]
    kept: list[tuple[str, str]]


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    recipient: str


@dataclass(frozen=True)
class Submission:
    document: Message
    recipients: Sequence[str] = ()
    correlation_id: str = ""
    document_digest: bytes | None = None
    derived: Sequence[Message] = ()
    submission_id: str = ""
    source: str = "domestic"  # who submitted it, for a rejection's record: "folder:<name>"
    pickup: Pickup | None = None  # when it was taken in and translated (telemetry on)


def derived_messages(document: Message) -> list[Message]:
    """Messages a document implies besides itself: the control results its notifications
    report (a partner may recognise a control without reading RES-DMS)."""
    if not isinstance(document, Response):
        return []
    found = (control_result_from(r) for r in (document, *document.further_responses))
    return [result for result in found if result is not None]


@dataclass(frozen=True)
class Outgoing:
    rows: list[NewOutbound]
    submission_id: str
    answer: bytes  # the serialised SubmitResponse, stored for an idempotent resubmission
    events: list[trail.Event] = field(default_factory=list)  # translated, routed
    # our own AEO statuses for the registry, each with the place of its "routed" leaf in events
    records: list[tuple[int, AeoRecord]] = field(default_factory=list)
    trace: SubmitTrace | None = None  # its envelopes' spans, ended once committed


def queued_from(answer: bytes) -> list[QueuedMessage]:
    response = spb.SubmitResponse.FromString(answer)
    return [QueuedMessage(q.message_id, q.recipient) for q in response.queued]


def check_submission(document: Message, local_party: str) -> None:
    """The minimum a business message needs before it may be signed and sent."""
    if isinstance(document, GoodsDeclaration):
        if not (document.functional_reference_id.strip() or document.id.strip()):
            raise SubmissionError(
                "a goods declaration needs a functional reference (LRN, D026) or an id (MRN, D014)",
                reason="missing-business-key",
            )
    elif isinstance(document, AeoStatus):
        if not document.aeo_id.strip():
            raise SubmissionError("an AEO status needs aeo_id", reason="missing-business-key")
        if document.issuing_administration not in ("", local_party):
            raise SubmissionError(
                f"this hub shares AEO decisions of {local_party}; the status names issuing "
                f"administration {document.issuing_administration!r}",
                reason="not-issuer",
            )
        document.issuing_administration = local_party
    elif isinstance(document, MovementEvent):
        if document.document == movement_pb2.MOVEMENT_DOCUMENT_UNSPECIFIED:
            raise SubmissionError(
                "a movement event needs its document (which inventory-linking message it is)",
                reason="missing-business-key",
            )
        if not keys_of(document):
            raise SubmissionError(
                "a movement event needs a UCR, master UCR, entry number (MRN) or inventory "
                "consignment reference",
                reason="missing-business-key",
            )
    elif isinstance(document, ControlResult):
        concerns = (
            document.declaration_id or document.functional_reference_id or document.container_ids
        )
        if not (document.control_id.strip() and concerns):
            raise SubmissionError(
                "a control result needs control_id and the declaration (MRN or LRN) or "
                "containers it concerns",
                reason="missing-business-key",
            )


class Submissions:
    def __init__(self, hub: HubContext, audit: Audit) -> None:
        self.hub, self.audit = hub, audit
        self.commits: Lane[Outgoing, list[DueDelivery]] = hub.writes.lane(
            "outbound", self.enqueue_in, committed=self.queued
        )
        self._submitting: dict[str, asyncio.Future[list[QueuedMessage]]] = {}
        self._last_revision = 0

    async def submit(
        self,
        document: Message,
        recipients: Sequence[str] = (),
        correlation_id: str = "",
        document_digest: bytes | None = None,
        derived: Sequence[Message] = (),
        submission_id: str = "",
    ) -> list[QueuedMessage]:
        """Route, sign and queue a domestic document, and any messages derived from it (e.g.
        the control result a notification reports), all in one transaction: either all of
        them are queued or, with the reason recorded, none."""
        [result] = await self.submit_many(
            [
                Submission(
                    document, recipients, correlation_id, document_digest, derived, submission_id
                )
            ]
        )
        if isinstance(result, HubError):
            raise result
        return result

    async def submit_many(
        self, submissions: Sequence[Submission]
    ) -> list[list[QueuedMessage] | HubError]:
        """Queue many submissions in one group commit; each gets its queued messages or the
        error that refused it (recorded). A store failure raises: nothing was queued."""
        results: list[list[QueuedMessage] | HubError | None] = [None] * len(submissions)
        tracing = self.hub.telemetry.tracing
        jobs: list[tuple[int, Outgoing]] = []
        waiting: list[tuple[int, asyncio.Future[list[QueuedMessage]]]] = []
        mine: dict[str, asyncio.Future[list[QueuedMessage]]] = {}
        earlier = await self.hub.store.outbox.submissions(
            [s.submission_id for s in submissions if 0 < len(s.submission_id) <= ID_CHARS]
        )
        for i, sub in enumerate(submissions):
            if sub.submission_id:
                if len(sub.submission_id) > ID_CHARS:
                    results[i] = SubmissionError(
                        f"submission_id is longer than {ID_CHARS} characters",
                        reason="submission-invalid",
                    )
                    continue
                running = self._submitting.get(sub.submission_id)
                if running is not None:  # the same submission is being queued right now
                    waiting.append((i, running))
                    continue
                answer = earlier.get(sub.submission_id)
                if answer is not None:
                    results[i] = queued_from(answer)
                    continue
            trace = SubmitTrace(self.hub.telemetry, sub.pickup) if tracing else None
            try:
                outgoing = self._outgoing(sub, trace)
            except HubError as exc:
                span = trace.failed(exc) if trace is not None else None
                await self.audit.record_rejection(
                    sub.source, None, exc, sub.document_digest, trace=span
                )
                results[i] = exc
                continue
            jobs.append((i, outgoing))
            if sub.submission_id:
                future = asyncio.get_running_loop().create_future()
                self._submitting[sub.submission_id] = mine[sub.submission_id] = future
        committing = now_ns() if tracing else 0
        try:
            await self.commits.submit([job for _, job in jobs])
        except BaseException as exc:
            for future in mine.values():
                future.set_exception(exc if isinstance(exc, Exception) else HubError("cancelled"))
                future.exception()  # retrieved: waiters see it, nobody is warned
            if tracing:
                failure = exc if isinstance(exc, HubError) else HubError("not queued")
                for _, job in jobs:
                    if job.trace is not None:
                        job.trace.failed(failure)
            raise
        finally:
            for sid in mine:
                self._submitting.pop(sid, None)
        if tracing:
            end = now_ns()
            for _, job in jobs:
                if job.trace is not None:
                    job.trace.queued(committing, end)
        for i, job in jobs:
            queued = [QueuedMessage(r.message_id, r.recipient) for r in job.rows]
            results[i] = queued
            if job.submission_id:
                mine[job.submission_id].set_result(queued)
        for i, future in waiting:
            try:
                results[i] = await asyncio.shield(future)
            except HubError as exc:
                results[i] = exc
        if jobs:
            self.hub.outbox_changed.notify()
        return [r if r is not None else HubError("not processed") for r in results]

    def _outgoing(self, sub: Submission, trace: SubmitTrace | None) -> Outgoing:
        """Check, route and sign one submission: its outbound rows, not yet stored (with
        ``trace``, telemetry on, their spans begun)."""
        if not CORRELATION_ID.fullmatch(sub.correlation_id):
            # what a partner would refuse is refused here, before it is signed and queued
            raise SubmissionError(
                f"correlation_id must be at most {ID_CHARS} printable ASCII characters "
                "without spaces",
                reason="submission-invalid",
            )
        documents = [sub.document, *sub.derived]
        plan = []
        for doc in documents:
            check_submission(doc, self.hub.party)
            if isinstance(doc, AeoStatus | ControlResult) and doc.revision == 0:
                doc.revision = self._next_revision()
            plan.append((doc, self.hub.routing.recipients(doc, sub.recipients)))
        rows: list[NewOutbound] = []
        events: list[trail.Event] = []
        records: list[tuple[int, AeoRecord]] = []
        now = self.hub.clock()
        agreements = self.hub.agreements  # one policy for the whole submission
        plan, left_out = self._covered(plan, agreements, now.date())
        if trace is not None:
            trace.checked()
        keyed = [(doc, targets, keys_of(doc)) for doc, targets in plan]
        if sub.document_digest:
            events.append(
                trail.Event(
                    "translated",
                    now,
                    correlation_id=sub.correlation_id,
                    sender="domestic",
                    body_type=sub.document.DESCRIPTOR.full_name,
                    document_digest=sub.document_digest,
                    keys=keyed[0][2],  # the first document is the submitted one
                    detail="a domestic document translated into the canonical form"
                    + (f", with {len(sub.derived)} derived message(s)" if sub.derived else ""),
                )
            )
        for n, (doc, targets, doc_keys) in enumerate(keyed):
            keys = json.dumps(doc_keys, sort_keys=True)
            how = "as the domestic system asked" if sub.recipients else "by the routing rules"
            skipped = left_out[n]
            if skipped:
                how += f"; not to {', '.join(skipped)}, which no agreement lets it go to"
            events.append(
                trail.Event(
                    "routed",
                    now,
                    correlation_id=sub.correlation_id,
                    sender="domestic",
                    body_type=doc.DESCRIPTOR.full_name,
                    document_digest=sub.document_digest or b"",
                    keys=doc_keys,
                    detail=f"to {', '.join(targets) or 'nobody'}, {how}"[:DETAIL_CHARS],
                )
            )
            sent: list[NewOutbound] = []
            for recipient in targets:
                span = trace.open(recipient, doc.DESCRIPTOR.full_name, n > 0) if trace else None
                sent.append(
                    self._sealed(
                        doc,
                        recipient,
                        sub.correlation_id,
                        keys,
                        sub.document_digest,
                        sub.submission_id or None,
                        agreements,
                        traceparent(span.get_span_context()) if span is not None else "",
                    )
                )
                if span is not None:
                    span.set_attribute(MESSAGE_ID, sent[-1].message_id)
            rows += sent
            if isinstance(doc, AeoStatus):  # ours, for the registry, routed anywhere or not
                first = sent[0].message_id if sent else ""
                own = aeo_record(doc, first, 0, now, party=self.hub.party)
                records.append((len(events) - 1, own))
        answer = b""
        if sub.submission_id:
            answer = spb.SubmitResponse(
                queued=[spb.Queued(message_id=r.message_id, recipient=r.recipient) for r in rows],
                document_digest=sub.document_digest or b"",
            ).SerializeToString()
        if trace is not None:
            trace.done()
        return Outgoing(rows, sub.submission_id, answer, events, records, trace)

    @staticmethod
    def _covered(
        plan: list[tuple[Message, list[str]]], agreements: Agreements, day: date
    ) -> tuple[list[tuple[Message, list[str]]], list[list[str]]]:
        """The plan with the recipients agreements let each message go to, and those left out.
        The submitted document (the first) goes to all its recipients or the submission is
        refused, naming every partner not covered: nothing of it is queued, so no partner gets
        what another did not. A derived message (the control result a notification reports)
        is not sent where no agreement covers its own type: the domestic system did not ask
        for it, and its document goes anyway. Without agreements, everything goes."""
        if not agreements.configured:
            return plan, [[] for _ in plan]
        covered: list[tuple[Message, list[str]]] = []
        left_out: list[list[str]] = []
        for n, (doc, targets) in enumerate(plan):
            body_type = doc.DESCRIPTOR.full_name
            out = [t for t in targets if agreements.covering(t, body_type, SEND, day) is None]
            if out and n == 0:
                short = doc.DESCRIPTOR.name
                raise AgreementError(
                    f"no agreement in effect on {day.isoformat()} lets {short} go to "
                    f"{', '.join(out)}; nothing of the submission was queued"
                )
            covered.append((doc, [t for t in targets if t not in out]))
            left_out.append(out)
        return covered, left_out

    def _sealed(
        self,
        document: Message,
        recipient: str,
        correlation_id: str,
        keys: str,
        document_digest: bytes | None,
        submission_id: str | None = None,
        agreements: Agreements | None = None,
        trace: str = "",
    ) -> NewOutbound:
        """``document`` signed in a new envelope for ``recipient``, as an outbound row: with
        agreements configured, only what the one covering it lets leave (or refused with
        not-covered-by-agreement). ``trace``: the traceparent of its span (telemetry on)."""
        now = self.hub.clock()
        ttl = self.hub.config.limits.message_ttl
        policy = self.hub.agreements if agreements is None else agreements
        body_type = document.DESCRIPTOR.full_name
        agreement = policy.require(recipient, body_type, SEND, now.date())
        if agreement is not None:
            document = keep_fields(document, agreement.shares[body_type].fields)
        data, header = build_envelope(
            self.hub.signer,
            sender=self.hub.party,
            recipient=recipient,
            document=document,
            created_at=now,
            ttl=ttl,
            correlation_id=correlation_id,
            traceparent=trace,
        )
        if len(data) > self.hub.config.limits.max_envelope_bytes:
            # a partner refuses it (they accept what we do): refused now, not dead-lettered
            raise SubmissionError(
                f"the signed message would be {len(data)} bytes; partners accept envelopes "
                f"of at most {self.hub.config.limits.max_envelope_bytes} bytes",
                reason="too-large",
            )
        return NewOutbound(
            message_id=header.message_id,
            correlation_id=correlation_id,
            recipient=recipient,
            body_type=header.body_type,
            envelope=data,
            envelope_digest=sha256(data),
            business_keys=keys,
            document_digest=document_digest,
            created_at=now,
            expires_at=now + ttl,
            submission_id=submission_id,
            agreement=agreement.id if agreement is not None else "",
            policy_digest=agreement.digest if agreement is not None else "",
        )

    def enqueue_in(self, tx: Tx, jobs: list[Outgoing]) -> list[list[DueDelivery]]:
        """Outbound messages in a group commit; each job's outbox entries, in id order. Our
        own AEO statuses go to the registry with them, each with its "routed" leaf."""
        store = self.hub.store
        size = store.trail.size_in(tx) if any(job.records for job in jobs) else 0
        entries = store.outbox.enqueue_in(
            tx,
            [row for job in jobs for row in job.rows],
            [(job.submission_id, job.answer) for job in jobs if job.submission_id],
            [event for job in jobs for event in job.events],
        )
        own: list[AeoRecord] = []
        for job in jobs:  # the jobs' events are the first leaves appended, in this order
            own += [replace(r, trail_index=size + at) for at, r in job.records]
            size += len(job.events)
        if own:
            store.registry.write_in(tx, own)
        out: list[list[DueDelivery]] = []
        start = 0
        for job in jobs:
            out.append(entries[start : start + len(job.rows)])
            start += len(job.rows)
        return out

    def queued(self, _jobs: list[Outgoing], entries: list[list[DueDelivery]]) -> None:
        """Hand the committed entries to the senders (in id order: jobs commit in order)."""
        flat = [entry for job in entries for entry in job]
        for listener in self.hub.queued_listeners:
            listener(flat)

    async def retry_dead_letters(
        self, message_ids: Sequence[str] = (), partner: str | None = None
    ) -> Retried:
        """Queue dead letters again (by message id, or all of a partner's), each as the
        agreements in effect today allow (``_retry_plan``): one no agreement covers any more
        stays a dead letter, with a ``rejected`` leaf and record; one whose envelope is still
        valid and was signed under today's policy goes again as it is; any other (expired,
        or signed under a policy since changed) is signed afresh as a new message (new id
        and validity, same body and correlation id) that replaces it."""
        letters: list[OutboundMessage] = []
        wanted: list[str | None] = list(message_ids) or [None]
        for message_id in wanted:
            letters += await self.hub.store.outbox.dead_letters(message_id, partner)
        again, stale, kept = await self._retry_plan(letters)
        if kept:  # each recorded as refused, with a "rejected" leaf
            await self.audit.record_rejections(RETRY_SOURCE, [(m.envelope, e) for m, e in kept])
        replacements: list[NewOutbound] = []
        for old in stale:
            replacements.append(
                self._sealed(
                    self._document(old),
                    old.recipient,
                    old.correlation_id,
                    old.business_keys,
                    old.document_digest,
                )
            )
        if again:
            await self.hub.store.outbox.requeue([m.message_id for m in again], self.hub.clock())
        if stale:
            await self.hub.store.outbox.replace([m.message_id for m in stale], replacements)
        if again or stale:
            self.hub.outbox_changed.notify()
        return Retried(
            [(m.message_id, m.message_id) for m in again]
            + [
                (old.message_id, new.message_id)
                for old, new in zip(stale, replacements, strict=True)
            ],
            [(m.message_id, error.message) for m, error in kept],
        )

    async def _retry_plan(
        self, letters: list[OutboundMessage]
    ) -> tuple[
        list[OutboundMessage], list[OutboundMessage], list[tuple[OutboundMessage, HubError]]
    ]:
        """Dead letters split into those requeued as they are, those re-signed, and those kept
        dead (with why). Today's agreements decide: a letter none covers is kept; one still
        valid goes as it is only if its ``queued`` leaf names the agreement and policy digest
        that cover it today (the partner gets exactly what today's policy allows, never what
        an ended or narrowed one did)."""
        now = self.hub.clock()
        margin = self.hub.config.limits.clock_skew
        policy = self.hub.agreements
        again: list[OutboundMessage] = []
        stale: list[OutboundMessage] = []
        kept: list[tuple[OutboundMessage, HubError]] = []
        for m in letters:
            try:
                agreement = policy.require(m.recipient, m.body_type, SEND, now.date())
            except AgreementError as exc:
                kept.append((m, exc))
                continue
            if not (m.expires_at and as_utc(m.expires_at) > now + margin):
                stale.append(m)
            elif await self._signed_under(m) == (
                (agreement.id, agreement.digest) if agreement is not None else ("", "")
            ):
                again.append(m)
            else:
                stale.append(m)
        return again, stale, kept

    async def _signed_under(self, message: OutboundMessage) -> tuple[str, str] | None:
        """The agreement and policy digest ``message``'s ``queued`` leaf names (None if the
        trail has no such leaf)."""
        found = await self.hub.store.trail.query(
            TrailQuery(message_id=message.message_id, kinds=("queued",), limit=1)
        )
        if not found:
            return None
        leaf = trail.decode(found[0][1])
        return leaf.agreement, leaf.policy_digest

    async def reroute(
        self, partner: str, to: str, message_ids: Sequence[str] = (), *, queued: bool = False
    ) -> list[tuple[str, str]]:
        """Sign ``partner``'s dead letters (with ``queued``, its queued messages too), or those
        of ``message_ids``, afresh for the configured partner ``to``: new message ids and
        validity, the same bodies, business keys and correlation ids. The old ones are marked
        replaced and the new ones queued in one transaction. Returns (old id, new id) pairs."""
        if to == partner:
            raise SubmissionError(
                f"re-routing {partner}'s messages to {to}: name another partner",
                reason="submission-invalid",
            )
        states = (QUEUED, DEAD) if queued else (DEAD,)
        old: list[OutboundMessage] = []
        wanted: list[str | None] = list(message_ids) or [None]
        for message_id in wanted:
            old += await self.hub.store.outbox.in_outbox(message_id, partner, states)
        replacements: list[NewOutbound] = []
        for message in old:
            document = self._document(message)
            self.hub.routing.recipients(document, [to])  # a configured partner, or refused
            replacements.append(
                self._sealed(
                    document,
                    to,
                    message.correlation_id,
                    message.business_keys,
                    message.document_digest,
                )
            )
        if old:
            await self.hub.store.outbox.replace([m.message_id for m in old], replacements, states)
            self.hub.outbox_changed.notify()
        return [(m.message_id, r.message_id) for m, r in zip(old, replacements, strict=True)]

    @staticmethod
    def _document(message: OutboundMessage) -> Message:
        """The business document a stored outbound message carries."""
        cls = body_class(message.body_type)
        if cls is None:
            raise SubmissionError(f"{message.message_id}: unknown body type {message.body_type}")
        return cls.FromString(pb.Envelope.FromString(message.envelope).body)

    def _next_revision(self) -> int:
        """A revision for state the domestic system did not number: microseconds since the
        epoch, strictly increasing within this process (a hybrid logical clock), so a later
        change always carries a higher revision than an earlier one."""
        now = int(self.hub.clock().timestamp() * 1_000_000)
        self._last_revision = max(now, self._last_revision + 1)
        return self._last_revision
