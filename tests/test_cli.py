"""The command line, run as operators run it: real processes, real files."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

import hub
from hub.cli.demo import sample_aeo_status, sample_declaration
from hub.cli.main import CliError, build_parser, main, read_submission
from hub.config import load_config
from hub.core.errors import ConfigError
from hub.core.times import rfc3339
from hub.pb.customs_hub.v1 import service_pb2 as spb
from tests.conftest import Federation, free_port
from tests.test_delivery import submit_batch
from tests.test_exchange import eventually
from tests.testdata import CDS_SAMPLES

CLI = [sys.executable, "-m", "hub.cli.main"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.slow
def test_demo_runs_and_exits_zero() -> None:
    result = run("demo", timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CN queued goods_declaration" in out and "for NZ" in out
    assert out.count("ACCEPTED") == 4  # CN->NZ, NZ->CN, NZ->SG, SG->CN
    # mutual recognition at CN: recognised, suspended, and SG's control in an annotation
    assert "RECOGNISED under CN-NZ as security-safety: reduced-inspections" in out
    assert "NOT RECOGNISED: status-suspended (agreement CN-NZ)" in out
    assert "container MSKU7081234: controlled by SG (physical), outcome no-findings" in out
    assert "DOES NOT MATCH" not in out
    assert "All hubs stopped cleanly." in out


@pytest.mark.slow
def test_demo_trace_draws_one_declaration_across_both_administrations() -> None:
    result = run("demo", "--trace", timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    tree = out[out.index("== The trace of CN's declaration") :].splitlines()
    spans = [line.split(maxsplit=3) for line in tree[2:] if line.startswith(("  CN ", "  NZ "))]
    names = [(hub, rest) for hub, _start, _took, rest in spans]
    assert names[0] == ("CN", "submit (partner NZ)")
    cn = " ".join(rest for hub, rest in names if hub == "CN")
    for name in ("policy", "sign", "store", "outbox wait", "deliver", "receipt"):
        assert name in cn, name
    assert "attempt 1, outcome accepted" in cn
    nz = [rest for hub, rest in names if hub == "NZ"]
    assert nz[0].endswith("(linked, own trace) receive (partner CN, outcome accepted)")
    assert [n.split("─ ")[-1].split(" (")[0] for n in nz[1:]] == [
        "verify",
        "store",
        "receipt",
        "hand-over",
    ]
    assert "All hubs stopped cleanly." in out


@pytest.mark.slow
def test_config_errors_name_file_and_key(tmp_path: Path, pki: Path) -> None:
    assert (
        run(
            "init",
            "--party",
            "CN",
            "--pki",
            str(pki),
            "--out",
            str(tmp_path / "cn"),
            "--partner",
            "NZ=127.0.0.1:7501",
        ).returncode
        == 0
    )
    config = tmp_path / "cn" / "hub.toml"
    text = config.read_text()
    config.write_text(text.replace("clock_skew_seconds = 300", "clock_skew_seconds = -1"))
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(config) in str(info.value) and "limits.clock_skew_seconds" in str(info.value)
    result = run("messages", "--config", str(config))
    assert result.returncode == 2 and "limits.clock_skew_seconds" in result.stderr
    config.write_text(text.replace('"by-country"', '"nowhere"'))
    with pytest.raises(ConfigError):
        load_config(config)


@pytest.mark.slow
def test_limits_from_config_are_used(tmp_path: Path, pki: Path) -> None:
    assert (
        run("init", "--party", "CN", "--pki", str(pki), "--out", str(tmp_path / "cn")).returncode
        == 0
    )
    config = tmp_path / "cn" / "hub.toml"
    config.write_text(
        config.read_text().replace("clock_skew_seconds = 300", "clock_skew_seconds = 42")
    )
    assert load_config(config).limits.clock_skew.total_seconds() == 42
    # translate --config applies the hub's XML limits: a median declaration has a few hundred
    # elements, so a limit of 50 refuses it, while the built-in limits accept it.
    declaration = CDS_SAMPLES / "TT_IM001b/TT_IM001b.xml"
    assert run("translate", str(declaration), "--to", "proto-json").returncode == 0
    config.write_text(
        config.read_text().replace("clock_skew_seconds = 42", "xml_max_elements = 50")
    )
    refused = run("translate", str(declaration), "--to", "proto-json", "--config", str(config))
    assert refused.returncode == 2 and refused.stdout == ""
    assert "TT_IM001b.xml" in refused.stderr and "limit-exceeded" in refused.stderr


def test_submission_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{\n  "goodsDeclaration": {\n    "functionCode": "9",,\n  }\n}\n')
    with pytest.raises(CliError, match=r"bad\.json:3:\d+: not-well-formed: .*not valid JSON"):
        read_submission(bad_json)
    bad_field = tmp_path / "field.json"
    bad_field.write_text(json.dumps({"goodsDeclaration": {"functionKode": "9"}}))
    with pytest.raises(CliError, match=r"field\.json: .*functionKode"):
        read_submission(bad_field)
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(CliError, match=r"unsupported-document: .*exactly one of goodsDeclaration"):
        read_submission(empty)


def _wait_healthy(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = proc.stdout.readline()
        if line in out:
            return
        if proc.poll() is not None:
            raise AssertionError(f"hub exited: {proc.stderr.read() if proc.stderr else ''}")
    raise AssertionError("hub did not start")


@pytest.mark.slow
def test_serve_send_messages_as_processes(tmp_path: Path, pki: Path) -> None:
    ports = {p: (free_port(), free_port()) for p in ("CN", "NZ")}
    for party, other in (("CN", "NZ"), ("NZ", "CN")):
        result = run(
            "init",
            "--party",
            party,
            "--pki",
            str(pki),
            "--out",
            str(tmp_path / party),
            "--listen",
            f"127.0.0.1:{ports[party][0]}",
            "--domestic-listen",
            f"127.0.0.1:{ports[party][1]}",
            "--audit-listen",
            f"127.0.0.1:{free_port()}",  # each hub its own auditors' port
            "--partner",
            f"{other}=127.0.0.1:{ports[other][0]}",
        )
        assert result.returncode == 0, result.stderr
    procs = {
        party: subprocess.Popen(
            [*CLI, "serve", "--config", str(tmp_path / party / "hub.toml")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for party in ("CN", "NZ")
    }
    try:
        for party, proc in procs.items():
            _wait_healthy(proc, f"{party}: partners on")
        doc = tmp_path / "declaration.json"
        doc.write_text(
            json_format.MessageToJson(spb.SubmitRequest(goods_declaration=sample_declaration()))
        )
        sent = run("send", "--config", str(tmp_path / "CN" / "hub.toml"), "--to", "NZ", str(doc))
        assert sent.returncode == 0, sent.stderr
        message_id = sent.stdout.split()[1]
        refused = run("send", "--config", str(tmp_path / "CN" / "hub.toml"), "--to", "AU", str(doc))
        assert (
            refused.returncode == 2
            and "unknown-partner" in refused.stderr
            and "declaration.json" in refused.stderr
        )
        deadline = time.monotonic() + 30
        rows: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            listing = run("messages", "--config", str(tmp_path / "CN" / "hub.toml"), "--json")
            rows = [json.loads(line) for line in listing.stdout.splitlines()]
            if rows and rows[0]["receipt"] == "accepted":
                break
            time.sleep(0.2)
        assert rows[0]["message_id"] == message_id and rows[0]["partner"] == "NZ"
        assert rows[0]["business_keys"] == {
            "container": ["MSKU7081234"],
            "lrn": ["CN2026LRN000417"],
            "ucr": ["6CN913301006020261125"],
        }
        table = run("messages", "--config", str(tmp_path / "NZ" / "hub.toml")).stdout
        assert (
            message_id in table and "GoodsDeclaration" in table and "lrn=CN2026LRN000417" in table
        )
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for party, proc in procs.items():
            assert proc.wait(timeout=20) == 0, f"{party} did not stop cleanly"
            if proc.stdout:
                proc.stdout.close()
            if proc.stderr:
                proc.stderr.close()


def test_pki_init_writes_private_keys_owner_only(tmp_path: Path) -> None:
    assert run("pki", "init", "--parties", "CN,NZ", "--out", str(tmp_path)).returncode == 0
    for party in ("CN", "NZ"):
        for key in ("ca.key", "tls.key", "signing.key"):
            assert os.stat(tmp_path / party / key).st_mode & 0o077 == 0


def test_version_is_printed() -> None:
    done = run("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"customs-hub {hub.__version__}"


def test_verbose_is_taken_after_the_command_too() -> None:
    """Issue 16: `-v` only worked before the subcommand."""
    for args in (["-v", "formats"], ["formats", "-v"], ["formats", "-vv"]):
        done = run(*args)
        assert done.returncode == 0, (args, done.stderr)
        assert "wco-xml" in done.stdout


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly() -> None:
    """Issue 16: `customs-hub outbox | head -1` ended in a BrokenPipeError traceback. The pipe
    here is closed before the command writes, so every write meets a closed pipe."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*CLI, "formats"], stdout=write_end, stderr=subprocess.PIPE, timeout=60, check=False
        )
    finally:
        os.close(write_end)
    assert done.stderr == b""
    assert done.returncode == 141  # as a shell reports a command its pipe closed


