"""``customs-hub translate`` for every registered pair of formats, and every format's round
trip through the canonical protobuf.

The pairs come from ``formats.registry()``: a new format is either in the tables below (which
kinds it holds, what each pair does with each kind) or fails ``test_the_tables_cover_every
registered format``. The matrix runs the real command in-process (``hub.cli.main.main``); a few
cases run it as a process, as operators do.

"Equal" is protobuf equality with one normalisation: the XML text the WCO codec keeps as
residue is compared after C14N 2.0, because a re-read residue element is serialised with the
namespace prefixes of the document it was written into (``ns0:`` from the corpus, ``md:``
once written by the hub); the XML is the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from xml.etree.ElementTree import canonicalize

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from adapters import base, formats
from adapters.base import DECODE, ENCODE
from hub.cli.demo import sample_aeo_status, sample_control_result, sample_declaration
from hub.cli.main import main
from hub.cli.translate import TranslateCliError, holds_many, write_atomically
from hub.core.messages import ControlResult, Response
from hub.pb.customs_hub.v1 import control_pb2
from tests.testdata import CDS_SAMPLES, DATA

CLI = [sys.executable, "-m", "hub.cli.main"]

REGISTRY = formats.registry()
DECODERS = sorted(f for f, t in REGISTRY.items() if DECODE in t.directions)
ENCODERS = sorted(f for f, t in REGISTRY.items() if ENCODE in t.directions)
PAIRS = [(source, target) for source in DECODERS for target in ENCODERS]

DEC, RES, CTL, AEO = "GoodsDeclaration", "Response", "ControlResult", "AeoStatus"
MOV = "MovementEvent"

# The kinds of business message each format reads (docs/formats/); every one has a sample.
SOURCE_KINDS = {
    "aeo-csv": {AEO},
    "cds-movement": {MOV},
    "edifact": {DEC, RES, CTL},
    "ncts-p6": {CTL},
    "proto-json": {DEC, RES, CTL, AEO, MOV},
    "wco-xml": {DEC, RES},
}

# What translating does, per kind:
SAME = "same"  # written, and read back equal to what the source gave
KEPT = "kept"  # written, and read back equal on the fields the target keeps (KEEPS below)
NO = "unsupported-document"  # refused: the target cannot hold this kind
# No known gaps: every pair whose target holds a kind writes it. (Closed: ncts-p6 -> edifact,
# NCTS control ids and finding codes now fit CUSRES BGM 1004 an..35 and ERC 9321 an..8; edifact
# CUSDEC -> wco-xml, DTM format 204 is read as WCO formatCode 304 with Z.)

EXPECTED: dict[tuple[str, str], dict[str, str]] = {
    ("aeo-csv", "aeo-csv"): {AEO: SAME},
    ("aeo-csv", "cds-movement"): {AEO: NO},
    ("aeo-csv", "edifact"): {AEO: NO},
    ("aeo-csv", "proto-json"): {AEO: SAME},
    ("aeo-csv", "wco-xml"): {AEO: NO},
    ("cds-movement", "aeo-csv"): {MOV: NO},
    ("cds-movement", "cds-movement"): {MOV: SAME},
    ("cds-movement", "edifact"): {MOV: NO},
    ("cds-movement", "proto-json"): {MOV: SAME},
    ("cds-movement", "wco-xml"): {MOV: NO},
    ("edifact", "aeo-csv"): {DEC: NO, RES: NO, CTL: NO},
    ("edifact", "cds-movement"): {DEC: NO, RES: NO, CTL: NO},
    ("edifact", "edifact"): {DEC: NO, RES: SAME, CTL: SAME},
    ("edifact", "proto-json"): {DEC: SAME, RES: SAME, CTL: SAME},
    ("edifact", "wco-xml"): {DEC: SAME, RES: SAME, CTL: NO},
    ("ncts-p6", "aeo-csv"): {CTL: NO},
    ("ncts-p6", "cds-movement"): {CTL: NO},
    ("ncts-p6", "edifact"): {CTL: SAME},
    ("ncts-p6", "proto-json"): {CTL: SAME},
    ("ncts-p6", "wco-xml"): {CTL: NO},
    ("proto-json", "aeo-csv"): {DEC: NO, RES: NO, CTL: NO, AEO: SAME, MOV: NO},
    ("proto-json", "cds-movement"): {DEC: NO, RES: NO, CTL: NO, AEO: NO, MOV: SAME},
    ("proto-json", "edifact"): {DEC: NO, RES: KEPT, CTL: SAME, AEO: NO, MOV: NO},
    ("proto-json", "proto-json"): {DEC: SAME, RES: SAME, CTL: SAME, AEO: SAME, MOV: SAME},
    ("proto-json", "wco-xml"): {DEC: SAME, RES: SAME, CTL: NO, AEO: NO, MOV: NO},
    ("wco-xml", "aeo-csv"): {DEC: NO, RES: NO},
    ("wco-xml", "cds-movement"): {DEC: NO, RES: NO},
    ("wco-xml", "edifact"): {DEC: NO, RES: KEPT},
    ("wco-xml", "proto-json"): {DEC: SAME, RES: SAME},
    ("wco-xml", "wco-xml"): {DEC: SAME, RES: SAME},
}


def edifact_keeps(message: Message) -> list[Message]:
    """What a CUSRES keeps (docs/formats/edifact.md, "Not mapped"): a ControlResult without
    its evidence; of a Response the fields of its table, and each further response as a
    message of its own."""
    if isinstance(message, ControlResult):
        kept = ControlResult()
        kept.CopyFrom(message)
        kept.ClearField("evidence")
        return [kept]
    assert isinstance(message, Response)
    responses = [message, *message.further_responses]
    return [_cusres_response(r) for r in responses]


def _cusres_response(response: Response) -> Response:
    kept = Response(
        function_code=response.function_code,
        functional_reference_id=response.functional_reference_id,
    )
    if response.HasField("issue_date_time"):
        kept.issue_date_time.CopyFrom(response.issue_date_time)
    for status in response.status:
        if status.name_code:
            kept.status.add(name_code=status.name_code)
    for office in response.contact_office:
        kept.contact_office.add(id=office.id)
    declaration = response.declaration
    for name in ("id", "version_id", "functional_reference_id"):
        setattr(kept.declaration, name, getattr(declaration, name))
    if declaration.HasField("acceptance_date_time"):
        kept.declaration.acceptance_date_time.CopyFrom(declaration.acceptance_date_time)
    if not kept.declaration.ByteSize():
        kept.ClearField("declaration")
    kept.error.extend(response.error)
    return kept


# The targets that lose fields by design, and what they keep.
KEEPS: dict[str, Callable[[Message], list[Message]]] = {"edifact": edifact_keeps}


def normalised(messages: list[Message]) -> list[Message]:
    """Copies with every Residue's XML in canonical form (see the module docstring)."""
    copies = []
    for message in messages:
        copy = type(message)()
        copy.CopyFrom(message)
        _canonical_residue(copy)
        copies.append(copy)
    return copies


