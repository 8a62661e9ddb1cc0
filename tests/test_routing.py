"""Routing rules on the pure core."""

from __future__ import annotations

import pytest

from hub.core.errors import RoutingError
from hub.core.messages import AeoStatus, ControlResult, GoodsDeclaration
from hub.core.routing import BY_COUNTRY, RoutingTable

TABLE = RoutingTable(
    local_party="CN",
    partner_countries={"NZ": ["NZ"], "EU": ["FR", "DE"], "SG": ["SG"]},
    rules={
        GoodsDeclaration.DESCRIPTOR.full_name: BY_COUNTRY,
        AeoStatus.DESCRIPTOR.full_name: ["NZ", "SG"],
    },
)


def declaration(destination: str = "", export: str = "") -> GoodsDeclaration:
    d = GoodsDeclaration(functional_reference_id="LRN")
    d.goods_shipment.destination.country_code = destination
    d.goods_shipment.export_country.id = export
    return d


@pytest.mark.parametrize(
    ("destination", "export", "expected"),
    [
        ("NZ", "CN", ["NZ"]),  # export from CN to NZ
        ("CN", "SG", ["SG"]),  # import into CN from SG: the exporting administration
        ("DE", "CN", ["EU"]),  # a union partner covering several countries
        (" NZ ", "CN", ["NZ"]),  # code values are trimmed
        ("NZ", "SG", ["NZ", "SG"]),  # transit through CN: both
    ],
)
def test_declarations_go_to_the_administration_they_name(
    destination: str, export: str, expected: list[str]
) -> None:
    assert TABLE.recipients(declaration(destination, export)) == expected


def test_declaration_naming_no_partner_is_refused() -> None:
    with pytest.raises(RoutingError) as info:
        TABLE.recipients(declaration("US", "CN"))
    assert info.value.reason == "no-route"


def test_type_rules_and_explicit_recipients() -> None:
    assert TABLE.recipients(AeoStatus(aeo_id="A")) == ["NZ", "SG"]
    assert TABLE.recipients(AeoStatus(aeo_id="A"), ["SG", "SG"]) == ["SG"]
    with pytest.raises(RoutingError) as info:
        TABLE.recipients(AeoStatus(aeo_id="A"), ["AU"])
    assert info.value.reason == "unknown-partner"
    with pytest.raises(RoutingError):
        TABLE.recipients(ControlResult(control_id="C"))
