"""CUSDEC (Customs declaration, D.96B) to and from ``GoodsDeclaration``: the heading, the
parties and the customs items (SG30) that the proto models. ``write_goods_declaration`` is the
inverse of ``read_goods_declaration`` for every mapped field, so that a declaration read from
CUSDEC writes back to the same segments; docs/formats/edifact.md lists what is mapped. Fields
the mapping does not know (most of a WCO declaration) are left out. Pure: a checked group tree
in, a GoodsDeclaration out, and segments out of a GoodsDeclaration.
"""

from __future__ import annotations

from adapters.edifact.cusres import edifact_date, free_text, join_lines, text_lines, wco_date
from adapters.edifact.directory import Group
from adapters.edifact.syntax import Segment, segment
from hub.core.errors import TranslationError
from hub.pb.customs_hub.v1 import declaration_pb2

GoodsDeclaration = declaration_pb2.GoodsDeclaration
Party = declaration_pb2.Party
NAME_WIDTH = 35  # C080 3036 / C059 3042 are an..35

# NAD 3035 party qualifier -> where the party goes.
DECLARATION_PARTIES = {"EX": "exporter", "DT": "declarant", "AG": "agent", "AE": "agent"}
SHIPMENT_PARTIES = {
    "IM": "importer",
    "CN": "consignee",
    "CZ": "consignor",
    "BY": "buyer",
    "SE": "seller",
}
ITEM_PARTIES = {"CN": "consignee", "CZ": "consignor", "BY": "buyer", "SE": "seller"}
CARRIER = "CA"
# LOC 3227 in the heading.
LOC_CLEARANCE_OFFICE = "22"  # -> declaration_office_id
LOC_EXIT_OFFICE = "42"  # -> exit_office
LOC_ISSUE_PLACE = "91"  # -> issue_location_id
LOC_ORIGIN = "27"  # in SG30 -> origin country
REF_MRN, REF_UCR = "ABT", "UCN"
DATE_ISSUE, DATE_ACCEPTANCE = "137", "148"
WEIGHT = "WT"  # MEA 6311
TOTAL_GROSS = "AAD"  # MEA 6313 Total gross weight
ITEM_GROSS = ("AAE", "G", "AAB")  # Item gross weight, Gross weight, Unit gross weight
NET_NET = "AAF"
AMOUNT_INVOICE_TOTAL = "39"  # MOA 5025
AMOUNT_CUSTOMS_VALUE = "40"
AMOUNT_STATISTICAL = "123"
AMOUNT_ITEM_INVOICE = "38"
TEXT_GOODS = "AAA"  # FTX 4451 Goods description
# Written where the reader takes several codes (NAD AG or AE, MEA AAE, G or AAB).
WRITE_AGENT, WRITE_ITEM_GROSS = "AG", "AAE"
SECTION_DETAIL, SECTION_SUMMARY = "D", "S"  # UNS 0081
NAME_LINES, STREET_LINES = 5, 4  # C080 five 3036, C059 four 3042
CLASSIFICATIONS = 5  # CST holds five C246
INVALID = "schema-invalid"


def _decimal(text: str) -> str:
    """A numeric value with the decimal mark written as a point (either mark is allowed)."""
    return text.replace(",", ".")


def _conflict(seg: Segment, what: str) -> TranslationError:
    return TranslationError(
        f"{seg.where()}: a second {what}", reason="schema-invalid", line=seg.number, path=seg.tag
    )


