"""[agreements] in hub.toml (issue 18): read into hub/core/agreements.py's values, and every
mistake refused at load with the file, the table and the key: unknown keys, benefit codes,
programmes, partners, message types and fields; dates out of order; agreements that would
both recognise a programme of a partner, or both cover a message type with it in the same
direction, on the same day. Real files from `pki init`; `customs-hub config check` reports
them the same way."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from hub.config import load_config
from hub.core.agreements import BENEFITS
from tests.test_config_check import config_check, refusal, write_config

AEO = "customs_hub.v1.AeoStatus"

GOOD = """
[agreements.CN-NZ]
partners = ["NZ"]
status = "in-force"
effective_from = "2025-01-01"
effective_until = ""
recognises = { security-safety = "security-safety", full = "full" }
benefits = ["reduced-inspections", "priority-treatment", "control-results"]

[agreements.CN-NZ.share.AeoStatus]
send = true
receive = true
fields = ["issuing_administration", "aeo_id", "tin", "name", "programme", "status",
          "valid_from", "valid_to", "revision", "country_code"]

[agreements.CN-NZ.share.ControlResult]
send = true
fields = ["control_id", "declaration_id", "container_ids", "outcome", "revision", "evidence.sha256"]

[agreements.CN-SG]
partners = ["SG"]
status = "suspended"
effective_from = 2024-06-01
effective_until = 2026-05-31
recognises = { full = "full" }
benefits = ["joint-validation"]

[agreements.CN-SG.share.ControlResult]
receive = true
"""


@pytest.fixture
def config_path(tmp_path: Path, pki: Path) -> Path:
    return write_config(tmp_path / "hub", pki)


def add(path: Path, text: str) -> Path:
    path.write_text(path.read_text() + text)
    return path


def test_agreements_are_read_with_their_shares_and_digest(config_path: Path) -> None:
    config = load_config(add(config_path, GOOD))
    agreements = config.agreements
    assert agreements.configured and set(agreements.items) == {"CN-NZ", "CN-SG"}
    nz = agreements.items["CN-NZ"]
    assert nz.partners == ("NZ",) and nz.status == "in-force"
    assert nz.effective_from == datetime.date(2025, 1, 1) and nz.effective_until is None
    assert dict(nz.recognises) == {"security-safety": "security-safety", "full": "full"}
    assert nz.shares[AEO].send and nz.shares[AEO].receive and "reason" not in nz.shares[AEO].fields
    control = nz.shares["customs_hub.v1.ControlResult"]
    assert control.send and not control.receive and "evidence.sha256" in control.fields
    sg = agreements.items["CN-SG"]
    assert sg.status == "suspended" and sg.effective_until == datetime.date(2026, 5, 31)
    day = datetime.date(2025, 6, 1)
    assert agreements.covering("NZ", AEO, "send", day) is nz
    assert agreements.covering("SG", "customs_hub.v1.ControlResult", "receive", day) is sg
    assert agreements.covering("SG", AEO, "receive", day) is None
    assert len(agreements.digest) == 64


def test_no_agreements_table_is_no_policy(config_path: Path) -> None:
    agreements = load_config(config_path).agreements
    assert not agreements.configured and agreements.digest == ""


def test_a_change_of_any_agreement_changes_the_digest(config_path: Path) -> None:
    first = load_config(add(config_path, GOOD)).agreements.digest
    text = config_path.read_text().replace('"joint-validation"', '"reduced-inspections"')
    config_path.write_text(text)
    assert load_config(config_path).agreements.digest != first


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'status = "in-force"',
            'status = "in-force"\nstatsu = 1',
            "agreements.CN-NZ.statsu: unknown key; did you mean status?",
        ),
        (
            "send = true\nreceive = true",
            "send = true\nrecieve = true",
            "agreements.CN-NZ.share.AeoStatus.recieve: unknown key; did you mean receive?",
        ),
        (
            '"priority-treatment"',
            '"priority-treatmnet"',
            "agreements.CN-NZ.benefits: 'priority-treatmnet' is not a benefit code; "
            "did you mean priority-treatment?",
        ),
        (
            'full = "full" }\nbenefits = ["reduced',
            'ful = "full" }\nbenefits = ["reduced',
            "agreements.CN-NZ.recognises: 'ful' is not an AEO programme; did you mean full?",
        ),
        (
            '{ security-safety = "security-safety"',
            '{ security-safety = "safety"',
            "agreements.CN-NZ.recognises.security-safety: 'safety' is not an AEO programme",
        ),
        (
            'partners = ["NZ"]',
            'partners = ["NZ", "ZZ"]',
            "agreements.CN-NZ.partners must be a list of configured partners; found 'ZZ'",
        ),
        (
            "[agreements.CN-NZ.share.ControlResult]",
            "[agreements.CN-NZ.share.ControlResults]",
            "agreements.CN-NZ.share.ControlResults: not a known message type; "
            "did you mean [ControlResult]?",
        ),
        (
            '"valid_to", "revision"',
            '"valid_to", "revison"',
            "agreements.CN-NZ.share.AeoStatus.fields: 'revison': AeoStatus has no field 'revison'",
        ),
        (
            '"evidence.sha256"',
            '"evidence.sha512"',
            "agreements.CN-NZ.share.ControlResult.fields: 'evidence.sha512': evidence has no "
            "field 'sha512'",
        ),
        (
            'status = "in-force"',
            'status = "in force"',
            "agreements.CN-NZ.status must be 'in-force' or 'suspended'; found 'in force'",
        ),
        (
            'effective_from = "2025-01-01"',
            'effective_from = "2025-02-30"',
            "agreements.CN-NZ.effective_from must be a date, yyyy-mm-dd; found '2025-02-30'",
        ),
        (
            'effective_from = "2025-01-01"\neffective_until = ""',
            'effective_from = "2025-01-01"\neffective_until = "2024-12-31"',
            "agreements.CN-NZ.effective_until must be a date on or after effective_from "
            "(2025-01-01); found '2024-12-31'",
        ),
        (
            '"issuing_administration", "aeo_id"',
            '"aeo_id"',
            "agreements.CN-NZ.share.AeoStatus.fields must keep issuing_administration: a "
            "partner cannot accept the message without it",
        ),
        (
            "effective_from = 2024-06-01",
            'effective_from = "1 June 2024"',
            "agreements.CN-SG.effective_from must be",
        ),
    ],
)
def test_a_mistake_in_an_agreement_is_refused_naming_file_table_and_key(
    config_path: Path, old: str, new: str, expected: str
) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    message = refusal(add(config_path, text))
    assert f"{config_path}: {expected}" in message, message


def test_agreements_recognising_a_partners_programme_on_common_days_are_refused(
    config_path: Path,
) -> None:
    overlap = """
