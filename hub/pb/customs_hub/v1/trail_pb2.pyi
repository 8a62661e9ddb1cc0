import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrailEvent(_message.Message):
    __slots__ = ("kind", "at", "message_id", "correlation_id", "sender", "recipient", "body_type", "envelope_digest", "document_digest", "reason", "detail", "keys", "outcome", "revision", "config_digest", "agreement", "policy_digest")
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    BODY_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_DIGEST_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    POLICY_DIGEST_FIELD_NUMBER: _ClassVar[int]
    kind: str
    at: _timestamp_pb2.Timestamp
    message_id: str
    correlation_id: str
    sender: str
    recipient: str
    body_type: str
    envelope_digest: bytes
    document_digest: bytes
    reason: str
    detail: str
    keys: _containers.RepeatedCompositeFieldContainer[BusinessKey]
    outcome: str
    revision: int
    config_digest: bytes
    agreement: str
    policy_digest: str
    def __init__(self, kind: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., sender: _Optional[str] = ..., recipient: _Optional[str] = ..., body_type: _Optional[str] = ..., envelope_digest: _Optional[bytes] = ..., document_digest: _Optional[bytes] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ..., keys: _Optional[_Iterable[_Union[BusinessKey, _Mapping]]] = ..., outcome: _Optional[str] = ..., revision: _Optional[int] = ..., config_digest: _Optional[bytes] = ..., agreement: _Optional[str] = ..., policy_digest: _Optional[str] = ...) -> None: ...

class BusinessKey(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
