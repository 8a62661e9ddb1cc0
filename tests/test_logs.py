"""``[log] format``: one JSON object per log line, or text; either way a message cannot break
its line (issue 20's structured logs, first step)."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import grpc
from opentelemetry.sdk.trace import TracerProvider

from hub.app.telemetry import log_ids
from hub.cli.main import main
from hub.config import load_config
from hub.logs import TEXT_FORMAT, JsonFormatter, OneLineFormatter
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from tests.hubprocess import CLI, HubProcess, aeo_request, until
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


def test_json_lines_name_the_trace_they_belong_to() -> None:
    """Inside a span, or given its ids (``extra=log_ids(...)``), a JSON line carries the trace
    and span id; outside any trace it carries neither."""
    assert "trace_id" not in json.loads(JsonFormatter().format(record("alone")))
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        inside = json.loads(JsonFormatter().format(record("inside")))
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    given = record("given")
    given.__dict__.update(log_ids(context))
    parsed = json.loads(JsonFormatter().format(given))
    assert (parsed["trace_id"], parsed["span_id"]) == (inside["trace_id"], inside["span_id"])
    assert log_ids(None) == {}


def _serve_on_a_taken_port(tmp_path: Path, pki: Path, env: dict[str, str]) -> str:
    """What ``customs-hub serve`` writes on standard error when its partner port is taken by
    a socket that does not share it (gRPC's C core logs the failed bind its own way)."""
    path = write_config(tmp_path / "CN", pki)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        text = path.read_text()
        listen = re.search(r'^listen = "127.0.0.1:(\d+)"', text, re.MULTILINE)
        assert listen is not None
        path.write_text(text.replace(listen[0], f'listen = "127.0.0.1:{port}"', 1))
        done = subprocess.run(
            [*CLI, "serve", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    return done.stderr


def test_grpc_core_lines_are_silenced_unless_asked_for(tmp_path: Path, pki: Path) -> None:
    """By default the hub's standard error holds its own lines only; GRPC_VERBOSITY set by the
    operator is kept, and then the C core's line is there too (so the check can fail)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    quiet = _serve_on_a_taken_port(tmp_path / "quiet", pki, env)
    assert "add_port.cc" not in quiet and "Failed to add port" not in quiet
    loud = _serve_on_a_taken_port(tmp_path / "loud", pki, {**env, "GRPC_VERBOSITY": "ERROR"})
    assert "Failed to add port" in loud


def test_libraries_that_quote_statements_stay_quiet_at_debug() -> None:
    """`-vv` gives the hub's debug lines, not aiosqlite's or SQLAlchemy's, which quote every
    statement's parameters (document bodies, trader ids)."""
    from hub.cli.main import QUIET_LOGGERS

    before = {name: logging.getLogger(name).level for name in (*QUIET_LOGGERS, "")}
    try:
        assert main(["-vv", "formats"]) == 0
        for name in ("aiosqlite", "sqlalchemy", "sqlalchemy.engine"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
            assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


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
