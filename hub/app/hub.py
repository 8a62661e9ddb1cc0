"""One administration's hub: the procedures around the pure core, wired together.

A message's way through the hub reads in the folder names: a domestic document is translated
(adapters/), checked, routed and signed (``submission``), queued in the outbox (hub/store/) and
delivered (hub/app/delivery.py); what a partner sends is verified and accepted with a signed
receipt (``ingress``); everything is logged in the trail and covered by signed checkpoints
(``audit``). The gRPC servicers (hub/rpc/) and drop folders (hub/connectors/) call these; none
of them touches gRPC. What the hub accepts is durable before it answers.
"""

from __future__ import annotations

from hub.app.answers import Answers
from hub.app.audit import Audit
from hub.app.context import Clock, HubContext, system_clock
from hub.app.ingress import Ingress
from hub.app.reload import Reloader
from hub.app.revocation import RevocationWatch
from hub.app.submission import Submissions
from hub.app.telemetry import Telemetry
from hub.config import HubConfig
from hub.store.db import Store


class Hub(HubContext):
    def __init__(
        self,
        config: HubConfig,
        store: Store,
        *,
        clock: Clock = system_clock,
        telemetry: Telemetry | None = None,
    ) -> None:
        super().__init__(config, store, clock=clock, telemetry=telemetry)
        self.audit = Audit(self)
        self.ingress = Ingress(self, self.audit)
        self.submission = Submissions(self, self.audit)
        self.reloader = Reloader(self, self.audit)
        self.revocation_watch = RevocationWatch(self, self.audit)
        self.answers = Answers(self, self.audit)
