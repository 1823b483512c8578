"""Atomic file output: write to a temporary file in the same folder, then rename, so a
crash or a bad input never leaves a half-written file behind."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    """The process umask, read without changing it where the system allows (setting and
    restoring it would race with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_target(path: PathLike) -> Path:
    """The file a write to `path` replaces: a symbolic link's target (a write goes
    through the link, which stays), refusing anything but a regular file or a new path."""
    path = Path(path)
    if os.path.islink(path):
        path = Path(os.path.realpath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return path
    except OSError:
        return path  # the write itself reports why
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "it is not a regular file (a device, FIFO or socket); "
                                    "only regular files are replaced", str(path))
    return path


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write `data` to a temporary file beside the target, then rename it over the
    target: a symbolic link is written through (its target replaced, the link kept); a
    device, FIFO or socket is refused (OSError), never replaced."""
    path = write_target(path)
    for parent in path.parents:  # the nearest existing folder above must be a folder
        if os.path.lexists(parent):
            if not os.path.isdir(parent):
                raise NotADirectoryError(errno.ENOTDIR, f"{parent} is a file, not a folder", str(parent))
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600: give it the mode of the file it replaces, or the
        # mode a plain open() would (0666 less the umask), so `qnnc fmt` keeps permissions.
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# --------------------------------------------------------------------------- reading


class NotReadable(Exception):
    """A path that is not read: `reason` says why in words ("it is a folder", "it is not
    a regular file", "it is larger than ... bytes"); `missing` for no such file."""

    def __init__(self, path: PathLike, reason: str, missing: bool = False):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason, self.missing = os.fspath(path), reason, missing


def read_regular_file(path: PathLike, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, checked before reading.

    Only regular files are read: a folder, a device (`/dev/zero`), a FIFO (opened without
    blocking, so it cannot hang) or a socket is refused, and so is a file whose size is
    not what it says (the pseudo-files of /proc and /sys claim size 0), before any byte
    of it is read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise NotReadable(path, "no such file", missing=True) from None
    except IsADirectoryError:
        raise NotReadable(path, "it is a folder, not a file") from None
    except OSError as exc:
        raise NotReadable(path, f"cannot open it ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise NotReadable(path, "it is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise NotReadable(path, "it is not a regular file (a device, FIFO or socket)")
        if st.st_size > limit:
            raise NotReadable(path, f"it is {st.st_size:,} bytes, more than the limit of {limit:,}")
        chunks, total = [], 0
        while total <= st.st_size:
            chunk = os.read(fd, st.st_size + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total != st.st_size:
            raise NotReadable(path, "its size is not what the file system reports "
                                    "(a pseudo-file such as those of /proc, or a file being written)")
        return b"".join(chunks)
    except OSError as exc:
        raise NotReadable(path, f"cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
