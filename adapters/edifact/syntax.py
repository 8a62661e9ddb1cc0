"""The UN/EDIFACT syntax layer (ISO 9735): interchange bytes to segments and back.

pydifact tokenises (separators, release character) and escapes on output. Around it this module
adds what the hub needs: the UNA service string advice read strictly, the character set that
UNB names, a number for every segment so that errors can point at it, and the interchange's
own checks (UNB first, UNZ last, every message closed by UNT, UNZ control count and reference).

Segments are numbered from 1 in interchange order, UNA included when present, so that with one
segment per line a segment's number is its line number.

What it must never do: interpret message content, or raise anything but TranslationError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydifact import Characters, Serializer, Token, Tokenizer
from pydifact import Segment as LibrarySegment
from pydifact.exceptions import EDISyntaxError

from hub.core.errors import TranslationError

SYNTAX = "edifact-syntax"
LIMIT = "limit-exceeded"

# UNB S001 0001 syntax identifier -> Python codec. UNOW is UTF-8 (ISO 9735 version 4);
# UNOY is read as UTF-8 too, as partners use it for UTF-8 in practice.
CHARSETS = {
    "UNOA": "ascii",
    "UNOB": "ascii",
    "UNOC": "latin-1",
    "UNOD": "iso8859-2",
    "UNOE": "iso8859-5",
    "UNOF": "iso8859-7",
    "UNOW": "utf-8",
    "UNOY": "utf-8",
}
_TAG = re.compile(r"[A-Z]{3}")
# C0 controls other than tab, line feed and carriage return never belong in an interchange.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_QUOTED = 12  # characters of a found value quoted in an error


def digits(text: str, most: int = 18) -> bool:
    """ASCII digits only, and few enough that int() is cheap and cannot fail ('²'.isdigit()
    is true, and int() refuses more than 4,300 digits)."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def control_character(text: str) -> str | None:
    """The first C0 control character (other than tab, CR, LF) in ``text``, if any."""
    found = _CONTROL.search(text)
    return found.group() if found else None


def quoted(value: str) -> str:
    """A found value, short enough to quote in an error message."""
    return repr(value if len(value) <= _MAX_QUOTED else value[:_MAX_QUOTED] + "...")


def syntax_error(message: str, *, line: int | None, path: str | None = None) -> TranslationError:
    return TranslationError(message, reason=SYNTAX, line=line, path=path)


@dataclass(frozen=True)
class Segment:
    """One segment: its tag, its data elements (each a tuple of components, release characters
    already removed) and its number in the interchange (0 for a segment being written)."""

    tag: str
    elements: tuple[tuple[str, ...], ...] = ()
    number: int = 0

    def component(self, element: int, component: int = 0) -> str:
        """The text of data element ``element`` (0-based, after the tag), component
        ``component``; empty when absent."""
        if element >= len(self.elements) or component >= len(self.elements[element]):
            return ""
        return self.elements[element][component]

    def where(self) -> str:
        return f"segment {self.number} {self.tag}"


def segment(tag: str, *elements: str | Sequence[str]) -> Segment:
    """A segment to write; each element is a text or a sequence of component texts."""
    return Segment(tag, tuple((e,) if isinstance(e, str) else tuple(e) for e in elements), number=0)


@dataclass(frozen=True)
class Separators:
    component: str = ":"
    data: str = "+"
    decimal: str = "."
    release: str = "?"  # "" when the UNA says there is none (a space in UNA4)
    terminator: str = "'"


