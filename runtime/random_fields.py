"""Counter-based random numbers for the sampler.

Random numbers come from `RandomFields`: counter-based streams keyed by (layer,
measurement), indexed by the element's position in the image-major [B, S, N] layout, so
a sample does not depend on how the batch was chunked or on the thread count.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence, Union

import numpy as np
import torch

from qnnc.runtime import counter_rng
from qnnc.runtime.torch_angles import Value, broadcasts_into



# Random numbers are generated on up to two threads (the numba kernels release the GIL),
# never more than torch is allowed to use. The values do not depend on the thread count.
_MAX_RNG_THREADS = 2


def _default_rng_threads() -> int:
    return max(1, min(_MAX_RNG_THREADS, torch.get_num_threads()))


_POOL: Optional[ThreadPoolExecutor] = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(_MAX_RNG_THREADS, thread_name_prefix="qnnc-rng")
    return _POOL


# Below this many values a second thread costs more than it saves.
_PARALLEL_MIN = 1 << 16


class RandomFields:
    """Uniform random numbers for one forward pass, drawn from counter-based streams.

    Entropy comes from the caller's `torch.Generator` (two 62-bit draws per pass), so a
    seeded generator makes every pass reproducible. Value `i` of field `key` is fixed by
    (entropy, key, i) alone: chunking the batch, or splitting the work across threads,
    never changes a sample. The streams are SplitMix64 evaluated at a counter
    (`qnnc.runtime.counter_rng`): a field's seed costs a few integer operations and any
    value of it the same few more, wherever it sits.

    `uniform_12` returns values f = 1 + j·2^-m, j uniform, in [1, 2): random mantissa
    bits under the exponent of 1.0 (m = 23 for float32, 52 for float64), so making them
    costs no conversion, and every value is exact.
    """

    def __init__(self, generator: torch.Generator, dtype: torch.dtype):
        draw = torch.randint(0, 2 ** 62, (2,), generator=generator, dtype=torch.int64)
        self.entropy = [int(v) for v in draw]
        self.dtype = dtype
        self._seeds: dict[tuple, int] = {}

    def seed(self, key: tuple) -> int:
        """The stream seed of field `key` in this pass."""
        s = self._seeds.get(key)
        if s is None:
            s = self._seeds[key] = counter_rng.field_seed(self.entropy, key)
        return s

    def uniform_12(self, key: tuple, start: int, shape: Sequence[int],
                   out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Values start .. start + prod(shape) - 1 of field `key`, as a tensor of `shape`
        (written into `out`, a contiguous tensor of that many elements, when given)."""
        count, start = int(math.prod(shape)), int(start)
        if out is not None and out.is_contiguous() and out.numel() == count and out.dtype == self.dtype:
            result = out.view(*shape)
        else:
            result = torch.empty(tuple(shape), dtype=self.dtype)
        bits = result.view(-1).view(torch.int32 if self.dtype == torch.float32 else torch.int64).numpy()
        bits = bits.view(np.uint32 if self.dtype == torch.float32 else np.uint64)
        seed = self.seed(key)
        if count >= _PARALLEL_MIN and _default_rng_threads() > 1:
            half = count // 2
            jobs = [(0, half), (half, count)]
            list(_pool().map(lambda j: counter_rng.fill(seed, start + j[0], bits[j[0]:j[1]]), jobs))
        else:
            counter_rng.fill(seed, start, bits)
        return result

    def uniform_12_new(self, key: tuple, shape: Sequence[int]) -> torch.Tensor:
        """`uniform_12(key, 0, shape)` into a new tensor."""
        return self.uniform_12(key, 0, shape)


def sample_pm1(t: Value, f: torch.Tensor) -> torch.Tensor:
    """The emitted value of a Z measurement, -1 with probability (1 + t)/2 where
    t = p1 - p0, given f uniform on the grid in [1, 2) (consumed). With v = 2f - 3,
    uniform in [-1, 1): -1 exactly when v < t, i.e. f < (3 + t)/2. So t = -1 (p1 = 0)
    never gives -1 and t = 1 (p1 = 1) always does, whatever the rounding of t."""
    thr = (t + 3.0) * 0.5
    if isinstance(thr, torch.Tensor) and not broadcasts_into(thr, f):
        f = f - thr
    else:
        f.sub_(thr)
    # copysign(1, f - thr): +0.0 (-> +1) when they are equal, matching `f < thr` for -1.
    return torch.copysign(ONE[f.dtype], f, out=f)


ONE = {torch.float32: torch.ones((), dtype=torch.float32), torch.float64: torch.ones((), dtype=torch.float64)}
THREE_HALVES = {dt: torch.full((), -1.5, dtype=dt) for dt in (torch.float32, torch.float64)}

