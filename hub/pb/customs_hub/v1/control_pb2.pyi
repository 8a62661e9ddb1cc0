from hub.pb.customs_hub.v1 import declaration_pb2 as _declaration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ControlType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTROL_TYPE_UNSPECIFIED: _ClassVar[ControlType]
    CONTROL_TYPE_DOCUMENTARY: _ClassVar[ControlType]
    CONTROL_TYPE_PHYSICAL: _ClassVar[ControlType]
    CONTROL_TYPE_NON_INTRUSIVE: _ClassVar[ControlType]
    CONTROL_TYPE_SAMPLING: _ClassVar[ControlType]

class ControlStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTROL_STAGE_UNSPECIFIED: _ClassVar[ControlStage]
    CONTROL_STAGE_INTENDED: _ClassVar[ControlStage]
    CONTROL_STAGE_DOCUMENTS_REQUIRED: _ClassVar[ControlStage]
    CONTROL_STAGE_COMPLETED: _ClassVar[ControlStage]
    CONTROL_STAGE_RELEASED: _ClassVar[ControlStage]
    CONTROL_STAGE_CLEARED: _ClassVar[ControlStage]
    CONTROL_STAGE_DETAINED: _ClassVar[ControlStage]

class ControlOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTROL_OUTCOME_UNSPECIFIED: _ClassVar[ControlOutcome]
    CONTROL_OUTCOME_NO_FINDINGS: _ClassVar[ControlOutcome]
    CONTROL_OUTCOME_DISCREPANCY: _ClassVar[ControlOutcome]
    CONTROL_OUTCOME_SEIZURE: _ClassVar[ControlOutcome]
CONTROL_TYPE_UNSPECIFIED: ControlType
CONTROL_TYPE_DOCUMENTARY: ControlType
CONTROL_TYPE_PHYSICAL: ControlType
CONTROL_TYPE_NON_INTRUSIVE: ControlType
CONTROL_TYPE_SAMPLING: ControlType
CONTROL_STAGE_UNSPECIFIED: ControlStage
CONTROL_STAGE_INTENDED: ControlStage
CONTROL_STAGE_DOCUMENTS_REQUIRED: ControlStage
CONTROL_STAGE_COMPLETED: ControlStage
CONTROL_STAGE_RELEASED: ControlStage
CONTROL_STAGE_CLEARED: ControlStage
CONTROL_STAGE_DETAINED: ControlStage
CONTROL_OUTCOME_UNSPECIFIED: ControlOutcome
CONTROL_OUTCOME_NO_FINDINGS: ControlOutcome
CONTROL_OUTCOME_DISCREPANCY: ControlOutcome
CONTROL_OUTCOME_SEIZURE: ControlOutcome

class Finding(_message.Message):
    __slots__ = ("code", "description", "goods_item_sequence")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    GOODS_ITEM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    code: str
    description: str
    goods_item_sequence: str
    def __init__(self, code: _Optional[str] = ..., description: _Optional[str] = ..., goods_item_sequence: _Optional[str] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("media_type", "sha256", "description")
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    sha256: bytes
    description: str
    def __init__(self, media_type: _Optional[str] = ..., sha256: _Optional[bytes] = ..., description: _Optional[str] = ...) -> None: ...

class ControlResult(_message.Message):
    __slots__ = ("control_id", "declaration_id", "functional_reference_id", "transport_document_id", "container_ids", "control_type", "outcome", "findings", "seals_applied", "officer_id", "office_id", "controlled_at", "evidence", "revision", "stage", "notification_function_code", "control_result_code", "stage_code", "edifact_residue")
    CONTROL_ID_FIELD_NUMBER: _ClassVar[int]
    DECLARATION_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONAL_REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_TYPE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    SEALS_APPLIED_FIELD_NUMBER: _ClassVar[int]
    OFFICER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFICE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FUNCTION_CODE_FIELD_NUMBER: _ClassVar[int]
    CONTROL_RESULT_CODE_FIELD_NUMBER: _ClassVar[int]
    STAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    EDIFACT_RESIDUE_FIELD_NUMBER: _ClassVar[int]
    control_id: str
    declaration_id: str
    functional_reference_id: str
    transport_document_id: str
    container_ids: _containers.RepeatedScalarFieldContainer[str]
    control_type: ControlType
    outcome: ControlOutcome
    findings: _containers.RepeatedCompositeFieldContainer[Finding]
    seals_applied: _containers.RepeatedScalarFieldContainer[str]
    officer_id: str
    office_id: str
    controlled_at: str
    evidence: _containers.RepeatedCompositeFieldContainer[Evidence]
    revision: int
    stage: ControlStage
    notification_function_code: str
    control_result_code: str
    stage_code: Code
    edifact_residue: _declaration_pb2.EdifactResidue
    def __init__(self, control_id: _Optional[str] = ..., declaration_id: _Optional[str] = ..., functional_reference_id: _Optional[str] = ..., transport_document_id: _Optional[str] = ..., container_ids: _Optional[_Iterable[str]] = ..., control_type: _Optional[_Union[ControlType, str]] = ..., outcome: _Optional[_Union[ControlOutcome, str]] = ..., findings: _Optional[_Iterable[_Union[Finding, _Mapping]]] = ..., seals_applied: _Optional[_Iterable[str]] = ..., officer_id: _Optional[str] = ..., office_id: _Optional[str] = ..., controlled_at: _Optional[str] = ..., evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., revision: _Optional[int] = ..., stage: _Optional[_Union[ControlStage, str]] = ..., notification_function_code: _Optional[str] = ..., control_result_code: _Optional[str] = ..., stage_code: _Optional[_Union[Code, _Mapping]] = ..., edifact_residue: _Optional[_Union[_declaration_pb2.EdifactResidue, _Mapping]] = ...) -> None: ...

class Code(_message.Message):
    __slots__ = ("value", "list_id", "agency")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    value: str
    list_id: str
    agency: str
    def __init__(self, value: _Optional[str] = ..., list_id: _Optional[str] = ..., agency: _Optional[str] = ...) -> None: ...