def read_goods_declaration(root: Group) -> GoodsDeclaration:
    declaration = GoodsDeclaration()
    bgm = root.first("BGM")
    if bgm is not None:
        declaration.type_code = bgm.component(0, 0)
        declaration.functional_reference_id = bgm.component(1, 0)
        declaration.function_code = bgm.component(2)
    for dtm in root.all("DTM"):
        target = {
            DATE_ISSUE: declaration.issue_date_time,
            DATE_ACCEPTANCE: declaration.acceptance_date_time,
        }.get(dtm.component(0, 0))
        if target is not None and not target.value:
            # 204 -> WCO 304 with Z (EDIFACT times are UTC); 102 verbatim (cusres.wco_date)
            target.value, target.format_code = wco_date(dtm.component(0, 1), dtm.component(0, 2))
    for loc in root.all("LOC"):
        qualifier, place = loc.component(0), loc.component(1, 0)
        if qualifier == LOC_CLEARANCE_OFFICE:
            declaration.declaration_office_id = declaration.declaration_office_id or place
        elif qualifier == LOC_EXIT_OFFICE:
            declaration.exit_office.id = declaration.exit_office.id or place
        elif qualifier == LOC_ISSUE_PLACE:
            declaration.issue_location_id = declaration.issue_location_id or place
    for mea in root.all("MEA"):
        if mea.component(0) == WEIGHT and mea.component(1, 0) == TOTAL_GROSS:
            _measure(declaration.total_gross_mass_measure, mea)
    shipment = declaration.goods_shipment
    for reference in root.of("SG1"):
        rff = reference.segments[0]
        qualifier, value = rff.component(0, 0), rff.component(0, 1)
        if qualifier == REF_MRN:
            if declaration.id and value != declaration.id:
                raise _conflict(rff, "MRN (RFF+ABT) that differs from the first")
            declaration.id = value
        elif qualifier == REF_UCR:
            shipment.ucr.id = shipment.ucr.id or value
    for document in root.of("SG5"):
        _document(declaration.additional_document.add(), document.segments[0])
    for party_group in root.of("SG6"):
        nad = party_group.segments[0]
        role = nad.component(0)
        if role in DECLARATION_PARTIES:
            _party(getattr(declaration, DECLARATION_PARTIES[role]), nad)
        elif role in SHIPMENT_PARTIES:
            _party(getattr(shipment, SHIPMENT_PARTIES[role]), nad)
        elif role == CARRIER:
            _party(declaration.consignment.carrier, nad)
    for amount_group in root.of("SG8"):
        moa = amount_group.segments[0]
        if moa.component(0, 0) == AMOUNT_INVOICE_TOTAL:
            _amount(declaration.invoice_amount, moa)
    for item_group in root.of("SG30"):
        _goods_item(shipment.government_agency_goods_item.add(), item_group)
    if not shipment.ListFields():
        declaration.ClearField("goods_shipment")
    return declaration


def _goods_item(item: declaration_pb2.GoodsItem, group: Group) -> None:
    cst = group.segments[0]
    item.sequence_numeric = cst.component(0)
    for index in range(1, len(cst.elements)):
        if cst.component(index, 0):
            item.commodity.classification.add(
                id=cst.component(index, 0), identification_type_code=cst.component(index, 1)
            )
    description = join_lines(
        [
            line
            for ftx in group.all("FTX")
            if ftx.component(0) == TEXT_GOODS
            for line in (ftx.elements[3] if len(ftx.elements) > 3 else ())
        ]
    )
    if description:
        item.commodity.description = description
    for loc in group.all("LOC"):
        if loc.component(0) == LOC_ORIGIN and loc.component(1, 0):
            item.origin.add(country_code=loc.component(1, 0))
    for mea in group.all("MEA"):
        if mea.component(0) != WEIGHT:
            continue
        if mea.component(1, 0) in ITEM_GROSS and not item.commodity.goods_measure.HasField(
            "gross_mass_measure"
        ):
            _measure(item.commodity.goods_measure.gross_mass_measure, mea)
        elif mea.component(1, 0) == NET_NET:
            _measure(item.commodity.goods_measure.net_net_weight_measure, mea)
    for nad in group.all("NAD"):
        role = nad.component(0)
        if role in ITEM_PARTIES:
            _party(getattr(item, ITEM_PARTIES[role]), nad)
    for number, package in enumerate(group.of("SG31"), start=1):
        pac = package.segments[0]
        packaging = item.packaging.add(sequence_numeric=str(number))
        if pac.component(0):
            packaging.quantity_quantity.value = pac.component(0)
        packaging.type_code = pac.component(2, 0)
    for amount_group in group.of("SG33"):
        moa = amount_group.segments[0]
        qualifier = moa.component(0, 0)
        if qualifier == AMOUNT_CUSTOMS_VALUE:
            _amount(item.customs_value_amount, moa)
        elif qualifier == AMOUNT_STATISTICAL:
            _amount(item.statistical_value_amount, moa)
        elif qualifier == AMOUNT_ITEM_INVOICE:
            _amount(item.commodity.invoice_line.item_charge_amount, moa)
    for document in group.of("SG37"):
        _document(item.additional_document.add(), document.segments[0])


