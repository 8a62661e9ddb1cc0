"""Code lists of other agencies than UN/ECE (issue 19): a CUSRES code qualified by its
responsible agency (GIS+819::143) is checked against the list registered for that agency, or
kept as given; the D.96B list still governs codes without an agency or of agency 6; a
partner's list maps its codes to control stages; lists come from hub.toml (tables or files),
from the hub's shipped files and from plugins.

The CUSRES in tests/data/code-lists is hand-written against D.96B (the corpus has no EDIFACT);
the NZ list used here (tests/data/code-lists/example-nz-gis.toml) is an EXAMPLE: agency 143 is
D.96B's code for New Zealand Customs and 819 the code quoted in the issue, but the meaning and
stage given to 819 are invented to exercise the mechanism. A plugin through a real installed
entry point would need a package installed into the test environment; ``load_plugin`` (what
the entry point discovery calls with each loaded factory) is tested with factories instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import formats
from adapters.edifact import Edifact, codelists, cusres, edifact
from adapters.edifact.syntax import read_interchange
from adapters.formats import Translators
from adapters.wco import controls
from hub.app.translation import ISOLATE_BYTES, Translation
from hub.cli.main import main
from hub.config import load_config
from hub.core import codelists as core
from hub.core.codelists import CodeList, CodeLists
from hub.core.errors import ConfigError, TranslationError
from hub.core.limits import XmlLimits
from hub.core.messages import ControlResult, Response
from hub.pb.customs_hub.v1 import control_pb2 as cpb
from hub.runtime import RunningHub
from tests.conftest import Federation
from tests.test_config_check import edit, refusal, write_config
from tests.test_dropfolder import add_folder, drop, files, inbox_empty
from tests.test_edifact import error_of, interchange
from tests.test_exchange import eventually

DATA = Path(__file__).parent / "data" / "code-lists"
EXAMPLE = DATA / "example-nz-gis.toml"
NATIONAL = DATA / "cusres_national_status.edi"
LIMITS = XmlLimits()


def example_list() -> CodeList:
    problems: list[str] = []
    found = core.parse("nz-gis", tomllib.loads(EXAMPLE.read_text()), problems)
    assert problems == [] and found is not None
    return found


def with_nz() -> Edifact:
    """The registry's edifact translator with the example NZ list configured."""
    translator = formats.registry(LIMITS, CodeLists((example_list(),)))["edifact"]
    assert isinstance(translator, Edifact)
    return translator


def shipped_only() -> Edifact:
    translator = formats.registry(LIMITS)["edifact"]
    assert isinstance(translator, Edifact)
    return translator


def cusres_with(*segments: str) -> bytes:
    return interchange(["BGM+962+NZ-CTL-1+9'", *segments])


# --- reading codes of other agencies ----------------------------------------------------------


def test_a_national_code_with_its_agency_is_accepted_and_kept_as_given() -> None:
    """Before issue 19 this was refused: code '819' is not in the D.96B code list 7365."""
    message = shipped_only().decode(NATIONAL.read_bytes())
    assert isinstance(message, Response)
    assert [s.name_code for s in message.status] == ["819"]
    assert message.declaration.id == "24NZ12345678901234"


def test_the_d96b_list_still_governs_a_code_without_agency_or_of_agency_6() -> None:
    for gis in ("GIS+819'", "GIS+819::6'"):
        error = error_of(cusres_with(gis), shipped_only())
        assert (error.reason, error.line, error.path) == ("edifact-code", 5, "GIS")
        assert "D.96B code list 7365" in error.message and "'819'" in error.message
    assert isinstance(shipped_only().decode(cusres_with("GIS+4::6'")), ControlResult)


def test_a_registered_list_maps_the_national_code_to_a_control_stage() -> None:
    message = with_nz().decode(NATIONAL.read_bytes())
    assert isinstance(message, ControlResult)
    assert message.stage == cpb.CONTROL_STAGE_RELEASED
    assert message.stage_code == cpb.Code(value="819", list_id="", agency="143")
    assert message.control_id == "NZ-CTL-2024-000042"
    held = with_nz().decode(cusres_with("GIS+820::143'"))
    assert isinstance(held, ControlResult) and held.stage == cpb.CONTROL_STAGE_INTENDED


