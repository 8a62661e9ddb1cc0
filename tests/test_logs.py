"""``[log] format``: one JSON object per log line, or text; either way a message cannot break
its line (issue 20's structured logs, first step)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import grpc

from hub.config import load_config
from hub.logs import TEXT_FORMAT, JsonFormatter, OneLineFormatter
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from tests.hubprocess import HubProcess, aeo_request, until
from tests.test_config_check import edit, refusal, write_config

FORGED = "partner said: fine\n2026-12-08 01:00:00 ERROR customs_hub forged line\u2028more"


def record(message: str, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("inside")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("customs_hub.delivery", logging.WARNING, "f.py", 1, message, (), info)


def test_json_lines_are_one_object_each_whatever_the_message_holds() -> None:
    line = JsonFormatter().format(record(FORGED))
    assert "\n" not in line and "\u2028" not in line
    parsed = json.loads(line)
    assert parsed["message"] == FORGED
    assert parsed["level"] == "WARNING" and parsed["logger"] == "customs_hub.delivery"
    assert parsed["time"].endswith("Z") and "T" in parsed["time"]
    with_traceback = json.loads(JsonFormatter().format(record("failed", exc=True)))
    assert "ValueError: inside" in with_traceback["exception"]


def test_text_lines_escape_what_would_forge_a_line() -> None:
    line = OneLineFormatter(TEXT_FORMAT).format(record(FORGED))
    assert "\n" not in line and "\u2028" not in line and "\\n2026-12-08" in line


def test_config_takes_text_or_json_and_refuses_anything_else(tmp_path: Path, pki: Path) -> None:
    path = write_config(tmp_path / "CN", pki)
    assert load_config(path).log_format == "text"
    text = path.read_text()
    path.write_text(text + '\n[log]\nformat = "json"\n')
    assert load_config(path).log_format == "json"
    edit(path, 'format = "json"', 'format = "yaml"')
    assert "log.format" in refusal(path) and '"text" or "json"' in refusal(path)
    edit(path, 'format = "yaml"', 'colour = "json"')
    assert "log.colour" in refusal(path)


async def test_a_hub_started_with_json_logs_writes_json_lines(tmp_path: Path, pki: Path) -> None:
    """A real `customs-hub serve`: its delivery warning (NZ is down) is a JSON line."""
    path = write_config(tmp_path / "CN", pki)
    path.write_text(path.read_text() + '\n[log]\nformat = "json"\n')
    hub = HubProcess("CN", path)
    try:
        hub.start()
        await hub.ready()
        async with grpc.aio.insecure_channel(hub.domestic) as channel:
            await sgrpc.DomesticStub(channel).Submit(aeo_request("log-1"), timeout=10)

        async def warned() -> bool:
            return "delivery to NZ failed" in hub.log.read_text()

        await until(warned, 30, "a delivery warning")
        await hub.stop_gracefully()
    finally:
        hub.stop_quietly()
    logged = [line for line in hub.log.read_text().splitlines() if line.startswith("{")]
    parsed = [json.loads(line) for line in logged]
    assert any(p["level"] == "WARNING" and "delivery to NZ failed" in p["message"] for p in parsed)
    others = [line for line in hub.log.read_text().splitlines() if "delivery to NZ" in line]
    assert all(line.startswith("{") for line in others)  # no text line beside them
