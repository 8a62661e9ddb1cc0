from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DateTimeString(_message.Message):
    __slots__ = ("value", "format_code")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_CODE_FIELD_NUMBER: _ClassVar[int]
    value: str
    format_code: str
    def __init__(self, value: _Optional[str] = ..., format_code: _Optional[str] = ...) -> None: ...

class Amount(_message.Message):
    __slots__ = ("value", "currency_id")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_ID_FIELD_NUMBER: _ClassVar[int]
    value: str
    currency_id: str
    def __init__(self, value: _Optional[str] = ..., currency_id: _Optional[str] = ...) -> None: ...

class Measure(_message.Message):
    __slots__ = ("value", "unit_code")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_CODE_FIELD_NUMBER: _ClassVar[int]
    value: str
    unit_code: str
    def __init__(self, value: _Optional[str] = ..., unit_code: _Optional[str] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("type_code", "city_name", "country_code", "country_sub_division_code", "country_sub_division_name", "line", "postcode_id")
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    CITY_NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_SUB_DIVISION_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_SUB_DIVISION_NAME_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    POSTCODE_ID_FIELD_NUMBER: _ClassVar[int]
    type_code: str
    city_name: str
    country_code: str
    country_sub_division_code: str
    country_sub_division_name: str
    line: str
    postcode_id: str
    def __init__(self, type_code: _Optional[str] = ..., city_name: _Optional[str] = ..., country_code: _Optional[str] = ..., country_sub_division_code: _Optional[str] = ..., country_sub_division_name: _Optional[str] = ..., line: _Optional[str] = ..., postcode_id: _Optional[str] = ...) -> None: ...

class Contact(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Communication(_message.Message):
    __slots__ = ("id", "type_code")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    id: str
    type_code: str
    def __init__(self, id: _Optional[str] = ..., type_code: _Optional[str] = ...) -> None: ...

class Party(_message.Message):
    __slots__ = ("name", "id", "address", "contact", "communication", "role_code", "function_code", "category_code")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    COMMUNICATION_FIELD_NUMBER: _ClassVar[int]
    ROLE_CODE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_CODE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_CODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    address: Address
    contact: Contact
    communication: Communication
    role_code: str
    function_code: str
    category_code: str
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., address: _Optional[_Union[Address, _Mapping]] = ..., contact: _Optional[_Union[Contact, _Mapping]] = ..., communication: _Optional[_Union[Communication, _Mapping]] = ..., role_code: _Optional[str] = ..., function_code: _Optional[str] = ..., category_code: _Optional[str] = ...) -> None: ...

class Office(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Pointer(_message.Message):
    __slots__ = ("sequence_numeric", "document_section_code", "tag_id")
    SEQUENCE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_SECTION_CODE_FIELD_NUMBER: _ClassVar[int]
    TAG_ID_FIELD_NUMBER: _ClassVar[int]
    sequence_numeric: str
    document_section_code: str
    tag_id: str
    def __init__(self, sequence_numeric: _Optional[str] = ..., document_section_code: _Optional[str] = ..., tag_id: _Optional[str] = ...) -> None: ...

class Authenticator(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Authentication(_message.Message):
    __slots__ = ("authentication", "authenticator")
    AUTHENTICATION_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATOR_FIELD_NUMBER: _ClassVar[int]
    authentication: str
    authenticator: Authenticator
    def __init__(self, authentication: _Optional[str] = ..., authenticator: _Optional[_Union[Authenticator, _Mapping]] = ...) -> None: ...

class WriteOff(_message.Message):
    __slots__ = ("quantity_quantity", "amount_amount")
    QUANTITY_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    quantity_quantity: Measure
    amount_amount: Amount
    def __init__(self, quantity_quantity: _Optional[_Union[Measure, _Mapping]] = ..., amount_amount: _Optional[_Union[Amount, _Mapping]] = ...) -> None: ...

class AdditionalDocument(_message.Message):
    __slots__ = ("category_code", "effective_date_time", "id", "name", "type_code", "lpco_exemption_code", "submitter", "write_off")
    CATEGORY_CODE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    LPCO_EXEMPTION_CODE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTER_FIELD_NUMBER: _ClassVar[int]
    WRITE_OFF_FIELD_NUMBER: _ClassVar[int]
    category_code: str
    effective_date_time: DateTimeString
    id: str
    name: str
    type_code: str
    lpco_exemption_code: str
    submitter: Party
    write_off: WriteOff
    def __init__(self, category_code: _Optional[str] = ..., effective_date_time: _Optional[_Union[DateTimeString, _Mapping]] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., type_code: _Optional[str] = ..., lpco_exemption_code: _Optional[str] = ..., submitter: _Optional[_Union[Party, _Mapping]] = ..., write_off: _Optional[_Union[WriteOff, _Mapping]] = ...) -> None: ...

class AdditionalInformation(_message.Message):
    __slots__ = ("statement_code", "statement_description", "limit_date_time", "statement_type_code", "pointer")
    STATEMENT_CODE_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    POINTER_FIELD_NUMBER: _ClassVar[int]
    statement_code: str
    statement_description: str
    limit_date_time: DateTimeString
    statement_type_code: str
    pointer: _containers.RepeatedCompositeFieldContainer[Pointer]
    def __init__(self, statement_code: _Optional[str] = ..., statement_description: _Optional[str] = ..., limit_date_time: _Optional[_Union[DateTimeString, _Mapping]] = ..., statement_type_code: _Optional[str] = ..., pointer: _Optional[_Iterable[_Union[Pointer, _Mapping]]] = ...) -> None: ...

class Amendment(_message.Message):
    __slots__ = ("change_reason_code", "pointer")
    CHANGE_REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    POINTER_FIELD_NUMBER: _ClassVar[int]
    change_reason_code: str
    pointer: _containers.RepeatedCompositeFieldContainer[Pointer]
    def __init__(self, change_reason_code: _Optional[str] = ..., pointer: _Optional[_Iterable[_Union[Pointer, _Mapping]]] = ...) -> None: ...

class BorderTransportMeans(_message.Message):
    __slots__ = ("name", "id", "identification_type_code", "type_code", "registration_nationality_code", "mode_code")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFICATION_TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_NATIONALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    MODE_CODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    identification_type_code: str
    type_code: str
    registration_nationality_code: str
    mode_code: str
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., identification_type_code: _Optional[str] = ..., type_code: _Optional[str] = ..., registration_nationality_code: _Optional[str] = ..., mode_code: _Optional[str] = ...) -> None: ...

class CurrencyExchange(_message.Message):
    __slots__ = ("currency_type_code", "rate_numeric")
    CURRENCY_TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    RATE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    currency_type_code: str
    rate_numeric: str
    def __init__(self, currency_type_code: _Optional[str] = ..., rate_numeric: _Optional[str] = ...) -> None: ...

class ObligationGuarantee(_message.Message):
    __slots__ = ("amount_amount", "id", "reference_id", "security_details_code", "access_code", "guarantee_office")
    AMOUNT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    SECURITY_DETAILS_CODE_FIELD_NUMBER: _ClassVar[int]
    ACCESS_CODE_FIELD_NUMBER: _ClassVar[int]
    GUARANTEE_OFFICE_FIELD_NUMBER: _ClassVar[int]
    amount_amount: Amount
    id: str
    reference_id: str
    security_details_code: str
    access_code: str
    guarantee_office: Office
    def __init__(self, amount_amount: _Optional[_Union[Amount, _Mapping]] = ..., id: _Optional[str] = ..., reference_id: _Optional[str] = ..., security_details_code: _Optional[str] = ..., access_code: _Optional[str] = ..., guarantee_office: _Optional[_Union[Office, _Mapping]] = ...) -> None: ...

class ArrivalTransportMeans(_message.Message):
    __slots__ = ("name", "id", "identification_type_code", "type_code", "mode_code")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFICATION_TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    MODE_CODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    identification_type_code: str
    type_code: str
    mode_code: str
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., identification_type_code: _Optional[str] = ..., type_code: _Optional[str] = ..., mode_code: _Optional[str] = ...) -> None: ...

class DepartureTransportMeans(_message.Message):
    __slots__ = ("name", "id", "identification_type_code", "type_code", "mode_code")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFICATION_TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    MODE_CODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    identification_type_code: str
    type_code: str
    mode_code: str
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., identification_type_code: _Optional[str] = ..., type_code: _Optional[str] = ..., mode_code: _Optional[str] = ...) -> None: ...

