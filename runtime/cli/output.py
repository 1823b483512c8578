"""Where the commands' output files go: every file a command writes passes through here,
so a path the system refuses is always the same diagnostic (Q0405, exit 1) and a crash
never leaves a half-written file. `-` names standard output."""

from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

from qnnc.compiler.diagnostics import QnncError, error
from qnnc.compiler.fileio import atomic_write_bytes, atomic_write_text

STDOUT = "-"
PathLike = Union[str, os.PathLike]

_HELP = "check that the folder exists and is writable, and that the path is not a folder"


def cannot_write(path: PathLike, exc: OSError) -> QnncError:
    return error("Q0405", f"cannot write {path}: {exc.strerror or exc}", help=_HELP, exit_code=1)


def write_text(path: PathLike, text: str) -> None:
    """Write `text` to `path` atomically, or to standard output for `-`."""
    if str(path) == STDOUT:
        sys.stdout.write(text)
        return
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise cannot_write(path, exc) from None


def write_bytes(path: PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically, or to standard output for `-`."""
    if str(path) == STDOUT:
        sys.stdout.flush()  # keep what was printed before it in order
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise cannot_write(path, exc) from None


def announce(path: PathLike, indent: str = "") -> None:
    """Say `wrote PATH` (nothing when the output went to standard output)."""
    if str(path) != STDOUT:
        print(f"{indent}wrote {path}")


def check_writable(path: PathLike) -> None:
    """Refuse an output path that cannot be written, before the work that produces it
    (a submission to a device cannot be taken back)."""
    if str(path) == STDOUT:
        return
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        why = "it is a folder"
    elif not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        why = "its folder does not exist or is not writable"
    else:
        return
    raise error("Q0405", f"cannot write {path}: {why}",
                help="give a file in an existing, writable folder (checked before submitting)")


@contextmanager
def writing_into(folder: PathLike) -> Iterator[None]:
    """Files that code of another layer writes under `folder` (a training run's
    checkpoints): a refused path, or a full disk, is the same diagnostic as above."""
    root = Path(os.path.abspath(folder))
    try:
        yield
    except OSError as exc:
        if not (_is_under(exc.filename, root) or exc.errno in (errno.ENOSPC, errno.EDQUOT)):
            raise
        raise cannot_write(exc.filename or folder, exc) from None


def _is_under(filename, root: Path) -> bool:
    if not isinstance(filename, (str, os.PathLike)):
        return False
    path = Path(os.path.abspath(filename))
    return path == root or root in path.parents
