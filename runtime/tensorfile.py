"""The safetensors format, written and read by qnnc itself: deterministic bytes, strict
checks, no pickle.

    8 bytes   little-endian u64: N, the length of the header
    N bytes   JSON header: {"__metadata__": {str: str}, NAME: {"dtype", "shape",
              "data_offsets": [BEGIN, END]}, ...}, padded with spaces to a multiple of 8
    rest      the tensors' bytes, little-endian, at their offsets (relative to the rest)

Writing: tensors in name order, the header's keys sorted and compact, so the same
tensors and metadata always give the same bytes (the `safetensors` package orders
metadata as its hash map does, which varies between runs). The files read back with the
`safetensors` package and any other reader of the format.

Reading: every count is bounded before anything is allocated (header length, number of
tensors, dimensions), only the dtypes qnnc writes are accepted, and each tensor's offsets
must lie in the file and match its shape; anything else is `TensorFileError` with a
sentence saying why.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Mapping

import numpy as np

from qnnc.compiler.limits import MAX_HEADER_BYTES, MAX_TENSORS

# The dtypes qnnc writes (weights, optimizer buffers, the generator's byte state).
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"), "U8": np.dtype("u1"),
}
_BY_NUMPY = {v: k for k, v in DTYPES.items()}
MAX_DIMS = 8


class TensorFileError(ValueError):
    """Not a safetensors file qnnc reads: the message says why."""


def encode(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """The bytes of a safetensors file holding `arrays` and `metadata`, deterministically."""
    header: dict = {"__metadata__": {str(k): str(v) for k, v in sorted(metadata.items())}}
    chunks, offset = [], 0
    for name in sorted(arrays):
        arr = np.asarray(arrays[name])
        dtype = np.dtype(arr.dtype).newbyteorder("<") if arr.dtype.byteorder == ">" else np.dtype(arr.dtype)
        if dtype not in _BY_NUMPY:
            raise TypeError(f"tensor {name!r}: dtype {arr.dtype} is not one qnnc writes")
        data = np.ascontiguousarray(arr, dtype=dtype).tobytes()
        header[name] = {"dtype": _BY_NUMPY[dtype], "shape": [int(d) for d in arr.shape],
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def decode(blob: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a safetensors file, checked; TensorFileError otherwise."""
    if len(blob) < 8:
        raise TensorFileError(f"{len(blob)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER_BYTES:
        raise TensorFileError(f"a header of {n:,} bytes, more than the limit of {MAX_HEADER_BYTES:,}")
    if 8 + n > len(blob):
        raise TensorFileError(f"the header claims {n:,} bytes but the file has {len(blob) - 8:,} after its length")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TensorFileError("the header is not valid UTF-8 JSON") from None
    if not isinstance(header, dict):
        raise TensorFileError("the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise TensorFileError("`__metadata__` is not an object of strings")
    if len(header) > MAX_TENSORS:
        raise TensorFileError(f"{len(header):,} tensors, more than the limit of {MAX_TENSORS:,}")
    data = memoryview(blob)[8 + n:]
    spans = []
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        dtype, shape, begin, end = _entry(name, entry, len(data))
        spans.append((begin, end))
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).copy()
    spans.sort()
    for (_, e1), (b2, _) in zip(spans, spans[1:]):
        if b2 < e1:
            raise TensorFileError("two tensors overlap")
    return tensors, dict(metadata)


def _entry(name: str, entry, data_len: int) -> tuple[np.dtype, tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise TensorFileError(f"tensor {_quote(name)}: not an entry with dtype, shape and data_offsets")
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise TensorFileError(f"tensor {_quote(name)}: dtype {_quote(dtype)} is not one qnnc writes "
                              f"({', '.join(DTYPES)})")
    shape, offsets = entry["shape"], entry["data_offsets"]
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS
            and all(type(d) is int and 0 <= d <= data_len for d in shape)):
        raise TensorFileError(f"tensor {_quote(name)}: invalid shape")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_len):
        raise TensorFileError(f"tensor {_quote(name)}: its data offsets lie outside the file")
    size = math.prod(shape) * DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != size:
        raise TensorFileError(f"tensor {_quote(name)}: shape {shape} needs {size:,} bytes, "
                              f"its offsets span {offsets[1] - offsets[0]:,}")
    return DTYPES[dtype], tuple(shape), offsets[0], offsets[1]


def _quote(value) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"`{text[:60]}`" + ("..." if len(text) > 60 else "")
