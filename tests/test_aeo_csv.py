"""The ``aeo-csv`` format (adapters/aeocsv.py, docs/formats/aeo-csv.md): AEO lists as CSV.

A realistic list with bad rows among good ones (each bad row's line and reason), every refusal
of a whole file, the tolerated variants (delimiter, BOM, line breaks, case, spaces), formula
injection, sniffing, single-document decoding, and properties: encoding round-trips, line
numbers follow the physical lines, and any input decodes or raises TranslationError.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import base, formats
from adapters.aeocsv import (
    COLUMNS,
    COUNTRIES,
    MAX_REVISION,
    MAX_ROWS,
    PROGRAMME_CODES,
    SHOWN_CHARS,
    STANDING_CODES,
    AeoCsv,
    aeo_csv,
)
from hub.app.submission import check_submission
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits
from hub.core.messages import AeoStatus, ControlResult, business_keys
from hub.pb.customs_hub.v1 import aeo_pb2

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "aeo-csv"
OPERATORS = (DATA / "operators.csv").read_bytes()
CSV = aeo_csv(XmlLimits())
HEADER = ",".join(COLUMNS)
GOOD_ROW = "NZAEO1,NZ9429041000011,Kiwi Fresh Exports Ltd,AEOS,valid,2019-03-01,,4,NZ,,"

# operators.csv: the line each bad row starts on, its reason and the column it names.
OPERATORS_BAD = {
    8: ("csv-field-invalid", "valid_from"),  # 2025-02-30
    11: ("csv-field-invalid", "programme"),  # AEO-X, right after a name on lines 9-10
    15: ("csv-field-missing", "tin"),
    16: ("csv-field-missing", "reason"),  # suspended without a reason
    18: ("csv-field-invalid", "valid_to"),  # before valid_from
    19: ("csv-field-invalid", "revision"),  # 0
    21: ("csv-field-invalid", "country"),  # ZZ
    22: ("csv-row-malformed", None),  # 10 cells
    24: ("csv-row-malformed", None),  # a quote inside an unquoted name
    26: ("csv-row-duplicate", None),  # NZAEO10001 revision 4 again
    28: ("csv-field-invalid", "issuing_administration"),  # "nz"
    32: ("csv-field-invalid", "status"),  # active
    39: ("csv-field-invalid", "revision"),  # 12a
}
# Line 13 is empty; lines 10 and 30-31 continue quoted cells.
OPERATORS_GOOD = {2, 3, 4, 5, 6, 7, 9, 12, 14, 17, 20, 23, 25, 27, 29, 33, 34, 35, 36, 37, 38}
OPERATORS_GOOD |= {40, 41}


def status(**fields: object) -> AeoStatus:
    values: dict[str, object] = {
        "aeo_id": "NZAEO1",
        "tin": "NZ9429041000011",
        "name": "Kiwi Fresh Exports Ltd",
        "programme": aeo_pb2.AEO_PROGRAMME_SECURITY_AND_SAFETY,
        "status": aeo_pb2.AEO_STANDING_VALID,
        "valid_from": "2019-03-01",
        "revision": 4,
        "country_code": "NZ",
    }
    values.update(fields)
    return AeoStatus(**values)  # type: ignore[arg-type]


def one_row(row: str, header: str = HEADER) -> base.Item:
    items = CSV.decode_all(f"{header}\r\n{row}\r\n".encode(), "list.csv")
    assert len(items) == 1
    return items[0]


def refusal(item: base.Item) -> TranslationError:
    assert item.message is None
    assert item.error is not None
    return item.error


# A realistic list ---------------------------------------------------------------------------


def test_operator_list_reports_each_bad_row_at_its_line() -> None:
    items = CSV.decode_all(OPERATORS, "operators.csv")

    bad = {item.line: item.error for item in items if item.error is not None}
    assert {line: (e.reason, e.path) for line, e in bad.items()} == OPERATORS_BAD
    assert {item.line for item in items if item.message is not None} == OPERATORS_GOOD
    for line, error in bad.items():
        assert error.line == line
        assert f"line {line}" in error.message
        assert error.path is None or error.path in error.message
    assert all((item.message is None) != (item.error is None) for item in items)


def test_operator_list_values_are_read_as_the_issuer_meant() -> None:
    by_line = {item.line: item.message for item in CSV.decode_all(OPERATORS, "operators.csv")}

    assert by_line[4] == status(
        aeo_id="NZAEO10003",
        tin="NZ9429041000035",
        name="Tasman Cold Chain, Ltd",
        programme=aeo_pb2.AEO_PROGRAMME_FULL,
        valid_from="2018-01-10",
        revision=7,
        issuing_administration="NZ",
    )
    assert isinstance(by_line[5], AeoStatus)
    assert by_line[5].name == 'Harbour "Blue" Logistics Ltd'
    assert by_line[5].status == aeo_pb2.AEO_STANDING_SUSPENDED
    assert by_line[5].reason == "Security audit findings under review"
    assert isinstance(by_line[6], AeoStatus)
    assert by_line[6].name == "+Plus Couriers Ltd"  # the protecting apostrophe is removed
    assert isinstance(by_line[9], AeoStatus)
    assert by_line[9].name == "Pacific Rim Trading Ltd\n(trading as PacRim)"
    assert isinstance(by_line[29], AeoStatus)
    assert by_line[29].reason.count("\n") == 2
    assert by_line[33] == status(  # aeoc, Valid and nz, normalised
        aeo_id="NZAEO10026",
        tin="NZ9429041000264",
        name="Timaru Fishing Co Ltd",
        programme=aeo_pb2.AEO_PROGRAMME_CUSTOMS_SIMPLIFICATIONS,
        valid_from="2018-08-18",
        revision=5,
    )
    assert by_line[34] == status(
        aeo_id="NZAEO10027",
        tin="NZ9429041000271",
        name="Invercargill Aluminium Traders Ltd",
        valid_from="2016-09-09",
        revision=10,
    )
    assert isinstance(by_line[35], AeoStatus)
    assert by_line[35].programme == aeo_pb2.AEO_PROGRAMME_FULL  # enum names are read too
    assert by_line[35].status == aeo_pb2.AEO_STANDING_VALID
    assert isinstance(by_line[37], AeoStatus)
    assert by_line[37].name == "=Equals Trading Ltd"


def test_lowercase_codes_are_normalised() -> None:
    item = one_row("NZAEO1,NZ1,Timaru Fishing Co Ltd,aeoc,Valid,2018-08-18,,5,nz,,")
    assert item.message == status(
        tin="NZ1",
        name="Timaru Fishing Co Ltd",
        programme=aeo_pb2.AEO_PROGRAMME_CUSTOMS_SIMPLIFICATIONS,
        valid_from="2018-08-18",
        revision=5,
    )


def test_accepted_rows_are_accepted_by_the_hub() -> None:
    accepted = [i.message for i in CSV.decode_all(OPERATORS, "x") if i.message is not None]
    assert len(accepted) == len(OPERATORS_GOOD)
    for message in accepted:
        assert isinstance(message, AeoStatus)
        check_submission(message, "NZ")  # raises SubmissionError if the hub would refuse it
        assert message.issuing_administration == "NZ"
        assert message.revision > 0  # the hub keeps the issuer's numbering
        assert business_keys(message)["aeo"] == [message.aeo_id]


# Row refusals -------------------------------------------------------------------------------

BAD_CELLS = [
    # column, value, reason
    ("aeo_id", "", "csv-field-missing"),
    ("aeo_id", "NZ\x00AEO", "csv-field-invalid"),
    ("aeo_id", "NZ\nAEO", "csv-field-invalid"),
    ("aeo_id", "A" * 513, "csv-field-invalid"),
    ("tin", "", "csv-field-missing"),
    ("tin", "NZ\x1b[31m", "csv-field-invalid"),
    ("name", "", "csv-field-missing"),
    ("name", "N" * 513, "csv-field-invalid"),
    ("name", "Kiwi\x85Ltd", "csv-field-invalid"),
    ("programme", "", "csv-field-missing"),
    ("programme", "AEO", "csv-field-invalid"),
    ("programme", "AEO_PROGRAMME_UNSPECIFIED", "csv-field-invalid"),
    ("programme", "1", "csv-field-invalid"),
    ("status", "", "csv-field-missing"),
    ("status", "AEO_STANDING_UNSPECIFIED", "csv-field-invalid"),
    ("status", "expired", "csv-field-invalid"),
    ("valid_from", "", "csv-field-missing"),
    ("valid_from", "01/03/2019", "csv-field-invalid"),
    ("valid_from", "20190301", "csv-field-invalid"),
    ("valid_from", "2019-3-1", "csv-field-invalid"),
    ("valid_from", "2019-03-01T00:00:00", "csv-field-invalid"),
    ("valid_from", "0000-01-01", "csv-field-invalid"),
    ("valid_from", "٢٠١٩-03-01", "csv-field-invalid"),  # Arabic-Indic digits
    ("valid_to", "2019-02-28", "csv-field-invalid"),  # before valid_from
    ("valid_to", "2019-13-01", "csv-field-invalid"),
    ("revision", "", "csv-field-missing"),
    ("revision", "0", "csv-field-invalid"),
    ("revision", "-1", "csv-field-invalid"),
    ("revision", "+1", "csv-field-invalid"),
    ("revision", "1.0", "csv-field-invalid"),
    ("revision", "1e3", "csv-field-invalid"),
    ("revision", "٣", "csv-field-invalid"),
    ("revision", str(MAX_REVISION + 1), "csv-field-invalid"),
    ("revision", "9" * 5000, "csv-field-invalid"),
    ("country", "", "csv-field-missing"),
    ("country", "NZL", "csv-field-invalid"),
    ("country", "ZZ", "csv-field-invalid"),
    ("country", "EU", "csv-field-invalid"),
    ("reason", "R" * 1025, "csv-field-invalid"),
    ("reason", "bell\x07", "csv-field-invalid"),
    ("issuing_administration", "nz", "csv-field-invalid"),
    ("issuing_administration", "N", "csv-field-invalid"),
    ("issuing_administration", "NZ CUSTOMS", "csv-field-invalid"),
    ("issuing_administration", "A" * 17, "csv-field-invalid"),
]


def row_with(column: str, value: str) -> str:
    cells = dict(zip(COLUMNS, GOOD_ROW.split(","), strict=True))
    cells[column] = '"' + value.replace('"', '""') + '"'
    return ",".join(cells[name] for name in COLUMNS)


@pytest.mark.parametrize(("column", "value", "reason"), BAD_CELLS)
def test_bad_cell_is_refused_naming_its_column(column: str, value: str, reason: str) -> None:
    error = refusal(one_row(row_with(column, value)))

    assert (error.reason, error.path, error.line) == (reason, column, 2)
    assert column in error.message
    assert "line 2" in error.message
    assert len(error.message) < 200  # never more than a short bit of the value


def test_error_quotes_only_a_short_escaped_bit_of_the_value() -> None:
    secret = "2019-" + "S" * 5000
    error = refusal(one_row(row_with("valid_from", secret)))

    assert "S" * (SHOWN_CHARS + 1) not in error.message
    assert "5005 characters" in error.message
    error = refusal(one_row(row_with("country", "\x1b[2J")))
    assert "\x1b" not in error.message
    assert "\\x1b" in error.message


def test_limits_on_cells_are_inclusive() -> None:
    for column, limit in (("aeo_id", 512), ("tin", 512), ("name", 512), ("reason", 1024)):
        assert one_row(row_with(column, "A" * limit)).message is not None
        assert refusal(one_row(row_with(column, "A" * (limit + 1)))).path == column
    item = one_row(row_with("revision", str(MAX_REVISION)))
    assert isinstance(item.message, AeoStatus)
    assert item.message.revision == 2**63 - 1


def test_reason_is_required_when_suspended_or_revoked() -> None:
    for standing in ("suspended", "revoked"):
        error = refusal(one_row(GOOD_ROW.replace("valid", standing)))
        assert (error.reason, error.path) == ("csv-field-missing", "reason")
        assert standing in error.message
    row = GOOD_ROW.replace(",valid,", ",revoked,").removesuffix(",,") + ",Conditions not met,"
    item = one_row(row)
    assert isinstance(item.message, AeoStatus)
    assert item.message.reason == "Conditions not met"


def test_optional_columns_may_be_left_out() -> None:
    header = "aeo_id,tin,name,programme,status,valid_from,revision,country"
    item = one_row(
        "NZAEO1,NZ9429041000011,Kiwi Fresh Exports Ltd,AEOS,valid,2019-03-01,4,NZ", header
    )
    assert item.message == status()
    error = refusal(one_row("NZAEO1,NZ1,Kiwi,AEOS,revoked,2019-03-01,4,NZ", header))
    assert (error.reason, error.path) == ("csv-field-missing", "reason")


@pytest.mark.parametrize(
    ("row", "found"),
    [
        (GOOD_ROW + ",", "12 cells"),
        (GOOD_ROW.removesuffix(","), "10 cells"),
        ('NZAEO1,NZ1,Bob\'s "Best" Freight,AEOS,valid,2019-03-01,,4,NZ,,', "inside an unquoted"),
        ('NZAEO1,NZ1,"Kiwi" Ltd,AEOS,valid,2019-03-01,,4,NZ,,', "after the closing quote"),
    ],
)
def test_malformed_row_is_refused_and_the_next_row_read(row: str, found: str) -> None:
    items = CSV.decode_all(f"{HEADER}\n{row}\n{GOOD_ROW}\n".encode(), "list.csv")

    error = refusal(items[0])
    assert (error.reason, error.line) == ("csv-row-malformed", 2)
    assert found in error.message
    assert (items[1].line, items[1].message) == (3, status())


def test_unclosed_quote_is_refused_and_reading_resumes_on_the_next_line() -> None:
    data = f'{HEADER}\nNZAEO2,NZ2,"Kiwi Ltd,AEOS\n{GOOD_ROW}\n'.encode()
    items = CSV.decode_all(data, "list.csv")

    assert [item.line for item in items] == [2, 3]
    error = refusal(items[0])
    assert error.reason == "csv-row-malformed"
    assert "never closed" in error.message
    assert items[1].message == status()


def test_quote_closed_by_a_later_row_takes_in_the_lines_between() -> None:
    quoted = GOOD_ROW.replace("NZAEO1", "NZAEO3").replace("Kiwi Fresh Exports Ltd", '"Q, Ltd"')
    second = GOOD_ROW.replace("NZAEO1", "NZAEO2")
    data = f'{HEADER}\nNZAEO0,NZ0,"Kiwi Ltd,AEOS\n{second}\n{quoted}\n{GOOD_ROW}\n'.encode()
    items = CSV.decode_all(data, "list.csv")

    assert [item.line for item in items] == [2, 5]
    assert refusal(items[0]).reason == "csv-row-malformed"
    assert items[1].message == status()


def test_duplicate_aeo_id_and_revision_is_refused_on_the_second_row() -> None:
    newer = GOOD_ROW.replace(",4,", ",5,")
    items = CSV.decode_all(f"{HEADER}\n{GOOD_ROW}\n{newer}\n{GOOD_ROW}\n".encode(), "x")

    assert [item.message is not None for item in items] == [True, True, False]
    error = refusal(items[2])
    assert (error.reason, error.line) == ("csv-row-duplicate", 4)
    assert "from line 2" in error.message
    other_operator = GOOD_ROW.replace("NZAEO1", "NZAEO2")
    assert len(CSV.decode_all(f"{HEADER}\n{GOOD_ROW}\n{other_operator}\n".encode())) == 2


def test_empty_rows_are_skipped_without_moving_line_numbers() -> None:
    data = f"{HEADER}\n\n   \n,,,,,,,,,,\n , \n{GOOD_ROW}\n\n".encode()
    items = CSV.decode_all(data, "x")

    assert [(item.line, item.message) for item in items] == [(6, status())]


# Whole-file refusals ------------------------------------------------------------------------

FILE_REFUSALS = [
    # name, data, reason, line, column
    ("not UTF-8", f"{HEADER}\n{GOOD_ROW}\nNZ\xe9\n".encode("latin-1"), "not-well-formed", 3, 3),
    ("UTF-16", f"{HEADER}\n".encode("utf-16"), "not-well-formed", 1, 1),
    ("truncated UTF-8", f"{HEADER}\n".encode() + "é".encode()[:1], "not-well-formed", 2, 1),
    ("empty", b"", "csv-header-invalid", None, None),
    ("only a BOM", b"\xef\xbb\xbf", "csv-header-invalid", None, None),
    ("only line breaks", b"\r\n\r\n\n", "csv-header-invalid", None, None),
    ("only spaces", b"   ", "csv-header-invalid", 1, None),
    ("only delimiters", b";;;\nx;y\n", "csv-header-invalid", 1, None),
    ("empty first line", f"\n{HEADER}\n{GOOD_ROW}\n".encode(), "csv-header-invalid", 1, None),
    ("no header", f"{GOOD_ROW}\n".encode(), "csv-header-invalid", 1, None),
    ("unknown column", f"{HEADER},remarks\n".encode(), "csv-header-invalid", 1, None),
    (
        "renamed column",
        HEADER.replace("country", "country_code").encode(),
        "csv-header-invalid",
        1,
        None,
    ),
    ("trailing delimiter", f"{HEADER},\n".encode(), "csv-header-invalid", 1, None),
    ("repeated column", f"{HEADER},TIN\n".encode(), "csv-header-invalid", 1, None),
    ("missing column", HEADER.replace("revision,", "").encode(), "csv-header-invalid", 1, None),
    ("quote in header", f'{HEADER},re"mark\n'.encode(), "csv-header-invalid", 1, len(HEADER) + 4),
    ("unclosed header", f'"{HEADER}\n'.encode(), "csv-header-invalid", 1, 1),
]


@pytest.mark.parametrize(
    ("data", "reason", "line", "column"),
    [pytest.param(*case[1:], id=case[0]) for case in FILE_REFUSALS],
)
def test_unreadable_file_is_refused_whole(
    data: bytes, reason: str, line: int | None, column: int | None
) -> None:
    with pytest.raises(TranslationError) as caught:
        CSV.decode_all(data, "list.csv")

    assert (caught.value.reason, caught.value.line, caught.value.column) == (reason, line, column)
    assert "list.csv" in caught.value.message
    with pytest.raises(TranslationError):
        CSV.decode(data, "list.csv")


def test_header_refusal_names_the_column() -> None:
    cases = {
        f"{HEADER},remarks": "'remarks'",
        f"{HEADER},TIN": "tin more than once",
        HEADER.replace("revision,", "").replace("tin,", ""): "revision, tin",
    }
    for header, named in cases.items():
        with pytest.raises(TranslationError) as caught:
            CSV.decode_all(header.encode())
        assert named in caught.value.message


def test_file_size_limit_is_enforced() -> None:
    data = f"{HEADER}\r\n{GOOD_ROW}\r\n".encode()
    assert aeo_csv(XmlLimits(max_bytes=len(data))).decode(data) == status()
    with pytest.raises(TranslationError) as caught:
        aeo_csv(XmlLimits(max_bytes=len(data) - 1)).decode_all(data)
    assert caught.value.reason == "limit-exceeded"
    assert aeo_csv(XmlLimits()).max_bytes == XmlLimits().max_bytes


def test_row_limit_is_enforced() -> None:
    assert CSV.max_rows == MAX_ROWS == 100_000
    rows = "\n".join(GOOD_ROW.replace(",4,", f",{n},") for n in range(1, 5))
    data = f"{HEADER}\n{rows}\n\n\n".encode()
    assert len(AeoCsv(max_rows=4).decode_all(data)) == 4
    with pytest.raises(TranslationError) as caught:
        AeoCsv(max_rows=3).decode_all(data)
    assert (caught.value.reason, caught.value.line) == ("limit-exceeded", 5)
    bad_rows = "\n".join(["x"] * 4)  # bad rows count too
    with pytest.raises(TranslationError):
        AeoCsv(max_rows=3).decode_all(f"{HEADER}\n{bad_rows}\n".encode())


# Variants -----------------------------------------------------------------------------------

VARIANT_STATUSES = [
    status(),
    status(aeo_id="NZAEO2", name='Harbour "Blue"; Logistics, Ltd', revision=9),
    status(aeo_id="NZAEO3", name="Pacific Rim\r\n(PacRim)", valid_to="2030-01-01"),
    status(
        aeo_id="NZAEO4",
        name="Line\nbreaks\rall\r\nkinds",
        status=aeo_pb2.AEO_STANDING_REVOKED,
        reason="Two\nlines",
        issuing_administration="NZ",
    ),
    status(aeo_id="NZAEO5", name="=Equals; Ltd"),
]


def written(statuses: list[AeoStatus], delimiter: str, newline: str) -> bytes:
    """The statuses as another tool would write them (test's own writer, not the adapter's)."""
    rows = [[c.upper() for c in COLUMNS]]
    for s in statuses:
        rows.append(
            [
                f"  {s.aeo_id} ",
                s.tin,
                s.name if s.name[0] != "=" else "'" + s.name,
                {1: "aeos", 2: "AEOC", 3: "AEOF"}[s.programme],
                {1: "VALID", 2: "Suspended", 3: "revoked"}[s.status],
                s.valid_from,
                s.valid_to,
                str(s.revision),
                s.country_code.lower(),
                s.reason,
                s.issuing_administration,
            ]
        )

    def cell(value: str) -> str:
        if any(c in value for c in f'{delimiter}"\r\n'):
            return ' "' + value.replace('"', '""') + '" '
        return value

    return newline.join(delimiter.join(cell(v) for v in row) for row in rows).encode() + b"\n"


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["no-bom", "bom"])
@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
@pytest.mark.parametrize("delimiter", [",", ";"], ids=["comma", "semicolon"])
def test_variants_read_the_same(bom: bytes, newline: str, delimiter: str) -> None:
    data = bom + written(VARIANT_STATUSES, delimiter, newline)
    items = CSV.decode_all(data, "list.csv")

    assert [item.error for item in items] == [None] * len(VARIANT_STATUSES)
    assert [item.message for item in items] == VARIANT_STATUSES
    assert [item.line for item in items] == [2, 3, 4, 6, 11]
    assert CSV.sniff(data[: formats.SNIFF_BYTES])


def test_header_columns_in_any_order_and_case() -> None:
    columns = list(reversed(COLUMNS))
    cells = dict(zip(COLUMNS, GOOD_ROW.split(","), strict=True))
    header = " , ".join(f" {name.title()} " for name in columns)
    item = one_row(",".join(cells[name] for name in columns), header)
    assert item.message == status()


def test_operator_list_reads_the_same_with_lf_or_a_bom() -> None:
    expected = [(i.line, i.message, i.error and i.error.reason) for i in CSV.decode_all(OPERATORS)]
    for data in (OPERATORS.replace(b"\r\n", b"\n"), b"\xef\xbb\xbf" + OPERATORS):
        found = [(i.line, i.message, i.error and i.error.reason) for i in CSV.decode_all(data)]
        assert found == expected


# Encoding and formula injection -------------------------------------------------------------


def test_encode_writes_rfc_4180() -> None:
    data = CSV.encode_all(VARIANT_STATUSES)

    assert data.startswith(HEADER.encode() + b"\r\n")
    assert data.endswith(b"\r\n")
    assert not data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))  # an independent reader
    assert rows[0] == list(COLUMNS)
    assert rows[1] == GOOD_ROW.split(",")
    assert rows[2][2] == 'Harbour "Blue"; Logistics, Ltd'
    assert rows[3][2] == "Pacific Rim\r\n(PacRim)"
    assert rows[5][2] == "'=Equals; Ltd"
    assert len(rows) == 1 + len(VARIANT_STATUSES)
    outside_quotes = re.sub(rb'"[^"]*"', b"", data)
    assert outside_quotes.count(b"\n") == outside_quotes.count(b"\r\n") == len(rows)
    assert CSV.encode(status()) == f"{HEADER}\r\n{GOOD_ROW}\r\n".encode()


INJECTIONS = [
    # value, as written in the cell (read by an independent CSV reader)
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tTabbed", "'\tTabbed"),
    ("\rReturned", "'\rReturned"),
    ("'=already protected", "''=already protected"),
    ("''@twice", "'''@twice"),
    ("'t Hooft Ltd", "'t Hooft Ltd"),
    ("'", "'"),
    ("Hawke's Bay", "Hawke's Bay"),
    ("A=B", "A=B"),
]


@pytest.mark.parametrize(("value", "cell"), INJECTIONS)
def test_formula_cells_are_protected_and_round_trip(value: str, cell: str) -> None:
    message = status(name=value, tin=value if value[0] != "\t" and value[0] != "\r" else "T")
    data = CSV.encode_all([message])

    row = list(csv.reader(io.StringIO(data.decode(), newline="")))[1]
    assert row[2] == cell
    assert row[2][0] not in "=+-@\t\r"
    assert CSV.decode(data) == message


def test_decode_strips_exactly_one_protecting_apostrophe() -> None:
    cases = {"'=x": "=x", "''=x": "'=x", "'-1": "-1", "'abc": "'abc", "' =x": "' =x"}
    for cell, name in cases.items():
        item = one_row(row_with("name", cell))
        assert isinstance(item.message, AeoStatus)
        assert item.message.name == name


ENCODE_REFUSALS = [
    # fields, reason, path
    ({"programme": aeo_pb2.AEO_PROGRAMME_UNSPECIFIED}, "csv-field-missing", "programme"),
    ({"programme": 7}, "csv-field-invalid", "programme"),
    ({"status": aeo_pb2.AEO_STANDING_UNSPECIFIED}, "csv-field-missing", "status"),
    ({"aeo_id": ""}, "csv-field-missing", "aeo_id"),
    ({"revision": 0}, "csv-field-invalid", "revision"),
    ({"revision": 2**63}, "csv-field-invalid", "revision"),
    ({"name": " Kiwi "}, "csv-field-invalid", "name"),
    ({"country_code": "nz"}, "csv-field-invalid", "country"),
    ({"valid_from": "2019-3-1"}, "csv-field-invalid", "valid_from"),
    ({"status": aeo_pb2.AEO_STANDING_REVOKED}, "csv-field-missing", "reason"),
    ({"issuing_administration": "nz"}, "csv-field-invalid", "issuing_administration"),
]


@pytest.mark.parametrize(("fields", "reason", "path"), ENCODE_REFUSALS)
def test_encode_refuses_what_it_could_not_read_back(
    fields: dict[str, object], reason: str, path: str
) -> None:
    with pytest.raises(TranslationError) as caught:
        CSV.encode_all([status(aeo_id="NZAEO0"), status(**fields)])

    assert (caught.value.reason, caught.value.path) == (reason, path)
    assert caught.value.message.startswith("message 2 ")


def test_encode_refuses_other_documents_duplicates_and_limits() -> None:
    with pytest.raises(TranslationError) as caught:
        CSV.encode_all([status(), ControlResult(control_id="C1")])
    assert caught.value.reason == "unsupported-document"
    with pytest.raises(TranslationError) as caught:
        CSV.encode(ControlResult(control_id="C1"))
    assert caught.value.reason == "unsupported-document"
    with pytest.raises(TranslationError) as caught:
        CSV.encode_all([status(), status(name="Other")])
    assert caught.value.reason == "csv-row-duplicate"
    with pytest.raises(TranslationError) as caught:
        AeoCsv(max_rows=1).encode_all([status(), status(revision=5)])
    assert caught.value.reason == "limit-exceeded"
    data = CSV.encode_all([status()])
    assert AeoCsv(max_bytes=len(data)).encode_all([status()]) == data
    with pytest.raises(TranslationError) as caught:
        AeoCsv(max_bytes=len(data) - 1).encode_all([status()])
    assert caught.value.reason == "limit-exceeded"
    assert CSV.encode_all([]) == f"{HEADER}\r\n".encode()
    assert base.encode_all(CSV, [status()]) == data


# decode(), sniff and the registry helpers ---------------------------------------------------


def test_decode_takes_exactly_one_valid_row() -> None:
    assert CSV.decode(f"{HEADER}\n{GOOD_ROW}".encode()) == status()
    second = GOOD_ROW.replace("NZAEO1", "NZAEO2")
    cases = {
        f"{HEADER}\n": ("unsupported-document", "0 rows"),
        f"{HEADER}\n{GOOD_ROW}\n{second}\n": ("unsupported-document", "2 rows"),
        f"{HEADER}\n{GOOD_ROW}\n{GOOD_ROW}\n": ("csv-row-duplicate", "line 3"),
        f"{HEADER}\n{GOOD_ROW},\n": ("csv-row-malformed", "line 2"),
    }
    for text, (reason, named) in cases.items():
        with pytest.raises(TranslationError) as caught:
            CSV.decode(text.encode(), "list.csv")
        assert caught.value.reason == reason
        assert named in caught.value.message
    items = base.decode_all(CSV, f"{HEADER}\n{GOOD_ROW}\n{second}\n".encode())
    assert [item.line for item in items] == [2, 3]


@pytest.mark.parametrize(
    ("head", "recognised"),
    [
        (OPERATORS, True),
        (HEADER.encode(), True),
        (b"\xef\xbb\xbf" + HEADER.upper().replace(",", ";").encode() + b"\r\n", True),
        (b'"aeo_id","tin","name","programme","status","valid_from","revision","country"\n', True),
        (b" aeo_id ; tin ; name ; programme ; status ; valid_from ; revision ; country", True),
        (HEADER.replace("revision,", "").encode(), False),
        (f"\n{HEADER}".encode(), False),
        (b'{"aeoStatus": {"aeoId": "NZAEO1"}}', False),
        (b"<?xml version='1.0'?><Declaration/>", False),
        (b"lrn,mrn,ucr\n1,2,3\n", False),
        (b"\xff\xfe" + HEADER.encode("utf-16-le"), False),
        (b"", False),
    ],
)
def test_sniff(head: bytes, recognised: bool) -> None:
    assert CSV.sniff(head) is recognised


def test_detect_recognises_an_aeo_list() -> None:
    translators = {**formats.registry(), "aeo-csv": CSV}
    assert formats.detect(OPERATORS, translators) == "aeo-csv"
    assert formats.detect(b'{"aeoStatus": {}}', translators) == "proto-json"


def test_translator_describes_itself() -> None:
    assert (CSV.format_id, CSV.media_type) == ("aeo-csv", "text/csv")
    assert CSV.directions == frozenset({"decode", "encode"})
    assert CSV.description and "\n" not in CSV.description
    assert len(COUNTRIES) == 251 and {"NZ", "XI", "XK"} <= COUNTRIES


def test_documented_example_decodes() -> None:
    doc = (ROOT / "docs" / "formats" / "aeo-csv.md").read_text()
    example = re.search(r"```csv\n(.*?)```", doc, re.DOTALL)
    assert example is not None
    items = CSV.decode_all(example.group(1).encode(), "aeo-csv.md")

    assert [item.error for item in items] == [None] * 4
    assert [item.line for item in items] == [2, 3, 4, 6]
    assert isinstance(items[3].message, AeoStatus)
    assert items[3].message.name == "+Plus Couriers Ltd"
    for column in COLUMNS:
        assert f"| `{column}` |" in doc


# Properties ---------------------------------------------------------------------------------

_CONTROL = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))
_INLINE = [*"'=+-@,;\" "]  # characters a spreadsheet treats specially, in one line
_PLAIN_CHAR = st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters=_CONTROL)


def _value(max_size: int, specials: list[str]) -> st.SearchStrategy[str]:
    """Non-empty strings of up to ``max_size`` characters from plain characters and
    ``specials``, without leading or trailing whitespace: the values a cell holds once read.
    Stripped rather than filtered for it, so that hypothesis seldom has to draw again."""
    chars = st.one_of(_PLAIN_CHAR, st.sampled_from(specials))
    return st.lists(chars, min_size=1, max_size=max_size).map("".join).map(str.strip).filter(bool)


_ID = _value(30, _INLINE)
_TEXT = _value(60, [*_INLINE, "\r\n", "\n", "\t", "\r"])
_PARTY = st.one_of(st.just(""), st.from_regex(r"[A-Z][A-Z0-9-]{1,15}", fullmatch=True))


@st.composite
def valid_statuses(draw: st.DrawFn) -> AeoStatus:
    valid_from = draw(st.dates())
    valid_to = draw(st.one_of(st.none(), st.dates(min_value=valid_from)))
    standing = draw(st.sampled_from(sorted(STANDING_CODES)))
    needs_reason = standing != aeo_pb2.AEO_STANDING_VALID
    return AeoStatus(
        issuing_administration=draw(_PARTY),
        aeo_id=draw(_ID),
        tin=draw(_ID),
        name=draw(_TEXT),
        programme=draw(st.sampled_from(sorted(PROGRAMME_CODES))),
        status=standing,
        valid_from=valid_from.isoformat(),
        valid_to=valid_to.isoformat() if valid_to else "",
        revision=draw(st.integers(min_value=1, max_value=MAX_REVISION)),
        country_code=draw(st.sampled_from(sorted(COUNTRIES))),
        reason=draw(_TEXT if needs_reason else st.one_of(st.just(""), _TEXT)),
    )


def _breaks(text: str) -> int:
    return len(re.findall(r"\r\n?|\n", text))


@pytest.mark.slow
@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(valid_statuses(), max_size=8, unique_by=lambda s: (s.aeo_id, s.revision)))
def test_encode_then_decode_gives_the_same_statuses_at_their_lines(
    statuses: list[AeoStatus],
) -> None:
    items = CSV.decode_all(CSV.encode_all(statuses), "list.csv")

    assert [item.error for item in items] == [None] * len(statuses)
    assert [item.message for item in items] == statuses
    line = 2
    for item, message in zip(items, statuses, strict=True):
        assert item.line == line
        line += 1 + _breaks(message.name) + _breaks(message.reason)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.builds(
        AeoStatus,
        issuing_administration=st.text(max_size=5),
        aeo_id=st.text(max_size=8),
        tin=st.text(max_size=8),
        name=st.text(max_size=12),
        programme=st.integers(min_value=0, max_value=5),
        status=st.integers(min_value=0, max_value=5),
        valid_from=st.one_of(st.text(max_size=10), st.dates().map(str)),
        valid_to=st.one_of(st.text(max_size=10), st.dates().map(str)),
        revision=st.integers(min_value=0, max_value=2**64 - 1),
        country_code=st.one_of(st.text(max_size=2), st.sampled_from(sorted(COUNTRIES))),
        reason=st.text(max_size=12),
    )
)
def test_encode_writes_only_what_reads_back(message: AeoStatus) -> None:
    try:
        data = CSV.encode_all([message])
    except TranslationError:
        return
    assert CSV.decode(data) == message


def _check_items(items: list[base.Item]) -> None:
    lines = [item.line for item in items]
    assert all(isinstance(line, int) and line >= 2 for line in lines)
    assert lines == sorted(set(lines))  # type: ignore[type-var]
    for item in items:
        assert (item.message is None) != (item.error is None)
        if item.error is not None:
            assert item.error.line == item.line
        else:
            assert isinstance(item.message, AeoStatus)


@settings(max_examples=500, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_fuzz_any_bytes_decode_or_raise_translation_error(data: bytes) -> None:
    try:
        items = CSV.decode_all(data, "fuzz.csv")
    except TranslationError:
        return
    _check_items(items)


_CSV_PIECES = st.sampled_from(
    [
        ",",
        ";",
        '"',
        '""',
        "\r",
        "\n",
        "\r\n",
        " ",
        "'",
        "=",
        "x",
        "\xe9",
        "\x00",
        *GOOD_ROW.split(","),
    ]
)


@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(_CSV_PIECES, max_size=60).map("".join), st.sampled_from([",", ";"]))
def test_fuzz_csv_like_rows_decode_or_raise_translation_error(body: str, delimiter: str) -> None:
    data = (HEADER.replace(",", delimiter) + "\n" + body).encode()
    try:
        items = CSV.decode_all(data, "fuzz.csv")
    except TranslationError:
        return
    _check_items(items)
    with contextlib.suppress(TranslationError):
        CSV.decode(data)
