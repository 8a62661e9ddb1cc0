from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AeoQuery(_message.Message):
    __slots__ = ("aeo_ids",)
    AEO_IDS_FIELD_NUMBER: _ClassVar[int]
    aeo_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, aeo_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AeoQueryAnswer(_message.Message):
    __slots__ = ("query_id", "query_digest", "statuses", "not_found", "deferred")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    query_digest: bytes
    statuses: _containers.RepeatedScalarFieldContainer[bytes]
    not_found: _containers.RepeatedScalarFieldContainer[str]
    deferred: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, query_id: _Optional[str] = ..., query_digest: _Optional[bytes] = ..., statuses: _Optional[_Iterable[bytes]] = ..., not_found: _Optional[_Iterable[str]] = ..., deferred: _Optional[_Iterable[str]] = ...) -> None: ...

class AeoRange(_message.Message):
    __slots__ = ("from_id", "to_id")
    FROM_ID_FIELD_NUMBER: _ClassVar[int]
    TO_ID_FIELD_NUMBER: _ClassVar[int]
    from_id: str
    to_id: str
    def __init__(self, from_id: _Optional[str] = ..., to_id: _Optional[str] = ...) -> None: ...

class AeoSnapshotRequest(_message.Message):
    __slots__ = ("ranges",)
    RANGES_FIELD_NUMBER: _ClassVar[int]
    ranges: _containers.RepeatedCompositeFieldContainer[AeoRange]
    def __init__(self, ranges: _Optional[_Iterable[_Union[AeoRange, _Mapping]]] = ...) -> None: ...

class AeoEntry(_message.Message):
    __slots__ = ("aeo_id", "revision")
    AEO_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    aeo_id: str
    revision: int
    def __init__(self, aeo_id: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class AeoRangeDigest(_message.Message):
    __slots__ = ("range", "count", "root", "middle", "entries")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    MIDDLE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    range: AeoRange
    count: int
    root: bytes
    middle: str
    entries: _containers.RepeatedCompositeFieldContainer[AeoEntry]
    def __init__(self, range: _Optional[_Union[AeoRange, _Mapping]] = ..., count: _Optional[int] = ..., root: _Optional[bytes] = ..., middle: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[AeoEntry, _Mapping]]] = ...) -> None: ...

class AeoSnapshot(_message.Message):
    __slots__ = ("query_id", "query_digest", "ranges")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_DIGEST_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    query_digest: bytes
    ranges: _containers.RepeatedCompositeFieldContainer[AeoRangeDigest]
    def __init__(self, query_id: _Optional[str] = ..., query_digest: _Optional[bytes] = ..., ranges: _Optional[_Iterable[_Union[AeoRangeDigest, _Mapping]]] = ...) -> None: ...

class QueryPartnerRequest(_message.Message):
    __slots__ = ("partner", "aeo_ids")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    AEO_IDS_FIELD_NUMBER: _ClassVar[int]
    partner: str
    aeo_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partner: _Optional[str] = ..., aeo_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class FetchedStatus(_message.Message):
    __slots__ = ("aeo_id", "revision", "outcome", "reason", "trail_index", "message_id")
    AEO_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRAIL_INDEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    aeo_id: str
    revision: int
    outcome: str
    reason: str
    trail_index: int
    message_id: str
    def __init__(self, aeo_id: _Optional[str] = ..., revision: _Optional[int] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., trail_index: _Optional[int] = ..., message_id: _Optional[str] = ...) -> None: ...

class QueryPartnerReport(_message.Message):
    __slots__ = ("partner", "statuses", "not_found")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    partner: str
    statuses: _containers.RepeatedCompositeFieldContainer[FetchedStatus]
    not_found: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partner: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[FetchedStatus, _Mapping]]] = ..., not_found: _Optional[_Iterable[str]] = ...) -> None: ...

class SyncPartnerRequest(_message.Message):
    __slots__ = ("partner",)
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    partner: str
    def __init__(self, partner: _Optional[str] = ...) -> None: ...

class SyncPartnerReport(_message.Message):
    __slots__ = ("partner", "partner_count", "partner_root", "count_before", "root_before", "count_after", "root_after", "snapshot_calls", "ranges_compared", "rounds", "fetched", "only_here", "newer_here", "complete", "converged")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    PARTNER_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ROOT_FIELD_NUMBER: _ClassVar[int]
    COUNT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ROOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    COUNT_AFTER_FIELD_NUMBER: _ClassVar[int]
    ROOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_CALLS_FIELD_NUMBER: _ClassVar[int]
    RANGES_COMPARED_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    FETCHED_FIELD_NUMBER: _ClassVar[int]
    ONLY_HERE_FIELD_NUMBER: _ClassVar[int]
    NEWER_HERE_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    CONVERGED_FIELD_NUMBER: _ClassVar[int]
    partner: str
    partner_count: int
    partner_root: bytes
    count_before: int
    root_before: bytes
    count_after: int
    root_after: bytes
    snapshot_calls: int
    ranges_compared: int
    rounds: int
    fetched: _containers.RepeatedCompositeFieldContainer[FetchedStatus]
    only_here: _containers.RepeatedScalarFieldContainer[str]
    newer_here: _containers.RepeatedScalarFieldContainer[str]
    complete: bool
    converged: bool
    def __init__(self, partner: _Optional[str] = ..., partner_count: _Optional[int] = ..., partner_root: _Optional[bytes] = ..., count_before: _Optional[int] = ..., root_before: _Optional[bytes] = ..., count_after: _Optional[int] = ..., root_after: _Optional[bytes] = ..., snapshot_calls: _Optional[int] = ..., ranges_compared: _Optional[int] = ..., rounds: _Optional[int] = ..., fetched: _Optional[_Iterable[_Union[FetchedStatus, _Mapping]]] = ..., only_here: _Optional[_Iterable[str]] = ..., newer_here: _Optional[_Iterable[str]] = ..., complete: _Optional[bool] = ..., converged: _Optional[bool] = ...) -> None: ...
