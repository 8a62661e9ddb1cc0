"""The PartnerRegistry service on the domestic port: this hub asks a partner's hub about the AEOs
that partner issued (``customs-hub registry query|sync``). Only translation between gRPC and
hub/app/registrysync.py."""

from __future__ import annotations

import grpc

from hub.app.registrysync import RegistrySync
from hub.core.errors import HubError
from hub.pb.customs_hub.v1 import mr_pb2 as mpb
from hub.rpc.status import abort

PARTNER_REGISTRY = mpb.DESCRIPTOR.services_by_name["PartnerRegistry"]
PARTNER_REGISTRY_SERVICE = PARTNER_REGISTRY.full_name


class PartnerRegistryService:
    def __init__(self, sync: RegistrySync) -> None:
        self.sync = sync

    async def QueryPartner(
        self, request: mpb.QueryPartnerRequest, context: grpc.aio.ServicerContext
    ) -> mpb.QueryPartnerReport:
        try:
            return await self.sync.query(request.partner, list(request.aeo_ids))
        except HubError as exc:
            await abort(context, exc)
            raise

    async def SyncPartner(
        self, request: mpb.SyncPartnerRequest, context: grpc.aio.ServicerContext
    ) -> mpb.SyncPartnerReport:
        try:
            return await self.sync.sync(request.partner)
        except HubError as exc:
            await abort(context, exc)
            raise
