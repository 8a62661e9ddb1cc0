"""Every WCO DM document in the corpus: XML -> protobuf -> XML, valid and equal after C14N.

Equality is canonical XML 2.0 with comments dropped, text trimmed (CDS pads code values with
newlines) and prefixes rewritten (documents use md:, _2:, or default namespaces). Most
notifications were published with namespaces stripped; they are compared after the translator
restored the namespaces, since without them they are not WCO DM documents at all.
"""

from __future__ import annotations

import collections
from pathlib import Path
from xml.etree.ElementTree import canonicalize

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.wco.translator import GoodsDeclaration, Response, WcoXml, restore_namespaces
from adapters.xmlsafe import parse_xml
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits
from tests.testdata import CDS_SAMPLES, CORPUS

SOURCES = [
    "hmrc-customs-declarations",
    "hmrc-customs-declarations-stub",
    "hmrc-customs-declarations-information",
]
WCO_ROOTS = {"MetaData", "Declaration", "Response"}

# Samples the corpus README and our own reading name as defective, with the reason each gets.
KNOWN_DEFECTIVE = {
    "TT_EX002a/TT_EX002a.xml": "not-well-formed",  # '--' inside a comment
    "example_submission_declaration_400.xml": "schema-invalid",  # unknown element on purpose
    "Example_DMS_notifications/16_DMSEOG.xml": "schema-invalid",  # 'Wed Nov 13 00:00:00 UTC 2019'
    "TT_IM109a/Example_Notifications/01_DMSACC.xml": "schema-invalid",  # date with +01 offset
    "TT_IM109a/Example_Notifications/02_DMSTAX(1).xml": "schema-invalid",
    "TT_IM109a/Example_Notifications/03_DMSTAX(2).xml": "schema-invalid",
    "TT_IM109a/Example_Notifications/04_DMSCLE.xml": "schema-invalid",
    "TT_IM219a/05_DMSCLE.xml": "schema-invalid",  # date without formatCode
    "TT_IM223a/01_DMSACC.xml": "schema-invalid",  # date without formatCode
}


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.fail(f"the WCO corpus is missing at {CORPUS} (tests/SOURCES.md lists it)")
    return sorted(p for d in SOURCES for p in (CORPUS / d).rglob("*.xml"))


def root_name(data: bytes) -> str:
    try:
        return str(etree.QName(parse_xml(data, XmlLimits())).localname)
    except TranslationError:
        return "?"


def canonical(xml: str) -> str:
    return canonicalize(xml, strip_text=True, rewrite_prefixes=True)


def defect_of(path: Path) -> str | None:
    text = path.as_posix()
    return next(
        (reason for name, reason in KNOWN_DEFECTIVE.items() if text.endswith("/" + name)), None
    )


@pytest.mark.slow
def test_every_valid_wco_document_round_trips() -> None:
    translator = WcoXml()
    counts: collections.Counter[str] = collections.Counter()
    kinds: set[tuple[str, str]] = set()
    for path in corpus_files():
        data = path.read_bytes()
        if defect_of(path) or root_name(data) not in WCO_ROOTS:
            continue
        message = translator.decode(data, source=path.name)
        out = translator.encode(message)  # encode validates against the same schemas
        original = etree.tostring(restore_namespaces(parse_xml(data, XmlLimits()))).decode()
        assert canonical(out.decode()) == canonical(original), path
        if isinstance(message, GoodsDeclaration):
            counts["declarations"] += 1
            kinds.add((message.function_code, message.type_code))
        else:
            assert isinstance(message, Response)
            counts["notifications"] += 1
            kinds.add(("RES", message.function_code))
    print(f"\nround trip: {dict(counts)}")
    # Exactly the documents the README counts: a sample lost from tests/corpus fails here.
    assert counts == {"declarations": 231, "notifications": 340}, counts
    # original declarations of many types, amendments, cancellations, arrival notices
    assert {("13", "COR"), ("13", "INV"), ("13", "GPR")} <= kinds
    assert len({t for f, t in kinds if f == "9"}) >= 10
    assert {("RES", c) for c in ("01", "02", "03", "05", "06", "07", "08", "09")} <= kinds