[agreements.CN-NZ-2]
partners = ["SG", "NZ"]
effective_from = "2026-01-01"
recognises = { full = "full" }
"""
    message = refusal(add(config_path, GOOD + overlap))
    assert (
        f"{config_path}: agreements.CN-NZ-2: recognises 'full' of NZ on dates agreement CN-NZ "
        "also does; their dates must not overlap" in message
    )
    # SG's agreement ends 2026-05-31: the new one overlaps it too (named by the later id)
    assert "agreements.CN-SG: recognises 'full' of SG on dates agreement CN-NZ-2" in message


def test_agreements_sharing_a_type_with_a_partner_the_same_way_on_common_days_are_refused(
    config_path: Path,
) -> None:
    second = """
[agreements.CN-NZ-aeo]
partners = ["NZ"]
effective_from = "2024-01-01"
effective_until = "2025-01-01"

[agreements.CN-NZ-aeo.share.AeoStatus]
receive = true
"""
    message = refusal(add(config_path, GOOD + second))
    assert (
        f"{config_path}: agreements.CN-NZ-aeo: share.AeoStatus: receive with NZ on dates "
        "agreement CN-NZ also covers; their dates must not overlap" in message
    )
    # a day apart, they are fine
    config_path.write_text(config_path.read_text().replace('"2025-01-01"\n\n', '"2024-12-31"\n\n'))
    assert load_config(config_path).agreements.items["CN-NZ-aeo"].effective_until == (
        datetime.date(2024, 12, 31)
    )


def test_config_check_reports_an_agreements_problem(config_path: Path) -> None:
    add(config_path, GOOD.replace('"joint-validation"', '"joint-validations"'))
    result = config_check("--config", str(config_path))
    assert result.returncode == 2
    assert (
        f"{config_path}: agreements.CN-SG.benefits: 'joint-validations' is not a benefit code"
        in result.stdout
    )


def test_the_agreements_command_lists_them_as_json_and_text(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli.main import main

    add(config_path, GOOD)
    assert main(["agreements", "--config", str(config_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    config = load_config(config_path)
    assert report["configured"] and report["digest"] == config.agreements.digest
    nz, sg = report["agreements"]
    assert nz["id"] == "CN-NZ" and nz["partners"] == ["NZ"] and nz["in_effect"] is True
    assert nz["effective_until"] == "" and nz["recognises"]["full"] == "full"
    assert nz["benefits"][0] == {
        "code": "reduced-inspections",
        "sentence": BENEFITS["reduced-inspections"],
    }
    assert {"type": AEO, "send": True, "receive": True}.items() <= nz["shares"][0].items()
    assert nz["digest"] == config.agreements.items["CN-NZ"].digest
    assert sg["status"] == "suspended" and sg["shares"][0]["fields"] == []
    today = datetime.datetime.now(datetime.UTC).date()
    assert sg["in_effect"] == (today <= datetime.date(2026, 5, 31))
    assert main(["agreements", "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "CN-NZ: NZ; in-force, in effect today" in out
    assert "AeoStatus: send and receive; fields: issuing_administration, aeo_id" in out
    assert "ControlResult: receive; fields: the whole message" in out


def test_the_agreements_command_without_agreements_says_no_policy_applies(
    tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli.main import main

    path = write_config(tmp_path / "plain", pki)
    assert main(["agreements", "--config", str(path)]) == 0
    assert "no sharing policy applies" in capsys.readouterr().out


def test_the_example_in_docs_agreements_md_loads(config_path: Path) -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "agreements.md").read_text()
    example = docs.split("```toml\n", 1)[1].split("```", 1)[0]
    agreements = load_config(add(config_path, example)).agreements
    assert set(agreements.items) == {"CN-NZ", "CN-SG"}
    assert (
        "officer_id" not in agreements.items["CN-NZ"].shares["customs_hub.v1.ControlResult"].fields
    )
