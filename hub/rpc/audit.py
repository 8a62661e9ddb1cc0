"""The Audit gRPC service: every call first verifies the caller's bearer token
(hub/core/auth.py), then answers from hub/app/auditors.py.

What it must never do: answer before the token is verified; return an entry or a message the
token's restriction hides; write to the store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from hub.app.auditors import AuditReader, checkpoint_view
from hub.core.auth import MESSAGES_READ, TRAIL_READ, AuthError, Grant, TokenVerifier
from hub.core.auth import bearer as bearer_token
from hub.core.errors import HubError
from hub.pb.customs_hub.v1 import audit_pb2 as apb
from hub.pb.customs_hub.v1 import audit_pb2_grpc as agrpc
from hub.rpc.status import abort
from hub.store.db import Store

log = logging.getLogger("customs_hub.audit")

AUDIT_SERVICE = "customs_hub.v1.Audit"
T = TypeVar("T")


class AuditService(agrpc.AuditServicer):
    """The servicer: verify the token, then answer through AuditReader."""

    def __init__(self, store: Store, verifier: TokenVerifier) -> None:
        self.reader, self.verifier = AuditReader(store), verifier

    async def _answer(
        self,
        context: grpc.aio.ServicerContext,
        scope: str,
        answer: Callable[[Grant], Awaitable[T]],
    ) -> T:
        try:
            grant = self.verifier.verify(bearer_token(context.invocation_metadata()))
            grant.require(scope)
        except AuthError as exc:
            log.warning("audit call refused from %s: %s", context.peer(), exc.reason)
            await abort(context, exc)
            raise  # not reached: abort raises
        try:
            return await answer(grant)
        except HubError as exc:
            await abort(context, exc)
            raise

    async def Query(
        self, request: apb.QueryRequest, context: grpc.aio.ServicerContext
    ) -> apb.QueryResponse:
        return await self._answer(context, TRAIL_READ, lambda g: self.reader.query(request, g))

    async def GetEntry(
        self, request: apb.GetEntryRequest, context: grpc.aio.ServicerContext
    ) -> apb.GetEntryResponse:
        return await self._answer(context, TRAIL_READ, lambda g: self.reader.entry(request, g))

    async def GetConsistencyProof(
        self, request: apb.GetConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> apb.ConsistencyProof:
        return await self._answer(context, TRAIL_READ, lambda _: self.reader.consistency(request))

    async def GetCheckpoint(
        self, request: apb.GetCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> apb.SignedCheckpoint:
        async def answer(_: Grant) -> apb.SignedCheckpoint:
            return checkpoint_view(await self.reader.signed(request.tree_size))

        return await self._answer(context, TRAIL_READ, answer)

    async def GetKeyHandovers(
        self, request: apb.GetKeyHandoversRequest, context: grpc.aio.ServicerContext
    ) -> apb.KeyHandovers:
        return await self._answer(context, TRAIL_READ, lambda _: self.reader.handovers())

    async def GetMessage(
        self, request: apb.GetMessageRequest, context: grpc.aio.ServicerContext
    ) -> apb.GetMessageResponse:
        return await self._answer(context, MESSAGES_READ, lambda g: self.reader.message(request, g))
