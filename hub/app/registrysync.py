"""This hub asking a partner's hub about the AEOs that partner issued (docs/registry-sync.md):
``query`` fetches the current statuses of some AEO ids, ``sync`` compares this hub's registry of
the partner's AEOs with the partner's signed digests, bisecting ranges that differ
(hub/core/snapshot.py), and fetches what is missing or older here.

Each answer is an envelope signed by the partner, verified as any of its envelopes is and held
to the request it answers (its message id and digest). The statuses it carries are envelopes of
their own, received through the inbound path exactly as pushed ones (hub/app/ingress.py): the
same verification, the same "received" leaf, the same registry write. A status the registry
already holds at that revision or a newer one is not received again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import cast

from google.protobuf.message import DecodeError, Message

from hub.app.answers import AEO_TYPE, REQUEST_LIFETIME, digest_of
from hub.app.context import HubContext
from hub.app.ingress import Ingress
from hub.app.ports import PartnerAsker
from hub.core.envelope import OpenedEnvelope, build_envelope, sha256
from hub.core.errors import AgreementError, HubError, RoutingError
from hub.core.messages import AeoStatus
from hub.core.snapshot import (
    MAX_FETCH,
    MAX_QUERY_IDS,
    MAX_SNAPSHOT_CALLS,
    AnswerError,
    Digest,
    IdRange,
    Reconciler,
    check_ids,
    digest,
    sorted_pairs,
)
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import mr_pb2 as mpb

ANSWER_TYPES: Mapping[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls for cls in (mpb.AeoQueryAnswer, mpb.AeoSnapshot)
}
# Statuses received per inbound batch: what a partner's Exchange frame may hold.
RECEIVE_BATCH = 256
# Rounds of one query: each asks again only for the ids the last answer deferred, strictly
# fewer (``_check_answered``). 1,000 statuses fit one answer under the default envelope size
# limit (4 MiB), some 80 a round under 64 KiB; a partner still deferring after this many rounds
# is refused.
MAX_QUERY_ROUNDS = 32
OUTCOMES = {pb.RECEIPT_OUTCOME_ACCEPTED: "accepted", pb.RECEIPT_OUTCOME_DUPLICATE: "duplicate"}


class RegistrySync:
    def __init__(self, hub: HubContext, ingress: Ingress, asker: PartnerAsker) -> None:
        self.hub, self.ingress, self.asker = hub, ingress, asker

    async def query(self, partner: str, aeo_ids: Sequence[str]) -> mpb.QueryPartnerReport:
        """Ask ``partner`` for the current status of ``aeo_ids`` (at most MAX_QUERY_IDS) and
        receive what it answers; ids it left out for size are asked for again."""
        ids = check_ids(list(aeo_ids))
        self._may_ask(partner)
        report = mpb.QueryPartnerReport(partner=partner)
        rounds = 0
        while ids:
            rounds += 1
            if rounds > MAX_QUERY_ROUNDS:
                raise AnswerError(
                    f"{partner} still defers AEO ids after {MAX_QUERY_ROUNDS} rounds of a query"
                )
            answer = cast(mpb.AeoQueryAnswer, await self._ask(partner, mpb.AeoQuery(aeo_ids=ids)))
            asked = set(ids)
            claimed = [_claimed(partner, data) for data in answer.statuses]
            deferred = list(answer.deferred)
            _check_answered(partner, asked, claimed, list(answer.not_found), deferred)
            report.not_found.extend(answer.not_found)
            report.statuses.extend(await self._receive(partner, list(answer.statuses), claimed))
            if not answer.statuses:  # nothing fitted: asking again would go round for ever
                report.not_found.extend(deferred)
                break
            ids = deferred
        return report

    async def sync(self, partner: str) -> mpb.SyncPartnerReport:
        """Compare this hub's registry of ``partner``'s AEOs with ``partner``'s list, bisect
        what differs and fetch what is missing or older here; bounded by MAX_SNAPSHOT_CALLS
        and MAX_FETCH (the report says whether it completed)."""
        self._may_ask(partner)
        before = await self.hub.off_loop(
            sorted_pairs, await self.hub.store.registry.revisions(partner)
        )
        reconciler = Reconciler(before)
        calls = 0
        while not reconciler.done and calls < MAX_SNAPSHOT_CALLS:
            ranges = reconciler.ranges()
            request = mpb.AeoSnapshotRequest(
                ranges=[mpb.AeoRange(from_id=r.from_id, to_id=r.to_id) for r in ranges]
            )
            answer = cast(mpb.AeoSnapshot, await self._ask(partner, request))
            calls += 1
            # a Merkle tree of this side's pairs per range: on a worker thread, not the loop
            await self.hub.off_loop(reconciler.take, ranges, [digest_of(r) for r in answer.ranges])
        top = reconciler.top
        if top is None:  # pragma: no cover - the first call asks for the whole list
            raise AnswerError(f"{partner} gave no digest of its whole list")
        fetch = reconciler.fetch[:MAX_FETCH]
        report = mpb.SyncPartnerReport(
            partner=partner,
            partner_count=top.count,
            partner_root=top.root,
            snapshot_calls=calls,
            ranges_compared=reconciler.compared,
            rounds=reconciler.rounds,
            only_here=reconciler.only_here,
            newer_here=reconciler.newer_here,
            complete=reconciler.done and len(reconciler.fetch) <= MAX_FETCH,
        )
        had = await self.hub.off_loop(digest, before)
        report.count_before, report.root_before = had.count, had.root
        for start in range(0, len(fetch), MAX_QUERY_IDS):
            fetched = await self.query(partner, fetch[start : start + MAX_QUERY_IDS])
            report.fetched.extend(fetched.statuses)
        after = await self.hub.off_loop(
            _digest_of_rows, await self.hub.store.registry.revisions(partner)
        )
        report.count_after, report.root_after = after.count, after.root
        report.converged = after == Digest(top.count, top.root)
        return report

    def _may_ask(self, partner: str) -> None:
        """A configured partner, from which this hub's agreements (if any) let AEO statuses
        come: asking for what would be refused on arrival is refused before asking."""
        if partner not in self.hub.config.partners:
            raise RoutingError(f"{partner} is not a configured partner", reason="unknown-partner")
        agreements = self.hub.settings.agreements
        day = self.hub.clock().astimezone(UTC).date()
        if agreements.configured and agreements.covering(partner, AEO_TYPE, "receive", day) is None:
            raise AgreementError(
                f"no agreement in effect lets AEO statuses come from {partner}",
            )

    async def _ask(self, partner: str, question: mpb.AeoQuery | mpb.AeoSnapshotRequest) -> Message:
        """Send ``question`` signed to ``partner`` and return the verified answer's body."""
        now = self.hub.clock()
        request, header = build_envelope(
            self.hub.signer,
            sender=self.hub.party,
            recipient=partner,
            document=question,
            created_at=now,
            ttl=REQUEST_LIFETIME,
        )
        timeout = self.hub.config.limits.partner_timeout_seconds
        if isinstance(question, mpb.AeoQuery):
            data = await self.asker.query(partner, request, timeout)
        else:
            data = await self.asker.snapshot(partner, request, timeout)
        opened = self._open(partner, data)
        answer = opened.document
        expected = mpb.AeoQueryAnswer if isinstance(question, mpb.AeoQuery) else mpb.AeoSnapshot
        if not isinstance(answer, expected):
            raise AnswerError(f"{partner} answered with a {opened.header.body_type}")
        if answer.query_id != header.message_id or answer.query_digest != sha256(request):
            raise AnswerError(f"{partner}'s answer does not name the request it answers")
        if isinstance(answer, mpb.AeoSnapshot) and len(answer.ranges) != len(
            cast(mpb.AeoSnapshotRequest, question).ranges or [IdRange()]
        ):
            raise AnswerError(f"{partner}'s snapshot does not answer each range asked")
        return answer

    def _open(self, partner: str, data: bytes) -> OpenedEnvelope:
        # a Query's answer holds its statuses' envelopes, each within the limit
        limit = self.hub.config.limits.max_batch_bytes
        return self.hub.open_from(partner, data, max_bytes=limit, body_types=ANSWER_TYPES)

    async def _receive(
        self, partner: str, envelopes: Sequence[bytes], claimed: Sequence[mpb.FetchedStatus]
    ) -> list[mpb.FetchedStatus]:
        """Receive the statuses of an answer (``claimed``: what each says it carries, checked
        against the question) as pushed ones, but for those the registry already holds at that
        revision or a newer one."""
        held = {
            r.aeo_id: r.revision
            for r in await self.hub.store.registry.issued(partner, [c.aeo_id for c in claimed])
        }
        out: list[mpb.FetchedStatus] = []
        fresh: list[tuple[bytes, mpb.FetchedStatus]] = []
        for data, status in zip(envelopes, claimed, strict=True):
            if held.get(status.aeo_id, -1) >= status.revision:
                status.outcome = "held"
                out.append(status)
            else:
                fresh.append((data, status))
        for start in range(0, len(fresh), RECEIVE_BATCH):
            chunk = fresh[start : start + RECEIVE_BATCH]
            results = await self.ingress.receive_batch([data for data, _ in chunk], partner)
            for (_, status), result in zip(chunk, results, strict=True):
                if isinstance(result, HubError):
                    status.outcome, status.reason = "rejected", result.reason
                else:
                    receipt = pb.Receipt.FromString(result.receipt)
                    status.outcome = OUTCOMES.get(receipt.outcome, "rejected")
                    status.trail_index = receipt.trail_index
                out.append(status)
        return out


