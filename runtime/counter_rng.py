"""The counter-based random stream of the sampler: SplitMix64 evaluated at a counter.

Value j of the stream with seed s is the 64-bit word

    draw(s, j) = mix64(s + (j + 1) * 0x9E3779B97F4A7C15)     (mod 2^64)

where mix64 is SplitMix64's finaliser (Steele, Lea and Flood, "Fast splittable
pseudorandom number generators", OOPSLA 2014; the generator of Java's SplittableRandom,
which passes BigCrush). The stream is counter-based by construction: any value costs the
same few integer operations, wherever it is, so a field is filled in any order, by any
number of threads, and a chunk starting at position n needs no jump-ahead.

The seed of a field (one per (layer, measurement) key and forward pass) folds the pass's
entropy and the key through mix64 (`field_seed`), in a few integer operations instead of
numpy's SeedSequence and PCG64DXSM set-up (tens of microseconds per field).

Two implementations give the same bits: numba kernels (one pass over memory; `numba`
is in the `sim` extra), and numpy array arithmetic (the fallback when numba is missing
or QNNC_NUMBA=0; several passes, slower on large fields). tests/test_simulator.py checks
they agree.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_MASK = (1 << 64) - 1


def mix64_int(z: int) -> int:
    """SplitMix64's finaliser on a Python int (mod 2^64)."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def field_seed(entropy: Sequence[int], key: Sequence[int]) -> int:
    """The stream seed of field `key` (non-negative ints) for a pass with `entropy`
    (two non-negative ints below 2^62)."""
    h = mix64_int(int(entropy[0]) + GOLDEN)
    h = mix64_int(h ^ int(entropy[1]))
    for k in key:
        h = mix64_int(h + (int(k) + 1) * GOLDEN)
    return h


# ------------------------------------------------------------------ numpy implementation


def _mix64_np(z: np.ndarray) -> np.ndarray:
    """mix64 in place on a uint64 array (wrapping arithmetic)."""
    z ^= z >> np.uint64(30)
    z *= np.uint64(_M1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(_M2)
    z ^= z >> np.uint64(31)
    return z


def draws_np(seed: int, first: int, count: int) -> np.ndarray:
    """draw(seed, first .. first + count - 1) as uint64 (numpy)."""
    j = np.arange(first + 1, first + 1 + count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        j *= np.uint64(GOLDEN)
        j += np.uint64(seed)
        return _mix64_np(j)


def fill_np(seed: int, start: int, bits: np.ndarray) -> None:
    """Fill `bits` (uint32: float32 values; uint64: float64 values) with the uniform_12
    bit patterns of stream values start .. start + len(bits) - 1: f = 1 + j 2^-m, the
    random mantissa under the exponent of 1.0. Value i of a float32 field is 32-bit word
    i of the draws (little-endian: word 2j is draw j's low half); of a float64 field,
    draw i."""
    n = bits.shape[0]
    if bits.dtype == np.uint32:
        first, skip = divmod(start, 2)
        raw = draws_np(seed, first, (skip + n + 1) // 2)
        w = raw.view("<u4")[skip:skip + n]
        np.right_shift(w, np.uint32(9), out=bits)
        np.bitwise_or(bits, np.uint32(0x3F800000), out=bits)
    else:
        raw = draws_np(seed, start, n)
        np.right_shift(raw, np.uint64(12), out=bits)
        np.bitwise_or(bits, np.uint64(0x3FF0000000000000), out=bits)


# ------------------------------------------------------------------ numba implementation

_NUMBA = None


def numba_enabled() -> bool:
    """Whether the numba kernels are used (numba importable and QNNC_NUMBA is not 0)."""
    global _NUMBA
    if _NUMBA is None:
        if os.environ.get("QNNC_NUMBA", "1").strip() == "0":
            _NUMBA = False
        else:
            try:
                import numba  # noqa: F401
                _NUMBA = True
            except ImportError:
                _NUMBA = False
    return _NUMBA


def fill(seed: int, start: int, bits: np.ndarray) -> None:
    """`fill_np`, through the numba kernel when numba is enabled (same bits)."""
    if numba_enabled():
        from qnnc.runtime import fused_kernels as K
        if bits.dtype == np.uint32:
            K.fill_u32(np.uint64(seed), np.int64(start), bits)
        else:
            K.fill_u64(np.uint64(seed), np.int64(start), bits)
    else:
        fill_np(seed, start, bits)


def seeds_for(entropy: Sequence[int], keys: Sequence[Sequence[int]], out: Optional[np.ndarray] = None) -> np.ndarray:
    """field_seed for each key, as a uint64 array."""
    vals = [field_seed(entropy, k) for k in keys]
    if out is None:
        return np.array(vals, dtype=np.uint64)
    out[:] = vals
    return out
