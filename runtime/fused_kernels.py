"""numba kernels of the simulator's small-batch paths (imported only when numba is
enabled, `qnnc.runtime.counter_rng.numba_enabled`).

* `fill_u32` / `fill_u64`: the counter-based uniform fields (`counter_rng`), one pass.

Kernels are compiled on first use and cached on disk (numba's `cache=True`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S9 = np.uint32(9)
_S12 = np.uint64(12)
_ONE1 = np.uint64(1)
_LOW = np.uint64(0xFFFFFFFF)
_EXP32 = np.uint32(0x3F800000)
_EXP64 = np.uint64(0x3FF0000000000000)


@njit(cache=True, nogil=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, inline="always")
def _draw(seed, j):
    return _mix64(seed + (np.uint64(j) + _ONE1) * _G)


@njit(cache=True, nogil=True)
def fill_u32(seed, start, bits):
    n = bits.shape[0]
    for t in range(n):
        i = start + t
        d = _draw(seed, i >> 1)
        w = (d >> _S32) if (i & 1) else (d & _LOW)
        bits[t] = (np.uint32(w) >> _S9) | _EXP32


@njit(cache=True, nogil=True)
def fill_u64(seed, start, bits):
    n = bits.shape[0]
    for t in range(n):
        bits[t] = (_draw(seed, start + t) >> _S12) | _EXP64


@njit(cache=True, nogil=True, inline="always")
def _uniform12(seed, i, f32):
    """Value i of a field as a float64 (exact: 1 + j 2^-m)."""
    if f32:
        d = _draw(seed, i >> 1)
        w = (d >> _S32) if (i & 1) else (d & _LOW)
        return 1.0 + float(w >> _S9) * (1.0 / 8388608.0)
    return 1.0 + float(_draw(seed, i) >> _S12) * (1.0 / 4503599627370496.0)
