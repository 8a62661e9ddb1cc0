"""Partners' questions about the AEOs this hub issued (docs/registry-sync.md): a Query answered
with their current statuses, a Snapshot with digests of the list, both as the sharing policy
lets that partner see them.

Each request is an envelope, verified as any partner's envelope is (hub/core/envelope.py: the
peer's certificate names the sender, a signature by one of its keys not withheld by
revocation, addressed to this hub, inside its time window), with a body type of its own, so a
query is never taken for a business message nor the reverse. It lives at most
``REQUEST_LIFETIME`` and is answered once: its "answered" leaf in the trail (what was shared
with whom) is looked for before answering again. A refusal is recorded (a rejection, with its
trail leaf) and raised. Nothing here writes the registry.

With agreements configured, only a partner an agreement in effect lets this hub send AEO
statuses to is answered, with the fields that agreement shares; without any, as with pushes,
only a partner the routes send AEO statuses to, with whole statuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import cast

from google.protobuf.message import Message

from hub.app.audit import Audit
from hub.app.context import HubContext
from hub.core.agreements import keep_fields
from hub.core.envelope import OpenedEnvelope, build_envelope
from hub.core.errors import (
    AgreementError,
    DuplicateConflictError,
    HubError,
    RoutingError,
    TimeWindowError,
)
from hub.core.messages import AeoStatus
from hub.core.registry import AeoRecord
from hub.core.snapshot import (
    IdRange,
    Pair,
    RangeDigest,
    check_ids,
    check_ranges,
    range_digests,
    status_message_id,
)
from hub.pb.customs_hub.v1 import mr_pb2 as mpb
from hub.store.schema import TrailQuery
from hub.trail import events as trail

AEO_TYPE = AeoStatus.DESCRIPTOR.full_name
QUERY_TYPES: Mapping[str, type[Message]] = {mpb.AeoQuery.DESCRIPTOR.full_name: mpb.AeoQuery}
SNAPSHOT_TYPES: Mapping[str, type[Message]] = {
    mpb.AeoSnapshotRequest.DESCRIPTOR.full_name: mpb.AeoSnapshotRequest
}
# A request is a question asked now: it lives at most ten minutes (expires_at - created_at),
# and its answer as long.
REQUEST_LIFETIME = timedelta(minutes=10)
ANSWER_TTL = REQUEST_LIFETIME
# What an answer leaves for its own header and framing under the envelope size limit.
ANSWER_HEADROOM = 4096


class Answers:
    def __init__(self, hub: HubContext, audit: Audit) -> None:
        self.hub, self.audit = hub, audit
        # (partner, message id) of requests being answered now: a copy arriving meanwhile is
        # refused as a replay, as one arriving after the answer is by its trail leaf
        self._answering: set[tuple[str, str]] = set()

    async def query(self, data: bytes, peer: str) -> bytes:
        """The signed AeoQueryAnswer to ``peer``'s signed AeoQuery ``data``: for each id this
        hub issued, its current status in an envelope of its own to ``peer``; or a HubError
        after recording the refusal."""
        try:
            opened = self._open(data, peer, QUERY_TYPES)
            ids = check_ids(list(cast(mpb.AeoQuery, opened.document).aeo_ids))
            sharing = self.sharing(peer)
            with self._once(peer, opened):
                await self._not_answered(peer, opened)
                records = await self.hub.store.registry.issued(self.hub.party, ids)
                answer, shared = self._statuses(peer, opened, ids, records, sharing.fields)
                await self._answered(peer, opened, answer, shared, sharing)
        except HubError as exc:
            if not exc.transient:
                await self.audit.record_rejection(peer, data, exc)
            raise
        return self._seal(peer, answer, opened)

    async def snapshot(self, data: bytes, peer: str) -> bytes:
        """The signed AeoSnapshot to ``peer``'s signed AeoSnapshotRequest ``data``: for each
        range asked, the count and Merkle root of this hub's AEOs in it as ``peer`` sees them,
        with the middle id, or the entries themselves when few."""
        try:
            opened = self._open(data, peer, SNAPSHOT_TYPES)
            request = cast(mpb.AeoSnapshotRequest, opened.document)
            ranges = check_ranges([IdRange(r.from_id, r.to_id) for r in request.ranges])
            sharing = self.sharing(peer)
            with self._once(peer, opened):
                await self._not_answered(peer, opened)
                rows = await self.rows(ranges)
                answer = await self.hub.off_loop(
                    snapshot_answer, opened, rows, sharing.fields, ranges
                )
                await self._answered(peer, opened, answer, [], sharing)
        except HubError as exc:
            if not exc.transient:
                await self.audit.record_rejection(peer, data, exc)
            raise
        return self._seal(peer, answer, opened)

    def sharing(self, partner: str) -> Sharing:
        """What of an AEO status this hub shares with ``partner`` today, or a refusal:
        ``not-covered-by-agreement`` when agreements are configured and none in effect lets AEO
        statuses go to it; ``no-route`` when none are and the routes send it none."""
        agreements = self.hub.settings.agreements
        if agreements.configured:
            day = self.hub.clock().astimezone(UTC).date()
            agreement = agreements.covering(partner, AEO_TYPE, "send", day)
            if agreement is None:
                raise AgreementError(
                    f"no agreement in effect lets this hub send AEO statuses to {partner}",
                )
            return Sharing(agreement.shares[AEO_TYPE].fields, agreement.id, agreement.digest)
        rule = self.hub.routing.rules.get(AEO_TYPE)
        if rule is None or isinstance(rule, str) or partner not in rule:
            raise RoutingError(
                f"the routes do not send AEO statuses to {partner} (and no agreement is "
                "configured), so it is not answered about them either",
                reason="no-route",
            )
        return Sharing()

    async def rows(self, ranges: Sequence[IdRange]) -> list[Pair]:
        """This hub's (aeo_id, revision) rows that may fall in ``ranges``, as the store reads
        them (ordered and cut off the loop, ``range_digests``: no collation decides)."""
        whole = any(not r.from_id and not r.to_id for r in ranges)
        low = "" if whole else min(r.from_id for r in ranges)
        high = "" if whole or any(not r.to_id for r in ranges) else max(r.to_id for r in ranges)
        return await self.hub.store.registry.revisions(self.hub.party, low, high)

    def _open(
        self, data: bytes, peer: str, body_types: Mapping[str, type[Message]]
    ) -> OpenedEnvelope:
        opened = self.hub.open_from(
            peer, data, max_bytes=self.hub.config.limits.max_envelope_bytes, body_types=body_types
        )
        header = opened.header
        lifetime = header.expires_at.ToDatetime(UTC) - header.created_at.ToDatetime(UTC)
        if lifetime > REQUEST_LIFETIME:
            raise TimeWindowError(
                f"a query lives at most {REQUEST_LIFETIME}; this one {lifetime}",
                reason="lifetime-invalid",
            )
        return opened

    def _once(self, peer: str, opened: OpenedEnvelope) -> _Answering:
        return _Answering(self._answering, (peer, opened.header.message_id))

    async def _not_answered(self, peer: str, opened: OpenedEnvelope) -> None:
        found = await self.hub.store.trail.query(
            TrailQuery(
                message_id=opened.header.message_id, kinds=("answered",), party=peer, limit=1
            )
        )
        if found:
            raise DuplicateConflictError(
                f"query {opened.header.message_id} from {peer} was answered before",
                reason="query-replayed",
            )

    def _statuses(
        self,
        peer: str,
        opened: OpenedEnvelope,
        ids: Sequence[str],
        records: Sequence[AeoRecord],
        fields: Sequence[str],
    ) -> tuple[mpb.AeoQueryAnswer, list[tuple[str, int]]]:
        """The answer's envelopes, one per current status asked for, each what a push would
        carry under the policy; those past the size limit deferred."""
        now = self.hub.clock()
        budget = self.hub.config.limits.max_envelope_bytes - ANSWER_HEADROOM
        current = {r.aeo_id: r for r in records}
        answer = mpb.AeoQueryAnswer(
            query_id=opened.header.message_id, query_digest=opened.envelope_digest
        )
        shared: list[tuple[str, int]] = []
        size = 0
        for aeo_id in ids:
            record = current.get(aeo_id)
            if record is None:
                answer.not_found.append(aeo_id)
                continue
            status = AeoStatus.FromString(record.document)
            document = keep_fields(status, fields) if fields else status
            data, _header = build_envelope(
                self.hub.signer,
                sender=self.hub.party,
                recipient=peer,
                document=document,
                created_at=now,
                ttl=self.hub.config.limits.message_ttl,
                message_id=status_message_id(self.hub.party, peer, aeo_id, record.revision),
            )
            if size + len(data) + 8 > budget:
                answer.deferred.append(aeo_id)
                continue
            size += len(data) + 8
            answer.statuses.append(data)
            shared.append((aeo_id, record.revision))
        return answer, shared

    async def _answered(
        self,
        peer: str,
        opened: OpenedEnvelope,
        answer: mpb.AeoQueryAnswer | mpb.AeoSnapshot,
        shared: Sequence[tuple[str, int]],
        sharing: Sharing,
    ) -> None:
        """The "answered" leaf: which request of whose, which AEOs' statuses it was sent, and
        under which agreement's policy."""
        if isinstance(answer, mpb.AeoQueryAnswer):
            detail = (
                f"{len(answer.statuses)} AEO status(es) sent, {len(answer.not_found)} not "
                f"issued here, {len(answer.deferred)} deferred"
            )
        else:
            detail = f"digests of {len(answer.ranges)} range(s) sent"
        await self.hub.store.trail.append(
            [
                trail.Event(
                    kind="answered",
                    at=self.hub.clock(),
                    message_id=opened.header.message_id,
                    correlation_id=opened.header.correlation_id,
                    sender=peer,
                    body_type=opened.header.body_type,
                    envelope_digest=opened.envelope_digest,
                    detail=detail,
                    keys={"aeo": [aeo_id for aeo_id, _ in shared]} if shared else {},
                    agreement=sharing.agreement,
                    policy_digest=sharing.digest,
                )
            ]
        )

    def _seal(self, peer: str, answer: Message, opened: OpenedEnvelope) -> bytes:
        data, _ = build_envelope(
            self.hub.signer,
            sender=self.hub.party,
            recipient=peer,
            document=answer,
            created_at=self.hub.clock(),
            ttl=ANSWER_TTL,
            correlation_id=opened.header.message_id,
        )
        return data