@dataclass(frozen=True)
class Interchange:
    separators: Separators
    header: Segment  # UNB
    messages: tuple[tuple[Segment, ...], ...]  # each UNH..UNT inclusive
    trailer: Segment  # UNZ
    charset: str  # the UNB syntax identifier, e.g. UNOC


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_interchange(
    data: bytes, *, max_bytes: int, max_segments: int, source: str = "document"
) -> Interchange:
    """Parse one interchange. Every failure is a TranslationError: ``limit-exceeded`` for size,
    ``edifact-syntax`` with the segment number (``line``) and tag (``path``) for the rest."""
    # 1. Size, before anything is decoded.
    if len(data) > max_bytes:
        raise TranslationError(
            f"{source} is {len(data)} bytes; the limit is {max_bytes}", reason=LIMIT
        )
    # 2. Service string advice (UNA) and the syntax identifier in UNB, read as Latin-1
    #    (both are ASCII by definition), before the character set is known.
    raw = data.removeprefix(b"\xef\xbb\xbf")
    start = len(raw) - len(raw.lstrip(b" \t\r\n"))
    head = raw[start:].decode("latin-1")
    separators, body_offset, first_number = _service_string_advice(head, source)
    body_start = start + body_offset
    while body_start < len(raw) and raw[body_start : body_start + 1] in (b" ", b"\r", b"\n"):
        body_start += 1
    charset = _syntax_identifier(raw[body_start:].decode("latin-1"), separators, first_number)
    # 3. The whole body in that character set.
    try:
        body = raw[body_start:].decode(CHARSETS[charset])
    except UnicodeDecodeError as exc:
        number = first_number + _count_segments(
            raw[body_start : body_start + exc.start].decode("latin-1"), separators
        )
        raise syntax_error(
            f"{source}: byte {exc.object[exc.start]:#04x} in segment {number} is not valid "
            f"in the character set {charset} that UNB declares",
            line=number,
        ) from None
    control = _CONTROL.search(body)
    if control:
        number = first_number + _count_segments(body[: control.start()], separators)
        raise syntax_error(
            f"{source}: segment {number} contains the control character "
            f"{ord(control.group()):#04x}, which EDIFACT text never holds",
            line=number,
        )
    # 4. Segments, numbered.
    segments = list(_segments(body, separators, first_number, max_segments, source))
    # 5. The interchange envelope: UNB, messages UNH..UNT, UNZ.
    return _envelope(segments, separators, charset, source)


def _service_string_advice(head: str, source: str) -> tuple[Separators, int, int]:
    """(separators, offset of UNB in ``head``, number of the UNB segment)."""
    if not head.startswith("UNA"):
        return Separators(), 0, 1
    chars = head[3:9]
    if len(chars) != 6:
        raise syntax_error(
            f"{source}: segment 1 UNA must hold six service characters; found {len(chars)}",
            line=1,
            path="UNA",
        )
    component, data, decimal, release, terminator = (chars[i] for i in (0, 1, 2, 3, 5))
    separators = Separators(
        component=component,
        data=data,
        decimal=decimal,
        release="" if release == " " else release,
        terminator=terminator,
    )
    used = [component, data, terminator] + ([separators.release] if separators.release else [])
    if len(set(used)) != len(used):
        raise syntax_error(
            f"{source}: segment 1 UNA names the same character for two roles "
            f"(component {component!r}, data {data!r}, release {release!r}, "
            f"terminator {terminator!r})",
            line=1,
            path="UNA",
        )
    if any(c.isalnum() or c in " \r\n" for c in (component, data)) or terminator.isalnum():
        raise syntax_error(
            f"{source}: segment 1 UNA separators must be punctuation; found component "
            f"{component!r}, data {data!r}, terminator {terminator!r}",
            line=1,
            path="UNA",
        )
    if release.isalnum():
        raise syntax_error(
            f"{source}: segment 1 UNA release character must be punctuation or a space; "
            f"found {release!r}",
            line=1,
            path="UNA",
        )
    if decimal not in ".,":
        raise syntax_error(
            f"{source}: segment 1 UNA decimal mark must be '.' or ','; found {decimal!r}",
            line=1,
            path="UNA",
        )
    return separators, 9, 2


def _syntax_identifier(body: str, separators: Separators, number: int) -> str:
    if not body.startswith("UNB" + separators.data):
        found = body[:3]
        raise syntax_error(
            f"segment {number}: an interchange starts with UNB (after an optional UNA); "
            f"found {quoted(found) if found else 'nothing'}",
            line=number,
            path="UNB",
        )
    rest = body[4:]
    end = min(
        (i for i in (rest.find(separators.component), rest.find(separators.data)) if i >= 0),
        default=len(rest),
    )
    charset = rest[:end]
    if charset not in CHARSETS:
        raise syntax_error(
            f"segment {number} UNB: syntax identifier (0001) must be one of "
            f"{', '.join(sorted(CHARSETS))}; found {quoted(charset)}",
            line=number,
            path="UNB",
        )
    return charset


def _count_segments(text: str, separators: Separators) -> int:
    """How many segment terminators (not released) ``text`` holds."""
    count, released = 0, False
    for char in text:
        if released:
            released = False
        elif separators.release and char == separators.release:
            released = True
        elif char == separators.terminator:
            count += 1
    return count


def _characters(separators: Separators) -> Characters:
    characters = Characters(  # type: ignore[no-untyped-call]
        component_separator=separators.component,
        data_separator=separators.data,
        decimal_point=separators.decimal,
        escape_character=separators.release or "?",
        segment_terminator=separators.terminator,
    )
    if not separators.release:
        # No release character: NUL is refused before tokenising, so it never matches.
        characters.escape_character = "\x00"
    return characters