def test_a_control_result_the_senders_list_mapped_is_written_by_a_hub_without_the_list() -> None:
    """NZ's hub reads GIS+819::143 as released; CN's hub, without NZ's list, writes it for its
    domestic system as NZ sent it (the stage_code says what the sender's list made of it)."""
    message = with_nz().decode(NATIONAL.read_bytes())
    assert isinstance(message, ControlResult)
    written = shipped_only().encode(message)
    assert b"GIS+819::143'" in written and b"GIS+4'" not in written
    # a stage the code does not map to in the sender's list is not what the residue says
    message.stage = cpb.CONTROL_STAGE_INTENDED
    with pytest.raises(TranslationError) as caught:
        with_nz().encode(message)
    assert caught.value.reason == "schema-invalid" and "stage" in caught.value.message


def test_a_code_not_in_the_registered_list_is_refused_naming_the_list_and_segment() -> None:
    error = error_of(cusres_with("DTM+137:20240301101500:204'", "GIS+999::143'"), with_nz())
    assert (error.reason, error.line, error.path) == ("edifact-code", 6, "GIS")
    assert "code '999' is not in code list nz-gis (agency 143, element 7365)" in error.message
    # the same code of an agency nobody registered a list for is accepted as given
    other = with_nz().decode(cusres_with("GIS+999::144'"))
    assert isinstance(other, Response) and [s.name_code for s in other.status] == ["999"]


def test_a_un_code_under_another_agency_is_not_read_as_a_un_stage() -> None:
    """GIS+4::143 is agency 143's code 4, not D.96B's "goods released"."""
    message = shipped_only().decode(cusres_with("GIS+4::143'"))
    assert isinstance(message, Response) and [s.name_code for s in message.status] == ["4"]


def test_a_un_code_under_another_agency_is_not_read_as_a_un_response_function() -> None:
    """GIS+1::143 is agency 143's code 1, not D.96B's "message content accepted" (it was read
    as function code 01, an acceptance); nor is GIS+ZZZ:::01::143 the hub's mutually defined
    function."""
    for gis, code in (("GIS+1::143'", "1"), ("GIS+17::143'", "17"), ("GIS+ZZZ::143:01'", "ZZZ")):
        message = shipped_only().decode(cusres_with(gis))
        assert isinstance(message, Response)
        assert message.function_code == "" and [s.name_code for s in message.status] == [code]
    accepted = shipped_only().decode(cusres_with("GIS+1::6'"))
    assert isinstance(accepted, Response) and accepted.function_code == "01"


@pytest.mark.parametrize("gis", ["GIS+4::143'", "GIS+1::143'", "GIS+30::144'"])
def test_a_national_status_the_writer_cannot_type_keeps_every_segment(gis: str) -> None:
    """A status code of another agency that would read back as a D.96B one cannot be written
    from the typed fields; the note before it was dropped (no residue). The whole message is
    kept as residue and written back as it came, checked against the typed status."""
    data = cusres_with("FTX+AAI+++Goods held at the national border post'", gis)
    message = shipped_only().decode(data)
    assert isinstance(message, Response) and message.HasField("edifact_residue")
    written = shipped_only().encode(message)
    assert b"Goods held at the national border post" in written and gis.encode() in written
    # the typed status still has to agree with what the residue writes
    message.status[0].name_code = "3"  # still one the writer cannot type: read back, it differs
    with pytest.raises(TranslationError) as caught:
        shipped_only().encode(message)
    assert caught.value.reason == "schema-invalid" and "status" in caught.value.message


def test_a_list_qualifier_selects_the_list_and_a_list_without_one_is_the_fallback() -> None:
    qualified = CodeList("nz-q", "143", "7365", (("1", "one"),), qualifier="Q1")
    lists = CodeLists((example_list(), qualified))
    assert lists.find("143", "7365", "Q1") is qualified
    assert lists.find("143", "7365", "Q2") is lists.named("nz-gis")
    assert lists.find("144", "7365") is None
    translator = formats.registry(LIMITS, CodeLists((qualified,)))["edifact"]
    assert isinstance(translator, Edifact)
    error = error_of(cusres_with("GIS+819:Q1:143'"), translator)
    assert "code list nz-q (agency 143, element 7365, list Q1)" in error.message
    assert isinstance(translator.decode(cusres_with("GIS+819:Q2:143'")), Response)


