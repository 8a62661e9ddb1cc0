"""The ``aeo-csv`` format: a list of AEO statuses as CSV, one ``AeoStatus`` per row.

Columns, vocabulary, reason codes and limits are documented in docs/formats/aeo-csv.md. In
short: a header row names the columns (any order, any case, ``,`` or ``;``); every data row
becomes an item, either an ``AeoStatus`` the hub accepts or a ``TranslationError`` giving the
physical line the row starts on, so one bad row never costs the good ones. Problems with the
file as a whole (not UTF-8, empty, a bad header, over a limit) refuse the whole file.

Cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab
or CR) are written with one leading apostrophe, and exactly that apostrophe is removed again
on reading, so values round-trip unchanged.

What it must never do: accept a row the hub would refuse, drop a data row without reporting
it, quote more than a short bit of a cell in an error, or write a file its own decoder would
read back differently.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from google.protobuf.message import Message

from adapters import base
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits
from hub.core.messages import AeoStatus
from hub.core.trust import PARTY_ID
from hub.pb.customs_hub.v1 import aeo_pb2

# The largest AEO programmes hold some tens of thousands of operators (the EU about 20,000
# authorisations, C-TPAT about 11,000); 100,000 rows is five times the largest and bounds the
# items one file can produce. The byte size is bounded separately by ``XmlLimits.max_bytes``.
MAX_ROWS = 100_000
# Ids and names are stored as business keys in columns 512 characters wide (current_state.key,
# trail_key.value); EORI allows 512 characters for a name as well.
MAX_ID_CHARS = 512
MAX_NAME_CHARS = 512
# A reason is a sentence or two from the issuer; 1,024 is the width of a rejection's detail.
MAX_REASON_CHARS = 1024
# Revisions are stored as a signed 64-bit integer (current_state.revision is BIGINT), so the
# proto's uint64 is narrowed to what the store holds.
MAX_REVISION = 2**63 - 1
# Characters of a cell quoted in an error message.
SHOWN_CHARS = 24

HEADER_INVALID = "csv-header-invalid"
ROW_MALFORMED = "csv-row-malformed"
FIELD_MISSING = "csv-field-missing"
FIELD_INVALID = "csv-field-invalid"
ROW_DUPLICATE = "csv-row-duplicate"

# Written in this order; read in any order.
COLUMNS = (
    "aeo_id",
    "tin",
    "name",
    "programme",
    "status",
    "valid_from",
    "valid_to",
    "revision",
    "country",
    "reason",
    "issuing_administration",
)
REQUIRED = frozenset(
    {"aeo_id", "tin", "name", "programme", "status", "valid_from", "revision", "country"}
)

PROGRAMME_CODES = {
    aeo_pb2.AEO_PROGRAMME_CUSTOMS_SIMPLIFICATIONS: "AEOC",
    aeo_pb2.AEO_PROGRAMME_SECURITY_AND_SAFETY: "AEOS",
    aeo_pb2.AEO_PROGRAMME_FULL: "AEOF",
}
STANDING_CODES = {
    aeo_pb2.AEO_STANDING_VALID: "valid",
    aeo_pb2.AEO_STANDING_SUSPENDED: "suspended",
    aeo_pb2.AEO_STANDING_REVOKED: "revoked",
}
# Read case-insensitively, as the short code or the proto enum name.
_PROGRAMMES = {
    key.upper(): value
    for value, code in PROGRAMME_CODES.items()
    for key in (code, aeo_pb2.AeoProgramme.Name(value))
}
_STANDINGS = {
    key.upper(): value
    for value, code in STANDING_CODES.items()
    for key in (code, aeo_pb2.AeoStanding.Name(value))
}
_NEEDS_REASON = frozenset({aeo_pb2.AEO_STANDING_SUSPENDED, aeo_pb2.AEO_STANDING_REVOKED})

# ISO 3166-1 alpha-2, officially assigned codes, plus two user-assigned codes customs
# administrations use: XI (Northern Ireland, EU customs) and XK (Kosovo).
_COUNTRY_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW XI XK
"""
COUNTRIES = frozenset(_COUNTRY_CODES.split())

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIGITS = re.compile(r"[0-9]{1,19}")
# Ids are one line; names and reasons may hold line breaks and tabs. No other control
# characters (C0, DEL, C1) anywhere: they hide text in spreadsheets and terminals.
_ID_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# Formula injection (OWASP "CSV injection"): these lead characters make a spreadsheet evaluate
# a cell. Such a value, or one of apostrophes then such a character, gets one more apostrophe.
_FORMULA_LEAD = "=+-@\t\r"
_PROTECTED = re.compile(r"'*[=+\-@\t\r]")
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")

