"""Control results read off real CDS notifications, and carried to a partner with them."""

from __future__ import annotations

import grpc
import pytest

from adapters.wco.controls import control_result_from
from adapters.wco.translator import Response, WcoXml
from hub.core.messages import ControlResult
from hub.pb.customs_hub.v1 import control_pb2 as cpb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from tests.conftest import Federation
from tests.test_exchange import eventually
from tests.testdata import CDS_SAMPLES

# (notification, stage, outcome, control result code, control type)
CASES = [
    (
        "Example_DMS_notifications/05_DMSCTL.xml",
        cpb.CONTROL_STAGE_INTENDED,
        cpb.CONTROL_OUTCOME_UNSPECIFIED,
        "",
        cpb.CONTROL_TYPE_PHYSICAL,
    ),
    (
        "Example_DMS_notifications/06_DMSDOC.xml",
        cpb.CONTROL_STAGE_DOCUMENTS_REQUIRED,
        cpb.CONTROL_OUTCOME_UNSPECIFIED,
        "",
        cpb.CONTROL_TYPE_DOCUMENTARY,
    ),
    (
        "TT_IM068a/Example_Notifications/06_DMSRES.xml",
        cpb.CONTROL_STAGE_COMPLETED,
        cpb.CONTROL_OUTCOME_DISCREPANCY,
        "",
        cpb.CONTROL_TYPE_PHYSICAL,
    ),
    (
        "TT_IM068a/Example_Notifications/07_DMSCLE.xml",
        cpb.CONTROL_STAGE_CLEARED,
        cpb.CONTROL_OUTCOME_NO_FINDINGS,
        "A2",
        cpb.CONTROL_TYPE_UNSPECIFIED,
    ),
    (
        "TT_IM017b/09._DMSCLE.xml",
        cpb.CONTROL_STAGE_CLEARED,
        cpb.CONTROL_OUTCOME_NO_FINDINGS,
        "A1",
        cpb.CONTROL_TYPE_UNSPECIFIED,
    ),
]


def response(name: str) -> Response:
    message = WcoXml().decode((CDS_SAMPLES / name).read_bytes())
    assert isinstance(message, Response)
    return message


@pytest.mark.parametrize(
    ("name", "stage", "outcome", "code", "control_type"), CASES, ids=[c[0] for c in CASES]
)
def test_control_results_from_notifications(
    name: str, stage: int, outcome: int, code: str, control_type: int
) -> None:
    notification = response(name)
    result = control_result_from(notification)
    assert result is not None
    assert (result.stage, result.outcome, result.control_result_code, result.control_type) == (
        stage,
        outcome,
        code,
        control_type,
    )
    assert result.notification_function_code == notification.function_code
    assert result.declaration_id == notification.declaration.id.strip()
    assert result.controlled_at.endswith("Z") and result.revision > 200_000_000_000_000


def test_notifications_without_controls_give_none() -> None:
    assert control_result_from(response("Example_DMS_notifications/01_DMSACC.xml")) is None


def test_later_notification_has_the_higher_revision() -> None:
    earlier = control_result_from(response("TT_IM068a/Example_Notifications/06_DMSRES.xml"))
    later = control_result_from(response("TT_IM068a/Example_Notifications/07_DMSCLE.xml"))
    assert earlier is not None and later is not None
    assert later.revision > earlier.revision and later.declaration_id == earlier.declaration_id


async def test_submitted_notification_carries_its_control_result(federation: Federation) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    data = (CDS_SAMPLES / "TT_IM068a/Example_Notifications/07_DMSCLE.xml").read_bytes()
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        response_ = await sgrpc.DomesticStub(channel).Submit(
            spb.SubmitRequest(
                raw=spb.RawDocument(format="wco-xml", content=data), recipients=["NZ"]
            ),
            timeout=10,
        )
    assert len(response_.queued) == 2

    async def both():  # type: ignore[no-untyped-def]
        rows = await nz.hub.store.views.inbound()
        return rows if len(rows) == 2 else None

    rows = await eventually(both)
    by_type = {r.body_type.rsplit(".", 1)[-1]: r for r in rows}
    result = ControlResult.FromString(by_type["ControlResult"].body)
    assert (
        result.stage == cpb.CONTROL_STAGE_CLEARED
        and result.outcome == cpb.CONTROL_OUTCOME_NO_FINDINGS
    )
    assert Response.FromString(by_type["Response"].body).function_code == "09"