def test_the_command_line_writes_every_time_as_rfc3339_with_z() -> None:
    """Issue 16: `messages` wrote +00:00 and the trail Z. One function writes times now
    (hub/core/times.py), and no command line module or connector formats one itself."""
    from datetime import UTC, datetime, timedelta, timezone

    from hub.core.times import rfc3339

    at = datetime(2026, 12, 7, 13, 5, 9, 120000, tzinfo=UTC)
    assert rfc3339(at) == "2026-12-07T13:05:09.120000Z"
    assert rfc3339(at.astimezone(timezone(timedelta(hours=8))), "seconds") == "2026-12-07T13:05:09Z"
    assert rfc3339(at.replace(tzinfo=None)) == "2026-12-07T13:05:09.120000Z"  # SQLite's naive
    hub_dir = Path(__file__).resolve().parent.parent / "hub"
    written = [*hub_dir.glob("cli/*.py"), *hub_dir.glob("connectors/*.py")]
    assert [p.name for p in written if ".isoformat(" in p.read_text()] == []


async def test_messages_filters_and_limit_are_applied_by_the_store(
    federation: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16: `messages` loaded every row. Its filters and limit are SQL now (on SQLite and
    PostgreSQL alike); the most recent rows are shown, and a note says when more matched."""
    cn = await federation.start("CN")
    nz = await federation.start("NZ")  # SG stays down: CN's message to it stays queued
    await submit_batch(
        cn,
        [
            spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["NZ"]),
            spb.SubmitRequest(aeo_status=sample_aeo_status("CN", "CNAEO1"), recipients=["NZ"]),
            spb.SubmitRequest(aeo_status=sample_aeo_status("CN", "CNAEO2"), recipients=["SG"]),
        ],
    )
    await submit_batch(
        nz, [spb.SubmitRequest(aeo_status=sample_aeo_status("NZ", "NZAEO1"), recipients=["CN"])]
    )

    async def settled() -> bool:
        receipts = [r for _, r in await cn.hub.store.views.outbound() if r is not None]
        return len(receipts) == 2 and len(await cn.hub.store.views.inbound()) == 1

    await eventually(settled)
    config = str(cn.config.path)

    async def listed(*args: str) -> tuple[list[dict[str, Any]], str]:
        code = await asyncio.to_thread(main, ["messages", "--config", config, "--json", *args])
        out, err = capsys.readouterr()
        assert code == 0, err
        return [json.loads(line) for line in out.splitlines()], err

    async def kinds(*args: str) -> list[tuple[str, str, str]]:
        rows, _ = await listed(*args)
        return sorted((r["direction"], r["partner"], r["type"].rsplit(".")[-1]) for r in rows)

    everything = [
        ("in", "NZ", "AeoStatus"),
        ("out", "NZ", "AeoStatus"),
        ("out", "NZ", "GoodsDeclaration"),
        ("out", "SG", "AeoStatus"),
    ]
    assert await kinds() == everything
    assert await kinds("--partner", "NZ") == everything[:3]
    assert await kinds("--type", "GoodsDeclaration") == [everything[2]]
    assert await kinds("--type", "customs_hub.v1.AeoStatus", "--direction", "out") == [
        everything[1],
        everything[3],
    ]
    assert await kinds("--direction", "in") == [everything[0]]
    assert await kinds("--status", "queued") == [everything[3]]
    assert await kinds("--status", "accepted") == [everything[0]]
    assert await kinds("--status", "delivered", "--partner", "SG") == []
    assert await kinds("--since", "1h") == everything
    assert await kinds("--since", "2020-01-01T00:00:00Z") == everything
    assert await kinds("--since", rfc3339(datetime.now(UTC) + timedelta(minutes=5))) == []
    rows, note = await listed()
    newest = max(rows, key=lambda r: r["at"])
    limited, note = await listed("--limit", "1")
    assert limited == [newest] and "the 1 most recent" in note
    limited, note = await listed("--limit", "4")
    assert len(limited) == 4 and note == ""
    refused = await asyncio.to_thread(main, ["messages", "--config", config, "--since", "2x"])
    assert refused == 2 and "--since" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["messages", "--config", config, "--type", "Invoice"])
    assert "GoodsDeclaration" in capsys.readouterr().err  # the names it takes


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("customs-hub",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from _parsers(command, (*path, name))


def test_every_option_of_every_command_has_help() -> None:
    """Issue 16: many options had no help. Every argument of every command, options and
    positionals, says what it is (only -h is argparse's own)."""
    parser = build_parser()
    missing = [
        (" ".join(path), action.option_strings or action.dest)
        for path, command in _parsers(parser)
        for action in command._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and not (action.help or "").strip()
    ]
    assert missing == []
    assert len(list(_parsers(parser))) > 15  # the walk reached the subcommands


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["init", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: 127.0.0.1:7443)" in shown and "(default: sqlite:///hub.db)" in shown
    with pytest.raises(SystemExit):
        main(["messages", "--help"])
    assert "(default: 100)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("action", ["retry", "drop", "reroute"])
def test_outbox_actions_have_their_own_help(
    action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16: `outbox retry --help` printed the generic usage of `outbox`."""
    with pytest.raises(SystemExit) as done:
        main(["outbox", action, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: customs-hub outbox {action} ")
    assert "--message-id" in out and "--partner" in out and "{list,retry,drop" not in out


def test_outbox_alone_lists_and_its_actions_work_as_before(
    tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--party", "CN", "--pki", str(pki), "--out", str(tmp_path)]) == 0
    config = str(tmp_path / "hub.toml")
    assert main(["db", "upgrade", "--config", config]) == 0
    capsys.readouterr()
    for listing in (["outbox", "--config", config], ["outbox", "list", "--config", config]):
        assert main(listing) == 0
        assert capsys.readouterr().out == "0 queued, 0 retrying, 0 dead\n"
    assert main(["outbox", "--config", config, "--json"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["outbox", "retry", "--config", config]) == 2
    assert "name --message-id ID or --partner PARTY" in capsys.readouterr().err
    for action in ("retry", "drop"):
        assert main(["outbox", action, "--config", config, "--partner", "NZ"]) == 2
        assert "no matching dead letters" in capsys.readouterr().err
    assert main(["outbox", "reroute", "--config", config, "--partner", "NZ", "--to", "SG"]) == 2
    assert "--to SG is not a partner in" in capsys.readouterr().err
    assert main(["outbox"]) == 2
    assert "--config" in capsys.readouterr().err


def test_init_adds_an_audit_port_only_when_asked(tmp_path: Path, pki: Path) -> None:
    """Issue 16: init added an auditors' port though its help said it was off by default."""
    common = ["init", "--party", "CN", "--pki", str(pki), "--partner", "NZ=127.0.0.1:7501"]
    assert main([*common, "--out", str(tmp_path / "plain")]) == 0
    plain = load_config(tmp_path / "plain" / "hub.toml")
    assert plain.audit_listen == "" and "[audit]" not in plain.path.read_text()
    port = f"127.0.0.1:{free_port()}"
    assert main([*common, "--out", str(tmp_path / "audited"), "--audit-listen", port]) == 0
    assert load_config(tmp_path / "audited" / "hub.toml").audit_listen == port
