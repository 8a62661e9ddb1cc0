"""The Recognition service on the domestic port: domestic systems ask whether operators are
recognised here and whether partners controlled a consignment (hub/app/recognition.py answers).

Callers are those of the Domestic service beside it: the domestic port takes no credentials
(it listens on loopback, or behind the administration's own network controls). Every query is
checked before anything is read: an unusable one is answered INVALID_ARGUMENT with its reason
(``lookup-invalid``, ``lookup-too-large``), the refusal recorded in the trail at most once a
minute per reason (``Audit.record_refusal``), so no caller can grow the trail by asking.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc

from hub.app.hub import Hub
from hub.app.recognition import Lookups
from hub.core.errors import HubError
from hub.pb.customs_hub.v1 import recognition_pb2 as rpb
from hub.pb.customs_hub.v1 import recognition_pb2_grpc as rgrpc
from hub.rpc.status import abort

RECOGNITION = rpb.DESCRIPTOR.services_by_name["Recognition"]
RECOGNITION_SERVICE = "customs_hub.v1.Recognition"
SOURCE = "recognition"  # trail rejections' source
T = TypeVar("T")


def lookups_of(hub: Hub) -> Lookups:
    """The hub's lookups: its registry, the agreements of its current configuration (a reload
    takes effect at the next call) and its clock's day."""
    return Lookups(
        hub.store.registry,
        lambda: hub.agreements,
        hub.party,
        lambda: hub.clock().date(),
    )


class RecognitionService(rgrpc.RecognitionServicer):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.lookups = lookups_of(hub)

    async def _answer(self, context: grpc.aio.ServicerContext, answer: Awaitable[T]) -> T:
        try:
            return await answer
        except HubError as exc:
            if exc.reason in ("lookup-invalid", "lookup-too-large"):
                await self.hub.audit.record_refusal(SOURCE, exc)
            await abort(context, exc)
            raise  # not reached: abort raises

    async def LookupOperator(
        self, request: rpb.OperatorQuery, context: grpc.aio.ServicerContext
    ) -> rpb.OperatorAnswer:
        return await self._answer(context, self.lookups.operator(request))

    async def LookupOperators(
        self, request: rpb.LookupOperatorsRequest, context: grpc.aio.ServicerContext
    ) -> rpb.LookupOperatorsResponse:
        answers = await self._answer(context, self.lookups.operators(request.queries))
        return rpb.LookupOperatorsResponse(answers=answers)

    async def LookupControls(
        self, request: rpb.ControlsQuery, context: grpc.aio.ServicerContext
    ) -> rpb.LookupControlsResponse:
        return await self._answer(context, self.lookups.controls(request))