def test_two_stages_one_national_and_one_un_are_refused_at_the_second() -> None:
    error = error_of(cusres_with("GIS+4'", "GIS+819::143'"), with_nz())
    assert (error.reason, error.line) == ("schema-invalid", 6)


def test_control_stage_alone_keeps_the_code_with_list_and_agency() -> None:
    """cusres.control_stage on a checked message, as the translator calls it."""
    from adapters.edifact.directory import check_message, d96b
    from adapters.edifact.syntax import read_interchange

    cleared = cpb.CONTROL_STAGE_CLEARED
    qualified = CodeList("nz-q", "143", "7365", (("819", "x"),), stages=(("819", cleared),))
    lists = CodeLists((qualified,))
    data = cusres_with("GIS+819:Q1:143'")
    [message] = read_interchange(data, max_bytes=10_000, max_segments=100).messages
    checked = check_message("CUSRES", message, d96b(), lists)
    found = cusres.control_stage(checked.root, lists)
    assert found is not None and found.stage == cleared
    assert found.code == cpb.Code(value="819", list_id="Q1", agency="143")
    assert cusres.control_stage(checked.root) is None  # no list: a Response


# --- the hub's own mutually defined lists -----------------------------------------------------


def test_hub_coded_text_of_agency_zzz_is_checked_against_the_shipped_list() -> None:
    error = error_of(cusres_with("FTX+AAH++LOUD:CTY:ZZZ'", "GIS+4'"), shipped_only())
    assert (error.reason, error.line, error.path) == ("edifact-code", 5, "FTX")
    assert "code list hub-control-types (agency ZZZ, element 4441, list CTY)" in error.message
    # an open list (CDS control result codes) documents its codes and accepts others
    message = shipped_only().decode(cusres_with("FTX+AAH++Z9:AFB:ZZZ'", "GIS+4'"))
    assert isinstance(message, ControlResult) and message.control_result_code == "Z9"
    # without lists (a bare Edifact()), the mapping's own check answers as before
    assert error_of(cusres_with("FTX+AAH++LOUD:CTY:ZZZ'", "GIS+4'")).reason == "schema-invalid"


def test_the_shipped_lists_load_and_hold_the_hub_and_cds_codes() -> None:
    shipped = {c.name: c for c in codelists.shipped()}
    assert set(shipped) == {
        "hub-control-types",
        "hub-control-outcomes",
        "cds-control-result-codes",
        "cds-notification-functions",
        "cds-customs-routes",
    }
    assert {c for c, _ in shipped["hub-control-types"].codes} == set(cusres.CONTROL_TYPES)
    assert {c for c, _ in shipped["hub-control-outcomes"].codes} == set(cusres.OUTCOMES)
    assert {c for c, _ in shipped["cds-control-result-codes"].codes} == set(controls.OUTCOMES)
    functions = shipped["cds-notification-functions"]
    assert dict(functions.stages) == {code: stage for code, (stage, _) in controls.STAGES.items()}
    assert [c for c, _ in shipped["cds-customs-routes"].codes] == ["1", "2", "3", "6"]
    # every list the CUSRES writer codes with ZZZ is shipped under its 1131 qualifier
    qualifiers = {c.qualifier for c in shipped.values()}
    for written in (cusres.LIST_CONTROL_TYPE, cusres.LIST_OUTCOME, cusres.LIST_RESULT_CODE,
                    cusres.LIST_FUNCTION):  # fmt: skip
        assert written in qualifiers


def test_the_documentation_lists_every_shipped_list_and_code() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "formats" / "code-lists.md").read_text()
    for code_list in codelists.shipped():
        assert f"`{code_list.name}`" in doc
        for code, meaning in code_list.codes:
            assert f"| `{code}` | {meaning} |" in doc, (code_list.name, code)


