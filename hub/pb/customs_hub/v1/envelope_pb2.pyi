import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignatureAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_ALGORITHM_UNSPECIFIED: _ClassVar[SignatureAlgorithm]
    SIGNATURE_ALGORITHM_ED25519: _ClassVar[SignatureAlgorithm]
    SIGNATURE_ALGORITHM_ECDSA_P256_SHA256: _ClassVar[SignatureAlgorithm]

class ReceiptOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECEIPT_OUTCOME_UNSPECIFIED: _ClassVar[ReceiptOutcome]
    RECEIPT_OUTCOME_ACCEPTED: _ClassVar[ReceiptOutcome]
    RECEIPT_OUTCOME_DUPLICATE: _ClassVar[ReceiptOutcome]
    RECEIPT_OUTCOME_REJECTED: _ClassVar[ReceiptOutcome]
SIGNATURE_ALGORITHM_UNSPECIFIED: SignatureAlgorithm
SIGNATURE_ALGORITHM_ED25519: SignatureAlgorithm
SIGNATURE_ALGORITHM_ECDSA_P256_SHA256: SignatureAlgorithm
RECEIPT_OUTCOME_UNSPECIFIED: ReceiptOutcome
RECEIPT_OUTCOME_ACCEPTED: ReceiptOutcome
RECEIPT_OUTCOME_DUPLICATE: ReceiptOutcome
RECEIPT_OUTCOME_REJECTED: ReceiptOutcome

class Signature(_message.Message):
    __slots__ = ("key_id", "algorithm", "value", "certificate")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    algorithm: SignatureAlgorithm
    value: bytes
    certificate: bytes
    def __init__(self, key_id: _Optional[str] = ..., algorithm: _Optional[_Union[SignatureAlgorithm, str]] = ..., value: _Optional[bytes] = ..., certificate: _Optional[bytes] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("header", "body", "signatures")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    body: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[Signature]
    def __init__(self, header: _Optional[bytes] = ..., body: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[Signature, _Mapping]]] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("message_id", "correlation_id", "sender", "recipient", "body_type", "body_digest", "created_at", "expires_at", "schema_version", "traceparent")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    BODY_TYPE_FIELD_NUMBER: _ClassVar[int]
    BODY_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    correlation_id: str
    sender: str
    recipient: str
    body_type: str
    body_digest: bytes
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    schema_version: str
    traceparent: str
    def __init__(self, message_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., sender: _Optional[str] = ..., recipient: _Optional[str] = ..., body_type: _Optional[str] = ..., body_digest: _Optional[bytes] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., schema_version: _Optional[str] = ..., traceparent: _Optional[str] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("message_id", "envelope_digest", "outcome", "reason", "detail", "received_at", "receiver", "sender", "trail_index", "trail_size", "trail_root")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TRAIL_INDEX_FIELD_NUMBER: _ClassVar[int]
    TRAIL_SIZE_FIELD_NUMBER: _ClassVar[int]
    TRAIL_ROOT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    envelope_digest: bytes
    outcome: ReceiptOutcome
    reason: str
    detail: str
    received_at: _timestamp_pb2.Timestamp
    receiver: str
    sender: str
    trail_index: int
    trail_size: int
    trail_root: bytes
    def __init__(self, message_id: _Optional[str] = ..., envelope_digest: _Optional[bytes] = ..., outcome: _Optional[_Union[ReceiptOutcome, str]] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., receiver: _Optional[str] = ..., sender: _Optional[str] = ..., trail_index: _Optional[int] = ..., trail_size: _Optional[int] = ..., trail_root: _Optional[bytes] = ...) -> None: ...

class SignedReceipt(_message.Message):
    __slots__ = ("receipt", "signature", "batch")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    receipt: bytes
    signature: Signature
    batch: BatchProof
    def __init__(self, receipt: _Optional[bytes] = ..., signature: _Optional[_Union[Signature, _Mapping]] = ..., batch: _Optional[_Union[BatchProof, _Mapping]] = ...) -> None: ...

class BatchProof(_message.Message):
    __slots__ = ("index", "size", "path")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    index: int
    size: int
    path: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, index: _Optional[int] = ..., size: _Optional[int] = ..., path: _Optional[_Iterable[bytes]] = ...) -> None: ...

class EnvelopeBatch(_message.Message):
    __slots__ = ("envelopes",)
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, envelopes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ReceiptBatch(_message.Message):
    __slots__ = ("receipts",)
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[SignedReceipt]
    def __init__(self, receipts: _Optional[_Iterable[_Union[SignedReceipt, _Mapping]]] = ...) -> None: ...
