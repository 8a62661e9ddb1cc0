from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AeoProgramme(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AEO_PROGRAMME_UNSPECIFIED: _ClassVar[AeoProgramme]
    AEO_PROGRAMME_SECURITY_AND_SAFETY: _ClassVar[AeoProgramme]
    AEO_PROGRAMME_CUSTOMS_SIMPLIFICATIONS: _ClassVar[AeoProgramme]
    AEO_PROGRAMME_FULL: _ClassVar[AeoProgramme]

class AeoStanding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AEO_STANDING_UNSPECIFIED: _ClassVar[AeoStanding]
    AEO_STANDING_VALID: _ClassVar[AeoStanding]
    AEO_STANDING_SUSPENDED: _ClassVar[AeoStanding]
    AEO_STANDING_REVOKED: _ClassVar[AeoStanding]
AEO_PROGRAMME_UNSPECIFIED: AeoProgramme
AEO_PROGRAMME_SECURITY_AND_SAFETY: AeoProgramme
AEO_PROGRAMME_CUSTOMS_SIMPLIFICATIONS: AeoProgramme
AEO_PROGRAMME_FULL: AeoProgramme
AEO_STANDING_UNSPECIFIED: AeoStanding
AEO_STANDING_VALID: AeoStanding
AEO_STANDING_SUSPENDED: AeoStanding
AEO_STANDING_REVOKED: AeoStanding

class AeoStatus(_message.Message):
    __slots__ = ("issuing_administration", "aeo_id", "tin", "name", "programme", "status", "valid_from", "valid_to", "revision", "country_code", "reason")
    ISSUING_ADMINISTRATION_FIELD_NUMBER: _ClassVar[int]
    AEO_ID_FIELD_NUMBER: _ClassVar[int]
    TIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROGRAMME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    issuing_administration: str
    aeo_id: str
    tin: str
    name: str
    programme: AeoProgramme
    status: AeoStanding
    valid_from: str
    valid_to: str
    revision: int
    country_code: str
    reason: str
    def __init__(self, issuing_administration: _Optional[str] = ..., aeo_id: _Optional[str] = ..., tin: _Optional[str] = ..., name: _Optional[str] = ..., programme: _Optional[_Union[AeoProgramme, str]] = ..., status: _Optional[_Union[AeoStanding, str]] = ..., valid_from: _Optional[str] = ..., valid_to: _Optional[str] = ..., revision: _Optional[int] = ..., country_code: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