# --- plugins --------------------------------------------------------------------------------


def test_a_plugin_factory_gives_lists_and_a_bad_one_is_named() -> None:
    lists = codelists.load_plugin("nz", "acme_nz.lists:gis", example_list)
    assert [c.name for c in lists] == ["nz-gis"]
    combined = codelists.available(plugin_lists=[("plugin nz", lists)])
    assert combined.find("143", "7365") is not None and combined.named("hub-control-types")

    def broken() -> CodeList:
        raise RuntimeError("no network here")

    for factory, fragment in [
        (broken, "failed: RuntimeError"),
        (lambda: "819", "gave no CodeList"),
        (list, "gave no CodeList"),
        (lambda: CodeList("un", "6", "7365", (("1", "x"),)), "agency: 6 (UN/ECE)"),
    ]:
        with pytest.raises(ConfigError) as caught:
            codelists.load_plugin("nz", "acme_nz.lists:gis", factory)
        assert "code list plugin nz (acme_nz.lists:gis)" in caught.value.message
        assert fragment in caught.value.message


def test_a_plugin_or_configuration_cannot_replace_a_shipped_list() -> None:
    copy = CodeList("my-cty", "ZZZ", "4441", (("X", "x"),), qualifier="CTY")
    with pytest.raises(ConfigError) as caught:
        codelists.available(plugin_lists=[("code list plugin p (m:f)", [copy])])
    assert "governs the codes that hub-control-types" in caught.value.message
    assert "code list plugin p (m:f)" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        codelists.available(CodeLists((copy,)), plugin_lists=[])
    assert "hub.toml [code_lists]" in caught.value.message
    renamed = CodeList("hub-control-types", "143", "7365", (("1", "x"),))
    with pytest.raises(ConfigError, match="has the name of one"):
        codelists.available(CodeLists((renamed,)), plugin_lists=[])


# --- configuration --------------------------------------------------------------------------

NZ_TABLE = """
[code_lists.nz-gis]
agency = "143"
element = "7365"
partner = "NZ"
codes = { "819" = "example: released", "820" = "example: held" }
stages = { "819" = "RELEASED" }
"""


def test_a_code_list_table_in_hub_toml_is_read(tmp_path: Path, pki: Path) -> None:
    path = write_config(tmp_path / "cn", pki)
    path.write_text(path.read_text() + NZ_TABLE)
    config = load_config(path)
    [nz] = list(config.code_lists)
    assert (nz.name, nz.agency, nz.element, nz.partner) == ("nz-gis", "143", "7365", "NZ")
    assert nz.stage("819") == cpb.CONTROL_STAGE_RELEASED and nz.stage("820") is None


def test_a_code_list_file_named_in_hub_toml_is_read(tmp_path: Path, pki: Path) -> None:
    path = write_config(tmp_path / "cn", pki)
    (path.parent / "lists").mkdir()
    (path.parent / "lists" / "nz.toml").write_bytes(EXAMPLE.read_bytes())
    path.write_text(path.read_text() + '\n[code_lists.nz-gis]\nfile = "lists/nz.toml"\n')
    assert load_config(path).code_lists.named("nz-gis") == CodeList(
        **{**example_list().__dict__, "source": "code_lists.nz-gis"}
    )


CONFIG_ERRORS = [
    (
        NZ_TABLE.replace('partner = "NZ"', 'partnr = "NZ"'),
        "code_lists.nz-gis.partnr: unknown key; did you mean partner?",
    ),
    (
        NZ_TABLE.replace('"RELEASED"', '"RELESED"'),
        "code_lists.nz-gis.stages.819: 'RELESED' is not a control stage; did you mean RELEASED?",
    ),
    (
        NZ_TABLE.replace('stages = { "819"', 'stages = { "821"'),
        "code_lists.nz-gis.stages.821: '821' is not one of the list's codes",
    ),
    (NZ_TABLE.replace('element = "7365"\n', ""), "code_lists.nz-gis.element is missing"),
    (NZ_TABLE.replace('agency = "143"', 'agency = "6"'), "code_lists.nz-gis.agency: 6 (UN/ECE)"),
    (
        NZ_TABLE + NZ_TABLE.replace("nz-gis", "nz-gis-2"),
        "code_lists.nz-gis-2: governs the codes of nz-gis-2 (agency 143, element 7365) that "
        "code_lists.nz-gis does",
    ),
    (
        NZ_TABLE.replace("[code_lists.nz-gis]", "[code_lists.NZ_GIS]"),
        "code_lists.NZ_GIS: 'NZ_GIS' is not a code list name",
    ),
    (
        '[code_lists.nz]\nfile = "nz.toml"\nagency = "143"\n',
        "code_lists.nz: file names the whole list; remove agency or file",
    ),
    ('[code_lists.nz]\nfile = "missing.toml"\n', "code_lists.nz.file: "),
]


