"""Plain-text tables for the command line: columns padded to their widest cell, the last
column left unpadded (it holds free text such as business keys or a description); and the one
way the command line writes a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime


def rfc3339(value: datetime, timespec: str = "auto") -> str:
    """``value`` in UTC as RFC 3339 with a ``Z`` (a time without a zone is taken as UTC, as
    the store writes every time in UTC)."""
    utc = value.astimezone(UTC) if value.tzinfo else value
    return utc.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def render(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(
            [*(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)), line[-1]]
        ).rstrip()
        for line in lines
    )
