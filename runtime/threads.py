"""qnnc's default number of torch intra-op threads.

`benchmarks/bench_contention.py` chose it: evaluation of 784-512-512-10 (10,000 images x
15 shots) quiet and beside a busy process pinned to one core, for 1 and 2 threads, on
the 2-core development machine (BENCHMARKS.md). With 2 threads every element-wise
OpenMP region waits for a core the other process holds, and a pass slows down several
times; with 1 thread it does not. So qnnc runs torch on one thread unless told
otherwise:

* OMP_NUM_THREADS set: torch's own reading of it is left alone;
* QNNC_THREADS=n (n >= 1): n threads; QNNC_THREADS=0: torch's own default (all cores);
* otherwise DEFAULT_THREADS.

Applied once per process, when the first `QNNModel` is built (`apply_default`).
"""

from __future__ import annotations

import os

DEFAULT_THREADS = 1

_applied = False


def default_threads() -> int | None:
    """The thread count qnnc sets, or None to leave torch's setting alone."""
    if "QNNC_THREADS" in os.environ:
        try:
            n = int(os.environ["QNNC_THREADS"])
        except ValueError:
            return None
        return n if n >= 1 else None
    if "OMP_NUM_THREADS" in os.environ:
        return None
    return DEFAULT_THREADS


def apply_default() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    n = default_threads()
    if n is not None:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
