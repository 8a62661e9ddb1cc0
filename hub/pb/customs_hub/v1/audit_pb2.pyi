import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hub.pb.customs_hub.v1 import trail_pb2 as _trail_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QueryRequest(_message.Message):
    __slots__ = ("since", "until", "party", "body_type", "message_id", "correlation_id", "business_key", "kinds", "oldest_first", "page_size", "page_token")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    BODY_TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_KEY_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    OLDEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    party: str
    body_type: str
    message_id: str
    correlation_id: str
    business_key: _trail_pb2.BusinessKey
    kinds: _containers.RepeatedScalarFieldContainer[str]
    oldest_first: bool
    page_size: int
    page_token: str
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., party: _Optional[str] = ..., body_type: _Optional[str] = ..., message_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., business_key: _Optional[_Union[_trail_pb2.BusinessKey, _Mapping]] = ..., kinds: _Optional[_Iterable[str]] = ..., oldest_first: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class TrailEntryView(_message.Message):
    __slots__ = ("index", "leaf", "event")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    index: int
    leaf: bytes
    event: _trail_pb2.TrailEvent
    def __init__(self, index: _Optional[int] = ..., leaf: _Optional[bytes] = ..., event: _Optional[_Union[_trail_pb2.TrailEvent, _Mapping]] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[TrailEntryView]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[TrailEntryView, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SignedCheckpoint(_message.Message):
    __slots__ = ("size", "root", "note", "signed_at")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    size: int
    root: bytes
    note: bytes
    signed_at: _timestamp_pb2.Timestamp
    def __init__(self, size: _Optional[int] = ..., root: _Optional[bytes] = ..., note: _Optional[bytes] = ..., signed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetEntryRequest(_message.Message):
    __slots__ = ("index", "tree_size")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    index: int
    tree_size: int
    def __init__(self, index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetEntryResponse(_message.Message):
    __slots__ = ("entry", "checkpoint", "inclusion_proof")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    entry: TrailEntryView
    checkpoint: SignedCheckpoint
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, entry: _Optional[_Union[TrailEntryView, _Mapping]] = ..., checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("old_size", "new_size")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class ConsistencyProof(_message.Message):
    __slots__ = ("old_size", "new_checkpoint", "proof")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_checkpoint: SignedCheckpoint
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, old_size: _Optional[int] = ..., new_checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("tree_size",)
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    def __init__(self, tree_size: _Optional[int] = ...) -> None: ...

class GetMessageRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class StoredMessage(_message.Message):
    __slots__ = ("message_id", "direction", "partner", "body_type", "envelope_digest", "envelope", "header", "body", "signed_receipt")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    BODY_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNED_RECEIPT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    direction: str
    partner: str
    body_type: str
    envelope_digest: bytes
    envelope: bytes
    header: bytes
    body: bytes
    signed_receipt: bytes
    def __init__(self, message_id: _Optional[str] = ..., direction: _Optional[str] = ..., partner: _Optional[str] = ..., body_type: _Optional[str] = ..., envelope_digest: _Optional[bytes] = ..., envelope: _Optional[bytes] = ..., header: _Optional[bytes] = ..., body: _Optional[bytes] = ..., signed_receipt: _Optional[bytes] = ...) -> None: ...

class GetMessageResponse(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[StoredMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[StoredMessage, _Mapping]]] = ...) -> None: ...

class GetKeyHandoversRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KeyHandover(_message.Message):
    __slots__ = ("checkpoint", "entry", "inclusion_proof")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    checkpoint: SignedCheckpoint
    entry: TrailEntryView
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., entry: _Optional[_Union[TrailEntryView, _Mapping]] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class KeyHandovers(_message.Message):
    __slots__ = ("handovers",)
    HANDOVERS_FIELD_NUMBER: _ClassVar[int]
    handovers: _containers.RepeatedCompositeFieldContainer[KeyHandover]
    def __init__(self, handovers: _Optional[_Iterable[_Union[KeyHandover, _Mapping]]] = ...) -> None: ...