@pytest.mark.parametrize(("text", "complaint"), CONFIG_ERRORS)
def test_a_bad_code_list_is_refused_naming_file_table_and_key(
    tmp_path: Path, pki: Path, text: str, complaint: str
) -> None:
    path = write_config(tmp_path / "cn", pki)
    path.write_text(path.read_text() + text)
    message = refusal(path)
    assert f"{path}: {complaint}" in message


def test_a_list_file_is_not_read_through_a_link_nor_when_too_large(
    tmp_path: Path, pki: Path
) -> None:
    path = write_config(tmp_path / "cn", pki)
    os.symlink(EXAMPLE, path.parent / "linked.toml")
    (path.parent / "large.toml").write_bytes(b"#" * (core.MAX_LIST_BYTES + 1))
    (path.parent / "bad.toml").write_text(EXAMPLE.read_text().replace("agency", "agencie"))
    path.write_text(
        path.read_text()
        + '\n[code_lists.a]\nfile = "linked.toml"\n[code_lists.b]\nfile = "large.toml"\n'
        + '[code_lists.c]\nfile = "bad.toml"\n'
    )
    message = refusal(path)
    assert f"code_lists.a.file: {path.parent / 'linked.toml'} is a symbolic link" in message
    assert f"code_lists.b.file: {path.parent / 'large.toml'} is larger than" in message
    assert f"code_lists.c.file: {path.parent / 'bad.toml'}: agencie: unknown key" in message


def test_config_check_prints_code_list_problems_and_counts_them(
    tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "cn", pki)
    path.write_text(path.read_text() + NZ_TABLE)
    assert main(["config", "check", "--config", str(path)]) == 0
    assert "1 code list" in capsys.readouterr().out
    # a list that would replace a shipped one is caught by the check, not only at start
    path.write_text(
        path.read_text()
        + '\n[code_lists.my-cty]\nagency = "ZZZ"\nelement = "4441"\nqualifier = "CTY"\n'
        + 'codes = { X = "x" }\n'
    )
    assert main(["config", "check", "--config", str(path)]) == 2
    out = capsys.readouterr().out
    assert "my-cty" in out and "hub-control-types" in out


# --- customs-hub translate --config ---------------------------------------------------------


