"""The hub's log lines: text (one line per record, outside text escaped) or one JSON object per
record, as ``[log] format`` says (issue 20).

Both keep a record to one line whatever its message holds: the text form escapes control
characters and line separators, the JSON form is JSON (which escapes them). Messages never
carry payload content or trade data (the code that logs takes care of that); this module only
shapes the line.

What it must never do: let a message's text start a second log line, or fail to log a record.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from opentelemetry import trace

TEXT, JSON = "text", "json"
FORMATS = (TEXT, JSON)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# control characters as escapes: C0 (newline, carriage return, escape, ...), DEL and C1
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS |= {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_CONTROLS |= {0x2028: "\\u2028", 0x2029: "\\u2029"}  # line and paragraph separators


class OneLineFormatter(logging.Formatter):
    """Every log record's message on one line: control characters and line separators in it
    (a file name, a partner's status detail, a translator's message quoting a document) are
    escaped, so outside text in a message cannot forge a log line. A traceback appended after
    the message keeps its lines; the hub logs tracebacks of its own faults only."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_CONTROLS)


def trace_ids(record: logging.LogRecord) -> tuple[str, str] | None:
    """The trace and span id (hex) a record belongs to: those it was given
    (``extra=telemetry.log_ids(context)``), else the span current where it was logged; None
    outside any trace."""
    given = getattr(record, "trace_id", None), getattr(record, "span_id", None)
    if isinstance(given[0], str) and isinstance(given[1], str):
        return given[0], given[1]
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (RFC 3339, UTC, milliseconds),
    ``level``, ``logger``, ``message``, ``trace_id`` and ``span_id`` when the record belongs
    to a trace, and ``exception`` (the traceback as one string) when the record has one.
    JSON escapes every control character, so nothing in a message can break the line."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, str] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = trace_ids(record)
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False).translate(
            {0x2028: "\\u2028", 0x2029: "\\u2029"}  # valid JSON, but line breaks to some readers
        )


def formatter(form: str) -> logging.Formatter:
    """The formatter of ``form`` (``text`` or ``json``)."""
    if form == JSON:
        return JsonFormatter()
    return OneLineFormatter(TEXT_FORMAT)


def use_format(form: str) -> None:
    """Every handler of the root logger writes ``form`` from now on."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(form))