class Freight(_message.Message):
    __slots__ = ("payment_method_code",)
    PAYMENT_METHOD_CODE_FIELD_NUMBER: _ClassVar[int]
    payment_method_code: str
    def __init__(self, payment_method_code: _Optional[str] = ...) -> None: ...

class ConsignmentItem(_message.Message):
    __slots__ = ("sequence_numeric", "consignor", "freight")
    SEQUENCE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    CONSIGNOR_FIELD_NUMBER: _ClassVar[int]
    FREIGHT_FIELD_NUMBER: _ClassVar[int]
    sequence_numeric: str
    consignor: Party
    freight: Freight
    def __init__(self, sequence_numeric: _Optional[str] = ..., consignor: _Optional[_Union[Party, _Mapping]] = ..., freight: _Optional[_Union[Freight, _Mapping]] = ...) -> None: ...

class Itinerary(_message.Message):
    __slots__ = ("sequence_numeric", "routing_country_code")
    SEQUENCE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    ROUTING_COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    sequence_numeric: str
    routing_country_code: str
    def __init__(self, sequence_numeric: _Optional[str] = ..., routing_country_code: _Optional[str] = ...) -> None: ...

class GoodsLocation(_message.Message):
    __slots__ = ("name", "id", "type_code", "address")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    type_code: str
    address: Address
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., type_code: _Optional[str] = ..., address: _Optional[_Union[Address, _Mapping]] = ...) -> None: ...