# Quoted on writing: delimiters (either, for spreadsheets set to ;), quotes, line breaks and
# surrounding spaces.
_NEEDS_QUOTES = re.compile(r'[,;"\r\n]|^\s|\s$')
_BREAK = re.compile(r"\r\n?|\n")
_BYTE_BREAK = re.compile(rb"\r\n?|\n")
_BLANK_LINES = re.compile(r"(?:[ \t]*(?:\r\n?|\n))+")
# A quoted field, with optional spaces around it; possessive, so an unclosed quote fails fast.
_QUOTED = re.compile(r'[ \t]*"([^"]*+(?:""[^"]*+)*+)"[ \t]*')
_SPECIAL = {d: re.compile(f'[{d}"\\r\\n]') for d in (",", ";")}


@dataclass(frozen=True)
class AeoCsv:
    format_id: str = "aeo-csv"
    media_type: str = "text/csv"
    directions: frozenset[str] = frozenset({"decode", "encode"})
    description: str = "AEO list as CSV, one AEO status per row (header row, `,` or `;`)"
    max_bytes: int = XmlLimits().max_bytes
    max_rows: int = MAX_ROWS

    def decode_all(self, data: bytes, source: str = "document") -> list[base.Item]:
        """One item per data row, in file order; raises TranslationError for the whole file."""
        text = self._decoded(data, source)
        records = _records(text, _delimiter(text))
        header = _header(next(records, None), source)
        items: list[base.Item] = []
        first_seen: dict[tuple[str, int], int] = {}
        rows = 0
        for record in records:
            if not any(cell.strip() for cell in record.cells):
                continue  # an empty row: an empty line, or only delimiters and spaces
            rows += 1
            if rows > self.max_rows:
                raise TranslationError(
                    f"{source} holds more than {self.max_rows} rows",
                    reason="limit-exceeded",
                    line=record.line,
                )
            try:
                status = _status_of_record(record, header)
                key = (status.aeo_id, status.revision)
                if key in first_seen:
                    raise _RowError(
                        ROW_DUPLICATE,
                        f"repeats aeo_id {_shown(status.aeo_id)} with revision "
                        f"{status.revision} from line {first_seen[key]}",
                    )
            except _RowError as problem:
                error = problem.at(record.line, source, record.column)
                items.append(base.Item(None, error, record.line))
                continue
            first_seen[key] = record.line
            items.append(base.Item(status, None, record.line))
        return items

    def decode(self, data: bytes, source: str = "document") -> Message:
        items = self.decode_all(data, source)
        for item in items:
            if item.error is not None:
                raise item.error
        if len(items) != 1 or items[0].message is None:
            # Where it stops being one document: the second row, or the header of an empty list.
            line = items[1].line if len(items) > 1 else 1
            raise TranslationError(
                f"{source} holds {len(items)} rows; a single document must hold exactly one, "
                "so submit the file as a batch",
                reason="unsupported-document",
                line=line,
            )
        return items[0].message

    def encode(self, message: Message) -> bytes:
        return self.encode_all([message])

    def encode_all(self, messages: Sequence[Message]) -> bytes:
        """Header and one row per status; refuses anything it could not read back as given."""
        if len(messages) > self.max_rows:
            raise TranslationError(
                f"{len(messages)} AEO statuses given; a file holds at most {self.max_rows}",
                reason="limit-exceeded",
            )
        lines = [",".join(COLUMNS)]
        seen: set[tuple[str, int]] = set()
        for number, message in enumerate(messages, start=1):
            if not isinstance(message, AeoStatus):
                raise TranslationError(
                    f"message {number} is a {message.DESCRIPTOR.full_name}; aeo-csv holds "
                    "AEO statuses only",
                    reason="unsupported-document",
                )
            try:
                row = _row_of(message)
                key = (message.aeo_id, message.revision)
                if key in seen:
                    raise _RowError(
                        ROW_DUPLICATE,
                        f"repeats aeo_id {_shown(message.aeo_id)} with revision {message.revision}",
                    )
            except _RowError as problem:
                raise TranslationError(
                    f"message {number} {problem.sentence}",
                    reason=problem.reason,
                    path=problem.column,
                ) from None
            seen.add(key)
            lines.append(row)
        output = ("\r\n".join(lines) + "\r\n").encode()
        if len(output) > self.max_bytes:
            raise TranslationError(
                f"the AEO list is {len(output)} bytes as CSV; a file holds at most "
                f"{self.max_bytes}",
                reason="limit-exceeded",
            )
        return output

    def sniff(self, head: bytes) -> bool:
        """Whether the first line is a header naming every required column."""
        first = _BYTE_BREAK.split(head.removeprefix(b"\xef\xbb\xbf"), maxsplit=1)[0]
        try:
            line = first.decode()
        except UnicodeDecodeError:
            return False
        names = {cell.strip().strip('"').strip().lower() for cell in line.split(_delimiter(line))}
        return names >= REQUIRED

    def _decoded(self, data: bytes, source: str) -> str:
        if len(data) > self.max_bytes:
            raise TranslationError(
                f"{source} is {len(data)} bytes; the limit is {self.max_bytes}",
                reason="limit-exceeded",
            )
        body = data.removeprefix(b"\xef\xbb\xbf")
        try:
            return body.decode()
        except UnicodeDecodeError as exc:
            before = body[: exc.start].decode()
            breaks = list(_BREAK.finditer(before))
            column = len(before) - (breaks[-1].end() if breaks else 0) + 1
            raise TranslationError(
                f"{source} is not UTF-8: byte 0x{body[exc.start]:02x} at line {len(breaks) + 1}, "
                f"column {column}",
                reason="not-well-formed",
                line=len(breaks) + 1,
                column=column,
            ) from None


