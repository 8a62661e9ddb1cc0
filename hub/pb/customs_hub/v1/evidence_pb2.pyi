import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EvidenceBundle(_message.Message):
    __slots__ = ("format", "version", "kind", "envelope", "signed_receipt", "certificates", "leaf_index", "leaf", "inclusion_proof", "checkpoint", "crls", "exported_by", "exported_at")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_RECEIPT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CRLS_FIELD_NUMBER: _ClassVar[int]
    EXPORTED_BY_FIELD_NUMBER: _ClassVar[int]
    EXPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    format: str
    version: int
    kind: str
    envelope: bytes
    signed_receipt: bytes
    certificates: _containers.RepeatedScalarFieldContainer[bytes]
    leaf_index: int
    leaf: bytes
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: bytes
    crls: _containers.RepeatedScalarFieldContainer[bytes]
    exported_by: str
    exported_at: _timestamp_pb2.Timestamp
    def __init__(self, format: _Optional[str] = ..., version: _Optional[int] = ..., kind: _Optional[str] = ..., envelope: _Optional[bytes] = ..., signed_receipt: _Optional[bytes] = ..., certificates: _Optional[_Iterable[bytes]] = ..., leaf_index: _Optional[int] = ..., leaf: _Optional[bytes] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[bytes] = ..., crls: _Optional[_Iterable[bytes]] = ..., exported_by: _Optional[str] = ..., exported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