def _digest_of_rows(rows: Sequence[tuple[str, int]]) -> Digest:
    return digest(sorted_pairs(rows))


def _check_answered(
    partner: str,
    asked: set[str],
    claimed: Sequence[mpb.FetchedStatus],
    not_found: Sequence[str],
    deferred: Sequence[str],
) -> None:
    """An answer to a query accounts for ids asked, each at most once: a status, not found, or
    deferred. One naming an id not asked for, or the same id twice (a status and deferred, say),
    is refused (``answer-invalid``), so each round asks again for strictly fewer ids and a
    partner cannot keep this hub asking."""
    named = [c.aeo_id for c in claimed] + list(not_found) + list(deferred)
    if not set(named) <= asked:
        raise AnswerError(f"{partner}'s answer names AEO ids that were not asked for")
    if len(set(named)) != len(named):
        raise AnswerError(f"{partner}'s answer names an AEO id more than once")


def _claimed(partner: str, data: bytes) -> mpb.FetchedStatus:
    """What a status envelope of an answer claims to carry, read without trusting it (the
    inbound path verifies it): its message id, AEO id and revision."""
    try:
        envelope = pb.Envelope.FromString(data)
        header = pb.Header.FromString(envelope.header)
        status = AeoStatus.FromString(envelope.body)
    except DecodeError:
        raise AnswerError(f"{partner}'s answer carries a status that does not parse") from None
    if header.body_type != AEO_TYPE:
        raise AnswerError(f"{partner}'s answer carries a {header.body_type}, not an AEO status")
    return mpb.FetchedStatus(
        aeo_id=status.aeo_id, revision=status.revision, message_id=header.message_id
    )