def aeo_csv(limits: XmlLimits) -> AeoCsv:
    return AeoCsv(max_bytes=limits.max_bytes)


# Reading: records ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Record:
    """One CSV record: the physical line it starts on and its raw cells, or why it cannot be
    split into cells (then ``cells`` holds what was read before the problem)."""

    line: int
    cells: list[str]
    problem: str | None = None
    column: int | None = None  # of the problem, when it is on the record's first line


def _delimiter(text: str) -> str:
    """``;`` when the first line has more semicolons than commas, else ``,``."""
    first = _BREAK.split(text, maxsplit=1)[0]
    return ";" if first.count(";") > first.count(",") else ","


def _records(text: str, delimiter: str) -> Iterator[_Record]:
    """RFC 4180 records (CR, LF or CRLF line breaks, which may also appear inside quotes),
    skipping empty lines, with the physical line each starts on."""
    special = _SPECIAL[delimiter]
    pos, line, line_start, end = 0, 1, 0, len(text)
    while pos < end:
        if blank := _BLANK_LINES.match(text, pos):
            span = blank.group()
            line += span.count("\n") + span.count("\r") - span.count("\r\n")
            pos = line_start = blank.end()
            continue
        brk = _BREAK.search(text, pos)
        line_end = brk.start() if brk else end
        if text.find('"', pos, line_end) < 0:  # most rows: no quotes, so one line, plain cells
            yield _Record(line, text[pos:line_end].split(delimiter))
            pos = line_start = brk.end() if brk else end
            line += 1
            continue
        first_line, cells, problem, column = line, [], None, None
        while True:
            if quoted := _QUOTED.match(text, pos):
                body = quoted.group(1)
                cells.append(body.replace('""', '"'))
                breaks = list(_BREAK.finditer(body))
                if breaks:
                    line += len(breaks)
                    line_start = quoted.start(1) + breaks[-1].end()
                pos = quoted.end()
            else:
                next_special = special.search(text, pos)
                cell_end = next_special.start() if next_special else end
                cells.append(text[pos:cell_end])
                pos = cell_end
            if pos == end:
                break
            if text[pos] == delimiter:
                pos += 1
                continue
            if brk := _BREAK.match(text, pos):
                pos = line_start = brk.end()
                line += 1
                break
            problem = _quote_problem(text, pos, quoted is not None, cells[-1])
            problem += f" at line {line}, column {pos - line_start + 1}"
            column = pos - line_start + 1 if line == first_line else None
            brk = _BREAK.search(text, pos)
            pos = line_start = brk.end() if brk else end
            line += 1
            break
        yield _Record(first_line, cells, problem, column)


