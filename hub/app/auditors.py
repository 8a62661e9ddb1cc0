"""What auditors may read, for a verified grant (hub/core/auth.py): trail entries with their
inclusion proofs in signed checkpoints, consistency proofs between checkpoints, and stored
messages. Used by the Audit gRPC service (hub/rpc/audit.py) and by the auditors' commands on
the hub's own machine (hub/cli/audit.py).

A token restricted to some partners sees only entries and messages whose sender or recipient
is one of them. Proofs are only given against checkpoints the hub signed, so an auditor can
check each answer with nothing but the hub's verifier key; after a rotation of the trail key,
the hand-over checkpoints (``handovers``) lead from the key the auditor holds to the one that
signs now. Nothing here writes to the store.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC

from hub.core.auth import ForbiddenError, Grant
from hub.core.errors import HubError, Status
from hub.core.limits import MESSAGE_ID_CHARS
from hub.core.messages import full_body_type
from hub.pb.customs_hub.v1 import audit_pb2 as apb
from hub.store.db import Store
from hub.store.schema import TrailCheckpoint, TrailQuery
from hub.trail import events as trail

log = logging.getLogger("customs_hub.audit")


# A page of entries: a few hundred bytes each, so 1,000 is well under 1 MiB per answer.
DEFAULT_PAGE = 100
MAX_PAGE = 1000
_PAGE_TOKEN = re.compile(r"([ad])([0-9]{1,19})")


class AuditRequestError(HubError):
    status = Status.INVALID_ARGUMENT
    default_reason = "audit-request-invalid"


class AuditNotFoundError(HubError):
    status = Status.NOT_FOUND
    default_reason = "not-found"


class NotCheckpointedError(HubError):
    status = Status.FAILED_PRECONDITION
    default_reason = "not-yet-checkpointed"


def checkpoint_view(point: TrailCheckpoint) -> apb.SignedCheckpoint:
    out = apb.SignedCheckpoint(size=point.size, root=point.root, note=point.note)
    out.signed_at.FromDatetime(point.signed_at.astimezone(UTC))
    return out


def _entry(index: int, leaf: bytes) -> apb.TrailEntryView:
    return apb.TrailEntryView(index=index, leaf=leaf, event=trail.decode(leaf))


def trail_query(request: apb.QueryRequest, grant: Grant) -> TrailQuery:
    """The store query for a request, with the token's restriction; checks every field."""
    size = request.page_size or DEFAULT_PAGE
    if size > MAX_PAGE:
        raise AuditRequestError(f"page_size is at most {MAX_PAGE}; found {size}")
    after = None
    if request.page_token:
        match = _PAGE_TOKEN.fullmatch(request.page_token)
        if match is None or (match.group(1) == "a") != request.oldest_first:
            raise AuditRequestError(
                "page_token is not one this hub gave for this order", reason="page-token-invalid"
            )
        after = int(match.group(2))
    body_type = ""
    if request.body_type:
        body_type = full_body_type(request.body_type) or ""
        if not body_type:
            raise AuditRequestError(f"body_type {request.body_type[:64]!r} is not a known type")
    unknown = set(request.kinds) - trail.KINDS
    if unknown:
        raise AuditRequestError(f"kinds: {', '.join(sorted(unknown))[:100]} are not event kinds")
    key = None
    if request.HasField("business_key"):
        if not request.business_key.name or not request.business_key.value:
            raise AuditRequestError("business_key needs a name and a value")
        key = (request.business_key.name, request.business_key.value)
    return TrailQuery(
        since=request.since.ToDatetime(UTC) if request.HasField("since") else None,
        until=request.until.ToDatetime(UTC) if request.HasField("until") else None,
        party=request.party,
        body_type=body_type,
        message_id=request.message_id,
        correlation_id=request.correlation_id,
        key=key,
        kinds=tuple(sorted(set(request.kinds))),
        visible=grant.partners,
        oldest_first=request.oldest_first,
        after=after,
        limit=size,
    )