def test_translate_with_a_config_uses_its_code_lists(
    tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "cn", pki)
    edit(path, "[routes]", f'[code_lists.nz-gis]\nfile = "{EXAMPLE}"\n\n[routes]')
    out = tmp_path / "result.json"
    args = ["translate", str(NATIONAL), "--to", "proto-json", "-o", str(out)]
    assert main([*args, "--config", str(path)]) == 0
    text = out.read_text()
    assert '"controlResult"' in text and '"CONTROL_STAGE_RELEASED"' in text
    assert '"stageCode"' in text and '"819"' in text and '"143"' in text
    # without the config the same file is a Response whose status keeps the code
    assert main(args) == 0
    assert '"response"' in out.read_text() and '"819"' in out.read_text()
    # and with a list that leaves 819 out, it is refused naming the list and segment line
    small = tmp_path / "small.toml"
    small.write_text(EXAMPLE.read_text().replace('"819" = "example: goods released"\n', "")
                     .replace('"819" = "RELEASED"\n', ""))  # fmt: skip
    edit(path, f'file = "{EXAMPLE}"', f'file = "{small}"')
    assert main([*args, "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{NATIONAL}:6: edifact-code:" in err and "code list nz-gis" in err


@pytest.mark.slow
def test_translate_as_a_process_uses_the_configured_list(tmp_path: Path, pki: Path) -> None:
    path = write_config(tmp_path / "cn", pki)
    edit(path, "[routes]", f'[code_lists.nz-gis]\nfile = "{EXAMPLE}"\n\n[routes]')
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli.main", "translate", str(NATIONAL), "--to", "proto-json",
         "--config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "CONTROL_STAGE_RELEASED" in done.stdout and '"819"' in done.stdout


# --- through a running hub ------------------------------------------------------------------


async def test_a_dropped_national_cusres_reaches_the_partner_as_a_control_result(
    federation: Federation,
) -> None:
    """CN's hub.toml registers the example NZ list; a CUSRES dropped in CN's folder with
    GIS+819::143 goes to NZ as a ControlResult, stage RELEASED, with the code as written."""
    cn_path = federation.root / "CN" / "hub.toml"
    cn_path.write_text(cn_path.read_text() + f'\n[code_lists.nz-gis]\nfile = "{EXAMPLE}"\n')
    root = add_folder(federation, "CN", 'settle_seconds = 0\nrecipients = ["NZ"]')
    assert federation.configs["CN"].code_lists.named("nz-gis") is not None
    cn: RunningHub = await federation.start("CN")
    nz: RunningHub = await federation.start("NZ")
    drop(root, "status.edi", NATIONAL.read_bytes())
    await eventually(lambda: inbox_empty(root))
    assert files(root / "processed") == ["status.edi"], files(root / "rejected")

    async def received() -> bool:
        return len(await nz.hub.store.views.inbound()) == 1

    await eventually(received)
    [row] = await nz.hub.store.views.inbound()
    assert row.body_type == "customs_hub.v1.ControlResult"
    result = ControlResult.FromString(row.body)
    assert result.stage == cpb.CONTROL_STAGE_RELEASED
    assert result.stage_code == cpb.Code(value="819", agency="143")
    assert cn.hub.translators.code_lists.named("nz-gis") is not None


def test_the_default_factory_has_the_shipped_lists() -> None:
    translator = edifact(LIMITS)
    assert translator.code_lists.named("hub-control-types") is not None
    with pytest.raises(TranslationError):
        translator.decode(cusres_with("FTX+AAH++LOUD:CTY:ZZZ'", "GIS+4'"))


async def test_a_reload_gives_the_translators_the_new_code_lists(
    federation: Federation,
) -> None:
    """Lists added by a reload are used for the next document (the translation process's too);
    a list that cannot be used refuses the reload and the running lists stay."""
    cn: RunningHub = await federation.start("CN")
    hub = cn.hub
    data = NATIONAL.read_bytes()
    assert isinstance(hub.translation.decode("edifact", data), Response)
    path = federation.configs["CN"].path
    good = path.read_text()
    path.write_text(good + f'\n[code_lists.nz-gis]\nfile = "{EXAMPLE}"\n')
    change = await cn.reload()
    assert change.code_lists and "code lists changed" in change.summary() and change.recorded
    assert hub.translators.code_lists.named("nz-gis") is not None
    result = hub.translation.decode("edifact", data)
    assert isinstance(result, ControlResult) and result.stage == cpb.CONTROL_STAGE_RELEASED
    # a list file changed on disk, hub.toml unchanged: a change too (and a new trail leaf)
    edited = path.parent / "nz.toml"
    edited.write_text(EXAMPLE.read_text().replace('"819" = "RELEASED"', '"819" = "DETAINED"'))
    path.write_text(good + '\n[code_lists.nz-gis]\nfile = "nz.toml"\n')
    assert (await cn.reload()).recorded
    detained = hub.translation.decode("edifact", data)
    assert isinstance(detained, ControlResult)
    assert detained.stage == cpb.CONTROL_STAGE_DETAINED
    # one that would replace a shipped list is refused; the lists in use stay
    path.write_text(
        path.read_text()
        + '\n[code_lists.my-cty]\nagency = "ZZZ"\nelement = "4441"\nqualifier = "CTY"\n'
        + 'codes = { X = "x" }\n'
    )
    with pytest.raises(ConfigError) as refused:
        await cn.reload()
    assert "hub-control-types" in refused.value.message
    assert hub.config.code_lists.named("my-cty") is None
    assert hub.translators.code_lists.named("my-cty") is None
    again = hub.translation.decode("edifact", data)
    assert isinstance(again, ControlResult) and again.stage == cpb.CONTROL_STAGE_DETAINED
    [*_, rejection] = await hub.store.views.rejections("reload")
    assert rejection.reason == "config-invalid"


def test_the_example_list_in_examples_is_the_one_tested() -> None:
    example = Path(__file__).parents[1] / "examples" / "code-lists" / "example-nz-gis.toml"
    assert example.read_bytes() == EXAMPLE.read_bytes()
    assert b"EXAMPLE ONLY" in example.read_bytes()


def test_a_large_national_cusres_is_read_with_the_lists_in_the_translation_process() -> None:
    """Documents above ISOLATE_BYTES are translated in a worker process: the lists go there."""
    containers = [f"EQD+CN+MSKU{n:07d}'" for n in range(999)]
    seals = [f"RFF+SN:NZ-SEAL-{n:07d}'" for n in range(999)]
    data = cusres_with("GIS+819::143'", *containers, *seals)
    assert len(data) > ISOLATE_BYTES
    translation = Translation(Translators(LIMITS, CodeLists((example_list(),))), LIMITS)
    try:
        result = translation.decode("edifact", data)
        assert translation.isolated == 1
    finally:
        translation.close()
    assert isinstance(result, ControlResult) and result.stage == cpb.CONTROL_STAGE_RELEASED
    assert result.stage_code.agency == "143" and len(result.container_ids) == 999
    without = Translation(Translators(LIMITS), LIMITS)
    try:
        assert isinstance(without.decode("edifact", data), Response)
        assert without.isolated == 1
    finally:
        without.close()


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=10),
    st.dictionaries(st.sampled_from([*core.KEYS, "file", "x"]), _VALUES, max_size=8),
)
def test_the_list_reader_gives_a_list_or_problems_and_never_raises(
    name: str, table: dict[str, object]
) -> None:
    problems: list[str] = []
    found = core.parse(name, table, problems)
    assert (found is None) == bool(problems)