def _canonical_residue(message: Message) -> None:
    if message.DESCRIPTOR.name == "Residue":
        xml = bytes(message.xml)  # type: ignore[attr-defined]
        if xml:  # empty for a preserved attribute
            text = canonicalize(xml.decode(), strip_text=True, rewrite_prefixes=True)
            message.xml = text.encode()  # type: ignore[attr-defined]
        return
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        for child in [value] if isinstance(value, Message) else value:
            if isinstance(child, Message):  # not a map's key
                _canonical_residue(child)


def good(format_id: str, data: bytes) -> list[Message]:
    items = base.decode_all(REGISTRY[format_id], data, "sample")
    return [item.message for item in items if item.message is not None]


def has_bad_documents(format_id: str, data: bytes) -> bool:
    items = base.decode_all(REGISTRY[format_id], data, "sample")
    return any(item.error is not None for item in items)


def write_and_read(format_id: str, messages: list[Message]) -> list[Message]:
    """The messages written in ``format_id`` and read back, as the command does it."""
    translator = REGISTRY[format_id]
    if holds_many(translator):
        return good(format_id, base.encode_all(translator, messages))
    return [m for one in messages for m in good(format_id, translator.encode(one))]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Sample files per source format, at least one per kind it reads."""
    folder = tmp_path_factory.mktemp("samples")
    notification = CDS_SAMPLES / "Example_DMS_notifications"
    found = {
        "aeo-csv": [DATA / "aeo-csv/operators.csv"],  # 23 good rows, 13 bad ones
        "cds-movement": [
            CDS_SAMPLES / "TT_EX038a/Movement_Messages/EAL.xml",  # in the gateway wrapper
            CDS_SAMPLES / "TT_EX052a/Movement_Messages/Step5_CST.xml",
            CDS_SAMPLES / "TT_IM083a/Movement_Messages/Step2_VMRes.xml",  # imports
        ],
        "edifact": sorted((DATA / "edifact").glob("*.edi")),
        "ncts-p6": sorted((DATA / "ncts").glob("*.xml")),
        "wco-xml": [
            CDS_SAMPLES / "TT_IM001b/TT_IM001b.xml",
            notification / "01_DMSACC.xml",  # MetaData, with residue
            notification / "03_DMSREJ.xml",  # errors with pointers
        ],
    }
    # proto-json: the demo's messages, and a Response with a further response (the edifact
    # writer makes a CUSRES of each). A ControlResult needs a stage to be written as CUSRES.
    released = sample_control_result()
    released.stage = control_pb2.CONTROL_STAGE_RELEASED
    response = good("wco-xml", (notification / "01_DMSACC.xml").read_bytes())[0]
    assert isinstance(response, Response)
    rejected = good("wco-xml", (notification / "03_DMSREJ.xml").read_bytes())[0]
    assert isinstance(rejected, Response)
    further = response.further_responses.add()
    further.CopyFrom(rejected)
    further.ClearField("metadata")  # a MetaData wraps the first Response only
    del further.residue[:]
    further.residue.extend(r for r in rejected.residue if r.path != "^metadata")
    documents = {
        "declaration": sample_declaration(),
        "response": response,
        "control": released,
        "aeo": sample_aeo_status(),
        "movement": good(
            "cds-movement", (CDS_SAMPLES / "TT_EX011a/Movement_Messages/EAL.xml").read_bytes()
        )[0],
    }
    found["proto-json"] = []
    for name, message in documents.items():
        path = folder / f"{name}.json"
        path.write_bytes(REGISTRY["proto-json"].encode(message))
        found["proto-json"].append(path)
    return found


def test_the_tables_cover_every_registered_format(samples: dict[str, list[Path]]) -> None:
    assert set(SOURCE_KINDS) == set(DECODERS), "name the kinds a new format reads"
    assert set(samples) == set(DECODERS), "give a new format sample files"
    assert set(EXPECTED) == set(PAIRS), "say what translating does for a new pair"
    for (source, _), outcomes in EXPECTED.items():
        assert set(outcomes) == SOURCE_KINDS[source]
    for source, paths in samples.items():
        read = {m.DESCRIPTOR.name for p in paths for m in good(source, p.read_bytes())}
        assert read == SOURCE_KINDS[source], f"{source}: a sample for each kind it reads"


@pytest.mark.parametrize("source", DECODERS)
def test_each_sample_is_detected_as_its_format(source: str, samples: dict[str, list[Path]]) -> None:
    for path in samples[source]:
        assert formats.detect(path.read_bytes(), REGISTRY) == source, path.name


def outputs(target: str, out: Path) -> list[Message]:
    """What the command wrote, read with the target: one file, or one per document in order."""
    if out.is_file():
        return good(target, out.read_bytes())
    files = sorted(out.iterdir(), key=lambda p: int(p.name.split(".")[-2]))
    return [m for path in files for m in good(target, path.read_bytes())]


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_translate_every_registered_pair(
    source: str,
    target: str,
    samples: dict[str, list[Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = EXPECTED.get((source, target))
    assert expected is not None, f"add ({source!r}, {target!r}) to EXPECTED"
    many = holds_many(REGISTRY[target])
    for path in samples[source]:
        data = path.read_bytes()
        messages = good(source, data)
        (kind,) = {m.DESCRIPTOR.name for m in messages}  # one kind per sample
        outcome = expected[kind]
        out = tmp_path / (f"{path.stem}.out" if many else path.stem)
        # no --from: the format is detected, as for an operator
        where = ["-o", str(out)] if many else ["--output-dir", str(out)]
        code = main(["translate", str(path), "--to", target, *where])
        err = capsys.readouterr().err
        case = f"{path.name} ({kind}) {source} -> {target}"
        if outcome in (SAME, KEPT):
            assert code == (1 if has_bad_documents(source, data) else 0), f"{case}: {err}"
            keeps = KEEPS[target] if outcome == KEPT else lambda m: [m]
            wanted = [kept for m in messages for kept in keeps(m)]
            assert normalised(outputs(target, out)) == normalised(wanted), case
        else:
            assert code == 2, f"{case}: expected a refusal, got {code}"
            assert f": {outcome}: " in err, f"{case}: {err}"
            assert f"{kind} read as {source} cannot be written as {target}" in err, err
            assert "Traceback" not in err
            assert not out.exists(), f"{case}: nothing is written when everything is refused"


@pytest.mark.parametrize("format_id", DECODERS)
def test_every_format_round_trips_through_the_protobuf(
    format_id: str, samples: dict[str, list[Path]]
) -> None:
    """format -> proto -> the same format -> proto gives the same messages; reading is
    deterministic; a decode-only format's messages round-trip through every format the table
    says writes them unchanged (for ncts-p6: proto-json and edifact)."""
    for path in samples[format_id]:
        data = path.read_bytes()
        first = good(format_id, data)
        assert first == good(format_id, data), f"{path.name}: reading is deterministic"
        targets = [format_id] if ENCODE in REGISTRY[format_id].directions else ENCODERS
        for target in targets:
            writable = [
                m for m in first if EXPECTED[(format_id, target)][m.DESCRIPTOR.name] == SAME
            ]
            if writable:
                back = write_and_read(target, writable)
                assert normalised(back) == normalised(writable), f"{path.name} via {target}"


def test_a_decode_only_format_reaches_the_formats_that_hold_its_kind() -> None:
    reached = {t for (s, t), kinds in EXPECTED.items() if s == "ncts-p6" and SAME in kinds.values()}
    assert reached == {"proto-json", "edifact"}


def test_output_is_renamed_into_place_and_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    before = target.stat().st_ino
    write_atomically(target, b"new")
    assert target.read_bytes() == b"new" and target.stat().st_ino != before  # a new file
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary left
    with pytest.raises(TranslateCliError, match="cannot write"):
        write_atomically(tmp_path, b"x")  # a folder cannot be replaced by a file
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def mixed_interchange(folder: Path) -> Path:
    """One interchange of a CUSDEC (segments 3-28) and a CUSRES (from segment 29)."""
    cusdec = (DATA / "edifact/cusdec_import.edi").read_text().splitlines()
    cusres = (DATA / "edifact/cusres_released.edi").read_text().splitlines()
    path = folder / "mixed.edi"
    lines = [*cusdec[:-1], *cusres[2:-1], "UNZ+2+DEC000123'"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_kind_the_target_cannot_hold_costs_only_its_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mixed = mixed_interchange(tmp_path)
    assert [m.DESCRIPTOR.name for m in good("edifact", mixed.read_bytes())] == [DEC, CTL]
    out = tmp_path / "out.edi"
    assert main(["translate", str(mixed), "--to", "edifact", "-o", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"{mixed}:3: unsupported-document: ")
    assert "GoodsDeclaration read as edifact cannot be written as edifact" in err[0]
    assert good("edifact", out.read_bytes()) == good("edifact", mixed.read_bytes())[1:]
    # into a format that holds neither kind: nothing is written, and the command says so
    assert main(["translate", str(mixed), "--to", "aeo-csv", "-o", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in err[:2]] == [NO, NO]
    assert err[2].endswith(
        "nothing written: none of its 2 edifact documents could be translated to aeo-csv"
    )


# ---- the command as a process --------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "translate", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.slow
def test_cli_writes_the_good_rows_and_reports_the_bad_ones(tmp_path: Path) -> None:
    operators = DATA / "aeo-csv/operators.csv"
    refused = run(str(operators), "--to", "proto-json")  # 36 documents, one per file
    assert refused.returncode == 2 and refused.stdout == ""
    assert "--output-dir" in refused.stderr and "36 aeo-csv documents" in refused.stderr
    out = tmp_path / "statuses"
    done = run(str(operators), "--to", "proto-json", "--output-dir", str(out))
    assert done.returncode == 1, done.stderr
    bad = [line for line in done.stderr.splitlines() if not line.startswith("customs-hub")]
    assert len(bad) == 13 and all(line.startswith(f"{operators}:") for line in bad)
    assert f"{operators}:8: csv-field-invalid: " in done.stderr  # the row's physical line
    assert f"{operators}:26: csv-row-duplicate: " in done.stderr
    written = sorted(out.iterdir())
    assert len(written) == 23 and sorted(done.stdout.split()) == sorted(map(str, written))
    assert (out / "operators.2.json").is_file() and not (out / "operators.8.json").exists()
    first = json.loads((out / "operators.2.json").read_text())
    assert first["aeoStatus"]["aeoId"] == "NZAEO10001"


@pytest.mark.slow
def test_cli_splits_an_interchange_and_names_what_it_cannot_write(tmp_path: Path) -> None:
    released = good("edifact", (DATA / "edifact/cusres_released.edi").read_bytes())
    rejected = good("edifact", (DATA / "edifact/cusres_rejected.edi").read_bytes())
    interchange = tmp_path / "interchange.edi"
    interchange.write_bytes(base.encode_all(REGISTRY["edifact"], released + rejected))
    out = tmp_path / "xml"
    done = run(str(interchange), "--to", "wco-xml", "--output-dir", str(out))
    assert done.returncode == 1, done.stderr
    assert (
        ": unsupported-document: ControlResult read as edifact cannot be written as wco-xml"
        in done.stderr
    )
    (written,) = out.iterdir()  # the Response, named after its UNH's segment number
    assert written.name.startswith("interchange.") and written.suffix == ".xml"
    assert good("wco-xml", written.read_bytes()) == rejected


@pytest.mark.slow
def test_cli_refuses_a_kind_the_target_cannot_hold(tmp_path: Path) -> None:
    declaration = CDS_SAMPLES / "TT_IM001b/TT_IM001b.xml"
    out = tmp_path / "declaration.edi"
    refused = run(str(declaration), "--to", "edifact", "-o", str(out))
    assert refused.returncode == 2 and refused.stdout == "" and not out.exists()
    line = refused.stderr.strip()
    assert line.startswith(f"customs-hub: error: {declaration}: unsupported-document: ")
    assert "GoodsDeclaration read as wco-xml cannot be written as edifact" in line
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_cli_output_file_is_replaced_whole_or_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    control = DATA / "edifact/cusres_released.edi"
    out = tmp_path / "control.json"
    out.write_text("previous\n")
    before = out.stat().st_ino
    assert main(["translate", str(control), "--to", "wco-xml", "-o", str(out)]) == 2
    assert ": unsupported-document: ControlResult read as edifact" in capsys.readouterr().err
    assert out.read_text() == "previous\n"  # a refusal leaves the old file
    done = run(str(control), "--to", "proto-json", "-o", str(out))
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert out.stat().st_ino != before  # renamed into place, not rewritten
    assert sorted(os.listdir(tmp_path)) == ["control.json"]  # no temporary left
    assert good("proto-json", out.read_bytes()) == good("edifact", control.read_bytes())


@pytest.mark.slow
def test_cli_writes_standard_output_and_names_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = tmp_path / "status.json"
    status.write_bytes(REGISTRY["proto-json"].encode(sample_aeo_status()))
    done = run(str(status), "--to", "aeo-csv", "-o", "-")
    assert done.returncode == 0, done.stderr
    assert good("aeo-csv", done.stdout.encode()) == [sample_aeo_status()]
    missing = tmp_path / "missing.csv"
    assert main(["translate", str(missing), "--to", "proto-json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err == f"customs-hub: error: {missing}: cannot read: No such file or directory\n"
    )