def _party(party: declaration_pb2.Party, nad: Segment) -> None:
    if party.ListFields():
        raise _conflict(nad, f"{nad.component(0)} party")
    party.id = nad.component(1, 0)
    party.name = join_lines(list(nad.elements[3][:5]) if len(nad.elements) > 3 else [], NAME_WIDTH)
    street = join_lines(list(nad.elements[4]) if len(nad.elements) > 4 else [], NAME_WIDTH)
    fields = {
        "line": street,
        "city_name": nad.component(5),
        "country_sub_division_code": nad.component(6),
        "postcode_id": nad.component(7),
        "country_code": nad.component(8),
    }
    for name, value in fields.items():
        if value:
            setattr(party.address, name, value)


def _measure(measure: declaration_pb2.Measure, mea: Segment) -> None:
    measure.unit_code = mea.component(2, 0)
    measure.value = _decimal(mea.component(2, 1))


def _amount(amount: declaration_pb2.Amount, moa: Segment) -> None:
    amount.value = _decimal(moa.component(0, 1))
    amount.currency_id = moa.component(0, 2)


def _document(document: declaration_pb2.AdditionalDocument, doc: Segment) -> None:
    document.type_code = doc.component(0, 0)
    document.id = doc.component(1, 0)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _refused(path: str, what: str) -> TranslationError:
    return TranslationError(
        f"GoodsDeclaration cannot be written as CUSDEC D.96B: {what}", reason=INVALID, path=path
    )


def write_goods_declaration(declaration: GoodsDeclaration) -> list[Segment]:
    """Segments between UNH and UNT, in the order of the D.96B structure: heading (BGM, LOC,
    DTM, MEA, SG1 RFF, SG5 DOC, SG6 NAD, SG8 MOA), UNS+D, one SG30 per goods item, UNS+S."""
    out = [
        segment(
            "BGM",
            declaration.type_code,
            declaration.functional_reference_id,
            declaration.function_code,
        )
    ]
    for qualifier, place in (
        (LOC_CLEARANCE_OFFICE, declaration.declaration_office_id),
        (LOC_EXIT_OFFICE, declaration.exit_office.id),
        (LOC_ISSUE_PLACE, declaration.issue_location_id),
    ):
        if place:
            out.append(segment("LOC", qualifier, place))
    for qualifier, when in (
        (DATE_ISSUE, declaration.issue_date_time),
        (DATE_ACCEPTANCE, declaration.acceptance_date_time),
    ):
        if when.value:
            out.append(segment("DTM", (qualifier, *edifact_date(when.value, when.format_code))))
    if _has_measure(declaration.total_gross_mass_measure):
        out.append(_mea(TOTAL_GROSS, declaration.total_gross_mass_measure))
    shipment = declaration.goods_shipment
    if declaration.id:
        out.append(segment("RFF", (REF_MRN, declaration.id)))
    if shipment.ucr.id:
        out.append(segment("RFF", (REF_UCR, shipment.ucr.id)))
    out.extend(_doc(document) for document in declaration.additional_document)
    # In the order partners usually send them, so that fewer of theirs end in the residue.
    parties = [
        ("EX", declaration.exporter),
        *((role, getattr(shipment, name)) for role, name in SHIPMENT_PARTIES.items()),
        ("DT", declaration.declarant),
        (WRITE_AGENT, declaration.agent),
        (CARRIER, declaration.consignment.carrier),
    ]
    out.extend(_nad(role, party, "SG6/NAD") for role, party in parties if _has_party(party))
    if declaration.invoice_amount.value or declaration.invoice_amount.currency_id:
        out.append(_moa(AMOUNT_INVOICE_TOTAL, declaration.invoice_amount))
    out.append(segment("UNS", SECTION_DETAIL))
    for item in shipment.government_agency_goods_item:
        out.extend(_write_item(item))
    out.append(segment("UNS", SECTION_SUMMARY))
    return out