@dataclass(frozen=True)
class Sharing:
    """The fields of an AEO status shared with a partner (() for the whole status), and the
    agreement whose policy says so with its digest (empty without agreements)."""

    fields: tuple[str, ...] = ()
    agreement: str = ""
    digest: str = ""


class _Answering:
    """Holds one request's (partner, message id) while it is answered; a second with the same
    is refused as a replay."""

    def __init__(self, answering: set[tuple[str, str]], key: tuple[str, str]) -> None:
        self.answering, self.key = answering, key

    def __enter__(self) -> None:
        if self.key in self.answering:
            raise DuplicateConflictError(
                f"query {self.key[1]} from {self.key[0]} is being answered",
                reason="query-replayed",
            )
        self.answering.add(self.key)

    def __exit__(self, *_: object) -> None:
        self.answering.discard(self.key)


def snapshot_answer(
    opened: OpenedEnvelope, rows: Sequence[Pair], fields: Sequence[str], ranges: Sequence[IdRange]
) -> mpb.AeoSnapshot:
    """The AeoSnapshot answering ``opened``: the digest of each range of ``rows`` as a partner
    sharing ``fields`` sees them. CPU-bound (a Merkle tree per range): run on a worker thread
    (``HubContext.off_loop``), never on the event loop."""
    return mpb.AeoSnapshot(
        query_id=opened.header.message_id,
        query_digest=opened.envelope_digest,
        ranges=[range_digest(made) for made in range_digests(rows, fields, ranges)],
    )


def range_digest(made: RangeDigest) -> mpb.AeoRangeDigest:
    out = mpb.AeoRangeDigest(
        range=mpb.AeoRange(from_id=made.span.from_id, to_id=made.span.to_id),
        count=made.count,
        root=made.root,
        middle=made.middle,
    )
    if made.entries is not None:
        out.entries.extend(mpb.AeoEntry(aeo_id=i, revision=r) for i, r in made.entries)
    return out


def digest_of(received: mpb.AeoRangeDigest) -> RangeDigest:
    """A partner's range digest as the core compares it (entries listed only if any were, or
    the range is empty)."""
    entries = tuple((e.aeo_id, e.revision) for e in received.entries)
    listed = bool(entries) or received.count == 0
    return RangeDigest(
        IdRange(received.range.from_id, received.range.to_id),
        received.count,
        received.root,
        received.middle,
        entries if listed else None,
    )
