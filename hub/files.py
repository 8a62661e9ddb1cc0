"""Files written whole or not at all, and directory trees a reader cannot be led out of.

``write_at`` is the one way the hub writes a file a reader may see (``write_atomically`` for a
path, ``Directory.write`` in a tree, both through it). ``Tree`` is how a
connector works in a folder someone else can write to (a drop folder): every level below the
configured root is opened by descriptor, relative to the level above, never through a
symbolic link, so a link planted at any level (``inbox/<subfolder>`` pointing at ``/etc``)
is refused instead of followed.

What it must never do: leave a partly written file under the target name, share a temporary
name between two writers, or read, move or write a file outside a tree's root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path, PurePath
from types import TracebackType

# descriptors of directories: read-only, must be a directory, never a link (the last component;
# every earlier one is a descriptor already)
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def write_at(directory: int, name: str, data: bytes, *, work: int | None = None) -> None:
    """``data`` as the file ``name`` in the directory open as ``directory``: written and synced
    under a fresh temporary name (in that directory, or in ``work`` on the same file system),
    then renamed into place, so a reader sees the old file or the whole new one. A link at
    ``name`` is replaced, never followed. The caller syncs the directory where the rename must
    survive a power cut (once for many files). Raises OSError; the temporary is removed."""
    folder = work if work is not None else directory
    temporary = f".{name[:64]}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        # 0o666 before the umask: the permissions any new file of the user's gets
        descriptor = os.open(
            temporary,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o666,
            dir_fd=folder,
        )
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=directory)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=folder)
        raise


def write_atomically(target: Path, data: bytes, *, work: Path | None = None) -> None:
    """``data`` at ``target`` (see ``write_at``), the temporary beside the target or in
    ``work``. For paths the operator chose: links on the way there are followed."""
    with contextlib.ExitStack() as stack:
        directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack.callback(os.close, directory)
        folder = None
        if work is not None:
            folder = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            stack.callback(os.close, folder)
        write_at(directory, target.name, data, work=folder)


class NotConfined(OSError):
    """A level of a tree that is a symbolic link or not a directory, or a name that would
    leave its directory: refused, never followed."""

    def __init__(self, path: PurePath, what: str) -> None:
        super().__init__(errno.ELOOP, what, str(path))
        self.path, self.what = path, what

    def __str__(self) -> str:
        return f"{self.path} {self.what}"


def _checked(name: str, where: PurePath) -> str:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise NotConfined(where / name, "is not a name within its folder")
    return name


class Directory:
    """One open directory of a tree; what it offers works on names in it, relative to its
    descriptor, and never follows a link."""

    def __init__(self, fd: int, path: PurePath) -> None:
        self.fd, self.path = fd, path  # the path is for messages only

    def entries(self) -> list[os.DirEntry[str]]:
        with os.scandir(self.fd) as listing:
            return list(listing)

    def open_read(self, name: str) -> int:
        """A descriptor to read the file ``name``; OSError (ELOOP) when it is a link."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        return os.open(_checked(name, self.path), flags, dir_fd=self.fd)

    def lstat(self, name: str) -> os.stat_result | None:
        """What ``name`` is (a link as a link), or None when there is nothing of that name."""
        try:
            return os.stat(_checked(name, self.path), dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return self.lstat(name) is not None

    def move(self, name: str, to: Directory, new_name: str) -> None:
        """Rename ``name`` to ``new_name`` in ``to`` (replacing what is there, a link itself
        and not what it points at)."""
        os.replace(
            _checked(name, self.path),
            _checked(new_name, to.path),
            src_dir_fd=self.fd,
            dst_dir_fd=to.fd,
        )

    def write(self, name: str, data: bytes, *, work: Directory | None = None) -> None:
        write_at(
            self.fd, _checked(name, self.path), data, work=work.fd if work is not None else None
        )

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_checked(name, self.path), dir_fd=self.fd)

    def sync(self) -> None:
        os.fsync(self.fd)


class Tree:
    """A directory tree for one piece of work (a pass over a drop folder): the root as
    configured (a link there is the operator's choice and is followed), and below it each level
    opened once, relative to the one above, refused (``NotConfined``) when it is a link or not
    a directory. Everything opened is closed with the tree."""

    def __init__(self, root: Path, *, create: bool = False) -> None:
        if create:
            root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.root = Directory(fd, PurePath())  # messages name levels relative to the root
        self._open: dict[PurePath, Directory] = {PurePath(): self.root}

    def dir(self, relative: str | PurePath, *, create: bool = False) -> Directory:
        """The directory at ``relative`` below the root, each level opened without following
        a link (and made first where ``create``)."""
        relative = PurePath(relative)
        if relative.is_absolute():
            raise NotConfined(relative, "is not a path within the tree")
        found = self._open.get(relative)
        if found is not None:
            return found
        parent = self.dir(relative.parent, create=create)
        name = _checked(relative.name, parent.path)
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent.fd)
        try:
            fd = os.open(name, _DIRECTORY, dir_fd=parent.fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            info = parent.lstat(name)
            link = info is not None and stat.S_ISLNK(info.st_mode)
            what = "is a symbolic link" if link else "is not a directory"
            raise NotConfined(parent.path / name, what) from None
        directory = Directory(fd, parent.path / name)
        self._open[relative] = directory
        return directory

    def opened(self) -> Iterator[Directory]:
        return iter(list(self._open.values()))

    def close(self) -> None:
        for directory in self._open.values():
            os.close(directory.fd)
        self._open.clear()

    def __enter__(self) -> Tree:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
