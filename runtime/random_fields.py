"""Counter-based random numbers for the sampler.

Random numbers come from `RandomFields`: counter-based streams keyed by (layer,
measurement), indexed by the element's position in the image-major [B, S, N] layout, so
a sample does not depend on how the batch was chunked or on the thread count.
"""

from __future__ import annotations

import math
import threading
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


def _entropy(generator: torch.Generator) -> list[int]:
    """A pass's entropy: two 62-bit numbers from the caller's generator, as Python ints.
    Host data on every device: the generator is a CPU one (its state is what a
    checkpoint saves)."""
    return _entropy_words(generator).tolist()


_THIS_THREAD = threading.local()


def _entropy_words(generator: torch.Generator) -> np.ndarray:
    """A pass's entropy (the one draw: `random_` on this thread's reused buffer, the same
    values as torch.randint(0, 2**62, (2,))) as a [2] uint64 array: the fused sampler
    reads it at once. Valid until this thread's next call; `_entropy` keeps it as a
    list. (A small sampling call is a few tens of microseconds: a fresh tensor, its list
    and the array made from it again were a microsecond and a half of it.)"""
    got = getattr(_THIS_THREAD, "entropy", None)
    if got is None:
        buf = torch.empty(2, dtype=torch.int64)
        got = _THIS_THREAD.entropy = (buf, buf.numpy().view(np.uint64))
    got[0].random_(0, 2 ** 62, generator=generator)
    return got[1]


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

    On another device than the CPU (`device`), the same values f are drawn there by
    torch's generator of that device, one generator per (field, first position) seeded
    from the field's stream seed and the start: a pass is reproducible on that device,
    but its samples are not the CPU's, and they depend on where chunks start
    (docs/devices.md).
    """

    def __init__(self, generator: Optional[torch.Generator], dtype: torch.dtype, device=None,
                 entropy: Optional[list] = None):
        # `entropy`: the pass's two numbers, drawn by the caller with `_entropy` (then
        # `generator` is not used)
        self.entropy = _entropy(generator) if entropy is None else entropy
        self.dtype = dtype
        if device is not None and not isinstance(device, torch.device):
            device = torch.device(device)
        self.device = None if device is None or device.type == "cpu" else device
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
        if self.device is not None:
            return self._on_device(key, start, shape, out)
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

    def _on_device(self, key: tuple, start: int, shape: Sequence[int], out: Optional[torch.Tensor]) -> torch.Tensor:
        """The field's values on `self.device`: random mantissa bits drawn there, under the
        exponent of 1.0, as on the CPU (so the values lie on the same grid in [1, 2))."""
        f32 = self.dtype == torch.float32
        idt = torch.int32 if f32 else torch.int64
        gen = None
        if self.device.type != "meta":  # meta has no generator (and no values to draw)
            seed = counter_rng.mix64_int(self.seed(key) ^ counter_rng.mix64_int(int(start) + counter_rng.GOLDEN))
            gen = torch.Generator(device=self.device)
            gen.manual_seed(seed >> 1)
        bits = torch.randint(0, 1 << (23 if f32 else 52), tuple(shape), dtype=idt, device=self.device,
                             generator=gen)
        bits.bitwise_or_(0x3F800000 if f32 else 0x3FF0000000000000)
        f = bits.view(self.dtype)
        if out is not None and out.is_contiguous() and out.numel() == f.numel() and out.dtype == self.dtype:
            return out.view(*shape).copy_(f)
        return f


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
    return torch.copysign(scalar(1.0, f), f, out=f)


def scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    """A 0-dim tensor of `value` with `like`'s dtype on `like`'s device (cached): the
    constants of the in-place ops (`out=` must not mix devices)."""
    if like.device.type == "cpu":
        table = ONE if value == 1.0 else THREE_HALVES if value == -1.5 else None
        if table is not None and like.dtype in table:
            return table[like.dtype]
    key = (float(value), like.dtype, like.device)
    t = _SCALARS.get(key)
    if t is None:
        t = _SCALARS[key] = torch.full((), value, dtype=like.dtype, device=like.device)
    return t


_SCALARS: dict = {}
ONE = {torch.float32: torch.ones((), dtype=torch.float32), torch.float64: torch.ones((), dtype=torch.float64)}
THREE_HALVES = {dt: torch.full((), -1.5, dtype=dt) for dt in (torch.float32, torch.float64)}

