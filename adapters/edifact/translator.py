"""The ``edifact`` format: UN/EDIFACT D.96B interchanges of CUSRES and CUSDEC messages.

Reading takes four steps, each with its own error: (1) the interchange syntax and service
segments (syntax.py: UNA, UNB, UNZ, segment terminators, release characters), which refuse the
whole interchange; then, per message, (2) UNH and UNT (message type, control count), (3) the
D.96B directory check (directory.py: structure, elements, codes) and (4) the mapping
(cusres.py, cusdec.py), followed by the residue (residue.py): the segments the mapping did
not type, kept with their positions so that writing gives back the same segments. A message
failing (2) to (4) is reported alone by ``decode_all``. Writing produces CUSRES and CUSDEC,
applies the residue, and checks its own output against the directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import Message

from adapters.base import Item
from adapters.edifact import cusdec, cusres, residue
from adapters.edifact.codelists import available
from adapters.edifact.cusres import PROCESSING_INDICATOR
from adapters.edifact.directory import Checked, Directory, check_message, d96b
from adapters.edifact.syntax import (
    Segment,
    check_message_envelope,
    control_character,
    quoted,
    read_interchange,
    segment,
    write_interchange,
)
from hub.core.codelists import NO_CODE_LISTS, CodeList, CodeLists
from hub.core.errors import TranslationError

UNSUPPORTED = "unsupported-document"
# The directory and release this translator checks against (UNH S009 0052/0054/0051).
VERSION = ("D", "96B", "UN")
# A CUSDEC with every group at its maximum is far larger than any real one; 8 MiB of
# segments of ~30 bytes each is ~280,000 segments, so this bounds memory before the size does.
MAX_SEGMENTS = 300_000
DEFAULT_SENDER = "CUSTOMS-HUB"
DEFAULT_RECIPIENT = "PARTNER"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Edifact:
    max_bytes: int
    format_id: str = "edifact"
    media_type: str = "application/EDIFACT"  # RFC 1767
    directions: frozenset[str] = frozenset({"decode", "encode"})
    description: str = (
        "UN/EDIFACT D.96B interchange: CUSRES to/from responses and control results, "
        "CUSDEC to/from goods declarations"
    )
    max_segments: int = MAX_SEGMENTS
    sender: str = DEFAULT_SENDER  # UNB S002 0004 written
    recipient: str = DEFAULT_RECIPIENT  # UNB S003 0010 written
    clock: Callable[[], datetime] = field(default=_now, compare=False)
    # the code lists other agencies' codes are checked and mapped with (codelists.py)
    code_lists: CodeLists = NO_CODE_LISTS

    def with_code_lists(self, configured: CodeLists) -> Edifact:
        """This translator with the shipped and plugins' code lists and ``configured``
        (hub.toml's [code_lists]): how the format registry hands a hub's lists over."""
        return dataclasses.replace(self, code_lists=available(configured))

    # ---- reading ----------------------------------------------------------------------------

    def decode(self, data: bytes, source: str = "document") -> Message:
        items = self.decode_all(data, source)
        if len(items) != 1:
            raise TranslationError(
                f"{source} holds {len(items)} messages; decode takes an interchange of exactly "
                "one (use decode_all for several)",
                reason=UNSUPPORTED,
                # the second message's UNH, where the interchange stops being one document
                line=items[1].line if len(items) > 1 else 1,
            )
        item = items[0]
        if item.error is not None:
            raise item.error
        assert item.message is not None  # noqa: S101 - an Item holds a message or an error
        return item.message

    def decode_all(self, data: bytes, source: str = "document") -> list[Item]:
        """One Item per UNH..UNT message, its ``line`` the segment number of its UNH; a bad
        message's error carries the number of the failing segment itself."""
        interchange = read_interchange(
            data, max_bytes=self.max_bytes, max_segments=self.max_segments, source=source
        )
        directory = d96b()
        items = []
        for message in interchange.messages:
            try:
                read = _read_message(message, directory, self.code_lists)
                items.append(Item(read, line=message[0].number))
            except TranslationError as exc:
                items.append(Item(None, error=exc, line=message[0].number))
        return items

    def sniff(self, head: bytes) -> bool:
        start = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
        return start.startswith((b"UNA", b"UNB+"))

    # ---- writing ----------------------------------------------------------------------------

    def encode(self, message: Message) -> bytes:
        return self.encode_all([message])

    def encode_all(self, messages: Sequence[Message]) -> bytes:
        """One interchange. A Response's ``further_responses`` become messages of their own,
        after it."""
        if not messages:
            raise TranslationError("no message to write", reason=UNSUPPORTED)
        directory = d96b()
        contents: list[tuple[str, list[Segment]]] = []
        for message in messages:
            for single in _flattened(message):
                contents.append(_write_message(single, directory, self.code_lists))
        digest = hashlib.sha256()
        for _, content in contents:
            for seg in content:
                digest.update(repr((seg.tag, seg.elements)).encode())
        # The reference identifies the interchange to the partner; derived from its content so
        # that writing the same messages twice gives the same bytes.
        reference = digest.hexdigest()[:14].upper()
        return write_interchange(
            contents,
            sender=self.sender,
            recipient=self.recipient,
            prepared=self.clock(),
            reference=reference,
        )


def _flattened(message: Message) -> list[Message]:
    if isinstance(message, cusres.Response) and message.further_responses:
        head = cusres.Response()
        head.CopyFrom(message)
        head.ClearField("further_responses")
        return [head, *message.further_responses]
    return [message]


def _read_message(
    message: tuple[Segment, ...], directory: Directory, code_lists: CodeLists = NO_CODE_LISTS
) -> Message:
    unh = message[0]
    name = unh.component(1, 0)
    version = (unh.component(1, 1), unh.component(1, 2), unh.component(1, 3))
    if name not in ("CUSRES", "CUSDEC"):
        raise TranslationError(
            f"{unh.where()}: message type {quoted(name)} is not read; the edifact format reads "
            "CUSRES and CUSDEC",
            reason=UNSUPPORTED,
            line=unh.number,
            path="UNH",
        )
    if version != VERSION:
        raise TranslationError(
            f"{unh.where()}: {name} of directory {quoted(':'.join(version))} is not read; "
            "only D:96B:UN",
            reason=UNSUPPORTED,
            line=unh.number,
            path="UNH",
        )
    check_message_envelope(message)
    checked = check_message(name, message, directory, code_lists)
    typed = _typed_message(name, checked, code_lists)
    try:
        _, written = _typed_segments(typed)
    except TranslationError:
        # The writer cannot write these typed fields (a status code of another agency that
        # would read back as a D.96B one): the residue keeps every segment, and writing gives
        # them back as they were, checked against the typed fields (_check_agrees).
        written = []
    kept = residue.compute(message[1:-1], written)
    if kept.segments or kept.suppressed:
        typed.edifact_residue.CopyFrom(kept)  # type: ignore[attr-defined]
    return typed


def _typed_message(name: str, checked: Checked, code_lists: CodeLists) -> Message:
    """The typed message a checked CUSDEC or CUSRES reads as (without its residue)."""
    if name == "CUSDEC":
        return cusdec.read_goods_declaration(checked.root)
    stage = cusres.control_stage(checked.root, code_lists)
    if stage is None:
        return cusres.read_response(checked.root)
    result = cusres.read_control_result(checked.root, stage.stage)
    if stage.code is not None:
        result.stage_code.CopyFrom(stage.code)
    return result


def _with_sender_stage(message: Message, code_lists: CodeLists) -> CodeLists:
    """``code_lists`` and, for a ControlResult whose stage the sender's list mapped from a code
    of its own (``stage_code``) that this hub has no list for, that one mapping: the code the
    residue writes reads back as the stage the message sets."""
    code = getattr(message, "stage_code", None)
    if code is None or not message.HasField("stage_code"):
        return code_lists
    if code_lists.find(code.agency, PROCESSING_INDICATOR, code.list_id) is not None:
        return code_lists
    senders = CodeList(
        "sender-stage-code",
        code.agency,
        PROCESSING_INDICATOR,
        ((code.value, "as its sender mapped it"),),
        qualifier=code.list_id,
        closed=False,
        stages=((code.value, message.stage),),  # type: ignore[attr-defined]
    )
    return CodeLists((*code_lists.lists, senders))


def _check_agrees(message: Message, name: str, checked: Checked, code_lists: CodeLists) -> None:
    """With a residue applied, the message written must read back with every field the
    message sets as it is set: a residue (a partner's protobuf) may not suppress a typed
    segment and put another value in its place (an MRN, a stage), so that the domestic system
    reads what the hub's checks, keys and trail never saw. Fields the message does not set (a
    sharing policy cut them) may read back from the residue (docs/agreements.md)."""
    kind = message.DESCRIPTOR.name
    try:
        back = _typed_message(name, checked, _with_sender_stage(message, code_lists))
    except TranslationError as exc:
        raise TranslationError(
            f"{kind} cannot be written as {name}: with its residue it does not read back: "
            f"{exc.message}",
            reason="schema-invalid",
            line=exc.line,
            path=exc.path,
        ) from None
    if back.DESCRIPTOR is not message.DESCRIPTOR:
        raise TranslationError(
            f"{kind} cannot be written as {name}: with its residue it reads back as a "
            f"{back.DESCRIPTOR.name}",
            reason="schema-invalid",
            path="edifact_residue",
        )
    for described, value in message.ListFields():
        if described.name == "edifact_residue":
            continue
        if getattr(back, described.name) != value:
            raise TranslationError(
                f"{kind} cannot be written as {name}: with its residue, {described.name} would "
                "read back other than the message sets it (the residue replaces a typed "
                "segment)",
                reason="schema-invalid",
                path="edifact_residue",
            )


_WHOLE = {
    cusres.ControlResult.DESCRIPTOR.full_name: "CUSRES",
    cusres.Response.DESCRIPTOR.full_name: "CUSRES",
    cusdec.GoodsDeclaration.DESCRIPTOR.full_name: "CUSDEC",
}


def _whole_residue(message: Message) -> bool:
    """The message keeps every segment it was read from in its residue (no typed segment was
    written when it was read, so no shape was recorded)."""
    if not message.HasField("edifact_residue"):
        return False
    kept = message.edifact_residue  # type: ignore[attr-defined]
    return bool(kept.segments) and not kept.written_shapes and not kept.suppressed


def _typed_segments(message: Message) -> tuple[str, list[Segment]]:
    """(message type, segments between UNH and UNT) of the typed fields alone."""
    if isinstance(message, cusres.ControlResult):
        return "CUSRES", cusres.write_control_result(message)
    if isinstance(message, cusres.Response):
        return "CUSRES", cusres.write_response(message)
    if isinstance(message, cusdec.GoodsDeclaration):
        return "CUSDEC", cusdec.write_goods_declaration(message)
    raise TranslationError(
        f"{message.DESCRIPTOR.full_name} cannot be written as EDIFACT; the edifact format "
        "writes ControlResult and Response (as CUSRES) and GoodsDeclaration (as CUSDEC)",
        reason=UNSUPPORTED,
    )


def _write_message(
    message: Message, directory: Directory, code_lists: CodeLists = NO_CODE_LISTS
) -> tuple[str, list[Segment]]:
    kind = message.DESCRIPTOR.name
    try:
        name, content = _typed_segments(message)
    except TranslationError as exc:
        # A message read whole into its residue (see _read_message) is written from it.
        name = _WHOLE.get(message.DESCRIPTOR.full_name, "")
        if not name or not _whole_residue(message):
            raise
        if exc.reason == UNSUPPORTED:
            raise
        content = []
    if message.HasField("edifact_residue"):
        content = residue.apply(
            message.edifact_residue,  # type: ignore[attr-defined]
            content,
            kind,
            MAX_SEGMENTS,
        )
    if len(content) + 2 > MAX_SEGMENTS:
        raise TranslationError(
            f"{kind} would be written as {len(content) + 2} segments; the limit is {MAX_SEGMENTS}",
            reason="limit-exceeded",
        )
    # Check the message as a partner will: numbered as it will be written.
    whole = [
        segment("UNH", "1", (name, *VERSION)),
        *content,
        segment("UNT", str(len(content) + 2), "1"),
    ]
    numbered = [Segment(s.tag, s.elements, number) for number, s in enumerate(whole, start=1)]
    for seg in numbered:
        found = next(filter(None, (control_character(c) for e in seg.elements for c in e)), None)
        if found is not None:
            raise TranslationError(
                f"{kind} cannot be written as {name}: {seg.where()} would hold the control "
                f"character {ord(found):#04x}, which EDIFACT text never holds",
                reason="schema-invalid",
                line=seg.number,
                path=seg.tag,
            )
    try:
        checked = check_message(name, numbered, directory, code_lists)
    except TranslationError as exc:
        raise TranslationError(
            f"{kind} cannot be written as {name} D.96B: {exc.message}",
            reason="schema-invalid",
            line=exc.line,
            path=exc.path,
        ) from None
    if message.HasField("edifact_residue"):
        _check_agrees(message, name, checked, code_lists)
    return name, content