class LoadingLocation(_message.Message):
    __slots__ = ("name", "id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class Seal(_message.Message):
    __slots__ = ("sequence_numeric", "id")
    SEQUENCE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    sequence_numeric: str
    id: str
    def __init__(self, sequence_numeric: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class TransportEquipment(_message.Message):
    __slots__ = ("sequence_numeric", "id", "seal")
    SEQUENCE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SEAL_FIELD_NUMBER: _ClassVar[int]
    sequence_numeric: str
    id: str
    seal: _containers.RepeatedCompositeFieldContainer[Seal]
    def __init__(self, sequence_numeric: _Optional[str] = ..., id: _Optional[str] = ..., seal: _Optional[_Iterable[_Union[Seal, _Mapping]]] = ...) -> None: ...

class Consignment(_message.Message):
    __slots__ = ("container_code", "arrival_transport_means", "carrier", "consignment_item", "consignor", "departure_transport_means", "freight", "goods_location", "itinerary", "loading_location", "transport_equipment")
    CONTAINER_CODE_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_TRANSPORT_MEANS_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    CONSIGNMENT_ITEM_FIELD_NUMBER: _ClassVar[int]
    CONSIGNOR_FIELD_NUMBER: _ClassVar[int]
    DEPARTURE_TRANSPORT_MEANS_FIELD_NUMBER: _ClassVar[int]
    FREIGHT_FIELD_NUMBER: _ClassVar[int]
    GOODS_LOCATION_FIELD_NUMBER: _ClassVar[int]
    ITINERARY_FIELD_NUMBER: _ClassVar[int]
    LOADING_LOCATION_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_EQUIPMENT_FIELD_NUMBER: _ClassVar[int]
    container_code: str
    arrival_transport_means: ArrivalTransportMeans
    carrier: Party
    consignment_item: _containers.RepeatedCompositeFieldContainer[ConsignmentItem]
    consignor: Party
    departure_transport_means: DepartureTransportMeans
    freight: Freight
    goods_location: GoodsLocation
    itinerary: _containers.RepeatedCompositeFieldContainer[Itinerary]
    loading_location: LoadingLocation
    transport_equipment: _containers.RepeatedCompositeFieldContainer[TransportEquipment]
    def __init__(self, container_code: _Optional[str] = ..., arrival_transport_means: _Optional[_Union[ArrivalTransportMeans, _Mapping]] = ..., carrier: _Optional[_Union[Party, _Mapping]] = ..., consignment_item: _Optional[_Iterable[_Union[ConsignmentItem, _Mapping]]] = ..., consignor: _Optional[_Union[Party, _Mapping]] = ..., departure_transport_means: _Optional[_Union[DepartureTransportMeans, _Mapping]] = ..., freight: _Optional[_Union[Freight, _Mapping]] = ..., goods_location: _Optional[_Union[GoodsLocation, _Mapping]] = ..., itinerary: _Optional[_Iterable[_Union[Itinerary, _Mapping]]] = ..., loading_location: _Optional[_Union[LoadingLocation, _Mapping]] = ..., transport_equipment: _Optional[_Iterable[_Union[TransportEquipment, _Mapping]]] = ...) -> None: ...

class ChargeDeduction(_message.Message):
    __slots__ = ("charges_type_code", "other_charge_deduction_amount")
    CHARGES_TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    OTHER_CHARGE_DEDUCTION_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    charges_type_code: str
    other_charge_deduction_amount: Amount
    def __init__(self, charges_type_code: _Optional[str] = ..., other_charge_deduction_amount: _Optional[_Union[Amount, _Mapping]] = ...) -> None: ...

class CustomsValuation(_message.Message):
    __slots__ = ("method_code", "freight_charge_amount", "charge_deduction")
    METHOD_CODE_FIELD_NUMBER: _ClassVar[int]
    FREIGHT_CHARGE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CHARGE_DEDUCTION_FIELD_NUMBER: _ClassVar[int]
    method_code: str
    freight_charge_amount: Amount
    charge_deduction: _containers.RepeatedCompositeFieldContainer[ChargeDeduction]
    def __init__(self, method_code: _Optional[str] = ..., freight_charge_amount: _Optional[_Union[Amount, _Mapping]] = ..., charge_deduction: _Optional[_Iterable[_Union[ChargeDeduction, _Mapping]]] = ...) -> None: ...

class Destination(_message.Message):
    __slots__ = ("country_code", "region_id")
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    REGION_ID_FIELD_NUMBER: _ClassVar[int]
    country_code: str
    region_id: str
    def __init__(self, country_code: _Optional[str] = ..., region_id: _Optional[str] = ...) -> None: ...

class ExportCountry(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Invoice(_message.Message):
    __slots__ = ("id", "issue_date_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ISSUE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    issue_date_time: DateTimeString
    def __init__(self, id: _Optional[str] = ..., issue_date_time: _Optional[_Union[DateTimeString, _Mapping]] = ...) -> None: ...

class PreviousDocument(_message.Message):
    __slots__ = ("category_code", "id", "type_code", "line_numeric")
    CATEGORY_CODE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    LINE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    category_code: str
    id: str
    type_code: str
    line_numeric: str
    def __init__(self, category_code: _Optional[str] = ..., id: _Optional[str] = ..., type_code: _Optional[str] = ..., line_numeric: _Optional[str] = ...) -> None: ...

class TradeTerms(_message.Message):
    __slots__ = ("condition_code", "country_relationship_code", "description", "location_id", "location_name")
    CONDITION_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_RELATIONSHIP_CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_NAME_FIELD_NUMBER: _ClassVar[int]
    condition_code: str
    country_relationship_code: str
    description: str
    location_id: str
    location_name: str
    def __init__(self, condition_code: _Optional[str] = ..., country_relationship_code: _Optional[str] = ..., description: _Optional[str] = ..., location_id: _Optional[str] = ..., location_name: _Optional[str] = ...) -> None: ...

class Ucr(_message.Message):
    __slots__ = ("id", "trader_assigned_reference_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    TRADER_ASSIGNED_REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    trader_assigned_reference_id: str
    def __init__(self, id: _Optional[str] = ..., trader_assigned_reference_id: _Optional[str] = ...) -> None: ...

class Warehouse(_message.Message):
    __slots__ = ("id", "type_code")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    id: str
    type_code: str
    def __init__(self, id: _Optional[str] = ..., type_code: _Optional[str] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("id", "identification_type_code")
    ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFICATION_TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    id: str
    identification_type_code: str
    def __init__(self, id: _Optional[str] = ..., identification_type_code: _Optional[str] = ...) -> None: ...

class DangerousGoods(_message.Message):
    __slots__ = ("undg_id",)
    UNDG_ID_FIELD_NUMBER: _ClassVar[int]
    undg_id: str
    def __init__(self, undg_id: _Optional[str] = ...) -> None: ...

class Payment(_message.Message):
    __slots__ = ("method_code", "reference_id", "tax_assessed_amount", "due_date_time", "payment_amount", "obligation_guarantee")
    METHOD_CODE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    TAX_ASSESSED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DUE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    OBLIGATION_GUARANTEE_FIELD_NUMBER: _ClassVar[int]
    method_code: str
    reference_id: str
    tax_assessed_amount: Amount
    due_date_time: DateTimeString
    payment_amount: Amount
    obligation_guarantee: _containers.RepeatedCompositeFieldContainer[ObligationGuarantee]
    def __init__(self, method_code: _Optional[str] = ..., reference_id: _Optional[str] = ..., tax_assessed_amount: _Optional[_Union[Amount, _Mapping]] = ..., due_date_time: _Optional[_Union[DateTimeString, _Mapping]] = ..., payment_amount: _Optional[_Union[Amount, _Mapping]] = ..., obligation_guarantee: _Optional[_Iterable[_Union[ObligationGuarantee, _Mapping]]] = ...) -> None: ...

class DutyTaxFee(_message.Message):
    __slots__ = ("ad_valorem_tax_base_amount", "deduct_amount", "duty_regime_code", "specific_tax_base_quantity", "tax_rate_numeric", "type_code", "quota_order_id", "payment")
    AD_VALOREM_TAX_BASE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DEDUCT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DUTY_REGIME_CODE_FIELD_NUMBER: _ClassVar[int]
    SPECIFIC_TAX_BASE_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TAX_RATE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    QUOTA_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    ad_valorem_tax_base_amount: Amount
    deduct_amount: Amount
    duty_regime_code: str
    specific_tax_base_quantity: Measure
    tax_rate_numeric: str
    type_code: str
    quota_order_id: str
    payment: Payment
    def __init__(self, ad_valorem_tax_base_amount: _Optional[_Union[Amount, _Mapping]] = ..., deduct_amount: _Optional[_Union[Amount, _Mapping]] = ..., duty_regime_code: _Optional[str] = ..., specific_tax_base_quantity: _Optional[_Union[Measure, _Mapping]] = ..., tax_rate_numeric: _Optional[str] = ..., type_code: _Optional[str] = ..., quota_order_id: _Optional[str] = ..., payment: _Optional[_Union[Payment, _Mapping]] = ...) -> None: ...

class GoodsMeasure(_message.Message):
    __slots__ = ("gross_mass_measure", "net_net_weight_measure", "tariff_quantity")
    GROSS_MASS_MEASURE_FIELD_NUMBER: _ClassVar[int]
    NET_NET_WEIGHT_MEASURE_FIELD_NUMBER: _ClassVar[int]
    TARIFF_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    gross_mass_measure: Measure
    net_net_weight_measure: Measure
    tariff_quantity: Measure
    def __init__(self, gross_mass_measure: _Optional[_Union[Measure, _Mapping]] = ..., net_net_weight_measure: _Optional[_Union[Measure, _Mapping]] = ..., tariff_quantity: _Optional[_Union[Measure, _Mapping]] = ...) -> None: ...

class InvoiceLine(_message.Message):
    __slots__ = ("item_charge_amount",)
    ITEM_CHARGE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    item_charge_amount: Amount
    def __init__(self, item_charge_amount: _Optional[_Union[Amount, _Mapping]] = ...) -> None: ...

class Commodity(_message.Message):
    __slots__ = ("description", "classification", "dangerous_goods", "duty_tax_fee", "goods_measure", "invoice_line", "transport_equipment")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    DANGEROUS_GOODS_FIELD_NUMBER: _ClassVar[int]
    DUTY_TAX_FEE_FIELD_NUMBER: _ClassVar[int]
    GOODS_MEASURE_FIELD_NUMBER: _ClassVar[int]
    INVOICE_LINE_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_EQUIPMENT_FIELD_NUMBER: _ClassVar[int]
    description: str
    classification: _containers.RepeatedCompositeFieldContainer[Classification]
    dangerous_goods: _containers.RepeatedCompositeFieldContainer[DangerousGoods]
    duty_tax_fee: _containers.RepeatedCompositeFieldContainer[DutyTaxFee]
    goods_measure: GoodsMeasure
    invoice_line: InvoiceLine
    transport_equipment: _containers.RepeatedCompositeFieldContainer[TransportEquipment]
    def __init__(self, description: _Optional[str] = ..., classification: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ..., dangerous_goods: _Optional[_Iterable[_Union[DangerousGoods, _Mapping]]] = ..., duty_tax_fee: _Optional[_Iterable[_Union[DutyTaxFee, _Mapping]]] = ..., goods_measure: _Optional[_Union[GoodsMeasure, _Mapping]] = ..., invoice_line: _Optional[_Union[InvoiceLine, _Mapping]] = ..., transport_equipment: _Optional[_Iterable[_Union[TransportEquipment, _Mapping]]] = ...) -> None: ...

class GovernmentProcedure(_message.Message):
    __slots__ = ("current_code", "previous_code")
    CURRENT_CODE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CODE_FIELD_NUMBER: _ClassVar[int]
    current_code: str
    previous_code: str
    def __init__(self, current_code: _Optional[str] = ..., previous_code: _Optional[str] = ...) -> None: ...

class Origin(_message.Message):
    __slots__ = ("country_code", "region_id", "type_code")
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    REGION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    country_code: str
    region_id: str
    type_code: str
    def __init__(self, country_code: _Optional[str] = ..., region_id: _Optional[str] = ..., type_code: _Optional[str] = ...) -> None: ...

class Packaging(_message.Message):
    __slots__ = ("sequence_numeric", "marks_numbers_id", "quantity_quantity", "type_code", "packing_material_description", "length_measure", "width_measure", "height_measure", "volume_measure")
    SEQUENCE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    MARKS_NUMBERS_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    PACKING_MATERIAL_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LENGTH_MEASURE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_MEASURE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_MEASURE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_MEASURE_FIELD_NUMBER: _ClassVar[int]
    sequence_numeric: str
    marks_numbers_id: str
    quantity_quantity: Measure
    type_code: str
    packing_material_description: str
    length_measure: Measure
    width_measure: Measure
    height_measure: Measure
    volume_measure: Measure
    def __init__(self, sequence_numeric: _Optional[str] = ..., marks_numbers_id: _Optional[str] = ..., quantity_quantity: _Optional[_Union[Measure, _Mapping]] = ..., type_code: _Optional[str] = ..., packing_material_description: _Optional[str] = ..., length_measure: _Optional[_Union[Measure, _Mapping]] = ..., width_measure: _Optional[_Union[Measure, _Mapping]] = ..., height_measure: _Optional[_Union[Measure, _Mapping]] = ..., volume_measure: _Optional[_Union[Measure, _Mapping]] = ...) -> None: ...

class ValuationAdjustment(_message.Message):
    __slots__ = ("addition_code",)
    ADDITION_CODE_FIELD_NUMBER: _ClassVar[int]
    addition_code: str
    def __init__(self, addition_code: _Optional[str] = ...) -> None: ...

class GoodsItem(_message.Message):
    __slots__ = ("customs_value_amount", "sequence_numeric", "statistical_value_amount", "transaction_nature_code", "additional_document", "additional_information", "aeo_mutual_recognition_party", "buyer", "commodity", "consignee", "consignor", "customs_valuation", "destination", "domestic_duty_tax_party", "export_country", "government_procedure", "origin", "packaging", "previous_document", "seller", "ucr", "valuation_adjustment")
    CUSTOMS_VALUE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    STATISTICAL_VALUE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_NATURE_CODE_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_INFORMATION_FIELD_NUMBER: _ClassVar[int]
    AEO_MUTUAL_RECOGNITION_PARTY_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    COMMODITY_FIELD_NUMBER: _ClassVar[int]
    CONSIGNEE_FIELD_NUMBER: _ClassVar[int]
    CONSIGNOR_FIELD_NUMBER: _ClassVar[int]
    CUSTOMS_VALUATION_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DOMESTIC_DUTY_TAX_PARTY_FIELD_NUMBER: _ClassVar[int]
    EXPORT_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    GOVERNMENT_PROCEDURE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PACKAGING_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SELLER_FIELD_NUMBER: _ClassVar[int]
    UCR_FIELD_NUMBER: _ClassVar[int]
    VALUATION_ADJUSTMENT_FIELD_NUMBER: _ClassVar[int]
    customs_value_amount: Amount
    sequence_numeric: str
    statistical_value_amount: Amount
    transaction_nature_code: str
    additional_document: _containers.RepeatedCompositeFieldContainer[AdditionalDocument]
    additional_information: _containers.RepeatedCompositeFieldContainer[AdditionalInformation]
    aeo_mutual_recognition_party: _containers.RepeatedCompositeFieldContainer[Party]
    buyer: Party
    commodity: Commodity
    consignee: Party
    consignor: Party
    customs_valuation: CustomsValuation
    destination: Destination
    domestic_duty_tax_party: _containers.RepeatedCompositeFieldContainer[Party]
    export_country: ExportCountry
    government_procedure: _containers.RepeatedCompositeFieldContainer[GovernmentProcedure]
    origin: _containers.RepeatedCompositeFieldContainer[Origin]
    packaging: _containers.RepeatedCompositeFieldContainer[Packaging]
    previous_document: _containers.RepeatedCompositeFieldContainer[PreviousDocument]
    seller: Party
    ucr: Ucr
    valuation_adjustment: ValuationAdjustment
    def __init__(self, customs_value_amount: _Optional[_Union[Amount, _Mapping]] = ..., sequence_numeric: _Optional[str] = ..., statistical_value_amount: _Optional[_Union[Amount, _Mapping]] = ..., transaction_nature_code: _Optional[str] = ..., additional_document: _Optional[_Iterable[_Union[AdditionalDocument, _Mapping]]] = ..., additional_information: _Optional[_Iterable[_Union[AdditionalInformation, _Mapping]]] = ..., aeo_mutual_recognition_party: _Optional[_Iterable[_Union[Party, _Mapping]]] = ..., buyer: _Optional[_Union[Party, _Mapping]] = ..., commodity: _Optional[_Union[Commodity, _Mapping]] = ..., consignee: _Optional[_Union[Party, _Mapping]] = ..., consignor: _Optional[_Union[Party, _Mapping]] = ..., customs_valuation: _Optional[_Union[CustomsValuation, _Mapping]] = ..., destination: _Optional[_Union[Destination, _Mapping]] = ..., domestic_duty_tax_party: _Optional[_Iterable[_Union[Party, _Mapping]]] = ..., export_country: _Optional[_Union[ExportCountry, _Mapping]] = ..., government_procedure: _Optional[_Iterable[_Union[GovernmentProcedure, _Mapping]]] = ..., origin: _Optional[_Iterable[_Union[Origin, _Mapping]]] = ..., packaging: _Optional[_Iterable[_Union[Packaging, _Mapping]]] = ..., previous_document: _Optional[_Iterable[_Union[PreviousDocument, _Mapping]]] = ..., seller: _Optional[_Union[Party, _Mapping]] = ..., ucr: _Optional[_Union[Ucr, _Mapping]] = ..., valuation_adjustment: _Optional[_Union[ValuationAdjustment, _Mapping]] = ...) -> None: ...

class GoodsShipment(_message.Message):
    __slots__ = ("exit_date_time", "transaction_nature_code", "aeo_mutual_recognition_party", "buyer", "consignee", "consignment", "consignor", "customs_valuation", "destination", "domestic_duty_tax_party", "export_country", "government_agency_goods_item", "importer", "invoice", "payer", "previous_document", "seller", "surety", "trade_terms", "ucr", "warehouse")
    EXIT_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_NATURE_CODE_FIELD_NUMBER: _ClassVar[int]
    AEO_MUTUAL_RECOGNITION_PARTY_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    CONSIGNEE_FIELD_NUMBER: _ClassVar[int]
    CONSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CONSIGNOR_FIELD_NUMBER: _ClassVar[int]
    CUSTOMS_VALUATION_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DOMESTIC_DUTY_TAX_PARTY_FIELD_NUMBER: _ClassVar[int]
    EXPORT_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    GOVERNMENT_AGENCY_GOODS_ITEM_FIELD_NUMBER: _ClassVar[int]
    IMPORTER_FIELD_NUMBER: _ClassVar[int]
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    PAYER_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SELLER_FIELD_NUMBER: _ClassVar[int]
    SURETY_FIELD_NUMBER: _ClassVar[int]
    TRADE_TERMS_FIELD_NUMBER: _ClassVar[int]
    UCR_FIELD_NUMBER: _ClassVar[int]
    WAREHOUSE_FIELD_NUMBER: _ClassVar[int]
    exit_date_time: DateTimeString
    transaction_nature_code: str
    aeo_mutual_recognition_party: _containers.RepeatedCompositeFieldContainer[Party]
    buyer: Party
    consignee: Party
    consignment: Consignment
    consignor: Party
    customs_valuation: CustomsValuation
    destination: Destination
    domestic_duty_tax_party: _containers.RepeatedCompositeFieldContainer[Party]
    export_country: ExportCountry
    government_agency_goods_item: _containers.RepeatedCompositeFieldContainer[GoodsItem]
    importer: Party
    invoice: Invoice
    payer: Party
    previous_document: _containers.RepeatedCompositeFieldContainer[PreviousDocument]
    seller: Party
    surety: Party
    trade_terms: TradeTerms
    ucr: Ucr
    warehouse: Warehouse
    def __init__(self, exit_date_time: _Optional[_Union[DateTimeString, _Mapping]] = ..., transaction_nature_code: _Optional[str] = ..., aeo_mutual_recognition_party: _Optional[_Iterable[_Union[Party, _Mapping]]] = ..., buyer: _Optional[_Union[Party, _Mapping]] = ..., consignee: _Optional[_Union[Party, _Mapping]] = ..., consignment: _Optional[_Union[Consignment, _Mapping]] = ..., consignor: _Optional[_Union[Party, _Mapping]] = ..., customs_valuation: _Optional[_Union[CustomsValuation, _Mapping]] = ..., destination: _Optional[_Union[Destination, _Mapping]] = ..., domestic_duty_tax_party: _Optional[_Iterable[_Union[Party, _Mapping]]] = ..., export_country: _Optional[_Union[ExportCountry, _Mapping]] = ..., government_agency_goods_item: _Optional[_Iterable[_Union[GoodsItem, _Mapping]]] = ..., importer: _Optional[_Union[Party, _Mapping]] = ..., invoice: _Optional[_Union[Invoice, _Mapping]] = ..., payer: _Optional[_Union[Party, _Mapping]] = ..., previous_document: _Optional[_Iterable[_Union[PreviousDocument, _Mapping]]] = ..., seller: _Optional[_Union[Party, _Mapping]] = ..., surety: _Optional[_Union[Party, _Mapping]] = ..., trade_terms: _Optional[_Union[TradeTerms, _Mapping]] = ..., ucr: _Optional[_Union[Ucr, _Mapping]] = ..., warehouse: _Optional[_Union[Warehouse, _Mapping]] = ...) -> None: ...

class Residue(_message.Message):
    __slots__ = ("path", "xml", "index", "attribute", "value")
    PATH_FIELD_NUMBER: _ClassVar[int]
    XML_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    path: str
    xml: bytes
    index: int
    attribute: str
    value: str
    def __init__(self, path: _Optional[str] = ..., xml: _Optional[bytes] = ..., index: _Optional[int] = ..., attribute: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class EdifactElement(_message.Message):
    __slots__ = ("components",)
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, components: _Optional[_Iterable[str]] = ...) -> None: ...

class EdifactSegment(_message.Message):
    __slots__ = ("position", "tag", "elements")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    position: int
    tag: str
    elements: _containers.RepeatedCompositeFieldContainer[EdifactElement]
    def __init__(self, position: _Optional[int] = ..., tag: _Optional[str] = ..., elements: _Optional[_Iterable[_Union[EdifactElement, _Mapping]]] = ...) -> None: ...

class EdifactResidue(_message.Message):
    __slots__ = ("segments", "suppressed", "written_shapes")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_SHAPES_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[EdifactSegment]
    suppressed: _containers.RepeatedScalarFieldContainer[int]
    written_shapes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, segments: _Optional[_Iterable[_Union[EdifactSegment, _Mapping]]] = ..., suppressed: _Optional[_Iterable[int]] = ..., written_shapes: _Optional[_Iterable[str]] = ...) -> None: ...

class DocumentMetaData(_message.Message):
    __slots__ = ("wco_data_model_version_code", "wco_type_name", "responsible_country_code", "responsible_agency_name", "agency_assigned_customization_code", "agency_assigned_customization_version_code")
    WCO_DATA_MODEL_VERSION_CODE_FIELD_NUMBER: _ClassVar[int]
    WCO_TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
    RESPONSIBLE_COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    RESPONSIBLE_AGENCY_NAME_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ASSIGNED_CUSTOMIZATION_CODE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ASSIGNED_CUSTOMIZATION_VERSION_CODE_FIELD_NUMBER: _ClassVar[int]
    wco_data_model_version_code: str
    wco_type_name: str
    responsible_country_code: str
    responsible_agency_name: str
    agency_assigned_customization_code: str
    agency_assigned_customization_version_code: str
    def __init__(self, wco_data_model_version_code: _Optional[str] = ..., wco_type_name: _Optional[str] = ..., responsible_country_code: _Optional[str] = ..., responsible_agency_name: _Optional[str] = ..., agency_assigned_customization_code: _Optional[str] = ..., agency_assigned_customization_version_code: _Optional[str] = ...) -> None: ...

class GoodsDeclaration(_message.Message):
    __slots__ = ("acceptance_date_time", "function_code", "functional_reference_id", "id", "issue_date_time", "issue_location_id", "type_code", "goods_item_quantity", "declaration_office_id", "invoice_amount", "loading_list_quantity", "total_gross_mass_measure", "total_package_quantity", "specific_circumstances_code_code", "authentication", "submitter", "additional_document", "additional_information", "agent", "amendment", "authorisation_holder", "border_transport_means", "consignment", "currency_exchange", "declarant", "exit_office", "exporter", "goods_shipment", "obligation_guarantee", "presentation_office", "supervising_office", "residue", "metadata", "edifact_residue")
    ACCEPTANCE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_CODE_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONAL_REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ISSUE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ISSUE_LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    GOODS_ITEM_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    DECLARATION_OFFICE_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    LOADING_LIST_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_GROSS_MASS_MEASURE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PACKAGE_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    SPECIFIC_CIRCUMSTANCES_CODE_CODE_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATION_FIELD_NUMBER: _ClassVar[int]
    SUBMITTER_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_INFORMATION_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    AMENDMENT_FIELD_NUMBER: _ClassVar[int]
    AUTHORISATION_HOLDER_FIELD_NUMBER: _ClassVar[int]
    BORDER_TRANSPORT_MEANS_FIELD_NUMBER: _ClassVar[int]
    CONSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    DECLARANT_FIELD_NUMBER: _ClassVar[int]
    EXIT_OFFICE_FIELD_NUMBER: _ClassVar[int]
    EXPORTER_FIELD_NUMBER: _ClassVar[int]
    GOODS_SHIPMENT_FIELD_NUMBER: _ClassVar[int]
    OBLIGATION_GUARANTEE_FIELD_NUMBER: _ClassVar[int]
    PRESENTATION_OFFICE_FIELD_NUMBER: _ClassVar[int]
    SUPERVISING_OFFICE_FIELD_NUMBER: _ClassVar[int]
    RESIDUE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EDIFACT_RESIDUE_FIELD_NUMBER: _ClassVar[int]
    acceptance_date_time: DateTimeString
    function_code: str
    functional_reference_id: str
    id: str
    issue_date_time: DateTimeString
    issue_location_id: str
    type_code: str
    goods_item_quantity: Measure
    declaration_office_id: str
    invoice_amount: Amount
    loading_list_quantity: Measure
    total_gross_mass_measure: Measure
    total_package_quantity: Measure
    specific_circumstances_code_code: str
    authentication: Authentication
    submitter: Party
    additional_document: _containers.RepeatedCompositeFieldContainer[AdditionalDocument]
    additional_information: _containers.RepeatedCompositeFieldContainer[AdditionalInformation]
    agent: Party
    amendment: _containers.RepeatedCompositeFieldContainer[Amendment]
    authorisation_holder: _containers.RepeatedCompositeFieldContainer[Party]
    border_transport_means: BorderTransportMeans
    consignment: Consignment
    currency_exchange: _containers.RepeatedCompositeFieldContainer[CurrencyExchange]
    declarant: Party
    exit_office: Office
    exporter: Party
    goods_shipment: GoodsShipment
    obligation_guarantee: _containers.RepeatedCompositeFieldContainer[ObligationGuarantee]
    presentation_office: Office
    supervising_office: Office
    residue: _containers.RepeatedCompositeFieldContainer[Residue]
    metadata: DocumentMetaData
    edifact_residue: EdifactResidue
    def __init__(self, acceptance_date_time: _Optional[_Union[DateTimeString, _Mapping]] = ..., function_code: _Optional[str] = ..., functional_reference_id: _Optional[str] = ..., id: _Optional[str] = ..., issue_date_time: _Optional[_Union[DateTimeString, _Mapping]] = ..., issue_location_id: _Optional[str] = ..., type_code: _Optional[str] = ..., goods_item_quantity: _Optional[_Union[Measure, _Mapping]] = ..., declaration_office_id: _Optional[str] = ..., invoice_amount: _Optional[_Union[Amount, _Mapping]] = ..., loading_list_quantity: _Optional[_Union[Measure, _Mapping]] = ..., total_gross_mass_measure: _Optional[_Union[Measure, _Mapping]] = ..., total_package_quantity: _Optional[_Union[Measure, _Mapping]] = ..., specific_circumstances_code_code: _Optional[str] = ..., authentication: _Optional[_Union[Authentication, _Mapping]] = ..., submitter: _Optional[_Union[Party, _Mapping]] = ..., additional_document: _Optional[_Iterable[_Union[AdditionalDocument, _Mapping]]] = ..., additional_information: _Optional[_Iterable[_Union[AdditionalInformation, _Mapping]]] = ..., agent: _Optional[_Union[Party, _Mapping]] = ..., amendment: _Optional[_Iterable[_Union[Amendment, _Mapping]]] = ..., authorisation_holder: _Optional[_Iterable[_Union[Party, _Mapping]]] = ..., border_transport_means: _Optional[_Union[BorderTransportMeans, _Mapping]] = ..., consignment: _Optional[_Union[Consignment, _Mapping]] = ..., currency_exchange: _Optional[_Iterable[_Union[CurrencyExchange, _Mapping]]] = ..., declarant: _Optional[_Union[Party, _Mapping]] = ..., exit_office: _Optional[_Union[Office, _Mapping]] = ..., exporter: _Optional[_Union[Party, _Mapping]] = ..., goods_shipment: _Optional[_Union[GoodsShipment, _Mapping]] = ..., obligation_guarantee: _Optional[_Iterable[_Union[ObligationGuarantee, _Mapping]]] = ..., presentation_office: _Optional[_Union[Office, _Mapping]] = ..., supervising_office: _Optional[_Union[Office, _Mapping]] = ..., residue: _Optional[_Iterable[_Union[Residue, _Mapping]]] = ..., metadata: _Optional[_Union[DocumentMetaData, _Mapping]] = ..., edifact_residue: _Optional[_Union[EdifactResidue, _Mapping]] = ...) -> None: ...
