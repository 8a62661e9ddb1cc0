"""The backup file (docs/backup.md): one tar archive of ``manifest.json`` (whose hub, which
store, when, the trail's size and latest signed checkpoint, and the data's size and SHA-256)
and then the data, ``hub.sqlite3`` (a SQLite database) or ``hub.pgdump`` (pg_dump's custom
format); and the private files it is made from and read into.

What it must never do: follow a link where it writes; leave a half-written file under the
name asked for; hand over data whose size and SHA-256 are not the manifest's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hub.core.errors import HubError

FORMAT = "customs-hub-backup/1"
MANIFEST = "manifest.json"
SQLITE_DATA, PG_DATA = "hub.sqlite3", "hub.pgdump"
# A manifest is a few hundred bytes; anything much larger is not one of ours.
MAX_MANIFEST_BYTES = 64 * 1024
# Files read and hashed in pieces of this size.
CHUNK = 1024 * 1024
# A file the user may read and write, nobody else: a backup holds every message.
PRIVATE = 0o600
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class BackupError(HubError):
    """A backup that cannot be made, read or restored; the message says why."""

    default_reason = "backup-failed"


def new_private_file(path: Path) -> int:
    """A descriptor of the new, empty file ``path`` (mode 0600); refused when anything, a link
    included, is there already."""
    try:
        return os.open(path, _NEW_FILE, PRIVATE)
    except FileExistsError:
        raise BackupError(f"{path}: exists already", reason="backup-refused") from None
    except OSError as exc:
        raise BackupError(f"{path}: cannot create: {exc.strerror}") from None


def refuse_link(path: Path) -> bool:
    """Whether ``path`` exists; refused when it is a symbolic link or not a regular file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        raise BackupError(f"{path}: is a symbolic link; not followed", reason="backup-refused")
    if not stat.S_ISREG(info.st_mode):
        raise BackupError(f"{path}: is not a regular file", reason="backup-refused")
    return True


@contextlib.contextmanager
def scratch(folder: Path, name: str) -> Iterator[Path]:
    """A path for a temporary file in ``folder`` (on the same file system as what it becomes),
    removed afterwards with what SQLite may have put beside it."""
    path = folder / f".{name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    try:
        yield path
    finally:
        for leftover in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_archive(out: Path, manifest: Mapping[str, Any], data: Path, *, replace: bool) -> None:
    """The backup file ``out``: ``manifest`` and the file ``data`` as one tar archive, written
    to a temporary name beside it (mode 0600, never through a link), synced, and then put in
    place: linked under its name, which fails if anything is there, or with ``replace``
    renamed over a regular file."""
    exists = refuse_link(out)
    if exists and not replace:
        raise BackupError(f"{out}: exists already (--force replaces it)", reason="backup-refused")
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    with scratch(out.parent, out.name) as temporary:
        descriptor = new_private_file(temporary)
        with os.fdopen(descriptor, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as archive:
                head = tarfile.TarInfo(MANIFEST)
                head.size, head.mode = len(body), PRIVATE
                archive.addfile(head, _BytesReader(body))
                entry = tarfile.TarInfo(str(manifest["data"]["name"]))
                entry.size, entry.mode = data.stat().st_size, PRIVATE
                with data.open("rb") as source:
                    archive.addfile(entry, source)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(temporary, out)
        else:
            try:
                os.link(temporary, out, follow_symlinks=False)
            except FileExistsError:
                raise BackupError(f"{out}: exists already", reason="backup-refused") from None
    folder = os.open(out.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._at + size
        chunk, self._at = self._data[self._at : end], min(end, len(self._data))
        return chunk


def read_archive(path: Path, data_to: Path) -> dict[str, Any]:
    """The manifest of the backup file ``path``, with its data written to the new file
    ``data_to``; refused (``backup-invalid``) unless the archive holds exactly a manifest and
    the data it names, and the data's size and SHA-256 are the manifest's."""
    invalid = f"{path}: not a customs-hub backup"
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # the operator's file
    except OSError as exc:
        raise BackupError(f"{path}: cannot open: {exc.strerror}", reason="backup-invalid") from None
    with os.fdopen(descriptor, "rb") as f:
        try:
            with tarfile.open(fileobj=f, mode="r:") as archive:
                head = archive.next()
                if head is None or head.name != MANIFEST or not head.isfile():
                    raise BackupError(f"{invalid} (no {MANIFEST} first)", reason="backup-invalid")
                if head.size > MAX_MANIFEST_BYTES:
                    raise BackupError(f"{invalid} (manifest too large)", reason="backup-invalid")
                manifest = _manifest(archive, head, invalid)
                data = manifest["data"]
                entry = archive.next()
                if entry is None or entry.name != data["name"] or not entry.isfile():
                    raise BackupError(
                        f"{invalid} (no {data['name']} after the manifest)",
                        reason="backup-invalid",
                    )
                if archive.next() is not None:
                    raise BackupError(f"{invalid} (more than two members)", reason="backup-invalid")
                digest = _copy_out(archive, entry, data_to)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BackupError(f"{invalid} or damaged: {exc}", reason="backup-invalid") from None
    if entry.size != data["bytes"] or digest != data["sha256"]:
        raise BackupError(
            f"{path}: damaged: the data's SHA-256 is {digest}, the manifest says {data['sha256']}",
            reason="backup-invalid",
        )
    return manifest


def _manifest(archive: tarfile.TarFile, head: tarfile.TarInfo, invalid: str) -> dict[str, Any]:
    source = archive.extractfile(head)
    assert source is not None  # noqa: S101 - a regular file's member always has one
    try:
        manifest = json.loads(source.read())
        data = manifest["data"]
        ok = (
            manifest["format"] == FORMAT
            and data["name"] in (SQLITE_DATA, PG_DATA)
            and isinstance(data["bytes"], int)
            and isinstance(data["sha256"], str)
        )
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise BackupError(f"{invalid} (manifest not of {FORMAT})", reason="backup-invalid")
    return dict(manifest)


def _copy_out(archive: tarfile.TarFile, entry: tarfile.TarInfo, target: Path) -> str:
    source = archive.extractfile(entry)
    assert source is not None  # noqa: S101 - a regular file's member always has one
    digest = hashlib.sha256()
    with os.fdopen(new_private_file(target), "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()