def _segments(
    body: str, separators: Separators, first_number: int, max_segments: int, source: str
) -> Iterator[Segment]:
    tokens = Tokenizer().get_tokens(body, _characters(separators))
    number = first_number
    tag: str | None = None
    elements: list[tuple[str, ...]] = []
    current: list[str] | None = None
    try:
        for token in tokens:
            kind = token.type
            if kind is Token.Type.CONTENT:
                if tag is None:
                    tag = token.value
                elif current is None:  # pragma: no cover - the tokenizer never does this
                    raise syntax_error(f"segment {number}: text after the tag", line=number)
                else:
                    current[-1] = token.value
                continue
            if tag is None:
                what = "ends" if kind is Token.Type.TERMINATOR else "has a separator"
                raise syntax_error(
                    f"segment {number} {what} before any tag (an empty segment)", line=number
                )
            if not _TAG.fullmatch(tag):
                raise syntax_error(
                    f"segment {number}: a segment tag is three capital letters; "
                    f"found {quoted(tag)}",
                    line=number,
                    path=tag[:3],
                )
            if kind is Token.Type.DATA_SEPARATOR:
                if current is not None:
                    elements.append(tuple(current))
                current = [""]
            elif kind is Token.Type.COMPONENT_SEPARATOR:
                if current is None:
                    raise syntax_error(
                        f"segment {number} {tag}: component separator right after the tag",
                        line=number,
                        path=tag,
                    )
                current.append("")
            else:  # terminator
                if current is not None:
                    elements.append(tuple(current))
                if number - first_number >= max_segments:
                    raise TranslationError(
                        f"{source} has more than {max_segments} segments",
                        reason=LIMIT,
                        line=number,
                        path=tag,
                    )
                yield Segment(tag, tuple(elements), number)
                number += 1
                tag, elements, current = None, [], None
    except EDISyntaxError as exc:
        where = f"segment {number}" + (f" {tag[:3]}" if tag else "")
        if "newline" in str(exc).lower():
            what = "a release character is followed by a line break, not a character it releases"
        else:
            what = f"the interchange ends without its segment terminator {separators.terminator!r}"
        raise syntax_error(f"{where}: {what}", line=number, path=tag[:3] if tag else None) from None
    except TranslationError:
        raise
    except Exception as exc:  # noqa: BLE001 - the library's own failures become ours
        raise syntax_error(
            f"segment {number}: cannot be tokenised ({type(exc).__name__})", line=number
        ) from None
    if tag is not None:
        raise syntax_error(
            f"segment {number} {tag[:3]}: the interchange ends without its segment terminator "
            f"{separators.terminator!r}",
            line=number,
            path=tag[:3],
        )


def _envelope(
    segments: list[Segment], separators: Separators, charset: str, source: str
) -> Interchange:
    header = segments[0]  # _syntax_identifier made sure the body starts with UNB
    _check_unb(header)
    if segments[-1].tag != "UNZ":
        last = segments[-1]
        raise syntax_error(
            f"{source}: the interchange must end with UNZ; the last segment is {last.where()}",
            line=last.number,
            path="UNZ",
        )
    trailer = segments[-1]
    messages: list[tuple[Segment, ...]] = []
    opened: list[Segment] | None = None
    for seg in segments[1:-1]:
        if seg.tag == "UNH":
            if opened is not None:
                raise syntax_error(
                    f"{seg.where()} starts a message before the message of {opened[0].where()} "
                    "was ended by UNT",
                    line=seg.number,
                    path="UNH",
                )
            opened = [seg]
        elif opened is None:
            if seg.tag in ("UNG", "UNE"):
                message = f"{seg.where()}: functional groups (UNG..UNE) are not supported"
            elif seg.tag in ("UNB", "UNZ", "UNA"):
                message = f"{seg.where()}: one interchange per document; {seg.tag} repeated"
            else:
                message = f"{seg.where()} is outside any message (UNH..UNT)"
            raise syntax_error(message, line=seg.number, path=seg.tag)
        else:
            opened.append(seg)
            if seg.tag == "UNT":
                messages.append(tuple(opened))
                opened = None
    if opened is not None:
        raise syntax_error(
            f"the message of {opened[0].where()} is not ended by UNT before {trailer.where()}",
            line=trailer.number,
            path="UNT",
        )
    _check_unz(header, trailer, len(messages))
    return Interchange(separators, header, tuple(messages), trailer, charset)