def _write_item(item: declaration_pb2.GoodsItem) -> list[Segment]:
    commodity = item.commodity
    classifications = [(c.id, c.identification_type_code) for c in commodity.classification]
    if len(classifications) > CLASSIFICATIONS:
        raise _refused(
            "SG30/CST",
            f"goods item {item.sequence_numeric or '?'} has {len(classifications)} "
            f"classifications; CST holds at most {CLASSIFICATIONS} (C246)",
        )
    out = [segment("CST", item.sequence_numeric, *classifications)]
    out.extend(free_text(TEXT_GOODS, commodity.description) if commodity.description else ())
    out.extend(segment("LOC", LOC_ORIGIN, o.country_code) for o in item.origin if o.country_code)
    measures = commodity.goods_measure
    if measures.HasField("gross_mass_measure") and _has_measure(measures.gross_mass_measure):
        out.append(_mea(WRITE_ITEM_GROSS, measures.gross_mass_measure))
    if measures.HasField("net_net_weight_measure") and _has_measure(
        measures.net_net_weight_measure
    ):
        out.append(_mea(NET_NET, measures.net_net_weight_measure))
    for role, name in ITEM_PARTIES.items():
        party = getattr(item, name)
        if _has_party(party):
            out.append(_nad(role, party, "SG30/NAD"))
    for packaging in item.packaging:
        # 7224 number of packages, C202 7065 package type; the sequence is the PAC's place.
        out.append(segment("PAC", packaging.quantity_quantity.value, "", packaging.type_code))
    for qualifier, amount in (
        (AMOUNT_CUSTOMS_VALUE, item.customs_value_amount),
        (AMOUNT_STATISTICAL, item.statistical_value_amount),
        (AMOUNT_ITEM_INVOICE, commodity.invoice_line.item_charge_amount),
    ):
        if amount.value or amount.currency_id:
            out.append(_moa(qualifier, amount))
    out.extend(_doc(document) for document in item.additional_document)
    return out


def _has_measure(measure: declaration_pb2.Measure) -> bool:
    return bool(measure.value or measure.unit_code)


def _mea(qualifier: str, measure: declaration_pb2.Measure) -> Segment:
    return segment("MEA", WEIGHT, qualifier, (measure.unit_code, measure.value))


def _moa(qualifier: str, amount: declaration_pb2.Amount) -> Segment:
    return segment("MOA", (qualifier, amount.value, amount.currency_id))


def _doc(document: declaration_pb2.AdditionalDocument) -> Segment:
    return segment("DOC", document.type_code, document.id)


def _mapped_address(party: declaration_pb2.Party) -> list[str]:
    address = party.address
    return [
        address.city_name,
        address.country_sub_division_code,
        address.postcode_id,
        address.country_code,
    ]


def _has_party(party: declaration_pb2.Party) -> bool:
    return bool(party.id or party.name or party.address.line or any(_mapped_address(party)))


def _nad(role: str, party: declaration_pb2.Party, path: str) -> Segment:
    """NAD 3035 role, C082 3039 id, C080 name lines, C059 street lines, 3164 city, 3229
    sub-division, 3251 postcode, 3207 country; C058 (unstructured address) left empty."""
    name = text_lines(party.name, NAME_WIDTH)
    street = text_lines(party.address.line, NAME_WIDTH)
    if len(name) > NAME_LINES or len(street) > STREET_LINES:
        raise _refused(
            path,
            f"the {role} party's name ({len(party.name)} characters) or street "
            f"({len(party.address.line)}) does not fit NAD (C080 {NAME_LINES} and C059 "
            f"{STREET_LINES} lines of {NAME_WIDTH})",
        )
    return segment("NAD", role, party.id, "", name, street, *_mapped_address(party))
