from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Benefit(_message.Message):
    __slots__ = ("code", "sentence")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_FIELD_NUMBER: _ClassVar[int]
    code: str
    sentence: str
    def __init__(self, code: _Optional[str] = ..., sentence: _Optional[str] = ...) -> None: ...

class OperatorQuery(_message.Message):
    __slots__ = ("aeo_id", "tin", "as_of")
    AEO_ID_FIELD_NUMBER: _ClassVar[int]
    TIN_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    aeo_id: str
    tin: str
    as_of: str
    def __init__(self, aeo_id: _Optional[str] = ..., tin: _Optional[str] = ..., as_of: _Optional[str] = ...) -> None: ...

class OperatorStatus(_message.Message):
    __slots__ = ("party", "aeo_id", "tin", "name", "programme", "status", "valid_from", "valid_to", "revision", "country_code", "recognised", "reason", "reason_text", "agreement_id", "our_programme", "benefits", "trail_index", "message_id")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    AEO_ID_FIELD_NUMBER: _ClassVar[int]
    TIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROGRAMME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    RECOGNISED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_TEXT_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    OUR_PROGRAMME_FIELD_NUMBER: _ClassVar[int]
    BENEFITS_FIELD_NUMBER: _ClassVar[int]
    TRAIL_INDEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    party: str
    aeo_id: str
    tin: str
    name: str
    programme: str
    status: str
    valid_from: str
    valid_to: str
    revision: int
    country_code: str
    recognised: bool
    reason: str
    reason_text: str
    agreement_id: str
    our_programme: str
    benefits: _containers.RepeatedCompositeFieldContainer[Benefit]
    trail_index: int
    message_id: str
    def __init__(self, party: _Optional[str] = ..., aeo_id: _Optional[str] = ..., tin: _Optional[str] = ..., name: _Optional[str] = ..., programme: _Optional[str] = ..., status: _Optional[str] = ..., valid_from: _Optional[str] = ..., valid_to: _Optional[str] = ..., revision: _Optional[int] = ..., country_code: _Optional[str] = ..., recognised: _Optional[bool] = ..., reason: _Optional[str] = ..., reason_text: _Optional[str] = ..., agreement_id: _Optional[str] = ..., our_programme: _Optional[str] = ..., benefits: _Optional[_Iterable[_Union[Benefit, _Mapping]]] = ..., trail_index: _Optional[int] = ..., message_id: _Optional[str] = ...) -> None: ...

class OperatorAnswer(_message.Message):
    __slots__ = ("query", "as_of", "recognised", "statuses", "truncated")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    RECOGNISED_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    query: OperatorQuery
    as_of: str
    recognised: bool
    statuses: _containers.RepeatedCompositeFieldContainer[OperatorStatus]
    truncated: bool
    def __init__(self, query: _Optional[_Union[OperatorQuery, _Mapping]] = ..., as_of: _Optional[str] = ..., recognised: _Optional[bool] = ..., statuses: _Optional[_Iterable[_Union[OperatorStatus, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class LookupOperatorsRequest(_message.Message):
    __slots__ = ("queries",)
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[OperatorQuery]
    def __init__(self, queries: _Optional[_Iterable[_Union[OperatorQuery, _Mapping]]] = ...) -> None: ...

class LookupOperatorsResponse(_message.Message):
    __slots__ = ("answers",)
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[OperatorAnswer]
    def __init__(self, answers: _Optional[_Iterable[_Union[OperatorAnswer, _Mapping]]] = ...) -> None: ...

class ControlsQuery(_message.Message):
    __slots__ = ("mrn", "lrn", "container", "transport_document", "as_of")
    MRN_FIELD_NUMBER: _ClassVar[int]
    LRN_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    mrn: str
    lrn: str
    container: str
    transport_document: str
    as_of: str
    def __init__(self, mrn: _Optional[str] = ..., lrn: _Optional[str] = ..., container: _Optional[str] = ..., transport_document: _Optional[str] = ..., as_of: _Optional[str] = ...) -> None: ...

class ControlMatch(_message.Message):
    __slots__ = ("party", "control_id", "stage", "outcome", "control_type", "controlled_at", "office_id", "matched_by", "matched_value", "declaration_id", "functional_reference_id", "transport_document_id", "container_ids", "revision", "trail_index", "message_id", "recognised", "reason", "reason_text", "agreement_id")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    CONTROL_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CONTROL_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    OFFICE_ID_FIELD_NUMBER: _ClassVar[int]
    MATCHED_BY_FIELD_NUMBER: _ClassVar[int]
    MATCHED_VALUE_FIELD_NUMBER: _ClassVar[int]
    DECLARATION_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONAL_REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_IDS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TRAIL_INDEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECOGNISED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_TEXT_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    party: str
    control_id: str
    stage: str
    outcome: str
    control_type: str
    controlled_at: str
    office_id: str
    matched_by: str
    matched_value: str
    declaration_id: str
    functional_reference_id: str
    transport_document_id: str
    container_ids: _containers.RepeatedScalarFieldContainer[str]
    revision: int
    trail_index: int
    message_id: str
    recognised: bool
    reason: str
    reason_text: str
    agreement_id: str
    def __init__(self, party: _Optional[str] = ..., control_id: _Optional[str] = ..., stage: _Optional[str] = ..., outcome: _Optional[str] = ..., control_type: _Optional[str] = ..., controlled_at: _Optional[str] = ..., office_id: _Optional[str] = ..., matched_by: _Optional[str] = ..., matched_value: _Optional[str] = ..., declaration_id: _Optional[str] = ..., functional_reference_id: _Optional[str] = ..., transport_document_id: _Optional[str] = ..., container_ids: _Optional[_Iterable[str]] = ..., revision: _Optional[int] = ..., trail_index: _Optional[int] = ..., message_id: _Optional[str] = ..., recognised: _Optional[bool] = ..., reason: _Optional[str] = ..., reason_text: _Optional[str] = ..., agreement_id: _Optional[str] = ...) -> None: ...

class LookupControlsResponse(_message.Message):
    __slots__ = ("as_of", "controls", "truncated")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    as_of: str
    controls: _containers.RepeatedCompositeFieldContainer[ControlMatch]
    truncated: bool
    def __init__(self, as_of: _Optional[str] = ..., controls: _Optional[_Iterable[_Union[ControlMatch, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class PartyRecognition(_message.Message):
    __slots__ = ("id", "role", "role_code", "recognised", "statuses")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ROLE_CODE_FIELD_NUMBER: _ClassVar[int]
    RECOGNISED_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    id: str
    role: str
    role_code: str
    recognised: bool
    statuses: _containers.RepeatedCompositeFieldContainer[OperatorStatus]
    def __init__(self, id: _Optional[str] = ..., role: _Optional[str] = ..., role_code: _Optional[str] = ..., recognised: _Optional[bool] = ..., statuses: _Optional[_Iterable[_Union[OperatorStatus, _Mapping]]] = ...) -> None: ...

class DeclarationRecognition(_message.Message):
    __slots__ = ("as_of", "parties", "controls", "truncated")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    as_of: str
    parties: _containers.RepeatedCompositeFieldContainer[PartyRecognition]
    controls: _containers.RepeatedCompositeFieldContainer[ControlMatch]
    truncated: bool
    def __init__(self, as_of: _Optional[str] = ..., parties: _Optional[_Iterable[_Union[PartyRecognition, _Mapping]]] = ..., controls: _Optional[_Iterable[_Union[ControlMatch, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...
