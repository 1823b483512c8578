"""Reading data files within declared limits (`qnnc.compiler.limits`): only regular
files, sizes checked before reading, decompressed sizes checked while inflating, and an
`.npz` member's declared shape checked before numpy allocates it.

Codes: Q0510 a file that cannot be read or is too large (also once decompressed),
Q0512 corrupt gzip data, Q0520 not a readable .npz archive, Q0523 a member's dtype.
"""

from __future__ import annotations

import ast
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Union

import numpy as np

from qnnc.compiler.diagnostics import error
from qnnc.compiler.fileio import NotReadable, read_regular_file
from qnnc.compiler.limits import MAX_DATA_BYTES, MAX_DATA_FILE_BYTES

PathLike = Union[str, os.PathLike]
_TOO_LARGE_HELP = "the limits are listed in docs/diagnostics.md"


def read_data_file(path: Path) -> bytes:
    """A data file's bytes: a regular file of at most MAX_DATA_FILE_BYTES, or Q0510."""
    try:
        return read_regular_file(path, MAX_DATA_FILE_BYTES)
    except NotReadable as exc:
        if exc.missing:
            raise error("Q0510", f"{path}: data file not found") from None
        raise error("Q0510", f"{path}: cannot read data file: {exc.reason}") from None


def gunzip(path: Path, raw: bytes) -> bytes:
    """Every member of gzip data, inflated to at most MAX_DATA_BYTES (Q0510 beyond it,
    Q0512 for corrupt or truncated data); the inflation stops at the limit."""
    out, total = [], 0
    while raw:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = d.decompress(raw, MAX_DATA_BYTES + 1 - total)
        except zlib.error as exc:
            raise error("Q0512", f"{path}: corrupt or truncated gzip data ({exc})") from None
        total += len(chunk)
        out.append(chunk)
        if total > MAX_DATA_BYTES or d.unconsumed_tail:
            raise error("Q0510", f"{path}: the data inflates to more than {MAX_DATA_BYTES:,} bytes",
                        help=_TOO_LARGE_HELP)
        if not d.eof:
            raise error("Q0512", f"{path}: corrupt or truncated gzip data (the stream ends early)")
        raw = d.unused_data.lstrip(b"\0")  # the next member, if any (zero padding allowed)
    return b"".join(out)


def check_npz_members(path: Path, archive: zipfile.ZipFile) -> None:
    """Before numpy reads an archive: its members' inflated sizes (from the directory)
    and each `.npy` header's shape and dtype, so nothing is allocated beyond the limits."""
    total = sum(info.file_size for info in archive.infolist())
    if total > MAX_DATA_BYTES:
        raise error("Q0510", f"{path}: the archive inflates to {total:,} bytes, more than the limit of "
                    f"{MAX_DATA_BYTES:,}", help=_TOO_LARGE_HELP)
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            continue
        with archive.open(info) as fh:
            head = fh.read(4096)
        shape, dtype = _npy_header(path, info.filename, head)
        size = math.prod(shape) * dtype.itemsize
        if size > info.file_size:
            raise error("Q0510", f"{path}: `{_name(info.filename)}` declares a shape {list(shape)} of "
                        f"{size:,} bytes, but holds {info.file_size:,}", help=_TOO_LARGE_HELP)


def _npy_header(path: Path, member: str, head: bytes) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of a `.npy` header, parsed with `ast.literal_eval` (no pickle)."""
    bad = error("Q0520", f"{path}: `{_name(member)}` is not a readable .npy array")
    if len(head) < 10 or head[:6] != b"\x93NUMPY":
        raise bad
    major = head[6]
    if major == 1:
        n, start = int.from_bytes(head[8:10], "little"), 10
    elif major in (2, 3):
        n, start = int.from_bytes(head[8:12], "little"), 12
    else:
        raise bad
    text = head[start:start + n]
    if len(text) < n:
        raise bad
    try:
        d = ast.literal_eval(text.decode("latin1"))
        shape, descr = d["shape"], d["descr"]
        if not isinstance(shape, tuple) or not all(type(s) is int and s >= 0 for s in shape):
            raise ValueError
        if not isinstance(descr, str) or len(shape) > 32:
            raise ValueError
        dtype = np.dtype(descr)
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError):
        raise bad from None
    if dtype.kind not in "iuf" or dtype.hasobject:
        raise error("Q0523", f"{path}: `{_name(member)}` has dtype {dtype}, expected integers or floats",
                    help="store plain numeric arrays; object arrays are refused")
    return shape, dtype


def _name(member: str) -> str:
    member = member.encode("utf-8", "backslashreplace").decode("utf-8")
    return member[:60] + ("..." if len(member) > 60 else "")