class AuditReader:
    """What the Audit service answers, for a verified grant: used by the servicer, and by the
    CLI on the hub's own machine. Raises HubError for every refusal."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def query(self, request: apb.QueryRequest, grant: Grant) -> apb.QueryResponse:
        query = trail_query(request, grant)
        rows = await self.store.trail.query(query)
        response = apb.QueryResponse(entries=[_entry(i, leaf) for i, leaf in rows])
        if len(rows) == query.limit:
            response.next_page_token = f"{'a' if query.oldest_first else 'd'}{rows[-1][0]}"
        return response

    async def signed(self, size: int) -> TrailCheckpoint:
        point = await self.store.trail.checkpoint_at(size or None)
        if point is None:
            raise AuditNotFoundError(
                f"no checkpoint was signed at size {size}"
                if size
                else "no checkpoint has been signed yet",
                reason="checkpoint-not-found",
            )
        return point

    async def entry(self, request: apb.GetEntryRequest, grant: Grant) -> apb.GetEntryResponse:
        """The entry and its inclusion proof: in the checkpoint signed at ``tree_size`` (the
        latest if 0), or, where no checkpoint was signed at that size, in the tree of that
        size (a partner's receipt names one, with its root) if a checkpoint covers it."""
        point = await self.store.trail.checkpoint_at(request.tree_size or None)
        size = request.tree_size
        if point is None and request.tree_size:
            latest = await self.signed(0)
            if request.tree_size > latest.size:
                raise NotCheckpointedError(
                    f"tree size {request.tree_size} is past the latest checkpoint "
                    f"({latest.size} entries)"
                )
        else:
            point = point or await self.signed(0)
            size = point.size
        if request.index >= size:
            raise NotCheckpointedError(
                f"entry {request.index} is not in the tree of {size} entries; "
                "ask again after the next checkpoint"
            )
        leaf = await self.store.trail.entry(request.index)
        if leaf is None:  # the trail has no gaps: a store that lost rows
            raise AuditNotFoundError(
                f"entry {request.index} is not in the store", reason="entry-not-found"
            )
        entry = _entry(request.index, leaf)
        if not grant.may_see(entry.event.sender, entry.event.recipient):
            raise ForbiddenError(
                f"entry {request.index} concerns partners outside this token's restriction",
                reason="partner-not-allowed",
            )
        proof = await self.store.trail.inclusion(request.index, size)
        response = apb.GetEntryResponse(entry=entry, inclusion_proof=proof)
        if point is not None:
            response.checkpoint.CopyFrom(checkpoint_view(point))
        return response

    async def handovers(self) -> apb.KeyHandovers:
        """Every hand-over of the trail key, oldest first, with the leaf recording it and its
        inclusion proof. The leaves name no partner (a key's digest and name), so no token's
        restriction hides them: an auditor restricted to one partner must still follow the
        keys to verify anything."""
        answer = apb.KeyHandovers()
        for point, index, leaf in await self.store.trail.handovers():
            proof = await self.store.trail.inclusion(index, point.size)
            answer.handovers.append(
                apb.KeyHandover(
                    checkpoint=checkpoint_view(point),
                    entry=_entry(index, leaf),
                    inclusion_proof=proof,
                )
            )
        return answer

    async def consistency(self, request: apb.GetConsistencyProofRequest) -> apb.ConsistencyProof:
        point = await self.signed(request.new_size)
        if not 0 < request.old_size <= point.size:
            raise AuditRequestError(
                f"old_size must be from 1 to {point.size}; found {request.old_size}"
            )
        proof = await self.store.trail.consistency(request.old_size, point.size)
        return apb.ConsistencyProof(
            old_size=request.old_size, new_checkpoint=checkpoint_view(point), proof=proof
        )

    async def message(self, request: apb.GetMessageRequest, grant: Grant) -> apb.GetMessageResponse:
        if not request.message_id or len(request.message_id) > MESSAGE_ID_CHARS:
            raise AuditRequestError(
                f"message_id must be a message id (at most {MESSAGE_ID_CHARS} characters)"
            )
        found = await self.store.views.stored_messages(request.message_id)
        visible = [m for m in found if grant.may_see(m.partner)]
        if found and not visible:
            raise ForbiddenError(
                "the message concerns partners outside this token's restriction",
                reason="partner-not-allowed",
            )
        if not found:
            raise AuditNotFoundError(
                f"no message {request.message_id} is stored", reason="message-not-found"
            )
        log.info("audit: %s read message %s", grant.subject, request.message_id)
        return apb.GetMessageResponse(
            messages=[
                apb.StoredMessage(
                    message_id=m.message_id,
                    direction=m.direction,
                    partner=m.partner,
                    body_type=m.body_type,
                    envelope_digest=m.envelope_digest,
                    envelope=m.envelope,
                    header=m.header,
                    body=m.body,
                    signed_receipt=m.signed_receipt,
                )
                for m in visible
            ]
        )
