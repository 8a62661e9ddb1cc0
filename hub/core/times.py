"""How the hub writes a time for people and files: RFC 3339 in UTC with a ``Z``; and how it
reads one an operator wrote (pure core)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def rfc3339(value: datetime, timespec: str = "auto") -> str:
    """``value`` in UTC as RFC 3339 with a ``Z`` (a time without a zone is taken as UTC, as
    the store writes every time in UTC)."""
    utc = value.astimezone(UTC) if value.tzinfo else value
    return utc.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


# what a duration on the command line may end in (``--since 2h``), in seconds
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """A point in time an operator wrote: RFC 3339 (``2026-12-07T13:05:09Z``; a time without a
    zone is UTC) or a duration back from ``now`` (``30m``, ``2h``, ``7d``). A ValueError
    saying what is accepted otherwise."""
    text = text.strip()
    unit = _UNITS.get(text[-1:].lower())
    if unit is not None and text[:-1].isdigit():
        return now - timedelta(seconds=int(text[:-1]) * unit)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"expected an RFC 3339 time such as 2026-12-07T13:05:09Z or a duration such as "
            f"30m, 2h or 7d; found {text!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