def _quote_problem(text: str, pos: int, after_quoted: bool, cell: str) -> str:
    if after_quoted:
        return f"unexpected {_shown(text[pos])} after the closing quote of a quoted field"
    if not cell.strip():
        return "a quoted field is never closed"
    return "a quote inside an unquoted field (quote the whole field and double the quote)"


def _header(record: _Record | None, source: str) -> tuple[str, ...]:
    expected = f"a header row naming {', '.join(sorted(REQUIRED))}"
    if record is None:
        raise TranslationError(f"{source} is empty; expected {expected}", reason=HEADER_INVALID)
    if record.line != 1:
        raise TranslationError(
            f"{source} starts with an empty line; expected {expected} on line 1",
            reason=HEADER_INVALID,
            line=1,
        )
    if record.problem is not None:
        raise TranslationError(
            f"{source}: the header row is not valid CSV: {record.problem}",
            reason=HEADER_INVALID,
            line=1,
            column=record.column,
        )
    if not any(cell.strip() for cell in record.cells):
        raise TranslationError(
            f"{source}: line 1 names no columns; expected {expected}",
            reason=HEADER_INVALID,
            line=1,
        )
    names = tuple(cell.strip().lower() for cell in record.cells)
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise TranslationError(
            f"{source}: the header names unknown column {_shown(unknown[0])}; columns are "
            f"{', '.join(COLUMNS)}",
            reason=HEADER_INVALID,
            line=1,
        )
    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated:
        raise TranslationError(
            f"{source}: the header names column {repeated[0]} more than once",
            reason=HEADER_INVALID,
            line=1,
        )
    missing = sorted(REQUIRED - set(names))
    if missing:
        raise TranslationError(
            f"{source}: the header lacks required column(s) {', '.join(missing)}",
            reason=HEADER_INVALID,
            line=1,
        )
    return names


# Reading: one row ---------------------------------------------------------------------------


class _RowError(Exception):
    """Why one row is refused; becomes the row's TranslationError (internal)."""

    def __init__(self, reason: str, sentence: str, column: str | None = None) -> None:
        super().__init__(sentence)
        self.reason, self.sentence, self.column = reason, sentence, column

    def at(self, line: int, source: str, column: int | None = None) -> TranslationError:
        return TranslationError(
            f"{source}: the row at line {line} {self.sentence}",
            reason=self.reason,
            line=line,
            column=column,
            path=self.column,
        )


def _status_of_record(record: _Record, header: tuple[str, ...]) -> AeoStatus:
    if record.problem is not None:
        raise _RowError(ROW_MALFORMED, f"is not valid CSV: {record.problem}")
    if len(record.cells) != len(header):
        raise _RowError(
            ROW_MALFORMED,
            f"has {len(record.cells)} cells; the header names {len(header)} columns",
        )
    values = {
        name: _unprotected(cell.strip()) for name, cell in zip(header, record.cells, strict=True)
    }
    return _status_of(values)


def _status_of(values: Mapping[str, str]) -> AeoStatus:
    """The AeoStatus a row's cells (trimmed, unprotected) state, checked cell by cell."""
    status = AeoStatus(
        aeo_id=_text(values, "aeo_id", MAX_ID_CHARS, _ID_FORBIDDEN),
        tin=_text(values, "tin", MAX_ID_CHARS, _ID_FORBIDDEN),
        name=_text(values, "name", MAX_NAME_CHARS, _TEXT_FORBIDDEN),
        programme=_programme(_required(values, "programme")),
        status=_standing(_required(values, "status")),
        valid_from=_date(values, "valid_from"),
        valid_to=_date(values, "valid_to") if values.get("valid_to") else "",
        revision=_revision(_required(values, "revision")),
        country_code=_country(_required(values, "country")),
        reason=_text(values, "reason", MAX_REASON_CHARS, _TEXT_FORBIDDEN, required=False),
        issuing_administration=_party(values.get("issuing_administration", "")),
    )
    if status.valid_to and status.valid_to < status.valid_from:
        raise _RowError(
            FIELD_INVALID,
            f"has valid_to {status.valid_to} before valid_from {status.valid_from}",
            "valid_to",
        )
    if status.status in _NEEDS_REASON and not status.reason:
        raise _RowError(
            FIELD_MISSING,
            f"is {STANDING_CODES[status.status]} but gives no reason; reason is required "
            "when suspended or revoked",
            "reason",
        )
    return status


