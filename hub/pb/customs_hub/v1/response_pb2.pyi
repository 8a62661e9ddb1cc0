from hub.pb.customs_hub.v1 import declaration_pb2 as _declaration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Bank(_message.Message):
    __slots__ = ("reference_id", "id")
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    reference_id: str
    id: str
    def __init__(self, reference_id: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class ContactOffice(_message.Message):
    __slots__ = ("id", "communication")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMMUNICATION_FIELD_NUMBER: _ClassVar[int]
    id: str
    communication: _containers.RepeatedCompositeFieldContainer[_declaration_pb2.Communication]
    def __init__(self, id: _Optional[str] = ..., communication: _Optional[_Iterable[_Union[_declaration_pb2.Communication, _Mapping]]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("description", "validation_code", "pointer")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_CODE_FIELD_NUMBER: _ClassVar[int]
    POINTER_FIELD_NUMBER: _ClassVar[int]
    description: str
    validation_code: str
    pointer: _containers.RepeatedCompositeFieldContainer[_declaration_pb2.Pointer]
    def __init__(self, description: _Optional[str] = ..., validation_code: _Optional[str] = ..., pointer: _Optional[_Iterable[_Union[_declaration_pb2.Pointer, _Mapping]]] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("effective_date_time", "name_code", "release_date_time", "pointer")
    EFFECTIVE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    NAME_CODE_FIELD_NUMBER: _ClassVar[int]
    RELEASE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    POINTER_FIELD_NUMBER: _ClassVar[int]
    effective_date_time: _declaration_pb2.DateTimeString
    name_code: str
    release_date_time: _declaration_pb2.DateTimeString
    pointer: _containers.RepeatedCompositeFieldContainer[_declaration_pb2.Pointer]
    def __init__(self, effective_date_time: _Optional[_Union[_declaration_pb2.DateTimeString, _Mapping]] = ..., name_code: _Optional[str] = ..., release_date_time: _Optional[_Union[_declaration_pb2.DateTimeString, _Mapping]] = ..., pointer: _Optional[_Iterable[_Union[_declaration_pb2.Pointer, _Mapping]]] = ...) -> None: ...

class ResponseCommodity(_message.Message):
    __slots__ = ("duty_tax_fee",)
    DUTY_TAX_FEE_FIELD_NUMBER: _ClassVar[int]
    duty_tax_fee: _containers.RepeatedCompositeFieldContainer[_declaration_pb2.DutyTaxFee]
    def __init__(self, duty_tax_fee: _Optional[_Iterable[_Union[_declaration_pb2.DutyTaxFee, _Mapping]]] = ...) -> None: ...

class ResponseGoodsItem(_message.Message):
    __slots__ = ("sequence_numeric", "commodity")
    SEQUENCE_NUMERIC_FIELD_NUMBER: _ClassVar[int]
    COMMODITY_FIELD_NUMBER: _ClassVar[int]
    sequence_numeric: str
    commodity: ResponseCommodity
    def __init__(self, sequence_numeric: _Optional[str] = ..., commodity: _Optional[_Union[ResponseCommodity, _Mapping]] = ...) -> None: ...

class ResponseGoodsShipment(_message.Message):
    __slots__ = ("government_agency_goods_item",)
    GOVERNMENT_AGENCY_GOODS_ITEM_FIELD_NUMBER: _ClassVar[int]
    government_agency_goods_item: _containers.RepeatedCompositeFieldContainer[ResponseGoodsItem]
    def __init__(self, government_agency_goods_item: _Optional[_Iterable[_Union[ResponseGoodsItem, _Mapping]]] = ...) -> None: ...

class ResponseDeclaration(_message.Message):
    __slots__ = ("acceptance_date_time", "cancellation_date_time", "functional_reference_id", "id", "rejection_date_time", "version_id", "duty_tax_fee", "goods_shipment")
    ACCEPTANCE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CANCELLATION_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONAL_REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REJECTION_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    DUTY_TAX_FEE_FIELD_NUMBER: _ClassVar[int]
    GOODS_SHIPMENT_FIELD_NUMBER: _ClassVar[int]
    acceptance_date_time: _declaration_pb2.DateTimeString
    cancellation_date_time: _declaration_pb2.DateTimeString
    functional_reference_id: str
    id: str
    rejection_date_time: _declaration_pb2.DateTimeString
    version_id: str
    duty_tax_fee: _containers.RepeatedCompositeFieldContainer[_declaration_pb2.DutyTaxFee]
    goods_shipment: ResponseGoodsShipment
    def __init__(self, acceptance_date_time: _Optional[_Union[_declaration_pb2.DateTimeString, _Mapping]] = ..., cancellation_date_time: _Optional[_Union[_declaration_pb2.DateTimeString, _Mapping]] = ..., functional_reference_id: _Optional[str] = ..., id: _Optional[str] = ..., rejection_date_time: _Optional[_Union[_declaration_pb2.DateTimeString, _Mapping]] = ..., version_id: _Optional[str] = ..., duty_tax_fee: _Optional[_Iterable[_Union[_declaration_pb2.DutyTaxFee, _Mapping]]] = ..., goods_shipment: _Optional[_Union[ResponseGoodsShipment, _Mapping]] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("function_code", "functional_reference_id", "issue_date_time", "additional_information", "amendment", "appeal_office", "bank", "contact_office", "error", "status", "declaration", "dec_declaration", "residue", "metadata", "further_responses", "edifact_residue")
    FUNCTION_CODE_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONAL_REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUE_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_INFORMATION_FIELD_NUMBER: _ClassVar[int]
    AMENDMENT_FIELD_NUMBER: _ClassVar[int]
    APPEAL_OFFICE_FIELD_NUMBER: _ClassVar[int]
    BANK_FIELD_NUMBER: _ClassVar[int]
    CONTACT_OFFICE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DECLARATION_FIELD_NUMBER: _ClassVar[int]
    DEC_DECLARATION_FIELD_NUMBER: _ClassVar[int]
    RESIDUE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FURTHER_RESPONSES_FIELD_NUMBER: _ClassVar[int]
    EDIFACT_RESIDUE_FIELD_NUMBER: _ClassVar[int]
    function_code: str
    functional_reference_id: str
    issue_date_time: _declaration_pb2.DateTimeString
    additional_information: _containers.RepeatedCompositeFieldContainer[_declaration_pb2.AdditionalInformation]
    amendment: _containers.RepeatedCompositeFieldContainer[_declaration_pb2.Amendment]
    appeal_office: _declaration_pb2.Office
    bank: Bank
    contact_office: _containers.RepeatedCompositeFieldContainer[ContactOffice]
    error: _containers.RepeatedCompositeFieldContainer[Error]
    status: _containers.RepeatedCompositeFieldContainer[Status]
    declaration: ResponseDeclaration
    dec_declaration: _declaration_pb2.GoodsDeclaration
    residue: _containers.RepeatedCompositeFieldContainer[_declaration_pb2.Residue]
    metadata: _declaration_pb2.DocumentMetaData
    further_responses: _containers.RepeatedCompositeFieldContainer[Response]
    edifact_residue: _declaration_pb2.EdifactResidue
    def __init__(self, function_code: _Optional[str] = ..., functional_reference_id: _Optional[str] = ..., issue_date_time: _Optional[_Union[_declaration_pb2.DateTimeString, _Mapping]] = ..., additional_information: _Optional[_Iterable[_Union[_declaration_pb2.AdditionalInformation, _Mapping]]] = ..., amendment: _Optional[_Iterable[_Union[_declaration_pb2.Amendment, _Mapping]]] = ..., appeal_office: _Optional[_Union[_declaration_pb2.Office, _Mapping]] = ..., bank: _Optional[_Union[Bank, _Mapping]] = ..., contact_office: _Optional[_Iterable[_Union[ContactOffice, _Mapping]]] = ..., error: _Optional[_Iterable[_Union[Error, _Mapping]]] = ..., status: _Optional[_Iterable[_Union[Status, _Mapping]]] = ..., declaration: _Optional[_Union[ResponseDeclaration, _Mapping]] = ..., dec_declaration: _Optional[_Union[_declaration_pb2.GoodsDeclaration, _Mapping]] = ..., residue: _Optional[_Iterable[_Union[_declaration_pb2.Residue, _Mapping]]] = ..., metadata: _Optional[_Union[_declaration_pb2.DocumentMetaData, _Mapping]] = ..., further_responses: _Optional[_Iterable[_Union[Response, _Mapping]]] = ..., edifact_residue: _Optional[_Union[_declaration_pb2.EdifactResidue, _Mapping]] = ...) -> None: ...