# --- the message: national codes, nothing dropped ----------------------------------------

NATIONAL_AGENCY = DATA / "cusres_national_agency.edi"


def content_segments(data: bytes) -> list[tuple[str, tuple[tuple[str, ...], ...]]]:
    [message] = read_interchange(data, max_bytes=LIMITS.max_bytes, max_segments=1000).messages
    return [(s.tag, s.elements) for s in message[1:-1]]


@pytest.mark.parametrize("lists", ["none", "nz"])
def test_a_control_result_in_national_codes_is_read_whole_and_written_back_whole(
    lists: str,
) -> None:
    """A CUSRES as a national system writes it: GIS, FTX, LOC and NAD codes of agency 143,
    a control reference D.96B has no code for. With NZ's list it is a ControlResult with the
    stage its code maps to; without, a Response keeping the codes; either way every segment
    comes back, in order, with its agency."""
    data = NATIONAL_AGENCY.read_bytes()
    translator = with_nz() if lists == "nz" else shipped_only()
    message = translator.decode(data)
    if lists == "nz":
        assert isinstance(message, ControlResult)
        assert message.stage == cpb.CONTROL_STAGE_RELEASED
        assert message.stage_code == cpb.Code(value="819", list_id="", agency="143")
        assert list(message.container_ids) == ["MSKU7081234"]
    else:
        assert isinstance(message, Response)
        assert [s.name_code for s in message.status] == ["819", "A7"]
    kept = {(s.tag, s.elements[1].components[2]) for s in message.edifact_residue.segments
            if s.tag in ("LOC", "NAD", "GIS") and len(s.elements) > 1
            and len(s.elements[1].components) > 2}  # fmt: skip
    assert ("LOC", "143") in kept and ("NAD", "143") in kept
    assert content_segments(translator.encode(message)) == content_segments(data)