def _check_unb(unb: Segment) -> None:
    version = unb.component(0, 1)
    if version not in ("1", "2", "3", "4"):
        raise syntax_error(
            f"{unb.where()}: syntax version number (0002) must be 1 to 4; found {quoted(version)}",
            line=unb.number,
            path="UNB",
        )
    for index, name in ((1, "interchange sender (S002)"), (2, "interchange recipient (S003)")):
        if not unb.component(index):
            raise syntax_error(
                f"{unb.where()}: {name} is mandatory and missing",
                line=unb.number,
                path="UNB",
            )
    date, time = unb.component(3, 0), unb.component(3, 1)
    if not (digits(date) and len(date) in (6, 8) and digits(time) and len(time) == 4):
        raise syntax_error(
            f"{unb.where()}: date and time of preparation (S004) must be YYMMDD or CCYYMMDD "
            "and HHMM digits",
            line=unb.number,
            path="UNB",
        )
    reference = unb.component(4)
    if not reference or len(reference) > 14:
        raise syntax_error(
            f"{unb.where()}: interchange control reference (0020) must be 1 to 14 characters; "
            f"found {len(reference)}",
            line=unb.number,
            path="UNB",
        )


def _check_unz(unb: Segment, unz: Segment, messages: int) -> None:
    count = unz.component(0)
    if count != str(messages) and not (digits(count) and int(count) == messages):
        raise syntax_error(
            f"{unz.where()}: interchange control count (0036) says {quoted(count)}; the "
            f"interchange holds {messages} message(s)",
            line=unz.number,
            path="UNZ",
        )
    if unz.component(1) != unb.component(4):
        raise syntax_error(
            f"{unz.where()}: interchange control reference (0020) {quoted(unz.component(1))} "
            f"differs from UNB's {quoted(unb.component(4))}",
            line=unz.number,
            path="UNZ",
        )


def check_message_envelope(message: Sequence[Segment]) -> None:
    """UNT of one message: its segment count and its reference must match (edifact-syntax)."""
    unh, unt = message[0], message[-1]
    count = unt.component(0)
    if not (digits(count) and int(count) == len(message)):
        raise syntax_error(
            f"{unt.where()}: number of segments in the message (0074) says {quoted(count)}; "
            f"the message has {len(message)} segments from {unh.where()} to UNT",
            line=unt.number,
            path="UNT",
        )
    if unt.component(1) != unh.component(0):
        raise syntax_error(
            f"{unt.where()}: message reference number (0062) {quoted(unt.component(1))} "
            f"differs from UNH's {quoted(unh.component(0))}",
            line=unt.number,
            path="UNT",
        )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

WRITE_SEPARATORS = Separators()


def write_interchange(
    messages: Sequence[tuple[str, Sequence[Segment]]],
    *,
    sender: str,
    recipient: str,
    prepared: datetime,
    reference: str,
) -> bytes:
    """One interchange (UNA, UNB, the messages each given as its type, e.g. CUSRES, and its
    segments without UNH/UNT, UNZ) as bytes.

    The character set is UNOC (ISO 8859-1, syntax version 3) when every text fits it, else
    UNOW (UTF-8, syntax version 4)."""
    body: list[Segment] = []
    for index, (name, content) in enumerate(messages, start=1):
        ref = str(index)
        body.append(segment("UNH", ref, (name, "D", "96B", "UN")))
        body.extend(content)
        body.append(segment("UNT", str(len(content) + 2), ref))
    text_probe = _serialise(body)
    try:
        text_probe.encode("latin-1")
        charset, version, date = "UNOC", "3", prepared.strftime("%y%m%d")
    except UnicodeEncodeError:
        charset, version, date = "UNOW", "4", prepared.strftime("%Y%m%d")
    unb = segment(
        "UNB", (charset, version), sender, recipient, (date, prepared.strftime("%H%M")), reference
    )
    unz = segment("UNZ", str(len(messages)), reference)
    una = "UNA" + _una_string(WRITE_SEPARATORS) + "\n"
    text = una + _serialise([unb]) + text_probe + _serialise([unz])
    return text.encode("latin-1" if charset == "UNOC" else "utf-8")


def _una_string(separators: Separators) -> str:
    return (
        separators.component
        + separators.data
        + separators.decimal
        + (separators.release or " ")
        + " "
        + separators.terminator
    )


def _serialise(segments: Sequence[Segment]) -> str:
    serializer = Serializer(_characters(WRITE_SEPARATORS))
    library: list[LibrarySegment] = []
    for seg in segments:
        # Trailing empty components and data elements are omitted (ISO 9735).
        elements: list[str | list[str]] = []
        for element in seg.elements:
            parts = list(element)
            while len(parts) > 1 and not parts[-1]:
                parts.pop()
            elements.append(parts if len(parts) > 1 else "".join(parts))
        while elements and elements[-1] == "":
            elements.pop()
        item = LibrarySegment(seg.tag, "")
        item.elements = elements  # set after construction: pydifact warns on empty segments
        library.append(item)
    return serializer.serialize(library, with_una_header=False, break_lines=True)
