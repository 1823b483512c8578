"""A meeting point of workers (threads or forked processes) in shared memory, waited
for in compiled code.

The block Monte Carlo's workers (replicas_workers.py) meet twice a sweep. A meeting on
Python queues or OS semaphores puts the waiting worker to sleep, and on a 2-core VM
waking it costs 20-60 µs, as much as the work between two meetings. Here a worker
announces its arrival with an atomic release store to its own slot (one cache line
each) and waits with acquire loads and PAUSE in a numba loop that holds no GIL: a
meeting costs about a microsecond while each worker has a core. A wait returns to
Python every `SPINS` reads to check its partners are alive and yield the core
(`os.sched_yield`), so on a loaded machine it does not hold its core for long.

Layout of the flags (int64): slot w (at w LINE) holds the last meeting worker w reached,
slot W the last meeting worker 0 released, slot W + 1 is non-zero once a worker failed.
"""

from __future__ import annotations

import os
import platform

import numba as nb
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LINE = 8  # int64 slots per cache line: one writer per line
SPINS = 20_000  # reads (with a PAUSE each, ~1 ms) before a wait returns to Python


def _slot(context, builder, array_type, array, index):
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index])


@intrinsic
def load_acquire(typingctx, flags, index):
    if not (isinstance(flags, types.Array) and flags.dtype == types.int64 and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_slot(context, builder, sig.args[0], args[0], args[1]), "acquire", 8)

    return types.int64(flags, index), codegen


@intrinsic
def store_release(typingctx, flags, index, value):
    if not (isinstance(flags, types.Array) and flags.dtype == types.int64 and isinstance(index, types.Integer)
            and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        v = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(v, _slot(context, builder, sig.args[0], args[0], args[1]), "release", 8)
        return context.get_dummy_value()

    return types.void(flags, index, value), codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


@intrinsic
def cpu_relax(typingctx):
    """x86's PAUSE in a spin loop (eases the loop's pressure on the core and the memory
    order machinery); nothing on other CPUs."""

    def codegen(context, builder, sig, args):
        if _X86:
            from llvmlite import ir

            pause = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                   "llvm.x86.sse2.pause")
            builder.call(pause, [])
        return context.get_dummy_value()

    return types.void(), codegen


@nb.njit(cache=True, nogil=True)
def _publish(flags, slot, value):  # pragma: no cover - compiled
    store_release(flags, slot * LINE, value)


@nb.njit(cache=True, nogil=True)
def _await_arrivals(flags, W, meeting, spins):  # pragma: no cover - compiled
    """Worker 0: 1 once workers 1..W−1 reached `meeting`, −1 on abort, 0 after `spins` reads."""
    abort = (W + 1) * LINE
    for k in range(1, W):
        n = 0
        while load_acquire(flags, k * LINE) < meeting:
            if load_acquire(flags, abort) != 0:
                return -1
            n += 1
            if n >= spins:
                return 0
            cpu_relax()
    return 1


@nb.njit(cache=True, nogil=True)
def _await_release(flags, W, meeting, spins):  # pragma: no cover - compiled
    """Workers 1..W−1: 1 once worker 0 released `meeting`, −1 on abort, 0 after `spins` reads."""
    abort = (W + 1) * LINE
    for _ in range(spins):
        if load_acquire(flags, W * LINE) >= meeting:
            return 1
        if load_acquire(flags, abort) != 0:
            return -1
        cpu_relax()
    return 0


class Aborted(Exception):
    """Another worker failed: leave the meeting."""


class Meeting:
    """Meetings 1, 2, 3, ... of W workers (threads, or processes sharing `flags`: int64
    [(W + 2) LINE], zero at the start). At each, worker 0 waits for the others, runs
    `action` (the others still wait), then releases them. A wait that spun `SPINS`
    reads calls `check` (which raises where a partner is gone) and yields the core
    before it spins again. `abort()` makes every wait, present and future, raise Aborted."""

    def __init__(self, flags: np.ndarray, W: int, check=None):
        self.flags, self.W, self.check = flags, int(W), check

    @staticmethod
    def flags_for(W: int) -> int:
        return (int(W) + 2) * LINE

    def _until(self, wait, *args) -> None:
        while (status := wait(self.flags, self.W, *args, SPINS)) == 0:
            if self.check is not None:
                self.check()
            os.sched_yield()
        if status < 0:
            raise Aborted

    def wait(self, w: int, meeting: int, action=None) -> None:
        if w == 0:
            if self.W > 1:
                self._until(_await_arrivals, meeting)
            if action is not None:
                action()
            if self.W > 1:
                _publish(self.flags, self.W, meeting)
        else:
            _publish(self.flags, w, meeting)
            self._until(_await_release, meeting)

    def abort(self) -> None:
        _publish(self.flags, self.W + 1, 1)
