"""How the hub writes a time for people and files: RFC 3339 in UTC with a ``Z`` (pure core)."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(value: datetime, timespec: str = "auto") -> str:
    """``value`` in UTC as RFC 3339 with a ``Z`` (a time without a zone is taken as UTC, as
    the store writes every time in UTC)."""
    utc = value.astimezone(UTC) if value.tzinfo else value
    return utc.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"
