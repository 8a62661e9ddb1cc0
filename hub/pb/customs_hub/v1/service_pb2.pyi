from hub.pb.customs_hub.v1 import aeo_pb2 as _aeo_pb2
from hub.pb.customs_hub.v1 import control_pb2 as _control_pb2
from hub.pb.customs_hub.v1 import declaration_pb2 as _declaration_pb2
from hub.pb.customs_hub.v1 import envelope_pb2 as _envelope_pb2
from hub.pb.customs_hub.v1 import movement_pb2 as _movement_pb2
from hub.pb.customs_hub.v1 import recognition_pb2 as _recognition_pb2
from hub.pb.customs_hub.v1 import response_pb2 as _response_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RawDocument(_message.Message):
    __slots__ = ("format", "content")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    format: str
    content: bytes
    def __init__(self, format: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("recipients", "correlation_id", "submission_id", "goods_declaration", "aeo_status", "control_result", "response", "movement_event", "raw")
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_ID_FIELD_NUMBER: _ClassVar[int]
    GOODS_DECLARATION_FIELD_NUMBER: _ClassVar[int]
    AEO_STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_RESULT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_EVENT_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    recipients: _containers.RepeatedScalarFieldContainer[str]
    correlation_id: str
    submission_id: str
    goods_declaration: _declaration_pb2.GoodsDeclaration
    aeo_status: _aeo_pb2.AeoStatus
    control_result: _control_pb2.ControlResult
    response: _response_pb2.Response
    movement_event: _movement_pb2.MovementEvent
    raw: RawDocument
    def __init__(self, recipients: _Optional[_Iterable[str]] = ..., correlation_id: _Optional[str] = ..., submission_id: _Optional[str] = ..., goods_declaration: _Optional[_Union[_declaration_pb2.GoodsDeclaration, _Mapping]] = ..., aeo_status: _Optional[_Union[_aeo_pb2.AeoStatus, _Mapping]] = ..., control_result: _Optional[_Union[_control_pb2.ControlResult, _Mapping]] = ..., response: _Optional[_Union[_response_pb2.Response, _Mapping]] = ..., movement_event: _Optional[_Union[_movement_pb2.MovementEvent, _Mapping]] = ..., raw: _Optional[_Union[RawDocument, _Mapping]] = ...) -> None: ...

class Queued(_message.Message):
    __slots__ = ("message_id", "recipient")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    recipient: str
    def __init__(self, message_id: _Optional[str] = ..., recipient: _Optional[str] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("queued", "document_digest")
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    queued: _containers.RepeatedCompositeFieldContainer[Queued]
    document_digest: bytes
    def __init__(self, queued: _Optional[_Iterable[_Union[Queued, _Mapping]]] = ..., document_digest: _Optional[bytes] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[SubmitRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[SubmitRequest, _Mapping]]] = ...) -> None: ...

class SubmitError(_message.Message):
    __slots__ = ("reason", "detail", "line", "column", "path", "wco_pointer")
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    WCO_POINTER_FIELD_NUMBER: _ClassVar[int]
    reason: str
    detail: str
    line: int
    column: int
    path: str
    wco_pointer: str
    def __init__(self, reason: _Optional[str] = ..., detail: _Optional[str] = ..., line: _Optional[int] = ..., column: _Optional[int] = ..., path: _Optional[str] = ..., wco_pointer: _Optional[str] = ...) -> None: ...

class SubmitResult(_message.Message):
    __slots__ = ("queued", "error")
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    queued: SubmitResponse
    error: SubmitError
    def __init__(self, queued: _Optional[_Union[SubmitResponse, _Mapping]] = ..., error: _Optional[_Union[SubmitError, _Mapping]] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SubmitResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SubmitResult, _Mapping]]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("subscriber", "after_cursor", "format")
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    subscriber: str
    after_cursor: int
    format: str
    def __init__(self, subscriber: _Optional[str] = ..., after_cursor: _Optional[int] = ..., format: _Optional[str] = ...) -> None: ...

class InboundMessage(_message.Message):
    __slots__ = ("cursor", "message_id", "correlation_id", "sender", "body_type", "body", "envelope_digest", "document", "document_format", "superseded", "recognition", "recognition_omitted", "document_refusal")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    BODY_TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_FIELD_NUMBER: _ClassVar[int]
    RECOGNITION_FIELD_NUMBER: _ClassVar[int]
    RECOGNITION_OMITTED_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_REFUSAL_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    message_id: str
    correlation_id: str
    sender: str
    body_type: str
    body: bytes
    envelope_digest: bytes
    document: bytes
    document_format: str
    superseded: bool
    recognition: _recognition_pb2.DeclarationRecognition
    recognition_omitted: bool
    document_refusal: str
    def __init__(self, cursor: _Optional[int] = ..., message_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., sender: _Optional[str] = ..., body_type: _Optional[str] = ..., body: _Optional[bytes] = ..., envelope_digest: _Optional[bytes] = ..., document: _Optional[bytes] = ..., document_format: _Optional[str] = ..., superseded: _Optional[bool] = ..., recognition: _Optional[_Union[_recognition_pb2.DeclarationRecognition, _Mapping]] = ..., recognition_omitted: _Optional[bool] = ..., document_refusal: _Optional[str] = ...) -> None: ...

class AcknowledgeRequest(_message.Message):
    __slots__ = ("subscriber", "cursor")
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    subscriber: str
    cursor: int
    def __init__(self, subscriber: _Optional[str] = ..., cursor: _Optional[int] = ...) -> None: ...

class AcknowledgeResponse(_message.Message):
    __slots__ = ("acknowledged_cursor",)
    ACKNOWLEDGED_CURSOR_FIELD_NUMBER: _ClassVar[int]
    acknowledged_cursor: int
    def __init__(self, acknowledged_cursor: _Optional[int] = ...) -> None: ...