def test_known_defective_samples_get_clear_errors() -> None:
    translator = WcoXml()
    found = 0
    for path in corpus_files():
        reason = defect_of(path)
        if reason is None:
            continue
        found += 1
        with pytest.raises(TranslationError) as info:
            translator.decode(path.read_bytes(), source=path.name)
        assert info.value.reason == reason, path
        assert info.value.line is not None and path.name in str(info.value)
    assert found == len(KNOWN_DEFECTIVE)


def test_other_customs_documents_are_not_taken_for_wco() -> None:
    """Movement messages (tests/test_cds_movements.py reads them as cds-movement), file-upload
    and declaration-information documents are not WCO DM; a refusal names the root's line.
    (A submitDeclarationRequest wraps a declaration: wco-xml reads it, test_cds_movements.py.)"""
    translator = WcoXml()
    others = [
        p
        for p in corpus_files()
        if root_name(p.read_bytes()) not in WCO_ROOTS | {"?", "submitDeclarationRequest"}
    ]
    reasons: collections.Counter[str] = collections.Counter()
    for path in others:
        data = path.read_bytes()
        with pytest.raises(TranslationError) as info:
            translator.decode(data, source=path.name)
        reasons[info.value.reason] += 1
        assert info.value.reason in {"unsupported-document", "forbidden-schema-location"}, path
        root = parse_xml(data, XmlLimits())
        if info.value.reason == "unsupported-document":
            assert info.value.line == root.sourceline and info.value.path, path
    # 35 movement documents, 3 others (file upload request and response, a mangled MetaData);
    # the declaration-information responses, whose xsi:schemaLocation is an http URL, are not
    # even parsed (root_name "?")
    assert reasons == {"unsupported-document": 38}, reasons


def test_code_values_are_trimmed_and_keys_readable() -> None:
    path = CDS_SAMPLES / "TT_IM068a/TT_IM068a.xml"
    message = WcoXml().decode(path.read_bytes())
    assert isinstance(message, GoodsDeclaration)
    assert message.function_code == "9" and message.type_code == "IMD"
    assert message.functional_reference_id == "U.7849431R66ZB"
    assert message.metadata.agency_assigned_customization_version_code == "v2.1"  # was "v2.1\n\t"


SAMPLE = CDS_SAMPLES / "TT_IM068a/TT_IM068a.xml"

# (case, bytes replaced, replacement, reason, element path, WCO pointer)
BROKEN = [
    (
        "unknown element",
        b"<FunctionCode>9</FunctionCode>",
        b"<FunctionKode>9</FunctionKode>",
        "schema-invalid",
        "/MetaData/Declaration/FunctionKode",
        "42A",
    ),
    (
        "code too long",
        b"<TypeCode>IMD</TypeCode>",
        b"<TypeCode>IMDXXXX</TypeCode>",
        "schema-invalid",
        "/MetaData/Declaration/TypeCode",
        "42A/D013",
    ),
    ("wrong root", b"<md:MetaData", b"<md:MetaDatum", "not-well-formed", None, None),
]


@pytest.mark.parametrize(
    ("case", "old", "new", "reason", "path", "pointer"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_errors_name_line_path_and_wco_pointer(
    case: str, old: bytes, new: bytes, reason: str, path: str | None, pointer: str | None
) -> None:
    data = SAMPLE.read_bytes()
    assert old in data
    with pytest.raises(TranslationError) as info:
        WcoXml().decode(data.replace(old, new, 1))
    error = info.value
    assert error.reason == reason and error.line is not None
    assert error.path == path and error.pointer == pointer


def test_goods_item_error_points_into_the_item() -> None:
    data = SAMPLE.read_bytes()
    start = data.index(b"<Description>")
    end = data.index(b"</Description>", start)
    broken = data[:start] + b"<Description>" + b"x" * 600 + data[end:]
    with pytest.raises(TranslationError) as info:
        WcoXml().decode(broken)
    assert info.value.pointer == "42A/67A/68A/23A/137"  # Commodity description, an..512


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=8))
def test_mutated_declarations_translate_or_raise_translation_error(
    offset: int, junk: bytes
) -> None:
    data = SAMPLE.read_bytes()
    at = offset % len(data)
    mutated = data[:at] + junk + data[at + len(junk) :]
    try:
        message = WcoXml().decode(mutated)
    except TranslationError:
        return
    WcoXml().encode(message)  # whatever was accepted also writes back out, valid
