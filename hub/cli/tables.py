"""Plain-text tables for the command line: columns padded to their widest cell, the last
column left unpadded (it holds free text such as business keys or a description)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def render(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(
            [*(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)), line[-1]]
        ).rstrip()
        for line in lines
    )