def _required(values: Mapping[str, str], column: str) -> str:
    value = values.get(column, "")
    if not value:
        raise _RowError(FIELD_MISSING, f"has no {column}; it is required", column)
    return value


def _invalid(column: str, expected: str, value: str) -> _RowError:
    return _RowError(FIELD_INVALID, f"has {column} {_shown(value)}; expected {expected}", column)


def _text(
    values: Mapping[str, str],
    column: str,
    limit: int,
    forbidden: re.Pattern[str],
    *,
    required: bool = True,
) -> str:
    value = _required(values, column) if required else values.get(column, "")
    if len(value) > limit:
        raise _RowError(
            FIELD_INVALID,
            f"has a {column} of {len(value)} characters; the limit is {limit}",
            column,
        )
    if found := forbidden.search(value):
        raise _RowError(
            FIELD_INVALID,
            f"has control character U+{ord(found.group()):04X} in {column}",
            column,
        )
    return value


def _programme(value: str) -> aeo_pb2.AeoProgramme:
    found = _PROGRAMMES.get(value.upper())
    if found is None:
        raise _invalid("programme", "AEOC, AEOS or AEOF", value)
    return found


def _standing(value: str) -> aeo_pb2.AeoStanding:
    found = _STANDINGS.get(value.upper())
    if found is None:
        raise _invalid("status", "valid, suspended or revoked", value)
    return found


def _date(values: Mapping[str, str], column: str) -> str:
    value = _required(values, column)
    try:
        if _DATE.fullmatch(value):
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise _invalid(column, "a calendar date yyyy-mm-dd", value)


def _revision(value: str) -> int:
    number = int(value) if _DIGITS.fullmatch(value) else 0
    if not 0 < number <= MAX_REVISION:
        raise _invalid("revision", f"a whole number from 1 to {MAX_REVISION}", value)
    return number


def _country(value: str) -> str:
    code = value.upper()
    if code not in COUNTRIES:
        raise _invalid("country", "an ISO 3166-1 alpha-2 country code such as NZ", value)
    return code


def _party(value: str) -> str:
    if value and not PARTY_ID.fullmatch(value):
        raise _invalid(
            "issuing_administration", "a party id such as NZ (or empty for this hub)", value
        )
    return value


def _unprotected(value: str) -> str:
    """The value without the one apostrophe that protected it from formula evaluation."""
    return value[1:] if value[:1] == "'" and _ESCAPED.match(value) else value


def _shown(value: str) -> str:
    """A short, escaped quotation of a cell for an error message."""
    if len(value) > SHOWN_CHARS:
        return repr(value[:SHOWN_CHARS]) + f"... ({len(value)} characters)"
    return repr(value)


# Writing ------------------------------------------------------------------------------------


def _cells_of(status: AeoStatus) -> dict[str, str]:
    return {
        "aeo_id": status.aeo_id,
        "tin": status.tin,
        "name": status.name,
        "programme": PROGRAMME_CODES.get(status.programme, _enum_number(status.programme)),
        "status": STANDING_CODES.get(status.status, _enum_number(status.status)),
        "valid_from": status.valid_from,
        "valid_to": status.valid_to,
        "revision": str(status.revision),
        "country": status.country_code,
        "reason": status.reason,
        "issuing_administration": status.issuing_administration,
    }


def _enum_number(value: int) -> str:
    return "" if value == 0 else str(value)  # unspecified reads as missing, others as invalid


_FIELD_COLUMNS = {"country_code": "country"}


def _row_of(message: AeoStatus) -> str:
    """The row for ``message``; raises _RowError unless it reads back as exactly ``message``."""
    cells = _cells_of(message)
    row = ",".join(_written(cells[name]) for name in COLUMNS)
    status = _status_of_record(next(_records(row, ",")), COLUMNS)
    if status == message:
        return row
    changed = [
        _FIELD_COLUMNS.get(field.name, field.name)
        for field in AeoStatus.DESCRIPTOR.fields
        if getattr(status, field.name) != getattr(message, field.name)
    ]
    raise _RowError(
        FIELD_INVALID,
        f"would read back with a different {', '.join(changed) or 'content'} (surrounding "
        "spaces, letter case or date form are not kept)",
        changed[0] if changed else None,
    )


def _written(value: str) -> str:
    """One cell as written: protected from formula evaluation, then quoted if needed."""
    if _PROTECTED.match(value):
        value = "'" + value
    if _NEEDS_QUOTES.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value
