"""Files written whole or not at all: the one way the hub writes a file a reader may see.

What it must never do: leave a partly written file under the target name, or share a
temporary name between two writers.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomically(target: Path, data: bytes, *, work: Path | None = None) -> None:
    """``data`` at ``target``: written and synced under a fresh temporary name (beside the
    target, or in ``work`` on the same file system), then renamed into place, so a reader sees
    the old file or the whole new one. The caller syncs the directory where the rename must
    survive a power cut (once for many files). Raises OSError; the temporary is removed."""
    folder = work if work is not None else target.parent
    temporary = folder / f".{target.name[:64]}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        # 0o666 before the umask: the permissions any new file of the user's gets
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
