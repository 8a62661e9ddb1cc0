from hub.pb.customs_hub.v1 import declaration_pb2 as _declaration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MovementDocument(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOVEMENT_DOCUMENT_UNSPECIFIED: _ClassVar[MovementDocument]
    MOVEMENT_DOCUMENT_MOVEMENT_REQUEST: _ClassVar[MovementDocument]
    MOVEMENT_DOCUMENT_CONSOLIDATION_REQUEST: _ClassVar[MovementDocument]
    MOVEMENT_DOCUMENT_QUERY_REQUEST: _ClassVar[MovementDocument]
    MOVEMENT_DOCUMENT_MOVEMENT_RESPONSE: _ClassVar[MovementDocument]
    MOVEMENT_DOCUMENT_CONTROL_RESPONSE: _ClassVar[MovementDocument]
    MOVEMENT_DOCUMENT_QUERY_RESPONSE: _ClassVar[MovementDocument]
    MOVEMENT_DOCUMENT_MOVEMENT_TOTALS_RESPONSE: _ClassVar[MovementDocument]
    MOVEMENT_DOCUMENT_IMPORTS_GOODS_ARRIVAL: _ClassVar[MovementDocument]
    MOVEMENT_DOCUMENT_IMPORTS_VALIDATE_MOVEMENT_REQUEST: _ClassVar[MovementDocument]
    MOVEMENT_DOCUMENT_IMPORTS_VALIDATE_MOVEMENT_RESPONSE: _ClassVar[MovementDocument]

class MovementKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOVEMENT_KIND_UNSPECIFIED: _ClassVar[MovementKind]
    MOVEMENT_KIND_ARRIVAL: _ClassVar[MovementKind]
    MOVEMENT_KIND_DEPARTURE: _ClassVar[MovementKind]
    MOVEMENT_KIND_ARRIVAL_ADVICE: _ClassVar[MovementKind]
    MOVEMENT_KIND_RETROSPECTIVE_ARRIVAL: _ClassVar[MovementKind]
    MOVEMENT_KIND_SHUT_CONSOLIDATION: _ClassVar[MovementKind]
    MOVEMENT_KIND_ASSOCIATION: _ClassVar[MovementKind]
    MOVEMENT_KIND_QUERY: _ClassVar[MovementKind]
    MOVEMENT_KIND_TOTALS: _ClassVar[MovementKind]
    MOVEMENT_KIND_DECLARATION_SUMMARY: _ClassVar[MovementKind]
    MOVEMENT_KIND_CONTROL: _ClassVar[MovementKind]
    MOVEMENT_KIND_VALIDATION: _ClassVar[MovementKind]
MOVEMENT_DOCUMENT_UNSPECIFIED: MovementDocument
MOVEMENT_DOCUMENT_MOVEMENT_REQUEST: MovementDocument
MOVEMENT_DOCUMENT_CONSOLIDATION_REQUEST: MovementDocument
MOVEMENT_DOCUMENT_QUERY_REQUEST: MovementDocument
MOVEMENT_DOCUMENT_MOVEMENT_RESPONSE: MovementDocument
MOVEMENT_DOCUMENT_CONTROL_RESPONSE: MovementDocument
MOVEMENT_DOCUMENT_QUERY_RESPONSE: MovementDocument
MOVEMENT_DOCUMENT_MOVEMENT_TOTALS_RESPONSE: MovementDocument
MOVEMENT_DOCUMENT_IMPORTS_GOODS_ARRIVAL: MovementDocument
MOVEMENT_DOCUMENT_IMPORTS_VALIDATE_MOVEMENT_REQUEST: MovementDocument
MOVEMENT_DOCUMENT_IMPORTS_VALIDATE_MOVEMENT_RESPONSE: MovementDocument
MOVEMENT_KIND_UNSPECIFIED: MovementKind
MOVEMENT_KIND_ARRIVAL: MovementKind
MOVEMENT_KIND_DEPARTURE: MovementKind
MOVEMENT_KIND_ARRIVAL_ADVICE: MovementKind
MOVEMENT_KIND_RETROSPECTIVE_ARRIVAL: MovementKind
MOVEMENT_KIND_SHUT_CONSOLIDATION: MovementKind
MOVEMENT_KIND_ASSOCIATION: MovementKind
MOVEMENT_KIND_QUERY: MovementKind
MOVEMENT_KIND_TOTALS: MovementKind
MOVEMENT_KIND_DECLARATION_SUMMARY: MovementKind
MOVEMENT_KIND_CONTROL: MovementKind
MOVEMENT_KIND_VALIDATION: MovementKind

class MovementEvent(_message.Message):
    __slots__ = ("document", "kind", "message_code", "agent_details", "ucr_block", "goods_location", "goods_arrival_date_time", "goods_departure_date_time", "shed_opid", "master_ucr", "master_opt", "movement_reference", "transport_details", "crc", "submit_role", "goods_item", "entry_status", "action_code", "control_ucr", "error", "query_ucr", "queried_ducr", "queried_mucr", "parent_mucr", "child_ducr", "child_mucr", "declaration_count", "master_roe", "master_soe", "entry", "entry_number", "entry_version_number", "inventory_consignment_reference", "transport_nationality", "agent_location", "agent_role", "declaration_method", "date_of_entry", "goods_arrival_declaration", "ics", "irc", "roe", "trader_reference", "total_packages", "residue")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    AGENT_DETAILS_FIELD_NUMBER: _ClassVar[int]
    UCR_BLOCK_FIELD_NUMBER: _ClassVar[int]
    GOODS_LOCATION_FIELD_NUMBER: _ClassVar[int]
    GOODS_ARRIVAL_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    GOODS_DEPARTURE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SHED_OPID_FIELD_NUMBER: _ClassVar[int]
    MASTER_UCR_FIELD_NUMBER: _ClassVar[int]
    MASTER_OPT_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DETAILS_FIELD_NUMBER: _ClassVar[int]
    CRC_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_ROLE_FIELD_NUMBER: _ClassVar[int]
    GOODS_ITEM_FIELD_NUMBER: _ClassVar[int]
    ENTRY_STATUS_FIELD_NUMBER: _ClassVar[int]
    ACTION_CODE_FIELD_NUMBER: _ClassVar[int]
    CONTROL_UCR_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    QUERY_UCR_FIELD_NUMBER: _ClassVar[int]
    QUERIED_DUCR_FIELD_NUMBER: _ClassVar[int]
    QUERIED_MUCR_FIELD_NUMBER: _ClassVar[int]
    PARENT_MUCR_FIELD_NUMBER: _ClassVar[int]
    CHILD_DUCR_FIELD_NUMBER: _ClassVar[int]
    CHILD_MUCR_FIELD_NUMBER: _ClassVar[int]
    DECLARATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    MASTER_ROE_FIELD_NUMBER: _ClassVar[int]
    MASTER_SOE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    ENTRY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ENTRY_VERSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_CONSIGNMENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_NATIONALITY_FIELD_NUMBER: _ClassVar[int]
    AGENT_LOCATION_FIELD_NUMBER: _ClassVar[int]
    AGENT_ROLE_FIELD_NUMBER: _ClassVar[int]
    DECLARATION_METHOD_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_ENTRY_FIELD_NUMBER: _ClassVar[int]
    GOODS_ARRIVAL_DECLARATION_FIELD_NUMBER: _ClassVar[int]
    ICS_FIELD_NUMBER: _ClassVar[int]
    IRC_FIELD_NUMBER: _ClassVar[int]
    ROE_FIELD_NUMBER: _ClassVar[int]
    TRADER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PACKAGES_FIELD_NUMBER: _ClassVar[int]
    RESIDUE_FIELD_NUMBER: _ClassVar[int]
    document: MovementDocument
    kind: MovementKind
    message_code: str
    agent_details: MovementAgentDetails
    ucr_block: MovementUcr
    goods_location: str
    goods_arrival_date_time: str
    goods_departure_date_time: str
    shed_opid: str
    master_ucr: str
    master_opt: str
    movement_reference: str
    transport_details: MovementTransport
    crc: str
    submit_role: str
    goods_item: _containers.RepeatedCompositeFieldContainer[MovementGoodsItem]
    entry_status: MovementEntryStatus
    action_code: str
    control_ucr: MovementUcr
    error: _containers.RepeatedCompositeFieldContainer[MovementError]
    query_ucr: MovementUcr
    queried_ducr: MovementDucr
    queried_mucr: MovementMucr
    parent_mucr: MovementMucr
    child_ducr: _containers.RepeatedCompositeFieldContainer[MovementDucr]
    child_mucr: _containers.RepeatedCompositeFieldContainer[MovementMucr]
    declaration_count: str
    master_roe: str
    master_soe: str
    entry: _containers.RepeatedCompositeFieldContainer[MovementEntry]
    entry_number: str
    entry_version_number: str
    inventory_consignment_reference: str
    transport_nationality: str
    agent_location: str
    agent_role: str
    declaration_method: str
    date_of_entry: str
    goods_arrival_declaration: str
    ics: str
    irc: str
    roe: str
    trader_reference: str
    total_packages: str
    residue: _containers.RepeatedCompositeFieldContainer[_declaration_pb2.Residue]
    def __init__(self, document: _Optional[_Union[MovementDocument, str]] = ..., kind: _Optional[_Union[MovementKind, str]] = ..., message_code: _Optional[str] = ..., agent_details: _Optional[_Union[MovementAgentDetails, _Mapping]] = ..., ucr_block: _Optional[_Union[MovementUcr, _Mapping]] = ..., goods_location: _Optional[str] = ..., goods_arrival_date_time: _Optional[str] = ..., goods_departure_date_time: _Optional[str] = ..., shed_opid: _Optional[str] = ..., master_ucr: _Optional[str] = ..., master_opt: _Optional[str] = ..., movement_reference: _Optional[str] = ..., transport_details: _Optional[_Union[MovementTransport, _Mapping]] = ..., crc: _Optional[str] = ..., submit_role: _Optional[str] = ..., goods_item: _Optional[_Iterable[_Union[MovementGoodsItem, _Mapping]]] = ..., entry_status: _Optional[_Union[MovementEntryStatus, _Mapping]] = ..., action_code: _Optional[str] = ..., control_ucr: _Optional[_Union[MovementUcr, _Mapping]] = ..., error: _Optional[_Iterable[_Union[MovementError, _Mapping]]] = ..., query_ucr: _Optional[_Union[MovementUcr, _Mapping]] = ..., queried_ducr: _Optional[_Union[MovementDucr, _Mapping]] = ..., queried_mucr: _Optional[_Union[MovementMucr, _Mapping]] = ..., parent_mucr: _Optional[_Union[MovementMucr, _Mapping]] = ..., child_ducr: _Optional[_Iterable[_Union[MovementDucr, _Mapping]]] = ..., child_mucr: _Optional[_Iterable[_Union[MovementMucr, _Mapping]]] = ..., declaration_count: _Optional[str] = ..., master_roe: _Optional[str] = ..., master_soe: _Optional[str] = ..., entry: _Optional[_Iterable[_Union[MovementEntry, _Mapping]]] = ..., entry_number: _Optional[str] = ..., entry_version_number: _Optional[str] = ..., inventory_consignment_reference: _Optional[str] = ..., transport_nationality: _Optional[str] = ..., agent_location: _Optional[str] = ..., agent_role: _Optional[str] = ..., declaration_method: _Optional[str] = ..., date_of_entry: _Optional[str] = ..., goods_arrival_declaration: _Optional[str] = ..., ics: _Optional[str] = ..., irc: _Optional[str] = ..., roe: _Optional[str] = ..., trader_reference: _Optional[str] = ..., total_packages: _Optional[str] = ..., residue: _Optional[_Iterable[_Union[_declaration_pb2.Residue, _Mapping]]] = ...) -> None: ...

class MovementUcr(_message.Message):
    __slots__ = ("ucr", "ucr_part_no", "ucr_type")
    UCR_FIELD_NUMBER: _ClassVar[int]
    UCR_PART_NO_FIELD_NUMBER: _ClassVar[int]
    UCR_TYPE_FIELD_NUMBER: _ClassVar[int]
    ucr: str
    ucr_part_no: str
    ucr_type: str
    def __init__(self, ucr: _Optional[str] = ..., ucr_part_no: _Optional[str] = ..., ucr_type: _Optional[str] = ...) -> None: ...

class MovementAgentDetails(_message.Message):
    __slots__ = ("eori", "agent_location", "agent_role")
    EORI_FIELD_NUMBER: _ClassVar[int]
    AGENT_LOCATION_FIELD_NUMBER: _ClassVar[int]
    AGENT_ROLE_FIELD_NUMBER: _ClassVar[int]
    eori: str
    agent_location: str
    agent_role: str
    def __init__(self, eori: _Optional[str] = ..., agent_location: _Optional[str] = ..., agent_role: _Optional[str] = ...) -> None: ...

class MovementTransport(_message.Message):
    __slots__ = ("transport_id", "transport_mode", "transport_nationality")
    TRANSPORT_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_MODE_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_NATIONALITY_FIELD_NUMBER: _ClassVar[int]
    transport_id: str
    transport_mode: str
    transport_nationality: str
    def __init__(self, transport_id: _Optional[str] = ..., transport_mode: _Optional[str] = ..., transport_nationality: _Optional[str] = ...) -> None: ...

class MovementGoodsItem(_message.Message):
    __slots__ = ("commodity_code", "total_packages", "total_net_mass")
    COMMODITY_CODE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PACKAGES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_NET_MASS_FIELD_NUMBER: _ClassVar[int]
    commodity_code: str
    total_packages: str
    total_net_mass: str
    def __init__(self, commodity_code: _Optional[str] = ..., total_packages: _Optional[str] = ..., total_net_mass: _Optional[str] = ...) -> None: ...

class MovementEntryStatus(_message.Message):
    __slots__ = ("ics", "roe", "soe")
    ICS_FIELD_NUMBER: _ClassVar[int]
    ROE_FIELD_NUMBER: _ClassVar[int]
    SOE_FIELD_NUMBER: _ClassVar[int]
    ics: str
    roe: str
    soe: str
    def __init__(self, ics: _Optional[str] = ..., roe: _Optional[str] = ..., soe: _Optional[str] = ...) -> None: ...

class MovementError(_message.Message):
    __slots__ = ("error_code",)
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    error_code: str
    def __init__(self, error_code: _Optional[str] = ...) -> None: ...

class MovementRecord(_message.Message):
    __slots__ = ("message_code", "goods_location", "goods_arrival_date_time", "goods_departure_date_time", "movement_reference", "transport_details")
    MESSAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    GOODS_LOCATION_FIELD_NUMBER: _ClassVar[int]
    GOODS_ARRIVAL_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    GOODS_DEPARTURE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DETAILS_FIELD_NUMBER: _ClassVar[int]
    message_code: str
    goods_location: str
    goods_arrival_date_time: str
    goods_departure_date_time: str
    movement_reference: str
    transport_details: MovementTransport
    def __init__(self, message_code: _Optional[str] = ..., goods_location: _Optional[str] = ..., goods_arrival_date_time: _Optional[str] = ..., goods_departure_date_time: _Optional[str] = ..., movement_reference: _Optional[str] = ..., transport_details: _Optional[_Union[MovementTransport, _Mapping]] = ...) -> None: ...

class MovementDucr(_message.Message):
    __slots__ = ("ucr", "parent_mucr", "declaration_id", "entry_status", "movement", "goods_item")
    UCR_FIELD_NUMBER: _ClassVar[int]
    PARENT_MUCR_FIELD_NUMBER: _ClassVar[int]
    DECLARATION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_STATUS_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_FIELD_NUMBER: _ClassVar[int]
    GOODS_ITEM_FIELD_NUMBER: _ClassVar[int]
    ucr: str
    parent_mucr: str
    declaration_id: str
    entry_status: MovementEntryStatus
    movement: _containers.RepeatedCompositeFieldContainer[MovementRecord]
    goods_item: _containers.RepeatedCompositeFieldContainer[MovementGoodsItem]
    def __init__(self, ucr: _Optional[str] = ..., parent_mucr: _Optional[str] = ..., declaration_id: _Optional[str] = ..., entry_status: _Optional[_Union[MovementEntryStatus, _Mapping]] = ..., movement: _Optional[_Iterable[_Union[MovementRecord, _Mapping]]] = ..., goods_item: _Optional[_Iterable[_Union[MovementGoodsItem, _Mapping]]] = ...) -> None: ...

class MovementMucr(_message.Message):
    __slots__ = ("ucr", "parent_mucr", "entry_status", "shut", "movement")
    UCR_FIELD_NUMBER: _ClassVar[int]
    PARENT_MUCR_FIELD_NUMBER: _ClassVar[int]
    ENTRY_STATUS_FIELD_NUMBER: _ClassVar[int]
    SHUT_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_FIELD_NUMBER: _ClassVar[int]
    ucr: str
    parent_mucr: str
    entry_status: MovementEntryStatus
    shut: str
    movement: _containers.RepeatedCompositeFieldContainer[MovementRecord]
    def __init__(self, ucr: _Optional[str] = ..., parent_mucr: _Optional[str] = ..., entry_status: _Optional[_Union[MovementEntryStatus, _Mapping]] = ..., shut: _Optional[str] = ..., movement: _Optional[_Iterable[_Union[MovementRecord, _Mapping]]] = ...) -> None: ...

class MovementEntry(_message.Message):
    __slots__ = ("ucr_block", "goods_item", "submit_role", "entry_status")
    UCR_BLOCK_FIELD_NUMBER: _ClassVar[int]
    GOODS_ITEM_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_ROLE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_STATUS_FIELD_NUMBER: _ClassVar[int]
    ucr_block: MovementUcr
    goods_item: _containers.RepeatedCompositeFieldContainer[MovementGoodsItem]
    submit_role: str
    entry_status: MovementEntryStatus
    def __init__(self, ucr_block: _Optional[_Union[MovementUcr, _Mapping]] = ..., goods_item: _Optional[_Iterable[_Union[MovementGoodsItem, _Mapping]]] = ..., submit_role: _Optional[str] = ..., entry_status: _Optional[_Union[MovementEntryStatus, _Mapping]] = ...) -> None: ...
